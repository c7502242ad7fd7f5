"""Reading through the key index: ``Log.latest(topic, key)`` and ``Log.table(topic)``.

Which partition answers for a key: records are expected in the key's default partition
(Kafka's murmur2 partitioner, what ``append`` chooses for a keyed record), and that
partition decides when it holds the key at all, as Kafka Streams routes a key lookup. A
key written to another partition explicitly is found there when its default partition
never saw it (the first such partition in partition order). ``latest`` and ``table``
follow the same rule, so they always agree.
"""

from __future__ import annotations

from collections.abc import ItemsView, Iterator, Mapping, ValuesView
from functools import partial
from typing import TYPE_CHECKING, Any, Final

from ._catalog import TopicInfo
from ._codec import DecodedBatch
from ._errors import CorruptLogError, InvalidArgumentError, InvalidRecordError
from ._keyindex import (
    PREFIX,
    TAG_RAW,
    count_key,
    entry,
    entry_version,
    index_key,
    key_version,
    last_entry,
    split_entry,
)
from ._logbase import LogBase
from ._partitioner import default_partition
from ._records import Record
from ._topics import validate_topic_name

if TYPE_CHECKING:
    from ._read import Reader

__all__ = ["KeyLookup", "Table"]

# Keys read per read transaction while iterating a table (short transactions: a long one
# pins pages and makes the file grow).
_CHUNK: Final = 1000


def _check_key(key: object, topic: str) -> bytes:
    if type(key) is not bytes:
        hint = " (encode text with .encode())" if isinstance(key, str) else ""
        raise InvalidRecordError(f"key must be bytes; got {type(key).__name__}{hint}", topic=topic)
    return key


def _require_index(info: TopicInfo) -> None:
    config = info.config
    if not (config.compacted or config.key_index):
        raise InvalidArgumentError(
            f"topic {info.name!r} keeps no key index (cleanup.policy="
            f"{config.cleanup_policy}); latest() and table() need a compacted topic "
            f"(cleanup_policy='compact') or key_index=True, e.g. "
            f"alter_topic({info.name!r}, key_index=True)",
            topic=info.name,
        )


def _keys_db(log: LogBase, info: TopicInfo) -> Any:
    if log._keyindex is None:
        raise InvalidArgumentError(
            f"topic {info.name!r}: this log was written before eventlog kept a key index "
            f"and is open read-only; open it writable once (that builds the index)",
            topic=info.name,
        )
    return log._dbs[b"keys"]


def _record_at(
    txn: Any,
    reader: Reader,
    info: TopicInfo,
    partition: int,
    offset: int,
    key: bytes | None,
    batch: DecodedBatch | None = None,
) -> Record:
    """The record an index entry names (looked for in ``batch`` when it spans the offset:
    a key's records often share batches); a mismatch is damage, never returned as data."""
    if batch is None or not batch.base_offset <= offset <= batch.last_offset:
        cursor = txn.cursor(db=reader._batches_db)
        batch = reader.batch_at(txn, cursor, info, partition, offset)
    if batch is not None:
        i = batch.index_of(offset)
        if i < batch.count and batch.offsets[i] == offset:
            rkey = batch.keys[i]
            if rkey is not None and (key is None or rkey == key):
                headers = batch.headers[i] if batch.headers is not None else ()
                return Record(
                    info.name,
                    partition,
                    offset,
                    batch.timestamps[i],
                    rkey,
                    batch.values[i],
                    headers,
                )
    raise CorruptLogError(
        f"topic {info.name!r} partition {partition}: the key index names offset {offset}, "
        f"which holds no record with that key; check() reports the damage",
        topic=info.name,
        partition=partition,
        offset=offset,
    )


def _resolve(
    txn: Any, kdb: Any, info: TopicInfo, key: bytes, partition: int | None
) -> tuple[int, int, bool] | None:
    """(partition, newest offset, is a tombstone) for a key, by the module's rule."""
    cursor = txn.cursor(db=kdb)
    tid = info.topic_id
    if partition is not None:
        order = [partition]
    else:
        home = default_partition(key, info.partitions)
        order = [home, *(p for p in range(info.partitions) if p != home)]
    for p in order:
        found = last_entry(cursor, index_key(tid, p, key))
        if found is not None:
            return p, found[0], found[1]
    return None


def _owner(txn: Any, kdb: Any, info: TopicInfo, key: bytes) -> int:
    """The partition that answers for ``key`` (assuming some partition holds it)."""
    if info.partitions == 1:
        return 0
    found = _resolve(txn, kdb, info, key, None)
    return found[0] if found is not None else -1


