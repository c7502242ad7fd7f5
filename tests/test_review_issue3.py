"""Regression tests from the review of the issue-3 change set (consumer groups).

Each test reproduces one finding of the review; the findings are described in the review
report. Some races are made deterministic by holding one thread inside ``Log._write``
(the write path every group transaction takes) while the other thread acts.
"""

from __future__ import annotations

import datetime
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import eventlog
from eventlog import TopicPartition

TP0 = TopicPartition("t", 0)


def _hold_writes(log: eventlog.Log, what: str, thread_prefix: str) -> tuple[Any, Any]:
    """Make writes whose description starts with ``what``, made by a thread whose name
    starts with ``thread_prefix``, wait for ``gate``; ``entered`` is set when one does."""
    gate, entered = threading.Event(), threading.Event()
    real = log._write

    def write(fn: Any, description: str) -> Any:
        if description.startswith(what) and threading.current_thread().name.startswith(
            thread_prefix
        ):
            entered.set()
            gate.wait(10)
        return real(fn, description)

    log._write = write  # type: ignore[method-assign,assignment]
    return gate, entered


@pytest.fixture
def slog(tmp_path: Path) -> Iterator[eventlog.Log]:
    handle = eventlog.open(tmp_path / "log", durability="off")
    try:
        yield handle
    finally:
        handle.close()


# ---------------------------------------------------------------- static membership


CHILD = """
import sys, time, eventlog
log = eventlog.open(sys.argv[1], durability="off")
c = log.consumer("t", group="g", group_instance_id="static-1", session_timeout_ms=30000,
                 heartbeat_interval_ms=50)
end = time.monotonic() + 20
while len(c.assignment()) < 2 and time.monotonic() < end:
    c.poll(0.02)
print(len(c.assignment()), flush=True)
c.close()
log.close()
"""


def test_static_member_keeps_its_place_after_its_process_exits(slog: eventlog.Log) -> None:
    """docs: a static member's close() keeps its place until the session timeout, so that
    a restart (a new process with the same instance id) causes no rebalance. The process
    check of the other members must not remove it as soon as its process has exited."""
    slog.create_topic("t", partitions=4)
    b = slog.consumer("t", group="g", session_timeout_ms=30000, heartbeat_interval_ms=50)
    b.poll(0.02)
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(CHILD), str(slog.path)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        # B keeps polling while the static member joins, takes its half, closes, exits.
        while proc.poll() is None:
            b.poll(0.02)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert out.strip() == "2"
    generation = slog.describe_group("g").generation
    # Many heartbeats of B, far less than the 30 s session timeout.
    end = time.monotonic() + 0.5
    while time.monotonic() < end:
        b.poll(0.02)
    d = slog.describe_group("g")
    assert [m.instance_id for m in d.members if m.instance_id] == ["static-1"]
    assert d.generation == generation
    assert len(b.assignment()) == 2
    b.close()


# ---------------------------------------------------------------- two readers at once


def test_iteration_stops_handing_out_records_of_partitions_it_lost(
    slog: eventlog.Log,
) -> None:
    """A member removed for exceeding max_poll_interval_ms must not go on handing out
    records (fetched for iteration) of partitions the group gave to another member."""
    slog.create_topic("t", partitions=1)
    for i in range(20):
        slog.append("t", b"%d" % i, partition=0)
    a = slog.consumer(
        "t",
        group="g",
        auto_offset_reset="earliest",
        max_poll_interval_ms=200,
        heartbeat_interval_ms=20,
        session_timeout_ms=10000,
        max_poll_records=20,
        idle_timeout=0.2,
    )
    b = slog.consumer("t", group="g", auto_offset_reset="earliest", heartbeat_interval_ms=20)
    it = iter(a)
    assert next(it).offset == 0  # the other 19 wait in the iteration buffer
    time.sleep(0.4)  # slow processing: A is removed from the group meanwhile
    got_b: list[int] = []
    end = time.monotonic() + 10
    while len(got_b) < 20 and time.monotonic() < end:
        got_b += [r.offset for r in b.poll(0.02)]
    assert got_b == list(range(20))  # B owns the partition and read it from the start
    handed_after = [r.offset for r in it if (r.topic, r.partition) == TP0]
    assert handed_after == [], "records of a partition owned by B were handed out by A"
    a.close()
    b.close()


