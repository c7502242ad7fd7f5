"""Tests for eventlog's Producer (eventlog/_producer.py), created through ``log.producer()``.

Timing-dependent behaviour is made deterministic with a *write gate*: the log's
``append_batch`` is wrapped so that the producer's sender thread waits inside a write until
the test releases it. Tests never assert durations.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import gc
import logging
import os
import subprocess
import sys
import textwrap
import threading
import time
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import eventlog
from eventlog import (
    InvalidArgumentError,
    InvalidRecordError,
    InvalidTopicNameError,
    LogClosedError,
    NewRecord,
    PartitionNotFoundError,
    Producer,
    ProducerTimeoutError,
    ReadOnlyLogError,
    RecordMetadata,
    RecordTooLargeError,
    SendFuture,
    TopicNotFoundError,
)
from eventlog._errors import (
    ClientClosedError,
    ForkedProcessError,
    IllegalStateError,
    SerializationError,
)

LONG = 600_000  # a linger_ms that never expires during a test: only flush/close/size end it


def kafka_partition(key: bytes, partitions: int) -> int:
    """Kafka's default partitioner, written from its definition."""
    return (eventlog.murmur2(key) & 0x7FFFFFFF) % partitions


def values(log: eventlog.Log, topic: str) -> dict[int, list[bytes | None]]:
    return {
        p: [r.value for r in log.read(topic, p, max_records=100_000)]
        for p in log.end_offsets(topic)
    }


def batches(log: eventlog.Log, topic: str) -> int:
    return sum(p.batches for p in log.describe_topic(topic).partitions)


class WriteGate:
    """Holds the producer's writes: ``append_batch`` waits until ``release`` is set."""

    def __init__(self, log: eventlog.Log, monkeypatch: pytest.MonkeyPatch) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.calls: list[int] = []
        original = log.append_batch

        def gated(topic: str, records: list[NewRecord]) -> Any:
            self.calls.append(len(records))
            self.entered.set()
            assert self.release.wait(20), "the test never released the write gate"
            return original(topic, records)

        monkeypatch.setattr(log, "append_batch", gated)

    def wait_entered(self) -> None:
        assert self.entered.wait(10), "the sender never started a write"


@pytest.fixture
def gate(log: eventlog.Log, monkeypatch: pytest.MonkeyPatch) -> Iterator[WriteGate]:
    g = WriteGate(log, monkeypatch)
    try:
        yield g
    finally:
        g.release.set()


@pytest.fixture
def topic(log: eventlog.Log) -> str:
    log.create_topic("events", 1)
    return "events"


# -- sending and metadata --------------------------------------------------------------


def test_send_returns_a_future_of_record_metadata(log: eventlog.Log) -> None:
    log.create_topic("orders", 3)
    before = int(time.time() * 1000)
    with log.producer() as producer:
        future = producer.send("orders", b"payload", b"ABC123")
        meta = future.result(timeout=10)
    after = int(time.time() * 1000)
    assert isinstance(future, concurrent.futures.Future)
    assert isinstance(future, SendFuture)
    assert isinstance(meta, RecordMetadata)
    assert meta.topic == "orders"
    assert meta.partition == kafka_partition(b"ABC123", 3)
    assert meta.offset == 0
    assert before <= meta.timestamp <= after
    [record] = log.read("orders", meta.partition)
    assert (record.offset, record.timestamp, record.key, record.value) == (
        0,
        meta.timestamp,
        b"ABC123",
        b"payload",
    )


def test_explicit_partition_timestamp_and_headers_are_kept(log: eventlog.Log) -> None:
    log.create_topic("t", 4, retention_ms=-1)  # keep the 2023 timestamp
    headers = [("trace", b"abc"), ("empty", None), ("trace", b"again")]
    with log.producer() as producer:
        meta = producer.send(
            "t", b"v", partition=3, timestamp=1_700_000_000_000, headers=headers
        ).result(10)
    assert (meta.partition, meta.timestamp) == (3, 1_700_000_000_000)
    [record] = log.read("t", 3)
    assert record.headers == tuple(headers)
    assert record.timestamp == 1_700_000_000_000


def test_tombstones_and_keyless_records(log: eventlog.Log) -> None:
    log.create_topic("t")
    with log.producer() as producer:
        producer.send("t", None, b"k")
        producer.send("t", b"no key")
    records = log.read("t", 0)
    assert [(r.key, r.value) for r in records] == [(b"k", None), (None, b"no key")]


def test_offsets_follow_send_order(log: eventlog.Log, topic: str) -> None:
    with log.producer() as producer:
        futures = [producer.send(topic, b"%d" % i) for i in range(500)]
    assert [f.result().offset for f in futures] == list(range(500))
    assert values(log, topic)[0] == [b"%d" % i for i in range(500)]


def test_bytes_like_values_are_copied_at_send(log: eventlog.Log, topic: str) -> None:
    buf = bytearray(b"original")
    with log.producer(linger_ms=LONG) as producer:
        producer.send(topic, buf, memoryview(b"key"))
        buf[:] = b"changed!"
    [record] = log.read(topic, 0)
    assert (record.key, record.value) == (b"key", b"original")


