"""Per-key streams and optimistic concurrency: ``expected_version`` / ``expected_versions``,
``ConcurrencyError``, ``read_key`` and ``key_version``.

What is verified:

* a key's version counts the records ever appended with it (0: none); an append expecting
  another version raises ConcurrencyError (with its attributes) and writes nothing, for
  single appends, batches (several events of one key take consecutive versions; one wrong
  key fails the whole batch) and transactions;
* misuse is refused: a key named in ``expected_versions`` but absent from the batch, a topic
  without key index, no key, bad versions, one key's records split over partitions;
* ``read_key`` gives the key's records in offset order (across its page size), from a
  version on; ``key_version`` agrees; explicit partitions; keys too long to store raw;
* versions survive reopening the log, compaction of a key's older records and
  ``delete_records`` of them;
* a random sequence of appends, batches and transactions with right and wrong expected
  versions matches a model (hypothesis);
* many threads, and several processes (``tests/helpers/tx_contender.py``) plus threads,
  competing for one aggregate in read-version/append loops: exactly one writer wins each
  version, the stream has no gap and no duplicate, and version ``i`` is the ``i``-th record.
"""

from __future__ import annotations

import json
import tempfile
import threading
from pathlib import Path
from typing import Any

import pytest
from helper_modules import load_helper
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import eventlog
from eventlog import NewRecord
from eventlog._partitioner import default_partition

HELPERS = Path(__file__).parent / "helpers"


tx_procs = load_helper("tx_procs")
tx_contender = load_helper("tx_contender")


@pytest.fixture
def acc(log: eventlog.Log) -> eventlog.Log:
    """Topic ``accounts`` with a key index (2 partitions), and ``plain`` without one."""
    log.create_topic("accounts", 2, key_index=True)
    log.create_topic("plain")
    return log


def values(log: eventlog.Log, key: bytes, **options: Any) -> list[bytes | None]:
    return [r.value for r in log.read_key("accounts", key, **options)]


# --- single appends --------------------------------------------------------------------


def test_versions_count_appends_and_zero_means_a_new_stream(acc: eventlog.Log) -> None:
    assert acc.key_version("accounts", b"acc-1") == 0
    assert list(acc.read_key("accounts", b"acc-1")) == []
    for version in range(5):
        meta = acc.append("accounts", b"e%d" % version, key=b"acc-1", expected_version=version)
        assert acc.key_version("accounts", b"acc-1") == version + 1
        assert meta.partition == default_partition(b"acc-1", 2)
    # Appends without an expected version count too; so do tombstones.
    acc.append("accounts", b"unchecked", key=b"acc-1")
    acc.append("accounts", None, key=b"acc-1")
    assert acc.key_version("accounts", b"acc-1") == 7
    assert values(acc, b"acc-1") == [b"e0", b"e1", b"e2", b"e3", b"e4", b"unchecked", None]
    acc.append("accounts", b"after the tombstone", key=b"acc-1", expected_version=7)
    assert acc.key_version("accounts", b"acc-2") == 0  # other keys are separate streams


@pytest.mark.parametrize("expected", [0, 1, 2, 4, 100])
def test_a_wrong_expected_version_raises_and_writes_nothing(acc: eventlog.Log,
                                                            expected: int) -> None:
    for v in range(3):
        acc.append("accounts", b"e%d" % v, key=b"acc-1", expected_version=v)
    ends = acc.end_offsets("accounts")
    with pytest.raises(eventlog.ConcurrencyError) as info:
        acc.append("accounts", b"late", key=b"acc-1", expected_version=expected)
    error = info.value
    assert isinstance(error, eventlog.EventLogError)
    assert isinstance(error, RuntimeError)
    assert error.topic == "accounts"
    assert error.partition == default_partition(b"acc-1", 2)
    assert error.key == b"acc-1"
    assert (error.expected_version, error.actual_version) == (expected, 3)
    assert "acc-1" in str(error)
    assert acc.end_offsets("accounts") == ends
    assert acc.key_version("accounts", b"acc-1") == 3
    assert values(acc, b"acc-1") == [b"e0", b"e1", b"e2"]


