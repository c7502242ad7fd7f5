"""A consumer's part in its group's protocol, driven from inside ``poll()`` and ``close()``.

A mixin of :class:`eventlog.Consumer` (kept apart so each module stays one concern): when
to rejoin, what to revoke and acquire at a rebalance, which listener callbacks to call,
and whether the consumer may still hand out records.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Final, Literal

from ._errors import FencedInstanceIdError
from ._membership import Membership, NotAMember, load_state, now_ms
from ._records import Record, TopicPartition

if TYPE_CHECKING:
    from ._log import Log
    from ._storage import Storage

__all__ = ["GroupCoordination", "RebalanceListener"]

# Pending positions, resolved at the next fetch (as Kafka evaluates seeks lazily).
_UNSET: Final = -3  # committed offset, else auto_offset_reset
_EARLIEST: Final = -1
_LATEST: Final = -2


class RebalanceListener:
    """Callbacks on partition ownership changes, called only inside ``poll()`` or
    ``close()``, in the thread that calls them.

    Subclass it and override what you need (or pass any object with these methods).
    """

    def on_partitions_revoked(self, partitions: set[TopicPartition]) -> None:
        """Partitions this consumer is about to give up (commit or flush work here; the
        consumer still owns them, so commits succeed)."""

    def on_partitions_assigned(self, partitions: set[TopicPartition]) -> None:
        """Partitions this consumer now owns (called before any of their records are
        returned; seek here to start elsewhere than the committed offset)."""

    def on_partitions_lost(self, partitions: set[TopicPartition]) -> None:
        """Partitions taken away without a chance to commit (this member's session
        expired, or it was replaced). By default calls :meth:`on_partitions_revoked`."""
        self.on_partitions_revoked(partitions)


class GroupCoordination:
    """Group-protocol methods of :class:`eventlog.Consumer`."""

    # Provided by Consumer.
    _log: Log
    _storage: Storage
    _group: str | None
    _membership: Membership | None
    _mode: Literal["subscribe", "assign"] | None
    _listener: RebalanceListener | None
    _assigned: list[TopicPartition]
    _positions: dict[TopicPartition, int]
    _committed: dict[TopicPartition, int]
    _topic_ids: dict[TopicPartition, int]
    _resolved: tuple[str, ...]
    _fenced: FencedInstanceIdError | None
    _announced_generation: int
    _eager: bool
    _auto_commit: bool
    _iter_buffer: list[Record]
    _paused: set[TopicPartition]

    def _set_assignment(self, tps: list[TopicPartition]) -> None:
        keep = set(tps)
        for tp in list(self._positions):
            if tp not in keep:
                del self._positions[tp]
                self._committed.pop(tp, None)
                self._topic_ids.pop(tp, None)
        self._paused &= keep
        if self._iter_buffer:
            self._iter_buffer = [
                r for r in self._iter_buffer if TopicPartition(r.topic, r.partition) in keep
            ]
        for tp in tps:
            self._positions.setdefault(tp, _UNSET)
        self._assigned = sorted(tps)

    def _positions_to_commit(
        self, tps: Iterable[TopicPartition]
    ) -> dict[TopicPartition, tuple[int, str]]:
        out: dict[TopicPartition, tuple[int, str]] = {}
        for tp in tps:
            pos = self._positions.get(tp, _UNSET)
            if pos >= 0 and self._committed.get(tp) != pos:
                out[tp] = (pos, "")
        return out

    def _still_member(self) -> bool:
        """False when a group member may have lost its partitions (removed, lease ended)."""
        m = self._membership
        if m is None or self._mode != "subscribe":
            return True
        return m.member_id is not None and not m.lost and now_ms() < m.local_deadline

    def _announce(self, method: str, partitions: set[TopicPartition]) -> None:
        listener = self._listener
        if listener is not None:
            getattr(listener, method)(set(partitions))

    def _lose_everything(self) -> None:
        lost = set(self._assigned)
        self._set_assignment([])
        if lost:
            self._announce("on_partitions_lost", lost)

    def _rejoin(self) -> None:
        """This member lost its membership (lease ended, removed for not polling, or
        replaced): its partitions are lost; join again as a new member, unless another
        live consumer took its ``group_instance_id`` (then it is fenced for good)."""
        membership = self._membership
        assert membership is not None
        self._lose_everything()
        fenced = membership.member_id is not None and membership.fenced()
        if membership.member_id is not None:
            membership.forget()
        if fenced:
            self._fenced = FencedInstanceIdError(
                f"another consumer joined group {self._group!r} with this consumer's "
                f"group_instance_id {membership.instance_id!r}; this one is fenced and "
                f"must be closed (only one live consumer per instance id)",
                group=self._group,
            )
            raise self._fenced
        membership.join(self._resolved)

    def _coordinate(self) -> None:
        """Drive this member's part of the group protocol (inside poll)."""
        membership = self._membership
        assert membership is not None
        if self._fenced is not None:
            raise self._fenced
        if (
            membership.member_id is None
            or membership.lost
            # Our lease may have ended without any heartbeat getting through: stop
            # reading before another member can have taken our partitions.
            or now_ms() >= membership.local_deadline
        ):
            self._rejoin()
        if not membership.dirty:
            return
        owned = set(self._assigned)
        state = self._storage.read(
            lambda txn: load_state(txn, self._log, membership.group), "reading a consumer group"
        )
        mid = membership.member_id
        if state is None or mid is None or mid not in state.members:
            with membership.lock:
                membership.lost = True
            self._rejoin()
            return
        target = set(state.target_of(mid))
        new_generation = state.generation != self._announced_generation
        if self._eager and new_generation:
            revoke = owned
        else:
            revoke = owned - target
        if revoke:
            self._announce("on_partitions_revoked", revoke)
        commits = self._positions_to_commit(revoke) if self._auto_commit else {}
        try:
            got, target_now, generation, committed = membership.sync(
                revoke, target - (owned - revoke), commits
            )
        except NotAMember:
            self._set_assignment(sorted(owned - revoke))
            self._rejoin()
            return
        for tp, offset in committed.items():
            self._committed[tp] = offset
        kept = (owned - revoke) | got
        self._set_assignment(sorted(kept))
        for tp in got:
            self._positions[tp] = committed.get(tp, _UNSET)
            self._topic_ids.pop(tp, None)
        if got:
            self._announced_generation = generation
            self._announce("on_partitions_assigned", got)
        elif generation != self._announced_generation and kept == set(target_now):
            self._announced_generation = generation
            self._announce("on_partitions_assigned", set())

    def _leave_group(self) -> None:
        membership = self._membership
        if membership is None or membership.member_id is None:
            return
        owned = set(self._assigned)
        if membership.lost or now_ms() >= membership.local_deadline:
            # Our session ended: the partitions may already be someone else's.
            self._set_assignment([])
            if owned:
                self._announce("on_partitions_lost", owned)
            membership.forget()
            return
        try:
            if owned:
                self._announce("on_partitions_revoked", owned)
        finally:
            # Leave even when the listener failed: otherwise the others would wait for
            # our partitions until the session timeout.
            commits = self._positions_to_commit(owned) if self._auto_commit else {}
            membership.leave(commits)
