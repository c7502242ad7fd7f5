"""The write path: validating records, choosing partitions, encoding and storing batches."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

from ._catalog import (
    BATCH_KEY,
    MAX_TIMESTAMP,
    TIME_INDEX_BATCH_WEIGHT,
    TIME_INDEX_INTERVAL,
    TIME_KEY,
    PartitionState,
    TopicInfo,
    state_key,
)
from ._codec import EncodedBatch, batch_crc, encode_batch, encode_single
from ._errors import (
    ConcurrencyError,
    CorruptLogError,
    InvalidArgumentError,
    InvalidRecordError,
    PartitionNotFoundError,
    RecordTooLargeError,
)
from ._keyindex import index_key, key_version
from ._partitioner import StickyPartitioner, default_partition
from ._records import BatchMetadata, Headers

if TYPE_CHECKING:
    from ._compaction import Compactor
    from ._keyindex import KeyIndex
    from ._retention import Retention

_NoneType: Final = type(None)
_BYTES_OR_NONE: Final = frozenset((bytes, _NoneType))
_EMPTY: Headers = ()
_MAX_HEADER_NAME: Final = 0xFFFF


def _bad_item(items: Sequence[object], what: str, topic: str) -> InvalidRecordError:
    for i, item in enumerate(items):
        if item is not None and type(item) is not bytes:
            hint = (
                " (encode text with .encode(), e.g. 'text'.encode())"
                if isinstance(item, str)
                else ""
            )
            return InvalidRecordError(
                f"record {i}: {what} must be bytes or None; got {type(item).__name__}{hint}",
                topic=topic,
            )
    return InvalidRecordError(f"{what} must be bytes or None", topic=topic)


def _normalize_headers(headers: object, index: int, topic: str) -> Headers:
    if headers is None:
        return _EMPTY
    if not isinstance(headers, list | tuple):
        raise InvalidRecordError(
            f"record {index}: headers must be a list of (str, bytes) pairs; "
            f"got {type(headers).__name__}",
            topic=topic,
        )
    out = []
    for pair in headers:
        if not isinstance(pair, tuple | list) or len(pair) != 2:
            raise InvalidRecordError(
                f"record {index}: each header must be a (name, value) pair; got {pair!r}",
                topic=topic,
            )
        name, value = pair
        if type(name) is not str:
            raise InvalidRecordError(
                f"record {index}: header names must be str; got {type(name).__name__}", topic=topic
            )
        if len(name.encode("utf-8", "surrogatepass")) > _MAX_HEADER_NAME:
            raise InvalidRecordError(
                f"record {index}: header name longer than 65535 bytes", topic=topic
            )
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidRecordError(
                f"record {index}: header name {name!r} is not valid Unicode text", topic=topic
            ) from None
        if value is not None and type(value) is not bytes:
            raise InvalidRecordError(
                f"record {index}: header {name!r} value must be bytes or None; "
                f"got {type(value).__name__}",
                topic=topic,
            )
        out.append((name, value))
    return tuple(out)


def _headers_size(headers: Headers) -> int:
    # Names count in UTF-8 bytes, as stored.
    return sum(len(n.encode()) + (len(v) if v is not None else 0) for n, v in headers)


class Uniform:
    """One value standing for a whole column (the bulk path: every record the same)."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


class _Group:
    """The records of one append call that go to one partition."""

    __slots__ = (
        "encoded",
        "headers",
        "indexes",
        "key_sizes",
        "keys",
        "partition",
        "stored_crc",
        "timestamps",
        "value_sizes",
        "values",
    )

    def __init__(self, partition: int) -> None:
        self.partition = partition
        self.indexes: list[int] | None = None  # None: all records of the call, in order
        self.values: Sequence[bytes | None] = ()
        self.keys: Sequence[bytes | None] | None = None
        self.timestamps: Sequence[int] | int = 0
        self.headers: Sequence[Headers] | None = None
        self.encoded: EncodedBatch | None = None
        self.value_sizes: tuple[int, ...] | None = None
        self.key_sizes: tuple[int, ...] | None = None
        self.stored_crc: int | None = None  # the written batch's checksum (set by write)