def test_expected_version_on_a_new_key_must_be_zero(acc: eventlog.Log) -> None:
    with pytest.raises(eventlog.ConcurrencyError) as info:
        acc.append("accounts", b"x", key=b"new", expected_version=1)
    assert info.value.actual_version == 0
    assert acc.end_offsets("accounts") == {0: 0, 1: 0}


# --- batches ---------------------------------------------------------------------------


def test_a_batch_of_several_events_of_one_key_takes_consecutive_versions(
        acc: eventlog.Log) -> None:
    acc.append("accounts", b"opened", key=b"acc-1", expected_version=0)
    acc.append_batch("accounts", [NewRecord(b"deposit", key=b"acc-1"),
                                  NewRecord(b"other", key=b"acc-2"),
                                  NewRecord(b"withdrawal", key=b"acc-1"),
                                  NewRecord(b"unkeyed", partition=0),
                                  NewRecord(b"fee", key=b"acc-1")],
                     expected_versions={b"acc-1": 1, b"acc-2": 0})
    assert acc.key_version("accounts", b"acc-1") == 4
    assert acc.key_version("accounts", b"acc-2") == 1
    assert values(acc, b"acc-1") == [b"opened", b"deposit", b"withdrawal", b"fee"]
    assert values(acc, b"acc-1", from_version=3) == [b"withdrawal", b"fee"]
    # Records of keys without an expectation are written without a check.
    acc.append_batch("accounts", [NewRecord(b"free", key=b"acc-3"),
                                  NewRecord(b"checked", key=b"acc-1")],
                     expected_versions={b"acc-1": 4})
    assert acc.key_version("accounts", b"acc-3") == 1


def test_one_wrong_version_fails_the_whole_batch(acc: eventlog.Log) -> None:
    acc.append("accounts", b"a", key=b"acc-1")
    acc.append("accounts", b"b", key=b"acc-2")
    ends = acc.end_offsets("accounts")
    with pytest.raises(eventlog.ConcurrencyError) as info:
        acc.append_batch("accounts", [NewRecord(b"a2", key=b"acc-1"),
                                      NewRecord(b"b2", key=b"acc-2"),
                                      NewRecord(b"c1", key=b"acc-3")],
                         expected_versions={b"acc-1": 1, b"acc-2": 0, b"acc-3": 0})
    assert info.value.key == b"acc-2"
    assert (info.value.expected_version, info.value.actual_version) == (0, 1)
    assert acc.end_offsets("accounts") == ends
    assert [acc.key_version("accounts", k) for k in (b"acc-1", b"acc-2", b"acc-3")] == [1, 1, 0]


def test_the_expected_version_is_checked_before_the_batch_not_between_its_events(
        acc: eventlog.Log) -> None:
    acc.append_batch("accounts", [NewRecord(b"1", key=b"k"), NewRecord(b"2", key=b"k")],
                     expected_versions={b"k": 0})
    with pytest.raises(eventlog.ConcurrencyError):
        acc.append_batch("accounts", [NewRecord(b"3", key=b"k")], expected_versions={b"k": 1})
    assert acc.key_version("accounts", b"k") == 2


# --- misuse ----------------------------------------------------------------------------


def test_an_expected_version_for_a_key_not_in_the_batch_is_refused(acc: eventlog.Log) -> None:
    with pytest.raises(eventlog.InvalidArgumentError, match="other"):
        acc.append_batch("accounts", [NewRecord(b"x", key=b"k")],
                         expected_versions={b"k": 0, b"other": 0})
    assert acc.end_offsets("accounts") == {0: 0, 1: 0}


def test_expected_versions_need_a_key_index(acc: eventlog.Log) -> None:
    with pytest.raises(eventlog.InvalidArgumentError, match="key_index"):
        acc.append("plain", b"x", key=b"k", expected_version=0)
    with pytest.raises(eventlog.InvalidArgumentError, match="key_index"):
        acc.append_batch("plain", [NewRecord(b"x", key=b"k")], expected_versions={b"k": 0})
    assert acc.end_offsets("plain") == {0: 0}
    for call in (lambda: acc.key_version("plain", b"k"), lambda: list(acc.read_key("plain", b"k"))):
        with pytest.raises(eventlog.InvalidArgumentError):
            call()
    # A compacted topic keeps the index: versions work there.
    acc.create_topic("snapshots", cleanup_policy="compact")
    acc.append("snapshots", b"s1", key=b"k", expected_version=0)
    assert acc.key_version("snapshots", b"k") == 1


