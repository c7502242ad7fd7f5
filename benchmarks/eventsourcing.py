"""Benchmark event sourcing: the ``eventsourcing`` library on eventlog vs on its own SQLite
module, and the exactly-once pipeline vs the same pipeline at-least-once.

Run it with ``make bench`` (last; a few minutes) or ``make bench QUICK=1``, or directly:
``.venv/bin/python benchmarks/eventsourcing.py [--quick]``. It prints two tables and writes
``benchmarks/results-eventsourcing.json``: a list whose first object (``"workload":
"machine"``) describes the machine and the run, then one object per table row (with a
``table`` key naming its table). docs/performance.md ("Event sourcing and exactly-once")
explains the method and records a run.

1. **Aggregates through the eventsourcing library.** An ``Application`` holding bank
   accounts (an aggregate with three event types: opened, deposited, withdrawn).
   ``--aggregates`` accounts (10,000; 1,000 with ``--quick``) of 10 events each (opened,
   then 9 deposits or withdrawals drawn with a fixed seed) are built in memory, then saved
   one account per ``app.save()`` (one insert of 10 events, one commit): saves/s counts the
   timed ``save()`` calls only. Then ``--loads`` random accounts (5,000; 1,000 with
   ``--quick``) are loaded with ``app.repository.get()`` (all their events replayed); each
   loaded balance is checked against the one built. The same accounts' stored events are
   then read with ``app.recorder.select_events()``: the persistence module alone. Both
   sides run in one process, on files under ``--data-dir``, in two like-for-like
   durability classes (plus, once, the library's in-memory module ``eventsourcing.popo``:
   what the library itself costs, the ceiling of any persistence module):

   - ``full``: ``PERSISTENCE_MODULE=eventlog.ext.eventsourcing``, ``EVENTLOG_DURABILITY=full``
     vs ``PERSISTENCE_MODULE=eventsourcing.sqlite`` (WAL, which the library always sets on
     files) with ``PRAGMA synchronous=FULL``;
   - ``normal``: ``EVENTLOG_DURABILITY=normal`` vs WAL with ``PRAGMA synchronous=NORMAL``.

   The library has no setting for ``synchronous`` (it keeps SQLite's compiled default,
   FULL): this benchmark wraps its connection pool's ``_create_connection`` to set it on
   every connection it opens, and reads it back through the application's datastore.
   The floor under a durable commit is measured beside: raw py-lmdb write transactions of
   one 200-byte put (``sync``/``metasync`` as eventlog opens them in each class) and raw
   sqlite3 one-row ``INSERT`` commits (WAL, the class's ``synchronous``), and bare
   ``os.fdatasync()`` calls after a 4 KiB write in the same directory, taking turns commit
   by commit (the shared disk's flush time varies by 10x within minutes).
2. **Exactly-once pipeline vs at-least-once.** ``--records`` input records (100,000;
   20,000 with ``--quick``) of ~100-byte JSON (``bench.make_dataset``) over 4 partitions,
   loaded before timing. A handler writes one output per input (the value with a suffix,
   same key, same partition number) to a 4-partition output topic. Exactly-once:
   ``log.processor(...)``, each polled batch one transaction with the outputs and the
   input positions. At-least-once: a group consumer (auto-commit off) that appends each
   polled batch's outputs with ``log.append_batch()`` and then calls ``consumer.commit()``
   (two commits per batch). Same ``max_poll_records`` (500), each on a fresh log per
   round, in classes ``full`` and ``off``; the first poll (joining the group, one record)
   is not timed; outputs are counted afterwards. Best of ``--repeat`` rounds (2), sides
   taking turns. Cost = 1 - eos/alo (negative: exactly-once was faster). A third side
   gives the same guarantee without the processor's per-record handler: per polled batch,
   one ``log.transaction()`` with ``tx.append_batch()`` of the outputs and the fenced
   ``tx.commit_offsets(consumer)``. The number of batches stored in the output topic is
   reported for each side.

Ratios are "higher is better" (eventlog / sqlite, records/s).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import lmdb

HERE = Path(__file__).resolve().parent
# This file is named like the library it measures: when run as a script its directory is
# sys.path[0] and would shadow the library. Import the library without it, then put the
# directory back (last) for the sibling benchmark modules.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]

import eventsourcing.sqlite as es_sqlite  # noqa: E402
from eventsourcing.application import Application  # noqa: E402
from eventsourcing.domain import Aggregate, event  # noqa: E402

sys.path.append(str(HERE))

from bench import machine_info, make_dataset  # noqa: E402

import eventlog  # noqa: E402

RESULTS_PATH = HERE / "results-eventsourcing.json"
SEED = 20240605
EVENTS_PER_AGGREGATE = 10
PARTITIONS = 4
MAX_POLL_RECORDS = 500
SAVE_TARGET = 3.0
EOS_COST_TARGET = 0.20
# eventlog class -> PRAGMA synchronous of the SQLite side (both WAL).
SQLITE_SYNCHRONOUS = {"full": "FULL", "normal": "NORMAL", "off": "OFF"}
# eventlog class -> (sync, metasync) of py-lmdb, as eventlog opens its environment.
LMDB_SYNC = {"full": (True, True), "normal": (True, False), "off": (False, False)}


# ----------------------------------------------------------------------------- domain


class Account(Aggregate):
    """A bank account: opened, then deposits and withdrawals."""

    @event("Opened")
    def __init__(self, owner: str) -> None:
        self.owner = owner
        self.balance = 0

    @event("Deposited")
    def deposit(self, amount: int) -> None:
        self.balance += amount

    @event("Withdrawn")
    def withdraw(self, amount: int) -> None:
        self.balance -= amount


class Bank(Application):
    """The application under test (its persistence module comes from ``env``)."""


def build_accounts(count: int, seed: int = SEED) -> list[Account]:
    """``count`` accounts of EVENTS_PER_AGGREGATE events each, not yet saved."""
    rng = random.Random(seed)
    accounts = []
    for i in range(count):
        account = Account(owner=f"customer-{i}")
        for _ in range(EVENTS_PER_AGGREGATE - 1):
            if account.balance >= 100 and rng.random() < 0.3:
                account.withdraw(rng.randrange(1, 100))
            else:
                account.deposit(rng.randrange(1, 1_000))
        accounts.append(account)
    return accounts


# ---------------------------------------------------------------- SQLite synchronous


_sqlite_synchronous: str | None = None
_original_create_connection = es_sqlite.SQLiteConnectionPool._create_connection


def _create_connection_with_synchronous(self: Any) -> Any:
    connection = _original_create_connection(self)
    if _sqlite_synchronous is not None:
        connection._sqlite_conn.execute(f"PRAGMA synchronous={_sqlite_synchronous}")
    return connection


es_sqlite.SQLiteConnectionPool._create_connection = _create_connection_with_synchronous  # type: ignore[method-assign]


@contextmanager
def sqlite_synchronous(mode: str) -> Iterator[None]:
    """Connections the library opens meanwhile get ``PRAGMA synchronous=mode``."""
    global _sqlite_synchronous
    _sqlite_synchronous = mode
    try:
        yield
    finally:
        _sqlite_synchronous = None


def sqlite_settings(app: Application) -> dict[str, Any]:
    """journal_mode and synchronous as the application's writer connection has them."""
    datastore = app.factory.datastore  # type: ignore[attr-defined]
    with datastore.transaction(commit=True) as cursor:
        cursor.execute("PRAGMA journal_mode")
        journal = cursor.fetchone()[0]
        cursor.execute("PRAGMA synchronous")
        synchronous = cursor.fetchone()[0]
    names = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}
    return {"journal_mode": journal, "synchronous": names.get(synchronous, synchronous)}


