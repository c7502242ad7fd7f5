"""Retention for the delete cleanup policy, and Kafka's ``delete_records``.

A partition loses its oldest batches when they are older than ``retention.ms`` (judged on
each batch's largest timestamp, as Kafka judges a segment's) or while the partition holds
more than ``retention.bytes``. The log start offset moves forward past what was removed;
offsets never change. There are no segments: the unit of deletion is one record batch,
and nothing is protected as an "active segment", so time retention may empty a partition.

Work happens in bounded chunks, each inside one write transaction, so a writer never waits
behind a large deletion:

- automatically, from the append path: after a partition is appended to, when retention is
  due (see :meth:`Retention.after_append`), at most ``AUTO_BATCHES`` batches are removed in
  the same transaction;
- explicitly, with :meth:`RetentionAdmin.run_retention` and
  :meth:`RetentionAdmin.delete_records`, which loop over chunks of ``EXPLICIT_BATCHES``.
"""

from __future__ import annotations

import time
from functools import partial
from typing import TYPE_CHECKING, Any, Final

import attrs

from ._catalog import (
    BATCH_KEY,
    MAX_OFFSET,
    STATE_OFFSET,
    TIME_KEY,
    PartitionState,
    TopicInfo,
    state_key,
)
from ._clock import is_manual
from ._clock import now_ms as _clock_now_ms
from ._codec import DecodedBatch, decode_batch, read_header, verified_header
from ._errors import (
    CorruptLogError,
    InvalidArgumentError,
    OffsetOutOfRangeError,
    ReadOnlyLogError,
    TopicNotFoundError,
)
from ._keyindex import KeyIndex, drop_tombstones, forget_pending, read_pending
from ._logbase import LogBase
from ._records import TopicPartition
from ._topics import validate_topic_name

if TYPE_CHECKING:
    pass

__all__ = ["Retention", "RetentionAdmin", "RetentionResult", "now_ms"]

# At most this many batches (or, once at least one is removed, this many stored bytes)
# leave a partition per append transaction: a producer pays for a few batch deletions, never
# for a whole backlog (which later appends, or run_retention(), work through).
AUTO_BATCHES: Final = 16
AUTO_BYTES: Final = 4 << 20
# The explicit calls loop over larger chunks, each its own transaction, so that producers
# still get the write lock between chunks.
EXPLICIT_BATCHES: Final = 256
EXPLICIT_BYTES: Final = 16 << 20
# Time retention needs a look at the partition's oldest batch; the append path takes that
# look at most this often per partition and process (seconds). Byte retention needs no
# look (the partition state has the size) and is never delayed.
CHECK_INTERVAL: Final = 1.0


def now_ms() -> int:
    """The retention and compaction clock: milliseconds since the epoch (the installed
    clock, see ``_clock``; tests may also replace this module attribute)."""
    return _clock_now_ms()


def _clock() -> int:
    return now_ms()  # looked up at each call, so that a replaced now_ms() is used


@attrs.frozen(slots=True)
class RetentionResult:
    """What retention removed from one partition (see :meth:`eventlog.Log.run_retention`).

    Attributes:
        batches: record batches deleted.
        records: records they held (including any already below the log start offset).
        bytes: key, value and header bytes freed (what ``PartitionInfo.size_bytes`` counts).
        log_start_offset: the partition's log start offset afterwards.
    """

    batches: int
    records: int
    bytes: int
    log_start_offset: int


class _Removed:
    """Counters of one chunk of work on one partition."""

    __slots__ = ("batches", "error", "more", "nbytes", "records", "stored")

    def __init__(self) -> None:
        self.error: CorruptLogError | None = None  # the damaged batch that ended the chunk
        self.batches = 0
        self.records = 0
        self.nbytes = 0
        self.stored = 0  # LMDB value bytes deleted (the chunk's work bound)
        self.more = False  # stopped by the chunk bound: more may be due


def _item_bytes(batch: DecodedBatch) -> int:
    """A batch's key + value + header-block bytes: what the append that wrote it added to
    the partition's ``size_bytes`` (the encoder's ``nbytes``). The header does not hold that
    number, so the batches about to be deleted (a bounded number per transaction) are
    decoded."""
    total = sum(map(len, filter(None, batch.values))) + sum(map(len, filter(None, batch.keys)))
    if batch.headers is not None:
        # A header block stores each header as u16 name length, name, i32 value length,
        # value (see _codec._encode_header_block).
        total += sum(
            6 + len(name.encode()) + len(hvalue or b"") for h in batch.headers for name, hvalue in h
        )
    return total


