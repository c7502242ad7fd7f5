"""Key compaction, tombstones, the key index, ``latest()`` and ``table()`` (issue 4).

What is verified, against Kafka's semantics (``../shared/notes/KAFKA.md``, "Compaction"):

- the four guarantees: a consumer that keeps up sees every record with sequential offsets;
  order is kept; offsets (and everything stored at them) never change; a reader from the
  start sees at least the final value of every key. A full pass equals the model "keep
  the newest record of each key";
- records without a key are refused on compacted topics, by every write path;
- tombstones: gone from ``latest()``/``table()`` at once, readable for
  ``delete.retention.ms`` after a pass first reaches them, then removed;
- ``min.compaction.lag.ms``, ``max.compaction.lag.ms``, ``min.cleanable.dirty.ratio``;
- tombstone lifetimes against a model of Kafka's rules, with time passing (hypothesis);
- automatic compaction from appends in bounded chunks that outpace a steady producer, and
  a pass resumed after reopen;
- the key index through compaction, retention (``compact,delete``: expired keys leave
  the table), ``delete_records``, ``alter_topic``, ``create_partitions``,
  ``delete_topic``, several partitions, long and empty keys, and the ``Table`` mapping
  against a dict;
- ``check()`` is clean after all that, and reports damage to the key index;
- bad arguments; a reader holding a read transaction while compaction rewrites batches
  (and the data file growth it causes, printed for the docs); group consumers positioned
  in a range compaction emptied.

Time is never slept through (one test sleeps a few milliseconds to get distinct
LogAppendTime stamps): records carry explicit timestamps, ``compact()`` takes
``now_ms``, and the automatic path's clock (``eventlog._retention.now_ms``) is replaced
where time must pass. ``eventlog._compaction.CHECK_INTERVAL`` (the once-per-second rate
limit of the automatic triggers) is patched to 0 where a test needs each append to look.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections.abc import Iterator, Mapping, MutableMapping
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import eventlog
import eventlog._compaction as compaction
from eventlog import NewRecord, Record, TopicPartition
from eventlog._catalog import BATCH_KEY, NO_PASS, STATE_OFFSET, PartitionState
from eventlog._codec import decode_batch
from eventlog._errors import (
    CorruptLogError,
    InvalidArgumentError,
    InvalidRecordError,
    LogClosedError,
    PartitionNotFoundError,
    ReadOnlyLogError,
    TopicNotFoundError,
)
from eventlog._keyindex import count_key, entry, find_entry, index_key, read_pending
from eventlog._partitioner import default_partition

HOUR = 3_600_000
MINUTE = 60_000
T0 = 1_700_000_000_000  # a fixed "now" (ms), for the patched clock and compact(now_ms=...)
FOREVER = 10**15  # a delete.retention.ms that keeps tombstones through any test
TP = TopicPartition


# --- helpers ---------------------------------------------------------------------------


class Clock:
    """A settable replacement for ``eventlog._retention.now_ms``."""

    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def clock() -> Iterator[Clock]:
    """The retention/compaction clock, fixed at T0 until a test moves it."""
    fake = Clock(T0)
    with mock.patch("eventlog._retention.now_ms", fake):
        yield fake


@pytest.fixture
def eager() -> Iterator[None]:
    """Every append looks at the compaction triggers (no once-per-second rate limit)."""
    with mock.patch.object(compaction, "CHECK_INTERVAL", 0.0):
        yield


def state(log: eventlog.Log, topic: str, partition: int = 0) -> PartitionState:
    """The partition's stored state (compaction progress is not in describe_topic)."""

    def run(txn: Any) -> PartitionState:
        return log._reader.state(txn, log._info(txn, topic), partition)

    return log._storage.read(run, "test: reading a partition state")


def topic_id(log: eventlog.Log, topic: str) -> int:
    return log.describe_topic(topic).topic_id


def stored(log: eventlog.Log, topic: str, partition: int | None = None) -> list[Record]:
    return list(log.scan(topic, partition))


def offsets(log: eventlog.Log, topic: str, partition: int = 0) -> list[int]:
    return [r.offset for r in log.scan(topic, partition)]


def problems(log: eventlog.Log) -> list[str]:
    report = log.check()
    found = [str(p) for p in report.problems]
    assert bool(report) == (not found)
    return found


def tombstone_horizons(log: eventlog.Log, topic: str) -> dict[tuple[int, int], int]:
    """{(partition, offset): delete horizon} of the topic's kept tombstones."""
    tid = topic_id(log, topic)

    def run(txn: Any) -> dict[tuple[int, int], int]:
        out = {}
        cursor = txn.cursor(db=log._dbs[b"tombstones"])
        on = cursor.set_range(BATCH_KEY.pack(tid, 0, 0))
        while on:
            t, p, off = BATCH_KEY.unpack(cursor.key())
            if t != tid:
                break
            if off != STATE_OFFSET:
                out[(p, off)] = int.from_bytes(cursor.value(), "big", signed=True)
            on = cursor.next()
        return out

    return log._storage.read(run, "test: reading tombstone horizons")


def poll_to_end(consumer: eventlog.Consumer) -> list[Record]:
    """Poll until the consumer is assigned and has no lag."""
    out: list[Record] = []
    deadline = time.monotonic() + 10
    while True:
        out.extend(consumer.poll(0.05))
        if consumer.assignment() and not any(consumer.lag().values()):
            return out
        assert time.monotonic() < deadline, "the consumer never caught up"


class Model:
    """Every record appended to one single-partition topic, by offset: what compaction
    may remove from, and what ``latest``/``table`` must answer."""

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self.by_offset: dict[int, Record] = {}

    def append(
        self,
        log: eventlog.Log,
        key: bytes,
        value: bytes | None,
        timestamp: int,
        headers: list[tuple[str, bytes | None]] | None = None,
    ) -> Record:
        meta = log.append(self.topic, value, key=key, timestamp=timestamp, headers=headers)
        return self._add(meta.offset, key, value, timestamp, headers)

    def append_batch(self, log: eventlog.Log, items: list[tuple[bytes, bytes | None, int]]) -> None:
        metas = log.append_batch(
            self.topic, [NewRecord(v, key=k, timestamp=ts) for k, v, ts in items]
        )
        for meta, (k, v, ts) in zip(metas, items):
            self._add(meta.offset, k, v, ts, None)

    def _add(
        self,
        offset: int,
        key: bytes,
        value: bytes | None,
        timestamp: int,
        headers: list[tuple[str, bytes | None]] | None,
    ) -> Record:
        record = Record(self.topic, 0, offset, timestamp, key, value, tuple(headers or ()))
        assert offset not in self.by_offset
        self.by_offset[offset] = record
        return record

    def newest(self) -> dict[bytes, Record]:
        out: dict[bytes, Record] = {}
        for offset in sorted(self.by_offset):
            record = self.by_offset[offset]
            assert record.key is not None
            out[record.key] = record
        return out

    def table(self) -> dict[bytes, bytes]:
        return {k: r.value for k, r in self.newest().items() if r.value is not None}

    def after_full_pass(self) -> list[int]:
        """The offsets a complete pass with no lag keeps (tombstones kept)."""
        return sorted(r.offset for r in self.newest().values())

    def check_stored(self, log: eventlog.Log) -> list[Record]:
        """Guarantees (2) and (3): what is stored is a subsequence of what was appended,
        every record identical to the one appended at its offset; and the newest record
        of every key is still there (nothing here removes tombstones)."""
        got = stored(log, self.topic)
        assert [r.offset for r in got] == sorted({r.offset for r in got})
        for record in got:
            assert record == self.by_offset[record.offset]
        kept = {r.offset for r in got}
        assert all(r.offset in kept for r in self.newest().values())
        return got

    def check_lookups(self, log: eventlog.Log, universe: list[bytes]) -> None:
        newest = self.newest()
        for key in universe:
            want = newest.get(key)
            got = log.latest(self.topic, key)
            assert got == (want if want is not None and want.value is not None else None)
        table = log.table(self.topic)
        expected = self.table()
        assert dict(table) == expected
        assert len(table) == len(expected)
        assert bool(table) == bool(expected)


def compacted(log: eventlog.Log, name: str = "t", partitions: int = 1, **configs: Any) -> None:
    configs.setdefault("cleanup_policy", "compact")
    log.create_topic(name, partitions, **configs)


# --- the four guarantees ---------------------------------------------------------------


def test_a_consumer_that_keeps_up_sees_every_record_while_compaction_runs(
    log: eventlog.Log, clock: Clock, eager: None
) -> None:
    """Guarantee (1): polling within min.compaction.lag.ms (1 h; here every 7 minutes,
    so it is always a few minutes behind), a consumer sees every record with sequential
    offsets, although passes (automatic, and explicit every 5 minutes) keep removing
    older records, many of them obsolete before the consumer reads them."""
    compacted(log, min_compaction_lag_ms=HOUR, delete_retention_ms=FOREVER)
    model = Model("t")
    seen: list[Record] = []
    with log.consumer("t", group="g", auto_offset_reset="earliest") as consumer:
        for minute in range(150):
            clock.now = T0 + minute * MINUTE
            for i in range(4):
                key = b"k%d" % ((minute + i) % 5)
                value = None if (minute + i) % 17 == 0 else b"%d.%d" % (minute, i)
                model.append(log, key, value, clock.now)
            if minute % 5 == 4:
                log.compact("t")
            if minute % 7 == 6:
                seen.extend(poll_to_end(consumer))
        seen.extend(poll_to_end(consumer))
    assert [r.offset for r in seen] == list(range(len(model.by_offset)))
    assert seen == [model.by_offset[r.offset] for r in seen]
    assert len(stored(log, "t")) < len(model.by_offset) - 300  # compaction ran behind it
    model.check_stored(log)
    assert problems(log) == []


def test_offsets_order_and_record_contents_survive_compaction(log: eventlog.Log) -> None:
    """Guarantees (2) and (3): after a pass every remaining record is identical (offset,
    timestamp, key, value, headers) to the one appended at its offset, in offset order;
    a read at a removed offset continues at the next record kept."""
    compacted(log, delete_retention_ms=FOREVER, min_cleanable_dirty_ratio=1.0)
    model = Model("t")
    for i in range(60):
        headers = [("n", b"%d" % i), ("null", None)] if i % 3 == 0 else None
        value = None if i % 11 == 5 else b"value-%d" % i
        model.append(log, b"key-%d" % (i % 7), value, T0 + (i * 7919) % 1000, headers)
    (result,) = log.compact("t").values()
    assert result.records_removed == 60 - 7
    got = model.check_stored(log)
    assert [r.offset for r in got] == model.after_full_pass()
    assert any(r.headers for r in got)
    first_kept = got[0].offset
    assert first_kept > 0
    assert log.read("t", 0, 0, max_records=1)[0] == got[0]
    assert log.read("t", 0, first_kept - 1, max_records=1)[0] == got[0]
    end = log.end_offsets("t")[0]
    assert end == 60  # the end offset does not move
    assert log.describe_topic("t").partitions[0].log_start_offset == 0  # nor the log start


