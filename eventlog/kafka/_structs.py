"""The value types of :mod:`eventlog.kafka`, with kafka-python's names and fields.

They are plain named tuples, as in kafka-python, so code that unpacks them or reads their
fields by name works unchanged. ``TopicPartition`` is eventlog's own (the same two fields),
so the values cross between ``eventlog`` and ``eventlog.kafka`` freely.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import NamedTuple

from .._records import Headers, TopicPartition

__all__ = [
    "ConsumerRebalanceListener",
    "ConsumerRecord",
    "OffsetAndMetadata",
    "OffsetAndTimestamp",
    "RecordMetadata",
    "TopicPartition",
]

# kafka-python's timestamp types (Kafka's TimestampType): what ConsumerRecord.timestamp is.
CREATE_TIME = 0
LOG_APPEND_TIME = 1


class OffsetAndMetadata(NamedTuple):
    """A position to commit: the next offset to read, a metadata string, and the leader
    epoch (always -1 here: a log directory has no leaders)."""

    offset: int | None = None
    metadata: str = ""
    leader_epoch: int = -1


class OffsetAndTimestamp(NamedTuple):
    """What :meth:`KafkaConsumer.offsets_for_times` finds: the offset of the first record
    at or after the asked time, that record's timestamp, and the leader epoch (-1)."""

    offset: int
    timestamp: int
    leader_epoch: int = -1


class ConsumerRecord(NamedTuple):
    """A record returned by :meth:`KafkaConsumer.poll` or by iterating the consumer.

    Attributes:
        topic, partition, offset: where the record is.
        leader_epoch: always -1 (no leaders).
        timestamp: milliseconds since the epoch.
        timestamp_type: 0 (CreateTime: the producer's) or 1 (LogAppendTime), per the
            topic's ``message.timestamp.type``.
        key, value: deserialized (or bytes / None).
        headers: a list of ``(str, bytes)`` pairs (empty when none).
        checksum: always None (as in kafka-python for message format v2).
        serialized_key_size, serialized_value_size, serialized_header_size: stored byte
            sizes, -1 when the key / value is None or there are no headers.
    """

    topic: str
    partition: int
    leader_epoch: int
    offset: int
    timestamp: int
    timestamp_type: int
    key: object
    value: object
    headers: list[tuple[str, bytes | None]]
    checksum: int | None
    serialized_key_size: int
    serialized_value_size: int
    serialized_header_size: int


class RecordMetadata(NamedTuple):
    """Where a sent record was stored (what ``send(...).get()`` returns).

    Attributes:
        topic, partition, topic_partition, offset: where the record is.
        timestamp: its timestamp (ms; the append time on LogAppendTime topics).
        checksum: always None.
        serialized_key_size, serialized_value_size, serialized_header_size: byte sizes
            sent, -1 for a None key / value or no headers.
    """

    topic: str
    partition: int
    topic_partition: TopicPartition
    offset: int
    timestamp: int
    checksum: int | None
    serialized_key_size: int
    serialized_value_size: int
    serialized_header_size: int


class ConsumerRebalanceListener(ABC):
    """Callbacks on partition ownership changes (pass to ``subscribe(listener=...)``).

    Called inside :meth:`KafkaConsumer.poll` (or iteration, or ``close()``), in the
    consumer's thread, with sets of :class:`TopicPartition`. The default partition
    assignment strategy is eager, as kafka-python's: at a rebalance every member is first
    revoked all its partitions, then assigned its new share.
    """

    @abstractmethod
    def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        """Partitions about to be given up (commit here: they are still owned)."""

    @abstractmethod
    def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        """Partitions now owned (seek here to start elsewhere than the committed offset)."""

    def on_partitions_lost(self, lost: set[TopicPartition]) -> None:
        """Partitions taken away without a chance to commit (the session expired). By
        default calls :meth:`on_partitions_revoked`."""
        self.on_partitions_revoked(lost)


def header_size(headers: Headers) -> int:
    """kafka-python's ``serialized_header_size``: name and value bytes, -1 for none."""
    if not headers:
        return -1
    return sum(
        len(name.encode()) + (len(value) if value is not None else 0) for name, value in headers
    )
