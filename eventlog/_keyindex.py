"""The key index: for each key of a partition, the offsets of its records.

Kept for compacted topics (``cleanup.policy`` with ``compact``) and topics created with
``key_index=True``. It lives in the ``keys`` sub-database, a dupsort database with
fixed-size values (DESIGN.md section 3)::

    key    topic id u32 · partition u32 · 0x00 · the record key            (keys <= 400 bytes)
           topic id u32 · partition u32 · 0x01 · BLAKE2b-256 of the key    (longer keys)
    value  u64 big-endian: offset << 1 | 1 if the record is a tombstone (a null value)
           u64 big-endian: the record's version: how many records of the key had been
           appended when it was, itself included (1 for a key's first record)

LMDB keeps the duplicates of one key sorted, so a key's offsets come out in offset order
and its newest record is the last duplicate: ``latest()`` is one cursor seek, and the
compactor asks "is there a newer record of this key below offset U?" with one
``set_range_dup``. The tombstone bit tells whether a key is live without reading its
record; the newest entry's version is the key's version for optimistic concurrency
(``expected_version``), counted across records compaction or retention removed since.

Under the 8-byte key ``topic id · partition`` (no tag byte, so it never collides with an
entry) a single duplicate holds the partition's number of live keys (keys whose newest
record is not a tombstone), so that ``len(log.table(topic))`` needs no scan.

Every change happens in the write transaction that changes the batches, so the index
always agrees with them (``Log.check()`` verifies it).
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence
from typing import Any, Final

from ._errors import CorruptLogError

__all__ = [
    "PENDING_OFFSET",
    "RAW_KEY_MAX",
    "KeyIndex",
    "count_key",
    "drop_tombstones",
    "entry_version",
    "find_entry",
    "forget_pending",
    "key_version",
    "entry",
    "index_key",
    "pack_pending",
    "pending_key",
    "read_pending",
    "split_entry",
]

PREFIX: Final = struct.Struct(">II")
_U64: Final = struct.Struct(">Q")
_VALUE: Final = struct.Struct(">QQ")  # offset << 1 | tombstone, version
_ZERO: Final = bytes(8)
# Longer keys are stored as a digest (LMDB keys are at most 511 bytes). A BLAKE2b-256
# collision between two keys of one partition is not a practical concern; a lookup still
# compares the record's key and reports a mismatch as damage.
RAW_KEY_MAX: Final = 400
TAG_RAW: Final = b"\x00"
TAG_DIGEST: Final = b"\x01"


def index_key(topic_id: int, partition: int, key: bytes) -> bytes:
    """The index key of a record key."""
    if len(key) <= RAW_KEY_MAX:
        return PREFIX.pack(topic_id, partition) + TAG_RAW + key
    digest = hashlib.blake2b(key, digest_size=32).digest()
    return PREFIX.pack(topic_id, partition) + TAG_DIGEST + digest


def count_key(topic_id: int, partition: int) -> bytes:
    """The key of a partition's live-key counter."""
    return PREFIX.pack(topic_id, partition)


def entry(offset: int, tombstone: bool, version: int = 0) -> bytes:
    """The duplicate value for a record (``version`` 0 makes a search bound: it sorts
    before every entry of the same offset)."""
    return _VALUE.pack(offset << 1 | tombstone, version)


def split_entry(value: bytes | memoryview) -> tuple[int, bool]:
    """(offset, is a tombstone) from a duplicate value."""
    if len(value) != _VALUE.size:
        raise CorruptLogError("a key-index entry has the wrong size")
    raw = _U64.unpack_from(value)[0]
    return raw >> 1, bool(raw & 1)


def entry_version(value: bytes | memoryview) -> int:
    """The version stored in a duplicate value."""
    if len(value) != _VALUE.size:
        raise CorruptLogError("a key-index entry has the wrong size")
    return int(_VALUE.unpack(value)[1])


def find_entry(cursor: Any, ikey: bytes, offset: int, tomb: bool) -> bool:
    """Put ``cursor`` on the entry of the record at ``offset``; whether there is one."""
    want = _U64.pack(offset << 1 | tomb)
    return bool(cursor.set_range_dup(ikey, want + _ZERO)) and bytes(cursor.value()[:8]) == want


def key_version(cursor: Any, ikey: bytes) -> int:
    """A key's version: its newest entry's (0 when the key has no record)."""
    if not cursor.set_key(ikey):
        return 0
    cursor.last_dup()
    return entry_version(cursor.value())


def raw_key_of(ikey: bytes) -> bytes | None:
    """The record key stored in an index key, or None when it is a digest."""
    if ikey[8:9] == TAG_RAW:
        return ikey[9:]
    return None


