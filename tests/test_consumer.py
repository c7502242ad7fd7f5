"""The Consumer without a group: subscriptions, assignment, poll, iteration, positions,
offset resets, pause/resume, lag, deserializers, closing, and its bad-input matrix.

Group behaviour is in test_consumer_groups.py, group administration in test_group_admin.py.
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import eventlog
from eventlog import NewRecord, Record, TopicPartition
from eventlog._errors import (
    ClientClosedError,
    DeserializationError,
    IllegalStateError,
    InvalidArgumentError,
    LogClosedError,
    NoOffsetForPartitionError,
    OffsetOutOfRangeError,
    PartitionNotFoundError,
    TopicNotFoundError,
)

TP = TopicPartition


# --- helpers ---------------------------------------------------------------------------


def fill(
    log: eventlog.Log,
    topic: str,
    partition: int,
    count: int,
    *,
    first_ts: int | None = None,
    prefix: bytes = b"v",
) -> None:
    """Append ``count`` records ``prefix + n`` (n = their offset if the partition was empty)."""
    start = log.end_offsets(topic)[partition]
    log.append_batch(
        topic,
        [
            NewRecord(
                prefix + b"%d" % (start + i),
                partition=partition,
                timestamp=None if first_ts is None else first_ts + i,
            )
            for i in range(count)
        ],
    )


def drain(consumer: eventlog.Consumer, *, max_polls: int = 1000) -> list[Record]:
    """Poll until a poll returns nothing."""
    out: list[Record] = []
    for _ in range(max_polls):
        got = consumer.poll(0)
        if not got:
            return out
        out.extend(got)
    raise AssertionError("the consumer never ran dry")


def poll_until(
    consumer: eventlog.Consumer, done: Callable[[list[Record]], bool], timeout: float = 10.0
) -> list[Record]:
    """Poll (accumulating records) until ``done(records)`` or ``timeout`` seconds pass."""
    out: list[Record] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out.extend(consumer.poll(0.05))
        if done(out):
            return out
    raise AssertionError(f"condition not reached; got {len(out)} records")


def by_partition(records: list[Record]) -> dict[tuple[str, int], list[int]]:
    out: dict[tuple[str, int], list[int]] = {}
    for r in records:
        out.setdefault((r.topic, r.partition), []).append(r.offset)
    return out


def set_log_start(log: eventlog.Log, topic: str, partition: int, start: int) -> None:
    """White box: move a partition's log start offset, as retention does, to reach the
    paths where a position falls below the stored range."""
    from eventlog._catalog import PartitionState, state_key

    topic_id = log.describe_topic(topic).topic_id
    db = log._storage.dbs[b"batches"]

    def move(txn: Any) -> None:
        key = state_key(topic_id, partition)
        state = PartitionState.unpack(txn.get(key, db=db))
        state.log_start = start
        txn.put(key, state.pack(), db=db)

    log._storage.write(move, "test: moving the log start")


@pytest.fixture
def two(log: eventlog.Log) -> eventlog.Log:
    """Topic "t" with 2 partitions: 5 records in each (values v0..v4)."""
    log.create_topic("t", 2)
    for p in range(2):
        fill(log, "t", p, 5)
    return log


@pytest.fixture
def consumers(log: eventlog.Log) -> Iterator[list[eventlog.Consumer]]:
    """Consumers appended here are closed after the test (even when it fails)."""
    made: list[eventlog.Consumer] = []
    yield made
    for c in made:
        if not log.closed:
            c.close()


# --- subscriptions ---------------------------------------------------------------------


def test_subscribe_one_topic_reads_every_partition(two: eventlog.Log) -> None:
    with two.consumer("t", auto_offset_reset="earliest") as c:
        assert c.subscription() == {"t"}
        assert c.assignment() == {TP("t", 0), TP("t", 1)}
        records = drain(c)
    assert by_partition(records) == {("t", 0): [0, 1, 2, 3, 4], ("t", 1): [0, 1, 2, 3, 4]}
    assert {r.value for r in records if r.partition == 0} == {b"v%d" % i for i in range(5)}
    assert all(isinstance(r, Record) and r.headers == () for r in records)


def test_subscribe_many_topics(log: eventlog.Log) -> None:
    for name, parts in (("a", 1), ("b", 3), ("c", 1)):
        log.create_topic(name, parts)
        for p in range(parts):
            fill(log, name, p, 2)
    with log.consumer("a", "b", auto_offset_reset="earliest") as c:
        assert c.subscription() == {"a", "b"}
        assert c.assignment() == {TP("a", 0), TP("b", 0), TP("b", 1), TP("b", 2)}
        got = by_partition(drain(c))
    assert got == {(t, p): [0, 1] for t, p in [("a", 0), ("b", 0), ("b", 1), ("b", 2)]}


def test_subscribe_replaces_the_previous_subscription(two: eventlog.Log) -> None:
    two.create_topic("u")
    fill(two, "u", 0, 1)
    with two.consumer("t", auto_offset_reset="earliest") as c:
        c.subscribe(["u"])
        assert c.subscription() == {"u"}
        assert c.assignment() == {TP("u", 0)}
        assert [(r.topic, r.offset) for r in drain(c)] == [("u", 0)]


def test_subscribe_accepts_a_single_topic_name_as_str(two: eventlog.Log) -> None:
    with two.consumer(auto_offset_reset="earliest") as c:
        c.subscribe("t")
        assert c.subscription() == {"t"}


def test_pattern_subscription_picks_up_a_topic_created_later(log: eventlog.Log) -> None:
    log.create_topic("events.a")
    log.create_topic("other")
    fill(log, "events.a", 0, 1)
    fill(log, "other", 0, 1)
    with log.consumer(pattern=r"events\..*", auto_offset_reset="earliest") as c:
        assert c.subscription() == {"events.a"}
        first = drain(c)
        assert [(r.topic, r.offset) for r in first] == [("events.a", 0)]
        log.create_topic("events.b", 2)
        log.create_topic("xevents.c")  # the pattern must match the whole name
        fill(log, "events.b", 1, 3)
        fill(log, "xevents.c", 0, 1)
        later = poll_until(c, lambda rs: len(rs) >= 3)
        assert by_partition(later) == {("events.b", 1): [0, 1, 2]}
        assert c.subscription() == {"events.a", "events.b"}
        assert TP("xevents.c", 0) not in c.assignment()
        assert drain(c) == []


def test_a_waiting_poll_picks_up_a_matching_topic_created_meanwhile(log: eventlog.Log) -> None:
    with log.consumer(pattern=r"late\..*", auto_offset_reset="earliest") as c:
        assert c.poll(0) == []

        def create() -> None:
            time.sleep(0.05)
            log.create_topic("late.one")
            log.append("late.one", b"hello")

        writer = threading.Thread(target=create)
        writer.start()
        try:
            got: list[Record] = []
            deadline = time.monotonic() + 10
            while not got and time.monotonic() < deadline:
                got = c.poll(10)  # one long poll is enough: it wakes on the new topic
        finally:
            writer.join()
        assert [(r.topic, r.value) for r in got] == [("late.one", b"hello")]


def test_pattern_subscription_accepts_a_compiled_pattern(log: eventlog.Log) -> None:
    log.create_topic("p1")
    log.create_topic("q1")
    with log.consumer(pattern=re.compile("p.")) as c:
        assert c.subscription() == {"p1"}


def test_pattern_subscription_drops_a_deleted_topic(log: eventlog.Log) -> None:
    log.create_topic("e.a")
    log.create_topic("e.b")
    fill(log, "e.b", 0, 1)
    with log.consumer(pattern=r"e\..", auto_offset_reset="earliest") as c:
        assert c.subscription() == {"e.a", "e.b"}
        c.poll(0)
        log.delete_topic("e.a")
        fill(log, "e.b", 0, 1)
        poll_until(c, lambda rs: c.subscription() == {"e.b"})
        assert c.assignment() == {TP("e.b", 0)}


def test_subscribed_topic_gaining_partitions_is_followed(two: eventlog.Log) -> None:
    with two.consumer("t", auto_offset_reset="earliest") as c:
        drain(c)
        two.create_partitions("t", 3)
        fill(two, "t", 2, 2)
        got = poll_until(c, lambda rs: len(rs) >= 2)
        assert by_partition(got) == {("t", 2): [0, 1]}
        assert TP("t", 2) in c.assignment()


def test_assign_reads_exactly_the_given_partitions(two: eventlog.Log) -> None:
    with two.consumer(auto_offset_reset="earliest") as c:
        assert c.assignment() == set()
        c.assign([TP("t", 1)])
        assert c.assignment() == {TP("t", 1)}
        assert c.subscription() == set()
        assert by_partition(drain(c)) == {("t", 1): [0, 1, 2, 3, 4]}
        c.assign([("t", 0)])  # a plain (topic, partition) tuple is accepted too
        assert c.assignment() == {TP("t", 0)}
        assert by_partition(drain(c)) == {("t", 0): [0, 1, 2, 3, 4]}


def test_assign_and_subscribe_exclude_each_other_until_unsubscribe(two: eventlog.Log) -> None:
    with two.consumer(auto_offset_reset="earliest") as c:
        c.assign([TP("t", 0)])
        with pytest.raises(IllegalStateError, match="unsubscribe"):
            c.subscribe(["t"])
        c.unsubscribe()
        assert c.assignment() == set()
        c.subscribe(["t"])
        with pytest.raises(IllegalStateError, match="unsubscribe"):
            c.assign([TP("t", 0)])
        c.unsubscribe()
        assert c.subscription() == set()
        assert c.assignment() == set()
        with pytest.raises(IllegalStateError, match="subscribe"):
            c.poll(0)


# --- poll ------------------------------------------------------------------------------


def test_poll_is_fair_across_a_busy_and_a_quiet_partition(log: eventlog.Log) -> None:
    log.create_topic("t", 2)
    log.append_columns("t", [b"x"] * 10_000, partition=0)
    fill(log, "t", 1, 10)
    with log.consumer("t", auto_offset_reset="earliest") as c:
        first = c.poll(0, max_records=100)
        assert len(first) == 100
        parts = by_partition(first)
        assert set(parts) == {("t", 0), ("t", 1)}
        assert parts[("t", 1)] == list(range(10))  # the quiet partition is not starved
        rest = drain(c)
    every = by_partition(first + rest)
    assert every[("t", 0)] == list(range(10_000))  # in order, nothing lost or repeated
    assert every[("t", 1)] == list(range(10))


def test_poll_rotates_between_equally_busy_partitions(log: eventlog.Log) -> None:
    log.create_topic("t", 4)
    for p in range(4):
        log.append_columns("t", [b"x"] * 1000, partition=p)
    with log.consumer("t", auto_offset_reset="earliest") as c:
        for _ in range(5):
            got = c.poll(0, max_records=40)
            assert len(got) == 40
            counts = {p: len(o) for (_t, p), o in by_partition(got).items()}
            assert set(counts) == {0, 1, 2, 3}
            assert max(counts.values()) - min(counts.values()) <= 1


def test_poll_max_records_and_max_poll_records(two: eventlog.Log) -> None:
    with two.consumer("t", auto_offset_reset="earliest", max_poll_records=3) as c:
        assert len(c.poll(0)) == 3  # the default comes from max_poll_records
        assert len(c.poll(0, max_records=1)) == 1
        assert len(c.poll(0, max_records=100)) == 6  # only 6 remain
        assert c.poll(0) == []


def test_poll_on_nothing_returns_an_empty_list_after_its_timeout(two: eventlog.Log) -> None:
    with two.consumer("t") as c:  # latest: nothing to read
        assert c.poll(0.2) == []
        assert c.poll() == []  # default timeout 0


def test_poll_wakes_for_a_record_appended_by_another_thread(two: eventlog.Log) -> None:
    with two.consumer("t") as c:
        assert c.poll(0) == []  # positions are now at the end

        def later() -> None:
            time.sleep(0.05)
            two.append("t", b"late", partition=1)

        writer = threading.Thread(target=later)
        writer.start()
        try:
            got = c.poll(30)  # returns as soon as the record arrives
        finally:
            writer.join()
    assert [(r.partition, r.offset, r.value) for r in got] == [(1, 5, b"late")]


def test_poll_with_timeout_none_waits_for_a_record(two: eventlog.Log) -> None:
    with two.consumer("t") as c:
        c.poll(0)
        writer = threading.Timer(0.05, lambda: two.append("t", b"x", partition=0))
        writer.start()
        try:
            got = c.poll(None)
        finally:
            writer.join()
    assert [r.value for r in got] == [b"x"]


def test_poll_returns_records_in_offset_order_per_partition(log: eventlog.Log) -> None:
    log.create_topic("t", 3)
    for round_ in range(4):
        for p in range(3):
            fill(log, "t", p, 7 + round_)
    with log.consumer("t", auto_offset_reset="earliest") as c:
        records: list[Record] = []
        while got := c.poll(0, max_records=11):
            records.extend(got)
    for offsets in by_partition(records).values():
        assert offsets == list(range(len(offsets)))
    assert len(records) == 3 * (7 + 8 + 9 + 10)


# --- iteration -------------------------------------------------------------------------


def test_iteration_ends_after_idle_timeout(two: eventlog.Log) -> None:
    with two.consumer("t", auto_offset_reset="earliest", idle_timeout=0.1) as c:
        records = list(c)
    assert sorted((r.partition, r.offset) for r in records) == [
        (p, o) for p in range(2) for o in range(5)
    ]


def test_iteration_on_an_empty_topic_ends_after_idle_timeout(two: eventlog.Log) -> None:
    with two.consumer("t", idle_timeout=0.05) as c:
        assert list(c) == []


def test_iteration_advances_the_position_record_by_record(log: eventlog.Log) -> None:
    log.create_topic("t")
    fill(log, "t", 0, 10)
    tp = TP("t", 0)
    with log.consumer("t", auto_offset_reset="earliest", idle_timeout=0.05) as c:
        it = iter(c)
        first = next(it)
        assert first.offset == 0
        assert c.position(tp) == 1  # not 10, although poll fetched all ten
        assert c.lag() == {tp: 9}
        second = next(it)
        assert (second.offset, c.position(tp)) == (1, 2)
        # A seek drops what was fetched but not handed out yet.
        c.seek(tp, 7)
        assert [r.offset for r in it] == [7, 8, 9]
        assert c.position(tp) == 10


def test_iteration_waits_for_new_records(two: eventlog.Log) -> None:
    with two.consumer("t", idle_timeout=10) as c:
        c.poll(0)
        writer = threading.Timer(0.05, lambda: two.append("t", b"new", partition=0))
        writer.start()
        try:
            record = next(iter(c))
        finally:
            writer.join()
    assert (record.value, record.offset) == (b"new", 5)


def test_iteration_and_poll_mix_without_loss_or_duplicates(log: eventlog.Log) -> None:
    log.create_topic("t")
    fill(log, "t", 0, 20)
    with log.consumer("t", auto_offset_reset="earliest", idle_timeout=0.05) as c:
        it = iter(c)
        seen = [next(it).offset for _ in range(3)]
        seen += [r.offset for r in c.poll(0, max_records=5)]
        seen += [r.offset for r in it]
    assert seen == list(range(20))


def test_changing_the_assignment_drops_records_buffered_by_iteration(log: eventlog.Log) -> None:
    log.create_topic("t")
    log.create_topic("u")
    fill(log, "t", 0, 5)
    fill(log, "u", 0, 5)
    with log.consumer("t", auto_offset_reset="earliest", idle_timeout=0.05) as c:
        it = iter(c)
        assert next(it).value == b"v0"
        c.subscribe(["u"])
        rest = list(it)
        assert [(r.topic, r.offset) for r in rest] == [("u", o) for o in range(5)]
        with pytest.raises(IllegalStateError):
            c.position(TP("t", 0))


def test_iteration_ends_when_the_consumer_is_closed_from_another_thread(
    two: eventlog.Log,
) -> None:
    c = two.consumer("t")  # at the end: iteration would wait forever
    out: list[object] = []

    def run() -> None:
        try:
            out.append(list(c))
        except Exception as exc:  # reported below
            out.append(exc)

    reader = threading.Thread(target=run)
    reader.start()
    time.sleep(0.05)
    c.close()
    reader.join(10)
    assert not reader.is_alive()
    assert out == [[]]


def test_poll_without_timeout_returns_when_closed_from_another_thread(
    two: eventlog.Log,
) -> None:
    c = two.consumer("t")
    out: list[object] = []

    def run() -> None:
        try:
            out.append(c.poll(None))
        except Exception as exc:
            out.append(exc)

    reader = threading.Thread(target=run)
    reader.start()
    time.sleep(0.05)
    c.close()
    reader.join(10)
    assert not reader.is_alive()
    assert len(out) == 1
    assert out[0] == [] or isinstance(out[0], ClientClosedError)
    assert c.closed


# --- positions and seeks ---------------------------------------------------------------


def test_position_reflects_auto_offset_reset_before_any_poll(two: eventlog.Log) -> None:
    set_log_start(two, "t", 0, 2)
    with two.consumer("t", auto_offset_reset="earliest") as c:
        assert c.position(TP("t", 0)) == 2
        assert c.position(TP("t", 1)) == 0
    with two.consumer("t", auto_offset_reset="latest") as c:
        assert c.position(TP("t", 0)) == 5


def test_seek_takes_effect_at_the_next_poll(two: eventlog.Log) -> None:
    tp = TP("t", 0)
    with two.consumer(auto_offset_reset="earliest") as c:
        c.assign([tp])
        c.seek(tp, 3)
        assert c.position(tp) == 3
        assert [r.offset for r in c.poll(0)] == [3, 4]
        assert c.position(tp) == 5
        c.seek(tp, 1)  # backwards
        assert [r.offset for r in c.poll(0)] == [1, 2, 3, 4]
        c.seek(tp, 5)  # exactly the end is a valid position
        assert c.poll(0) == []
        assert c.position(tp) == 5


def test_seek_to_beginning_and_end(two: eventlog.Log) -> None:
    with two.consumer("t", auto_offset_reset="earliest") as c:
        drain(c)
        c.seek_to_beginning(TP("t", 1))
        assert by_partition(drain(c)) == {("t", 1): [0, 1, 2, 3, 4]}
        c.seek_to_beginning()  # all assigned partitions
        assert c.position(TP("t", 0)) == 0
        assert len(drain(c)) == 10
        set_log_start(two, "t", 0, 3)
        c.seek_to_beginning(TP("t", 0))
        assert c.position(TP("t", 0)) == 3  # the log start, not 0
        c.seek_to_beginning()
        c.seek_to_end(TP("t", 0))
        assert c.position(TP("t", 0)) == 5
        assert by_partition(drain(c)) == {("t", 1): [0, 1, 2, 3, 4]}
        c.seek_to_beginning()
        c.seek_to_end()
        assert c.position(TP("t", 0)) == 5  # resolves the (lazy) seek now
        assert c.position(TP("t", 1)) == 5
        two.append("t", b"after", partition=0)
        assert [(r.partition, r.offset) for r in drain(c)] == [(0, 5)]


def test_seek_to_end_is_the_end_at_seek_or_later_time(two: eventlog.Log) -> None:
    tp = TP("t", 0)
    with two.consumer(auto_offset_reset="earliest") as c:
        c.assign([tp])
        c.seek_to_end(tp)
        assert c.position(tp) == 5
        two.append("t", b"new", partition=0)
        assert [r.offset for r in c.poll(0)] == [5]


def test_seek_to_timestamp(log: eventlog.Log) -> None:
    log.create_topic("t", 2, retention_ms=-1)  # keep the 1970 timestamps
    fill(log, "t", 0, 5, first_ts=1000)  # timestamps 1000..1004
    fill(log, "t", 1, 5, first_ts=2000)  # timestamps 2000..2004
    with log.consumer("t", auto_offset_reset="earliest") as c:
        c.seek_to_timestamp(1003)
        assert c.position(TP("t", 0)) == 3
        assert c.position(TP("t", 1)) == 0
        c.seek_to_timestamp(2002, TP("t", 1))
        assert c.position(TP("t", 1)) == 2
        assert c.position(TP("t", 0)) == 3  # untouched
        got = by_partition(drain(c))
        assert got == {("t", 0): [3, 4], ("t", 1): [2, 3, 4]}
        c.seek_to_timestamp(5000)  # no record that late: the end
        assert c.position(TP("t", 0)) == 5
        assert c.position(TP("t", 1)) == 5
        c.seek_to_timestamp(0)
        assert c.position(TP("t", 0)) == 0


# --- auto_offset_reset -----------------------------------------------------------------


def test_auto_offset_reset_earliest_and_latest_without_a_group(two: eventlog.Log) -> None:
    with two.consumer("t", auto_offset_reset="earliest") as c:
        assert len(drain(c)) == 10
    with two.consumer("t") as c:  # latest is the default, as in Kafka
        assert c.poll(0) == []
        two.append("t", b"new", partition=1)
        assert [(r.partition, r.offset) for r in drain(c)] == [(1, 5)]


def test_auto_offset_reset_error_without_a_committed_offset(two: eventlog.Log) -> None:
    with two.consumer("t", auto_offset_reset="error") as c:
        with pytest.raises(NoOffsetForPartitionError) as info:
            c.poll(0)
        assert isinstance(info.value, LookupError)
        assert info.value.topic == "t"
        assert info.value.partition in (0, 1)
        assert "auto_offset_reset" in str(info.value)
        with pytest.raises(NoOffsetForPartitionError):
            c.position(TP("t", 0))
        # Choosing positions explicitly is the way out.
        c.seek(TP("t", 0), 1)
        c.seek(TP("t", 1), 4)
        assert by_partition(drain(c)) == {("t", 0): [1, 2, 3, 4], ("t", 1): [4]}


@pytest.mark.parametrize(("policy", "expected"), [("earliest", [0, 1, 2, 3, 4]), ("latest", [])])
def test_seek_beyond_the_end_resets_by_policy(
    two: eventlog.Log, policy: str, expected: list[int]
) -> None:
    tp = TP("t", 0)
    with two.consumer(auto_offset_reset=policy) as c:
        c.assign([tp])
        c.seek(tp, 100)
        assert [r.offset for r in c.poll(0)] == expected
        assert c.position(tp) == 5
        two.append("t", b"next", partition=0)
        assert [r.offset for r in c.poll(0)] == [5]


def test_seek_beyond_the_end_with_reset_error_raises_offset_out_of_range(
    two: eventlog.Log,
) -> None:
    tp = TP("t", 0)
    with two.consumer(auto_offset_reset="error") as c:
        c.assign([tp])
        c.seek(tp, 6)
        with pytest.raises(OffsetOutOfRangeError) as info:
            c.poll(0)
        err = info.value
        assert isinstance(err, IndexError)
        assert (err.topic, err.partition, err.offset) == ("t", 0, 6)
        assert "0..5" in str(err)
        with pytest.raises(OffsetOutOfRangeError):  # again: nothing was skipped
            c.poll(0)
        c.seek(tp, 4)
        assert [r.offset for r in c.poll(0)] == [4]


@pytest.mark.parametrize(("policy", "expected"), [("earliest", [3, 4]), ("latest", [])])
def test_position_below_the_log_start_resets_by_policy(
    two: eventlog.Log, policy: str, expected: list[int]
) -> None:
    tp = TP("t", 0)
    with two.consumer(auto_offset_reset=policy) as c:
        c.assign([tp])
        c.seek(tp, 1)
        set_log_start(two, "t", 0, 3)  # retention removed offsets 0..2
        assert [r.offset for r in c.poll(0)] == expected
        assert c.position(tp) == 5


def test_position_below_the_log_start_with_reset_error(two: eventlog.Log) -> None:
    tp = TP("t", 0)
    with two.consumer(auto_offset_reset="error") as c:
        c.assign([tp])
        c.seek(tp, 0)
        set_log_start(two, "t", 0, 2)
        with pytest.raises(OffsetOutOfRangeError) as info:
            c.poll(0)
        assert info.value.offset == 0
        assert "2..5" in str(info.value)


# --- pause, resume, lag ----------------------------------------------------------------


def test_pause_and_resume(two: eventlog.Log) -> None:
    p0, p1 = TP("t", 0), TP("t", 1)
    with two.consumer("t", auto_offset_reset="earliest") as c:
        c.pause(p0)
        assert c.paused() == {p0}
        assert by_partition(drain(c)) == {("t", 1): [0, 1, 2, 3, 4]}
        assert c.position(p0) == 0
        assert c.poll(0.05) == []  # a paused partition with records does not wake poll
        c.resume(p0)
        assert c.paused() == set()
        assert by_partition(drain(c)) == {("t", 0): [0, 1, 2, 3, 4]}
        c.pause(p0, p1)
        assert c.paused() == {p0, p1}
        c.resume()  # no partitions: nothing resumed
        assert c.paused() == {p0, p1}


def test_pause_survives_a_seek_and_iteration_skips_paused_buffered_records(
    log: eventlog.Log,
) -> None:
    log.create_topic("t", 2)
    fill(log, "t", 0, 5)
    fill(log, "t", 1, 5)
    p0 = TP("t", 0)
    with log.consumer("t", auto_offset_reset="earliest", idle_timeout=0.05) as c:
        it = iter(c)
        next(it)
        c.pause(p0)
        c.seek(p0, 0)
        assert all(r.partition == 1 for r in it)
        assert c.paused() == {p0}
        assert c.position(p0) == 0


def test_lag_per_partition(two: eventlog.Log) -> None:
    fill(two, "t", 1, 3)  # partition 1 now has 8 records
    with two.consumer("t", auto_offset_reset="earliest") as c:
        assert c.lag() == {TP("t", 0): 5, TP("t", 1): 8}
        c.poll(0, max_records=4)
        lag = c.lag()
        assert sum(lag.values()) == 9
        drain(c)
        assert c.lag() == {TP("t", 0): 0, TP("t", 1): 0}
        two.append("t", b"x", partition=0)
        assert c.lag() == {TP("t", 0): 1, TP("t", 1): 0}
    with two.consumer("t") as c:  # latest: nothing to catch up
        assert c.lag() == {TP("t", 0): 0, TP("t", 1): 0}


# --- deserializers ---------------------------------------------------------------------


def test_builtin_deserializers(log: eventlog.Log) -> None:
    log.create_topic("t")
    log.append("t", json.dumps({"n": 1, "s": "é"}).encode(), key="clé".encode())
    log.append("t", None, key=b"tombstone")
    log.append("t", b"[1,2]")
    with log.consumer(
        "t",
        auto_offset_reset="earliest",
        key_deserializer=eventlog.serde.str,
        value_deserializer=eventlog.serde.json,
    ) as c:
        records = drain(c)
    assert [(r.key, r.value) for r in records] == [
        ("clé", {"n": 1, "s": "é"}),
        ("tombstone", None),  # None is never passed to a deserializer
        (None, [1, 2]),
    ]
    assert [r.offset for r in records] == [0, 1, 2]


def test_records_keep_key_timestamp_and_headers(log: eventlog.Log) -> None:
    log.create_topic("t", retention_ms=-1)  # keep the 1970 timestamp
    headers = [("trace", b"abc"), ("empty", None), ("trace", b"again")]
    log.append("t", b"v", key=b"k", timestamp=123, headers=headers)
    with log.consumer("t", auto_offset_reset="earliest", value_deserializer=bytes.upper) as c:
        [record] = drain(c)
    assert record == Record("t", 0, 0, 123, b"k", b"V", tuple(headers))


def test_callable_deserializers_and_bytes(log: eventlog.Log) -> None:
    log.create_topic("t")
    log.append("t", b"abc", key=b"k")
    calls: list[bytes] = []

    def upper(data: bytes) -> str:
        calls.append(data)
        return data.decode().upper()

    with log.consumer(
        "t",
        auto_offset_reset="earliest",
        key_deserializer=eventlog.serde.bytes,
        value_deserializer=upper,
    ) as c:
        [record] = drain(c)
    assert (record.key, record.value) == (b"k", "ABC")
    assert calls == [b"abc"]


def bad_record_log(log: eventlog.Log) -> eventlog.Log:
    """Topic "t", partition 0: JSON at offsets 0, 1, 2, 4; garbage at 3."""
    log.create_topic("t")
    for value in (b"0", b"1", b"2", b"{not json", b"4"):
        log.append("t", value, partition=0)
    return log


def test_deserialization_error_names_the_record_and_is_never_skipped(log: eventlog.Log) -> None:
    bad_record_log(log)
    tp = TP("t", 0)
    with log.consumer(
        "t", auto_offset_reset="earliest", value_deserializer=eventlog.serde.json
    ) as c:
        # The good records before the bad one come first.
        assert [r.value for r in c.poll(0)] == [0, 1, 2]
        assert c.position(tp) == 3
        for _ in range(2):  # it keeps failing: the record is not dropped
            with pytest.raises(DeserializationError) as info:
                c.poll(0)
            err = info.value
            assert isinstance(err, ValueError)
            assert (err.topic, err.partition, err.offset) == ("t", 0, 3)
            assert err.topic_partition == tp
            assert err.record.value == b"{not json"
            assert err.record.offset == 3
            assert "t[0]" in str(err)
            assert "offset 3" in str(err)
            assert "value" in str(err)
            assert isinstance(err.__cause__, json.JSONDecodeError)
            assert c.position(tp) == 3
        c.seek(err.topic_partition, err.offset + 1)  # the application skips it
        assert [(r.offset, r.value) for r in c.poll(0)] == [(4, 4)]


def test_deserialization_error_of_a_key(log: eventlog.Log) -> None:
    log.create_topic("t")
    log.append("t", b"v", key=b"\xff\xfe")
    with log.consumer("t", auto_offset_reset="earliest", key_deserializer=eventlog.serde.str) as c:
        with pytest.raises(DeserializationError, match="key") as info:
            c.poll(0)
        assert info.value.offset == 0
        assert isinstance(info.value.__cause__, UnicodeDecodeError)


def test_deserialization_error_in_iteration_stops_then_resumes_after_a_seek(
    log: eventlog.Log,
) -> None:
    bad_record_log(log)
    with log.consumer(
        "t",
        auto_offset_reset="earliest",
        value_deserializer=eventlog.serde.json,
        idle_timeout=0.05,
    ) as c:
        it = iter(c)
        seen = [next(it).value for _ in range(3)]
        with pytest.raises(DeserializationError) as info:
            next(it)
        c.seek(info.value.topic_partition, info.value.offset + 1)
        seen += [r.value for r in it]
    assert seen == [0, 1, 2, 4]


def test_deserialization_error_skipped_by_the_application_loses_nothing_else(
    log: eventlog.Log,
) -> None:
    log.create_topic("t", 3)
    log.append("t", b"oops", partition=1)
    log.append("t", b"10", partition=1)
    for p in (0, 2):
        for i in range(3):
            log.append("t", b"%d" % i, partition=p)
    with log.consumer(
        "t", auto_offset_reset="earliest", value_deserializer=eventlog.serde.json
    ) as c:
        good: list[Record] = []
        errors: list[tuple[int, int]] = []
        for _ in range(20):
            try:
                got = c.poll(0)
            except DeserializationError as exc:
                errors.append((exc.partition, exc.offset))
                c.seek(exc.topic_partition, exc.offset + 1)
                continue
            if not got:
                break
            good.extend(got)
        assert errors == [(1, 0)]  # reported once, skipped once
        assert by_partition(good) == {("t", 0): [0, 1, 2], ("t", 1): [1], ("t", 2): [0, 1, 2]}


# --- closing ---------------------------------------------------------------------------


def test_close_is_idempotent_and_context_manager_closes(two: eventlog.Log) -> None:
    c = two.consumer("t")
    assert not c.closed
    c.close()
    c.close()
    assert c.closed
    with two.consumer("t") as c2:
        pass
    assert c2.closed
    assert "closed" in repr(c2)


CLOSED_CALLS: dict[str, Callable[[eventlog.Consumer], object]] = {
    "poll": lambda c: c.poll(0),
    "subscribe": lambda c: c.subscribe(["t"]),
    "assign": lambda c: c.assign([TP("t", 0)]),
    "unsubscribe": lambda c: c.unsubscribe(),
    "seek": lambda c: c.seek(TP("t", 0), 0),
    "seek_to_beginning": lambda c: c.seek_to_beginning(),
    "seek_to_end": lambda c: c.seek_to_end(),
    "seek_to_timestamp": lambda c: c.seek_to_timestamp(0),
    "position": lambda c: c.position(TP("t", 0)),
    "pause": lambda c: c.pause(TP("t", 0)),
    "resume": lambda c: c.resume(TP("t", 0)),
    "lag": lambda c: c.lag(),
    "commit": lambda c: c.commit(),
    "committed": lambda c: c.committed(TP("t", 0)),
    "enter": lambda c: c.__enter__(),
}


@pytest.mark.parametrize("call", CLOSED_CALLS.values(), ids=CLOSED_CALLS.keys())
def test_use_after_close_raises_client_closed(
    two: eventlog.Log, call: Callable[[eventlog.Consumer], object]
) -> None:
    c = two.consumer("t", group="g")
    c.close()
    with pytest.raises(ClientClosedError, match="closed") as info:
        call(c)
    assert isinstance(info.value, ValueError)


def test_iterating_a_closed_consumer_raises_client_closed(two: eventlog.Log) -> None:
    c = two.consumer("t")
    c.close()
    with pytest.raises(ClientClosedError):
        next(iter(c))


def test_log_closed_under_a_consumer(two: eventlog.Log) -> None:
    c = two.consumer("t", auto_offset_reset="earliest")
    c.poll(0, max_records=1)
    two.close()
    with pytest.raises(LogClosedError):
        c.poll(0)
    with pytest.raises(LogClosedError):
        c.position(TP("t", 0))
    c.close()  # closing the consumer after its log still works
    assert c.closed


def test_log_closed_while_a_consumer_waits_in_poll(two: eventlog.Log) -> None:
    c = two.consumer("t")
    c.poll(0)
    out: list[object] = []

    def run() -> None:
        try:
            out.append(c.poll(30))
        except Exception as exc:
            out.append(exc)

    reader = threading.Thread(target=run)
    reader.start()
    time.sleep(0.05)
    two.close()
    reader.join(10)
    assert not reader.is_alive(), "poll() kept waiting on a closed log"
    assert len(out) == 1
    assert isinstance(out[0], LogClosedError)
    c.close()


def test_consumer_on_a_closed_log_is_refused(log: eventlog.Log) -> None:
    log.create_topic("t")
    log.close()
    with pytest.raises(LogClosedError):
        log.consumer("t")


def test_readonly_log_consumer_without_group(log_path: Any) -> None:
    with eventlog.open(log_path, durability="off") as w:
        w.create_topic("t")
        w.append("t", b"x")
    with (
        eventlog.open(log_path, readonly=True) as ro,
        ro.consumer("t", auto_offset_reset="earliest") as c,
    ):
        assert [r.value for r in drain(c)] == [b"x"]


# --- the bad-input matrix --------------------------------------------------------------

Make = Callable[[eventlog.Log], object]

# (error class, builtin it must also be, fragments the message must contain)
BAD_OPTIONS: dict[str, tuple[Make, type[Exception], type[BaseException], tuple[str, ...]]] = {
    "unknown topic": (
        lambda log: log.consumer("nope"),
        TopicNotFoundError,
        KeyError,
        ("'nope'", "pattern"),
    ),
    "one of several topics unknown": (
        lambda log: log.consumer("t", "nope"),
        TopicNotFoundError,
        KeyError,
        ("'nope'",),
    ),
    "auto_offset_reset bogus": (
        lambda log: log.consumer("t", auto_offset_reset="bogus"),
        InvalidArgumentError,
        ValueError,
        ("auto_offset_reset", "'bogus'", "'earliest'", "'latest'", "'error'"),
    ),
    "auto_offset_reset none (Kafka's spelling)": (
        lambda log: log.consumer("t", auto_offset_reset="none"),
        InvalidArgumentError,
        ValueError,
        ("auto_offset_reset", "'error'"),
    ),
    "session_timeout_ms 0": (
        lambda log: log.consumer("t", group="g", session_timeout_ms=0),
        InvalidArgumentError,
        ValueError,
        ("session_timeout_ms", "between 1"),
    ),
    "session_timeout_ms float": (
        lambda log: log.consumer("t", group="g", session_timeout_ms=1.5),
        InvalidArgumentError,
        ValueError,
        ("session_timeout_ms", "integer"),
    ),
    "heartbeat equal to session": (
        lambda log: log.consumer("t", group="g", session_timeout_ms=300, heartbeat_interval_ms=300),
        InvalidArgumentError,
        ValueError,
        ("heartbeat_interval_ms", "session_timeout_ms", "lower"),
    ),
    "heartbeat above session": (
        lambda log: log.consumer("t", group="g", session_timeout_ms=300, heartbeat_interval_ms=900),
        InvalidArgumentError,
        ValueError,
        ("heartbeat_interval_ms", "300"),
    ),
    "heartbeat 0": (
        lambda log: log.consumer("t", group="g", heartbeat_interval_ms=0),
        InvalidArgumentError,
        ValueError,
        ("heartbeat_interval_ms",),
    ),
    "max_poll_records 0": (
        lambda log: log.consumer("t", max_poll_records=0),
        InvalidArgumentError,
        ValueError,
        ("max_poll_records", "between 1"),
    ),
    "max_poll_records str": (
        lambda log: log.consumer("t", max_poll_records="10"),
        InvalidArgumentError,
        ValueError,
        ("max_poll_records", "'10'"),
    ),
    "max_poll_interval_ms 0": (
        lambda log: log.consumer("t", group="g", max_poll_interval_ms=0),
        InvalidArgumentError,
        ValueError,
        ("max_poll_interval_ms",),
    ),
    "auto_commit_interval_ms negative": (
        lambda log: log.consumer("t", group="g", auto_commit_interval_ms=-1),
        InvalidArgumentError,
        ValueError,
        ("auto_commit_interval_ms",),
    ),
    "enable_auto_commit not bool": (
        lambda log: log.consumer("t", group="g", enable_auto_commit="yes"),
        InvalidArgumentError,
        ValueError,
        ("enable_auto_commit",),
    ),
    "bad pattern": (
        lambda log: log.consumer(pattern="("),
        InvalidArgumentError,
        ValueError,
        ("pattern", "regular expression"),
    ),
    "pattern of the wrong type": (
        lambda log: log.consumer(pattern=5),
        InvalidArgumentError,
        ValueError,
        ("pattern", "int"),
    ),
    "group empty": (
        lambda log: log.consumer("t", group=""),
        InvalidArgumentError,
        ValueError,
        ("group", "1 to 249"),
    ),
    "group with NUL": (
        lambda log: log.consumer("t", group="a\x00b"),
        InvalidArgumentError,
        ValueError,
        ("group", "NUL"),
    ),
    "group too long": (
        lambda log: log.consumer("t", group="g" * 250),
        InvalidArgumentError,
        ValueError,
        ("group", "249"),
    ),
    "group not a str": (
        lambda log: log.consumer("t", group=b"g"),
        InvalidArgumentError,
        ValueError,
        ("group", "bytes"),
    ),
    "strategy bogus": (
        lambda log: log.consumer("t", group="g", partition_assignment_strategy="bogus"),
        InvalidArgumentError,
        ValueError,
        ("'bogus'", "'range'", "'roundrobin'", "'cooperative-sticky'"),
    ),
    "group_instance_id without group": (
        lambda log: log.consumer("t", group_instance_id="a"),
        InvalidArgumentError,
        ValueError,
        ("group_instance_id", "group"),
    ),
    "group_instance_id empty": (
        lambda log: log.consumer("t", group="g", group_instance_id=""),
        InvalidArgumentError,
        ValueError,
        ("group_instance_id", "non-empty"),
    ),
    "value_deserializer as a string": (
        lambda log: log.consumer("t", value_deserializer="json"),
        InvalidArgumentError,
        ValueError,
        ("value_deserializer", "eventlog.serde.json"),
    ),
    "key_deserializer not callable": (
        lambda log: log.consumer("t", key_deserializer=42),
        InvalidArgumentError,
        ValueError,
        ("key_deserializer", "callable"),
    ),
    "client_id empty": (
        lambda log: log.consumer("t", client_id=""),
        InvalidArgumentError,
        ValueError,
        ("client_id",),
    ),
    "idle_timeout negative": (
        lambda log: log.consumer("t", idle_timeout=-1),
        InvalidArgumentError,
        ValueError,
        ("idle_timeout", ">= 0"),
    ),
    "unknown option": (
        lambda log: log.consumer("t", bogus_option=1),
        TypeError,
        TypeError,
        ("bogus_option",),
    ),
}


@pytest.mark.parametrize(
    "case",
    [pytest.param(case, id=name) for name, case in BAD_OPTIONS.items()],
)
def test_bad_consumer_options(
    log: eventlog.Log,
    case: tuple[Make, type[Exception], type[BaseException], tuple[str, ...]],
) -> None:
    make, error, builtin, fragments = case
    assert issubclass(error, builtin)
    log.create_topic("t")
    with pytest.raises(error) as info:
        make(log)
    assert isinstance(info.value, builtin)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    assert log.list_groups() == []  # nothing was written for a refused consumer


Call = Callable[[eventlog.Consumer], object]

BAD_CALLS: dict[str, tuple[Call, type[Exception], type[BaseException], tuple[str, ...]]] = {
    "poll timeout -1": (
        lambda c: c.poll(timeout=-1),
        InvalidArgumentError,
        ValueError,
        ("timeout", "-1", ">= 0"),
    ),
    "poll timeout nan": (
        lambda c: c.poll(timeout=math.nan),
        InvalidArgumentError,
        ValueError,
        ("timeout", "nan"),
    ),
    "poll timeout str": (
        lambda c: c.poll(timeout="1"),
        InvalidArgumentError,
        ValueError,
        ("timeout", "'1'"),
    ),
    "poll max_records 0": (
        lambda c: c.poll(0, max_records=0),
        InvalidArgumentError,
        ValueError,
        ("max_records", "between 1"),
    ),
    "poll max_records float": (
        lambda c: c.poll(0, max_records=2.0),
        InvalidArgumentError,
        ValueError,
        ("max_records", "2.0"),
    ),
    "seek negative": (
        lambda c: c.seek(TP("t", 0), -1),
        InvalidArgumentError,
        ValueError,
        ("offset", "-1", "between 0"),
    ),
    "seek float": (
        lambda c: c.seek(TP("t", 0), 1.0),
        InvalidArgumentError,
        ValueError,
        ("offset", "1.0", "integer"),
    ),
    "seek str": (
        lambda c: c.seek(TP("t", 0), "3"),
        InvalidArgumentError,
        ValueError,
        ("offset", "'3'"),
    ),
    "seek bool": (
        lambda c: c.seek(TP("t", 0), True),
        InvalidArgumentError,
        ValueError,
        ("offset", "True"),
    ),
    "seek an unassigned partition": (
        lambda c: c.seek(TP("t", 2), 0),
        IllegalStateError,
        RuntimeError,
        ("t[2]", "not assigned"),
    ),
    "seek an unknown topic": (
        lambda c: c.seek(TP("nope", 0), 0),
        IllegalStateError,
        RuntimeError,
        ("nope[0]", "not assigned"),
    ),
    "seek not a partition": (
        lambda c: c.seek("t", 0),
        InvalidArgumentError,
        ValueError,
        ("TopicPartition", "'t'"),
    ),
    "seek_to_beginning unassigned": (
        lambda c: c.seek_to_beginning(TP("t", 1)),
        IllegalStateError,
        RuntimeError,
        ("t[1]",),
    ),
    "seek_to_end unassigned": (
        lambda c: c.seek_to_end(TP("t", 1)),
        IllegalStateError,
        RuntimeError,
        ("t[1]",),
    ),
    "seek_to_timestamp negative": (
        lambda c: c.seek_to_timestamp(-1),
        InvalidArgumentError,
        ValueError,
        ("timestamp", "-1", ">= 0"),
    ),
    "seek_to_timestamp float": (
        lambda c: c.seek_to_timestamp(1.5),
        InvalidArgumentError,
        ValueError,
        ("timestamp", "1.5"),
    ),
    "position unassigned": (
        lambda c: c.position(TP("t", 1)),
        IllegalStateError,
        RuntimeError,
        ("t[1]", "not assigned"),
    ),
    "pause unassigned": (
        lambda c: c.pause(TP("t", 1)),
        IllegalStateError,
        RuntimeError,
        ("t[1]",),
    ),
    "resume unassigned": (
        lambda c: c.resume(TP("t", 1)),
        IllegalStateError,
        RuntimeError,
        ("t[1]",),
    ),
    "commit without a group": (
        lambda c: c.commit(),
        IllegalStateError,
        RuntimeError,
        ("commit", "group="),
    ),
    "commit explicit offsets without a group": (
        lambda c: c.commit({TP("t", 0): 1}),
        IllegalStateError,
        RuntimeError,
        ("commit", "group="),
    ),
    "committed without a group": (
        lambda c: c.committed(TP("t", 0)),
        IllegalStateError,
        RuntimeError,
        ("committed", "group="),
    ),
    "assign unknown topic": (
        lambda c: c.assign([TP("nope", 0)]),
        TopicNotFoundError,
        KeyError,
        ("'nope'",),
    ),
    "assign partition out of range": (
        lambda c: c.assign([TP("t", 3)]),
        PartitionNotFoundError,
        IndexError,
        ("partition 3", "0..2"),
    ),
    "assign negative partition": (
        lambda c: c.assign([TP("t", -1)]),
        PartitionNotFoundError,
        IndexError,
        ("partition -1", "0..2"),
    ),
    "assign not partitions": (
        lambda c: c.assign(["t"]),
        InvalidArgumentError,
        ValueError,
        ("TopicPartition",),
    ),
    "subscribe unknown topic": (
        lambda c: c.subscribe(["nope"]),
        IllegalStateError,  # this consumer uses assign()
        RuntimeError,
        ("assign",),
    ),
}


@pytest.mark.parametrize("case", BAD_CALLS.values(), ids=BAD_CALLS.keys())
def test_bad_consumer_calls(
    log: eventlog.Log,
    case: tuple[Call, type[Exception], type[BaseException], tuple[str, ...]],
) -> None:
    call, error, builtin, fragments = case
    assert issubclass(error, builtin)
    log.create_topic("t", 3)
    fill(log, "t", 0, 3)
    with log.consumer(auto_offset_reset="earliest") as c:
        c.assign([TP("t", 0)])
        c.seek(TP("t", 0), 1)
        with pytest.raises(error) as info:
            call(c)
        assert isinstance(info.value, builtin)
        message = str(info.value)
        for fragment in fragments:
            assert fragment in message, f"{fragment!r} not in {message!r}"
        # Nothing changed: the assignment and the position are as before.
        assert c.assignment() == {TP("t", 0)}
        assert c.position(TP("t", 0)) == 1
        assert [r.offset for r in c.poll(0)] == [1, 2]


SUBSCRIBE_ERRORS: dict[str, tuple[Call, type[Exception], type[BaseException], tuple[str, ...]]] = {
    "unknown topic": (
        lambda c: c.subscribe(["t", "nope"]),
        TopicNotFoundError,
        KeyError,
        ("'nope'", "pattern"),
    ),
    "nothing": (
        lambda c: c.subscribe([]),
        InvalidArgumentError,
        ValueError,
        ("at least one topic",),
    ),
    "not str": (
        lambda c: c.subscribe([1]),
        InvalidArgumentError,
        ValueError,
        ("topic names must be str", "1"),
    ),
    "bad pattern": (
        lambda c: c.subscribe(pattern="[a-"),
        InvalidArgumentError,
        ValueError,
        ("pattern", "regular expression"),
    ),
}


@pytest.mark.parametrize("case", SUBSCRIBE_ERRORS.values(), ids=SUBSCRIBE_ERRORS.keys())
def test_bad_subscribe_keeps_the_previous_subscription(
    log: eventlog.Log,
    case: tuple[Call, type[Exception], type[BaseException], tuple[str, ...]],
) -> None:
    call, error, builtin, fragments = case
    log.create_topic("t")
    log.create_topic("u")
    with log.consumer("u") as c:
        with pytest.raises(error) as info:
            call(c)
        assert isinstance(info.value, builtin)
        for fragment in fragments:
            assert fragment in str(info.value), f"{fragment!r} not in {info.value}"
        assert c.subscription() == {"u"}
        assert c.assignment() == {TP("u", 0)}


def test_poll_without_subscription_or_assignment(log: eventlog.Log) -> None:
    with log.consumer() as c:
        with pytest.raises(IllegalStateError, match=r"subscribe\(\) or assign\(\)") as info:
            c.poll(0)
        assert isinstance(info.value, RuntimeError)
        with pytest.raises(IllegalStateError):
            next(iter(c))


def test_poll_after_iteration_returns_buffered_records_before_a_deserialization_error(
    log: eventlog.Log,
) -> None:
    log.create_topic("t")
    log.append_batch("t", [NewRecord(v) for v in (b"1", b"2", b"{bad", b"4")])
    consumer = log.consumer(
        "t", value_deserializer=eventlog.serde.json, auto_offset_reset="earliest"
    )
    assert next(consumer).value == 1  # offset 1 stays in the iteration buffer
    # Records before the bad one come first (poll's documented contract) ...
    assert [r.value for r in consumer.poll(1.0)] == [2]
    with pytest.raises(eventlog.DeserializationError) as caught:
        consumer.poll(1.0)
    consumer.seek(TopicPartition("t", 0), caught.value.offset + 1)
    assert [r.value for r in consumer.poll(1.0)] == [4]
    consumer.close()
