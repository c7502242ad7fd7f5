"""A hypothesis state machine that drives a real log and a plain in-memory model together.

The model is ``{topic: [partition: [(timestamp, key, value, headers), ...]]}``; a record's
offset is its index, because offsets are dense. Keyed records must land where Kafka's
partitioner says and explicit partitions are obeyed; records with neither go wherever the
returned metadata says (the sticky partitioner is free to choose), and every later read has
to agree with that.

Retention is modelled too: each partition's stored batches (base offset, record count) and
log start offset, each topic's ``retention.ms``/``retention.bytes``, and a clock that only
the machine moves (the log's clocks are replaced by it). Appends apply retention to the
partitions they write, a bounded number of batches at a time; ``run_retention`` and
``delete_records`` are rules of their own. Records below the log start must be unreadable.
"""

from __future__ import annotations

import os
import random
import shutil
import tempfile
from unittest import mock

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

import eventlog
import eventlog._retention as retention
from eventlog import NewRecord
from eventlog._partitioner import StickyPartitioner

ModelRecord = tuple[int, bytes | None, bytes | None, tuple[tuple[str, bytes | None], ...]]

TOPIC_NAMES = ["a", "b.c", "d-e_f"]
DURABILITIES = ["off", "normal"]

values = st.binary(max_size=24)
keys = st.none() | st.binary(max_size=6)
timestamps = st.none() | st.integers(min_value=0, max_value=10_000)
header_names = st.text(alphabet="abcxyzé-", max_size=4)
headers = st.none() | st.lists(st.tuples(header_names, st.none() | st.binary(max_size=4)),
                               max_size=3)


def kafka_partition(key: bytes, partitions: int) -> int:
    return (eventlog.murmur2(key) & 0x7FFFFFFF) % partitions


# The machine's clock starts here: later than every explicit timestamp drawn above.
CLOCK_START = 20_000
# Unlimited and the default come up more often, so that records also stay around.
RETENTION_MS = [-1, -1, 604_800_000, 604_800_000, 0, 5_000, 15_000]
RETENTION_BYTES = [-1, -1, -1, 0, 10, 40, 150]


def record_bytes(record: ModelRecord) -> int:
    """What a record adds to its partition's size: key, value and header-block bytes."""
    _ts, key, value, hdrs = record
    return (len(key or b"") + len(value or b"")
            + sum(6 + len(name.encode()) + len(hv or b"") for name, hv in hdrs))


class PartitionModel:
    """A partition's stored batches and log start (its records live in LogMachine.model)."""

    def __init__(self) -> None:
        self.start = 0
        self.batches: list[tuple[int, int]] = []  # (base offset, record count), oldest first


_sticky_init = StickyPartitioner.__init__


def _seeded_sticky_init(self: StickyPartitioner, batch_size: int = 16384,
                        rng: random.Random | None = None) -> None:
    _sticky_init(self, batch_size, rng if rng is not None else random.Random(0))


class LogMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        # The sticky partitioner picks partitions at random. The model accepts any choice,
        # but hypothesis needs each example to replay identically to shrink a failure, so
        # every sticky partitioner made during this run gets a fixed seed.
        self.seeding = mock.patch.object(StickyPartitioner, "__init__", _seeded_sticky_init)
        self.seeding.start()
        self.dir = tempfile.mkdtemp(prefix="eventlog-machine-")
        self.path = os.path.join(self.dir, "log")
        self.log = eventlog.open(self.path, durability="off")
        self.model: dict[str, list[list[ModelRecord]]] = {}
        self.log_append: dict[str, bool] = {}
        self.topic_ids: set[int] = set()
        self.parts: dict[str, list[PartitionModel]] = {}
        self.retention: dict[str, tuple[int, int]] = {}  # topic -> (retention.ms, .bytes)
        # One clock for appends and retention, moved only by the advance_time rule; time
        # retention is looked at on every append (not once a second), so that what an
        # append removes does not depend on how fast the machine runs.
        self.clock = CLOCK_START
        self.clocks = [
            mock.patch("eventlog._log.now_ms", self.now),
            mock.patch.object(retention, "now_ms", self.now),
            mock.patch.object(retention, "CHECK_INTERVAL", 0.0),
            # Small chunks, so that a few appends already meet the bound per transaction.
            mock.patch.object(retention, "AUTO_BATCHES", 2),
        ]
        for patch in self.clocks:
            patch.start()

    def now(self) -> int:
        return self.clock

    def teardown(self) -> None:
        try:
            self.log.close()
        finally:
            self.seeding.stop()
            for patch in self.clocks:
                patch.stop()
            shutil.rmtree(self.dir, ignore_errors=True)

    # -- helpers --

    def _topic(self, data: st.DataObject) -> str:
        return data.draw(st.sampled_from(sorted(self.model)), label="topic")

    def _partition(self, data: st.DataObject, topic: str) -> int:
        return data.draw(st.integers(0, len(self.model[topic]) - 1), label="partition")

    def _expected(self, topic: str, offset: int, partition: int) -> list[eventlog.Record]:
        start = max(offset, self.parts[topic][partition].start)
        return [eventlog.Record(topic, partition, i, ts, k, v, h)
                for i, (ts, k, v, h) in enumerate(self.model[topic][partition])
                if i >= start]

    # -- the retention model --

    def _batch_bytes(self, topic: str, partition: int, base: int, count: int) -> int:
        return sum(map(record_bytes, self.model[topic][partition][base:base + count]))

    def _size(self, topic: str, partition: int) -> int:
        return sum(self._batch_bytes(topic, partition, b, c)
                   for b, c in self.parts[topic][partition].batches)

    def _retain(self, topic: str, partition: int, *, policy: bool, by_time: bool = True,
                max_batches: int | None = None) -> tuple[int, int, int]:
        """Remove what retention removes from one partition, oldest batch first; return
        (batches, records, bytes) removed. Without ``policy`` only batches wholly below the
        log start go (what delete_records leaves)."""
        pm = self.parts[topic][partition]
        ms, limit = self.retention[topic] if policy else (-1, -1)
        cutoff = self.clock - ms if by_time and ms >= 0 else None
        records = self.model[topic][partition]
        size = self._size(topic, partition)
        removed = [0, 0, 0]
        moved = False
        while pm.batches:
            base, count = pm.batches[0]
            over = 0 <= limit < size and len(pm.batches) > 1
            wholly_below = base + count - 1 < pm.start
            if not (over or wholly_below):
                newest = max(ts for ts, *_rest in records[base:base + count])
                if cutoff is None or newest >= cutoff:
                    break
            if max_batches is not None and removed[0] >= max_batches:
                break
            moved = moved or over or not wholly_below
            nbytes = self._batch_bytes(topic, partition, base, count)
            pm.batches.pop(0)
            size -= nbytes
            removed = [removed[0] + 1, removed[1] + count, removed[2] + nbytes]
        if removed[0] and moved:
            keep_from = pm.batches[0][0] if pm.batches else len(records)
            pm.start = max(pm.start, keep_from)
        return removed[0], removed[1], removed[2]

    def _appended(self, topic: str, counts: dict[int, int]) -> None:
        """Record the batches one append call wrote ({partition: records}) and apply what
        the append path applies: a bounded chunk of retention per partition written."""
        ms, limit = self.retention[topic]
        for p, count in counts.items():
            pm = self.parts[topic][p]
            pm.batches.append((len(self.model[topic][p]) - count, count))
            over = 0 <= limit < self._size(topic, p) and len(pm.batches) > 1
            if over or ms >= 0:
                self._retain(topic, p, policy=True, by_time=ms >= 0,
                             max_batches=retention.AUTO_BATCHES)

    def _check_timestamp(self, topic: str, given: int | None, got: int, before: int,
                         after: int) -> None:
        if given is None or self.log_append[topic]:
            assert before <= got <= after, (given, got, before, after)
        else:
            assert got == given

    def _accept(self, topic: str, records: list[tuple[NewRecord, eventlog.RecordMetadata]],
                before: int, after: int) -> None:
        """Check metadata against the model's rules, then record the appends in the model."""
        partitions = self.model[topic]
        next_offset = [len(p) for p in partitions]
        for rec, meta in records:
            assert meta.topic == topic
            if rec.partition is not None:
                assert meta.partition == rec.partition
            elif rec.key is not None:
                assert meta.partition == kafka_partition(rec.key, len(partitions))
            else:
                assert 0 <= meta.partition < len(partitions)
            assert meta.offset == next_offset[meta.partition]
            next_offset[meta.partition] += 1
            self._check_timestamp(topic, rec.timestamp, meta.timestamp, before, after)
        counts: dict[int, int] = {}
        for rec, meta in records:
            partitions[meta.partition].append(
                (meta.timestamp, rec.key, rec.value, tuple(map(tuple, rec.headers or ()))))
            counts[meta.partition] = counts.get(meta.partition, 0) + 1
        self._appended(topic, counts)

    # -- topics --

    @initialize(partitions=st.integers(1, 4), ms=st.sampled_from(RETENTION_MS),
                limit=st.sampled_from(RETENTION_BYTES))
    def first_topic(self, partitions: int, ms: int, limit: int) -> None:
        self.create_topic(TOPIC_NAMES[0], partitions, False, ms, limit)

    @rule(name=st.sampled_from(TOPIC_NAMES), partitions=st.integers(1, 4),
          log_append=st.booleans(), ms=st.sampled_from(RETENTION_MS),
          limit=st.sampled_from(RETENTION_BYTES))
    def create_topic(self, name: str, partitions: int, log_append: bool, ms: int,
                     limit: int) -> None:
        config = {"message.timestamp.type": "LogAppendTime" if log_append else "CreateTime",
                  "retention.ms": ms, "retention.bytes": limit}
        if name in self.model:
            try:
                self.log.create_topic(name, partitions, config=config)
            except eventlog.TopicExistsError:
                return
            raise AssertionError(f"creating {name!r} twice did not raise")
        desc = self.log.create_topic(name, partitions, config=config)
        assert desc.partition_count == partitions
        assert desc.topic_id not in self.topic_ids  # ids are never reused
        self.topic_ids.add(desc.topic_id)
        self.model[name] = [[] for _ in range(partitions)]
        self.log_append[name] = log_append
        self.parts[name] = [PartitionModel() for _ in range(partitions)]
        self.retention[name] = (ms, limit)

    @precondition(lambda self: len(self.model) > 1)
    @rule(data=st.data())
    def delete_topic(self, data: st.DataObject) -> None:
        topic = self._topic(data)
        self.log.delete_topic(topic)
        del self.model[topic]
        del self.log_append[topic]
        del self.parts[topic]
        del self.retention[topic]

    @rule(data=st.data(), extra=st.integers(1, 2))
    def create_partitions(self, data: st.DataObject, extra: int) -> None:
        topic = self._topic(data)
        total = len(self.model[topic]) + extra
        if total > 6:
            return
        assert self.log.create_partitions(topic, total).partition_count == total
        self.model[topic].extend([] for _ in range(extra))
        self.parts[topic].extend(PartitionModel() for _ in range(extra))

    # -- appends --

    @rule(data=st.data(), value=values, key=keys, timestamp=timestamps, hdrs=headers,
          explicit=st.booleans(), tombstone=st.booleans())
    def append(self, data: st.DataObject, value: bytes, key: bytes | None,
               timestamp: int | None, hdrs: list[tuple[str, bytes | None]] | None,
               explicit: bool, tombstone: bool) -> None:
        topic = self._topic(data)
        partition = self._partition(data, topic) if explicit else None
        rec = NewRecord(None if tombstone and key is not None else value, key, partition,
                        timestamp, hdrs)
        before = self.clock
        meta = self.log.append(topic, rec.value, key=rec.key, partition=rec.partition,
                               timestamp=rec.timestamp, headers=rec.headers)
        after = self.clock
        assert type(meta) is eventlog.RecordMetadata
        self._accept(topic, [(rec, meta)], before, after)

    @rule(data=st.data(), size=st.integers(0, 20))
    def append_batch(self, data: st.DataObject, size: int) -> None:
        topic = self._topic(data)
        count = len(self.model[topic])
        records = [
            NewRecord(data.draw(values), data.draw(keys),
                      data.draw(st.none() | st.integers(0, count - 1)), data.draw(timestamps),
                      data.draw(headers))
            for _ in range(size)
        ]
        before = self.clock
        metas = self.log.append_batch(topic, records)
        after = self.clock
        assert len(metas) == size
        # One stored batch per partition touched, none elsewhere (the model's count, as
        # retention may have removed some).
        self._accept(topic, list(zip(records, metas, strict=True)), before, after)
        assert [p.batches for p in self.log.describe_topic(topic).partitions] == [
            len(pm.batches) for pm in self.parts[topic]]

    @rule(data=st.data(), size=st.integers(0, 20), mode=st.sampled_from(["none", "keys",
                                                                          "partition"]),
          timestamp=timestamps)
    def append_columns(self, data: st.DataObject, size: int, mode: str,
                       timestamp: int | None) -> None:
        topic = self._topic(data)
        partitions = self.model[topic]
        vals = data.draw(st.lists(st.none() | values, min_size=size, max_size=size))
        keys_col = (data.draw(st.lists(st.binary(max_size=6), min_size=size, max_size=size))
                    if mode == "keys" else None)
        partition = self._partition(data, topic) if mode == "partition" else None
        result = self.log.append_columns(topic, vals, keys=keys_col, partition=partition,
                                         timestamp=timestamp)
        after = self.clock
        if size == 0:
            assert result == {}
            return
        # Which partition each record must go to (None: any one partition for all).
        if mode == "keys":
            assert keys_col is not None
            targets: list[int] = [kafka_partition(k, len(partitions)) for k in keys_col]
        elif mode == "partition":
            assert partition is not None
            targets = [partition] * size
        else:
            assert len(result) == 1
            targets = [next(iter(result))] * size
        expected: dict[int, list[int]] = {}
        for i, p in enumerate(targets):
            expected.setdefault(p, []).append(i)
        assert set(result) == set(expected)
        # The clock is the machine's: every record's timestamp is known without reading it
        # back (retention may already have removed it).
        stamp = after if timestamp is None or self.log_append[topic] else timestamp
        for p, indexes in expected.items():
            offsets = result[p]
            assert offsets == range(len(partitions[p]), len(partitions[p]) + len(indexes))
            for i in indexes:
                partitions[p].append((stamp, keys_col[i] if keys_col is not None else None,
                                      vals[i], ()))
        self._appended(topic, {p: len(indexes) for p, indexes in expected.items()})
        # One batch per partition touched (as far as retention left them).
        assert [p.batches for p in self.log.describe_topic(topic).partitions] == [
            len(pm.batches) for pm in self.parts[topic]]

    # -- reads --

    @rule(data=st.data(), max_records=st.integers(1, 25))
    def read(self, data: st.DataObject, max_records: int) -> None:
        topic = self._topic(data)
        partition = self._partition(data, topic)
        # Not bounded by the model's length: that depends on the sticky partitioner's random
        # choices, and hypothesis needs draws that replay identically.
        offset = data.draw(st.integers(0, 25), label="offset")
        if offset < self.parts[topic][partition].start:
            with pytest.raises(eventlog.OffsetOutOfRangeError):
                self.log.read(topic, partition, offset, max_records=max_records)
            return
        got = self.log.read(topic, partition, offset, max_records=max_records)
        assert got == self._expected(topic, offset, partition)[:max_records]

    @rule(data=st.data(), max_records=st.integers(1, 25))
    def read_columns(self, data: st.DataObject, max_records: int) -> None:
        topic = self._topic(data)
        partition = self._partition(data, topic)
        # Not bounded by the model's length: that depends on the sticky partitioner's random
        # choices, and hypothesis needs draws that replay identically.
        offset = data.draw(st.integers(0, 25), label="offset")
        if offset < self.parts[topic][partition].start:
            with pytest.raises(eventlog.OffsetOutOfRangeError):
                self.log.read_columns(topic, partition, offset, max_records=max_records)
            return
        cols = self.log.read_columns(topic, partition, offset, max_records=max_records)
        want = self._expected(topic, offset, partition)[:max_records]
        assert (cols.topic, cols.partition) == (topic, partition)
        assert cols.offsets == [r.offset for r in want]
        assert cols.timestamps == [r.timestamp for r in want]
        assert cols.keys == [r.key for r in want]
        assert cols.values == [r.value for r in want]
        assert cols.headers == [r.headers for r in want]
        assert cols.next_offset == (want[-1].offset + 1 if want else offset)

    @rule(data=st.data(), page_size=st.integers(1, 7))
    def scan(self, data: st.DataObject, page_size: int) -> None:
        topic = self._topic(data)
        partitions = self.model[topic]
        one = data.draw(st.none() | st.integers(0, len(partitions) - 1), label="partition")
        start = data.draw(st.none() | st.integers(0, 25), label="start_offset")
        end = data.draw(st.none() | st.integers(0, 30), label="end_offset")
        got = list(self.log.scan(topic, one, start_offset=start, end_offset=end,
                                 page_size=page_size))
        selected = range(len(partitions)) if one is None else [one]
        want = [r for p in selected for r in self._expected(topic, start or 0, p)
                if end is None or r.offset < end]
        assert got == want

    @rule(data=st.data(), t=st.integers(0, 10_001))
    def scan_from_time(self, data: st.DataObject, t: int) -> None:
        topic = self._topic(data)
        got = list(self.log.scan(topic, start_timestamp=t))
        want = []
        for p in range(len(self.model[topic])):
            first = self._first_at_or_after(topic, p, t)
            if first is not None:
                want += self._expected(topic, first, p)
        assert got == want

    def _first_at_or_after(self, topic: str, partition: int, t: int) -> int | None:
        start = self.parts[topic][partition].start
        return next((i for i, (ts, *_rest) in enumerate(self.model[topic][partition])
                     if ts >= t and i >= start), None)

    @rule(data=st.data())
    def offsets(self, data: st.DataObject) -> None:
        topic = self._topic(data)
        lengths = {p: len(records) for p, records in enumerate(self.model[topic])}
        assert self.log.end_offsets(topic) == lengths
        assert self.log.beginning_offsets(topic) == {
            p: pm.start for p, pm in enumerate(self.parts[topic])}

    @rule(data=st.data(), t=st.integers(0, 10_001) | st.integers(CLOCK_START, CLOCK_START + 60_000)
          | st.just(2**62))
    def offsets_for_times(self, data: st.DataObject, t: int) -> None:
        topic = self._topic(data)
        want = {p: self._first_at_or_after(topic, p, t) for p in range(len(self.model[topic]))}
        assert self.log.offsets_for_times(topic, t) == want

    # -- retention --

    @rule(data=st.data(), ms=st.sampled_from(RETENTION_MS),
          limit=st.sampled_from(RETENTION_BYTES))
    def alter_retention(self, data: st.DataObject, ms: int, limit: int) -> None:
        topic = self._topic(data)
        self.log.alter_topic(topic, retention_ms=ms, retention_bytes=limit)
        self.retention[topic] = (ms, limit)  # applied by later appends and run_retention

    @rule(ms=st.integers(0, 8_000))
    def advance_time(self, ms: int) -> None:
        self.clock += ms

    @rule(data=st.data(), one=st.booleans(), elapse=st.sampled_from([0, 6_000, 20_000]))
    def run_retention(self, data: st.DataObject, one: bool, elapse: int) -> None:
        """Time passes (or not), then retention runs on one topic or all."""
        self.clock += elapse
        topic = self._topic(data) if one else None
        got = self.log.run_retention(topic)
        want = {}
        for name in [topic] if topic is not None else sorted(self.model):
            for p in range(len(self.model[name])):
                removed = self._retain(name, p, policy=True)
                if removed[0]:
                    want[eventlog.TopicPartition(name, p)] = retention.RetentionResult(
                        *removed, self.parts[name][p].start)
        assert got == want

    @rule(data=st.data())
    def delete_records(self, data: st.DataObject) -> None:
        topic = self._topic(data)
        partition = self._partition(data, topic)
        offset = data.draw(st.integers(0, 8) | st.integers(0, 30), label="before_offset")
        pm = self.parts[topic][partition]
        end = len(self.model[topic][partition])
        if offset > end:
            with pytest.raises(eventlog.OffsetOutOfRangeError):
                self.log.delete_records(topic, partition, offset)
            return
        assert self.log.delete_records(topic, partition, offset) == max(offset, pm.start)
        if offset > pm.start:
            pm.start = offset
            self._retain(topic, partition, policy=False)

    # -- lifecycle --

    @rule(durability=st.sampled_from(DURABILITIES))
    def reopen(self, durability: str) -> None:
        self.log.close()
        self.log = eventlog.open(self.path, durability=durability)

    @invariant()
    def topics_offsets_and_sizes_agree(self) -> None:
        assert self.log.list_topics() == sorted(self.model)
        for topic, partitions in self.model.items():
            got = [(i.log_start_offset, i.end_offset, i.size_bytes, i.batches)
                   for i in self.log.describe_topic(topic).partitions]
            assert got == [(pm.start, len(records), self._size(topic, p), len(pm.batches))
                           for p, (pm, records) in enumerate(
                               zip(self.parts[topic], partitions, strict=True))]


LogMachine.TestCase.settings = settings(max_examples=50, stateful_step_count=30,
                                        deadline=None, report_multiple_bugs=False)
TestLogMachine = LogMachine.TestCase