def test_a_reader_from_the_start_sees_the_final_value_of_every_key(log: eventlog.Log) -> None:
    """Guarantee (4): after compact(), a scan from the beginning holds every key's final
    value (or its tombstone), in write order."""
    compacted(log, delete_retention_ms=FOREVER)
    model = Model("t")
    for round_ in range(5):
        model.append_batch(
            log,
            [
                (b"k%02d" % k, None if (k + round_) % 9 == 0 else b"%d/%d" % (round_, k), T0)
                for k in range(40)
            ],
        )
    log.compact("t")
    final = {r.key: r.value for r in stored(log, "t")}
    assert final == {k: r.value for k, r in model.newest().items()}
    assert [r.offset for r in stored(log, "t")] == model.after_full_pass()


_KEYS = [b"a", b"b", b"c", b"d", b"", b"L" * 450]
_item = st.tuples(st.sampled_from(_KEYS), st.one_of(st.none(), st.binary(max_size=6)))
_op = st.one_of(
    st.lists(_item, min_size=1, max_size=7),  # one append_batch
    st.just("compact"),
)
_examples = itertools.count()
# Each example opens its own log in a fresh directory under tmp_path.
FIXTURE_OK = [HealthCheck.function_scoped_fixture]


@settings(max_examples=40, deadline=None, suppress_health_check=FIXTURE_OK)
@given(ops=st.lists(_op, max_size=20), ratio=st.sampled_from([0.0, 0.3, 0.5, 1.0]))
def test_compaction_matches_the_keep_the_newest_model(
    tmp_path: Path, ops: list[Any], ratio: float
) -> None:
    """Random appends with automatic passes in tiny chunks (so passes are often under way
    while records arrive) and explicit compact() calls: after every step, stored records
    are a subsequence of the appended ones, each key's newest record is kept, and
    latest()/table() equal the model; a final compact() leaves exactly the newest record
    of each key (tombstones kept: delete.retention.ms is long)."""
    path = tmp_path / f"example-{next(_examples)}"
    with (
        mock.patch.object(compaction, "CHECK_INTERVAL", 0.0),
        mock.patch.object(compaction, "AUTO_RECORDS", 3),
        eventlog.open(path, durability="off") as log,
    ):
        compacted(log, delete_retention_ms=FOREVER, min_cleanable_dirty_ratio=ratio)
        model = Model("t")
        for op in ops:
            if op == "compact":
                log.compact("t")
            else:
                model.append_batch(log, [(k, v, T0) for k, v in op])
            model.check_stored(log)
            model.check_lookups(log, _KEYS)
        log.compact("t")
        assert offsets(log, "t") == model.after_full_pass()
        model.check_lookups(log, _KEYS)
        assert problems(log) == []


class TombstoneModel:
    """Kafka's rules for one partition with no lag, tombstones included: a pass drops
    every record that is not its key's newest; the newest record of a key, if a
    tombstone, gets its delete horizon (now + delete.retention.ms) from the first pass
    that reaches it and goes at the first pass at or after it."""

    def __init__(self, retention: int) -> None:
        self.retention = retention
        self.kept: dict[int, tuple[bytes, bytes | None]] = {}  # offset -> (key, value)
        self.horizons: dict[int, int] = {}  # offset of a kept tombstone -> horizon
        self.end = 0

    def append(self, items: list[tuple[bytes, bytes | None]]) -> None:
        for item in items:
            self.kept[self.end] = item
            self.end += 1

    def tombstones_due(self, now: int) -> bool:
        return any(h <= now for h in self.horizons.values())

    def run_pass(self, now: int) -> None:
        newest = {key: offset for offset, (key, _v) in sorted(self.kept.items())}
        for offset, (key, value) in sorted(self.kept.items()):
            if newest[key] != offset:
                del self.kept[offset]
                self.horizons.pop(offset, None)
            elif value is None:
                horizon = self.horizons.setdefault(offset, now + self.retention)
                if horizon <= now:
                    del self.kept[offset]
                    del self.horizons[offset]

    def table(self) -> dict[bytes, bytes]:
        out: dict[bytes, bytes] = {}
        for _offset, (key, value) in sorted(self.kept.items()):
            if value is None:
                out.pop(key, None)
            else:
                out[key] = value
        return out


_tomb_op = st.one_of(
    st.tuples(
        st.just("append"),
        st.integers(0, 15),  # minutes passing first
        st.lists(
            st.tuples(st.sampled_from([b"a", b"b", b"c"]), st.sampled_from([None, b"1", b"2"])),
            min_size=1,
            max_size=4,
        ),
    ),
    st.tuples(st.just("compact"), st.integers(0, 15), st.just([])),
)


@settings(max_examples=40, deadline=None, suppress_health_check=FIXTURE_OK)
@given(ops=st.lists(_tomb_op, max_size=25), retention=st.sampled_from([0, 10 * MINUTE]))
def test_tombstone_lifetimes_match_kafkas_rules(
    tmp_path: Path, ops: list[tuple[str, int, list[tuple[bytes, bytes | None]]]], retention: int
) -> None:
    """Appends, explicit passes and time passing (minutes), with delete.retention.ms 0
    or 10 minutes: the stored offsets, the kept tombstones' horizons and the table equal
    the model's after every step. Automatic passes happen exactly when a kept
    tombstone's horizon has passed (the dirty ratio is 1.0, so it never triggers once
    the first record, which is never superseded, is clean)."""
    path = tmp_path / f"example-{next(_examples)}"
    clock = Clock(T0)
    with (
        mock.patch("eventlog._retention.now_ms", clock),
        mock.patch.object(compaction, "CHECK_INTERVAL", 0.0),
        eventlog.open(path, durability="off") as log,
    ):
        compacted(log, delete_retention_ms=retention, min_cleanable_dirty_ratio=1.0)
        model = TombstoneModel(retention)
        log.append("t", b"first", key=b"first", timestamp=T0)
        model.append([(b"first", b"first")])
        model.run_pass(T0)  # the first append's pass (everything is dirty)
        for kind, minutes, items in ops:
            clock.now += minutes * MINUTE
            if kind == "append":
                log.append_batch("t", [NewRecord(v, key=k, timestamp=clock.now) for k, v in items])
                model.append(items)
                if model.tombstones_due(clock.now):
                    model.run_pass(clock.now)
            else:
                log.compact("t", now_ms=clock.now)
                model.run_pass(clock.now)
            assert offsets(log, "t") == sorted(model.kept)
            assert tombstone_horizons(log, "t") == {(0, o): h for o, h in model.horizons.items()}
            assert dict(log.table("t")) == model.table()
            assert len(log.table("t")) == len(model.table())
        assert problems(log) == []


@settings(max_examples=30, deadline=None, suppress_health_check=FIXTURE_OK)
@given(
    batches=st.lists(
        st.lists(
            st.tuples(st.sampled_from([b"a", b"b", b"c"]), st.integers(0, 3 * HOUR)),
            min_size=1,
            max_size=4,
        ),
        min_size=1,
        max_size=12,
    )
)
def test_min_compaction_lag_never_removes_a_young_record_or_one_obsoleted_only_by_one(
    tmp_path: Path, batches: list[list[tuple[bytes, int]]]
) -> None:
    """With min.compaction.lag.ms = 1 h and timestamps in any order: a removed record is
    older than the lag and a later record of its key is older than the lag too. Once the
    clock is far enough ahead, a pass removes everything obsolete."""
    path = tmp_path / f"example-{next(_examples)}"
    with (
        mock.patch("eventlog._retention.now_ms", Clock(T0)),
        eventlog.open(path, durability="off") as log,
    ):
        compacted(log, min_compaction_lag_ms=HOUR, delete_retention_ms=FOREVER)
        model = Model("t")
        for batch in batches:
            model.append_batch(log, [(k, b"v", T0 - age) for k, age in batch])
        cutoff = T0 - HOUR
        log.compact("t", now_ms=T0)
        model.check_stored(log)
        kept = set(offsets(log, "t"))
        for offset, record in model.by_offset.items():
            if offset in kept:
                continue
            assert record.timestamp <= cutoff
            assert any(
                later.key == record.key and later.offset > offset and later.timestamp <= cutoff
                for later in model.by_offset.values()
            )
        log.compact("t", now_ms=T0 + 4 * HOUR)
        assert offsets(log, "t") == model.after_full_pass()
        assert problems(log) == []


# --- records without a key -------------------------------------------------------------


def test_records_without_a_key_are_refused_and_nothing_is_written(log: eventlog.Log) -> None:
    """Every write path refuses a keyless record on a compacted topic (InvalidRecordError)
    and writes nothing, not even the keyed records of the same call."""
    compacted(log)
    compacted(log, "both", cleanup_policy="compact,delete")
    for topic in ("t", "both"):
        log.append(topic, b"first", key=b"k")
        with pytest.raises(InvalidRecordError, match="key"):
            log.append(topic, b"v")
        with pytest.raises(InvalidRecordError, match="key"):
            log.append(topic, None)
        with pytest.raises(InvalidRecordError, match="key"):
            log.append_batch(topic, [NewRecord(b"x", key=b"k"), NewRecord(b"y")])
        with pytest.raises(InvalidRecordError, match="key"):
            log.append_columns(topic, [b"x", b"y"])
        with pytest.raises(InvalidRecordError, match="key"):
            log.append_columns(topic, [b"x", b"y"], keys=[b"k", None])
        with log.producer() as producer, pytest.raises(InvalidRecordError, match="key"):
            producer.send(topic, b"v")
        assert log.end_offsets(topic) == {0: 1}
        assert [r.value for r in stored(log, topic)] == [b"first"]
    assert problems(log) == []


def test_a_keyless_record_buffered_before_the_topic_became_compacted_is_refused(
    log: eventlog.Log,
) -> None:
    """A producer that accepted a keyless record for a delete topic, which is altered to
    compact before the record is written, fails that record's future; nothing is
    written."""
    log.create_topic("t")
    with log.producer(linger_ms=60_000) as producer:
        future = producer.send("t", b"keyless")
        log.alter_topic("t", cleanup_policy="compact")
        producer.flush()
        with pytest.raises(InvalidRecordError):
            future.result(5)
    assert log.end_offsets("t") == {0: 0}
    assert problems(log) == []


# --- tombstones ------------------------------------------------------------------------


