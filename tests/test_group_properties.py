"""Rebalance properties of consumer groups, with hypothesis.

Two levels:

* ``GroupProtocolMachine`` drives the pure group state (``eventlog._groups.GroupState``,
  no LMDB) through joins, leaves, crashes, hangs, lease expiries and partition-count
  increases, with every member running the protocol the Consumer runs (release what left its
  target, take what is assigned and free, renew its lease), reading the group state
  possibly stale. At every step no partition is believed owned by two members that may
  still process records; at every rebalance of the sticky assignors with equal
  subscriptions the partitions that change hands between surviving members are the fewest
  balance requires; once the group settles every partition is owned by exactly one member.
* ``ConsumerGroupMachine`` does the same with real Consumers on a real log (in one thread;
  their heartbeat threads run beside): at every step each consumer reads only partitions
  the group says it owns and committed offsets never exceed end offsets; after the group
  settles the consumers' ``assignment()`` sets are disjoint and cover every partition, and
  every record was returned exactly once (every handover commits first).

Two plain tests pin down a case hypothesis found (a static member rejoining after its
predecessor's lease ended or its process died).
"""

from __future__ import annotations

import copy
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import attrs
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
)

import eventlog
from eventlog import TopicPartition
from eventlog._groups import GroupState, Member, ProcessIdentity

SESSION = 1000  # ms
TOPICS = ("a", "b")
PROTOCOLS = ("cooperative-sticky", "sticky", "range", "roundrobin")
STICKY = ("cooperative-sticky", "sticky")
MAX_MEMBERS = 6
MAX_PARTITIONS = 8
STATIC = (None, "s0", "s1")  # a member's group_instance_id


# ------------------------------------------------------------------ the pure protocol


@attrs.define
class SimMember:
    """One consumer as the group protocol sees it, and what it believes it owns."""

    mid: str
    instance: str | None
    topics: tuple[str, ...]
    pid: int
    status: str = "live"  # live | hung | dead | gone (closed, or fenced and stopped)
    owned: set[TopicPartition] = attrs.field(factory=set)  # what assignment() would say
    local_deadline: int = 0
    announced: int = -1  # the generation of the last on_partitions_assigned
    lost: bool = False  # a heartbeat found it no longer in the group
    view: GroupState | None = None  # the group state it last read (maybe stale now)