def new_group(
    info: TopicInfo, partition: int, value: bytes | None, key: bytes | None, timestamp: int
) -> _Group:
    """A one-record group, already encoded (the single-append fast path)."""
    group = _Group(partition)
    group.values = (value,)
    group.keys = (key,) if key is not None else None
    group.timestamps = timestamp
    config = info.config
    group.encoded = encode_single(
        value,
        key,
        timestamp,
        log_append_time=config.message_timestamp_type == "LogAppendTime",
        compress=config.compression_type != "uncompressed",
        level=config.compression_zstd_level,
    )
    return group


class Appender:
    """Turns the records of one append call into per-partition batches and stores them.

    ``validate``, ``partition`` and ``encode`` run before the write transaction (so that
    compression overlaps other writers' commits); ``write_groups`` runs inside it.
    """

    def __init__(
        self,
        dbs: dict[bytes, Any],
        retention: Retention | None = None,
        keyindex: KeyIndex | None = None,
        compactor: Compactor | None = None,
    ) -> None:
        self._dbs = dbs
        self._batches_db = dbs[b"batches"]
        self._sticky: dict[str, StickyPartitioner] = {}
        # Runs a bounded chunk of retention and compaction on each partition written, in
        # the same transaction (DESIGN.md section 6: maintenance without a user call).
        self._retention = retention
        self._keyindex = keyindex
        self._compactor = compactor

    def validate(
        self,
        info: TopicInfo,
        n: int,
        values: Sequence[Any],
        keys: Iterable[Any] | Uniform,
        partitions: Iterable[Any] | Uniform,
        timestamps: Iterable[Any] | Uniform,
        headers: Sequence[Any] | None,
        now: int,
    ) -> dict[str, Any]:
        """Check every field of every record; return normalised columns."""
        topic = info.name
        value_types = set(map(type, values))
        if not value_types <= _BYTES_OR_NONE:
            raise _bad_item(values, "value", topic)
        if isinstance(keys, Uniform):
            keys = [keys.value] * n
        keys = keys if isinstance(keys, tuple | list) else list(keys)
        key_types = set(map(type, keys))
        if not key_types <= _BYTES_OR_NONE:
            raise _bad_item(keys, "key", topic)
        has_keys = bytes in key_types
        if info.config.compacted and _NoneType in key_types:
            i = keys.index(None)
            raise InvalidRecordError(
                f"record {i}: topic {topic!r} is compacted (cleanup.policy="
                f"{info.config.cleanup_policy}) and every record needs a key",
                topic=topic,
            )
        if isinstance(partitions, Uniform):
            parts: Sequence[Any] = [partitions.value] if partitions.value is not None else []
            uniform_partition = partitions.value
            explicit = uniform_partition is not None
        else:
            parts = partitions if isinstance(partitions, tuple | list) else list(partitions)
            uniform_partition = None
            explicit = parts.count(None) != n
        if explicit:
            for i, p in enumerate(parts):
                if p is None:
                    continue
                if type(p) is not int:
                    raise InvalidArgumentError(
                        f"record {i}: partition must be None or an int; got "
                        f"{type(p).__name__} {p!r}",
                        topic=topic,
                    )
                if p < 0:
                    raise PartitionNotFoundError(
                        f"record {i}: partition {p} does not exist; topic {topic!r} has "
                        f"partitions 0..{info.partitions - 1}",
                        topic=topic,
                        partition=p,
                    )
        if isinstance(timestamps, Uniform):
            ts_list: Sequence[Any] = [timestamps.value]
            all_default = timestamps.value is None
        else:
            ts_list = timestamps if isinstance(timestamps, tuple | list) else list(timestamps)
            all_default = ts_list.count(None) == n
        log_append = info.config.message_timestamp_type == "LogAppendTime"
        ts_col: Sequence[int] | int
        if log_append or all_default:
            ts_col = now
        else:
            checked = []
            for i, ts in enumerate(ts_list):
                if ts is None:
                    ts = now
                elif type(ts) is not int or not 0 <= ts <= MAX_TIMESTAMP:
                    raise InvalidRecordError(
                        f"record {i}: timestamp must be milliseconds since the epoch, an "
                        f"integer between 0 and 2**63-1; got {ts!r}",
                        topic=topic,
                    )
                checked.append(ts)
            ts_col = checked[0] if isinstance(timestamps, Uniform) else checked
        hdrs: list[Headers] | None = None
        if headers is not None and headers.count(None) != n:
            hdrs = [_normalize_headers(h, i, topic) for i, h in enumerate(headers)]
        limit = info.config.max_message_bytes
        # Item sizes are needed for the size check and again by the encoder: compute them
        # once when the column has no nulls (the common case).
        value_sizes: tuple[int, ...] | None = None
        key_sizes: tuple[int, ...] | None = None
        if _NoneType in value_types:
            max_value = max(map(len, filter(None, values)), default=0)
        else:
            value_sizes = tuple(map(len, values))
            max_value = max(value_sizes)
        if not has_keys:
            max_key = 0
        elif _NoneType in key_types:
            max_key = max(map(len, filter(None, keys)), default=0)
        else:
            key_sizes = tuple(map(len, keys))
            max_key = max(key_sizes)
        max_hdr = max(map(_headers_size, hdrs), default=0) if hdrs else 0
        if max_value + max_key + max_hdr > limit:
            for i in range(n):
                size = (
                    len(values[i] or b"")
                    + len(keys[i] or b"")
                    + (_headers_size(hdrs[i]) if hdrs else 0)
                )
                if size > limit:
                    raise RecordTooLargeError(
                        f"record {i} is {size} bytes (key + value + headers), more than "
                        f"topic {topic!r} allows (max.message.bytes={limit}); raise the "
                        f"limit with alter_topic() or split the record",
                        topic=topic,
                    )
        return {
            "values": values,
            "uniform_partition": uniform_partition,
            "keys": keys if has_keys else None,
            "value_sizes": value_sizes,
            "key_sizes": key_sizes,
            "parts": parts,
            "explicit": explicit,
            "ts": ts_col,
            "headers": hdrs,
            "log_append": log_append,
        }

    def partition(self, info: TopicInfo, n: int, cols: dict[str, Any]) -> list[_Group]:
        """Choose each record's partition and split the columns into per-partition groups."""
        count = info.partitions
        keys = cols["keys"]
        parts = cols["parts"]
        uniform = cols["uniform_partition"]
        if uniform is not None:
            if uniform >= count:
                raise PartitionNotFoundError(
                    f"partition {uniform} does not exist; topic {info.name!r} has "
                    f"partitions 0..{count - 1}",
                    topic=info.name,
                    partition=uniform,
                )
            chosen = None
            single = uniform
        elif cols["explicit"]:
            chosen = list(parts)
            for i, p in enumerate(chosen):
                if p is None:
                    chosen[i] = self._choose(
                        info.name, keys[i] if keys else None, count, cols["values"][i]
                    )
                elif p >= count:
                    raise PartitionNotFoundError(
                        f"record {i}: partition {p} does not exist; topic {info.name!r} has "
                        f"partitions 0..{count - 1}",
                        topic=info.name,
                        partition=p,
                    )
        elif count == 1:
            chosen = None
            single = 0
        elif keys is None:
            # No keys: the sticky partitioner keeps a batch together.
            nbytes = sum(map(len, filter(None, cols["values"])))
            single = self.sticky_for(info.name).partition(count, nbytes)
            chosen = None
        else:
            chosen = [default_partition(k, count) if k is not None else None for k in keys]
            if None in chosen:
                for i, p in enumerate(chosen):
                    if p is None:
                        chosen[i] = self.sticky_for(info.name).partition(
                            count, len(cols["values"][i] or b"")
                        )
        if chosen is not None:
            first = chosen[0]
            if chosen.count(first) == n:
                chosen, single = None, first
        if chosen is None:
            g = _Group(single)
            g.values, g.keys, g.timestamps, g.headers = (
                cols["values"],
                keys,
                cols["ts"],
                cols["headers"],
            )
            g.value_sizes = cols["value_sizes"]
            g.key_sizes = cols["key_sizes"]
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

    def sticky_for(self, topic: str) -> StickyPartitioner:
        # One sticky state per topic, as in Kafka's producer.
        sticky = self._sticky.get(topic)
        if sticky is None:
            sticky = self._sticky.setdefault(topic, StickyPartitioner())
        return sticky

    def _choose(self, topic: str, key: bytes | None, count: int, value: bytes | None) -> int:
        if key is not None:
            return default_partition(key, count)
        return self.sticky_for(topic).partition(count, len(value or b""))

    def encode(self, info: TopicInfo, groups: list[_Group]) -> None:
        config = info.config
        compress = config.compression_type != "uncompressed"
        log_append = config.message_timestamp_type == "LogAppendTime"
        for g in groups:
            keys = g.keys
            if keys is not None and None not in keys:
                pass
            elif keys is not None and keys.count(None) == len(keys):
                keys = None
            g.encoded = encode_batch(
                g.values,
                keys,
                g.timestamps,
                g.headers,
                log_append_time=log_append,
                compress=compress,
                level=config.compression_zstd_level,
                value_sizes=g.value_sizes,
                key_sizes=g.key_sizes if keys is not None else None,
            )

    @staticmethod
    def expected_partitions(
        info: TopicInfo, groups: list[_Group], expected: Mapping[bytes, int]
    ) -> dict[bytes, int]:
        """The partition each key of ``expected`` goes to; raises InvalidArgumentError for
        a topic without a key index, a key no record has, or a key split across
        partitions (checked before the write, and again inside it)."""
        config = info.config
        if not (config.compacted or config.key_index):
            raise InvalidArgumentError(
                f"expected versions need a key index: topic {info.name!r} has none; create "
                f"it with key_index=True (or alter_topic({info.name!r}, key_index=True))",
                topic=info.name,
            )
        where: dict[bytes, int] = {}
        for g in groups:
            if g.keys is None:
                continue
            for key in expected.keys() & set(g.keys):
                if where.setdefault(key, g.partition) != g.partition:
                    raise InvalidArgumentError(
                        f"records of key {key!r} go to partitions {where[key]} and "
                        f"{g.partition}: an expected version applies to one partition's stream",
                        topic=info.name,
                    )
        for key in expected:
            if key not in where:
                raise InvalidArgumentError(
                    f"an expected version is given for key {key!r}, but no record of the "
                    f"append has that key",
                    topic=info.name,
                )
        return where

    def check_versions(
        self, txn: Any, info: TopicInfo, groups: list[_Group], expected: Mapping[bytes, int]
    ) -> None:
        """Optimistic concurrency: raise ConcurrencyError unless each key of ``expected``
        is at its expected version in the partition its records go to (call before
        :meth:`write_groups`, in the same transaction)."""
        where = self.expected_partitions(info, groups, expected)
        cursor = txn.cursor(db=self._dbs[b"keys"])
        for key, want in expected.items():
            partition = where[key]
            actual = key_version(cursor, index_key(info.topic_id, partition, key))
            if actual != want:
                raise ConcurrencyError(
                    f"key {key!r} of topic {info.name!r} is at version {actual}, not the "
                    f"expected {want}: another writer appended to it first; nothing was "
                    f"written (reload the key's records and retry)",
                    topic=info.name,
                    partition=partition,
                    key=key,
                    expected_version=want,
                    actual_version=actual,
                )

    def write_groups(
        self, txn: Any, info: TopicInfo, groups: list[_Group]
    ) -> list[tuple[int, int]]:
        tid = info.topic_id
        bdb = self._batches_db
        retention = self._retention
        compactor = self._compactor
        config = info.config
        keyindex = self._keyindex if config.compacted or config.key_index else None
        out = []
        for g in groups:
            pkey = state_key(tid, g.partition)
            raw = txn.get(pkey, db=bdb)
            if raw is None:
                raise CorruptLogError(
                    f"partition {g.partition} of topic {info.name!r} has no state record",
                    topic=info.name,
                    partition=g.partition,
                )
            state = PartitionState.unpack(raw)
            enc = g.encoded
            assert enc is not None
            base = state.next_offset
            bkey = BATCH_KEY.pack(tid, g.partition, base)
            stored = enc.value(bkey)
            g.stored_crc = batch_crc(stored)
            if not txn.put(bkey, stored, db=bdb, overwrite=False):
                raise CorruptLogError(
                    f"topic {info.name!r} partition {g.partition}: a batch already exists at "
                    f"offset {base}, past the partition's recorded end",
                    topic=info.name,
                    partition=g.partition,
                    offset=base,
                )
            state.next_offset = base + enc.count
            state.size_bytes += enc.nbytes
            state.dirty_bytes += enc.nbytes
            if keyindex is not None and g.keys is not None:
                keyindex.add(txn, tid, g.partition, g.keys, g.values, range(base, base + enc.count))
            state.batches += 1
            # Every batch also counts as TIME_INDEX_BATCH_WEIGHT bytes, so that tiny
            # records (or tombstones) still get an entry every few hundred batches.
            state.index_bytes += enc.nbytes + TIME_INDEX_BATCH_WEIGHT
            if enc.max_timestamp > state.max_timestamp:
                state.max_timestamp = enc.max_timestamp
            # A sparse time index, like Kafka's: an entry (running maximum timestamp, base
            # offset) at least every TIME_INDEX_INTERVAL bytes, and for the first batch.
            # A lookup starts at the last entry whose maximum is below the target, so it
            # scans at most about one interval of batches, whatever order timestamps
            # arrive in.
            if state.index_bytes >= TIME_INDEX_INTERVAL or state.batches == 1:
                txn.put(
                    TIME_KEY.pack(tid, g.partition, state.max_timestamp, base),
                    b"",
                    db=self._dbs[b"timeindex"],
                )
                state.index_bytes = 0
            if retention is not None:
                retention.after_append(txn, info, g.partition, state)
            if compactor is not None:
                compactor.after_append(txn, info, g.partition, state, enc.count, len(stored))
            txn.put(pkey, state.pack(), db=bdb)
            out.append((g.partition, base))
        return out