def _key_page(
    log: LogBase,
    txn: Any,
    topic: str,
    partition: int,
    key: bytes,
    after: int,
    end: int | None,
    from_version: int,
) -> tuple[list[Record], int | None]:
    """Up to a page of a key's records above offset ``after`` (and below ``end``, of
    version ``from_version`` or later), through the key index; and the last offset looked
    at, or None when there are no more."""
    info = log._info(txn, topic)
    cursor = txn.cursor(db=_keys_db(log, info))
    ikey = index_key(info.topic_id, partition, key)
    if after < 0 and from_version > 1:
        after = _offset_before_version(cursor, ikey, from_version)
    found = cursor.set_range_dup(ikey, entry(after + 1, False))
    offsets: list[int] = []
    looked = 0
    while found and looked < _CHUNK:
        value = cursor.value()
        offset = split_entry(value)[0]
        if end is not None and offset >= end:
            found = False
            break
        looked += 1
        after = offset
        if entry_version(value) >= from_version:
            offsets.append(offset)
        found = cursor.next_dup()
    log_start = log._reader.state(txn, info, partition).log_start
    reader = log._reader
    bcursor = txn.cursor(db=reader._batches_db)
    out = []
    batch = None
    for offset in offsets:
        if offset < log_start:
            continue
        if batch is None or offset > batch.last_offset:
            batch = reader.batch_at(txn, bcursor, info, partition, offset)
        out.append(_record_at(txn, reader, info, partition, offset, key, batch))
    return out, (after if found else None)


def _offset_before_version(cursor: Any, ikey: bytes, version: int) -> int:
    """An offset just below the key's first entry of version ``version`` or later (so a
    ``set_range_dup`` past it lands there); the last entry's offset when there is none.
    Versions grow with offsets, so a binary search over offsets finds it in a few dozen
    seeks instead of a walk over every older entry."""
    if not cursor.set_key(ikey):
        return -1
    first = split_entry(cursor.value())[0]
    if entry_version(cursor.value()) >= version:
        return first - 1
    cursor.last_dup()
    last = split_entry(cursor.value())[0]
    if entry_version(cursor.value()) < version:
        return last
    # The smallest offset x whose first entry at or after x is new enough: false at
    # `first`, true at `last`, and monotonic in between.
    low, high = first + 1, last
    while low < high:
        mid = (low + high) // 2
        cursor.set_range_dup(ikey, entry(mid, False))
        if entry_version(cursor.value()) >= version:
            high = mid
        else:
            low = split_entry(cursor.value())[0] + 1
    return low - 1


def key_records(
    log: LogBase,
    topic: str,
    partition: int,
    key: bytes,
    *,
    end: int | None = None,
    from_version: int = 1,
) -> Iterator[Record]:
    """A key's records in one partition in offset order, through the key index, read in
    short transactions."""
    after: int | None = -1
    while after is not None:
        records, after = log._storage.read(
            partial(
                _key_page,
                log,
                topic=topic,
                partition=partition,
                key=key,
                after=after,
                end=end,
                from_version=from_version,
            ),
            f"reading key {key!r} of topic {topic!r}",
        )
        yield from records


