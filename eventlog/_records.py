"""The value types that cross the public API: records in and out, metadata, positions.

Records are ``NamedTuple`` subclasses rather than attrs classes on purpose: a read returns
millions of them per second, and a tuple built with ``tuple.__new__`` costs about a quarter
of a frozen attrs instance (see ``../shared/notes/PERF.md``). They are immutable, unpack
like tuples and compare by value.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from functools import partial
from itertools import repeat
from typing import Any, NamedTuple, overload

import attrs

Header = tuple[str, bytes | None]
"""One record header: a name and a value (bytes, or None). Headers are an ordered multimap."""

Headers = tuple[Header, ...]

HeadersInput = list[tuple[str, bytes | None]] | tuple[tuple[str, bytes | None], ...]


class TopicPartition(NamedTuple):
    """A topic name and a partition number: the address of one ordered log."""

    topic: str
    partition: int


class NewRecord(NamedTuple):
    """A record to append (see :meth:`eventlog.Log.append_batch`).

    Attributes:
        value: the payload (bytes), or None for a tombstone (needs a key).
        key: optional key (bytes); records with the same key go to the same partition.
        partition: explicit partition, or None to let the partitioner choose.
        timestamp: milliseconds since the epoch, or None for "now".
        headers: optional list of ``(name, value)`` pairs, name ``str``, value bytes or None.
    """

    value: bytes | None
    key: bytes | None = None
    partition: int | None = None
    timestamp: int | None = None
    headers: HeadersInput | None = None


class Record(NamedTuple):
    """A record read from the log.

    Attributes:
        topic: the topic name.
        partition: the partition number.
        offset: the record's offset in its partition (assigned at append, never changed).
        timestamp: milliseconds since the epoch (CreateTime or LogAppendTime).
        key: the key, or None.
        value: the value, or None for a tombstone.
        headers: tuple of ``(name, value)`` pairs; empty when the record has none.
    """

    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: Headers = ()


class RecordMetadata(NamedTuple):
    """Where an appended record was stored: topic, partition, offset and its timestamp."""

    topic: str
    partition: int
    offset: int
    timestamp: int


@attrs.frozen(slots=True)
class RecordColumns:
    """A range of one partition as parallel columns (see :meth:`eventlog.Log.read_columns`).

    ``offsets[i]``, ``timestamps[i]``, ``keys[i]``, ``values[i]`` and ``headers[i]`` describe
    the same record. ``next_offset`` is where the next read should start. ``len()`` is the
    number of records.
    """

    topic: str
    partition: int
    offsets: list[int]
    timestamps: list[int]
    keys: list[bytes | None]
    values: list[bytes | None]
    headers: list[Headers]
    next_offset: int

    def __len__(self) -> int:
        return len(self.offsets)


@attrs.frozen(slots=True)
class PartitionInfo:
    """The state of one partition (see :meth:`eventlog.Log.describe_topic`).

    Attributes:
        partition: the partition number.
        log_start_offset: the first offset still stored (the beginning offset).
        end_offset: the next offset to be written.
        size_bytes: bytes of keys, values and headers stored (before compression).
        batches: number of stored record batches.
        max_timestamp: the largest record timestamp appended so far, or -1.
    """

    partition: int
    log_start_offset: int
    end_offset: int
    size_bytes: int
    batches: int
    max_timestamp: int


@attrs.frozen(slots=True)
class TopicDescription:
    """A topic's identity, configuration and partitions.

    Attributes:
        name: the topic name.
        topic_id: the internal id (never reused, so a re-created topic gets a new one).
        config: the topic configuration with Kafka's key names.
        partitions: per-partition state, ordered by partition number.
        created_ms: when the topic was created (milliseconds since the epoch).
    """

    name: str
    topic_id: int
    config: dict[str, object]
    partitions: tuple[PartitionInfo, ...]
    created_ms: int

    @property
    def partition_count(self) -> int:
        """The number of partitions."""
        return len(self.partitions)


class BatchMetadata(Sequence[RecordMetadata]):
    """Where the records of one :meth:`~eventlog.Log.append_batch` call were stored.

    A read-only sequence with one :class:`RecordMetadata` per record, in input order. The
    entries are built on first access, so a high-throughput writer that does not look at
    them does not pay for a Python object per record. ``partitions`` gives the offset range
    written to each partition without building any entry.
    """

    __slots__ = ("_groups", "_items", "_n", "_topic")

    def __init__(
        self,
        topic: str,
        n: int,
        groups: list[tuple[int, int, Sequence[int] | None, Sequence[int] | int]],
    ) -> None:
        # groups: (partition, base offset, record indexes or None for "all, in order",
        #          timestamps column or one shared timestamp)
        self._topic = topic
        self._n = n
        self._groups = groups
        self._items: list[RecordMetadata] | None = None

    @property
    def partitions(self) -> dict[int, range]:
        """``{partition: range of offsets}`` written by the call."""
        out = {}
        for partition, base, indexes, _ts in self._groups:
            count = self._n if indexes is None else len(indexes)
            out[partition] = range(base, base + count)
        return out

    def _materialize(self) -> list[RecordMetadata]:
        items = self._items
        if items is None:
            n = self._n
            topic = self._topic
            if len(self._groups) == 1 and self._groups[0][2] is None:
                partition, base, _idx, ts = self._groups[0]
                items = list(
                    map(
                        _new_metadata,
                        zip(
                            repeat(topic, n),
                            repeat(partition, n),
                            range(base, base + n),
                            repeat(ts, n) if isinstance(ts, int) else ts,
                        ),
                    )
                )
            else:
                slots: list[Any] = [None] * n
                for partition, base, indexes, ts in self._groups:
                    idx = range(n) if indexes is None else indexes
                    for rank, i in enumerate(idx):
                        stamp = ts if isinstance(ts, int) else ts[rank]
                        slots[i] = RecordMetadata(topic, partition, base + rank, stamp)
                items = slots
            self._items = items
        return items

    def __len__(self) -> int:
        return self._n

    @overload
    def __getitem__(self, index: int) -> RecordMetadata: ...

    @overload
    def __getitem__(self, index: slice) -> list[RecordMetadata]: ...

    def __getitem__(self, index: int | slice) -> RecordMetadata | list[RecordMetadata]:
        return self._materialize()[index]

    def __iter__(self) -> Iterator[RecordMetadata]:
        return iter(self._materialize())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, BatchMetadata):
            return self._materialize() == other._materialize()
        if isinstance(other, list | tuple):
            return self._materialize() == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"BatchMetadata({self._materialize()!r})"


_new_metadata = partial(tuple.__new__, RecordMetadata)
