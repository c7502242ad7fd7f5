"""Log.backup(): a consistent, optionally compacted copy taken while the log is in use."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

import eventlog


def records(log: eventlog.Log, topic: str) -> list[tuple[int, int, bytes | None, bytes | None]]:
    return [(r.partition, r.offset, r.key, r.value) for r in log.scan(topic)]


def test_backup_is_an_openable_copy(log: eventlog.Log, tmp_path: Path) -> None:
    log.create_topic("t", partitions=3)
    log.append_batch("t", [eventlog.NewRecord(b"v%d" % i, key=b"k%d" % i) for i in range(500)])
    log.commit_offsets("g", {eventlog.TopicPartition("t", 0): 7})
    for compact in (True, False):
        dest = tmp_path / f"backup-{compact}"
        path = log.backup(dest, compact=compact)
        assert path == str(dest)
        with eventlog.open(dest, readonly=True) as copy:
            assert copy.list_topics() == ["t"]
            assert records(copy, "t") == records(log, "t")
            assert copy.committed_offsets("g") == log.committed_offsets("g")
    log.append("t", b"after")  # the original goes on
    assert len(records(log, "t")) == 501


def test_compact_backup_leaves_free_pages_out(log: eventlog.Log, tmp_path: Path) -> None:
    log.create_topic("big")
    log.create_topic("small")
    for _ in range(50):  # incompressible values: the pages really hold ~10 MB
        log.append_columns("big", [os.urandom(2000) for _ in range(100)])
    log.append("small", b"x")
    log.delete_topic("big")  # its pages become free, the file does not shrink
    plain = Path(log.backup(tmp_path / "plain", compact=False))
    small = Path(log.backup(tmp_path / "compact", compact=True))
    size = (small / "data.mdb").stat().st_size
    assert size * 10 < (plain / "data.mdb").stat().st_size
    with eventlog.open(small) as copy:  # a compacted copy is a working, writable log
        assert [r.value for r in copy.scan("small")] == [b"x"]
        copy.append("small", b"y")


def test_backup_while_appending(log: eventlog.Log, tmp_path: Path) -> None:
    log.create_topic("t")
    stop = threading.Event()

    def writer() -> None:
        while not stop.is_set():
            log.append("t", b"x" * 100)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        path = log.backup(tmp_path / "b")
    finally:
        stop.set()
        thread.join()
    with eventlog.open(path, readonly=True) as copy:
        end = copy.end_offsets("t")[0]
        # A snapshot: a prefix of what the original holds, dense, nothing torn.
        assert [r.offset for r in copy.scan("t")] == list(range(end))
        assert end <= log.end_offsets("t")[0]


def test_backup_of_a_readonly_handle(log_path: Path, tmp_path: Path) -> None:
    with eventlog.open(log_path, durability="off") as log:
        log.create_topic("t")
        log.append("t", b"v")
    with eventlog.open(log_path, readonly=True) as ro:
        path = ro.backup(tmp_path / "b")
    with eventlog.open(path, readonly=True) as copy:
        assert [r.value for r in copy.scan("t")] == [b"v"]


@pytest.mark.parametrize("kind", ["file", "non-empty dir", "itself"])
def test_backup_never_overwrites(log: eventlog.Log, tmp_path: Path, kind: str) -> None:
    log.create_topic("t")
    if kind == "file":
        dest = tmp_path / "f"
        dest.write_text("keep me")
    elif kind == "non-empty dir":
        dest = tmp_path / "d"
        dest.mkdir()
        (dest / "x").write_text("keep me")
    else:
        dest = Path(log.path)
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(eventlog.InvalidArgumentError) as info:
        log.backup(dest)
    assert isinstance(info.value, ValueError)
    assert "empty directory" in str(info.value) or "own directory" in str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no temporary left


def test_backup_into_an_empty_directory(log: eventlog.Log, tmp_path: Path) -> None:
    log.create_topic("t")
    dest = tmp_path / "empty"
    dest.mkdir()
    log.backup(dest)
    with eventlog.open(dest, readonly=True) as copy:
        assert copy.list_topics() == ["t"]


def test_backup_bad_arguments_and_closed_log(log_path: Path, tmp_path: Path) -> None:
    log = eventlog.open(log_path, durability="off")
    with pytest.raises(eventlog.InvalidArgumentError):
        log.backup(123)  # type: ignore[arg-type]
    with pytest.raises(eventlog.InvalidArgumentError):
        log.backup(tmp_path / "b", compact="yes")  # type: ignore[arg-type]
    log.close()
    with pytest.raises(eventlog.LogClosedError):
        log.backup(tmp_path / "c")


def test_backup_reports_its_progress(log: eventlog.Log, tmp_path: Path) -> None:
    """progress(done, total) starts at 0, never goes back or past the total, and ends at
    (total, total); a non-callable is refused before anything is written."""
    log.create_topic("t", 2)
    for i in range(200):
        log.append("t", os.urandom(500), key=b"k%d" % i)
    calls: list[tuple[int, int]] = []
    lock = threading.Lock()

    def progress(done: int, total: int) -> None:
        with lock:
            calls.append((done, total))

    log.backup(tmp_path / "b", progress=progress)
    assert calls[0][0] == 0
    total = calls[0][1]
    assert total > 0
    assert all(t == total for _, t in calls)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
    assert all(0 <= d <= total for d, _ in calls)
    assert calls[-1] == (total, total)
    with eventlog.open(tmp_path / "b", readonly=True) as copy:
        assert sum(copy.end_offsets("t").values()) == 200
    with pytest.raises(eventlog.InvalidArgumentError, match="progress"):
        log.backup(tmp_path / "c", progress=5)  # type: ignore[arg-type]
    assert not (tmp_path / "c").exists()
