"""kafka-python code running on a local log: only the import and the server string change.

    python examples/kafka_python_app.py [LOG_DIR]

The log lives in ``demo-data/kafka-python-log`` unless you pass a directory. The code
below is the kind found in kafka-python tutorials: a producer with a JSON value
serializer, a consumer group with auto commit, a rebalance listener, manual commits with
offsets, ``seek_to_beginning``. With a Kafka cluster it would read
``from kafka import ...`` and ``bootstrap_servers="localhost:9092"``.
"""

from __future__ import annotations

import json
import sys
from collections import Counter

from eventlog.kafka import (  # was: from kafka import ...
    ConsumerRebalanceListener,
    KafkaAdminClient,
    KafkaConsumer,
    KafkaProducer,
    OffsetAndMetadata,
    TopicPartition,
)
from eventlog.kafka.admin import NewTopic  # was: from kafka.admin import NewTopic
from eventlog.kafka.errors import TopicAlreadyExistsError  # was: from kafka.errors import ...

LOG_DIR = sys.argv[1] if len(sys.argv) > 1 else "demo-data/kafka-python-log"
SERVERS = f"eventlog:{LOG_DIR}"  # was: "localhost:9092"
TOPIC = "page-views"


class PrintingListener(ConsumerRebalanceListener):
    def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        print(f"  revoked {sorted(p.partition for p in revoked)}")

    def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        print(f"  assigned {sorted(p.partition for p in assigned)}")


def create_topic() -> None:
    admin = KafkaAdminClient(bootstrap_servers=SERVERS, client_id="setup")
    try:
        admin.create_topics([NewTopic(TOPIC, num_partitions=3, replication_factor=1)])
        print(f"created topic {TOPIC!r} with 3 partitions")
    except TopicAlreadyExistsError:
        print(f"topic {TOPIC!r} exists (from an earlier run)")
    finally:
        admin.close()


def produce() -> int:
    producer = KafkaProducer(
        bootstrap_servers=SERVERS,
        key_serializer=str.encode,
        value_serializer=lambda v: json.dumps(v).encode("utf-8"),
        acks="all",
    )
    pages = ["/", "/pricing", "/docs", "/", "/blog", "/docs", "/", "/pricing", "/signup"]
    users = ["ana", "fay", "ned"]  # keys: each user's views stay in order in one partition
    for i, page in enumerate(pages):
        future = producer.send(TOPIC, key=users[i % 3], value={"user": users[i % 3], "page": page})
        if i == 0:
            meta = future.get(timeout=10)
            print(f"first view stored at {meta.topic}[{meta.partition}] offset {meta.offset}")
    producer.flush()
    producer.close()
    print(f"produced {len(pages)} page views")
    return len(pages)


def count_views(expected: int) -> None:
    consumer = KafkaConsumer(
        bootstrap_servers=SERVERS,
        group_id="page-counter",
        auto_offset_reset="earliest",
        enable_auto_commit=True,
        consumer_timeout_ms=2000,
        value_deserializer=lambda b: json.loads(b.decode("utf-8")),
    )
    consumer.subscribe([TOPIC], listener=PrintingListener())
    views: Counter[str] = Counter()
    for message in consumer:  # ends after 2 s without records (consumer_timeout_ms)
        views[message.value["page"]] += 1
    consumer.close()  # commits the positions: a rerun counts only new views
    print(f"page-counter counted {sum(views.values())} new views: {dict(sorted(views.items()))}")
    assert sum(views.values()) == expected


def audit_from_the_start() -> None:
    tps = [TopicPartition(TOPIC, p) for p in range(3)]
    consumer = KafkaConsumer(
        bootstrap_servers=SERVERS,
        group_id="auditor",
        enable_auto_commit=False,
        value_deserializer=json.loads,
    )
    consumer.assign(tps)
    consumer.seek_to_beginning()
    ends = consumer.end_offsets(tps)
    total = 0
    while any(consumer.position(tp) < ends[tp] for tp in tps):
        for tp, records in consumer.poll(timeout_ms=1000).items():
            total += len(records)
            last = records[-1]
            consumer.commit({tp: OffsetAndMetadata(last.offset + 1, "audited", -1)})
    committed = {tp.partition: consumer.committed(tp) for tp in tps}
    consumer.close()
    print(f"auditor read all {total} views again; committed offsets {committed}")


def main() -> None:
    create_topic()
    expected = produce()
    count_views(expected)
    audit_from_the_start()


if __name__ == "__main__":
    main()
