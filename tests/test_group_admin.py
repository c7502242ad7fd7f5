"""Consumer-group administration on a Log: list, describe, committed offsets, commit,
reset (every target, clamping, subsets, dry runs), delete, and their bad inputs."""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import eventlog
from eventlog import (
    GroupDescription,
    MemberDescription,
    NewRecord,
    OffsetAndMetadata,
    PartitionOffsets,
    TopicPartition,
)
from eventlog._errors import (
    CommitFailedError,
    GroupNotEmptyError,
    GroupNotFoundError,
    InvalidArgumentError,
    PartitionNotFoundError,
    TopicNotFoundError,
)

TP = TopicPartition
OM = OffsetAndMetadata
LONG = {"session_timeout_ms": 30_000, "heartbeat_interval_ms": 100}


def set_log_start(log: eventlog.Log, topic: str, partition: int, start: int) -> None:
    """White box: move a partition's log start offset, as retention does."""
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
def t3(log: eventlog.Log) -> eventlog.Log:
    """Topic "t": 3 partitions with 10 records each (one batch per record), timestamps
    1000 + 100 * offset (kept: retention_ms=-1); partition 2's log start is 4 (as after
    retention)."""
    log.create_topic("t", 3, retention_ms=-1)
    for i in range(10):
        log.append_batch(
            "t", [NewRecord(b"x", partition=p, timestamp=1000 + 100 * i) for p in range(3)]
        )
    set_log_start(log, "t", 2, 4)
    return log


@pytest.fixture
def member(t3: eventlog.Log) -> Iterator[eventlog.Consumer]:
    """A live member of group "g" owning all of "t" (it has polled once)."""
    c = t3.consumer("t", group="g", auto_offset_reset="earliest", **LONG)
    deadline = time.monotonic() + 5
    while len(c.assignment()) < 3 and time.monotonic() < deadline:
        c.poll(0.02)
    assert len(c.assignment()) == 3
    yield c
    if not t3.closed:
        c.close()


# --- list and describe -----------------------------------------------------------------


def test_list_groups(t3: eventlog.Log, member: eventlog.Consumer) -> None:
    assert t3.list_groups() == ["g"]  # a group with a member (nothing committed yet)
    t3.commit_offsets("b-offsets-only", {TP("t", 0): 1})
    t3.commit_offsets("a", {TP("t", 1): 1})
    assert t3.list_groups() == ["a", "b-offsets-only", "g"]


def test_list_groups_on_a_new_log(log: eventlog.Log) -> None:
    assert log.list_groups() == []


def test_list_groups_with_prefix_names(log: eventlog.Log) -> None:
    log.create_topic("t")
    for name in ("g", "g2", "g\x01", "gg", "é"):
        log.commit_offsets(name, {TP("t", 0): 0})
    assert log.list_groups() == sorted(["g", "g2", "g\x01", "gg", "é"])


def test_describe_a_stable_group(t3: eventlog.Log, member: eventlog.Consumer) -> None:
    member.commit({TP("t", 0): OM(4, "ckpt")})
    desc = t3.describe_group("g")
    assert isinstance(desc, GroupDescription)
    assert (desc.group, desc.state, desc.protocol) == ("g", "Stable", "cooperative-sticky")
    assert desc.generation == member.generation >= 1
    [m] = desc.members
    assert isinstance(m, MemberDescription)
    assert m.member_id == member.member_id
    assert m.instance_id is None
    assert m.client_id.startswith("consumer-")
    assert m.pid == os.getpid()
    assert m.topics == ("t",)
    assert set(m.assignment) == set(m.owned) == {TP("t", p) for p in range(3)}
    assert m.lease_expires_ms > time.time() * 1000
    assert set(desc.offsets) == {TP("t", p) for p in range(3)}
    assert desc.offsets[TP("t", 0)] == PartitionOffsets(4, "ckpt", 10, 6, member.member_id)
    assert desc.offsets[TP("t", 1)] == PartitionOffsets(None, "", 10, 10, member.member_id)
    p2 = desc.offsets[TP("t", 2)]
    assert (p2.committed, p2.end_offset, p2.owner) == (None, 10, member.member_id)
    assert desc.lag == 6 + 10 + p2.lag


def test_describe_lag_without_a_committed_offset_counts_the_stored_records(
    t3: eventlog.Log,
) -> None:
    t3.commit_offsets("g", {TP("t", 0): 0})
    with t3.consumer("t", group="g", **LONG) as c:
        c.poll(0.05)
        assert t3.describe_group("g").offsets[TP("t", 2)].lag == 6  # offsets 4..9


