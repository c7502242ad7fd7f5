"""Exactly-once consume-transform-produce with ``log.processor``.

The pipeline: topic ``in`` (3 partitions, pre-loaded) is read by group ``eo``; for each
input the handler writes two outputs tagged with the input's topic, partition and offset,
one to ``out-a`` and one to ``out-b`` (``tests/helpers/tx_worker.py``). Each polled batch
is one transaction: outputs plus input positions.

What is verified:

* after every SIGKILL of the worker process at a random moment, the log holds, for each
  input partition, outputs for exactly the inputs below the group's committed offset, one
  of each kind per input: nothing duplicated, nothing of an uncommitted batch — and once a
  final worker has drained the input, every input has exactly its two outputs;
* the same with two workers of the group running at once and one of them killed (the
  other takes over its partitions);
* in one process: a handler that raises leaves nothing of its batch and the batch is
  processed again; a member that lost its partitions while handling a batch (a zombie) has
  its whole batch refused (CommitFailedError) and the new owner processes those inputs
  once; ``run`` goes on after such a refusal;
* the processor refuses ``enable_auto_commit`` and a non-callable handler.

``EVENTLOG_STRESS=1`` runs many more kills.
"""

from __future__ import annotations

import os
import random
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from helper_modules import load_helper

import eventlog
from eventlog import NewRecord, TopicPartition

HELPERS = Path(__file__).parent / "helpers"
TP = TopicPartition
PARTITIONS = 3


tx_procs = load_helper("tx_procs")
tx_worker = load_helper("tx_worker")
GROUP, INPUT, OUT_A, OUT_B = tx_worker.GROUP, tx_worker.INPUT, tx_worker.OUT_A, tx_worker.OUT_B


def create_pipeline(log: eventlog.Log, inputs_per_partition: int) -> None:
    log.create_topic(INPUT, PARTITIONS, exist_ok=True, retention_ms=-1)
    log.create_topic(OUT_A, 2, exist_ok=True, retention_ms=-1)
    log.create_topic(OUT_B, exist_ok=True, retention_ms=-1)
    add_inputs(log, inputs_per_partition)


def add_inputs(log: eventlog.Log, per_partition: int) -> None:
    for p in range(PARTITIONS):
        log.append_batch(INPUT, [NewRecord(b"input", partition=p)
                                 for _ in range(per_partition)])


def _committed(log: eventlog.Log) -> dict[int, int]:
    found = log.committed_offsets(GROUP, INPUT)
    return {p: found[TP(INPUT, p)].offset if TP(INPUT, p) in found else 0
            for p in range(PARTITIONS)}


def check_exactly_once(log: eventlog.Log, *, drained: bool = False,
                       context: str = "") -> dict[int, int]:
    """Outputs exist for exactly the inputs below the committed offsets, one of each kind
    per input. Returns the committed offsets; with ``drained``, they must be the ends.

    A worker may still be running: the committed offsets are read before (``before``) and
    after (``after``) the outputs, so every input below ``before`` must have both outputs
    and no output may belong to an input at or above ``after``; with no worker running
    both are the same and the check is exact."""
    before = _committed(log)
    outputs: Counter[bytes] = Counter()
    for topic, suffix in ((OUT_A, b":a"), (OUT_B, b":b")):
        for record in log.scan(topic):
            assert record.value.endswith(suffix), (record, context)
            if topic == OUT_A:
                assert record.key == record.value[:-2], (record, context)
            outputs[record.value] += 1
    after = _committed(log)
    ends = log.end_offsets(INPUT)
    duplicated = sorted(v for v, n in outputs.items() if n > 1)
    assert not duplicated, f"outputs written twice: {duplicated[:5]} {context}"
    for p in range(PARTITIONS):
        assert before[p] <= after[p] <= ends[p], context
    unexpected = []
    for value in outputs:
        topic, partition, offset, _kind = value.decode().split(":")
        if topic != INPUT or not 0 <= int(offset) < after[int(partition)]:
            unexpected.append(value)
    assert not unexpected, \
        f"outputs of uncommitted inputs: {sorted(unexpected)[:5]} (committed {after}) {context}"
    missing = [tag + kind for p in range(PARTITIONS) for offset in range(before[p])
               for tag in [tx_worker.tag(INPUT, p, offset)] for kind in (b":a", b":b")
               if tag + kind not in outputs]
    assert not missing, f"inputs committed without their outputs: {missing[:5]} {context}"
    if drained:
        assert before == after == ends, \
            f"not drained: committed {after}, ends {ends} {context}"
    return after


