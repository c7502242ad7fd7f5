"""``Log.check()``: a read-only consistency check of a whole log.

What is verified, per partition, in one short read transaction each (so the check never
holds one snapshot for the whole log, and writers keep going meanwhile):

- every stored batch decodes: its CRC matches (``crc``) and its payload is well formed
  (``batch``);
- offset continuity (``continuity``): batches in key order, each starting right after the
  previous one ends (for compacted topics only strictly increasing, since compaction may
  remove whole batches); the log start offset lies between the first batch's base offset
  and the end offset (or equals the end offset when there are no batches); the last batch
  ends right before the end offset;
- the partition state record (``state``): present and readable, and its batch count,
  byte size and largest timestamp agree with what the batches hold;
- the time index (``index``): every entry names a stored batch (unless compaction deleted
  it), entries taken in key order (by running maximum timestamp) have increasing base
  offsets, and an entry's timestamp is at least its batch's largest timestamp;
- the key index of compacted and ``key_index`` topics (``index``): every keyed record has
  its entry (offset and tombstone bit), no entry names a missing record, the live-key
  counter matches, and every tombstone delete horizon names a stored tombstone.

And across the log, in one read transaction each (they seek from key prefix to key
prefix, so their cost grows with partitions and groups, not with batches):

- topics (``topic``): every definition is readable;
- orphans (``orphan``): no batch, state or time-index key belongs to a topic id that no
  longer exists or to a partition past the topic's count;
- consumer groups (``group``): every committed offset is readable and refers to an
  existing topic and partition.

Damage is reported as a :class:`Problem`, never raised. Time-index entries below the log
start offset whose batch is gone are not reported: retention deletes them together with
their batches, and a lookup never starts below the log start, so even one left behind by
an older version would be harmless. Batches lying wholly below the log start offset are
not reported either: ``delete_records`` moves the log start first and removes them in
later chunks, so a crash between chunks leaves them, and retention removes them later.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

import attrs

from ._catalog import (
    BATCH_KEY,
    STATE_OFFSET,
    TIME_KEY,
    PartitionState,
    TopicInfo,
    state_key,
)
from ._codec import decode_batch, read_header, verified_header
from ._errors import CorruptLogError, InvalidArgumentError
from ._groups import OFFSET_KEY, unpack_offset
from ._keyindex import (
    PENDING_OFFSET,
    count_key,
    find_entry,
    index_key,
    read_pending,
    split_entry,
)
from ._logbase import LogBase
from ._retention import _item_bytes

if TYPE_CHECKING:
    from ._storage import Storage

__all__ = ["CheckAdmin", "CheckReport", "Problem", "check_log"]

_MAX_U32: Final = (1 << 32) - 1
_MAX_LISTED: Final = 20  # records listed one by one per partition and kind

# Problem kinds.
CRC: Final = "crc"
BATCH: Final = "batch"
CONTINUITY: Final = "continuity"
STATE: Final = "state"
INDEX: Final = "index"
TOPIC: Final = "topic"
ORPHAN: Final = "orphan"
GROUP: Final = "group"
ERROR: Final = "error"


@attrs.frozen(slots=True)
class Problem:
    """One inconsistency found by :meth:`eventlog.Log.check`.

    Attributes:
        topic: the topic name (None when the problem is not in a known topic, e.g. an
            orphaned key or a committed offset of a deleted topic).
        partition: the partition, or None.
        offset: the batch base offset (or committed offset) concerned, or None.
        kind: ``"crc"``, ``"batch"``, ``"continuity"``, ``"state"``, ``"index"``,
            ``"topic"``, ``"orphan"``, ``"group"`` or ``"error"`` (the check of a part of
            the log failed unexpectedly).
        message: what is wrong, in words.
    """

    topic: str | None
    partition: int | None
    offset: int | None
    kind: str
    message: str

    def __str__(self) -> str:
        where = []
        if self.topic is not None:
            where.append(f"topic {self.topic!r}")
        if self.partition is not None:
            where.append(f"partition {self.partition}")
        if self.offset is not None:
            where.append(f"offset {self.offset}")
        place = " ".join(where)
        return f"[{self.kind}] {place + ': ' if place else ''}{self.message}"


@attrs.frozen(slots=True)
class CheckReport:
    """The result of :meth:`eventlog.Log.check`; true when the log is healthy.

    Attributes:
        ok: no problem was found.
        problems: every problem found, in the order found.
        topics: topics checked.
        partitions: partitions checked.
        batches: stored batches checked.
        records: records in the batches that decoded.
        groups: consumer-group offset records checked.
    """

    ok: bool
    problems: tuple[Problem, ...]
    topics: int
    partitions: int
    batches: int
    records: int
    groups: int = 0

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        head = (
            f"{'OK' if self.ok else 'PROBLEMS FOUND'}: checked {self.topics} topics, "
            f"{self.partitions} partitions, {self.batches} batches, {self.records} records, "
            f"{self.groups} committed offsets; {len(self.problems)} problems"
        )
        return "\n".join([head, *(f"  {p}" for p in self.problems)])


class _Counts:
    __slots__ = ("batches", "groups", "partitions", "records", "topics")

    def __init__(self) -> None:
        self.topics = self.partitions = self.batches = self.records = self.groups = 0


def _read_topics(txn: Any, topics_db: Any, problems: list[Problem]) -> dict[str, TopicInfo]:
    out: dict[str, TopicInfo] = {}
    for raw_name, raw in txn.cursor(db=topics_db):
        try:
            name = bytes(raw_name).decode()
        except UnicodeDecodeError:
            problems.append(
                Problem(None, None, None, TOPIC, f"topic name {raw_name!r} is not UTF-8")
            )
            continue
        try:
            out[name] = TopicInfo.unpack(name, raw)
        except Exception as exc:  # any unreadable definition is a finding, not a crash
            problems.append(Problem(name, None, None, TOPIC, str(exc)))
    return out


def _check_partition(
    txn: Any,
    dbs: dict[bytes, Any],
    info: TopicInfo,
    partition: int,
    counts: _Counts,
    has_index: bool = True,
) -> list[Problem]:
    problems: list[Problem] = []
    name, tid = info.name, info.topic_id

    def report(kind: str, offset: int | None, message: str) -> None:
        problems.append(Problem(name, partition, offset, kind, message))

    bdb = dbs[b"batches"]
    prefix = BATCH_KEY.pack(tid, partition, 0)[:8]  # topic id, partition (both layouts)
    state: PartitionState | None = None
    raw_state = txn.get(state_key(tid, partition), db=bdb)
    if raw_state is None:
        report(STATE, None, "the partition has no state record")
    else:
        try:
            state = PartitionState.unpack(raw_state)
        except CorruptLogError as exc:
            report(STATE, None, f"the state record is unreadable ({exc})")

    compacted = info.config.compacted or (state is not None and state.was_compacted)
    indexed = info.config.compacted or info.config.key_index
    # (A read-only open of a log older than the key index cannot check an index it lacks.)
    kcursor = txn.cursor(db=dbs[b"keys"]) if indexed and has_index else None
    log_start0 = state.log_start if state is not None else 0
    keyed = 0  # keyed records at or above the log start: each needs an index entry
    missing: list[int] = []  # offsets of records the index lacks
    # Records a compaction pass found obsolete in the batch it stopped inside: their
    # entries are gone already, the records go when the pass finishes the batch.
    pending_base, pending_offsets = (
        read_pending(txn, dbs[b"tombstones"], tid, partition) if kcursor is not None else (-1, ())
    )
    pending = set(pending_offsets)
    tomb_offsets: set[int] = set()
    bases: dict[int, int | None] = {}  # base offset -> largest timestamp (None: damaged)
    first_base: int | None = None
    prev_last: int | None = None  # last offset of the previous batch (None: unknown)
    size = 0
    size_known = True
    max_ts = -1
    nbatches = 0
    cursor = txn.cursor(db=bdb)
    on = cursor.set_range(BATCH_KEY.pack(tid, partition, 0))
    while on:
        key = bytes(cursor.key())
        if len(key) != BATCH_KEY.size:
            if key[:8] != prefix:
                break  # past the partition: the orphan scan looks at it
            report(ORPHAN, None, f"a key of the wrong size ({key!r}) among the batches")
            on = cursor.next()
            continue
        t, p, base = BATCH_KEY.unpack(key)
        if (t, p) != (tid, partition) or base == STATE_OFFSET:
            break
        value = bytes(cursor.value())
        nbatches += 1
        counts.batches += 1
        if first_base is None:
            first_base = base
        last: int | None
        try:
            batch = decode_batch(key, value, base)
        except CorruptLogError as exc:
            try:
                verified_header(key, value)
                kind = BATCH  # the checksum holds: the batch was written malformed
            except CorruptLogError:
                kind = CRC
            report(kind, base, f"the record batch is damaged ({exc})")
            size_known = False
            bases[base] = None
            # Keep following offsets with the header's (untrusted) length when it is
            # plausible, so that one damaged batch does not hide later gaps.
            try:
                last_delta = int(read_header(value)[4])
                last = base + last_delta if 0 <= last_delta < 1 << 32 else None
            except CorruptLogError:
                last = None
        else:
            last = batch.last_offset
            counts.records += batch.count
            if kcursor is not None:
                for rkey, rvalue, offset in zip(
                    batch.keys, batch.values, batch.offsets, strict=True
                ):
                    if rkey is None or offset < log_start0:
                        continue
                    if base == pending_base and offset in pending:
                        continue
                    keyed += 1
                    if rvalue is None:
                        tomb_offsets.add(offset)
                    if not find_entry(
                        kcursor, index_key(tid, partition, rkey), offset, rvalue is None
                    ):
                        missing.append(offset)
            size += _item_bytes(batch)
            max_ts = max(max_ts, batch.max_timestamp)
            bases[base] = batch.max_timestamp
        if prev_last is not None:
            if compacted:
                if base <= prev_last:
                    report(
                        CONTINUITY,
                        base,
                        f"the batch starts at or before the previous batch's last offset "
                        f"{prev_last}",
                    )
            elif base != prev_last + 1:
                report(
                    CONTINUITY,
                    base,
                    f"the batch starts at {base}, but the previous batch ends at {prev_last} "
                    f"(expected {prev_last + 1}: "
                    + ("records are missing)" if base > prev_last + 1 else "batches overlap)"),
                )
        prev_last = last
        on = cursor.next()

    if state is not None:
        start, end = state.log_start, state.next_offset
        if start > end:
            report(STATE, None, f"the log start offset {start} is past the end offset {end}")
        if first_base is None:
            if start != end and not compacted:  # (compaction may empty a partition)
                report(
                    CONTINUITY,
                    None,
                    f"the partition holds no batches, but its log start offset {start} is "
                    f"not its end offset {end}",
                )
        else:
            if not compacted and first_base > start:
                report(
                    CONTINUITY,
                    first_base,
                    f"the first batch starts at {first_base}, past the log start offset "
                    f"{start}: records {start}..{first_base - 1} are missing",
                )
            if prev_last is not None:
                if not compacted and prev_last + 1 != end:
                    report(
                        CONTINUITY,
                        None,
                        f"the last batch ends at offset {prev_last}, but the end offset is "
                        f"{end} (expected {prev_last + 1})",
                    )
                elif compacted and prev_last + 1 > end:
                    report(
                        CONTINUITY,
                        None,
                        f"the last batch ends at offset {prev_last}, past the end offset {end}",
                    )
        if state.batches != nbatches:
            report(
                STATE,
                None,
                f"the state counts {state.batches} batches, but {nbatches} are stored",
            )
        if size_known and state.size_bytes != size:
            report(
                STATE,
                None,
                f"the state counts {state.size_bytes} bytes, but the batches hold {size}",
            )
        if max_ts > state.max_timestamp:
            report(
                STATE,
                None,
                f"the state's largest timestamp {state.max_timestamp} is below a stored "
                f"batch's {max_ts}",
            )

    # The time index.
    log_start = state.log_start if state is not None else (first_base or 0)
    tcursor = txn.cursor(db=dbs[b"timeindex"])
    on = tcursor.set_range(TIME_KEY.pack(tid, partition, 0, 0))
    prev_base = -1
    while on:
        key = bytes(tcursor.key())
        if len(key) != TIME_KEY.size:
            if key[:8] != prefix:
                break
            report(ORPHAN, None, f"a key of the wrong size ({key!r}) in the time index")
            on = tcursor.next()
            continue
        t, p, ts, base = TIME_KEY.unpack(key)
        if (t, p) != (tid, partition):
            break
        if base <= prev_base:
            report(
                INDEX,
                base,
                f"time-index entries are out of order: the entry for base offset {base} "
                f"(timestamp {ts}) sorts after the one for base offset {prev_base}",
            )
        prev_base = max(prev_base, base)
        if base in bases:
            batch_ts = bases[base]
            # (Compaction merges later records into earlier batches; an entry then
            # still bounds every record below its base offset, which is what lookups
            # rely on, but no longer its own batch.)
            if batch_ts is not None and ts < batch_ts and not compacted:
                report(
                    INDEX,
                    base,
                    f"the time-index entry's timestamp {ts} is below its batch's largest "
                    f"timestamp {batch_ts}",
                )
        elif base >= log_start and not compacted:
            # (Compaction deletes emptied batches and leaves their entries: an entry is an
            # upper bound of the timestamps before it, which removing records keeps true.)
            report(INDEX, base, f"the time-index entry (timestamp {ts}) names no stored batch")
        on = tcursor.next()
    if kcursor is not None:
        problems.extend(
            _check_key_index(txn, dbs, info, partition, state, keyed, missing, tomb_offsets)
        )
    return problems


def _check_key_index(
    txn: Any,
    dbs: dict[bytes, Any],
    info: TopicInfo,
    partition: int,
    state: PartitionState | None,
    keyed: int,
    missing: list[int],
    tomb_offsets: set[int],
) -> list[Problem]:
    """The key index and the tombstone horizons against the batches (whose keyed
    records were counted and looked up by the caller)."""
    problems: list[Problem] = []
    name, tid = info.name, info.topic_id

    def report(offset: int | None, message: str) -> None:
        problems.append(Problem(name, partition, offset, INDEX, message))

    for offset in missing[:_MAX_LISTED]:
        report(offset, "the key index has no entry for this record")
    if len(missing) > _MAX_LISTED:
        report(None, f"... and {len(missing) - _MAX_LISTED} more records missing from it")
    log_start = state.log_start if state is not None else 0
    cursor = txn.cursor(db=dbs[b"keys"])
    prefix = count_key(tid, partition)
    entries = 0
    live = 0
    below = 0  # entries of records below the log start (removed with their batch later)
    on = cursor.set_range(prefix + b"\x00")
    while on:
        ikey = bytes(cursor.key())
        if ikey[:8] != prefix:
            break
        while True:
            offset, tomb = split_entry(cursor.value())
            entries += 1
            below += offset < log_start
            if not cursor.next_dup():
                break
        live += not tomb  # the newest record's
        on = cursor.next_nodup()
    stale = entries - below - (keyed - len(missing))
    if stale > 0:
        report(
            None,
            f"the key index holds {stale} entries that name no stored record "
            f"({entries} entries for {keyed} keyed records)",
        )
    raw = txn.get(prefix, db=dbs[b"keys"])
    counted = 0 if raw is None else int.from_bytes(raw, "big")
    if counted != live:
        report(None, f"the live-key counter says {counted}, but the index has {live} live keys")
    # Tombstone horizons name tombstones that are stored.
    tcursor = txn.cursor(db=dbs[b"tombstones"])
    on = tcursor.set_range(BATCH_KEY.pack(tid, partition, 0))
    while on:
        key = bytes(tcursor.key())
        t, p, offset = BATCH_KEY.unpack(key)
        if (t, p) != (tid, partition) or offset >= PENDING_OFFSET:
            break  # the pending offsets and the expiry key come last
        if offset not in tomb_offsets and offset >= log_start:
            report(offset, "a tombstone delete horizon names no stored tombstone")
        on = tcursor.next()
    return problems


def _next_prefix(tid: int, partition: int) -> tuple[int, int] | None:
    if partition < _MAX_U32:
        return tid, partition + 1
    if tid < _MAX_U32:
        return tid + 1, 0
    return None


def _check_orphans(txn: Any, dbs: dict[bytes, Any], by_id: dict[int, TopicInfo]) -> list[Problem]:
    """Keys of unknown topic ids or partitions, seeking from prefix to prefix."""
    problems: list[Problem] = []
    for dbname, layout, zeros, what in (
        (b"batches", BATCH_KEY, (0,), "batch"),
        (b"timeindex", TIME_KEY, (0, 0), "time-index entry"),
    ):
        cursor = txn.cursor(db=dbs[dbname])
        on = cursor.first()
        while on:
            key = bytes(cursor.key())
            if len(key) != layout.size:
                problems.append(
                    Problem(None, None, None, ORPHAN, f"a {what} key {key!r} has the wrong size")
                )
                on = cursor.next()
                continue
            tid, partition = layout.unpack(key)[:2]
            info = by_id.get(tid)
            if info is None or partition >= info.partitions:
                problems.append(
                    Problem(
                        info.name if info is not None else None,
                        partition,
                        None,
                        ORPHAN,
                        f"{what}s are stored for topic id {tid} partition {partition}, which "
                        + ("does not exist" if info is None else "is past the topic's count"),
                    )
                )
            nxt = _next_prefix(tid, partition)
            if nxt is None:
                break
            on = cursor.set_range(layout.pack(*nxt, *zeros))
    return problems


def _check_groups(
    txn: Any, dbs: dict[bytes, Any], by_id: dict[int, TopicInfo], counts: _Counts
) -> list[Problem]:
    problems: list[Problem] = []
    db = dbs.get(b"groups")
    if db is None:
        return problems
    for raw_key, raw in txn.cursor(db=db):
        key = bytes(raw_key)
        counts.groups += 1
        # The key is "group NUL" + topic id + partition (a group name never holds NUL).
        if len(key) <= OFFSET_KEY.size or key[-OFFSET_KEY.size - 1] != 0:
            problems.append(
                Problem(None, None, None, GROUP, f"a committed-offset key {key!r} is malformed")
            )
            continue
        gname = key[: -OFFSET_KEY.size - 1].decode(errors="replace")
        tid, partition = OFFSET_KEY.unpack(key[-OFFSET_KEY.size :])
        info = by_id.get(tid)
        try:
            offset: int | None = unpack_offset(raw)[0]
        except CorruptLogError as exc:
            offset = None
            problems.append(
                Problem(
                    info.name if info else None,
                    partition,
                    None,
                    GROUP,
                    f"group {gname!r}: the committed offset is unreadable ({exc})",
                )
            )
        if info is None or partition >= info.partitions:
            problems.append(
                Problem(
                    info.name if info else None,
                    partition,
                    offset,
                    GROUP,
                    f"group {gname!r} has an offset committed for topic id {tid} partition "
                    f"{partition}, which "
                    + ("does not exist" if info is None else "is past the topic's count"),
                )
            )
    return problems


def check_log(log: LogBase, progress: Callable[[int, int], object] | None = None) -> CheckReport:
    """Check a log's consistency (see :meth:`CheckAdmin.check`)."""
    log._check()
    if progress is not None and not callable(progress):
        raise InvalidArgumentError(
            f"progress must be None or a callable (done, total); got {type(progress).__name__}"
        )
    storage: Storage = log._storage
    dbs: dict[bytes, Any] = log._dbs
    problems: list[Problem] = []
    counts = _Counts()
    has_index = log._keyindex is not None

    def guarded(fn: Any, what: str, topic: str | None = None, partition: int | None = None) -> Any:
        try:
            return storage.read(fn, what)
        except Exception as exc:  # a failure of one part must not end the whole check
            problems.append(
                Problem(
                    topic, partition, None, ERROR, f"{what} failed: {type(exc).__name__}: {exc}"
                )
            )
            return None

    topic_problems: list[Problem] = []
    topics = guarded(
        lambda txn: _read_topics(txn, dbs[b"topics"], topic_problems), "reading topics"
    )
    problems.extend(topic_problems)
    if topics is None:
        topics = {}

    total = sum(info.partitions for info in topics.values())
    done = 0
    if progress is not None:
        progress(0, total)
    for name in sorted(topics):
        info = topics[name]
        counts.topics += 1
        for partition in range(info.partitions):

            def one(txn: Any, info: TopicInfo = info, partition: int = partition) -> list[Problem]:
                # The topic may have been deleted or re-created since the catalog was read.
                raw = txn.get(info.name.encode(), db=dbs[b"topics"])
                if raw is None or TopicInfo.unpack(info.name, raw).topic_id != info.topic_id:
                    return []
                counts.partitions += 1
                return _check_partition(txn, dbs, info, partition, counts, has_index)

            found = guarded(one, f"checking topic {name!r} partition {partition}", name, partition)
            if found:
                problems.extend(found)
            done += 1
            if progress is not None:
                progress(done, total)

    def current_ids(txn: Any) -> dict[int, TopicInfo]:
        # Topics as of this transaction: one created or deleted since the catalog was read
        # must not make its keys look orphaned (unreadable ones were reported above).
        return {i.topic_id: i for i in _read_topics(txn, dbs[b"topics"], []).values()}

    found = guarded(
        lambda txn: _check_orphans(txn, dbs, current_ids(txn)), "looking for orphaned keys"
    )
    if found:
        problems.extend(found)
    found = guarded(
        lambda txn: _check_groups(txn, dbs, current_ids(txn), counts),
        "checking committed offsets",
    )
    if found:
        problems.extend(found)
    return CheckReport(
        ok=not problems,
        problems=tuple(problems),
        topics=counts.topics,
        partitions=counts.partitions,
        batches=counts.batches,
        records=counts.records,
        groups=counts.groups,
    )


class CheckAdmin(LogBase):
    """The consistency check of :class:`eventlog.Log` (a mixin, as GroupAdmin is)."""

    def check(self, *, progress: Callable[[int, int], object] | None = None) -> CheckReport:
        """Verify the whole log without changing it, and report every problem found.

        Checks every stored batch's checksum and format, offset continuity within each
        partition, each partition's state record (batch count, byte size, largest
        timestamp) against its batches, the time index against the batches, that no
        stored key belongs to a deleted topic or a missing partition, and that committed
        group offsets refer to existing topics. Each partition is checked in its own short
        read transaction, so appends go on meanwhile (a partition appended to while it
        is checked is seen at one instant, consistently).

        Args:
            progress: called as ``progress(done, total)`` with the number of partitions
                checked so far and the number to check, once before the first and after
                each one (for a progress bar; the orphan and group checks at the end are
                quick).

        Returns:
            A :class:`CheckReport`: true when no problem was found; its ``problems`` list
            each finding with its topic, partition, offset and kind. Damage is reported,
            never raised.

        Raises:
            LogClosedError: the log is closed.
            InvalidArgumentError: ``progress`` is not callable.
        """
        return check_log(self, progress)
