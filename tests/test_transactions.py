"""``log.transaction()``: appends to several topics and partitions plus consumer-group offset
commits, written all together or not at all.

What is verified:

* a committed transaction writes every append (in call order, with the metadata in
  ``tx.results``) and every offset commit; the ``with`` block commits on a normal exit;
* nothing at all is written when the block raises, when an expected version does not hold
  at the commit (ConcurrencyError), when a fenced offset commit is refused
  (CommitFailedError), or when a topic disappeared before the commit — topics and committed
  offsets are compared before and after;
* the transaction's life cycle: ``state``, ``results``, reuse after commit/abort/failure
  (IllegalStateError), read-only and closed logs, bad input refused when it is added
  (leaving the transaction usable);
* expected versions inside a transaction count the transaction's own earlier appends;
* offset commits by group name (unfenced) and through a group consumer (fenced, defaults to
  its positions);
* concurrent transactions from many threads (combined by group commit into one LMDB
  transaction of nested ones) stay individually atomic;
* a reader thread and a reader process taking snapshots while transactions commit never see
  part of one (``tests/helpers/tx_reader.py``; its check is shown to catch a partial write);
* a writer process (``tests/helpers/tx_writer.py``) SIGKILLed while building a transaction
  leaves nothing of it; killed right after ``commit()`` returned, all of it; killed at
  random moments, every topic holds exactly the acknowledged transactions plus possibly the
  one being committed, never part of one. ``EVENTLOG_STRESS=1`` runs many more kills.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from helper_modules import load_helper

import eventlog
from eventlog import NewRecord, OffsetAndMetadata, TopicPartition

HELPERS = Path(__file__).parent / "helpers"
TP = TopicPartition
LONG = {"session_timeout_ms": 30_000, "heartbeat_interval_ms": 100}
SHORT = {"session_timeout_ms": 400, "heartbeat_interval_ms": 50}


tx_procs = load_helper("tx_procs")
tx_reader = load_helper("tx_reader")
tx_writer = load_helper("tx_writer")


# --- helpers ---------------------------------------------------------------------------


@pytest.fixture
def tlog(log: eventlog.Log) -> eventlog.Log:
    """Topics ``a`` (3 partitions), ``b`` (1), ``s`` (key index, 2 partitions); a few records
    already in ``a`` and ``s``, and committed offsets of group ``g``."""
    log.create_topic("a", 3)
    log.create_topic("b", retention_ms=-1)  # one test appends with an old timestamp
    log.create_topic("s", 2, key_index=True)
    for p in range(3):
        log.append("a", b"before-%d" % p, partition=p)
    log.append("s", b"s1", key=b"acc-1")
    log.append("s", b"s2", key=b"acc-1")
    with log.transaction() as tx:
        tx.commit_offsets("g", {TP("a", 0): 1})
    return log


def everything(log: eventlog.Log) -> dict[str, Any]:
    """All records of every topic (values, keys, offsets) and every group's offsets."""
    out: dict[str, Any] = {}
    for topic in log.list_topics():
        for p in range(len(log.describe_topic(topic).partitions)):
            out[f"{topic}[{p}]"] = [(r.offset, r.key, r.value) for r in log.scan(topic, p)]
    for group in ("g", "h", "other"):
        out[f"group {group}"] = log.committed_offsets(group)
    return out


