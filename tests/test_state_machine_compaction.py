"""A hypothesis state machine for compacted topics (``compact`` and ``compact,delete``).

The machine drives a real log and keeps, per partition, every record ever appended (its
offset is its index) and the batches they were appended in. When compaction runs is the
engine's choice (a pass may start at any append, and ``compact()`` runs one), so the model
does not predict which records are stored; it keeps bounds on what compaction *may* have
removed and checks Kafka's guarantees against them after every step:

* what the log holds is a subsequence of what was appended, each record identical to the
  one appended at its offset (offsets never change, order is kept);
* a record is missing only when the model allows it: it is below the log start (retention,
  delete_records), or a newer record of its key lies below the end of some pass that may
  have run (``min.compaction.lag.ms`` judged on each batch's largest timestamp, as the
  engine judges it), or it is a tombstone whose ``delete.retention.ms`` may have passed
  since a pass first reached it;
* so every key's newest record, and every record newer than the lag, are present;
* after an explicit ``compact()``, what a full pass must remove is gone (records with a
  newer record of their key before the pass end, tombstones whose horizon surely passed)
  and its CompactionResult counts exactly what disappeared;
* ``latest(topic, key)`` (with and without ``partition``), ``table(topic)``: its dict,
  ``len``, ``in``, ``get`` and iteration order agree with the model's newest records;
* the log start moves only forward, at least to every delete_records offset and no further
  than time retention (on ``compact,delete``) allows;
* ``log.check()`` is clean.

The clock (record timestamps by default, retention and compaction) is the machine's and
only the ``advance_time`` rule moves it; the time-based triggers are looked at on every
append (CHECK_INTERVAL patched to 0) so what happens does not depend on the machine's speed.
"""

from __future__ import annotations

import bisect
import hashlib
import os
import shutil
import tempfile
from typing import Any
from unittest import mock

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

import eventlog
import eventlog._clock as eventlog_clock
import eventlog._compaction as compaction
import eventlog._retention as retention
from eventlog import NewRecord
from eventlog._partitioner import default_partition

INF = float("inf")
I64_MAX = 2**63 - 1
# Keys repeat (a small alphabet); one is longer than the key index stores raw (a digest).
LONG_KEY = b"L" * 450
KEYS = [b"a", b"b", b"c", b"d", b"e", LONG_KEY]
TOPICS = {"c": "compact", "cd": "compact,delete"}
CLOCK_START = 20_000

DELETE_RETENTION_MS = [0, 1_000, 5_000, 86_400_000]
MIN_LAG_MS = [0, 0, 1_000, 5_000]
MAX_LAG_MS = [I64_MAX, 10_000]
DIRTY_RATIOS = [0.0, 0.01, 0.5, 0.99, 1.0]
RETENTION_MS = [-1, 15_000, 604_800_000]

keys = st.sampled_from(KEYS)
values = st.none() | st.binary(max_size=8)  # None: a tombstone
# Explicit timestamps around the clock (past and a little future), or the clock's.
timestamp_deltas = st.none() | st.integers(-8_000, 3_000)

# (timestamp, key, value) of an appended record; its offset is its index.
Rec = tuple[int, bytes, bytes | None]


class PartitionModel:
    """Everything appended to one partition, and what compaction may have done to it."""

    def __init__(self) -> None:
        self.records: list[Rec] = []
        self.batches: list[tuple[int, int, int]] = []  # (base, count, largest timestamp)
        self.offsets_of: dict[bytes, list[int]] = {}  # key -> its offsets, ascending
        self.max_ts = -1  # the largest timestamp ever appended (the partition state's)
        # An upper bound on the end of every compaction pass that may have run: a record
        # with a newer record of its key below it may be gone.
        self.eligible = 0
        # Tombstone offset -> the earliest delete horizon a pass may have given it (it may
        # be gone once the clock reaches it) ...
        self.earliest_horizon: dict[int, int] = {}
        # ... and the latest one, fixed once an explicit compact() surely reached it.
        self.latest_horizon: dict[int, int] = {}
        self.surely_reached: set[int] = set()
        self.log_start = 0  # observed (the engine's)
        self.deleted_to = 0  # the largest delete_records offset
        self.max_cutoff: int | None = None  # the largest time-retention cutoff applied

    @property
    def end(self) -> int:
        return len(self.records)

    def newer_below(self, offset: int, limit: int) -> bool:
        """Whether a newer record of the key at ``offset`` lies below ``limit``."""
        same = self.offsets_of[self.records[offset][1]]
        i = bisect.bisect_right(same, offset)
        return i < len(same) and same[i] < limit

    def newest(self, key: bytes) -> int | None:
        same = self.offsets_of.get(key)
        return same[-1] if same else None


