"""Consumer groups without a coordinator: membership, leases, assignment and fencing.

Kafka runs a group coordinator inside a broker. Here every member of a group lives on the
same host and writes to the same LMDB file, so the group's state is a small document in
the log itself, read and changed only inside write transactions. LMDB allows one write
transaction at a time, so every change to a group is serialised: whoever writes (a member
joining, heartbeating, leaving, committing) sees the whole group and may settle it.

Ownership is two-phase, which is what keeps a partition from ever having two live owners:

* the *assignment* is the target: which member should own which partition. Any change of
  membership or of the subscribed partitions recomputes it with the group's assignor and
  bumps the generation;
* the *owners* map says who owns a partition right now. A member takes a partition only
  when it is assigned to it and nobody owns it; it gives it up (after committing its
  position) when its assignment no longer includes it. A member whose lease expired, or
  whose process is gone, loses its partitions without being asked.

A member keeps its lease alive with heartbeats (write transactions that push its deadline
forward). It also checks its own lease locally before handing out records: its local
deadline is computed from the moment *before* its last successful heartbeat transaction,
so it always expires no later than the deadline the others see.

Layout (DESIGN.md section 3): the ``members`` sub-database maps a group name to its state
document (JSON, a few hundred bytes per member: one value per group rather than per member,
because every rebalance reads and writes all members at once anyway); the ``groups``
sub-database maps ``group NUL topic id partition`` to a committed offset.
"""

from __future__ import annotations

import json
import os
import struct
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final, NamedTuple

import attrs

from ._assignors import MemberSubscription, assign
from ._catalog import MAX_OFFSET
from ._errors import (
    CommitFailedError,
    CorruptLogError,
    InconsistentGroupProtocolError,
    InvalidArgumentError,
)
from ._records import TopicPartition

__all__ = [
    "GroupState",
    "Member",
    "OffsetAndMetadata",
    "ProcessIdentity",
    "commit_offsets",
    "read_committed",
    "validate_group",
    "validate_offsets",
]

OFFSET_KEY: Final = struct.Struct(">II")  # after "group NUL": topic id, partition
OFFSET_VALUE: Final = struct.Struct(">qq")  # offset, commit time (ms); then the metadata
MAX_GROUP_CHARS: Final = 249
MAX_METADATA_BYTES: Final = 4096  # Kafka's offset.metadata.max.bytes


class OffsetAndMetadata(NamedTuple):
    """A committed position: the next offset to read, and an application string."""

    offset: int
    metadata: str = ""


def validate_group(group: object) -> str:
    """Check a group name: a non-empty str of at most 249 characters, without NUL."""
    if type(group) is not str:
        raise InvalidArgumentError(
            f"group must be a str (a consumer group name); got {type(group).__name__}"
        )
    if not group or len(group.encode()) > MAX_GROUP_CHARS or "\x00" in group:
        raise InvalidArgumentError(
            f"group names have 1 to {MAX_GROUP_CHARS} characters and no NUL; got {group!r}",
            group=group,
        )
    return group


def offset_prefix(group: str) -> bytes:
    return group.encode() + b"\x00"


def offset_key(group: str, topic_id: int, partition: int) -> bytes:
    return offset_prefix(group) + OFFSET_KEY.pack(topic_id, partition)


def pack_offset(offset: int, metadata: str, now: int) -> bytes:
    return OFFSET_VALUE.pack(offset, now) + metadata.encode()


def unpack_offset(data: bytes | memoryview) -> tuple[int, int, str]:
    """(offset, commit time ms, metadata) of a stored committed offset."""
    data = bytes(data)
    if len(data) < OFFSET_VALUE.size:
        raise CorruptLogError("a committed offset record is truncated")
    offset, when = OFFSET_VALUE.unpack_from(data)
    try:
        metadata = data[OFFSET_VALUE.size :].decode()
    except UnicodeDecodeError:
        raise CorruptLogError("a committed offset's metadata is not UTF-8") from None
    return offset, when, metadata