def test_describe_an_empty_group_keeps_its_offsets(
    t3: eventlog.Log, member: eventlog.Consumer
) -> None:
    member.poll(0)
    member.close()  # commits its positions
    desc = t3.describe_group("g")
    assert (desc.state, desc.protocol, desc.members) == ("Empty", None, ())
    assert {tp: (o.committed, o.lag, o.owner) for tp, o in desc.offsets.items()} == {
        TP("t", p): (10, 0, None) for p in range(3)
    }
    assert desc.lag == 0


def test_describe_shows_a_rebalance_in_progress(
    t3: eventlog.Log, member: eventlog.Consumer
) -> None:
    newcomer = t3.consumer("t", group="g", **LONG)
    try:
        newcomer.poll(0)  # joins; its partitions are still held by the first member
        desc = t3.describe_group("g")
        assert desc.state == "Rebalancing"
        [new] = [m for m in desc.members if m.member_id == newcomer.member_id]
        assert new.assignment
        assert not new.owned
        deadline = time.monotonic() + 5
        while t3.describe_group("g").state != "Stable" and time.monotonic() < deadline:
            member.poll(0.01)
            newcomer.poll(0.01)
        assert t3.describe_group("g").state == "Stable"
    finally:
        newcomer.close()


def test_describe_static_member_and_client_id(t3: eventlog.Log) -> None:
    with t3.consumer("t", group="s", group_instance_id="host-1", client_id="billing", **LONG) as c:
        c.poll(0.05)
        [m] = t3.describe_group("s").members
        assert (m.instance_id, m.client_id) == ("host-1", "billing")


def test_describe_lists_only_existing_partitions_of_committed_offsets(t3: eventlog.Log) -> None:
    t3.create_topic("u", 2)
    t3.commit_offsets("g", {TP("u", 1): 0, TP("t", 0): 3})
    desc = t3.describe_group("g")
    assert set(desc.offsets) == {TP("u", 1), TP("t", 0)}  # no members: only committed ones
    assert desc.offsets[TP("u", 1)] == PartitionOffsets(0, "", 0, 0, None)


# --- committed_offsets and commit_offsets ----------------------------------------------


def test_commit_offsets_and_committed_offsets(t3: eventlog.Log) -> None:
    t3.create_topic("u")
    assert t3.committed_offsets("g") == {}  # an unknown group has none
    t3.commit_offsets("g", {TP("t", 1): 5, TP("t", 0): OM(2, "m"), TP("u", 0): 0})
    assert t3.committed_offsets("g") == {
        TP("t", 0): OM(2, "m"),
        TP("t", 1): OM(5, ""),
        TP("u", 0): OM(0, ""),
    }
    assert list(t3.committed_offsets("g")) == [TP("t", 0), TP("t", 1), TP("u", 0)]
    assert t3.committed_offsets("g", "u") == {TP("u", 0): OM(0, "")}
    assert t3.committed_offsets("g", topic="t") == {TP("t", 0): OM(2, "m"), TP("t", 1): OM(5, "")}
    assert t3.committed_offsets("other") == {}
    t3.commit_offsets("g", {TP("t", 1): 3})  # overwrite (backwards is allowed)
    assert t3.committed_offsets("g", "t")[TP("t", 1)] == OM(3, "")


def test_commit_offsets_beyond_the_end_is_stored_and_reset_by_the_consumer(
    t3: eventlog.Log,
) -> None:
    t3.commit_offsets("g", {TP("t", 0): 50})  # Kafka stores any offset too
    assert t3.committed_offsets("g") == {TP("t", 0): OM(50, "")}
    with t3.consumer(group="g", auto_offset_reset="earliest") as c:
        c.assign([TP("t", 0)])
        assert len(c.poll(0)) == 10  # out of range: auto_offset_reset applies


def test_commit_offsets_refused_while_members_are_live_unless_forced(
    t3: eventlog.Log, member: eventlog.Consumer
) -> None:
    with pytest.raises(GroupNotEmptyError) as info:
        t3.commit_offsets("g", {TP("t", 0): 1})
    assert isinstance(info.value, RuntimeError)
    assert "'g'" in str(info.value)
    assert "force=True" in str(info.value)
    assert t3.committed_offsets("g") == {}
    t3.commit_offsets("g", {TP("t", 0): 1}, force=True)
    assert t3.committed_offsets("g") == {TP("t", 0): OM(1, "")}


