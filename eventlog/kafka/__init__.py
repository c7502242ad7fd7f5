"""eventlog.kafka: kafka-python's client API over an eventlog log directory.

Code written for kafka-python runs against a local log by changing the import and the
server string::

    from eventlog.kafka import KafkaConsumer, KafkaProducer

    producer = KafkaProducer(
        bootstrap_servers="eventlog:data", value_serializer=lambda v: json.dumps(v).encode()
    )
    producer.send("orders", {"id": 1})
    producer.flush()

    for message in KafkaConsumer(
        "orders",
        bootstrap_servers="eventlog:data",
        group_id="billing",
        auto_offset_reset="earliest",
        consumer_timeout_ms=1000,
    ):
        print(message.value)

The clients are adapters over eventlog's own (:class:`eventlog.Producer`,
:class:`eventlog.Consumer`, the :class:`eventlog.Log`'s topic administration), with
kafka-python's constructor arguments, method names, return shapes and exception names
(:mod:`eventlog.kafka.errors`). docs/how-to/kafka-python.md lists every argument and what
differs.
"""

from . import errors
from ._admin import KafkaAdminClient, NewTopic
from ._consumer import KafkaConsumer
from ._producer import FutureRecordMetadata, KafkaProducer
from ._structs import (
    ConsumerRebalanceListener,
    ConsumerRecord,
    OffsetAndMetadata,
    OffsetAndTimestamp,
    RecordMetadata,
    TopicPartition,
)

__all__ = [
    "ConsumerRebalanceListener",
    "ConsumerRecord",
    "FutureRecordMetadata",
    "KafkaAdminClient",
    "KafkaConsumer",
    "KafkaProducer",
    "NewTopic",
    "OffsetAndMetadata",
    "OffsetAndTimestamp",
    "RecordMetadata",
    "TopicPartition",
    "errors",
]
