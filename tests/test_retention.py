"""Retention (cleanup.policy delete) and delete_records.

Time is never slept through: records carry explicit timestamps in the past, run_retention()
takes ``now_ms``, and the automatic path's clock (``eventlog._retention.now_ms``) is replaced
where a test needs time to pass.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

import eventlog
import eventlog._retention as retention
from eventlog import NewRecord, TopicPartition
from eventlog._catalog import BATCH_KEY, TIME_KEY
from eventlog._errors import (
    CorruptLogError,
    InvalidArgumentError,
    OffsetOutOfRangeError,
    PartitionNotFoundError,
    ReadOnlyLogError,
    TopicNotFoundError,
)

HOUR = 3_600_000
T0 = 1_700_000_000_000  # a fixed "now" for run_retention(now_ms=...)
TP = TopicPartition


def part(log: eventlog.Log, topic: str, partition: int = 0) -> eventlog.PartitionInfo:
    return log.describe_topic(topic).partitions[partition]


def span(log: eventlog.Log, topic: str, partition: int = 0) -> tuple[int, int, int, int]:
    """(log start offset, end offset, size in bytes, batch count) of a partition."""
    info = part(log, topic, partition)
    return info.log_start_offset, info.end_offset, info.size_bytes, info.batches


def batch(log: eventlog.Log, topic: str, stamps: list[int], partition: int = 0,
          value: bytes = b"v") -> range:
    """Append one batch (one record per timestamp); return its offsets."""
    metas = log.append_batch(topic, [NewRecord(value, partition=partition, timestamp=ts)
                                     for ts in stamps])
    return range(metas[0].offset, metas[-1].offset + 1)


def offsets(log: eventlog.Log, topic: str, partition: int = 0) -> list[int]:
    return [r.offset for r in log.scan(topic, partition)]


def time_index(log: eventlog.Log, topic: str) -> list[tuple[int, int, int]]:
    """(partition, running max timestamp, base offset) of the topic's time-index entries."""
    topic_id = log.describe_topic(topic).topic_id
    db = log._storage.dbs[b"timeindex"]

    def entries(txn: Any) -> list[tuple[int, int, int]]:
        out = []
        for key in txn.cursor(db=db).iternext(values=False):
            t, p, ts, base = TIME_KEY.unpack(bytes(key))
            if t == topic_id:
                out.append((p, ts, base))
        return out

    return log._storage.read(entries)


def stored_bases(log: eventlog.Log, topic: str, partition: int = 0) -> list[int]:
    """The base offsets of the batches stored for a partition (white box)."""
    topic_id = log.describe_topic(topic).topic_id
    db = log._storage.dbs[b"batches"]

    def bases(txn: Any) -> list[int]:
        out = []
        for key in txn.cursor(db=db).iternext(values=False):
            t, p, base = BATCH_KEY.unpack(bytes(key))
            if (t, p) == (topic_id, partition) and base != (1 << 64) - 1:
                out.append(base)
        return out

    return log._storage.read(bases)


@pytest.fixture
def fast_checks() -> Iterator[None]:
    """Time retention looked at on every append (not at most once a second)."""
    with mock.patch.object(retention, "CHECK_INTERVAL", 0.0):
        yield


# --- retention.ms ------------------------------------------------------------------------


def test_retention_ms_deletes_batches_whose_largest_timestamp_is_old(log: eventlog.Log) -> None:
    log.create_topic("t", retention_ms=-1)
    first = batch(log, "t", [T0 - 5 * HOUR, T0 - 4 * HOUR])
    second = batch(log, "t", [T0 - 3 * HOUR])
    mixed = batch(log, "t", [T0 - 9 * HOUR, T0 - 1 * HOUR])  # one old record, one recent
    last = batch(log, "t", [T0 - 3 * HOUR])  # old, but behind a batch that is kept
    log.alter_topic("t", retention_ms=2 * HOUR)
    result = log.run_retention(now_ms=T0)
    assert result == {TP("t", 0): retention.RetentionResult(batches=2, records=3, bytes=3,
                                                            log_start_offset=mixed.start)}
    assert log.beginning_offsets("t") == {0: mixed.start}
    assert offsets(log, "t") == [*mixed, *last]
    info = part(log, "t")
    assert (info.batches, info.size_bytes, info.end_offset) == (2, 3, last.stop)
    with pytest.raises(OffsetOutOfRangeError, match="below the log start offset"):
        log.read("t", 0, second.start)
    assert log.run_retention(now_ms=T0) == {}  # nothing more is due
    assert first.start == 0


