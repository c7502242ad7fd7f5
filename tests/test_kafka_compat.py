"""eventlog.kafka: typical kafka-python code, ported by changing the import and the server
string, and kafka-python's documented behaviour.

kafka-python itself (in the ``test`` extra) is imported only to check fidelity: the same
namedtuple fields, every constructor argument of its clients classified by ours, the same
error codes. No broker is involved.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import eventlog
from eventlog.kafka import (
    ConsumerRebalanceListener,
    ConsumerRecord,
    KafkaAdminClient,
    KafkaConsumer,
    KafkaProducer,
    NewTopic,
    OffsetAndMetadata,
    OffsetAndTimestamp,
    RecordMetadata,
    TopicPartition,
    errors,
)
from eventlog.kafka._config import ADMIN, CONSUMER, PRODUCER

kafka = pytest.importorskip("kafka", reason="kafka-python (the test extra) checks fidelity")

pytestmark = pytest.mark.eventlog(leak_check=True)

PUBLIC_NAMES = sorted(
    [
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
)


@pytest.fixture
def servers(tmp_path: Path) -> str:
    """The bootstrap string of a fresh log directory."""
    return f"eventlog:{tmp_path / 'kafka-log'}"


@pytest.fixture
def clients(servers: str) -> Iterator[Callable[..., Any]]:
    """Make clients on ``servers``; every one is closed after the test."""
    made: list[Any] = []

    def make(kind: type, *args: Any, **configs: Any) -> Any:
        configs.setdefault("bootstrap_servers", servers)
        client = kind(*args, **configs)
        made.append(client)
        return client

    yield make
    for client in reversed(made):
        client.close()


def poll_until(
    consumer: KafkaConsumer, count: int, timeout: float = 30.0
) -> dict[TopicPartition, list[ConsumerRecord]]:
    """Poll until ``count`` records came (or fail after a generous ``timeout``)."""
    got: dict[TopicPartition, list[ConsumerRecord]] = {}
    deadline = time.monotonic() + timeout
    while sum(map(len, got.values())) < count:
        assert time.monotonic() < deadline, f"only {got} after {timeout} s"
        for tp, records in consumer.poll(timeout_ms=100).items():
            got.setdefault(tp, []).extend(records)
    return got


def values(batches: dict[TopicPartition, list[ConsumerRecord]]) -> list[Any]:
    return [r.value for tp in sorted(batches) for r in batches[tp]]


# ---------------------------------------------------------------- fidelity


def test_public_names_are_pinned() -> None:
    assert sorted(eventlog.kafka.__all__) == PUBLIC_NAMES
    for name in PUBLIC_NAMES:
        assert getattr(eventlog.kafka, name) is not None


def test_namedtuple_fields_match_kafka_python() -> None:
    from kafka.consumer.fetcher import ConsumerRecord as KConsumerRecord
    from kafka.producer.future import RecordMetadata as KRecordMetadata

    assert ConsumerRecord._fields == KConsumerRecord._fields
    assert RecordMetadata._fields == KRecordMetadata._fields
    assert TopicPartition._fields == kafka.TopicPartition._fields
    assert OffsetAndMetadata._fields == kafka.OffsetAndMetadata._fields
    assert OffsetAndTimestamp._fields == kafka.structs.OffsetAndTimestamp._fields
    # Values compare equal across the two libraries (both are plain tuples).
    assert TopicPartition("t", 1) == kafka.TopicPartition("t", 1)
    assert OffsetAndMetadata(5, "m", -1) == kafka.OffsetAndMetadata(5, "m", -1)


@pytest.mark.parametrize(
    ("table", "kafka_class"),
    [
        (PRODUCER, "KafkaProducer"),
        (CONSUMER, "KafkaConsumer"),
        (ADMIN, "KafkaAdminClient"),
    ],
)
def test_every_kafka_python_argument_is_classified(table: Any, kafka_class: str) -> None:
    """No argument of kafka-python's clients is silently unknown: each is accepted,
    ignored with a reason, or refused with a reason."""
    theirs = set(getattr(kafka, kafka_class).DEFAULT_CONFIG)
    accepted, ignored, refused = set(table.accepted), set(table.ignored), set(table.refused)
    assert not accepted & ignored
    assert not accepted & refused
    assert not ignored & refused
    assert theirs <= accepted | ignored | refused, theirs - (accepted | ignored | refused)
    assert all(reason.strip() for reason in {**table.ignored, **table.refused}.values())


def test_error_names_codes_and_bases() -> None:
    for name in errors.__all__:
        ours = getattr(errors, name)
        assert issubclass(ours, errors.KafkaError)
        assert issubclass(ours, eventlog.EventLogError)
        theirs = getattr(kafka.errors, name, None)
        if theirs is not None and hasattr(theirs, "errno"):
            assert ours.errno == theirs.errno, name
    # Each also is the eventlog error (and builtin) it stands for.
    assert issubclass(errors.UnknownTopicOrPartitionError, eventlog.TopicNotFoundError)
    assert issubclass(errors.UnknownTopicOrPartitionError, KeyError)
    assert issubclass(errors.CommitFailedError, eventlog.CommitFailedError)
    assert issubclass(errors.KafkaTimeoutError, TimeoutError)
    assert issubclass(errors.KafkaConfigurationError, ValueError)
    assert issubclass(errors.TopicAlreadyExistsError, eventlog.TopicExistsError)


# ---------------------------------------------------------------- tutorial code


def test_tutorial_json_producer_and_group_consumer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The kafka-python tutorial, with only the import and the server string changed."""
    monkeypatch.chdir(tmp_path)
    producer = KafkaProducer(
        bootstrap_servers="eventlog:data", value_serializer=lambda v: json.dumps(v).encode()
    )
    for i in range(3):
        producer.send("orders", {"id": i})
    producer.flush()
    producer.close()
    seen = []
    consumer = KafkaConsumer(
        "orders",
        bootstrap_servers="eventlog:data",
        group_id="g",
        auto_offset_reset="earliest",
        consumer_timeout_ms=1000,
        value_deserializer=lambda b: json.loads(b.decode()),
    )
    for msg in consumer:
        seen.append(msg.value)
        assert isinstance(msg, ConsumerRecord)
        assert (msg.topic, msg.partition, msg.timestamp_type) == ("orders", 0, 0)
        assert msg.serialized_value_size == len(json.dumps(msg.value).encode())
        assert msg.serialized_key_size == -1
        assert msg.key is None
        assert msg.headers == []
    consumer.close()
    assert seen == [{"id": 0}, {"id": 1}, {"id": 2}]
    assert (tmp_path / "data").is_dir()  # the relative path, from the working directory


