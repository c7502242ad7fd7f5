"""Mirror topics between a log and a Kafka cluster (install ``eventlog[kafka]``).

Kafka -> log (:func:`mirror_from_kafka`) is exactly-once: each batch and the Kafka
positions after it are one log transaction. Log -> Kafka (:func:`mirror_to_kafka`) uses
Kafka's idempotent producer and marks records mirrored only once Kafka acknowledged them
(at-least-once across crashes), or Kafka transactions with ``exactly_once=True``. Both
keep keys, values, headers and timestamps, and partition numbers when the partition counts
match (otherwise keys are re-partitioned with murmur2, as Kafka's default partitioner
does). Both copy up to now and return, or follow new records (``follow=True``).

:func:`mirror_status` reads every mirror's positions and lag from the log alone (no
confluent-kafka needed)::

    from eventlog.ext.kafka import mirror_from_kafka, mirror_status

    with eventlog.open("data/log") as log:
        mirror_from_kafka(log, "kafka1:9092", ["orders"], name="orders-in")
        for s in mirror_status(log):
            print(s.name, s.topic, s.partition, s.position, s.lag)
"""

from ._errors import (
    KafkaAuthorizationError,
    KafkaTopicNotFoundError,
    KafkaUnreachableError,
    MirrorClusterMismatchError,
    MirrorError,
)
from ._mirror import (
    KAFKA_POSITIONS_TOPIC,
    Mirror,
    MirrorResult,
    mirror_from_kafka,
    mirror_to_kafka,
)
from ._positions import POSITIONS_TOPIC, MirrorStatus, mirror_status

__all__ = [
    "KAFKA_POSITIONS_TOPIC",
    "POSITIONS_TOPIC",
    "KafkaAuthorizationError",
    "KafkaTopicNotFoundError",
    "KafkaUnreachableError",
    "Mirror",
    "MirrorClusterMismatchError",
    "MirrorError",
    "MirrorResult",
    "MirrorStatus",
    "mirror_from_kafka",
    "mirror_status",
    "mirror_to_kafka",
]