def test_retention_ms_is_judged_against_now(log: eventlog.Log) -> None:
    log.create_topic("t", retention_ms=-1)
    batch(log, "t", [T0 - 2 * HOUR])
    batch(log, "t", [T0])
    log.alter_topic("t", retention_ms=HOUR)
    assert log.run_retention(now_ms=T0 - HOUR) == {}  # exactly at the limit: kept
    assert log.run_retention(now_ms=T0 - HOUR + 1)[TP("t", 0)].batches == 1
    assert log.run_retention(now_ms=T0 + HOUR + 1)[TP("t", 0)].log_start_offset == 2
    # Time retention may empty a partition: there is no active segment to keep.
    assert span(log, "t") == (2, 2, 0, 0)


def test_a_future_timestamp_holds_back_later_batches(log: eventlog.Log) -> None:
    """Oldest first, as in Kafka: a batch not yet due stops retention there."""
    log.create_topic("t", retention_ms=-1)
    batch(log, "t", [T0 + 24 * HOUR])
    batch(log, "t", [T0 - 24 * HOUR])
    log.alter_topic("t", retention_ms=HOUR)
    assert log.run_retention(now_ms=T0) == {}
    assert log.run_retention(now_ms=T0 + 26 * HOUR)[TP("t", 0)].batches == 2


def test_unlimited_retention_keeps_everything(log: eventlog.Log) -> None:
    log.create_topic("t", retention_ms=-1, retention_bytes=-1)
    for i in range(20):
        batch(log, "t", [i], value=b"x" * 1000)
    assert log.run_retention(now_ms=T0) == {}
    assert offsets(log, "t") == list(range(20))
    assert part(log, "t").size_bytes == 20_000


def test_default_retention_is_seven_days(log: eventlog.Log) -> None:
    log.create_topic("t", retention_ms=-1)
    batch(log, "t", [T0 - 7 * 24 * HOUR - 1])
    batch(log, "t", [T0 - 7 * 24 * HOUR])
    log.alter_topic("t", retention_ms=None)  # back to the default
    assert log.topic_config("t").retention_ms == 7 * 24 * HOUR
    assert log.run_retention(now_ms=T0)[TP("t", 0)].batches == 1
    assert offsets(log, "t") == [1]


def test_log_append_time_topics_use_the_append_time(log: eventlog.Log) -> None:
    log.create_topic("t", message_timestamp_type="LogAppendTime", retention_ms=HOUR)
    batch(log, "t", [0, 1])  # the given timestamps are replaced by now
    now = retention.now_ms()
    assert log.run_retention(now_ms=now) == {}
    assert log.run_retention(now_ms=now + 2 * HOUR)[TP("t", 0)].records == 2


# --- retention.bytes ---------------------------------------------------------------------


def test_retention_bytes_keeps_the_partition_within_the_budget(log: eventlog.Log) -> None:
    log.create_topic("t", 2, retention_bytes=-1, retention_ms=-1)
    sizes = [100, 300, 50, 700, 200, 250, 10, 400]
    for p in range(2):
        for n in sizes:
            batch(log, "t", [T0], partition=p, value=b"x" * n)
    log.alter_topic("t", retention_bytes=1000)
    result = log.run_retention(now_ms=T0)
    # Oldest first, and no more than needed: 100+300+50+700 go (2010 -> 860 <= 1000),
    # while keeping the 700 would have left 1560.
    for p in range(2):
        assert result[TP("t", p)] == retention.RetentionResult(4, 4, 1150, 4)
        info = part(log, "t", p)
        assert (info.size_bytes, info.batches, info.log_start_offset) == (860, 4, 4)
    assert log.run_retention(now_ms=T0) == {}


