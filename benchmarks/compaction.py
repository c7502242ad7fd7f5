"""Benchmark key compaction and retention, beside stdlib sqlite3 and raw py-lmdb.

Run it with ``make bench`` (after ``bench.py`` and ``clients.py``; a few minutes) or
``make bench QUICK=1`` (under a minute), or directly:
``.venv/bin/python benchmarks/compaction.py [--quick]``. It prints three tables and writes
``benchmarks/results-compaction.json``: a list whose first object (``"workload":
"machine"``) describes the machine and the run, then one object per table row (with a
``table`` key naming its table). docs/performance.md ("Compaction and retention") explains
the method and records a run.

Data: N records (1,000,000; 100,000 with ``--quick``) over K keys (10,000): ~100-byte JSON
values (``bench.make_dataset``; a pool of 100,000 values used in turn) and 16-byte keys,
each record's key drawn at random (fixed seed) from the K, so each key has about N/K
records and compaction keeps 1 in N/K. Durability classes are those of ``bench.py``
(``--durability``, default ``off,full``).

1. **Compaction throughput.** The N records are appended with ``append_columns`` in batches
   of 1,000 to a topic with ``cleanup_policy="delete"`` and ``retention_ms=-1``, then
   ``alter_topic(..., cleanup_policy="compact")`` indexes them in one transaction (timed and
   reported on its own). A compacted topic built by appends would not do: its first append
   already starts a pass (with no clean part, the dirty ratio is 1.0 whatever
   ``min.cleanable.dirty.ratio`` is), and loading it costs the key index's upkeep on every
   append, which is reported on its own row. Copies of that store are then opened in each
   durability class and ``log.compact(topic)`` is timed: records scanned per second (all N
   are read; N - K are removed, the rest rewritten). sqlite3 does the same deduplication on
   a hand-rolled log, ``log(offset INTEGER PRIMARY KEY, key BLOB, value BLOB)`` with an
   index on ``key``, loaded with the same rows: ``DELETE FROM log WHERE offset NOT IN
   (SELECT max(offset) FROM log GROUP BY key)`` in one transaction, WAL with the class's
   ``synchronous``. The ceiling is raw py-lmdb storing the same 1,000-record zstd batches
   as ``bench.py``'s ceiling (plus the records' offsets): in one write transaction, a scan
   that builds ``{key: last offset}``, then a second scan that rewrites each batch without
   its obsolete records or deletes it.
2. **Append latency during compaction**: p50/p99/p99.9 of single ``log.append(topic, value,
   key=key)`` calls into a second, compacted topic of the same log (``min.cleanable.
   dirty.ratio=1.0``, so no pass runs on it), paced by random pauses of 0-1 ms as in
   ``clients.py``: (a) with nothing else running (``--latency-samples`` appends), (b) while
   a thread of the same process runs ``log.compact()`` over the N-record topic, (c) while
   another process does, and (d) appending to the N-record topic itself after its policy
   became ``compact`` (dirty ratio 1.0 >= 0.5), so that every append carries a chunk of the
   automatic pass; only appends made while that pass runs are counted (up to
   ``--auto-samples``). Each of (b)-(d) first takes ``--before-samples`` appends on its own
   store with nothing running, and its p99 is compared with theirs: p99(with) /
   p99(without), against the issue's target (<= 10x). ``--explicit-records`` also runs (b)
   and (c) with ``eventlog._compaction.EXPLICIT_RECORDS`` (and ``EXPLICIT_RECORDS_NO_SYNC``,
   the budget with durability "off") patched to other chunk sizes. Whether a pass
   is running is read from the partition's stored state (private API: compaction progress
   is not in ``describe_topic``), outside the timed calls.
3. **Steady-state file size under a byte retention**: a topic with ``retention_bytes``
   (``--retention-mib``, 8 MiB) receives ``--retention-rounds`` rounds (160) of an eighth of
   that (so 20x the retention in all) in 1,000-record ``append_columns`` batches, in class
   ``--retention-durability`` (``full``); after each round the size of ``data.mdb`` is
   sampled. Reported: the plateau (largest size in the second half of the rounds) against
   the retention setting, and how much the file grew in the second half.

Ratios are "higher is better" for throughput (eventlog / other); latency ratios are
p99(with) / p99(without) (lower is better).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from array import array
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import lmdb
import zstandard

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from bench import (  # noqa: E402
    BATCH,
    DEFAULT_ZSTD_LEVEL,
    DURABILITY,
    OFFSET_KEY,
    Durability,
    machine_info,
    make_dataset,
)
from clients import percentile  # noqa: E402

import eventlog  # noqa: E402
import eventlog._compaction as compaction_module  # noqa: E402

RESULTS_PATH = HERE / "results-compaction.json"
BIG = "snapshots"  # the N-record topic that gets compacted
LIVE = "updates"  # the topic the latency samples append to
RETAINED = "metrics"  # the byte-retention topic
VALUE_POOL = 100_000
SEED = 20240604
P99_TARGET = 10.0
MIB = 1 << 20

# A background compaction in another process (the variant without GIL contention). It
# opens the log, reports "ready", waits for a line on stdin, compacts, reports the result.
COMPACT_WORKER = """
import json, sys, time
import eventlog, eventlog._compaction as compaction
path, durability, topic, chunk = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
if chunk:
    compaction.EXPLICIT_RECORDS = compaction.EXPLICIT_RECORDS_NO_SYNC = chunk
with eventlog.open(path, durability=durability) as log:
    print("ready", flush=True)
    sys.stdin.readline()
    start = time.perf_counter()
    result = log.compact(topic)
    elapsed = time.perf_counter() - start
    removed = sum(r.records_removed for r in result.values())
    print(json.dumps({"seconds": elapsed, "removed": removed}), flush=True)