# -- serializers -----------------------------------------------------------------------


def test_builtin_serializers(log: eventlog.Log, topic: str) -> None:
    with log.producer(
        key_serializer=eventlog.serde.str, value_serializer=eventlog.serde.json
    ) as producer:
        producer.send(topic, {"order_id": "ABC123", "name": "Zoë"}, key="ABC123")
    [record] = log.read(topic, 0)
    assert record.key == b"ABC123"
    assert record.value == '{"order_id":"ABC123","name":"Zoë"}'.encode()
    assert eventlog.serde.json.deserialize(record.value) == {"order_id": "ABC123", "name": "Zoë"}


def test_bytes_serde_and_custom_callables(log: eventlog.Log, topic: str) -> None:
    with log.producer(
        key_serializer=lambda k: k.to_bytes(4, "big"), value_serializer=eventlog.serde.bytes
    ) as producer:
        producer.send(topic, bytearray(b"raw"), key=7)
    [record] = log.read(topic, 0)
    assert (record.key, record.value) == (b"\x00\x00\x00\x07", b"raw")


def test_none_is_never_passed_to_serializers(log: eventlog.Log, topic: str) -> None:
    seen: list[object] = []

    def recording(obj: object) -> bytes:
        seen.append(obj)
        return repr(obj).encode()

    with log.producer(key_serializer=recording, value_serializer=recording) as producer:
        producer.send(topic, None, key="k")  # a tombstone
        producer.send(topic, "v")  # no key
    assert seen == ["k", "v"]
    assert [(r.key, r.value) for r in log.read(topic, 0)] == [(b"'k'", None), (None, b"'v'")]


def test_a_serializer_error_fails_only_that_send(log: eventlog.Log, topic: str) -> None:
    with log.producer(value_serializer=eventlog.serde.json) as producer:
        first = producer.send(topic, {"n": 1})
        with pytest.raises(SerializationError) as info:
            producer.send(topic, {"bad": {1, 2}})
        last = producer.send(topic, {"n": 3})
    error = info.value
    assert error.topic == topic
    assert error.side == "value"  # type: ignore[attr-defined]
    assert isinstance(error.__cause__, TypeError)
    assert "value serializer eventlog.serde.json failed" in str(error)
    assert topic in str(error)
    assert isinstance(error, InvalidRecordError)  # callers may catch the broader class
    assert (first.result().offset, last.result().offset) == (0, 1)
    assert values(log, topic)[0] == [b'{"n":1}', b'{"n":3}']


def test_a_key_serializer_error_names_the_key_side(log: eventlog.Log, topic: str) -> None:
    with log.producer(key_serializer=eventlog.serde.str) as producer:
        with pytest.raises(
            SerializationError, match=r"key serializer eventlog\.serde\.str"
        ) as info:
            producer.send(topic, b"v", key=42)
        producer.flush()
    assert info.value.side == "key"  # type: ignore[attr-defined]
    assert log.end_offsets(topic) == {0: 0}


@pytest.mark.parametrize(
    ("result", "message"),
    [
        ("text", "returned str, not bytes"),
        (None, r"returned NoneType, not bytes \(to send a tombstone, pass value=None\)"),
        (12, "returned int, not bytes"),
    ],
)
def test_a_serializer_must_return_bytes(
    log: eventlog.Log, topic: str, result: object, message: str
) -> None:
    with log.producer(value_serializer=lambda _obj: result) as producer:
        with pytest.raises(SerializationError, match=message):
            producer.send(topic, "x")
        producer.flush()
    assert log.end_offsets(topic) == {0: 0}


def test_a_serializer_may_return_bytes_like(log: eventlog.Log, topic: str) -> None:
    with log.producer(value_serializer=lambda obj: bytearray(obj, "ascii")) as producer:
        producer.send(topic, "abc").result(10)
    assert values(log, topic)[0] == [b"abc"]


def test_without_a_serializer_values_must_be_bytes(log: eventlog.Log, topic: str) -> None:
    with log.producer() as producer:
        with pytest.raises(InvalidRecordError, match=r"value_serializer=eventlog\.serde\.str"):
            producer.send(topic, "text")
        with pytest.raises(InvalidRecordError, match="the key must be bytes"):
            producer.send(topic, b"v", key=5)
        with pytest.raises(InvalidRecordError, match=r"value_serializer, e\.g\. eventlog"):
            producer.send(topic, {"a": 1})


# -- partitioning ----------------------------------------------------------------------


def test_default_partitioner_is_kafkas(log: eventlog.Log) -> None:
    log.create_topic("t", 7)
    keys = [b"key-%d" % i for i in range(100)] + [b"", b"21", b"foobar"]
    with log.producer() as producer:
        futures = [producer.send("t", b"v", key) for key in keys]
    for key, future in zip(keys, futures):
        assert future.result().partition == kafka_partition(key, 7)


def test_default_partitioner_hashes_the_serialized_key(log: eventlog.Log) -> None:
    log.create_topic("t", 5)
    with log.producer(key_serializer=eventlog.serde.json) as producer:
        meta = producer.send("t", b"v", key={"id": 17}).result(10)
    assert meta.partition == kafka_partition(b'{"id":17}', 5)


