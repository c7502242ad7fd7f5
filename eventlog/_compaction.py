"""Key compaction (``cleanup.policy`` ``compact`` or ``compact,delete``).

Compaction keeps, for every key, at least its newest record, with Kafka's guarantees
(``../shared/notes/KAFKA.md``): only records are removed, never reordered; offsets never
change (a rewritten batch keeps its key, its records' offsets and its last offset); a
record newer than ``min.compaction.lag.ms`` is never removed, nor is a record made
obsolete only by such a record; a tombstone (a key with a null value) stays readable for
``delete.retention.ms`` after a pass first reaches it.

How a pass works. There are no segments; the unit of work is one record batch. A pass
walks the partition from its first batch up to ``pass_end`` (U), fixed when the pass
starts: the first batch newer than ``min.compaction.lag.ms`` (with a lag of 0, the end of
the partition). For each record the key index (``_keyindex.py``) answers "what is the
newest record of this key below U?" with one cursor seek: a record that is not that one is
obsolete and goes. No offset map is built, so a pass needs no memory per key. A batch
that loses records is re-encoded under the same LMDB key; one that loses all is deleted.

When. As in Kafka, a partition is compacted when its dirty part (bytes appended since the
last completed pass, ``PartitionState.dirty_bytes``) reaches ``min.cleanable.dirty.ratio``
of its bytes, when its first dirty batch is older than ``max.compaction.lag.ms``, or when
a kept tombstone's delete horizon has passed. The work happens in bounded chunks:

- automatically, in the write transaction of each append to the partition (at most
  ``AUTO_RECORDS`` records or ``AUTO_BYTES`` stored bytes examined), so a producer pays a
  few milliseconds at most and never waits for a whole pass;
- explicitly, with :meth:`CompactionAdmin.compact`, in transactions of
  ``EXPLICIT_RECORDS`` records, so producers get the write lock between chunks.

Everything a pass needs to continue is in the partition state, so a pass interrupted by
a crash continues where its last committed chunk ended.
"""

from __future__ import annotations

import struct
import time
from functools import partial
from typing import Any, Final

import attrs

from . import _retention
from ._catalog import (
    BATCH_KEY,
    NO_PASS,
    STATE_OFFSET,
    TIME_KEY,
    PartitionState,
    TopicInfo,
    state_key,
)
from ._codec import FLAG_LOG_APPEND_TIME, decode_batch, encode_subset, read_header
from ._errors import (
    CorruptLogError,
    InvalidArgumentError,
    ReadOnlyLogError,
    TopicNotFoundError,
)
from ._keyindex import KeyIndex, index_key, last_below
from ._logbase import LogBase
from ._records import TopicPartition
from ._topics import validate_topic_name

__all__ = ["CompactionAdmin", "CompactionResult", "Compactor"]

# Work per append transaction (the producer's cost) and per explicit transaction.
AUTO_RECORDS: Final = 1000
AUTO_BYTES: Final = 512 << 10
EXPLICIT_RECORDS: Final = 5000
EXPLICIT_BYTES: Final = 2 << 20
# The time-based triggers (max.compaction.lag.ms, tombstone horizons) and a pass that
# could not start are looked at again at most this often per partition (seconds).
CHECK_INTERVAL: Final = 1.0

_HORIZON: Final = struct.Struct(">q")
_NO_HORIZON: Final = (1 << 63) - 1


@attrs.frozen(slots=True)
class CompactionResult:
    """What compaction did to one partition (see :meth:`eventlog.Log.compact`).

    Attributes:
        passes: passes completed.
        records_removed: records removed (obsolete values and expired tombstones).
        tombstones_removed: of those, tombstones.
        batches_rewritten: batches re-encoded without their removed records.
        batches_deleted: batches that lost every record and were deleted.
        bytes: key, value and header bytes freed (what ``PartitionInfo.size_bytes`` counts).
    """

    passes: int
    records_removed: int
    tombstones_removed: int
    batches_rewritten: int
    batches_deleted: int
    bytes: int