# --- reset_offsets ---------------------------------------------------------------------


def committed(log: eventlog.Log, group: str = "g") -> dict[int, int]:
    return {tp.partition: om.offset for tp, om in log.committed_offsets(group).items()}


def test_reset_to_earliest_and_latest(t3: eventlog.Log) -> None:
    result = t3.reset_offsets("g", "t", to="earliest")
    assert result == {TP("t", 0): 0, TP("t", 1): 0, TP("t", 2): 4}  # partition 2 starts at 4
    assert committed(t3) == {0: 0, 1: 0, 2: 4}
    assert t3.reset_offsets("g", "t", to="latest") == {TP("t", p): 10 for p in range(3)}
    assert committed(t3) == {0: 10, 1: 10, 2: 10}


def test_reset_to_an_offset_is_clamped_to_the_stored_range(t3: eventlog.Log) -> None:
    assert t3.reset_offsets("g", "t", to=7) == {TP("t", p): 7 for p in range(3)}
    assert t3.reset_offsets("g", "t", to=2) == {TP("t", 0): 2, TP("t", 1): 2, TP("t", 2): 4}
    assert t3.reset_offsets("g", "t", to=10**6) == {TP("t", p): 10 for p in range(3)}
    assert t3.reset_offsets("g", "t", to=0) == {TP("t", 0): 0, TP("t", 1): 0, TP("t", 2): 4}
    assert committed(t3) == {0: 0, 1: 0, 2: 4}


def test_reset_to_a_datetime(t3: eventlog.Log) -> None:
    utc = dt.timezone.utc
    at = dt.datetime.fromtimestamp(1.35, tz=utc)  # 1350 ms: offset 4 (1400) is the first after
    assert t3.reset_offsets("g", "t", to=at) == {TP("t", 0): 4, TP("t", 1): 4, TP("t", 2): 4}
    exact = dt.datetime.fromtimestamp(1.5, tz=utc)  # 1500 ms: offset 5 exactly
    assert t3.reset_offsets("g", "t", to=exact)[TP("t", 0)] == 5
    early = dt.datetime.fromtimestamp(0, tz=utc)
    assert t3.reset_offsets("g", "t", to=early) == {TP("t", 0): 0, TP("t", 1): 0, TP("t", 2): 4}
    late = dt.datetime(2100, 1, 1, tzinfo=utc)  # after every record: the end
    assert t3.reset_offsets("g", "t", to=late) == {TP("t", p): 10 for p in range(3)}
    assert committed(t3) == {0: 10, 1: 10, 2: 10}


def test_reset_to_a_naive_datetime_is_local_time(t3: eventlog.Log) -> None:
    naive = dt.datetime.fromtimestamp(1.35)  # local time, no tzinfo
    assert t3.reset_offsets("g", "t", to=naive)[TP("t", 0)] == 4


def test_reset_shift_is_relative_to_the_committed_offset_and_clamped(t3: eventlog.Log) -> None:
    t3.commit_offsets("g", {TP("t", 0): 5, TP("t", 1): 9})
    # Partition 2 has no committed offset: shifts count from its log start (4).
    assert t3.reset_offsets("g", "t", shift=2) == {TP("t", 0): 7, TP("t", 1): 10, TP("t", 2): 6}
    assert t3.reset_offsets("g", "t", shift=-3) == {TP("t", 0): 4, TP("t", 1): 7, TP("t", 2): 4}
    assert t3.reset_offsets("g", "t", shift=-100) == {TP("t", 0): 0, TP("t", 1): 0, TP("t", 2): 4}
    assert t3.reset_offsets("g", "t", shift=100) == {TP("t", p): 10 for p in range(3)}
    assert t3.reset_offsets("g", "t", shift=0) == {TP("t", p): 10 for p in range(3)}
    assert committed(t3) == {0: 10, 1: 10, 2: 10}


def test_reset_a_subset_of_partitions(t3: eventlog.Log) -> None:
    t3.commit_offsets("g", {TP("t", p): 6 for p in range(3)})
    assert t3.reset_offsets("g", "t", to="earliest", partitions=[2]) == {TP("t", 2): 4}
    assert t3.reset_offsets("g", "t", shift=1, partitions=(0, 2)) == {
        TP("t", 0): 7,
        TP("t", 2): 5,
    }
    assert committed(t3) == {0: 7, 1: 6, 2: 5}


