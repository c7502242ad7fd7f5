"""Several processes on one log: concurrent appends, cross-process reads and waits, map
growth by another process, and fork safety."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from helper_modules import load_helper

import eventlog

HELPERS = Path(__file__).parent / "helpers"


procs = load_helper("procs")
Agent = procs.Agent

PROCESSES = 4
PER_PROCESS = 200


@pytest.fixture
def agents() -> Any:
    """Start agents on demand (``agents(n)``); all are killed at the end of the test."""
    started: list[Any] = []

    def start(n: int = 1) -> list[Any]:
        new = [Agent() for _ in range(n)]
        started.extend(new)
        return new

    yield start
    for agent in started:
        agent.kill()


def test_concurrent_appends_to_one_partition_get_dense_unique_offsets(
        tmp_path: Path, agents: Any) -> None:
    path = str(tmp_path / "log")
    with eventlog.open(path) as log:
        log.create_topic("shared", partitions=2)
    workers = agents(PROCESSES)
    for w in workers:
        w.call("open", path=path)
    # Every process is ready: start them all at once.
    for proc, w in enumerate(workers):
        w.send("append_seq", topic="shared", partition=0, proc=proc, count=PER_PROCESS,
               seed=proc)
    returned = {proc: w.result(timeout=120) for proc, w in enumerate(workers)}
    for w in workers:
        w.stop()

    total = PROCESSES * PER_PROCESS
    with eventlog.open(path, readonly=True) as log:
        assert log.end_offsets("shared") == {0: total, 1: 0}
        records = log.read("shared", 0, 0, max_records=total + 10)
    assert [r.offset for r in records] == list(range(total))
    values = [r.value for r in records]
    expected = {b"%d:%d" % (p, s) for p in range(PROCESSES) for s in range(PER_PROCESS)}
    assert len(set(values)) == total
    assert set(values) == expected
    by_offset = {r.offset: r.value for r in records}
    for proc in range(PROCESSES):
        # Each process's records appear in the order it sent them ...
        seqs = [int(v.split(b":")[1]) for v in values if v.split(b":")[0] == b"%d" % proc]
        assert seqs == list(range(PER_PROCESS))
        # ... at the offsets its appends returned.
        assert [by_offset[o] for o in returned[proc]] == \
            [b"%d:%d" % (proc, s) for s in range(PER_PROCESS)]
    # The processes really ran at the same time (otherwise this test proves little): their
    # records are interleaved, not four contiguous blocks.
    writers = [v.split(b":")[0] for v in values]
    switches = sum(a != b for a, b in pairwise(writers))
    assert switches > PROCESSES - 1, "the appends never overlapped"


def test_another_process_reads_and_its_wait_wakes_on_appends(tmp_path: Path,
                                                             agents: Any) -> None:
    path = str(tmp_path / "log")
    with eventlog.open(path) as log:
        log.create_topic("events", partitions=2)
        (reader,) = agents(1)
        reader.call("open", path=path)
        reader.send("wait", topic="events", partition=1, offset=0, timeout=5.0)
        # Nothing exists yet, so the waiter cannot have answered True; it is blocked.
        assert not reader.has_reply(timeout=0.3)
        log.append("events", b"hello", partition=1)
        assert reader.result(timeout=30) is True
        assert reader.call("read_all", topic="events", partition=1) == [[0, b"hello".hex()]]
        log.append("events", b"again", partition=1)
        assert reader.call("read_all", topic="events", partition=1) == \
            [[0, b"hello".hex()], [1, b"again".hex()]]
        # Waiting for an offset that exists returns at once.
        assert reader.call("wait", topic="events", partition=1, offset=1, timeout=5.0) is True


def test_wait_in_this_process_wakes_on_another_process_append(tmp_path: Path,
                                                              agents: Any) -> None:
    path = str(tmp_path / "log")
    with eventlog.open(path) as log:
        log.create_topic("events")
        (writer,) = agents(1)
        writer.call("open", path=path)
        assert log.wait("events", 0, 0, timeout=0) is False
        writer.send("append", topic="events", values=[b"remote".hex()], partition=0,
                    delay=0.2)
        assert log.wait("events", 0, 0, timeout=5.0) is True
        assert writer.result() == [0]
        assert [r.value for r in log.read("events", 0)] == [b"remote"]


def test_map_grown_by_another_process(tmp_path: Path, agents: Any) -> None:
    path = str(tmp_path / "log")
    small = 1 << 20
    log = eventlog.open(path, map_size=small)
    try:
        log.create_topic("big")
        log.append("big", b"first")
        (grower,) = agents(1)
        grower.call("open", path=path, kwargs={"map_size": small})
        grower.send("append_bulk", topic="big", partition=0, total_bytes=20 << 20,
                    value_size=4000)
        # Read while the other process grows the map under us.
        seen = 0
        while not grower.has_reply():
            end = log.end_offsets("big")[0]
            assert end >= seen
            seen = end
            start = max(0, end - 3)
            tail = log.read("big", 0, start)  # may include records appended meanwhile
            assert [r.offset for r in tail] == list(range(start, start + len(tail)))
            assert len(tail) >= end - start
        added = grower.result(timeout=120)
        assert os.path.getsize(os.path.join(path, "data.mdb")) > 20 << 20
        # This process adopted the map size the other process grew to.
        assert log._storage.env.info()["map_size"] > 20 << 20
        total = 1 + added
        assert log.end_offsets("big") == {0: total}
        count = 0
        size = 0
        for record in log.scan("big", 0):
            assert record.offset == count
            count += 1
            size += len(record.value)
        assert count == total
        assert size == len(b"first") + added * 4000
        # Writing after the other process's resize works too, and the other process sees it.
        assert log.append("big", b"last").offset == total
        remote = grower.call("end_offsets", topic="big")
        assert remote == {"0": total + 1}
    finally:
        log.close()


# --- fork ------------------------------------------------------------------------

FORK_STEPS = ("read", "append", "end_offsets", "wait", "close")


def _child_uses_inherited_log(log: eventlog.Log) -> int:
    """Runs in a forked child; returns an exit code (0 = every use was refused)."""
    step = 0
    try:
        for step, action in enumerate((
                lambda: log.read("t", 0),
                lambda: log.append("t", b"child via parent handle"),
                lambda: log.end_offsets("t"),
                lambda: log.wait("t", 0, 0, timeout=0))):
            try:
                action()
            except eventlog.ForkedProcessError:
                continue
            os.write(2, f"child: {FORK_STEPS[step]} on the inherited Log worked\n".encode())
            return 10 + step
        step = 4
        log.close()  # closing the inherited handle is allowed and does nothing
        return 0
    except BaseException as exc:
        os.write(2, f"child failed at {FORK_STEPS[step]}: {exc!r}\n".encode())
        return 20 + step


def _child_opens_the_log_itself(path: str) -> int:
    """Runs in a forked child; returns an exit code (0 = own Log read and wrote)."""
    try:
        with eventlog.open(path) as own:
            if [r.value for r in own.read("t", 0)] != [b"parent"]:
                return 30
            own.append("t", b"child")
        return 0
    except BaseException as exc:
        os.write(2, f"child: eventlog.open() of the parent's log failed: {exc!r}\n".encode())
        return 31


def _in_forked_child(fn: Any, *args: Any) -> int:
    """Run ``fn(*args)`` in an ``os.fork()`` child; return the child's exit code."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child never returns into pytest
        code = 99
        try:
            code = fn(*args)
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


