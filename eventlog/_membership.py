"""One consumer's membership of a group: join, heartbeats, ownership changes and commits.

Every operation here is one write transaction on the group's state document (see
``_groups``); the consumer decides *when* (inside ``poll()``, so that rebalance callbacks
run in the application's thread), and a background thread keeps the lease alive between
polls.
"""

from __future__ import annotations

import contextlib
import threading
import time
import weakref
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ._clock import now_ms
from ._errors import (
    CommitFailedError,
    EventLogError,
    PartitionNotFoundError,
    TopicNotFoundError,
)
from ._groups import (
    GroupState,
    Member,
    check_fencing,
    commit_offsets,
    new_member_id,
    process_alive,
    process_identity,
    read_committed,
)
from ._records import TopicPartition

if TYPE_CHECKING:
    from ._log import Log
    from ._logbase import LogBase


def load_state(txn: Any, log: LogBase, group: str) -> GroupState | None:
    db = log._dbs.get(b"members")
    if db is None:
        return None
    raw = txn.get(group.encode(), db=db)
    return None if raw is None else GroupState.unpack(raw, group)


def store_state(txn: Any, log: LogBase, group: str, state: GroupState) -> None:
    # Kept when the group empties, so that generations never repeat (delete_group
    # removes it).
    if not state.members:
        # A group with no members and no committed offsets does not exist any more.
        cursor = txn.cursor(db=log._dbs[b"groups"])
        prefix = group.encode() + b"\x00"
        if not (cursor.set_range(prefix) and bytes(cursor.key()).startswith(prefix)):
            txn.delete(group.encode(), db=log._dbs[b"members"])
            return
    txn.put(group.encode(), state.pack(), db=log._dbs[b"members"])


def topic_counts(log: Log, txn: Any, names: Iterable[str], *, writing: bool) -> dict[str, int]:
    counts: dict[str, int] = {}
    for name in names:
        with contextlib.suppress(TopicNotFoundError):
            counts[name] = log._catalog.get(txn, name, writing=writing).partitions
    return counts


def settle(log: Log, txn: Any, state: GroupState, now: int) -> None:
    state.settle(now, lambda names: topic_counts(log, txn, names, writing=True), process_alive)


def offsets_by_id(
    log: Log,
    txn: Any,
    offsets: Mapping[TopicPartition, tuple[int, str]],
    *,
    strict: bool = False,
    ids: Mapping[TopicPartition, int] | None = None,
) -> dict[tuple[int, int], tuple[int, str]]:
    """Translate topic names to ids (inside a write transaction).

    ``strict`` (offsets the application gave): an unknown topic or partition is an error.
    Otherwise (positions committed on the consumer's behalf) offsets of topics deleted
    meanwhile are dropped: there is nothing left to resume.
    """
    out: dict[tuple[int, int], tuple[int, str]] = {}
    for tp, value in offsets.items():
        try:
            info = log._catalog.get(txn, tp.topic, writing=True)
        except TopicNotFoundError:
            if strict:
                raise
            continue
        if not strict and ids is not None and ids.get(tp, info.topic_id) != info.topic_id:
            continue  # a position in a deleted topic re-created since: not for the new one
        if tp.partition < info.partitions:
            out[(info.topic_id, tp.partition)] = value
        elif strict:
            raise PartitionNotFoundError(
                f"partition {tp.partition} does not exist; topic {tp.topic!r} has partitions "
                f"0..{info.partitions - 1}",
                topic=tp.topic,
                partition=tp.partition,
            )
    return out


class NotAMember(Exception):
    """Internal: the member was removed from its group (lease expired, or fenced)."""