def test_send_returns_future_with_record_metadata(clients: Callable[..., Any]) -> None:
    producer = clients(KafkaProducer, key_serializer=str.encode)
    stamp = int(time.time() * 1000) - 1000  # recent: older records fall to retention
    future = producer.send("events", b"value", key="k", headers=[("h", b"v")], timestamp_ms=stamp)
    meta = future.get(timeout=30)
    assert meta == future.value
    assert future.is_done
    assert future.succeeded()
    assert not future.failed()
    assert future.exception is None
    assert meta.topic_partition == TopicPartition("events", 0)
    assert (meta.topic, meta.partition, meta.offset, meta.timestamp) == ("events", 0, 0, stamp)
    assert (meta.serialized_key_size, meta.serialized_value_size) == (1, 5)
    assert meta.serialized_header_size == 2
    consumer = clients(KafkaConsumer, "events", auto_offset_reset="earliest")
    (record,) = poll_until(consumer, 1)[TopicPartition("events", 0)]
    assert (record.key, record.value, record.headers) == (b"k", b"value", [("h", b"v")])
    assert record.timestamp == stamp


def test_callbacks_get_extra_arguments_then_the_metadata(clients: Callable[..., Any]) -> None:
    producer = clients(KafkaProducer)
    got: list[Any] = []
    done = threading.Event()

    def on_success(tag: str, meta: RecordMetadata, *, more: int) -> None:
        got.append((tag, meta.offset, more))
        done.set()

    future = producer.send("t", b"x")
    future.add_callback(on_success, "a", more=1)
    future.add_errback(lambda exc: got.append(("errback", exc)))
    assert done.wait(30)
    future.get(30)
    # Added after completion: called at once.
    future.add_callback(on_success, "b", more=2)
    assert got == [("a", 0, 1), ("b", 0, 2)]


