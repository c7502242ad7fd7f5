"""Benchmark eventlog against stdlib sqlite3 and raw py-lmdb, in one process and one run.

Run it with ``make bench`` (1,000,000 records, a few minutes) or ``make bench QUICK=1``
(100,000 records and 300 single appends, under a minute). It prints a table and writes
``benchmarks/results.json``: a list whose first object (``"workload": "machine"``) describes
the machine and the run, and then one object per table row. docs/performance.md explains the
method and records a run.

Three implementations do the same job in each workload:

* **eventlog**, through its public API only.
* **sqlite3** from the standard library, used the way a careful user would: WAL mode, one
  table ``records(topic TEXT, partition INTEGER, offset INTEGER, ts INTEGER, key BLOB,
  value BLOB, PRIMARY KEY (topic, partition, offset)) WITHOUT ROWID``. Rows of ~130 bytes
  under a composite key are the case SQLite's documentation recommends WITHOUT ROWID for:
  the rows live in the primary-key B-tree, so there is no second index to maintain.
* **raw py-lmdb**, the ceiling of eventlog's design without its features (no topics, no
  validation, no checksums, no partition state, no time index): one LMDB entry per
  1,000-record batch holding the key and value lengths (``array("I")``) and the keys and
  values concatenated, compressed with zstd at the level eventlog uses by default.

Data: N records (1,000,000; 100,000 with ``--quick``) of ~100-byte JSON order events
(``{"order_id": ..., "customer": ..., "amount": ..., "items": [...], "status": ...}``,
fields varying) with 16-byte keys (random 64-bit ids in hex), built from a fixed seed
before anything is timed.

Durability classes. Each side is configured for the same guarantee, named by eventlog's
modes (``DURABILITY`` below):

* ``full``: survives power loss. eventlog ``durability="full"``, sqlite3 WAL
  ``synchronous=FULL``, LMDB ``sync=True, metasync=True``.
* ``normal``: survives a process crash; power loss may lose the last commits but does not
  damage the store. eventlog ``"normal"``, sqlite3 WAL ``synchronous=NORMAL``, LMDB
  ``metasync=False``. (sqlite3 syncs only at checkpoints here; LMDB still flushes data
  pages on every commit.)
* ``off``: survives a process crash; an OS crash or power loss may lose recent commits or
  damage the store. eventlog ``"off"``, sqlite3 ``synchronous=OFF``, LMDB ``sync=False``.

Workloads. Throughput figures are the best of ``--repeat`` rounds (3; 1 with ``--quick``);
in each round the sides take turns, each on a fresh store, so that a disturbance of a
shared machine hits every side alike.

1. **Batched append, record API**, in each class of ``--durability`` (default
   ``normal,off,full``): ``log.append_batch(topic, [NewRecord(value=v, key=k), ...])``,
   1,000 records per call, into a 1-partition topic. Only the append calls are timed: the
   NewRecord lists are built beforehand, as sqlite3 gets pre-built row tuples (offsets
   assigned by the caller) and the ceiling pre-built key and value lists. sqlite3:
   ``executemany`` of 1,000 rows between ``BEGIN`` and ``COMMIT``. Ceiling: encode,
   compress, one ``put`` and one commit per batch.
2. **Batched append, bulk path**: ``log.append_columns(topic, values, keys=keys)``, 1,000
   per call, compared with the same sqlite3 and ceiling rounds as workload 1.
   With ``--partitions P`` (default 4) both APIs are also run, in class ``off``, into a
   P-partition topic, so that every key is hashed (murmur2): what partitioning costs.
3. **Ordered read, record API** of the first class's stores: ``log.read(topic, 0, offset,
   max_records=500)`` until the end (Record objects). sqlite3: the paging consumer
   ``SELECT offset, ts, key, value FROM records WHERE topic=? AND partition=? AND offset
   >= ? ORDER BY offset LIMIT 500`` + ``fetchall()``. Ceiling: one read transaction over
   the batch entries; decompress each and split it into bytes objects (keys and values).
4. **Bulk read**: ``log.read_columns(topic, 0, offset, max_records=10_000)`` until the end,
   compared with the same sqlite3 paging consumer and ceiling as workload 3.
5. **Durable single appends, one thread**, class ``full``: 2,000 (300 with ``--quick``)
   ``log.append(topic, value, key=key)``. sqlite3: autocommit, one ``INSERT ... SELECT
   COALESCE(MAX(offset) + 1, 0) ...`` per record (the database assigns the offset, as it
   must once several writers share the table). Ceiling: one LMDB write transaction (one
   ``put``) per record.
6. **Durable single appends, 8 threads**, class ``full``: the same appends split over 8
   threads. eventlog: the threads share one Log (group commit: one transaction and one
   fsync serve every appender waiting). sqlite3: a connection per thread, ``busy_timeout``
   30 s. No ceiling column (raw LMDB has no group commit); its 8-thread figure is in the
   notes.
7. **Open time**: ``eventlog.open()`` + ``close()`` of an empty log (one empty topic) and of
   the N-record log (the target row), and the same with a first
   ``read(topic, 0, 0, max_records=1)`` in between, also for a log holding one 1,000-record
   batch: the median of 21 cycles each, the sides taking turns. Every handle is
   closed before the next cycle, so each cycle really opens the LMDB environment. sqlite3:
   connect + the first page query + close; ceiling: ``lmdb.open`` + first entry + close.
8. **File size**: space allocated on disk (``du``) by the first class's stores: the log
   directory, the sqlite3 database (plus ``-wal`` if present; the connection is closed, so
   it has been checkpointed) and the ceiling's LMDB directory.
9. **Memory**: ``tracemalloc`` peak of the Python heap while appending the N records
   (``append_batch`` of 1,000, each list built inside the loop) and then scanning them
   (``for r in log.scan(topic)``). The pre-built inputs were allocated before tracing
   started and do not count.

Ratios are "higher is better": for throughput eventlog / other; for times and sizes
other / eventlog (so 2.0 means eventlog is twice as fast, or half the size).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import shutil
import sqlite3
import statistics
import struct
import sys
import tempfile
import threading
import time
import tracemalloc
from array import array
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from itertools import accumulate, pairwise
from pathlib import Path
from typing import Any, Literal

import lmdb
import zstandard

import eventlog
from eventlog import NewRecord

HERE = Path(__file__).resolve().parent
RESULTS_PATH = HERE / "results.json"
TOPIC = "orders"
BATCH = 1_000
READ_PAGE = 500
COLUMNS_PAGE = 10_000
THREADS = 8
OPEN_CYCLES = 21
MEMORY_LIMIT_MB = 50.0
SEED = 20240601
# The zstd level eventlog compresses with by default; the ceiling uses the same.
DEFAULT_ZSTD_LEVEL: int = eventlog.TopicConfig().compression_zstd_level

DurabilityMode = Literal["full", "normal", "off"]


@dataclass(frozen=True)
class Durability:
    """One durability class, as each side spells it."""

    name: str
    eventlog: DurabilityMode  # eventlog.open(durability=...)
    sqlite: str  # PRAGMA synchronous
    lmdb_sync: bool
    lmdb_metasync: bool
    survives: str


DURABILITY = {
    "off": Durability("off", "off", "OFF", False, False,
                      "a process crash (an OS crash or power loss may lose recent commits or "
                      "damage the store)"),
    "normal": Durability("normal", "normal", "NORMAL", True, False,
                         "a process crash (power loss may lose the last commits, never "
                         "damages the store)"),
    "full": Durability("full", "full", "FULL", True, True,
                       "power loss (every commit is fsynced before it is acknowledged)"),
}


# ----------------------------------------------------------------------------- results


@dataclass
class Result:
    """One row of the results table (and one object in results.json)."""

    workload: str
    unit: str
    eventlog: float | None
    sqlite3: float | None
    ceiling: float | None
    higher_is_better: bool = True
    target: str | None = None
    met: bool | None = None
    note: str = ""
    ratio_vs_sqlite3: float | None = field(init=False)
    ratio_vs_ceiling: float | None = field(init=False)

    def __post_init__(self) -> None:
        self.ratio_vs_sqlite3 = self._ratio(self.sqlite3)
        self.ratio_vs_ceiling = self._ratio(self.ceiling)

    def _ratio(self, other: float | None) -> float | None:
        if other is None or self.eventlog is None or not other or not self.eventlog:
            return None
        return self.eventlog / other if self.higher_is_better else other / self.eventlog

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        del out["higher_is_better"]
        return out


def at_least(ratio: float | None, minimum: float) -> bool:
    return ratio is not None and ratio >= minimum


# ----------------------------------------------------------------------------- data

_STATUSES = (b"created", b"paid", b"packed", b"shipped", b"delivered", b"cancelled")


def make_dataset(n: int, seed: int = SEED) -> tuple[list[bytes], list[bytes]]:
    """``n`` JSON order events (~100 bytes, fields vary) and 16-byte keys."""
    rng = random.Random(seed)
    values: list[bytes] = []
    keys: list[bytes] = []
    for i in range(n):
        items = b", ".join(b"%d" % rng.randrange(10_000, 100_000)
                           for _ in range(rng.randint(1, 3)))
        values.append(
            b'{"order_id": %d, "customer": %d, "amount": %d.%02d, "items": [%s], '
            b'"status": "%s"}' % (1_000_000 + i, rng.randrange(1, 200_000), rng.randrange(1, 500),
                                  rng.randrange(100), items, rng.choice(_STATUSES)))
        keys.append(b"%016x" % rng.getrandbits(64))
    return values, keys


def chunks(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def du(*paths: Path) -> int:
    """Bytes allocated on disk for these files or directories (missing ones count 0)."""
    total = 0
    for path in paths:
        if path.is_dir():
            total += sum(p.stat().st_blocks * 512 for p in path.rglob("*") if p.is_file())
        elif path.exists():
            total += path.stat().st_blocks * 512
    return total


def timed(fn: Callable[[], object]) -> float:
    """Seconds taken by ``fn()`` (after a full garbage collection)."""
    gc.collect()
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


Work = Callable[[Any, Sequence[tuple[bytes, bytes]]], None]


def run_threads(work: Work, handles: Sequence[Any], data: Sequence[tuple[bytes, bytes]]) -> float:
    """Split ``data`` over one thread per handle; seconds from start to the last finishing."""
    parts = [data[i::len(handles)] for i in range(len(handles))]
    if len(handles) == 1:
        return timed(lambda: work(handles[0], parts[0]))
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(handles) + 1)

    def body(handle: Any, part: Sequence[tuple[bytes, bytes]]) -> None:
        barrier.wait()
        try:
            work(handle, part)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=body, args=(h, p)) for h, p in zip(handles, parts,
                                                                          strict=True)]
    for t in threads:
        t.start()
    gc.collect()
    barrier.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise errors[0]
    return elapsed


# ----------------------------------------------------------------------------- sqlite3

SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    topic TEXT NOT NULL,
    partition INTEGER NOT NULL,
    offset INTEGER NOT NULL,
    ts INTEGER NOT NULL,
    key BLOB,
    value BLOB,
    PRIMARY KEY (topic, partition, offset)
) WITHOUT ROWID
"""
SQLITE_FILE = "records.db"
SQLITE_INSERT = "INSERT INTO records VALUES (?, ?, ?, ?, ?, ?)"
SQLITE_INSERT_NEXT = (
    "INSERT INTO records SELECT ?, ?, COALESCE(MAX(offset) + 1, 0), ?, ?, ? "
    "FROM records WHERE topic = ? AND partition = ?")
