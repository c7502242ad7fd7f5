"""A Kafka-protocol cluster for the mirror tests.

By default, librdkafka's mock cluster, started inside the test process: a confluent-kafka
client configured with ``test.mock.num.brokers`` creates it and logs its broker addresses
(at debug level ``mock``); other clients, in this process or in subprocesses, connect to
those loopback addresses. The cluster lives as long as that client. When
``EVENTLOG_KAFKA_BOOTSTRAP`` is set, the same tests also run against that cluster.

What the mock cluster does (librdkafka 2.16, checked by these tests' authors): topics are
auto-created with 4 partitions on first use (its CreateTopics request never finds a
controller, so topics here are always created that way); idempotent and transactional
producers work; but a ``read_committed`` consumer still sees the records of aborted
transactions (no abort filtering), and a new producer with the same transactional id does
not fence the older one (whose open transaction still commits afterwards), so exactly-once
across crashes can only be checked on a real cluster. ``exactly_once_gaps()`` probes for
both, so the test that needs them runs by itself once the mock supports them.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import threading
import time
import uuid
from typing import Any

import pytest

pytest.importorskip(
    "confluent_kafka", reason="the mirror tests need confluent-kafka (the test extra has it)"
)
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

MOCK_PARTITIONS = 4
ENV = "EVENTLOG_KAFKA_BOOTSTRAP"


class _AddressCatcher(logging.Handler):
    """Receives librdkafka's log lines; keeps the mock cluster's bootstrap address."""

    def __init__(self) -> None:
        super().__init__()
        self.address: str | None = None
        self.found = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if self.address is not None:
            return  # the mock logs every request at this debug level: drop the rest
        match = re.search(r"Mock cluster \S+ bootstrap\.servers=(\S+)", record.getMessage())
        if match:
            self.address = match.group(1)
            self.found.set()


class KafkaCluster:
    """A cluster to test against: ``bootstrap``, and helpers to create topics, produce
    and read them back with plain confluent-kafka clients."""

    _ids = itertools.count()

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.is_mock = kind == "mock"
        self._holder: Any = None
        if self.is_mock:
            catcher = _AddressCatcher()
            logger = logging.getLogger(f"tests.kafka_mock.{uuid.uuid4().hex}")
            logger.addHandler(catcher)
            logger.setLevel(logging.DEBUG)
            logger.propagate = False
            self._holder = Producer({"test.mock.num.brokers": 3, "logger": logger, "debug": "mock"})
            deadline = time.monotonic() + 30
            while not catcher.found.is_set() and time.monotonic() < deadline:
                self._holder.poll(0.1)
            assert catcher.address, "librdkafka did not log the mock cluster's address"
            self.bootstrap = catcher.address
        else:
            self.bootstrap = os.environ[ENV]
        self._quiet = logging.getLogger("tests.kafka_clients")
        self._quiet.addHandler(logging.NullHandler())
        self._quiet.propagate = False

    def close(self) -> None:
        # Destroying the creating client stops the mock cluster.
        self._holder = None

    def config(self, **settings: Any) -> dict[str, Any]:
        return {"bootstrap.servers": self.bootstrap, "logger": self._quiet, **settings}

    def unique(self, prefix: str) -> str:
        """A topic name not used before (a real cluster keeps topics between runs)."""
        return f"{prefix}-{os.getpid()}-{next(self._ids)}-{uuid.uuid4().hex[:6]}"

    def create_topic(self, name: str, partitions: int = MOCK_PARTITIONS) -> None:
        if self.is_mock:
            if partitions != MOCK_PARTITIONS:
                raise ValueError(f"the mock cluster makes {MOCK_PARTITIONS} partitions")
            # A producer-side client asking for a topic by name auto-creates it there.
            md = AdminClient(self.config()).list_topics(topic=name, timeout=30)
            assert len(md.topics[name].partitions) == MOCK_PARTITIONS, md.topics[name].error
            return
        admin = AdminClient(self.config())
        for future in admin.create_topics(
            [NewTopic(name, partitions, replication_factor=-1)]
        ).values():
            future.result(60)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            topic = admin.list_topics(timeout=30).topics.get(name)
            if topic is not None and len(topic.partitions) == partitions:
                return
            time.sleep(0.2)
        raise AssertionError(f"topic {name} did not appear")

    def produce(
        self, topic: str, records: list[dict[str, Any]], **settings: Any
    ) -> list[tuple[int, int]]:
        """Produce records (dicts of confluent ``produce`` arguments); return their
        ``(partition, offset)`` in order."""
        producer = Producer(self.config(**{"enable.idempotence": True, **settings}))
        placed: list[Any] = [None] * len(records)

        def done(i: int) -> Any:
            def callback(error: Any, message: Any) -> None:
                assert error is None, error
                placed[i] = (message.partition(), message.offset())

            return callback

        for i, r in enumerate(records):
            producer.produce(topic, on_delivery=done(i), **r)
            producer.poll(0)
        assert producer.flush(60) == 0
        assert all(p is not None for p in placed)
        return placed

    def exactly_once_gaps(self) -> list[str]:
        """What this cluster lacks for exactly-once across crashes, probed on a fresh
        topic: abort filtering for ``read_committed`` consumers, and the fencing of an
        older producer by a new one with the same transactional id. Empty when both work."""
        topic = self.unique("eos-probe")
        self.create_topic(topic)
        gaps = []
        producer = Producer(self.config(**{"transactional.id": self.unique("probe-tx")}))
        producer.init_transactions(30)
        producer.begin_transaction()
        producer.produce(topic, b"aborted", partition=0)
        producer.flush(30)
        producer.abort_transaction(30)
        producer.begin_transaction()
        producer.produce(topic, b"committed", partition=0)
        producer.commit_transaction(30)
        if [r[2] for r in self.read_all(topic, committed=True)[0]] != [b"committed"]:
            gaps.append("read_committed consumers see the records of aborted transactions")
        tx_id = self.unique("probe-fence")
        old = Producer(self.config(**{"transactional.id": tx_id}))
        old.init_transactions(30)
        old.begin_transaction()
        old.produce(topic, b"zombie", partition=1)
        old.flush(30)
        Producer(self.config(**{"transactional.id": tx_id})).init_transactions(30)
        try:
            old.commit_transaction(30)
            gaps.append("a new transactional producer does not fence the older one")
        except KafkaException:
            pass  # fenced, as Kafka does
        return gaps

    def read_all(self, topic: str, *, committed: bool = False) -> dict[int, list[Any]]:
        """Every record of a topic: ``{partition: [(offset, key, value, headers,
        timestamp), ...]}`` in offset order."""
        consumer = Consumer(
            self.config(
                **{
                    "group.id": "tests-read",
                    "enable.auto.commit": False,
                    "enable.partition.eof": True,
                    "isolation.level": "read_committed" if committed else "read_uncommitted",
                }
            )
        )
        try:
            count = len(consumer.list_topics(topic=topic, timeout=30).topics[topic].partitions)
            out: dict[int, list[Any]] = {p: [] for p in range(count)}
            ends = {}
            for p in range(count):
                _low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)
                ends[p] = high
            waiting = {p for p in range(count) if ends[p] > 0}
            consumer.assign([TopicPartition(topic, p, 0) for p in waiting])
            deadline = time.monotonic() + 120
            while waiting and time.monotonic() < deadline:
                m = consumer.poll(0.5)
                if m is None:
                    continue
                if m.error() is not None:
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        waiting.discard(m.partition())
                        continue
                    raise AssertionError(m.error())
                out[m.partition()].append(
                    (m.offset(), m.key(), m.value(), m.headers() or [], m.timestamp()[1])
                )
            assert not waiting, f"reading {topic} timed out"
            return out
        finally:
            consumer.close()


def cluster_kinds() -> list[str]:
    return ["mock", "external"] if os.environ.get(ENV) else ["mock"]