# --- in one process ----------------------------------------------------------------------


@pytest.fixture
def pipeline(log: eventlog.Log) -> eventlog.Log:
    create_pipeline(log, 20)
    return log


def tagging_handler(record: eventlog.Record, tx: eventlog.Transaction) -> None:
    t = tx_worker.tag(record.topic, record.partition, record.offset)
    tx.append(OUT_A, t + b":a", key=t)
    tx.append(OUT_B, t + b":b")


def test_a_processor_writes_each_inputs_outputs_once_and_commits_positions(
        pipeline: eventlog.Log) -> None:
    with pipeline.processor(INPUT, group=GROUP, handler=tagging_handler,
                            auto_offset_reset="earliest", max_poll_records=7) as processor:
        assert processor.consumer.group == GROUP
        first = processor.poll(1.0)
        assert 1 <= first <= 7
        check_exactly_once(pipeline)
        assert processor.run(idle_timeout=0.3) == 60 - first
    check_exactly_once(pipeline, drained=True)
    # A new processor of the group has nothing left to do.
    with pipeline.processor(INPUT, group=GROUP, handler=tagging_handler,
                            auto_offset_reset="earliest") as again:
        assert again.run(idle_timeout=0.3) == 0
    check_exactly_once(pipeline, drained=True)


def test_a_failing_handler_writes_nothing_and_its_batch_is_processed_again(
        pipeline: eventlog.Log) -> None:
    failures = {"left": 2}
    handled: list[tuple[int, int]] = []

    def handler(record: eventlog.Record, tx: eventlog.Transaction) -> None:
        tagging_handler(record, tx)
        handled.append((record.partition, record.offset))
        if record.offset == 3 and failures["left"]:
            failures["left"] -= 1
            raise ValueError("transient failure")

    with pipeline.processor(INPUT, group=GROUP, handler=handler,
                            auto_offset_reset="earliest", max_poll_records=5) as processor:
        raised = 0
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if processor.poll(0.2) == 0 and failures["left"] == 0:
                    committed = check_exactly_once(pipeline)
                    if sum(committed.values()) == 60:
                        break
            except ValueError:
                raised += 1
                check_exactly_once(pipeline)  # nothing of the failed batch is visible
    assert raised == 2
    check_exactly_once(pipeline, drained=True)
    # The failed batches were handled again: some inputs were seen more than once, their
    # outputs written once.
    assert len(handled) > 60


def test_a_batch_whose_commit_conflicts_is_rewound_and_processed_again(
        pipeline: eventlog.Log) -> None:
    """The handler appends to an aggregate with an expected version; another writer gets
    there first once. The ConcurrencyError propagates, nothing of the batch is written,
    and the batch is processed again with the new version."""
    pipeline.create_topic("agg", key_index=True)
    interfered: list[bool] = []
    # The current batch's transaction and its own appends to the aggregate so far (kept
    # referenced, so that a later transaction cannot be mistaken for it).
    current: list[Any] = [None, 0]

    def handler(record: eventlog.Record, tx: eventlog.Transaction) -> None:
        tagging_handler(record, tx)
        if current[0] is not tx:
            current[:] = [tx, 0]
        version = pipeline.key_version("agg", b"total") + current[1]
        current[1] += 1
        if not interfered:
            interfered.append(True)
            pipeline.append("agg", b"other writer", key=b"total")
        tx.append("agg", tx_worker.tag(record.topic, record.partition, record.offset),
                  key=b"total", expected_version=version)

    with pipeline.processor(INPUT, group=GROUP, handler=handler,
                            auto_offset_reset="earliest", max_poll_records=5) as processor:
        with pytest.raises(eventlog.ConcurrencyError):
            processor.poll(1.0)
        assert check_exactly_once(pipeline) == dict.fromkeys(range(PARTITIONS), 0)
        assert processor.run(idle_timeout=0.3) == 60
    check_exactly_once(pipeline, drained=True)
    stream = [r.value for r in pipeline.read_key("agg", b"total")]
    assert stream[0] == b"other writer"
    assert sorted(stream[1:]) == sorted(tx_worker.tag(INPUT, p, o)
                                        for p in range(PARTITIONS) for o in range(20))