needs_fork = pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork() is not available")


@needs_fork
def test_forked_child_gets_forked_process_error(tmp_path: Path,
                                                capfd: pytest.CaptureFixture[str]) -> None:
    path = str(tmp_path / "log")
    with eventlog.open(path) as log:
        log.create_topic("t")
        log.append("t", b"parent")
        assert _in_forked_child(_child_uses_inherited_log, log) == 0, capfd.readouterr().err
        # The parent's Log is unaffected by the child.
        assert [r.value for r in log.read("t", 0)] == [b"parent"]
        assert log.append("t", b"parent again").offset == 1
    with eventlog.open(path, readonly=True) as log:
        assert [r.value for r in log.read("t", 0)] == [b"parent", b"parent again"]


@needs_fork
def test_forked_child_can_open_the_log_itself(tmp_path: Path,
                                              capfd: pytest.CaptureFixture[str]) -> None:
    path = str(tmp_path / "log")
    with eventlog.open(path) as log:
        log.create_topic("t")
        log.append("t", b"parent")
        assert _in_forked_child(_child_opens_the_log_itself, path) == 0, capfd.readouterr().err
        assert [r.value for r in log.read("t", 0)] == [b"parent", b"child"]
        assert log.append("t", b"parent again").offset == 2


@needs_fork
def test_forked_child_exiting_normally_leaves_the_parent_intact(tmp_path: Path) -> None:
    path = str(tmp_path / "log")
    proc = subprocess.run([sys.executable, str(HELPERS / "fork_check.py"), path],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["child_exit"] == 0, proc.stderr
    assert result["slot_kept"], f"the child's exit cleared the parent's reader slot:\n" \
                                f"{result['readers']}"
    assert result["values"] == ["before fork", "from child", "after fork"]
    assert result["reopened"] == result["values"]


@needs_fork
def test_multiprocessing_fork_child_gets_forked_process_error(tmp_path: Path) -> None:
    import multiprocessing

    path = str(tmp_path / "log")
    with eventlog.open(path) as log:
        log.create_topic("t")
        log.append("t", b"parent")
        child = multiprocessing.get_context("fork").Process(target=_mp_child, args=(log,))
        child.start()
        child.join(60)
        assert child.exitcode == 0
        assert [r.value for r in log.read("t", 0)] == [b"parent"]
        assert log.append("t", b"after").offset == 1


def _mp_child(log: eventlog.Log) -> None:
    sys.exit(_child_uses_inherited_log(log))
