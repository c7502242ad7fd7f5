"""Consumer-group partition assignors (eventlog._assignors).

Three kinds of tests:

* Kafka's own scenarios, reproduced as facts (same members, same partition counts -> the
  same assignment Kafka computes). Sources, all in apache/kafka under clients/src/:
  the Javadoc examples of ``RangeAssignor``, ``RoundRobinAssignor`` and ``StickyAssignor``;
  ``test/.../consumer/RangeAssignorTest.java`` and ``RoundRobinAssignorTest.java``;
  ``test/.../consumer/internals/AbstractPartitionAssignorTest.java`` (member ordering) and
  ``AbstractStickyAssignorTest.java``. Partitions are written the way Kafka's tests write
  them: ``"t1-0, t1-1"``.
* Properties with hypothesis: validity for every protocol, balance, determinism, and for
  the sticky assignor "moves exactly what balance requires", computed independently here.
* Bad input.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from eventlog._assignors import (
    COOPERATIVE,
    PROTOCOLS,
    MemberSubscription,
    assign,
    range_assign,
    roundrobin_assign,
    sticky_assign,
    validate_protocol,
)
from eventlog._errors import InvalidArgumentError
from eventlog._records import TopicPartition

Assignment = dict[str, list[TopicPartition]]


# --- helpers -------------------------------------------------------------------------


def tps(text: str) -> list[TopicPartition]:
    """Kafka's test notation: ``"t1-0, t1-1"`` -> [TopicPartition("t1", 0), ...]."""
    if not text:
        return []
    result = []
    for item in text.split(", "):
        topic, _, partition = item.rpartition("-")
        result.append(TopicPartition(topic, int(partition)))
    return result


def member(
    member_id: str,
    *topics: str,
    instance: str | None = None,
    owned: str | Iterable[TopicPartition] = (),
) -> MemberSubscription:
    owned_tps = tps(owned) if isinstance(owned, str) else list(owned)
    return MemberSubscription(member_id, instance, tuple(topics), tuple(owned_tps))


def as_text(assignment: Mapping[str, Sequence[TopicPartition]]) -> dict[str, str]:
    """The assignment in Kafka's notation, for readable comparisons."""
    return {
        m: ", ".join(f"{tp.topic}-{tp.partition}" for tp in tps_) for m, tps_ in assignment.items()
    }


def with_owned(
    members: Sequence[MemberSubscription], assignment: Assignment
) -> list[MemberSubscription]:
    """The members again, each owning what ``assignment`` gave it (the next rebalance)."""
    return [m._replace(owned=tuple(assignment.get(m.member_id, ()))) for m in members]


def universe(
    members: Sequence[MemberSubscription], partitions: Mapping[str, int]
) -> set[TopicPartition]:
    """Every partition of a topic some member subscribes to and that exists."""
    topics = {t for m in members for t in m.topics if t in partitions}
    return {TopicPartition(t, p) for t in topics for p in range(partitions[t])}


def check_valid(
    members: Sequence[MemberSubscription], partitions: Mapping[str, int], result: Assignment
) -> None:
    """Every member present; every partition of a subscribed existing topic assigned to
    exactly one member subscribed to its topic; nothing else assigned; lists sorted."""
    assert set(result) == {m.member_id for m in members}
    subscriptions = {m.member_id: set(m.topics) for m in members}
    counts = Counter(tp for tps_ in result.values() for tp in tps_)
    assert all(n == 1 for n in counts.values()), f"assigned twice: {counts}"
    assert set(counts) == universe(members, partitions)
    for member_id, assigned in result.items():
        assert assigned == sorted(assigned)
        assert all(type(tp) is TopicPartition for tp in assigned)
        for tp in assigned:
            assert tp.topic in subscriptions[member_id], f"{tp} given to {member_id}"


def check_kafka_balance(members: Sequence[MemberSubscription], result: Assignment) -> None:
    """Kafka's balance rule (AbstractStickyAssignorTest.verifyValidityAndBalance): when
    two members' counts differ by more than one, none of the larger one's partitions
    could go to the smaller one (it does not subscribe to any of their topics)."""
    subscriptions = {m.member_id: set(m.topics) for m in members}
    for big, big_tps in result.items():
        for small, small_tps in result.items():
            if len(big_tps) - len(small_tps) > 1:
                movable = [tp for tp in big_tps if tp.topic in subscriptions[small]]
                assert not movable, f"{movable} could move from {big} to {small}"


def spread(result: Assignment) -> int:
    counts = [len(v) for v in result.values()]
    return max(counts) - min(counts) if counts else 0


def moved_away(
    members: Sequence[MemberSubscription], result: Assignment, counts: Mapping[str, int]
) -> int:
    """How many partitions left an owner that could have kept them (the partition still
    exists and the owner still subscribes to its topic)."""
    moved = 0
    for m in members:
        for tp in set(m.owned) - set(result[m.member_id]):
            if tp.topic in m.topics and 0 <= tp.partition < counts.get(tp.topic, 0):
                moved += 1
    return moved


def minimum_moves(
    members: Sequence[MemberSubscription], total: int, valid: set[TopicPartition]
) -> int:
    """The fewest partitions a balanced assignment must take from their owners.

    With ``total`` partitions over M members, r = total % M members may hold ceil and the
    rest floor; giving the ceiling to the members that own the most, each member must
    shed what it owns beyond its allowance."""
    if not members:
        return 0
    floor, ceil_slots = divmod(total, len(members))
    owned = sorted((len(set(m.owned) & valid) for m in members), reverse=True)
    allowed = [floor + 1] * ceil_slots + [floor] * (len(members) - ceil_slots)
    return sum(max(0, o - a) for o, a in zip(owned, allowed))


# --- Kafka's range and round-robin scenarios ------------------------------------------

# (name, partition counts, members, expected in Kafka notation). Member tuples are
# (member id, instance id or None, topics).
MemberSpec = tuple[str, "str | None", tuple[str, ...]]
T12 = ("topic1", "topic2")
STATIC_3_AND_DYNAMIC: list[MemberSpec] = [
    ("consumer1", "instance1", T12),
    ("consumer2", "instance2", T12),
    ("consumer3", "instance3", T12),
    ("consumer4", None, T12),
]
ALL3 = ("t1", "t2", "t3")
ALL4 = ("t1", "t2", "t3", "t4")

