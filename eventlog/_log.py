"""The Log: topics, partitions, appends, reads, offsets and waiting for new records."""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from functools import partial
from itertools import repeat
from types import TracebackType
from typing import Any, Final

from . import _storage
from ._catalog import (
    BATCH_KEY,
    MAX_OFFSET,
    MAX_TIMESTAMP,
    PARTITION_KEY,
    TIME_KEY,
    Catalog,
    PartitionState,
    TopicInfo,
)
from ._codec import DecodedBatch, EncodedBatch, batch_crc, decode_batch, encode_batch
from ._errors import (
    CorruptLogError,
    InvalidArgumentError,
    InvalidRecordError,
    LogClosedError,
    OffsetOutOfRangeError,
    PartitionNotFoundError,
    RecordTooLargeError,
    TopicExistsError,
)
from ._partitioner import StickyPartitioner, default_partition
from ._records import (
    BatchMetadata,
    Headers,
    HeadersInput,
    NewRecord,
    PartitionInfo,
    Record,
    RecordColumns,
    RecordMetadata,
    TopicDescription,
)
from ._topics import TopicConfig, parse_config, validate_topic_name

_new_record = partial(tuple.__new__, Record)
_NoneType: Final = type(None)
_BYTES_OR_NONE: Final = frozenset((bytes, _NoneType))
_EMPTY: Headers = ()

# Decoded batches kept per environment, so that paging through a batch decodes it once.
_CACHE_BYTES: Final = 32 << 20
_MAX_HEADER_NAME: Final = 0xFFFF


def _now_ms() -> int:
    return int(time.time() * 1000)


def _check_int(name: str, value: object, low: int, high: int, allowed: str) -> int:
    if type(value) is not int:
        if isinstance(value, int) and not isinstance(value, bool):
            value = int(value)
        else:
            raise InvalidArgumentError(f"{name} must be an integer {allowed}; "
                                       f"got {type(value).__name__} {value!r}")
    assert isinstance(value, int)
    if not low <= value <= high:
        raise InvalidArgumentError(f"{name} must be {allowed}; got {value}")
    return value


def _bad_item(items: Sequence[object], what: str, topic: str) -> InvalidRecordError:
    for i, item in enumerate(items):
        if item is not None and type(item) is not bytes:
            hint = " (encode str with .encode(), or use a producer with a serializer)" \
                if isinstance(item, str) else ""
            return InvalidRecordError(
                f"record {i}: {what} must be bytes or None; got {type(item).__name__}{hint}",
                topic=topic)
    return InvalidRecordError(f"{what} must be bytes or None", topic=topic)


def _normalize_headers(headers: object, index: int, topic: str) -> Headers:
    if headers is None:
        return _EMPTY
    if not isinstance(headers, list | tuple):
        raise InvalidRecordError(
            f"record {index}: headers must be a list of (str, bytes) pairs; "
            f"got {type(headers).__name__}", topic=topic)
    out = []
    for pair in headers:
        if not isinstance(pair, tuple | list) or len(pair) != 2:
            raise InvalidRecordError(
                f"record {index}: each header must be a (name, value) pair; got {pair!r}",
                topic=topic)
        name, value = pair
        if type(name) is not str:
            raise InvalidRecordError(
                f"record {index}: header names must be str; got {type(name).__name__}",
                topic=topic)
        if len(name.encode("utf-8", "surrogatepass")) > _MAX_HEADER_NAME:
            raise InvalidRecordError(f"record {index}: header name longer than 65535 bytes",
                                     topic=topic)
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidRecordError(f"record {index}: header name {name!r} is not valid "
                                     f"Unicode text", topic=topic) from None
        if value is not None and type(value) is not bytes:
            raise InvalidRecordError(
                f"record {index}: header {name!r} value must be bytes or None; "
                f"got {type(value).__name__}", topic=topic)
        out.append((name, value))
    return tuple(out)


def _headers_size(headers: Headers) -> int:
    return sum(len(n) + (len(v) if v is not None else 0) for n, v in headers)


class _Group:
    """The records of one append call that go to one partition."""

    __slots__ = ("encoded", "headers", "indexes", "keys", "partition", "timestamps", "values")

    def __init__(self, partition: int) -> None:
        self.partition = partition
        self.indexes: list[int] | None = None  # None: all records of the call, in order
        self.values: Sequence[bytes | None] = ()
        self.keys: Sequence[bytes | None] | None = None
        self.timestamps: Sequence[int] | int = 0
        self.headers: Sequence[Headers] | None = None
        self.encoded: EncodedBatch | None = None