def settle(log: eventlog.Log, members: list[eventlog.Consumer], count: int,
           group: str = "g") -> None:
    """Poll the members until ``count`` partitions are spread over all of them and the group
    is stable."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for member in members:
            member.poll(0.01)
        held = [m.assignment() for m in members]
        if (all(held) and sum(map(len, held)) == count
                and log.describe_group(group).state == "Stable"):
            return
    raise AssertionError(f"the group did not settle: {[m.assignment() for m in members]}")


# --- committing ------------------------------------------------------------------------


def test_commit_writes_every_append_and_offset_commit_in_call_order(tlog: eventlog.Log) -> None:
    with tlog.transaction() as tx:
        assert tx.state == "open"
        tx.append("a", b"a2", partition=2)
        tx.append("b", b"b0", headers=[("h", b"v")], timestamp=1234)
        tx.append_batch("a", [NewRecord(b"a0", partition=0), NewRecord(b"a2'", partition=2),
                              NewRecord(b"a1", partition=1)])
        tx.append("a", b"a0'", partition=0)
        tx.append("s", b"s3", key=b"acc-1", expected_version=2)
        tx.commit_offsets("g", {TP("a", 1): 7, TP("b", 0): OffsetAndMetadata(3, "meta")})
        tx.commit_offsets("h", {TP("a", 2): 1})
    assert tx.state == "committed"
    got = [(m.topic, m.partition, m.offset) for m in tx.results]
    s_partition = next(iter(tlog.read_key("s", b"acc-1"))).partition
    assert got == [("a", 2, 1), ("b", 0, 0), ("a", 0, 1), ("a", 2, 2), ("a", 1, 1),
                   ("a", 0, 2), ("s", s_partition, 2)]
    assert tx.results[1].timestamp == 1234
    assert [r.value for r in tlog.read("a", 0)] == [b"before-0", b"a0", b"a0'"]
    assert [r.value for r in tlog.read("a", 2)] == [b"before-2", b"a2", b"a2'"]
    assert [(r.value, r.headers) for r in tlog.read("b", 0)] == [(b"b0", (("h", b"v"),))]
    assert tlog.key_version("s", b"acc-1") == 3
    assert tlog.committed_offsets("g") == {
        TP("a", 0): OffsetAndMetadata(1, ""), TP("a", 1): OffsetAndMetadata(7, ""),
        TP("b", 0): OffsetAndMetadata(3, "meta")}
    assert tlog.committed_offsets("h") == {TP("a", 2): OffsetAndMetadata(1, "")}


def test_commit_returns_the_results_and_the_transaction_is_then_closed(
        tlog: eventlog.Log) -> None:
    tx = tlog.transaction()
    with pytest.raises(eventlog.IllegalStateError, match="open"):
        _ = tx.results
    tx.append("b", b"x")
    tx.append("b", b"y")
    returned = tx.commit()
    assert [(m.topic, m.offset) for m in returned] == [("b", 0), ("b", 1)]
    assert tx.results == returned
    assert tx.state == "committed"
    for reuse in (lambda: tx.append("b", b"z"), lambda: tx.append_batch("b", [NewRecord(b"z")]),
                  lambda: tx.commit_offsets("g", {TP("b", 0): 1}), tx.commit):
        with pytest.raises(eventlog.IllegalStateError, match="committed"):
            reuse()
    with pytest.raises(eventlog.IllegalStateError):
        tx.__enter__()
    tx.abort()  # does nothing after the commit
    assert tx.state == "committed"
    assert tlog.end_offsets("b") == {0: 2}


def test_an_empty_transaction_commits_nothing(tlog: eventlog.Log) -> None:
    before = everything(tlog)
    with tlog.transaction() as tx:
        pass
    assert tx.state == "committed"
    assert tx.results == []
    assert everything(tlog) == before


def test_appends_read_back_through_every_path_after_the_commit(tlog: eventlog.Log) -> None:
    with tlog.transaction() as tx:
        for i in range(20):
            tx.append("s", b"%d" % i, key=b"k%d" % (i % 3))
    assert sorted(r.value for r in tlog.scan("s") if r.key != b"acc-1") == \
        sorted(b"%d" % i for i in range(20))
    for k in range(3):
        assert [r.value for r in tlog.read_key("s", b"k%d" % k)] == \
            [b"%d" % i for i in range(k, 20, 3)]
    assert tlog.check()


# --- nothing written on failure --------------------------------------------------------


def test_an_exception_in_the_block_writes_nothing_and_propagates(tlog: eventlog.Log) -> None:
    before = everything(tlog)
    boom = LookupError("boom")
    tx = tlog.transaction()

    def block() -> None:
        with tx:
            tx.append("a", b"x", partition=0)
            tx.append_batch("b", [NewRecord(b"y"), NewRecord(b"z")])
            tx.append("s", b"s3", key=b"acc-1", expected_version=2)
            tx.commit_offsets("g", {TP("a", 0): 99})
            raise boom

    with pytest.raises(LookupError) as info:
        block()
    assert info.value is boom
    assert tx.state == "aborted"
    assert everything(tlog) == before
    with pytest.raises(eventlog.IllegalStateError, match="aborted"):
        tx.commit()
    with pytest.raises(eventlog.IllegalStateError, match="aborted"):
        _ = tx.results
    tx.abort()
    assert tx.state == "aborted"


def test_abort_discards_everything(tlog: eventlog.Log) -> None:
    before = everything(tlog)
    tx = tlog.transaction()
    tx.append("a", b"x", partition=1)
    tx.commit_offsets("g", {TP("a", 1): 5})
    tx.abort()
    assert tx.state == "aborted"
    with pytest.raises(eventlog.IllegalStateError):
        tx.append("a", b"y", partition=1)
    assert everything(tlog) == before


@pytest.mark.parametrize("failing_position", ["first", "middle", "last"])
def test_a_concurrency_error_at_the_commit_writes_nothing(
        tlog: eventlog.Log, failing_position: str) -> None:
    """The failing append is placed first, between others, or last: appends written
    before it in the same LMDB transaction must be undone too."""
    before = everything(tlog)
    tx = tlog.transaction()

    def others() -> None:
        tx.append("a", b"x", partition=0)
        tx.append_batch("b", [NewRecord(b"y"), NewRecord(b"z")])
        tx.append("s", b"new", key=b"acc-2", expected_version=0)
        tx.commit_offsets("g", {TP("a", 0): 50, TP("b", 0): 2})

    if failing_position != "first":
        others()
    tx.append("s", b"stale", key=b"acc-1", expected_version=1)  # acc-1 is at 2
    if failing_position != "last":
        others()
    with pytest.raises(eventlog.ConcurrencyError) as info:
        tx.commit()
    assert tx.state == "failed"
    assert (info.value.topic, info.value.key) == ("s", b"acc-1")
    assert (info.value.expected_version, info.value.actual_version) == (1, 2)
    assert everything(tlog) == before
    assert tlog.key_version("s", b"acc-2") == 0
    with pytest.raises(eventlog.IllegalStateError, match="failed"):
        tx.commit()
    with pytest.raises(eventlog.IllegalStateError, match="failed"):
        _ = tx.results


def test_a_concurrency_error_in_the_with_block_propagates_and_writes_nothing(
        tlog: eventlog.Log) -> None:
    before = everything(tlog)
    tx = tlog.transaction()

    def block() -> None:
        with tx:
            tx.append("a", b"x", partition=0)
            tx.append("s", b"first", key=b"acc-9", expected_version=1)  # acc-9 has none

    with pytest.raises(eventlog.ConcurrencyError):
        block()
    assert tx.state == "failed"
    assert everything(tlog) == before


def test_the_second_of_two_transactions_built_on_the_same_version_fails_whole(
        tlog: eventlog.Log) -> None:
    first, second = tlog.transaction(), tlog.transaction()
    for tx, name in ((first, b"first"), (second, b"second")):
        tx.append("b", name)
        tx.append("s", name, key=b"acc-1", expected_version=2)
        tx.commit_offsets("other", {TP("b", 0): 1})
    first.commit()
    after_first = everything(tlog)
    with pytest.raises(eventlog.ConcurrencyError) as info:
        second.commit()
    assert info.value.actual_version == 3
    assert everything(tlog) == after_first
    assert [r.value for r in tlog.read("b", 0)] == [b"first"]


def test_offsets_of_a_topic_deleted_before_the_commit_fail_the_whole_transaction(
        tlog: eventlog.Log) -> None:
    tlog.create_topic("doomed")
    tx = tlog.transaction()
    tx.append("a", b"x", partition=0)
    tx.commit_offsets("g", {TP("doomed", 0): 1})
    tlog.delete_topic("doomed")
    before = everything(tlog)
    with pytest.raises(eventlog.TopicNotFoundError):
        tx.commit()
    assert tx.state == "failed"
    assert everything(tlog) == before


def test_appends_to_a_topic_deleted_before_the_commit_fail_the_whole_transaction(
        tlog: eventlog.Log) -> None:
    tlog.create_topic("doomed")
    tx = tlog.transaction()
    tx.append("a", b"x", partition=0)
    tx.append("doomed", b"y")
    tx.commit_offsets("g", {TP("a", 0): 2})
    tlog.delete_topic("doomed")
    before = everything(tlog)
    with pytest.raises(eventlog.TopicNotFoundError):
        tx.commit()
    assert everything(tlog) == before


def test_a_topic_altered_before_the_commit_is_checked_again_at_the_commit(
        tlog: eventlog.Log) -> None:
    """A keyless record was valid when added; the topic became compacted (every record
    needs a key) before the commit: the whole transaction is refused."""
    tx = tlog.transaction()
    tx.append("a", b"x", partition=0)
    tx.append("b", b"no key")
    tx.commit_offsets("g", {TP("a", 0): 2})
    tlog.alter_topic("b", cleanup_policy="compact")
    before = everything(tlog)
    with pytest.raises(eventlog.InvalidRecordError):
        tx.commit()
    assert tx.state == "failed"
    assert everything(tlog) == before


def test_a_transaction_larger_than_the_map_is_written_once(log_path: Path) -> None:
    """The first attempt fills the 1 MiB map; the map grows and the whole transaction is
    run again: every append once, versions counted once."""
    with eventlog.open(log_path, durability="off", map_size=1 << 20) as log:
        log.create_topic("big", 2)
        log.create_topic("s", key_index=True)
        log.append("s", b"0", key=b"k")
        with log.transaction() as tx:
            for i in range(30):
                tx.append("big", random.randbytes(100_000), partition=i % 2)
            tx.append("s", b"1", key=b"k", expected_version=1)
            tx.append("s", b"2", key=b"k", expected_version=2)
            tx.commit_offsets("g", {TP("big", 0): 3})
        assert log.end_offsets("big") == {0: 15, 1: 15}
        assert [r.value for r in log.read_key("s", b"k")] == [b"0", b"1", b"2"]
        assert log.key_version("s", b"k") == 3
        assert log.committed_offsets("g") == {TP("big", 0): OffsetAndMetadata(3, "")}
        assert [(m.partition, m.offset) for m in tx.results[:4]] == [(0, 0), (1, 0), (0, 1),
                                                                     (1, 1)]
        assert log.check()


# --- offset commits --------------------------------------------------------------------


def test_commit_offsets_by_group_name_is_not_fenced(tlog: eventlog.Log) -> None:
    """Like Kafka's sendOffsetsToTransaction(offsets, groupId): the offsets are set even
    while a member of that group owns the partition."""
    member = tlog.consumer("a", group="g", auto_offset_reset="earliest", **LONG)
    try:
        member.poll(0.5)
        assert member.assignment() == {TP("a", p) for p in range(3)}
        with tlog.transaction() as tx:
            tx.append("b", b"out")
            tx.commit_offsets("g", {TP("a", 1): 1})
        assert tlog.committed_offsets("g")[TP("a", 1)] == OffsetAndMetadata(1, "")
    finally:
        member.close(autocommit=False)


def test_commit_offsets_through_a_consumer_defaults_to_its_positions(
        tlog: eventlog.Log) -> None:
    consumer = tlog.consumer("a", group="h", auto_offset_reset="earliest",
                             enable_auto_commit=False, **LONG)
    try:
        got = consumer.poll(0.5)
        assert len(got) == 3
        with tlog.transaction() as tx:
            tx.append("b", b"processed 3")
            tx.commit_offsets(consumer)
        assert tlog.committed_offsets("h") == {TP("a", p): OffsetAndMetadata(1, "")
                                               for p in range(3)}
        assert consumer.committed(TP("a", 0)) == 1
        # Explicit offsets (with metadata) through the consumer.
        with tlog.transaction() as tx:
            tx.commit_offsets(consumer, {TP("a", 2): OffsetAndMetadata(0, "again")})
        assert tlog.committed_offsets("h")[TP("a", 2)] == OffsetAndMetadata(0, "again")
    finally:
        consumer.close(autocommit=False)


def test_commit_offsets_through_a_consumer_without_a_group_is_refused(
        tlog: eventlog.Log) -> None:
    consumer = tlog.consumer("a", auto_offset_reset="earliest")
    try:
        consumer.poll(0.2)
        tx = tlog.transaction()
        with pytest.raises(eventlog.IllegalStateError, match="group"):
            tx.commit_offsets(consumer)
        assert tx.state == "open"
    finally:
        consumer.close()


def test_a_fenced_commit_after_a_rebalance_moved_the_partition_writes_nothing(
        tlog: eventlog.Log) -> None:
    c1 = tlog.consumer("a", group="g", auto_offset_reset="earliest",
                       enable_auto_commit=False, **LONG)
    c2 = tlog.consumer("a", group="g", auto_offset_reset="earliest",
                       enable_auto_commit=False, **LONG)
    try:
        # c1 owns all three partitions and reads them (a[0] from the group's offset 1).
        assert len(c1.poll(0.5)) == 2
        settle(tlog, [c1, c2], 3)
        moved = sorted(c2.assignment())[0]
        kept = sorted(c1.assignment())[0]
        before = everything(tlog)
        tx = tlog.transaction()
        tx.append("b", b"output of the moved partition's records")
        tx.append("s", b"event", key=b"acc-1", expected_version=2)
        tx.commit_offsets(c1, {kept: 1, moved: 1})
        with pytest.raises(eventlog.CommitFailedError):
            tx.commit()
        assert tx.state == "failed"
        assert everything(tlog) == before
        assert tlog.key_version("s", b"acc-1") == 2
        # Its own partition alone commits.
        with tlog.transaction() as tx:
            tx.append("b", b"output")
            tx.commit_offsets(c1, {kept: 1})
        assert tlog.committed_offsets("g")[kept] == OffsetAndMetadata(1, "")
    finally:
        c1.close(autocommit=False)
        c2.close(autocommit=False)


def test_a_fenced_commit_through_a_consumer_closed_meanwhile_is_refused(
        tlog: eventlog.Log) -> None:
    consumer = tlog.consumer("a", group="h", auto_offset_reset="earliest",
                             enable_auto_commit=False, **LONG)
    consumer.poll(0.5)
    tx = tlog.transaction()
    tx.append("b", b"output")
    tx.commit_offsets(consumer, {TP("a", 0): 1})
    consumer.close(autocommit=False)  # it left the group: it owns nothing now
    before = everything(tlog)
    with pytest.raises(eventlog.CommitFailedError):
        tx.commit()
    assert everything(tlog) == before


def test_a_member_whose_lease_ran_out_cannot_commit_its_positions(log: eventlog.Log) -> None:
    """The zombie case: the member stopped heartbeating, the group gave its partitions to
    another member; its transaction (default offsets: its positions) is refused whole."""
    log.create_topic("in", 2)
    log.create_topic("out")
    for p in range(2):
        log.append("in", b"x", partition=p)
    zombie = log.consumer("in", group="g", auto_offset_reset="earliest",
                          enable_auto_commit=False, **SHORT)
    other = log.consumer("in", group="g", auto_offset_reset="earliest",
                         enable_auto_commit=False, **SHORT)
    try:
        assert len(zombie.poll(0.5)) == 2
        zombie._membership.stop_heartbeats()  # white box: it hangs
        deadline = time.monotonic() + 5
        while len(other.assignment()) < 2 and time.monotonic() < deadline:
            other.poll(0.02)
        assert len(other.assignment()) == 2
        tx = log.transaction()
        tx.append("out", b"late output")
        tx.commit_offsets(zombie)
        with pytest.raises(eventlog.CommitFailedError):
            tx.commit()
        assert log.end_offsets("out") == {0: 0}
        assert log.committed_offsets("g") == {}
    finally:
        zombie.close(autocommit=False)
        other.close(autocommit=False)


# --- bad input -------------------------------------------------------------------------

BAD_CALLS: dict[str, Any] = {
    "value not bytes": lambda tx: tx.append("a", "text"),
    "key not bytes": lambda tx: tx.append("a", b"v", key="k"),
    "unknown topic": lambda tx: tx.append("nope", b"v"),
    "bad topic name": lambda tx: tx.append("", b"v"),
    "partition out of range": lambda tx: tx.append("a", b"v", partition=3),
    "negative partition": lambda tx: tx.append("a", b"v", partition=-1),
    "bad timestamp": lambda tx: tx.append("a", b"v", timestamp=-5),
    "bad headers": lambda tx: tx.append("a", b"v", headers=[("h", "not bytes")]),
    "too large": lambda tx: tx.append("a", b"v" * 2_000_000),
    "expected version without key": lambda tx: tx.append("s", b"v", expected_version=0),
    "negative expected version": lambda tx: tx.append("s", b"v", key=b"k",
                                                      expected_version=-1),
    "expected version not an int": lambda tx: tx.append("s", b"v", key=b"k",
                                                        expected_version="0"),
    "batch of non-records": lambda tx: tx.append_batch("a", [b"v"]),
    "batch with a bad record": lambda tx: tx.append_batch(
        "a", [NewRecord(b"ok"), NewRecord("text")]),
    "expected versions not a mapping": lambda tx: tx.append_batch(
        "s", [NewRecord(b"v", key=b"k")], expected_versions=[(b"k", 0)]),
    "expected versions of a key not in the batch": lambda tx: tx.append_batch(
        "s", [NewRecord(b"v", key=b"k")], expected_versions={b"other": 0}),
    "expected version on a topic without key index": lambda tx: tx.append(
        "a", b"v", key=b"k", expected_version=0),
    "offsets without a group name": lambda tx: tx.commit_offsets("", {TP("a", 0): 1}),
    "group name without offsets": lambda tx: tx.commit_offsets("g"),
    "negative offset": lambda tx: tx.commit_offsets("g", {TP("a", 0): -1}),
    "offsets not a mapping": lambda tx: tx.commit_offsets("g", [(TP("a", 0), 1)]),
}


@pytest.mark.parametrize("bad", sorted(BAD_CALLS))
def test_bad_input_is_refused_when_added_and_the_transaction_stays_usable(
        tlog: eventlog.Log, bad: str) -> None:
    before = everything(tlog)
    tx = tlog.transaction()
    tx.append("b", b"good, before")
    with pytest.raises(eventlog.EventLogError):
        BAD_CALLS[bad](tx)
    assert tx.state == "open"
    tx.append("b", b"good, after")
    tx.commit()
    assert [r.value for r in tlog.read("b", 0)] == [b"good, before", b"good, after"]
    after = everything(tlog)
    del after["b[0]"]
    del before["b[0]"]
    assert after == before


def test_transactions_need_a_writable_open_log(log_path: Path) -> None:
    with eventlog.open(log_path, durability="off") as log:
        log.create_topic("t")
        pending = log.transaction()
        pending.append("t", b"x")
    with pytest.raises(eventlog.LogClosedError):
        pending.commit()
    with pytest.raises(eventlog.LogClosedError):
        log.transaction()
    with eventlog.open(log_path, readonly=True) as ro:
        with pytest.raises(eventlog.ReadOnlyLogError):
            ro.transaction()
        assert ro.end_offsets("t") == {0: 0}


# --- expected versions inside a transaction --------------------------------------------


def test_expected_versions_count_the_transactions_own_earlier_appends(
        tlog: eventlog.Log) -> None:
    with tlog.transaction() as tx:
        tx.append("s", b"3", key=b"acc-1", expected_version=2)
        tx.append_batch("s", [NewRecord(b"4", key=b"acc-1"), NewRecord(b"n1", key=b"new"),
                              NewRecord(b"5", key=b"acc-1")],
                        expected_versions={b"acc-1": 3, b"new": 0})
        tx.append("s", b"6", key=b"acc-1", expected_version=5)
        tx.append("s", b"n2", key=b"new", expected_version=1)
    assert [r.value for r in tlog.read_key("s", b"acc-1")] == [b"s1", b"s2", b"3", b"4", b"5",
                                                               b"6"]
    assert tlog.key_version("s", b"acc-1") == 6
    assert tlog.key_version("s", b"new") == 2
    # A version the transaction's own appends already passed is a conflict.
    tx = tlog.transaction()
    tx.append("s", b"7", key=b"acc-1", expected_version=6)
    tx.append("s", b"7 again", key=b"acc-1", expected_version=6)
    with pytest.raises(eventlog.ConcurrencyError) as info:
        tx.commit()
    assert (info.value.expected_version, info.value.actual_version) == (6, 7)
    assert tlog.key_version("s", b"acc-1") == 6


# --- concurrency -----------------------------------------------------------------------


def test_concurrent_transactions_from_threads_are_each_all_or_nothing(
        log: eventlog.Log) -> None:
    """Eight threads commit transactions at once (group commit puts several in one LMDB
    transaction, each nested); half of them are built to conflict on an expected version.
    Each transaction's records are present entirely exactly when it reported success."""
    log.create_topic("x", 3)
    log.create_topic("y")
    log.create_topic("v", key_index=True)
    outcomes: dict[tuple[int, int], bool] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def worker(t: int) -> None:
        try:
            start.wait()
            for i in range(40):
                key = b"shared" if i % 2 else b"own-%d" % t
                version = log.key_version("v", key)
                tx = log.transaction()
                for p in range(3):
                    tx.append("x", b"%d:%d" % (t, i), partition=p)
                tx.append("v", b"%d:%d" % (t, i), key=key, expected_version=version)
                tx.append("y", b"%d:%d" % (t, i))
                tx.commit_offsets(f"g{t}", {TP("y", 0): i + 1})
                try:
                    tx.commit()
                except eventlog.ConcurrencyError:
                    outcomes[(t, i)] = False
                else:
                    outcomes[(t, i)] = True
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    counts: dict[bytes, int] = {}
    for topic in ("x", "y", "v"):
        for record in log.scan(topic):
            counts[record.value] = counts.get(record.value, 0) + 1
    for (t, i), won in outcomes.items():
        assert counts.get(b"%d:%d" % (t, i), 0) == (5 if won else 0), (t, i, won)
    assert len(counts) == sum(outcomes.values())
    assert any(not won for won in outcomes.values())  # the conflicts happened
    # The shared key's stream: one record per winning transaction, versions 1..n.
    assert log.key_version("v", b"shared") == len(list(log.read_key("v", b"shared")))
    for t in range(8):
        last_won = max((i for (tt, i), won in outcomes.items() if tt == t and won), default=-1)
        committed = log.committed_offsets(f"g{t}").get(TP("y", 0))
        assert (committed.offset if committed else 0) == last_won + 1
    assert log.check()