RANGE_CASES: list[tuple[str, dict[str, int], list[MemberSpec], dict[str, str]]] = [
    (
        "javadoc",
        {"t0": 3, "t1": 3},
        [("C0", None, ("t0", "t1")), ("C1", None, ("t0", "t1"))],
        {"C0": "t0-0, t0-1, t1-0, t1-1", "C1": "t0-2, t1-2"},
    ),
    ("oneConsumerNoTopic", {}, [("consumer", None, ())], {"consumer": ""}),
    ("oneConsumerNonexistentTopic", {}, [("consumer", None, ("topic",))], {"consumer": ""}),
    (
        "oneConsumerOneTopic",
        {"topic": 3},
        [("consumer", None, ("topic",))],
        {"consumer": "topic-0, topic-1, topic-2"},
    ),
    (
        "onlyAssignsPartitionsFromSubscribedTopics",
        {"topic": 3, "other": 3},
        [("consumer", None, ("topic",))],
        {"consumer": "topic-0, topic-1, topic-2"},
    ),
    (
        "oneConsumerMultipleTopics",
        {"topic1": 1, "topic2": 2},
        [("consumer", None, T12)],
        {"consumer": "topic1-0, topic2-0, topic2-1"},
    ),
    (
        "twoConsumersOneTopicOnePartition",
        {"topic": 1},
        [("consumer1", None, ("topic",)), ("consumer2", None, ("topic",))],
        {"consumer1": "topic-0", "consumer2": ""},
    ),
    (
        "twoConsumersOneTopicTwoPartitions",
        {"topic": 2},
        [("consumer1", None, ("topic",)), ("consumer2", None, ("topic",))],
        {"consumer1": "topic-0", "consumer2": "topic-1"},
    ),
    (
        "multipleConsumersMixedTopics",
        {"topic1": 3, "topic2": 2},
        [
            ("consumer1", None, ("topic1",)),
            ("consumer2", None, T12),
            ("consumer3", None, ("topic1",)),
        ],
        {
            "consumer1": "topic1-0",
            "consumer2": "topic1-1, topic2-0, topic2-1",
            "consumer3": "topic1-2",
        },
    ),
    (
        # consumer-a sorts first by member id, but instance ids decide between static members.
        "twoStaticConsumersTwoTopicsSixPartitions",
        {"topic1": 3, "topic2": 3},
        [("consumer-b", "instance1", T12), ("consumer-a", "instance2", T12)],
        {
            "consumer-b": "topic1-0, topic1-1, topic2-0, topic2-1",
            "consumer-a": "topic1-2, topic2-2",
        },
    ),
    (
        "oneStaticConsumerAndOneDynamicConsumerTwoTopicsSixPartitions",
        {"topic1": 3, "topic2": 3},
        [("consumer-b", "instance1", T12), ("consumer-a", None, T12)],
        {
            "consumer-b": "topic1-0, topic1-1, topic2-0, topic2-1",
            "consumer-a": "topic1-2, topic2-2",
        },
    ),
    (
        "staticMemberRangeAssignmentPersistent",
        {"topic1": 5, "topic2": 4},
        STATIC_3_AND_DYNAMIC,
        {
            "consumer1": "topic1-0, topic1-1, topic2-0",
            "consumer2": "topic1-2, topic2-1",
            "consumer3": "topic1-3, topic2-2",
            "consumer4": "topic1-4, topic2-3",
        },
    ),
    (
        "staticMemberRangeAssignmentPersistent (consumer4 replaced by consumer5)",
        {"topic1": 5, "topic2": 4},
        [*STATIC_3_AND_DYNAMIC[:3], ("consumer5", None, T12)],
        {
            "consumer1": "topic1-0, topic1-1, topic2-0",
            "consumer2": "topic1-2, topic2-1",
            "consumer3": "topic1-3, topic2-2",
            "consumer5": "topic1-4, topic2-3",
        },
    ),
    # The non-rack-aware expectations of the rack-aware tests (consumers consumer0..n).
    (
        "rackAwareAssignmentWithUniformSubscription (no racks)",
        {"t1": 6, "t2": 7, "t3": 2},
        [("consumer0", None, ALL3), ("consumer1", None, ALL3), ("consumer2", None, ALL3)],
        {
            "consumer0": "t1-0, t1-1, t2-0, t2-1, t2-2, t3-0",
            "consumer1": "t1-2, t1-3, t2-3, t2-4, t3-1",
            "consumer2": "t1-4, t1-5, t2-5, t2-6",
        },
    ),
    (
        "rackAwareAssignmentWithNonEqualSubscription (no racks)",
        {"t1": 6, "t2": 7, "t3": 2},
        [("consumer0", None, ALL3), ("consumer1", None, ALL3), ("consumer2", None, ("t1", "t3"))],
        {
            "consumer0": "t1-0, t1-1, t2-0, t2-1, t2-2, t2-3, t3-0",
            "consumer1": "t1-2, t1-3, t2-4, t2-5, t2-6, t3-1",
            "consumer2": "t1-4, t1-5",
        },
    ),
    (
        "rackAwareAssignmentWithUniformPartitions (no racks)",
        {"t1": 5, "t2": 5, "t3": 5},
        [("consumer0", None, ALL3), ("consumer1", None, ALL3), ("consumer2", None, ALL3)],
        {
            "consumer0": "t1-0, t1-1, t2-0, t2-1, t3-0, t3-1",
            "consumer1": "t1-2, t1-3, t2-2, t2-3, t3-2, t3-3",
            "consumer2": "t1-4, t2-4, t3-4",
        },
    ),
    (
        "rackAwareAssignmentWithUniformPartitionsNonEqualSubscription (no racks)",
        {"t1": 5, "t2": 5, "t3": 5},
        [("consumer0", None, ALL3), ("consumer1", None, ALL3), ("consumer2", None, ("t1", "t3"))],
        {
            "consumer0": "t1-0, t1-1, t2-0, t2-1, t2-2, t3-0, t3-1",
            "consumer1": "t1-2, t1-3, t2-3, t2-4, t3-2, t3-3",
            "consumer2": "t1-4, t3-4",
        },
    ),
    (
        "rackAwareAssignmentWithCoPartitioning (no racks, split subscriptions)",
        {"t1": 6, "t2": 6, "t3": 2, "t4": 2},
        [
            ("consumer0", None, ("t1", "t2")),
            ("consumer1", None, ("t1", "t2")),
            ("consumer2", None, ("t3", "t4")),
            ("consumer3", None, ("t3", "t4")),
        ],
        {
            "consumer0": "t1-0, t1-1, t1-2, t2-0, t2-1, t2-2",
            "consumer1": "t1-3, t1-4, t1-5, t2-3, t2-4, t2-5",
            "consumer2": "t3-0, t4-0",
            "consumer3": "t3-1, t4-1",
        },
    ),
    (
        "rackAwareAssignmentWithCoPartitioning (no racks, all subscribed)",
        {"t1": 6, "t2": 6, "t3": 2, "t4": 2},
        [(f"consumer{i}", None, ALL4) for i in range(4)],
        {
            "consumer0": "t1-0, t1-1, t2-0, t2-1, t3-0, t4-0",
            "consumer1": "t1-2, t1-3, t2-2, t2-3, t3-1, t4-1",
            "consumer2": "t1-4, t2-4",
            "consumer3": "t1-5, t2-5",
        },
    ),
    (
        # t7..t9 are subscribed but do not exist.
        "coPartitionedAssignmentWithSameSubscription (no racks)",
        {"t1": 6, "t2": 6, "t3": 2, "t4": 2, "t5": 4, "t6": 4},
        [(f"consumer{i}", None, tuple(f"t{n}" for n in range(1, 10))) for i in range(3)],
        {
            "consumer0": "t1-0, t1-1, t2-0, t2-1, t3-0, t4-0, t5-0, t5-1, t6-0, t6-1",
            "consumer1": "t1-2, t1-3, t2-2, t2-3, t3-1, t4-1, t5-2, t6-2",
            "consumer2": "t1-4, t1-5, t2-4, t2-5, t5-3, t6-3",
        },
    ),
]

