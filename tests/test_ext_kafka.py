"""eventlog.ext.kafka: the mirror between a log and a Kafka cluster.

Runs against librdkafka's mock cluster, started in this process (tests/kafka_cluster.py),
and also against EVENTLOG_KAFKA_BOOTSTRAP when that is set.
"""

from __future__ import annotations

import io
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kafka_cluster import MOCK_PARTITIONS, KafkaCluster, cluster_kinds

import eventlog
from eventlog._partitioner import default_partition
from eventlog.ext.kafka import (
    KafkaAuthorizationError,
    KafkaTopicNotFoundError,
    KafkaUnreachableError,
    Mirror,
    MirrorClusterMismatchError,
    MirrorError,
    mirror_from_kafka,
    mirror_status,
    mirror_to_kafka,
)
from eventlog.ext.kafka._errors import from_kafka_error

P = MOCK_PARTITIONS


@pytest.fixture(scope="module", params=cluster_kinds())
def kafka(request: pytest.FixtureRequest) -> Iterator[KafkaCluster]:
    cluster = KafkaCluster(request.param)
    try:
        yield cluster
    finally:
        cluster.close()


def source_records(n: int, *, keyless_every: int = 7) -> list[dict[str, Any]]:
    """Records with keys (some keyless), headers (some none, one with a None value) and
    distinct timestamps (recent ones: the log's topics keep records 7 days by default)."""
    base = int(time.time() * 1000) - 3_600_000
    out = []
    for i in range(n):
        record: dict[str, Any] = {
            "value": f"value-{i}".encode() * (1 + i % 3),
            "timestamp": base + i * 10,
        }
        if i % keyless_every:
            record["key"] = f"key-{i % 37}".encode()
        if i % 2:
            record["headers"] = [("trace", f"t{i}".encode()), ("empty", None)]
        out.append(record)
    return out


def log_records(log: eventlog.Log, topic: str) -> dict[int, list[Any]]:
    out: dict[int, list[Any]] = {}
    for p in range(len(log.describe_topic(topic).partitions)):
        records: list[Any] = []
        offset = 0
        while True:
            batch = log.read(topic, p, offset, max_records=1000)
            if not batch:
                break
            records.extend(batch)
            offset = batch[-1].offset + 1
        out[p] = records
    return out


def comparable_log(records: list[eventlog.Record]) -> list[Any]:
    return [(r.key, r.value, list(r.headers), r.timestamp) for r in records]


def comparable_kafka(records: list[Any]) -> list[Any]:
    return [(key, value, list(headers), ts) for _o, key, value, headers, ts in records]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---------------------------------------------------------------------- the fixture


def test_cluster_fixture_serves_metadata(kafka: KafkaCluster) -> None:
    from confluent_kafka.admin import AdminClient

    metadata = AdminClient(kafka.config()).list_topics(timeout=30)
    assert metadata.brokers
    if kafka.is_mock:
        assert len(metadata.brokers) == 3
        assert all(b.host == "127.0.0.1" for b in metadata.brokers.values())


# ---------------------------------------------------------------------- Kafka -> log


def test_from_kafka_copies_record_for_record(kafka: KafkaCluster, log: eventlog.Log) -> None:
    topic = kafka.unique("in")
    kafka.create_topic(topic, P)
    kafka.produce(topic, source_records(300))
    result = mirror_from_kafka(log, kafka.bootstrap, [topic], name="in", batch_size=50)
    assert result.records == 300
    assert result.lag == 0
    source = kafka.read_all(topic)
    assert len(log.describe_topic(topic).partitions) == P  # created with Kafka's count
    copied = log_records(log, topic)
    for p in range(P):
        assert comparable_log(copied[p]) == comparable_kafka(source[p])
    # A second run finds nothing new; a third copies only what was produced since.
    assert mirror_from_kafka(log, kafka.bootstrap, [topic], name="in").records == 0
    kafka.produce(topic, source_records(40))
    assert mirror_from_kafka(log, kafka.bootstrap, [topic], name="in").records == 40
    source = kafka.read_all(topic)
    copied = log_records(log, topic)
    for p in range(P):
        assert comparable_log(copied[p]) == comparable_kafka(source[p])
    statuses = [s for s in mirror_status(log) if s.name == "in"]
    assert [(s.topic, s.partition) for s in statuses] == [(topic, p) for p in range(P)]
    for s in statuses:
        assert s.direction == "from-kafka"
        assert s.position == s.end == (source[s.partition][-1][0] + 1 if source[s.partition] else 0)
        assert s.lag == 0
        assert s.bootstrap == kafka.bootstrap