def _corrupt(
    info: TopicInfo, partition: int, base: int, after: int, exc: Exception
) -> CorruptLogError:
    return CorruptLogError(
        f"topic {info.name!r} partition {partition}: retention stopped at the record batch "
        f"at offset {base}, which is corrupt ({exc}); to drop it, call "
        f"delete_records({info.name!r}, {partition}, {after})",
        topic=info.name,
        partition=partition,
        offset=base,
    )


def remove_batches(
    txn: Any,
    dbs: dict[bytes, Any],
    info: TopicInfo,
    partition: int,
    state: PartitionState,
    *,
    now: int | None,
    max_batches: int,
    max_bytes: int,
    by_time: bool = True,
) -> _Removed:
    """Delete the partition's oldest batches that retention no longer keeps, up to a bound.

    Updates ``state`` in place (the caller stores it). A batch goes when it lies wholly
    below the log start offset (after :meth:`RetentionAdmin.delete_records`); with ``now``
    given and a delete cleanup policy, also while the partition holds more than
    ``retention.bytes`` (never its last batch) and when its largest timestamp is more than
    ``retention.ms`` before ``now`` (unless ``by_time`` is false). Oldest first: the first
    batch kept ends the chunk.

    A damaged candidate batch (bad checksum) that is not wholly below the log start ends
    the chunk with ``error`` set: its timestamps and size cannot be trusted.
    """
    tid = info.topic_id
    config = info.config
    policy = now is not None and config.deletes
    limit = config.retention_bytes if policy else -1
    cutoff = None
    if policy and by_time and config.retention_ms >= 0:
        assert now is not None
        cutoff = now - config.retention_ms  # expired: largest timestamp below this
    out = _Removed()
    moved = False  # the log start moves to the first batch kept
    # The batch a compaction pass stopped inside has pending obsolete records (their index
    # entries already gone): removing that batch removes them too.
    pending_base = (
        read_pending(txn, dbs[b"tombstones"], tid, partition)[0] if config.compacted else -1
    )
    keyindex = KeyIndex(dbs) if config.compacted or config.key_index else None
    cursor = txn.cursor(db=dbs[b"batches"])
    # Walk from the partition's first batch; deleting moves the cursor to the next one.
    first = BATCH_KEY.pack(tid, partition, 0)
    on_batch = cursor.set_range(first)
    while on_batch:
        key = bytes(cursor.key())
        t, p, base = BATCH_KEY.unpack(key)
        if (t, p) != (tid, partition) or base == STATE_OFFSET:
            break
        over_budget = 0 <= limit < state.size_bytes and state.batches > 1
        if not over_budget and cutoff is None and base >= state.log_start:
            break  # nothing could make this batch go: decided without reading it
        if out.batches and (out.batches >= max_batches or out.stored >= max_bytes):
            out.more = True
            break
        value = cursor.value()
        try:
            if not over_budget:
                header = verified_header(key, value)  # judge it before decoding it
                if base + header[4] >= state.log_start:  # not wholly below the log start
                    if cutoff is None or header[6] >= cutoff:  # largest timestamp
                        break
                    moved = True
            else:
                moved = True
            batch = decode_batch(key, value, base)
            nbytes = _item_bytes(batch)
            records = batch.count
            last = batch.last_offset
            if keyindex is not None:
                keyindex.remove_records(
                    txn, tid, partition, batch.keys, batch.values, batch.offsets
                )
        except CorruptLogError as exc:
            # A damaged batch is dropped only when the next batch (or the end) shows that it
            # lies wholly below the log start: delete_records() is how an operator gets past
            # damage. Its size is then the header's (possibly damaged) figure, bounded.
            after = _next_base(cursor, tid, partition, state)
            if after > state.log_start:
                out.error = _corrupt(info, partition, base, after, exc)
                cursor.set_range(key)
                break
            cursor.set_range(key)
            nbytes = _damaged_size(value, state)
            records = 0
            last = base
        out.stored += len(value)
        if base >= state.cleaner_offset and (not state.compacting or last >= state.pass_pos):
            # No pass finished it (one may have judged its records below the pass position
            # and taken the bytes they freed off already).
            state.dirty_bytes = max(0, state.dirty_bytes - nbytes)
        cursor.delete()
        if base == pending_base:
            forget_pending(txn, dbs[b"tombstones"], tid, partition, base)
        # The cursor is now on the next entry (the partition state key at the latest);
        # should it report no position, find the partition's first batch again.
        on_batch = bool(cursor.key()) or cursor.set_range(first)
        out.batches += 1
        out.records += records
        out.nbytes += nbytes
        state.batches -= 1
        state.size_bytes = max(0, state.size_bytes - nbytes)
    if out.batches:
        # The cursor is on the first batch kept (or past the partition).
        keep_from = state.next_offset
        if on_batch:
            t, p, base = BATCH_KEY.unpack(cursor.key())
            if (t, p) == (tid, partition) and base != STATE_OFFSET:
                keep_from = base
        if moved and keep_from > state.log_start:
            state.log_start = keep_from
        if state.batches <= 0:
            state.batches = state.size_bytes = state.dirty_bytes = 0
        _drop_time_entries(txn, dbs[b"timeindex"], tid, partition, keep_from)
        if config.compacted:
            drop_tombstones(txn, dbs[b"tombstones"], tid, partition, keep_from)
    return out