class _Work:
    """Counters of compaction work on one partition."""

    __slots__ = (
        "damaged",
        "deleted",
        "examined",
        "nbytes",
        "passes",
        "removed",
        "rewritten",
        "stored",
        "tombstones",
    )

    def __init__(self) -> None:
        self.examined = 0  # records looked at (the chunk bound)
        self.stored = 0  # stored bytes read (the chunk bound)
        self.removed = 0
        self.tombstones = 0
        self.rewritten = 0
        self.deleted = 0
        self.nbytes = 0
        self.passes = 0
        self.damaged: CorruptLogError | None = None

    def result(self) -> CompactionResult:
        return CompactionResult(
            self.passes, self.removed, self.tombstones, self.rewritten, self.deleted, self.nbytes
        )


def _record_bytes(batch: Any, i: int) -> int:
    """One record's key + value + header-block bytes (as ``_retention._item_bytes``)."""
    size = len(batch.keys[i] or b"") + len(batch.values[i] or b"")
    if batch.headers is not None:
        size += sum(6 + len(n.encode()) + len(v or b"") for n, v in batch.headers[i])
    return size


def _expiry_key(topic_id: int, partition: int) -> bytes:
    # The earliest delete horizon of the partition's kept tombstones, under the offset no
    # tombstone can have.
    return BATCH_KEY.pack(topic_id, partition, STATE_OFFSET)


def tombstones_due(txn: Any, tdb: Any, topic_id: int, partition: int, now: int) -> bool:
    """Whether a kept tombstone of the partition has passed its delete horizon."""
    raw = txn.get(_expiry_key(topic_id, partition), db=tdb)
    return raw is not None and _HORIZON.unpack(raw)[0] <= now


def _pass_end(
    txn: Any,
    dbs: dict[bytes, Any],
    info: TopicInfo,
    partition: int,
    state: PartitionState,
    now: int,
) -> int:
    """U: the base offset of the partition's first batch newer than min.compaction.lag.ms
    (judged on the batch's largest timestamp, as Kafka judges a segment's), or the end
    offset. With no lag everything is eligible (there is no active segment)."""
    lag = info.config.min_compaction_lag_ms
    if lag == 0:
        return state.next_offset
    cutoff = now - lag
    if state.max_timestamp <= cutoff:
        return state.next_offset
    tid = info.topic_id
    # Batches below the cleaner offset were older than an earlier cutoff, so older than
    # this one; the time index skips to the last entry whose running maximum is old.
    start = max(state.cleaner_offset, state.log_start)
    tcursor = txn.cursor(db=dbs[b"timeindex"])
    if cutoff >= 0:
        found = tcursor.set_range(TIME_KEY.pack(tid, partition, cutoff + 1, 0))
        moved = tcursor.prev() if found else tcursor.last()
        if moved:
            t, p, _ts, base = TIME_KEY.unpack(tcursor.key())
            if (t, p) == (tid, partition):
                start = max(start, base)
    cursor = txn.cursor(db=dbs[b"batches"])
    on = cursor.set_range(BATCH_KEY.pack(tid, partition, start))
    while on:
        t, p, base = BATCH_KEY.unpack(cursor.key())
        if (t, p) != (tid, partition) or base == STATE_OFFSET:
            break
        if read_header(cursor.value())[6] > cutoff:
            return int(base)
        on = cursor.next()
    return state.next_offset


def _lag_due(
    txn: Any,
    dbs: dict[bytes, Any],
    info: TopicInfo,
    partition: int,
    state: PartitionState,
    now: int,
) -> bool:
    """Whether the first dirty batch is older than max.compaction.lag.ms."""
    max_lag = info.config.max_compaction_lag_ms
    if state.cleaner_offset >= state.next_offset or now - max_lag < 0:
        return False
    cursor = txn.cursor(db=dbs[b"batches"])
    start = max(state.cleaner_offset, state.log_start)
    if not cursor.set_range(BATCH_KEY.pack(info.topic_id, partition, start)):
        return False
    t, p, base = BATCH_KEY.unpack(cursor.key())
    if (t, p) != (info.topic_id, partition) or base == STATE_OFFSET:
        return False
    try:
        first_ts = read_header(cursor.value())[5]  # the batch's first timestamp
    except CorruptLogError:
        return False
    return bool(first_ts <= now - max_lag)