def test_retention_bytes_never_removes_the_last_batch(log: eventlog.Log) -> None:
    log.create_topic("t", retention_bytes=10, retention_ms=-1)
    batch(log, "t", [T0], value=b"x" * 100)
    batch(log, "t", [T0], value=b"y" * 100)
    # The append itself already applied the budget: the older batch went.
    info = part(log, "t")
    assert (info.log_start_offset, info.batches, info.size_bytes) == (1, 1, 100)
    assert [r.value for r in log.read("t", 0, 1)] == [b"y" * 100]
    assert log.run_retention() == {}


def test_retention_bytes_counts_keys_values_and_headers(log: eventlog.Log) -> None:
    """The size retention subtracts is exactly what the append added."""
    log.create_topic("t", retention_ms=-1)
    records = [
        NewRecord(b"value", key=b"key", headers=[("h", b"12"), ("ü", None)]),
        NewRecord(None, key=b"k2"),
        NewRecord(b"", headers=[]),
    ]
    log.append_batch("t", records)
    after_first = part(log, "t").size_bytes
    assert after_first == 8 + 2 + (6 + 1 + 2) + (6 + 2)
    log.append("t", b"abc", key=b"k")
    log.append_columns("t", [b"x" * 700, b"y" * 900], keys=[b"a", b"b"])
    log.delete_records("t", 0, 3)  # the first batch, whole
    assert part(log, "t").size_bytes == 4 + 1602
    log.delete_records("t", 0, 4)
    assert part(log, "t").size_bytes == 1602


def test_compact_only_topics_are_untouched(log: eventlog.Log) -> None:
    log.create_topic("c", cleanup_policy="compact", retention_ms=1, retention_bytes=1)
    log.create_topic("cd", cleanup_policy="compact,delete", retention_ms=1, retention_bytes=-1)
    for topic in ("c", "cd"):
        for i in range(5):
            log.append(topic, b"v" * 50, key=b"k%d" % i, timestamp=i)
    assert offsets(log, "c") == [0, 1, 2, 3, 4]
    assert set(log.run_retention(now_ms=T0)) <= {TP("cd", 0)}
    assert offsets(log, "c") == [0, 1, 2, 3, 4]
    assert part(log, "c").size_bytes == 5 * 52
    assert offsets(log, "cd") == []  # compact,delete: retention applies
    assert log.beginning_offsets("cd") == {0: 5}


# --- automatic retention -----------------------------------------------------------------


def test_appends_apply_retention_without_any_call(log: eventlog.Log) -> None:
    log.create_topic("t", retention_ms=HOUR)
    old = retention.now_ms() - 2 * HOUR
    meta = log.append("t", b"old", timestamp=old)
    assert meta.offset == 0
    # Already gone: the append's own transaction removed it (no active segment).
    assert log.beginning_offsets("t") == {0: 1}
    assert span(log, "t") == (1, 1, 0, 0)
    log.append("t", b"new")
    assert [r.value for r in log.read("t", 0, 1)] == [b"new"]


def test_byte_retention_on_append_for_every_write_path(log: eventlog.Log) -> None:
    log.create_topic("t", 3, retention_bytes=1000, retention_ms=-1)
    for i in range(30):
        log.append("t", b"x" * 100, partition=i % 3)
        log.append_batch("t", [NewRecord(b"y" * 100, partition=p) for p in range(3)])
        log.append_columns("t", [b"z" * 100] * 2, partition=i % 3)
    for info in log.describe_topic("t").partitions:
        assert info.size_bytes <= 1000
        assert info.size_bytes + 200 > 1000  # no more than needed went
        assert info.log_start_offset > 0


def test_automatic_retention_is_bounded_per_append(log: eventlog.Log, fast_checks: None) -> None:
    backlog = 5 * retention.AUTO_BATCHES + 3
    log.create_topic("t", retention_ms=-1)
    old = retention.now_ms() - 2 * HOUR
    for i in range(backlog):
        batch(log, "t", [old + i])
    log.alter_topic("t", retention_ms=HOUR)
    log.append("t", b"now")
    assert part(log, "t").batches == backlog + 1 - retention.AUTO_BATCHES
    appends = 1
    while part(log, "t").log_start_offset < backlog:
        log.append("t", b"now")
        appends += 1
        assert appends <= 6
    assert appends == 6
    assert part(log, "t").batches == appends
    assert stored_bases(log, "t") == list(range(backlog, backlog + appends))