class GroupProtocolMachine(RuleBasedStateMachine):
    """The group protocol of ``_membership``/``_consumer``, on a bare GroupState."""

    def __init__(self) -> None:
        super().__init__()
        self.g = GroupState()
        self.now = 1_000_000
        self.sims: list[SimMember] = []
        self.counts: dict[str, int] = {}
        self.dead_pids: set[int] = set()
        self.next_id = 0
        self.protocol = "cooperative-sticky"
        self.mixed = False

    @initialize(
        protocol=st.sampled_from(PROTOCOLS),
        mixed=st.booleans(),
        a=st.integers(1, 6),
        b=st.integers(1, 4),
        members=st.lists(
            st.tuples(st.sampled_from([("a",), ("b",), ("a", "b")]), st.sampled_from(STATIC)),
            min_size=1,
            max_size=3,
        ),
    )
    def setup(
        self,
        protocol: str,
        mixed: bool,
        a: int,
        b: int,
        members: list[tuple[tuple[str, ...], str | None]],
    ) -> None:
        self.protocol = protocol
        self.mixed = mixed  # members subscribe to different topics
        self.counts = {"a": a, "b": b}
        for topics, static in members:
            self.add_member(topics, static)

    # -- helpers mirroring the library's transactions --

    def alive(self, proc: ProcessIdentity | None) -> bool:
        return proc is None or proc.pid not in self.dead_pids

    def count_topics(self, names: Any) -> dict[str, int]:
        return {n: self.counts[n] for n in names if n in self.counts}

    def rebalance(self) -> None:
        """``rebalance_if_needed``, checking what every new assignment moved."""
        before = {mid: list(tps) for mid, tps in self.g.assignment.items()}
        if self.g.rebalance_if_needed(self.count_topics):
            self.check_assignment(before, self.g.assignment)

    def settle_state(self) -> None:
        self.g.expire(self.now, self.alive)
        self.rebalance()

    def sim_by_mid(self, mid: str) -> SimMember | None:
        for s in self.sims:
            if s.mid == mid:
                return s
        return None

    def join(self, sim: SimMember) -> None:
        """``Membership.join``."""
        self.g.expire(self.now, self.alive)
        self.g.join(
            Member(
                member_id=sim.mid,
                instance_id=sim.instance,
                client_id="sim",
                topics=sim.topics,
                protocol=self.protocol,
                session_ms=SESSION,
                deadline=self.now + SESSION,
                joined=self.now,
                proc=ProcessIdentity("simulated-boot", 1, sim.pid, 1),
            ),
            self.now,
        )
        self.settle_state()
        sim.local_deadline = self.now + SESSION
        sim.lost = False
        sim.view = None

    def forget(self, sim: SimMember) -> None:
        """``Membership.forget``: drop what the old member id holds."""
        self.g.remove(sim.mid)
        self.settle_state()

    def rejoin(self, sim: SimMember) -> None:
        """``Consumer._rejoin``: a consumer that lost its membership loses everything,
        forgets its old member id and joins anew; unless another member took its
        ``group_instance_id``: then it is fenced for good (FencedInstanceIdError)."""
        sim.owned.clear()  # on_partitions_lost
        fenced = sim.instance is not None and self.fenced_instance(sim)
        self.forget(sim)
        if fenced:
            sim.status = "gone"
            return
        self.next_id += 1
        sim.mid = f"member-{self.next_id:03d}"
        self.join(sim)

    def fenced_instance(self, sim: SimMember) -> bool:
        """``Membership.fenced``: another member now holds this instance id."""
        g = copy.deepcopy(self.g)
        g.expire(self.now, self.alive)
        return sim.mid in g.fenced or any(
            m.instance_id == sim.instance and m.member_id != sim.mid for m in g.members.values()
        )

    def heartbeat(self, sim: SimMember) -> None:
        """``Membership.heartbeat``."""
        self.g.expire(self.now, self.alive)
        member = self.g.members.get(sim.mid)
        if member is None:
            sim.lost = True
            return
        member.deadline = self.now + SESSION
        self.rebalance()
        sim.local_deadline = max(sim.local_deadline, self.now + SESSION)

    def read(self, sim: SimMember) -> None:
        sim.view = copy.deepcopy(self.g)

    def coordinate(self, sim: SimMember) -> None:
        """``Consumer._coordinate`` with ``Membership.sync``, using the member's (possibly
        stale) view of the group for what to release and want."""
        if sim.lost or self.now >= sim.local_deadline:
            self.rejoin(sim)
            if sim.status != "live":
                return
        view = sim.view if sim.view is not None else copy.deepcopy(self.g)
        sim.view = None
        if sim.mid not in view.members:
            self.rejoin(sim)
            return
        target = set(view.target_of(sim.mid))
        owned = set(sim.owned)
        eager = self.protocol != "cooperative-sticky"
        revoke = owned if eager and view.generation != sim.announced else owned - target
        sim.owned -= revoke  # on_partitions_revoked comes before the release is written
        want = target - (owned - revoke)
        # -- the sync transaction --
        self.g.expire(self.now, self.alive)
        if sim.mid not in self.g.members:
            self.rejoin(sim)
            return
        self.g.release(sim.mid, revoke)
        self.rebalance()
        owners_before = dict(self.g.owners)
        got = self.g.acquire(sim.mid, want)
        for tp in got:
            assert tp not in owners_before, f"{sim.mid} took {tp} from {owners_before[tp]}"
            assert tp in self.g.target_of(sim.mid)
        sim.owned |= got
        generation = self.g.generation
        if got or (generation != sim.announced and sim.owned == set(self.g.target_of(sim.mid))):
            sim.announced = generation

    def leave(self, sim: SimMember) -> None:
        """``Consumer.close`` -> ``Membership.leave``."""
        sim.owned.clear()  # on_partitions_revoked
        member = self.g.members.get(sim.mid)
        if member is not None and member.instance_id is not None:
            member.departed = True
            self.g.release(sim.mid, list(self.g.owners))
        else:
            self.g.remove(sim.mid)
        self.settle_state()
        sim.status = "gone"

    def tick(self, ms: int) -> None:
        """Time passes; every running member's heartbeat thread renews its lease."""
        assert ms < SESSION  # heartbeats come more often than the session timeout
        self.now += ms
        for sim in self.sims:
            if sim.status == "live":
                self.heartbeat(sim)

    # -- checks --

    def universe(self, members: Any) -> set[TopicPartition]:
        topics = {t for m in members for t in m.topics if t in self.counts}
        return {TopicPartition(t, p) for t in topics for p in range(self.counts[t])}

    def check_assignment(
        self, before: dict[str, list[TopicPartition]], after: dict[str, list[TopicPartition]]
    ) -> None:
        members = self.g.members
        assert set(after) <= set(members)
        owner_of: dict[TopicPartition, str] = {}
        for mid, tps in after.items():
            for tp in tps:
                assert tp not in owner_of, f"{tp} assigned to {owner_of[tp]} and {mid}"
                assert tp.topic in members[mid].topics
                owner_of[tp] = mid
        assert set(owner_of) == self.universe(members.values())
        subscriptions = {m.topics for m in members.values()}
        if self.protocol not in STICKY or len(subscriptions) != 1:
            return
        # Equal subscriptions: balanced, and sticky moves exactly what balance requires.
        total = len(owner_of)
        quota, extra = divmod(total, len(members))
        sizes = Counter({mid: len(after.get(mid, ())) for mid in members})
        assert sorted(sizes.values()) == [quota] * (len(members) - extra) + [quota + 1] * extra
        kept_before = {
            mid: [tp for tp in tps if tp in owner_of]
            for mid, tps in before.items()
            if mid in members
        }
        moved = sum(1 for mid, tps in kept_before.items() for tp in tps if owner_of[tp] != mid)
        over = [len(tps) - quota for tps in kept_before.values() if len(tps) > quota]
        required = sum(over) - min(extra, len(over))
        assert moved == required, (
            f"sticky rebalance moved {moved} partitions between surviving members; balance "
            f"requires {required} (before {kept_before}, after {after})"
        )

    @invariant()
    def no_partition_has_two_owners(self) -> None:
        """A member that may still process records (running or hung, within its local
        lease) believes it owns only partitions the group says it owns; the group's owners
        map gives each partition one owner, so no two such members share a partition."""
        held: dict[TopicPartition, str] = {}
        for sim in self.sims:
            if sim.status in ("live", "hung") and self.now < sim.local_deadline:
                assert sim.owned <= self.g.owned_by(sim.mid), (
                    f"{sim.mid} believes it owns {sorted(sim.owned - self.g.owned_by(sim.mid))}"
                    f" which the group gives to "
                    f"{[self.g.owners.get(tp) for tp in sorted(sim.owned)]}"
                )
                for tp in sim.owned:
                    assert tp not in held, f"{tp} held by {held.get(tp)} and {sim.mid}"
                    held[tp] = sim.mid
        assert set(self.g.owners.values()) <= set(self.g.members) | set(self.g.fenced)

    # -- rules --

    def running(self) -> list[SimMember]:
        return [s for s in self.sims if s.status == "live"]

    def pick(self, choices: list[SimMember], index: int) -> SimMember:
        return choices[index % len(choices)]

    @rule(
        topics=st.sampled_from([("a",), ("b",), ("a", "b")]),
        static=st.sampled_from(STATIC),
    )
    def add_member(self, topics: tuple[str, ...], static: str | None) -> None:
        if sum(s.status in ("live", "hung") for s in self.sims) >= MAX_MEMBERS:
            return
        if not self.mixed:
            topics = ("a", "b")
        if static is not None:
            holder = [s for s in self.sims if s.instance == static and s.status != "gone"]
            if any(s.status == "live" for s in holder):
                static = None  # two running consumers with one instance id: misconfigured
        self.next_id += 1
        sim = SimMember(f"member-{self.next_id:03d}", static, topics, pid=self.next_id)
        self.sims.append(sim)
        self.join(sim)

    @rule(
        action=st.sampled_from(["poll", "poll", "poll", "read", "close", "crash", "hang", "hang"]),
        index=st.integers(0, MAX_MEMBERS),
    )
    def member_acts(self, action: str, index: int) -> None:
        """A running member polls; or reads the group state (others may change it before
        its next poll syncs); or closes; or its process dies (detectable on this host at
        the next expiry); or it hangs: no heartbeats, no polls (a stuck process, a long
        pause, or a dead process in another pid namespace, which only its lease ends)."""
        if not self.running():
            return
        sim = self.pick(self.running(), index)
        if action == "poll":
            self.coordinate(sim)
        elif action == "read":
            self.read(sim)
        elif action == "close":
            self.leave(sim)
        elif action == "crash":
            sim.status = "dead"
            sim.owned.clear()
            self.dead_pids.add(sim.pid)
        else:
            sim.status = "hung"

    @rule(index=st.integers(0, MAX_MEMBERS))
    def restart(self, index: int) -> None:
        """A member's process dies and is started again at once (by a supervisor): a new
        consumer with the same subscription and ``group_instance_id`` joins."""
        running = self.running()
        if not running:
            return
        sim = self.pick(running, index)
        sim.status = "dead"
        sim.owned.clear()
        self.dead_pids.add(sim.pid)
        self.add_member(sim.topics, sim.instance)

    @rule(index=st.integers(0, MAX_MEMBERS))
    def wake(self, index: int) -> None:
        """A hung member resumes; its heartbeat thread or its next poll may come first."""
        hung = [s for s in self.sims if s.status == "hung"]
        if hung:
            self.pick(hung, index).status = "live"

    @rule(ms=st.integers(1, SESSION - 1))
    def time_passes(self, ms: int) -> None:
        self.tick(ms)

    @rule(index=st.integers(0, MAX_MEMBERS), delta=st.integers(-1, 1))
    def time_passes_to_a_lease_end(self, index: int, delta: int) -> None:
        """Time passes to just before, at or just after a hung member's lease end (the
        boundary where its local check and the others' expiry must agree)."""
        hung = [s for s in self.sims if s.status == "hung"]
        if hung:
            ms = self.pick(hung, index).local_deadline + delta - self.now
            if 0 < ms < SESSION:
                self.tick(ms)

    @rule(topic=st.sampled_from(TOPICS), more=st.integers(1, 3), index=st.integers(0, MAX_MEMBERS))
    def add_partitions(self, topic: str, more: int, index: int) -> None:
        """``create_partitions``; the next heartbeat of some member rebalances."""
        self.counts[topic] = min(MAX_PARTITIONS, self.counts[topic] + more)
        if self.running():
            self.heartbeat(self.pick(self.running(), index))

    def teardown(self) -> None:
        self.settle_and_check()

    def settle_and_check(self) -> None:
        """Settle: hung members wake, time passes, everyone polls until nothing changes;
        then every partition of the subscribed topics has exactly one owner."""
        for sim in self.sims:
            if sim.status == "hung":
                sim.status = "live"
        if not self.running():
            return  # nobody writes: the group state stays as it is
        for _round in range(40):
            self.tick(SESSION // 3)
            for sim in self.running():
                self.coordinate(sim)
                self.no_partition_has_two_owners()
            if self.quiet():
                break
        else:
            raise AssertionError(f"the group did not settle: {self.g}")
        running = self.running()
        members = self.g.members
        assert set(members) == {s.mid for s in running}
        assert not self.g.fenced
        owned: dict[TopicPartition, str] = {}
        for sim in running:
            assert sim.owned == self.g.owned_by(sim.mid) == set(self.g.target_of(sim.mid))
            for tp in sim.owned:
                assert tp not in owned
                owned[tp] = sim.mid
        orphans = self.universe(members.values()) - set(owned)
        assert not orphans, f"the group settled with {sorted(orphans)} owned by nobody: {self.g}"
        assert set(self.g.owners) == set(owned)

    def quiet(self) -> bool:
        """Settled, with nobody waiting for a lease to end."""
        running = {s.mid for s in self.running()}
        return (
            set(self.g.members) == running
            and not self.g.fenced
            and self.g.settled()
            and all(s.owned == self.g.owned_by(s.mid) for s in self.running())
            and all(
                s.owned == set(self.g.target_of(s.mid)) or not self.g.target_of(s.mid)
                for s in self.running()
            )
        )


def test_static_member_restarted_after_its_process_died_gets_its_partitions() -> None:
    """The minimal case hypothesis found: a static member's process dies and a new one
    with the same ``group_instance_id`` joins before any other member noticed (the join
    transaction itself expires the old member)."""
    machine = GroupProtocolMachine()
    machine.setup("cooperative-sticky", False, 1, 1, [(("a",), "s0")])
    machine.add_member(("a",), None)
    machine.restart(0)
    machine.settle_and_check()


GroupProtocolMachine.TestCase.settings = settings(
    max_examples=300,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestGroupProtocol = GroupProtocolMachine.TestCase


# ------------------------------------------------------------------ real consumers

GROUP = "g"
TOPIC = "t"


class ConsumerGroupMachine(RuleBasedStateMachine):
    """Real Consumers of one group on a real log, driven from one thread."""

    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="eventlog-groups-"))
        self.log = eventlog.open(self.tmp / "log", durability="off")
        self.consumers: list[eventlog.Consumer] = []
        self.protocol = "cooperative-sticky"
        self.seq = 0
        self.returned: Counter[tuple[int, int]] = Counter()  # (partition, offset) -> times
        self.next_client = 0

    @initialize(protocol=st.sampled_from(PROTOCOLS), partitions=st.integers(1, 5))
    def setup(self, protocol: str, partitions: int) -> None:
        self.protocol = protocol
        self.log.create_topic(TOPIC, partitions=partitions)

    def open_consumers(self) -> list[eventlog.Consumer]:
        return [c for c in self.consumers if not c.closed]

    @staticmethod
    def instance(consumer: eventlog.Consumer) -> str | None:
        return None if consumer._membership is None else consumer._membership.instance_id

    def poll(self, consumer: eventlog.Consumer, timeout: float = 0.0) -> None:
        for r in consumer.poll(timeout):
            self.returned[(r.partition, r.offset)] += 1

    @rule(static=st.sampled_from([None, None, "s0"]))
    def add_member(self, static: str | None) -> None:
        if len(self.open_consumers()) >= 4 and static is None:
            return
        if static is not None and any(self.instance(c) == static for c in self.open_consumers()):
            static = None  # one running consumer per instance id
        self.next_client += 1
        consumer = self.log.consumer(
            TOPIC,
            group=GROUP,
            group_instance_id=static,
            auto_offset_reset="earliest",
            partition_assignment_strategy=self.protocol,
            session_timeout_ms=60_000,
            client_id=f"c{self.next_client}",
        )
        self.consumers.append(consumer)
        self.poll(consumer)

    @rule(index=st.integers(0, 3))
    def close_member(self, index: int) -> None:
        running = self.open_consumers()
        if running:
            running[index % len(running)].close()

    @rule(rounds=st.integers(1, 3))
    def poll_all(self, rounds: int) -> None:
        for _ in range(rounds):
            for c in self.open_consumers():
                self.poll(c)

    @rule(index=st.integers(0, 3))
    def commit(self, index: int) -> None:
        running = self.open_consumers()
        if running:
            running[index % len(running)].commit()

    @rule(count=st.integers(1, 20))
    def append(self, count: int) -> None:
        self.log.append_batch(
            TOPIC,
            [
                eventlog.NewRecord(b"%d" % s, key=b"k%d" % (s % 7))
                for s in range(self.seq, self.seq + count)
            ],
        )
        self.seq += count

    @rule(more=st.integers(1, 2))
    def add_partitions(self, more: int) -> None:
        total = self.log.describe_topic(TOPIC).partition_count + more
        if total <= 6:
            self.log.create_partitions(TOPIC, total)

    def owned_in_group(self) -> dict[str, set[TopicPartition]]:
        try:
            group = self.log.describe_group(GROUP)
        except eventlog.GroupNotFoundError:
            return {}
        return {m.member_id: set(m.owned) for m in group.members}

    @invariant()
    def consumers_read_only_what_they_own(self) -> None:
        owned = self.owned_in_group()
        seen: dict[TopicPartition, str] = {}
        for c in self.open_consumers():
            mine = c.assignment()
            if mine:
                assert c.member_id is not None
                assert mine <= owned.get(c.member_id, set())
            for tp in mine:
                assert tp not in seen, f"{tp} read by {seen[tp]} and {c.member_id}"
                seen[tp] = str(c.member_id)
        ends = self.log.end_offsets(TOPIC)
        for tp, committed in self.log.committed_offsets(GROUP).items():
            assert committed.offset <= ends[tp.partition]

    def settled(self) -> bool:
        running = self.open_consumers()
        owned = self.owned_in_group()
        if {c.member_id for c in running} != set(owned):
            return False
        count = self.log.describe_topic(TOPIC).partition_count
        every = {TopicPartition(TOPIC, p) for p in range(count)}
        return (
            all(c.assignment() == owned[str(c.member_id)] for c in running)
            and set().union(*(c.assignment() for c in running)) == every
        )

    def teardown(self) -> None:
        try:
            if self.open_consumers():
                # A static member that closed keeps its partitions until its session ends
                # (60 s here): restart it, as a deployment would.
                group = self.log.describe_group(GROUP)
                if any(m.instance_id == "s0" for m in group.members) and not any(
                    self.instance(c) == "s0" for c in self.open_consumers()
                ):
                    self.add_member("s0")
                end = time.monotonic() + 30
                while not self.settled():
                    assert time.monotonic() < end, (
                        f"the group did not settle: {self.log.describe_group(GROUP)}; "
                        f"consumers {[(c.member_id, c.assignment()) for c in self.consumers]}"
                    )
                    for c in self.open_consumers():
                        self.poll(c, 0.001)
                # Settled: the assignments are disjoint and cover every partition.
                sets = [c.assignment() for c in self.open_consumers()]
                assert sum(map(len, sets)) == len(set().union(*sets))
                # Every record is returned (once: every handover committed first).
                ends = self.log.end_offsets(TOPIC)
                wanted = {(p, o) for p, end in ends.items() for o in range(end)}
                deadline = time.monotonic() + 30
                while not wanted <= set(self.returned):
                    assert time.monotonic() < deadline, sorted(wanted - set(self.returned))
                    for c in self.open_consumers():
                        self.poll(c, 0.001)
                assert set(self.returned) == wanted
                assert max(self.returned.values(), default=1) == 1
                for c in self.open_consumers():
                    c.commit()
                committed = self.log.committed_offsets(GROUP)
                assert {tp.partition: om.offset for tp, om in committed.items()} == ends
            for c in self.consumers:
                c.close()
        finally:
            self.log.close()
            shutil.rmtree(self.tmp, ignore_errors=True)