def unindex_below(
    txn: Any, dbs: dict[bytes, Any], info: TopicInfo, partition: int, log_start: int
) -> None:
    """Remove from the key index the records below ``log_start`` in the batch that holds
    it (delete_records() moved the log start inside that batch; its records there can no
    longer be read, so ``latest()`` must not name them)."""
    if not (info.config.compacted or info.config.key_index) or log_start == 0:
        return
    tid = info.topic_id
    cursor = txn.cursor(db=dbs[b"batches"])
    if cursor.set_range(BATCH_KEY.pack(tid, partition, log_start)):
        if not cursor.prev():
            return
    elif not cursor.last():
        return
    key = bytes(cursor.key())
    t, p, base = BATCH_KEY.unpack(key)
    if (t, p) != (tid, partition) or base == STATE_OFFSET or base >= log_start:
        return
    try:
        batch = decode_batch(key, cursor.value(), base)
    except CorruptLogError:
        return  # check() reports the damage
    cut = batch.index_of(log_start)
    if cut:
        KeyIndex(dbs).remove_records(
            txn,
            tid,
            partition,
            batch.keys[:cut],
            batch.values[:cut],
            list(batch.offsets[:cut]),
        )


def _next_base(cursor: Any, tid: int, partition: int, state: PartitionState) -> int:
    """The base offset of the batch after the cursor's, or the end offset when none."""
    if cursor.next():
        t, p, base = BATCH_KEY.unpack(cursor.key())
        if (t, p) == (tid, partition) and base != STATE_OFFSET:
            return int(base)
    return state.next_offset


def _damaged_size(value: Any, state: PartitionState) -> int:
    try:
        claimed = int(read_header(value)[7])  # the payload size before compression
    except CorruptLogError:
        claimed = 0
    return min(max(claimed, 0), state.size_bytes)


def _drop_time_entries(txn: Any, tdb: Any, tid: int, partition: int, keep_from: int) -> None:
    """Delete the partition's time-index entries of batches below ``keep_from``.

    Entries sort by running maximum timestamp, which never decreases along the partition,
    so those of removed batches come first. (If an entry ever sorted out of place, leaving
    it would still be harmless: a lookup never starts below the log start offset.)
    """
    cursor = txn.cursor(db=tdb)
    if not cursor.set_range(TIME_KEY.pack(tid, partition, 0, 0)):
        return
    while True:
        key = cursor.key()
        if not key:
            return
        t, p, _ts, base = TIME_KEY.unpack(key)
        if (t, p) != (tid, partition) or base >= keep_from:
            return
        if not cursor.delete():
            return