@pytest.mark.parametrize("ending", ["commit", "abort"])
def test_a_handler_cannot_end_the_processors_transaction(pipeline: eventlog.Log,
                                                         ending: str) -> None:
    """Committing the transaction from the handler would write outputs without the input
    positions (a duplicate after the next crash): it is refused, nothing of the batch is
    written, and the batch is processed again."""
    refused: list[int] = []

    def handler(record: eventlog.Record, tx: eventlog.Transaction) -> None:
        tagging_handler(record, tx)
        if not refused:
            refused.append(record.offset)
            getattr(tx, ending)()

    with pipeline.processor(INPUT, group=GROUP, handler=handler,
                            auto_offset_reset="earliest", max_poll_records=5) as processor:
        with pytest.raises(eventlog.IllegalStateError):
            processor.poll(1.0)
        assert check_exactly_once(pipeline) == dict.fromkeys(range(PARTITIONS), 0)
        assert processor.run(idle_timeout=0.3) == 60
    check_exactly_once(pipeline, drained=True)


def test_a_zombie_member_cannot_commit_and_the_new_owner_processes_its_batch(
        pipeline: eventlog.Log) -> None:
    short = {"session_timeout_ms": 400, "heartbeat_interval_ms": 50}
    successor: list[eventlog.Processor] = []
    stalled: list[int] = []

    def slow_handler(record: eventlog.Record, tx: eventlog.Transaction) -> None:
        tagging_handler(record, tx)
        if not stalled:
            # The zombie hangs in the middle of its batch: its heartbeats stop, the group
            # gives its partitions to the successor, which processes them meanwhile.
            stalled.append(record.offset)
            zombie.consumer._membership.stop_heartbeats()  # white box: a hung process
            other = pipeline.processor(INPUT, group=GROUP, handler=tagging_handler,
                                       auto_offset_reset="earliest", max_poll_records=10,
                                       **short)
            successor.append(other)
            deadline = time.monotonic() + 10
            while len(other.consumer.assignment()) < PARTITIONS and \
                    time.monotonic() < deadline:
                other.poll(0.05)
            assert len(other.consumer.assignment()) == PARTITIONS
            other.run(idle_timeout=0.3)

    zombie = pipeline.processor(INPUT, group=GROUP, handler=slow_handler,
                                auto_offset_reset="earliest", max_poll_records=10, **short)
    try:
        with pytest.raises(eventlog.CommitFailedError):
            zombie.poll(1.0)
        check_exactly_once(pipeline, drained=True)
    finally:
        zombie.close()
        for other in successor:
            other.close()
    check_exactly_once(pipeline, drained=True)


def run_with_a_refused_first_batch(log: eventlog.Log, idle_timeout: float) -> tuple[int, int]:
    """``run`` a processor whose first batch is refused: the member's lease runs out while
    the handler pauses (0.5 s) and nobody else takes the partitions. Returns (what run
    reported, handler calls)."""
    short = {"session_timeout_ms": 300, "heartbeat_interval_ms": 50}
    calls = {"n": 0}

    def handler(record: eventlog.Record, tx: eventlog.Transaction) -> None:
        tagging_handler(record, tx)
        calls["n"] += 1
        if calls["n"] == 1:
            processor.consumer._membership.stop_heartbeats()  # white box: a long pause
            time.sleep(0.5)

    processor = log.processor(INPUT, group=GROUP, handler=handler,
                              auto_offset_reset="earliest", max_poll_records=4, **short)
    with processor:
        processed = processor.run(idle_timeout=idle_timeout)
    return processed, calls["n"]


def test_run_goes_on_after_a_refused_batch(pipeline: eventlog.Log) -> None:
    """A batch refused by fencing is not an error for ``run``: the member rejoins and
    processes the inputs again, exactly once."""
    processed, calls = run_with_a_refused_first_batch(pipeline, idle_timeout=2.0)
    check_exactly_once(pipeline, drained=True)
    assert processed == 60
    assert calls > 60  # the refused batch was handled twice


def test_run_does_not_count_a_refused_batch_as_idle_time(pipeline: eventlog.Log) -> None:
    """``run(idle_timeout=...)`` processes "until nothing arrives for idle_timeout
    seconds". Records arrived (the refused batch, still unprocessed), so a handler pause
    longer than the idle timeout must not end the run with the input left undone."""
    processed, _calls = run_with_a_refused_first_batch(pipeline, idle_timeout=0.3)
    assert processed == 60
    check_exactly_once(pipeline, drained=True)