class KeyLookup(LogBase):
    """Key-index reads of :class:`eventlog.Log` (a mixin)."""

    def latest(self, topic: str, key: bytes, *, partition: int | None = None) -> Record | None:
        """The current record of ``key``: its newest record, or None when the key has
        none or its newest record is a tombstone (a deleted key).

        One index lookup and one batch read, whatever the topic's size. The topic must
        keep a key index: a compacted topic, or one created with ``key_index=True``.

        Args:
            topic: the topic name.
            key: the record key (bytes).
            partition: look only in this partition; by default the key's default
                partition answers (see the ``_table`` module notes), as Kafka Streams
                routes a key.

        Raises:
            TopicNotFoundError, PartitionNotFoundError.
            InvalidArgumentError: the topic keeps no key index.
            InvalidRecordError: ``key`` is not bytes.
            CorruptLogError: the index and the batches disagree.
        """
        self._check()
        validate_topic_name(topic)
        rkey = _check_key(key, topic)
        reader = self._reader

        def run(txn: Any) -> Record | None:
            info = self._info(txn, topic)
            _require_index(info)
            if partition is not None:
                reader.state(txn, info, partition)  # validates the partition
            found = _resolve(txn, _keys_db(self, info), info, rkey, partition)
            if found is None or found[2]:
                return None
            p, offset, _tomb = found
            if offset < reader.state(txn, info, p).log_start:
                return None  # deleted by delete_records()
            return _record_at(txn, reader, info, p, offset, rkey)

        return self._storage.read(run, f"looking up a key in topic {topic!r}")

    def read_key(
        self,
        topic: str,
        key: bytes,
        *,
        from_version: int = 1,
        partition: int | None = None,
    ) -> Iterator[Record]:
        """The records of one key (an aggregate's stream), in offset order, read through
        the key index: no scan, whatever the topic's size.

        The topic must keep a key index (``key_index=True``, or compacted: then only the
        records compaction kept). Records are read lazily in short transactions; those
        appended while iterating may be included.

        Args:
            topic: the topic name.
            key: the key (bytes).
            from_version: start at this version (1: the key's first record; N + 1:
                what came after version N, e.g. after a snapshot).
            partition: the partition to read; by default the key's (see :meth:`latest`).

        Raises:
            TopicNotFoundError, PartitionNotFoundError, InvalidArgumentError (no key
            index, bad version), InvalidRecordError (key not bytes), CorruptLogError.
        """
        self._check()
        validate_topic_name(topic)
        rkey = _check_key(key, topic)
        if type(from_version) is not int or from_version < 1:
            raise InvalidArgumentError(
                f"from_version must be an int >= 1 (a key's first record is version 1); got "
                f"{from_version!r}",
                topic=topic,
            )

        def where(txn: Any) -> int:
            info = self._info(txn, topic)
            _require_index(info)
            if partition is not None:
                self._reader.state(txn, info, partition)  # validates it
                return partition
            found = _resolve(txn, _keys_db(self, info), info, rkey, None)
            return found[0] if found is not None else default_partition(rkey, info.partitions)

        p = self._storage.read(where, f"reading key {key!r} of topic {topic!r}")
        return key_records(self, topic, p, rkey, from_version=from_version)

    def key_version(self, topic: str, key: bytes, *, partition: int | None = None) -> int:
        """A key's version: how many records have been appended with it (0: none), the
        number ``expected_version`` compares with. Records that compaction or retention
        removed still count, as long as any record of the key remains.

        Raises:
            TopicNotFoundError, PartitionNotFoundError, InvalidArgumentError (no key
            index), InvalidRecordError (key not bytes).
        """
        self._check()
        validate_topic_name(topic)
        rkey = _check_key(key, topic)

        def run(txn: Any) -> int:
            info = self._info(txn, topic)
            _require_index(info)
            if partition is not None:
                self._reader.state(txn, info, partition)
            kdb = _keys_db(self, info)
            found = _resolve(txn, kdb, info, rkey, partition)
            if found is None:
                return 0
            return key_version(txn.cursor(db=kdb), index_key(info.topic_id, found[0], rkey))

        return self._storage.read(run, f"reading the version of key {key!r}")

    def table(self, topic: str) -> Table:
        """A read-only mapping of ``key -> current value`` for a topic with a key index
        (a compacted topic, or one created with ``key_index=True``): Kafka Streams'
        KTable, kept on disk by the log itself, with no replay on start-up.

        The mapping is a live view: every lookup reads the log's latest committed state.
        ``table[key]``, ``key in table`` and ``table.get(key)`` are index lookups;
        ``len(table)`` reads per-partition counters (on a topic with more than one
        partition it counts keys in the index); iteration walks the index in key order
        (keys over 400 bytes last), partition by partition, in short read transactions (a
        key changed meanwhile may show its older or newer state). Deleted keys (tombstones)
        are not in the table.

        Raises:
            TopicNotFoundError.
            InvalidArgumentError: the topic keeps no key index.
        """
        self._check()
        validate_topic_name(topic)

        def run(txn: Any) -> None:
            info = self._info(txn, topic)
            _require_index(info)
            _keys_db(self, info)

        self._storage.read(run, f"opening the table of topic {topic!r}")
        return Table(self, topic)


