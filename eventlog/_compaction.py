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

- automatically, in the write transaction of each append to the partition: at most
  ``AUTO_RECORDS`` records, ``AUTO_BATCHES`` batches or ``AUTO_BYTES`` stored bytes, or
  four times what that append wrote if more (a chunk uses at least half its budget, so
  a pass always outpaces the appends that drive it, and the partition's size stays
  bounded), so a producer pays a bounded amount of work in proportion to its own writes
  and never waits for a whole pass;
- explicitly, with :meth:`CompactionAdmin.compact`, in transactions of at most
  ``EXPLICIT_RECORDS`` records (``EXPLICIT_RECORDS_NO_SYNC`` with durability "off"),
  ``EXPLICIT_BATCHES`` batches or ``EXPLICIT_BYTES`` bytes, so producers get the write
  lock between chunks.

A chunk judges whole batches while they fit its record budget. A batch that does not fit
what is left is left whole to the next chunk once half the budget is used; before that
the chunk judges as much of it as fits and stops inside it: the pass position is then an
offset inside that batch, and the next chunk continues there. The records such a chunk
finds obsolete lose their index entries at once (``latest()`` moves on) and are noted as
pending (:func:`~eventlog._keyindex.read_pending`); the batch itself is rewritten once,
by the chunk that finishes it. So one large batch never makes a chunk long, and costs
one rewrite however many chunks judge it. ``check()`` knows the pending records;
retention that removes the batch forgets them; a topic that stops being compacted gets
the batch rewritten at once.