ConsumerGroupMachine.TestCase.settings = settings(
    max_examples=40,
    stateful_step_count=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestConsumerGroup = ConsumerGroupMachine.TestCase


def test_static_member_rejoining_after_its_lease_ended_gets_its_partitions(
    log: eventlog.Log,
) -> None:
    """The same with real consumers and no process death: a static member stops (a hung
    process, or one that died where /proc cannot tell) and a new instance joins after its
    lease ended but before another member's heartbeat removed it. The new instance must
    get the old one's partitions (Kafka: a static member that timed out is removed and
    the group rebalances)."""
    log.create_topic(TOPIC, partitions=4)
    # The dynamic member's heartbeats are far apart, so the join below is what finds the
    # old static member's lease over.
    other = log.consumer(
        TOPIC, group=GROUP, session_timeout_ms=60_000, heartbeat_interval_ms=30_000
    )
    old = log.consumer(
        TOPIC,
        group=GROUP,
        group_instance_id="s0",
        session_timeout_ms=300,
        heartbeat_interval_ms=100,
    )
    every = {TopicPartition(TOPIC, p) for p in range(4)}
    end = time.monotonic() + 30
    while other.assignment() | old.assignment() != every or not old.assignment():
        assert time.monotonic() < end
        other.poll(0.01)
        old.poll(0.01)
    assert old._membership is not None
    old._membership.stop_heartbeats()  # the old instance stops: no heartbeats, no polls
    end = time.monotonic() + 30
    while len(log.describe_group(GROUP).members) > 1:  # its lease ended
        assert time.monotonic() < end
        time.sleep(0.05)
    new = log.consumer(
        TOPIC,
        group=GROUP,
        group_instance_id="s0",
        session_timeout_ms=300,
        heartbeat_interval_ms=100,
    )
    end = time.monotonic() + 10
    while other.assignment() | new.assignment() != every:
        if time.monotonic() > end:
            group = log.describe_group(GROUP)
            raise AssertionError(
                f"partitions {sorted(every - other.assignment() - new.assignment())} are "
                f"owned by nobody; group {group.state}, members "
                f"{[(m.instance_id, m.assignment, m.owned) for m in group.members]}"
            )
        other.poll(0.01)
        new.poll(0.01)
    assert not other.assignment() & new.assignment()
    for c in (new, other, old):
        c.close()
