"""Idempotent appends: a stable producer id with per-partition sequence numbers.

A writer that may retry an append after a crash (it does not know whether its last
appends were written) gives each append its producer id and the sequence number of its
first record in that partition (its records take ``sequence .. sequence + n - 1``). The
log keeps, per producer id, topic and partition, the last sequence written and the last
few appends (``WINDOW``), in the ``producers`` sub-database, in the same write
transaction as the records:

- ``sequence`` is the next one (last + 1), or the producer is new there: written;
- the append's sequences were all written already: it is a retry, nothing is written, and
  the original metadata is returned when the append is one of the last ``WINDOW``
  (``DuplicateSequenceError`` otherwise, which says it was written);
- anything else (a gap, or an overlap): ``OutOfOrderSequenceError``, nothing written.

Key: producer id (UTF-8) · 0x00 · topic id u32 · partition u32 (big-endian). Value:
last sequence i64, then up to ``WINDOW`` entries (first sequence i64, count u32, base
offset u64), newest last.
"""

from __future__ import annotations

import struct
from typing import Any, Final

from ._errors import DuplicateSequenceError, InvalidArgumentError, OutOfOrderSequenceError

__all__ = [
    "WINDOW",
    "check_producer",
    "check_producer_append",
    "forget_topic",
    "last_sequence",
    "record_append",
    "state_key",
]

WINDOW: Final = 5
_LAST: Final = struct.Struct(">q")
_ENTRY: Final = struct.Struct(">qIQ")
_TP: Final = struct.Struct(">II")
MAX_PRODUCER_ID: Final = 255  # UTF-8 bytes


def check_producer(producer_id: object, sequence: object) -> tuple[str, int] | None:
    """Validate the ``producer_id`` / ``sequence`` arguments of an append."""
    if producer_id is None and sequence is None:
        return None
    if type(producer_id) is not str or not producer_id or "\0" in producer_id:
        raise InvalidArgumentError(
            f"producer_id must be a non-empty str without NUL (given with sequence=); got "
            f"{producer_id!r}"
        )
    if len(producer_id.encode("utf-8", "surrogatepass")) > MAX_PRODUCER_ID:
        raise InvalidArgumentError(
            f"producer_id is at most {MAX_PRODUCER_ID} UTF-8 bytes; got {producer_id!r}"
        )
    if type(sequence) is not int or not 0 <= sequence < 1 << 62:
        raise InvalidArgumentError(
            f"sequence must be an int >= 0 (the sequence number of the append's first "
            f"record; given with producer_id=); got {sequence!r}"
        )
    return producer_id, sequence


def state_key(producer_id: str, topic_id: int, partition: int) -> bytes:
    return producer_id.encode("utf-8") + b"\0" + _TP.pack(topic_id, partition)


def _load(raw: bytes | None) -> tuple[int, list[tuple[int, int, int]]]:
    if raw is None:
        return -1, []
    last = _LAST.unpack_from(raw)[0]
    entries = [
        _ENTRY.unpack_from(raw, _LAST.size + i * _ENTRY.size)
        for i in range((len(raw) - _LAST.size) // _ENTRY.size)
    ]
    return int(last), [(int(f), int(c), int(b)) for f, c, b in entries]


def check_producer_append(
    txn: Any,
    db: Any,
    producer: tuple[str, int],
    topic: str,
    topic_id: int,
    partition: int,
    count: int,
) -> int | None:
    """Before writing: None when the append is new (write it); the base offset of the
    original when it is a retry of one of the last ``WINDOW`` appends.

    Raises:
        DuplicateSequenceError: a retry of an older append (it was written).
        OutOfOrderSequenceError: a gap or an overlap.
    """
    producer_id, sequence = producer
    last, entries = _load(txn.get(state_key(producer_id, topic_id, partition), db=db))
    if last < 0 or sequence == last + 1:
        return None
    if sequence + count - 1 <= last:
        for first, n, base in entries:
            if first == sequence and n == count:
                return base
        raise DuplicateSequenceError(
            f"producer {producer_id!r} already wrote sequences {sequence}.."
            f"{sequence + count - 1} to topic {topic!r} partition {partition} (its last is "
            f"{last}); nothing was written again",
            topic=topic,
            partition=partition,
            producer_id=producer_id,
            sequence=sequence,
            last_sequence=last,
        )
    raise OutOfOrderSequenceError(
        f"producer {producer_id!r}: sequence {sequence} does not follow its last sequence "
        f"{last} in topic {topic!r} partition {partition} (expected {last + 1}, or a retry "
        f"of sequences already written); nothing was written",
        topic=topic,
        partition=partition,
        producer_id=producer_id,
        sequence=sequence,
        last_sequence=last,
    )


def record_append(
    txn: Any,
    db: Any,
    producer: tuple[str, int],
    topic_id: int,
    partition: int,
    count: int,
    base: int,
) -> None:
    """After writing: remember the append (in the same transaction)."""
    producer_id, sequence = producer
    key = state_key(producer_id, topic_id, partition)
    _last, entries = _load(txn.get(key, db=db))
    entries = [*entries, (sequence, count, base)][-WINDOW:]
    txn.put(
        key,
        _LAST.pack(sequence + count - 1) + b"".join(_ENTRY.pack(*e) for e in entries),
        db=db,
    )


def last_sequence(txn: Any, db: Any, producer_id: str, topic_id: int, partition: int) -> int:
    """The last sequence the producer wrote there (-1: none)."""
    return _load(txn.get(state_key(producer_id, topic_id, partition), db=db))[0]


def forget_topic(txn: Any, db: Any, topic_id: int) -> None:
    """Drop every producer's state for a deleted topic."""
    cursor = txn.cursor(db=db)
    doomed = [
        bytes(key)
        for key in cursor.iternext(values=False)
        if len(key) > 8 and _TP.unpack_from(key, len(key) - 8)[0] == topic_id
    ]
    for key in doomed:
        txn.delete(key, db=db)
