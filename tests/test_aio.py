"""eventlog.aio: AsyncProducer and AsyncConsumer.

Each test drives its own event loop with ``asyncio.run``. Besides the behaviour of every
method, the tests check the two promises of the module: the event loop is never blocked
(a loop-lag probe and asyncio's debug-mode slow-callback detector), and cancelling a
fetch loses no record (whether the cancellation arrives while the poll runs in the
consumer's thread or just after it handed its records over).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest

import eventlog
from eventlog import (
    NewRecord,
    OffsetAndMetadata,
    RebalanceListener,
    Record,
    TopicPartition,
    _aio_consumer,
)
from eventlog._errors import (
    ClientClosedError,
    DeserializationError,
    IllegalStateError,
    InvalidArgumentError,
    InvalidRecordError,
    OffsetOutOfRangeError,
    PartitionNotFoundError,
    ProducerTimeoutError,
    SerializationError,
    TopicNotFoundError,
)
from eventlog.aio import AsyncConsumer, AsyncProducer

TP = TopicPartition
T = TypeVar("T")


# --- helpers ---------------------------------------------------------------------------


def run(main: Callable[[], Awaitable[T]], *, debug: bool = False) -> T:
    async def wrapper() -> T:
        return await main()

    return asyncio.run(wrapper(), debug=debug)


def fill(log: eventlog.Log, topic: str, partition: int, count: int) -> None:
    """Append ``count`` records whose value is their offset as ASCII digits."""
    start = log.end_offsets(topic)[partition]
    log.append_batch(
        topic, [NewRecord(b"%d" % (start + i), partition=partition) for i in range(count)]
    )


def offsets(records: list[Record]) -> list[tuple[int, int]]:
    return [(r.partition, r.offset) for r in records]


def flat(batch: dict[TopicPartition, list[Record]]) -> list[Record]:
    return [r for records in batch.values() for r in records]


async def drain(consumer: AsyncConsumer, count: int, timeout_ms: int = 5000) -> list[Record]:
    """getmany until ``count`` records arrived (fails if a wait returns nothing)."""
    got: list[Record] = []
    while len(got) < count:
        batch = await consumer.getmany(timeout_ms=timeout_ms)
        assert batch, f"no records within {timeout_ms} ms; got {len(got)} of {count}"
        got.extend(flat(batch))
    return got


async def wait_until(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.005)


@pytest.fixture
def t2(log: eventlog.Log) -> eventlog.Log:
    log.create_topic("t", partitions=2)
    return log


# --- producer ---------------------------------------------------------------------------


def test_round_trip_with_json(log: eventlog.Log) -> None:
    log.create_topic("orders", partitions=3)

    async def main() -> tuple[list[eventlog.RecordMetadata], list[Record]]:
        async with AsyncProducer(
            log, value_serializer=eventlog.serde.json, key_serializer=eventlog.serde.str
        ) as producer:
            futures = [await producer.send("orders", {"n": i}, key=f"k{i % 5}") for i in range(30)]
            assert all(isinstance(f, asyncio.Future) for f in futures)
            metas = list(await asyncio.gather(*futures))
            metas.append(
                await producer.send_and_wait(
                    "orders", {"n": 30}, key="k0", headers=[("h", b"1")], timestamp=1234
                )
            )
        async with AsyncConsumer(
            log,
            "orders",
            value_deserializer=eventlog.serde.json,
            key_deserializer=eventlog.serde.str,
            auto_offset_reset="earliest",
        ) as consumer:
            return metas, await drain(consumer, 31)

    metas, records = run(main)
    assert sorted(r.value["n"] for r in records) == list(range(31))
    stored = {(r.partition, r.offset): r for r in records}
    for i, meta in enumerate(metas):
        record = stored[(meta.partition, meta.offset)]
        assert record.value == {"n": i}
        assert record.key == f"k{i % 5}"
        # Kafka's partitioner, as the synchronous producer uses it.
        assert meta.partition == (eventlog.murmur2(f"k{i % 5}".encode()) & 0x7FFFFFFF) % 3
    assert stored[(metas[30].partition, metas[30].offset)].headers == (("h", b"1"),)
    assert metas[30].timestamp == 1234


def test_send_returns_once_buffered_and_flush_waits_for_the_writes(t2: eventlog.Log) -> None:
    async def main() -> None:
        async with AsyncProducer(t2) as producer:
            futures = [await producer.send("t", b"%d" % i, partition=1) for i in range(200)]
            await producer.flush()
            assert all(f.done() for f in futures)
            assert [f.result().offset for f in futures] == list(range(200))
            # Cancelling the future does not unsend the record.
            future = await producer.send("t", b"kept", partition=0)
            future.cancel()
            await producer.flush()
        assert t2.read("t", 0)[-1].value == b"kept"

    run(main)


def test_a_full_buffer_waits_without_blocking_the_loop(t2: eventlog.Log) -> None:
    """The sender is held inside its first write, so the buffer (one record) stays full."""
    gate = threading.Event()
    inside = threading.Event()
    append_batch = t2.append_batch

    def held_append_batch(topic: str, records: list[NewRecord]) -> Any:
        inside.set()
        gate.wait(10)
        return append_batch(topic, records)

    t2.append_batch = held_append_batch  # type: ignore[method-assign]

    async def main() -> None:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.001)
                ticks += 1

        tick_task = asyncio.create_task(ticker())
        impatient = AsyncProducer(t2, max_buffer_records=1, max_block_ms=100)
        first = await impatient.send("t", b"first", partition=0)
        await wait_until(inside.is_set, "the sender to start writing")
        with pytest.raises(ProducerTimeoutError, match="max_block_ms=100"):
            await impatient.send("t", b"refused", partition=0)
        assert ticks > 0  # other tasks ran while send() waited

        # With no limit, send() waits until the sender frees space.
        patient = AsyncProducer(t2, max_buffer_records=1, max_block_ms=None)
        await patient.send("t", b"x", partition=1)  # fills patient's buffer (held sender)
        asyncio.get_running_loop().call_later(0.05, gate.set)
        waited = await patient.send("t", b"y", partition=1)
        assert (await waited).offset == 1
        assert (await first).offset == 0
        await impatient.close()
        await patient.close()
        tick_task.cancel()

    run(main)
    assert [r.value for r in t2.read("t", 0)] == [b"first"]


def test_producer_bad_input_passes_through(t2: eventlog.Log) -> None:
    def fail(obj: object) -> bytes:
        raise ValueError("nope")

    with pytest.raises(InvalidArgumentError):
        AsyncProducer(t2, linger_ms=-1)
    with pytest.raises(InvalidArgumentError, match="max_block_ms"):
        AsyncProducer(t2, max_block_ms=-5)

    async def main() -> None:
        async with AsyncProducer(t2) as producer:
            with pytest.raises(TopicNotFoundError):  # not in the cache: read in a thread
                await producer.send("missing", b"x")
            with pytest.raises(InvalidRecordError):
                await producer.send("t", "text")
            with pytest.raises(PartitionNotFoundError):
                await producer.send("t", b"x", partition=9)
            with pytest.raises(InvalidArgumentError):
                await producer.send_and_wait("t", b"x", partition="0")  # type: ignore[arg-type]
        async with AsyncProducer(t2, value_serializer=fail) as producer:
            with pytest.raises(SerializationError, match="nope"):
                await producer.send("t", {"a": 1})

    run(main)


def test_producer_close(t2: eventlog.Log) -> None:
    async def main() -> None:
        producer = AsyncProducer(t2)
        await producer.start()
        future = await producer.send("t", b"last", partition=0)
        await producer.close()
        assert future.done()
        assert producer.closed
        await producer.close()  # idempotent
        await producer.stop()
        with pytest.raises(ClientClosedError):
            await producer.send("t", b"x")
        with pytest.raises(ClientClosedError):
            await producer.send_and_wait("t", b"x")
        with pytest.raises(ClientClosedError):
            await producer.start()

    run(main)
    assert [r.value for r in t2.read("t", 0)] == [b"last"]


# --- consumer: fetching ------------------------------------------------------------------


def test_getmany_shape_and_limits(t2: eventlog.Log) -> None:
    fill(t2, "t", 0, 5)
    fill(t2, "t", 1, 3)

    async def main() -> None:
        async with AsyncConsumer(t2, "t", auto_offset_reset="earliest") as consumer:
            batch = await consumer.getmany(timeout_ms=1000, max_records=3)
            assert sum(map(len, batch.values())) == 3
            rest = await drain(consumer, 5)
            everything: dict[TopicPartition, list[int]] = {}
            for r in flat(batch) + rest:
                everything.setdefault(TP(r.topic, r.partition), []).append(r.offset)
            assert everything == {TP("t", 0): [0, 1, 2, 3, 4], TP("t", 1): [0, 1, 2]}
            for tp, records in batch.items():
                assert type(tp) is TopicPartition
                assert all(type(r) is Record and (r.topic, r.partition) == tp for r in records)
            assert await consumer.getmany() == {}  # timeout_ms=0: nothing waiting

            # Only the given partitions.
            consumer.seek(TP("t", 0), 0)
            consumer.seek(TP("t", 1), 0)
            only = await consumer.getmany(TP("t", 1), timeout_ms=1000)
            assert offsets(flat(only)) == [(1, 0), (1, 1), (1, 2)]
            assert offsets(flat(await consumer.getmany(timeout_ms=1000)))[:1] == [(0, 0)]

            # A wait ends when a record arrives.
            loop = asyncio.get_running_loop()
            loop.call_later(0.05, lambda: t2.append("t", b"late", partition=1))
            started = time.monotonic()
            late = await consumer.getmany(TP("t", 1), timeout_ms=10_000)
            assert time.monotonic() - started < 10
            assert [r.value for r in flat(late)] == [b"late"]

    run(main)


def test_getone_hands_out_one_record_at_a_time_and_commit_covers_only_those(
    log: eventlog.Log,
) -> None:
    log.create_topic("t")
    fill(log, "t", 0, 10)
    tp = TP("t", 0)

    async def main() -> None:
        async with AsyncConsumer(
            log, "t", group="g", auto_offset_reset="earliest", enable_auto_commit=False
        ) as consumer:
            got = [await consumer.getone() for _ in range(3)]
            assert [r.offset for r in got] == [0, 1, 2]
            await consumer.commit()
            # The poll fetched all ten records; only three were handed out.
            assert await consumer.committed(tp) == 3
            assert await consumer.position(tp) == 3
            assert await consumer.lag() == {tp: 7}
            rest = await drain(consumer, 7)
            assert [r.offset for r in rest] == list(range(3, 10))
            log.append("t", b"x")
            assert (await consumer.getone(tp)).offset == 10

    run(main)


def test_close_commits_only_what_was_handed_out(log: eventlog.Log) -> None:
    log.create_topic("t")
    fill(log, "t", 0, 10)

    async def main() -> None:
        consumer = AsyncConsumer(log, "t", group="g", auto_offset_reset="earliest")
        assert (await consumer.getone()).offset == 0
        assert (await consumer.getone()).offset == 1
        await consumer.close()  # auto-commit on close

    run(main)
    assert log.committed_offsets("g") == {TP("t", 0): OffsetAndMetadata(2, "")}


def test_async_iteration_ends_after_idle_timeout(t2: eventlog.Log) -> None:
    fill(t2, "t", 0, 4)
    fill(t2, "t", 1, 3)

    async def main() -> None:
        async with AsyncConsumer(
            t2, "t", auto_offset_reset="earliest", idle_timeout=0.2, max_poll_records=2
        ) as consumer:
            got = [record async for record in consumer]
            assert sorted(offsets(got)) == [(0, 0), (0, 1), (0, 2), (0, 3), (1, 0), (1, 1), (1, 2)]
            for p in (0, 1):  # in order within a partition
                mine = [r.offset for r in got if r.partition == p]
                assert mine == sorted(mine)
            fill(t2, "t", 1, 2)
            again = [record async for record in consumer]
            assert offsets(again) == [(1, 3), (1, 4)]

    run(main)


def test_iteration_and_waits_end_when_another_task_closes(t2: eventlog.Log) -> None:
    fill(t2, "t", 0, 2)

    async def main() -> None:
        consumer = AsyncConsumer(t2, "t", auto_offset_reset="earliest")
        got: list[Record] = []

        async def iterate() -> None:
            async for record in consumer:
                got.append(record)

        other = AsyncConsumer(t2, "t", auto_offset_reset="latest")
        iteration = asyncio.create_task(iterate())
        waiting = asyncio.create_task(other.getmany(timeout_ms=60_000))
        await wait_until(lambda: len(got) == 2, "the two records")
        await asyncio.sleep(0.05)
        await consumer.close()
        await other.close()
        await asyncio.wait_for(iteration, 5)
        assert await asyncio.wait_for(waiting, 5) == {}
        assert offsets(got) == [(0, 0), (0, 1)]

    run(main)


def test_consumer_close_semantics(t2: eventlog.Log) -> None:
    fill(t2, "t", 0, 1)

    async def main() -> None:
        consumer = AsyncConsumer(t2, "t", group="g", auto_offset_reset="earliest")
        async with consumer:
            await drain(consumer, 1)
        assert consumer.closed
        assert consumer.consumer.closed
        await consumer.close()  # idempotent
        await consumer.stop()
        tp = TP("t", 0)
        for call in (
            consumer.getmany,
            consumer.getone,
            consumer.commit,
            consumer.lag,
            consumer.start,
            consumer.unsubscribe,
            lambda: consumer.committed(tp),
            lambda: consumer.position(tp),
            lambda: consumer.seek_to_beginning(),
            lambda: consumer.subscribe(["t"]),
            lambda: consumer.assign([tp]),
            consumer.__anext__,
        ):
            with pytest.raises(ClientClosedError):
                await call()
        for sync_call in (
            lambda: consumer.seek(tp, 0),
            lambda: consumer.pause(tp),
            lambda: consumer.resume(tp),
        ):
            with pytest.raises(ClientClosedError):
                sync_call()
        with pytest.raises(ClientClosedError):
            async with consumer:
                pass

    run(main)
    assert t2.committed_offsets("g")[TP("t", 0)] == OffsetAndMetadata(1, "")


# --- consumer: positions, commits, flow control -------------------------------------------


def test_commit_and_committed(t2: eventlog.Log) -> None:
    fill(t2, "t", 0, 10)
    tp = TP("t", 0)

    async def main() -> None:
        async with AsyncConsumer(t2, "t", group="g", auto_offset_reset="earliest") as consumer:
            assert await consumer.committed(tp) is None
            await drain(consumer, 10)
            await consumer.commit()
            assert await consumer.committed(tp) == 10
            await consumer.commit({tp: 4})
            assert await consumer.committed(tp) == 4
            await consumer.commit({tp: OffsetAndMetadata(6, "note")})
            assert await consumer.committed(tp) == 6
            assert t2.committed_offsets("g")[tp] == OffsetAndMetadata(6, "note")
            with pytest.raises(PartitionNotFoundError):
                await consumer.commit({TP("t", 7): 1})
        async with AsyncConsumer(t2, "t") as groupless:
            with pytest.raises(IllegalStateError):
                await groupless.commit()
            with pytest.raises(IllegalStateError):
                await groupless.committed(tp)

    run(main)


def test_seek_pause_resume_take_effect_before_the_next_fetch(t2: eventlog.Log) -> None:
    fill(t2, "t", 0, 5)
    fill(t2, "t", 1, 5)
    p0, p1 = TP("t", 0), TP("t", 1)

    async def main() -> None:
        consumer = AsyncConsumer(t2, auto_offset_reset="earliest")
        await consumer.assign([p0, p1])
        assert consumer.assignment() == {p0, p1}
        consumer.pause(p0)
        assert consumer.paused() == {p0}
        assert {r.partition for r in await drain(consumer, 5)} == {1}
        assert await consumer.getmany(timeout_ms=50) == {}
        consumer.resume(p0)
        assert consumer.paused() == set()
        assert offsets(await drain(consumer, 5)) == [(0, i) for i in range(5)]

        consumer.seek(p0, 3)
        assert offsets(flat(await consumer.getmany(timeout_ms=1000))) == [(0, 3), (0, 4)]

        # Records fetched for getone() and not handed out yet: a seek replaces them...
        consumer.seek(p1, 0)
        assert (await consumer.getone()).offset == 0
        consumer.seek(p1, 3)
        assert (await consumer.getone()).offset == 3
        # ... and a pause keeps them for later.
        consumer.pause(p1)
        assert await consumer.getmany(timeout_ms=50) == {}
        consumer.resume(p1)
        assert (await consumer.getone()).offset == 4

        await consumer.seek_to_beginning(p0)
        assert await consumer.position(p0) == 0
        await consumer.seek_to_end()
        assert await consumer.getmany(timeout_ms=0) == {}
        assert await consumer.position(p1) == 5
        await consumer.seek_to_timestamp(0, p1)
        assert (await consumer.getone(p1)).offset == 0
        await consumer.close()

    run(main)


def test_a_seek_during_a_fetch_wins_over_what_that_fetch_read(t2: eventlog.Log) -> None:
    fill(t2, "t", 0, 5)
    gate, inside = threading.Event(), threading.Event()

    def slow(data: bytes) -> bytes:
        inside.set()
        gate.wait(10)
        return data

    async def main() -> None:
        consumer = AsyncConsumer(t2, auto_offset_reset="earliest", value_deserializer=slow)
        await consumer.assign([TP("t", 0)])
        fetch = asyncio.create_task(consumer.getmany(timeout_ms=10_000))
        await wait_until(inside.is_set, "the fetch to read")
        consumer.seek(TP("t", 0), 3)  # while the poll that read 0..4 is still running
        gate.set()
        assert offsets(flat(await fetch)) == [(0, 3), (0, 4)]
        await consumer.close()

    run(main)


def test_group_of_two_splits_the_partitions(log: eventlog.Log) -> None:
    log.create_topic("t", partitions=4)
    for p in range(4):
        fill(log, "t", p, 5)
    all_tps = {TP("t", p) for p in range(4)}

    async def main() -> None:
        consumers = [
            AsyncConsumer(log, "t", group="g", auto_offset_reset="earliest", client_id=f"m{i}")
            for i in range(2)
        ]
        seen: list[list[Record]] = [[], []]
        stop = asyncio.Event()

        async def member(i: int) -> None:
            consumer = consumers[i]
            while not stop.is_set():
                batch = await consumer.getmany(timeout_ms=50)
                seen[i].extend(flat(batch))
                if batch:
                    await consumer.commit()

        tasks = [asyncio.create_task(member(i)) for i in range(2)]

        def settled() -> bool:
            a, b = (c.assignment() for c in consumers)
            return bool(a) and bool(b) and not a & b and a | b == all_tps

        await wait_until(settled, "the group to settle")
        await wait_until(
            lambda: (
                {(r.partition, r.offset) for r in seen[0] + seen[1]}
                == {(p, o) for p in range(4) for o in range(5)}
            ),
            "the first records",
        )
        owned = [c.assignment() for c in consumers]
        before = [len(s) for s in seen]
        for p in range(4):
            fill(log, "t", p, 5)
        await wait_until(
            lambda: sum(len(s) for s in seen) - sum(before) >= 20, "the second records"
        )
        stop.set()
        await asyncio.gather(*tasks)
        for i in range(2):
            new = seen[i][before[i] :]
            assert {TP(r.topic, r.partition) for r in new} <= owned[i]
            assert sorted(offsets(new)) == [
                (tp.partition, o) for tp in sorted(owned[i]) for o in range(5, 10)
            ]
            assert consumers[i].assignment() == owned[i]  # no rebalance since
        for c in consumers:
            await c.close()

    run(main)


def test_subscribe_unsubscribe_and_properties(t2: eventlog.Log) -> None:
    t2.create_topic("t-extra")
    fill(t2, "t-extra", 0, 2)

    async def main() -> None:
        consumer = AsyncConsumer(t2, "t", group="g", client_id="me", auto_offset_reset="earliest")
        assert (consumer.group, consumer.member_id, consumer.generation) == ("g", None, -1)
        await consumer.start()
        assert consumer.subscription() == {"t"}
        await consumer.subscribe(pattern=r"t-.*")  # replaces the subscription
        assert consumer.subscription() == {"t-extra"}
        assert offsets(await drain(consumer, 2)) == [(0, 0), (0, 1)]
        assert consumer.member_id is not None
        assert consumer.member_id.startswith("me")
        assert consumer.generation >= 0
        assert consumer.assignment() == {TP("t-extra", 0)}
        await consumer.unsubscribe()
        assert consumer.assignment() == set()
        assert consumer.subscription() == set()
        assert list(t2.list_groups()) == ["g"]
        assert t2.describe_group("g").members == ()
        await consumer.subscribe("t")
        assert consumer.subscription() == {"t"}
        assert "AsyncConsumer" in repr(consumer)
        await consumer.close()
        assert "closed" in repr(consumer)

    run(main)


def test_listener_callbacks_run_in_the_consumers_own_thread(t2: eventlog.Log) -> None:
    fill(t2, "t", 0, 3)
    threads: list[tuple[str, int]] = []
    holder: list[AsyncConsumer] = []

    class Listener(RebalanceListener):
        def on_partitions_assigned(self, partitions: set[TopicPartition]) -> None:
            threads.append(("assigned", threading.get_ident()))

        def on_partitions_revoked(self, partitions: set[TopicPartition]) -> None:
            threads.append(("revoked", threading.get_ident()))
            holder[0].consumer.commit()  # the wrapped consumer, in its own thread

    async def main() -> int:
        consumer = AsyncConsumer(
            t2,
            "t",
            group="g",
            listener=Listener(),
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        holder.append(consumer)
        await drain(consumer, 3)
        await consumer.close()
        return threading.get_ident()

    loop_thread = run(main)
    assert [kind for kind, _ in threads] == ["assigned", "revoked"]
    assert len({ident for _, ident in threads}) == 1
    assert threads[0][1] != loop_thread
    assert t2.committed_offsets("g")[TP("t", 0)].offset == 3


def test_consumer_bad_input_passes_through(t2: eventlog.Log) -> None:
    class AsyncListener(RebalanceListener):
        async def on_partitions_assigned(  # type: ignore[override]
            self, partitions: set[TopicPartition]
        ) -> None:
            pass

    with pytest.raises(InvalidArgumentError):
        AsyncConsumer(t2, "t", auto_offset_reset="soon")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="coroutine"):
        AsyncConsumer(t2, "t", listener=AsyncListener())

    async def main() -> None:
        missing = AsyncConsumer(t2, "missing")
        with pytest.raises(TopicNotFoundError):
            await missing.start()
        with pytest.raises(TopicNotFoundError):
            await missing.getmany()
        await missing.close()

        consumer = AsyncConsumer(t2, auto_offset_reset="error")
        with pytest.raises(IllegalStateError):  # no subscription
            await consumer.getmany()
        with pytest.raises(TopicNotFoundError):
            await consumer.assign([TP("nope", 0)])
        with pytest.raises(PartitionNotFoundError):
            await consumer.assign([TP("t", 2)])
        with pytest.raises(InvalidArgumentError):
            await consumer.assign(["t"])  # type: ignore[list-item]
        with pytest.raises(IllegalStateError):
            consumer.seek(TP("t", 0), 0)  # not assigned
        await consumer.assign([TP("t", 0)])
        with pytest.raises(InvalidArgumentError):
            consumer.seek(TP("t", 0), -1)
        with pytest.raises(IllegalStateError):
            consumer.pause(TP("t", 1))
        with pytest.raises(IllegalStateError):
            await consumer.getmany(TP("t", 1))
        with pytest.raises(InvalidArgumentError):
            await consumer.getmany(timeout_ms=-1)
        with pytest.raises(InvalidArgumentError):
            await consumer.getmany(max_records=0)
        with pytest.raises(InvalidArgumentError):
            await consumer.getmany("t")  # type: ignore[arg-type]
        with pytest.raises(IllegalStateError):
            await consumer.subscribe(["t"])  # uses assign()
        with pytest.raises(IllegalStateError):
            await consumer.commit()  # no group
        consumer.seek(TP("t", 0), 100)  # beyond the end, with auto_offset_reset="error"
        with pytest.raises(OffsetOutOfRangeError):
            await consumer.getmany()
        await consumer.close()

    run(main)


def test_deserialization_error_names_the_record_and_seek_skips_it(t2: eventlog.Log) -> None:
    t2.append_batch("t", [NewRecord(v, partition=0) for v in (b"1", b"{bad", b"3")])

    async def main() -> None:
        async with AsyncConsumer(
            t2, "t", value_deserializer=eventlog.serde.json, auto_offset_reset="earliest"
        ) as consumer:
            assert [r.value for r in flat(await consumer.getmany(timeout_ms=1000))] == [1]
            with pytest.raises(DeserializationError) as caught:
                await consumer.getmany(timeout_ms=1000)
            assert (caught.value.partition, caught.value.offset) == (0, 1)
            consumer.seek(TP("t", 0), 2)
            assert [r.value for r in flat(await consumer.getmany(timeout_ms=1000))] == [3]

    run(main)


# --- cancellation ------------------------------------------------------------------------


def blocking_deserializer(
    gate: threading.Event, inside: threading.Event, at: bytes
) -> Callable[[bytes], Any]:
    def deserialize(data: bytes) -> Any:
        if data == at:
            inside.set()
            gate.wait(10)
        return json.loads(data)

    return deserialize


def test_cancelled_while_polling_loses_no_record(t2: eventlog.Log) -> None:
    """The task is cancelled while its poll runs in the consumer's thread: the records
    that poll returns afterwards are fetched again by the next call."""
    fill(t2, "t", 0, 5)
    gate, inside = threading.Event(), threading.Event()

    async def main() -> None:
        async with AsyncConsumer(
            t2,
            "t",
            group="g",
            auto_offset_reset="earliest",
            value_deserializer=blocking_deserializer(gate, inside, b"2"),
        ) as consumer:
            fetch = asyncio.create_task(consumer.getmany(timeout_ms=10_000))
            await wait_until(inside.is_set, "the poll to reach offset 2")
            fetch.cancel()
            with pytest.raises(asyncio.CancelledError):
                await fetch
            gate.set()
            await consumer.commit()
            assert await consumer.committed(TP("t", 0)) == 0  # nothing handed out
            assert [r.value for r in await drain(consumer, 5)] == [0, 1, 2, 3, 4]

    run(main)


def test_cancelled_just_after_the_poll_finished_loses_no_record(
    t2: eventlog.Log, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The poll has returned and handed its records over, but the task is cancelled
    before it resumes: the records are given back."""
    fill(t2, "t", 0, 5)
    gate, inside, finished = threading.Event(), threading.Event(), threading.Event()
    run_job = _aio_consumer._Job.run

    def run_and_signal(self: Any, consumer: eventlog.Consumer) -> Any:
        try:
            return run_job(self, consumer)
        finally:
            if self.polls:
                finished.set()

    monkeypatch.setattr(_aio_consumer._Job, "run", run_and_signal)

    async def main() -> None:
        async with AsyncConsumer(
            t2,
            "t",
            group="g",
            auto_offset_reset="earliest",
            value_deserializer=blocking_deserializer(gate, inside, b"4"),
        ) as consumer:
            fetch = asyncio.create_task(consumer.getmany(timeout_ms=10_000))
            await wait_until(inside.is_set, "the poll to reach offset 4")
            gate.set()
            # Block the loop on purpose until the poll has handed its records over, so
            # that the cancellation reaches the task before it can take them.
            assert finished.wait(10)
            fetch.cancel()
            with pytest.raises(asyncio.CancelledError):
                await fetch
            await consumer.commit()
            assert await consumer.committed(TP("t", 0)) == 0  # nothing handed out
            assert [r.value for r in await drain(consumer, 5)] == [0, 1, 2, 3, 4]

    run(main)