def test_time_checks_on_append_are_rate_limited(log: eventlog.Log) -> None:
    """On the append path, time retention looks at the oldest batch at most once per
    CHECK_INTERVAL per partition, so the single-append path stays cheap."""
    log.create_topic("t")
    calls = []
    real = retention.verified_header

    def counting(*args: Any) -> Any:
        calls.append(1)
        return real(*args)

    with mock.patch.object(retention, "CHECK_INTERVAL", 3600.0), \
            mock.patch.object(retention, "verified_header", counting):
        for _ in range(500):
            log.append("t", b"x")
    assert len(calls) == 1
    assert part(log, "t").end_offset == 500


def test_the_retention_clock_can_be_replaced(log: eventlog.Log, fast_checks: None) -> None:
    log.create_topic("t", retention_ms=HOUR)
    for _ in range(3):
        log.append("t", b"x")
    now = retention.now_ms()
    with mock.patch.object(retention, "now_ms", return_value=now + 2 * HOUR):
        log.append("t", b"y", timestamp=now + 2 * HOUR)
    assert [r.value for r in log.scan("t")] == [b"y"]


def test_run_retention_completes_in_bounded_transactions(log: eventlog.Log) -> None:
    log.create_topic("a", retention_ms=-1)
    log.create_topic("b", 2, retention_ms=-1)
    for i in range(50):
        batch(log, "a", [i, i])
        batch(log, "b", [i], partition=i % 2)
    log.alter_topic("a", retention_ms=HOUR)
    log.alter_topic("b", retention_ms=HOUR)
    writes = []
    real_write = log._storage.write

    def counting(fn: Any, what: str = "", **options: Any) -> Any:
        writes.append(what)
        return real_write(fn, what, **options)

    with mock.patch.object(retention, "EXPLICIT_BATCHES", 8), \
            mock.patch.object(log._storage, "write", counting):
        result = log.run_retention(now_ms=T0)
    assert result == {
        TP("a", 0): retention.RetentionResult(50, 100, 100, 100),
        TP("b", 0): retention.RetentionResult(25, 25, 25, 25),
        TP("b", 1): retention.RetentionResult(25, 25, 25, 25),
    }
    assert len(writes) >= 7 + 4 + 4  # 8 batches per transaction at most
    assert log.run_retention("a", now_ms=T0) == {}
    for topic in ("a", "b"):
        assert all(p.batches == p.size_bytes == 0 for p in log.describe_topic(topic).partitions)
        assert time_index(log, topic) == []


def test_run_retention_bad_input(log: eventlog.Log) -> None:
    log.create_topic("t")
    with pytest.raises(TopicNotFoundError):
        log.run_retention("nope")
    with pytest.raises(eventlog.InvalidTopicNameError):
        log.run_retention("bad name")
    for bad in (-1, 1.5, "1", True):
        with pytest.raises(InvalidArgumentError, match="now_ms"):
            log.run_retention(now_ms=bad)  # type: ignore[arg-type]


def test_run_retention_skips_a_damaged_batch_and_says_how_to_drop_it(log: eventlog.Log) -> None:
    log.create_topic("t", 2, retention_ms=-1)
    for p in range(2):
        for i in range(3):
            batch(log, "t", [i, i], partition=p)
    topic_id = log.describe_topic("t").topic_id
    db = log._storage.dbs[b"batches"]
    key = BATCH_KEY.pack(topic_id, 0, 2)

    def damage(txn: Any) -> None:
        value = bytearray(txn.get(key, db=db))
        value[-1] ^= 0xFF
        txn.put(key, bytes(value), db=db)

    log._storage.write(damage)
    log.alter_topic("t", retention_ms=HOUR)
    with pytest.raises(CorruptLogError, match=r"delete_records\('t', 0, 4\)") as info:
        log.run_retention(now_ms=T0)
    assert (info.value.topic, info.value.partition, info.value.offset) == ("t", 0, 2)
    # What came before the damage went; the other partition was done entirely.
    assert log.beginning_offsets("t") == {0: 2, 1: 6}
    # Appends never fail because of it.
    log.append("t", b"x", partition=0, timestamp=0)
    # delete_records gets past the damage, and retention carries on.
    assert log.delete_records("t", 0, 4) == 4
    assert stored_bases(log, "t") == [4, 6]  # the damaged batch is gone
    assert part(log, "t").batches == 2
    assert log.run_retention(now_ms=T0)[TP("t", 0)].batches == 2
    assert span(log, "t") == (7, 7, 0, 0)