# ---------------------------------------------------------------- process identity


class ProcessIdentity(NamedTuple):
    """Who runs a member: enough to tell, on the same host, that its process is gone.

    ``boot`` and ``pidns`` make a pid meaningful (same boot, same pid namespace);
    ``start`` (the process start time in clock ticks) tells a reused pid apart.
    """

    boot: str
    pidns: int
    pid: int
    start: int


def _read_start_time(pid: int) -> tuple[int, str] | None:
    """(start time, state letter) of a process from /proc, or None if it does not exist."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except (FileNotFoundError, ProcessLookupError):
        # /proc may hide other users' processes (mounted with hidepid): ask the kernel.
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except OSError:
            pass  # exists (EPERM: another user's)
        return (-1, "?")
    except OSError:
        return (-1, "?")  # exists but unreadable: assume alive
    # The command name (field 2) may contain spaces and parentheses: split after the last ")".
    fields = raw[raw.rfind(b")") + 2 :].split()
    try:
        return int(fields[19]), fields[0].decode()
    except (IndexError, ValueError):
        return (-1, "?")


def _current_identity() -> ProcessIdentity | None:
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            boot = f.read().strip()
        pidns = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return None  # not Linux (or no /proc): leases alone decide
    pid = os.getpid()
    found = _read_start_time(pid)
    if found is None or found[0] < 0:
        return None
    return ProcessIdentity(boot, pidns, pid, found[0])


_IDENTITY: list[ProcessIdentity | None] = []


def process_identity() -> ProcessIdentity | None:
    """This process's identity (recomputed after a fork: the pid changes)."""
    if not _IDENTITY or (_IDENTITY[0] is not None and _IDENTITY[0].pid != os.getpid()):
        _IDENTITY[:] = [_current_identity()]
    return _IDENTITY[0]


def process_alive(proc: ProcessIdentity | None) -> bool:
    """False only when ``proc`` certainly ended: same boot and pid namespace as ours, and
    its pid is gone, reused, or a zombie waiting to be reaped. True when unsure."""
    if proc is None:
        return True
    me = process_identity()
    if me is None or me.boot != proc.boot or me.pidns != proc.pidns:
        return True
    if proc.pid == me.pid:
        return proc.start == me.start
    found = _read_start_time(proc.pid)
    if found is None:
        return False
    start, state = found
    if state in ("Z", "X"):
        return False
    return start < 0 or start == proc.start


# ---------------------------------------------------------------- the group document


@attrs.define(slots=True)
class Member:
    """One member of a group, as stored in the group document."""

    member_id: str
    instance_id: str | None
    client_id: str
    topics: tuple[str, ...]
    protocol: str
    session_ms: int
    deadline: int  # ms since the epoch: the lease ends here unless renewed
    joined: int
    proc: ProcessIdentity | None
    departed: bool = False  # a static member that closed: keeps its lease, not its partitions

    def to_json(self) -> dict[str, Any]:
        return {
            "instance": self.instance_id,
            "client": self.client_id,
            "topics": list(self.topics),
            "protocol": self.protocol,
            "session": self.session_ms,
            "deadline": self.deadline,
            "joined": self.joined,
            "proc": list(self.proc) if self.proc is not None else None,
            "departed": self.departed,
        }

    @classmethod
    def from_json(cls, member_id: str, raw: dict[str, Any]) -> Member:
        proc = raw["proc"]
        return cls(
            member_id=member_id,
            instance_id=raw["instance"],
            client_id=raw["client"],
            topics=tuple(raw["topics"]),
            protocol=raw["protocol"],
            session_ms=int(raw["session"]),
            deadline=int(raw["deadline"]),
            joined=int(raw["joined"]),
            proc=ProcessIdentity(*proc) if proc is not None else None,
            departed=bool(raw["departed"]),
        )


TopicCounts = Callable[[Iterable[str]], dict[str, int]]
"""Given topic names, the partition counts of those that exist."""