def test_cancelled_waits_end_promptly_and_the_consumer_stays_usable(t2: eventlog.Log) -> None:
    async def main() -> None:
        async with AsyncConsumer(t2, "t", auto_offset_reset="earliest") as consumer:
            for _ in range(3):
                with pytest.raises(asyncio.TimeoutError):
                    await asyncio.wait_for(consumer.getmany(timeout_ms=60_000), 0.02)
                with pytest.raises(asyncio.TimeoutError):
                    await asyncio.wait_for(consumer.getone(), 0.02)
            fill(t2, "t", 1, 2)
            assert offsets(await drain(consumer, 2)) == [(1, 0), (1, 1)]

    run(main)


# --- the event loop is never blocked ------------------------------------------------------


async def busy_loop_scenario(log: eventlog.Log, topic: str, count: int) -> tuple[float, float]:
    """A consumer waits 0.5 s for records on a quiet topic while another reads ``count``
    records that a producer sends meanwhile. Returns (the longest gap seen by a task
    ticking every 5 ms, how long the waiting consumer waited)."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    max_gap = 0.0

    async def probe() -> None:
        nonlocal max_gap
        last = loop.time()
        while not stop.is_set():
            await asyncio.sleep(0.005)
            now = loop.time()
            max_gap = max(max_gap, now - last)
            last = now

    async def produce() -> None:
        async with AsyncProducer(log, value_serializer=eventlog.serde.json) as producer:
            futures = []
            for i in range(count):
                futures.append(await producer.send(topic, {"i": i}, key=b"%d" % (i % 10)))
                if i % 20 == 19:
                    await asyncio.sleep(0)  # the application's own loop gives way
            assert [(await f).topic for f in futures] == [topic] * count
            await producer.flush()

    async def read_busy() -> None:
        async with AsyncConsumer(
            log,
            topic,
            group="readers",
            value_deserializer=eventlog.serde.json,
            auto_offset_reset="earliest",
            idle_timeout=1.0,
        ) as consumer:
            values = []
            async for record in consumer:
                values.append(record.value["i"])
                if len(values) % 100 == 0:
                    await consumer.commit()
            assert sorted(values) == list(range(count))

    async def wait_quiet() -> float:
        async with AsyncConsumer(log, "quiet", auto_offset_reset="latest") as consumer:
            started = loop.time()
            assert await consumer.getmany(timeout_ms=500) == {}
            return loop.time() - started

    probing = asyncio.create_task(probe())
    waited, _, _ = await asyncio.gather(wait_quiet(), read_busy(), produce())
    stop.set()
    await probing
    return max_gap, waited


def test_the_event_loop_is_never_blocked(log: eventlog.Log) -> None:
    """Blocking on the consumer's wait alone would hold the loop up for 0.5 s."""
    log.create_topic("quiet")
    log.create_topic("busy", partitions=3)
    max_gap, waited = run(lambda: busy_loop_scenario(log, "busy", 3000))
    assert waited >= 0.5
    # A liveness bound, not a benchmark: a poll made on the loop would hold it for the
    # whole 0.5 s wait; 2 s leaves room for a loaded machine.
    assert max_gap < 2.0, f"the event loop was blocked for {max_gap:.3f} s"