def test_a_tombstone_removes_its_key_at_once(log: eventlog.Log) -> None:
    """A tombstone hides its key from latest() and the table at once (before any pass); a
    later value brings the key back."""
    compacted(log)
    log.append("t", b"v", key=b"gone")
    log.append("t", b"w", key=b"kept")
    table = log.table("t")
    assert b"gone" in table
    log.append("t", None, key=b"gone")
    assert log.latest("t", b"gone") is None
    assert b"gone" not in table
    assert table.get(b"gone") is None
    assert dict(table) == {b"kept": b"w"}
    assert len(table) == 1
    with pytest.raises(KeyError):
        table[b"gone"]
    log.append("t", b"back", key=b"gone")
    assert table[b"gone"] == b"back"
    assert len(table) == 2


def test_a_tombstone_lives_delete_retention_ms_from_the_first_pass_not_from_its_timestamp(
    log: eventlog.Log,
) -> None:
    """The tombstone clock starts when a pass first reaches the tombstone: one written
    ten retention periods ago still survives a full delete.retention.ms after that pass,
    and goes at the first pass after its horizon."""
    retention = 5 * MINUTE
    compacted(log, delete_retention_ms=retention, min_cleanable_dirty_ratio=1.0)
    old = T0 - 10 * retention
    log.append("t", b"v", key=b"k", timestamp=old)
    tomb = log.append("t", None, key=b"k", timestamp=old).offset
    log.append("t", b"other", key=b"x", timestamp=old)
    (first,) = log.compact("t", now_ms=T0).values()
    assert (first.records_removed, first.tombstones_removed) == (1, 0)
    assert offsets(log, "t") == [tomb, tomb + 1]
    assert tombstone_horizons(log, "t") == {(0, tomb): T0 + retention}
    assert log.latest("t", b"k") is None
    log.compact("t", now_ms=T0 + retention - 1)
    assert offsets(log, "t") == [tomb, tomb + 1]  # still readable just before the horizon
    assert log.read("t", 0, 0, max_records=1)[0].value is None
    (last,) = log.compact("t", now_ms=T0 + retention).values()
    assert last.tombstones_removed == 1
    assert offsets(log, "t") == [tomb + 1]
    assert tombstone_horizons(log, "t") == {}
    assert log.latest("t", b"k") is None
    assert dict(log.table("t")) == {b"x": b"other"}
    assert problems(log) == []


def test_tombstone_horizon_uses_the_patched_clock_and_triggers_a_pass_from_appends(
    log: eventlog.Log, clock: Clock, eager: None
) -> None:
    """With the automatic path only: a pass (dirty ratio reached) keeps the tombstone and
    records its horizon; appends before the horizon leave it; the first append after
    the horizon runs a pass that removes it, although the dirty ratio is low."""
    retention = 10 * MINUTE
    compacted(log, delete_retention_ms=retention, min_cleanable_dirty_ratio=0.9)
    log.append_batch(
        "t", [NewRecord(b"%03d" % i, key=b"base%03d" % i, timestamp=T0) for i in range(100)]
    )
    log.append("t", b"v", key=b"k", timestamp=T0)
    tomb = log.append("t", None, key=b"k", timestamp=T0).offset
    log.compact("t")  # the first pass to reach the tombstone: horizon T0 + retention
    assert tombstone_horizons(log, "t") == {(0, tomb): T0 + retention}
    clock.now = T0 + retention - 1
    log.append("t", b"1", key=b"base000", timestamp=clock.now)
    assert tomb in offsets(log, "t")
    clock.now = T0 + retention
    # One append's chunk covers the partition here (the subject is the trigger, not the
    # chunking): the pass it starts reaches the tombstone at once.
    with mock.patch.object(compaction, "AUTO_RECORDS", 1000):
        log.append("t", b"2", key=b"base001", timestamp=clock.now)
    assert tomb not in offsets(log, "t")
    assert tombstone_horizons(log, "t") == {}
    assert problems(log) == []


def test_delete_retention_ms_zero_removes_tombstones_at_the_first_pass(
    log: eventlog.Log,
) -> None:
    """delete.retention.ms = 0: the first pass removes tombstones with the values they
    deleted, even a tombstone of a key that never had a value; reads of the emptied range
    return nothing and offsets go on from the old end."""
    compacted(log, delete_retention_ms=0, min_cleanable_dirty_ratio=1.0)
    log.append("t", b"v", key=b"k", timestamp=T0)
    log.append("t", None, key=b"k", timestamp=T0)
    log.append("t", None, key=b"never-had-a-value", timestamp=T0)
    (result,) = log.compact("t", now_ms=T0).values()
    assert (result.records_removed, result.tombstones_removed) == (3, 2)
    assert result.batches_deleted == 3
    assert stored(log, "t") == []
    assert log.read("t", 0, 0) == []
    assert log.end_offsets("t") == {0: 3}
    assert tombstone_horizons(log, "t") == {}
    assert log.latest("t", b"k") is None
    assert len(log.table("t")) == 0
    log.append("t", b"again", key=b"k", timestamp=T0)
    assert log.latest("t", b"k").offset == 3  # type: ignore[union-attr]
    assert problems(log) == []  # (the emptied state itself: see the next test)


def test_a_kept_tombstone_superseded_by_a_value_goes_as_an_obsolete_record(
    log: eventlog.Log,
) -> None:
    """A tombstone whose horizon is far away is removed by the next pass once a newer
    value of its key exists, and its horizon is forgotten."""
    compacted(log, delete_retention_ms=FOREVER, min_cleanable_dirty_ratio=1.0)
    log.append("t", b"v1", key=b"k", timestamp=T0)
    tomb = log.append("t", None, key=b"k", timestamp=T0).offset
    log.compact("t", now_ms=T0)
    assert tombstone_horizons(log, "t") == {(0, tomb): T0 + FOREVER}
    revived = log.append("t", b"v2", key=b"k", timestamp=T0).offset
    (result,) = log.compact("t", now_ms=T0).values()
    assert (result.records_removed, result.tombstones_removed) == (1, 1)
    assert offsets(log, "t") == [revived]
    assert tombstone_horizons(log, "t") == {}
    assert log.latest("t", b"k").value == b"v2"  # type: ignore[union-attr]
    assert problems(log) == []


def test_a_tombstone_newer_than_the_lag_gets_no_horizon_yet(
    log: eventlog.Log, clock: Clock
) -> None:
    """A pass that stops below the tombstone (min.compaction.lag.ms) has not reached
    it: its clock starts only at the pass that does."""
    compacted(log, min_compaction_lag_ms=HOUR, delete_retention_ms=10 * MINUTE)
    log.append("t", b"v", key=b"k", timestamp=T0 - 2 * HOUR)
    tomb = log.append("t", None, key=b"k", timestamp=T0 - MINUTE).offset
    log.append("t", b"young", key=b"other", timestamp=T0)
    log.compact("t", now_ms=T0)
    assert offsets(log, "t") == [0, tomb, tomb + 1]  # v is obsolete only by a young record
    assert tombstone_horizons(log, "t") == {}
    later = T0 + HOUR
    log.compact("t", now_ms=later)
    assert offsets(log, "t") == [tomb, tomb + 1]
    assert tombstone_horizons(log, "t") == {(0, tomb): later + 10 * MINUTE}
    log.compact("t", now_ms=later + 10 * MINUTE)
    assert offsets(log, "t") == [tomb + 1]
    assert problems(log) == []


def test_check_is_clean_on_a_partition_compaction_emptied(log: eventlog.Log) -> None:
    """Compaction may remove every record of a partition (expired tombstones), leaving
    no batch while the log start stays below the end offset (offsets never move): a
    healthy state check() must accept, as it accepts offset gaps on compacted topics."""
    compacted(log, delete_retention_ms=0, min_cleanable_dirty_ratio=1.0)
    log.append("t", b"v", key=b"k")
    log.append("t", None, key=b"k")
    log.compact("t")
    assert stored(log, "t") == []
    span = log.describe_topic("t").partitions[0]
    assert (span.log_start_offset, span.end_offset, span.batches) == (0, 2, 0)
    assert problems(log) == []


# --- min.compaction.lag.ms, max.compaction.lag.ms, min.cleanable.dirty.ratio ---------


def test_min_compaction_lag_keeps_young_records_until_they_age(
    log: eventlog.Log, clock: Clock
) -> None:
    """min.compaction.lag.ms = 1 h: young records stay, and so do old records made obsolete
    only by young ones; a pass an hour later removes them."""
    compacted(log, min_compaction_lag_ms=HOUR)
    log.append_batch(
        "t",
        [
            NewRecord(b"a1", key=b"a", timestamp=T0 - 3 * HOUR),
            NewRecord(b"b1", key=b"b", timestamp=T0 - 3 * HOUR),
        ],
    )
    log.append("t", b"a2", key=b"a", timestamp=T0 - 2 * HOUR)  # makes a1 obsolete, old
    log.append("t", b"b2", key=b"b", timestamp=T0 - 10 * MINUTE)  # young
    log.append("t", b"a3", key=b"a", timestamp=T0 - 5 * MINUTE)  # young
    log.compact("t", now_ms=T0)
    # a1 goes (a2 is old); a2 stays (obsolete only by the young a3); b1 stays (b2 young).
    assert [r.value for r in stored(log, "t")] == [b"b1", b"a2", b"b2", b"a3"]
    log.compact("t", now_ms=T0 + HOUR)
    assert [r.value for r in stored(log, "t")] == [b"b2", b"a3"]
    assert log.latest("t", b"a").value == b"a3"  # type: ignore[union-attr]
    assert problems(log) == []


def test_max_compaction_lag_triggers_a_pass_from_an_append_below_the_dirty_ratio(
    log: eventlog.Log, clock: Clock, eager: None
) -> None:
    """max.compaction.lag.ms = 1 h with a dirty ratio far below min.cleanable.dirty.ratio:
    the first append once the oldest dirty record is an hour old runs a pass, not one
    before."""
    compacted(log, min_cleanable_dirty_ratio=0.99, max_compaction_lag_ms=HOUR)
    log.append_batch(
        "t", [NewRecord(b"x" * 50, key=b"base%02d" % i, timestamp=T0) for i in range(50)]
    )
    log.compact("t")
    for i in range(3):
        log.append("t", b"%d" % i, key=b"hot", timestamp=T0)
    s = state(log, "t")
    assert 0 < s.dirty_bytes < 0.99 * s.size_bytes
    assert len(stored(log, "t")) == 53
    clock.now = T0 + HOUR - 1
    log.append("t", b"3", key=b"hot", timestamp=T0)
    assert len(stored(log, "t")) == 54  # not yet: the oldest dirty record is not due
    clock.now = T0 + HOUR
    log.append("t", b"4", key=b"hot", timestamp=clock.now)
    assert [r.value for r in stored(log, "t") if r.key == b"hot"] == [b"4"]
    assert len(stored(log, "t")) == 51
    assert problems(log) == []