def test_poll_returns_no_records_of_a_partition_lost_during_the_listener(
    slog: eventlog.Log,
) -> None:
    """on_partitions_assigned takes longer than max_poll_interval_ms: the member is
    removed meanwhile and another member takes (and reads) the partition. The poll that
    ran the listener must not then return that partition's records."""
    slog.create_topic("t", partitions=1)
    for i in range(5):
        slog.append("t", b"%d" % i, partition=0)
    stop = threading.Event()
    b_read: list[int] = []

    def run_b() -> None:
        b = slog.consumer("t", group="g", auto_offset_reset="earliest", heartbeat_interval_ms=20)
        try:
            while not stop.is_set():
                b_read.extend(r.offset for r in b.poll(0.02))
        finally:
            b.close()

    thread = threading.Thread(target=run_b)

    class Slow(eventlog.RebalanceListener):
        def on_partitions_assigned(self, partitions: set[TopicPartition]) -> None:
            if partitions and not thread.is_alive():
                thread.start()
                time.sleep(0.8)

    a = slog.consumer(
        "t",
        group="g",
        auto_offset_reset="earliest",
        listener=Slow(),
        max_poll_interval_ms=200,
        heartbeat_interval_ms=20,
        session_timeout_ms=10000,
    )
    try:
        records = a.poll(0.1)
        owner = slog.describe_group("g").offsets[TP0].owner
        b_had = list(b_read)
    finally:
        stop.set()
        thread.join(10)
        a.close()
    assert not records or owner == a.member_id, (
        f"poll() returned {[r.offset for r in records]} of a partition owned by {owner}, "
        f"which had read {b_had}"
    )


# ---------------------------------------------------------------- heartbeat thread races


def test_heartbeats_resume_when_the_rejoin_races_the_overdue_removal(
    slog: eventlog.Log,
) -> None:
    """The heartbeat thread removes a member that stopped polling and exits; if the
    application polls (rejoins) while that removal is still being written, the new
    member must still get a heartbeat thread."""
    slog.create_topic("t", partitions=1)
    c = slog.consumer(
        "t", group="g", max_poll_interval_ms=200, heartbeat_interval_ms=50, session_timeout_ms=5000
    )
    c.poll(0.05)
    gate, entered = _hold_writes(slog, "leaving", "eventlog-heartbeat")
    assert entered.wait(5)  # no poll for 200 ms: the heartbeat thread is removing us
    releaser = threading.Timer(0.3, gate.set)
    releaser.start()
    c.poll(0)  # rejoins while the removal waits
    releaser.join()

    def lease() -> int:
        (member,) = slog.describe_group("g").members
        assert member.member_id == c.member_id
        return member.lease_expires_ms

    c.poll(0.1)
    before = lease()
    c.poll(0.1)
    end = time.monotonic() + 0.5  # ten heartbeat intervals, polling often enough
    while time.monotonic() < end:
        c.poll(0.02)
    after = lease()
    c.close()
    assert after > before, "the rejoined member's lease is not renewed"


def test_a_stale_heartbeat_does_not_mark_the_new_membership_lost(
    slog: eventlog.Log,
) -> None:
    """A heartbeat that started for the old member id and ends after the consumer rejoined
    under a new id must not make the consumer rejoin once more (one more rebalance)."""
    slog.create_topic("t", partitions=2)
    c = slog.consumer("t", group="g", heartbeat_interval_ms=100_000, session_timeout_ms=300_000)
    c.poll(0.05)
    membership = c._membership
    assert membership is not None
    gate, entered = _hold_writes(slog, "heartbeat", "stale-hb")
    beat = threading.Thread(target=membership.heartbeat, name="stale-hb")
    beat.start()
    assert entered.wait(5)
    membership.forget()  # what Consumer._rejoin does, in the consumer's thread
    membership.join(c._resolved)
    new_id = membership.member_id
    gate.set()
    beat.join(5)
    generation = slog.describe_group("g").generation
    c.poll(0.05)
    assert c.member_id == new_id
    assert slog.describe_group("g").generation == generation
    c.close()


# ---------------------------------------------------------------- topics re-created


def test_a_recreated_topic_starts_fresh_for_a_group_consumer(slog: eventlog.Log) -> None:
    """docs: "a topic re-created under the same name starts with none" (no committed
    offsets). A consumer's in-memory position of the deleted topic must not be applied to
    (nor committed for) the new topic: its first records would be skipped."""
    slog.create_topic("a", partitions=1)
    for i in range(5):
        slog.append("a", b"old%d" % i)
    c = slog.consumer("a", group="g", auto_offset_reset="earliest", auto_commit_interval_ms=0)
    got: list[bytes | None] = []
    end = time.monotonic() + 10
    while len(got) < 5 and time.monotonic() < end:
        got += [r.value for r in c.poll(0.05)]
    assert got == [b"old%d" % i for i in range(5)]
    slog.delete_topic("a")
    slog.create_topic("a", partitions=1)
    for i in range(8):
        slog.append("a", b"new%d" % i)
    got = []
    end = time.monotonic() + 2
    while len(got) < 8 and time.monotonic() < end:
        got += [r.value for r in c.poll(0.05)]
    c.close()
    assert got == [b"new%d" % i for i in range(8)]


# ---------------------------------------------------------------- group documents