def test_errback_on_a_failed_send(clients: Callable[..., Any]) -> None:
    producer = clients(KafkaProducer, allow_auto_create_topics=False)
    failures: list[BaseException] = []
    successes: list[Any] = []
    future = producer.send("missing", b"x")
    future.add_errback(failures.append).add_callback(successes.append)
    assert future.is_done
    assert future.failed()
    assert not future.succeeded()
    assert isinstance(future.exception, errors.UnknownTopicOrPartitionError)
    with pytest.raises(errors.UnknownTopicOrPartitionError, match="missing"):
        future.get(timeout=30)
    assert len(failures) == 1
    assert isinstance(failures[0], errors.UnknownTopicOrPartitionError)
    assert isinstance(failures[0].__cause__, eventlog.TopicNotFoundError)
    assert successes == []
    assert future.value is None


def test_serializer_error_raises_from_send_and_sends_nothing(
    clients: Callable[..., Any],
) -> None:
    """kafka-python raises a serializer's failure from send() itself."""
    producer = clients(KafkaProducer, value_serializer=lambda v: json.dumps(v).encode())
    with pytest.raises(eventlog.SerializationError, match="value serializer") as info:
        producer.send("t", {"not json": {1, 2}})
    assert isinstance(info.value.__cause__, TypeError)
    producer.send("t", {"ok": True}).get(30)
    admin = clients(KafkaAdminClient)
    consumer = clients(KafkaConsumer, "t", auto_offset_reset="earliest")
    assert [r.value for r in poll_until(consumer, 1)[TopicPartition("t", 0)]] == [b'{"ok": true}']
    assert admin.list_topics() == ["t"]


def test_send_checks_like_kafka_python(clients: Callable[..., Any]) -> None:
    producer = clients(KafkaProducer)
    with pytest.raises(ValueError, match="key or a value"):
        producer.send("t")
    with pytest.raises(errors.MessageSizeTooLargeError):
        producer.send("t", b"x" * 2_000_000)
    producer.send("t", b"x").get(30)  # auto-created with one partition
    assert producer.partitions_for("t") == {0}
    with pytest.raises(errors.UnknownTopicOrPartitionError):
        producer.send("t", b"x", partition=3)
    with pytest.raises(errors.InvalidTopicError):
        producer.send("bad name!", b"x")
    producer.close()
    with pytest.raises(errors.IllegalStateError, match="closed"):
        producer.send("t", b"x")
    producer.close()  # again: nothing


def test_flush_waits_for_every_record(clients: Callable[..., Any]) -> None:
    producer = clients(KafkaProducer, linger_ms=50)
    futures = [producer.send("t", str(i).encode()) for i in range(100)]
    producer.flush(timeout=30)
    assert all(f.is_done for f in futures)
    assert [f.get().offset for f in futures] == list(range(100))


# ---------------------------------------------------------------- consuming


def _produce(servers: str, topic: str, items: list[bytes], partitions: int = 1) -> None:
    with KafkaAdminClient(bootstrap_servers=servers) as admin:
        if topic not in admin.list_topics():
            admin.create_topics([NewTopic(topic, partitions, 1)])
    with KafkaProducer(bootstrap_servers=servers) as producer:
        for i, item in enumerate(items):
            producer.send(topic, item, partition=i % partitions)
        producer.flush()


def test_group_auto_commit_resumes_where_the_last_member_stopped(
    servers: str, clients: Callable[..., Any]
) -> None:
    _produce(servers, "t", [b"a", b"b", b"c"])
    tp = TopicPartition("t", 0)
    first = clients(KafkaConsumer, "t", group_id="g", auto_offset_reset="earliest")
    assert values(poll_until(first, 3)) == [b"a", b"b", b"c"]
    first.close()  # commits (enable_auto_commit is on by default)
    assert first.bootstrap_connected() is False
    _produce(servers, "t", [b"d", b"e"])
    second = clients(KafkaConsumer, "t", group_id="g", auto_offset_reset="earliest")
    assert values(poll_until(second, 2)) == [b"d", b"e"]
    assert second.committed(tp) == 3


def test_auto_commit_happens_inside_poll(servers: str, clients: Callable[..., Any]) -> None:
    _produce(servers, "t", [b"a", b"b"])
    tp = TopicPartition("t", 0)
    consumer = clients(
        KafkaConsumer,
        "t",
        group_id="g",
        auto_offset_reset="earliest",
        auto_commit_interval_ms=0,
    )
    poll_until(consumer, 2)
    consumer.poll(timeout_ms=0)  # the interval has passed: commits the positions
    assert consumer.committed(tp) == 2