# --- readers never see part of a transaction -------------------------------------------


def test_the_snapshot_check_catches_a_partial_transaction(log: eventlog.Log) -> None:
    """The control for the reader tests below: the same check, run on a log holding half
    of a transaction, reports it (so those tests can fail)."""
    tx_reader.create_topics(log)
    tx_reader.write_tx(log, 0)
    for mode in ("cross-topic", "public"):
        checker = tx_reader.SnapshotChecker(log, mode)
        assert checker.check(), checker.violations
    tx_reader.write_partial(log, 1)
    for mode in ("cross-topic", "public"):
        checker = tx_reader.SnapshotChecker(log, mode)
        assert not checker.check()
        assert "partial" in checker.violations[0] or "committed offset" in checker.violations[0]
    # The committed-offset bound alone catches records that become visible without their
    # offset commit.
    log.append_batch("atom-b", [NewRecord(b"1:b:1")])
    for p in range(2):
        log.append("atom-c", b"1:c:%d" % p, partition=p)
    checker = tx_reader.SnapshotChecker(log, "cross-topic")
    assert not checker.check()
    assert "committed offset" in checker.violations[0]


@pytest.mark.parametrize("mode", ["cross-topic", "public"])
def test_a_reader_thread_never_sees_part_of_a_transaction(log: eventlog.Log,
                                                          mode: str) -> None:
    tx_reader.create_topics(log)
    checker = tx_reader.SnapshotChecker(log, mode)
    done = threading.Event()
    failures: list[BaseException] = []

    def read() -> None:
        try:
            while not done.is_set() and not checker.violations:
                checker.check()
        except BaseException as exc:  # reported below
            failures.append(exc)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for i in range(300):
            tx_reader.write_tx(log, i)
    finally:
        done.set()
        reader.join()
    assert not failures, failures
    assert checker.check()
    assert not checker.violations, checker.violations
    assert len(checker.counts) == 300
    assert checker.snapshots > 10  # the reader really ran alongside the writes