def test_no_automatic_pass_below_the_dirty_ratio_and_one_when_it_is_reached(
    log: eventlog.Log,
) -> None:
    """10 clean records of 8 bytes; updates of one key (8 bytes each) are dirty. With
    ratio 0.5 the tenth update makes dirty (80) >= half of all (160). The dirty ratio is
    not a time-based trigger: it starts a pass at once, with the default CHECK_INTERVAL
    (appends come faster than once a second here)."""
    compacted(log, min_cleanable_dirty_ratio=0.5)
    log.append_batch("t", [NewRecord(b"v%03d" % i, key=b"k%03d" % i) for i in range(10)])
    log.compact("t")
    assert state(log, "t").dirty_bytes == 0
    for i in range(9):
        log.append("t", b"u%03d" % i, key=b"k000")
        assert len(stored(log, "t")) == 11 + i  # nothing removed below the ratio
    log.append("t", b"u009", key=b"k000")
    assert len(stored(log, "t")) == 10
    assert log.latest("t", b"k000").value == b"u009"  # type: ignore[union-attr]
    assert state(log, "t").dirty_bytes == 0
    assert problems(log) == []


def test_dirty_ratio_zero_compacts_at_every_append(log: eventlog.Log) -> None:
    """min.cleanable.dirty.ratio = 0: every append that makes a record obsolete removes it
    (any dirty byte triggers a pass)."""
    compacted(log, min_cleanable_dirty_ratio=0.0)
    for i in range(30):
        log.append("t", b"%d" % i, key=b"k%d" % (i % 3))
        assert len(stored(log, "t")) == min(i + 1, 3)
    assert problems(log) == []


def test_dirty_ratio_one_never_triggers_once_something_is_clean(
    log: eventlog.Log, eager: None
) -> None:
    """Ratio 1.0: after a pass, appends alone never make everything dirty again, so
    obsolete records stay until compact() is called."""
    compacted(log, min_cleanable_dirty_ratio=1.0)
    log.append("t", b"first", key=b"other")
    log.compact("t")
    for i in range(30):
        log.append("t", b"%d" % i, key=b"k")
    assert len(stored(log, "t")) == 31
    (result,) = log.compact("t").values()
    assert result.records_removed == 29
    assert problems(log) == []


# --- automatic compaction: bounded chunks, resumed after reopen ------------------------


def _big_dirty_topic(log: eventlog.Log) -> Model:
    """40 batches of 5 records over 10 keys, never compacted automatically (ratio 1.0
    once the first append's pass made something clean), then ratio 0.0."""
    compacted(log, min_cleanable_dirty_ratio=1.0, delete_retention_ms=FOREVER)
    model = Model("t")
    for b in range(40):
        model.append_batch(
            log, [(b"k%d" % ((b * 5 + i) % 10), b"%d" % (b * 5 + i), T0) for i in range(5)]
        )
    assert len(stored(log, "t")) == 200
    log.alter_topic("t", min_cleanable_dirty_ratio=0.0)
    return model


def test_automatic_compaction_runs_in_bounded_chunks_over_several_appends(
    log: eventlog.Log, eager: None
) -> None:
    """With AUTO_RECORDS = 10, a pass over 200 records advances about two 5-record batches
    per append, over many appends, with the guarantees holding at every step, and ends with
    the full-pass result."""
    with mock.patch.object(compaction, "AUTO_RECORDS", 10):
        model = _big_dirty_topic(log)
        positions = []
        for i in range(30):
            model.append(log, b"new%d" % i, b"x", T0)
            s = state(log, "t")
            if not s.compacting:
                break
            positions.append(s.pass_pos)
            model.check_stored(log)
        else:
            raise AssertionError("the pass never finished")
    # Each append moved the pass by about AUTO_RECORDS records (two 5-record batches).
    assert len(positions) >= 15
    steps = [b - a for a, b in itertools.pairwise(positions)]
    assert all(0 < step <= 15 for step in steps)
    assert offsets(log, "t") == model.after_full_pass()
    model.check_lookups(log, [b"k%d" % i for i in range(10)])
    assert problems(log) == []


def test_a_pass_interrupted_by_close_continues_after_reopen(log_path: Path, eager: None) -> None:
    """A pass left half done by close() resumes from its stored position after reopen (not
    from the start), appends alone finish it, and a later compact() finds everything right."""
    with mock.patch.object(compaction, "AUTO_RECORDS", 10):
        with eventlog.open(log_path, durability="off") as log:
            model = _big_dirty_topic(log)
            for i in range(3):
                model.append(log, b"new%d" % i, b"x", T0)
            mid = state(log, "t")
            assert mid.compacting
            assert mid.pass_pos > 0
            assert problems(log) == []
        with eventlog.open(log_path, durability="off") as log:
            assert state(log, "t").pass_pos == mid.pass_pos  # where it stopped
            model.append(log, b"after", b"x", T0)
            assert state(log, "t").pass_pos > mid.pass_pos  # continued, not restarted
            for i in range(30):  # appends alone finish it
                if not state(log, "t").compacting:
                    break
                model.append(log, b"after%d" % i, b"x", T0)
            assert not state(log, "t").compacting
            assert offsets(log, "t") == model.after_full_pass()
            model.check_lookups(log, [b"k%d" % i for i in range(10)])
            assert problems(log) == []
        with eventlog.open(log_path, durability="off") as log:
            model.append(log, b"k0", b"newest", T0)
            log.compact("t")
            assert offsets(log, "t") == model.after_full_pass()
            assert problems(log) == []


def _large_batches_topic(log: eventlog.Log) -> Model:
    """Three 100-record batches over 10 keys (tombstones among them). The first append's
    pass compacts the first batch to its 10 newest records; then no pass runs until the
    ratio drops to 0.0 at the end."""
    compacted(log, min_cleanable_dirty_ratio=1.0, delete_retention_ms=FOREVER)
    model = Model("t")
    for b in range(3):
        model.append_batch(
            log,
            [
                (b"k%d" % (i % 10), None if (b, i % 7) == (1, 3) else b"%d-%d" % (b, i), T0)
                for i in range(100)
            ],
        )
    assert log.describe_topic("t").partitions[0].batches == 3
    log.alter_topic("t", min_cleanable_dirty_ratio=0.0)
    return model


def test_compact_stops_inside_large_batches_and_continues_where_it_stopped(
    log: eventlog.Log,
) -> None:
    """A batch larger than a chunk's record budget is judged over several transactions:
    each chunk stops inside it (the pass position is then an offset inside the batch)
    and the next continues from there, so no transaction holds the writer for a whole
    large batch. The result is the full pass's, and the dirty-byte accounting ends at 0."""
    chunks: list[tuple[int, int]] = []  # (pass position before, after) of each chunk
    real = compaction.run_chunk

    def spy(txn: Any, dbs: Any, keyindex: Any, info: Any, partition: int, st: Any,
            *args: Any, **kwargs: Any) -> bool:
        before = st.pass_pos
        more = real(txn, dbs, keyindex, info, partition, st, *args, **kwargs)
        chunks.append((before, st.pass_pos))
        return more

    model = _large_batches_topic(log)
    bases = {0, 100, 200}  # the batches' base offsets
    with (
        mock.patch.object(compaction, "EXPLICIT_RECORDS", 30),
        mock.patch.object(compaction, "EXPLICIT_RECORDS_NO_SYNC", 30),
        mock.patch.object(compaction, "run_chunk", spy),
    ):
        (result,) = log.compact("t").values()
    assert result.passes == 1
    assert result.records_removed == 300 - 90 - 10  # the first batch lost 90 at its append
    # At most 30 records judged per chunk: the first batch's 10 (left from its append's
    # pass) and 20 of the second (less than half the budget was used: split it), then 30
    # at a time, stopping inside the 100-record batches, except at 200: with 20 judged,
    # the third batch does not fit and is left whole to the next chunk.
    positions = [0, 120, 150, 180, 200, 230, 260, 290, NO_PASS]
    assert chunks == list(itertools.pairwise(positions))
    assert [p for p in positions[1:-1] if p in bases] == [200]
    assert offsets(log, "t") == model.after_full_pass()
    model.check_stored(log)
    model.check_lookups(log, [b"k%d" % i for i in range(10)])
    assert state(log, "t").dirty_bytes == 0
    assert problems(log) == []


def test_a_pass_stopped_inside_a_batch_continues_there_after_reopen(
    log_path: Path, eager: None
) -> None:
    """The automatic pass's chunk (AUTO_RECORDS records: the first batch's 10, then 15 of
    the second) stops inside a 100-record batch; the position survives close and reopen,
    the next append's chunk continues from it (the records before it are not judged
    again), and appends alone finish the pass."""
    with mock.patch.object(compaction, "AUTO_RECORDS", 25):
        with eventlog.open(log_path, durability="off") as log:
            model = _large_batches_topic(log)
            model.append(log, b"k0", b"new", T0)
            mid = state(log, "t")
            assert mid.compacting
            assert mid.pass_pos == 115  # inside the second batch
            assert problems(log) == []
        with eventlog.open(log_path, durability="off") as log:
            assert state(log, "t").pass_pos == mid.pass_pos
            model.append(log, b"k1", b"new", T0)
            after = state(log, "t").pass_pos
            assert after == mid.pass_pos + 25
            for i in range(100):
                if not state(log, "t").compacting:
                    break
                model.append(log, b"k%d" % (i % 10), b"later%d" % i, T0)
            else:
                raise AssertionError("the pass never finished")
            model.check_stored(log)
            log.compact("t")
            assert offsets(log, "t") == model.after_full_pass()
            model.check_lookups(log, [b"k%d" % i for i in range(10)])
            assert problems(log) == []


def pending(log: eventlog.Log, topic: str, partition: int = 0) -> tuple[int, tuple[int, ...]]:
    """The batch a pass stopped inside and the offsets in it found obsolete so far."""
    tid = topic_id(log, topic)
    return log._storage.read(
        lambda txn: read_pending(txn, log._dbs[b"tombstones"], tid, partition), "test"
    )


def test_a_batch_judged_over_several_chunks_stays_whole_until_finished(
    log: eventlog.Log, eager: None
) -> None:
    """While a pass is inside a large batch, the records it found obsolete there lose
    their index entries at once (latest() and table() move on) but stay in the batch,
    readable, until the chunk that finishes the batch rewrites (here: deletes) it;
    check() is clean at every step."""
    with mock.patch.object(compaction, "AUTO_RECORDS", 25):
        model = _large_batches_topic(log)
        model.append(log, b"k0", b"new", T0)  # judges 10 + 15 records
        base, offsets = pending(log, "t")
        assert base == 100
        assert offsets
        assert all(100 <= o < 115 for o in offsets)
        steps = 0
        while state(log, "t").pass_pos < 200:
            # The batch is untouched: all its 100 records are stored and readable.
            assert [r.offset for r in log.read("t", 0, 100, max_records=100)] == list(
                range(100, 200)
            )
            model.check_lookups(log, [b"k%d" % i for i in range(10)])
            assert problems(log) == []
            model.append(log, b"k1", b"more%d" % steps, T0)
            steps += 1
        assert steps == 4  # 85 records left, at most 25 judged a chunk
        assert pending(log, "t")[0] != 100
        # Every record of it was obsolete (the third batch has each key's newer records).
        assert not any(100 <= r.offset < 200 for r in stored(log, "t"))
        model.check_stored(log)
        assert problems(log) == []