@pytest.mark.parametrize("call", [
    lambda log: log.append("accounts", b"x", expected_version=0),
    lambda log: log.append("accounts", b"x", key="text", expected_version=0),
    lambda log: log.append("accounts", b"x", key=b"k", expected_version=-1),
    lambda log: log.append("accounts", b"x", key=b"k", expected_version=1.0),
    lambda log: log.append("accounts", b"x", key=b"k", expected_version=True),
    lambda log: log.append_batch("accounts", [NewRecord(b"x", key=b"k")],
                                 expected_versions={"k": 0}),
    lambda log: log.append_batch("accounts", [NewRecord(b"x", key=b"k")],
                                 expected_versions={b"k": None}),
    lambda log: log.append_batch("accounts", [NewRecord(b"x", key=b"k")],
                                 expected_versions=[b"k"]),
    lambda log: log.append_batch("accounts", [NewRecord(b"x", key=b"k", partition=0),
                                              NewRecord(b"y", key=b"k", partition=1)],
                                 expected_versions={b"k": 0}),
], ids=["no key", "text key", "negative", "float", "bool", "text key in mapping",
        "None version", "not a mapping", "one key in two partitions"])
def test_bad_expected_versions_are_refused(acc: eventlog.Log, call: Any) -> None:
    with pytest.raises(eventlog.InvalidArgumentError):
        call(acc)
    assert acc.end_offsets("accounts") == {0: 0, 1: 0}


def test_read_key_and_key_version_check_their_arguments(acc: eventlog.Log) -> None:
    with pytest.raises(eventlog.InvalidRecordError):
        acc.key_version("accounts", "text")
    with pytest.raises(eventlog.InvalidRecordError):
        list(acc.read_key("accounts", "text"))
    for bad in (0, -1, 1.5, None):
        with pytest.raises(eventlog.InvalidArgumentError):
            list(acc.read_key("accounts", b"k", from_version=bad))
    with pytest.raises(eventlog.TopicNotFoundError):
        acc.key_version("nope", b"k")
    with pytest.raises(eventlog.TopicNotFoundError):
        list(acc.read_key("nope", b"k"))
    with pytest.raises(eventlog.PartitionNotFoundError):
        acc.key_version("accounts", b"k", partition=2)
    with pytest.raises(eventlog.PartitionNotFoundError):
        list(acc.read_key("accounts", b"k", partition=2))


# --- reading streams -------------------------------------------------------------------


@pytest.mark.timeout(10)  # a lookup that loops forever fails here, not after 5 minutes
@pytest.mark.parametrize("gaps", [[0, 0, 0], [1, 0, 2], [1, 1, 1], [3, 7, 1, 0, 5]],
                         ids=["dense", "mixed", "every other", "wide"])
def test_read_key_from_every_version_with_other_keys_between(acc: eventlog.Log,
                                                              gaps: list[int]) -> None:
    """The key's records are separated by ``gaps[i]`` records of another key; every
    ``from_version`` (and one past the end) gives exactly the records from that version."""
    stream = []
    for i, gap in enumerate([*gaps, 0]):
        acc.append("accounts", b"v%d" % (i + 1), key=b"k", partition=0)
        stream.append(b"v%d" % (i + 1))
        for _ in range(gap):
            acc.append("accounts", b"noise", key=b"other", partition=0)
    for version in range(1, len(stream) + 2):
        assert values(acc, b"k", partition=0, from_version=version) == stream[version - 1:]