def test_from_kafka_repartitions_keys_with_murmur2(kafka: KafkaCluster, log: eventlog.Log) -> None:
    topic = kafka.unique("in-3")
    kafka.create_topic(topic, P)
    records = source_records(120, keyless_every=1_000_000)  # only record 0 is keyless
    kafka.produce(topic, records)
    log.create_topic(topic, 3)
    result = mirror_from_kafka(log, kafka.bootstrap, topic, name="re")
    assert result.records == 120
    copied = log_records(log, topic)
    assert sum(len(v) for v in copied.values()) == 120
    for p, rows in copied.items():
        for r in rows:
            if r.key is not None:
                assert p == default_partition(r.key, 3)
    # Order per key is kept.
    source = kafka.read_all(topic)
    by_key_source: dict[bytes, list[bytes]] = {}
    for rows in source.values():
        for _o, key, value, _h, _t in rows:
            by_key_source.setdefault(key, []).append(value)
    by_key_log: dict[bytes, list[bytes]] = {}
    for rows in copied.values():
        for r in rows:
            by_key_log.setdefault(r.key, []).append(r.value)
    for key, values in by_key_source.items():
        if key is not None:
            assert by_key_log[key] == values


def test_follow_mode_copies_new_records_until_stopped(
    kafka: KafkaCluster, log: eventlog.Log
) -> None:
    topic = kafka.unique("follow")
    kafka.create_topic(topic, P)
    kafka.produce(topic, source_records(20))
    progress: list[Any] = []
    mirror = Mirror(
        log, kafka.bootstrap, [topic], direction="from-kafka", name="f", on_progress=progress.append
    )
    results: list[Any] = []
    thread = threading.Thread(target=lambda: results.append(mirror.run(follow=True)))
    thread.start()
    try:
        wait_for(lambda: total(log, topic) == 20)
        kafka.produce(topic, source_records(30))
        wait_for(lambda: total(log, topic) == 50)
        wait_for(lambda: sum(s.lag for s in mirror_status(log, "f")) == 0)
    finally:
        mirror.stop()
        thread.join(60)
    assert not thread.is_alive()
    assert results[0].records == 50
    assert progress
    assert progress[-1].records == 50


def total(log: eventlog.Log, topic: str) -> int:
    try:
        return sum(p.end_offset for p in log.describe_topic(topic).partitions)
    except eventlog.TopicNotFoundError:
        return 0