def test_retention_removing_the_batch_a_pass_is_inside_forgets_its_pending_records(
    log: eventlog.Log, eager: None
) -> None:
    """compact,delete: delete_records() past the batch a pass stopped inside removes it
    and what was pending in it; the pass continues after it and check() stays clean."""
    compacted(log, cleanup_policy="compact,delete", min_cleanable_dirty_ratio=1.0)
    model = Model("t")
    for b in range(3):
        model.append_batch(log, [(b"k%d" % (i % 10), b"%d-%d" % (b, i), T0) for i in range(100)])
    log.alter_topic("t", min_cleanable_dirty_ratio=0.0)
    with mock.patch.object(compaction, "AUTO_RECORDS", 25):
        model.append(log, b"k0", b"new", T0)
        base, offsets = pending(log, "t")
        assert base in (0, 100, 200)
        assert offsets
        cut = base + 100  # the end of the batch the pass is inside
        log.delete_records("t", 0, cut)
        assert pending(log, "t") == (-1, ())
        assert problems(log) == []
        for i in range(40):
            if not state(log, "t").compacting:
                break
            model.append(log, b"k%d" % (i % 10), b"x%d" % i, T0)
        assert problems(log) == []
    log.compact("t")
    assert problems(log) == []
    assert [r.offset for r in stored(log, "t")] == [
        o for o in model.after_full_pass() if o >= cut
    ]


def test_altering_to_delete_mid_batch_rewrites_the_batch_without_its_pending_records(
    log: eventlog.Log, eager: None
) -> None:
    """A pass stopped inside a batch, then the topic stops being compacted but keeps its
    key index (key_index=True): the batch loses at once the records the pass found
    obsolete (their entries were gone), so read_key() and the batches agree."""
    compacted(
        log,
        min_cleanable_dirty_ratio=1.0,
        delete_retention_ms=FOREVER,
        key_index=True,
    )
    model = Model("t")
    for b in range(3):
        model.append_batch(log, [(b"k%d" % (i % 10), b"%d-%d" % (b, i), T0) for i in range(100)])
    log.alter_topic("t", min_cleanable_dirty_ratio=0.0)
    with mock.patch.object(compaction, "AUTO_RECORDS", 25):
        model.append(log, b"k0", b"new", T0)
    base, offsets = pending(log, "t")
    assert base >= 0
    assert offsets
    before = {r.offset for r in stored(log, "t")}
    log.alter_topic("t", cleanup_policy="delete")
    assert pending(log, "t") == (-1, ())
    after = {r.offset for r in stored(log, "t")}
    assert after == before - set(offsets)
    assert problems(log) == []
    for key in [b"k%d" % i for i in range(10)]:
        via_index = [r.offset for r in log.read_key("t", key)]
        assert via_index == sorted(r.offset for r in stored(log, "t") if r.key == key)


def test_compact_finishes_a_running_pass_in_small_transactions(
    log: eventlog.Log, eager: None
) -> None:
    """compact() finishes the automatic pass under way, then runs a full pass (which removes
    what became obsolete after the first pass started), in transactions of a few records."""
    with (
        mock.patch.object(compaction, "AUTO_RECORDS", 10),
        mock.patch.object(compaction, "EXPLICIT_RECORDS", 7),
        mock.patch.object(compaction, "EXPLICIT_RECORDS_NO_SYNC", 7),
    ):
        model = _big_dirty_topic(log)
        model.append(log, b"new", b"x", T0)
        assert state(log, "t").compacting
        # Past the running pass's end: makes records it already kept obsolete.
        model.append_batch(log, [(b"k%d" % i, b"newest", T0) for i in range(10)])
        assert state(log, "t").compacting
        (result,) = log.compact("t").values()
    assert result.passes == 2  # the running pass, then a full one
    assert offsets(log, "t") == model.after_full_pass()
    assert problems(log) == []


def test_nothing_compacts_a_partition_nobody_appends_to(log: eventlog.Log, eager: None) -> None:
    """Automatic compaction runs only on the partition appended to; compact() reaches the
    other one."""
    compacted(log, "t", 2, min_cleanable_dirty_ratio=1.0)
    for i in range(20):
        log.append("t", b"%d" % i, key=b"k", partition=0)
        log.append("t", b"%d" % i, key=b"k", partition=1)
    log.alter_topic("t", min_cleanable_dirty_ratio=0.0)
    log.append("t", b"last", key=b"k", partition=0)
    assert len(stored(log, "t", 0)) == 1
    assert len(stored(log, "t", 1)) == 20
    results = log.compact("t")
    assert results[TP("t", 1)].records_removed == 19
    assert len(stored(log, "t", 1)) == 1


def test_automatic_compaction_keeps_up_with_a_steady_producer(log: eventlog.Log) -> None:
    """Even with tiny per-append budgets, each append's chunk examines at least twice
    what the append wrote, so a pass outruns the producer driving it: with 1000 live
    keys and 12,000 records appended in batches of 40, the partition never holds more
    than a small multiple of its live keys."""
    compacted(log)
    most = 0
    with (
        mock.patch.object(compaction, "AUTO_RECORDS", 4),
        mock.patch.object(compaction, "AUTO_BATCHES", 2),
    ):
        for r in range(300):
            log.append_batch(
                "t", [NewRecord(b"v%d" % r, key=b"k%d" % ((40 * r + i) % 1000)) for i in range(40)]
            )
            if r % 25 == 24:
                most = max(most, len(stored(log, "t")))
    assert 1000 <= most <= 3000
    assert len(log.table("t")) == 1000
    assert problems(log) == []


def test_log_append_time_records_keep_their_timestamps_through_compaction(
    log: eventlog.Log,
) -> None:
    """Small batches are merged by compaction: LogAppendTime records from different
    appends keep their own append times."""
    compacted(log, message_timestamp_type="LogAppendTime", min_cleanable_dirty_ratio=1.0)
    appended = {}
    for i in range(40):
        meta = log.append("t", b"%d" % i, key=b"k%d" % (i % 15))
        appended[meta.offset] = meta.timestamp
        if i % 10 == 0:
            time.sleep(0.002)  # distinct append times
    assert len(set(appended.values())) > 1
    log.compact("t")
    got = stored(log, "t")
    assert len(got) == 15
    assert all(r.timestamp == appended[r.offset] for r in got)
    assert problems(log) == []


def test_retention_and_a_running_pass_on_compact_delete(
    log: eventlog.Log, clock: Clock, eager: None
) -> None:
    """compact,delete: retention (retention.bytes) deletes the oldest batches, moving
    the log start, while passes run in tiny chunks; latest() never names a deleted
    record, the index stays consistent, and what remains is a subsequence of what was
    appended."""
    compacted(
        log,
        cleanup_policy="compact,delete",
        retention_ms=-1,
        retention_bytes=60,
        min_cleanable_dirty_ratio=0.2,
        delete_retention_ms=FOREVER,
    )
    model = Model("t")
    keys = [b"k%d" % i for i in range(12)]
    with (
        mock.patch.object(compaction, "AUTO_RECORDS", 3),
        mock.patch.object(compaction, "AUTO_BATCHES", 1),
    ):
        for minute in range(120):
            clock.now = T0 + minute * MINUTE
            model.append_batch(
                log,
                [
                    (
                        keys[(minute * 3 + i) % 12],
                        None if (minute + i) % 13 == 0 else b"%d" % minute,
                        clock.now,
                    )
                    for i in range(3)
                ],
            )
            start = log.beginning_offsets("t")[0]
            for record in stored(log, "t"):
                assert record == model.by_offset[record.offset]
            if minute % 20 == 19:
                newest = model.newest()
                for key in keys:
                    got = log.latest("t", key)
                    want = newest[key]
                    if want.offset >= start and want.value is not None:
                        assert got == want
                    else:
                        assert got is None
                assert problems(log) == []
    assert log.beginning_offsets("t")[0] > 0
    assert problems(log) == []


def test_retention_ms_on_compact_delete_expires_a_key_never_updated(
    log: eventlog.Log, clock: Clock
) -> None:
    """compact,delete is how stale keys expire: a key written once, three hours ago,
    with retention.ms = 30 min, must be gone once retention runs, while other keys keep
    being updated (and compacted) every minute."""
    compacted(log, cleanup_policy="compact,delete", retention_ms=30 * MINUTE)
    log.append("t", b"written once", key=b"stale", timestamp=T0)
    for minute in range(1, 180):
        clock.now = T0 + minute * MINUTE
        log.append("t", b"%d" % minute, key=b"busy%d" % (minute % 5), timestamp=clock.now)
    log.run_retention("t", now_ms=clock.now)
    assert log.latest("t", b"stale") is None
    assert all(r.timestamp >= clock.now - 30 * MINUTE - MINUTE for r in stored(log, "t"))


# --- latest() and table() --------------------------------------------------------------


def test_latest_and_table_survive_reopen_and_read_only_opens(log_path: Path) -> None:
    """latest() and the table answer the same after reopening, read-only too, and after a
    compaction."""
    with eventlog.open(log_path, durability="off") as log:
        compacted(log, delete_retention_ms=FOREVER)
        model = Model("t")
        for i in range(30):
            model.append(log, b"k%d" % (i % 4), None if i == 25 else b"%d" % i, T0)
    for readonly in (False, True):
        with eventlog.open(log_path, readonly=readonly) as log:
            model.check_lookups(log, [b"k0", b"k1", b"k2", b"k3", b"missing"])
            assert log.latest("t", b"k1").offset == 29  # type: ignore[union-attr]
    with eventlog.open(log_path, durability="off") as log:
        log.compact("t")
        log.close()
    with eventlog.open(log_path, readonly=True) as log:
        model.check_lookups(log, [b"k0", b"k1", b"k2", b"k3"])
        assert problems(log) == []


def test_latest_never_returns_a_record_retention_deleted(log: eventlog.Log, clock: Clock) -> None:
    """compact,delete with retention.ms: batches past retention go with their index
    entries; a key whose every record went is absent, one with a newer record answers
    with it; the table and its length shrink."""
    compacted(
        log, cleanup_policy="compact,delete", retention_ms=HOUR, min_cleanable_dirty_ratio=1.0
    )
    clock.now = T0 - 3 * HOUR  # the appends' own retention keeps everything
    log.append("t", b"old-a", key=b"a", timestamp=T0 - 3 * HOUR)
    log.append("t", b"old-b", key=b"b", timestamp=T0 - 3 * HOUR)
    log.append("t", b"new-b", key=b"b", timestamp=T0)
    log.append("t", b"c", key=b"c", timestamp=T0)
    table = log.table("t")
    assert len(table) == 3
    log.run_retention("t", now_ms=T0)
    assert log.beginning_offsets("t") == {0: 2}
    assert log.latest("t", b"a") is None
    assert log.latest("t", b"b").value == b"new-b"  # type: ignore[union-attr]
    assert dict(table) == {b"b": b"new-b", b"c": b"c"}
    assert len(table) == 2
    assert b"a" not in table
    assert problems(log) == []


