"""Where a mirror keeps its positions in the log, and ``mirror_status``.

Every mirror keeps, per source partition, the next source offset to copy in the compacted
topic ``__eventlog_mirror`` of the log (one partition, key index: each key's newest
record is its current position). A key names the mirror, the direction, the source topic
and the source partition; the value (JSON) holds the position, the last known end of the
source partition, when the record was written, and the Kafka cluster (its bootstrap
servers and its cluster id). A mirror name belongs to one cluster per direction: a run
against another cluster is refused (:class:`MirrorClusterMismatchError`), since offsets of
one cluster mean nothing on another. Positions stored before the cluster id was recorded
are matched by their bootstrap servers.

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
from ._errors import MirrorClusterMismatchError

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
        cluster_id: the Kafka cluster's id (as the cluster reports it in its metadata;
            None for positions stored before eventlog recorded it).
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
    cluster_id: str | None = None


def position_key(name: str, direction: str, topic: str, partition: int) -> bytes:
    return json.dumps([name, direction, topic, partition], separators=(",", ":")).encode()


def ensure_topic(log: Log) -> None:
    log.create_topic(POSITIONS_TOPIC, 1, exist_ok=True, cleanup_policy="compact")


def write_positions(
    tx: Transaction,
    name: str,
    direction: str,
    bootstrap: str,
    cluster_id: str | None,
    positions: dict[tuple[str, int], tuple[int, int]],
) -> None:
    """Add ``{(topic, partition): (position, end)}`` to a log transaction."""
    now = int(time.time() * 1000)
    for (topic, partition), (position, end) in positions.items():
        value = {
            "position": position,
            "end": end,
            "updated_ms": now,
            "bootstrap": bootstrap,
            "cluster_id": cluster_id,
        }
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


def load_positions(
    log: Log, name: str, direction: str, *, bootstrap: str, cluster_id: str | None
) -> dict[tuple[str, int], int]:
    """The stored positions of one mirror: ``{(source topic, partition): position}``.

    Raises:
        MirrorClusterMismatchError: they belong to another cluster than ``cluster_id``
            (or, when either id is unknown, than ``bootstrap``).
    """
    out: dict[tuple[str, int], int] = {}
    for (n, d, topic, partition), value in _entries(log):
        if n == name and d == direction:
            _check_cluster(name, direction, value, bootstrap, cluster_id)
            out[(topic, partition)] = int(value["position"])
    return out


def _check_cluster(
    name: str, direction: str, value: dict[str, Any], bootstrap: str, cluster_id: str | None
) -> None:
    stored_id = value.get("cluster_id")
    stored_bootstrap = str(value["bootstrap"])
    if stored_id is not None and cluster_id is not None:
        if stored_id == cluster_id:
            return  # the same cluster, maybe reached through other brokers: fine
    elif stored_bootstrap == bootstrap:
        return  # positions from before cluster ids were stored, or a cluster without one
    to_from = "to" if direction == TO_KAFKA else "from"
    stored = "" if stored_id is None else f" {stored_id!r}"
    here = "" if cluster_id is None else f" {cluster_id!r}"
    message = (
        f"mirror {name!r} already copies {to_from} the Kafka cluster{stored} at "
        f"{stored_bootstrap!r}, not {to_from} the cluster{here} at {bootstrap!r}: its "
        f"positions belong to that cluster "
        f"(offsets of one cluster mean nothing on another); use another mirror name for this "
        f"cluster (name=, --name)"
    )
    if stored_id is None and cluster_id is not None:
        message += (
            "; if it is the same cluster under another address, run the mirror once with "
            f"the address {stored_bootstrap!r} to record the cluster's id"
        )
    raise MirrorClusterMismatchError(message, cluster_id=stored_id, bootstrap=stored_bootstrap)


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
                cluster_id=value.get("cluster_id"),
            )
        )
    out.sort(key=lambda s: (s.name, s.direction, s.topic, s.partition))
    return out
