"""Where a mirror keeps its positions in the log, and ``mirror_status``.

Every mirror keeps, per source partition, the next source offset to copy in the compacted
topic ``__eventlog_mirror`` of the log (one partition, key index: each key's newest
record is its current position). A key names the mirror, the direction, the source topic
and the source partition; the value (JSON) holds the position, the last known end of the
source partition and when the record was written.

Kafka -> log writes these records in the same log transaction as the records it imports,
so the position and the data can never disagree after a crash. Log -> Kafka writes them
only after Kafka acknowledged every record up to the position. Reading them needs only
the log: ``mirror_status`` works without confluent-kafka installed.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any, Final

import attrs

from ..._errors import TopicNotFoundError

if TYPE_CHECKING:
    from ..._log import Log
    from ..._transaction import Transaction

__all__ = ["POSITIONS_TOPIC", "MirrorStatus", "load_positions", "mirror_status"]

POSITIONS_TOPIC: Final = "__eventlog_mirror"

FROM_KAFKA: Final = "from-kafka"
TO_KAFKA: Final = "to-kafka"


@attrs.frozen
class MirrorStatus:
    """Where one mirror stands on one source partition.

    Attributes:
        name: the mirror's name.
        direction: ``"from-kafka"`` (Kafka -> log) or ``"to-kafka"`` (log -> Kafka).
        topic: the source topic (in Kafka for ``from-kafka``, in the log for ``to-kafka``).
        partition: the source partition.
        position: the next source offset to copy: everything before it is mirrored.
        end: the last known end offset of the source partition (for ``to-kafka``, read
            from the log when the status is read).
        lag: ``end - position`` (never negative).
        updated_ms: when the mirror last wrote this position (ms since the epoch).
        bootstrap: the Kafka cluster's bootstrap servers.
    """

    name: str
    direction: str
    topic: str
    partition: int
    position: int
    end: int
    lag: int
    updated_ms: int
    bootstrap: str


def position_key(name: str, direction: str, topic: str, partition: int) -> bytes:
    return json.dumps([name, direction, topic, partition], separators=(",", ":")).encode()


def ensure_topic(log: Log) -> None:
    log.create_topic(POSITIONS_TOPIC, 1, exist_ok=True, cleanup_policy="compact")


def write_positions(
    tx: Transaction,
    name: str,
    direction: str,
    bootstrap: str,
    positions: dict[tuple[str, int], tuple[int, int]],
) -> None:
    """Add ``{(topic, partition): (position, end)}`` to a log transaction."""
    now = int(time.time() * 1000)
    for (topic, partition), (position, end) in positions.items():
        value = {"position": position, "end": end, "updated_ms": now, "bootstrap": bootstrap}
        tx.append(
            POSITIONS_TOPIC,
            json.dumps(value, separators=(",", ":")).encode(),
            key=position_key(name, direction, topic, partition),
            partition=0,
        )


def _entries(log: Log) -> list[tuple[list[Any], dict[str, Any]]]:
    try:
        table = log.table(POSITIONS_TOPIC)
        items = list(table.items())
    except TopicNotFoundError:
        return []
    return [(json.loads(k), json.loads(v)) for k, v in items]


def load_positions(log: Log, name: str, direction: str) -> dict[tuple[str, int], int]:
    """The stored positions of one mirror: ``{(source topic, partition): position}``."""
    out: dict[tuple[str, int], int] = {}
    for (n, d, topic, partition), value in _entries(log):
        if n == name and d == direction:
            out[(topic, partition)] = int(value["position"])
    return out


def mirror_status(log: Log, name: str | None = None) -> list[MirrorStatus]:
    """The progress of every mirror of a log (or only of the mirror ``name``): one entry
    per mirror, direction, source topic and partition, sorted in that order.

    Needs only the log (not confluent-kafka, not the cluster): for Kafka -> log, ``end``
    is the end offset the mirror last saw on the cluster; for log -> Kafka, it is the
    log's end offset now.

    Raises:
        LogClosedError: the log is closed.
    """
    entries = _entries(log)
    ends: dict[str, dict[int, int]] = {}
    out: list[MirrorStatus] = []
    for (n, direction, topic, partition), value in entries:
        if name is not None and n != name:
            continue
        position = int(value["position"])
        end = int(value["end"])
        if direction == TO_KAFKA:
            if topic not in ends:
                try:
                    ends[topic] = log.end_offsets(topic)
                except TopicNotFoundError:
                    ends[topic] = {}
            end = ends[topic].get(partition, end)
        end = max(end, position)
        out.append(
            MirrorStatus(
                name=n,
                direction=direction,
                topic=topic,
                partition=int(partition),
                position=position,
                end=end,
                lag=end - position,
                updated_ms=int(value["updated_ms"]),
                bootstrap=str(value["bootstrap"]),
            )
        )
    out.sort(key=lambda s: (s.name, s.direction, s.topic, s.partition))
    return out