"""


# ----------------------------------------------------------------------------- results


@dataclass
class Row:
    """One row of one of the three tables (and one object in the JSON file)."""

    table: str  # "throughput", "latency" or "retention"
    workload: str
    durability: str | None
    unit: str
    values: dict[str, Any]  # figures (and, for the retention row, the sampled sizes)
    target: str | None = None
    met: bool | None = None
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(out.pop("values"))
        return out


@dataclass
class Dataset:
    """Per-record keys and values (the values are shared objects from a pool)."""

    keys: list[bytes]
    values: list[bytes]
    distinct_keys: int

    def batches(self) -> list[tuple[list[bytes], list[bytes]]]:
        return [(self.keys[i:i + BATCH], self.values[i:i + BATCH])
                for i in range(0, len(self.keys), BATCH)]


def make_data(n: int, key_count: int, seed: int = SEED) -> Dataset:
    pool, _ = make_dataset(min(n, VALUE_POOL))
    _, distinct = make_dataset(key_count, seed=seed)
    rng = random.Random(seed)
    keys = [distinct[rng.randrange(key_count)] for _ in range(n)]
    values = [pool[i % len(pool)] for i in range(n)]
    return Dataset(keys, values, len(set(keys)))


def timed(fn: Callable[[], object]) -> tuple[float, Any]:
    """Seconds taken by ``fn()`` (after a full garbage collection), and its result."""
    gc.collect()
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def written_bytes() -> int | None:
    """Bytes this process has caused to be written to storage (Linux ``/proc/self/io``).

    Meaningful for a durability class that flushes at commit; in class ``off`` the
    kernel writes the pages back later, on nobody's account."""
    try:
        with open("/proc/self/io") as f:
            for line in f:
                if line.startswith("write_bytes:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def written_since(start: int | None) -> float | None:
    """MB written since ``written_bytes()`` returned ``start``."""
    end = written_bytes()
    return None if start is None or end is None else (end - start) / 1e6


def flush_store(store: Path) -> Path:
    """Write a store's files to disk (untimed), so that the kernel's write-back of a store
    just built or copied neither lands in the first fsync of a measured commit nor competes
    with the measurements for the disk."""
    for path in store.iterdir():
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    return store


def copy_store(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest)
    return flush_store(dest)


def partition_state(log: eventlog.Log, topic: str) -> Any:
    """Partition 0's stored state (private API: compaction progress is not public)."""
    def run(txn: Any) -> Any:
        return log._reader.state(txn, log._info(txn, topic), 0)

    return log._storage.read(run, "benchmark: reading a partition state")


# ----------------------------------------------------------------------------- eventlog


def el_load(path: Path, data: Dataset, **configs: Any) -> float:
    """Append every record (class off) to a new topic ``BIG``; seconds."""
    with eventlog.open(path, durability="off") as log:
        log.create_topic(BIG, **configs)
        batches = data.batches()

        def run() -> None:
            for keys, values in batches:
                log.append_columns(BIG, values, keys=keys)

        seconds, _ = timed(run)
        return seconds


def el_template(path: Path, data: Dataset) -> dict[str, float]:
    """The store every eventlog measurement starts from (a copy of it): ``BIG`` loaded as
    a delete topic, then altered to compact; ``LIVE`` an empty compacted topic."""
    load = el_load(path, data, cleanup_policy="delete", retention_ms=-1)
    with eventlog.open(path, durability="off") as log:
        index, _ = timed(lambda: log.alter_topic(BIG, cleanup_policy="compact"))
        log.create_topic(LIVE, cleanup_policy="compact", min_cleanable_dirty_ratio=1.0)
        info = log.describe_topic(BIG).partitions[0]
        assert info.batches == len(data.keys) // BATCH, info
    return {"load": load, "index": index}


def el_compact(path: Path, dur: Durability, data: Dataset) -> tuple[float, Any, float | None]:
    with eventlog.open(path, durability=dur.eventlog) as log:
        start = written_bytes()
        seconds, result = timed(lambda: log.compact(BIG))
        written = written_since(start)
        (res,) = result.values()
        assert res.records_removed == len(data.keys) - data.distinct_keys, res
        return seconds, res, written


def el_append_cost(path: Path, dur: Durability, data: Dataset, topic: str,
                   count: int) -> tuple[float, float | None]:
    """Seconds and MB written for ``count`` batched appends (random keys of the data set)
    into ``topic``."""
    batches = data.batches()[:count]
    with eventlog.open(path, durability=dur.eventlog) as log:
        start = written_bytes()

        def run() -> None:
            for keys, values in batches:
                log.append_columns(topic, values, keys=keys)

        seconds, _ = timed(run)
        return seconds, written_since(start)


# ----------------------------------------------------------------------------- sqlite3

SQLITE_FILE = "log.db"
SQLITE_DEDUP = "DELETE FROM log WHERE offset NOT IN (SELECT max(offset) FROM log GROUP BY key)"


def sqlite_template(path: Path, data: Dataset) -> float:
    """The hand-rolled log with an index on key; loaded untimed-ish (one transaction,
    the index built after the rows, synchronous=OFF); returns the seconds anyway."""
    path.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path / SQLITE_FILE, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("CREATE TABLE log (offset INTEGER PRIMARY KEY, key BLOB NOT NULL, "
                     "value BLOB)")

        def run() -> None:
            conn.execute("BEGIN")
            conn.executemany("INSERT INTO log VALUES (?, ?, ?)",
                             zip(range(len(data.keys)), data.keys, data.values))
            conn.execute("CREATE INDEX log_key ON log(key)")
            conn.execute("COMMIT")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

        seconds, _ = timed(run)
        return seconds
    finally:
        conn.close()


def sqlite_dedup(path: Path, dur: Durability, data: Dataset) -> tuple[float, float | None]:
    conn = sqlite3.connect(path / SQLITE_FILE, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={dur.sqlite}")

        def run() -> int:
            conn.execute("BEGIN")
            removed = conn.execute(SQLITE_DEDUP).rowcount
            conn.execute("COMMIT")
            return int(removed)

        start = written_bytes()
        seconds, removed = timed(run)
        written = written_since(start)
        assert removed == len(data.keys) - data.distinct_keys, removed
        (left,) = conn.execute("SELECT count(*) FROM log").fetchone()
        assert left == data.distinct_keys, left
        return seconds, written
    finally:
        conn.close()


# ----------------------------------------------------------------------------- raw LMDB

# A batch: record count u32, then zstd(offsets u64[] + key lengths u32[] + value lengths
# u32[] + keys + values) -- bench.py's ceiling layout plus the offsets, which a rewritten
# batch needs.


def lmdb_encode(offsets: Sequence[int], keys: Sequence[bytes], values: Sequence[bytes],
                comp: zstandard.ZstdCompressor) -> bytes:
    payload = b"".join((array("Q", offsets).tobytes(), array("I", map(len, keys)).tobytes(),
                        array("I", map(len, values)).tobytes(), *keys, *values))
    return len(offsets).to_bytes(4, "little") + comp.compress(payload)


def lmdb_decode(stored: bytes, dec: zstandard.ZstdDecompressor
                ) -> tuple[array[int], list[bytes], list[bytes]]:
    count = int.from_bytes(stored[:4], "little")
    payload = dec.decompress(stored[4:])
    offsets = array("Q")
    offsets.frombytes(payload[:8 * count])
    lengths = array("I")
    lengths.frombytes(payload[8 * count:16 * count])
    items: list[bytes] = []
    pos = 16 * count
    for size in lengths:
        items.append(payload[pos:pos + size])
        pos += size
    return offsets, items[:count], items[count:]


def lmdb_template(path: Path, data: Dataset) -> float:
    env = lmdb.open(str(path), map_size=1 << 34, sync=False, metasync=False)
    comp = zstandard.ZstdCompressor(level=DEFAULT_ZSTD_LEVEL)
    try:
        def run() -> None:
            base = 0
            for keys, values in data.batches():
                stored = lmdb_encode(range(base, base + len(keys)), keys, values, comp)
                with env.begin(write=True) as txn:
                    txn.put(OFFSET_KEY.pack(base), stored)
                base += len(keys)

        seconds, _ = timed(run)
        return seconds
    finally:
        env.close()


def lmdb_compact(path: Path, dur: Durability, data: Dataset) -> tuple[float, float | None]:
    env = lmdb.open(str(path), map_size=1 << 34, sync=dur.lmdb_sync,
                    metasync=dur.lmdb_metasync)
    comp = zstandard.ZstdCompressor(level=DEFAULT_ZSTD_LEVEL)
    dec = zstandard.ZstdDecompressor()

    def run() -> int:
        removed = 0
        with env.begin(write=True) as txn:
            last: dict[bytes, int] = {}
            for _k, stored in txn.cursor():
                offsets, keys, _values = lmdb_decode(stored, dec)
                last.update(zip(keys, offsets))
            cursor = txn.cursor()
            on = cursor.first()
            while on:
                offsets, keys, values = lmdb_decode(cursor.value(), dec)
                keep = [i for i, (o, k) in enumerate(zip(offsets, keys)) if last[k] == o]
                removed += len(offsets) - len(keep)
                if not keep:
                    on = cursor.delete()
                    continue
                if len(keep) < len(offsets):
                    cursor.put(cursor.key(), lmdb_encode(
                        [offsets[i] for i in keep], [keys[i] for i in keep],
                        [values[i] for i in keep], comp))
                on = cursor.next()
        return removed

    try:
        start = written_bytes()
        seconds, removed = timed(run)
        written = written_since(start)
        assert removed == len(data.keys) - data.distinct_keys, removed
        return seconds, written
    finally:
        env.close()


# ----------------------------------------------------------------------------- latency


def sample_appends(log: eventlog.Log, topic: str, data: Dataset, rng: random.Random,
                   keep_going: Callable[[], bool], limit: int) -> list[int]:
    """Nanoseconds of single keyed appends, paced by random pauses of 0-1 ms, while
    ``keep_going()`` (looked at before each append, untimed) and at most ``limit``."""
    samples: list[int] = []
    clock = time.perf_counter_ns
    n = len(data.keys)
    while len(samples) < limit and keep_going():
        time.sleep(rng.random() / 1000)
        i = rng.randrange(n)
        key, value = data.keys[i], data.values[i]
        t0 = clock()
        log.append(topic, value, key=key)
        samples.append(clock() - t0)
    return samples


def summary(samples: Sequence[int]) -> dict[str, float | None]:
    ordered = sorted(samples)
    ms = 1e6
    return {"p50_ms": percentile(ordered, 50) / ms, "p99_ms": percentile(ordered, 99) / ms,
            "p999_ms": percentile(ordered, 99.9) / ms, "max_ms": ordered[-1] / ms,
            "samples": len(ordered)}


# ----------------------------------------------------------------------------- retention


def retention_run(path: Path, data: Dataset, dur: Durability, retention: int,
                  rounds: int) -> dict[str, Any]:
    """Append ``rounds`` rounds of retention/8 bytes; the data file's size after each."""
    per_round = retention // 8
    sizes: list[int] = []
    logical: list[int] = []
    batches = data.batches()
    record_bytes = sum(len(k) + len(v) for k, v in zip(data.keys[:BATCH], data.values[:BATCH],
                                                       strict=True))
    batches_per_round = max(1, round(per_round / record_bytes))
    appended = 0
    with eventlog.open(path, durability=dur.eventlog) as log:
        log.create_topic(RETAINED, retention_bytes=retention, retention_ms=-1)
        start = time.perf_counter()
        b = 0
        for _ in range(rounds):
            for _ in range(batches_per_round):
                keys, values = batches[b % len(batches)]
                b += 1
                log.append_columns(RETAINED, values, keys=keys)
                appended += sum(map(len, keys)) + sum(map(len, values))
            sizes.append((path / "data.mdb").stat().st_size)
            logical.append(log.describe_topic(RETAINED).partitions[0].size_bytes)
        elapsed = time.perf_counter() - start
        info = log.describe_topic(RETAINED).partitions[0]
    return {"sizes": sizes, "logical": logical, "appended": appended, "seconds": elapsed,
            "batches_per_round": batches_per_round, "final": info}


# ----------------------------------------------------------------------------- the run


class CompactionBench:
    def __init__(self, args: argparse.Namespace, root: Path,
                 progress: Callable[[str], None]) -> None:
        self.args = args
        self.root = root
        self.progress = progress
        self.rows: list[Row] = []
        self.classes = [DURABILITY[c] for c in args.durability]
        self.rng = random.Random(SEED)
        self._dirs = 0
        progress(f"building {args.records:,} records over {args.keys:,} keys ...")
        self.data = make_data(args.records, args.keys)
        gc.collect()
        gc.freeze()  # the pre-built inputs are not part of an application's heap
        self.templates: dict[str, Path] = {}
        self.template_times: dict[str, float] = {}

    def fresh(self, name: str) -> Path:
        self._dirs += 1
        return self.root / f"{self._dirs:03d}-{name}"

    def copy(self, side: str, name: str) -> Path:
        return copy_store(self.templates[side], self.fresh(name))

    def build_templates(self) -> None:
        self.progress("loading the eventlog store (delete topic, then alter to compact) ...")
        path = self.fresh("el-template")
        self.template_times.update(el_template(path, self.data))
        self.templates["el"] = flush_store(path)
        if "throughput" in self.args.workloads:
            self.progress("loading sqlite3 and raw LMDB stores ...")
            path = self.fresh("sqlite-template")
            self.template_times["sqlite-load"] = sqlite_template(path, self.data)
            self.templates["sqlite"] = flush_store(path)
            path = self.fresh("lmdb-template")
            path.mkdir()
            self.template_times["lmdb-load"] = lmdb_template(path, self.data)
            self.templates["lmdb"] = flush_store(path)
            self.progress("loading a compacted topic by appends (key index upkeep) ...")
            path = self.fresh("el-compacted-load")
            seconds = el_load(path, self.data, cleanup_policy="compact",
                              min_cleanable_dirty_ratio=1.0)
            with eventlog.open(path) as log:
                info = log.describe_topic(BIG).partitions[0]
            appended = sum(map(len, self.data.keys)) + sum(map(len, self.data.values))
            self.template_times["compacted-load"] = seconds
            self.compacted_load_info = (info, appended)
            shutil.rmtree(path)

    # -- 1. throughput

    def throughput(self) -> None:
        data, n = self.data, len(self.data.keys)
        times = self.template_times
        removed = n - data.distinct_keys
        workload = f"compaction: {n:,} records over {data.distinct_keys:,} keys"
        for dur in self.classes:
            self.progress(f"compaction throughput [{dur.name}] ...")
            path = self.copy("el", f"el-compact-{dur.name}")
            el_seconds, res, el_mb = el_compact(path, dur, data)
            shutil.rmtree(path)
            path = self.copy("sqlite", f"sqlite-dedup-{dur.name}")
            sq_seconds, sq_mb = sqlite_dedup(path, dur, data)
            shutil.rmtree(path)
            path = self.copy("lmdb", f"lmdb-compact-{dur.name}")
            raw_seconds, raw_mb = lmdb_compact(path, dur, data)
            shutil.rmtree(path)
            el, sq, raw = n / el_seconds, n / sq_seconds, n / raw_seconds
            flushed = dur.name != "off" and el_mb is not None
            self.rows.append(Row(
                "throughput", workload, dur.name, "records/s",
                {"eventlog": el, "sqlite3": sq, "ceiling": raw, "vs_sqlite3": el / sq,
                 "vs_ceiling": el / raw, "eventlog_s": el_seconds, "sqlite3_s": sq_seconds,
                 "ceiling_s": raw_seconds, "eventlog_written_mb": el_mb if flushed else None,
                 "sqlite3_written_mb": sq_mb if flushed else None,
                 "ceiling_written_mb": raw_mb if flushed else None},
                note=f"log.compact() ({self.chunk_label(0, dur)}): "
                     f"{removed:,} removed, {res.batches_rewritten} batches rewritten, "
                     f"{res.batches_deleted} deleted, {el_seconds:.1f} s; sqlite3 DELETE ... "
                     f"NOT IN (SELECT max(offset) ... GROUP BY key) in one transaction, "
                     f"{sq_seconds:.1f} s; raw LMDB, one transaction, {raw_seconds:.1f} s"
                     + (f"; written to disk: eventlog {el_mb:,.0f} MB, sqlite3 {sq_mb:,.0f} MB, "
                        f"raw LMDB {raw_mb:,.0f} MB" if flushed else "")))
            if dur.name != "off":
                self.append_cost(dur)
        # What the key index costs on the way in, and alter_topic's indexing (class off).
        load, index = times["load"], times["index"]
        info, appended = self.compacted_load_info
        self.rows.append(Row(
            "throughput", "append_columns of 1,000 into a delete topic (no key index)", "off",
            "records/s", {"eventlog": n / load, "sqlite3": None, "ceiling": None,
                          "vs_sqlite3": None, "vs_ceiling": None, "eventlog_s": load},
            note="the load of the store compacted above"))
        compacted = times["compacted-load"]
        self.rows.append(Row(
            "throughput", "append_columns of 1,000 into a compacted topic (key index)", "off",
            "records/s", {"eventlog": n / compacted, "sqlite3": None, "ceiling": None,
                          "vs_sqlite3": None, "vs_ceiling": None, "eventlog_s": compacted},
            note=f"min.cleanable.dirty.ratio=1.0; {n / compacted / (n / load):.2f}x the rate "
                 f"without a key index; the automatic pass started by the first append "
                 f"removed {appended - info.size_bytes:,} bytes of {appended:,}, "
                 f"{info.batches} batches left"))
        self.rows.append(Row(
            "throughput", "alter_topic(cleanup_policy='compact'): index the stored records",
            "off", "records/s",
            {"eventlog": n / index, "sqlite3": None, "ceiling": None, "vs_sqlite3": None,
             "vs_ceiling": None, "eventlog_s": index},
            note=f"one transaction, {index:.1f} s; sqlite3 template (rows + CREATE INDEX, "
                 f"one transaction): {times['sqlite-load']:.1f} s"))

    def append_cost(self, dur: Durability) -> None:
        """What the key index costs a durable batched append: ``append_columns`` of 1,000
        records with random keys into the N-record compacted topic (a large index; its
        ``min.compaction.lag.ms`` raised so that no pass runs), beside a delete topic of the
        same log."""
        count = self.args.cost_batches
        self.progress(f"batched appends into a large compacted topic [{dur.name}] ...")
        path = self.copy("el", f"el-append-cost-{dur.name}")
        with eventlog.open(path, durability="off") as log:
            log.alter_topic(BIG, min_compaction_lag_ms=86_400_000)
            log.create_topic(RETAINED, retention_ms=-1)
        results = {}
        for topic in (RETAINED, BIG):
            results[topic] = el_append_cost(path, dur, self.data, topic, count)
        with eventlog.open(path) as log:
            assert log.describe_topic(BIG).partitions[0].batches == (
                len(self.data.keys) // BATCH + count), "a compaction pass ran"
        shutil.rmtree(path)
        (plain_s, plain_mb), (index_s, index_mb) = results[RETAINED], results[BIG]
        records = count * BATCH
        per_batch = "" if plain_mb is None or index_mb is None else (
            f"; written per append: {index_mb / count:.2f} MB with the key index, "
            f"{plain_mb / count:.2f} MB without")
        self.rows.append(Row(
            "throughput", f"append_columns of 1,000 into the {len(self.data.keys):,}-record "
                          f"compacted topic (key index, no pass running)", dur.name,
            "records/s", {"eventlog": records / index_s, "sqlite3": None, "ceiling": None,
                          "vs_sqlite3": None, "vs_ceiling": None,
                          "without_key_index": records / plain_s,
                          "written_mb_per_append": None if index_mb is None
                          else index_mb / count,
                          "written_mb_per_append_without": None if plain_mb is None
                          else plain_mb / count},
            note=f"{count} appends of 1,000 records with random keys of "
                 f"{self.data.distinct_keys:,}; a delete topic in the same log: "
                 f"{records / plain_s:,.0f} records/s" + per_batch))

    # -- 2. latency

    def latency(self) -> None:
        args = self.args
        chunk_sizes = [0, *args.explicit_records]  # 0: the module's default
        for dur in self.classes:
            self.latency_baseline(dur)
            for chunk in chunk_sizes:
                if chunk and dur.name not in args.explicit_classes:
                    continue
                self.latency_thread(dur, chunk)
                self.latency_process(dur, chunk)
            self.latency_automatic(dur)

    def add_latency(self, label: str, dur: Durability, samples: Sequence[int],
                    before: Sequence[int] | None, note: str) -> None:
        """A row; ``before``: the samples taken on the same store just before compaction
        started, which the p99 is compared with."""
        values = summary(samples)
        p99 = values["p99_ms"]
        assert p99 is not None
        without = None if before is None else summary(before)["p99_ms"]
        ratio = None if without is None else p99 / without
        values["p99_without_ms"] = without
        values["samples_without"] = None if before is None else len(before)
        values["p99_vs_without"] = ratio
        self.rows.append(Row(
            "latency", label, dur.name, "ms", values,
            target=None if before is None else f"p99 <= {P99_TARGET:.0f}x without",
            met=None if ratio is None else ratio <= P99_TARGET, note=note))

    def before(self, log: eventlog.Log) -> list[int]:
        """Warm up, then the samples without compaction that a variant is compared with:
        taken on its own store right before, so that the machine's state at that moment
        (a shared machine's disk and CPU vary over minutes) is in both."""
        os.sync()  # the write-back of earlier variants' stores is not this variant's
        sample_appends(log, LIVE, self.data, self.rng, lambda: True, 50)
        return sample_appends(log, LIVE, self.data, self.rng, lambda: True,
                              self.args.before_samples)

    def latency_baseline(self, dur: Durability) -> None:
        self.progress(f"append latency, nothing running [{dur.name}] ...")
        path = self.copy("el", f"el-latency-{dur.name}")
        with eventlog.open(path, durability=dur.eventlog) as log:
            os.sync()
            sample_appends(log, LIVE, self.data, self.rng, lambda: True, 50)  # warm-up
            samples = sample_appends(log, LIVE, self.data, self.rng, lambda: True,
                                     self.args.latency_samples)
        shutil.rmtree(path)
        self.add_latency("log.append(), no compaction running", dur, samples, None,
                                f"a compacted topic with min.cleanable.dirty.ratio=1.0 (no "
                                f"pass runs); the log also holds the {len(self.data.keys):,}"
                                f"-record topic")

    def chunk_label(self, chunk: int, dur: Durability) -> str:
        """The explicit chunk's record budget in this class (patched, or the default)."""
        name = "EXPLICIT_RECORDS_NO_SYNC" if dur.eventlog == "off" else "EXPLICIT_RECORDS"
        records = chunk or getattr(compaction_module, name)
        return f"{name}={records:,}" + ("" if not chunk else " (patched)")

    def latency_thread(self, dur: Durability, chunk: int) -> None:
        self.progress(f"append latency while a thread compacts ({self.chunk_label(chunk, dur)}) "
                      f"[{dur.name}] ...")
        path = self.copy("el", f"el-latency-thread-{dur.name}")
        defaults = (compaction_module.EXPLICIT_RECORDS, compaction_module.EXPLICIT_RECORDS_NO_SYNC)
        outcome: dict[str, Any] = {}
        with eventlog.open(path, durability=dur.eventlog) as log:
            before = self.before(log)

            def compact() -> None:
                try:
                    start = time.perf_counter()
                    outcome["result"] = log.compact(BIG)
                    outcome["seconds"] = time.perf_counter() - start
                except BaseException as exc:
                    outcome["error"] = exc

            if chunk:
                compaction_module.EXPLICIT_RECORDS = chunk  # type: ignore[misc]
                compaction_module.EXPLICIT_RECORDS_NO_SYNC = chunk  # type: ignore[misc]
            try:
                thread = threading.Thread(target=compact, name="bench-compact")
                thread.start()
                samples = sample_appends(log, LIVE, self.data, self.rng, thread.is_alive,
                                         10**9)
                thread.join()
            finally:
                (compaction_module.EXPLICIT_RECORDS,  # type: ignore[misc]
                 compaction_module.EXPLICIT_RECORDS_NO_SYNC) = defaults  # type: ignore[misc]
        shutil.rmtree(path)
        if "error" in outcome:
            raise outcome["error"]
        self.add_latency(f"log.append() while a thread runs log.compact(), "
                         f"{self.chunk_label(chunk, dur)}", dur, samples, before,
                         f"the pass over {len(self.data.keys):,} records took "
                         f"{outcome['seconds']:.1f} s beside the appends")

    def latency_process(self, dur: Durability, chunk: int) -> None:
        self.progress(f"append latency while another process compacts "
                      f"({self.chunk_label(chunk, dur)}) [{dur.name}] ...")
        path = self.copy("el", f"el-latency-process-{dur.name}")
        proc = subprocess.Popen(
            [sys.executable, "-c", COMPACT_WORKER, str(path), dur.eventlog, BIG, str(chunk)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=HERE)
        assert proc.stdin is not None
        assert proc.stdout is not None
        try:
            if proc.stdout.readline().strip() != "ready":
                raise RuntimeError("the compacting process failed to start (see stderr)")
            with eventlog.open(path, durability=dur.eventlog) as log:
                before = self.before(log)
                proc.stdin.write("go\n")
                proc.stdin.flush()
                samples = sample_appends(log, LIVE, self.data, self.rng,
                                         lambda: proc.poll() is None, 10**9)
            out = json.loads(proc.stdout.readline())
            if proc.wait(60) != 0:
                raise RuntimeError(f"the compacting process exited with {proc.returncode}")
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        shutil.rmtree(path)
        self.add_latency(f"log.append() while another process runs log.compact(), "
                         f"{self.chunk_label(chunk, dur)}", dur, samples, before,
                         f"the pass over {len(self.data.keys):,} records took "
                         f"{out['seconds']:.1f} s beside the appends (no GIL shared)")

    def latency_automatic(self, dur: Durability) -> None:
        self.progress(f"append latency with the automatic pass on the same topic "
                      f"[{dur.name}] ...")
        path = self.copy("el", f"el-latency-auto-{dur.name}")
        with eventlog.open(path, durability=dur.eventlog) as log:
            before = self.before(log)
            assert not partition_state(log, BIG).compacting
            # The first append starts the pass (and does its first chunk).
            samples = sample_appends(log, BIG, self.data, self.rng, lambda: True, 1)
            assert partition_state(log, BIG).compacting, "the first append started no pass"
            samples += sample_appends(log, BIG, self.data, self.rng,
                                      lambda: partition_state(log, BIG).compacting,
                                      self.args.auto_samples - 1)
            still_running = partition_state(log, BIG).compacting
        shutil.rmtree(path)
        self.add_latency(
            "log.append() into the topic its automatic pass is compacting", dur, samples,
            before,
            f"each append carries a chunk of compaction: at most "
            f"{compaction_module.AUTO_RECORDS:,} records judged, "
            f"{compaction_module.AUTO_BATCHES} batches or "
            f"{compaction_module.AUTO_BYTES // 1024:,} KiB stored (here each {BATCH:,}-record "
            f"batch is judged over several appends, and rewritten once); "
            + ("the pass was still running after the last sample" if still_running
               else "the pass ended within the samples"))

    # -- 3. retention

    def retention(self) -> None:
        args = self.args
        dur = DURABILITY[args.retention_durability]
        retention = args.retention_mib * MIB
        self.progress(f"file size under retention_bytes={args.retention_mib} MiB, "
                      f"{args.retention_rounds} rounds [{dur.name}] ...")
        out = retention_run(self.fresh("el-retention"), self.data, dur, retention,
                            args.retention_rounds)
        sizes = out["sizes"]
        half = len(sizes) // 2
        at_half = max(sizes[:half])
        plateau = max(sizes[half:])
        growth = (sizes[-1] - at_half) / at_half
        logical = out["logical"][half:]
        plateau_round = next(i for i, size in enumerate(sizes) if size >= plateau) + 1
        final = out["final"]
        self.rows.append(Row(
            "retention", f"retention_bytes={args.retention_mib} MiB, appending "
                         f"{out['appended'] / retention:.0f}x that", dur.name, "MB",
            {"retention_mb": retention / 1e6, "plateau_mb": plateau / 1e6,
             "plateau_vs_retention": plateau / retention, "first_half_max_mb": at_half / 1e6,
             "final_mb": sizes[-1] / 1e6, "second_half_growth": growth,
             "kept_mb_min": min(logical) / 1e6, "kept_mb_max": max(logical) / 1e6,
             "rounds": len(sizes), "plateau_round": plateau_round,
             "sizes_mb": [round(s / 1e6, 3) for s in sizes]},
            note=f"data.mdb sampled after each of {len(sizes)} rounds of "
                 f"{out['batches_per_round']} batches; plateau reached after round "
                 f"{plateau_round}; kept (size_bytes, uncompressed) "
                 f"{min(logical) / 1e6:.1f}-{max(logical) / 1e6:.1f} MB in the second half; "
                 f"{final.batches} batches kept at the end; {out['seconds']:.1f} s"))

    def run(self) -> list[Row]:
        wanted = self.args.workloads
        if "throughput" in wanted or "latency" in wanted:
            self.build_templates()
        if "throughput" in wanted:
            self.throughput()
        if "latency" in wanted:
            self.latency()
        if "retention" in wanted:
            self.retention()
        return self.rows


# ----------------------------------------------------------------------------- output


def fmt(x: float | None, digits: int = 2) -> str:
    if x is None:
        return "-"
    if x >= 1000:
        return f"{x:,.0f}"
    if x >= 100:
        return f"{x:.0f}"
    if x >= 10:
        return f"{x:.1f}"
    return f"{x:.{digits}f}"


def ratio(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}x"


def met(row: Row) -> str:
    return "-" if row.met is None else ("yes" if row.met else "NO")


TABLES: dict[str, tuple[str, list[tuple[str, Callable[[Row], str]]]]] = {
    "throughput": ("Compaction throughput (records scanned per second)", [
        ("workload", lambda r: r.workload),
        ("class", lambda r: r.durability or "-"),
        ("eventlog", lambda r: fmt(r.values["eventlog"])),
        ("sqlite3", lambda r: fmt(r.values["sqlite3"])),
        ("ceiling", lambda r: fmt(r.values["ceiling"])),
        ("unit", lambda r: r.unit),
        ("vs sqlite3", lambda r: ratio(r.values["vs_sqlite3"])),
        ("vs ceiling", lambda r: ratio(r.values["vs_ceiling"])),
    ]),
    "latency": ("Single-append latency (ms) with and without compaction", [
        ("workload", lambda r: r.workload),
        ("class", lambda r: r.durability or "-"),
        ("p50", lambda r: fmt(r.values["p50_ms"], 3)),
        ("p99", lambda r: fmt(r.values["p99_ms"], 3)),
        ("p99.9", lambda r: fmt(r.values["p999_ms"], 3)),
        ("max", lambda r: fmt(r.values["max_ms"], 3)),
        ("samples", lambda r: f"{r.values['samples']:,.0f}"),
        ("p99 without", lambda r: fmt(r.values["p99_without_ms"], 3)),
        ("p99 vs without", lambda r: ratio(r.values["p99_vs_without"])),
        ("target", lambda r: r.target or "-"),
        ("met?", met),
    ]),
    "retention": ("Data file size under a byte retention", [
        ("workload", lambda r: r.workload),
        ("class", lambda r: r.durability or "-"),
        ("retention", lambda r: fmt(r.values["retention_mb"])),
        ("first-half max", lambda r: fmt(r.values["first_half_max_mb"])),
        ("plateau", lambda r: fmt(r.values["plateau_mb"])),
        ("final", lambda r: fmt(r.values["final_mb"])),
        ("unit", lambda r: r.unit),
        ("plateau / retention", lambda r: ratio(r.values["plateau_vs_retention"])),
        ("2nd-half growth", lambda r: f"{r.values['second_half_growth']:+.1%}"),
    ]),
}
_LEFT = {"workload", "class", "unit", "target", "met?"}


def fmt_line(items: Sequence[str], widths: Sequence[int], headers: Sequence[str]) -> str:
    return "  ".join(c.ljust(w) if h in _LEFT else c.rjust(w)
                     for c, w, h in zip(items, widths, headers, strict=True)).rstrip()


def print_tables(rows: Sequence[Row], markdown: bool = False) -> None:
    for table, (title, columns) in TABLES.items():
        chosen = [r for r in rows if r.table == table]
        if not chosen:
            continue
        headers = [h for h, _f in columns]
        cells = [[f(r) for _h, f in columns] for r in chosen]
        print(f"\n{title}\n")
        if markdown:
            print("| " + " | ".join(headers) + " |")
            print("| " + " | ".join("---" if h in _LEFT else "---:" for h in headers) + " |")
            for line in cells:
                print("| " + " | ".join(line) + " |")
        else:
            widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
            print(fmt_line(headers, widths, headers))
            print(fmt_line(["-" * w for w in widths], widths, headers))
            for line in cells:
                print(fmt_line(line, widths, headers))
        notes = [f"  {r.workload} [{r.durability}]: {r.note}" for r in chosen if r.note]
        if notes:
            print("\nnotes:")
            print("\n".join(notes))


def int_list(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true",
                        help="100,000 records, fewer samples and rounds (under a minute)")
    parser.add_argument("--records", type=int,
                        help="records in the compacted topic (default 1,000,000; 100,000 "
                             "with --quick)")
    parser.add_argument("--keys", type=int, default=10_000,
                        help="distinct keys (default 10,000)")
    parser.add_argument("--durability", default="off,full",
                        help="comma-separated durability classes of the throughput and "
                             "latency workloads (default off,full)")
    parser.add_argument("--latency-samples", type=int,
                        help="appends without compaction (default 3,000; 500 with --quick)")
    parser.add_argument("--before-samples", type=int,
                        help="appends without compaction taken right before each variant "
                             "with compaction, on its store, to compare its p99 with "
                             "(default 1,000; 300 with --quick)")
    parser.add_argument("--auto-samples", type=int,
                        help="at most this many appends during the automatic pass (default "
                             "500; 200 with --quick)")
    parser.add_argument("--explicit-records", type=int_list, default=None,
                        help="also run the background-compaction latency with "
                             "eventlog._compaction.EXPLICIT_RECORDS patched to each of these "
                             "(comma-separated; default 1000 in a full run, none with "
                             "--quick)")
    parser.add_argument("--explicit-classes", default="off",
                        help="durability classes in which --explicit-records runs "
                             "(default off)")
    parser.add_argument("--cost-batches", type=int,
                        help="batched appends measuring the key index's cost in a flushing "
                             "class (default 50; 20 with --quick)")
    parser.add_argument("--retention-mib", type=int, default=8,
                        help="retention_bytes of the retention workload, MiB (default 8)")
    parser.add_argument("--retention-rounds", type=int,
                        help="rounds of retention/8 bytes each (default 160, i.e. 20x the "
                             "retention; 80 with --quick)")
    parser.add_argument("--retention-durability", default="full", choices=sorted(DURABILITY),
                        help="durability of the retention workload (default full)")
    parser.add_argument("--workloads", default="throughput,latency,retention",
                        help="comma-separated subset of throughput,latency,retention")
    parser.add_argument("--data-dir", type=Path, default=HERE / "data",
                        help="where the stores are written (a temporary directory inside it "
                             "is removed afterwards)")
    parser.add_argument("--output", type=Path, default=RESULTS_PATH,
                        help="where to write the JSON results")
    parser.add_argument("--markdown", action="store_true",
                        help="print the tables as Markdown (for docs/performance.md)")
    args = parser.parse_args(argv)
    args.records = args.records or (100_000 if args.quick else 1_000_000)
    if args.records % BATCH or args.records < 10 * BATCH:
        parser.error(f"--records: a multiple of {BATCH:,}, at least {10 * BATCH:,}")
    args.latency_samples = args.latency_samples or (500 if args.quick else 3_000)
    args.auto_samples = args.auto_samples or (200 if args.quick else 500)
    args.before_samples = args.before_samples or (300 if args.quick else 1_000)
    args.cost_batches = args.cost_batches or (20 if args.quick else 50)
    if args.explicit_records is None:
        args.explicit_records = [] if args.quick else [1000]
    args.explicit_classes = [c.strip() for c in args.explicit_classes.split(",") if c.strip()]
    args.retention_rounds = args.retention_rounds or (80 if args.quick else 160)
    args.durability = [c.strip() for c in args.durability.split(",") if c.strip()]
    if not args.durability or set(args.durability) - set(DURABILITY):
        parser.error(f"--durability: choose from {', '.join(DURABILITY)}")
    args.workloads = [w.strip() for w in args.workloads.split(",") if w.strip()]
    if not args.workloads or set(args.workloads) - {"throughput", "latency", "retention"}:
        parser.error("--workloads: choose from throughput, latency, retention")

    args.data_dir.mkdir(parents=True, exist_ok=True)
    info = machine_info(args.data_dir)
    info.update(records=args.records, keys=args.keys, batch=BATCH,
                durability_classes=args.durability, latency_samples=args.latency_samples,
                before_samples=args.before_samples, auto_samples=args.auto_samples,
                explicit_records=args.explicit_records,
                explicit_classes=args.explicit_classes,
                retention_mib=args.retention_mib, retention_rounds=args.retention_rounds,
                retention_durability=args.retention_durability, workloads=args.workloads,
                chunk_bounds={name: getattr(compaction_module, name, None) for name in (
                    "AUTO_RECORDS", "AUTO_BATCHES", "AUTO_BYTES", "EXPLICIT_RECORDS",
                    "EXPLICIT_RECORDS_NO_SYNC", "CHUNK_PAUSE",
                    "EXPLICIT_BATCHES", "EXPLICIT_BYTES")})
    print("eventlog compaction and retention benchmark")
    for k, v in info.items():
        print(f"  {k}: {v}")

    def progress(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    data_root = Path(tempfile.mkdtemp(prefix="compaction-", dir=args.data_dir))
    started = time.perf_counter()
    try:
        rows = CompactionBench(args, data_root, progress).run()
    finally:
        shutil.rmtree(data_root, ignore_errors=True)
    info["elapsed_s"] = round(time.perf_counter() - started, 1)
    info["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    print_tables(rows, markdown=args.markdown)
    print(f"\ntotal time: {info['elapsed_s']} s")
    machine = {"table": None, "workload": "machine", "info": info}
    args.output.write_text(json.dumps([machine, *(r.to_json() for r in rows)], indent=2) + "\n")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