def test_retention_bytes_on_compact_delete_keeps_the_index_right(
    log: eventlog.Log, clock: Clock
) -> None:
    """compact,delete with retention.bytes: as old batches go, latest() never names a record
    below the log start, and the table agrees with latest() for every key."""
    compacted(
        log, cleanup_policy="compact,delete", retention_bytes=300, min_cleanable_dirty_ratio=1.0
    )
    model = Model("t")
    for i in range(100):
        model.append(log, b"k%02d" % (i % 30), b"v" * 20, T0)
        start = log.beginning_offsets("t")[0]
        if i % 10 == 9:
            table = dict(log.table("t"))
            for k in (b"k%02d" % j for j in range(30)):
                got = log.latest("t", k)
                assert got is None or got.offset >= start
                assert (got is not None) == (k in table)
            assert len(log.table("t")) == len(table)
    assert log.beginning_offsets("t")[0] > 50
    assert problems(log) == []


def test_delete_records_on_compact_delete_hides_what_it_deleted(log: eventlog.Log) -> None:
    """delete_records() inside a batch and on a batch boundary: latest()/table()/len()
    never show a record below the new log start."""
    compacted(log, cleanup_policy="compact,delete", retention_ms=-1, min_cleanable_dirty_ratio=1.0)
    log.append_batch(
        "t", [NewRecord(b"a0", key=b"a"), NewRecord(b"b0", key=b"b"), NewRecord(b"c0", key=b"c")]
    )
    log.append("t", b"d0", key=b"d")
    log.append("t", b"e0", key=b"e")
    log.append("t", b"c1", key=b"c")
    table = log.table("t")
    assert len(table) == 5
    log.delete_records("t", 0, 2)  # inside the first batch: a and b go
    assert log.latest("t", b"a") is None
    assert log.latest("t", b"b") is None
    assert log.latest("t", b"c").value == b"c1"  # type: ignore[union-attr]
    assert sorted(table) == [b"c", b"d", b"e"]
    assert len(table) == 3
    assert problems(log) == []
    log.delete_records("t", 0, 4)  # a batch boundary: d goes
    assert log.latest("t", b"d") is None
    assert b"d" not in table
    assert dict(table) == {b"c": b"c1", b"e": b"e0"}
    assert len(table) == 2
    assert problems(log) == []


def test_altering_delete_to_compact_indexes_existing_records_and_drops_keyless_ones(
    log: eventlog.Log,
) -> None:
    """alter_topic delete -> compact builds the index from the stored records (records
    without a key are not indexed); the next pass drops the keyless records and the obsolete
    value."""
    log.create_topic("t")
    log.append("t", b"no key 1")
    log.append("t", b"a1", key=b"a")
    log.append("t", b"no key 2")
    log.append("t", b"a2", key=b"a")
    log.append("t", None, key=b"b")
    log.append("t", b"c", key=b"c")
    with pytest.raises(InvalidArgumentError):
        log.latest("t", b"a")
    log.alter_topic("t", cleanup_policy="compact", delete_retention_ms=FOREVER)
    assert log.latest("t", b"a").value == b"a2"  # type: ignore[union-attr]
    assert log.latest("t", b"b") is None
    assert dict(log.table("t")) == {b"a": b"a2", b"c": b"c"}
    assert len(log.table("t")) == 2
    assert problems(log) == []
    (result,) = log.compact("t").values()
    assert result.records_removed == 3  # two keyless records and a1
    assert [r.value for r in stored(log, "t")] == [b"a2", None, b"c"]
    assert problems(log) == []


def test_altering_compact_to_delete_drops_the_index(log: eventlog.Log) -> None:
    """alter_topic compact -> delete: latest()/table() (even a Table made before) refuse
    with InvalidArgumentError, horizons are forgotten, keyless records are accepted; back to
    compact rebuilds the index."""
    compacted(log, delete_retention_ms=FOREVER)
    log.append("t", b"v", key=b"k")
    log.append("t", None, key=b"dead")
    log.compact("t")
    assert tombstone_horizons(log, "t")
    table = log.table("t")
    log.alter_topic("t", cleanup_policy="delete")
    with pytest.raises(InvalidArgumentError, match="key index"):
        log.latest("t", b"k")
    with pytest.raises(InvalidArgumentError):
        log.table("t")
    with pytest.raises(InvalidArgumentError):
        len(table)
    with pytest.raises(InvalidArgumentError):
        table[b"k"]
    assert tombstone_horizons(log, "t") == {}
    log.append("t", b"keyless now allowed")
    assert problems(log) == []
    log.alter_topic("t", cleanup_policy="compact", delete_retention_ms=FOREVER)
    assert dict(log.table("t")) == {b"k": b"v"}
    assert problems(log) == []


def test_key_index_on_a_delete_topic_answers_but_never_compacts(log: eventlog.Log) -> None:
    """key_index=True on a delete topic: latest()/table() work (keyless records allowed and
    ignored), compact() leaves the topic alone, and turning the index off makes latest()
    refuse."""
    log.create_topic("t", key_index=True)
    for i in range(20):
        log.append("t", b"%d" % i, key=b"k%d" % (i % 2))
    log.append("t", b"keyless")
    log.append("t", None, key=b"k0")
    assert log.latest("t", b"k1").value == b"19"  # type: ignore[union-attr]
    assert log.latest("t", b"k0") is None
    assert dict(log.table("t")) == {b"k1": b"19"}
    assert log.compact() == {}
    with pytest.raises(InvalidArgumentError):
        log.compact("t")
    assert len(stored(log, "t")) == 22
    assert problems(log) == []
    log.alter_topic("t", key_index=False)
    with pytest.raises(InvalidArgumentError):
        log.latest("t", b"k1")
    assert problems(log) == []


def test_key_index_topic_under_retention(log: eventlog.Log, clock: Clock) -> None:
    """On a key_index topic, retention.ms removes the index entries of what it deletes."""
    log.create_topic("t", key_index=True, retention_ms=HOUR)
    log.append("t", b"old", key=b"a", timestamp=T0 - 2 * HOUR)
    log.append("t", b"new", key=b"b", timestamp=T0)
    log.run_retention("t", now_ms=T0)
    assert log.latest("t", b"a") is None
    assert dict(log.table("t")) == {b"b": b"new"}
    assert len(log.table("t")) == 1
    assert problems(log) == []


def test_the_partition_rule_on_a_multi_partition_topic(log: eventlog.Log) -> None:
    """The key's default partition answers when it holds the key; a key written only
    elsewhere (explicit partition) is found there; latest() and table() agree."""
    compacted(log, "t", 3)
    keys = [b"key-%d" % i for i in range(30)]
    for round_ in range(3):
        for k in keys:
            log.append("t", b"%s@%d" % (k, round_), key=k)
    for k in keys:
        record = log.latest("t", k)
        assert record is not None
        assert record.partition == default_partition(k, 3)
        assert record.value == b"%s@2" % k
    stray = b"stray"
    home = default_partition(stray, 3)
    elsewhere = (home + 1) % 3
    log.append("t", b"explicit", key=stray, partition=elsewhere)
    assert log.latest("t", stray).partition == elsewhere  # type: ignore[union-attr]
    assert log.table("t")[stray] == b"explicit"
    log.append("t", b"at home", key=stray)
    log.append("t", b"explicit again (newer)", key=stray, partition=elsewhere)
    assert log.latest("t", stray).value == b"at home"  # type: ignore[union-attr]
    assert log.latest("t", stray, partition=elsewhere).value == b"explicit again (newer)"  # type: ignore[union-attr]
    table = log.table("t")
    assert table[stray] == b"at home"
    items = list(table.items())
    assert len(items) == len(table) == len(keys) + 1
    assert len({k for k, _ in items}) == len(items)  # every key once
    assert dict(items) == {k: log.latest("t", k).value for k in [*keys, stray]}  # type: ignore[union-attr]
    log.append("t", None, key=stray)  # a tombstone at home hides the stray copy too
    assert log.latest("t", stray) is None
    assert stray not in table
    assert len(table) == len(keys)
    log.compact("t")
    assert len(table) == len(keys)
    assert sum(len(stored(log, "t", p)) for p in range(3)) == len(keys) + 2
    assert problems(log) == []


def test_long_keys_use_the_digest_and_iterate_as_the_real_key(log: eventlog.Log) -> None:
    """Keys longer than 400 bytes (digest-indexed), including two that differ only past the
    limit: latest(), the table (iterating as the real keys) and compaction treat them as
    distinct keys."""
    compacted(log, delete_retention_ms=FOREVER)
    prefix = b"p" * 401
    long_a, long_b = prefix + b"a", prefix + b"b"  # differ only past the raw-key limit
    exact = b"e" * 400  # the longest key stored as itself
    for i in range(3):
        log.append("t", b"a%d" % i, key=long_a)
        log.append("t", b"b%d" % i, key=long_b)
        log.append("t", b"e%d" % i, key=exact)
    assert index_key(1, 0, long_a) != index_key(1, 0, long_b)
    assert len(index_key(1, 0, long_a)) < len(long_a)
    for _ in range(2):
        assert log.latest("t", long_a).value == b"a2"  # type: ignore[union-attr]
        assert log.latest("t", long_b).key == long_b  # type: ignore[union-attr]
        assert log.latest("t", prefix) is None
        table = log.table("t")
        assert dict(table) == {long_a: b"a2", long_b: b"b2", exact: b"e2"}
        assert set(table) == {long_a, long_b, exact}
        assert long_a in table
        assert prefix not in table
        log.compact("t")
    assert len(stored(log, "t")) == 3
    log.append("t", None, key=long_a)
    assert long_a not in log.table("t")
    assert problems(log) == []


def test_new_partitions_do_not_hide_keys_stored_in_the_old_ones(log: eventlog.Log) -> None:
    """After create_partitions() a key's default partition may change: latest() still
    finds the key where it was written until its new home holds it."""
    compacted(log, "t", 1)
    keys = [b"key-%d" % i for i in range(20)]
    for k in keys:
        log.append("t", b"old " + k, key=k)
    log.create_partitions("t", 3)
    moved = [k for k in keys if default_partition(k, 3) != 0]
    assert moved
    for k in keys:
        assert log.latest("t", k).value == b"old " + k  # type: ignore[union-attr]
    log.append("t", b"new", key=moved[0])
    assert log.latest("t", moved[0]).value == b"new"  # type: ignore[union-attr]
    table = log.table("t")
    assert dict(table) == {k: b"new" if k == moved[0] else b"old " + k for k in keys}
    assert len(table) == 20
    assert problems(log) == []