@pytest.mark.timeout(20)
def test_read_key_pages_through_long_streams_among_other_keys(acc: eventlog.Log) -> None:
    records = []
    for i in range(2600):  # more than one page (1000 index entries) of read_key
        records.append(NewRecord(b"%d" % i, key=b"agg"))
        records.append(NewRecord(b"noise", key=b"noise-%d" % (i % 5)))
    acc.append_batch("accounts", records[:3001])
    acc.append_batch("accounts", records[3001:], expected_versions={b"agg": 1501})
    stream = list(acc.read_key("accounts", b"agg"))
    assert [r.value for r in stream] == [b"%d" % i for i in range(2600)]
    offsets = [r.offset for r in stream]
    assert offsets == sorted(offsets)
    assert len(set(offsets)) == 2600
    assert all(r.key == b"agg" for r in stream)
    assert acc.key_version("accounts", b"agg") == 2600
    for start in (1, 999, 1000, 1001, 2001, 2600):
        assert values(acc, b"agg", from_version=start) == \
            [b"%d" % i for i in range(start - 1, 2600)]
    assert values(acc, b"agg", from_version=2601) == []
    assert values(acc, b"agg", from_version=10**9) == []


def test_read_key_is_lazy_and_sees_records_appended_while_iterating(acc: eventlog.Log) -> None:
    acc.append_batch("accounts", [NewRecord(b"%d" % i, key=b"k") for i in range(1500)])
    stream = acc.read_key("accounts", b"k")
    first = next(stream)
    assert first.value == b"0"
    acc.append("accounts", b"late", key=b"k", expected_version=1500)
    rest = [r.value for r in stream]
    assert rest[:1499] == [b"%d" % i for i in range(1, 1500)]
    assert rest[1499:] in ([], [b"late"])


def test_a_key_in_an_explicit_partition_has_its_own_stream_there(acc: eventlog.Log) -> None:
    home = default_partition(b"k", 2)
    other = 1 - home
    acc.append("accounts", b"x1", key=b"k", partition=other, expected_version=0)
    acc.append("accounts", b"x2", key=b"k", partition=other, expected_version=1)
    assert acc.key_version("accounts", b"k", partition=other) == 2
    assert acc.key_version("accounts", b"k", partition=home) == 0
    # The key's home partition never saw it, so the default lookup finds the other one.
    assert acc.key_version("accounts", b"k") == 2
    assert values(acc, b"k") == [b"x1", b"x2"]
    acc.append("accounts", b"h1", key=b"k", partition=home, expected_version=0)
    assert values(acc, b"k", partition=home) == [b"h1"]
    assert values(acc, b"k", partition=other) == [b"x1", b"x2"]
    assert values(acc, b"k") == [b"h1"]  # now the home partition answers


def test_keys_too_long_to_index_raw_have_versions_too(acc: eventlog.Log) -> None:
    long_a, long_b = b"a" * 1000, b"a" * 999 + b"b"
    acc.append("accounts", b"1", key=long_a, expected_version=0)
    acc.append("accounts", b"2", key=long_a, expected_version=1)
    acc.append("accounts", b"x", key=long_b, expected_version=0)
    assert acc.key_version("accounts", long_a) == 2
    assert values(acc, long_a) == [b"1", b"2"]
    assert values(acc, long_b) == [b"x"]
    with pytest.raises(eventlog.ConcurrencyError):
        acc.append("accounts", b"3", key=long_a, expected_version=1)


# --- versions last ---------------------------------------------------------------------


def test_versions_survive_reopening(log_path: Path) -> None:
    with eventlog.open(log_path, durability="off") as log:
        log.create_topic("accounts", key_index=True)
        for v in range(4):
            log.append("accounts", b"%d" % v, key=b"k", expected_version=v)
    with eventlog.open(log_path, readonly=True) as log:
        assert log.key_version("accounts", b"k") == 4
        assert [r.value for r in log.read_key("accounts", b"k", from_version=3)] == [b"2", b"3"]
    with eventlog.open(log_path, durability="off") as log:
        with pytest.raises(eventlog.ConcurrencyError):
            log.append("accounts", b"x", key=b"k", expected_version=3)
        log.append("accounts", b"4", key=b"k", expected_version=4)
        assert log.key_version("accounts", b"k") == 5