def start_pass(
    txn: Any,
    dbs: dict[bytes, Any],
    info: TopicInfo,
    partition: int,
    state: PartitionState,
    now: int,
) -> bool:
    """Begin a pass (updating ``state``) when there is something for it to do."""
    if state.next_offset <= state.log_start or state.batches == 0:
        return False
    tid = info.topic_id
    end = _pass_end(txn, dbs, info, partition, state, now)
    tdb = dbs[b"tombstones"]
    if end <= state.cleaner_offset and not tombstones_due(txn, tdb, tid, partition, now):
        return False
    cursor = txn.cursor(db=dbs[b"batches"])
    if not cursor.set_range(BATCH_KEY.pack(tid, partition, 0)):
        return False
    t, p, first = BATCH_KEY.unpack(cursor.key())
    if (t, p) != (tid, partition) or first == STATE_OFFSET or first >= end:
        return False
    state.pass_pos = first
    state.pass_end = end
    txn.delete(_expiry_key(tid, partition), db=tdb)  # recomputed by this pass
    return True


def run_chunk(
    txn: Any,
    dbs: dict[bytes, Any],
    keyindex: KeyIndex,
    info: TopicInfo,
    partition: int,
    state: PartitionState,
    now: int,
    work: _Work,
    *,
    max_records: int,
    max_bytes: int,
) -> bool:
    """Continue the running pass by a bounded chunk (updating ``state``); True when the
    pass is not finished. A damaged batch is left as it is (``work.damaged``)."""
    tid = info.topic_id
    config = info.config
    end = state.pass_end
    bdb, kdb, tdb = dbs[b"batches"], dbs[b"keys"], dbs[b"tombstones"]
    compress = config.compression_type != "uncompressed"
    level = config.compression_zstd_level
    retention = config.delete_retention_ms
    kcursor = txn.cursor(db=kdb)
    cursor = txn.cursor(db=bdb)
    newest: dict[bytes, int | None] = {}  # index key -> newest offset below `end`
    min_horizon = _NO_HORIZON
    start_examined, start_stored = work.examined, work.stored
    on = cursor.set_range(BATCH_KEY.pack(tid, partition, state.pass_pos))
    more = False
    while on:
        key = bytes(cursor.key())
        t, p, base = BATCH_KEY.unpack(key)
        if (t, p) != (tid, partition) or base == STATE_OFFSET or base >= end:
            break
        if work.examined - start_examined >= max_records or (
            work.stored - start_stored >= max_bytes and work.examined > start_examined
        ):
            state.pass_pos = base
            more = True
            break
        value = bytes(cursor.value())
        work.stored += len(value)
        try:
            batch = decode_batch(key, value, base)
        except CorruptLogError as exc:
            work.damaged = work.damaged or CorruptLogError(
                f"topic {info.name!r} partition {partition}: compaction skipped the record "
                f"batch at offset {base}, which is corrupt ({exc.message})",
                topic=info.name,
                partition=partition,
                offset=base,
            )
            on = cursor.next()
            continue
        work.examined += batch.count
        keep: list[int] = []
        freed = 0
        original = 0
        for i in range(batch.count):
            size = _record_bytes(batch, i)
            original += size
            offset = batch.offsets[i]
            rkey = batch.keys[i]
            if offset < state.log_start:
                keep.append(i)  # below the log start: retention's, not ours
                continue
            tomb = batch.values[i] is None
            if rkey is None:
                # Written before the topic became compacted: Kafka's cleaner drops these.
                freed += size
                work.removed += 1
                continue
            ikey = index_key(tid, partition, rkey)
            if ikey in newest:
                last = newest[ikey]
            else:
                last = newest[ikey] = last_below(kcursor, ikey, end)
            if last is None:
                keep.append(i)  # not in the index (cannot judge it): keep
                continue
            if last != offset:
                drop = True  # a newer record of the key exists below `end`
            elif not tomb:
                drop = False
            else:
                hkey = BATCH_KEY.pack(tid, partition, offset)
                raw = txn.get(hkey, db=tdb)
                if raw is None:
                    horizon = now + retention
                    drop = horizon <= now
                    if not drop:
                        txn.put(hkey, _HORIZON.pack(horizon), db=tdb)
                else:
                    horizon = _HORIZON.unpack(raw)[0]
                    drop = horizon <= now
                if drop:
                    txn.delete(hkey, db=tdb)
                else:
                    min_horizon = min(min_horizon, horizon)
            if drop:
                keyindex.remove(kcursor, tid, partition, rkey, offset, tomb)
                if tomb:
                    work.tombstones += 1
                    if last != offset:
                        txn.delete(BATCH_KEY.pack(tid, partition, offset), db=tdb)
                freed += size
                work.removed += 1
            else:
                keep.append(i)
        if base >= state.cleaner_offset:
            state.dirty_bytes = max(0, state.dirty_bytes - original)  # reached: now clean
        if len(keep) == batch.count:
            on = cursor.next()
            continue
        state.size_bytes = max(0, state.size_bytes - freed)
        work.nbytes += freed
        if not keep:
            state.batches -= 1
            work.deleted += 1
            cursor.delete()
            on = bool(cursor.key())
            continue
        encoded = encode_subset(
            batch,
            keep,
            log_append_time=bool(read_header(value)[1] & FLAG_LOG_APPEND_TIME),
            compress=compress,
            level=level,
        )
        cursor.put(key, encoded.value(key))
        work.rewritten += 1
        on = cursor.next()
    if min_horizon != _NO_HORIZON:
        ekey = _expiry_key(tid, partition)
        raw = txn.get(ekey, db=tdb)
        if raw is None or _HORIZON.unpack(raw)[0] > min_horizon:
            txn.put(ekey, _HORIZON.pack(min_horizon), db=tdb)
    if not more:
        # The pass is complete: everything below `end` has been through it.
        state.cleaner_offset = max(state.cleaner_offset, end)
        state.pass_pos = NO_PASS
        work.passes += 1
    return more


