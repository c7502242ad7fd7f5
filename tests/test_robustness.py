"""Regressions from code review: interrupts (Ctrl-C) during group commit and close, damaged
batch headers, the topic catalog after a failed group, topics re-created under a scan,
concurrent open/close."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import lmdb
import pytest

import eventlog
from eventlog._catalog import BATCH_KEY

needs_signals = pytest.mark.skipif(
    not hasattr(signal, "SIGALRM") or threading.current_thread() is not threading.main_thread(),
    reason="needs SIGALRM delivered to the main thread",
)


@pytest.fixture
def log(tmp_path: Path) -> Iterator[eventlog.Log]:
    with eventlog.open(tmp_path / "log", durability="off") as opened:
        opened.create_topic("t", retention_ms=-1)  # tests use 1970 timestamps
        opened.create_topic("other")
        yield opened


def _blocking_writer(log: eventlog.Log) -> tuple[threading.Thread, threading.Event]:
    """A write group leader that holds the write transaction until released."""
    release = threading.Event()
    entered = threading.Event()

    def slow(txn: Any) -> None:
        entered.set()
        release.wait(10)

    thread = threading.Thread(target=log._storage.write, args=(slow,))
    thread.start()
    assert entered.wait(10)
    return thread, release


def _interrupt_after(seconds: float) -> Callable[[], None]:
    """Raise KeyboardInterrupt in the main thread after ``seconds``; returns a cancel."""
    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, seconds)

    def cancel() -> None:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)

    return cancel


@needs_signals
def test_a_write_interrupted_while_queued_is_never_committed_later(log: eventlog.Log) -> None:
    leader, release = _blocking_writer(log)
    cancel = _interrupt_after(0.2)
    try:
        with pytest.raises(KeyboardInterrupt):
            log.append("t", b"cancelled")
    finally:
        cancel()
        release.set()
        leader.join(10)
    log.append("other", b"unrelated")  # a later group must not carry the cancelled append
    assert log.end_offsets("t") == {0: 0}
    assert log.read("t", 0) == []


@needs_signals
def test_close_interrupted_while_a_reader_runs_leaves_the_log_usable(tmp_path: Path) -> None:
    path = tmp_path / "log"
    log = eventlog.open(path)
    log.create_topic("t")
    log.append("t", b"v")
    inside = threading.Event()
    release = threading.Event()

    def slow_read(txn: Any) -> None:
        inside.set()
        release.wait(10)

    reader = threading.Thread(target=log._storage.read, args=(slow_read,))
    reader.start()
    assert inside.wait(10)
    cancel = _interrupt_after(0.2)
    try:
        with pytest.raises(KeyboardInterrupt):
            log.close()
    finally:
        cancel()
        release.set()
        reader.join(10)
    # The environment was not closed: another handle opens and works, reads and writes.
    with eventlog.open(path) as again:
        assert [r.value for r in again.read("t", 0)] == [b"v"]
        again.append("t", b"w")
        assert again.end_offsets("t") == {0: 2}


def test_damaged_batch_header_is_reported_not_skipped(tmp_path: Path) -> None:
    path = tmp_path / "log"
    with eventlog.open(path) as log:
        log.create_topic("t")
        log.append_batch("t", [eventlog.NewRecord(b"v%d" % i) for i in range(10)])
        log.append_batch("t", [eventlog.NewRecord(b"w%d" % i) for i in range(10)])
        topic_id = log.describe_topic("t").topic_id
    # Flip a bit of batch 0's "last offset delta" (9 -> 1): its header now claims the batch
    # ends at offset 1, so a read at 5 must not quietly continue at offset 10.
    env = lmdb.open(str(path), max_dbs=16)
    db = env.open_db(b"batches")
    with env.begin(write=True) as txn:
        key = BATCH_KEY.pack(topic_id, 0, 0)
        value = bytearray(txn.get(key, db=db))
        value[8] ^= 0x08
        txn.put(key, bytes(value), db=db)
    env.close()
    with eventlog.open(path) as log:
        for offset in (0, 5, 9):
            with pytest.raises(eventlog.CorruptLogError) as info:
                log.read("t", 0, offset)
            assert info.value.offset == 0
        assert [r.value for r in log.read("t", 0, 10, max_records=2)] == [b"w0", b"w1"]


def test_catalog_is_not_poisoned_by_a_group_that_failed(log: eventlog.Log) -> None:
    log.append("t", b"x")  # caches t (1 partition)
    storage = log._storage
    leader, release = _blocking_writer(log)
    results: dict[str, object] = {}

    def run(name: str, fn: Callable[[], object]) -> None:
        try:
            results[name] = fn()
        except Exception as exc:
            results[name] = exc

    def failing(txn: Any) -> None:
        raise lmdb.DiskError("Input/output error")  # the group's commit fails as a whole

    threads = []
    for name, fn in [("grow", lambda: log.create_partitions("t", 4)),
                     ("append", lambda: log.append("t", b"y", key=b"k")),
                     ("fail", lambda: storage.write(failing))]:
        thread = threading.Thread(target=run, args=(name, fn))
        thread.start()
        threads.append(thread)
        deadline = time.monotonic() + 10
        while len(storage._pending) < len(threads) and time.monotonic() < deadline:
            time.sleep(0.001)
    release.set()
    leader.join(10)
    for thread in threads:
        thread.join(10)
    assert all(isinstance(r, eventlog.DiskFullError) for r in results.values()), results
    assert "adding partitions" in str(results["grow"])
    assert "appending" in str(results["append"])  # each op reports its own action
    log.create_topic("v")  # a committed change brings the schema counter level again
    assert log.describe_topic("t").partition_count == 1
    with pytest.raises(eventlog.PartitionNotFoundError):
        log.append("t", b"z", partition=3)


def test_scan_stops_when_its_topic_is_recreated(log: eventlog.Log) -> None:
    log.append_batch("t", [eventlog.NewRecord(b"old%d" % i) for i in range(4)])
    scan = log.scan("t", page_size=2)
    assert [next(scan).value, next(scan).value] == [b"old0", b"old1"]
    log.delete_topic("t")
    log.create_topic("t")
    log.append_batch("t", [eventlog.NewRecord(b"new%d" % i) for i in range(4)])
    with pytest.raises(eventlog.TopicNotFoundError):
        list(scan)


def test_concurrent_open_and_close_of_one_path(tmp_path: Path) -> None:
    path = tmp_path / "log"
    eventlog.open(path).close()
    errors: list[BaseException] = []

    def churn() -> None:
        try:
            for _ in range(50):
                with eventlog.open(path) as handle:
                    handle.list_topics()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=churn) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []


@pytest.mark.parametrize("timeout", [float("nan"), True, -1, "1"])
def test_wait_rejects_bad_timeouts(log: eventlog.Log, timeout: object) -> None:
    with pytest.raises(eventlog.InvalidArgumentError):
        log.wait("t", 0, 0, timeout=timeout)  # type: ignore[arg-type]


def test_open_rejects_a_nul_in_the_path() -> None:
    with pytest.raises(eventlog.InvalidArgumentError):
        eventlog.open("bad\0path")


def test_open_reports_os_errors_as_storage_errors(tmp_path: Path) -> None:
    (tmp_path / "log").mkdir()
    (tmp_path / "log" / "data.mdb").mkdir()  # a directory where the data file should be
    with pytest.raises(eventlog.StorageError):
        eventlog.open(tmp_path / "log")
    assert os.listdir(tmp_path / "log") == ["data.mdb"]


@pytest.mark.parametrize("use_fast_path", [True, False])
def test_config_changed_by_another_process_is_enforced_at_once(
    tmp_path: Path, use_fast_path: bool
) -> None:
    """This process's cached topic definition is stale after another process alters the
    topic; the write transaction sees the change and the append is checked against it."""
    path = tmp_path / "log"
    with eventlog.open(path) as log:
        log.create_topic("t")
        log.append("t", b"warm the cache")
        subprocess.run(
            [sys.executable, "-c",
             "import sys, eventlog; eventlog.open(sys.argv[1]).alter_topic("
             "'t', max_message_bytes=10)", str(path)],
            check=True, timeout=60,
        )
        headers = None if use_fast_path else [("h", b"v")]  # headers take the general path
        with pytest.raises(eventlog.RecordTooLargeError):
            log.append("t", b"x" * 100, headers=headers)
        assert log.end_offsets("t") == {0: 1}


class _InterruptAfterCommit:
    """Wraps the environment so that a write transaction's commit succeeds and then a
    KeyboardInterrupt arrives (a Ctrl-C that landed during the fsync)."""

    def __init__(self, env: Any) -> None:
        self._env = env

    def __getattr__(self, name: str) -> Any:
        return getattr(self._env, name)

    def begin(self, write: bool = False, parent: Any = None, **kwargs: Any) -> Any:
        if parent is not None:
            return self._env.begin(write=write, parent=parent._txn, **kwargs)
        txn = self._env.begin(write=write, **kwargs)
        return _CommitThenInterrupt(txn) if write else txn


class _CommitThenInterrupt:
    def __init__(self, txn: Any) -> None:
        self._txn = txn

    def __getattr__(self, name: str) -> Any:
        return getattr(self._txn, name)

    def commit(self) -> None:
        self._txn.commit()
        raise KeyboardInterrupt


def test_interrupt_right_after_a_commit_reports_the_group_as_written(
    log: eventlog.Log,
) -> None:
    storage = log._storage
    with storage._write_lock:
        storage._leading = True  # a busy leader: the follower below queues
    results: list[object] = []
    follower = threading.Thread(target=lambda: results.append(log.append("t", b"follower")))
    follower.start()
    deadline = time.monotonic() + 10
    while not storage._pending and time.monotonic() < deadline:
        time.sleep(0.001)
    with storage._write_lock:
        storage._leading = False
    storage.env = _InterruptAfterCommit(storage.env)
    try:
        with pytest.raises(KeyboardInterrupt):
            log.append("t", b"leader")  # leads the group {follower, leader}
    finally:
        storage.env = storage.env._env
    follower.join(10)
    assert isinstance(results[0], eventlog.RecordMetadata), results  # not "nothing written"
    assert sorted(r.value for r in log.read("t", 0)) == [b"follower", b"leader"]


def test_a_leader_interrupted_before_taking_its_group_withdraws_its_write(
    log: eventlog.Log, monkeypatch: pytest.MonkeyPatch
) -> None:
    import eventlog._storage as storage_module

    def interrupted_sleep(seconds: float) -> None:
        raise KeyboardInterrupt

    log._storage._last_group = 2  # writers were concurrent: the leader yields first
    monkeypatch.setattr(storage_module.time, "sleep", interrupted_sleep)
    with pytest.raises(KeyboardInterrupt):
        log.append("t", b"interrupted")
    monkeypatch.undo()
    log.append("t", b"later")
    assert [r.value for r in log.read("t", 0)] == [b"later"]


def test_time_index_stays_dense_enough_for_tiny_records(log: eventlog.Log) -> None:
    """Tombstones and tiny values still get an index entry every few hundred batches, so
    a lookup verifies a bounded number of batch headers."""
    import eventlog._read as read_module

    for i in range(3_000):
        log.append("t", None if i % 2 else b"", key=b"k", timestamp=1_000 + i)
    with mock.patch.object(read_module, "verified_header",
                           wraps=read_module.verified_header) as verified:
        assert log.offsets_for_times("t", 3_999) == {0: 2_999}
    assert verified.call_count <= 300


def test_append_to_a_partition_another_process_just_added(tmp_path: Path) -> None:
    path = tmp_path / "log"
    with eventlog.open(path) as log:
        log.create_topic("w")
        log.append("w", b"warm the cache")
        subprocess.run(
            [sys.executable, "-c",
             "import sys, eventlog; eventlog.open(sys.argv[1]).create_partitions('w', 3)",
             str(path)],
            check=True, timeout=60,
        )
        assert log.append("w", b"v", partition=2).partition == 2
        assert log.append_batch("w", [eventlog.NewRecord(b"v", partition=2)])[0].offset == 1