class Membership:
    """The group side of a Consumer. Not thread-safe by itself: the consumer calls it from
    one thread at a time, and the heartbeat thread only calls :meth:`heartbeat`, which
    touches the shared flags under ``lock``."""

    def __init__(
        self,
        log: Log,
        group: str,
        *,
        instance_id: str | None,
        client_id: str,
        protocol: str,
        session_ms: int,
        heartbeat_ms: int,
        max_poll_interval_ms: int,
    ) -> None:
        self.log = log
        self.group = group
        self.instance_id = instance_id
        self.client_id = client_id
        self.protocol = protocol
        self.session_ms = session_ms
        self.heartbeat_ms = heartbeat_ms
        self.max_poll_interval_ms = max_poll_interval_ms
        self.lock = threading.Lock()
        self.member_id: str | None = None
        self.topics: tuple[str, ...] = ()
        self.generation = -1
        self.target: frozenset[TopicPartition] = frozenset()
        self.local_deadline = 0  # ms: our lease as we must assume it
        self.renewed_ms = 0  # clock time of the last renewal (join or heartbeat)
        self.dirty = True  # the group changed since the consumer last synced
        self.lost = False  # removed from the group behind the consumer's back
        self.last_poll = time.monotonic()
        self.seen_raw: bytes | None = None
        self._parsed: tuple[bytes, GroupState] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # The topic id each position was read in (kept by the consumer).
        self.topic_ids: dict[TopicPartition, int] = {}

    # -- observing --

    def _observe(self, state: GroupState | None) -> None:
        """Note what a transaction saw (call with ``lock`` held)."""
        mid = self.member_id
        if mid is None:
            return
        if state is None or mid not in state.members:
            self.lost = True
            self.dirty = True
            return
        target = frozenset(state.target_of(mid))
        if (
            state.generation != self.generation
            or target != self.target
            or state.owned_by(mid) != target  # still waiting for a partition to be freed
        ):
            self.dirty = True

    def parsed(self, raw: bytes) -> GroupState:
        """The group document ``raw``, decoded once per version (treat it as read-only)."""
        cached = self._parsed
        if cached is not None and cached[0] == raw:
            return cached[1]
        state = GroupState.unpack(raw, self.group)
        self._parsed = (raw, state)
        return state

    def observe_raw(self, raw: bytes | None) -> None:
        """The consumer's fetch saw the group document: note whether it changed."""
        if raw == self.seen_raw:
            return
        self.seen_raw = raw
        state = None if raw is None else self.parsed(raw)
        with self.lock:
            self._observe(state)

    # -- transactions --

    def join(self, topics: Iterable[str]) -> None:
        """Join the group (a new member id; a static member replaces its old self)."""
        self.topics = tuple(sorted(set(topics)))
        member_id = new_member_id(self.client_id)
        started = now_ms()

        def join(txn: Any) -> None:
            now = now_ms()
            state = load_state(txn, self.log, self.group) or GroupState()
            state.join(
                Member(
                    member_id=member_id,
                    instance_id=self.instance_id,
                    client_id=self.client_id,
                    topics=self.topics,
                    protocol=self.protocol,
                    session_ms=self.session_ms,
                    deadline=now + self.session_ms,
                    joined=now,
                    proc=process_identity(),
                ),
                now,
            )
            settle(self.log, txn, state, now)
            store_state(txn, self.log, self.group, state)

        self.log._check()
        self.log._write(join, f"joining consumer group {self.group!r}")
        with self.lock:
            self.member_id = member_id
            self.local_deadline = started + self.session_ms
            self.renewed_ms = started
            self.generation = -1
            self.target = frozenset()
            self.lost = False
            self.dirty = True
        self._start_heartbeats()

    def heartbeat(self, topics: Iterable[str] | None = None, *, alive: bool = False) -> None:
        """Renew the lease (and update the subscription), settling the group.

        ``alive``: the member is demonstrably running (it is polling under a manual
        clock, see ``eventlog.testing.ManualClock``): renew its lease even if clock time
        has passed its deadline, before expiring others.
        """
        mid = self.member_id
        if mid is None:
            return
        new_topics = None if topics is None else tuple(sorted(set(topics)))
        started = now_ms()

        def beat(txn: Any) -> GroupState | None:
            now = now_ms()
            state = load_state(txn, self.log, self.group)
            if state is None:
                return None
            if alive and mid in state.members:
                state.members[mid].deadline = now + self.session_ms
            state.expire(now, process_alive)
            member = state.members.get(mid)
            if member is None:
                store_state(txn, self.log, self.group, state)
                return None
            member.deadline = now + self.session_ms
            if new_topics is not None:
                member.topics = new_topics
            state.rebalance_if_needed(lambda n: topic_counts(self.log, txn, n, writing=True))
            store_state(txn, self.log, self.group, state)
            return state

        self.log._check()  # this handle closed: stop renewing (another handle may be open)
        state = self.log._write(beat, f"heartbeat in consumer group {self.group!r}")
        with self.lock:
            if self.member_id != mid:
                return  # the consumer left or rejoined meanwhile: this says nothing about now
            if new_topics is not None:
                self.topics = new_topics
            if state is not None and mid in state.members:
                self.local_deadline = max(self.local_deadline, started + self.session_ms)
                self.renewed_ms = started
            self._observe(state)

    def sync(
        self,
        release: set[TopicPartition],
        want: set[TopicPartition],
        commits: Mapping[TopicPartition, tuple[int, str]],
    ) -> tuple[set[TopicPartition], frozenset[TopicPartition], int, dict[TopicPartition, int]]:
        """Release partitions (committing their positions first), then take the free
        ones of ``want`` that are assigned to us.

        Returns (acquired, target, generation, {acquired partition: committed offset}).
        Raises NotAMember when the group no longer has us.
        """
        mid = self.member_id
        if mid is None:
            raise NotAMember

        def run(txn: Any) -> tuple[GroupState, set[TopicPartition], dict[TopicPartition, int]]:
            now = now_ms()
            state = load_state(txn, self.log, self.group)
            if state is None:
                raise NotAMember
            before = state.pack()
            state.expire(now, process_alive)
            member = state.members.get(mid)
            if member is None:
                store_state(txn, self.log, self.group, state)
                return state, set(), {}
            # The lease is not renewed here (heartbeats do that): a sync that changes
            # nothing writes nothing, so a member waiting for a partition does not
            # rewrite the group document (and wake every other member) in a loop.
            valid = {tp: v for tp, v in commits.items() if state.owners.get(tp) == mid}
            if valid:
                commit_offsets(
                    txn,
                    self.log._dbs[b"groups"],
                    self.group,
                    offsets_by_id(self.log, txn, valid, ids=self.topic_ids),
                    now,
                )
            state.release(mid, release)
            state.rebalance_if_needed(lambda n: topic_counts(self.log, txn, n, writing=True))
            got = state.acquire(mid, want)
            positions: dict[TopicPartition, int] = {}
            for tp in got:
                try:
                    info = self.log._catalog.get(txn, tp.topic, writing=True)
                except TopicNotFoundError:
                    continue
                found = read_committed(
                    txn, self.log._dbs[b"groups"], self.group, info.topic_id, tp.partition
                )
                if found is not None:
                    positions[tp] = found[0]
            if state.pack() != before:
                store_state(txn, self.log, self.group, state)
            return state, got, positions

        self.log._check()
        state, got, positions = self.log._write(run, f"rebalancing consumer group {self.group!r}")
        with self.lock:
            if mid not in state.members:
                self.lost = True
                self.dirty = True
                raise NotAMember
            self.generation = state.generation
            self.target = frozenset(state.target_of(mid))
            # Still waiting for a partition its previous owner holds? The next change of
            # the group document (that owner releasing it, a heartbeat) says when to try
            # again; retrying at once would spin. But partitions we hold that the (newer)
            # target no longer has are ours to release now.
            self.dirty = bool(state.owned_by(mid) - self.target)
        return got, self.target, self.generation, positions

    def commit(
        self, offsets: Mapping[TopicPartition, tuple[int, str]], *, strict: bool = False
    ) -> None:
        """Commit positions; refused (CommitFailedError) unless we own every partition.

        ``strict``: the offsets come from the application; unknown partitions are errors.
        """
        mid = self.member_id
        self.log._check()
        try:
            self.log._write(
                lambda txn: self.commit_in(txn, offsets, strict=strict, member_id=mid),
                f"committing offsets of group {self.group!r}",
            )
        except CommitFailedError:
            with self.lock:
                self.dirty = True
            raise

    def commit_in(
        self,
        txn: Any,
        offsets: Mapping[TopicPartition, tuple[int, str]],
        *,
        strict: bool,
        member_id: str | None,
    ) -> None:
        """The fenced commit, inside a caller's write transaction (a consumer's commit, or
        a log transaction's): raises CommitFailedError unless ``member_id`` owns every
        partition (None: a consumer outside the group, allowed while no member owns
        them)."""
        members_db = self.log._dbs.get(b"members")
        raw = None if members_db is None else txn.get(self.group.encode(), db=members_db)
        state = None if raw is None else self.parsed(bytes(raw))
        now = now_ms()
        mid = member_id
        if state is not None and (mid is None or state.members.get(mid) is not None):
            member = state.members.get(mid) if mid is not None else None
            if mid is None or (member is not None and member.deadline < now):
                # Our lease ran out: whether or not another member noticed yet, we no
                # longer have the right to commit. (Expire a copy: the parsed document is
                # shared.)
                state = GroupState.unpack(bytes(raw), self.group)  # type: ignore[arg-type]
                state.expire(now, process_alive)
        by_id = offsets_by_id(self.log, txn, offsets, strict=strict, ids=self.topic_ids)
        check_fencing(state, self.group, mid, offsets)
        commit_offsets(txn, self.log._dbs[b"groups"], self.group, by_id, now)

    def leave(self, commits: Mapping[TopicPartition, tuple[int, str]]) -> None:
        """Leave the group, committing ``commits`` first (for partitions we still own).

        A static member (``group_instance_id``) keeps its place and its lease, as in
        Kafka: its partitions wait for it until the session timeout, so a restart does not
        cause a rebalance. It releases them so that its replacement can take them at once.
        """
        self.stop_heartbeats()
        mid = self.member_id
        if mid is None:
            return
        self.member_id = None

        def run(txn: Any) -> None:
            now = now_ms()
            state = load_state(txn, self.log, self.group)
            if state is None:
                return
            valid = {tp: v for tp, v in commits.items() if state.owners.get(tp) == mid}
            if valid and mid in state.members:
                commit_offsets(
                    txn,
                    self.log._dbs[b"groups"],
                    self.group,
                    offsets_by_id(self.log, txn, valid, ids=self.topic_ids),
                    now,
                )
            member = state.members.get(mid)
            if member is not None and member.instance_id is not None:
                member.departed = True
                state.release(mid, list(state.owners))
            else:
                state.remove(mid)
            state.expire(now, process_alive)
            state.rebalance_if_needed(lambda n: topic_counts(self.log, txn, n, writing=True))
            store_state(txn, self.log, self.group, state)

        self.log._check()
        self.log._write(run, f"leaving consumer group {self.group!r}")

    def fenced(self) -> bool:
        """Whether another live member took this member's ``group_instance_id``."""
        if self.instance_id is None or self.member_id is None:
            return False
        mid = self.member_id
        state = self.log._storage.read(
            lambda txn: load_state(txn, self.log, self.group), "reading a consumer group"
        )
        if state is None:
            return False
        state.expire(now_ms(), process_alive)
        return mid in state.fenced or any(
            m.instance_id == self.instance_id and m.member_id != mid for m in state.members.values()
        )

    def forget(self, expected: str | None = None) -> None:
        """After losing membership: drop anything the old member id still holds.

        ``expected``: only if this is still the member id (the heartbeat thread must not
        remove a membership the consumer renewed meanwhile).
        """
        with self.lock:
            mid = self.member_id
            if mid is None or (expected is not None and mid != expected):
                return
            self.member_id = None

        def run(txn: Any) -> None:
            state = load_state(txn, self.log, self.group)
            if state is None:
                return
            state.remove(mid)
            state.expire(now_ms(), process_alive)
            state.rebalance_if_needed(lambda n: topic_counts(self.log, txn, n, writing=True))
            store_state(txn, self.log, self.group, state)

        self.log._write(run, f"leaving consumer group {self.group!r}")

    # -- the heartbeat thread --

    def _start_heartbeats(self) -> None:
        if self._thread is not None and self._thread.is_alive() and not self._stop.is_set():
            return
        self._stop = threading.Event()
        thread = threading.Thread(
            target=_heartbeat_loop,
            args=(weakref.ref(self), self._stop, self.heartbeat_ms / 1000),
            name=f"eventlog-heartbeat-{self.group}",
            daemon=True,
        )
        self._thread = thread
        thread.start()

    def stop_heartbeats(self) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        self._thread = None

    def poll_overdue(self) -> bool:
        return (time.monotonic() - self.last_poll) * 1000 > self.max_poll_interval_ms


def _heartbeat_loop(ref: weakref.ref[Membership], stop: threading.Event, interval: float) -> None:
    """Renew the lease every ``interval`` seconds until stopped, the membership is
    garbage-collected, or the log closes. A member that stops polling for longer than
    ``max_poll_interval_ms`` leaves the group (its partitions go to others)."""
    while not stop.wait(interval):
        membership = ref()
        if membership is None:
            return
        try:
            if membership.poll_overdue():
                stop.set()  # retiring: a rejoin must start a new heartbeat thread
                overdue = membership.member_id
                with membership.lock:
                    membership.lost = True
                    membership.dirty = True
                membership.forget(overdue)
                return
            membership.heartbeat()
        except EventLogError:
            # The log closed (or broke) under us: the consumer's next call reports it.
            return
        finally:
            del membership


__all__ = ["Membership", "NotAMember", "load_state", "now_ms", "store_state"]