class Retention:
    """Automatic retention from the append path, shared by every Log of one environment.

    Only the rate limit of time checks is kept here, in memory; everything else is in the
    partition state, so several processes may run retention on one log.
    """

    def __init__(self, dbs: dict[bytes, Any]) -> None:
        self._dbs = dbs
        # (topic id, partition) -> time.monotonic() before which time retention is not
        # looked at again (0.0: as soon as possible).
        self._next_check: dict[tuple[int, int], float] = {}
        # (topic id, partition) -> time.monotonic() before which byte retention is not
        # tried again, after it stopped at a damaged batch.
        self._blocked: dict[tuple[int, int], float] = {}

    def after_append(
        self, txn: Any, info: TopicInfo, partition: int, state: PartitionState
    ) -> None:
        """Run a bounded chunk of retention on a partition just appended to (``state`` is
        its updated, not yet stored, state). Cheap when nothing is due: byte retention is
        judged on ``state`` alone, and time retention at most every ``CHECK_INTERVAL``
        seconds. Never raises for a damaged batch (the append must not fail for it):
        retention of that partition just waits, and run_retention() reports it."""
        config = info.config
        limit = config.retention_bytes
        by_bytes = 0 <= limit < state.size_bytes and state.batches > 1
        key = (info.topic_id, partition)
        clock = time.monotonic()
        if config.retention_ms < 0:
            if not by_bytes:
                # Nothing to judge; but batches wholly below the log start (left by a
                # delete_records() that a crash interrupted) go, looked for now and then.
                if (
                    state.log_start == 0
                    or not config.deletes
                    or (clock < self._next_check.get(key, 0.0) and not is_manual())
                ):
                    return
                removed = remove_batches(
                    txn,
                    self._dbs,
                    info,
                    partition,
                    state,
                    now=None,
                    max_batches=AUTO_BATCHES,
                    max_bytes=AUTO_BYTES,
                )
                self._next_check[key] = 0.0 if removed.more else clock + CHECK_INTERVAL
                return
            by_time = False
        else:
            by_time = clock >= self._next_check.get(key, 0.0) or is_manual()
            if not (by_bytes or by_time):
                return
        if not config.deletes or (not by_time and clock < self._blocked.get(key, 0.0)):
            return
        removed = remove_batches(
            txn,
            self._dbs,
            info,
            partition,
            state,
            now=_clock(),
            max_batches=AUTO_BATCHES,
            max_bytes=AUTO_BYTES,
            by_time=by_time,
        )
        if removed.error is not None:
            # A damaged batch blocks the partition's retention: look again only now and
            # then, not at every append (run_retention() reports it).
            self._blocked[key] = self._next_check[key] = clock + CHECK_INTERVAL
        elif by_time or removed.more:
            self._next_check[key] = 0.0 if removed.more else clock + CHECK_INTERVAL


def _check_offset(name: str, value: object) -> int:
    if type(value) is not int:
        raise InvalidArgumentError(
            f"{name} must be an integer offset; got {type(value).__name__} {value!r}"
        )
    if not 0 <= value <= MAX_OFFSET:
        raise InvalidArgumentError(f"{name} must be between 0 and 2**63-1; got {value}")
    return value