@attrs.define(slots=True)
class GroupState:
    """A consumer group's membership, assignment and ownership (one LMDB value).

    ``assignment`` is the target computed by the assignor; ``owners`` is who holds each
    partition now. ``fenced`` lists members replaced by a new instance with the same
    ``group_instance_id`` while possibly still alive: their partitions stay blocked until
    they release them or their lease ends.
    """

    generation: int = 0
    protocol: str | None = None
    members: dict[str, Member] = attrs.field(factory=dict)
    assignment: dict[str, list[TopicPartition]] = attrs.field(factory=dict)
    owners: dict[TopicPartition, str] = attrs.field(factory=dict)
    fenced: dict[str, tuple[int, ProcessIdentity | None]] = attrs.field(factory=dict)
    basis: str = ""  # what the assignment was computed from (members, subscriptions, counts)

    # -- encoding --

    def pack(self) -> bytes:
        return json.dumps(
            {
                "v": 1,
                "generation": self.generation,
                "protocol": self.protocol,
                "members": {mid: m.to_json() for mid, m in self.members.items()},
                "assignment": {
                    mid: [[tp.topic, tp.partition] for tp in tps]
                    for mid, tps in self.assignment.items()
                },
                "owners": [[tp.topic, tp.partition, mid] for tp, mid in self.owners.items()],
                "fenced": {
                    mid: [deadline, list(proc) if proc is not None else None]
                    for mid, (deadline, proc) in self.fenced.items()
                },
                "basis": self.basis,
            },
            separators=(",", ":"),
        ).encode()

    @classmethod
    def unpack(cls, data: bytes | memoryview, group: str) -> GroupState:
        try:
            raw = json.loads(bytes(data))
            if raw.get("v") != 1:
                raise ValueError(f"unknown group document version {raw.get('v')!r}")
            return cls(
                generation=int(raw["generation"]),
                protocol=raw["protocol"],
                members={mid: Member.from_json(mid, m) for mid, m in raw["members"].items()},
                assignment={
                    mid: [TopicPartition(t, int(p)) for t, p in tps]
                    for mid, tps in raw["assignment"].items()
                },
                owners={TopicPartition(t, int(p)): mid for t, p, mid in raw["owners"]},
                fenced={
                    mid: (int(d), ProcessIdentity(*proc) if proc is not None else None)
                    for mid, (d, proc) in raw["fenced"].items()
                },
                basis=str(raw["basis"]),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise CorruptLogError(
                f"the stored state of consumer group {group!r} is unreadable ({exc})",
                group=group,
            ) from None

    # -- queries --

    def owned_by(self, member_id: str) -> set[TopicPartition]:
        return {tp for tp, mid in self.owners.items() if mid == member_id}

    def target_of(self, member_id: str) -> list[TopicPartition]:
        return self.assignment.get(member_id, [])

    def live(self) -> bool:
        """Whether any member is in the group (departed static members count: their
        lease still holds their assignment)."""
        return bool(self.members)

    def settled(self) -> bool:
        """Every member owns exactly its target."""
        # A static member that closed keeps its assignment (waiting for its restart)
        # without owning it: that is not a rebalance in progress.
        return all(
            set(self.target_of(mid)) == self.owned_by(mid)
            for mid, member in self.members.items()
            if not member.departed
        )

    # -- changes --

    def expire(self, now: int, alive: Callable[[ProcessIdentity | None], bool]) -> None:
        """Drop members whose lease ended or whose process is gone, and free what they
        owned; forget fenced members likewise."""
        for mid, member in list(self.members.items()):
            # A static member waits for its restart until its lease ends (Kafka's
            # group.instance.id): its process having exited is not a reason to remove it.
            if member.deadline < now or (member.instance_id is None and not alive(member.proc)):
                del self.members[mid]
                # A removed member is a membership change even when a later member
                # reuses its instance id: recompute the assignment.
                self.basis = ""
        for mid, (deadline, proc) in list(self.fenced.items()):
            if deadline < now or not alive(proc):
                del self.fenced[mid]
        for tp, mid in list(self.owners.items()):
            if mid not in self.members and mid not in self.fenced:
                del self.owners[tp]
        for mid in list(self.assignment):
            if mid not in self.members:
                del self.assignment[mid]
        if not self.members:
            self.protocol = None
            self.basis = ""

    def rebalance_if_needed(self, counts_for: TopicCounts) -> bool:
        """Recompute the assignment when members, subscriptions or partition counts
        changed since it was computed. Returns True when it did (a new generation)."""
        if not self.members:
            return False
        topics = sorted({t for m in self.members.values() for t in m.topics})
        counts = counts_for(topics)
        # Static members are named by instance id: a restarted static member (new member
        # id, same instance) is the same member and causes no rebalance.
        roster = sorted(
            [m.instance_id or m.member_id, sorted(m.topics)] for m in self.members.values()
        )
        basis = json.dumps([roster, sorted(counts.items())], separators=(",", ":"))
        if basis == self.basis:
            return False
        protocol = self.protocol or "range"
        subscriptions = [
            MemberSubscription(
                m.member_id, m.instance_id, m.topics, tuple(self.assignment.get(mid, ()))
            )
            for mid, m in self.members.items()
        ]
        self.assignment = {
            mid: list(tps) for mid, tps in assign(protocol, subscriptions, counts).items()
        }
        self.generation += 1
        self.basis = basis
        return True

    def settle(
        self, now: int, counts_for: TopicCounts, alive: Callable[[ProcessIdentity | None], bool]
    ) -> None:
        self.expire(now, alive)
        self.rebalance_if_needed(counts_for)

    def join(
        self,
        member: Member,
        now: int,
        alive: Callable[[ProcessIdentity | None], bool] = process_alive,
    ) -> None:
        """Add ``member``, expiring members whose lease ended (then call
        :meth:`rebalance_if_needed`).

        A static member whose instance id is taken replaces the old member: at once when
        the old one closed, its lease ended or its process is gone, keeping its
        assignment and partitions (no rebalance, as Kafka's static membership);
        otherwise the old member is fenced and its partitions pass over when it lets
        them go or its lease ends.
        """
        if member.instance_id is not None:
            # Before expiring: a predecessor whose lease just ended is replaced (its
            # assignment kept), not removed (which would rebalance the group).
            for old in list(self.members.values()):
                if old.instance_id != member.instance_id:
                    continue
                del self.members[old.member_id]
                target = self.assignment.pop(old.member_id, None)
                if target is not None:
                    self.assignment[member.member_id] = target
                if old.departed or old.deadline < now or not alive(old.proc):
                    for tp, mid in list(self.owners.items()):
                        if mid == old.member_id:
                            self.owners[tp] = member.member_id
                else:
                    self.fenced[old.member_id] = (old.deadline, old.proc)
        self.members[member.member_id] = member  # live: expire() keeps it and its target
        self.expire(now, alive)
        if len(self.members) > 1 and self.protocol is not None and member.protocol != self.protocol:
            raise InconsistentGroupProtocolError(
                f"this consumer uses the {member.protocol!r} assignor but the members of "
                f"the group use {self.protocol!r}; use the same partition_assignment_strategy "
                f"in every member",
            )
        self.protocol = member.protocol

    def release(self, member_id: str, partitions: Iterable[TopicPartition]) -> None:
        for tp in partitions:
            if self.owners.get(tp) == member_id:
                del self.owners[tp]

    def acquire(self, member_id: str, wanted: Iterable[TopicPartition]) -> set[TopicPartition]:
        """Take the partitions of ``wanted`` that are assigned to the member and free (or
        already its own)."""
        target = set(self.target_of(member_id))
        got: set[TopicPartition] = set()
        for tp in wanted:
            # Already ours: inherited from the previous instance of a static member.
            if tp in target and self.owners.get(tp, member_id) == member_id:
                self.owners[tp] = member_id
                got.add(tp)
        return got

    def remove(self, member_id: str) -> None:
        """A member leaves (or learns it was fenced): it owns nothing any more."""
        self.members.pop(member_id, None)
        self.fenced.pop(member_id, None)
        self.assignment.pop(member_id, None)
        for tp, mid in list(self.owners.items()):
            if mid == member_id:
                del self.owners[tp]


def new_member_id(client_id: str) -> str:
    return f"{client_id}-{uuid.uuid4().hex[:16]}"


# ---------------------------------------------------------------- stored offsets


def commit_offsets(
    txn: Any,
    db: Any,
    group: str,
    offsets: Mapping[tuple[int, int], tuple[int, str]],
    now: int,
) -> None:
    """Store ``{(topic id, partition): (offset, metadata)}`` for ``group``."""
    for (topic_id, partition), (offset, metadata) in offsets.items():
        txn.put(offset_key(group, topic_id, partition), pack_offset(offset, metadata, now), db=db)


def read_committed(
    txn: Any, db: Any, group: str, topic_id: int, partition: int
) -> tuple[int, int, str] | None:
    raw = txn.get(offset_key(group, topic_id, partition), db=db)
    return None if raw is None else unpack_offset(raw)


def check_fencing(
    state: GroupState | None,
    group: str,
    member_id: str | None,
    partitions: Iterable[TopicPartition],
) -> None:
    """Refuse a commit that the group does not allow (see :class:`CommitFailedError`)."""
    if member_id is None:
        if state is not None and state.members:
            raise CommitFailedError(
                f"group {group!r} has live members, so a consumer outside the group (one "
                f"using assign()) cannot commit for it; subscribe as a member, or wait until "
                f"the group is empty",
                group=group,
            )
        return
    if state is None or member_id not in state.members:
        raise CommitFailedError(
            f"commit refused: this consumer is no longer a member of group {group!r} (its "
            f"session expired, or another consumer with the same group_instance_id replaced "
            f"it); its partitions were reassigned",
            group=group,
        )
    lost = sorted(tp for tp in partitions if state.owners.get(tp) != member_id)
    if lost:
        shown = ", ".join(f"{t}[{p}]" for t, p in lost[:5])
        raise CommitFailedError(
            f"commit refused: this consumer no longer owns {shown}"
            f"{' ...' if len(lost) > 5 else ''} in group {group!r} (the group rebalanced); "
            f"the new owner continues from the last committed offset",
            group=group,
        )


def validate_offsets(
    offsets: Mapping[TopicPartition, int | OffsetAndMetadata],
) -> dict[TopicPartition, tuple[int, str]]:
    """Check ``{TopicPartition: offset or OffsetAndMetadata}``; return (offset, metadata)
    pairs."""
    if not isinstance(offsets, Mapping):
        raise InvalidArgumentError(
            f"offsets must be a mapping of TopicPartition to an offset or OffsetAndMetadata; "
            f"got {type(offsets).__name__}"
        )
    out: dict[TopicPartition, tuple[int, str]] = {}
    for key, value in offsets.items():
        if not (
            isinstance(key, tuple)
            and len(key) == 2
            and isinstance(key[0], str)
            and type(key[1]) is int
        ):
            raise InvalidArgumentError(f"expected a TopicPartition(topic, partition); got {key!r}")
        tp = TopicPartition(key[0], key[1])
        offset, metadata = value if isinstance(value, OffsetAndMetadata) else (value, "")
        if type(offset) is not int or not 0 <= offset <= MAX_OFFSET:
            raise InvalidArgumentError(
                f"the offset for {tp.topic}[{tp.partition}] must be an integer between 0 and "
                f"2**63-1; got {offset!r}",
                topic=tp.topic,
                partition=tp.partition,
            )
        if type(metadata) is not str or len(metadata.encode()) > MAX_METADATA_BYTES:
            raise InvalidArgumentError(
                f"commit metadata must be a str of at most {MAX_METADATA_BYTES} bytes",
                topic=tp.topic,
                partition=tp.partition,
            )
        out[tp] = (offset, metadata)
    return out