def test_a_reader_process_never_sees_part_of_a_transaction(tmp_path: Path) -> None:
    logdir = tmp_path / "log"
    stop = tmp_path / "stop"
    with eventlog.open(logdir, durability="normal") as log:
        tx_reader.create_topics(log)
        readers = [tx_procs.Child(tmp_path, f"reader-{mode}", HELPERS / "tx_reader.py",
                                  str(logdir), mode, str(stop))
                   for mode in ("cross-topic", "public")]
        try:
            for reader in readers:
                reader.wait_for("R", "ready line")
            for i in range(300):
                tx_reader.write_tx(log, i)
                if i % 25 == 0:
                    time.sleep(0.01)  # let the readers take snapshots of a busy log
            stop.touch()
            for reader in readers:
                assert reader.wait() == 0, reader.stderr()
        finally:
            for reader in readers:
                reader.kill()
    for reader in readers:
        result = json.loads(reader.lines()[-1])
        assert result["violations"] == [], (reader.name, result)
        assert result["seen"] == 300
        assert result["snapshots"] > 5, (reader.name, result)


# --- SIGKILL -----------------------------------------------------------------------------


def _values_of(log: eventlog.Log, topic: str, partition: int) -> list[tuple[int, Any, bytes]]:
    """(offset, key, value) of a whole partition, checking that offsets are dense."""
    out: list[tuple[int, Any, bytes]] = []
    position = 0
    end = log.end_offsets(topic)[partition]
    while position < end:
        cols = log.read_columns(topic, partition, position)
        assert list(cols.offsets) == list(range(position, position + len(cols.offsets))), \
            f"{topic}[{partition}]: offsets not dense after {position}"
        out.extend(zip(cols.offsets, cols.keys, cols.values))
        position = cols.next_offset
    assert log.read(topic, partition, end) == []
    return out