class RetentionAdmin(LogBase):
    """Retention methods of :class:`eventlog.Log` (a mixin, as GroupAdmin is)."""

    def delete_records(self, topic: str, partition: int, before_offset: int) -> int:
        """Delete a partition's records below ``before_offset`` (Kafka's admin
        ``deleteRecords``): the log start offset moves to ``before_offset``.

        Whole batches below it are deleted; records of the batch that holds
        ``before_offset`` stay on disk until retention removes that batch, but can no
        longer be read (a read below the log start raises OffsetOutOfRangeError, and
        consumers positioned there follow their ``auto_offset_reset``). Large deletions
        run in several short transactions, so writers are not held up; the log start
        moves in the first.

        Args:
            topic: the topic name.
            partition: the partition number.
            before_offset: the new log start offset, at most the end offset (deleting
                everything). An offset at or below the current log start changes nothing
                (as in Kafka).

        Returns:
            The partition's log start offset afterwards.

        Raises:
            OffsetOutOfRangeError: ``before_offset`` is past the end offset.
            InvalidArgumentError: a bad argument, or the topic's ``cleanup.policy`` is
                ``compact`` alone (as in Kafka, records of a compacted topic are removed by
                compaction, not deleted by offset).
            TopicNotFoundError, PartitionNotFoundError, ReadOnlyLogError.
        """
        self._check()
        validate_topic_name(topic)
        before = _check_offset("before_offset", before_offset)
        dbs = self._dbs

        def start(txn: Any) -> tuple[int, int, bool]:
            info = self._catalog.get(txn, topic, writing=True)
            state = self._reader.state(txn, info, partition)
            if not info.config.deletes:
                raise InvalidArgumentError(
                    f"topic {topic!r} has cleanup.policy={info.config.cleanup_policy}: records "
                    f"of a compacted topic cannot be deleted by offset (as in Kafka); use a "
                    f"policy that includes delete",
                    topic=topic,
                    partition=partition,
                )
            if before > state.next_offset:
                raise OffsetOutOfRangeError(
                    f"before_offset {before} is past the end offset {state.next_offset} of "
                    f"topic {topic!r} partition {partition}; give an offset between the log "
                    f"start {state.log_start} and {state.next_offset}",
                    topic=topic,
                    partition=partition,
                    offset=before,
                )
            if before <= state.log_start:
                return info.topic_id, state.log_start, False
            state.log_start = before
            unindex_below(txn, dbs, info, partition, before)
            removed = remove_batches(
                txn,
                dbs,
                info,
                partition,
                state,
                now=None,
                max_batches=EXPLICIT_BATCHES,
                max_bytes=EXPLICIT_BYTES,
            )
            self._put_state(txn, info, partition, state)
            return info.topic_id, state.log_start, removed.more

        what = f"deleting records of topic {topic!r}"
        topic_id, log_start, more = self._write(start, what)
        while more:
            result = self._write(
                lambda txn: self._chunk(txn, topic, topic_id, partition, None),
                what,
                exclusive=True,
            )
            more = result is not None and result[0].more
        return int(log_start)

    def run_retention(
        self, topic: str | None = None, *, now_ms: int | None = None
    ) -> dict[TopicPartition, RetentionResult]:
        """Apply retention now, to completion, instead of waiting for appends to do it.

        Appends run retention by themselves, a few batches at a time, on the partitions
        they write to; this call is for operators, tests, and partitions nobody writes to
        any more. It works in short transactions, so writers are not held up.

        Args:
            topic: one topic, or None for every topic.
            now_ms: the time to judge ``retention.ms`` against (milliseconds since the
                epoch); default now.

        Returns:
            ``{TopicPartition: RetentionResult}`` for each partition that lost batches.

        Raises:
            TopicNotFoundError: ``topic`` does not exist.
            CorruptLogError: a batch retention had to judge is damaged (retention of the
                other partitions is done first; the message says how to drop it).
            InvalidArgumentError, ReadOnlyLogError.
        """
        self._check()
        if self._readonly:
            raise ReadOnlyLogError(
                f"running retention: the log {self._storage.path!r} is open read-only"
            )
        if topic is not None:
            validate_topic_name(topic)
        if now_ms is not None:
            if type(now_ms) is not int or now_ms < 0:
                raise InvalidArgumentError(
                    f"now_ms must be None or milliseconds since the epoch (an int >= 0); got "
                    f"{now_ms!r}"
                )
            now = now_ms
        else:
            now = _clock()
        names = [topic] if topic is not None else self._topic_names()
        results: dict[TopicPartition, RetentionResult] = {}
        damaged: CorruptLogError | None = None
        for name in names:
            try:
                info = self._storage.read(
                    partial(self._catalog.get, name=name), "running retention"
                )
            except TopicNotFoundError:
                if topic is not None:
                    raise
                continue  # deleted meanwhile
            for p in range(info.partitions):
                try:
                    done = self._retain(name, info.topic_id, p, now)
                except CorruptLogError as exc:
                    damaged = damaged or exc
                    continue
                if done is not None:
                    results[TopicPartition(name, p)] = done
        if damaged is not None:
            raise damaged
        return results

    def _retain(
        self, topic: str, topic_id: int, partition: int, now: int
    ) -> RetentionResult | None:
        batches = records = nbytes = 0
        log_start = 0
        while True:
            result = self._write(
                lambda txn: self._chunk(txn, topic, topic_id, partition, now),
                f"running retention on topic {topic!r}",
                exclusive=True,
            )
            if result is None:
                break
            removed, log_start = result
            batches += removed.batches
            records += removed.records
            nbytes += removed.nbytes
            if removed.error is not None:
                raise removed.error  # what came before it is removed (committed)
            if not removed.more:
                break
        if not batches:
            return None
        return RetentionResult(batches, records, nbytes, log_start)

    def _chunk(
        self, txn: Any, topic: str, topic_id: int, partition: int, now: int | None
    ) -> tuple[_Removed, int] | None:
        """One bounded transaction of retention (``now`` None: only what delete_records
        left below the log start). None when the topic is gone or was re-created."""
        try:
            info = self._catalog.get(txn, topic, writing=True)
        except TopicNotFoundError:
            return None
        if info.topic_id != topic_id or partition >= info.partitions:
            return None
        state = self._reader.state(txn, info, partition)
        removed = remove_batches(
            txn,
            self._dbs,
            info,
            partition,
            state,
            now=now,
            max_batches=EXPLICIT_BATCHES,
            max_bytes=EXPLICIT_BYTES,
        )
        if removed.batches:
            self._put_state(txn, info, partition, state)
        return removed, state.log_start

    def _put_state(self, txn: Any, info: TopicInfo, partition: int, state: PartitionState) -> None:
        txn.put(state_key(info.topic_id, partition), state.pack(), db=self._dbs[b"batches"])
