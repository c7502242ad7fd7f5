"""``eventlog.replay``: rebuild state by folding a topic's records (or one key's).

The same call serves tests (rebuild a projection and compare) and production (rebuild an
aggregate or a read model on start-up, or as of a point in time).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from ._errors import InvalidArgumentError, InvalidRecordError
from ._keyindex import index_key, split_entry
from ._records import Record
from ._topics import validate_topic_name

if TYPE_CHECKING:
    from ._log import Log

__all__ = ["replay"]

S = TypeVar("S")
_PAGE = 1000


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


def _key_page(
    log: Log, txn: Any, topic: str, partition: int, key: bytes, after: int, end: int
) -> tuple[list[Record], int | None]:
    """Up to a page of a key's records above ``after`` and below ``end``, through the key
    index; and the last offset looked at (None: no more)."""
    info = log._info(txn, topic)
    cursor = txn.cursor(db=log._dbs[b"keys"])
    ikey = index_key(info.topic_id, partition, key)
    found = cursor.set_range_dup(ikey, ((after + 1) << 1).to_bytes(8, "big"))
    offsets: list[int] = []
    while found and len(offsets) < _PAGE:
        offset = split_entry(cursor.value())[0]
        if offset >= end:
            break
        offsets.append(offset)
        found = cursor.next_dup()
    log_start = log._reader.state(txn, info, partition).log_start
    bcursor = txn.cursor(db=log._batches_db)
    out = []
    for offset in offsets:
        batch = (
            None
            if offset < log_start
            else log._reader.batch_at(txn, bcursor, info, partition, offset)
        )
        if batch is None:
            continue
        i = batch.index_of(offset)
        if i < batch.count and batch.offsets[i] == offset and batch.keys[i] == key:
            hdrs = batch.headers[i] if batch.headers is not None else ()
            out.append(
                Record(topic, partition, offset, batch.timestamps[i], key, batch.values[i], hdrs)
            )
    return out, (offsets[-1] if len(offsets) == _PAGE else None)


def _key_records(log: Log, topic: str, partition: int, key: bytes, end: int) -> Iterator[Record]:
    """A key's records in one partition, through the key index (short transactions)."""
    after: int | None = -1
    while after is not None:
        records, after = log._storage.read(
            partial(
                _key_page, log, topic=topic, partition=partition, key=key, after=after, end=end
            ),
            f"replaying topic {topic!r}",
        )
        yield from records


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
        key_deserializer, value_deserializer: applied to keys and values before ``fold``.

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
            source: Iterator[Record] = _key_records(log, topic, p, key, end)
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
    state = initial
    for record in merged:
        if key_deserializer is not None and record.key is not None:
            record = record._replace(key=key_deserializer(record.key))
        if value_deserializer is not None and record.value is not None:
            record = record._replace(value=value_deserializer(record.value))
        state = fold(state, record)
    return state