class TxCrashHarness:
    """SIGKILLs transaction writers on one log and checks it after each kill against the
    transactions the writers acknowledged (see ``tests/helpers/tx_writer.py``)."""

    def __init__(self, tmp_path: Path, seed: int, durability: str = "full") -> None:
        self.workdir = tmp_path
        self.logdir = tmp_path / "log"
        self.rng = random.Random(seed)
        self.seed = seed
        self.durability = durability
        self.committed: list[tuple[int, int]] = []  # (round, seq) of every tx in the log
        self.stream_events = 0
        self.rounds = 0
        self.outcomes: dict[str, int] = {}

    def _context(self) -> str:
        return f"(harness seed {self.seed}, round {self.rounds})"

    def _start(self, round_: int) -> tuple[Any, str, int]:
        mode = "random" if round_ == 0 else self.rng.choice(("mid", "acked", "random",
                                                               "random"))
        stall = self.rng.randrange(0, 4)
        extra = {"mid": ["--stall-in", str(stall)], "acked": ["--stall-after", str(stall)],
                 "random": []}[mode]
        child = tx_procs.Child(self.workdir, f"writer-{round_}", HELPERS / "tx_writer.py",
                               str(self.logdir), str(round_), "--durability", self.durability,
                               "--wait-go", *extra)
        return child, mode, stall

    def run(self, rounds: int) -> None:
        upcoming = self._start(0)
        for r in range(rounds):
            child, mode, stall = upcoming
            child.go()
            if mode == "mid":
                child.wait_for(f"M {stall}", "the stall inside a transaction")
            elif mode == "acked":
                child.wait_for(f"A {stall}", "the stall after a transaction")
            else:
                if r == 0 or self.rng.random() < 0.8:
                    child.wait_for("A ", "a first acknowledgement")
                time.sleep(self.rng.uniform(0.0, 0.15))
            child.kill()
            child.check_killed()
            upcoming = self._start(r + 1) if r + 1 < rounds else None
            try:
                self._verify(child, r, mode, stall, full=(r % 5 == 4 or r + 1 == rounds))
            except BaseException:
                if upcoming is not None:
                    upcoming[0].kill()
                raise
            self.rounds += 1

    def _verify(self, child: Any, round_: int, mode: str, stall: int, *, full: bool) -> None:
        ctx = self._context()
        lines = child.lines()
        acked = [int(line.split()[1]) for line in lines if line.startswith("A ")]
        prepared = {int(line.split()[1]) for line in lines if line.startswith("P ")}
        assert acked == list(range(len(acked))), f"ack lines out of order {ctx}"
        readonly = round_ % 2 == 1
        with eventlog.open(self.logdir, readonly=readonly, durability=self.durability) as log:
            if tx_writer.ORDERS not in log.list_topics():
                assert not acked, f"acknowledged transactions but no topics {ctx}"
                return
            stored: dict[str, list[tuple[int, int, Any, bytes]]] = {}
            txs: dict[tuple[int, int], dict[str, list[tuple[int, int, Any, int]]]] = {}
            for topic, partitions in tx_writer.TOPICS.items():
                for p in range(partitions):
                    for offset, key, value in _values_of(log, topic, p):
                        r, s, t, i = value.decode().split(":")
                        assert t == topic, f"{value!r} in {topic} {ctx}"
                        txs.setdefault((int(r), int(s)), {}).setdefault(topic, []).append(
                            (p, offset, key, int(i)))
                        stored.setdefault(topic, []).append((p, offset, key, value))
            old = [t for t in txs if t[0] != round_]
            assert sorted(old) == sorted(self.committed), \
                f"earlier rounds' transactions changed {ctx}"
            mine = sorted(s for r, s in txs if r == round_)
            n = len(mine)
            assert mine == list(range(n)), f"transactions {mine} are not 0..n-1 {ctx}"
            assert n >= len(acked), f"acknowledged transaction {n} is missing {ctx}"
            assert n <= len(acked) + 1, f"unacknowledged transactions present {ctx}"
            if n == len(acked) + 1:
                assert n - 1 in prepared, \
                    f"transaction {n - 1} is present but was never committed {ctx}"
                self.outcomes["in-flight present"] = self.outcomes.get("in-flight present",
                                                                       0) + 1
            if mode == "mid":
                assert n == stall, f"transaction {stall}, killed while built, is present {ctx}"
            elif mode == "acked":
                assert n == stall + 1, f"acknowledged transaction {stall} is missing {ctx}"
            self.outcomes[mode] = self.outcomes.get(mode, 0) + 1
            for seq in range(n):
                self._check_tx(round_, seq, txs[(round_, seq)], ctx)
            self._check_order(stored, ctx)
            self.committed.extend((round_, seq) for seq in range(n))
            # The group offset commit is part of each transaction.
            progress = log.committed_offsets(tx_writer.GROUP).get(TP(tx_writer.AUDIT, 0))
            if self.committed:
                last_round, last_seq = self.committed[-1]
                assert progress == OffsetAndMetadata(len(self.committed),
                                                     f"{last_round}:{last_seq}"), \
                    f"the group offset {progress} does not match the transactions {ctx}"
            else:
                assert progress is None, f"a group offset without its transaction {ctx}"
            # The stream's versions count exactly the events of the committed transactions.
            new_events = [value for seq in range(n)
                          for _p, _k, value in tx_writer.make_tx(round_, seq)[tx_writer.STREAM]]
            version = log.key_version(tx_writer.STREAM, tx_writer.STREAM_KEY)
            assert version == self.stream_events + len(new_events), ctx
            tail = [r.value for r in log.read_key(tx_writer.STREAM, tx_writer.STREAM_KEY,
                                                  from_version=self.stream_events + 1)]
            assert tail == new_events, ctx
            self.stream_events = version
            if full:
                report = log.check()
                assert report, f"log.check() after a kill {ctx}:\n{report}"

    def _check_tx(self, round_: int, seq: int,
                  got: dict[str, list[tuple[int, int, Any, int]]], ctx: str) -> None:
        plan = tx_writer.make_tx(round_, seq)
        for topic, wanted in plan.items():
            records = sorted(got.get(topic, []), key=lambda r: (r[0], r[1]))
            assert sorted(r[3] for r in records) == list(range(len(wanted))), \
                f"transaction {round_}:{seq} is incomplete in {topic}: {records} {ctx}"
            by_partition: dict[int, list[int]] = {}
            for p, _offset, key, i in records:
                partition, want_key, _value = wanted[i]
                if partition is not None:
                    assert p == partition, ctx
                assert key == want_key, ctx
                by_partition.setdefault(p, []).append(i)
            for indexes in by_partition.values():
                assert indexes == sorted(indexes), f"records out of call order {ctx}"

    def _check_order(self, stored: dict[str, list[tuple[int, int, Any, bytes]]],
                     ctx: str) -> None:
        """In every partition, transactions appear in commit order."""
        order = {t: i for i, t in enumerate(self.committed)}
        for topic, records in stored.items():
            last: dict[int, int] = {}
            for p, _offset, _key, value in sorted(records, key=lambda r: (r[0], r[1])):
                r, s = map(int, value.decode().split(":")[:2])
                position = order.get((r, s), len(order))
                assert position >= last.get(p, -1), f"{topic}[{p}] out of commit order {ctx}"
                last[p] = position