def test_blocking_calls_never_run_on_the_event_loop_thread(
    log: eventlog.Log, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The deterministic form of "never blocks the loop": every call that waits for
    records or touches the disk (poll, commit, the producer's flush and writes) runs in
    another thread than the loop's."""
    log.create_topic("quiet")
    log.create_topic("busy", partitions=3)
    threads: dict[str, set[int]] = {}

    def spy(cls: type, name: str) -> None:
        original = getattr(cls, name)

        def wrapper(self: object, *args: object, **kwargs: object) -> object:
            threads.setdefault(name, set()).add(threading.get_ident())
            return original(self, *args, **kwargs)

        monkeypatch.setattr(cls, name, wrapper)

    for name in ("poll", "commit", "close"):
        spy(eventlog.Consumer, name)
    for name in ("flush", "close"):
        spy(eventlog.Producer, name)
    spy(eventlog.Log, "append_batch")
    loop_thread: list[int] = []

    async def main() -> tuple[float, float]:
        loop_thread.append(threading.get_ident())
        return await busy_loop_scenario(log, "busy", 300)

    _, waited = run(main, debug=True)
    assert waited >= 0.5
    assert {"poll", "commit", "flush", "append_batch"} <= set(threads)
    for name, idents in threads.items():
        assert loop_thread[0] not in idents, f"{name}() ran on the event loop's thread"