class Table(Mapping[bytes, bytes]):
    """A read-only, live mapping of a topic's keys to their current values.

    Returned by :meth:`eventlog.Log.table`; see there.
    """

    __slots__ = ("_log", "_topic")

    def __init__(self, log: KeyLookup, topic: str) -> None:
        self._log = log
        self._topic = topic

    @property
    def topic(self) -> str:
        """The topic this table shows."""
        return self._topic

    def __repr__(self) -> str:
        return f"<eventlog.Table of topic {self._topic!r}>"

    def __getitem__(self, key: bytes) -> bytes:
        given: object = key
        if type(given) is not bytes:
            hint = " (encode text with .encode())" if isinstance(given, str) else ""
            raise KeyError(f"{given!r}: the table's keys are bytes{hint}")
        value: bytes | None = self.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def get(self, key: bytes, default: Any = None) -> Any:
        """The current value of ``key``, or ``default`` when the table has no such key
        (a key that is not bytes is never in the table).

        Raises:
            TopicNotFoundError: the topic was deleted (not swallowed, although it is a
                KeyError).
        """
        if type(key) is not bytes:
            return default
        record = self._log.latest(self._topic, key)
        if record is None or record.value is None:
            return default
        return record.value

    def __contains__(self, key: object) -> bool:
        if type(key) is not bytes:
            return False
        log = self._log
        log._check()

        def run(txn: Any) -> bool:
            info = self._info(txn)
            found = _resolve(txn, _keys_db(log, info), info, key, None)
            if found is None or found[2]:
                return False
            return found[1] >= log._reader.state(txn, info, found[0]).log_start

        return log._storage.read(run, f"looking up a key in topic {self._topic!r}")

    def _info(self, txn: Any) -> TopicInfo:
        info = self._log._info(txn, self._topic)
        _require_index(info)
        return info

    def __len__(self) -> int:
        log = self._log
        log._check()

        def run(txn: Any) -> int | None:
            info = self._info(txn)
            if info.partitions != 1:
                return None
            raw = txn.get(count_key(info.topic_id, 0), db=_keys_db(log, info))
            return 0 if raw is None else int.from_bytes(raw, "big")

        count = log._storage.read(run, f"counting the keys of topic {self._topic!r}")
        if count is not None:
            return count
        return sum(1 for _ in self._entries(False))

    def __bool__(self) -> bool:
        for _ in self._entries(False):
            return True
        return False

    def __iter__(self) -> Iterator[bytes]:
        for key, _value in self._entries(False):
            yield key

    def items(self) -> ItemsView[bytes, bytes]:
        return _Items(self)

    def values(self) -> ValuesView[bytes]:
        return _Values(self)

    def _entries(self, with_values: bool) -> Iterator[tuple[bytes, bytes | None]]:
        """(key, value or None) of every live key, in short read transactions."""
        log = self._log
        log._check()
        partition = 0
        resume: bytes | None = None  # the last index key handed out
        while True:
            chunk, partition, resume, done = log._storage.read(
                partial(self._chunk, partition=partition, resume=resume, with_values=with_values),
                f"reading the table of topic {self._topic!r}",
            )
            yield from chunk
            if done:
                return

    def _chunk(
        self, txn: Any, partition: int, resume: bytes | None, with_values: bool
    ) -> tuple[list[tuple[bytes, bytes | None]], int, bytes | None, bool]:
        log = self._log
        info = self._info(txn)
        kdb = _keys_db(log, info)
        reader = log._reader
        tid = info.topic_id
        cursor = txn.cursor(db=kdb)
        found: list[tuple[bytes, int, int]] = []  # (key, partition, offset)
        examined = 0  # index entries looked at (tombstones included): the chunk bound
        while partition < info.partitions and len(found) < _CHUNK and examined < 4 * _CHUNK:
            prefix = PREFIX.pack(tid, partition)
            log_start = reader.state(txn, info, partition).log_start
            if resume is None:
                on = cursor.set_range(prefix + TAG_RAW)
            else:
                on = cursor.set_range(resume) and (
                    bytes(cursor.key()) != resume or cursor.next_nodup()
                )
            while on and len(found) < _CHUNK and examined < 4 * _CHUNK:
                examined += 1
                ikey = bytes(cursor.key())
                if ikey[:8] != prefix:
                    on = False
                    break
                resume = ikey
                cursor.last_dup()
                offset, tomb = split_entry(cursor.value())
                if not tomb and offset >= log_start:
                    raw = ikey[9:] if ikey[8:9] == TAG_RAW else None
                    if raw is None:  # a digest: the record has the key
                        raw = _record_at(txn, reader, info, partition, offset, None).key
                        assert raw is not None
                    found.append((raw, partition, offset))
                on = cursor.next_nodup()
            if on:
                break  # the chunk is full: continue from `resume` in the next one
            partition += 1
            resume = None
        if info.partitions > 1:
            # A key outside its default partition counts only where the rule puts it.
            found = [f for f in found if _owner(txn, kdb, info, f[0]) == f[1]]
        values: list[bytes | None] = [None] * len(found)
        if with_values:
            # In offset order, so each batch is decoded once (the batch cache keeps it).
            for i in sorted(range(len(found)), key=lambda i: found[i][1:]):
                key, p, offset = found[i]
                values[i] = _record_at(txn, reader, info, p, offset, key).value
        out = [(f[0], v) for f, v in zip(found, values, strict=True)]
        return out, partition, resume, partition >= info.partitions


class _Items(ItemsView[bytes, bytes]):
    _mapping: Table

    def __iter__(self) -> Iterator[tuple[bytes, bytes]]:
        for key, value in self._mapping._entries(True):
            assert value is not None
            yield key, value


class _Values(ValuesView[bytes]):
    _mapping: Table

    def __iter__(self) -> Iterator[bytes]:
        for _key, value in self._mapping._entries(True):
            assert value is not None
            yield value