def test_default_partitioner_is_sticky_for_null_keys(log: eventlog.Log) -> None:
    log.create_topic("t", 8)
    with log.producer(linger_ms=LONG, partitioner="default") as producer:
        futures = [producer.send("t", b"small") for _ in range(50)]
    assert len({f.result().partition for f in futures}) == 1


def test_custom_partitioner(log: eventlog.Log) -> None:
    log.create_topic("t", 3)
    calls: list[tuple[bytes | None, int]] = []

    def last_byte(key: bytes | None, partitions: int) -> int:
        calls.append((key, partitions))
        return 0 if key is None else key[-1] % partitions

    with log.producer(partitioner=last_byte, key_serializer=eventlog.serde.str) as producer:
        a = producer.send("t", b"v", key="a")  # ord("a") == 97 -> 1
        b = producer.send("t", b"v", key="b")  # 98 -> 2
        none = producer.send("t", b"v")
        explicit = producer.send("t", b"v", key="a", partition=0)
    assert calls == [(b"a", 3), (b"b", 3), (None, 3)]  # not called with an explicit partition
    assert [f.result().partition for f in (a, b, none, explicit)] == [1, 2, 0, 0]


def test_custom_partitioner_may_return_an_index_like_int(log: eventlog.Log) -> None:
    class Index:
        def __index__(self) -> int:
            return 1

    log.create_topic("t", 2)
    with log.producer(partitioner=lambda _k, _n: Index()) as producer:
        assert producer.send("t", b"v").result(10).partition == 1


@pytest.mark.parametrize(
    ("result", "error", "message"),
    [
        (3, PartitionNotFoundError, r"returned 3, but the topic has partitions 0\.\.2"),
        (-1, PartitionNotFoundError, r"returned -1, but the topic has partitions 0\.\.2"),
        ("1", InvalidArgumentError, "returned str '1'; a partition must be an int"),
        (1.0, InvalidArgumentError, "returned float 1.0"),
        (None, InvalidArgumentError, "returned NoneType None"),
        (True, InvalidArgumentError, "returned bool True"),
    ],
)
def test_a_bad_partitioner_result_fails_that_send(
    log: eventlog.Log, result: object, error: type[Exception], message: str
) -> None:
    log.create_topic("t", 3)
    with log.producer(partitioner=lambda _k, _n: result) as producer:
        with pytest.raises(error, match=message) as info:
            producer.send("t", b"v", b"k")
        assert info.value.topic == "t"  # type: ignore[attr-defined]
        assert "partitioner" in str(info.value)
        producer.flush()
    assert log.end_offsets("t") == {0: 0, 1: 0, 2: 0}


def test_a_failing_partitioner_propagates_its_error(log: eventlog.Log, topic: str) -> None:
    def broken(_key: bytes | None, _n: int) -> int:
        raise ZeroDivisionError("partitioner bug")

    with log.producer(partitioner=broken) as producer:
        with pytest.raises(ZeroDivisionError, match="partitioner bug"):
            producer.send(topic, b"v")
        producer.flush()
    assert log.end_offsets(topic) == {0: 0}


# -- futures and callbacks -------------------------------------------------------------


def test_future_result_timeout_done_and_exception(
    log: eventlog.Log, topic: str, gate: WriteGate
) -> None:
    with log.producer() as producer:
        future = producer.send(topic, b"v")
        gate.wait_entered()
        assert not future.done()
        with pytest.raises(concurrent.futures.TimeoutError):
            future.result(timeout=0.01)
        with pytest.raises(concurrent.futures.TimeoutError):
            future.exception(timeout=0.01)
        assert future.cancel() is False  # a buffered send cannot be cancelled
        assert not future.cancelled()
        gate.release.set()
        meta = future.result(timeout=10)
        assert future.done()
        assert future.exception() is None
        assert future.result() == meta
        assert "finished" in repr(future)


def test_futures_work_with_concurrent_futures_wait(log: eventlog.Log, topic: str) -> None:
    with log.producer() as producer:
        futures = [producer.send(topic, b"%d" % i) for i in range(20)]
        done, not_done = concurrent.futures.wait(futures, timeout=10)
        assert (len(done), len(not_done)) == (20, 0)
        completed = list(concurrent.futures.as_completed(futures, timeout=10))
    assert sorted(f.result().offset for f in completed) == list(range(20))


def test_futures_work_with_asyncio(log: eventlog.Log, topic: str) -> None:
    with log.producer() as producer:

        async def send_two() -> list[RecordMetadata]:
            first = asyncio.wrap_future(producer.send(topic, b"a"))
            second = asyncio.wrap_future(producer.send(topic, b"b"))
            return list(await asyncio.gather(first, second))

        metas = asyncio.run(send_two())
    assert [m.offset for m in metas] == [0, 1]