def plainly_valid(
    info: TopicInfo,
    value: object,
    key: object,
    partition: object,
    timestamp: object,
    headers: object,
) -> bool:
    """Whether one record is plainly acceptable for ``info`` (the common case, decided by
    a few type checks; otherwise :meth:`Appender.validate` says what is wrong)."""
    return (
        headers is None
        and (type(value) is bytes or value is None)
        and (key is None or type(key) is bytes)
        and (partition is None or (type(partition) is int and 0 <= partition < info.partitions))
        and (timestamp is None or (type(timestamp) is int and 0 <= timestamp <= MAX_TIMESTAMP))
        and (key is not None or not info.config.compacted)
        and len(value or b"") + len(key or b"") <= info.config.max_message_bytes
    )


def single_expected(
    key: object, expected_version: object, topic: object
) -> dict[bytes, int] | None:
    """The ``{key: version}`` of a one-record append with ``expected_version`` (None
    without one)."""
    if expected_version is None:
        return None
    if type(key) is not bytes:
        raise InvalidArgumentError(
            "expected_version needs a key (bytes): a version counts one key's records",
            topic=topic if isinstance(topic, str) else None,
        )
    return check_expected_versions({key: expected_version}, topic)


def check_expected_versions(expected: object, topic: object) -> dict[bytes, int]:
    """Validate ``{key: expected version}``."""
    where = topic if isinstance(topic, str) else None
    if not isinstance(expected, Mapping):
        raise InvalidArgumentError(
            f"expected versions must be a mapping of key (bytes) to version (int >= 0); "
            f"got {type(expected).__name__}",
            topic=where,
        )
    out: dict[bytes, int] = {}
    for key, version in expected.items():
        if type(key) is not bytes:
            raise InvalidArgumentError(
                f"an expected version's key must be bytes; got {type(key).__name__}", topic=where
            )
        if type(version) is not int or version < 0:
            raise InvalidArgumentError(
                f"expected version of key {key!r} must be an int >= 0 (0: the key has no "
                f"record yet); got {version!r}",
                topic=where,
            )
        out[key] = version
    return out


class PreparedAppend:
    """An append validated, partitioned and encoded, waiting for its write transaction."""

    __slots__ = ("columns", "expected", "groups", "info", "n", "producer", "topic")

    def __init__(
        self,
        topic: str,
        info: TopicInfo,
        n: int,
        groups: list[Any],
        columns: tuple[Any, ...],
        expected: Mapping[bytes, int] | None,
        producer: tuple[str, int] | None = None,
    ) -> None:
        self.producer = producer  # (producer id, first sequence): an idempotent append
        self.topic = topic
        self.info = info
        self.n = n
        self.groups = groups
        self.columns = columns  # what validation needs again if the topic changed
        self.expected = expected

    def metadata(self, bases: list[tuple[int, int]]) -> BatchMetadata:
        return BatchMetadata(
            self.topic,
            self.n,
            [
                (g.partition, base, g.indexes, g.timestamps)
                for g, (_p, base) in zip(self.groups, bases, strict=True)
            ],
        )