ROUNDROBIN_CASES: list[tuple[str, dict[str, int], list[MemberSpec], dict[str, str]]] = [
    (
        "javadoc (equal subscriptions)",
        {"t0": 3, "t1": 3},
        [("C0", None, ("t0", "t1")), ("C1", None, ("t0", "t1"))],
        {"C0": "t0-0, t0-2, t1-1", "C1": "t0-1, t1-0, t1-2"},
    ),
    (
        "javadoc (unequal subscriptions)",
        {"t0": 1, "t1": 2, "t2": 3},
        [("C0", None, ("t0",)), ("C1", None, ("t0", "t1")), ("C2", None, ("t0", "t1", "t2"))],
        {"C0": "t0-0", "C1": "t1-0", "C2": "t1-1, t2-0, t2-1, t2-2"},
    ),
    ("oneConsumerNoTopic", {}, [("consumer", None, ())], {"consumer": ""}),
    ("oneConsumerNonexistentTopic", {}, [("consumer", None, ("topic",))], {"consumer": ""}),
    (
        "oneConsumerOneTopic",
        {"topic": 3},
        [("consumer", None, ("topic",))],
        {"consumer": "topic-0, topic-1, topic-2"},
    ),
    (
        "onlyAssignsPartitionsFromSubscribedTopics",
        {"topic": 3, "other": 3},
        [("consumer", None, ("topic",))],
        {"consumer": "topic-0, topic-1, topic-2"},
    ),
    (
        "oneConsumerMultipleTopics",
        {"topic1": 1, "topic2": 2},
        [("consumer", None, T12)],
        {"consumer": "topic1-0, topic2-0, topic2-1"},
    ),
    (
        "twoConsumersOneTopicOnePartition",
        {"topic": 1},
        [("consumer1", None, ("topic",)), ("consumer2", None, ("topic",))],
        {"consumer1": "topic-0", "consumer2": ""},
    ),
    (
        "twoConsumersOneTopicTwoPartitions",
        {"topic": 2},
        [("consumer1", None, ("topic",)), ("consumer2", None, ("topic",))],
        {"consumer1": "topic-0", "consumer2": "topic-1"},
    ),
    (
        "multipleConsumersMixedTopics",
        {"topic1": 3, "topic2": 2},
        [
            ("consumer1", None, ("topic1",)),
            ("consumer2", None, T12),
            ("consumer3", None, ("topic1",)),
        ],
        {
            "consumer1": "topic1-0",
            "consumer2": "topic1-1, topic2-0, topic2-1",
            "consumer3": "topic1-2",
        },
    ),
    (
        "twoDynamicConsumersTwoTopicsSixPartitions",
        {"topic1": 3, "topic2": 3},
        [("consumer1", None, T12), ("consumer2", None, T12)],
        {"consumer1": "topic1-0, topic1-2, topic2-1", "consumer2": "topic1-1, topic2-0, topic2-2"},
    ),
    (
        "twoStaticConsumersTwoTopicsSixPartitions",
        {"topic1": 3, "topic2": 3},
        [("consumer-b", "instance1", T12), ("consumer-a", "instance2", T12)],
        {
            "consumer-b": "topic1-0, topic1-2, topic2-1",
            "consumer-a": "topic1-1, topic2-0, topic2-2",
        },
    ),
    (
        "oneStaticConsumerAndOneDynamicConsumerTwoTopicsSixPartitions",
        {"topic1": 3, "topic2": 3},
        [("consumer-b", "instance1", T12), ("consumer-a", None, T12)],
        {
            "consumer-b": "topic1-0, topic1-2, topic2-1",
            "consumer-a": "topic1-1, topic2-0, topic2-2",
        },
    ),
    (
        "staticMemberAssignmentPersistent",
        {"topic1": 3, "topic2": 3},
        STATIC_3_AND_DYNAMIC,
        {
            "consumer1": "topic1-0, topic2-1",
            "consumer2": "topic1-1, topic2-2",
            "consumer3": "topic1-2",
            "consumer4": "topic2-0",
        },
    ),
    (
        "staticMemberAssignmentPersistent (consumer4 replaced by consumer5)",
        {"topic1": 3, "topic2": 3},
        [*STATIC_3_AND_DYNAMIC[:3], ("consumer5", None, T12)],
        {
            "consumer1": "topic1-0, topic2-1",
            "consumer2": "topic1-1, topic2-2",
            "consumer3": "topic1-2",
            "consumer5": "topic2-0",
        },
    ),
]


def _build(specs: Sequence[MemberSpec]) -> list[MemberSubscription]:
    return [MemberSubscription(mid, inst, topics) for mid, inst, topics in specs]


@pytest.mark.parametrize(
    ("partitions", "specs", "expected"),
    [case[1:] for case in RANGE_CASES],
    ids=[case[0] for case in RANGE_CASES],
)
def test_range_reproduces_kafka(
    partitions: dict[str, int], specs: list[MemberSpec], expected: dict[str, str]
) -> None:
    members = _build(specs)
    result = range_assign(members, partitions)
    assert as_text(result) == expected
    assert assign("range", list(reversed(members)), partitions) == result


@pytest.mark.parametrize(
    ("partitions", "specs", "expected"),
    [case[1:] for case in ROUNDROBIN_CASES],
    ids=[case[0] for case in ROUNDROBIN_CASES],
)
def test_roundrobin_reproduces_kafka(
    partitions: dict[str, int], specs: list[MemberSpec], expected: dict[str, str]
) -> None:
    members = _build(specs)
    result = roundrobin_assign(members, partitions)
    assert as_text(result) == expected
    assert assign("roundrobin", list(reversed(members)), partitions) == result