def test_waiting_threads_and_the_sender_race_safely(log: eventlog.Log, topic: str) -> None:
    # Each thread waits on every future at once, racing the sender's completion (futures
    # create their condition lazily, on first wait).
    failures: list[BaseException] = []
    with log.producer() as producer:

        def ping_pong() -> None:
            try:
                for _ in range(300):
                    future = producer.send(topic, b"v")
                    future.result(timeout=10)
                    assert future.done()
            except BaseException as exc:
                failures.append(exc)

        threads = [threading.Thread(target=ping_pong) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    assert failures == []
    assert log.end_offsets(topic) == {0: 1200}


def test_futures_without_the_lazy_condition(tmp_path: Path) -> None:
    # On a Python whose Future keeps other private state, SendFuture falls back to plain
    # Future behaviour: simulate one in a fresh interpreter.
    script = textwrap.dedent(
        f"""
        import concurrent.futures

        original = concurrent.futures.Future.__init__

        def init(self):
            original(self)
            self._something_new = None

        concurrent.futures.Future.__init__ = init

        import eventlog
        from eventlog import _future

        assert not _future._LAZY_CONDITION
        log = eventlog.open({str(tmp_path / "log")!r}, durability="off")
        log.create_topic("t")
        log.create_topic("gone")
        seen = []
        with log.producer(linger_ms={LONG}) as producer:
            ok = producer.send("t", b"v").add_callback(seen.append)
            failed = producer.send("gone", b"v").add_errback(seen.append)
            log.delete_topic("gone")
            producer.flush()
            assert ok.result(10).offset == 0
            assert isinstance(failed.exception(10), eventlog.TopicNotFoundError)
            assert [type(x).__name__ for x in seen] == ["RecordMetadata", "TopicNotFoundError"]
            later = producer.send("t", b"w")
            assert not later.done()
            producer.flush()
            assert later.result(0).offset == 1
        print("fallback ok")
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], check=True, timeout=120, capture_output=True, text=True
    )
    assert out.stdout.strip() == "fallback ok"


def test_callbacks_run_in_the_sender_thread(log: eventlog.Log, topic: str, gate: WriteGate) -> None:
    seen: list[tuple[str, object]] = []
    with log.producer(client_id="orders-api") as producer:
        future = producer.send(topic, b"v")
        gate.wait_entered()  # not done yet: the callbacks will run after the write
        returned = future.add_callback(
            lambda meta: seen.append((threading.current_thread().name, meta))
        ).add_errback(lambda exc: seen.append(("errback", exc)))
        assert returned is future
        gate.release.set()
        producer.flush()
    assert seen == [("eventlog-orders-api", future.result())]


def test_callbacks_on_a_done_future_run_at_once_in_the_caller(
    log: eventlog.Log, topic: str
) -> None:
    seen: list[tuple[str, object]] = []
    with log.producer() as producer:
        future = producer.send(topic, b"v")
        meta = future.result(10)
        future.add_callback(lambda m: seen.append((threading.current_thread().name, m)))
    assert seen == [(threading.current_thread().name, meta)]


def test_errbacks_get_the_write_error(log: eventlog.Log) -> None:
    log.create_topic("doomed")
    errors: list[BaseException] = []
    successes: list[RecordMetadata] = []
    with log.producer(linger_ms=LONG) as producer:
        future = producer.send("doomed", b"v")
        future.add_errback(errors.append).add_callback(successes.append)
        log.delete_topic("doomed")
        producer.flush()
    assert successes == []
    assert len(errors) == 1
    assert isinstance(errors[0], TopicNotFoundError)
    assert future.exception() is errors[0]
    with pytest.raises(TopicNotFoundError):
        future.result()


def test_a_failing_callback_is_logged_and_does_not_stop_the_sender(
    log: eventlog.Log, topic: str, gate: WriteGate, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(_meta: RecordMetadata) -> None:
        raise RuntimeError("callback bug")

    with log.producer() as producer:
        first = producer.send(topic, b"1")
        gate.wait_entered()
        first.add_callback(broken)
        with caplog.at_level(logging.ERROR, logger="concurrent.futures"):
            gate.release.set()
            producer.flush()
        assert producer.send(topic, b"2").result(10).offset == 1
    assert "callback bug" in caplog.text


# -- batching and linger ---------------------------------------------------------------


def test_linger_holds_records_until_flush(log: eventlog.Log, topic: str) -> None:
    with log.producer(linger_ms=LONG) as producer:
        futures = [producer.send(topic, b"%d" % i) for i in range(1000)]
        assert not any(f.done() for f in futures)
        producer.flush()
        assert all(f.done() for f in futures)
        assert log.end_offsets(topic) == {0: 1000}
    assert batches(log, topic) == 1


def test_batch_size_ends_the_linger(log: eventlog.Log, topic: str) -> None:
    with log.producer(linger_ms=LONG, batch_size=1000) as producer:
        futures = [producer.send(topic, b"x" * 100) for _ in range(10)]
        # The tenth record fills batch_size: written without a flush.
        assert futures[-1].result(timeout=10).offset == 9
    assert batches(log, topic) == 1


def test_linger_expires_without_a_flush(log: eventlog.Log, topic: str) -> None:
    with log.producer(linger_ms=5) as producer:
        assert producer.send(topic, b"v").result(timeout=10).offset == 0


def test_records_sent_during_a_write_form_the_next_batch(
    log: eventlog.Log, topic: str, gate: WriteGate
) -> None:
    # linger_ms=0: the first record is written at once; the 999 sent while that write is
    # in progress are written together by the next one.
    with log.producer() as producer:
        producer.send(topic, b"first")
        gate.wait_entered()
        for i in range(999):
            producer.send(topic, b"%d" % i)
        gate.release.set()
        producer.flush()
    assert gate.calls == [1, 999]
    assert batches(log, topic) == 2


def test_a_burst_lands_in_few_batches(log: eventlog.Log) -> None:
    log.create_topic("t", 3)
    with log.producer() as producer:
        for i in range(3000):
            producer.send("t", b"value %d" % i, b"key %d" % (i % 50))
    assert sum(log.end_offsets("t").values()) == 3000
    assert batches(log, "t") < 3000 // 2


def test_max_request_size_splits_a_backlog(log: eventlog.Log, topic: str) -> None:
    with log.producer(linger_ms=LONG, max_request_size=1000) as producer:
        for _ in range(100):
            producer.send(topic, b"x" * 100)
    assert batches(log, topic) == 10
    assert log.end_offsets(topic) == {0: 100}


def test_one_record_larger_than_max_request_size_is_written_alone(
    log: eventlog.Log, topic: str
) -> None:
    with log.producer(linger_ms=LONG, max_request_size=100) as producer:
        producer.send(topic, b"a" * 10)
        producer.send(topic, b"b" * 500)
        producer.send(topic, b"c" * 10)
    assert [len(v or b"") for v in values(log, topic)[0]] == [10, 500, 10]
    assert batches(log, topic) == 3


def test_a_record_made_invalid_after_send_fails_alone(log: eventlog.Log, topic: str) -> None:
    with log.producer(linger_ms=LONG) as producer:
        futures = [
            producer.send(topic, payload)
            for payload in (b"s1", b"x" * 500, b"s2", b"y" * 500, b"s3")
        ]
        log.alter_topic(topic, max_message_bytes=100)
        producer.flush()
    assert [futures[i].result().offset for i in (0, 2, 4)] == [0, 1, 2]
    for i in (1, 3):
        assert isinstance(futures[i].exception(), RecordTooLargeError)
    assert values(log, topic)[0] == [b"s1", b"s2", b"s3"]


def test_a_deleted_topic_fails_only_its_own_records(log: eventlog.Log) -> None:
    log.create_topic("kept")
    log.create_topic("dropped")
    with log.producer(linger_ms=LONG) as producer:
        kept = producer.send("kept", b"1")
        dropped = producer.send("dropped", b"2")
        log.delete_topic("dropped")
        producer.flush()
    assert kept.result().offset == 0
    assert isinstance(dropped.exception(), TopicNotFoundError)


# -- the bounded buffer ----------------------------------------------------------------


def test_a_full_buffer_blocks_then_raises_after_max_block_ms(
    log: eventlog.Log, topic: str, gate: WriteGate
) -> None:
    with log.producer(max_buffer_records=5, max_block_ms=0) as producer:
        producer.send(topic, b"0")
        gate.wait_entered()  # record 0 is being written and still counts
        for i in range(1, 5):
            producer.send(topic, b"%d" % i)
        with pytest.raises(ProducerTimeoutError, match="max_buffer_records=5") as info:
            producer.send(topic, b"refused")
        assert isinstance(info.value, TimeoutError)
        assert info.value.topic == topic
        gate.release.set()
        producer.flush()
        assert producer.send(topic, b"5").result(10).offset == 5
    assert values(log, topic)[0] == [b"%d" % i for i in range(6)]


def test_buffer_memory_bounds_bytes(log: eventlog.Log, topic: str, gate: WriteGate) -> None:
    with log.producer(buffer_memory=1000, max_block_ms=1) as producer:
        producer.send(topic, b"a" * 400)
        gate.wait_entered()
        producer.send(topic, b"b" * 400)
        with pytest.raises(ProducerTimeoutError, match="buffer_memory=1000"):
            producer.send(topic, b"c" * 400)
        producer.send(topic, b"d" * 100)  # still fits
        gate.release.set()
    assert [v[:1] for v in values(log, topic)[0]] == [b"a", b"b", b"d"]  # type: ignore[index]


def test_a_record_larger_than_the_buffer_is_accepted_when_empty(
    log: eventlog.Log, topic: str
) -> None:
    with log.producer(buffer_memory=10) as producer:
        assert producer.send(topic, b"x" * 100).result(10).offset == 0


def test_a_blocked_send_resumes_when_space_frees(
    log: eventlog.Log, topic: str, gate: WriteGate
) -> None:
    with log.producer(max_buffer_records=2, max_block_ms=None) as producer:
        producer.send(topic, b"0")
        gate.wait_entered()
        producer.send(topic, b"1")
        results: list[object] = []
        sender = threading.Thread(target=lambda: results.append(producer.send(topic, b"2")))
        sender.start()
        sender.join(0.05)
        assert sender.is_alive()  # blocked: the write of record 0 holds the space
        gate.release.set()
        sender.join(10)
        assert not sender.is_alive()
    assert values(log, topic)[0] == [b"0", b"1", b"2"]


def test_close_wakes_a_blocked_send_with_client_closed(
    log: eventlog.Log, topic: str, gate: WriteGate
) -> None:
    producer = log.producer(max_buffer_records=1, max_block_ms=None)
    first = producer.send(topic, b"0")
    gate.wait_entered()
    errors: list[BaseException] = []

    def blocked_send() -> None:
        try:
            producer.send(topic, b"never")
        except BaseException as exc:
            errors.append(exc)

    sender = threading.Thread(target=blocked_send)
    sender.start()
    sender.join(0.05)
    assert sender.is_alive()
    closer = threading.Thread(target=producer.close)
    closer.start()
    sender.join(10)
    assert len(errors) == 1
    assert isinstance(errors[0], ClientClosedError)
    gate.release.set()
    closer.join(10)
    assert not closer.is_alive()
    assert first.result(10).offset == 0
    assert values(log, topic)[0] == [b"0"]


def test_sends_from_a_callback_never_block(log: eventlog.Log, topic: str, gate: WriteGate) -> None:
    more: list[SendFuture] = []
    with log.producer(max_buffer_records=1, max_block_ms=None) as producer:
        first = producer.send(topic, b"0")
        gate.wait_entered()
        first.add_callback(
            lambda _meta: more.extend(producer.send(topic, b"%d" % i) for i in (1, 2, 3))
        )
        gate.release.set()
        first.result(10)
    assert [f.result(10).offset for f in more] == [1, 2, 3]


# -- flush and close -------------------------------------------------------------------


def test_flush_waits_for_everything_sent_before(log: eventlog.Log) -> None:
    log.create_topic("a", 2)
    log.create_topic("b", 2)
    with log.producer(linger_ms=LONG) as producer:
        futures = [producer.send(t, b"v", b"%d" % i) for i in range(100) for t in ("a", "b")]
        producer.flush()
        assert all(f.done() for f in futures)
        assert sum(log.end_offsets("a").values()) + sum(log.end_offsets("b").values()) == 200
        producer.flush()  # nothing pending: returns at once


def test_flush_timeout(log: eventlog.Log, topic: str, gate: WriteGate) -> None:
    with log.producer() as producer:
        future = producer.send(topic, b"v")
        gate.wait_entered()
        with pytest.raises(ProducerTimeoutError, match=r"1 record\(s\) not yet written"):
            producer.flush(timeout=0.01)
        gate.release.set()
        producer.flush(timeout=10)
        assert future.done()


def test_flush_from_a_callback_is_refused(log: eventlog.Log, topic: str, gate: WriteGate) -> None:
    errors: list[BaseException] = []

    def flush_inside(_meta: RecordMetadata) -> None:
        try:
            producer.flush()
        except BaseException as exc:
            errors.append(exc)

    with log.producer() as producer:
        future = producer.send(topic, b"v")
        gate.wait_entered()
        future.add_callback(flush_inside)
        gate.release.set()
        producer.flush()
    assert len(errors) == 1
    assert isinstance(errors[0], IllegalStateError)
    assert "callback" in str(errors[0])


def test_close_writes_the_buffer_and_is_idempotent(log: eventlog.Log, topic: str) -> None:
    producer = log.producer(linger_ms=LONG)
    futures = [producer.send(topic, b"%d" % i) for i in range(10)]
    assert not producer.closed
    producer.close()
    assert producer.closed
    assert [f.result(0).offset for f in futures] == list(range(10))
    assert not producer._sender.thread.is_alive()
    producer.close()  # again: nothing happens
    producer.flush()  # after close: nothing to wait for
    with pytest.raises(ClientClosedError, match="the producer is closed"):
        producer.send(topic, b"late")
    with pytest.raises(ClientClosedError), producer:
        pass


def test_context_manager_closes(log: eventlog.Log, topic: str) -> None:
    with log.producer(linger_ms=LONG) as producer:
        future = producer.send(topic, b"v")
    assert producer.closed
    assert future.result(0).offset == 0


def test_close_timeout_fails_what_is_not_written(
    log: eventlog.Log, topic: str, gate: WriteGate
) -> None:
    producer = log.producer()
    in_flight = producer.send(topic, b"0")
    gate.wait_entered()
    buffered = producer.send(topic, b"1")
    producer.close(timeout=0.01)
    assert producer.closed
    error = buffered.exception(10)
    assert isinstance(error, ClientClosedError)
    assert "closed" in str(error)
    gate.release.set()
    assert in_flight.result(10).offset == 0  # the write in progress still completes
    producer._sender.thread.join(10)
    assert not producer._sender.thread.is_alive()
    assert values(log, topic)[0] == [b"0"]


def test_close_from_a_callback_does_not_wait_for_itself(
    log: eventlog.Log, topic: str, gate: WriteGate
) -> None:
    producer = log.producer()
    first = producer.send(topic, b"0")
    gate.wait_entered()
    first.add_callback(lambda _meta: producer.close())
    second = producer.send(topic, b"1")  # buffered before the close: still written
    gate.release.set()
    assert second.result(10).offset == 1
    producer._sender.thread.join(10)
    assert not producer._sender.thread.is_alive()
    assert producer.closed


def test_sender_thread_is_a_daemon(log: eventlog.Log) -> None:
    with log.producer(client_id="daemon-check") as producer:
        thread = producer._sender.thread
        assert thread.daemon
        assert thread.name == "eventlog-daemon-check"
        assert thread.is_alive()
    assert not thread.is_alive()


def test_a_forgotten_producer_is_collected_and_writes_its_buffer(
    log: eventlog.Log, topic: str
) -> None:
    producer = log.producer(linger_ms=LONG)
    future = producer.send(topic, b"v")
    thread = producer._sender.thread
    ref = weakref.ref(producer)
    del producer
    gc.collect()
    assert ref() is None  # no reference cycle through the sender thread
    assert future.result(10).offset == 0
    thread.join(10)
    assert not thread.is_alive()


def test_records_buffered_at_exit_are_written(tmp_path: Path) -> None:
    path = tmp_path / "log"
    script = textwrap.dedent(
        f"""
        import eventlog
        log = eventlog.open({str(path)!r}, durability="off")
        log.create_topic("t")
        producer = log.producer(linger_ms={LONG})
        for i in range(100):
            producer.send("t", b"%d" % i)
        # No close(): the interpreter exits with the records still buffered.
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
    with eventlog.open(path) as log:
        assert log.end_offsets("t") == {0: 100}


# -- the log closed under a producer ---------------------------------------------------


def test_closing_the_log_fails_later_writes_without_hanging(tmp_path: Path) -> None:
    log = eventlog.open(tmp_path / "log", durability="off")
    log.create_topic("t")
    producer = log.producer(linger_ms=LONG)
    buffered = producer.send("t", b"v")
    log.close()
    producer.flush(timeout=10)
    assert isinstance(buffered.exception(0), LogClosedError)
    with pytest.raises(LogClosedError):
        producer.send("t", b"after")
    producer.close(timeout=10)
    assert not producer._sender.thread.is_alive()


def test_closing_the_log_then_the_producer(tmp_path: Path) -> None:
    log = eventlog.open(tmp_path / "log", durability="off")
    log.create_topic("t")
    producer = log.producer(linger_ms=LONG)
    futures = [producer.send("t", b"%d" % i) for i in range(5)]
    log.close()
    producer.close(timeout=10)
    assert all(isinstance(f.exception(0), LogClosedError) for f in futures)


# -- threads and processes -------------------------------------------------------------


def test_many_threads_share_a_producer(log: eventlog.Log) -> None:
    log.create_topic("t", 4)
    threads_n, per_thread = 6, 1500
    barrier = threading.Barrier(threads_n)
    failures: list[BaseException] = []

    with log.producer(max_buffer_records=500) as producer:

        def work(tid: int) -> None:
            try:
                barrier.wait()
                for i in range(per_thread):
                    producer.send("t", b"%d:%d" % (tid, i), key=b"k%d" % (i % 7))
            except BaseException as exc:
                failures.append(exc)

        threads = [threading.Thread(target=work, args=(t,)) for t in range(threads_n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    assert failures == []
    seen: set[bytes] = set()
    for partition, stored in values(log, "t").items():
        last: dict[int, int] = {}
        for value in stored:
            assert value is not None
            tid, i = map(int, value.split(b":"))
            assert kafka_partition(b"k%d" % (i % 7), 4) == partition
            assert i > last.get(tid, -1), "a thread's records are out of order in a partition"
            last[tid] = i
            seen.add(value)
    assert len(seen) == threads_n * per_thread  # nothing lost, nothing duplicated
    assert sum(log.end_offsets("t").values()) == threads_n * per_thread


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork() is not available")
def test_a_forked_child_cannot_use_the_parents_producer(
    log: eventlog.Log, topic: str, tmp_path: Path
) -> None:
    child_log = tmp_path / "child-log"
    with log.producer() as producer:
        producer.send(topic, b"parent").result(10)
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            code = 1
            try:
                try:
                    producer.send(topic, b"child")
                except ForkedProcessError:
                    try:
                        producer.flush()
                    except ForkedProcessError:
                        producer.close()  # must neither hang nor raise
                        # A new producer works in the child.
                        with eventlog.open(child_log, durability="off") as own:
                            own.create_topic("c")
                            with own.producer() as fresh:
                                if fresh.send("c", b"child").result(10).offset == 0:
                                    code = 0
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert producer.send(topic, b"parent again").result(10).offset == 1


# -- bad input -------------------------------------------------------------------------


def test_unknown_topic_fails_fast(log: eventlog.Log) -> None:
    with log.producer() as producer:
        with pytest.raises(TopicNotFoundError, match="'missing' does not exist"):
            producer.send("missing", b"v")
        for bad in ("bad name", "", 42, None):
            with pytest.raises(InvalidTopicNameError):
                producer.send(bad, b"v")  # type: ignore[arg-type]


@pytest.mark.parametrize("partition", [-1, 3, 2**40])
def test_partition_out_of_range(log: eventlog.Log, partition: int) -> None:
    log.create_topic("t", 3)
    with (
        log.producer() as producer,
        pytest.raises(PartitionNotFoundError, match=r"partitions 0\.\.2") as info,
    ):
        producer.send("t", b"v", partition=partition)
    assert info.value.partition == partition


@pytest.mark.parametrize("partition", ["0", 1.0, True, [0]])
def test_partition_wrong_type(log: eventlog.Log, topic: str, partition: object) -> None:
    with (
        log.producer() as producer,
        pytest.raises(InvalidArgumentError, match="a partition must be an int"),
    ):
        producer.send(topic, b"v", partition=partition)  # type: ignore[arg-type]


@pytest.mark.parametrize("timestamp", [-1, 2**63, 1.5, "now", True])
def test_bad_timestamp(log: eventlog.Log, topic: str, timestamp: object) -> None:
    with (
        log.producer() as producer,
        pytest.raises(InvalidRecordError, match="timestamp must be None or milliseconds"),
    ):
        producer.send(topic, b"v", timestamp=timestamp)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({"a": b"b"}, "headers must be a list"),
        ([("a",)], r"each header must be a \(name, value\) pair"),
        ([(1, b"v")], "header names must be str"),
        ([("a", "text")], "header 'a' value must be bytes or None"),
    ],
)
def test_bad_headers(log: eventlog.Log, topic: str, headers: object, message: str) -> None:
    with log.producer() as producer, pytest.raises(InvalidRecordError, match=message) as info:
        producer.send(topic, b"v", headers=headers)  # type: ignore[arg-type]
    assert "record 0" not in str(info.value)
    assert str(info.value).startswith(f"send() to topic {topic!r}: ")


def test_record_too_large_counts_key_value_and_headers(log: eventlog.Log) -> None:
    log.create_topic("small", max_message_bytes=100)
    with log.producer() as producer:
        producer.send("small", b"v" * 90, b"k" * 10).result(10)
        with pytest.raises(RecordTooLargeError, match=r"max\.message\.bytes=100"):
            producer.send("small", b"v" * 90, b"k" * 11)
        with pytest.raises(RecordTooLargeError):
            producer.send("small", b"v" * 90, headers=[("h", b"x" * 20)])


def test_compacted_topics_need_keys(log: eventlog.Log) -> None:
    log.create_topic("table", cleanup_policy="compact")
    with log.producer() as producer:
        with pytest.raises(InvalidRecordError, match=r"compacted .* needs a key"):
            producer.send("table", b"v")
        assert producer.send("table", b"v", b"k").result(10).offset == 0


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"linger_ms": -1}, "linger_ms must be a number of milliseconds >= 0; got -1"),
        ({"linger_ms": "5"}, "linger_ms must be"),
        ({"linger_ms": True}, "linger_ms must be"),
        ({"linger_ms": float("nan")}, "linger_ms must be"),
        ({"linger_ms": float("inf")}, "linger_ms must be"),
        ({"batch_size": 0}, "batch_size must be an integer >= 1"),
        ({"batch_size": 1.5}, "batch_size must be an integer >= 1"),
        ({"max_request_size": 0}, "max_request_size must be an integer >= 1"),
        ({"buffer_memory": -5}, "buffer_memory must be an integer >= 1"),
        ({"max_buffer_records": 0}, "max_buffer_records must be an integer >= 1"),
        ({"max_block_ms": -1}, "max_block_ms must be None"),
        ({"client_id": 7}, "client_id must be None or a str"),
        ({"key_serializer": "json"}, r"key_serializer must be .*did you mean eventlog\.serde"),
        ({"value_serializer": 3}, "value_serializer must be"),
        ({"partitioner": "murmur2"}, "partitioner must be None or 'default'"),
        ({"partitioner": 1}, "partitioner must be None or 'default'"),
    ],
)
def test_bad_options(log: eventlog.Log, options: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidArgumentError, match=message):
        log.producer(**options)