# --- delete_records ----------------------------------------------------------------------


def test_delete_records_inside_a_batch(log: eventlog.Log) -> None:
    log.create_topic("t", retention_ms=-1)
    stamps = [50, 10, 40, 20, 30, 60]
    batch(log, "t", stamps)  # offsets 0..5, timestamps out of order
    batch(log, "t", [70, 80])  # offsets 6, 7
    assert log.delete_records("t", 0, 3) == 3
    assert log.beginning_offsets("t") == {0: 3}
    assert log.end_offsets("t") == {0: 8}
    info = part(log, "t")
    assert (info.log_start_offset, info.batches) == (3, 2)  # the first batch stays stored
    with pytest.raises(OffsetOutOfRangeError):
        log.read("t", 0, 2)
    assert [r.offset for r in log.read("t", 0, 3)] == [3, 4, 5, 6, 7]
    assert [r.timestamp for r in log.read("t", 0, 3, max_records=2)] == [20, 30]
    assert log.read_columns("t", 0, 3).offsets == [3, 4, 5, 6, 7]
    assert offsets(log, "t") == [3, 4, 5, 6, 7]
    assert [r.offset for r in log.scan("t", start_offset=1)] == [3, 4, 5, 6, 7]
    # offsets_for_times only considers records from the log start on.
    assert log.offsets_for_times("t", 0) == {0: 3}
    assert log.offsets_for_times("t", 25) == {0: 4}
    assert log.offsets_for_times("t", 45) == {0: 5}  # offsets 0 and 2 (50, 40) are gone
    assert log.offsets_for_times("t", 65) == {0: 6}
    assert log.offsets_for_times("t", 81) == {0: None}
    assert [r.offset for r in log.scan("t", start_timestamp=45)] == [5, 6, 7]


def test_offsets_for_times_when_only_deleted_records_match_in_the_start_batch(
    log: eventlog.Log,
) -> None:
    log.create_topic("t", retention_ms=-1)
    batch(log, "t", [100, 1, 2])
    log.delete_records("t", 0, 1)
    assert log.offsets_for_times("t", 50) == {0: None}
    batch(log, "t", [5, 200])
    assert log.offsets_for_times("t", 50) == {0: 4}