def test_versions_survive_compaction_of_older_records(log_path: Path) -> None:
    with eventlog.open(log_path, durability="off") as log:
        log.create_topic("snap", cleanup_policy="compact", min_cleanable_dirty_ratio=0.99)
        for v in range(10):
            log.append("snap", b"state %d" % v, key=b"agg", expected_version=v)
            log.append("snap", b"noise %d" % v, key=b"noise")
        result = log.compact("snap")
        assert result[eventlog.TopicPartition("snap", 0)].records_removed == 18
        assert log.key_version("snap", b"agg") == 10
        kept = list(log.read_key("snap", b"agg"))
        assert [r.value for r in kept] == [b"state 9"]
        # The kept record is still version 10: from_version finds it by its version.
        assert [r.value for r in log.read_key("snap", b"agg", from_version=10)] == [b"state 9"]
        assert list(log.read_key("snap", b"agg", from_version=11)) == []
        with pytest.raises(eventlog.ConcurrencyError) as info:
            log.append("snap", b"stale", key=b"agg", expected_version=1)
        assert info.value.actual_version == 10
        log.append("snap", b"state 10", key=b"agg", expected_version=10)
        assert log.check()
    with eventlog.open(log_path, durability="off") as log:
        assert log.key_version("snap", b"agg") == 11
        assert log.key_version("snap", b"noise") == 10
        log.compact("snap")
        assert log.key_version("snap", b"agg") == 11
        assert [r.value for r in log.read_key("snap", b"agg", from_version=11)] == [b"state 10"]


def test_versions_survive_deletion_of_older_records(acc: eventlog.Log) -> None:
    for v in range(5):
        acc.append("accounts", b"%d" % v, key=b"k", partition=0, expected_version=v)
    acc.delete_records("accounts", 0, 3)
    assert acc.key_version("accounts", b"k", partition=0) == 5
    assert values(acc, b"k", partition=0) == [b"3", b"4"]
    assert values(acc, b"k", partition=0, from_version=5) == [b"4"]
    with pytest.raises(eventlog.ConcurrencyError):
        acc.append("accounts", b"x", key=b"k", partition=0, expected_version=2)
    acc.append("accounts", b"5", key=b"k", partition=0, expected_version=5)


# --- a model ---------------------------------------------------------------------------

KEYS = [b"a", b"b", b"c"]
# An operation: (kind, [(key index, version offset or None)]); "single" has one item. The
# version offset is added to the model's version (0: right; None: no expectation).
expectation = st.one_of(st.none(), st.just(0), st.just(0), st.sampled_from([-1, 1, 2]))
item = st.tuples(st.integers(0, len(KEYS) - 1), expectation)
operation = st.one_of(
    st.tuples(st.just("single"), st.lists(item, min_size=1, max_size=1)),
    st.tuples(st.just("batch"), st.lists(item, min_size=1, max_size=5)),
    st.tuples(st.just("tx"), st.lists(item, min_size=1, max_size=5)),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(operation, max_size=12))
def test_expected_versions_follow_a_model(operations: list[tuple[str, list[Any]]]) -> None:
    with tempfile.TemporaryDirectory() as tmp, \
            eventlog.open(Path(tmp) / "log", durability="off") as log:
        log.create_topic("m", 2, key_index=True)
        streams: dict[bytes, list[bytes]] = {k: [] for k in KEYS}
        for n, (kind, items) in enumerate(operations):
            # (key, value, expected version or None) per record. A batch's expectations
            # are versions before the batch (a second one for a key replaces the first); a
            # transaction's count what it appended before (each tx.append is checked then).
            planned: list[tuple[bytes, bytes, int | None]] = []
            running = {k: len(s) for k, s in streams.items()}
            for i, (k, off) in enumerate(items):
                key = KEYS[k]
                base = running[key] if kind == "tx" else len(streams[key])
                planned.append((key, b"%d.%d" % (n, i),
                                None if off is None else max(0, base + off)))
                running[key] += 1
            if kind == "batch":
                wanted = {key: v for key, _value, v in planned if v is not None}
                ok = all(len(streams[key]) == v for key, v in wanted.items())
            else:
                seen = {k: len(s) for k, s in streams.items()}
                ok = True
                for key, _value, v in planned:
                    ok = ok and (v is None or v == seen[key])
                    seen[key] += 1
            try:
                if kind == "single":
                    key, value, v = planned[0]
                    log.append("m", value, key=key, expected_version=v)
                elif kind == "batch":
                    log.append_batch("m", [NewRecord(value, key=key)
                                           for key, value, _v in planned],
                                     expected_versions=wanted)
                else:
                    with log.transaction() as tx:
                        for key, value, v in planned:
                            tx.append("m", value, key=key, expected_version=v)
            except eventlog.ConcurrencyError:
                assert not ok, (kind, planned)
            else:
                assert ok, (kind, planned)
                for key, value, _v in planned:
                    streams[key].append(value)
            for key in KEYS:
                assert log.key_version("m", key) == len(streams[key])
                assert [r.value for r in log.read_key("m", key)] == streams[key]