class Compactor:
    """Automatic compaction from the append path, shared by the Logs of one environment.

    Only rate limits are kept here, in memory; a pass's progress is in the partition
    state, so several processes may compact one log (each chunk is one transaction).
    """

    def __init__(self, dbs: dict[bytes, Any], keyindex: KeyIndex) -> None:
        self._dbs = dbs
        self._keyindex = keyindex
        # (topic id, partition) -> time.monotonic() before which the time-based triggers
        # are not looked at again.
        self._next_check: dict[tuple[int, int], float] = {}

    def after_append(
        self, txn: Any, info: TopicInfo, partition: int, state: PartitionState
    ) -> None:
        """Run a bounded chunk of compaction on a compacted partition just appended to,
        when due (see the module docstring). Never raises for a damaged batch."""
        config = info.config
        if not config.compacted:
            return
        now = _retention.now_ms()
        if not state.compacting:
            size = state.size_bytes
            due = (
                state.dirty_bytes > 0
                and size > 0
                and state.dirty_bytes >= config.min_cleanable_dirty_ratio * size
            )
            key = (info.topic_id, partition)
            clock = time.monotonic()
            if clock < self._next_check.get(key, 0.0):
                return  # checked (or failed to start) a moment ago
            if not due:
                due = _lag_due(txn, self._dbs, info, partition, state, now) or tombstones_due(
                    txn, self._dbs[b"tombstones"], info.topic_id, partition, now
                )
            if not due or not start_pass(txn, self._dbs, info, partition, state, now):
                self._next_check[key] = clock + CHECK_INTERVAL
                return
        run_chunk(
            txn,
            self._dbs,
            self._keyindex,
            info,
            partition,
            state,
            now,
            _Work(),
            max_records=AUTO_RECORDS,
            max_bytes=AUTO_BYTES,
        )