def test_processor_arguments_are_checked(pipeline: eventlog.Log) -> None:
    with pytest.raises(eventlog.InvalidArgumentError, match="enable_auto_commit"):
        pipeline.processor(INPUT, group=GROUP, handler=tagging_handler, enable_auto_commit=True)
    with pytest.raises(eventlog.InvalidArgumentError, match="handler"):
        pipeline.processor(INPUT, group=GROUP, handler="not callable")
    with pytest.raises(TypeError):
        pipeline.processor(INPUT, handler=tagging_handler)  # a group is required


# --- SIGKILL -----------------------------------------------------------------------------


class Pipeline:
    """Worker processes of the pipeline on one log, killed and checked."""

    def __init__(self, tmp_path: Path, seed: int, durability: str = "full") -> None:
        self.workdir = tmp_path
        self.logdir = tmp_path / "log"
        self.rng = random.Random(seed)
        self.seed = seed
        self.durability = durability
        self.started = 0
        self.kills = 0
        self.progress: list[int] = []  # inputs committed after each kill

    def start(self) -> Any:
        name = f"worker-{self.started}"
        self.started += 1
        return tx_procs.Child(self.workdir, name, HELPERS / "tx_worker.py", str(self.logdir),
                              name, str(self.rng.randrange(2**31)), "--durability",
                              self.durability, "--wait-go", "--idle", "1.0")

    def context(self) -> str:
        return f"(seed {self.seed}, kill {self.kills})"

    def check(self, *, drained: bool = False) -> int:
        with eventlog.open(self.logdir, readonly=self.kills % 2 == 1) as log:
            committed = check_exactly_once(log, drained=drained, context=self.context())
        return sum(committed.values())

    def kill_repeatedly(self, kills: int) -> None:
        upcoming = self.start()
        for n in range(kills):
            worker = upcoming
            worker.go()
            if n == 0 or self.rng.random() < 0.75:
                worker.wait_for("A ", "a first batch")
            time.sleep(self.rng.uniform(0.0, 0.12))
            worker.kill()
            worker.check_killed()
            self.kills += 1
            upcoming = self.start()
            try:
                self.progress.append(self.check())
            except BaseException:
                upcoming.kill()
                raise
        self.finish(upcoming)

    def finish(self, worker: Any) -> None:
        """Let a worker drain the input and exit on its own; then every input is done."""
        worker.go()
        assert worker.wait(120) == 0, worker.stderr()
        assert worker.lines()[-1].startswith("DONE ")
        self.check(drained=True)


def test_a_worker_killed_repeatedly_still_writes_each_output_exactly_once(
        tmp_path: Path) -> None:
    seed = random.randrange(2**32)
    pipeline = Pipeline(tmp_path, seed)
    with eventlog.open(pipeline.logdir) as log:
        create_pipeline(log, 1000)
    pipeline.kill_repeatedly(12)
    # The kills landed while there was work left (the pipeline was interrupted mid-way).
    assert pipeline.progress[0] > 0, pipeline.progress
    assert pipeline.progress == sorted(pipeline.progress)
    assert pipeline.progress[-1] < 3000, "the input ran out before the last kill"


def test_two_workers_at_once_with_one_killed_still_write_each_output_exactly_once(
        tmp_path: Path) -> None:
    seed = random.randrange(2**32)
    pipeline = Pipeline(tmp_path, seed)
    with eventlog.open(pipeline.logdir) as log:
        create_pipeline(log, 250)  # enough that neither finishes before both joined
    for round_ in range(2):
        victim, survivor = pipeline.start(), pipeline.start()
        victim.go()
        survivor.go()
        victim.wait_for("A ", "the victim's first batch")
        survivor.wait_for("A ", "the survivor's first batch")
        time.sleep(pipeline.rng.uniform(0.0, 0.1))
        victim.kill()
        victim.check_killed()
        pipeline.kills += 1
        pipeline.check()
        assert survivor.wait(120) == 0, survivor.stderr()
        assert survivor.lines()[-1].startswith("DONE ")
        pipeline.check(drained=True)
        if round_ == 0:
            with eventlog.open(pipeline.logdir) as log:
                add_inputs(log, 250)


@pytest.mark.stress
@pytest.mark.timeout(3600)
@pytest.mark.skipif(os.environ.get("EVENTLOG_STRESS") != "1",
                    reason="opt-in stress test (200 kills, a few minutes): set "
                           "EVENTLOG_STRESS=1, e.g. `make stress`")
def test_exactly_once_stress(tmp_path: Path) -> None:
    pipeline = Pipeline(tmp_path, random.randrange(2**32))
    with eventlog.open(pipeline.logdir) as log:
        create_pipeline(log, 8000)
    pipeline.kill_repeatedly(200)
