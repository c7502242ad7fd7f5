"""Consumer groups inside one process: members split partitions, rebalance on join, leave
and expiry, listeners, commits and fencing, static membership.

Members here are consumers of one process (driven from one thread, or from a thread each);
test_processes.py has the multi-process group test. Sessions are short (a few hundred
milliseconds) where a test needs a lease to run out, so nothing sleeps long.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

import pytest

import eventlog
from eventlog import NewRecord, OffsetAndMetadata, RebalanceListener, Record, TopicPartition
from eventlog._errors import (
    CommitFailedError,
    InconsistentGroupProtocolError,
    NoOffsetForPartitionError,
    PartitionNotFoundError,
    TopicNotFoundError,
)

TP = TopicPartition

# Short leases for tests that wait for an expiry; long ones where an expiry would be a bug.
SHORT = {"session_timeout_ms": 400, "heartbeat_interval_ms": 50}
LONG = {"session_timeout_ms": 30_000, "heartbeat_interval_ms": 100}


# --- helpers ---------------------------------------------------------------------------


class Recorder(RebalanceListener):
    """Records every callback with the thread it ran in."""

    def __init__(self) -> None:
        self.events: list[tuple[str, frozenset[TopicPartition]]] = []
        self.threads: set[str] = set()

    def _note(self, what: str, partitions: set[TopicPartition]) -> None:
        assert isinstance(partitions, set)
        self.events.append((what, frozenset(partitions)))
        self.threads.add(threading.current_thread().name)

    def on_partitions_revoked(self, partitions: set[TopicPartition]) -> None:
        self._note("revoked", partitions)

    def on_partitions_assigned(self, partitions: set[TopicPartition]) -> None:
        self._note("assigned", partitions)

    def on_partitions_lost(self, partitions: set[TopicPartition]) -> None:
        self._note("lost", partitions)

    def of(self, what: str) -> list[frozenset[TopicPartition]]:
        return [parts for kind, parts in self.events if kind == what]


def tps(topic: str, *partitions: int) -> frozenset[TopicPartition]:
    return frozenset(TP(topic, p) for p in partitions)


@pytest.fixture
def make(log: eventlog.Log) -> Iterator[Any]:
    """``make(*topics, **options)``: a group consumer (group "g", earliest, long lease by
    default), closed after the test."""
    made: list[eventlog.Consumer] = []

    def factory(*topics: str, **options: Any) -> eventlog.Consumer:
        settings: dict[str, Any] = {"group": "g", "auto_offset_reset": "earliest", **LONG}
        settings.update(options)
        consumer = log.consumer(*topics, **settings)
        made.append(consumer)
        return consumer

    yield factory
    for consumer in made:
        if not log.closed:
            consumer.close()


def settle(
    log: eventlog.Log,
    members: Iterable[eventlog.Consumer],
    partitions: Iterable[TopicPartition],
    *,
    group: str = "g",
    timeout: float = 10.0,
    records: dict[int, list[Record]] | None = None,
) -> None:
    """Poll every member in turn until each partition is held by exactly one of them and
    the group is stable. Records polled meanwhile go to ``records[index]``."""
    members = list(members)
    wanted = set(partitions)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for i, member in enumerate(members):
            got = member.poll(0.01)
            if records is not None:
                records.setdefault(i, []).extend(got)
        held = [m.assignment() for m in members]
        if (
            sum(len(h) for h in held) == len(wanted)
            and set().union(*held) == wanted
            and log.describe_group(group).state == "Stable"
        ):
            return
    raise AssertionError(
        f"the group did not settle: {[sorted(m.assignment()) for m in members]}; "
        f"{log.describe_group(group)}"
    )


def offsets_of(records: Iterable[Record]) -> dict[TopicPartition, list[int]]:
    out: dict[TopicPartition, list[int]] = {}
    for r in records:
        out.setdefault(TP(r.topic, r.partition), []).append(r.offset)
    return out


@pytest.fixture
def t4(log: eventlog.Log) -> eventlog.Log:
    """Topic "t", 4 partitions, 3 records each."""
    log.create_topic("t", 4)
    for p in range(4):
        log.append_batch("t", [NewRecord(b"%d-%d" % (p, i), partition=p) for i in range(3)])
    return log


ALL4 = tps("t", 0, 1, 2, 3)


# --- splitting partitions --------------------------------------------------------------


@pytest.mark.parametrize("strategy", ["cooperative-sticky", "sticky", "range", "roundrobin"])
@pytest.mark.parametrize("count", [2, 3])
def test_members_split_the_partitions(
    log: eventlog.Log, make: Any, strategy: str, count: int
) -> None:
    log.create_topic("t", 6)
    for p in range(6):
        log.append("t", b"x", partition=p)
    members = [make("t", partition_assignment_strategy=strategy) for _ in range(count)]
    records: dict[int, list[Record]] = {}
    settle(log, members, tps("t", *range(6)), records=records)
    held = [m.assignment() for m in members]
    assert all(len(h) == 6 // count for h in held)  # balanced
    # Every record was returned once, by the member owning its partition at the time.
    everything = [r for rs in records.values() for r in rs]
    assert sorted((r.partition, r.offset) for r in everything) == [(p, 0) for p in range(6)]
    desc = log.describe_group("g")
    assert desc.state == "Stable"
    assert desc.protocol == strategy
    assert {m.member_id for m in desc.members} == {m.member_id for m in members}
    for member in members:
        [d] = [d for d in desc.members if d.member_id == member.member_id]
        assert set(d.assignment) == set(d.owned) == member.assignment()
        assert d.topics == ("t",)
    assert {tp: o.owner for tp, o in desc.offsets.items()} == {
        tp: m.member_id for m in members for tp in m.assignment()
    }


def test_member_id_and_generation(t4: eventlog.Log, make: Any) -> None:
    c = make("t", client_id="svc-a")
    assert (c.member_id, c.generation, c.group) == (None, -1, "g")  # joins at the first poll
    settle(t4, [c], ALL4)
    assert c.member_id is not None
    assert c.member_id.startswith("svc-a")
    first = c.generation
    assert first >= 1
    c2 = make("t")
    settle(t4, [c, c2], ALL4)
    assert c.generation > first
    assert c.generation == c2.generation == t4.describe_group("g").generation
    assert c.member_id != c2.member_id


def test_groups_are_independent(t4: eventlog.Log, make: Any) -> None:
    a = make("t", group="a")
    b = make("t", group="b")
    settle(t4, [a], ALL4, group="a")
    settle(t4, [b], ALL4, group="b")
    assert a.assignment() == b.assignment() == ALL4
    assert t4.list_groups() == ["a", "b"]


def test_a_member_with_nothing_to_own_reads_nothing(log: eventlog.Log, make: Any) -> None:
    log.create_topic("t", 1)
    log.append("t", b"x")
    first, second = make("t"), make("t", listener=(rec := Recorder()))
    settle(log, [first, second], tps("t", 0))
    idle = first if not first.assignment() else second
    assert idle.assignment() == set()
    assert idle.poll(0.05) == []
    if idle is second:
        assert rec.of("assigned")[-1] == frozenset()  # told, with an empty set


# --- rebalances ------------------------------------------------------------------------


def test_cooperative_join_revokes_only_the_moved_partitions(t4: eventlog.Log, make: Any) -> None:
    r1, r2 = Recorder(), Recorder()
    c1 = make("t", listener=r1)
    settle(t4, [c1], ALL4)
    assert r1.events == [("assigned", ALL4)]
    c2 = make("t", listener=r2)
    settle(t4, [c1, c2], ALL4)
    moved = c2.assignment()
    assert len(moved) == 2
    assert r1.of("revoked") == [moved]  # only what moved, once
    assert r1.of("lost") == []
    assert r2.events == [("assigned", moved)]
    assert c1.assignment() == ALL4 - moved


@pytest.mark.parametrize("strategy", ["range", "roundrobin", "sticky"])
def test_eager_join_revokes_everything_at_the_new_generation(
    t4: eventlog.Log, make: Any, strategy: str
) -> None:
    r1, r2 = Recorder(), Recorder()
    c1 = make("t", listener=r1, partition_assignment_strategy=strategy)
    settle(t4, [c1], ALL4)
    c2 = make("t", listener=r2, partition_assignment_strategy=strategy)
    settle(t4, [c1, c2], ALL4)
    assert r1.events[0] == ("assigned", ALL4)
    assert r1.events[1] == ("revoked", ALL4)  # all of them, eagerly
    assert r1.events[2:] == [("assigned", frozenset(c1.assignment()))]
    assert r2.events == [("assigned", frozenset(c2.assignment()))]
    assert len(c1.assignment()) == len(c2.assignment()) == 2


def test_close_hands_the_partitions_over_without_waiting_for_the_session(
    t4: eventlog.Log, make: Any
) -> None:
    r1, r2 = Recorder(), Recorder()
    c1, c2 = make("t", listener=r1), make("t", listener=r2)
    settle(t4, [c1, c2], ALL4)
    theirs = frozenset(c2.assignment())
    mine = frozenset(c1.assignment())
    before = len(r1.events)
    c2.close()  # the lease is 30 s: only the leave can make this quick
    assert r2.events[-1] == ("revoked", theirs)
    settle(t4, [c1], ALL4, timeout=5)
    # Cooperative: c1 keeps its own partitions and is only told about the new ones.
    assert r1.events[before:] == [("assigned", theirs)]
    assert mine < c1.assignment()
    assert [m.member_id for m in t4.describe_group("g").members] == [c1.member_id]


def test_close_from_another_thread_while_a_member_waits_in_poll(
    t4: eventlog.Log, make: Any
) -> None:
    c = make("t", auto_offset_reset="latest")
    settle(t4, [c], ALL4)
    out: list[object] = []

    def run() -> None:
        try:
            out.append(c.poll(None))
        except Exception as exc:
            out.append(exc)

    waiter = threading.Thread(target=run)
    waiter.start()
    time.sleep(0.05)
    c.close()
    waiter.join(10)
    assert not waiter.is_alive()
    assert out == [[]] or isinstance(out[0], eventlog.ClientClosedError)
    assert t4.describe_group("g").members == ()  # it left the group


def test_unsubscribe_leaves_the_group(t4: eventlog.Log, make: Any) -> None:
    c1, c2 = make("t"), make("t", listener=(r2 := Recorder()))
    settle(t4, [c1, c2], ALL4)
    had = frozenset(c2.assignment())
    c2.unsubscribe()
    assert r2.events[-1] == ("revoked", had)
    assert c2.assignment() == set()
    settle(t4, [c1], ALL4, timeout=5)


def test_three_members_join_and_leave_one_by_one(log: eventlog.Log, make: Any) -> None:
    log.create_topic("t", 6)
    everything = tps("t", *range(6))
    members = [make("t")]
    settle(log, members, everything)
    for _ in range(2):
        members.append(make("t"))
        settle(log, members, everything)
    assert [len(m.assignment()) for m in members] == [2, 2, 2]
    while len(members) > 1:
        members.pop(0).close()
        settle(log, members, everything)
    assert members[0].assignment() == everything


def test_listener_callbacks_run_only_inside_poll_and_close_in_the_polling_thread(
    t4: eventlog.Log, make: Any
) -> None:
    inside = threading.local()

    class Checked(Recorder):
        def _note(self, what: str, partitions: set[TopicPartition]) -> None:
            assert getattr(inside, "flag", False), f"{what} called outside poll()/close()"
            super()._note(what, partitions)

    listeners = [Checked() for _ in range(3)]
    failures: list[BaseException] = []
    stop = threading.Event()
    started = threading.Barrier(4)

    def member(i: int) -> None:
        try:
            c = make("t", listener=listeners[i], **SHORT)
            started.wait()
            while not stop.is_set():
                inside.flag = True
                c.poll(0.02)
                inside.flag = False
                time.sleep(0.005)  # heartbeats run in their own thread meanwhile
            inside.flag = True
            c.close()
            inside.flag = False
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=member, args=(i,), name=f"member-{i}") for i in range(3)]
    for th in threads:
        th.start()
    started.wait()
    deadline = time.monotonic() + 10
    stable = False
    while not stable and time.monotonic() < deadline:
        if "g" in t4.list_groups():
            desc = t4.describe_group("g")
            stable = len(desc.members) == 3 and desc.state == "Stable"
        time.sleep(0.02)
    stop.set()
    for th in threads:
        th.join(10)
    assert not failures, failures
    assert stable
    for i, listener in enumerate(listeners):
        assert listener.threads == {f"member-{i}"}
        assert listener.of("assigned"), "every member was told what it got"
        assert listener.of("lost") == []
    assert t4.list_groups() == ["g"]
    assert t4.describe_group("g").members == ()


@pytest.mark.parametrize("strategy", ["cooperative-sticky", "range"])
def test_exactly_once_through_joins_and_leaves_with_auto_commit(
    log: eventlog.Log, strategy: str
) -> None:
    """Members of three threads join and leave while records arrive. Auto-commit runs
    before every revocation and on close, and every record is processed before the next
    poll, so each record is processed exactly once; and no partition ever has two owners
    (checked in the listeners, which see ownership move)."""
    log.create_topic("t", 6)
    owners: dict[TopicPartition, int] = {}
    owners_lock = threading.Lock()
    processed: list[tuple[int, int, int]] = []  # (member, partition, offset)
    failures: list[BaseException] = []
    stop = [threading.Event() for _ in range(3)]

    class Exclusive(RebalanceListener):
        def __init__(self, me: int) -> None:
            self.me = me

        def on_partitions_assigned(self, partitions: set[TopicPartition]) -> None:
            with owners_lock:
                for tp in partitions:
                    assert tp not in owners, f"{tp} assigned to {self.me} but owned by {owners}"
                    owners[tp] = self.me

        def on_partitions_revoked(self, partitions: set[TopicPartition]) -> None:
            with owners_lock:
                for tp in partitions:
                    assert owners.pop(tp) == self.me

        def on_partitions_lost(self, partitions: set[TopicPartition]) -> None:
            raise AssertionError(f"member {self.me} lost {partitions}: no lease should expire")

    def member(i: int) -> None:
        try:
            with log.consumer(
                "t",
                group="g",
                auto_offset_reset="earliest",
                auto_commit_interval_ms=60_000,  # only the rebalance and close commit
                partition_assignment_strategy=strategy,
                listener=Exclusive(i),
                **LONG,
            ) as c:
                while not stop[i].is_set():
                    for r in c.poll(0.02):
                        with owners_lock:
                            assert owners.get(TP(r.topic, r.partition)) == i
                        processed.append((i, r.partition, r.offset))
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=member, args=(i,)) for i in range(3)]
    total = 0
    for step in range(12):
        if step in (0, 2, 4):
            threads[step // 2].start()
        if step == 7:
            stop[0].set()
            threads[0].join(10)
        if step == 9:
            stop[1].set()
            threads[1].join(10)
        log.append_batch(
            "t", [NewRecord(b"%d" % i, partition=i % 6) for i in range(total, total + 30)]
        )
        total += 30
        time.sleep(0.03)
    deadline = time.monotonic() + 10
    while len(processed) < total and time.monotonic() < deadline and not failures:
        time.sleep(0.02)
    stop[2].set()
    threads[2].join(10)
    assert not failures, failures
    seen = sorted((p, o) for _m, p, o in processed)
    assert seen == sorted((p, o) for p in range(6) for o in range(total // 6))
    assert {m for m, _p, _o in processed} == {0, 1, 2}


def test_topic_created_later_joins_a_pattern_group(log: eventlog.Log, make: Any) -> None:
    log.create_topic("e.a", 2)
    c1, c2 = make(pattern=r"e\..*"), make(pattern=r"e\..*")
    settle(log, [c1, c2], tps("e.a", 0, 1))
    log.create_topic("e.b", 2)
    log.create_topic("f", 2)
    settle(log, [c1, c2], tps("e.a", 0, 1) | tps("e.b", 0, 1))
    assert c1.subscription() == c2.subscription() == {"e.a", "e.b"}


def test_added_partitions_are_assigned(t4: eventlog.Log, make: Any) -> None:
    c1, c2 = make("t"), make("t")
    settle(t4, [c1, c2], ALL4)
    t4.create_partitions("t", 6)
    t4.append("t", b"new", partition=5)
    records: dict[int, list[Record]] = {}
    settle(t4, [c1, c2], tps("t", *range(6)), records=records)
    assert len(c1.assignment()) == len(c2.assignment()) == 3


def test_listener_exception_propagates_from_poll_and_the_consumer_recovers(
    t4: eventlog.Log, make: Any
) -> None:
    class Once(RebalanceListener):
        raised = False

        def on_partitions_assigned(self, partitions: set[TopicPartition]) -> None:
            if not self.raised:
                self.raised = True
                raise KeyError("from the listener")

    c = make("t", listener=Once())
    with pytest.raises(KeyError, match="from the listener"):
        c.poll(1)
    records: list[Record] = []
    deadline = time.monotonic() + 5
    while len(records) < 12 and time.monotonic() < deadline:
        records += c.poll(0.02)
    assert sorted((r.partition, r.offset) for r in records) == [
        (p, o) for p in range(4) for o in range(3)
    ]


def test_seek_in_on_partitions_assigned_overrides_the_committed_offset(
    t4: eventlog.Log, make: Any
) -> None:
    t4.commit_offsets("g", dict.fromkeys(ALL4, 3))  # everything consumed

    class Rewind(RebalanceListener):
        consumer: eventlog.Consumer

        def on_partitions_assigned(self, partitions: set[TopicPartition]) -> None:
            for tp in partitions:
                assert self.consumer.position(tp) == 3  # the committed offset
            self.consumer.seek_to_beginning(*partitions)

    listener = Rewind()
    c = make("t", listener=listener)
    listener.consumer = c
    records: dict[int, list[Record]] = {}
    settle(t4, [c], ALL4, records=records)
    records[0] += c.poll(0)
    assert len(records[0]) == 12


# --- commits ---------------------------------------------------------------------------


def test_commit_and_committed(t4: eventlog.Log, make: Any) -> None:
    c = make("t", enable_auto_commit=False)
    records: dict[int, list[Record]] = {}
    settle(t4, [c], ALL4, records=records)
    records[0] += c.poll(0)
    assert len(records[0]) == 12
    assert all(c.committed(tp) is None for tp in ALL4)
    c.commit()
    assert {tp: c.committed(tp) for tp in ALL4} == dict.fromkeys(ALL4, 3)
    assert t4.committed_offsets("g") == {tp: OffsetAndMetadata(3, "") for tp in ALL4}
    c.commit()  # nothing new: fine
    c.seek(TP("t", 1), 1)
    c.commit()  # commits go backwards when the application says so
    assert c.committed(TP("t", 1)) == 1


def test_commit_explicit_offsets_with_metadata(t4: eventlog.Log, make: Any) -> None:
    c = make("t", enable_auto_commit=False)
    settle(t4, [c], ALL4)
    c.commit({TP("t", 0): OffsetAndMetadata(2, "batch 17"), TP("t", 1): 1})
    assert t4.committed_offsets("g") == {
        TP("t", 0): OffsetAndMetadata(2, "batch 17"),
        TP("t", 1): OffsetAndMetadata(1, ""),
    }
    assert c.committed(TP("t", 0)) == 2
    assert t4.describe_group("g").offsets[TP("t", 0)].metadata == "batch 17"
    c.commit({TP("t", 0): OffsetAndMetadata(3, "é" * 10)})  # any str up to 4096 bytes
    assert t4.committed_offsets("g", "t")[TP("t", 0)] == OffsetAndMetadata(3, "é" * 10)


def test_committed_for_a_partition_not_assigned_and_bad_partitions(
    t4: eventlog.Log, make: Any
) -> None:
    t4.commit_offsets("g", {TP("t", 2): 1})
    c = make(enable_auto_commit=False)
    assert c.committed(TP("t", 2)) == 1
    assert c.committed(TP("t", 3)) is None
    with pytest.raises(PartitionNotFoundError, match=r"0\.\.3"):
        c.committed(TP("t", 4))
    with pytest.raises(TopicNotFoundError, match="'nope'"):
        c.committed(TP("nope", 0))


@pytest.mark.parametrize(
    ("offsets", "error", "fragment"),
    [
        ({TP("t", 9): 1}, PartitionNotFoundError, "partition 9"),
        ({TP("nope", 0): 1}, TopicNotFoundError, "'nope'"),
        ({TP("t", 0): -1}, ValueError, "-1"),
        ({TP("t", 0): 1.5}, ValueError, "1.5"),
        ({TP("t", 0): OffsetAndMetadata(1, "x" * 4097)}, ValueError, "4096"),
        ({TP("t", 0): OffsetAndMetadata(1, b"m")}, ValueError, "metadata"),
        ({"t": 1}, ValueError, "TopicPartition"),
        ([(TP("t", 0), 1)], ValueError, "mapping"),
    ],
)
def test_commit_refuses_bad_offsets(
    t4: eventlog.Log, make: Any, offsets: Any, error: type[Exception], fragment: str
) -> None:
    c = make("t", enable_auto_commit=False)
    settle(t4, [c], ALL4)
    with pytest.raises(error, match=fragment) as info:
        c.commit(offsets)
    assert isinstance(info.value, eventlog.EventLogError)
    assert t4.committed_offsets("g") == {}


def test_committed_offset_is_the_next_offset_to_read(log: eventlog.Log, make: Any) -> None:
    log.create_topic("t", 3)
    for p in range(3):
        log.append_batch("t", [NewRecord(b"x", partition=p) for _ in range(20)])
    first = make("t", enable_auto_commit=False, idle_timeout=0.05)
    it = iter(first)
    done = [next(it) for _ in range(25)]  # iteration: positions advance record by record
    first.commit()
    first.close(autocommit=False)
    second = make("t")
    rest = second.poll(1)
    while got := second.poll(0.01):
        rest += got
    # No loss, no duplicate: the second consumer starts exactly after the committed records.
    keys = sorted((r.partition, r.offset) for r in done + rest)
    assert keys == [(p, o) for p in range(3) for o in range(20)]
    assert len(done) + len(rest) == 60


def test_auto_commit_on_close_mid_iteration_covers_exactly_the_records_handed_out(
    log: eventlog.Log, make: Any
) -> None:
    log.create_topic("t", 2)
    for p in range(2):
        log.append_batch("t", [NewRecord(b"x", partition=p) for _ in range(10)])
    first = make("t", idle_timeout=0.05)
    it = iter(first)
    done = [next(it) for _ in range(7)]  # one poll fetched all 20
    first.close()  # auto-commit: the positions of the 7 records handed out
    assert sum(om.offset for om in log.committed_offsets("g").values()) == 7
    second = make("t", idle_timeout=0.2)
    rest = list(second)
    keys = sorted((r.partition, r.offset) for r in done + rest)
    assert keys == [(p, o) for p in range(2) for o in range(10)]


def test_listener_given_to_subscribe(t4: eventlog.Log, make: Any) -> None:
    c = make()
    rec = Recorder()
    c.subscribe(["t"], listener=rec)
    settle(t4, [c], ALL4)
    assert rec.events == [("assigned", ALL4)]


def test_auto_commit_every_interval(t4: eventlog.Log, make: Any) -> None:
    c = make("t", auto_commit_interval_ms=0)  # at every poll
    settle(t4, [c], ALL4)
    c.poll(0)
    c.poll(0)
    c.poll(0)  # commits what the previous polls returned
    assert t4.committed_offsets("g") == {tp: OffsetAndMetadata(3, "") for tp in ALL4}


def test_auto_commit_waits_for_its_interval_then_commits_on_close(
    t4: eventlog.Log, make: Any
) -> None:
    c = make("t", auto_commit_interval_ms=60_000)
    records: dict[int, list[Record]] = {}
    settle(t4, [c], ALL4, records=records)
    records[0] += c.poll(0)
    assert len(records[0]) == 12
    c.poll(0)
    assert t4.committed_offsets("g") == {}  # the interval has not passed
    c.close()
    assert t4.committed_offsets("g") == {tp: OffsetAndMetadata(3, "") for tp in ALL4}


@pytest.mark.parametrize("how", ["close(autocommit=False)", "enable_auto_commit=False"])
def test_no_commit_on_close_when_disabled(t4: eventlog.Log, make: Any, how: str) -> None:
    c = make("t", enable_auto_commit=how != "enable_auto_commit=False")
    settle(t4, [c], ALL4)
    c.poll(0)
    c.close(autocommit=how == "enable_auto_commit=False")
    assert t4.committed_offsets("g") == {}


def test_auto_commit_before_revocation_hands_over_without_duplicates(
    t4: eventlog.Log, make: Any
) -> None:
    c1 = make("t", auto_commit_interval_ms=60_000)
    records: dict[int, list[Record]] = {}
    settle(t4, [c1], ALL4, records=records)
    records[0] += c1.poll(0)
    assert len(records[0]) == 12  # everything read, nothing committed yet
    assert t4.committed_offsets("g") == {}
    c2 = make("t", auto_commit_interval_ms=60_000)
    settle(t4, [c1, c2], ALL4, records=records)
    moved = c2.assignment()
    # c1 committed what it had read of the moved partitions before giving them up ...
    assert t4.committed_offsets("g") == {tp: OffsetAndMetadata(3, "") for tp in moved}
    # ... so c2 starts after them.
    assert records.get(1, []) == []
    for p in range(4):
        t4.append("t", b"new", partition=p)
    records = {}
    settle(t4, [c1, c2], ALL4, records=records)
    for _ in range(3):
        records[0] += c1.poll(0)
        records[1] += c2.poll(0)
    assert {TP(r.topic, r.partition) for r in records[1]} == moved
    assert sorted((r.partition, r.offset) for rs in records.values() for r in rs) == [
        (p, 3) for p in range(4)
    ]


def test_commit_inside_on_partitions_revoked_succeeds(t4: eventlog.Log, make: Any) -> None:
    outcomes: list[object] = []

    class CommitOnRevoke(RebalanceListener):
        consumer: eventlog.Consumer

        def on_partitions_revoked(self, partitions: set[TopicPartition]) -> None:
            try:
                self.consumer.commit({tp: OffsetAndMetadata(2, "on revoke") for tp in partitions})
                outcomes.append(frozenset(partitions))
            except Exception as exc:
                outcomes.append(exc)

    listener = CommitOnRevoke()
    c1 = make("t", enable_auto_commit=False, listener=listener)
    listener.consumer = c1
    settle(t4, [c1], ALL4)
    c2 = make("t", enable_auto_commit=False)
    settle(t4, [c1, c2], ALL4)
    assert outcomes == [frozenset(c2.assignment())]
    assert t4.committed_offsets("g") == {
        tp: OffsetAndMetadata(2, "on revoke") for tp in c2.assignment()
    }


def test_commit_of_a_partition_owned_by_another_member_fails(t4: eventlog.Log, make: Any) -> None:
    c1, c2 = make("t", enable_auto_commit=False), make("t", enable_auto_commit=False)
    settle(t4, [c1, c2], ALL4)
    theirs = sorted(c2.assignment())[0]
    mine = sorted(c1.assignment())[0]
    with pytest.raises(CommitFailedError) as info:
        c1.commit({mine: 1, theirs: 1})
    assert isinstance(info.value, RuntimeError)
    assert f"{theirs.topic}[{theirs.partition}]" in str(info.value)
    assert info.value.group == "g"
    assert t4.committed_offsets("g") == {}  # all or nothing


def test_commit_before_joining_fails(t4: eventlog.Log, make: Any) -> None:
    c = make("t")
    with pytest.raises(CommitFailedError, match="poll"):
        c.commit({TP("t", 0): 1})


def test_commit_after_the_session_expired_fails_and_the_member_rejoins(
    t4: eventlog.Log, make: Any
) -> None:
    r1, r2 = Recorder(), Recorder()
    c1 = make("t", listener=r1, **SHORT)
    c2 = make("t", listener=r2, **SHORT)
    settle(t4, [c1, c2], ALL4)
    lost = frozenset(c1.assignment())
    c1.commit()
    for tp in lost:
        t4.append("t", b"read, not committed", partition=tp.partition)
    assert len(c1.poll(0)) == 2
    before = len(r1.events)
    # c1 hangs: no heartbeats, no polls (white box: stop its heartbeat thread).
    c1._membership.stop_heartbeats()
    deadline = time.monotonic() + 5
    while c2.assignment() != ALL4 and time.monotonic() < deadline:
        c2.poll(0.02)
    assert c2.assignment() == ALL4  # the expired member's partitions moved
    assert r2.events[-1] == ("assigned", lost)
    with pytest.raises(CommitFailedError, match="no longer a member"):
        c1.commit()
    with pytest.raises(CommitFailedError):
        c1.commit({sorted(lost)[0]: 0})
    committed = t4.committed_offsets("g")
    assert {tp: committed[tp] for tp in lost} == {tp: OffsetAndMetadata(3, "") for tp in lost}
    # At its next poll, c1 learns that it lost them (no revocation: it could not commit),
    # returns nothing from them, and rejoins.
    for p in range(4):
        t4.append("t", b"late", partition=p)
    assert c1.poll(0) == []
    assert r1.events[before:] == [("lost", lost)]
    settle(t4, [c1, c2], ALL4)
    assert len(c1.assignment()) == 2


def stop_polling_until_dropped(t4: eventlog.Log, make: Any, r1: Recorder) -> Any:
    """Two members; the first stops polling (its heartbeats go on) until the group drops
    it for exceeding max_poll_interval_ms. Returns (first, second, its old partitions)."""
    c1 = make("t", listener=r1, max_poll_interval_ms=300)
    c2 = make("t")
    settle(t4, [c1, c2], ALL4)
    had = frozenset(c1.assignment())
    deadline = time.monotonic() + 5
    while c2.assignment() != ALL4 and time.monotonic() < deadline:
        c2.poll(0.02)
    assert c2.assignment() == ALL4  # long before the 30 s session timeout
    return c1, c2, had


def test_a_member_that_stops_polling_leaves_after_max_poll_interval(
    t4: eventlog.Log, make: Any
) -> None:
    r1 = Recorder()
    c1, c2, had = stop_polling_until_dropped(t4, make, r1)
    with pytest.raises(CommitFailedError):
        c1.commit({sorted(had)[0]: 1})
    assert t4.committed_offsets("g").get(sorted(had)[0]) != OffsetAndMetadata(1, "")
    c1.poll(0)
    assert ("lost", had) in r1.events
    settle(t4, [c1, c2], ALL4)


def test_commit_failed_after_max_poll_interval_says_why(t4: eventlog.Log, make: Any) -> None:
    c1, _c2, had = stop_polling_until_dropped(t4, make, Recorder())
    with pytest.raises(CommitFailedError) as info:
        c1.commit({sorted(had)[0]: 1})
    assert "max_poll_interval_ms" in str(info.value)


def test_static_member_restart_keeps_its_partitions_without_a_rebalance(
    t4: eventlog.Log, make: Any
) -> None:
    r1, r2, r3 = Recorder(), Recorder(), Recorder()
    c1 = make("t", group_instance_id="a", listener=r1)
    c2 = make("t", group_instance_id="b", listener=r2)
    records: dict[int, list[Record]] = {}
    settle(t4, [c1, c2], ALL4, records=records)
    generation = t4.describe_group("g").generation
    mine = frozenset(c1.assignment())
    events_of_c2 = list(r2.events)
    c1.close()  # commits its positions, keeps its place in the group
    assert r1.events[-1] == ("revoked", mine)
    desc = t4.describe_group("g")
    assert [m.instance_id for m in desc.members] in (["a", "b"], ["b", "a"])
    assert desc.generation == generation
    for p in range(4):
        t4.append("t", b"while away", partition=p)
    c3 = make("t", group_instance_id="a", listener=r3)
    records = {}
    settle(t4, [c3, c2], ALL4, records=records, timeout=5)
    records[0] += c3.poll(0)
    assert c3.assignment() == mine
    assert r3.events == [("assigned", mine)]
    assert t4.describe_group("g").generation == generation  # no rebalance
    assert r2.events == events_of_c2  # the other member noticed nothing
    # c3 continues where c1 committed: only the new records.
    assert sorted((r.partition, r.offset) for r in records[0]) == sorted(
        (tp.partition, 3) for tp in mine
    )


def test_static_member_that_does_not_return_is_replaced_after_the_session(
    t4: eventlog.Log, make: Any
) -> None:
    c1 = make("t", group_instance_id="a", **SHORT)
    c2 = make("t", group_instance_id="b", **SHORT)
    settle(t4, [c1, c2], ALL4)
    c1.close()
    settle(t4, [c2], ALL4, timeout=5)
    assert [m.instance_id for m in t4.describe_group("g").members] == ["b"]


def test_members_with_different_assignors_are_refused(t4: eventlog.Log, make: Any) -> None:
    c1 = make("t", partition_assignment_strategy="range")
    settle(t4, [c1], ALL4)
    c2 = make("t", partition_assignment_strategy="roundrobin")
    with pytest.raises(InconsistentGroupProtocolError) as info:
        c2.poll(0)
    assert isinstance(info.value, ValueError)
    assert "'roundrobin'" in str(info.value)
    assert "'range'" in str(info.value)
    assert "partition_assignment_strategy" in str(info.value)
    assert [m.member_id for m in t4.describe_group("g").members] == [c1.member_id]
    assert c1.assignment() == ALL4
    c1.close()
    settle(t4, [c2], ALL4)  # once the group is empty, the other assignor is welcome
    assert t4.describe_group("g").protocol == "roundrobin"


# --- assign() with a group, and resets in a group --------------------------------------


def test_assign_with_a_group_uses_and_commits_the_group_offsets(
    t4: eventlog.Log, make: Any
) -> None:
    t4.commit_offsets("g", {TP("t", 1): 2})
    c = make()
    c.assign([TP("t", 1)])
    assert [r.offset for r in c.poll(0)] == [2]
    c.commit()
    assert t4.committed_offsets("g") == {TP("t", 1): OffsetAndMetadata(3, "")}
    assert c.member_id is None  # not a member
    assert t4.describe_group("g").members == ()


def test_assign_with_a_group_cannot_commit_while_the_group_has_members(
    t4: eventlog.Log, make: Any
) -> None:
    member = make("t")
    settle(t4, [member], ALL4)
    outsider = make(enable_auto_commit=False)
    outsider.assign([TP("t", 0)])
    outsider.poll(0)
    with pytest.raises(CommitFailedError, match="live members"):
        outsider.commit()
    assert t4.committed_offsets("g") == {}


def test_auto_offset_reset_error_in_a_group(t4: eventlog.Log, make: Any) -> None:
    t4.commit_offsets("g", {TP("t", 0): 1, TP("t", 1): 2, TP("t", 2): 0, TP("t", 3): 3})
    c = make("t", auto_offset_reset="error")
    records: dict[int, list[Record]] = {}
    settle(t4, [c], ALL4, records=records)
    assert sorted((r.partition, r.offset) for r in records[0]) == [
        (0, 1),
        (0, 2),
        (1, 2),
        (2, 0),
        (2, 1),
        (2, 2),
    ]
    t4.create_partitions("t", 5)  # the new partition has no committed offset
    deadline = time.monotonic() + 5

    def poll_for_a_while() -> None:
        while time.monotonic() < deadline:
            c.poll(0.02)

    with pytest.raises(NoOffsetForPartitionError) as info:
        poll_for_a_while()
    assert (info.value.topic, info.value.partition) == ("t", 4)


@pytest.mark.parametrize(("policy", "expected"), [("earliest", 3), ("latest", 0)])
def test_auto_offset_reset_for_a_new_group(
    t4: eventlog.Log, make: Any, policy: str, expected: int
) -> None:
    c = make("t", auto_offset_reset=policy)
    records: dict[int, list[Record]] = {}
    settle(t4, [c], ALL4, records=records)
    records[0] += c.poll(0)
    assert len(records[0]) == 4 * expected
    assert {c.position(tp) for tp in ALL4} == {3}


# --- subscriptions inside a group ------------------------------------------------------


def test_members_with_different_subscriptions(log: eventlog.Log, make: Any) -> None:
    log.create_topic("a", 2)
    log.create_topic("b", 2)
    only_a, both = make("a"), make("a", "b")
    settle(log, [only_a, both], tps("a", 0, 1) | tps("b", 0, 1))
    assert all(tp.topic == "a" for tp in only_a.assignment())
    assert tps("b", 0, 1) <= both.assignment()
    desc = {m.member_id: m for m in log.describe_group("g").members}
    assert desc[only_a.member_id].topics == ("a",)
    assert desc[both.member_id].topics == ("a", "b")


def test_changing_the_subscription_of_a_member_rebalances(log: eventlog.Log, make: Any) -> None:
    log.create_topic("a", 2)
    log.create_topic("b", 2)
    c1, c2 = make("a"), make("a")
    settle(log, [c1, c2], tps("a", 0, 1))
    c1.subscribe(["b"])
    assert c1.subscription() == {"b"}
    settle(log, [c1, c2], tps("a", 0, 1) | tps("b", 0, 1))
    assert c1.assignment() == tps("b", 0, 1)
    assert c2.assignment() == tps("a", 0, 1)


# --- handles, closed and read-only logs ------------------------------------------------


def test_two_handles_on_one_path_share_a_group(t4: eventlog.Log, make: Any, log_path: Any) -> None:
    with eventlog.open(log_path, durability="off") as other:
        c1 = make("t")
        c2 = other.consumer("t", group="g", auto_offset_reset="earliest", **LONG)
        try:
            records: dict[int, list[Record]] = {}
            settle(t4, [c1, c2], ALL4, records=records)
            assert len(c1.assignment()) == len(c2.assignment()) == 2
            assert len(records[0]) + len(records[1]) == 12
        finally:
            c2.close()
        settle(t4, [c1], ALL4, timeout=5)


def test_log_closed_under_a_group_member(log_path: Any) -> None:
    log = eventlog.open(log_path, durability="off")
    log.create_topic("t", 2)
    c = log.consumer("t", group="g", **SHORT)
    c.poll(0.05)
    assert len(c.assignment()) == 2
    log.close()
    with pytest.raises(eventlog.LogClosedError):
        c.poll(0)
    c.close()  # does not raise: the lease simply runs out
    assert c.closed
    with eventlog.open(log_path, durability="off") as again:
        deadline = time.monotonic() + 5
        while again.describe_group("g").members and time.monotonic() < deadline:
            time.sleep(0.02)
        assert again.describe_group("g").state == "Empty"


def test_closing_the_log_handle_of_a_member_ends_its_membership(
    t4: eventlog.Log, make: Any, log_path: Any
) -> None:
    other = eventlog.open(log_path, durability="off")
    c1 = make("t", **SHORT)
    c2 = other.consumer("t", group="g", auto_offset_reset="earliest", **SHORT)
    settle(t4, [c1, c2], ALL4)
    other.close()  # c2 can no longer poll: its partitions must go to c1
    try:
        settle(t4, [c1], ALL4, timeout=2)
    finally:
        c2.close()


def test_group_consumer_on_a_readonly_log_cannot_join(t4: eventlog.Log, log_path: Any) -> None:
    with eventlog.open(log_path, readonly=True) as ro:
        c = ro.consumer("t", group="g")
        with pytest.raises(eventlog.ReadOnlyLogError) as info:
            c.poll(0)
        assert isinstance(info.value, PermissionError)
        assert "read-only" in str(info.value)
        c.close()


def test_assign_with_a_group_on_a_readonly_log_reads_committed_offsets_and_closes(
    t4: eventlog.Log, log_path: Any
) -> None:
    t4.commit_offsets("g", {TP("t", 0): 2})
    with eventlog.open(log_path, readonly=True) as ro:
        c = ro.consumer(group="g")
        c.assign([TP("t", 0)])
        assert [r.offset for r in c.poll(0)] == [2]
        c.close()
        assert c.closed


# --- bugs found while writing these tests (each a minimal reproduction) ----------------


def test_deleted_topic_leaves_the_assignment_of_an_auto_committing_group(
    log: eventlog.Log,
) -> None:
    log.create_topic("a", 2)
    log.create_topic("b", 2)
    c1, c2 = (log.consumer(pattern="[ab]", group="g", **LONG) for _ in range(2))
    try:
        settle(log, [c1, c2], tps("a", 0, 1) | tps("b", 0, 1))
        log.delete_topic("a")
        settle(log, [c1, c2], tps("b", 0, 1))
        c1.close()
        assert [m.member_id for m in log.describe_group("g").members] == [c2.member_id]
    finally:
        for c in (c1, c2):
            with contextlib.suppress(eventlog.EventLogError):
                c.close()


def test_closing_an_expired_member_reports_its_partitions_lost(t4: eventlog.Log, make: Any) -> None:
    class CommitOnRevoke(Recorder):
        consumer: eventlog.Consumer

        def on_partitions_revoked(self, partitions: set[TopicPartition]) -> None:
            super().on_partitions_revoked(partitions)
            self.consumer.commit()  # fine while we own them, as the docs suggest

        def on_partitions_lost(self, partitions: set[TopicPartition]) -> None:
            self._note("lost", partitions)  # no commit: they are gone

    r1 = CommitOnRevoke()
    c1 = make("t", listener=r1, enable_auto_commit=False, **SHORT)
    r1.consumer = c1
    c2 = make("t", **SHORT)
    settle(t4, [c1, c2], ALL4)
    had = frozenset(c1.assignment())
    before = len(r1.events)
    c1._membership.stop_heartbeats()  # c1 hangs until its lease ends
    deadline = time.monotonic() + 5
    while c2.assignment() != ALL4 and time.monotonic() < deadline:
        c2.poll(0.02)
    assert c2.assignment() == ALL4
    c1.close()
    assert r1.events[before:] == [("lost", had)]


def test_a_second_live_instance_fences_the_first(t4: eventlog.Log, make: Any) -> None:
    r1 = Recorder()
    c1 = make("t", group_instance_id="a", listener=r1)
    c2 = make("t", group_instance_id="b")
    settle(t4, [c1, c2], ALL4)
    mine = frozenset(c1.assignment())
    c3 = make("t", group_instance_id="a")  # while c1 is still alive
    c3.poll(0)
    with pytest.raises(CommitFailedError):
        c1.commit({sorted(mine)[0]: 1})
    fenced_reads: list[Record] = []
    deadline = time.monotonic() + 2
    while c3.assignment() != mine and time.monotonic() < deadline:
        with contextlib.suppress(eventlog.EventLogError):  # a fatal "fenced" error is fine
            fenced_reads += c1.poll(0.01)
        c2.poll(0.01)
        c3.poll(0.01)
    assert c3.assignment() == mine
    assert c1.assignment() == set()
    assert fenced_reads == []
    assert ("lost", mine) in r1.events
    # Fatal, as Kafka's FencedInstanceIdException: every later poll says so.
    for _ in range(2):
        with pytest.raises(eventlog.FencedInstanceIdError, match="group_instance_id 'a'"):
            c1.poll(0)


def test_waiting_inside_poll_is_not_a_missed_poll(t4: eventlog.Log, make: Any) -> None:
    r1 = Recorder()
    c1 = make("t", listener=r1, max_poll_interval_ms=200, auto_offset_reset="latest")
    settle(t4, [c1], ALL4)
    member_id, generation = c1.member_id, c1.generation
    assert c1.poll(0.6) == []  # waits three max_poll_interval_ms, inside poll()
    assert r1.events == [("assigned", ALL4)]
    assert (c1.member_id, c1.generation) == (member_id, generation)


# --- regressions ------------------------------------------------------------------------


def test_waiting_for_a_partition_does_not_spin(log: eventlog.Log, make: Any) -> None:
    """A member whose partitions are still held by their previous owner (which is not
    polling) waits for the group document to change instead of retrying in a loop."""
    log.create_topic("t", 2)
    a = make("t", client_id="a")
    settle(log, [a], tps("t", 0, 1))
    b = make("t", client_id="b")
    b.poll(0)  # joins: the group now wants one partition moved from a to b
    before = log._storage.commits
    b.poll(0.5)  # a does not poll, so it does not release: b must wait, not spin
    writes = log._storage.commits - before
    # a's and b's heartbeats (every 100 ms) and a few syncs; a spinning member made
    # thousands of write transactions in that time.
    assert writes < 40, writes
    assert b.assignment() == set()
    a.poll(0)  # a releases the partition b is assigned
    deadline = time.monotonic() + 5
    while not b.assignment() and time.monotonic() < deadline:
        b.poll(0.05)
    assert len(b.assignment()) == 1


def test_a_failing_listener_on_close_still_leaves_the_group(log: eventlog.Log, make: Any) -> None:
    log.create_topic("t", 2)

    class Failing(RebalanceListener):
        armed = False

        def on_partitions_revoked(self, partitions: set[TopicPartition]) -> None:
            if self.armed:
                raise RuntimeError("listener bug")

    listener = Failing()
    a = make("t", listener=listener)
    b = make("t")
    settle(log, [a, b], tps("t", 0, 1))
    listener.armed = True
    with pytest.raises(RuntimeError, match="listener bug"):
        a.close()
    assert a.closed
    assert [m.member_id for m in log.describe_group("g").members] == [b.member_id]
    deadline = time.monotonic() + 5
    while b.assignment() != tps("t", 0, 1) and time.monotonic() < deadline:
        b.poll(0.05)
    assert b.assignment() == tps("t", 0, 1)  # at once, not after a session timeout


def test_a_departed_static_member_leaves_the_group_stable(log: eventlog.Log, make: Any) -> None:
    log.create_topic("t", 2)
    a = make("t", group_instance_id="a")
    b = make("t", group_instance_id="b")
    settle(log, [a, b], tps("t", 0, 1))
    generation = log.describe_group("g").generation
    a.close()  # a static member keeps its place (and its partition) until its session ends
    described = log.describe_group("g")
    assert len(described.members) == 2
    assert described.state == "Stable"
    assert described.generation == generation


def test_generations_never_repeat_after_a_group_empties(log: eventlog.Log, make: Any) -> None:
    log.create_topic("t", 1)
    a = make("t")
    a.poll(0)
    first = log.describe_group("g").generation
    a.close()
    assert log.describe_group("g").state == "Empty"
    assert "g" in log.list_groups()
    b = make("t")
    b.poll(0)
    assert log.describe_group("g").generation > first