class KeyIndex:
    """Index maintenance inside write transactions (readers use the module functions)."""

    def __init__(self, dbs: dict[bytes, Any]) -> None:
        self._db = dbs[b"keys"]

    def add(
        self,
        txn: Any,
        topic_id: int,
        partition: int,
        keys: Sequence[bytes | None],
        values: Sequence[bytes | None],
        offsets: Sequence[int],
    ) -> None:
        """Index appended records (each newer than every record already indexed for its
        key, so it becomes that key's last duplicate). Records without a key are not
        indexed."""
        cursor = txn.cursor(db=self._db)
        delta = 0
        prefix = PREFIX.pack(topic_id, partition)
        for key, value, offset in zip(keys, values, offsets, strict=True):
            if key is None:
                continue
            if len(key) <= RAW_KEY_MAX:
                ikey = prefix + TAG_RAW + key
            else:
                ikey = index_key(topic_id, partition, key)
            tomb = value is None
            was_live = False
            version = 1
            if cursor.set_key(ikey):
                cursor.last_dup()
                raw, last_version = _VALUE.unpack(cursor.value())
                was_live = not (raw & 1)
                version = last_version + 1
            cursor.put(ikey, _VALUE.pack(offset << 1 | tomb, version))
            delta += (not tomb) - was_live
        if delta:
            self.adjust_live(txn, topic_id, partition, delta)

    def remove(
        self, cursor: Any, topic_id: int, partition: int, key: bytes, offset: int, tomb: bool
    ) -> bool:
        """Delete one record's entry (``cursor`` on the keys database); whether it existed."""
        if find_entry(cursor, index_key(topic_id, partition, key), offset, tomb):
            return bool(cursor.delete())
        return False

    def live(self, txn: Any, topic_id: int, partition: int) -> int:
        raw = txn.get(count_key(topic_id, partition), db=self._db)
        return 0 if raw is None else int(_U64.unpack(raw)[0])

    def adjust_live(self, txn: Any, topic_id: int, partition: int, delta: int) -> None:
        ckey = count_key(topic_id, partition)
        current = self.live(txn, topic_id, partition)
        txn.delete(ckey, db=self._db)  # all duplicates: the counter is replaced, not added
        txn.put(ckey, _U64.pack(max(0, current + delta)), db=self._db)

    def remove_records(
        self,
        txn: Any,
        topic_id: int,
        partition: int,
        keys: Sequence[bytes | None],
        values: Sequence[bytes | None],
        offsets: Sequence[int],
    ) -> None:
        """Delete the entries of records removed by retention or delete_records(), and
        count the keys whose liveness that changes (a key whose newest record goes is
        now as live as its next newest, or gone)."""
        cursor = txn.cursor(db=self._db)
        live_before: dict[bytes, bool] = {}
        for key in set(keys):
            if key is not None:
                found = last_entry(cursor, index_key(topic_id, partition, key))
                live_before[key] = found is not None and not found[1]
        for key, value, offset in zip(keys, values, offsets, strict=True):
            if key is not None:
                self.remove(cursor, topic_id, partition, key, offset, value is None)
        delta = 0
        for key, was_live in live_before.items():
            found = last_entry(cursor, index_key(topic_id, partition, key))
            delta += (found is not None and not found[1]) - was_live
        if delta:
            self.adjust_live(txn, topic_id, partition, delta)

    def drop(self, txn: Any, topic_id: int, partition: int | None = None) -> None:
        """Delete every entry of a topic (or of one of its partitions)."""
        prefix = (
            topic_id.to_bytes(4, "big") if partition is None else PREFIX.pack(topic_id, partition)
        )
        cursor = txn.cursor(db=self._db)
        if not cursor.set_range(prefix):
            return
        while bytes(cursor.key()[: len(prefix)]) == prefix:
            if not cursor.delete(dupdata=True):
                break
            if not cursor.key():
                break


def last_entry(cursor: Any, ikey: bytes) -> tuple[int, bool] | None:
    """The newest (offset, tombstone) of a key, or None (``cursor`` on the keys db)."""
    if not cursor.set_key(ikey):
        return None
    cursor.last_dup()
    return split_entry(cursor.value())


def last_below(cursor: Any, ikey: bytes, limit: int) -> int | None:
    """The offset of the key's newest record below ``limit``, or None."""
    if cursor.set_range_dup(ikey, entry(limit, False)):
        if cursor.prev_dup():
            return split_entry(cursor.value())[0]
        return None
    if not cursor.set_key(ikey):
        return None
    cursor.last_dup()
    return split_entry(cursor.value())[0]


_TOMB_KEY: Final = struct.Struct(">IIQ")


def drop_tombstones(txn: Any, tdb: Any, topic_id: int, partition: int | None, below: int) -> None:
    """Forget the delete horizons of tombstones below ``below`` (removed by retention), or
    of the whole topic when ``partition`` is None.

    The ``tombstones`` sub-database holds, under topic id u32 · partition u32 · offset
    u64, the delete horizon (i64 ms) of each tombstone a compaction pass has kept
    (``_compaction.py``)."""
    if partition is None:
        prefix = topic_id.to_bytes(4, "big")
        start = prefix
    else:
        prefix = _TOMB_KEY.pack(topic_id, partition, 0)[:8]
        start = _TOMB_KEY.pack(topic_id, partition, 0)
    cursor = txn.cursor(db=tdb)
    if not cursor.set_range(start):
        return
    while True:
        key = cursor.key()
        if not key or bytes(key[: len(prefix)]) != prefix:
            return
        if partition is not None and _TOMB_KEY.unpack(key)[2] >= below:
            return
        if not cursor.delete():
            return