def index_order(key: bytes) -> tuple[int, bytes]:
    """Where a key sorts in the key index: raw keys by their bytes, then long keys by their
    BLAKE2b-256 digest."""
    if len(key) <= 400:
        return (0, key)
    return (1, hashlib.blake2b(key, digest_size=32).digest())


class CompactionMachine(RuleBasedStateMachine):
    """Topics "c" (compact) and "cd" (compact,delete) of 1-3 partitions, their compaction
    settings drawn at random (and altered by a rule), driven together with the model."""

    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.mkdtemp(prefix="eventlog-compaction-machine-")
        self.path = os.path.join(self.dir, "log")
        self.log = eventlog.open(self.path, durability="off")
        self.parts: dict[str, list[PartitionModel]] = {}
        self.config: dict[str, dict[str, Any]] = {}
        self.clock = CLOCK_START
        # One clock for record timestamps, retention and compaction (eventlog's clock
        # hook), moved only by the advance_time rule.
        self.previous_clock = eventlog_clock.replace_clock(self.now)
        self.patches = [
            mock.patch.object(retention, "CHECK_INTERVAL", 0.0),
            mock.patch.object(compaction, "CHECK_INTERVAL", 0.0),
            # Small chunks of compaction work, so that a pass spans several appends (and
            # reopens, alterations, retention runs happen in the middle of one).
            mock.patch.object(compaction, "AUTO_RECORDS", 3),
            mock.patch.object(compaction, "AUTO_BATCHES", 2),
            mock.patch.object(compaction, "EXPLICIT_RECORDS", 4),
            mock.patch.object(compaction, "EXPLICIT_RECORDS_NO_SYNC", 4),
            mock.patch.object(compaction, "EXPLICIT_BATCHES", 3),
        ]
        for patch in self.patches:
            patch.start()

    def now(self) -> int:
        return self.clock

    def teardown(self) -> None:
        try:
            report = self.log.check()
            assert report, f"log.check() at the end of the example:\n{report}"
        finally:
            try:
                self.log.close()
            finally:
                for patch in self.patches:
                    patch.stop()
                eventlog_clock.replace_clock(self.previous_clock)
                shutil.rmtree(self.dir, ignore_errors=True)

    # -- the model --

    def _may_be_gone(self, pm: PartitionModel, offset: int) -> bool:
        """Whether the record at ``offset`` may be missing: below the log start; or a newer
        record of its key lies below the end of a pass that may have run; or it is a
        tombstone whose delete horizon may have passed. Only ever grows (the clock and
        ``eligible`` only move forward), so a record surely present now was surely
        present at every earlier step."""
        if offset < pm.log_start or pm.newer_below(offset, pm.eligible):
            return True
        return pm.records[offset][2] is None and pm.earliest_horizon.get(offset, INF) <= self.clock

    def _pass_end_upper(self, topic: str, pm: PartitionModel) -> int:
        """An upper bound on where a pass starting now ends (the engine's U): the first
        batch, from where the previous passes may have ended, whose largest timestamp is
        surely newer than the lag (the timestamps of the records surely still in it).

        The engine looks from the partition's cleaner offset (the end of its last complete
        pass, never past ``eligible``) or the log start; batches it merges or rewrites lie
        below an earlier pass end, so every batch from ``eligible`` on is as appended,
        minus removed records (a largest timestamp can only have dropped)."""
        lag: int = self.config[topic]["min.compaction.lag.ms"]
        cutoff = self.clock - lag
        if lag == 0 or pm.max_ts <= cutoff:
            return pm.end
        start = max(pm.eligible, pm.log_start)
        for base, count, _max_ts in pm.batches:
            if base < start:
                continue
            present = [pm.records[o][0] for o in range(base, base + count)
                       if not self._may_be_gone(pm, o)]
            if present and max(present) > cutoff:
                return base
        return pm.end

    def _pass_end_lower(self, topic: str, pm: PartitionModel) -> int:
        """A lower bound on the end of the pass compact() starts now: the first batch ever
        appended whose largest timestamp is newer than the lag. (The engine's pass ends at
        a stored batch at or after its cleaner offset, which is one as appended, minus
        removed records, whose largest timestamp is newer than the lag.)"""
        lag: int = self.config[topic]["min.compaction.lag.ms"]
        cutoff = self.clock - lag
        if lag == 0 or pm.max_ts <= cutoff:
            return pm.end
        return next((base for base, _count, max_ts in pm.batches if max_ts > cutoff), pm.end)

    def _compaction_may_run(self, topic: str, pm: PartitionModel) -> None:
        """A pass may start (or continue) now on this partition: widen what may be gone."""
        limit = max(pm.eligible, self._pass_end_upper(topic, pm))
        horizon = self.clock + self.config[topic]["delete.retention.ms"]
        for offset in range(pm.log_start, limit):
            if pm.records[offset][2] is None:
                pm.earliest_horizon[offset] = min(pm.earliest_horizon.get(offset, INF), horizon)
                if offset not in pm.surely_reached:
                    pm.latest_horizon[offset] = max(pm.latest_horizon.get(offset, -1), horizon)
        pm.eligible = limit

    def _retention_bound(self, pm: PartitionModel) -> int:
        """How far the log start may have moved: to the delete_records offset, and past
        batches whose records are all older than a time-retention cutoff, stopping at the
        first record surely still present that is not."""
        bound = 0
        if pm.max_cutoff is not None:
            cutoff = pm.max_cutoff
            bound = next((o for o in range(pm.log_start, pm.end)
                          if pm.records[o][0] >= cutoff and not self._may_be_gone(pm, o)),
                         pm.end)
        return max(pm.deleted_to, bound)

    def _observe(self, topic: str, compacting: set[int], retaining: set[int]) -> None:
        """After a step: the log starts (checked against what retention may do), then the
        partitions on which a compaction pass may have run."""
        deletes = "delete" in self.config[topic]["cleanup.policy"]
        ms: int = self.config[topic]["retention.ms"]
        infos = self.log.describe_topic(topic).partitions
        assert len(infos) == len(self.parts[topic])
        for p, (pm, info) in enumerate(zip(self.parts[topic], infos, strict=True)):
            if p in retaining and deletes and ms >= 0:
                cutoff = self.clock - ms
                pm.max_cutoff = cutoff if pm.max_cutoff is None else max(pm.max_cutoff, cutoff)
            start = info.log_start_offset
            assert info.end_offset == pm.end, (topic, p)
            assert start >= pm.log_start, f"{topic}/{p}: log start moved back"
            assert start >= pm.deleted_to, (topic, p, start, pm.deleted_to)
            bound = self._retention_bound(pm)
            assert start <= bound, \
                f"{topic}/{p}: log start {start} past what retention allows ({bound})"
            pm.log_start = start
        for p in compacting:
            self._compaction_may_run(topic, self.parts[topic][p])

    def _stored(self, topic: str, p: int) -> list[eventlog.Record]:
        return list(self.log.scan(topic, p))

    def _possible_latest(self, topic: str, key: bytes) -> list[tuple[int, int] | None]:
        """The answers latest() may give for a key: (partition, offset) or None. The key's
        default partition answers if it holds the key, else the first other partition that
        does; whether a partition whose newest record of the key is a tombstone that may
        have expired still holds it is open."""
        parts = self.parts[topic]
        home = default_partition(key, len(parts))
        answers: list[tuple[int, int] | None] = []
        for p in [home, *(q for q in range(len(parts)) if q != home)]:
            pm = parts[p]
            newest = pm.newest(key)
            if newest is None or newest < pm.log_start:
                continue  # holds nothing of the key
            if pm.records[newest][2] is not None:
                answers.append((p, newest))
                return answers
            answers.append(None)
            if not self._may_be_gone(pm, newest):
                return answers  # surely holds the key, deleted
        answers.append(None)
        return answers

    # -- topics --

    @initialize(data=st.data())
    def create_topics(self, data: st.DataObject) -> None:
        for name, policy in TOPICS.items():
            config: dict[str, Any] = {
                "cleanup.policy": policy,
                "delete.retention.ms": data.draw(st.sampled_from(DELETE_RETENTION_MS)),
                "min.compaction.lag.ms": data.draw(st.sampled_from(MIN_LAG_MS)),
                "max.compaction.lag.ms": data.draw(st.sampled_from(MAX_LAG_MS)),
                "min.cleanable.dirty.ratio": data.draw(st.sampled_from(DIRTY_RATIOS)),
                "retention.ms": data.draw(st.sampled_from(RETENTION_MS)),
            }
            partitions = data.draw(st.integers(1, 3), label=f"partitions of {name}")
            self.log.create_topic(name, partitions, config=config)
            self.config[name] = config
            self.parts[name] = [PartitionModel() for _ in range(partitions)]

    def _topic(self, data: st.DataObject) -> str:
        return data.draw(st.sampled_from(sorted(TOPICS)), label="topic")

    @rule(data=st.data(), extra=st.integers(1, 2))
    def create_partitions(self, data: st.DataObject, extra: int) -> None:
        topic = self._topic(data)
        total = len(self.parts[topic]) + extra
        if total > 4:
            return
        self.log.create_partitions(topic, total)
        self.parts[topic].extend(PartitionModel() for _ in range(extra))

    @rule(data=st.data(),
          policy=st.sampled_from(list(TOPICS.values())),
          delete_retention=st.sampled_from(DELETE_RETENTION_MS),
          min_lag=st.sampled_from(MIN_LAG_MS),
          max_lag=st.sampled_from(MAX_LAG_MS),
          ratio=st.sampled_from(DIRTY_RATIOS))
    def alter(self, data: st.DataObject, policy: str, delete_retention: int, min_lag: int,
              max_lag: int, ratio: float) -> None:
        topic = self._topic(data)
        changes = {"cleanup.policy": policy, "delete.retention.ms": delete_retention,
                   "min.compaction.lag.ms": min_lag, "max.compaction.lag.ms": max_lag,
                   "min.cleanable.dirty.ratio": ratio}
        # Only some settings at a time, as an operator changes them.
        chosen = data.draw(st.sets(st.sampled_from(sorted(changes)), min_size=1),
                           label="settings")
        self.log.alter_topic(topic, config={k: changes[k] for k in chosen})
        self.config[topic].update({k: changes[k] for k in chosen})

    # -- appends --

    def _append_records(self, topic: str, records: list[NewRecord]) -> None:
        metas = self.log.append_batch(topic, records)
        assert len(metas) == len(records)
        parts = self.parts[topic]
        groups: dict[int, list[tuple[int, Rec]]] = {}
        for rec, meta in zip(records, metas, strict=True):
            assert rec.key is not None
            expected = (rec.partition if rec.partition is not None
                        else default_partition(rec.key, len(parts)))
            assert meta.partition == expected
            ts = self.clock if rec.timestamp is None else rec.timestamp
            assert meta.timestamp == ts
            groups.setdefault(meta.partition, []).append((meta.offset, (ts, rec.key, rec.value)))
        for p, group in groups.items():
            pm = parts[p]
            base = pm.end
            assert [o for o, _rec in group] == list(range(base, base + len(group)))
            for offset, rec3 in group:
                pm.records.append(rec3)
                pm.offsets_of.setdefault(rec3[1], []).append(offset)
            max_ts = max(r[0] for _o, r in group)
            pm.batches.append((base, len(group), max_ts))
            pm.max_ts = max(pm.max_ts, max_ts)
        self._observe(topic, set(groups), set(groups))

    def _new_record(self, data: st.DataObject, topic: str) -> NewRecord:
        delta = data.draw(timestamp_deltas, label="timestamp delta")
        explicit = data.draw(st.booleans(), label="explicit partition")
        return NewRecord(
            data.draw(values, label="value"),
            key=data.draw(keys, label="key"),
            partition=(data.draw(st.integers(0, len(self.parts[topic]) - 1), label="partition")
                       if explicit else None),
            timestamp=None if delta is None else max(0, self.clock + delta),
        )

    @rule(data=st.data())
    def append(self, data: st.DataObject) -> None:
        topic = self._topic(data)
        rec = self._new_record(data, topic)
        meta = self.log.append(topic, rec.value, key=rec.key, partition=rec.partition,
                               timestamp=rec.timestamp)
        # Recorded as the one-record batch it is.
        parts = self.parts[topic]
        assert rec.key is not None
        p = rec.partition if rec.partition is not None else default_partition(rec.key, len(parts))
        assert (meta.partition, meta.offset) == (p, parts[p].end)
        ts = self.clock if rec.timestamp is None else rec.timestamp
        assert meta.timestamp == ts
        pm = parts[p]
        pm.offsets_of.setdefault(rec.key, []).append(pm.end)
        pm.batches.append((pm.end, 1, ts))
        pm.records.append((ts, rec.key, rec.value))
        pm.max_ts = max(pm.max_ts, ts)
        self._observe(topic, {p}, {p})

    @rule(data=st.data(), size=st.integers(1, 12))
    def append_batch(self, data: st.DataObject, size: int) -> None:
        topic = self._topic(data)
        self._append_records(topic, [self._new_record(data, topic) for _ in range(size)])

    @rule(data=st.data())
    def append_without_key(self, data: st.DataObject) -> None:
        topic = self._topic(data)
        ends = self.log.end_offsets(topic)
        with pytest.raises(eventlog.InvalidRecordError):
            self.log.append(topic, b"no key")
        with pytest.raises(eventlog.InvalidRecordError):
            self.log.append_batch(topic, [NewRecord(b"x", key=b"a"), NewRecord(b"no key")])
        assert self.log.end_offsets(topic) == ends

    # -- time, compaction, retention --

    @rule(ms=st.sampled_from([0, 500, 1_000, 3_000, 6_000, 20_000]))
    def advance_time(self, ms: int) -> None:
        self.clock += ms

    @rule(data=st.data(), one=st.booleans())
    def compact(self, data: st.DataObject, one: bool) -> None:
        topic = self._topic(data) if one else None
        names = [topic] if topic is not None else sorted(TOPICS)
        before = {(t, p): {r.offset: r for r in self._stored(t, p)}
                  for t in names for p in range(len(self.parts[t]))}
        infos_before = {t: self.log.describe_topic(t).partitions for t in names}
        results = self.log.compact(topic, now_ms=self.clock)
        for name in names:
            self._observe(name, set(range(len(self.parts[name]))), set())
            for p, pm in enumerate(self.parts[name]):
                tp = eventlog.TopicPartition(name, p)
                after = {r.offset: r for r in self._stored(name, p)}
                assert set(after) <= set(before[(name, p)]), "compaction added records"
                gone = [before[(name, p)][o] for o in sorted(set(before[(name, p)]) - set(after))]
                info = self.log.describe_topic(name).partitions[p]
                old = infos_before[name][p]
                result = results.get(tp)
                if result is None:
                    assert not gone, f"{tp}: records removed, but no CompactionResult"
                    continue
                assert result.passes >= 1
                assert result.records_removed == len(gone), (tp, result, gone)
                assert result.tombstones_removed == sum(r.value is None for r in gone)
                assert result.bytes == sum(len(r.key or b"") + len(r.value or b"") for r in gone)
                assert old.size_bytes - info.size_bytes == result.bytes
                assert old.batches - info.batches == result.batches_deleted
                self._check_compacted(name, pm, after)

    def _check_compacted(self, topic: str, pm: PartitionModel,
                         stored: dict[int, eventlog.Record]) -> None:
        """After compact(): the full pass it ran removed what it must have."""
        end = self._pass_end_lower(topic, pm)
        for offset in range(pm.log_start, end):
            if pm.records[offset][2] is None:
                pm.surely_reached.add(offset)
        for offset in stored:
            if offset >= end:
                continue
            assert not pm.newer_below(offset, end), \
                f"{topic}: offset {offset} outlived compact(): its key has a newer record " \
                f"below the pass end {end}"
            if pm.records[offset][2] is None:
                assert pm.latest_horizon[offset] > self.clock, \
                    f"{topic}: tombstone at offset {offset} outlived compact() at " \
                    f"{self.clock}, past its delete horizon (at most " \
                    f"{pm.latest_horizon[offset]})"

    @rule(data=st.data(), one=st.booleans())
    def run_retention(self, data: st.DataObject, one: bool) -> None:
        topic = self._topic(data) if one else None
        self.log.run_retention(topic, now_ms=self.clock)
        for name in [topic] if topic is not None else sorted(TOPICS):
            self._observe(name, set(), set(range(len(self.parts[name]))))

    @rule(data=st.data())
    def delete_records(self, data: st.DataObject) -> None:
        topic = self._topic(data)
        p = data.draw(st.integers(0, len(self.parts[topic]) - 1), label="partition")
        pm = self.parts[topic][p]
        before = data.draw(st.integers(0, pm.end), label="before_offset")
        if "delete" not in self.config[topic]["cleanup.policy"]:
            with pytest.raises(eventlog.InvalidArgumentError):
                self.log.delete_records(topic, p, before)
            return
        assert self.log.delete_records(topic, p, before) == max(before, pm.log_start)
        pm.deleted_to = max(pm.deleted_to, before)
        self._observe(topic, set(), set())

    @rule()
    def reopen(self) -> None:
        self.log.close()
        self.log = eventlog.open(self.path, durability="off")

    @rule()
    def check(self) -> None:
        report = self.log.check()
        assert report, str(report)

    # -- invariants --

    @invariant()
    def stored_records_are_allowed(self) -> None:
        for topic, parts in self.parts.items():
            for p, pm in enumerate(parts):
                stored = self._stored(topic, p)
                offsets = [r.offset for r in stored]
                assert offsets == sorted(set(offsets)), "offsets out of order or repeated"
                for r in stored:
                    assert pm.log_start <= r.offset < pm.end, (topic, p, r.offset)
                    ts, key, value = pm.records[r.offset]
                    assert (r.topic, r.partition, r.timestamp, r.key, r.value, r.headers) == \
                        (topic, p, ts, key, value, ()), f"{topic}/{p}@{r.offset} changed"
                present = set(offsets)
                for offset in range(pm.log_start, pm.end):
                    assert offset in present or self._may_be_gone(pm, offset), \
                        f"{topic}/{p}: offset {offset} {pm.records[offset]} is gone, but " \
                        f"compaction may not remove it (pass ends so far <= {pm.eligible})"

    @invariant()
    def latest_and_table_agree_with_the_model(self) -> None:
        for topic, parts in self.parts.items():
            table = self.log.table(topic)
            expected: dict[bytes, bytes] = {}
            owners: dict[bytes, int] = {}
            for key in KEYS:
                got = self.log.latest(topic, key)
                answer = None if got is None else (got.partition, got.offset)
                assert answer in self._possible_latest(topic, key), (topic, key[:8], answer)
                if got is not None:
                    pm = parts[got.partition]
                    assert got.value is not None
                    assert (got.timestamp, got.key, got.value) == pm.records[got.offset]
                    expected[key] = got.value
                    owners[key] = got.partition
                assert table.get(key) == (None if got is None else got.value)
                if got is None:
                    with pytest.raises(KeyError):
                        table[key]
                else:
                    assert table[key] == got.value
                assert (key in table) == (got is not None)
                for p, pm in enumerate(parts):
                    one = self.log.latest(topic, key, partition=p)
                    newest = pm.newest(key)
                    if newest is None or newest < pm.log_start or pm.records[newest][2] is None:
                        assert one is None, (topic, p, key[:8])
                    else:
                        assert one is not None
                        assert (one.partition, one.offset) == (p, newest)
            assert dict(table.items()) == expected
            assert len(table) == len(expected)
            assert list(table) == sorted(expected, key=lambda k: (owners[k], index_order(k)))
            assert sorted(table.values()) == sorted(expected.values())