def wait_for(condition: Any, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


# ---------------------------------------------------------------------- log -> Kafka


def fill_log(log: eventlog.Log, topic: str, partitions: int, n: int) -> None:
    log.create_topic(topic, partitions, exist_ok=True)
    for r in source_records(n):
        log.append(
            topic,
            r["value"],
            key=r.get("key"),
            timestamp=r["timestamp"],
            headers=r.get("headers"),
        )


def test_to_kafka_copies_record_for_record(kafka: KafkaCluster, log: eventlog.Log) -> None:
    topic = kafka.unique("out")
    kafka.create_topic(topic, P)
    fill_log(log, topic, P, 300)
    result = mirror_to_kafka(log, kafka.bootstrap, [topic], name="out", batch_size=64)
    assert result.records == 300
    assert result.lag == 0
    source = log_records(log, topic)
    copied = kafka.read_all(topic)
    for p in range(P):
        assert comparable_kafka(copied[p]) == comparable_log(source[p])
    assert mirror_to_kafka(log, kafka.bootstrap, [topic], name="out").records == 0
    fill_log(log, topic, P, 25)
    assert mirror_to_kafka(log, kafka.bootstrap, [topic], name="out").records == 25
    source = log_records(log, topic)
    copied = kafka.read_all(topic)
    for p in range(P):
        assert comparable_kafka(copied[p]) == comparable_log(source[p])
    for s in mirror_status(log, "out"):
        assert (s.direction, s.lag) == ("to-kafka", 0)
        assert s.position == len(source[s.partition])
    fill_log(log, topic, P, 10)  # the status reads the log's end now
    assert sum(s.lag for s in mirror_status(log, "out")) == 10


def test_to_kafka_exactly_once(kafka: KafkaCluster, log: eventlog.Log) -> None:
    topic = kafka.unique("out-eos")
    positions = kafka.unique("positions")
    kafka.create_topic(topic, P)
    kafka.create_topic(positions, P)
    fill_log(log, topic, P, 200)
    run = {"name": "eos", "exactly_once": True, "batch_size": 30, "positions_topic": positions}
    assert mirror_to_kafka(log, kafka.bootstrap, topic, **run).records == 200  # type: ignore[arg-type]
    # A new run takes its positions from the transactions committed in Kafka.
    assert mirror_to_kafka(log, kafka.bootstrap, topic, **run).records == 0  # type: ignore[arg-type]
    fill_log(log, topic, P, 15)
    assert mirror_to_kafka(log, kafka.bootstrap, topic, **run).records == 15  # type: ignore[arg-type]
    source = log_records(log, topic)
    copied = kafka.read_all(topic, committed=True)
    for p in range(P):
        assert comparable_kafka(copied[p]) == comparable_log(source[p])
    written = kafka.read_all(positions, committed=True)[0]
    last = json.loads(written[-1][2])["positions"][topic]
    assert {int(p): o for p, o in last.items()} == {p: len(source[p]) for p in range(P)}


def test_same_key_same_partition_as_kafkas_partitioner(
    kafka: KafkaCluster, log: eventlog.Log
) -> None:
    """Keys land where Kafka's default partitioner (murmur2, the Java client's; librdkafka
    calls it murmur2_random) puts them on the cluster: for the log's own appends, and for
    records the mirror re-partitions from a log topic with another partition count."""
    keys = [f"customer-{i}".encode() for i in range(200)] + [b"", b"\xff\x00\x01"]
    reference = kafka.unique("ref")
    kafka.create_topic(reference, P)
    placed = kafka.produce(
        reference, [{"key": k, "value": b"x"} for k in keys], partitioner="murmur2_random"
    )
    kafka_partition = {k: p for k, (p, _o) in zip(keys, placed, strict=True)}
    assert len(set(kafka_partition.values())) == P  # the keys spread over the partitions
    log.create_topic("same", P)
    for k in keys:
        assert log.append("same", b"x", key=k).partition == kafka_partition[k]
    # The mirror from a 3-partition log topic to the 4-partition Kafka topic.
    topic = kafka.unique("re-out")
    kafka.create_topic(topic, P)
    log.create_topic(topic, 3)
    for k in keys:
        log.append(topic, k, key=k)
    mirror_to_kafka(log, kafka.bootstrap, topic, name="re-out")
    copied = kafka.read_all(topic)
    assert sum(len(v) for v in copied.values()) == len(keys)
    for p, rows in copied.items():
        for _o, key, value, _h, _t in rows:
            assert key == value
            assert p == kafka_partition[key]


# ---------------------------------------------------------------------- one cluster per name


@pytest.fixture
def second_cluster() -> Iterator[KafkaCluster]:
    """Another mock cluster (its own cluster id), besides the module's ``kafka``."""
    cluster = KafkaCluster("mock")
    try:
        yield cluster
    finally:
        cluster.close()


def cluster_id(cluster: KafkaCluster) -> str:
    from confluent_kafka.admin import AdminClient

    found = AdminClient(cluster.config()).list_topics(timeout=30).cluster_id
    assert found
    return str(found)


def test_to_kafka_positions_belong_to_one_cluster(
    kafka: KafkaCluster, second_cluster: KafkaCluster, log: eventlog.Log
) -> None:
    a, b = kafka, second_cluster
    assert cluster_id(a) != cluster_id(b)
    topic = a.unique("two")
    a.create_topic(topic, P)
    b.create_topic(topic, P)
    fill_log(log, topic, P, 20)
    assert mirror_to_kafka(log, a.bootstrap, topic, name="two").records == 20
    before = mirror_status(log, "two")
    assert {(s.bootstrap, s.cluster_id) for s in before} == {(a.bootstrap, cluster_id(a))}
    # The same name to another cluster: refused, nothing sent, the positions untouched.
    with pytest.raises(MirrorClusterMismatchError) as info:
        mirror_to_kafka(log, b.bootstrap, topic, name="two")
    message = str(info.value)
    assert a.bootstrap in message
    assert b.bootstrap in message
    assert cluster_id(a) in message
    assert "use another mirror name" in message
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, MirrorError)
    assert info.value.cluster_id == cluster_id(a)
    assert sum(len(v) for v in b.read_all(topic).values()) == 0
    assert mirror_status(log, "two") == before
    # With exactly_once too (its positions topic lives on the cluster, but the name is
    # still the first cluster's).
    positions = b.unique("two-positions")
    b.create_topic(positions, P)
    with pytest.raises(MirrorClusterMismatchError):
        mirror_to_kafka(
            log, b.bootstrap, topic, name="two", exactly_once=True, positions_topic=positions
        )
    assert sum(len(v) for v in b.read_all(topic).values()) == 0
    # Another name copies everything to the second cluster.
    assert mirror_to_kafka(log, b.bootstrap, topic, name="two-b").records == 20
    assert sum(len(v) for v in b.read_all(topic).values()) == 20
    assert {s.cluster_id for s in mirror_status(log, "two-b")} == {cluster_id(b)}
    # The first cluster reached through another address (one broker of several, or the
    # host spelled differently): the same cluster id, so the mirror resumes (nothing to
    # copy), and the new address is stored.
    one_broker = a.bootstrap.split(",")[0]
    if one_broker == a.bootstrap:  # a one-address cluster (EVENTLOG_KAFKA_BOOTSTRAP)
        host, _, port = one_broker.rpartition(":")
        other = {"127.0.0.1": "localhost", "localhost": "127.0.0.1"}.get(host)
        if other is None:
            return  # no second spelling of this address to try
        one_broker = f"{other}:{port}"
    assert one_broker != a.bootstrap
    fill_log(log, topic, P, 5)
    assert mirror_to_kafka(log, one_broker, topic, name="two").records == 5
    assert sum(len(v) for v in a.read_all(topic).values()) == 25
    assert {(s.bootstrap, s.cluster_id) for s in mirror_status(log, "two")} == {
        (one_broker, cluster_id(a))
    }


