"""Consumer-group administration on a Log: list, describe, commit, reset, delete.

What ``kafka-consumer-groups`` does against a broker, done directly on the log's group
state. A mixin of :class:`eventlog.Log` (kept apart so each module stays one concern).
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from ._catalog import MAX_OFFSET, Catalog, TopicInfo
from ._errors import (
    GroupNotEmptyError,
    GroupNotFoundError,
    InvalidArgumentError,
    PartitionNotFoundError,
)
from ._groups import (
    OFFSET_KEY,
    GroupState,
    OffsetAndMetadata,
    commit_offsets,
    offset_prefix,
    process_alive,
    unpack_offset,
    validate_group,
    validate_offsets,
)
from ._logbase import LogBase
from ._membership import load_state, now_ms
from ._records import TopicPartition

if TYPE_CHECKING:
    pass

__all__ = [
    "GroupAdmin",
    "forget_topic_offsets",
    "GroupDescription",
    "MemberDescription",
    "PartitionOffsets",
]


@attrs.frozen(slots=True)
class MemberDescription:
    """One live member of a consumer group.

    Attributes:
        member_id: the id the group gave it.
        instance_id: its ``group_instance_id`` (static membership), or None.
        client_id: the consumer's client id.
        pid: the process it runs in (None when unknown).
        topics: its subscription.
        assignment: the partitions the group assigned to it.
        owned: the partitions it holds now (differs from ``assignment`` during a rebalance).
        lease_expires_ms: when its session ends unless it sends a heartbeat.
    """

    member_id: str
    instance_id: str | None
    client_id: str
    pid: int | None
    topics: tuple[str, ...]
    assignment: tuple[TopicPartition, ...]
    owned: tuple[TopicPartition, ...]
    lease_expires_ms: int


@attrs.frozen(slots=True)
class PartitionOffsets:
    """A group's position in one partition.

    Attributes:
        committed: the committed offset (the next to read), or None.
        metadata: the string committed with it.
        end_offset: the partition's end offset.
        lag: records between the committed offset and the end (the whole partition when
            nothing is committed).
        owner: the member id holding the partition now, or None.
    """

    committed: int | None
    metadata: str
    end_offset: int
    lag: int
    owner: str | None


@attrs.frozen(slots=True)
class GroupDescription:
    """A consumer group's members, assignment and committed offsets.

    Attributes:
        group: the group name.
        state: ``"Empty"`` (no members), ``"Stable"`` (every member holds its assignment)
            or ``"Rebalancing"`` (partitions are moving).
        protocol: the assignor its members use, or None when empty.
        generation: incremented by every rebalance.
        members: the live members.
        offsets: ``{TopicPartition: PartitionOffsets}`` for every partition of the
            subscribed topics and every partition with a committed offset.
    """

    group: str
    state: str
    protocol: str | None
    generation: int
    members: tuple[MemberDescription, ...]
    offsets: dict[TopicPartition, PartitionOffsets]

    @property
    def lag(self) -> int:
        """Total lag over all partitions."""
        return sum(p.lag for p in self.offsets.values())


def _topics_by_id(txn: Any, catalog: Catalog, topics_db: Any) -> dict[int, TopicInfo]:
    out: dict[int, TopicInfo] = {}
    for raw in txn.cursor(db=topics_db).iternext(values=False):
        info = catalog.get(txn, bytes(raw).decode())
        out[info.topic_id] = info
    return out


class GroupAdmin(LogBase):
    """Group administration methods of :class:`eventlog.Log`."""

    def _committed_raw(self, txn: Any, group: str) -> dict[tuple[int, int], tuple[int, int, str]]:
        db = self._dbs.get(b"groups")
        out: dict[tuple[int, int], tuple[int, int, str]] = {}
        if db is None:
            return out
        prefix = offset_prefix(group)
        cursor = txn.cursor(db=db)
        if not cursor.set_range(prefix):
            return out
        for key, value in cursor:
            key = bytes(key)
            if not key.startswith(prefix):
                break
            out[OFFSET_KEY.unpack(key[len(prefix) :])] = unpack_offset(value)
        return out

    def list_groups(self) -> list[str]:
        """The names of all consumer groups (with members or committed offsets), sorted."""
        self._check()

        def read(txn: Any) -> list[str]:
            names: set[str] = set()
            members = self._dbs.get(b"members")
            if members is not None:
                names.update(
                    bytes(k).decode() for k in txn.cursor(db=members).iternext(values=False)
                )
            db = self._dbs.get(b"groups")
            if db is not None:
                cursor = txn.cursor(db=db)
                found = cursor.first()
                while found:
                    key = bytes(cursor.key())
                    name = key[: key.index(b"\x00")]
                    names.add(name.decode())
                    # Skip the rest of this group's offsets in one seek.
                    found = cursor.set_range(name + b"\x01")
            return sorted(names)

        return self._storage.read(read, "listing consumer groups")

    def describe_group(self, group: str) -> GroupDescription:
        """A group's members, assignment, committed offsets and lag.

        Raises:
            GroupNotFoundError: no members and no committed offsets.
        """
        self._check()
        validate_group(group)
        now = now_ms()

        def read(txn: Any) -> GroupDescription:
            existing = load_state(txn, self, group)
            committed = self._committed_raw(txn, group)
            if existing is None and not committed:
                raise GroupNotFoundError(
                    f"consumer group {group!r} does not exist (no members, no committed offsets)",
                    group=group,
                )
            state = existing or GroupState()
            state.expire(now, process_alive)  # describe live members only (not stored)
            by_id = _topics_by_id(txn, self._catalog, self._dbs[b"topics"])
            by_name = {info.name: info for info in by_id.values()}
            offsets: dict[TopicPartition, PartitionOffsets] = {}
            wanted: dict[TopicPartition, tuple[int, int, str] | None] = {}
            for (topic_id, partition), value in committed.items():
                info = by_id.get(topic_id)
                if info is not None and partition < info.partitions:
                    wanted[TopicPartition(info.name, partition)] = value
            for member in state.members.values():
                for topic in member.topics:
                    info = by_name.get(topic)
                    if info is not None:
                        for p in range(info.partitions):
                            wanted.setdefault(TopicPartition(topic, p), None)
            for tp, stored in sorted(wanted.items()):
                st = self._reader.state(txn, by_name[tp.topic], tp.partition)
                end = st.next_offset
                offsets[tp] = PartitionOffsets(
                    committed=None if stored is None else stored[0],
                    metadata="" if stored is None else stored[2],
                    end_offset=end,
                    lag=max(0, end - (st.log_start if stored is None else stored[0])),
                    owner=state.owners.get(tp),
                )
            members = tuple(
                MemberDescription(
                    member_id=m.member_id,
                    instance_id=m.instance_id,
                    client_id=m.client_id,
                    pid=None if m.proc is None else m.proc.pid,
                    topics=m.topics,
                    assignment=tuple(state.target_of(m.member_id)),
                    owned=tuple(sorted(state.owned_by(m.member_id))),
                    lease_expires_ms=m.deadline,
                )
                for m in sorted(state.members.values(), key=lambda m: m.member_id)
            )
            if not members:
                status = "Empty"
            else:
                status = "Stable" if state.settled() else "Rebalancing"
            return GroupDescription(
                group=group,
                state=status,
                protocol=state.protocol if members else None,
                generation=state.generation,
                members=members,
                offsets=offsets,
            )

        return self._storage.read(read, f"describing consumer group {group!r}")

    def committed_offsets(
        self, group: str, topic: str | None = None
    ) -> dict[TopicPartition, OffsetAndMetadata]:
        """The group's committed offsets (optionally of one topic):
        ``{TopicPartition: OffsetAndMetadata(offset, metadata)}``; empty for an unknown
        group."""
        self._check()
        validate_group(group)

        def read(txn: Any) -> dict[TopicPartition, OffsetAndMetadata]:
            by_id = _topics_by_id(txn, self._catalog, self._dbs[b"topics"])
            if topic is not None:
                self._catalog.get(txn, topic)  # TopicNotFoundError
            out: dict[TopicPartition, OffsetAndMetadata] = {}
            for (topic_id, partition), (offset, _when, metadata) in sorted(
                self._committed_raw(txn, group).items()
            ):
                info = by_id.get(topic_id)
                if info is None or partition >= info.partitions:
                    continue
                if topic is None or info.name == topic:
                    out[TopicPartition(info.name, partition)] = OffsetAndMetadata(offset, metadata)
            return out

        return self._storage.read(read, f"reading committed offsets of group {group!r}")

    def _check_group_inactive(
        self, txn: Any, group: str, force: bool, what: str
    ) -> GroupState | None:
        state = load_state(txn, self, group)
        if state is not None:
            state.expire(now_ms(), process_alive)
            if state.members and not force:
                raise GroupNotEmptyError(
                    f"cannot {what} group {group!r} while it has {len(state.members)} live "
                    f"member(s); stop its consumers first, or pass force=True",
                    group=group,
                )
        return state

    def commit_offsets(
        self,
        group: str,
        offsets: Mapping[TopicPartition, int | OffsetAndMetadata],
        *,
        force: bool = False,
    ) -> None:
        """Set a group's committed offsets directly (Kafka's ``alterConsumerGroupOffsets``).

        Raises:
            GroupNotEmptyError: the group has live members (unless ``force``).
            TopicNotFoundError, PartitionNotFoundError, InvalidArgumentError.
        """
        self._check()
        validate_group(group)
        values = validate_offsets(offsets)

        def write(txn: Any) -> None:
            self._check_group_inactive(txn, group, force, "commit offsets for")
            commit_offsets(
                txn, self._dbs[b"groups"], group, _by_id(txn, self._catalog, values), now_ms()
            )

        self._write(write, f"committing offsets of group {group!r}")

    def reset_offsets(
        self,
        group: str,
        topic: str,
        *,
        to: str | int | _dt.datetime | None = None,
        shift: int | None = None,
        partitions: Iterable[int] | None = None,
        dry_run: bool = False,
        force: bool = False,
    ) -> dict[TopicPartition, int]:
        """Move a group's committed offsets in ``topic`` (``kafka-consumer-groups
        --reset-offsets``).

        Give exactly one of:
            to="earliest" / "latest": the log start / end of each partition.
            to=<int>: that offset.
            to=<datetime>: the first offset at or after that time (the end when none;
                a naive datetime is taken as local time).
            shift=<n>: the committed offset (or the log start when none) plus n.
        Results are clamped to each partition's stored range.

        Args:
            partitions: only these partition numbers (default: all).
            dry_run: compute and return the new offsets without writing them.
            force: allow it while the group has live members.

        Returns:
            ``{TopicPartition: new committed offset}``.

        Raises:
            GroupNotEmptyError: the group has live members (unless ``force``).
            TopicNotFoundError, PartitionNotFoundError, InvalidArgumentError.
        """
        self._check()
        validate_group(group)
        if (to is None) == (shift is None):
            raise InvalidArgumentError(
                "give exactly one of to= ('earliest', 'latest', an offset or a datetime) "
                "and shift=",
                group=group,
            )
        if to is not None and not (
            to in ("earliest", "latest")
            or (type(to) is int and 0 <= to <= MAX_OFFSET)
            or isinstance(to, _dt.datetime)
        ):
            raise InvalidArgumentError(
                f"to must be 'earliest', 'latest', an offset (int >= 0) or a datetime; got {to!r}",
                group=group,
            )
        if shift is not None and (type(shift) is not int or abs(shift) > MAX_OFFSET):
            raise InvalidArgumentError(f"shift must be an integer; got {shift!r}", group=group)
        by_time = None
        if isinstance(to, _dt.datetime):
            try:
                stamp = to.timestamp() if to.tzinfo is not None else to.astimezone().timestamp()
            except (ValueError, OverflowError, OSError):
                stamp = 0.0 if to.year < 1970 else float(MAX_OFFSET)
            by_time = self.offsets_for_times(topic, max(0, int(stamp * 1000)))  # type: ignore[attr-defined]
        if partitions is not None and not isinstance(partitions, Iterable):
            raise InvalidArgumentError("partitions must be a list of partition numbers")
        chosen = None if partitions is None else list(partitions)

        def write(txn: Any) -> dict[TopicPartition, int]:
            self._check_group_inactive(txn, group, force, "reset offsets of")
            info = self._catalog.get(txn, topic, writing=not dry_run)
            selected = range(info.partitions) if chosen is None else chosen
            committed = self._committed_raw(txn, group)
            result: dict[TopicPartition, int] = {}
            for p in selected:
                if type(p) is not int or not 0 <= p < info.partitions:
                    raise PartitionNotFoundError(
                        f"partition {p!r} does not exist; topic {topic!r} has partitions "
                        f"0..{info.partitions - 1}",
                        topic=topic,
                        partition=p if isinstance(p, int) else None,
                    )
                st = self._reader.state(txn, info, p)
                current = committed.get((info.topic_id, p))
                if to == "earliest":
                    target = st.log_start
                elif to == "latest":
                    target = st.next_offset
                elif by_time is not None:
                    found = by_time.get(p)
                    target = st.next_offset if found is None else found
                elif type(to) is int:
                    target = to
                else:
                    assert shift is not None
                    target = (st.log_start if current is None else current[0]) + shift
                result[TopicPartition(topic, p)] = min(max(target, st.log_start), st.next_offset)
            if not dry_run:
                commit_offsets(
                    txn,
                    self._dbs[b"groups"],
                    group,
                    {(info.topic_id, tp.partition): (o, "") for tp, o in result.items()},
                    now_ms(),
                )
            return result

        if dry_run:
            return self._storage.read(write, f"planning an offset reset of group {group!r}")
        return self._write(write, f"resetting offsets of group {group!r}")

    def delete_group(self, group: str, *, force: bool = False) -> None:
        """Delete a group: its committed offsets and membership.

        Raises:
            GroupNotFoundError: no such group.
            GroupNotEmptyError: the group has live members (unless ``force``: they lose
                their partitions and their commits fail).
        """
        self._check()
        validate_group(group)

        def write(txn: Any) -> None:
            state = self._check_group_inactive(txn, group, force, "delete")
            committed = self._committed_raw(txn, group)
            if state is None and not committed:
                raise GroupNotFoundError(f"consumer group {group!r} does not exist", group=group)
            db = self._dbs[b"groups"]
            for topic_id, partition in committed:
                txn.delete(offset_prefix(group) + OFFSET_KEY.pack(topic_id, partition), db=db)
            if state is not None:
                txn.delete(group.encode(), db=self._dbs[b"members"])

        self._write(write, f"deleting consumer group {group!r}")


def _by_id(
    txn: Any, catalog: Catalog, values: Mapping[TopicPartition, tuple[int, str]]
) -> dict[tuple[int, int], tuple[int, str]]:
    out: dict[tuple[int, int], tuple[int, str]] = {}
    for tp, value in values.items():
        info = catalog.get(txn, tp.topic, writing=True)
        if not 0 <= tp.partition < info.partitions:
            raise PartitionNotFoundError(
                f"partition {tp.partition} does not exist; topic {tp.topic!r} has partitions "
                f"0..{info.partitions - 1}",
                topic=tp.topic,
                partition=tp.partition,
            )
        out[(info.topic_id, tp.partition)] = value
    return out


def forget_topic_offsets(txn: Any, dbs: dict[bytes, Any], topic_id: int) -> None:
    """Drop every group's committed offsets of a deleted topic (inside its delete)."""
    db = dbs[b"groups"]
    doomed = [
        bytes(k)
        for k in txn.cursor(db=db).iternext(values=False)
        if OFFSET_KEY.unpack(bytes(k)[-OFFSET_KEY.size :])[0] == topic_id
    ]
    for key in doomed:
        txn.delete(key, db=db)
