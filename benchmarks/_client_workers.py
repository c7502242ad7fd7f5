"""Subprocess workers of ``clients.py`` (not a benchmark by itself).

``clients.py`` starts this file with ``python _client_workers.py ROLE JSON-ARGS`` and talks to
it over the child's stdin and stdout:

* ``el-consumer``: an eventlog Consumer (with or without a group) that receives the records
  of the cross-process latency workload. It writes ``R`` to stdout once it is ready (joined,
  position resolved), then one byte ``.`` per record received — the acknowledgement the
  producer waits for before sending the next record (ping-pong) — and finally writes its
  samples (``[t0, t1]`` pairs of ``time.monotonic_ns()``, system-wide on Linux) and its CPU
  use to the JSON file named in its arguments.
* ``sqlite-consumer``: the same for a sqlite3 table polled with ``SELECT ... LIMIT 500``,
  in a tight loop (``sleep_ms`` 0) or sleeping between empty polls.
* ``member``: one member of a consumer group, for the rebalance workload. It reads commands
  from stdin, one per line (``join``, ``close``, ``quit``), keeps polling between them, and
  answers with one JSON line per command on stdout.
"""

from __future__ import annotations

import json
import os
import queue
import sqlite3
import sys
import threading
import time
from pathlib import Path
from typing import Any

import eventlog


def _ack(byte: bytes) -> None:
    os.write(1, byte)


def _parse_t0(value: bytes) -> int:
    return int(value[:value.index(b"|")])


def el_consumer(args: dict[str, Any]) -> None:
    total: int = args["total"]
    log = eventlog.open(args["path"], durability=args["durability"])
    consumer = log.consumer(args["topic"], group=args.get("group"), auto_offset_reset="latest",
                            enable_auto_commit=False)
    # Join (with a group) and resolve the position before the producer starts.
    while not consumer.assignment():
        consumer.poll(0.05)
    for tp in consumer.assignment():
        consumer.position(tp)
    samples: list[tuple[int, int]] = []
    _ack(b"R")
    cpu0, wall0 = time.process_time(), time.monotonic()
    while len(samples) < total:
        for record in consumer.poll(1.0):
            t1 = time.monotonic_ns()
            assert record.value is not None
            samples.append((_parse_t0(record.value), t1))
            _ack(b".")
    cpu = time.process_time() - cpu0
    wall = time.monotonic() - wall0
    consumer.close()
    log.close()
    Path(args["out"]).write_text(json.dumps({"samples": samples, "cpu_s": cpu, "wall_s": wall}))


def sqlite_consumer(args: dict[str, Any]) -> None:
    total: int = args["total"]
    sleep = args["sleep_ms"] / 1000
    conn = sqlite3.connect(args["db"], isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={args['synchronous']}")
    page = args["page_sql"]
    topic = args["topic"]
    (last,) = conn.execute("SELECT COALESCE(MAX(offset) + 1, 0) FROM records").fetchone()
    samples: list[tuple[int, int]] = []
    _ack(b"R")
    cpu0, wall0 = time.process_time(), time.monotonic()
    while len(samples) < total:
        rows = conn.execute(page, (topic, 0, last, 500)).fetchall()
        if not rows:
            if sleep:
                time.sleep(sleep)
            continue
        t1 = time.monotonic_ns()
        for offset, _ts, _key, value in rows:
            samples.append((_parse_t0(value), t1))
            last = offset + 1
            _ack(b".")
    cpu = time.process_time() - cpu0
    wall = time.monotonic() - wall0
    conn.close()
    Path(args["out"]).write_text(json.dumps({"samples": samples, "cpu_s": cpu, "wall_s": wall}))


def member(args: dict[str, Any]) -> None:
    """A group member driven by commands on stdin; it polls continuously in between."""
    log = eventlog.open(args["path"], durability=args["durability"])
    topic = args["topic"]
    share = args["share"]
    consumer = log.consumer(topic, group=args["group"], auto_offset_reset="latest")
    commands: queue.Queue[str] = queue.Queue()

    def read_commands() -> None:
        for line in sys.stdin:
            commands.put(line.strip())
        commands.put("quit")

    threading.Thread(target=read_commands, daemon=True).start()

    def reply(obj: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()

    reply({"ready": True, "pid": os.getpid()})
    joined = False
    while True:
        try:
            command = commands.get(timeout=0.0 if joined else None)
        except queue.Empty:
            consumer.poll(0.01)
            continue
        if command == "join":
            # The join happens inside the first poll; the member has its share once its
            # assignment holds `share` partitions.
            t_join = time.monotonic_ns()
            while len(consumer.assignment()) < share:
                consumer.poll(0.005)
            reply({"t_join": t_join, "t_share": time.monotonic_ns(),
                   "assignment": sorted(tp.partition for tp in consumer.assignment())})
            joined = True
        elif command == "close":
            t_close = time.monotonic_ns()
            consumer.close()
            t_closed = time.monotonic_ns()
            reply({"t_close": t_close, "t_closed": t_closed})
            log.close()
            return
        elif command == "quit":
            consumer.close()
            log.close()
            return


ROLES = {"el-consumer": el_consumer, "sqlite-consumer": sqlite_consumer, "member": member}

if __name__ == "__main__":
    ROLES[sys.argv[1]](json.loads(sys.argv[2]))