# ----------------------------------------------------------------------------- results


@dataclass
class Row:
    table: str
    workload: str
    durability: str
    values: dict[str, Any]
    unit: str
    target: str | None = None
    met: bool | None = None
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(out.pop("values"))
        return out


# ------------------------------------------------------------------------- aggregates


def run_aggregates(side: str, durability: str, path: Path, accounts: Sequence[Account],
                   load_ids: Sequence[Any]) -> dict[str, Any]:
    """Save every account (one save each), then load ``load_ids``; rates and settings."""
    if side == "popo":
        app = Bank(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
        settings = {}
    elif side == "eventlog":
        env = {"PERSISTENCE_MODULE": "eventlog.ext.eventsourcing",
               "EVENTLOG_PATH": str(path), "EVENTLOG_DURABILITY": durability}
        app = Bank(env=env)
        settings: dict[str, Any] = {"EVENTLOG_DURABILITY": durability}
    else:
        env = {"PERSISTENCE_MODULE": "eventsourcing.sqlite",
               "SQLITE_DBNAME": str(path / "bank.sqlite")}
        path.mkdir(parents=True, exist_ok=True)
        with sqlite_synchronous(SQLITE_SYNCHRONOUS[durability]):
            app = Bank(env=env)
            settings = sqlite_settings(app)
    expected = {a.id: a.balance for a in accounts}
    try:
        save = app.save
        start = time.perf_counter()
        for account in accounts:
            save(account)
        save_s = time.perf_counter() - start
        get = app.repository.get
        wrong = 0
        start = time.perf_counter()
        for account_id in load_ids:
            loaded = get(account_id)
            if loaded.balance != expected[account_id]:
                wrong += 1
        load_s = time.perf_counter() - start
        # The persistence module alone: the stored events of the same accounts.
        select = app.recorder.select_events
        start = time.perf_counter()
        for account_id in load_ids:
            select(account_id)
        select_s = time.perf_counter() - start
    finally:
        app.close()
    if wrong:
        raise RuntimeError(f"{side} [{durability}]: {wrong} loaded balances differ")
    return {"saves_per_s": len(accounts) / save_s, "loads_per_s": len(load_ids) / load_s,
            "selects_per_s": len(load_ids) / select_s,
            "save_s": save_s, "load_s": load_s, "select_s": select_s, "settings": settings}


def raw_commit_floor(durability: str, root: Path, commits: int) -> dict[str, float]:
    """Commits/s of the smallest commit each side can make in the class, and of a bare
    fdatasync; the three take turns commit by commit so that they see the same disk."""
    payload = os.urandom(200)
    env_dir = root / f"raw-lmdb-{durability}"
    env_dir.mkdir(parents=True)
    sync, metasync = LMDB_SYNC[durability]
    env = lmdb.open(str(env_dir), map_size=1 << 30, sync=sync, metasync=metasync)
    db = sqlite3.connect(root / f"raw-{durability}.sqlite", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA synchronous={SQLITE_SYNCHRONOUS[durability]}")
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB)")
    fd = os.open(root / f"raw-fsync-{durability}", os.O_RDWR | os.O_CREAT, 0o644)
    block = os.urandom(4096)
    spent = {"lmdb": 0.0, "sqlite": 0.0, "fdatasync": 0.0}
    clock = time.perf_counter
    try:
        for i in range(commits):
            t0 = clock()
            with env.begin(write=True) as txn:
                txn.put(b"%016d" % i, payload)
            t1 = clock()
            db.execute("INSERT INTO t (v) VALUES (?)", (payload,))
            t2 = clock()
            os.pwrite(fd, block, (i % 256) * 4096)
            os.fdatasync(fd)
            t3 = clock()
            spent["lmdb"] += t1 - t0
            spent["sqlite"] += t2 - t1
            spent["fdatasync"] += t3 - t2
    finally:
        env.close()
        db.close()
        os.close(fd)
    return {"lmdb_commits_per_s": commits / spent["lmdb"],
            "sqlite_commits_per_s": commits / spent["sqlite"],
            "fdatasync_per_s": commits / spent["fdatasync"]}


# --------------------------------------------------------------------------- pipeline


def transform(value: bytes) -> bytes:
    return value + b' /* checked */'


def load_input(path: Path, durability: str, keys: Sequence[bytes],
               values: Sequence[bytes]) -> eventlog.Log:
    log = eventlog.open(path, durability=durability)
    log.create_topic("in", PARTITIONS, retention_ms=-1)
    log.create_topic("out", PARTITIONS, retention_ms=-1)
    for p in range(PARTITIONS):
        part_values = values[p::PARTITIONS]
        part_keys = keys[p::PARTITIONS]
        for i in range(0, len(part_values), 1000):
            log.append_columns("in", part_values[i:i + 1000], keys=part_keys[i:i + 1000],
                               partition=p)
    return log


def count_outputs(log: eventlog.Log) -> int:
    ends = log.end_offsets("out")
    starts = log.beginning_offsets("out")
    return sum(ends[p] - starts[p] for p in ends)


def run_exactly_once(log: eventlog.Log, total: int) -> float:
    def handler(record: eventlog.Record, tx: eventlog.Transaction) -> None:
        tx.append("out", transform(record.value), key=record.key, partition=record.partition)

    with log.processor("in", group="eos", handler=handler, auto_offset_reset="earliest",
                       max_poll_records=MAX_POLL_RECORDS) as processor:
        done = 0
        while not done:  # join the group (not timed)
            done = processor.poll(timeout=1.0, max_records=1)
        start = time.perf_counter()
        while done < total:
            done += processor.poll(timeout=1.0)
        return time.perf_counter() - start


def run_exactly_once_batched(log: eventlog.Log, total: int) -> float:
    """The processor's guarantee without its per-record handler: per polled batch, one
    transaction with ``tx.append_batch()`` of the outputs and the consumer's positions
    (fenced ``tx.commit_offsets(consumer)``)."""
    consumer = log.consumer("in", group="eos-batch", auto_offset_reset="earliest",
                            enable_auto_commit=False, max_poll_records=MAX_POLL_RECORDS)
    new_record = eventlog.NewRecord

    def process(records: list[eventlog.Record]) -> int:
        with log.transaction() as tx:
            tx.append_batch("out", [new_record(transform(r.value), key=r.key,
                                               partition=r.partition) for r in records])
            tx.commit_offsets(consumer)
        return len(records)

    try:
        done = 0
        while not done:  # join the group (not timed)
            records = consumer.poll(timeout=1.0, max_records=1)
            if records:
                done = process(records)
        start = time.perf_counter()
        while done < total:
            records = consumer.poll(timeout=1.0)
            if records:
                done += process(records)
        return time.perf_counter() - start
    finally:
        consumer.close(autocommit=False)


def run_at_least_once(log: eventlog.Log, total: int) -> float:
    consumer = log.consumer("in", group="alo", auto_offset_reset="earliest",
                            enable_auto_commit=False, max_poll_records=MAX_POLL_RECORDS)
    new_record = eventlog.NewRecord

    def process(records: list[eventlog.Record]) -> int:
        log.append_batch("out", [new_record(transform(r.value), key=r.key, partition=r.partition)
                                 for r in records])
        consumer.commit()
        return len(records)

    try:
        done = 0
        while not done:  # join the group (not timed)
            records = consumer.poll(timeout=1.0, max_records=1)
            if records:
                done = process(records)
        start = time.perf_counter()
        while done < total:
            records = consumer.poll(timeout=1.0)
            if records:
                done += process(records)
        return time.perf_counter() - start
    finally:
        consumer.close(autocommit=False)


# ------------------------------------------------------------------------------ bench


class EventSourcingBench:
    def __init__(self, args: argparse.Namespace, root: Path,
                 progress: Callable[[str], None]) -> None:
        self.args = args
        self.root = root
        self.progress = progress
        self.rows: list[Row] = []
        self.serial = 0

    def fresh(self, name: str) -> Path:
        self.serial += 1
        return self.root / f"{self.serial:03d}-{name}"

    def aggregates(self) -> None:
        args = self.args
        rng = random.Random(SEED + 1)
        popo: dict[str, Any] | None = None
        for durability in args.durability:
            # Each side gets its own (equal) objects: saving marks their events collected.
            results = {}
            for side in ("eventlog", "sqlite") if popo else ("popo", "eventlog", "sqlite"):
                accounts = build_accounts(args.aggregates)
                load_ids = [accounts[rng.randrange(len(accounts))].id
                            for _ in range(args.loads)]
                self.progress(f"aggregates: {side} [{durability}] ...")
                results[side] = run_aggregates(side, durability, self.fresh(side), accounts,
                                               load_ids)
                self.progress(f"  saves/s {results[side]['saves_per_s']:,.0f}, loads/s "
                              f"{results[side]['loads_per_s']:,.0f}")
            popo = popo or results["popo"]
            el, sq = results["eventlog"], results["sqlite"]
            settings = (f"eventlog EVENTLOG_DURABILITY={durability}; sqlite "
                        f"journal_mode={sq['settings']['journal_mode']}, "
                        f"synchronous={sq['settings']['synchronous']}")
            n = args.aggregates
            for what, unit_key, label in (
                ("saves", "saves_per_s",
                 f"app.save() of one account with {EVENTS_PER_AGGREGATE} events, "
                 f"{n:,} accounts"),
                ("loads", "loads_per_s",
                 f"app.repository.get() of a random account ({EVENTS_PER_AGGREGATE} events), "
                 f"{args.loads:,} loads"),
                ("selects", "selects_per_s",
                 "recorder.select_events() of the same accounts (the module alone)"),
            ):
                ratio = el[unit_key] / sq[unit_key]
                self.rows.append(Row(
                    "aggregates", label, durability,
                    {"eventlog": el[unit_key], "sqlite": sq[unit_key], "ratio": ratio,
                     "library_in_memory": popo[unit_key],
                     "eventlog_s": el[f"{what[:-1]}_s"], "sqlite_s": sq[f"{what[:-1]}_s"],
                     "settings": settings},
                    f"{what}/s", target=None if what == "selects" else f">= {SAVE_TARGET:g}x",
                    met=None if what == "selects" else ratio >= SAVE_TARGET,
                    note=settings if what == "saves" else ""))
            floor = raw_commit_floor(durability, self.fresh("raw"), args.raw_commits)
            self.rows.append(Row(
                "aggregates", f"raw commit floor: one small put (py-lmdb) / one-row INSERT "
                f"(sqlite3 WAL); fdatasync alone {floor['fdatasync_per_s']:,.0f}/s",
                durability,
                {"eventlog": floor["lmdb_commits_per_s"], "sqlite": floor["sqlite_commits_per_s"],
                 "ratio": floor["lmdb_commits_per_s"] / floor["sqlite_commits_per_s"],
                 "fdatasync_per_s": floor["fdatasync_per_s"], "library_in_memory": None},
                "commits/s"))

    def pipeline(self) -> None:
        args = self.args
        values, keys = make_dataset(args.records, seed=SEED)
        for durability in args.pipeline_durability:
            best: dict[str, float] = {}
            batches: dict[str, int] = {}
            for round_ in range(args.repeat):
                for side in ("alo", "eos", "eos-batch"):
                    path = self.fresh(f"pipeline-{side}")
                    with load_input(path, durability, keys, values) as log:
                        self.progress(f"pipeline: {side} [{durability}] round {round_ + 1} ...")
                        run = {"alo": run_at_least_once, "eos": run_exactly_once,
                               "eos-batch": run_exactly_once_batched}[side]
                        elapsed = run(log, args.records)
                        outputs = count_outputs(log)
                        batches[side] = sum(p.batches for p in log.describe_topic("out").partitions)
                    if outputs != args.records:
                        raise RuntimeError(f"{side} [{durability}]: {outputs} outputs for "
                                           f"{args.records} inputs")
                    rate = args.records / elapsed
                    self.progress(f"  {rate:,.0f} records/s")
                    best[side] = max(best.get(side, 0.0), rate)
                    shutil.rmtree(path, ignore_errors=True)
            cost = 1 - best["eos"] / best["alo"]
            batch_cost = 1 - best["eos-batch"] / best["alo"]
            self.rows.append(Row(
                "pipeline", f"{args.records:,} records over {PARTITIONS} partitions, one "
                f"output each, max_poll_records={MAX_POLL_RECORDS}", durability,
                {"exactly_once": best["eos"], "at_least_once": best["alo"], "cost": cost,
                 "exactly_once_batched": best["eos-batch"], "batched_cost": batch_cost,
                 "output_batches": batches},
                "records/s", target=f"cost <= {EOS_COST_TARGET:.0%}",
                met=cost <= EOS_COST_TARGET,
                note=f"batches stored in the output topic: processor {batches['eos']:,}, "
                     f"transaction with append_batch {batches['eos-batch']:,}, at-least-once "
                     f"{batches['alo']:,}"))

    def run(self) -> list[Row]:
        if "aggregates" in self.args.workloads:
            self.aggregates()
        if "pipeline" in self.args.workloads:
            self.pipeline()
        return self.rows


# ----------------------------------------------------------------------------- output


def fmt(x: float | None) -> str:
    if x is None:
        return "-"
    if x >= 100:
        return f"{x:,.0f}"
    return f"{x:.1f}"


def met(row: Row) -> str:
    return "-" if row.met is None else ("yes" if row.met else "NO")


TABLES: dict[str, tuple[str, list[tuple[str, Callable[[Row], str]]]]] = {
    "aggregates": ("Aggregates through the eventsourcing library (eventlog vs its SQLite "
                   "module)", [
        ("workload", lambda r: r.workload),
        ("class", lambda r: r.durability),
        ("eventlog", lambda r: fmt(r.values["eventlog"])),
        ("sqlite", lambda r: fmt(r.values["sqlite"])),
        ("library in memory", lambda r: fmt(r.values["library_in_memory"])),
        ("unit", lambda r: r.unit),
        ("eventlog / sqlite", lambda r: f"{r.values['ratio']:.2f}x"),
        ("target", lambda r: r.target or "-"),
        ("met?", met),
    ]),
    "pipeline": ("Exactly-once pipeline vs at-least-once", [
        ("workload", lambda r: r.workload),
        ("class", lambda r: r.durability),
        ("exactly-once", lambda r: fmt(r.values["exactly_once"])),
        ("at-least-once", lambda r: fmt(r.values["at_least_once"])),
        ("unit", lambda r: r.unit),
        ("cost", lambda r: f"{r.values['cost']:+.1%}"),
        ("exactly-once, tx.append_batch", lambda r: fmt(r.values["exactly_once_batched"])),
        ("its cost", lambda r: f"{r.values['batched_cost']:+.1%}"),
        ("target", lambda r: r.target or "-"),
        ("met?", met),
    ]),
}
_LEFT = {"workload", "class", "unit", "target", "met?"}


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
            for line in [headers, ["-" * w for w in widths], *cells]:
                print("  ".join(c.ljust(w) if h in _LEFT else c.rjust(w)
                                for c, w, h in zip(line, widths, headers)).rstrip())
        notes = [f"  [{r.durability}] {r.note}" for r in chosen if r.note]
        if notes:
            print("\nnotes:")
            print("\n".join(notes))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true",
                        help="1,000 aggregates, 1,000 loads, 20,000 pipeline records")
    parser.add_argument("--aggregates", type=int,
                        help="accounts saved (default 10,000; 1,000 with --quick)")
    parser.add_argument("--loads", type=int,
                        help="random accounts loaded (default 5,000; 1,000 with --quick)")
    parser.add_argument("--durability", default="full,normal",
                        help="classes of the aggregate workload (default full,normal)")
    parser.add_argument("--raw-commits", type=int,
                        help="commits of the raw commit floor (default 1,000; 300 with "
                             "--quick)")
    parser.add_argument("--records", type=int,
                        help="pipeline input records (default 100,000; 20,000 with --quick)")
    parser.add_argument("--pipeline-durability", default="full,off",
                        help="classes of the pipeline workload (default full,off)")
    parser.add_argument("--repeat", type=int, default=2,
                        help="pipeline rounds per side, best kept (default 2)")
    parser.add_argument("--workloads", default="aggregates,pipeline",
                        help="comma-separated subset of aggregates,pipeline")
    parser.add_argument("--data-dir", type=Path, default=HERE / "data",
                        help="where the stores are written (a temporary directory inside it "
                             "is removed afterwards)")
    parser.add_argument("--output", type=Path, default=RESULTS_PATH,
                        help="where to write the JSON results")
    parser.add_argument("--markdown", action="store_true",
                        help="print the tables as Markdown (for docs/performance.md)")
    args = parser.parse_args(argv)
    args.aggregates = args.aggregates or (1_000 if args.quick else 10_000)
    args.loads = args.loads or (1_000 if args.quick else 5_000)
    args.raw_commits = args.raw_commits or (300 if args.quick else 1_000)
    args.records = args.records or (20_000 if args.quick else 100_000)
    args.durability = [c.strip() for c in args.durability.split(",") if c.strip()]
    args.pipeline_durability = [c.strip() for c in args.pipeline_durability.split(",")
                                if c.strip()]
    for classes in (args.durability, args.pipeline_durability):
        if not classes or set(classes) - set(SQLITE_SYNCHRONOUS):
            parser.error("durability classes: choose from full, normal, off")
    args.workloads = [w.strip() for w in args.workloads.split(",") if w.strip()]
    if not args.workloads or set(args.workloads) - {"aggregates", "pipeline"}:
        parser.error("--workloads: choose from aggregates, pipeline")

    import eventsourcing as es_package

    args.data_dir.mkdir(parents=True, exist_ok=True)
    info = machine_info(args.data_dir)
    info.update(eventsourcing=getattr(es_package, "__version__", None) or _version("eventsourcing"),
                aggregates=args.aggregates, events_per_aggregate=EVENTS_PER_AGGREGATE,
                loads=args.loads, durability_classes=args.durability,
                raw_commits=args.raw_commits, pipeline_records=args.records,
                pipeline_partitions=PARTITIONS, max_poll_records=MAX_POLL_RECORDS,
                pipeline_durability=args.pipeline_durability, repeat=args.repeat,
                workloads=args.workloads)
    print("eventlog event-sourcing benchmark")
    for k, v in info.items():
        print(f"  {k}: {v}")

    def progress(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    data_root = Path(tempfile.mkdtemp(prefix="eventsourcing-", dir=args.data_dir))
    started = time.perf_counter()
    try:
        rows = EventSourcingBench(args, data_root, progress).run()
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


def _version(distribution: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(distribution)
    except PackageNotFoundError:
        return None


if __name__ == "__main__":
    sys.exit(main())