def test_delete_topic_leaves_no_key_index_entries_or_horizons(log: eventlog.Log) -> None:
    """delete_topic() removes the topic's key-index entries and tombstone horizons."""
    compacted(log, delete_retention_ms=FOREVER)
    for i in range(10):
        log.append("t", None if i == 9 else b"v", key=b"k%d" % (i % 4))
    log.compact("t")
    tid = topic_id(log, "t")
    assert tombstone_horizons(log, "t")
    log.delete_topic("t")

    def leftovers(txn: Any) -> list[bytes]:
        found = []
        for name in (b"keys", b"tombstones"):
            cursor = txn.cursor(db=log._dbs[name])
            if cursor.set_range(tid.to_bytes(4, "big")):
                key = bytes(cursor.key())
                if key[:4] == tid.to_bytes(4, "big"):
                    found.append(name + b": " + key)
        return found

    assert log._storage.read(leftovers, "test") == []
    assert problems(log) == []


def test_the_empty_key_is_a_key(log: eventlog.Log) -> None:
    """b"" is a key like any other: indexed, compacted, deleted by a tombstone."""
    compacted(log)
    log.append("t", b"1", key=b"")
    log.append("t", b"2", key=b"")
    assert log.latest("t", b"").value == b"2"  # type: ignore[union-attr]
    assert dict(log.table("t")) == {b"": b"2"}
    log.compact("t")
    assert [r.value for r in stored(log, "t")] == [b"2"]
    log.append("t", None, key=b"")
    assert b"" not in log.table("t")
    assert problems(log) == []


_table_op = st.tuples(
    st.sampled_from([b"a", b"b", b"c", b"", b"zz", b"\x00", b"\xff" * 3]),
    st.one_of(st.none(), st.binary(max_size=4)),
    st.integers(0, 2),  # partition hint: 0 = the default partitioner, else explicit p-1
)


@settings(max_examples=25, deadline=None, suppress_health_check=FIXTURE_OK)
@given(ops=st.lists(_table_op, max_size=25), partitions=st.sampled_from([1, 2]))
def test_the_table_behaves_like_a_dict(
    tmp_path: Path, ops: list[tuple[bytes, bytes | None, int]], partitions: int
) -> None:
    """len, bool, iteration (in key order within a partition), items, values, in, get
    and [] agree with a dict built by the partition rule."""
    path = tmp_path / f"example-{next(_examples)}"
    with eventlog.open(path, durability="off") as log:
        compacted(log, "t", partitions, delete_retention_ms=FOREVER)
        newest: dict[tuple[bytes, int], bytes | None] = {}
        for key, value, hint in ops:
            partition = None if hint == 0 or hint > partitions else hint - 1
            meta = log.append("t", value, key=key, partition=partition)
            newest[(key, meta.partition)] = value
        expected: dict[bytes, bytes] = {}
        for key in {k for k, _ in newest}:
            home = default_partition(key, partitions)
            order = [home, *(p for p in range(partitions) if p != home)]
            owner = next(p for p in order if (key, p) in newest)
            if newest[(key, owner)] is not None:
                expected[key] = newest[(key, owner)]  # type: ignore[assignment]
        table = log.table("t")
        assert dict(table) == expected
        assert len(table) == len(expected)
        assert bool(table) == bool(expected)
        assert sorted(table) == sorted(expected)
        if partitions == 1:
            assert list(table) == sorted(expected)
        assert sorted(table.items()) == sorted(expected.items())
        assert sorted(table.values()) == sorted(expected.values())
        for key in [b"a", b"b", b"c", b"", b"zz", b"\x00", b"\xff" * 3, b"never"]:
            assert (key in table) == (key in expected)
            assert table.get(key) == expected.get(key)
            assert table.get(key, b"default") == expected.get(key, b"default")
            if key in expected:
                assert table[key] == expected[key]
            else:
                with pytest.raises(KeyError):
                    table[key]
        for not_bytes in ("a", 1, bytearray(b"a"), None):
            assert not_bytes not in table
        log.compact("t")
        assert dict(table) == expected
        assert len(table) == len(expected)


def test_the_table_is_a_read_only_live_mapping(log: eventlog.Log) -> None:
    """The table is a Mapping but not a MutableMapping, sees appends made after it was
    created, and raises TopicNotFoundError once its topic is deleted."""
    compacted(log)
    table = log.table("t")
    assert isinstance(table, Mapping)
    assert not isinstance(table, MutableMapping)
    assert isinstance(table, eventlog.Table)
    assert table.topic == "t"
    assert "t" in repr(table)
    assert not hasattr(table, "__setitem__")
    assert not hasattr(table, "__delitem__")
    with pytest.raises(TypeError):
        table[b"k"] = b"v"  # type: ignore[index]
    with pytest.raises(TypeError):
        del table[b"k"]  # type: ignore[attr-defined]
    assert len(table) == 0
    assert not table
    assert list(table) == []
    log.append("t", b"v", key=b"k")
    assert table == {b"k": b"v"}
    assert len(table) == 1
    assert table
    log.delete_topic("t")
    with pytest.raises(TopicNotFoundError):  # a KeyError, but not swallowed by get()
        table.get(b"k")
    with pytest.raises(TopicNotFoundError):
        b"k" in table  # noqa: B015
    with pytest.raises(TopicNotFoundError):
        len(table)
    with pytest.raises(TopicNotFoundError):
        list(table)
    with pytest.raises(TopicNotFoundError):
        table[b"k"]
    with pytest.raises(TopicNotFoundError):
        log.table("t")
    with pytest.raises(TopicNotFoundError):
        log.latest("t", b"k")


def test_lookups_of_keys_that_are_not_bytes(log: eventlog.Log) -> None:
    """Like a dict whose keys are bytes: a key that is not bytes is simply absent
    (``in`` False, ``get`` the default, ``[]`` KeyError, with the .encode() hint for
    str), whereas latest() refuses it (InvalidRecordError)."""
    compacted(log)
    log.append("t", b"v", key=b"a")
    table = log.table("t")
    for key in ("a", None, 1, bytearray(b"a")):
        assert key not in table
        assert table.get(key) is None  # type: ignore[arg-type]
        assert table.get(key, b"default") == b"default"  # type: ignore[arg-type]
        with pytest.raises(KeyError):
            table[key]  # type: ignore[index]
    with pytest.raises(KeyError, match=r"\.encode\(\)"):
        table["a"]  # type: ignore[index]
    assert table[b"a"] == b"v"


def test_table_iterates_short_keys_in_byte_order_then_long_keys(log: eventlog.Log) -> None:
    """As documented: keys in byte order, keys longer than 400 bytes (indexed by a
    digest) after the others."""
    compacted(log)
    short = [b"z", b"", b"m", b"\xff", b"a" * 400]
    long = [b"a" * 401, b"b" * 500, b"0" * 1000]
    for k in [*long, *short]:
        log.append("t", b"v", key=k)
    got = list(log.table("t"))
    assert got[: len(short)] == sorted(short)
    assert sorted(got[len(short) :]) == sorted(long)


def test_table_iteration_spans_several_read_chunks(log: eventlog.Log) -> None:
    """More keys than one read transaction hands out (1000), with tombstones between
    them: every live key exactly once, in key order."""
    compacted(log)
    keys = [b"k%05d" % i for i in range(2600)]
    log.append_batch("t", [NewRecord(b"v", key=k) for k in keys])
    log.append_batch("t", [NewRecord(None, key=k) for k in keys[::3]])
    live = [k for i, k in enumerate(keys) if i % 3]
    table = log.table("t")
    assert list(table) == live
    assert len(table) == len(live)
    assert len(list(table.values())) == len(live)


# --- check() ---------------------------------------------------------------------------


def _indexed_log(log: eventlog.Log) -> int:
    compacted(log, delete_retention_ms=FOREVER)
    log.append("t", b"v0", key=b"k")
    log.append("t", b"v1", key=b"k")
    log.append("t", b"w", key=b"other")
    log.append("t", None, key=b"dead")
    log.compact("t")
    assert problems(log) == []
    return topic_id(log, "t")


def _index_problems(log: eventlog.Log) -> list[eventlog.Problem]:
    report = log.check()
    assert not report
    return [p for p in report.problems if p.kind == "index"]


def test_check_reports_a_missing_key_index_entry(log: eventlog.Log) -> None:
    """check() reports a record whose index entry was deleted."""
    tid = _indexed_log(log)
    keys = log._dbs[b"keys"]
    def damage(txn: Any) -> None:
        cursor = txn.cursor(db=keys)
        assert find_entry(cursor, index_key(tid, 0, b"other"), 2, False)
        cursor.delete()

    log._storage.write(damage, "test: damaging the index")
    found = _index_problems(log)
    assert any(p.offset == 2 and "no entry" in p.message for p in found), found


def test_check_reports_a_stale_key_index_entry_and_latest_refuses_it(log: eventlog.Log) -> None:
    """check() reports an index entry naming no record; latest() raises CorruptLogError for
    it rather than returning another record."""
    tid = _indexed_log(log)
    keys = log._dbs[b"keys"]
    log._storage.write(
        lambda txn: txn.put(index_key(tid, 0, b"k"), entry(999, False), db=keys),
        "test: damaging the index",
    )
    found = _index_problems(log)
    assert any("name no stored record" in p.message for p in found), found
    with pytest.raises(CorruptLogError):
        log.latest("t", b"k")


def test_check_reports_a_wrong_live_key_counter(log: eventlog.Log) -> None:
    """check() reports a live-key counter that disagrees with the index."""
    tid = _indexed_log(log)
    keys = log._dbs[b"keys"]

    def corrupt(txn: Any) -> None:
        txn.delete(count_key(tid, 0), db=keys)
        txn.put(count_key(tid, 0), (7).to_bytes(8, "big"), db=keys)

    log._storage.write(corrupt, "test: damaging the counter")
    found = _index_problems(log)
    assert any("counter" in p.message for p in found), found


def test_check_reports_a_horizon_of_no_stored_tombstone(log: eventlog.Log) -> None:
    """check() reports a tombstone horizon at an offset that holds no tombstone."""
    tid = _indexed_log(log)
    tdb = log._dbs[b"tombstones"]
    log._storage.write(
        lambda txn: txn.put(BATCH_KEY.pack(tid, 0, 1), (5).to_bytes(8, "big"), db=tdb),
        "test: a stray horizon",
    )
    found = _index_problems(log)
    assert any(p.offset == 1 and "horizon" in p.message for p in found), found


# --- bad input -------------------------------------------------------------------------