def test_from_kafka_positions_belong_to_one_cluster(
    kafka: KafkaCluster, second_cluster: KafkaCluster, log: eventlog.Log
) -> None:
    a, b = kafka, second_cluster
    topic = a.unique("two-in")
    a.create_topic(topic, P)
    a.produce(topic, source_records(30))
    assert mirror_from_kafka(log, a.bootstrap, topic, name="two-in").records == 30
    only_b = b.unique("only-b")
    b.create_topic(only_b, P)
    b.produce(only_b, source_records(10))
    with pytest.raises(MirrorClusterMismatchError) as info:
        mirror_from_kafka(log, b.bootstrap, only_b, name="two-in")
    assert cluster_id(a) in str(info.value)
    assert only_b not in log.list_topics()  # refused before anything was created
    assert mirror_from_kafka(log, b.bootstrap, only_b, name="two-in-b").records == 10
    assert total(log, only_b) == 10
    statuses = mirror_status(log)
    assert {s.cluster_id for s in statuses if s.name == "two-in"} == {cluster_id(a)}
    assert {s.cluster_id for s in statuses if s.name == "two-in-b"} == {cluster_id(b)}


def test_positions_stored_without_a_cluster_id(
    kafka: KafkaCluster, second_cluster: KafkaCluster, log: eventlog.Log
) -> None:
    """Positions written before the cluster id was stored (bootstrap only) are the
    cluster's at that bootstrap: resumed there (and given the id), refused elsewhere."""
    from eventlog.ext.kafka import POSITIONS_TOPIC
    from eventlog.ext.kafka._positions import ensure_topic, position_key

    topic = kafka.unique("legacy")
    kafka.create_topic(topic, P)
    second_cluster.create_topic(topic, P)
    fill_log(log, topic, P, 40)
    ends = log.end_offsets(topic)
    ensure_topic(log)
    with log.transaction() as tx:
        for p in range(P):
            old = {
                "position": ends[p],
                "end": ends[p],
                "updated_ms": 1,
                "bootstrap": kafka.bootstrap,
            }
            tx.append(
                POSITIONS_TOPIC,
                json.dumps(old).encode(),
                key=position_key("old", "to-kafka", topic, p),
                partition=0,
            )
    assert {s.cluster_id for s in mirror_status(log, "old")} == {None}
    with pytest.raises(MirrorClusterMismatchError) as info:
        mirror_to_kafka(log, second_cluster.bootstrap, topic, name="old")
    assert f"run the mirror once with the address {kafka.bootstrap!r}" in str(info.value)
    assert info.value.cluster_id is None
    fill_log(log, topic, P, 6)
    assert mirror_to_kafka(log, kafka.bootstrap, topic, name="old").records == 6
    assert {s.cluster_id for s in mirror_status(log, "old")} == {cluster_id(kafka)}


# ---------------------------------------------------------------------- errors


def test_unreachable_cluster_is_a_clear_error(log: eventlog.Log) -> None:
    bootstrap = f"127.0.0.1:{free_port()}"
    log.create_topic("t", 1)
    for run in (mirror_from_kafka, mirror_to_kafka):
        with pytest.raises(KafkaUnreachableError) as info:
            run(log, bootstrap, ["t"], timeout=2)
        assert bootstrap in str(info.value)
        assert "no broker answered" in str(info.value)
        assert isinstance(info.value, ConnectionError)
        assert isinstance(info.value, eventlog.EventLogError)
    assert mirror_status(log) == []


def test_unknown_topics(kafka: KafkaCluster, log: eventlog.Log) -> None:
    missing = kafka.unique("missing")
    with pytest.raises(KafkaTopicNotFoundError) as info:
        mirror_from_kafka(log, kafka.bootstrap, [missing])
    assert missing in str(info.value)
    assert "create it first" in str(info.value)
    assert isinstance(info.value, KeyError)
    assert missing not in log.list_topics()
    log.create_topic(missing, 2)
    with pytest.raises(KafkaTopicNotFoundError):
        mirror_to_kafka(log, kafka.bootstrap, [missing])
    # A topic missing from the log (log -> Kafka) is eventlog's own error.
    with pytest.raises(eventlog.TopicNotFoundError, match="not-in-log"):
        mirror_to_kafka(log, kafka.bootstrap, ["not-in-log"])
    assert mirror_status(log) == []