class Log:
    """An open event log: a directory of topics and partitions on local disk.

    Create one with :func:`eventlog.open`. A Log is thread-safe; use it as a context
    manager or call :meth:`close`. Every method raises :class:`~eventlog.LogClosedError`
    after :meth:`close`.
    """

    def __init__(self, storage: _storage.Storage) -> None:
        self._storage = storage
        self._closed = False
        self._sticky = StickyPartitioner()
        cache = storage.cache
        if "catalog" not in cache:
            cache["catalog"] = Catalog(storage.dbs[b"meta"], storage.dbs[b"topics"])
            cache["batches"] = _BatchCache()
        self._catalog: Catalog = cache["catalog"]
        self._batch_cache: _BatchCache = cache["batches"]
        self._dbs = storage.dbs
        self._batches_db = storage.dbs[b"batches"]
        self._partitions_db = storage.dbs[b"partitions"]

    # ------------------------------------------------------------------ lifecycle

    @property
    def path(self) -> str:
        """The log directory (absolute)."""
        return self._storage.path

    @property
    def readonly(self) -> bool:
        """Whether the log was opened read-only."""
        return self._storage.readonly

    @property
    def durability(self) -> str:
        """The durability mode: ``"full"``, ``"normal"`` or ``"off"``."""
        return self._storage.durability

    @property
    def closed(self) -> bool:
        """True after :meth:`close`."""
        return self._closed

    def close(self) -> None:
        """Close this handle. The environment closes when the last handle on it closes.

        Calling close() again does nothing.
        """
        if self._closed:
            return
        self._closed = True
        _storage.release(self._storage)

    def __enter__(self) -> Log:
        self._check()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("read-only" if self.readonly else "open")
        return f"<eventlog.Log {self.path!r} {state}>"

    def _check(self) -> None:
        if self._closed:
            raise LogClosedError(f"the log {self._storage.path!r} is closed")
        self._storage.check_usable()

    def sync(self) -> None:
        """Flush every committed write to disk now (useful with durability "normal"/"off")."""
        self._check()
        if not self.readonly:
            self._storage.env.sync(True)

    # ------------------------------------------------------------------ topics

    def _info(self, txn: Any, topic: str) -> TopicInfo:
        if type(topic) is not str:
            validate_topic_name(topic)
        return self._catalog.get(txn, topic)

    def create_topic(self, name: str, partitions: int = 1, *,
                     config: Mapping[str, object] | None = None, exist_ok: bool = False,
                     **configs: object) -> TopicDescription:
        """Create a topic.

        Args:
            name: topic name: 1-249 characters of ``[a-zA-Z0-9._-]``, not ``.`` or ``..``.
            partitions: number of partitions (1 to 10,000).
            config: topic configuration with Kafka's names (``{"retention.ms": 3600000}``).
            exist_ok: when the topic already exists, return it instead of raising.
            **configs: configuration as keyword arguments (``retention_ms=3600000``).

        Returns:
            The new topic's description.

        Raises:
            InvalidTopicNameError, InvalidConfigError, InvalidArgumentError: bad arguments.
            TopicExistsError: the topic exists (and ``exist_ok`` is false).
        """
        self._check()
        validate_topic_name(name)
        partitions = _check_int("partitions", partitions, 1, 10_000, "between 1 and 10000")
        merged: dict[str, object] = dict(config or {})
        merged.update(configs)
        topic_config = parse_config(merged)
        meta = self._dbs[b"meta"]
        topics = self._dbs[b"topics"]

        def create(txn: Any) -> bool:
            existing = txn.get(name.encode(), db=topics)
            if existing is not None:
                if exist_ok:
                    return False
                raise TopicExistsError(f"topic {name!r} already exists", topic=name)
            topic_id = int(bytes(txn.get(b"next_topic_id", db=meta)))
            txn.put(b"next_topic_id", str(topic_id + 1).encode(), db=meta)
            info = TopicInfo(name=name, topic_id=topic_id, partitions=partitions,
                             config=topic_config, created_ms=_now_ms())
            txn.put(name.encode(), info.pack(), db=topics)
            empty = PartitionState().pack()
            for p in range(partitions):
                txn.put(PARTITION_KEY.pack(topic_id, p), empty, db=self._partitions_db)
            Catalog.bump(txn, meta)
            return True

        self._storage.write(create, f"creating topic {name!r}")
        return self.describe_topic(name)

    def list_topics(self) -> list[str]:
        """The names of all topics, sorted."""
        self._check()
        topics = self._dbs[b"topics"]
        return self._storage.read(
            lambda txn: [bytes(k).decode() for k in txn.cursor(db=topics).iternext(values=False)],
            "listing topics")

    def describe_topic(self, name: str) -> TopicDescription:
        """A topic's id, configuration and per-partition offsets and sizes.

        Raises:
            TopicNotFoundError: no such topic.
        """
        self._check()

        def describe(txn: Any) -> TopicDescription:
            info = self._info(txn, name)
            parts = tuple(
                PartitionInfo(p, st.log_start, st.next_offset, st.size_bytes, st.batches,
                              st.max_timestamp)
                for p, st in enumerate(self._states(txn, info)))
            return TopicDescription(name=name, topic_id=info.topic_id,
                                    config=info.config.to_dict(), partitions=parts,
                                    created_ms=info.created_ms)

        return self._storage.read(describe, f"describing topic {name!r}")

    def topic_config(self, name: str) -> TopicConfig:
        """A topic's configuration as a :class:`TopicConfig`.

        Raises:
            TopicNotFoundError: no such topic.
        """
        self._check()
        return self._storage.read(lambda txn: self._info(txn, name).config,
                                  f"reading topic {name!r}")

    def alter_topic(self, name: str, config: Mapping[str, object] | None = None,
                    **configs: object) -> TopicDescription:
        """Change some of a topic's configuration; unspecified keys keep their values.

        Raises:
            TopicNotFoundError: no such topic.
            InvalidConfigError: an unknown key or a bad value (nothing is changed).
        """
        self._check()
        validate_topic_name(name)
        merged: dict[str, object] = dict(config or {})
        merged.update(configs)
        meta = self._dbs[b"meta"]
        topics = self._dbs[b"topics"]

        def alter(txn: Any) -> None:
            info = self._info(txn, name)
            new_config = parse_config(merged, base=info.config)
            txn.put(name.encode(), TopicInfo(name=name, topic_id=info.topic_id,
                                             partitions=info.partitions, config=new_config,
                                             created_ms=info.created_ms).pack(), db=topics)
            Catalog.bump(txn, meta)

        self._storage.write(alter, f"altering topic {name!r}")
        return self.describe_topic(name)

    def create_partitions(self, name: str, total: int) -> TopicDescription:
        """Grow a topic to ``total`` partitions (like Kafka, partitions are never removed).

        Existing records stay where they are; keyed records appended from now on may map
        to different partitions than before (as in Kafka).

        Raises:
            TopicNotFoundError: no such topic.
            InvalidArgumentError: ``total`` is not larger than the current count.
        """
        self._check()
        validate_topic_name(name)
        total = _check_int("total", total, 1, 10_000, "between 1 and 10000")
        meta = self._dbs[b"meta"]
        topics = self._dbs[b"topics"]

        def grow(txn: Any) -> None:
            info = self._info(txn, name)
            if total <= info.partitions:
                raise InvalidArgumentError(
                    f"topic {name!r} has {info.partitions} partitions; the new total must be "
                    f"larger (partitions can be added, never removed); got {total}",
                    topic=name)
            empty = PartitionState().pack()
            for p in range(info.partitions, total):
                txn.put(PARTITION_KEY.pack(info.topic_id, p), empty, db=self._partitions_db)
            txn.put(name.encode(), TopicInfo(name=name, topic_id=info.topic_id,
                                             partitions=total, config=info.config,
                                             created_ms=info.created_ms).pack(), db=topics)
            Catalog.bump(txn, meta)

        self._storage.write(grow, f"adding partitions to topic {name!r}")
        return self.describe_topic(name)

    def delete_topic(self, name: str) -> None:
        """Delete a topic and all its records. A topic re-created with the same name starts
        empty (topic ids are never reused).

        Raises:
            TopicNotFoundError: no such topic.
        """
        self._check()
        validate_topic_name(name)
        meta = self._dbs[b"meta"]
        topics = self._dbs[b"topics"]

        def delete(txn: Any) -> None:
            info = self._info(txn, name)
            prefix = info.topic_id.to_bytes(4, "big")
            for db in (self._batches_db, self._partitions_db, self._dbs[b"timeindex"]):
                cursor = txn.cursor(db=db)
                if cursor.set_range(prefix):
                    while bytes(cursor.key()[:4]) == prefix:
                        if not cursor.delete():
                            break
            txn.delete(name.encode(), db=topics)
            Catalog.bump(txn, meta)

        self._storage.write(delete, f"deleting topic {name!r}")

    # ------------------------------------------------------------------ appending

    def append(self, topic: str, value: bytes | None, *, key: bytes | None = None,
               partition: int | None = None, timestamp: int | None = None,
               headers: HeadersInput | None = None) -> RecordMetadata:
        """Append one record and return where it was stored.

        Args:
            topic: the topic name.
            value: the payload (bytes), or None for a tombstone.
            key: optional key (bytes). Keyed records go to partition
                ``murmur2(key) % partitions`` (Kafka's default partitioner).
            partition: an explicit partition, overriding the partitioner.
            timestamp: milliseconds since the epoch; default now. Ignored (replaced by the
                append time) on topics with ``message.timestamp.type=LogAppendTime``.
            headers: optional list of ``(name, value)`` pairs (str, bytes or None).

        Returns:
            RecordMetadata(topic, partition, offset, timestamp); the record is durable per
            the log's durability mode when this returns.

        Raises:
            TopicNotFoundError, PartitionNotFoundError, InvalidRecordError,
            RecordTooLargeError: nothing is written.
        """
        return self.append_batch(topic, [NewRecord(value, key, partition, timestamp,
                                                   headers)])[0]

    def append_batch(self, topic: str, records: Iterable[NewRecord]) -> BatchMetadata:
        """Append many records atomically: all are written, or none.

        One LMDB entry (a record batch) is written per partition touched, in one
        transaction.

        Args:
            topic: the topic name.
            records: :class:`NewRecord` instances.

        Returns:
            A sequence with one RecordMetadata per record, in input order (built lazily,
            on first access; ``.partitions`` gives ``{partition: range of offsets}``).

        Raises:
            TopicNotFoundError, PartitionNotFoundError, InvalidRecordError,
            RecordTooLargeError: nothing is written.
        """
        self._check()
        if not isinstance(records, list | tuple):
            records = list(records)
        if not records:
            return BatchMetadata(topic, 0, [])
        if set(map(type, records)) != {NewRecord}:
            for i, r in enumerate(records):
                if type(r) is not NewRecord:
                    raise InvalidRecordError(
                        f"record {i}: expected eventlog.NewRecord; got {type(r).__name__}",
                        topic=topic if isinstance(topic, str) else None)
        values, keys, partitions, timestamps, headers = zip(*records, strict=False)
        return self._append(topic, values, keys, partitions, timestamps, headers)

    def append_columns(self, topic: str, values: Sequence[bytes | None], *,
                       keys: Sequence[bytes | None] | None = None,
                       partition: int | None = None, timestamp: int | None = None,
                       ) -> dict[int, range]:
        """Append many records given as columns, without a Python object per record.

        The bulk path for high-throughput writers: ``values[i]`` and ``keys[i]`` form
        record ``i``; all records share one timestamp. Atomic like :meth:`append_batch`.

        Args:
            topic: the topic name.
            values: the values (bytes, or None for tombstones).
            keys: optional keys, same length as ``values``.
            partition: write every record to this partition; by default keyed records are
                partitioned by key and unkeyed ones by the sticky partitioner.
            timestamp: milliseconds since the epoch for every record; default now.

        Returns:
            ``{partition: range of offsets}``: the offsets given to the records of each
            partition, which are stored in input order.

        Raises:
            TopicNotFoundError, PartitionNotFoundError, InvalidRecordError,
            RecordTooLargeError: nothing is written.
        """
        self._check()
        if not isinstance(values, list | tuple):
            raise InvalidRecordError(f"values must be a list or tuple of bytes; got "
                                     f"{type(values).__name__}")
        n = len(values)
        if keys is not None:
            if not isinstance(keys, list | tuple):
                raise InvalidRecordError(f"keys must be a list or tuple of bytes; got "
                                         f"{type(keys).__name__}")
            if len(keys) != n:
                raise InvalidRecordError(f"keys has {len(keys)} items for {n} values")
        if n == 0:
            return {}
        return self._append(topic, values, keys if keys is not None else repeat(None, n),
                            repeat(partition, n), repeat(timestamp, n), None).partitions

    def _append(self, topic: str, values: Sequence[Any], keys: Iterable[Any],
                partitions: Iterable[Any], timestamps: Iterable[Any],
                headers: Sequence[Any] | None) -> BatchMetadata:
        storage = self._storage
        if type(topic) is not str:
            validate_topic_name(topic)
        info = self._catalog.cached(topic)
        if info is None:
            info = storage.read(lambda txn: self._catalog.get(txn, topic),
                                f"appending to {topic!r}")
        n = len(values)
        now = _now_ms()
        cols = self._validate(info, n, values, keys, partitions, timestamps, headers, now)
        groups = self._partition(info, n, cols)
        self._encode(info, groups)

        def write(txn: Any) -> list[tuple[int, int]]:
            current = self._catalog.get(txn, topic)
            if current is not info:
                # The topic changed since we looked (altered, grown, re-created): redo the
                # partitioning and encoding against what the transaction sees.
                regroup = self._partition(current, n, cols)
                self._encode(current, regroup)
                groups[:] = regroup
                return self._write_groups(txn, current, groups)
            return self._write_groups(txn, info, groups)

        bases = storage.write(write, f"appending to topic {topic!r}")
        return BatchMetadata(topic, n, [(g.partition, base, g.indexes, g.timestamps)
                                        for g, (_p, base) in zip(groups, bases)])

    def _validate(self, info: TopicInfo, n: int, values: Sequence[Any], keys: Iterable[Any],
                  partitions: Iterable[Any], timestamps: Iterable[Any],
                  headers: Sequence[Any] | None, now: int) -> dict[str, Any]:
        """Check every field of every record; return normalised columns."""
        topic = info.name
        if not set(map(type, values)) <= _BYTES_OR_NONE:
            raise _bad_item(values, "value", topic)
        keys = keys if isinstance(keys, tuple | list) else list(keys)
        key_types = set(map(type, keys))
        if not key_types <= _BYTES_OR_NONE:
            raise _bad_item(keys, "key", topic)
        has_keys = bytes in key_types
        if info.config.compacted and _NoneType in key_types:
            i = keys.index(None)
            raise InvalidRecordError(
                f"record {i}: topic {topic!r} is compacted (cleanup.policy="
                f"{info.config.cleanup_policy}) and every record needs a key", topic=topic)
        parts = partitions if isinstance(partitions, tuple | list) else list(partitions)
        explicit = parts.count(None) != n
        if explicit:
            for i, p in enumerate(parts):
                if p is not None and (type(p) is not int or p < 0):
                    raise InvalidArgumentError(
                        f"record {i}: partition must be None or an integer >= 0; got {p!r}",
                        topic=topic)
        ts_list = timestamps if isinstance(timestamps, tuple | list) else list(timestamps)
        log_append = info.config.message_timestamp_type == "LogAppendTime"
        ts_col: Sequence[int] | int
        if log_append or ts_list.count(None) == n:
            ts_col = now
        else:
            checked = []
            for i, ts in enumerate(ts_list):
                if ts is None:
                    ts = now
                elif type(ts) is not int or not 0 <= ts <= MAX_TIMESTAMP:
                    raise InvalidRecordError(
                        f"record {i}: timestamp must be milliseconds since the epoch, an "
                        f"integer between 0 and 2**63-1; got {ts!r}", topic=topic)
                checked.append(ts)
            ts_col = checked
        hdrs: list[Headers] | None = None
        if headers is not None and headers.count(None) != n:
            hdrs = [_normalize_headers(h, i, topic) for i, h in enumerate(headers)]
        limit = info.config.max_message_bytes
        max_value = max(map(len, filter(None, values)), default=0)
        max_key = max(map(len, filter(None, keys)), default=0) if has_keys else 0
        max_hdr = max(map(_headers_size, hdrs), default=0) if hdrs else 0
        if max_value + max_key + max_hdr > limit:
            for i in range(n):
                size = (len(values[i] or b"") + len(keys[i] or b"")
                        + (_headers_size(hdrs[i]) if hdrs else 0))
                if size > limit:
                    raise RecordTooLargeError(
                        f"record {i} is {size} bytes (key + value + headers), more than "
                        f"topic {topic!r} allows (max.message.bytes={limit}); raise the "
                        f"limit with alter_topic() or split the record", topic=topic)
        return {"values": values, "keys": keys if has_keys else None, "parts": parts,
                "explicit": explicit, "ts": ts_col, "headers": hdrs, "log_append": log_append}

    def _partition(self, info: TopicInfo, n: int, cols: dict[str, Any]) -> list[_Group]:
        """Choose each record's partition and split the columns into per-partition groups."""
        count = info.partitions
        keys = cols["keys"]
        parts = cols["parts"]
        if cols["explicit"]:
            chosen = list(parts)
            for i, p in enumerate(chosen):
                if p is None:
                    chosen[i] = self._choose(keys[i] if keys else None, count,
                                             cols["values"][i])
                elif p >= count:
                    raise PartitionNotFoundError(
                        f"record {i}: partition {p} does not exist; topic {info.name!r} has "
                        f"partitions 0..{count - 1}", topic=info.name, partition=p)
        elif count == 1:
            chosen = None
            single = 0
        elif keys is None:
            # No keys: the sticky partitioner keeps a batch together.
            nbytes = sum(map(len, filter(None, cols["values"])))
            single = self._sticky.partition(count, nbytes)
            chosen = None
        else:
            chosen = [default_partition(k, count) if k is not None else None for k in keys]
            if None in chosen:
                for i, p in enumerate(chosen):
                    if p is None:
                        chosen[i] = self._sticky.partition(count, len(cols["values"][i] or b""))
        if chosen is not None:
            first = chosen[0]
            if chosen.count(first) == n:
                chosen, single = None, first
        if chosen is None:
            g = _Group(single)
            g.values, g.keys, g.timestamps, g.headers = (cols["values"], keys, cols["ts"],
                                                         cols["headers"])
            return [g]
        by_part: dict[int, list[int]] = {}
        for i, p in enumerate(chosen):
            by_part.setdefault(p, []).append(i)
        groups = []
        values, ts, hdrs = cols["values"], cols["ts"], cols["headers"]
        for p in sorted(by_part):
            idx = by_part[p]
            g = _Group(p)
            g.indexes = idx
            g.values = [values[i] for i in idx]
            g.keys = [keys[i] for i in idx] if keys is not None else None
            g.timestamps = ts if isinstance(ts, int) else [ts[i] for i in idx]
            g.headers = [hdrs[i] for i in idx] if hdrs is not None else None
            groups.append(g)
        return groups

    def _choose(self, key: bytes | None, count: int, value: bytes | None) -> int:
        if key is not None:
            return default_partition(key, count)
        return self._sticky.partition(count, len(value or b""))

    def _encode(self, info: TopicInfo, groups: list[_Group]) -> None:
        config = info.config
        compress = config.compression_type != "uncompressed"
        log_append = config.message_timestamp_type == "LogAppendTime"
        for g in groups:
            keys = g.keys
            if keys is not None and None not in keys:
                pass
            elif keys is not None and keys.count(None) == len(keys):
                keys = None
            g.encoded = encode_batch(g.values, keys, g.timestamps, g.headers,
                                     log_append_time=log_append, compress=compress,
                                     level=config.compression_zstd_level)

    def _write_groups(self, txn: Any, info: TopicInfo,
                      groups: list[_Group]) -> list[tuple[int, int]]:
        tid = info.topic_id
        pdb = self._partitions_db
        bdb = self._batches_db
        out = []
        for g in groups:
            pkey = PARTITION_KEY.pack(tid, g.partition)
            raw = txn.get(pkey, db=pdb)
            if raw is None:
                raise CorruptLogError(f"partition {g.partition} of topic {info.name!r} has no "
                                      f"state record", topic=info.name, partition=g.partition)
            state = PartitionState.unpack(raw)
            enc = g.encoded
            assert enc is not None
            base = state.next_offset
            bkey = BATCH_KEY.pack(tid, g.partition, base)
            if not txn.put(bkey, enc.value(bkey), db=bdb, overwrite=False):
                raise CorruptLogError(
                    f"topic {info.name!r} partition {g.partition}: a batch already exists at "
                    f"offset {base}, past the partition's recorded end", topic=info.name,
                    partition=g.partition, offset=base)
            state.next_offset = base + enc.count
            state.size_bytes += enc.nbytes
            state.batches += 1
            if enc.max_timestamp > state.max_timestamp:
                state.max_timestamp = enc.max_timestamp
                txn.put(TIME_KEY.pack(tid, g.partition, enc.max_timestamp, base), b"",
                        db=self._dbs[b"timeindex"])
            txn.put(pkey, state.pack(), db=pdb)
            out.append((g.partition, base))
        return out

    # ------------------------------------------------------------------ reading

    def _states(self, txn: Any, info: TopicInfo) -> list[PartitionState]:
        states = []
        for p in range(info.partitions):
            raw = txn.get(PARTITION_KEY.pack(info.topic_id, p), db=self._partitions_db)
            if raw is None:
                raise CorruptLogError(f"partition {p} of topic {info.name!r} has no state",
                                      topic=info.name, partition=p)
            states.append(PartitionState.unpack(raw))
        return states

    def _state(self, txn: Any, info: TopicInfo, partition: int) -> PartitionState:
        if type(partition) is not int or isinstance(partition, bool):
            raise InvalidArgumentError(f"partition must be an integer; got "
                                       f"{type(partition).__name__} {partition!r}",
                                       topic=info.name)
        if not 0 <= partition < info.partitions:
            raise PartitionNotFoundError(
                f"partition {partition} does not exist; topic {info.name!r} has partitions "
                f"0..{info.partitions - 1}", topic=info.name, partition=partition)
        raw = txn.get(PARTITION_KEY.pack(info.topic_id, partition), db=self._partitions_db)
        if raw is None:
            raise CorruptLogError(f"partition {partition} of topic {info.name!r} has no state",
                                  topic=info.name, partition=partition)
        return PartitionState.unpack(raw)

    def _batch_at(self, txn: Any, cursor: Any, info: TopicInfo, partition: int,
                  offset: int) -> DecodedBatch | None:
        """The stored batch holding ``offset``, or the next one after it, or None."""
        tid = info.topic_id
        if cursor.set_range(BATCH_KEY.pack(tid, partition, offset)):
            key = cursor.key()
            t, p, base = BATCH_KEY.unpack(key)
            if (t, p) != (tid, partition) or base != offset:
                if self._prev_covers(cursor, tid, partition, offset):
                    key = cursor.key()
                    t, p, base = BATCH_KEY.unpack(key)
                elif (t, p) != (tid, partition):
                    return None
        elif cursor.last() and self._prev_covers(cursor, tid, partition, offset, moved=True):
            key = cursor.key()
            _t, _p, base = BATCH_KEY.unpack(key)
        else:
            return None
        return self._decode(info, partition, base, bytes(key), cursor.value())

    @staticmethod
    def _prev_covers(cursor: Any, tid: int, partition: int, offset: int,
                     moved: bool = False) -> bool:
        """Step back to the previous batch when it contains ``offset``."""
        if not moved and not cursor.prev():
            return False
        t, p, base = BATCH_KEY.unpack(cursor.key())
        if (t, p) == (tid, partition):
            from ._codec import read_header
            last = base + read_header(cursor.value())[4]
            if last >= offset:
                return True
        cursor.next()
        return False

    def _decode(self, info: TopicInfo, partition: int, base: int, key: bytes,
                value: Any) -> DecodedBatch:
        cache = self._batch_cache
        try:
            crc = batch_crc(value)
        except Exception:
            crc = -1
        cache_key = (info.topic_id, partition, base)
        hit = cache.get(cache_key, crc)
        if hit is not None:
            return hit
        try:
            batch = decode_batch(key, value, base)
        except CorruptLogError as exc:
            raise CorruptLogError(
                f"topic {info.name!r} partition {partition}: the record batch at offset "
                f"{base} is corrupt: {exc.message}", topic=info.name, partition=partition,
                offset=base) from None
        cache.put(cache_key, crc, batch, len(value))
        return batch

    def read(self, topic: str, partition: int, offset: int = 0, *, max_records: int = 500,
             max_bytes: int | None = None) -> list[Record]:
        """Read records of one partition, starting at ``offset``.

        Args:
            topic: the topic name.
            partition: the partition number.
            offset: the first offset to read. If that record was removed by compaction,
                reading continues at the next existing one.
            max_records: at most this many records (>= 1).
            max_bytes: stop once this many key+value bytes are returned (at least one
                record is returned even if larger, as in Kafka).

        Returns:
            Records in offset order; an empty list at or past the end of the partition.

        Raises:
            OffsetOutOfRangeError: ``offset`` is below the log start offset.
            TopicNotFoundError, PartitionNotFoundError, InvalidArgumentError.
            CorruptLogError: a stored batch fails its checksum.
        """
        cols = self._read(topic, partition, offset, max_records, max_bytes, records=True)
        return cols  # type: ignore[return-value]

    def read_columns(self, topic: str, partition: int, offset: int = 0, *,
                     max_records: int = 10_000, max_bytes: int | None = None,
                     ) -> RecordColumns:
        """Read a range of one partition as columns (the bulk read path).

        Like :meth:`read`, but returns parallel lists (offsets, timestamps, keys, values,
        headers) instead of one object per record, and ``next_offset`` to continue from.
        """
        return self._read(topic, partition, offset, max_records, max_bytes,  # type: ignore[return-value]
                          records=False)

    def _read(self, topic: str, partition: int, offset: int, max_records: int,
              max_bytes: int | None, *, records: bool) -> list[Record] | RecordColumns:
        self._check()
        if type(offset) is not int:
            offset = _check_int("offset", offset, 0, MAX_OFFSET, "between 0 and 2**63-1")
        elif not 0 <= offset <= MAX_OFFSET:
            raise InvalidArgumentError(f"offset must be between 0 and 2**63-1; got {offset}",
                                       topic=topic, partition=partition, offset=offset)
        if type(max_records) is not int or max_records < 1:
            _check_int("max_records", max_records, 1, MAX_OFFSET, ">= 1")
        if max_bytes is not None:
            _check_int("max_bytes", max_bytes, 1, MAX_OFFSET, ">= 1")

        def read(txn: Any) -> list[Record] | RecordColumns:
            info = self._info(txn, topic)
            state = self._state(txn, info, partition)
            if offset < state.log_start:
                raise OffsetOutOfRangeError(
                    f"offset {offset} of topic {topic!r} partition {partition} is below the "
                    f"log start offset {state.log_start} (those records were deleted); read "
                    f"from {state.log_start} or later", topic=topic, partition=partition,
                    offset=offset)
            return self._collect(txn, info, partition, offset, state.next_offset,
                                 max_records, max_bytes, records)

        return self._storage.read(read, f"reading topic {topic!r}")

    def _collect(self, txn: Any, info: TopicInfo, partition: int, offset: int, end: int,
                 max_records: int, max_bytes: int | None,
                 records: bool) -> list[Record] | RecordColumns:
        topic = info.name
        out: list[Record] = []
        c_off: list[int] = []
        c_ts: list[int] = []
        c_keys: list[bytes | None] = []
        c_vals: list[bytes | None] = []
        c_hdrs: list[Headers] = []
        remaining = max_records
        budget = max_bytes
        position = offset
        cursor = txn.cursor(db=self._batches_db)
        while remaining > 0 and position < end:
            batch = self._batch_at(txn, cursor, info, partition, position)
            if batch is None:
                break
            i = batch.index_of(position)
            j = min(batch.count, i + remaining)
            if budget is not None:
                j = self._bytes_cut(batch, i, j, budget, first=position == offset)
                if j == i:
                    break
                budget -= sum(len(v or b"") + len(k or b"")
                              for k, v in zip(batch.keys[i:j], batch.values[i:j], strict=True))
            if j > i:
                offs = batch.offsets[i:j]
                hdrs = batch.headers[i:j] if batch.headers is not None else repeat(_EMPTY, j - i)
                if records:
                    k = j - i
                    out.extend(map(_new_record, zip(repeat(topic, k), repeat(partition, k), offs,
                                                    batch.timestamps[i:j], batch.keys[i:j],
                                                    batch.values[i:j], hdrs, strict=False)))
                else:
                    c_off.extend(offs)
                    c_ts.extend(batch.timestamps[i:j])
                    c_keys.extend(batch.keys[i:j])
                    c_vals.extend(batch.values[i:j])
                    c_hdrs.extend(hdrs)
                remaining -= j - i
            if j < batch.count:
                position = batch.offsets[j]
                break
            position = batch.last_offset + 1
            if budget is not None and budget <= 0:
                break
        if records:
            return out
        return RecordColumns(topic=topic, partition=partition, offsets=c_off, timestamps=c_ts,
                             keys=c_keys, values=c_vals, headers=c_hdrs,
                             next_offset=max(position, offset))

    @staticmethod
    def _bytes_cut(batch: DecodedBatch, i: int, j: int, budget: int, first: bool) -> int:
        total = 0
        for n in range(i, j):
            size = len(batch.values[n] or b"") + len(batch.keys[n] or b"")
            if total + size > budget and not (first and n == i):
                return n
            total += size
        return j

    def scan(self, topic: str, partition: int | None = None, *,
             start_offset: int | None = None, start_timestamp: int | None = None,
             end_offset: int | None = None, page_size: int = 1000) -> Iterator[Record]:
        """Iterate over a topic's records, partition by partition, in offset order.

        Each page is read in its own short transaction, so a slow consumer of the iterator
        never pins old pages (which would make the data file grow).

        Args:
            topic: the topic name.
            partition: one partition, or None for all (partition 0 first).
            start_offset: start here (clamped to the log start offset); default: the start.
            start_timestamp: start at the first record with timestamp >= this (ms).
            end_offset: stop before this offset; default: the end offsets when the scan
                starts (records appended later are not included).
            page_size: records per read transaction.

        Raises:
            TopicNotFoundError, PartitionNotFoundError, InvalidArgumentError.
        """
        self._check()
        if start_offset is not None and start_timestamp is not None:
            raise InvalidArgumentError("give start_offset or start_timestamp, not both",
                                       topic=topic)
        page_size = _check_int("page_size", page_size, 1, 1_000_000, "between 1 and 1000000")
        if start_offset is not None:
            _check_int("start_offset", start_offset, 0, MAX_OFFSET, "between 0 and 2**63-1")
        if end_offset is not None:
            _check_int("end_offset", end_offset, 0, MAX_OFFSET, "between 0 and 2**63-1")
        ends = self.end_offsets(topic)
        starts = self.beginning_offsets(topic)
        if partition is None:
            selected = sorted(ends)
        else:
            if type(partition) is not int or partition not in ends:
                raise PartitionNotFoundError(
                    f"partition {partition!r} does not exist; topic {topic!r} has partitions "
                    f"0..{len(ends) - 1}", topic=topic, partition=partition
                    if isinstance(partition, int) else None)
            selected = [partition]
        by_time = (self.offsets_for_times(topic, start_timestamp)
                   if start_timestamp is not None else None)
        return self._scan(topic, selected, starts, ends, start_offset, by_time, end_offset,
                          page_size)

    def _scan(self, topic: str, selected: list[int], starts: dict[int, int],
              ends: dict[int, int], start_offset: int | None,
              by_time: dict[int, int | None] | None, end_offset: int | None,
              page_size: int) -> Iterator[Record]:
        for p in selected:
            stop = ends[p] if end_offset is None else end_offset
            if by_time is not None:
                found = by_time[p]
                if found is None:
                    continue
                position = found
            else:
                position = max(start_offset or 0, starts[p])
            while position < stop:
                try:
                    page = self.read(topic, p, position, max_records=page_size)
                except OffsetOutOfRangeError:
                    # Retention moved the start while we were reading: skip ahead.
                    position = self.beginning_offsets(topic)[p]
                    continue
                if not page:
                    break
                for record in page:
                    if record.offset >= stop:
                        return_now = True
                        break
                    yield record
                else:
                    return_now = False
                if return_now:
                    break
                position = page[-1].offset + 1

    # ------------------------------------------------------------------ offsets

    def beginning_offsets(self, topic: str) -> dict[int, int]:
        """``{partition: log start offset}``: the first offset still stored per partition."""
        self._check()
        return self._storage.read(
            lambda txn: {p: s.log_start
                         for p, s in enumerate(self._states(txn, self._info(txn, topic)))},
            f"reading offsets of {topic!r}")

    def end_offsets(self, topic: str) -> dict[int, int]:
        """``{partition: end offset}``: the offset the next appended record will get."""
        self._check()
        return self._storage.read(
            lambda txn: {p: s.next_offset
                         for p, s in enumerate(self._states(txn, self._info(txn, topic)))},
            f"reading offsets of {topic!r}")

    def offsets_for_times(self, topic: str, timestamp: int) -> dict[int, int | None]:
        """``{partition: offset or None}``: the earliest offset whose timestamp is >=
        ``timestamp`` in each partition, or None when there is none.

        Uses the time index (one seek per partition), not a scan.
        """
        self._check()
        _check_int("timestamp", timestamp, 0, MAX_TIMESTAMP,
                   "of milliseconds since the epoch (>= 0)")

        def find(txn: Any) -> dict[int, int | None]:
            info = self._info(txn, topic)
            return {p: self._offset_for_time(txn, info, p, st, timestamp)
                    for p, st in enumerate(self._states(txn, info))}

        return self._storage.read(find, f"reading offsets of {topic!r}")

    def _offset_for_time(self, txn: Any, info: TopicInfo, partition: int,
                         state: PartitionState, timestamp: int) -> int | None:
        if state.max_timestamp < timestamp or state.next_offset <= state.log_start:
            return None
        cursor = txn.cursor(db=self._dbs[b"timeindex"])
        if not cursor.set_range(TIME_KEY.pack(info.topic_id, partition, timestamp, 0)):
            return None
        tid, p, _ts, base = TIME_KEY.unpack(cursor.key())
        if (tid, p) != (info.topic_id, partition):
            return None
        # Every record before `base` has a timestamp below `timestamp`; the answer is the
        # first qualifying record from there on (normally in the batch at `base`).
        position = max(base, state.log_start)
        bcursor = txn.cursor(db=self._batches_db)
        while position < state.next_offset:
            batch = self._batch_at(txn, bcursor, info, partition, position)
            if batch is None:
                return None
            start = batch.index_of(position)
            for i in range(start, batch.count):
                if batch.timestamps[i] >= timestamp:
                    return batch.offsets[i]
            position = batch.last_offset + 1
        return None

    # ------------------------------------------------------------------ waiting

    def wait(self, topic: str, partition: int, offset: int,
             timeout: float | None = None) -> bool:
        """Block until ``partition`` has a record at or past ``offset``, or ``timeout`` passes.

        Appends from this process wake the waiter at once; appends from other processes
        are noticed within a few milliseconds.

        Returns:
            True when records at or past ``offset`` exist, False on timeout.
        """
        self._check()
        _check_int("offset", offset, 0, MAX_OFFSET, "between 0 and 2**63-1")
        if timeout is not None and (not isinstance(timeout, int | float) or timeout < 0):
            raise InvalidArgumentError(f"timeout must be None or seconds >= 0; got {timeout!r}")
        storage = self._storage
        deadline = None if timeout is None else time.monotonic() + timeout

        def ready(txn: Any) -> bool:
            info = self._info(txn, topic)
            return bool(self._state(txn, info, partition).next_offset > offset)

        while True:
            seen = storage.commits
            if storage.read(ready, f"waiting on {topic!r}"):
                return True
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return False
            # In-process commits notify the condition; other processes are polled.
            pause = 0.005 if remaining is None else min(0.005, remaining)
            with storage.commit_cond:
                if storage.commits == seen and not storage.closed:
                    storage.commit_cond.wait(pause)
            self._check()