# --- contention ------------------------------------------------------------------------


def check_stream(log: eventlog.Log, topic: str, key: bytes, target: int,
                 results: dict[str, dict[str, Any]]) -> None:
    """Every version 1..target claimed by exactly one writer, whose event it is."""
    stream = list(log.read_key(topic, key))
    assert log.key_version(topic, key) == target
    assert len(stream) == target, f"{len(stream)} records for {target} versions"
    offsets = [r.offset for r in stream]
    assert offsets == sorted(set(offsets))
    parsed = [r.value.decode().split(":") for r in stream]
    assert [int(v) for _name, v, _way in parsed] == list(range(1, target + 1)), \
        "the stream has a gap or a duplicate"
    owner: dict[int, str] = {}
    for name, result in results.items():
        assert result["bad"] == [], result["bad"]
        for first, count, _way in result["claims"]:
            for version in range(first, first + count):
                assert version not in owner, f"version {version} won twice"
                owner[version] = name
    assert sorted(owner) == list(range(1, target + 1)), "a version nobody claims"
    for version, (name, _v, _way) in enumerate(parsed, start=1):
        assert name == owner[version], f"version {version} is {name}'s, claimed by {owner}"
    # The side records exist exactly for the winning transactions.
    side = sorted(r.value.decode() for r in log.scan(tx_contender.SIDE))
    tx_claims = sorted(f"{name}:{first}" for name, result in results.items()
                       for first, _count, way in result["claims"] if way == "tx")
    assert side == tx_claims


def run_threads(log: eventlog.Log, names: list[str], key: bytes, target: int,
                start: threading.Barrier | None = None) -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {}
    errors: list[BaseException] = []
    barrier = start or threading.Barrier(len(names))

    def run(name: str, seed: int) -> None:
        try:
            barrier.wait()
            results[name] = tx_contender.contend(log, "agg", key, name, target, seed)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(name, i)) for i, name in enumerate(names)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    return results


def test_many_threads_contending_for_one_aggregate_win_each_version_once(
        log: eventlog.Log) -> None:
    log.create_topic("agg", key_index=True)
    log.create_topic(tx_contender.SIDE)
    target = 300
    results = run_threads(log, [f"t{i}" for i in range(8)], b"aggregate-1", target)
    check_stream(log, "agg", b"aggregate-1", target, results)
    assert sum(r["conflicts"] for r in results.values()) > 0  # they really competed
    assert log.check()


def test_processes_and_threads_contending_for_one_aggregate_win_each_version_once(
        tmp_path: Path) -> None:
    logdir = tmp_path / "log"
    key = b"aggregate-\x00\xff"
    target = 600
    with eventlog.open(logdir, durability="off") as log:
        log.create_topic("agg", key_index=True)
        log.create_topic(tx_contender.SIDE)
        children = [tx_procs.Child(tmp_path, f"p{i}", HELPERS / "tx_contender.py", str(logdir),
                                   "agg", key.hex(), f"p{i}", str(target), str(100 + i))
                    for i in range(3)]
        try:
            for child in children:
                child.wait_for("R", "ready line")
            barrier = threading.Barrier(3)
            holder: dict[str, dict[str, Any]] = {}

            def threads() -> None:
                holder.update(run_threads(log, ["t0", "t1", "t2"], key, target, barrier))

            for child in children:
                child.go()
            runner = threading.Thread(target=threads)
            runner.start()
            runner.join()
            results = dict(holder)
            for child in children:
                assert child.wait(120) == 0, child.stderr()
                results[child.name] = json.loads(child.lines()[-1])
        finally:
            for child in children:
                child.kill()
        check_stream(log, "agg", key, target, results)
        winners = {name for name, r in results.items() if r["claims"]}
        assert any(name.startswith("p") for name in winners), "no process won a version"
        assert sum(r["conflicts"] for r in results.values()) > 0
        assert log.check()