def test_reset_dry_run_writes_nothing(t3: eventlog.Log) -> None:
    t3.commit_offsets("g", {TP("t", 0): OM(6, "keep me")})
    plan = t3.reset_offsets("g", "t", to="latest", dry_run=True)
    assert plan == {TP("t", p): 10 for p in range(3)}
    assert t3.committed_offsets("g") == {TP("t", 0): OM(6, "keep me")}
    assert t3.reset_offsets("g2", "t", shift=1, dry_run=True) == {
        TP("t", 0): 1,
        TP("t", 1): 1,
        TP("t", 2): 5,
    }
    assert "g2" not in t3.list_groups()  # a dry run does not create the group


def test_reset_replaces_the_metadata(t3: eventlog.Log) -> None:
    t3.commit_offsets("g", {TP("t", 0): OM(6, "old")})
    t3.reset_offsets("g", "t", to=3, partitions=[0])
    assert t3.committed_offsets("g") == {TP("t", 0): OM(3, "")}


def test_reset_refused_while_members_are_live_unless_forced(
    t3: eventlog.Log, member: eventlog.Consumer
) -> None:
    member.commit({TP("t", 0): 5})
    for kwargs in ({}, {"dry_run": True}):
        with pytest.raises(GroupNotEmptyError) as info:
            t3.reset_offsets("g", "t", to="earliest", **kwargs)
        assert isinstance(info.value, RuntimeError)
        assert "1 live member" in str(info.value)
        assert "force=True" in str(info.value)
    assert committed(t3) == {0: 5}
    assert t3.reset_offsets("g", "t", to="earliest", force=True)[TP("t", 0)] == 0
    assert committed(t3) == {0: 0, 1: 0, 2: 4}


def test_reset_allowed_once_the_members_left(t3: eventlog.Log, member: eventlog.Consumer) -> None:
    member.close()
    t3.reset_offsets("g", "t", to="earliest")
    with t3.consumer("t", group="g", **LONG) as c:
        records: list[Any] = []
        deadline = time.monotonic() + 5
        while len(records) < 26 and time.monotonic() < deadline:
            records += c.poll(0.02)
    assert sorted((r.partition, r.offset) for r in records) == [
        (p, o) for p in range(3) for o in range(4 if p == 2 else 0, 10)
    ]


def test_a_member_whose_lease_ended_does_not_block_admin(t3: eventlog.Log) -> None:
    c = t3.consumer("t", group="g", session_timeout_ms=300, heartbeat_interval_ms=50)
    try:
        c.poll(0.05)
        c._membership.stop_heartbeats()  # white box: the member hangs
        with pytest.raises(GroupNotEmptyError):
            t3.reset_offsets("g", "t", to="earliest")
        deadline = time.monotonic() + 5
        while t3.describe_group("g").members and time.monotonic() < deadline:
            time.sleep(0.02)
        assert t3.describe_group("g").state == "Empty"  # nobody wrote since: still expired
        assert t3.reset_offsets("g", "t", to=5) == {TP("t", 0): 5, TP("t", 1): 5, TP("t", 2): 5}
        t3.commit_offsets("g", {TP("t", 0): 6})
        t3.delete_group("g")
        assert t3.list_groups() == []
    finally:
        c.close()


# --- delete_group ----------------------------------------------------------------------


def test_delete_group(t3: eventlog.Log) -> None:
    t3.commit_offsets("g", {TP("t", 0): 1})
    t3.commit_offsets("g2", {TP("t", 0): 2})
    t3.delete_group("g")
    assert t3.list_groups() == ["g2"]
    assert t3.committed_offsets("g") == {}
    with pytest.raises(GroupNotFoundError) as info:
        t3.describe_group("g")
    assert isinstance(info.value, KeyError)
    assert "'g'" in str(info.value)
    with pytest.raises(GroupNotFoundError):
        t3.delete_group("g")
    assert t3.committed_offsets("g2") == {TP("t", 0): OM(2, "")}  # the other group is intact


def test_delete_unknown_group(log: eventlog.Log) -> None:
    with pytest.raises(GroupNotFoundError, match="'nope'") as info:
        log.delete_group("nope")
    assert isinstance(info.value, KeyError)