def test_latest_rejects_bad_arguments(log: eventlog.Log) -> None:
    """latest(): keys that are not bytes (with the .encode() hint for str), partitions out
    of range or of the wrong type, unknown or non-indexed topics, bad topic names."""
    compacted(log, "t", 2)
    log.create_topic("plain")
    with pytest.raises(InvalidRecordError, match=r"\.encode\(\)"):
        log.latest("t", "text")  # type: ignore[arg-type]
    for bad_key in (5, None, bytearray(b"k"), memoryview(b"k")):
        with pytest.raises(InvalidRecordError):
            log.latest("t", bad_key)  # type: ignore[arg-type]
    for bad_partition in (2, -1, 10**9):
        with pytest.raises(PartitionNotFoundError):
            log.latest("t", b"k", partition=bad_partition)
    for wrong_type in ("0", 1.0, True):
        with pytest.raises(InvalidArgumentError):
            log.latest("t", b"k", partition=wrong_type)  # type: ignore[arg-type]
    with pytest.raises(TopicNotFoundError):
        log.latest("nope", b"k")
    with pytest.raises(InvalidArgumentError):
        log.latest("plain", b"k")
    with pytest.raises(InvalidArgumentError):
        log.latest("bad name!", b"k")
    assert log.latest("t", b"k", partition=1) is None


def test_table_rejects_unknown_and_unindexed_topics(log: eventlog.Log) -> None:
    """table(): TopicNotFoundError for an unknown topic; InvalidArgumentError (saying how to
    get an index) for a topic without one."""
    log.create_topic("plain")
    with pytest.raises(TopicNotFoundError):
        log.table("nope")
    with pytest.raises(InvalidArgumentError, match="key_index=True"):
        log.table("plain")


def test_compact_rejects_bad_arguments(log_path: Path) -> None:
    """compact(): bad now_ms values, a non-compacted topic named, an unknown topic, a read-
    only or closed log."""
    with eventlog.open(log_path, durability="off") as log:
        compacted(log, min_cleanable_dirty_ratio=1.0)
        log.create_topic("plain")
        log.append("t", b"v", key=b"k")
        log.append("t", b"v", key=b"k")
        for bad in (-1, 1.5, "1", True):
            with pytest.raises(InvalidArgumentError):
                log.compact(now_ms=bad)  # type: ignore[arg-type]
        with pytest.raises(InvalidArgumentError, match=r"cleanup\.policy"):
            log.compact("plain")
        with pytest.raises(TopicNotFoundError):
            log.compact("nope")
        assert set(log.compact()) == {TP("t", 0)}
    with eventlog.open(log_path, readonly=True) as log:
        with pytest.raises(ReadOnlyLogError):
            log.compact()
        with pytest.raises(ReadOnlyLogError):
            log.compact("t")
        assert log.latest("t", b"k").value == b"v"  # type: ignore[union-attr]
    with pytest.raises(LogClosedError):
        log.compact()
    with pytest.raises(LogClosedError):
        log.latest("t", b"k")


# --- a long reader ---------------------------------------------------------------------


def _raw_batches(log: eventlog.Log, txn: Any, tid: int) -> dict[bytes, bytes]:
    cursor = txn.cursor(db=log._dbs[b"batches"])
    out = {}
    on = cursor.set_range(BATCH_KEY.pack(tid, 0, 0))
    while on:
        key = bytes(cursor.key())
        t, _p, base = BATCH_KEY.unpack(key)
        if t != tid or base == STATE_OFFSET:
            break
        out[key] = bytes(cursor.value())
        on = cursor.next()
    return out


def test_a_reader_holding_a_snapshot_sees_it_unchanged_while_compaction_rewrites(
    log: eventlog.Log,
) -> None:
    """A read transaction opened before a pass keeps reading exactly the batches that
    were there (same bytes, same decoded records) while the pass rewrites and deletes
    them; afterwards check() is clean and new data reads right."""
    compacted(log, min_cleanable_dirty_ratio=1.0, delete_retention_ms=FOREVER)
    model = Model("t")
    for b in range(20):
        model.append_batch(log, [(b"k%d" % ((b + i) % 6), b"%d-%d" % (b, i), T0) for i in range(5)])
    tid = topic_id(log, "t")
    opened, compacted_now, done = threading.Event(), threading.Event(), threading.Event()
    seen: dict[str, Any] = {}

    def hold(txn: Any) -> None:
        before = _raw_batches(log, txn, tid)
        opened.set()
        assert compacted_now.wait(10)
        after = _raw_batches(log, txn, tid)
        seen["same"] = before == after
        seen["records"] = [
            (off, batch.keys[i], batch.values[i])
            for key, value in after.items()
            for batch in [decode_batch(key, value, BATCH_KEY.unpack(key)[2])]
            for i, off in enumerate(batch.offsets)
        ]

    reader = threading.Thread(target=lambda: (log._storage.read(hold, "test"), done.set()))
    reader.start()
    try:
        assert opened.wait(10)
        (result,) = log.compact("t").values()
        assert result.batches_deleted
        assert result.batches_rewritten
        for i in range(50):
            model.append(log, b"new%d" % (i % 4), b"n%d" % i, T0)
        log.compact("t")
    finally:
        compacted_now.set()
        reader.join(10)
    assert done.is_set()
    assert seen["same"]
    assert seen["records"] == [
        (r.offset, r.key, r.value)
        for r in sorted(model.by_offset.values(), key=lambda r: r.offset)
        if r.offset < 100
    ]
    assert offsets(log, "t") == model.after_full_pass()
    model.check_lookups(log, [b"k%d" % i for i in range(6)] + [b"new%d" % i for i in range(4)])
    assert problems(log) == []


def test_a_slow_scan_during_compaction_reads_only_appended_records(
    log: eventlog.Log, eager: None
) -> None:
    """log.scan in small pages, with passes between the pages: every record it yields is
    the one appended at its offset, in increasing offset order."""
    compacted(log, min_cleanable_dirty_ratio=0.0, delete_retention_ms=FOREVER)
    model = Model("t")
    for i in range(200):
        model.append(log, b"k%d" % (i % 10), b"%d" % i, T0)
    got = []
    for n, record in enumerate(log.scan("t", 0, page_size=3)):
        got.append(record)
        if n % 2 == 0:
            model.append(log, b"k%d" % (n % 10), b"during %d" % n, T0)
    assert [r.offset for r in got] == sorted({r.offset for r in got})
    assert all(r == model.by_offset[r.offset] for r in got)
    assert problems(log) == []


def _churn(log: eventlog.Log, topic: str, rounds: int) -> None:
    for r in range(rounds):
        log.append_batch(
            topic,
            [
                NewRecord(os.urandom(1000), key=b"k%d" % (i % 20), timestamp=T0 + r)
                for i in range(100)
            ],
        )
        log.compact(topic)


def test_data_file_growth_with_and_without_a_held_reader(tmp_path: Path) -> None:
    """Records (prints, for the docs) the data file size after the same compaction churn
    (12 rounds of 100 incompressible 1 KB values over 20 keys, compacted each round) with
    and without a read transaction held throughout, and after 12 more rounds once the
    reader is gone. A held reader pins every page freed after its snapshot, so the file
    grows by about the data written meanwhile; without one, freed pages are reused.
    Once the reader is gone, its pinned pages are reused in turn: the file stops
    growing."""
    sizes: dict[str, int] = {}
    for held in (False, True):
        path = tmp_path / f"held-{held}"
        with eventlog.open(path, durability="off") as log:
            compacted(log, min_cleanable_dirty_ratio=1.0)
            _churn(log, "t", 2)
            release = threading.Event()
            opened = threading.Event()

            def hold(
                txn: Any, release: threading.Event = release, opened: threading.Event = opened
            ) -> None:
                opened.set()
                release.wait(30)

            reader = threading.Thread(target=log._storage.read, args=(hold, "test"))
            if held:
                reader.start()
                assert opened.wait(10)
            try:
                _churn(log, "t", 12)
            finally:
                release.set()
                if held:
                    reader.join(10)
            assert problems(log) == []
            label = "reader held" if held else "no reader"
            sizes[label] = os.path.getsize(path / "data.mdb")
            _churn(log, "t", 12)
            sizes[label + ", then 12 rounds more without it"] = os.path.getsize(path / "data.mdb")
            assert [r.key for r in stored(log, "t")] == [b"k%d" % i for i in range(20)]
    print("data.mdb sizes after churn:", sizes)
    # 1.2 MB of values were written while the reader was held.
    assert sizes["reader held"] - sizes["no reader"] > 600_000
    assert sizes["reader held, then 12 rounds more without it"] <= sizes["reader held"]
    assert sizes["no reader, then 12 rounds more without it"] < sizes["reader held"]


# --- consumers across a compacted tail -------------------------------------------------


def _poll_until(consumer: eventlog.Consumer, count: int) -> list[Record]:
    out: list[Record] = []
    deadline = time.monotonic() + 10
    while len(out) < count:
        assert time.monotonic() < deadline, "timed out polling"
        out.extend(consumer.poll(0.2))
    return out


def test_a_group_consumer_moves_past_a_tail_compaction_emptied(log: eventlog.Log) -> None:
    """A group consumer whose position lies in a range compaction emptied up to the end
    moves to the end at its next poll (lag 0, commit at the end) and then reads new records."""
    compacted(log, delete_retention_ms=0)
    for i in range(5):
        log.append("t", b"%d" % i, key=b"live%d" % i)
    tp = TP("t", 0)
    with log.consumer("t", group="g", auto_offset_reset="earliest") as consumer:
        assert [r.offset for r in _poll_until(consumer, 5)] == [0, 1, 2, 3, 4]
        consumer.commit()
        log.append("t", b"brief", key=b"x")
        log.append("t", None, key=b"x")
        log.append("t", None, key=b"y")
        log.compact("t")
        assert offsets(log, "t") == [0, 1, 2, 3, 4]  # 5..7 are gone, the end is 8
        assert consumer.lag() == {tp: 3}
        assert consumer.poll(0.2) == []
        assert consumer.position(tp) == 8
        assert consumer.lag() == {tp: 0}
        consumer.commit()
        assert consumer.committed(tp) == 8
        log.append("t", b"next", key=b"z")
        got = _poll_until(consumer, 1)
        assert [(r.offset, r.value) for r in got] == [(8, b"next")]
    assert problems(log) == []


def test_a_consumer_inside_a_compacted_gap_continues_at_the_next_record(
    log: eventlog.Log,
) -> None:
    """A consumer positioned on a removed offset continues at the next record kept."""
    compacted(log)
    for i in range(6):
        log.append("t", b"%d" % i, key=b"a" if i < 5 else b"b")
    log.append("t", b"a-final", key=b"a")
    tp = TP("t", 0)
    with log.consumer(auto_offset_reset="earliest") as consumer:
        consumer.assign([tp])
        consumer.seek(tp, 2)
        log.compact("t")
        got = consumer.poll(0)
        assert [(r.offset, r.value) for r in got] == [(5, b"5"), (6, b"a-final")]
        assert consumer.lag() == {tp: 0}