@pytest.mark.parametrize("protocol", ["range", "roundrobin"])
def test_static_assignment_survives_member_id_changes(protocol: str) -> None:
    """Kafka's *StaticMemberAssignmentPersistentAfterMemberIdChanges: static members keep
    their partitions when they rejoin under new member ids, because instance ids order
    them. Range: topic1 and topic2 with 5 partitions; round-robin: 3 each."""
    counts = {"topic1": 5, "topic2": 5} if protocol == "range" else {"topic1": 3, "topic2": 3}
    expected = (
        {
            "instance1": "topic1-0, topic1-1, topic2-0, topic2-1",
            "instance2": "topic1-2, topic1-3, topic2-2, topic2-3",
            "instance3": "topic1-4, topic2-4",
        }
        if protocol == "range"
        else {f"instance{i + 1}": f"topic1-{i}, topic2-{i}" for i in range(3)}
    )
    before = [member(f"consumer{i}", *T12, instance=f"instance{i}") for i in (1, 2, 3)]
    # New member ids whose own order differs from the instance order.
    after = [
        member("consumer4", *T12, instance="instance1"),
        member("consumer5", *T12, instance="instance2"),
        member("consumer1", *T12, instance="instance3"),
    ]
    for members in (before, after):
        result = assign(protocol, members, counts)
        by_instance = {m.instance_id: result[m.member_id] for m in members}
        assert as_text(by_instance) == expected


def _order_via_roundrobin(members: Sequence[MemberSubscription]) -> list[str]:
    """The assignor's member order, observed: with one partition per member of one topic,
    round-robin gives partition i to the i-th member."""
    result = roundrobin_assign(members, {"t": len(members)})
    return [mid for mid, assigned in sorted(result.items(), key=lambda kv: kv[1])]


def test_member_order_follows_kafka() -> None:
    """AbstractPartitionAssignorTest: dynamic members by member id; static members by
    instance id; static before dynamic."""
    assert _order_via_roundrobin([member("a", "t"), member("b", "t"), member("c", "t")]) == [
        "a",
        "b",
        "c",
    ]
    all_static = [
        member("a", "t", instance="y"),
        member("b", "t", instance="z"),
        member("c", "t", instance="x"),
    ]
    assert _order_via_roundrobin(all_static) == ["c", "a", "b"]
    some_static = [member("a", "t"), member("b", "t", instance="y"), member("c", "t", instance="x")]
    assert _order_via_roundrobin(some_static) == ["c", "b", "a"]


def test_member_order_many_members_shuffled() -> None:
    """AbstractPartitionAssignorTest.testMergeSortManyMemberInfo: 100 members with 3-digit
    ids, about half static (instance id = member id): statics first, then dynamics, each
    in id order, whatever the input order."""
    rng = random.Random(1234)
    members = [
        member(str(i), "t", instance=str(i) if rng.random() < 0.5 else None)
        for i in range(100, 200)
    ]
    expected = [m.member_id for m in members if m.instance_id is not None] + [
        m.member_id for m in members if m.instance_id is None
    ]
    rng.shuffle(members)
    assert _order_via_roundrobin(members) == expected
    assert list(roundrobin_assign(members, {"t": 100})) == expected  # the dict's order too


def test_member_order_compares_like_java_strings() -> None:
    """Java compares UTF-16 code units: U+1F600 (surrogates D83D DE00) sorts before U+FFFD,
    although its code point is larger. Kafka sorts instance and member ids that way."""
    emoji, replacement = "\U0001f600", "\ufffd"
    static = [member("m1", "t", instance=replacement), member("m2", "t", instance=emoji)]
    assert _order_via_roundrobin(static) == ["m2", "m1"]
    dynamic = [member(replacement, "t"), member(emoji, "t")]
    assert _order_via_roundrobin(dynamic) == [emoji, replacement]


# --- Kafka's sticky scenarios ---------------------------------------------------------


def test_sticky_fresh_equal_subscriptions_matches_kafka() -> None:
    """AbstractStickyAssignorTest.testTwoConsumersTwoTopicsSixPartitions and the
    StickyAssignor Javadoc (example 1): a fresh group gets round-robin's layout."""
    members = [member("consumer1", *T12), member("consumer2", *T12)]
    result = sticky_assign(members, {"topic1": 3, "topic2": 3})
    assert as_text(result) == {
        "consumer1": "topic1-0, topic1-2, topic2-1",
        "consumer2": "topic1-1, topic2-0, topic2-2",
    }
    topics = ("t0", "t1", "t2", "t3")
    counts = dict.fromkeys(topics, 2)
    members = [member("C0", *topics), member("C1", *topics), member("C2", *topics)]
    first = sticky_assign(members, counts)
    assert as_text(first) == {
        "C0": "t0-0, t1-1, t3-0",
        "C1": "t0-1, t2-0, t3-1",
        "C2": "t1-0, t2-1",
    }
    # C1 leaves: the Javadoc's point is that C0 and C2 keep everything (4 partitions each).
    survivors = [m for m in with_owned(members, first) if m.member_id != "C1"]
    second = sticky_assign(survivors, counts)
    assert set(first["C0"]) <= set(second["C0"])
    assert set(first["C2"]) <= set(second["C2"])
    assert [len(v) for v in second.values()] == [4, 4]


def test_sticky_javadoc_example_2_unequal_subscriptions() -> None:
    """StickyAssignor Javadoc, example 2: better balanced than round-robin, and after C0
    leaves all five remaining assignments are preserved."""
    counts = {"t0": 1, "t1": 2, "t2": 3}
    members = [member("C0", "t0"), member("C1", "t0", "t1"), member("C2", "t0", "t1", "t2")]
    first = sticky_assign(members, counts)
    assert as_text(first) == {"C0": "t0-0", "C1": "t1-0, t1-1", "C2": "t2-0, t2-1, t2-2"}
    second = sticky_assign(with_owned(members, first)[1:], counts)
    assert as_text(second) == {"C1": "t0-0, t1-0, t1-1", "C2": "t2-0, t2-1, t2-2"}


