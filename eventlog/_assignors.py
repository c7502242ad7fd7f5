"""Consumer-group partition assignors: range, round-robin and (cooperative) sticky.

An assignor is a pure function: given the members of a group (their ids, static instance
ids, subscribed topics and, for the sticky assignors, the partitions they own now) and the
partition count of each topic, it returns which member should own which partition. Nothing
here touches the log; the group protocol (``_groups.py``) stores the result and moves
ownership.

The rules reproduce Kafka's client-side assignors, so that a group lays out its partitions
as a Kafka group with the same members and topics would:

* **Member order** (KIP-345): static members (with a ``group.instance.id``) first, sorted by
  instance id, then dynamic members sorted by member id. Strings compare like Java's
  ``String.compareTo`` (UTF-16 code units), which differs from Python's code-point order only
  for characters outside the Basic Multilingual Plane.
* **range** (``RangeAssignor``): per topic, the partitions in order are cut into contiguous
  ranges over the members subscribed to that topic; each gets ``P // C`` and the first
  ``P % C`` one more.
* **roundrobin** (``RoundRobinAssignor``): all partitions of all subscribed topics, sorted by
  topic then partition, are dealt in a circle over the members, skipping a member that is
  not subscribed to the partition's topic.
* **sticky** / **cooperative-sticky** (``StickyAssignor`` / ``CooperativeStickyAssignor``):
  balance first, then keep every partition with its current owner as far as balance allows.
  When all members subscribe to the same topics, partition counts differ by at most one and
  exactly the minimum number of partitions changes owner. Otherwise the result is balanced
  in Kafka's sense: no partition could move from a member to another member subscribed to
  its topic that has two or more fewer partitions. The assignor computes the same target
  for both protocols; the cooperative protocol differs in *how* the group gets there
  (revoking only the partitions that move, then assigning them in a second round), which is
  the group protocol's job.

Every function is deterministic: the result depends on the members' ids and subscriptions
and on the partition counts, never on the order of the input sequences or mappings.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from typing import Final, NamedTuple, TypeAlias

from eventlog._errors import InvalidArgumentError
from eventlog._records import TopicPartition

__all__ = [
    "COOPERATIVE",
    "PROTOCOLS",
    "Assignment",
    "MemberSubscription",
    "assign",
    "range_assign",
    "roundrobin_assign",
    "sticky_assign",
    "validate_protocol",
]


class MemberSubscription(NamedTuple):
    """What the assignor knows about one member of a group.

    Attributes:
        member_id: the member's id, unique in the group.
        instance_id: the static membership id (Kafka's ``group.instance.id``), or None for a
            dynamic member. Static members are ordered before dynamic ones.
        topics: the names of the topics the member subscribes to. Topics that do not exist
            (absent from the partition counts) are ignored.
        owned: the partitions the member owns now. Only the sticky assignors read it; an
            entry for a topic the member no longer subscribes to, or for a partition that no
            longer exists, is ignored, and a partition listed by two members is treated as
            owned by neither (the input is stale) and goes to exactly one member.
    """

    member_id: str
    instance_id: str | None
    topics: tuple[str, ...]
    owned: tuple[TopicPartition, ...] = ()


Assignment: TypeAlias = dict[str, list[TopicPartition]]
"""member id -> the partitions assigned to it, sorted by (topic, partition).

Every member of the input appears, possibly with an empty list; the dict iterates in the
assignors' member order (static members by instance id, then dynamic members by id)."""

PROTOCOLS: Final[tuple[str, ...]] = ("range", "roundrobin", "sticky", "cooperative-sticky")
"""The assignor names accepted by :func:`assign`, spelled as Kafka's
``partition.assignment.strategy`` names them."""

COOPERATIVE: Final[frozenset[str]] = frozenset({"cooperative-sticky"})
"""The protocols that rebalance incrementally (revoke only what moves) rather than eagerly."""


def validate_protocol(protocol: object) -> str:
    """Check an assignor name.

    Args:
        protocol: the name to check.

    Returns:
        ``protocol`` itself, when it is one of :data:`PROTOCOLS`.

    Raises:
        InvalidArgumentError: ``protocol`` is not a string naming one of :data:`PROTOCOLS`.
    """
    if isinstance(protocol, str) and protocol in PROTOCOLS:
        return protocol
    allowed = ", ".join(repr(name) for name in PROTOCOLS)
    raise InvalidArgumentError(
        f"unknown partition assignment strategy {protocol!r}: use one of {allowed}",
        protocol=protocol,
        allowed=PROTOCOLS,
    )


def assign(
    protocol: str, members: Sequence[MemberSubscription], partitions: Mapping[str, int]
) -> Assignment:
    """Assign the partitions of the members' subscribed topics with the named assignor.

    Args:
        protocol: one of :data:`PROTOCOLS`; ``"sticky"`` and ``"cooperative-sticky"`` compute
            the same assignment (see the module docstring).
        members: the group's members (any order; member ids must be unique).
        partitions: topic name -> partition count, for (at least) the subscribed topics
            that exist.

    Returns:
        The assignment: every member id -> its partitions, sorted by (topic, partition).

    Raises:
        InvalidArgumentError: unknown protocol, duplicate member ids, or malformed members
            or partition counts.
    """
    name = validate_protocol(protocol)
    if name == "range":
        return range_assign(members, partitions)
    if name == "roundrobin":
        return roundrobin_assign(members, partitions)
    return sticky_assign(members, partitions)


# --- shared helpers -------------------------------------------------------------------


def _java_key(text: str) -> bytes:
    """A sort key that orders strings like Java's ``String.compareTo``.

    Java compares UTF-16 code units; comparing big-endian UTF-16 bytes is the same order
    (a code unit's high byte decides first, and a proper prefix sorts first). Python's own
    order is by code point, which disagrees for characters above U+FFFF (stored as
    surrogates 0xD800-0xDFFF, below U+E000-U+FFFF in UTF-16). "surrogatepass" keeps lone
    surrogates, which a Python str may hold, from raising.
    """
    return text.encode("utf-16-be", "surrogatepass")


def _member_key(member: MemberSubscription) -> tuple[int, bytes, bytes]:
    """Kafka's member order: static members by instance id, then dynamic ones by member id.

    Kafka leaves two static members with the same instance id unordered (its group
    coordinator never lets that happen); breaking the tie by member id keeps this total.
    """
    if member.instance_id is not None:
        return (0, _java_key(member.instance_id), _java_key(member.member_id))
    return (1, _java_key(member.member_id), b"")


def _ordered_members(
    members: Sequence[MemberSubscription], partitions: Mapping[str, int]
) -> list[MemberSubscription]:
    """Validate the inputs and return the members in Kafka's assignor order.

    Raises:
        InvalidArgumentError: a member or a partition count is malformed, or two members
            share a member id.
    """
    for topic, count in partitions.items():
        if not isinstance(topic, str):
            raise InvalidArgumentError(f"topic names must be str, got {topic!r}")
        # bool is an int subclass; a count of True is a bug upstream, not one partition.
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise InvalidArgumentError(
                f"partition count of topic {topic!r} must be an int >= 0, got {count!r}",
                topic=topic,
            )
    seen: set[str] = set()
    for member in members:
        if not isinstance(member, MemberSubscription):
            raise InvalidArgumentError(f"members must be MemberSubscription, got {member!r}")
        if not isinstance(member.member_id, str):
            raise InvalidArgumentError(f"member_id must be str, got {member.member_id!r}")
        if member.instance_id is not None and not isinstance(member.instance_id, str):
            raise InvalidArgumentError(
                f"instance_id must be str or None, got {member.instance_id!r}",
                member_id=member.member_id,
            )
        # A bare string would be iterated as one-letter topic names.
        topics: object = member.topics
        if isinstance(topics, str) or not all(isinstance(t, str) for t in member.topics):
            raise InvalidArgumentError(
                f"topics of member {member.member_id!r} must be a tuple of str, "
                f"got {member.topics!r}",
                member_id=member.member_id,
            )
        if member.member_id in seen:
            raise InvalidArgumentError(
                f"member id {member.member_id!r} appears twice; member ids must be unique",
                member_id=member.member_id,
            )
        seen.add(member.member_id)
    return sorted(members, key=_member_key)


def _existing(topics: Iterable[str], partitions: Mapping[str, int]) -> set[str]:
    """The subscribed topics that exist and have at least one partition."""
    return {topic for topic in topics if partitions.get(topic, 0) > 0}


def _finish(
    order: Sequence[MemberSubscription], result: Mapping[str, Iterable[TopicPartition]]
) -> Assignment:
    """Build the returned dict: every member in order, each list sorted."""
    return {m.member_id: sorted(result.get(m.member_id, ())) for m in order}


# --- range ----------------------------------------------------------------------------


def range_assign(
    members: Sequence[MemberSubscription], partitions: Mapping[str, int]
) -> Assignment:
    """Kafka's ``RangeAssignor``: contiguous ranges of each topic's partitions.

    For each topic, the members subscribed to it (in member order) get consecutive runs of
    its partitions: ``P // C`` each, and one more for the first ``P % C``. Topics are
    independent, so with several topics the first members get the extra partition of every
    topic (Kafka's well-known imbalance of range).

    Args:
        members: the group's members.
        partitions: topic name -> partition count.

    Returns:
        The assignment (see :data:`Assignment`).

    Raises:
        InvalidArgumentError: malformed input (see :func:`assign`).
    """
    order = _ordered_members(members, partitions)
    result: dict[str, list[TopicPartition]] = {m.member_id: [] for m in order}
    topics = set().union(*(_existing(m.topics, partitions) for m in order)) if order else set()
    for topic in sorted(topics):
        consumers = [m.member_id for m in order if topic in m.topics]
        count = partitions[topic]
        per_member, extra = divmod(count, len(consumers))
        start = 0
        for i, member_id in enumerate(consumers):
            length = per_member + (1 if i < extra else 0)
            result[member_id].extend(TopicPartition(topic, p) for p in range(start, start + length))
            start += length
    return _finish(order, result)


# --- round-robin ----------------------------------------------------------------------


def roundrobin_assign(
    members: Sequence[MemberSubscription], partitions: Mapping[str, int]
) -> Assignment:
    """Kafka's ``RoundRobinAssignor``: partitions dealt one by one in a circle.

    All partitions of the subscribed topics, sorted by topic then partition, are dealt over
    the members in member order; the dealer moves past a member that does not subscribe to
    the partition's topic, and the circle continues from where the last partition went.
    Balanced (counts differ by at most one) when all subscriptions are equal.

    Args:
        members: the group's members.
        partitions: topic name -> partition count.

    Returns:
        The assignment (see :data:`Assignment`).

    Raises:
        InvalidArgumentError: malformed input (see :func:`assign`).
    """
    order = _ordered_members(members, partitions)
    result: dict[str, list[TopicPartition]] = {m.member_id: [] for m in order}
    subscribed = [_existing(m.topics, partitions) for m in order]
    topics = set().union(*subscribed) if order else set()
    position = 0
    # Kafka sorts the topic names in a TreeSet (Java string order).
    for topic in sorted(topics, key=_java_key):
        for p in range(partitions[topic]):
            # Someone subscribes to every topic in ``topics``, so this loop ends within one
            # turn of the circle.
            while topic not in subscribed[position]:
                position = (position + 1) % len(order)
            result[order[position].member_id].append(TopicPartition(topic, p))
            position = (position + 1) % len(order)
    return _finish(order, result)


# --- sticky ---------------------------------------------------------------------------


def sticky_assign(
    members: Sequence[MemberSubscription], partitions: Mapping[str, int]
) -> Assignment:
    """Kafka's ``StickyAssignor`` / ``CooperativeStickyAssignor`` semantics.

    Balance comes first, then stickiness: every partition a member owns (``owned``) stays
    with it unless balance requires moving it.

    * All members subscribe to the same (existing) topics: with ``P`` partitions and ``M``
      members, every member gets ``P // M`` or one more; the ``P % M`` larger shares go
      first to members that own more than ``P // M``, so the number of partitions taken
      from their current owners is the least any balanced assignment allows. Without
      previous owners the result equals round-robin's.
    * Subscriptions differ: previous owners keep their partitions, the other partitions go
      (the most constrained first) to the least-loaded member subscribed to their topic,
      then partitions move from more- to less-loaded members until no partition could move
      to a member with two or more fewer partitions (Kafka's definition of balanced for
      unequal subscriptions). Partitions a member did not own before move first.

    Args:
        members: the group's members, with the partitions each owns now.
        partitions: topic name -> partition count.

    Returns:
        The assignment (see :data:`Assignment`).

    Raises:
        InvalidArgumentError: malformed input (see :func:`assign`).
    """
    order = _ordered_members(members, partitions)
    if not order:
        return {}
    subscribed = {m.member_id: _existing(m.topics, partitions) for m in order}
    claims = _valid_claims(order, subscribed, partitions)
    first = subscribed[order[0].member_id]
    if all(topics == first for topics in subscribed.values()):
        return _finish(order, _sticky_equal(order, first, partitions, claims))
    return _finish(order, _sticky_general(order, subscribed, partitions, claims))


def _valid_claims(
    order: Sequence[MemberSubscription],
    subscribed: Mapping[str, set[str]],
    partitions: Mapping[str, int],
) -> dict[str, list[TopicPartition]]:
    """Each member's owned partitions that it may keep, sorted.

    A claim counts when the partition still exists and the member still subscribes to its
    topic. A partition claimed by two or more members (a stale or corrupt input) is dropped
    from all of them, as Kafka does for owners of the same generation: no claim is better
    than another, and treating it as unowned still assigns it to exactly one member.
    """
    claimants: dict[TopicPartition, int] = {}
    valid: dict[str, list[TopicPartition]] = {}
    for member in order:
        topics = subscribed[member.member_id]
        mine: set[TopicPartition] = set()
        for item in member.owned:
            topic, partition = item
            if (
                topic in topics
                and isinstance(partition, int)
                and not isinstance(partition, bool)
                and 0 <= partition < partitions[topic]
            ):
                # A fresh TopicPartition: the input may hold plain tuples, and the output
                # should hold only our own values.
                mine.add(TopicPartition(topic, partition))
        for tp in mine:
            claimants[tp] = claimants.get(tp, 0) + 1
        valid[member.member_id] = sorted(mine)
    return {member_id: [tp for tp in tps if claimants[tp] == 1] for member_id, tps in valid.items()}


def _all_partitions(topics: Iterable[str], partitions: Mapping[str, int]) -> list[TopicPartition]:
    """Every partition of ``topics``, sorted by (topic, partition)."""
    return [TopicPartition(t, p) for t in sorted(topics) for p in range(partitions[t])]


def _sticky_equal(
    order: Sequence[MemberSubscription],
    topics: set[str],
    partitions: Mapping[str, int],
    claims: Mapping[str, list[TopicPartition]],
) -> dict[str, list[TopicPartition]]:
    """Sticky assignment when every member subscribes to the same topics.

    With ``q, r = divmod(P, M)``, exactly ``r`` members get ``q + 1`` partitions and the
    rest ``q``. A member that owns more than ``q`` keeps ``q + 1`` while such slots last
    (each one saves a move; which member gets it does not change the count), everyone
    else keeps up to ``q``, and the excess is all that moves: the minimum, since a
    member can keep at most its quota. Free partitions then fill the members below ``q``
    in a circle (so a fresh group gets exactly round-robin's layout, as in Kafka), and the
    remaining ``r - granted`` go one each to members at ``q``, in the order they got
    there.
    """
    universe = _all_partitions(topics, partitions)
    quota, extra = divmod(len(universe), len(order))
    kept: dict[str, list[TopicPartition]] = {}
    granted = 0
    at_quota: list[str] = []  # members at q that may still take one extra partition
    under: deque[str] = deque()  # members below q, in member order
    for member in order:
        owned = claims[member.member_id]
        if len(owned) > quota and granted < extra:
            kept[member.member_id] = owned[: quota + 1]
            granted += 1
        else:
            kept[member.member_id] = owned[:quota]
            if len(owned) >= quota:
                at_quota.append(member.member_id)
            else:
                under.append(member.member_id)
    taken = {tp for tps in kept.values() for tp in tps}
    free = iter([tp for tp in universe if tp not in taken])
    # The slots add up: sum(q - kept) over ``under`` plus (r - granted) extras equals the
    # number of free partitions, so ``next(free)`` cannot run dry while ``under`` is
    # non-empty, and every free partition left finds a member at q.
    while under:
        member_id = under.popleft()
        kept[member_id].append(next(free))
        if len(kept[member_id]) < quota:
            under.append(member_id)
        else:
            at_quota.append(member_id)
    for member_id, tp in zip(at_quota, free):
        kept[member_id].append(tp)
    return kept


class _LoadIndex:
    """The least-loaded member subscribed to a topic, in O(log M).

    Members with the same subscription form a class, each with a heap of
    ``(count, order, member_id)``; the least-loaded member for a topic is the best top
    among the classes that contain the topic (few, usually one). Counts change by
    pushing a new entry; stale entries are dropped when they surface (lazy deletion).
    """

    def __init__(
        self, order: Sequence[MemberSubscription], subscribed: Mapping[str, set[str]]
    ) -> None:
        self.count: dict[str, int] = {m.member_id: 0 for m in order}
        self.rank: dict[str, int] = {m.member_id: i for i, m in enumerate(order)}
        self.class_of: dict[str, frozenset[str]] = {}
        self.heaps: dict[frozenset[str], list[tuple[int, int, str]]] = {}
        self.classes_for: dict[str, list[frozenset[str]]] = {}
        for member in order:
            key = frozenset(subscribed[member.member_id])
            self.class_of[member.member_id] = key
            if key not in self.heaps:
                self.heaps[key] = []
                for topic in key:
                    self.classes_for.setdefault(topic, []).append(key)
            heapq.heappush(self.heaps[key], (0, self.rank[member.member_id], member.member_id))

    def change(self, member_id: str, delta: int) -> None:
        """Add ``delta`` to a member's partition count."""
        self.count[member_id] += delta
        entry = (self.count[member_id], self.rank[member_id], member_id)
        heapq.heappush(self.heaps[self.class_of[member_id]], entry)

    def least_loaded(self, topic: str) -> str:
        """The member subscribed to ``topic`` with the fewest partitions (ties: member order)."""
        best: tuple[int, int, str] | None = None
        for key in self.classes_for[topic]:
            heap = self.heaps[key]
            while heap[0][0] != self.count[heap[0][2]]:
                heapq.heappop(heap)
            if best is None or heap[0] < best:
                best = heap[0]
        assert best is not None  # every topic in classes_for has at least one class
        return best[2]


def _sticky_general(
    order: Sequence[MemberSubscription],
    subscribed: Mapping[str, set[str]],
    partitions: Mapping[str, int],
    claims: Mapping[str, list[TopicPartition]],
) -> dict[str, set[TopicPartition]]:
    """Sticky assignment when subscriptions differ (Kafka's "general" case).

    1. Every valid claim is kept.
    2. Free partitions are placed most-constrained first (fewest subscribed members, so a
       topic only a few members can take is placed before others fill those members),
       each on the least-loaded member subscribed to its topic.
    3. Passes over the members, most loaded first, move partitions out of each member
       while some member subscribed to one of their topics has two or more fewer. Each
       move takes a partition the member did not own before this call if one can move
       (those cost no stickiness), else an owned one, and sends it to the least-loaded
       member that can take it (the largest step towards balance, so fewer moves are
       needed). A pass that moves nothing ends it; each move lowers the sum of squared
       counts by at least 2, so that happens, usually after one or two passes.

    Like Kafka's general algorithm this is a heuristic: it reaches Kafka's balance
    criterion, but a chain of moves can occasionally take one more partition from its
    owner than an equally balanced optimum would.
    """
    index = _LoadIndex(order, subscribed)
    owner: dict[TopicPartition, str] = {}
    for member in order:
        for tp in claims[member.member_id]:
            owner[tp] = member.member_id
            index.change(member.member_id, 1)

    eligible = dict.fromkeys(partitions, 0)
    for topics in subscribed.values():
        for topic in topics:
            eligible[topic] += 1
    universe = _all_partitions({t for t in eligible if eligible[t]}, partitions)
    free = [tp for tp in universe if tp not in owner]
    free.sort(key=lambda tp: (eligible[tp.topic], tp))
    for tp in free:
        member_id = index.least_loaded(tp.topic)
        owner[tp] = member_id
        index.change(member_id, 1)

    # Per member and topic, two heaps of held partitions: those it did not own before this
    # call (free to move) and those it did (moving one costs stickiness).
    fresh: dict[str, dict[str, list[TopicPartition]]] = {m.member_id: {} for m in order}
    kept: dict[str, dict[str, list[TopicPartition]]] = {m.member_id: {} for m in order}
    previously = {tp: mid for mid, tps in claims.items() for tp in tps}

    def place(tp: TopicPartition, member_id: str) -> None:
        bucket = kept if previously.get(tp) == member_id else fresh
        heapq.heappush(bucket[member_id].setdefault(tp.topic, []), tp)

    for tp, member_id in owner.items():
        place(tp, member_id)

    moved = True
    while moved:
        moved = False
        for source in sorted(fresh, key=lambda mid: (-index.count[mid], index.rank[mid])):
            while True:
                # The best move out of ``source``: a partition it did not own before if
                # any can move, else an owned one; to the least-loaded member that can take
                # it (the largest step towards balance, so fewer moves are needed).
                best: tuple[tuple[int, int, int, str], str, str] | None = None
                for topic in {*fresh[source], *kept[source]}:
                    has_fresh = bool(fresh[source].get(topic))
                    if not has_fresh and not kept[source].get(topic):
                        continue
                    target = index.least_loaded(topic)
                    if index.count[target] + 1 >= index.count[source]:
                        continue
                    key = (0 if has_fresh else 1, index.count[target], index.rank[target], topic)
                    if best is None or key < best[0]:
                        best = (key, topic, target)
                if best is None:
                    break
                _, topic, target = best
                heap = fresh[source].get(topic) or kept[source][topic]
                place(heapq.heappop(heap), target)
                index.change(source, -1)
                index.change(target, 1)
                moved = True

    return {
        mid: {tp for heaps in (fresh[mid], kept[mid]) for heap in heaps.values() for tp in heap}
        for mid in fresh
    }