def test_delete_records_removes_whole_batches_and_their_index_entries(
    log: eventlog.Log,
) -> None:
    log.create_topic("t", retention_ms=-1)
    with mock.patch("eventlog._write.TIME_INDEX_INTERVAL", 1):  # an entry per batch
        for i in range(10):
            batch(log, "t", [i * 10, i * 10 + 1])
    assert [base for _p, _ts, base in time_index(log, "t")] == list(range(0, 20, 2))
    assert log.delete_records("t", 0, 9) == 9
    assert stored_bases(log, "t") == list(range(8, 20, 2))
    assert [base for _p, _ts, base in time_index(log, "t")] == list(range(8, 20, 2))
    info = part(log, "t")
    assert (info.batches, info.size_bytes) == (6, 12)
    for t in range(0, 100, 7):
        want = next((o for o in range(9, 20) if (o // 2) * 10 + o % 2 >= t), None)
        assert log.offsets_for_times("t", t) == {0: want}, t


def test_delete_records_to_the_end_empties_the_partition(log: eventlog.Log) -> None:
    log.create_topic("t", 2, retention_ms=-1)
    for _ in range(3):
        batch(log, "t", [1, 2, 3], partition=1)
    assert log.delete_records("t", 1, 9) == 9
    assert span(log, "t", 1) == (9, 9, 0, 0)
    assert log.read("t", 1, 9) == []
    assert list(log.scan("t")) == []
    assert log.offsets_for_times("t", 0) == {0: None, 1: None}
    assert time_index(log, "t") == []
    meta = log.append("t", b"again", partition=1, timestamp=7)
    assert meta.offset == 9
    assert log.offsets_for_times("t", 0) == {0: None, 1: 9}
    assert time_index(log, "t") == [(1, 7, 9)]


def test_delete_records_at_or_below_the_log_start_changes_nothing(log: eventlog.Log) -> None:
    log.create_topic("t", retention_ms=-1)
    batch(log, "t", [1, 2, 3, 4])
    assert log.delete_records("t", 0, 2) == 2
    before = log.describe_topic("t")
    assert log.delete_records("t", 0, 1) == 2  # as in Kafka: the current log start
    assert log.delete_records("t", 0, 2) == 2
    assert log.describe_topic("t") == before


def test_delete_records_bad_input(log: eventlog.Log, log_path: Path) -> None:
    log.create_topic("t", 2, retention_ms=-1)
    log.create_topic("c", cleanup_policy="compact")
    batch(log, "t", [1, 2, 3])
    before = log.describe_topic("t")
    with pytest.raises(OffsetOutOfRangeError, match=r"past the end offset 3") as exc:
        log.delete_records("t", 0, 4)
    assert (exc.value.topic, exc.value.partition, exc.value.offset) == ("t", 0, 4)
    for bad in (-1, 2**63):
        with pytest.raises(InvalidArgumentError, match="between 0 and"):
            log.delete_records("t", 0, bad)
    for bad_type in (1.0, "1", None, True):
        with pytest.raises(InvalidArgumentError, match="before_offset must be an integer"):
            log.delete_records("t", 0, bad_type)  # type: ignore[arg-type]
    with pytest.raises(PartitionNotFoundError):
        log.delete_records("t", 2, 0)
    with pytest.raises(InvalidArgumentError, match="partition must be an integer"):
        log.delete_records("t", "0", 0)  # type: ignore[arg-type]
    with pytest.raises(TopicNotFoundError):
        log.delete_records("nope", 0, 0)
    with pytest.raises(InvalidArgumentError, match=r"cleanup\.policy=compact"):
        log.delete_records("c", 0, 0)
    assert log.describe_topic("t") == before
    with eventlog.open(log_path, readonly=True) as ro:
        with pytest.raises(ReadOnlyLogError):
            ro.delete_records("t", 0, 1)
        with pytest.raises(ReadOnlyLogError):
            ro.run_retention()
    log.close()
    with pytest.raises(eventlog.LogClosedError):
        log.delete_records("t", 0, 1)


def test_delete_records_of_a_large_range_runs_in_several_transactions(
    log: eventlog.Log,
) -> None:
    log.create_topic("t", retention_ms=-1)
    for i in range(40):
        batch(log, "t", [i])
    writes = []
    real_write = log._storage.write

    def counting(fn: Any, what: str = "", **options: Any) -> Any:
        writes.append(what)
        return real_write(fn, what, **options)

    with mock.patch.object(retention, "EXPLICIT_BATCHES", 8), \
            mock.patch.object(log._storage, "write", counting):
        assert log.delete_records("t", 0, 39) == 39
    assert len(writes) == 5
    assert stored_bases(log, "t") == [39]


def test_batches_an_interrupted_delete_records_left_go_at_later_appends(
    log: eventlog.Log,
) -> None:
    # A crash after delete_records() moved the log start leaves batches wholly below it;
    # appends remove them even on a topic without any retention limit.
    log.create_topic("t", retention_ms=-1)
    for i in range(40):
        batch(log, "t", [i])
    with mock.patch.object(retention, "EXPLICIT_BATCHES", 8), \
            mock.patch.object(retention.RetentionAdmin, "_chunk", return_value=None):
        assert log.delete_records("t", 0, 39) == 39
    assert len(stored_bases(log, "t")) == 40 - 8  # the later chunks never ran
    batch(log, "t", [40])
    assert len(stored_bases(log, "t")) == 40 - 8 - retention.AUTO_BATCHES + 1
    with mock.patch.object(retention, "CHECK_INTERVAL", 0.0):
        batch(log, "t", [41])
    assert stored_bases(log, "t") == [39, 40, 41]
    assert log.check()


# --- readers and consumers ---------------------------------------------------------------


@pytest.mark.parametrize("reset", ["earliest", "latest", "error"])
def test_consumer_below_the_log_start_follows_auto_offset_reset(
    log: eventlog.Log, reset: str
) -> None:
    log.create_topic("t", retention_ms=-1)
    for i in range(4):
        batch(log, "t", [i, i])  # offsets 0..7
    with log.consumer(auto_offset_reset=reset) as consumer:
        consumer.assign([TP("t", 0)])
        consumer.seek(TP("t", 0), 0)
        assert [r.offset for r in consumer.poll(0, max_records=3)] == [0, 1, 2]
        log.delete_records("t", 0, 5)
        if reset == "error":
            with pytest.raises(OffsetOutOfRangeError) as exc:
                consumer.poll(0)
            assert exc.value.offset == 3
            return
        got = [r.offset for r in consumer.poll(0)]
        if reset == "earliest":
            assert got == [5, 6, 7]
        else:
            assert got == []
            assert consumer.position(TP("t", 0)) == 8
            log.append("t", b"x")
            assert [r.offset for r in consumer.poll(0)] == [8]


def test_a_group_consumer_whose_committed_offset_was_deleted(log: eventlog.Log) -> None:
    log.create_topic("t", retention_ms=-1)
    batch(log, "t", list(range(10)))
    log.commit_offsets("g", {TP("t", 0): 2})
    log.delete_records("t", 0, 6)
    with log.consumer("t", group="g", auto_offset_reset="earliest") as consumer:
        got: list[int] = []
        for _ in range(50):
            got += [r.offset for r in consumer.poll(0.05)]
            if got:
                break
        assert got == [6, 7, 8, 9]


def test_retention_and_delete_records_survive_reopen(log_path: Path) -> None:
    with eventlog.open(log_path, durability="off") as log:
        log.create_topic("t", 2, retention_ms=-1)
        for i in range(6):
            batch(log, "t", [T0 - 10 * HOUR + i, T0 + i], partition=i % 2)
        log.delete_records("t", 1, 3)
        log.alter_topic("t", retention_ms=HOUR)
        log.run_retention(now_ms=T0 + 2 * HOUR)  # only the T0+i records are young enough
        before = (log.describe_topic("t"), list(log.scan("t")),
                  log.offsets_for_times("t", 0), time_index(log, "t"))
    with eventlog.open(log_path) as log:
        after = (log.describe_topic("t"), list(log.scan("t")),
                 log.offsets_for_times("t", 0), time_index(log, "t"))
        assert after == before
        assert log.run_retention(now_ms=T0 + 2 * HOUR) == {}
        assert log.append("t", b"x", partition=0).offset == 6


# --- space -------------------------------------------------------------------------------


def test_the_data_file_stops_growing_under_byte_retention(tmp_path: Path) -> None:
    """LMDB reuses the pages retention frees: appending many times the budget leaves the
    file at a plateau (a complexity check on space, not a timing check)."""
    path = tmp_path / "log"
    data = path / "data.mdb"
    budget = 64 * 1024
    with eventlog.open(path, durability="off") as log:
        log.create_topic("t", 2, retention_bytes=budget, retention_ms=-1)
        sizes = []
        for r in range(400):
            # 16 KiB per round, incompressible: 400 rounds write 100 times the budget.
            log.append_columns("t", [os.urandom(1024) for _ in range(16)], partition=r % 2)
            sizes.append(data.stat().st_size)
        for info in log.describe_topic("t").partitions:
            assert budget - 16 * 1024 < info.size_bytes <= budget
    warm = sizes[100]
    assert max(sizes[100:]) <= warm * 1.1
    assert sizes[-1] < 400 * 16 * 1024 / 10