@pytest.mark.parametrize(
    ("counts", "owned", "expected"),
    [
        pytest.param(
            {"topic1": 2, "topic2": 3},
            ["topic1-0, topic2-1", "topic1-1, topic2-2"],
            ["topic1-0, topic2-0, topic2-1", "topic1-1, topic2-2"],
            id="consumerOwningMinQuotaExpectedMaxQuota",
        ),
        pytest.param(
            {"topic1": 2, "topic2": 3},
            ["topic1-0", "topic1-1", ""],
            ["topic1-0, topic2-1", "topic1-1, topic2-2", "topic2-0"],
            id="allConsumersAreUnderMinQuota",
        ),
        pytest.param(
            {"topic": 4},
            ["topic-0, topic-1", "topic-2", ""],
            ["topic-0, topic-1", "topic-2", "topic-3"],
            id="allConsumersReachExpectedQuotaAndAreConsideredFilled",
        ),
        pytest.param(
            # topic-0 is claimed by consumer1 and consumer2: neither keeps it.
            {"topic": 3},
            ["topic-0, topic-1", "topic-0, topic-2", ""],
            ["topic-1", "topic-2", "topic-0"],
            id="partitionClaimedByMultipleConsumers",
        ),
        pytest.param(
            {"topic": 3, "topic1": 3, "topic2": 3, "topic3": 3},
            [
                "",
                "topic-0, topic2-0, topic1-0",
                "topic3-2, topic2-2, topic1-1",
                "topic3-1, topic-1, topic-2",
            ],
            [
                "topic1-2, topic2-1, topic3-0",
                "topic-0, topic1-0, topic2-0",
                "topic1-1, topic2-2, topic3-2",
                "topic-1, topic-2, topic3-1",
            ],
            id="noReassignmentOnCurrentMembers",
        ),
    ],
)
def test_sticky_reproduces_kafka_equal_subscriptions(
    counts: dict[str, int], owned: list[str], expected: list[str]
) -> None:
    """AbstractStickyAssignorTest scenarios with owned partitions (consumer1..n, all
    subscribed to every topic)."""
    topics = tuple(counts)
    members = [member(f"consumer{i + 1}", *topics, owned=o) for i, o in enumerate(owned)]
    result = sticky_assign(members, counts)
    assert as_text(result) == {f"consumer{i + 1}": e for i, e in enumerate(expected)}
    check_valid(members, counts, result)
    assert spread(result) <= 1


def test_sticky_max_quota_owners_exceed_slots() -> None:
    """AbstractStickyAssignorTest.testMaxQuotaConsumerMoreThanNumExpectedMaxCapacityMembers:
    two members own 2 each of 4 partitions and a third joins; only one may keep 2, so
    exactly one partition moves, to the newcomer. (Kafka's test lets consumer2 keep 2
    because of its HashMap order; here member order decides, so consumer1 keeps 2. Both
    move one partition, the minimum.)"""
    counts = {"topic1": 2, "topic2": 2}
    members = [
        member("consumer1", *counts, owned="topic1-0, topic2-0"),
        member("consumer2", *counts, owned="topic1-1, topic2-1"),
        member("consumer3", *counts),
    ]
    result = sticky_assign(members, counts)
    assert moved_away(members, result, counts) == 1
    assert sorted(len(v) for v in result.values()) == [1, 1, 2]
    assert len(result["consumer3"]) == 1
    assert as_text(result) == {
        "consumer1": "topic1-0, topic2-0",
        "consumer2": "topic1-1",
        "consumer3": "topic2-1",
    }


def test_sticky_add_remove_consumers_matches_kafka() -> None:
    """AbstractStickyAssignorTest.testAddRemoveConsumerOneTopic and
    testAddRemoveTwoConsumersTwoTopics, step by step."""
    one = {"topic": 3}
    c1 = member("consumer1", "topic")
    step1 = sticky_assign([c1], one)
    assert as_text(step1) == {"consumer1": "topic-0, topic-1, topic-2"}
    step2 = sticky_assign([*with_owned([c1], step1), member("consumer2", "topic")], one)
    assert as_text(step2) == {"consumer1": "topic-0, topic-1", "consumer2": "topic-2"}
    step3 = sticky_assign(with_owned([member("consumer2", "topic")], step2), one)
    assert as_text(step3) == {"consumer2": "topic-0, topic-1, topic-2"}

    two = {"topic1": 3, "topic2": 4}
    members = [member("consumer1", *T12), member("consumer2", *T12)]
    first = sticky_assign(members, two)
    assert as_text(first) == {
        "consumer1": "topic1-0, topic1-2, topic2-1, topic2-3",
        "consumer2": "topic1-1, topic2-0, topic2-2",
    }
    members = [*with_owned(members, first), member("consumer3", *T12), member("consumer4", *T12)]
    second = sticky_assign(members, two)
    assert as_text(second) == {
        "consumer1": "topic1-0, topic1-2",
        "consumer2": "topic1-1, topic2-0",
        "consumer3": "topic2-1, topic2-3",
        "consumer4": "topic2-2",
    }
    members = with_owned(members[2:], second)
    third = sticky_assign(members, two)
    assert as_text(third) == {
        "consumer3": "topic1-0, topic2-0, topic2-1, topic2-3",
        "consumer4": "topic1-1, topic1-2, topic2-2",
    }


def test_sticky_mixed_subscriptions_matches_kafka() -> None:
    """AbstractStickyAssignorTest.testMultipleConsumersMixedTopicSubscriptions."""
    members = [
        member("consumer1", "topic1"),
        member("consumer2", "topic1", "topic2"),
        member("consumer3", "topic1"),
    ]
    result = sticky_assign(members, {"topic1": 3, "topic2": 2})
    assert as_text(result) == {
        "consumer1": "topic1-0, topic1-2",
        "consumer2": "topic2-0, topic2-1",
        "consumer3": "topic1-1",
    }