def test_positions_of_a_cluster_that_reports_no_id(log: eventlog.Log) -> None:
    """A cluster whose metadata has no cluster id (very old brokers): its positions are
    told apart by bootstrap servers, in both directions of the comparison."""
    from eventlog.ext.kafka._positions import ensure_topic, load_positions, write_positions

    ensure_topic(log)
    with log.transaction() as tx:
        write_positions(tx, "m", "from-kafka", "a:9092", "cluster-a", {("t", 0): (5, 9)})
        write_positions(tx, "n", "from-kafka", "b:9092", None, {("t", 0): (7, 9)})
    assert load_positions(log, "m", "from-kafka", bootstrap="a:9092", cluster_id=None) == {
        ("t", 0): 5
    }
    assert load_positions(log, "n", "from-kafka", bootstrap="b:9092", cluster_id=None) == {
        ("t", 0): 7
    }
    with pytest.raises(MirrorClusterMismatchError) as info:
        load_positions(log, "m", "from-kafka", bootstrap="c:9092", cluster_id=None)
    assert str(info.value).startswith(
        "mirror 'm' already copies from the Kafka cluster 'cluster-a' at 'a:9092', "
        "not from the cluster at 'c:9092': "
    )
    with pytest.raises(MirrorClusterMismatchError, match="not from the cluster 'x' at 'c:9092'"):
        load_positions(log, "n", "from-kafka", bootstrap="c:9092", cluster_id="x")
    # Another direction under the same name is another mirror.
    assert load_positions(log, "m", "to-kafka", bootstrap="c:9092", cluster_id="x") == {}


def test_missing_positions_topic(kafka: KafkaCluster, log: eventlog.Log, tmp_path: Path) -> None:
    """Exactly-once log -> Kafka without its positions topic on the cluster: the error says
    what to do about the positions topic, not the advice for data topics."""
    topic = kafka.unique("eos-nopos")
    missing = kafka.unique("no-positions")
    kafka.create_topic(topic, P)
    fill_log(log, topic, P, 5)
    with pytest.raises(KafkaTopicNotFoundError) as info:
        mirror_to_kafka(log, kafka.bootstrap, topic, exactly_once=True, positions_topic=missing)
    message = str(info.value)
    assert f"the positions topic {missing!r} of an exactly-once mirror" in message
    assert "with one partition" in message
    assert "positions_topic=" in message
    assert "--positions-topic" in message
    assert "partition count" not in message  # the data topics' advice
    assert info.value.topic == missing
    assert sum(len(v) for v in kafka.read_all(topic).values()) == 0
    assert mirror_status(log) == []
    # The command prints the same advice.
    path = tmp_path / "cmd-nopos"
    with eventlog.open(path) as other:
        fill_log(other, topic, P, 5)
    code, out = command(
        path, "to-kafka", "--bootstrap", kafka.bootstrap, "--topic", topic,
        "--exactly-once", "--positions-topic", missing,
    )  # fmt: skip
    assert code == 1
    assert f"the positions topic {missing!r}" in out
    assert "--positions-topic" in out


def test_authorization_errors_are_typed() -> None:
    """The mock cluster has no ACLs, so the translation of the errors an authorizing
    cluster returns is checked on librdkafka's own error objects."""
    from confluent_kafka import KafkaError, KafkaException

    for code in (
        KafkaError.TOPIC_AUTHORIZATION_FAILED,
        KafkaError.GROUP_AUTHORIZATION_FAILED,
        KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
        KafkaError.SASL_AUTHENTICATION_FAILED,
    ):
        for raw in (KafkaError(code), KafkaException(KafkaError(code))):
            error = from_kafka_error(raw, "producing", bootstrap="k:9092", topic="orders")
            assert isinstance(error, KafkaAuthorizationError)
            assert isinstance(error, PermissionError)
            assert error.code == KafkaError(code).name()
            assert "'orders'" in str(error)
            assert "ACLs" in str(error)
    other = from_kafka_error(KafkaError(KafkaError.INVALID_CONFIG), "x", bootstrap="k:9092")
    assert type(other) is MirrorError


def test_security_mismatch_is_reported(kafka: KafkaCluster, log: eventlog.Log) -> None:
    """What the mock can refuse: a SASL client on its plaintext listener (the brokers drop
    the connection, so it is reported as unreachable, naming the security settings)."""
    if not kafka.is_mock:
        pytest.skip("the external cluster's security settings are not known to the test")
    topic = kafka.unique("auth")
    kafka.create_topic(topic, P)
    config = {
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": "PLAIN",
        "sasl.username": "u",
        "sasl.password": "p",
    }
    with pytest.raises(KafkaUnreachableError) as info:
        mirror_from_kafka(log, kafka.bootstrap, [topic], kafka_config=config, timeout=2)
    assert kafka.bootstrap in str(info.value)
    assert "security settings" in str(info.value)
    assert topic not in log.list_topics()