def _crash_run(tmp_path: Path, rounds: int) -> TxCrashHarness:
    seed = random.randrange(2**32)
    harness = TxCrashHarness(tmp_path, seed)
    harness.run(rounds)
    assert harness.rounds == rounds
    assert len(harness.committed) >= rounds // 2  # the writers got work done
    return harness


def test_sigkill_while_building_or_after_commit_leaves_whole_transactions(
        tmp_path: Path) -> None:
    harness = _crash_run(tmp_path, 14)
    # Each kind of kill happened at least once (the first round is always "random").
    assert harness.outcomes.get("random", 0) >= 1


def test_sigkill_in_the_middle_of_building_leaves_nothing_and_after_commit_everything(
        tmp_path: Path) -> None:
    """The two deterministic cases, each on its own: a writer stopped inside transaction 2
    (some appends added, commit not called) and one stopped right after transaction 2's
    commit returned."""
    harness = TxCrashHarness(tmp_path, seed=1)
    for round_, (flag, marker, expected) in enumerate(
            [("--stall-in", "M 2", 2), ("--stall-after", "A 2", 3)]):
        child = tx_procs.Child(tmp_path, f"writer-{round_}", HELPERS / "tx_writer.py",
                               str(harness.logdir), str(round_), flag, "2")
        child.wait_for(marker, marker)
        child.kill()
        child.check_killed()
        harness._verify(child, round_, "mid" if flag == "--stall-in" else "acked", 2,
                        full=True)
        assert [t for t in harness.committed if t[0] == round_] == \
            [(round_, s) for s in range(expected)]