def test_sticky_kafka_general_scenarios_are_valid_and_balanced() -> None:
    """Scenarios of AbstractStickyAssignorTest checked with Kafka's own criterion
    (verifyValidityAndBalance) plus stickiness."""
    # testPoorRoundRobinAssignmentScenario: topics 1..5 with (i % 2) + 1 partitions.
    counts = {f"topic{i}": i % 2 + 1 for i in range(1, 6)}
    members = [
        member("consumer1", *counts),
        member("consumer2", "topic1", "topic3", "topic5"),
        member("consumer3", "topic1", "topic3", "topic5"),
        member("consumer4", *counts),
    ]
    result = sticky_assign(members, counts)
    check_valid(members, counts, result)
    check_kafka_balance(members, result)
    assert spread(result) == 0  # 8 partitions, 2 each

    # testReassignmentAfterOneConsumerLeaves: topic i has i partitions, consumer i
    # subscribes to topics 1..i; consumer10 leaves.
    counts = {f"topic{i:02d}": i for i in range(1, 20)}
    members = [
        member(f"consumer{i:02d}", *(f"topic{j:02d}" for j in range(1, i + 1)))
        for i in range(1, 20)
    ]
    first = sticky_assign(members, counts)
    check_valid(members, counts, first)
    check_kafka_balance(members, first)
    members = [m for m in with_owned(members, first) if m.member_id != "consumer10"]
    second = sticky_assign(members, counts)
    check_valid(members, counts, second)
    check_kafka_balance(members, second)
    # Only consumer10's partitions needed a home; balance may move a few more, never most.
    assert moved_away(members, second, counts) <= len(first["consumer10"])

    # testSubscriptionNotEqualAndAssignSamePartitionWith3Generation (claims overlap).
    counts = {"topic": 6, "topic1": 1}
    members = [
        member("consumer1", "topic", owned="topic-0, topic-2"),
        member("consumer2", "topic", owned="topic-1, topic-2, topic-3"),
        member("consumer3", "topic", owned="topic-2, topic-4, topic-5"),
        member("consumer4", "topic1", owned="topic1-0"),
    ]
    result = sticky_assign(members, counts)
    check_valid(members, counts, result)
    assert all(1 <= len(v) <= 2 for v in result.values())

    # testNewSubscription: topics 1..4 of one partition; consumer0 then subscribes to topic1.
    counts = {f"topic{i}": 1 for i in range(1, 5)}
    members = [
        member(f"consumer{i}", *(f"topic{j}" for j in range(i, 3 * i - 1))) for i in range(3)
    ]
    first = sticky_assign(members, counts)
    check_valid(members, counts, first)
    check_kafka_balance(members, first)
    members = with_owned(members, first)
    members[0] = members[0]._replace(topics=("topic1",))
    second = sticky_assign(members, counts)
    check_valid(members, counts, second)
    check_kafka_balance(members, second)
    assert moved_away(members, second, counts) <= 1

    # testMoveExistingAssignments
    counts = {f"topic{i}": 1 for i in range(1, 7)}
    members = [
        member("consumer1", "topic1", "topic2", owned="topic1-0"),
        member("consumer2", "topic1", "topic2", "topic3", "topic4", owned="topic2-0, topic3-0"),
        member(
            "consumer3",
            "topic2",
            "topic3",
            "topic4",
            "topic5",
            "topic6",
            owned="topic4-0, topic5-0, topic6-0",
        ),
    ]
    result = sticky_assign(members, counts)
    check_valid(members, counts, result)
    check_kafka_balance(members, result)


def test_sticky_unequal_subscriptions_move_only_what_balance_requires() -> None:
    """Two small unequal groups where balance forces exactly one move.

    1. consumer2 subscribes only to u, whose one partition consumer1 owns along with t-0 and
       t-2; consumer3 joins. While consumer1 keeps u-0, consumer2 has 0 and consumer1 at
       least 2, so u-0 must move; nothing else needs to.
    2. consumer2 subscribes only to v, owned by consumer3 with u-1. v-0 must move to it;
       consumer1 and consumer3 then split the free u-0 and u-2 and keep what they own.
    """
    counts = {"t": 3, "u": 1}
    members = [
        member("consumer1", "t", "u", owned="t-0, t-2, u-0"),
        member("consumer2", "u"),
        member("consumer3", "t", "u"),
    ]
    result = sticky_assign(members, counts)
    assert as_text(result) == {"consumer1": "t-0, t-2", "consumer2": "u-0", "consumer3": "t-1"}
    assert moved_away(members, result, counts) == 1

    counts = {"t": 1, "u": 3, "v": 1}
    members = [
        member("consumer1", "t", "u", owned="t-0"),
        member("consumer2", "v"),
        member("consumer3", "t", "u", "v", owned="u-1, v-0"),
    ]
    result = sticky_assign(members, counts)
    check_valid(members, counts, result)
    check_kafka_balance(members, result)
    assert as_text(result)["consumer2"] == "v-0"
    assert [len(v) for v in result.values()] == [2, 1, 2]
    assert moved_away(members, result, counts) == 1


def test_sticky_stickiness_after_leader_leaves() -> None:
    """AbstractStickyAssignorTest.testStickiness: 3 partitions, 4 consumers; after
    consumer1 leaves everyone has exactly one partition and kept the one it had."""
    counts = {"topic1": 3}
    members = [member(f"consumer{i}", "topic1") for i in range(1, 5)]
    first = sticky_assign(members, counts)
    assert all(len(v) <= 1 for v in first.values())
    members = with_owned(members, first)[1:]
    second = sticky_assign(members, counts)
    assert all(len(v) == 1 for v in second.values())
    assert moved_away(members, second, counts) == 0


def test_sticky_deleted_topics() -> None:
    """testAssignmentUpdatedForDeletedTopic and
    testNoExceptionThrownWhenOnlySubscribedTopicDeleted."""
    result = sticky_assign(
        [member("consumer", "topic1", "topic2", "topic3")], {"topic1": 1, "topic3": 100}
    )
    assert len(result["consumer"]) == 101
    gone = sticky_assign([member("consumer", "topic", owned="topic-0, topic-1, topic-2")], {})
    assert gone == {"consumer": []}


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_more_members_than_partitions(protocol: str) -> None:
    members = [member(f"m{i}", "t") for i in range(5)]
    result = assign(protocol, members, {"t": 2})
    check_valid(members, {"t": 2}, result)
    assert sorted(len(v) for v in result.values()) == [0, 0, 0, 1, 1]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_no_members(protocol: str) -> None:
    assert assign(protocol, [], {"t": 3}) == {}


def test_cooperative_names() -> None:
    assert set(PROTOCOLS) == {"range", "roundrobin", "sticky", "cooperative-sticky"}
    assert frozenset({"cooperative-sticky"}) == COOPERATIVE
    members = [member("a", "t", owned="t-0, t-1, t-2"), member("b", "t")]
    assert assign("cooperative-sticky", members, {"t": 4}) == assign("sticky", members, {"t": 4})


# --- properties -----------------------------------------------------------------------

TOPIC_POOL = ("a", "b", "c", "d")


@st.composite
def groups(
    draw: st.DrawFn, *, equal: bool = False, max_members: int = 8
) -> tuple[list[MemberSubscription], dict[str, int]]:
    """A group: partition counts for some topics (others do not exist), and members with
    unique ids, some static, each subscribed to a subset of the topics (all the same
    subset when ``equal``), each owning an arbitrary, possibly overlapping or invalid,
    set of partitions."""
    counts = draw(
        st.dictionaries(st.sampled_from(TOPIC_POOL), st.integers(0, 12), max_size=len(TOPIC_POOL))
    )
    ids = draw(st.lists(st.text("xyz", min_size=1, max_size=3), max_size=max_members, unique=True))
    common = tuple(draw(st.lists(st.sampled_from(TOPIC_POOL), unique=True)))
    members = []
    for member_id in ids:
        topics = (
            common if equal else tuple(draw(st.lists(st.sampled_from(TOPIC_POOL), unique=True)))
        )
        instance = draw(st.none() | st.text("pq", min_size=1, max_size=2))
        owned = draw(
            st.lists(
                st.builds(TopicPartition, st.sampled_from(TOPIC_POOL), st.integers(0, 13)),
                max_size=6,
            )
        )
        members.append(MemberSubscription(member_id, instance, topics, tuple(owned)))
    return members, counts