@pytest.mark.parametrize("exactly_once", [False, True])
def test_nothing_marked_that_kafka_refused(
    kafka: KafkaCluster, log: eventlog.Log, exactly_once: bool
) -> None:
    topic = kafka.unique("refused")
    positions = kafka.unique("refused-positions")
    kafka.create_topic(topic, P)
    kafka.create_topic(positions, P)
    log.create_topic(topic, P)
    for _i in range(10):
        log.append(topic, b"small", partition=0)
    log.append(topic, b"x" * 5000, partition=0)  # larger than the client allows below
    with pytest.raises(MirrorError) as info:
        mirror_to_kafka(
            log,
            kafka.bootstrap,
            topic,
            name="refused",
            exactly_once=exactly_once,
            positions_topic=positions,
            kafka_config={"message.max.bytes": 2000},
        )
    assert "MSG_SIZE_TOO_LARGE" in str(info.value.code)
    assert [s.position for s in mirror_status(log, "refused")] == [0] * P
    if exactly_once:  # the aborted transaction committed no positions
        assert kafka.read_all(positions)[0] == []


def test_bad_arguments(log: eventlog.Log) -> None:
    with pytest.raises(eventlog.InvalidArgumentError, match="direction"):
        Mirror(log, "k:9092", ["t"], direction="sideways")
    with pytest.raises(eventlog.InvalidArgumentError, match="topics"):
        Mirror(log, "k:9092", [], direction="to-kafka")
    with pytest.raises(eventlog.InvalidArgumentError, match="mirror name"):
        Mirror(log, "k:9092", ["t"], direction="to-kafka", name="a b")
    with pytest.raises(eventlog.InvalidArgumentError, match="batch_size"):
        Mirror(log, "k:9092", ["t"], direction="to-kafka", batch_size=0)
    with pytest.raises(eventlog.InvalidArgumentError, match="bootstrap"):
        Mirror(log, "", ["t"], direction="to-kafka")
    with pytest.raises(eventlog.InvalidArgumentError, match="timeout"):
        Mirror(log, "k:9092", ["t"], direction="to-kafka", timeout=0)


def test_without_the_extra(log: eventlog.Log, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "confluent_kafka", None)  # import fails
    log.create_topic("t", 1)
    with pytest.raises(MirrorError, match=r"pip install 'eventlog\[kafka\]'"):
        mirror_to_kafka(log, "k:9092", ["t"])
    assert mirror_status(log) == []  # reading the status needs only the log


# ---------------------------------------------------------------------- the command


def command(log_path: Path, *argv: str) -> tuple[int, str]:
    """``eventlog LOG_PATH mirror ARGV...`` in process: (exit status, stdout + stderr)."""
    from eventlog._cli import run

    out, err = io.StringIO(), io.StringIO()
    code = run([str(log_path), "mirror", *argv], stdout=out, stderr=err)
    return code, out.getvalue() + err.getvalue()


def test_command_both_directions(kafka: KafkaCluster, tmp_path: Path) -> None:
    src_topic = kafka.unique("cmd-in")
    kafka.create_topic(src_topic, P)
    kafka.produce(src_topic, source_records(50))
    path = tmp_path / "cmd-log"
    code, out = command(path, "from-kafka", "--bootstrap", kafka.bootstrap, "--topic", src_topic)
    assert code == 0, out
    assert "50 records" in out
    assert "lag 0" in out
    # Its positions show in `eventlog PATH stats`.
    code, stats = cli_json(path, "stats")
    assert code == 0
    rows = [m for m in stats["mirrors"] if m["topic"] == src_topic]
    assert len(rows) == P
    assert all(m["direction"] == "from-kafka" and m["lag"] == 0 for m in rows)
    assert sum(m["position"] for m in rows) == 50
    out_topic = kafka.unique("cmd-out")
    kafka.create_topic(out_topic, P)
    with eventlog.open(path) as log:
        fill_log(log, out_topic, P, 30)
    code, out = command(
        path,
        "to-kafka",
        "--bootstrap",
        kafka.bootstrap,
        "--topic",
        out_topic,
        "--name",
        "back",
        "-X",
        "linger.ms=1",
        "--json",
    )
    assert code == 0, out
    lines = [json.loads(line) for line in out.splitlines()]
    summary = lines[-1]
    assert summary["event"] == "done"
    assert summary["records"] == 30
    assert summary["lag"] == 0
    assert summary["name"] == "back"
    assert summary["direction"] == "to-kafka"
    assert sum(len(v) for v in kafka.read_all(out_topic).values()) == 30