SQLITE_PAGE = ("SELECT offset, ts, key, value FROM records "
               "WHERE topic = ? AND partition = ? AND offset >= ? ORDER BY offset LIMIT ?")


def sqlite_connect(store: Path, synchronous: str) -> sqlite3.Connection:
    """A connection to the database in directory ``store``, set up as a careful user would."""
    conn = sqlite3.connect(store / SQLITE_FILE, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute("PRAGMA busy_timeout=30000")
    conn.execute(SQLITE_SCHEMA)
    return conn


def sqlite_append(store: Path, row_batches: Sequence[Sequence[tuple[Any, ...]]],
                  synchronous: str) -> float:
    conn = sqlite_connect(store, synchronous)

    def run() -> None:
        for rows in row_batches:
            conn.execute("BEGIN")
            conn.executemany(SQLITE_INSERT, rows)
            conn.execute("COMMIT")

    try:
        return timed(run)
    finally:
        conn.close()


def sqlite_read(store: Path, n: int) -> float:
    conn = sqlite_connect(store, "NORMAL")

    def run() -> None:
        offset = count = 0
        while True:
            rows = conn.execute(SQLITE_PAGE, (TOPIC, 0, offset, READ_PAGE)).fetchall()
            if not rows:
                break
            count += len(rows)
            offset = rows[-1][0] + 1
        assert count == n, (count, n)

    try:
        return timed(run)
    finally:
        conn.close()


def sqlite_single(store: Path, data: Sequence[tuple[bytes, bytes]], threads: int) -> float:
    conns = [sqlite_connect(store, "FULL") for _ in range(threads)]

    def work(conn: sqlite3.Connection, part: Sequence[tuple[bytes, bytes]]) -> None:
        for key, value in part:
            conn.execute(SQLITE_INSERT_NEXT, (TOPIC, 0, time.time_ns() // 1_000_000, key,
                                              value, TOPIC, 0))

    try:
        elapsed = run_threads(work, conns, data)
        (count,) = conns[0].execute("SELECT COUNT(DISTINCT offset) FROM records").fetchone()
        assert count == len(data), (count, len(data))
        return elapsed
    finally:
        for conn in conns:
            conn.close()


def sqlite_open_cycle(store: Path, first_read: bool = True) -> float:
    start = time.perf_counter()
    conn = sqlite3.connect(store / SQLITE_FILE, isolation_level=None)
    if first_read:
        conn.execute(SQLITE_PAGE, (TOPIC, 0, 0, 1)).fetchall()
    else:
        conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()  # reads the schema
    conn.close()
    return time.perf_counter() - start


# ----------------------------------------------------------------------------- raw LMDB

BATCH_HEADER = struct.Struct("<Iq")  # record count, timestamp
OFFSET_KEY = struct.Struct(">Q")


def lmdb_env(path: Path, *, sync: bool, metasync: bool) -> lmdb.Environment:
    return lmdb.open(str(path), map_size=1 << 34, sync=sync, metasync=metasync)


def lmdb_encode(keys: Sequence[bytes], values: Sequence[bytes], ts: int,
                comp: zstandard.ZstdCompressor) -> bytes:
    payload = b"".join((array("I", map(len, keys)).tobytes(),
                        array("I", map(len, values)).tobytes(), *keys, *values))
    return BATCH_HEADER.pack(len(values), ts) + comp.compress(payload)


def lmdb_decode(stored: bytes,
                dec: zstandard.ZstdDecompressor) -> tuple[list[bytes], list[bytes]]:
    count, _ts = BATCH_HEADER.unpack_from(stored)
    payload = dec.decompress(stored[BATCH_HEADER.size:])
    lengths = array("I")
    lengths.frombytes(payload[:8 * count])
    bounds = list(accumulate(lengths, initial=8 * count))
    items = [payload[a:b] for a, b in pairwise(bounds)]
    return items[:count], items[count:]


def lmdb_append(path: Path, key_batches: Sequence[Sequence[bytes]],
                value_batches: Sequence[Sequence[bytes]], sync: bool, metasync: bool,
                level: int = DEFAULT_ZSTD_LEVEL) -> float:
    env = lmdb_env(path, sync=sync, metasync=metasync)
    comp = zstandard.ZstdCompressor(level=level)

    def run() -> None:
        base = 0
        for keys, values in zip(key_batches, value_batches, strict=True):
            stored = lmdb_encode(keys, values, time.time_ns() // 1_000_000, comp)
            with env.begin(write=True) as txn:
                txn.put(OFFSET_KEY.pack(base), stored)
            base += len(values)

    try:
        return timed(run)
    finally:
        env.close()


def lmdb_read(path: Path, n: int) -> float:
    env = lmdb_env(path, sync=False, metasync=False)
    dec = zstandard.ZstdDecompressor()

    def run() -> None:
        count = 0
        with env.begin() as txn:
            for _key, stored in txn.cursor():
                _keys, values = lmdb_decode(stored, dec)
                count += len(values)
        assert count == n, (count, n)

    try:
        return timed(run)
    finally:
        env.close()


def lmdb_single(path: Path, data: Sequence[tuple[bytes, bytes]], threads: int) -> float:
    env = lmdb_env(path, sync=True, metasync=True)
    counter = iter(range(len(data)))  # next() on a range iterator is atomic under the GIL

    def work(_env: lmdb.Environment, part: Sequence[tuple[bytes, bytes]]) -> None:
        for key, value in part:
            with _env.begin(write=True) as txn:
                txn.put(OFFSET_KEY.pack(next(counter)), key + value)

    try:
        elapsed = run_threads(work, [env] * threads, data)
        assert env.stat()["entries"] == len(data)
        return elapsed
    finally:
        env.close()


def lmdb_open_cycle(path: Path, first_read: bool = True) -> float:
    start = time.perf_counter()
    env = lmdb.open(str(path), readonly=True)
    if first_read:
        with env.begin() as txn:
            txn.cursor().first()
    env.close()
    return time.perf_counter() - start


# ----------------------------------------------------------------------------- eventlog


def el_create(path: Path, durability: DurabilityMode, partitions: int = 1,
              level: int = DEFAULT_ZSTD_LEVEL) -> None:
    with eventlog.open(path, durability=durability) as log:
        log.create_topic(TOPIC, partitions, compression_zstd_level=level)


def el_append_batch(path: Path, record_batches: Sequence[list[NewRecord]],
                    durability: DurabilityMode, partitions: int = 1,
                    level: int = DEFAULT_ZSTD_LEVEL) -> float:
    el_create(path, durability, partitions, level)
    with eventlog.open(path, durability=durability) as log:

        def run() -> None:
            for records in record_batches:
                log.append_batch(TOPIC, records)

        return timed(run)


def el_append_columns(path: Path, key_batches: Sequence[Sequence[bytes]],
                      value_batches: Sequence[Sequence[bytes]], durability: DurabilityMode,
                      partitions: int = 1, level: int = DEFAULT_ZSTD_LEVEL) -> float:
    el_create(path, durability, partitions, level)
    with eventlog.open(path, durability=durability) as log:

        def run() -> None:
            for keys, values in zip(key_batches, value_batches, strict=True):
                log.append_columns(TOPIC, values, keys=keys)

        return timed(run)


def el_read(path: Path, n: int) -> float:
    with eventlog.open(path) as log:

        def run() -> None:
            offset = count = 0
            while True:
                page = log.read(TOPIC, 0, offset, max_records=READ_PAGE)
                if not page:
                    break
                count += len(page)
                offset = page[-1].offset + 1
            assert count == n, (count, n)

        return timed(run)


def el_read_columns(path: Path, n: int) -> float:
    with eventlog.open(path) as log:

        def run() -> None:
            offset = count = 0
            while True:
                cols = log.read_columns(TOPIC, 0, offset, max_records=COLUMNS_PAGE)
                if not cols:
                    break
                count += len(cols)
                offset = cols.next_offset
            assert count == n, (count, n)

        return timed(run)


def el_single(path: Path, data: Sequence[tuple[bytes, bytes]], threads: int) -> float:
    el_create(path, "full")
    with eventlog.open(path, durability="full") as log:

        def work(log: eventlog.Log, part: Sequence[tuple[bytes, bytes]]) -> None:
            for key, value in part:
                log.append(TOPIC, value, key=key)

        elapsed = run_threads(work, [log] * threads, data)
        assert log.end_offsets(TOPIC) == {0: len(data)}
        return elapsed


def el_open_cycle(path: Path, first_read: bool = True) -> float:
    start = time.perf_counter()
    log = eventlog.open(path)
    if first_read:
        log.read(TOPIC, 0, 0, max_records=1)
    log.close()
    return time.perf_counter() - start


def el_memory(path: Path, keys: Sequence[bytes], values: Sequence[bytes]) -> float:
    """Peak MB of Python heap while appending and then scanning every record."""
    el_create(path, "off")
    with eventlog.open(path, durability="off") as log:
        gc.collect()
        tracemalloc.start()
        try:
            for start in range(0, len(values), BATCH):
                log.append_batch(TOPIC, [NewRecord(value=v, key=k) for k, v in
                                         zip(keys[start:start + BATCH],
                                             values[start:start + BATCH], strict=True)])
            count = 0
            for _record in log.scan(TOPIC):
                count += 1
            assert count == len(values), (count, len(values))
            _current, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    return peak / 1e6


# ----------------------------------------------------------------------------- open times, machine


def median_open_ms(el_path: Path, sqlite_path: Path, lmdb_path: Path,
                   first_read: bool = True) -> tuple[float, float, float]:
    """Median milliseconds of ``OPEN_CYCLES`` open cycles per side (sides take turns)."""
    cycles: list[tuple[Callable[[Path, bool], float], Path]] = [
        (el_open_cycle, el_path), (sqlite_open_cycle, sqlite_path), (lmdb_open_cycle, lmdb_path)]
    for fn, path in cycles:
        fn(path, first_read)  # warm the page cache
    samples: list[list[float]] = [[] for _ in cycles]
    for _ in range(OPEN_CYCLES):
        for out, (cycle, where) in zip(samples, cycles, strict=True):
            out.append(cycle(where, first_read))
    el, sql, raw = (statistics.median(s) * 1000 for s in samples)
    return el, sql, raw


def machine_info(data_dir: Path) -> dict[str, Any]:
    """CPU, RAM, the filesystem of ``data_dir``, versions, load and date."""
    def first(path: str, prefix: str) -> str | None:
        try:
            with open(path) as f:
                for line in f:
                    if line.startswith(prefix):
                        return line.split(":", 1)[1].strip()
        except OSError:
            pass
        return None

    mem_kb = first("/proc/meminfo", "MemTotal")
    return {
        "cpus": os.cpu_count(),
        "cpu_model": first("/proc/cpuinfo", "model name") or platform.processor(),
        "ram_gb": round(int(mem_kb.split()[0]) / 1024 / 1024, 1) if mem_kb else None,
        "filesystem": filesystem_of(data_dir),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "eventlog": eventlog.__version__,
        "lmdb": f"py-lmdb {lmdb.__version__} (LMDB {'.'.join(map(str, lmdb.version()))})",
        "zstandard": f"{zstandard.__version__} (zstd {zstandard.ZSTD_VERSION[0]}."
                     f"{zstandard.ZSTD_VERSION[1]}.{zstandard.ZSTD_VERSION[2]})",
        "sqlite": sqlite3.sqlite_version,
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }


def filesystem_of(path: Path) -> str | None:
    """``device (fstype)`` of the mount holding ``path`` (Linux only)."""
    try:
        with open("/proc/mounts") as f:
            mounts = [line.split()[:3] for line in f]
    except OSError:
        return None
    target = str(path.resolve())
    best_mount = max((m for m in mounts if target == m[1] or target.startswith(
        m[1].rstrip("/") + "/")), key=lambda m: len(m[1]), default=None)
    return f"{best_mount[0]} ({best_mount[2]})" if best_mount else None


# ----------------------------------------------------------------------------- the run


Store = Callable[[Path], float]  # runs one side of a workload on a fresh store; seconds


class Bench:
    """Runs the workloads; every store goes to a fresh directory under ``root``."""

    def __init__(self, n: int, singles: int, repeat: int, classes: Sequence[str], level: int,
                 root: Path, progress: Callable[[str], None]) -> None:
        self.n = n
        self.singles = singles
        self.repeat = repeat
        self.classes = [DURABILITY[c] for c in classes]
        self.level = level
        self.root = root
        self.progress = progress
        self.results: list[Result] = []
        self._dirs = 0
        progress(f"building {n:,} records ...")
        self.values, self.keys = make_dataset(n)
        sizes = list(map(len, self.values))
        progress(f"  values: mean {sum(sizes) / n:.0f} bytes ({min(sizes)}-{max(sizes)}); "
                 f"keys: 16 bytes")
        self.value_batches = chunks(self.values, BATCH)
        self.key_batches = chunks(self.keys, BATCH)
        self.record_batches = [
            [NewRecord(value=v, key=k) for k, v in zip(kb, vb, strict=True)]
            for kb, vb in zip(self.key_batches, self.value_batches, strict=True)]
        now = time.time_ns() // 1_000_000
        self.row_batches = [
            [(TOPIC, 0, base + i, now, k, v) for i, (k, v) in enumerate(zip(kb, vb, strict=True))]
            for base, kb, vb in zip(range(0, n, BATCH), self.key_batches, self.value_batches,
                                    strict=True)]
        # Stores written by the first durability class's appends, kept for the read, open
        # and size workloads.
        self.kept: dict[str, Path] = {}
        # Millions of pre-built input objects are an artefact of the benchmark, not part of
        # an application's heap: keep the garbage collector from traversing them.
        gc.collect()
        gc.freeze()

    # -- helpers

    def fresh(self, name: str) -> Path:
        """A new empty directory for one store."""
        self._dirs += 1
        path = self.root / f"{self._dirs:03d}-{name}"
        path.mkdir(parents=True)
        return path

    def interleaved(self, sides: dict[str, Store],
                    stores: Literal["drop", "keep", "none"] = "drop") -> dict[str, float]:
        """The best time of each side over ``repeat`` rounds.

        The sides take turns within each round, so that a disturbance of the (shared)
        machine hits all of them alike. Each call gets a fresh directory for its store,
        deleted afterwards (``"drop"``) or kept in ``self.kept`` under the side's name (
        ``"keep"``: the last round's store stays); with ``"none"`` the sides get no store
        of their own (readers of kept stores).
        """
        best_times = dict.fromkeys(sides, float("inf"))
        for r in range(self.repeat):
            round_times = {}
            for name, side in sides.items():
                path = self.fresh(name) if stores != "none" else self.root
                round_times[name] = side(path)
                best_times[name] = min(best_times[name], round_times[name])
                if stores == "keep":
                    old = self.kept.get(name)
                    if old is not None:
                        shutil.rmtree(old)
                    self.kept[name] = path
                elif stores == "drop":
                    shutil.rmtree(path)
            self.progress(f"  round {r + 1}: " + ", ".join(
                f"{name} {t:.3f}s" for name, t in round_times.items()))
        return best_times

    def add(self, result: Result, met: bool | None = None) -> Result:
        result.met = met
        self.results.append(result)
        return result

    # -- workloads

    def batched_appends(self, dur: Durability, keep: bool) -> None:
        """Workloads 1 and 2 in one durability class."""
        self.progress(f"batched appends, durability class {dur.name!r} ...")
        n, level = self.n, self.level
        t = self.interleaved({
            "el": lambda p: el_append_batch(p, self.record_batches, dur.eventlog, level=level),
            "cols": lambda p: el_append_columns(p, self.key_batches, self.value_batches,
                                                dur.eventlog, level=level),
            "sqlite": lambda p: sqlite_append(p, self.row_batches, dur.sqlite),
            "lmdb": lambda p: lmdb_append(p, self.key_batches, self.value_batches,
                                          dur.lmdb_sync, dur.lmdb_metasync, level),
        }, stores="keep" if keep else "drop")
        note = (f"eventlog durability={dur.eventlog!r}, sqlite3 synchronous={dur.sqlite}, "
                f"LMDB sync={dur.lmdb_sync} metasync={dur.lmdb_metasync}: survives "
                f"{dur.survives}")
        res = self.add(Result(
            f"batched append: append_batch (NewRecord) [{dur.name}]", "records/s",
            n / t["el"], n / t["sqlite"], n / t["lmdb"],
            target=">= 5x sqlite3, >= 0.4x ceiling", note=note))
        res.met = at_least(res.ratio_vs_sqlite3, 5) and at_least(res.ratio_vs_ceiling, 0.4)
        res = self.add(Result(
            f"batched append: append_columns (bulk) [{dur.name}]", "records/s",
            n / t["cols"], n / t["sqlite"], n / t["lmdb"], target=">= 10x sqlite3"))
        res.met = at_least(res.ratio_vs_sqlite3, 10)

    def partitioned_appends(self, partitions: int) -> None:
        """What choosing partitions costs: keyed records into a multi-partition topic.

        Durability class "off" (no fsync), so that the CPU cost shows.
        """
        self.progress(f"batched appends into {partitions} partitions ...")
        n, level = self.n, self.level
        t = self.interleaved({
            "el-parts": lambda p: el_append_batch(p, self.record_batches, "off", partitions,
                                                  level),
            "cols-parts": lambda p: el_append_columns(p, self.key_batches, self.value_batches,
                                                      "off", partitions, level),
        })
        one = {r.workload: r.eventlog for r in self.results}
        for api, seconds in (("append_batch (NewRecord)", t["el-parts"]),
                             ("append_columns (bulk)", t["cols-parts"])):
            single = one.get(f"batched append: {api} [off]")
            self.add(Result(
                f"batched append: {api}, {partitions} partitions by key [off]", "records/s",
                n / seconds, None, None,
                note=f"murmur2 of {n:,} distinct keys"
                     + (f"; {n / seconds / single:.2f}x the 1-partition rate" if single else "")))

    def reads(self) -> None:
        """Workloads 3 and 4, on the stores kept from the first batched appends."""
        self.progress("ordered reads ...")
        n, kept = self.n, self.kept
        t = self.interleaved({
            "read": lambda _p: el_read(kept["el"], n),
            "read_columns": lambda _p: el_read_columns(kept["cols"], n),
            "sqlite": lambda _p: sqlite_read(kept["sqlite"], n),
            "lmdb": lambda _p: lmdb_read(kept["lmdb"], n),
        }, stores="none")
        paging = f"sqlite3: SELECT ... LIMIT {READ_PAGE} pages"
        res = self.add(Result(
            f"ordered read: read() pages of {READ_PAGE} (Record)", "records/s", n / t["read"],
            n / t["sqlite"], n / t["lmdb"], target=">= 1.2x sqlite3", note=paging))
        res.met = at_least(res.ratio_vs_sqlite3, 1.2)
        res = self.add(Result(
            f"bulk read: read_columns() pages of {COLUMNS_PAGE:,}", "records/s",
            n / t["read_columns"], n / t["sqlite"], n / t["lmdb"], target=">= 2x sqlite3",
            note=paging))
        res.met = at_least(res.ratio_vs_sqlite3, 2)

    def single_appends(self) -> None:
        """Workloads 5 and 6."""
        data = list(zip(self.keys[:self.singles], self.values[:self.singles], strict=True))
        count = len(data)
        self.progress("durable single appends, 1 thread ...")
        t = self.interleaved({
            "el-single": lambda p: el_single(p, data, 1),
            "sqlite-single": lambda p: sqlite_single(p, data, 1),
            "lmdb-single": lambda p: lmdb_single(p, data, 1),
        })
        res = self.add(Result(
            "durable single append, 1 thread", "appends/s", count / t["el-single"],
            count / t["sqlite-single"], count / t["lmdb-single"], target=">= 0.8x ceiling",
            note="eventlog durability='full', sqlite3 synchronous=FULL, LMDB sync=True "
                 "metasync=True; one commit per append"))
        res.met = at_least(res.ratio_vs_ceiling, 0.8)
        self.progress(f"durable single appends, {THREADS} threads ...")
        t = self.interleaved({
            "el-threads": lambda p: el_single(p, data, THREADS),
            "sqlite-threads": lambda p: sqlite_single(p, data, THREADS),
            "lmdb-threads": lambda p: lmdb_single(p, data, THREADS),
        })
        res = self.add(Result(
            f"durable single append, {THREADS} threads", "appends/s", count / t["el-threads"],
            count / t["sqlite-threads"], None, target=">= 3x sqlite3",
            note=f"eventlog: one shared Log (group commit); sqlite3: a connection per thread; "
                 f"raw LMDB, a commit per append from {THREADS} threads: "
                 f"{count / t['lmdb-threads']:,.0f}/s"))
        res.met = at_least(res.ratio_vs_sqlite3, 3)

    def open_times(self) -> None:
        """Workload 7: an empty log, a one-batch log and the N-record log."""
        self.progress("open times ...")
        empty = (self.fresh("el-empty"), self.fresh("sqlite-empty"), self.fresh("lmdb-empty"))
        el_create(empty[0], "full")
        sqlite_connect(empty[1], "FULL").close()
        lmdb_env(empty[2], sync=True, metasync=True).close()
        # One batch: the first read decodes one batch, as it does in the N-record log.
        one = (self.fresh("el-one"), self.fresh("sqlite-one"), self.fresh("lmdb-one"))
        el_append_columns(one[0], self.key_batches[:1], self.value_batches[:1], "full")
        sqlite_append(one[1], self.row_batches[:1], "FULL")
        lmdb_append(one[2], self.key_batches[:1], self.value_batches[:1], True, True)
        full = (self.kept["el"], self.kept["sqlite"], self.kept["lmdb"])
        unit = "ms (ratio: x faster)"
        # Open time proper (the target): open + close, nothing read.
        bare = {label: median_open_ms(*paths, first_read=False)
                for label, paths in (("empty", empty), ("full", full))}
        self.add(Result("open + close: empty log", unit, *bare["empty"],
                        higher_is_better=False, note=f"median of {OPEN_CYCLES} cycles"))
        growth = bare["full"][0] / bare["empty"][0]
        self.add(Result(
            f"open + close: {self.n:,}-record log", unit, *bare["full"],
            higher_is_better=False, target="<= 2x eventlog's empty-log time",
            note=f"{growth:.2f}x the empty log's time"), met=growth <= 2)
        # With the first read, which decodes one whole batch whatever the log's size.
        ms = {label: median_open_ms(*paths)
              for label, paths in (("empty", empty), ("one", one), ("full", full))}
        self.add(Result("open + first read + close: empty log", unit, *ms["empty"],
                        higher_is_better=False, note=f"median of {OPEN_CYCLES} cycles"))
        base = ms["empty"][0]
        self.add(Result(f"open + first read + close: {BATCH:,}-record log (1 batch)", unit,
                        *ms["one"], higher_is_better=False,
                        note=f"{ms['one'][0] / base:.2f}x the empty log's time"))
        self.add(Result(
            f"open + first read + close: {self.n:,}-record log", unit, *ms["full"],
            higher_is_better=False,
            note=f"{ms['full'][0] / base:.2f}x the empty log's time, "
                 f"{ms['full'][0] / ms['one'][0]:.2f}x the 1-batch log's (the first read "
                 f"decodes one batch whatever the log's size)"))

    def sizes(self) -> None:
        """Workload 8, on the stores kept from the first batched appends."""
        mb = 1e6
        db = self.kept["sqlite"] / SQLITE_FILE
        raw = (sum(map(len, self.values)) + sum(map(len, self.keys))) / mb
        res = self.add(Result(
            f"file size, {self.n:,} records", "MB (ratio: x smaller)", du(self.kept["el"]) / mb,
            du(db, db.with_name(db.name + "-wal")) / mb, du(self.kept["lmdb"]) / mb,
            higher_is_better=False, target="<= 0.5x sqlite3",
            note=f"keys + values: {raw:.1f} MB; du of the stores written by "
                 f"append_batch [{self.classes[0].name}]"))
        res.met = at_least(res.ratio_vs_sqlite3, 2)

    def memory(self) -> None:
        """Workload 9."""
        self.progress("memory (tracemalloc, slow) ...")
        peak = el_memory(self.fresh("el-memory"), self.keys, self.values)
        self.add(Result(
            "memory: append_batch then scan(), tracemalloc peak", "MB", peak, None, None,
            higher_is_better=False, target=f"<= {MEMORY_LIMIT_MB:.0f} MB",
            note=f"{self.n:,} records"), met=peak <= MEMORY_LIMIT_MB)

    def run(self, partitions: int) -> list[Result]:
        for i, dur in enumerate(self.classes):
            self.batched_appends(dur, keep=i == 0)
        if partitions > 1:
            self.partitioned_appends(partitions)
        self.reads()
        self.single_appends()
        self.open_times()
        self.sizes()
        self.memory()
        return self.results


# ----------------------------------------------------------------------------- output


def fmt(x: float | None) -> str:
    if x is None:
        return "-"
    if x >= 100:
        return f"{x:,.0f}"
    if x >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def fmt_ratio(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}x"


TABLE_HEADERS = ("workload", "eventlog", "sqlite3", "ceiling", "unit", "vs sqlite3",
                 "vs ceiling", "target", "met?")
_RIGHT = {1, 2, 3, 5, 6}


def table_rows(results: Sequence[Result]) -> list[tuple[str, ...]]:
    return [(r.workload, fmt(r.eventlog), fmt(r.sqlite3), fmt(r.ceiling), r.unit,
             fmt_ratio(r.ratio_vs_sqlite3), fmt_ratio(r.ratio_vs_ceiling), r.target or "-",
             "-" if r.met is None else ("yes" if r.met else "NO")) for r in results]


def print_table(results: Sequence[Result], markdown: bool = False) -> None:
    rows = table_rows(results)
    if markdown:
        print("| " + " | ".join(TABLE_HEADERS) + " |")
        print("| " + " | ".join("---:" if i in _RIGHT else "---"
                                for i in range(len(TABLE_HEADERS))) + " |")
        for row in rows:
            print("| " + " | ".join(row) + " |")
    else:
        widths = [max(len(h), *(len(row[i]) for row in rows))
                  for i, h in enumerate(TABLE_HEADERS)]

        def line(cells: Sequence[str]) -> str:
            return "  ".join(c.rjust(w) if i in _RIGHT else c.ljust(w)
                             for i, (c, w) in enumerate(zip(cells, widths, strict=True)))

        print(line(TABLE_HEADERS).rstrip())
        print(line(["-" * w for w in widths]).rstrip())
        for row in rows:
            print(line(row).rstrip())
    notes = [f"  {r.workload}: {r.note}" for r in results if r.note]
    if notes:
        print("\nnotes:")
        print("\n".join(notes))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true",
                        help="100,000 records and 300 single appends (under a minute)")
    parser.add_argument("--records", type=int, help="number of records (default 1,000,000)")
    parser.add_argument("--singles", type=int, help="durable single appends (default 2,000)")
    parser.add_argument("--repeat", type=int, help="runs per throughput figure; the best "
                                                    "counts (default 3, 1 with --quick)")
    parser.add_argument("--durability", default="normal,off,full",
                        help="comma-separated durability classes of the batched appends; the "
                             "first one's stores are read, opened and measured "
                             "(default normal,off,full)")
    parser.add_argument("--partitions", type=int, default=4,
                        help="also append into a topic with this many partitions, by key "
                             "(default 4; 1 skips it)")
    parser.add_argument("--data-dir", type=Path, default=HERE / "data",
                        help="where the stores are written (a temporary directory inside "
                             "it is removed afterwards)")
    parser.add_argument("--output", type=Path, default=RESULTS_PATH,
                        help="where to write the JSON results")
    parser.add_argument("--zstd-level", type=int, default=DEFAULT_ZSTD_LEVEL,
                        help="zstd level of eventlog's topics (compression.zstd.level) and of "
                             f"the ceiling in the batched appends (default {DEFAULT_ZSTD_LEVEL}, "
                             "eventlog's default)")
    parser.add_argument("--markdown", action="store_true",
                        help="print the results table as Markdown (for docs/performance.md)")
    args = parser.parse_args(argv)
    n = args.records or (100_000 if args.quick else 1_000_000)
    singles = args.singles or (300 if args.quick else 2_000)
    repeat = args.repeat or (1 if args.quick else 3)
    classes = [c.strip() for c in args.durability.split(",") if c.strip()]
    unknown = set(classes) - set(DURABILITY)
    if unknown or not classes:
        parser.error(f"--durability: choose from {', '.join(DURABILITY)}")

    args.data_dir.mkdir(parents=True, exist_ok=True)
    info = machine_info(args.data_dir)
    info.update(records=n, single_appends=singles, repeat=repeat, batch=BATCH,
                durability_classes=classes, zstd_level=args.zstd_level)
    print("eventlog benchmark")
    for k, v in info.items():
        print(f"  {k}: {v}")
    print()

    def progress(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    data_root = Path(tempfile.mkdtemp(prefix="bench-", dir=args.data_dir))
    started = time.perf_counter()
    try:
        bench = Bench(n, singles, repeat, classes, args.zstd_level, data_root, progress)
        results = bench.run(args.partitions)
    finally:
        shutil.rmtree(data_root, ignore_errors=True)
    info["elapsed_s"] = round(time.perf_counter() - started, 1)
    info["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    print()
    print_table(results, markdown=args.markdown)
    print(f"\ntotal time: {info['elapsed_s']} s")

    machine = {"workload": "machine", "eventlog": None, "sqlite3": None, "ceiling": None,
               "unit": None, "ratio_vs_sqlite3": None, "ratio_vs_ceiling": None,
               "target": None, "met": None, "info": info}
    args.output.write_text(json.dumps([machine, *(r.to_json() for r in results)], indent=2)
                           + "\n")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