@pytest.mark.parametrize("config", [
    {"key_index": True},
    # A lag no record reaches: compaction leaves the older records of "a" alone.
    {"cleanup_policy": "compact,delete", "min_compaction_lag_ms": 10**12},
])
@pytest.mark.parametrize("a_before", [
    None,  # "a" was deleted, then set: len() counted too many afterwards
    b"v",  # "a" was set, then deleted: len() counted too few afterwards
], ids=["tombstone-then-value", "value-then-tombstone"])
def test_delete_records_into_a_batch_keeps_the_live_key_count(
        tmp_path: os.PathLike[str], config: dict[str, Any], a_before: bytes | None) -> None:
    """delete_records() to an offset inside a batch first unindexes the records below it
    in that batch, then removes the whole batches below. Key "a" has a record in each: the
    live-key counter behind len(table) must end up counting the keys the index holds (as
    check() verifies), however a's liveness looked between the two steps. (Found by the
    machine above.)"""
    a_after = b"x" if a_before is None else None
    with eventlog.open(os.path.join(tmp_path, "log"), durability="off") as log:
        log.create_topic("t", **config)
        log.append("t", a_before, key=b"a")  # offset 0, a batch of its own
        log.append_batch("t", [NewRecord(a_after, key=b"a"),  # offset 1: a's newest
                               NewRecord(b"w", key=b"b")])  # offset 2
        assert len(log.table("t")) == (1 if a_after is None else 2)
        log.delete_records("t", 0, 2)  # every record of "a" is gone
        table = log.table("t")
        assert log.latest("t", b"a") is None
        assert dict(table.items()) == {b"b": b"w"}
        assert len(table) == 1
        report = log.check()
        assert report, str(report)


CompactionMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=40,
                                               deadline=None, report_multiple_bugs=False)
TestCompactionMachine = CompactionMachine.TestCase