@settings(deadline=None)
@given(group=groups(), protocol=st.sampled_from(PROTOCOLS), seed=st.randoms(use_true_random=False))
def test_every_partition_assigned_once_to_a_subscriber(
    group: tuple[list[MemberSubscription], dict[str, int]], protocol: str, seed: random.Random
) -> None:
    members, counts = group
    result = assign(protocol, members, counts)
    check_valid(members, counts, result)
    # Deterministic: shuffling the members, the count mapping and each owned list changes
    # nothing.
    shuffled = [m._replace(owned=tuple(seed.sample(m.owned, len(m.owned)))) for m in members]
    seed.shuffle(shuffled)
    items = list(counts.items())
    seed.shuffle(items)
    assert assign(protocol, shuffled, dict(items)) == result


@settings(deadline=None)
@given(group=groups(equal=True), protocol=st.sampled_from(("roundrobin", "sticky")))
def test_equal_subscriptions_are_balanced(
    group: tuple[list[MemberSubscription], dict[str, int]], protocol: str
) -> None:
    members, counts = group
    result = assign(protocol, members, counts)
    check_valid(members, counts, result)
    assert spread(result) <= 1


@settings(deadline=None)
@given(group=groups(equal=True))
def test_fresh_sticky_equals_roundrobin(
    group: tuple[list[MemberSubscription], dict[str, int]],
) -> None:
    """Kafka's StickyAssignor Javadoc: starting fresh with equal subscriptions, sticky
    lays partitions out like round-robin."""
    members, counts = group
    fresh = [m._replace(owned=()) for m in members]
    assert sticky_assign(fresh, counts) == roundrobin_assign(fresh, counts)


@settings(deadline=None)
@given(group=groups())
def test_range_balances_each_topic(group: tuple[list[MemberSubscription], dict[str, int]]) -> None:
    """Range's guarantee is per topic: among a topic's subscribers, counts differ by at most
    one, and the members that get more come first in member order."""
    members, counts = group
    result = range_assign(members, counts)
    order = list(result)  # the dict iterates in member order
    by_id = {m.member_id: m for m in members}
    for topic, count in counts.items():
        subscribers = [mid for mid in order if topic in by_id[mid].topics]
        per = [sum(tp.topic == topic for tp in result[mid]) for mid in subscribers]
        assert per == sorted(per, reverse=True)
        if per:
            assert max(per) - min(per) <= 1
            assert sum(per) == count


@settings(deadline=None)
@given(group=groups())
def test_sticky_is_balanced_in_kafkas_sense_and_a_fixed_point(
    group: tuple[list[MemberSubscription], dict[str, int]],
) -> None:
    """Any subscriptions: Kafka's balance criterion holds, and assigning again from the
    result changes nothing (a settled group does not keep moving partitions)."""
    members, counts = group
    result = sticky_assign(members, counts)
    check_valid(members, counts, result)
    check_kafka_balance(members, result)
    again = with_owned(members, result)
    assert sticky_assign(again, counts) == result


@st.composite
def rebalances(draw: st.DrawFn) -> tuple[list[MemberSubscription], dict[str, int]]:
    """An equal-subscription group after a change: a previous valid assignment (each
    partition owned by at most one old member, or by nobody), then some old members leave,
    some join, partition counts grow and topics may be deleted or created."""
    topics = draw(st.lists(st.sampled_from(TOPIC_POOL), min_size=1, unique=True))
    old_counts = {t: draw(st.integers(0, 15)) for t in topics}
    old_ids = [f"old{i}" for i in range(draw(st.integers(1, 8)))]
    owned: dict[str, list[TopicPartition]] = {mid: [] for mid in old_ids}
    for topic, count in old_counts.items():
        for p in range(count):
            owner = draw(st.none() | st.sampled_from(old_ids))
            if owner is not None:
                owned[owner].append(TopicPartition(topic, p))
    survivors = [mid for mid in old_ids if draw(st.booleans())]
    joiners = [f"new{i}" for i in range(draw(st.integers(0 if survivors else 1, 4)))]
    new_counts = {}
    for topic in TOPIC_POOL:
        if topic in old_counts and draw(st.integers(0, 9)) > 0:  # mostly kept, sometimes deleted
            new_counts[topic] = old_counts[topic] + draw(st.integers(0, 6))
        elif topic not in old_counts and draw(st.booleans()):
            new_counts[topic] = draw(st.integers(0, 6))
    subscription = tuple(topics) + tuple(
        t for t in TOPIC_POOL if t not in topics and draw(st.booleans())
    )
    members = [
        MemberSubscription(
            mid, draw(st.none() | st.just(f"i-{mid}")), subscription, tuple(owned[mid])
        )
        for mid in survivors
    ] + [MemberSubscription(mid, None, subscription) for mid in joiners]
    return members, new_counts


@settings(max_examples=200, deadline=None)
@given(case=rebalances())
def test_sticky_moves_exactly_what_balance_requires(
    case: tuple[list[MemberSubscription], dict[str, int]],
) -> None:
    members, counts = case
    result = sticky_assign(members, counts)
    check_valid(members, counts, result)
    assert spread(result) <= 1
    valid = universe(members, counts)
    assert moved_away(members, result, counts) == minimum_moves(members, len(valid), valid)


@settings(max_examples=200, deadline=None)
@given(
    first=groups(equal=True),
    leave=st.sets(st.integers(0, 7)),
    join=st.integers(0, 4),
    growth=st.integers(0, 5),
)
def test_sticky_minimal_moves_after_a_prior_call(
    first: tuple[list[MemberSubscription], dict[str, int]], leave: set[int], join: int, growth: int
) -> None:
    """The previous assignment comes from a prior sticky_assign call (from arbitrary,
    even contradictory, owned lists); then members leave and join and partitions grow."""
    members, counts = first
    previous = sticky_assign(members, counts)
    subscription = members[0].topics if members else ("a",)
    survivors = [m for i, m in enumerate(with_owned(members, previous)) if i not in leave]
    joiners = [MemberSubscription(f"joiner{i}", None, subscription) for i in range(join)]
    grown = {t: n + growth for t, n in counts.items()}
    after = survivors + joiners
    result = sticky_assign(after, grown)
    check_valid(after, grown, result)
    assert spread(result) <= 1
    valid = universe(after, grown)
    assert moved_away(after, result, grown) == minimum_moves(after, len(valid), valid)


