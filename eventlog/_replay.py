"""``eventlog.replay``: rebuild state by folding a topic's records (or one key's).

The same call serves tests (rebuild a projection and compare) and production (rebuild an
aggregate or a read model on start-up, or as of a point in time).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from ._errors import InvalidArgumentError, InvalidRecordError
from ._records import Record
from ._table import key_records
from ._topics import validate_topic_name
from .serde import as_deserializer

if TYPE_CHECKING:
    from ._log import Log

__all__ = ["replay"]

S = TypeVar("S")


def _bounds(
    until_offset: int | Mapping[int, int] | None, partitions: list[int], topic: str
) -> dict[int, int | None]:
    if until_offset is None:
        return dict.fromkeys(partitions)
    if isinstance(until_offset, Mapping):
        bounds: dict[int, int | None] = dict.fromkeys(partitions)
        for p, offset in until_offset.items():
            if p not in bounds:
                raise InvalidArgumentError(
                    f"until_offset names partition {p!r}, which is not replayed", topic=topic
                )
            if type(offset) is not int or offset < 0:
                raise InvalidArgumentError(
                    f"until_offset[{p}] must be an offset (an int >= 0); got {offset!r}",
                    topic=topic,
                )
            bounds[p] = offset
        return bounds
    if type(until_offset) is not int or until_offset < 0:
        raise InvalidArgumentError(
            f"until_offset must be an offset (an int >= 0) or {{partition: offset}}; got "
            f"{until_offset!r}",
            topic=topic,
        )
    if len(partitions) != 1:
        raise InvalidArgumentError(
            f"until_offset={until_offset} is ambiguous on a topic with {len(partitions)} "
            f"partitions: give partition=, or {{partition: offset}}",
            topic=topic,
        )
    return {partitions[0]: until_offset}


def replay(
    log: Log,
    topic: str,
    fold: Callable[[S, Record], S],
    initial: S,
    *,
    key: bytes | None = None,
    partition: int | None = None,
    until_offset: int | Mapping[int, int] | None = None,
    until_timestamp: int | None = None,
    key_deserializer: Callable[[bytes], Any] | None = None,
    value_deserializer: Callable[[bytes], Any] | None = None,
) -> S:
    """Fold a topic's records into a state: ``state = fold(state, record)`` for each record
    in order, starting from ``initial``; return the final state.

    Records are taken as of the call (what was appended meanwhile is not included), in
    offset order within a partition and, across partitions, merged by timestamp (then
    partition, offset). Records removed by retention or compaction are not there to fold.

    Args:
        log: an open log.
        topic: the topic.
        fold: ``fold(state, record) -> state``; ``record`` is an :class:`eventlog.Record`
            with its key and value deserialized when deserializers are given (a
            tombstone's value stays None).
        initial: the state before the first record.
        key: only this key's records (one aggregate's stream): read through the key index
            when the topic has one (compacted or ``key_index=True``), else by a scan.
        partition: only this partition.
        until_offset: the state as of this offset: only records below it (exclusive). An
            int needs a single partition (``partition=`` or a one-partition topic);
            ``{partition: offset}`` bounds several.
        until_timestamp: only records whose timestamp is at or before this (ms since the
            epoch).
        key_deserializer, value_deserializer: applied to keys and values before ``fold``
            (callables or ``eventlog.serde`` objects).

    Raises:
        TopicNotFoundError, PartitionNotFoundError, InvalidArgumentError (bad bounds),
        InvalidRecordError (``key`` not bytes), and whatever ``fold`` raises.
    """
    log._check()
    validate_topic_name(topic)
    if key is not None and type(key) is not bytes:
        raise InvalidRecordError(f"key must be bytes or None; got {type(key).__name__}")
    if until_timestamp is not None and (type(until_timestamp) is not int or until_timestamp < 0):
        raise InvalidArgumentError(
            f"until_timestamp must be milliseconds since the epoch (an int >= 0); got "
            f"{until_timestamp!r}"
        )

    def snapshot(txn: Any) -> tuple[list[int], dict[int, int], bool]:
        info = log._info(txn, topic)
        parts = [partition] if partition is not None else list(range(info.partitions))
        ends = {p: log._reader.state(txn, info, p).next_offset for p in parts}
        indexed = info.config.compacted or info.config.key_index
        return parts, ends, bool(indexed and log._keyindex is not None)

    parts, ends, indexed = log._storage.read(snapshot, f"replaying topic {topic!r}")
    bounds = _bounds(until_offset, parts, topic)

    def stream(p: int) -> Iterator[Record]:
        end = ends[p]
        bound = bounds[p]
        if bound is not None:
            end = min(end, bound)
        if key is not None and indexed:
            source: Iterator[Record] = key_records(log, topic, p, key, end=end)
        else:
            source = log.scan(topic, p, end_offset=end)
        for record in source:
            if key is not None and record.key != key:
                continue
            if until_timestamp is not None and record.timestamp > until_timestamp:
                continue
            yield record

    if len(parts) == 1:
        merged: Iterator[Record] = stream(parts[0])
    else:
        merged = heapq.merge(
            *(stream(p) for p in parts), key=lambda r: (r.timestamp, r.partition, r.offset)
        )
    key_de = as_deserializer(key_deserializer, "key_deserializer")
    value_de = as_deserializer(value_deserializer, "value_deserializer")
    state = initial
    for record in merged:
        if key_de is not None and record.key is not None:
            record = record._replace(key=key_de(record.key))
        if value_de is not None and record.value is not None:
            record = record._replace(value=value_de(record.value))
        state = fold(state, record)
    return state