class CompactionAdmin(LogBase):
    """Compaction methods of :class:`eventlog.Log` (a mixin)."""

    def compact(
        self, topic: str | None = None, *, now_ms: int | None = None
    ) -> dict[TopicPartition, CompactionResult]:
        """Compact now, instead of waiting for appends to trigger it.

        Finishes a pass already under way, then runs one complete pass over each partition
        of the compacted topics, whatever ``min.cleanable.dirty.ratio`` says (the lag
        settings and ``delete.retention.ms`` still hold). It works in short transactions,
        so writers are not held up.

        Args:
            topic: one compacted topic, or None for every topic whose cleanup policy
                includes ``compact``.
            now_ms: the time to judge the lags and tombstone horizons against
                (milliseconds since the epoch); default now.

        Returns:
            ``{TopicPartition: CompactionResult}`` for each partition a pass ran on.

        Raises:
            TopicNotFoundError: ``topic`` does not exist.
            InvalidArgumentError: ``topic`` is not compacted, or a bad argument.
            CorruptLogError: a batch is damaged (it was left as it is and the rest
                compacted; ``check()`` shows the damage).
            ReadOnlyLogError.
        """
        self._check()
        if self._readonly:
            raise ReadOnlyLogError(f"compacting: the log {self._storage.path!r} is open read-only")
        if topic is not None:
            validate_topic_name(topic)
        if now_ms is not None and (type(now_ms) is not int or now_ms < 0):
            raise InvalidArgumentError(
                f"now_ms must be None or milliseconds since the epoch (an int >= 0); got {now_ms!r}"
            )
        names = [topic] if topic is not None else self._topic_names()
        results: dict[TopicPartition, CompactionResult] = {}
        damaged: CorruptLogError | None = None
        for name in names:
            try:
                info = self._storage.read(partial(self._catalog.get, name=name), "compacting")
            except TopicNotFoundError:
                if topic is not None:
                    raise
                continue
            if not info.config.compacted:
                if topic is not None:
                    raise InvalidArgumentError(
                        f"topic {name!r} has cleanup.policy={info.config.cleanup_policy}; "
                        f"only topics whose policy includes 'compact' are compacted",
                        topic=name,
                    )
                continue
            for p in range(info.partitions):
                work = self._compact_partition(name, info.topic_id, p, now_ms)
                if work.damaged is not None:
                    damaged = damaged or work.damaged
                if work.passes:
                    results[TopicPartition(name, p)] = work.result()
        if damaged is not None:
            raise damaged
        return results

    def _compact_partition(
        self, topic: str, topic_id: int, partition: int, now_ms: int | None
    ) -> _Work:
        work = _Work()
        started = False  # a pass begun by this call
        dbs = self._dbs

        def chunk(txn: Any) -> bool:
            nonlocal started
            try:
                info = self._catalog.get(txn, topic, writing=True)
            except TopicNotFoundError:
                return False
            if info.topic_id != topic_id or not info.config.compacted:
                return False
            state = self._reader.state(txn, info, partition)
            keyindex = self._keyindex
            assert keyindex is not None  # a writable log has the keys sub-database
            now = now_ms if now_ms is not None else _retention.now_ms()
            if not state.compacting:
                if started or not start_pass(txn, dbs, info, partition, state, now):
                    return False
                started = True
            more = run_chunk(
                txn,
                dbs,
                keyindex,
                info,
                partition,
                state,
                now,
                work,
                max_records=EXPLICIT_RECORDS,
                max_bytes=EXPLICIT_BYTES,
            )
            txn.put(state_key(topic_id, partition), state.pack(), db=dbs[b"batches"])
            return more or not started

        while self._write(chunk, f"compacting topic {topic!r}"):
            pass
        return work