# In the tombstones sub-database, under the offset just below the expiry key's (the last
# u64): the pending offsets of the batch a compaction chunk stopped inside (its base
# offset, then the offsets, u64 each).
PENDING_OFFSET: Final = (1 << 64) - 2


def pending_key(topic_id: int, partition: int) -> bytes:
    """Where the partition's pending offsets are kept (see :func:`read_pending`)."""
    return _TOMB_KEY.pack(topic_id, partition, PENDING_OFFSET)


def pack_pending(base: int, offsets: list[int]) -> bytes:
    """The stored form of :func:`read_pending`'s answer."""
    return struct.pack(f">{1 + len(offsets)}Q", base, *offsets)


def read_pending(txn: Any, tdb: Any, topic_id: int, partition: int) -> tuple[int, tuple[int, ...]]:
    """The batch a compaction chunk stopped inside and the offsets in it found obsolete
    (whose index entries are gone: the batch is rewritten without them when the pass
    finishes it): ``(base offset, offsets)``, or ``(-1, ())``."""
    raw = txn.get(pending_key(topic_id, partition), db=tdb)
    if raw is None or len(raw) < 8 or len(raw) % 8:
        return -1, ()
    values = struct.unpack(f">{len(raw) // 8}Q", raw)
    return values[0], values[1:]


def forget_pending(txn: Any, tdb: Any, topic_id: int, partition: int, base: int) -> None:
    """Drop the pending offsets of the batch at ``base`` (retention removed it)."""
    if read_pending(txn, tdb, topic_id, partition)[0] == base:
        txn.delete(pending_key(topic_id, partition), db=tdb)


def build_index(
    txn: Any, dbs: dict[bytes, Any], topic_id: int, partition: int, log_start: int, topic: str
) -> int:
    """Index every stored record of a partition (a topic that starts keeping an index:
    altered to ``compact`` or ``key_index=True``). One transaction; returns the records
    indexed.

    Raises:
        CorruptLogError: a batch is damaged (nothing is indexed: the caller's transaction
            is aborted).
    """
    from ._catalog import BATCH_KEY, STATE_OFFSET
    from ._codec import decode_batch

    keyindex = KeyIndex(dbs)
    keyindex.drop(txn, topic_id, partition)  # leftovers of an earlier index
    cursor = txn.cursor(db=dbs[b"batches"])
    on = cursor.set_range(BATCH_KEY.pack(topic_id, partition, 0))
    indexed = 0
    while on:
        key = bytes(cursor.key())
        t, p, base = BATCH_KEY.unpack(key)
        if (t, p) != (topic_id, partition) or base == STATE_OFFSET:
            break
        try:
            batch = decode_batch(key, cursor.value(), base)
        except CorruptLogError as exc:
            raise CorruptLogError(
                f"topic {topic!r} partition {partition}: cannot index the record batch at "
                f"offset {base}, which is corrupt ({exc.message}); check() lists the damage",
                topic=topic,
                partition=partition,
                offset=base,
            ) from None
        first = batch.index_of(log_start)
        if first < batch.count:
            keyindex.add(
                txn,
                topic_id,
                partition,
                batch.keys[first:],
                batch.values[first:],
                list(batch.offsets[first:]),
            )
            indexed += batch.count - first
        on = cursor.next()
    return indexed


# In the meta sub-database: the key index is complete, in this entry format (2: 16-byte
# entries with versions; 1 was this session's 8-byte format, rebuilt on open).
INDEX_MARKER: Final = b"keyindex"
INDEX_FORMAT: Final = b"2"


def index_existing_topics(txn: Any, dbs: dict[bytes, Any]) -> None:
    """Build the key index of every compacted or ``key_index`` topic of a log written
    before the index (or its current format) existed, then mark the log as indexed."""
    from ._catalog import PartitionState, TopicInfo, state_key

    cursor = txn.cursor(db=dbs[b"keys"])
    while cursor.first():  # an index in an older format: start afresh
        cursor.delete(dupdata=True)

    for raw_name, raw in txn.cursor(db=dbs[b"topics"]).iternext():
        info = TopicInfo.unpack(bytes(raw_name).decode(), raw)
        if not (info.config.compacted or info.config.key_index):
            continue
        for p in range(info.partitions):
            state_raw = txn.get(state_key(info.topic_id, p), db=dbs[b"batches"])
            log_start = PartitionState.unpack(state_raw).log_start if state_raw else 0
            build_index(txn, dbs, info.topic_id, p, log_start, info.name)
    txn.put(INDEX_MARKER, INDEX_FORMAT, db=dbs[b"meta"])