def test_delete_group_with_live_members(t3: eventlog.Log, member: eventlog.Consumer) -> None:
    member.commit({TP("t", 0): 3})
    with pytest.raises(GroupNotEmptyError, match="force=True"):
        t3.delete_group("g")
    assert t3.list_groups() == ["g"]
    t3.delete_group("g", force=True)
    assert t3.list_groups() == []
    assert t3.committed_offsets("g") == {}
    # The removed member cannot commit any more; at its next poll it loses its partitions
    # and rejoins.
    with pytest.raises(CommitFailedError):
        member.commit({TP("t", 0): 4})
    assert t3.committed_offsets("g") == {}
    deadline = time.monotonic() + 5
    while t3.list_groups() != ["g"] and time.monotonic() < deadline:
        member.poll(0.02)
    assert [m.member_id for m in t3.describe_group("g").members] == [member.member_id]


def test_deleting_a_topic_drops_the_groups_offsets_of_it(t3: eventlog.Log) -> None:
    t3.create_topic("u", 2)
    t3.commit_offsets("g", {TP("t", 0): 1, TP("u", 0): 2, TP("u", 1): 3})
    t3.commit_offsets("h", {TP("u", 1): 4})
    t3.delete_topic("u")
    assert t3.committed_offsets("g") == {TP("t", 0): OM(1, "")}
    assert t3.committed_offsets("h") == {}
    assert t3.list_groups() == ["g"]
    t3.create_topic("u", 2)  # a new topic with the old name starts without offsets
    assert t3.committed_offsets("g") == {TP("t", 0): OM(1, "")}
    assert set(t3.describe_group("g").offsets) == {TP("t", 0)}


# --- bad input -------------------------------------------------------------------------

Call = Callable[[eventlog.Log], object]

BAD: dict[str, tuple[Call, type[Exception], type[BaseException], tuple[str, ...]]] = {
    "describe unknown group": (
        lambda log: log.describe_group("nope"),
        GroupNotFoundError,
        KeyError,
        ("'nope'",),
    ),
    "describe empty name": (
        lambda log: log.describe_group(""),
        InvalidArgumentError,
        ValueError,
        ("group", "1 to 249"),
    ),
    "describe NUL": (
        lambda log: log.describe_group("a\x00"),
        InvalidArgumentError,
        ValueError,
        ("NUL",),
    ),
    "describe not str": (
        lambda log: log.describe_group(7),
        InvalidArgumentError,
        ValueError,
        ("group", "int"),
    ),
    "committed_offsets unknown topic": (
        lambda log: log.committed_offsets("g", "nope"),
        TopicNotFoundError,
        KeyError,
        ("'nope'",),
    ),
    "committed_offsets bad group": (
        lambda log: log.committed_offsets(""),
        InvalidArgumentError,
        ValueError,
        ("group",),
    ),
    "commit_offsets unknown topic": (
        lambda log: log.commit_offsets("g", {TP("nope", 0): 1}),
        TopicNotFoundError,
        KeyError,
        ("'nope'",),
    ),
    "commit_offsets partition out of range": (
        lambda log: log.commit_offsets("g", {TP("t", 3): 1}),
        PartitionNotFoundError,
        IndexError,
        ("partition 3", "0..2"),
    ),
    "commit_offsets negative offset": (
        lambda log: log.commit_offsets("g", {TP("t", 0): -1}),
        InvalidArgumentError,
        ValueError,
        ("t[0]", "-1", "between 0"),
    ),
    "commit_offsets metadata too long": (
        lambda log: log.commit_offsets("g", {TP("t", 0): OM(1, "é" * 2049)}),
        InvalidArgumentError,
        ValueError,
        ("metadata", "4096"),
    ),
    "commit_offsets not a mapping": (
        lambda log: log.commit_offsets("g", [(TP("t", 0), 1)]),
        InvalidArgumentError,
        ValueError,
        ("mapping", "list"),
    ),
    "commit_offsets bad group": (
        lambda log: log.commit_offsets("", {TP("t", 0): 1}),
        InvalidArgumentError,
        ValueError,
        ("group",),
    ),
    "reset neither to nor shift": (
        lambda log: log.reset_offsets("g", "t"),
        InvalidArgumentError,
        ValueError,
        ("exactly one", "shift"),
    ),
    "reset both to and shift": (
        lambda log: log.reset_offsets("g", "t", to="earliest", shift=1),
        InvalidArgumentError,
        ValueError,
        ("exactly one",),
    ),
    "reset to bogus": (
        lambda log: log.reset_offsets("g", "t", to="bogus"),
        InvalidArgumentError,
        ValueError,
        ("'bogus'", "'earliest'", "'latest'", "datetime"),
    ),
    "reset to negative": (
        lambda log: log.reset_offsets("g", "t", to=-1),
        InvalidArgumentError,
        ValueError,
        ("-1", ">= 0"),
    ),
    "reset to float": (
        lambda log: log.reset_offsets("g", "t", to=1.5),
        InvalidArgumentError,
        ValueError,
        ("1.5",),
    ),
    "reset to bool": (
        lambda log: log.reset_offsets("g", "t", to=True),
        InvalidArgumentError,
        ValueError,
        ("True",),
    ),
    "reset shift str": (
        lambda log: log.reset_offsets("g", "t", shift="1"),
        InvalidArgumentError,
        ValueError,
        ("shift", "'1'"),
    ),
    "reset unknown topic": (
        lambda log: log.reset_offsets("g", "nope", to="earliest"),
        TopicNotFoundError,
        KeyError,
        ("'nope'",),
    ),
    "reset partition out of range": (
        lambda log: log.reset_offsets("g", "t", to="earliest", partitions=[0, 3]),
        PartitionNotFoundError,
        IndexError,
        ("partition 3", "0..2"),
    ),
    "reset negative partition": (
        lambda log: log.reset_offsets("g", "t", to="earliest", partitions=[-1]),
        PartitionNotFoundError,
        IndexError,
        ("partition -1",),
    ),
    "reset bad group": (
        lambda log: log.reset_offsets("a\x00b", "t", to="earliest"),
        InvalidArgumentError,
        ValueError,
        ("NUL",),
    ),
    "delete unknown group": (
        lambda log: log.delete_group("nope"),
        GroupNotFoundError,
        KeyError,
        ("'nope'",),
    ),
    "delete bad group": (
        lambda log: log.delete_group(""),
        InvalidArgumentError,
        ValueError,
        ("group",),
    ),
}


