"""Opening a log: creation, refusing what is not a log, format checks, stale reader slots,
O(1) open time and conflicting options within one process."""

from __future__ import annotations

import hashlib
import os
import statistics
import time
from pathlib import Path

import lmdb
import pytest
from helper_modules import load_helper

import eventlog

HELPERS = Path(__file__).parent / "helpers"


procs = load_helper("procs")


def snapshot(root: Path) -> dict[str, str]:
    """Every path under ``root`` with a digest of its content (directories: "dir")."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        out[rel] = "dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def make_log(path: Path, records: int = 3) -> None:
    with eventlog.open(path) as log:
        log.create_topic("t")
        for i in range(records):
            log.append("t", b"value %d" % i)


# --- creating -------------------------------------------------------------------


def test_missing_directory_is_created_with_parents(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "c"
    with eventlog.open(path) as log:
        log.create_topic("t")
        log.append("t", b"x")
    assert (path / "data.mdb").is_file()
    with eventlog.open(path, readonly=True) as log:
        assert [r.value for r in log.read("t", 0)] == [b"x"]


def test_empty_existing_directory_becomes_a_log(tmp_path: Path) -> None:
    path = tmp_path / "empty"
    path.mkdir()
    with eventlog.open(path) as log:
        assert log.list_topics() == []
    with eventlog.open(path, create=False) as log:
        assert log.list_topics() == []


def test_readonly_open_of_missing_path_creates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "missing"
    with pytest.raises(eventlog.LogNotFoundError):
        eventlog.open(path, readonly=True)
    assert not path.exists()
    with pytest.raises(FileNotFoundError):  # the builtin a user would catch
        eventlog.open(path, readonly=True)


def test_create_false_on_missing_path_or_empty_directory(tmp_path: Path) -> None:
    with pytest.raises(eventlog.LogNotFoundError):
        eventlog.open(tmp_path / "missing", create=False)
    assert not (tmp_path / "missing").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(eventlog.LogNotFoundError):
        eventlog.open(empty, create=False)
    assert list(empty.iterdir()) == []
    with pytest.raises(eventlog.LogNotFoundError):
        eventlog.open(empty, readonly=True)
    assert list(empty.iterdir()) == []


# --- refusing what is not a log -----------------------------------------------------


@pytest.mark.parametrize("readonly", [False, True])
def test_directory_with_other_files_is_not_a_log_and_is_left_alone(tmp_path: Path,
                                                                   readonly: bool) -> None:
    path = tmp_path / "project"
    path.mkdir()
    (path / "notes.txt").write_text("my notes")
    (path / "sub").mkdir()
    (path / "sub" / "data.bin").write_bytes(os.urandom(100))
    before = snapshot(path)
    with pytest.raises(eventlog.NotALogError):
        eventlog.open(path, readonly=readonly)
    assert snapshot(path) == before


def test_directory_with_only_a_lock_file_is_left_alone(tmp_path: Path) -> None:
    # A stray lock.mdb next to other files is still "other files and no log".
    path = tmp_path / "d"
    path.mkdir()
    (path / "lock.mdb").write_bytes(b"\0" * 100)
    (path / "other").write_text("x")
    before = snapshot(path)
    with pytest.raises(eventlog.NotALogError):
        eventlog.open(path)
    assert snapshot(path) == before


@pytest.mark.parametrize("readonly", [False, True])
def test_regular_file_is_not_a_log(tmp_path: Path, readonly: bool) -> None:
    path = tmp_path / "file.db"
    path.write_bytes(b"not a directory")
    with pytest.raises(eventlog.NotALogError):
        eventlog.open(path, readonly=readonly)
    assert path.read_bytes() == b"not a directory"
    with pytest.raises(eventlog.StorageError):
        eventlog.open(path, create=False)


@pytest.mark.parametrize("shape", ["main-db-only", "other-named-dbs", "meta-without-format"])
def test_foreign_lmdb_database_is_not_a_log(tmp_path: Path, shape: str) -> None:
    path = tmp_path / "foreign"
    env = lmdb.open(str(path), max_dbs=16)
    with env.begin(write=True) as txn:
        txn.put(b"hello", b"world")
    if shape == "other-named-dbs":
        db = env.open_db(b"users")
        with env.begin(write=True) as txn:
            txn.put(b"alice", b"1", db=db)
    if shape == "meta-without-format":
        meta = env.open_db(b"meta")
        with env.begin(write=True) as txn:
            txn.put(b"something", b"else", db=meta)
    env.close()
    before = digest(path / "data.mdb")
    for readonly in (False, True):
        with pytest.raises(eventlog.NotALogError):
            eventlog.open(path, readonly=readonly)
    assert digest(path / "data.mdb") == before
    # The foreign database is intact and still opens with LMDB.
    env = lmdb.open(str(path), max_dbs=16, readonly=True)
    with env.begin() as txn:
        assert txn.get(b"hello") == b"world"
    env.close()


@pytest.mark.parametrize("readonly", [False, True])
def test_newer_format_is_refused_and_left_unchanged(tmp_path: Path, readonly: bool) -> None:
    path = tmp_path / "log"
    make_log(path)
    env = lmdb.open(str(path), max_dbs=16)
    meta = env.open_db(b"meta", create=False)
    with env.begin(write=True) as txn:
        assert txn.get(b"format", db=meta) is not None
        txn.put(b"format", b"999", db=meta)
    env.close()
    before = digest(path / "data.mdb")
    with pytest.raises(eventlog.UnsupportedFormatError) as info:
        eventlog.open(path, readonly=readonly)
    assert "999" in str(info.value)
    assert isinstance(info.value, eventlog.StorageError)
    assert digest(path / "data.mdb") == before


# --- stale reader slots -----------------------------------------------------------


def _reader_pids(log: eventlog.Log) -> set[int]:
    text = log._storage.env.readers()
    pids = set()
    for line in text.splitlines()[1:]:
        fields = line.split()
        if fields and fields[0].isdigit():
            pids.add(int(fields[0]))
    return pids


def test_stale_reader_slots_of_killed_processes_are_cleared_on_open(tmp_path: Path) -> None:
    path = str(tmp_path / "log")
    make_log(Path(path))
    # A second process keeps the environment open throughout, so LMDB does not simply
    # reset its lock table when the killed process was the last user.
    holder = procs.Agent()
    victim = procs.Agent()
    try:
        holder.call("open", path=path)
        holder.call("hold_read")  # a live reader, which must survive the clean-up
        victim.call("open", path=path)
        victim.call("read_all", topic="t", partition=0)
        victim.call("hold_read")  # mid-read when it dies
        victim_pid = victim.call("pid")
        assert str(victim_pid) in holder.call("readers")
        victim.kill()
        # The dead process's slot is still in the table ...
        assert str(victim_pid) in holder.call("readers")
        # ... until a process opens the log.
        with eventlog.open(path) as log:
            assert victim_pid not in _reader_pids(log)
            assert holder.call("pid") in _reader_pids(log)
            assert [r.value for r in log.read("t", 0)] == [b"value 0", b"value 1",
                                                           b"value 2"]
            assert log._storage.env.reader_check() == 0  # nothing stale left to clear
        assert holder.call("end_offsets", topic="t") == {"0": 3}
    finally:
        holder.kill()
        victim.kill()


# --- open time --------------------------------------------------------------------


def _median_open_close(paths: list[Path], runs: int) -> list[float]:
    times: list[list[float]] = [[] for _ in paths]
    for _ in range(runs):
        for i, path in enumerate(paths):  # interleaved, so that load affects both alike
            start = time.perf_counter()
            eventlog.open(path, durability="off").close()
            times[i].append(time.perf_counter() - start)
    return [statistics.median(t) for t in times]


def test_open_time_does_not_grow_with_log_size(tmp_path: Path) -> None:
    small, big = tmp_path / "small", tmp_path / "big"
    for path, count in ((small, 1_000), (big, 200_000)):
        with eventlog.open(path, durability="off") as log:
            log.create_topic("t", partitions=4)
            values = [b"%08d some payload for the record" % i for i in range(1_000)]
            keys = [b"key-%d" % i for i in range(1_000)]
            for _ in range(count // 1_000):
                log.append_columns("t", values, keys=keys)
            assert sum(log.end_offsets("t").values()) == count
    assert (big / "data.mdb").stat().st_size > 10 * (small / "data.mdb").stat().st_size
    small_t, big_t = _median_open_close([small, big], runs=15)
    # A complexity check, not a timing one: replaying or scanning 200x the records on open
    # would be far more than 5x slower.
    assert big_t < 5 * small_t, (small_t, big_t)


# --- conflicting options in one process ---------------------------------------------


def test_same_path_with_different_durability_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "log"
    with eventlog.open(path, durability="full") as log:
        with pytest.raises(eventlog.InvalidArgumentError):
            eventlog.open(path, durability="off")
        with pytest.raises(eventlog.InvalidArgumentError):
            eventlog.open(str(path) + "/.", durability="normal")  # same directory, other spelling
        # The same options share the environment.
        with eventlog.open(path, durability="full") as again:
            again.create_topic("t")
        assert log.list_topics() == ["t"]
    # Once closed, another durability is fine.
    with eventlog.open(path, durability="off") as log:
        assert log.durability == "off"


def test_readonly_then_writable_in_one_process_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "log"
    make_log(path)
    with eventlog.open(path, readonly=True) as ro:
        with pytest.raises(eventlog.InvalidArgumentError):
            eventlog.open(path)
        assert [r.value for r in ro.read("t", 0)][:1] == [b"value 0"]
        with pytest.raises(eventlog.ReadOnlyLogError):
            ro.append("t", b"nope")
    with eventlog.open(path) as rw:
        assert rw.append("t", b"yes").offset == 3
