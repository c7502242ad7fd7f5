"""Damaged logs: truncated or empty data files, flipped bytes in stored record batches.

Every open and read of a damaged log runs in a subprocess (``tests/helpers/probe.py``), so
a crash (SIGBUS from mapping a truncated file, a segfault) fails the test instead of killing
pytest. The rule under test: damage gives a typed error (CorruptLogError), never a crash and
never a wrong answer; undamaged partitions keep reading correctly.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lmdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import eventlog

HELPERS = Path(__file__).parent / "helpers"
PROBE = HELPERS / "probe.py"
BATCH_HEADER_SIZE = 36
CODEC_ZSTD = 1


def probe(path: Path, spec: dict[str, Any]) -> Any:
    """Run tests/helpers/probe.py on ``path``; fail the test if the subprocess crashed."""
    proc = subprocess.run([sys.executable, str(PROBE), str(path), json.dumps(spec)],
                          capture_output=True, text=True, timeout=120, check=False)
    if proc.returncode < 0:
        pytest.fail(f"the probe process was killed by {signal.Signals(-proc.returncode).name}"
                    f"\n{proc.stderr}")
    assert proc.returncode == 0, f"the probe failed (exit {proc.returncode}):\n{proc.stderr}"
    return json.loads(proc.stdout)


@dataclass(frozen=True)
class StoredBatch:
    topic: str
    partition: int
    base: int
    count: int
    value: bytes
    at: tuple[int, ...]  # every file offset where the value's bytes are found

    def flip(self, position: int, mask: int) -> dict[str, Any]:
        return {"at": [a + position for a in self.at], "xor": mask}


@dataclass(frozen=True)
class Sample:
    """A log with known content, closed, plus where its batches are in data.mdb."""

    path: Path
    batches: tuple[StoredBatch, ...]
    baseline: dict[str, Any]  # probe dump of the undamaged log, per topic/partition

    def copy(self, dest: Path) -> Path:
        shutil.copytree(self.path, dest)
        return dest


PLAIN_PARTITIONS = 3
ZSTD_PARTITIONS = 2
BATCHES_PER_PARTITION = 3
RECORDS_PER_BATCH = 10


def marker(partition: int, batch: int, record: int) -> bytes:
    return b"<MARKER-plain-p%d-b%d-r%d>" % (partition, batch, record)


def _build(path: Path) -> None:
    with eventlog.open(path, durability="off") as log:
        log.create_topic("plain", PLAIN_PARTITIONS, config={"compression.type": "uncompressed"})
        log.create_topic("zstd", ZSTD_PARTITIONS, config={"compression.type": "zstd"})
        for b in range(BATCHES_PER_PARTITION):
            for p in range(PLAIN_PARTITIONS):
                log.append_batch("plain", [
                    eventlog.NewRecord(marker(p, b, r) + os.urandom(40), key=b"k%d" % r,
                                       partition=p,
                                       headers=[("n", b"%d" % r)] if r % 3 == 0 else None)
                    for r in range(RECORDS_PER_BATCH)])
            for p in range(ZSTD_PARTITIONS):
                log.append_batch("zstd", [
                    eventlog.NewRecord(b'{"partition": %d, "batch": %d, "record": %d, '
                                       b'"text": "%s"}' % (p, b, r, b"compressible " * 20),
                                       partition=p)
                    for r in range(RECORDS_PER_BATCH)])
        # Bulk, so that the file is many pages long (for the truncation tests).
        log.create_topic("bulk")
        for _ in range(4):
            log.append_columns("bulk", [os.urandom(1000) for _ in range(250)])
        log.sync()


def _locate(path: Path) -> tuple[StoredBatch, ...]:
    """Read every stored batch of "plain" and "zstd" with py-lmdb directly, and find its
    bytes in data.mdb."""
    with eventlog.open(path, readonly=True) as log:
        ids = {t: log.describe_topic(t).topic_id for t in ("plain", "zstd")}
    data = (path / "data.mdb").read_bytes()
    env = lmdb.open(str(path), max_dbs=16, readonly=True, lock=False)
    found = []
    try:
        db = env.open_db(b"batches", create=False)
        with env.begin(db=db) as txn:
            for topic, tid in ids.items():
                parts = PLAIN_PARTITIONS if topic == "plain" else ZSTD_PARTITIONS
                for p in range(parts):
                    for b in range(BATCHES_PER_PARTITION):
                        base = b * RECORDS_PER_BATCH
                        value = txn.get(struct.pack(">IIQ", tid, p, base))
                        assert value is not None, (topic, p, base)
                        at = []
                        start = data.find(value)
                        while start != -1:
                            at.append(start)
                            start = data.find(value, start + 1)
                        assert at, f"batch {topic}/{p}/{base} not found in data.mdb"
                        found.append(StoredBatch(topic, p, base, RECORDS_PER_BATCH,
                                                 bytes(value), tuple(at)))
    finally:
        env.close()
    return tuple(found)


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Sample:
    path = tmp_path_factory.mktemp("corruption") / "log"
    _build(path)
    batches = _locate(path)
    baseline = probe(path, {"dump": True})
    assert baseline["open"]["ok"]
    assert all(outcome["ok"] for outcome in baseline["dump"].values())
    return Sample(path, batches, baseline["dump"])


def _batch(sample: Sample, topic: str, partition: int, base: int) -> StoredBatch:
    (found,) = [b for b in sample.batches
                if (b.topic, b.partition, b.base) == (topic, partition, base)]
    return found


def assert_corrupt(outcome: dict[str, Any], batch: StoredBatch) -> None:
    assert not outcome["ok"], f"damaged batch {batch.topic}/{batch.partition}/{batch.base} " \
                              f"was read without an error"
    assert outcome["error"] == "CorruptLogError", outcome
    assert outcome["topic"] == batch.topic
    assert outcome["partition"] == batch.partition
    assert outcome["offset"] is not None
    assert batch.base <= outcome["offset"] < batch.base + batch.count, outcome


def assert_only_batch_damaged(dump: dict[str, Any], baseline: dict[str, Any],
                              batch: StoredBatch) -> None:
    damaged = f"{batch.topic}/{batch.partition}"
    assert set(dump) == set(baseline)
    for name, outcome in dump.items():
        if name == damaged:
            assert_corrupt(outcome, batch)
        else:
            assert outcome == baseline[name], f"undamaged partition {name} reads differently"


# --- truncated and empty data files -------------------------------------------------


TRUNCATIONS = {
    "half": lambda size: size // 2,
    "three-pages": lambda size: 3 * 4096,
    "one-page": lambda size: 4096,
    "one-page-short": lambda size: size - 4096,
    "inside-first-meta-page": lambda size: 100,
}


@pytest.mark.parametrize("readonly", [False, True])
@pytest.mark.parametrize("cut", sorted(TRUNCATIONS))
def test_truncated_data_file_gives_corrupt_log_error(sample: Sample, tmp_path: Path,
                                                     cut: str, readonly: bool) -> None:
    path = sample.copy(tmp_path / "log")
    data = path / "data.mdb"
    size = data.stat().st_size
    assert size > 1 << 20
    new_size = TRUNCATIONS[cut](size)
    os.truncate(data, new_size)
    result = probe(path, {"open": {"readonly": readonly}, "dump": True})
    assert result["open"]["ok"] is False, "a truncated log opened"
    assert result["open"]["error"] == "CorruptLogError", result
    assert data.stat().st_size == new_size  # nothing was "repaired" or re-created


@pytest.mark.parametrize("readonly", [False, True])
def test_empty_data_file_where_a_log_existed(sample: Sample, tmp_path: Path,
                                             readonly: bool) -> None:
    path = sample.copy(tmp_path / "log")
    os.truncate(path / "data.mdb", 0)
    result = probe(path, {"open": {"readonly": readonly}})
    assert result["open"]["ok"] is False, "an emptied log silently opened as a new one"
    assert result["open"]["error"] == "CorruptLogError", result
    assert (path / "data.mdb").stat().st_size == 0


def test_truncated_file_is_refused_in_process_too(sample: Sample, tmp_path: Path) -> None:
    # The check happens before LMDB maps the file, so it is safe to do here as well.
    path = sample.copy(tmp_path / "log")
    os.truncate(path / "data.mdb", (path / "data.mdb").stat().st_size // 2)
    with pytest.raises(eventlog.CorruptLogError):
        eventlog.open(path)
    with pytest.raises(OSError, match="truncated"):  # StorageError is also an OSError
        eventlog.open(path, readonly=True)


# --- flipped bytes ----------------------------------------------------------------


def test_flipped_byte_in_an_uncompressed_batch(sample: Sample, tmp_path: Path) -> None:
    path = sample.copy(tmp_path / "log")
    target = marker(1, 1, 5)
    data = (path / "data.mdb").read_bytes()
    hits = []
    start = data.find(target)
    while start != -1:
        hits.append(start)
        start = data.find(target, start + 1)
    assert hits, "the marker is not stored verbatim (was the topic compressed?)"
    batch = _batch(sample, "plain", 1, RECORDS_PER_BATCH)
    assert batch.value[1] & 0x03 != CODEC_ZSTD
    flip = {"at": [h + len(target) // 2 for h in hits], "xor": 0x20}
    result = probe(path, {
        "flips": [flip],
        "dump": True,
        "scan": ["plain", "zstd"],
        "reads": [["plain", 1, 0, RECORDS_PER_BATCH],   # the batch before: intact
                  ["plain", 1, 10, 5],                   # the damaged batch
                  ["plain", 1, 15, 100],                 # from inside the damaged batch
                  ["plain", 1, 0, 100],                  # across it
                  ["plain", 1, 20, 100],                 # the batch after: intact
                  ["plain", 0, 10, 10]],                 # same place, other partition
    })[0]
    assert result["open"]["ok"], "a flipped byte inside a record must not stop the open"
    before, damaged, inside, across, after, other = result["reads"]
    assert before["ok"]
    assert before["count"] == RECORDS_PER_BATCH
    assert [bytes.fromhex(v)[:len(marker(1, 0, 0))] for v in before["values"]] == \
        [marker(1, 0, r) for r in range(RECORDS_PER_BATCH)]
    for outcome in (damaged, inside, across):
        assert_corrupt(outcome, batch)
    assert after["ok"]
    assert after["count"] == RECORDS_PER_BATCH
    assert other["ok"]
    assert other["count"] == RECORDS_PER_BATCH
    plain_scan, zstd_scan = result["scan"]
    assert_corrupt(plain_scan, batch)
    assert zstd_scan["ok"]
    assert zstd_scan["count"] == ZSTD_PARTITIONS * 30
    assert_only_batch_damaged(result["dump"], sample.baseline, batch)


POSITIONS = {
    "format byte": lambda n: 0,
    "flags": lambda n: 1,
    "record count": lambda n: 4,
    "last offset delta": lambda n: 8,
    "max timestamp": lambda n: 20,
    "uncompressed size": lambda n: 28,
    "crc": lambda n: 33,
    "first payload byte": lambda n: BATCH_HEADER_SIZE,
    "middle": lambda n: n // 2,
    "last byte": lambda n: n - 1,
}


@pytest.mark.parametrize("where", list(POSITIONS))
def test_flipped_byte_in_a_zstd_batch(sample: Sample, tmp_path: Path, where: str) -> None:
    batch = _batch(sample, "zstd", 0, RECORDS_PER_BATCH)
    assert batch.value[1] & 0x03 == CODEC_ZSTD, "the batch is not zstd-compressed"
    path = sample.copy(tmp_path / "log")
    position = POSITIONS[where](len(batch.value))
    (result,) = probe(path, {"flips": [batch.flip(position, 0x01)], "dump": True,
                             "reads": [["zstd", 0, 0, 100], ["zstd", 0, 20, 100]]})
    assert result["open"]["ok"]
    across, after = result["reads"]
    assert_corrupt(across, batch)
    assert after["ok"]
    assert after["count"] == RECORDS_PER_BATCH
    assert_only_batch_damaged(result["dump"], sample.baseline, batch)


def test_every_batch_is_located_exactly(sample: Sample) -> None:
    # The hypothesis test below relies on this: each stored value is found in the file,
    # and a found copy is the stored value byte for byte.
    data = (sample.path / "data.mdb").read_bytes()
    assert len(sample.batches) == (PLAIN_PARTITIONS + ZSTD_PARTITIONS) * BATCHES_PER_PARTITION
    for b in sample.batches:
        for at in b.at:
            assert data[at:at + len(b.value)] == b.value
        codec = b.value[1] & 0x03
        assert codec == (CODEC_ZSTD if b.topic == "zstd" else 0)


@settings(max_examples=10, deadline=None)
@given(flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 10**6),
                                st.integers(1, 255)), min_size=1, max_size=20))
def test_any_flipped_byte_in_a_batch_is_detected(sample: Sample,
                                                 flips: list[tuple[int, int, int]]) -> None:
    """A CRC-32 over the whole stored value (header, payload, and the key) detects every
    single-byte change: each flip must give CorruptLogError for exactly its partition, and
    every other partition must still read exactly what was written."""
    chosen = [(sample.batches[i % len(sample.batches)], pos, mask) for i, pos, mask in flips]
    with tempfile.TemporaryDirectory() as tmp:
        path = sample.copy(Path(tmp) / "log")
        results = probe(path, {
            "flips": [batch.flip(pos % len(batch.value), mask) for batch, pos, mask in chosen],
            "dump": True})
    assert len(results) == len(chosen)
    for (batch, _pos, _mask), result in zip(chosen, results, strict=True):
        assert result["open"]["ok"]
        assert_only_batch_damaged(result["dump"], sample.baseline, batch)
