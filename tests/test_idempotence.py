"""Idempotent appends (a stable producer id with per-partition sequence numbers): a retry
of records already written writes nothing and returns their original metadata, across
reopening the log (a crash between the write and its acknowledgement); gaps and overlaps
are refused. Also: a compaction chunk that the storage layer reruns (after growing the
map) still runs its pass."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any
from unittest import mock

import lmdb
import pytest

import eventlog
import eventlog._compaction as compaction
from eventlog import NewRecord


@pytest.fixture
def log(tmp_path: Path) -> Any:
    with eventlog.open(tmp_path / "log", durability="off") as log:
        log.create_topic("t", partitions=2, retention_ms=-1)  # explicit old timestamps
        yield log


def values(log: eventlog.Log, topic: str = "t") -> list[bytes | None]:
    return [r.value for r in log.scan(topic)]


def test_a_retry_returns_the_original_metadata_and_writes_nothing(log: eventlog.Log) -> None:
    first = log.append("t", b"a", partition=0, producer_id="exporter", sequence=0, timestamp=5)
    again = log.append("t", b"a", partition=0, producer_id="exporter", sequence=0, timestamp=9)
    assert again == first  # the original offset and timestamp
    assert values(log) == [b"a"]
    assert log.last_sequence("exporter", "t", 0) == 0
    assert log.last_sequence("exporter", "t", 1) == -1
    assert log.last_sequence("someone-else", "t", 0) == -1


def test_batches_take_consecutive_sequences_and_are_retried_whole(log: eventlog.Log) -> None:
    batch = [NewRecord(b"%d" % i, partition=1) for i in range(3)]
    metas = log.append_batch("t", batch, producer_id="p", sequence=10)
    assert log.last_sequence("p", "t", 1) == 12
    assert list(log.append_batch("t", batch, producer_id="p", sequence=10)) == list(metas)
    log.append_batch("t", [NewRecord(b"3", partition=1)], producer_id="p", sequence=13)
    assert values(log) == [b"0", b"1", b"2", b"3"]


def test_gaps_and_overlaps_are_refused(log: eventlog.Log) -> None:
    log.append_batch("t", [NewRecord(b"x", partition=0)] * 2, producer_id="p", sequence=0)
    with pytest.raises(eventlog.OutOfOrderSequenceError, match="expected 2") as info:
        log.append("t", b"gap", partition=0, producer_id="p", sequence=3)
    assert (info.value.sequence, info.value.last_sequence) == (3, 1)
    with pytest.raises(eventlog.OutOfOrderSequenceError):  # sequences 1..2: an overlap
        log.append_batch("t", [NewRecord(b"y", partition=0)] * 2, producer_id="p", sequence=1)
    assert values(log) == [b"x", b"x"]


def test_a_retry_older_than_the_window_is_recognised(log: eventlog.Log) -> None:
    for seq in range(8):
        log.append("t", b"%d" % seq, partition=0, producer_id="p", sequence=seq)
    assert log.append("t", b"7", partition=0, producer_id="p", sequence=7).offset == 7
    with pytest.raises(eventlog.DuplicateSequenceError, match="already wrote"):
        log.append("t", b"0", partition=0, producer_id="p", sequence=0)
    assert len(values(log)) == 8


def test_idempotent_appends_in_transactions(log: eventlog.Log) -> None:
    with log.transaction() as tx:
        tx.append("t", b"a", partition=0, producer_id="p", sequence=0)
        tx.append("t", b"b", partition=1)
    with log.transaction() as tx:  # the retry is skipped; the other append is written
        tx.append("t", b"a", partition=0, producer_id="p", sequence=0)
        tx.append("t", b"c", partition=1)
    assert [r.offset for r in tx.results] == [0, 1]
    assert sorted(v or b"" for v in values(log)) == [b"a", b"b", b"c"]


def test_bad_arguments(log: eventlog.Log) -> None:
    for producer_id, sequence in [("p", None), (None, 0), ("", 0), ("p", -1), ("p", 1.5),
                                  (b"p", 0), ("x" * 300, 0)]:
        with pytest.raises(eventlog.InvalidArgumentError):
            log.append("t", b"v", partition=0, producer_id=producer_id, sequence=sequence)
    with pytest.raises(eventlog.InvalidArgumentError, match="one partition"):
        log.append_batch(
            "t", [NewRecord(b"a", partition=0), NewRecord(b"b", partition=1)],
            producer_id="p", sequence=0,
        )
    assert values(log) == []


def test_a_deleted_topic_forgets_its_producers(log: eventlog.Log) -> None:
    log.append("t", b"a", partition=0, producer_id="p", sequence=41)
    log.delete_topic("t")
    log.create_topic("t", partitions=2)
    assert log.last_sequence("p", "t", 0) == -1
    log.append("t", b"a", partition=0, producer_id="p", sequence=0)  # starts afresh


WRITER = textwrap.dedent(
    """
    import os, sys, eventlog
    path, start = sys.argv[1], int(sys.argv[2])
    with eventlog.open(path, durability="full") as log:
        log.create_topic("out", exist_ok=True)
        # Resend from where the writer's own progress file says (it may lag the log).
        for seq in range(start, 20):
            meta = log.append("out", b"line-%d" % seq, producer_id="exporter", sequence=seq)
            if seq == 9 and start == 0:
                os._exit(0)  # "crash" after the write, before recording progress
            print(seq, meta.offset, flush=True)
    """
)


def test_a_writer_that_crashed_resends_without_duplicates(tmp_path: Path) -> None:
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    path = str(tmp_path / "log")
    first = subprocess.run([sys.executable, str(script), path, "0"], capture_output=True,
                           text=True, check=True)
    acknowledged = [int(line.split()[0]) for line in first.stdout.split()[::2]]
    assert acknowledged == list(range(9))  # 9 was written, never acknowledged
    # The restarted writer resends from its last acknowledged record + 1 (= 9).
    subprocess.run([sys.executable, str(script), path, "9"], capture_output=True,
                   text=True, check=True)
    with eventlog.open(path) as log:
        assert [r.value for r in log.scan("out")] == [b"line-%d" % i for i in range(20)]
        assert log.last_sequence("exporter", "out", 0) == 19
        assert log.check()


def test_compact_runs_its_pass_when_a_chunk_is_rerun(tmp_path: Path) -> None:
    """The storage layer reruns a write after growing the map: a chunk's first attempt
    must leave nothing behind that stops the rerun from starting the pass."""
    with eventlog.open(tmp_path / "log", durability="off") as log:
        log.create_topic("c", cleanup_policy="compact", min_cleanable_dirty_ratio=1.0)
        for i in range(50):
            log.append("c", b"%d" % i, key=b"k%d" % (i % 5))
        real = compaction.run_chunk
        calls = []

        def flaky(*args: Any, **kwargs: Any) -> bool:
            calls.append(1)
            if len(calls) == 1:
                raise lmdb.MapFullError("injected")
            return real(*args, **kwargs)

        with mock.patch.object(compaction, "run_chunk", flaky):
            result = log.compact("c")
        assert len(calls) == 2
        (only,) = result.values()
        assert only.passes == 1
        assert len(list(log.scan("c"))) == 5
        assert log.check()