def test_unknown_option_is_a_type_error(log: eventlog.Log) -> None:
    with pytest.raises(TypeError, match="acks"):
        log.producer(acks="all")


def test_bad_timeouts(log: eventlog.Log) -> None:
    with log.producer() as producer:
        for bad in (-1, "1", True, float("nan")):
            with pytest.raises(InvalidArgumentError, match="timeout must be None or seconds"):
                producer.flush(bad)  # type: ignore[arg-type]
            with pytest.raises(InvalidArgumentError, match="timeout must be None or seconds"):
                producer.close(bad)  # type: ignore[arg-type]
        assert not producer.closed
        producer.flush(float("inf"))


def test_producer_needs_an_open_writable_log(log: eventlog.Log, log_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match=r"needs an eventlog\.Log"):
        Producer("not a log")  # type: ignore[arg-type]
    with eventlog.open(log_path, readonly=True) as reader, pytest.raises(ReadOnlyLogError):
        reader.producer()
    other = eventlog.open(log_path, durability="off")
    other.close()
    with pytest.raises(LogClosedError):
        other.producer()


def test_repr_and_client_id(log: eventlog.Log) -> None:
    producer = log.producer(client_id="billing")
    assert producer.client_id == "billing"
    assert repr(producer) == f"<eventlog.Producer 'billing' on {log.path!r} open>"
    producer.close()
    assert repr(producer).endswith(" closed>")
    with log.producer() as default:
        assert default.client_id.startswith("producer-")