class StickyGroup(RuleBasedStateMachine):
    """A group living through joins, leaves, partition growth, new and deleted topics, each
    change followed by a rebalance that feeds the previous result back as ``owned`` (what
    the group protocol does). All members subscribe to the same topics."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: dict[str, int] = {"a": 3}
        self.topics: tuple[str, ...] = ("a", "b", "c")
        self.members: list[MemberSubscription] = []
        self.assignment: dict[str, list[TopicPartition]] = {}
        self.next_id = 0
        self.last_moves = 0
        self.last_minimum = 0

    def _rebalance(self) -> None:
        members = with_owned(self.members, self.assignment)
        self.assignment = sticky_assign(members, self.counts)
        valid = universe(members, self.counts)
        self.last_moves = moved_away(members, self.assignment, self.counts)
        self.last_minimum = minimum_moves(members, len(valid), valid)
        self.members = members

    @rule(static=st.booleans())
    def join(self, static: bool) -> None:
        member_id = f"member-{self.next_id:03d}"
        self.next_id += 1
        instance = f"instance-{member_id}" if static else None
        self.members.append(MemberSubscription(member_id, instance, self.topics))
        self._rebalance()

    @precondition(lambda self: bool(self.members))
    @rule(data=st.data())
    def leave(self, data: st.DataObject) -> None:
        gone = data.draw(st.sampled_from(self.members))
        self.members.remove(gone)
        self.assignment.pop(gone.member_id)
        self._rebalance()

    @rule(topic=st.sampled_from(("a", "b", "c")), more=st.integers(1, 8))
    def grow(self, topic: str, more: int) -> None:
        self.counts[topic] = self.counts.get(topic, 0) + more
        self._rebalance()

    @precondition(lambda self: bool(self.counts))
    @rule(data=st.data())
    def delete_topic(self, data: st.DataObject) -> None:
        del self.counts[data.draw(st.sampled_from(sorted(self.counts)))]
        self._rebalance()

    @invariant()
    def every_partition_owned_once_and_balanced(self) -> None:
        check_valid(self.members, self.counts, self.assignment)
        assert spread(self.assignment) <= 1
        assert self.last_moves == self.last_minimum


StickyGroup.TestCase.settings = settings(max_examples=60, stateful_step_count=25, deadline=None)
test_sticky_group_through_joins_and_leaves = StickyGroup.TestCase


def test_sticky_large_unequal_group_does_linear_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """A group several times the design target (about 3,000 partitions over 30 topics, 300
    members with random subscriptions) rebalances after members leave and join. Complexity,
    not time: the least-loaded lookups (one heap query each) stay within a small multiple
    of the partition count, where a quadratic algorithm would make millions."""
    import eventlog._assignors as module

    rng = random.Random(7)
    counts = {f"topic{i:02d}": rng.randint(20, 180) for i in range(30)}
    names = sorted(counts)
    members = [member(f"m{i:03d}", *rng.sample(names, rng.randint(1, 30))) for i in range(300)]
    first = sticky_assign(members, counts)
    check_valid(members, counts, first)
    check_kafka_balance(members, first)
    members = [m for m in with_owned(members, first) if rng.random() > 0.2]
    members += [member(f"n{i:03d}", *rng.sample(names, rng.randint(1, 30))) for i in range(40)]

    calls = 0
    original = module._LoadIndex.least_loaded

    def counting(self: module._LoadIndex, topic: str) -> str:
        nonlocal calls
        calls += 1
        return original(self, topic)

    monkeypatch.setattr(module._LoadIndex, "least_loaded", counting)
    second = sticky_assign(members, counts)
    check_valid(members, counts, second)
    check_kafka_balance(members, second)
    assert calls <= 6 * sum(counts.values())


def test_sticky_large_uniform_group() -> None:
    """AbstractStickyAssignorTest.testLargeAssignmentAndGroupWithUniformSubscription, scaled
    down (Kafka: 1,000,000 partitions, 2,000 consumers; here 10,000 and 1,000): a fresh
    assignment, then the first consumer leaves and everyone else rebalances from what they
    own; only the leaver's partitions move, and the result stays balanced."""
    counts = {f"topic{i:03d}": 200 for i in range(50)}
    members = [member(f"consumer{i:04d}", *counts) for i in range(1000)]
    first = sticky_assign(members, counts)
    assert {len(v) for v in first.values()} == {10}
    members = with_owned(members, first)[1:]
    second = sticky_assign(members, counts)
    check_valid(members, counts, second)
    assert spread(second) <= 1
    assert moved_away(members, second, counts) == 0


# --- bad input ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad", ["Range", "round-robin", "cooperative_sticky", "", None, 3, b"range"]
)
def test_unknown_protocol_is_refused(bad: object) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        validate_protocol(bad)
    for name in PROTOCOLS:
        assert repr(name) in str(info.value)
    with pytest.raises(InvalidArgumentError, match="cooperative-sticky"):
        assign(bad, [member("m", "t")], {"t": 1})  # type: ignore[arg-type]


@pytest.mark.parametrize("name", PROTOCOLS)
def test_known_protocols_validate(name: str) -> None:
    assert validate_protocol(name) == name


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize(
    ("members", "counts", "message"),
    [
        ([member("m", "t"), member("m", "u")], {"t": 1}, "appears twice"),
        ([member("m", "t")], {"t": -1}, "int >= 0"),
        ([member("m", "t")], {"t": True}, "int >= 0"),
        ([member("m", "t")], {"t": 1.0}, "int >= 0"),
        ([MemberSubscription("m", None, "t")], {"t": 1}, "tuple of str"),  # type: ignore[arg-type]
        ([MemberSubscription(1, None, ("t",))], {"t": 1}, "member_id"),  # type: ignore[arg-type]
        ([MemberSubscription("m", 1, ("t",))], {"t": 1}, "instance_id"),  # type: ignore[arg-type]
        ([("m", None, ("t",), ())], {"t": 1}, "MemberSubscription"),
    ],
)
def test_malformed_input_is_refused(
    protocol: str, members: list[MemberSubscription], counts: dict[str, int], message: str
) -> None:
    with pytest.raises(InvalidArgumentError, match=message):
        assign(protocol, members, counts)


def test_invalid_owned_entries_are_ignored() -> None:
    """Owned partitions of unsubscribed or deleted topics, beyond the partition count, or
    listed twice by the same member are not claims; plain tuples are accepted."""
    members = [
        MemberSubscription(
            "a",
            None,
            ("t",),
            (
                TopicPartition("t", 1),
                TopicPartition("t", 1),
                TopicPartition("u", 0),
                TopicPartition("t", 9),
            ),
        ),
        MemberSubscription("b", None, ("t",), (("t", 0),)),  # type: ignore[arg-type]
    ]
    result = sticky_assign(members, {"t": 2, "u": 1})
    assert as_text(result) == {"a": "t-1", "b": "t-0"}
    assert all(type(tp) is TopicPartition for v in result.values() for tp in v)