On topics compacted only (no ``delete`` in the policy, so no retention.ms judging batches
by their newest record) a pass also merges batches it leaves small into their small
neighbours (up to ``MERGE_RECORDS`` records or ``MERGE_BYTES`` bytes, under the first
one's key): a log of single-record appends becomes a few large batches, which later
passes and readers decode far faster.

Everything a pass needs to continue is in the partition state, so a pass interrupted by
a crash continues where its last committed chunk ended.
"""

from __future__ import annotations

import struct
import threading
import time
from collections.abc import Sequence
from functools import partial
from operator import itemgetter
from typing import Any, Final, TypeVar

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
from ._clock import is_manual
from ._codec import (
    FLAG_LOG_APPEND_TIME,
    HEADER_SIZE,
    DecodedBatch,
    decode_batch,
    encode_records,
    read_header,
)
from ._errors import (
    CorruptLogError,
    InvalidArgumentError,
    ReadOnlyLogError,
    TopicNotFoundError,
)
from ._keyindex import (
    PREFIX,
    RAW_KEY_MAX,
    TAG_RAW,
    KeyIndex,
    entry,
    find_entry,
    index_key,
    pack_pending,
    pending_key,
    read_pending,
)
from ._logbase import LogBase
from ._records import TopicPartition
from ._retention import _item_bytes
from ._topics import validate_topic_name

__all__ = [
    "CompactionAdmin",
    "CompactionResult",
    "Compactor",
    "finish_pending",
]

# Work per append transaction (the producer's cost) and per explicit transaction (which
# holds other writers for its duration): records judged (a chunk may stop inside a large
# batch), batches decoded (the cost of small batches), stored bytes decompressed. A record
# costs several microseconds (more on a large index), so AUTO_RECORDS is about 0.5 ms of
# work. An explicit chunk in a durable class also pays its commit's flushes
# (milliseconds), so it does more work per commit there; with durability "off" a commit
# costs little and chunks stay as short as an automatic one. Sized so that an append's
# p99 while a pass runs stays within about 10x its p99 without one (docs/performance.md).
AUTO_RECORDS: Final = 64
AUTO_BATCHES: Final = 32
AUTO_BYTES: Final = 256 << 10
EXPLICIT_RECORDS: Final = 128
EXPLICIT_RECORDS_NO_SYNC: Final = 64
EXPLICIT_BATCHES: Final = 128
EXPLICIT_BYTES: Final = 1 << 20
# An explicit pass pauses this long (seconds) between chunks: writers of other processes
# waiting for LMDB's write lock get it then (in this process, waiting appends always go
# before the next chunk; LMDB's lock across processes has no such order).
CHUNK_PAUSE: Final = 0.0002
# Batches left with fewer records/bytes than half of these are merged with their small
# neighbours into batches of up to these sizes.
MERGE_RECORDS: Final = 512
MERGE_BYTES: Final = 128 << 10
# The time-based triggers (max.compaction.lag.ms, tombstone horizons) and a pass that
# could not start are looked at again at most this often per partition (seconds).
CHECK_INTERVAL: Final = 1.0

_HORIZON: Final = struct.Struct(">q")
_V = TypeVar("_V")
_U64: Final = struct.Struct(">Q")
_UNSEEN: Final = object()
_NO_HORIZON: Final = (1 << 63) - 1


@attrs.frozen(slots=True)
class CompactionResult:
    """What compaction did to one partition (see :meth:`eventlog.Log.compact`).

    Attributes:
        passes: passes completed.
        records_removed: records removed (obsolete values and expired tombstones).
        tombstones_removed: of those, tombstones.
        batches_rewritten: batches re-encoded (without removed records, or holding the
            records of small neighbours merged into them).
        batches_deleted: batches deleted: emptied, or merged into a neighbour.
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

    def add(self, other: _Work) -> None:
        """Count another chunk's work in."""
        for name in ("examined", "stored", "removed", "tombstones", "rewritten", "deleted"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.nbytes += other.nbytes
        self.passes += other.passes
        self.damaged = self.damaged or other.damaged

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


def finish_pending(
    txn: Any, dbs: dict[bytes, Any], info: TopicInfo, partition: int, state: PartitionState
) -> None:
    """Rewrite, now, the batch a pass stopped inside without the records found obsolete in
    it (when the pass will not continue: the topic stops being compacted). Updates
    ``state``; the caller stores it."""
    tdb, bdb = dbs[b"tombstones"], dbs[b"batches"]
    tid = info.topic_id
    base, offsets = read_pending(txn, tdb, tid, partition)
    if base < 0:
        return
    txn.delete(pending_key(tid, partition), db=tdb)
    key = BATCH_KEY.pack(tid, partition, base)
    value = txn.get(key, db=bdb)
    if value is None:
        return
    value = bytes(value)
    try:
        batch = decode_batch(key, value, base)
    except CorruptLogError:
        return  # check() reports it
    gone = set(offsets)
    keep = [i for i in range(batch.count) if batch.offsets[i] not in gone]
    if len(keep) == batch.count:
        return
    freed = sum(_record_bytes(batch, i) for i in range(batch.count) if batch.offsets[i] in gone)
    state.size_bytes = max(0, state.size_bytes - freed)
    state.dirty_bytes = max(0, state.dirty_bytes - freed)
    if not keep:
        txn.delete(key, db=bdb)
        state.batches -= 1
        return
    config = info.config
    log_append_time = bool(read_header(value)[1] & FLAG_LOG_APPEND_TIME)
    txn.put(key, _kept(key, batch, keep, log_append_time, config), db=bdb)


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


class _Merge:
    """Kept records of consecutive small batches, to be written as one batch under the
    first one's key (fewer, larger batches make later passes and reads cheaper)."""

    __slots__ = (
        "base",
        "changed",
        "headers",
        "key",
        "keys",
        "last",
        "log_append_time",
        "nbytes",
        "offsets",
        "sources",
        "timestamps",
        "values",
    )

    def __init__(self, key: bytes, base: int, log_append_time: bool) -> None:
        self.key = key
        self.base = base
        self.last = base
        self.log_append_time = log_append_time
        self.offsets: list[int] = []
        self.timestamps: list[int] = []
        self.keys: list[bytes | None] = []
        self.values: list[bytes | None] = []
        self.headers: list[Any] = []
        self.nbytes = 0
        self.sources: list[bytes] = []  # keys of the batches merged into this one
        self.changed = False  # whether the first batch's stored value must change

    def add(self, batch: DecodedBatch, keep: list[int], nbytes: int) -> None:
        self.offsets += _pick(batch.offsets, keep)
        self.timestamps += _pick(batch.timestamps, keep)
        self.keys += _pick(batch.keys, keep)
        self.values += _pick(batch.values, keep)
        hdrs = batch.headers
        self.headers += _pick(hdrs, keep) if hdrs is not None else [()] * len(keep)
        self.last = batch.last_offset
        self.nbytes += nbytes

    def fits(self, count: int, nbytes: int, log_append_time: bool) -> bool:
        return (
            log_append_time == self.log_append_time
            and len(self.values) + count <= MERGE_RECORDS
            and self.nbytes + nbytes <= MERGE_BYTES
        )


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
    max_batches: int,
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
    # Offsets that earlier chunks judged obsolete in the batch they stopped inside: their
    # index entries are gone, and the batch is rewritten without them (once) by the chunk
    # that finishes it.
    pkey = pending_key(tid, partition)
    pending_base, pending = read_pending(txn, tdb, tid, partition)
    newest: dict[bytes, object] = {}  # index key -> newest offset below `end`, or None
    prefix = PREFIX.pack(tid, partition) + TAG_RAW
    end_entry = entry(end, False)
    min_horizon = _NO_HORIZON
    start_examined, start_stored = work.examined, work.stored
    batches = 0
    merge: _Merge | None = None
    # Retention judges a batch by its largest timestamp: merging newer records into an
    # older batch would keep old records past retention.ms, so only topics compacted
    # alone merge.
    merging = not config.deletes

    def flush() -> None:
        nonlocal merge
        if merge is not None and (merge.changed or merge.sources):
            encoded = encode_records(
                merge.base,
                merge.offsets,
                merge.timestamps,
                merge.keys,
                merge.values,
                merge.headers,
                merge.last,
                log_append_time=merge.log_append_time,
                compress=compress,
                level=level,
            )
            txn.put(merge.key, encoded.value(merge.key), db=bdb)
            work.rewritten += 1
            for source in merge.sources:
                txn.delete(source, db=bdb)
                state.batches -= 1
                work.deleted += 1
        merge = None

    pos = state.pass_pos
    # A chunk may stop inside a large batch (so that one batch never makes a chunk long):
    # the pass position is then an offset inside it, whose records below that offset the
    # stopped chunk judged; this chunk starts with that batch.
    resume = pos
    more = False
    stop = -1  # index of the first record this chunk leaves unjudged (-1: none)
    found = _seek_holding(cursor, tid, partition, pos)
    # The cursor is placed afresh for every batch: the loop writes through the
    # transaction, and a fresh seek never depends on how LMDB moved a cursor meanwhile.
    while found:
        key = bytes(cursor.key())
        t, p, base = BATCH_KEY.unpack(key)
        if (t, p) != (tid, partition) or base == STATE_OFFSET or base >= end:
            break
        if batches and (
            work.examined - start_examined >= max_records
            or batches >= max_batches
            or work.stored - start_stored >= max_bytes
        ):
            state.pass_pos = base
            more = True
            break
        pos = base + 1
        value = bytes(cursor.value())
        work.stored += len(value)
        batches += 1
        try:
            batch = _decoded(key, value, base)
        except CorruptLogError as exc:
            flush()
            work.damaged = work.damaged or CorruptLogError(
                f"topic {info.name!r} partition {partition}: compaction skipped the record "
                f"batch at offset {base}, which is corrupt ({exc.message})",
                topic=info.name,
                partition=partition,
                offset=base,
            )
            found = cursor.set_range(BATCH_KEY.pack(tid, partition, pos))
            continue
        # Judge the records from `first` (past those an earlier chunk judged) up to the
        # record budget; the rest of the batch waits for the next chunk.
        count = batch.count
        first = batch.index_of(resume) if base < resume else 0
        done = work.examined - start_examined
        room = max_records - done  # >= 1 here
        if count - first > room and 2 * done >= max_records:
            # Half the budget is used and the batch does not fit the rest: leave it whole
            # to the next chunk rather than splitting it (each part costs a rewrite).
            work.stored -= len(value)
            state.pass_pos = base
            more = True
            break
        stop = first + room if count - first > room else -1
        judged_end = count if stop < 0 else stop
        work.examined += judged_end - first
        # Records before `first` were judged by an earlier chunk (kept, unless it found
        # them obsolete: then they are pending); those from `judged_end` on are left for
        # the next one.
        offsets = batch.offsets
        earlier = pending if base == pending_base else ()
        if earlier and first:
            gone = set(earlier)
            keep: list[int] = [i for i in range(first) if offsets[i] not in gone]
            before = [i for i in range(first) if offsets[i] in gone]
        else:
            keep = list(range(first))
            before = []
        dropped: list[int] = []
        keys = batch.keys
        values = batch.values
        log_start = state.log_start
        below_start = count > 0 and offsets[0] < log_start
        for i in range(first, judged_end):
            offset = offsets[i]
            rkey = keys[i]
            if offset < log_start:
                keep.append(i)  # below the log start: retention's, not ours
                continue
            if rkey is None:
                # Written before the topic became compacted: Kafka's cleaner drops these.
                dropped.append(i)
                continue
            ikey = prefix + rkey if len(rkey) <= RAW_KEY_MAX else index_key(tid, partition, rkey)
            last = newest.get(ikey, _UNSEEN)
            on_key = False  # whether kcursor is on one of this key's entries
            if last is _UNSEEN:
                # The newest entry of the key below `end`: usually its newest entry of all
                # (two cursor moves); else the one before the first at or above `end`.
                last = None
                if kcursor.set_key(ikey) and kcursor.last_dup():
                    last = _U64.unpack_from(kcursor.value())[0] >> 1
                    if last >= end:
                        last = None
                        if kcursor.set_range_dup(ikey, end_entry) and kcursor.prev_dup():
                            last = _U64.unpack_from(kcursor.value())[0] >> 1
                newest[ikey] = last
                on_key = last is not None
            if last is None:
                keep.append(i)  # not in the index (cannot judge it): keep
                continue
            tomb = values[i] is None
            if last != offset:
                drop = True  # a newer record of the key exists below `end`
            elif not tomb:
                keep.append(i)
                continue
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
                # Records leave in offset order, so this is nearly always the key's oldest
                # entry: the first duplicate (reached without a search when the lookup
                # above left the cursor on the key).
                if (
                    (kcursor.first_dup() if on_key else kcursor.set_key(ikey))
                    and _U64.unpack_from(kcursor.value())[0] == offset << 1 | tomb
                ) or find_entry(kcursor, ikey, offset, tomb):
                    kcursor.delete()
                if tomb and last != offset:
                    txn.delete(BATCH_KEY.pack(tid, partition, offset), db=tdb)
                dropped.append(i)
            else:
                keep.append(i)
        if stop >= 0:
            # Stop inside this batch: it stays as it is (one rewrite per batch, by the
            # chunk that finishes it); what this chunk found obsolete joins the pending
            # offsets, and the next chunk continues from the first record not judged.
            if dropped:
                txn.put(
                    pkey,
                    pack_pending(base, [*earlier, *(offsets[i] for i in dropped)]),
                    db=tdb,
                )
            state.pass_pos = offsets[stop]
            more = True
            break
        if pending_base == base:
            txn.delete(pkey, db=tdb)
        if before:
            dropped = before + dropped
        # Counted when they leave the batch (the results say what a call removed).
        work.removed += len(dropped)
        work.tombstones += sum(values[i] is None for i in dropped)
        original = _item_bytes(batch)
        if len(dropped) <= len(keep):
            freed = sum(_record_bytes(batch, i) for i in dropped)
        else:
            freed = original - sum(_record_bytes(batch, i) for i in keep)
        if base >= state.cleaner_offset:
            state.dirty_bytes = max(0, state.dirty_bytes - original)  # reached: now clean
        state.size_bytes = max(0, state.size_bytes - freed)
        work.nbytes += freed
        if not keep:
            state.batches -= 1
            work.deleted += 1
            txn.delete(key, db=bdb)
            found = cursor.set_range(BATCH_KEY.pack(tid, partition, pos))
            continue
        kept_bytes = original - freed
        log_append_time = bool(read_header(value)[1] & FLAG_LOG_APPEND_TIME)
        small = (
            merging
            and not below_start
            and 2 * len(keep) <= MERGE_RECORDS
            and 2 * kept_bytes <= MERGE_BYTES
        )
        if small and merge is not None and merge.fits(len(keep), kept_bytes, log_append_time):
            merge.add(batch, keep, kept_bytes)
            merge.sources.append(key)
            found = cursor.set_range(BATCH_KEY.pack(tid, partition, pos))
            continue
        flush()
        if small:
            merge = _Merge(key, base, log_append_time)
            merge.add(batch, keep, kept_bytes)
            merge.changed = len(keep) != count
            found = cursor.set_range(BATCH_KEY.pack(tid, partition, pos))
            continue
        if len(keep) == count:
            found = cursor.set_range(BATCH_KEY.pack(tid, partition, pos))
            continue
        txn.put(key, _kept(key, batch, keep, log_append_time, config), db=bdb)
        work.rewritten += 1
        found = cursor.set_range(BATCH_KEY.pack(tid, partition, pos))
    flush()
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


def _pick(column: Sequence[_V], indexes: list[int]) -> Sequence[_V]:
    """The items of ``column`` at ``indexes`` (at least one), picked in C."""
    if len(indexes) == 1:
        return (column[indexes[0]],)
    return itemgetter(*indexes)(column)  # type: ignore[no-any-return]


# The batches decoded last, by LMDB key: (stored header, decoded batch). A chunk that stops
# inside a large batch leaves it unchanged, so the next chunk finds it here instead of
# decoding it again. The header ends with the CRC of the payload and the key, so an equal
# header means an equal batch.
_DECODED: dict[bytes, tuple[bytes, DecodedBatch]] = {}
_DECODED_MAX: Final = 8
_DECODED_LOCK = threading.Lock()


def _decoded(key: bytes, value: bytes, base: int) -> DecodedBatch:
    """``decode_batch(key, value, base)``, reusing a recent decoding of the same batch."""
    header = value[:HEADER_SIZE]
    with _DECODED_LOCK:
        hit = _DECODED.get(key)
    if hit is not None and hit[0] == header:
        return hit[1]
    batch = decode_batch(key, value, base)
    if batch.count > AUTO_RECORDS:  # only batches that chunks may stop inside
        with _DECODED_LOCK:
            if len(_DECODED) >= _DECODED_MAX:
                del _DECODED[next(iter(_DECODED))]
            _DECODED[key] = (header, batch)
    return batch


def _kept(
    key: bytes, batch: DecodedBatch, keep: list[int], log_append_time: bool, config: Any
) -> bytes:
    """The stored value of ``batch`` (under ``key``) keeping only the records at
    ``keep``: same base and last offset, sparse offsets."""
    encoded = encode_records(
        batch.base_offset,
        _pick(batch.offsets, keep),
        _pick(batch.timestamps, keep),
        _pick(batch.keys, keep),
        _pick(batch.values, keep),
        _pick(batch.headers, keep) if batch.headers is not None else [()] * len(keep),
        batch.last_offset,
        log_append_time=log_append_time,
        compress=config.compression_type != "uncompressed",
        level=config.compression_zstd_level,
    )
    return encoded.value(key)


def _seek_holding(cursor: Any, tid: int, partition: int, pos: int) -> bool:
    """Place ``cursor`` on the partition's batch holding offset ``pos`` if one does, else
    on the first entry at or after ``pos`` (False when there is none)."""
    here = BATCH_KEY.pack(tid, partition, pos)
    if not cursor.set_range(here):
        return False
    if bytes(cursor.key()) == here:
        return True
    if cursor.prev():
        t, p, base = BATCH_KEY.unpack(cursor.key())
        if (t, p) == (tid, partition) and base < pos:
            try:
                last = base + read_header(cursor.value())[4]
            except CorruptLogError:
                last = base  # judged (and reported) when reached
            if last >= pos:
                return True
    return bool(cursor.set_range(here))


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
        # Partitions where a pass could not start at the last look.
        self._failed: set[tuple[int, int]] = set()

    def after_append(
        self,
        txn: Any,
        info: TopicInfo,
        partition: int,
        state: PartitionState,
        records: int = 1,
        stored: int = 0,
    ) -> None:
        """Run a bounded chunk of compaction on a compacted partition just appended to,
        when due (see the module docstring). ``records`` and ``stored`` are what the
        append wrote (records, stored bytes): a chunk's budget is at least four times that,
        and a chunk uses at least half its budget unless the pass ends, so a pass always
        outpaces the appends that drive it and the partition's size stays bounded. Never
        raises for a damaged batch."""
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
            if clock < self._next_check.get(key, 0.0) and not is_manual():
                # Looked at a moment ago: only the dirty ratio (from the state alone)
                # may start a pass now, and not when it just failed to.
                if not due or key in self._failed:
                    return
            elif not due:
                due = _lag_due(txn, self._dbs, info, partition, state, now) or tombstones_due(
                    txn, self._dbs[b"tombstones"], info.topic_id, partition, now
                )
                self._next_check[key] = clock + CHECK_INTERVAL
                self._failed.discard(key)
                if not due:
                    return
            if not start_pass(txn, self._dbs, info, partition, state, now):
                # Nothing cleanable yet (min.compaction.lag.ms): computing that again at
                # every append would cost a walk of batch headers each time.
                self._next_check[key] = clock + CHECK_INTERVAL
                self._failed.add(key)
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
            max_records=max(AUTO_RECORDS, 4 * records),
            max_batches=max(AUTO_BATCHES, 4 * records),
            max_bytes=max(AUTO_BYTES, 4 * stored),
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
        total = _Work()
        started = False  # a pass begun by this call (and committed)
        dbs = self._dbs
        records = (
            EXPLICIT_RECORDS_NO_SYNC if self._storage.durability == "off" else EXPLICIT_RECORDS
        )

        def chunk(txn: Any) -> tuple[bool, bool, _Work]:
            # Everything an attempt learns is returned, not kept: the storage layer may
            # run this again (after growing the map), and only a committed attempt counts.
            work = _Work()
            try:
                info = self._catalog.get(txn, topic, writing=True)
            except TopicNotFoundError:
                return False, False, work
            if info.topic_id != topic_id or not info.config.compacted:
                return False, False, work
            state = self._reader.state(txn, info, partition)
            keyindex = self._keyindex
            assert keyindex is not None  # a writable log has the keys sub-database
            now = now_ms if now_ms is not None else _retention.now_ms()
            began = False
            if not state.compacting:
                if started or not start_pass(txn, dbs, info, partition, state, now):
                    return False, False, work
                began = True
            more = run_chunk(
                txn,
                dbs,
                keyindex,
                info,
                partition,
                state,
                now,
                work,
                max_records=records,
                max_batches=EXPLICIT_BATCHES,
                max_bytes=EXPLICIT_BYTES,
            )
            txn.put(state_key(topic_id, partition), state.pack(), db=dbs[b"batches"])
            # A pass found running is finished first; then one of this call's own.
            return more or not (started or began), began, work

        while True:
            again, began, work = self._write(chunk, f"compacting topic {topic!r}", exclusive=True)
            total.add(work)
            started = started or began
            if not again:
                return total
            time.sleep(CHUNK_PAUSE)