def test_seek_to_beginning_seek_and_positions(servers: str, clients: Callable[..., Any]) -> None:
    _produce(servers, "t", [b"a", b"b", b"c"])
    tp = TopicPartition("t", 0)
    consumer = clients(KafkaConsumer, auto_offset_reset="earliest")
    consumer.assign([tp])
    assert consumer.assignment() == {tp}
    assert consumer.subscription() is None
    assert values(poll_until(consumer, 3)) == [b"a", b"b", b"c"]
    assert consumer.position(tp) == 3
    consumer.seek_to_beginning()
    assert consumer.position(tp) == 0
    assert values(poll_until(consumer, 3)) == [b"a", b"b", b"c"]
    consumer.seek(tp, 2)
    assert values(poll_until(consumer, 1)) == [b"c"]
    consumer.seek_to_beginning(tp)
    consumer.seek_to_end(tp)
    assert consumer.poll(timeout_ms=0) == {}
    assert consumer.position(tp) == 3 == consumer.highwater(tp)
    with pytest.raises(ValueError, match="unassigned"):
        consumer.seek(TopicPartition("other", 0), 1)
    with pytest.raises(ValueError, match="int >= 0"):
        consumer.seek(tp, -1)


def test_manual_commit_with_offsets_and_metadata(servers: str, clients: Callable[..., Any]) -> None:
    _produce(servers, "t", [b"a", b"b", b"c", b"d"])
    tp = TopicPartition("t", 0)
    consumer = clients(
        KafkaConsumer,
        "t",
        group_id="g",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    poll_until(consumer, 4)
    assert consumer.committed(tp) is None
    consumer.commit({tp: OffsetAndMetadata(2, "processed two", -1)})
    assert consumer.committed(tp) == 2
    assert consumer.committed(tp, metadata=True) == OffsetAndMetadata(2, "processed two", -1)
    consumer.close()
    again = clients(KafkaConsumer, "t", group_id="g", auto_offset_reset="earliest")
    assert values(poll_until(again, 2)) == [b"c", b"d"]
    again.commit()  # everything returned so far
    assert again.committed(tp) == 4
    outcome: list[Any] = []
    future = again.commit_async(
        {tp: OffsetAndMetadata(3, "", -1)}, callback=lambda o, r: outcome.append((o, r))
    )
    assert future.is_done
    assert future.succeeded()
    assert outcome == [({tp: OffsetAndMetadata(3, "", -1)}, None)]
    assert again.committed(tp) == 3


def test_commit_without_group_is_an_illegal_state(clients: Callable[..., Any]) -> None:
    consumer = clients(KafkaConsumer)
    with pytest.raises(errors.IllegalStateError, match="group_id"):
        consumer.commit()
    with pytest.raises(errors.IllegalStateError, match="group_id"):
        consumer.committed(TopicPartition("t", 0))


class Recorder(ConsumerRebalanceListener):
    def __init__(self) -> None:
        self.calls: list[tuple[str, set[TopicPartition]]] = []

    def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        self.calls.append(("revoked", set(revoked)))

    def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self.calls.append(("assigned", set(assigned)))


def test_rebalance_listener_two_consumers_in_a_group(
    servers: str, clients: Callable[..., Any]
) -> None:
    _produce(servers, "t", [], partitions=2)
    both = {TopicPartition("t", 0), TopicPartition("t", 1)}
    first_listener, second_listener = Recorder(), Recorder()
    first = clients(KafkaConsumer, group_id="g")
    first.subscribe(["t"], listener=first_listener)
    assert first.subscription() == {"t"}
    deadline = time.monotonic() + 30
    while first.assignment() != both:
        assert time.monotonic() < deadline
        first.poll(timeout_ms=50)
    assert first_listener.calls == [("assigned", both)]
    second = clients(KafkaConsumer, group_id="g")
    second.subscribe(topics=["t"], listener=second_listener)
    while not (len(first.assignment()) == 1 and len(second.assignment()) == 1):
        assert time.monotonic() < deadline, (first.assignment(), second.assignment())
        first.poll(timeout_ms=50)
        second.poll(timeout_ms=50)
    assert first.assignment() | second.assignment() == both
    # Eager, as kafka-python: the first member gave up everything, then got its share.
    assert first_listener.calls[1] == ("revoked", both)
    assert first_listener.calls[-1] == ("assigned", first.assignment())
    assert second_listener.calls[-1] == ("assigned", second.assignment())
    assert all(isinstance(tp, TopicPartition) for _, tps in first_listener.calls for tp in tps)


def test_pause_and_resume(servers: str, clients: Callable[..., Any]) -> None:
    _produce(servers, "t", [b"p0", b"p1"], partitions=2)
    p0, p1 = TopicPartition("t", 0), TopicPartition("t", 1)
    consumer = clients(KafkaConsumer, auto_offset_reset="earliest")
    consumer.assign([p0, p1])
    consumer.pause(p0)
    assert consumer.paused() == {p0}
    assert poll_until(consumer, 1) == {p1: [consumer_record_like(p1, b"p1")]}
    assert consumer.poll(timeout_ms=50) == {}
    consumer.resume(p0)
    assert consumer.paused() == set()
    assert values(poll_until(consumer, 1)) == [b"p0"]


def consumer_record_like(tp: TopicPartition, value: bytes) -> Any:
    class Match:
        def __eq__(self, other: object) -> bool:
            return isinstance(other, ConsumerRecord) and (
                other.topic,
                other.partition,
                other.value,
            ) == (tp.topic, tp.partition, value)

    return Match()


def test_offsets_for_times_beginning_and_end_offsets(clients: Callable[..., Any]) -> None:
    producer = clients(KafkaProducer)
    base = int(time.time() * 1000) - 60_000  # recent: older records fall to retention
    for ts in (base, base + 1000, base + 2000):
        producer.send("t", b"x", timestamp_ms=ts)
    producer.flush()
    tp = TopicPartition("t", 0)
    consumer = clients(KafkaConsumer)
    found = consumer.offsets_for_times({tp: base + 500})
    assert found == {tp: OffsetAndTimestamp(1, base + 1000, -1)}
    assert consumer.offsets_for_times({tp: base}) == {tp: OffsetAndTimestamp(0, base, -1)}
    assert consumer.offsets_for_times({tp: base + 5000}) == {tp: None}
    with pytest.raises(ValueError, match="negative"):
        consumer.offsets_for_times({tp: -1})
    assert consumer.beginning_offsets([tp]) == {tp: 0}
    assert consumer.end_offsets([tp]) == {tp: 3}
    assert consumer.topics() == {"t"}
    assert consumer.partitions_for_topic("t") == {0}
    assert consumer.partitions_for_topic("nope") == set()
    with pytest.raises(errors.UnknownTopicOrPartitionError):
        consumer.end_offsets([TopicPartition("t", 7)])


def test_consumer_timeout_ms_ends_iteration(clients: Callable[..., Any]) -> None:
    consumer = clients(KafkaConsumer, "empty", consumer_timeout_ms=100)
    assert list(consumer) == []
    assert consumer.partitions_for_topic("empty") == {0}  # created on subscribe


def test_auto_offset_reset_latest_and_none(servers: str, clients: Callable[..., Any]) -> None:
    _produce(servers, "t", [b"old"])
    latest = clients(KafkaConsumer, "t")  # kafka-python's default: latest
    assert latest.poll(timeout_ms=50) == {}
    _produce(servers, "t", [b"new"])
    assert values(poll_until(latest, 1)) == [b"new"]
    strict = clients(KafkaConsumer, "t", group_id="fresh", auto_offset_reset="none")
    with pytest.raises(errors.NoOffsetForPartitionError):
        strict.poll(timeout_ms=0)


def test_max_poll_records_and_update_offsets(servers: str, clients: Callable[..., Any]) -> None:
    _produce(servers, "t", [b"a", b"b", b"c"])
    tp = TopicPartition("t", 0)
    consumer = clients(KafkaConsumer, "t", auto_offset_reset="earliest", max_poll_records=2)
    assert values(poll_until(consumer, 2)) == [b"a", b"b"]
    assert consumer.poll(timeout_ms=1000, max_records=1, update_offsets=False)[tp][0].value == b"c"
    assert consumer.position(tp) == 2
    assert values(poll_until(consumer, 1)) == [b"c"]
    assert consumer.metrics()["consumer-fetch-manager-metrics"]["records-consumed-total"] == 3


def test_deserializer_error_keeps_the_position(servers: str, clients: Callable[..., Any]) -> None:
    _produce(servers, "t", [b"not json", b'{"ok": 1}'])
    tp = TopicPartition("t", 0)
    consumer = clients(
        KafkaConsumer, "t", auto_offset_reset="earliest", value_deserializer=json.loads
    )
    with pytest.raises(eventlog.DeserializationError):
        poll_until(consumer, 1)
    assert consumer.position(tp) == 0
    consumer.seek(tp, 1)
    assert values(poll_until(consumer, 1)) == [{"ok": 1}]


def test_log_append_time_topics_report_timestamp_type_1(
    servers: str, clients: Callable[..., Any]
) -> None:
    admin = clients(KafkaAdminClient)
    admin.create_topics(
        [NewTopic("t", 1, 1, topic_configs={"message.timestamp.type": "LogAppendTime"})]
    )
    clients(KafkaProducer).send("t", b"x", timestamp_ms=5).get(30)
    consumer = clients(KafkaConsumer, "t", auto_offset_reset="earliest")
    (record,) = values_records(poll_until(consumer, 1))
    assert record.timestamp_type == 1
    assert record.timestamp != 5


def values_records(batches: dict[TopicPartition, list[ConsumerRecord]]) -> list[ConsumerRecord]:
    return [r for tp in sorted(batches) for r in batches[tp]]


# ---------------------------------------------------------------- configuration and errors


@pytest.mark.parametrize(
    "address", ["localhost:9092", "kafka1:9092,kafka2:9092", ["broker:29092"], "localhost"]
)
def test_host_port_bootstrap_is_refused_clearly(address: Any) -> None:
    with pytest.raises(errors.NoBrokersAvailable, match="eventlog:PATH"):
        KafkaProducer(bootstrap_servers=address)
    with pytest.raises(errors.NoBrokersAvailable, match="log directory"):
        KafkaConsumer(bootstrap_servers=address)


def test_bootstrap_server_forms(tmp_path: Path) -> None:
    target = tmp_path / "log"
    for form in (str(target), [str(target)], f"eventlog:{target}", f"eventlog://{target}", target):
        with KafkaAdminClient(bootstrap_servers=form) as admin:
            admin.create_topics([f"t{len(admin.list_topics())}"])
    with eventlog.open(target) as log:
        assert len(log.list_topics()) == 5
        with KafkaProducer(bootstrap_servers=log) as producer:  # an open Log: shared
            producer.send("t0", b"x").get(30)
        assert not log.closed  # the client did not close a Log it did not open
    for bad in (None, [], [str(target), str(target)], "eventlog://host/x", 42, "eventlog:"):
        with pytest.raises(errors.KafkaConfigurationError):
            KafkaAdminClient(bootstrap_servers=bad)


def test_unknown_and_refused_arguments(servers: str) -> None:
    with pytest.raises(errors.KafkaConfigurationError, match=r"Unrecognized configs.*bogus"):
        KafkaProducer(bootstrap_servers=servers, bogus=1)
    with pytest.raises(errors.KafkaConfigurationError, match="Unrecognized"):
        KafkaConsumer(bootstrap_servers=servers, group="g")  # eventlog's name, not Kafka's
    with pytest.raises(errors.KafkaConfigurationError, match=r"log\.transaction\(\)"):
        KafkaProducer(bootstrap_servers=servers, transactional_id="tx")
    with pytest.raises(errors.KafkaConfigurationError, match="acks"):
        KafkaProducer(bootstrap_servers=servers, acks=2)
    with pytest.raises(errors.KafkaConfigurationError, match="compression_type"):
        KafkaProducer(bootstrap_servers=servers, compression_type="brotli")
    with pytest.raises(errors.KafkaConfigurationError, match="auto_offset_reset"):
        KafkaConsumer(bootstrap_servers=servers, auto_offset_reset="beginning")
    with pytest.raises(errors.KafkaConfigurationError, match="isolation_level"):
        KafkaConsumer(bootstrap_servers=servers, isolation_level="serializable")
    with pytest.raises(errors.KafkaConfigurationError, match="partition_assignment_strategy"):
        KafkaConsumer(bootstrap_servers=servers, partition_assignment_strategy=["fancy"])
    with pytest.raises(errors.KafkaConfigurationError, match="value_deserializer"):
        KafkaConsumer(bootstrap_servers=servers, value_deserializer="json")


def test_network_arguments_are_accepted_and_ignored(clients: Callable[..., Any]) -> None:
    from kafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor

    producer = clients(
        KafkaProducer,
        security_protocol="SSL",
        ssl_cafile="/nonexistent/ca.pem",
        request_timeout_ms=1,
        retries=5,
        acks="all",
        compression_type="gzip",
        enable_idempotence=False,
        api_version=(2, 0),
    )
    consumer = clients(
        KafkaConsumer,
        "t",
        auto_offset_reset="earliest",
        fetch_max_wait_ms=10_000,
        isolation_level="read_committed",
        partition_assignment_strategy=[RoundRobinPartitionAssignor],
        sasl_mechanism="PLAIN",
    )
    producer.send("t", b"x").get(30)
    assert values(poll_until(consumer, 1)) == [b"x"]


def test_transactions_point_to_log_transaction(clients: Callable[..., Any]) -> None:
    producer = clients(KafkaProducer)
    with pytest.raises(errors.IllegalStateError, match=r"log\.transaction\(\)"):
        producer.init_transactions()


def test_unknown_topic_without_auto_creation(clients: Callable[..., Any]) -> None:
    consumer = clients(KafkaConsumer, allow_auto_create_topics=False)
    with pytest.raises(errors.UnknownTopicOrPartitionError, match="allow_auto_create_topics"):
        consumer.subscribe(["missing"])
    with pytest.raises(KeyError):  # also the builtin eventlog's TopicNotFoundError is
        consumer.assign([TopicPartition("missing", 0)])
    with pytest.raises(errors.IllegalStateError, match="mutually exclusive"):
        consumer.subscribe(["a"], pattern="b.*")
    with pytest.raises(ValueError, match="topics or a pattern"):
        consumer.subscribe([])
    with pytest.raises(ValueError, match="negative"):
        consumer.poll(timeout_ms=-1)
    consumer.close()
    with pytest.raises(errors.IllegalStateError, match="closed"):
        consumer.poll()


def test_pattern_subscription(clients: Callable[..., Any]) -> None:
    producer = clients(KafkaProducer)
    producer.send("orders-eu", b"eu").get(30)
    producer.send("orders-us", b"us").get(30)
    producer.send("other", b"no").get(30)
    consumer = clients(KafkaConsumer, auto_offset_reset="earliest", group_id="p")
    consumer.subscribe(pattern="orders-.*")
    assert sorted(values(poll_until(consumer, 2))) == [b"eu", b"us"]
    assert consumer.subscription() == {"orders-eu", "orders-us"}


# ---------------------------------------------------------------- admin


def test_admin_create_list_delete_topics(clients: Callable[..., Any]) -> None:
    admin = clients(KafkaAdminClient, client_id="admin")
    result = admin.create_topics([NewTopic("a", num_partitions=3, replication_factor=1)])
    assert result == {
        "topics": [
            {
                "name": "a",
                "error_code": 0,
                "error_message": None,
                "num_partitions": 3,
                "replication_factor": 1,
            }
        ]
    }
    admin.create_topics({"b": {"num_partitions": 2, "configs": {"retention.ms": "60000"}}})
    admin.create_topics(["c"])
    assert admin.list_topics() == ["a", "b", "c"]
    (described,) = admin.describe_topics(["b"])
    assert [p["partition_index"] for p in described["partitions"]] == [0, 1]
    with pytest.raises(errors.TopicAlreadyExistsError):
        admin.create_topics([NewTopic("a", 1, 1)])
    outcome = admin.create_topics([NewTopic("a", 1, 1)], raise_errors=False)
    assert outcome["topics"][0]["error_code"] == 36
    with pytest.raises(errors.InvalidReplicationFactorError, match="one copy"):
        admin.create_topics([NewTopic("d", 1, 3)])
    with pytest.raises(errors.InvalidPartitionsError):
        admin.create_topics([NewTopic("d", 0, 1)])
    with pytest.raises(errors.InvalidConfigurationError):
        admin.create_topics([NewTopic("d", 1, 1, topic_configs={"retention.mss": "1"})])
    assert (
        admin.create_topics([NewTopic("d", 1, 1)], validate_only=True)["topics"][0]["error_code"]
        == 0
    )
    assert "d" not in admin.list_topics()
    assert admin.delete_topics(["a", "b"]) == {
        "topics": [
            {"name": "a", "error_code": 0, "error_message": None},
            {"name": "b", "error_code": 0, "error_message": None},
        ]
    }
    assert admin.list_topics() == ["c"]
    with pytest.raises(errors.UnknownTopicOrPartitionError):
        admin.delete_topics(["a"])
    assert admin.delete_topics(["a"], raise_errors=False)["topics"][0]["error_code"] == 3


def test_admin_new_topic_importable_like_kafka_admin() -> None:
    from eventlog.kafka.admin import KafkaAdminClient as Admin
    from eventlog.kafka.admin import NewTopic as Topic

    assert Admin is KafkaAdminClient
    assert Topic is NewTopic


def test_clients_share_one_path_and_close_independently(
    servers: str, clients: Callable[..., Any]
) -> None:
    admin = clients(KafkaAdminClient)
    admin.create_topics([NewTopic("t", 2, 1)])
    producer = clients(KafkaProducer)
    readers = [clients(KafkaConsumer, "t", auto_offset_reset="earliest") for _ in range(2)]
    for i in range(4):
        producer.send("t", str(i).encode(), partition=i % 2)
    producer.flush()
    admin.close()  # the others keep working
    for reader in readers:
        assert sorted(values(poll_until(reader, 4))) == [b"0", b"1", b"2", b"3"]
    readers[0].close()
    producer.send("t", b"4", partition=0).get(30)
    assert values(poll_until(readers[1], 1)) == [b"4"]


def test_keyed_records_land_where_kafka_python_puts_them(clients: Callable[..., Any]) -> None:
    from kafka.partitioner.default import murmur2

    admin = clients(KafkaAdminClient)
    admin.create_topics([NewTopic("t", 5, 1)])
    producer = clients(KafkaProducer, key_serializer=str.encode)
    for i in range(40):
        key = f"user-{i}"
        meta = producer.send("t", b"x", key=key).get(30)
        assert meta.partition == (murmur2(key.encode()) & 0x7FFFFFFF) % 5


def test_example_app_runs_twice(tmp_path: Path) -> None:
    """examples/kafka_python_app.py (also run by test_examples.py): a second run counts
    only the new views (the group committed) and the auditor rereads everything."""
    import subprocess
    import sys

    script = Path(__file__).resolve().parent.parent / "examples" / "kafka_python_app.py"

    def run() -> list[str]:
        proc = subprocess.run(
            [sys.executable, str(script), str(tmp_path / "log")],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.splitlines()

    first, second = run(), run()
    assert first[0] == "created topic 'page-views' with 3 partitions"
    assert second[0] == "topic 'page-views' exists (from an earlier run)"
    for lines in (first, second):
        assert any(line.startswith("page-counter counted 9 new views") for line in lines)
    assert first[-1] == "auditor read all 9 views again; committed offsets {0: 3, 1: 3, 2: 3}"
    assert second[-1] == "auditor read all 18 views again; committed offsets {0: 6, 1: 6, 2: 6}"


def test_get_times_out_while_the_record_lingers(clients: Callable[..., Any]) -> None:
    producer = clients(KafkaProducer, linger_ms=600_000)  # written at flush(), not before
    producer.send("t", b"first")  # creates the topic
    producer.flush(timeout=30)
    future = producer.send("t", b"x")
    with pytest.raises(errors.KafkaTimeoutError, match="Timeout"):
        future.get(timeout=0.01)
    assert not future.is_done
    assert future.value is None
    assert future.exception is None
    producer.flush(timeout=30)
    assert future.get(timeout=0).offset == 1


def test_with_block_commits_only_when_it_ends_normally(
    servers: str, clients: Callable[..., Any]
) -> None:
    _produce(servers, "t", [b"a", b"b"])
    tp = TopicPartition("t", 0)

    def process_and_fail() -> None:
        with KafkaConsumer(
            "t", bootstrap_servers=servers, group_id="g", auto_offset_reset="earliest"
        ) as consumer:
            poll_until(consumer, 2)
            raise RuntimeError("processing failed")

    with pytest.raises(RuntimeError, match="processing failed"):
        process_and_fail()
    with KafkaConsumer(
        "t", bootstrap_servers=servers, group_id="g", auto_offset_reset="earliest"
    ) as consumer:
        assert consumer.committed(tp) is None  # nothing committed: the records come again
        assert values(poll_until(consumer, 2)) == [b"a", b"b"]
    with KafkaConsumer("t", bootstrap_servers=servers, group_id="g") as consumer:
        assert consumer.committed(tp) == 2


def test_static_membership_is_passed_through(servers: str, clients: Callable[..., Any]) -> None:
    _produce(servers, "t", [b"a"])
    consumer = clients(
        KafkaConsumer,
        "t",
        group_id="g",
        group_instance_id="worker-1",
        auto_offset_reset="earliest",
    )
    assert values(poll_until(consumer, 1)) == [b"a"]
    with eventlog.open(servers.removeprefix("eventlog:")) as log:
        (member,) = log.describe_group("g").members
    assert member.instance_id == "worker-1"