def test_command_as_a_subprocess(kafka: KafkaCluster, tmp_path: Path) -> None:
    """``eventlog PATH mirror`` as the shell runs it: a copy from the cluster, then the
    one-line error of an unreachable cluster (exit 1, no traceback)."""
    topic = kafka.unique("cmd-proc")
    kafka.create_topic(topic, P)
    kafka.produce(topic, source_records(20))
    path = str(tmp_path / "proc-log")
    argv = [sys.executable, "-m", "eventlog", path, "mirror", "from-kafka"]
    proc = subprocess.run(
        [*argv, "--bootstrap", kafka.bootstrap, "--topic", topic, "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    done = json.loads(proc.stdout.splitlines()[-1])
    assert done["event"] == "done"
    assert done["records"] == 20
    with eventlog.open(path, readonly=True) as log:
        assert total(log, topic) == 20
    proc = subprocess.run(
        [*argv, "--bootstrap", f"127.0.0.1:{free_port()}", "--topic", topic, "--timeout", "2"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("eventlog: error: ")
    assert "Traceback" not in proc.stderr


def test_command_errors(tmp_path: Path) -> None:
    bootstrap = f"127.0.0.1:{free_port()}"
    code, out = command(
        tmp_path / "l", "from-kafka", "--bootstrap", bootstrap, "--topic", "t", "--timeout", "2"
    )
    assert code == 1
    assert "error:" in out
    assert "no broker answered" in out
    code, out = command(
        tmp_path / "l", "to-kafka", "--bootstrap", bootstrap, "--topic", "t", "-X", "oops"
    )
    assert code == 2
    assert "expected key=value" in out


# ---------------------------------------------------------------------- SIGKILL mid-copy

HELPER = Path(__file__).parent / "helpers" / "kafka_mirror.py"
KILLS = 6


def mirror_with_kills(
    log: eventlog.Log,
    kafka: KafkaCluster,
    direction: str,
    topic: str,
    *,
    exactly_once: bool = False,
) -> int:
    """Run the mirror in subprocesses, SIGKILLing each at a random moment after it made
    progress, KILLS times; then let one run to the end. Returns how many were killed."""
    rng = random.Random(f"{direction}-{exactly_once}")
    argv = [
        sys.executable,
        str(HELPER),
        log.path,
        kafka.bootstrap,
        direction,
        "killed",
        "10",
        "1" if exactly_once else "0",
        topic,
    ]

    def progress() -> int:
        return sum(s.position for s in mirror_status(log, "killed"))

    killed = 0
    for _ in range(KILLS):
        before = progress()
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 120
            while proc.poll() is None and progress() <= before:
                assert time.monotonic() < deadline, "the mirror made no progress"
                time.sleep(0.01)
            time.sleep(rng.uniform(0, 0.15))  # a random moment of the copy
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                killed += 1
            proc.wait(60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()  # type: ignore[union-attr]
            proc.stderr.close()  # type: ignore[union-attr]
    final = subprocess.run(argv, capture_output=True, timeout=300, check=False)
    assert final.returncode == 0, final.stderr.decode()[-3000:]
    return killed


def test_from_kafka_survives_sigkill_exactly_once(kafka: KafkaCluster, tmp_path: Path) -> None:
    topic = kafka.unique("kill-in")
    kafka.create_topic(topic, P)
    base = int(time.time() * 1000) - 3_600_000
    kafka.produce(
        topic,
        [
            {"key": f"k{i % 50}".encode(), "value": f"v{i}".encode(), "timestamp": base + i}
            for i in range(3000)
        ],
    )
    with eventlog.open(tmp_path / "log") as log:
        killed = mirror_with_kills(log, kafka, "from-kafka", topic)
        assert killed >= KILLS // 2  # most kills landed mid-copy
        source = kafka.read_all(topic)
        copied = log_records(log, topic)
        for p in range(P):
            # Exactly the source records, once each, in order.
            assert comparable_log(copied[p]) == comparable_kafka(source[p])
        assert sum(len(v) for v in copied.values()) == 3000


def check_at_least_once(log_side: list[eventlog.Record], kafka_side: list[Any]) -> None:
    """Every log record is in Kafka's partition; re-sent runs may repeat records, but the
    first copies come in the log's order (nothing lost, order kept)."""
    index = {r.value: i for i, r in enumerate(log_side)}
    expected = 0
    for _o, _key, value, _h, _t in kafka_side:
        i = index[value]
        assert i <= expected, f"record {expected} of the log is missing before {i}"
        if i == expected:
            expected += 1
    assert expected == len(log_side)


def test_to_kafka_survives_sigkill_at_least_once(kafka: KafkaCluster, tmp_path: Path) -> None:
    topic = kafka.unique("kill-out")
    kafka.create_topic(topic, P)
    with eventlog.open(tmp_path / "log") as log:
        log.create_topic(topic, P)
        for i in range(3000):
            log.append(topic, f"v{i}".encode(), key=f"k{i % 50}".encode())
        killed = mirror_with_kills(log, kafka, "to-kafka", topic)
        assert killed >= KILLS // 2
        source = log_records(log, topic)
        copied = kafka.read_all(topic)
        for p in range(P):
            check_at_least_once(source[p], copied[p])
        assert sum(s.lag for s in mirror_status(log, "killed")) == 0


def test_to_kafka_survives_sigkill_exactly_once(kafka: KafkaCluster, tmp_path: Path) -> None:
    """Needs what librdkafka's mock cluster lacks (probed, so that this runs once it has
    them): without abort filtering, the restarted mirror itself reads the positions of an
    aborted transaction back as committed, and neither its records nor the positions topic
    tell committed records from aborted ones (the mirror adds no header, so that records
    arrive as they are); without fencing, a killed instance's open transaction is not
    aborted by the next run."""
    gaps = kafka.exactly_once_gaps() if kafka.is_mock else []  # a real cluster has both
    if gaps:
        pytest.skip(
            f"librdkafka's mock cluster cannot run an exactly-once kill test: "
            f"{'; '.join(gaps)} (set EVENTLOG_KAFKA_BOOTSTRAP to a real cluster)"
        )
    topic = kafka.unique("kill-out-eos")
    kafka.create_topic(topic, P)
    with eventlog.open(tmp_path / "log") as log:
        log.create_topic(topic, P)
        for i in range(3000):
            log.append(topic, f"v{i}".encode(), key=f"k{i % 50}".encode())
        mirror_with_kills(log, kafka, "to-kafka", topic, exactly_once=True)
        source = log_records(log, topic)
        copied = kafka.read_all(topic, committed=True)
        for p in range(P):
            assert comparable_kafka(copied[p]) == comparable_log(source[p])


def test_command_bad_arguments_exit_2(tmp_path: Path) -> None:
    code, out = command(
        tmp_path / "l", "from-kafka", "--bootstrap", "k:9092", "--topic", "t",
        "--batch-size", "0", "--json",
    )  # fmt: skip
    assert code == 2
    assert "--batch-size: expected an integer >= 1; got '0'" in out
    assert not (tmp_path / "l").exists()  # nothing created


def cli_json(log_path: Path, *argv: str) -> tuple[int, Any]:
    from eventlog._cli import run

    out, err = io.StringIO(), io.StringIO()
    code = run([str(log_path), "--json", *argv], stdout=out, stderr=err)
    return code, json.loads(out.getvalue()) if code == 0 else err.getvalue()


def test_positions_past_the_logs_end_are_refused(
    kafka: KafkaCluster, log: eventlog.Log
) -> None:
    """A log re-created (or restored from an older backup) under a mirror's stored
    positions: resuming would skip what the new log holds up to there, so the mirror
    refuses, naming the way out, and sends nothing."""
    topic = kafka.unique("past-end")
    kafka.create_topic(topic, P)
    fill_log(log, topic, P, 40)
    assert mirror_to_kafka(log, kafka.bootstrap, topic, name="old").records == 40
    log.delete_topic(topic)
    fill_log(log, topic, P, 4)  # a new topic of the same name, shorter than before
    with pytest.raises(eventlog.InvalidArgumentError, match="past the log's end offset"):
        mirror_to_kafka(log, kafka.bootstrap, topic, name="old")
    assert sum(len(v) for v in kafka.read_all(topic).values()) == 40
    assert mirror_to_kafka(log, kafka.bootstrap, topic, name="new").records == 4


def test_positions_past_a_kafka_partitions_end_are_refused(
    kafka: KafkaCluster, log: eventlog.Log
) -> None:
    """Kafka -> log with stored positions past the cluster partitions' ends (the topic
    was re-created on the cluster): refused, nothing imported."""
    from eventlog.ext.kafka import POSITIONS_TOPIC
    from eventlog.ext.kafka._positions import ensure_topic, position_key

    topic = kafka.unique("recreated")
    kafka.create_topic(topic, P)
    kafka.produce(topic, source_records(10))
    ensure_topic(log)
    with log.transaction() as tx:
        for p in range(P):
            stale = {"position": 1_000, "end": 1_000, "updated_ms": 1,
                     "bootstrap": kafka.bootstrap}  # fmt: skip
            tx.append(
                POSITIONS_TOPIC,
                json.dumps(stale).encode(),
                key=position_key("stale", "from-kafka", topic, p),
                partition=0,
            )
    with pytest.raises(eventlog.InvalidArgumentError, match="past the partition's end offset"):
        mirror_from_kafka(log, kafka.bootstrap, topic, name="stale")
    assert total(log, topic) == 0
    assert mirror_from_kafka(log, kafka.bootstrap, topic, name="fresh").records == 10


def test_one_shot_to_kafka_stops_at_the_end_seen_at_the_start(
    kafka: KafkaCluster, log: eventlog.Log
) -> None:
    topic = kafka.unique("one-shot")
    kafka.create_topic(topic, P)
    fill_log(log, topic, P, 100)

    def append_more(_result: Any) -> None:
        fill_log(log, topic, P, 5)  # appended while the mirror runs

    result = mirror_to_kafka(
        log, kafka.bootstrap, topic, name="one-shot", batch_size=10, on_progress=append_more
    )
    assert result.records == 100
    assert sum(len(v) for v in kafka.read_all(topic).values()) == 100
    # What was appended meanwhile is the lag.
    assert sum(s.lag for s in mirror_status(log, "one-shot")) == total(log, topic) - 100
