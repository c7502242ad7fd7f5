"""``check()``: a healthy log checks clean; white-box damage is reported, never raised.

Damage is made through the storage layer (a write transaction on ``log._storage.env``), as
a bug or a flipped bit on disk would leave it, and the check is run through
``eventlog._check.check_log`` (what ``Log.check()`` delegates to).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import eventlog
from eventlog._catalog import BATCH_KEY, TIME_KEY, PartitionState, state_key
from eventlog._check import CheckReport, Problem, check_log
from eventlog._groups import offset_key, pack_offset
from eventlog._records import NewRecord, TopicPartition

T0 = 1_700_000_000_000
HOUR = 3_600_000


@pytest.fixture
def log(tmp_path: Path) -> Iterator[eventlog.Log]:
    with eventlog.open(tmp_path / "log", durability="off") as lg:
        yield lg


def populate(log: eventlog.Log) -> None:
    """Several topics and partitions, retention and delete_records having run, groups."""
    log.create_topic("orders", partitions=3, retention_ms=-1)
    for i in range(60):
        log.append("orders", b"v%d" % i, key=b"k%d" % (i % 7), timestamp=T0 + i)
    log.append_batch(
        "orders",
        [
            NewRecord(b"x" * 50, key=b"a", partition=1, timestamp=T0 + 100,
                      headers=[("h", b"1"), ("n", None)]),
            NewRecord(None, key=b"b", partition=1, timestamp=T0 + 90),  # tombstone, late ts
            NewRecord(b"y", partition=2, timestamp=T0 + 101),
        ],
    )
    log.append_columns("orders", [b"c%d" % i for i in range(500)], partition=0, timestamp=T0)
    # Time retention: old batches go, the rest stay.
    log.create_topic("events", partitions=2, retention_ms=-1)
    for i in range(20):
        log.append("events", b"old", partition=i % 2, timestamp=T0 - 10 * HOUR + i)
    for i in range(10):
        log.append("events", b"new", partition=i % 2, timestamp=T0 + i)
    log.alter_topic("events", retention_ms=HOUR)
    assert log.run_retention(now_ms=T0)
    # Byte retention, run from the append path.
    log.create_topic("small", retention_bytes=200, retention_ms=-1)
    for i in range(40):
        log.append("small", b"z" * 40, timestamp=T0 + i)
    # delete_records: the log start moves into a batch, and onto a batch boundary.
    log.delete_records("orders", 0, 30)
    log.delete_records("orders", 2, log.end_offsets("orders")[2])
    # A compacted topic, a deleted topic, an empty topic.
    log.create_topic("profiles", cleanup_policy="compact")
    for i in range(10):
        log.append("profiles", b"p%d" % i, key=b"k%d" % (i % 3))
    log.create_topic("gone", partitions=2)
    log.append("gone", b"bye")
    log.delete_topic("gone")
    log.create_topic("empty", partitions=2)
    log.commit_offsets("g1", {TopicPartition("orders", 0): 40, TopicPartition("events", 1): 5})
    log.commit_offsets("g2", {TopicPartition("small", 0): 1})


def batch_keys(log: eventlog.Log, topic: str, partition: int) -> list[bytes]:
    tid = log.describe_topic(topic).topic_id

    def read(txn: Any) -> list[bytes]:
        out = []
        cur = txn.cursor(db=log._dbs[b"batches"])
        on = cur.set_range(BATCH_KEY.pack(tid, partition, 0))
        while on:
            t, p, base = BATCH_KEY.unpack(cur.key())
            if (t, p) != (tid, partition) or base == (1 << 64) - 1:
                break
            out.append(bytes(cur.key()))
            on = cur.next()
        return out

    return log._storage.read(read)


def write(log: eventlog.Log, fn: Any) -> None:
    with log._storage.env.begin(write=True) as txn:
        fn(txn, log._dbs)


def kinds(report: CheckReport) -> set[tuple[str, str | None, int | None, str]]:
    return {(p.kind, p.topic, p.partition, p.offset) for p in report.problems}  # type: ignore[misc]


def test_healthy_log_checks_clean(log: eventlog.Log) -> None:
    populate(log)
    report = check_log(log)
    assert report.problems == (), str(report)
    assert report.ok
    assert bool(report)
    assert report.topics == 5  # orders, events, small, profiles, empty
    assert report.partitions == 3 + 2 + 1 + 1 + 2
    stored = sum(len(batch_keys(log, t, p.partition))
                 for t in log.list_topics() for p in log.describe_topic(t).partitions)
    assert report.batches == stored
    described = sum(p.batches for t in log.list_topics() for p in log.describe_topic(t).partitions)
    assert report.batches == described
    assert report.records >= 60 + 3 + 500 - 30  # delete_records may leave a straddling batch
    assert report.groups == 3
    assert str(report).startswith("OK")


def test_empty_log_checks_clean(log: eventlog.Log) -> None:
    report = check_log(log)
    assert report
    assert report.problems == ()
    assert report.topics == report.batches == 0


def test_check_is_a_log_method(log: eventlog.Log) -> None:
    log.create_topic("t")
    log.append("t", b"v")
    report = log.check()  # type: ignore[attr-defined]
    assert isinstance(report, CheckReport)
    assert report
    assert report.batches == 1


def test_closed_log_raises(tmp_path: Path) -> None:
    lg = eventlog.open(tmp_path / "log")
    lg.close()
    with pytest.raises(eventlog.LogClosedError):
        check_log(lg)


def test_flipped_byte_is_a_crc_problem(log: eventlog.Log) -> None:
    log.create_topic("t", partitions=2)
    for i in range(5):
        log.append("t", b"value %d" % i, partition=1)
    key = batch_keys(log, "t", 1)[2]

    def flip(txn: Any, dbs: Any) -> None:
        value = bytearray(txn.get(key, db=dbs[b"batches"]))
        value[-1] ^= 0x40
        txn.put(key, bytes(value), db=dbs[b"batches"])

    write(log, flip)
    report = check_log(log)
    assert not report
    crc = [p for p in report.problems if p.kind == "crc"]
    assert [(p.topic, p.partition, p.offset) for p in crc] == [("t", 1, 2)]
    assert "checksum" in crc[0].message
    # The size of the damaged batch is unknown, so no state problem is claimed; the
    # continuity of later batches is still followed through the header.
    assert {p.kind for p in report.problems} == {"crc"}
    assert report.batches == 5
    assert report.records == 4


def test_deleted_middle_batch_is_a_continuity_problem(log: eventlog.Log) -> None:
    log.create_topic("t")
    for i in range(5):
        log.append("t", b"v%d" % i)
    key = batch_keys(log, "t", 0)[2]
    write(log, lambda txn, dbs: txn.delete(key, db=dbs[b"batches"]))
    report = check_log(log)
    assert ("continuity", "t", 0, 3) in kinds(report)
    assert any(p.kind == "state" and "batches" in p.message for p in report.problems)


def test_deleted_last_batch_is_an_end_offset_problem(log: eventlog.Log) -> None:
    log.create_topic("t")
    for i in range(3):
        log.append("t", b"v%d" % i)
    key = batch_keys(log, "t", 0)[-1]
    write(log, lambda txn, dbs: txn.delete(key, db=dbs[b"batches"]))
    report = check_log(log)
    assert any(p.kind == "continuity" and "end offset" in p.message for p in report.problems)


def test_corrupt_state_counts_are_state_problems(log: eventlog.Log) -> None:
    log.create_topic("t", partitions=2)
    for i in range(4):
        log.append("t", b"v%d" % i, partition=0)
    tid = log.describe_topic("t").topic_id

    def damage(txn: Any, dbs: Any) -> None:
        state = PartitionState.unpack(txn.get(state_key(tid, 0), db=dbs[b"batches"]))
        state.batches += 3
        state.size_bytes += 1
        txn.put(state_key(tid, 0), state.pack(), db=dbs[b"batches"])
        txn.put(state_key(tid, 1), b"short", db=dbs[b"batches"])

    write(log, damage)
    report = check_log(log)
    state = [p for p in report.problems if p.kind == "state"]
    messages = " | ".join(p.message for p in state)
    assert "7 batches" in messages
    assert "bytes" in messages
    assert "unreadable" in messages
    assert {(p.topic, p.partition) for p in state} == {("t", 0), ("t", 1)}


def test_missing_state_record(log: eventlog.Log) -> None:
    log.create_topic("t")
    tid = log.describe_topic("t").topic_id
    write(log, lambda txn, dbs: txn.delete(state_key(tid, 0), db=dbs[b"batches"]))
    report = check_log(log)
    assert [(p.kind, p.topic, p.partition) for p in report.problems] == [("state", "t", 0)]
    assert "no state record" in report.problems[0].message


def test_time_index_entry_pointing_nowhere(log: eventlog.Log) -> None:
    log.create_topic("t")
    for i in range(3):
        log.append("t", b"v", timestamp=T0 + i)
    tid = log.describe_topic("t").topic_id
    write(log, lambda txn, dbs: txn.put(TIME_KEY.pack(tid, 0, T0 + 50, 1_000), b"",
                                        db=dbs[b"timeindex"]))
    report = check_log(log)
    assert kinds(report) == {("index", "t", 0, 1_000)}


def test_time_index_out_of_order_and_below_batch_timestamp(log: eventlog.Log) -> None:
    log.create_topic("t")
    for i in range(3):
        log.append("t", b"v", timestamp=T0 + i)
    tid = log.describe_topic("t").topic_id

    def damage(txn: Any, dbs: Any) -> None:
        # Batch 2's entry with a running max below batch 2's own timestamp, and sorting
        # before the entry of batch 0 (written for the first batch, timestamp T0).
        txn.put(TIME_KEY.pack(tid, 0, T0 - 5, 2), b"", db=dbs[b"timeindex"])

    write(log, damage)
    report = check_log(log)
    index = [p for p in report.problems if p.kind == "index"]
    assert any("below its batch" in p.message for p in index)
    assert any("out of order" in p.message for p in index)


def test_orphans_of_deleted_topics_and_groups(log: eventlog.Log) -> None:
    log.create_topic("t")
    log.append("t", b"v")
    tid = log.describe_topic("t").topic_id
    stray = BATCH_KEY.pack(tid + 100, 0, 0)
    (key,) = batch_keys(log, "t", 0)

    def damage(txn: Any, dbs: Any) -> None:
        txn.put(stray, txn.get(key, db=dbs[b"batches"]), db=dbs[b"batches"])
        txn.put(BATCH_KEY.pack(tid, 5, 0), b"x", db=dbs[b"batches"])  # partition 5 of 1
        txn.put(TIME_KEY.pack(tid + 100, 0, 0, 0), b"", db=dbs[b"timeindex"])
        txn.put(offset_key("grp", tid + 100, 0), pack_offset(3, "", T0), db=dbs[b"groups"])
        txn.put(offset_key("grp", tid, 0), b"bad", db=dbs[b"groups"])

    write(log, damage)
    report = check_log(log)
    orphans = [p for p in report.problems if p.kind == "orphan"]
    assert len(orphans) == 3
    assert ("orphan", "t", 5, None) in kinds(report)
    groups = [p for p in report.problems if p.kind == "group"]
    assert len(groups) == 2
    assert any("does not exist" in p.message and p.offset == 3 for p in groups)
    assert any("unreadable" in p.message for p in groups)
    assert all("grp" in p.message for p in groups)


def test_several_kinds_of_damage_are_all_reported(log: eventlog.Log) -> None:
    populate(log)
    tid = log.describe_topic("orders").topic_id
    k1 = batch_keys(log, "orders", 1)
    k0 = batch_keys(log, "events", 0)

    def damage(txn: Any, dbs: Any) -> None:
        bdb = dbs[b"batches"]
        value = bytearray(txn.get(k1[3], db=bdb))
        value[40] ^= 0xFF
        txn.put(k1[3], bytes(value), db=bdb)
        value = bytearray(txn.get(k1[7], db=bdb))
        value[-2] ^= 0x01
        txn.put(k1[7], bytes(value), db=bdb)
        txn.delete(k0[2], db=bdb)
        txn.put(TIME_KEY.pack(tid, 2, T0 + 10**6, 10**6), b"", db=dbs[b"timeindex"])
        txn.put(state_key(tid, 0)[:-1], b"junk", db=bdb)  # a key of the wrong size

    write(log, damage)
    report = check_log(log)
    found = kinds(report)
    _, _, base3 = BATCH_KEY.unpack(k1[3])
    _, _, base7 = BATCH_KEY.unpack(k1[7])
    assert ("crc", "orders", 1, base3) in found
    assert ("crc", "orders", 1, base7) in found
    assert any(k == "continuity" and t == "events" and p == 0 for k, t, p, _ in found)
    assert ("index", "orders", 2, 10**6) in found
    assert any(p.kind == "orphan" and "wrong size" in p.message for p in report.problems)
    assert not report
    assert len(report.problems) >= 5
    text = str(report)
    assert text.startswith("PROBLEMS FOUND")
    assert text.count("\n") == len(report.problems)
    assert f"topic 'orders' partition 1 offset {base3}" in text
    # The rest of the log still checks: other topics have no problems.
    assert {p.topic for p in report.problems} <= {"orders", "events", None}


@pytest.mark.parametrize("cut", [0, 1, 10, 35, 36])
def test_truncated_or_garbage_batches_never_raise(log: eventlog.Log, cut: int) -> None:
    log.create_topic("t")
    for i in range(4):
        log.append("t", b"value %d" % i, key=b"k")
    key = batch_keys(log, "t", 0)[1]

    def damage(txn: Any, dbs: Any) -> None:
        value = txn.get(key, db=dbs[b"batches"])
        txn.put(key, bytes(value)[:cut] if cut < 36 else b"\xff" * 60, db=dbs[b"batches"])

    write(log, damage)
    report = check_log(log)
    assert not report
    assert ("crc", "t", 0, 1) in kinds(report)
    assert report.batches == 4


def test_problem_and_report_are_frozen_values(log: eventlog.Log) -> None:
    problem = Problem("t", 0, 3, "crc", "bad")
    assert str(problem) == "[crc] topic 't' partition 0 offset 3: bad"
    assert str(Problem(None, None, None, "orphan", "x")) == "[orphan] x"
    report = check_log(log)
    with pytest.raises(AttributeError):
        report.ok = False  # type: ignore[misc]


def test_unreadable_topic_definition_is_reported(log: eventlog.Log) -> None:
    log.create_topic("t")
    log.append("t", b"v")
    log.create_topic("u")
    write(log, lambda txn, dbs: txn.put(b"t", b"{not json", db=dbs[b"topics"]))
    report = check_log(log)
    assert ("topic", "t", None, None) in kinds(report)
    # Its batches now belong to no readable topic; the other topic checks clean.
    assert any(p.kind == "orphan" for p in report.problems)
    assert all(p.topic != "u" for p in report.problems)


def test_every_byte_flipped_in_turn_is_reported_never_raised(log: eventlog.Log) -> None:
    log.create_topic("t")
    log.append_batch("t", [NewRecord(b"value %d" % i, key=b"k", headers=[("h", b"x")])
                           for i in range(3)])
    log.append("t", b"after")
    key = batch_keys(log, "t", 0)[0]
    original = log._storage.read(lambda txn: bytes(txn.get(key, db=log._dbs[b"batches"])))
    for position in range(len(original)):
        damaged = bytearray(original)
        damaged[position] ^= 0x10
        write(log, lambda txn, dbs, d=bytes(damaged): txn.put(key, d, db=dbs[b"batches"]))
        report = check_log(log)
        assert ("crc", "t", 0, 0) in kinds(report), position
    write(log, lambda txn, dbs: txn.put(key, original, db=dbs[b"batches"]))
    assert check_log(log)


def test_check_while_appending_reports_nothing(log: eventlog.Log) -> None:
    import threading

    log.create_topic("t", partitions=4, retention_bytes=2_000, retention_ms=-1)
    stop = threading.Event()

    def produce() -> None:
        i = 0
        while not stop.is_set():
            log.append("t", b"x" * 30, partition=i % 4)
            i += 1

    thread = threading.Thread(target=produce)
    thread.start()
    try:
        reports = [check_log(log) for _ in range(20)]
    finally:
        stop.set()
        thread.join()
    assert all(r.problems == () for r in reports), [str(r) for r in reports if not r]
    assert check_log(log)


def test_check_reports_its_progress_per_partition(log: eventlog.Log) -> None:
    """progress(done, total) once before the first partition and after each one."""
    log.create_topic("a", 3)
    log.create_topic("b", 2)
    log.append("a", b"x", partition=1)
    calls: list[tuple[int, int]] = []
    report = log.check(progress=lambda done, total: calls.append((done, total)))
    assert report
    assert calls == [(i, 5) for i in range(6)]
    with pytest.raises(eventlog.InvalidArgumentError, match="progress"):
        log.check(progress="yes")  # type: ignore[arg-type]