@pytest.mark.parametrize("case", BAD.values(), ids=BAD.keys())
def test_bad_admin_calls_change_nothing(
    log: eventlog.Log,
    case: tuple[Call, type[Exception], type[BaseException], tuple[str, ...]],
) -> None:
    call, error, builtin, fragments = case
    assert issubclass(error, builtin)
    log.create_topic("t", 3)
    log.append("t", b"x", partition=0)
    log.commit_offsets("g", {TP("t", 0): OM(1, "m")})
    with pytest.raises(error) as info:
        call(log)
    assert isinstance(info.value, builtin)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    assert log.list_groups() == ["g"]
    assert log.committed_offsets("g") == {TP("t", 0): OM(1, "m")}


ADMIN_CALLS: dict[str, Call] = {
    "list_groups": lambda log: log.list_groups(),
    "describe_group": lambda log: log.describe_group("g"),
    "committed_offsets": lambda log: log.committed_offsets("g"),
    "commit_offsets": lambda log: log.commit_offsets("g", {TP("t", 0): 1}),
    "reset_offsets": lambda log: log.reset_offsets("g", "t", to="earliest"),
    "delete_group": lambda log: log.delete_group("g"),
}


@pytest.mark.parametrize("call", ADMIN_CALLS.values(), ids=ADMIN_CALLS.keys())
def test_admin_on_a_closed_log(log: eventlog.Log, call: Call) -> None:
    log.create_topic("t")
    log.commit_offsets("g", {TP("t", 0): 0})
    log.close()
    with pytest.raises(eventlog.LogClosedError):
        call(log)


@pytest.mark.parametrize(
    "call",
    [ADMIN_CALLS["commit_offsets"], ADMIN_CALLS["reset_offsets"], ADMIN_CALLS["delete_group"]],
    ids=["commit_offsets", "reset_offsets", "delete_group"],
)
def test_admin_writes_on_a_readonly_log(log_path: Any, call: Call) -> None:
    with eventlog.open(log_path, durability="off") as w:
        w.create_topic("t")
        w.commit_offsets("g", {TP("t", 0): 0})
    with eventlog.open(log_path, readonly=True) as ro:
        assert ro.list_groups() == ["g"]
        assert ro.describe_group("g").offsets[TP("t", 0)].committed == 0
        with pytest.raises(eventlog.ReadOnlyLogError):
            call(ro)
        assert ro.committed_offsets("g") == {TP("t", 0): OM(0, "")}