class _BatchCache:
    """A small LRU of decoded batches, keyed by (topic id, partition, base offset) and
    validated by the stored CRC (a rewritten batch gets a new CRC)."""

    def __init__(self, max_bytes: int = _CACHE_BYTES) -> None:
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple[int, int, int], tuple[int, DecodedBatch, int]] = \
            OrderedDict()
        self._bytes = 0
        self._max = max_bytes

    def get(self, key: tuple[int, int, int], crc: int) -> DecodedBatch | None:
        entry = self._entries.get(key)
        if entry is None or entry[0] != crc:
            return None
        return entry[1]

    def put(self, key: tuple[int, int, int], crc: int, batch: DecodedBatch, size: int) -> None:
        # Decoded size is roughly the stored size times the compression ratio; count the
        # uncompressed payload as the cost.
        cost = max(size, sum(map(len, filter(None, batch.values))))
        if cost > self._max // 4:
            return
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= old[2]
            self._entries[key] = (crc, batch, cost)
            self._bytes += cost
            while self._bytes > self._max and self._entries:
                _k, (_c, _b, c) = self._entries.popitem(last=False)
                self._bytes -= c


def open(
    path: str | os.PathLike[str], *, readonly: bool = False, create: bool = True,
    durability: str = "full", map_size: int | None = None,
) -> Log:
    """Open (or create) the event log in directory ``path``.

    Args:
        path: a directory. Created (with parents) if missing, unless ``create`` is false
            or ``readonly`` is true.
        readonly: open for reading only; writes raise ReadOnlyLogError and nothing on disk
            changes.
        create: create the log when the directory has none.
        durability: ``"full"`` (default: every acknowledged write survives power loss),
            ``"normal"`` (survives a process crash; power loss may lose the last
            transaction, never corrupts) or ``"off"`` (survives a process crash; power loss
            may lose recent transactions). See docs/explanation/durability.md.
        map_size: the initial LMDB map size in bytes (it grows automatically).

    Returns:
        A :class:`Log`. Opening the same directory again in one process shares one
        LMDB environment between the handles.

    Raises:
        NotALogError: the path is a file, or a directory with other content and no log.
        LogNotFoundError: nothing to open (read-only, or ``create=False``).
        CorruptLogError: the data file is empty or truncated.
        UnsupportedFormatError: the log was written by a newer eventlog.
        InvalidArgumentError: a bad option.
    """
    if not isinstance(path, str | os.PathLike):
        raise InvalidArgumentError(f"path must be a str or os.PathLike; got {type(path).__name__}")
    if not isinstance(readonly, bool) or not isinstance(create, bool):
        raise InvalidArgumentError("readonly and create must be True or False")
    storage = _storage.acquire(os.fspath(path), readonly=readonly,
                               durability=durability, map_size=map_size,  # type: ignore[arg-type]
                               create=create)
    return Log(storage)


__all__ = ["Log", "open"]