def test_a_group_without_members_or_offsets_does_not_exist(slog: eventlog.Log) -> None:
    """docs: list_groups() lists groups "with live members or committed offsets";
    describe_group() raises GroupNotFoundError for a group with neither. Throwaway group
    names must not leave a document behind forever."""
    slog.create_topic("t")
    c = slog.consumer("t", group="throwaway", enable_auto_commit=False)
    c.poll(0.05)
    c.close()
    assert slog.committed_offsets("throwaway") == {}
    assert slog.list_groups() == []
    with pytest.raises(eventlog.GroupNotFoundError):
        slog.describe_group("throwaway")


# ---------------------------------------------------------------- bad input


BAD_CALLS: dict[str, Callable[[eventlog.Log], object]] = {
    "subscribe(123)": lambda log: log.consumer().subscribe(123),  # type: ignore[arg-type]
    "subscribe(None)": lambda log: log.consumer().subscribe(None),  # type: ignore[arg-type]
    "subscribe([['t']])": lambda log: log.consumer().subscribe([["t"]]),  # type: ignore[list-item]
    "assign(123)": lambda log: log.consumer().assign(123),  # type: ignore[arg-type]
    "assign(None)": lambda log: log.consumer().assign(None),  # type: ignore[arg-type]
    "listener=5": lambda log: log.consumer("t", group="g", listener=5).poll(0.05),
    "reset_offsets(partitions=5)": lambda log: log.reset_offsets(
        "g",
        "t",
        shift=1,
        partitions=5,  # type: ignore[arg-type]
    ),
}


@pytest.mark.parametrize("call", list(BAD_CALLS.values()), ids=list(BAD_CALLS))
def test_bad_arguments_raise_eventlog_errors(
    slog: eventlog.Log, call: Callable[[eventlog.Log], object]
) -> None:
    slog.create_topic("t", partitions=2)
    with pytest.raises(eventlog.InvalidArgumentError):
        call(slog)


def test_reset_offsets_to_a_datetime_before_the_epoch(slog: eventlog.Log) -> None:
    """A datetime in year 1 is a valid datetime: it resets to the beginning (or is
    refused with InvalidArgumentError), not a raw ValueError from datetime."""
    slog.create_topic("t", partitions=2)
    slog.append("t", b"x", partition=0)
    try:
        result = slog.reset_offsets("g", "t", to=datetime.datetime(1, 1, 1))
    except eventlog.InvalidArgumentError:
        return
    assert result == {TP0: 0, TopicPartition("t", 1): 0}


def test_consumer_given_a_list_of_topics(slog: eventlog.Log) -> None:
    """log.consumer(["t"]) (the Kafka habit of passing a list) either subscribes to "t"
    or says what is wrong: not a raw "unhashable type" TypeError."""
    slog.create_topic("t")
    try:
        c = slog.consumer(["t"])  # type: ignore[arg-type]
    except eventlog.InvalidArgumentError:
        return
    assert c.subscription() == {"t"}
    c.close()


def test_group_name_longer_than_a_key_allows(slog: eventlog.Log) -> None:
    """249 characters are allowed, but 249 four-byte characters do not fit in an LMDB
    key: refuse such a name up front (InvalidArgumentError), not with a StorageError."""
    slog.create_topic("t")
    name = "\U0001d11e" * 249
    try:
        c = slog.consumer("t", group=name)
    except eventlog.InvalidArgumentError:
        return
    c.poll(0.05)
    c.commit({TP0: 0})
    c.close()


def test_async_consumer_stops_handing_out_records_of_partitions_it_lost(
    slog: eventlog.Log,
) -> None:
    """The same for AsyncConsumer.getone(): records it fetched and buffered must not be
    handed out once the member was removed and another member owns the partition."""
    import asyncio

    from eventlog.aio import AsyncConsumer

    slog.create_topic("t", partitions=1)
    for i in range(20):
        slog.append("t", b"%d" % i, partition=0)

    async def main() -> tuple[list[int], list[int]]:
        a = AsyncConsumer(
            slog,
            "t",
            group="g",
            auto_offset_reset="earliest",
            max_poll_interval_ms=200,
            heartbeat_interval_ms=20,
            session_timeout_ms=10000,
        )
        await a.start()
        assert (await a.getone()).offset == 0  # the other 19 wait in a's buffer
        await asyncio.sleep(0.4)  # slow processing: a is removed meanwhile
        b = slog.consumer("t", group="g", auto_offset_reset="earliest", heartbeat_interval_ms=20)
        got_b: list[int] = []
        end = time.monotonic() + 10
        while len(got_b) < 20 and time.monotonic() < end:
            got_b += [r.offset for r in b.poll(0.02)]
        handed: list[int] = []
        try:
            while True:  # a rejoins and gets nothing (b keeps the partition)
                record = await asyncio.wait_for(a.getone(), 0.5)
                handed.append(record.offset)
        except asyncio.TimeoutError:
            pass
        await a.close()
        b.close()
        return got_b, handed

    got_b, handed = asyncio.run(main())
    assert got_b == list(range(20))
    assert handed == [], "records of a partition owned by b were handed out by a"