@pytest.mark.stress
@pytest.mark.timeout(3600)
@pytest.mark.skipif(os.environ.get("EVENTLOG_STRESS") != "1",
                    reason="opt-in stress test (300 kills, a few minutes): set "
                           "EVENTLOG_STRESS=1, e.g. `make stress`")
def test_sigkill_stress_transactions(tmp_path: Path) -> None:
    harness = _crash_run(tmp_path, 300)
    assert harness.outcomes.get("mid", 0) > 10
    assert harness.outcomes.get("acked", 0) > 10



def test_single_appends_of_a_transaction_are_stored_as_one_batch_per_partition(
    tmp_path: Path,
) -> None:
    """Consecutive tx.append() calls to one topic are written as one batch per partition
    (a processor appending one output per input must not store a batch per record), in
    the order added, with their metadata in that order."""
    with eventlog.open(tmp_path / "log", durability="off") as log:
        log.create_topic("out", partitions=2)
        log.create_topic("other")
        with log.transaction() as tx:
            for i in range(10):
                headers = [("i", b"%d" % i)] if i == 3 else None
                tx.append("out", b"%d" % i, partition=i % 2, headers=headers)
            tx.append("other", b"x")
            tx.append("out", b"last", partition=0)
        assert [m.topic for m in tx.results] == ["out"] * 10 + ["other", "out"]
        assert [m.partition for m in tx.results[:10]] == [i % 2 for i in range(10)]
        parts = log.describe_topic("out").partitions
        assert [p.batches for p in parts] == [2, 1]  # the run of 10, then "last"
        stored = {(r.partition, r.offset): (r.value, r.headers) for r in log.scan("out")}
        for meta, i in zip(tx.results[:10], range(10), strict=True):
            assert stored[(meta.partition, meta.offset)][0] == b"%d" % i
        assert stored[(1, 1)][1] == (("i", b"3"),)
