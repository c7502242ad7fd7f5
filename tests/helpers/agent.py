"""A scriptable eventlog process for multi-process tests.

Run as ``python tests/helpers/agent.py``. It reads one JSON command per line on stdin and
answers each with one JSON line on stdout: ``{"ok": true, "result": ...}``, or
``{"ok": false, "error": "<exception class>", "message": ..., "topic": ..., "partition": ...,
"offset": ...}`` when the command raised. Bytes travel as hex strings.

Commands (``op`` plus arguments):

* ``open`` path, kwargs — ``eventlog.open(path, **kwargs)``; later commands use this log.
* ``create_topic`` name, partitions, config
* ``append`` topic, values (hex list), partition, delay — after ``delay`` seconds, one
  ``append`` per value; returns the offsets.
* ``append_seq`` topic, partition, proc, count, seed — values ``b"<proc>:<seq>"`` for seq in
  0..count-1, in order, mixing single appends and ``append_batch`` calls.
* ``append_bulk`` topic, partition, total_bytes, value_size — incompressible values through
  ``append_columns`` until ``total_bytes`` are stored; returns the number of records.
* ``read_all`` topic, partition — every record as [offset, value hex].
* ``end_offsets`` topic
* ``wait`` topic, partition, offset, timeout — ``Log.wait``.
* ``hold_read`` — begin a raw LMDB read transaction and keep it (a live reader slot).
* ``readers`` — LMDB's reader table (text).
* ``pid`` — this process's id.
* ``close`` — close the log.
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
from typing import Any

import eventlog

_log: eventlog.Log | None = None
_held: list[Any] = []


def _the_log() -> eventlog.Log:
    assert _log is not None, "no open log: send an 'open' command first"
    return _log


def _append_seq(topic: str, partition: int, proc: int, count: int, seed: int) -> list[int]:
    log = _the_log()
    rng = random.Random(seed)
    offsets: list[int] = []
    seq = 0
    while seq < count:
        if rng.random() < 0.5:
            meta = log.append(topic, b"%d:%d" % (proc, seq), partition=partition)
            offsets.append(meta.offset)
            seq += 1
        else:
            n = min(count - seq, rng.randrange(1, 30))
            metas = log.append_batch(topic, [
                eventlog.NewRecord(b"%d:%d" % (proc, s), partition=partition)
                for s in range(seq, seq + n)])
            offsets.extend(m.offset for m in metas)
            seq += n
    return offsets


def _append_bulk(topic: str, partition: int, total_bytes: int, value_size: int) -> int:
    log = _the_log()
    written = 0
    count = 0
    while written < total_bytes:
        values = [os.urandom(value_size) for _ in range(max(1, (256 << 10) // value_size))]
        log.append_columns(topic, values, partition=partition)
        written += value_size * len(values)
        count += len(values)
    return count


def _run(cmd: dict[str, Any]) -> Any:
    global _log
    op = cmd["op"]
    if op == "open":
        _log = eventlog.open(cmd["path"], **cmd.get("kwargs", {}))
        return None
    if op == "pid":
        return os.getpid()
    log = _the_log()
    if op == "create_topic":
        log.create_topic(cmd["name"], cmd.get("partitions", 1), config=cmd.get("config"),
                         exist_ok=cmd.get("exist_ok", False))
        return None
    if op == "append":
        time.sleep(cmd.get("delay", 0))
        return [log.append(cmd["topic"], bytes.fromhex(v), partition=cmd.get("partition")).offset
                for v in cmd["values"]]
    if op == "append_seq":
        return _append_seq(cmd["topic"], cmd["partition"], cmd["proc"], cmd["count"],
                           cmd["seed"])
    if op == "append_bulk":
        return _append_bulk(cmd["topic"], cmd["partition"], cmd["total_bytes"],
                            cmd["value_size"])
    if op == "read_all":
        return [[r.offset, r.value.hex() if r.value is not None else None]
                for r in log.scan(cmd["topic"], cmd["partition"])]
    if op == "end_offsets":
        return {str(p): o for p, o in log.end_offsets(cmd["topic"]).items()}
    if op == "wait":
        return log.wait(cmd["topic"], cmd["partition"], cmd["offset"], timeout=cmd["timeout"])
    if op == "hold_read":
        _held.append(log._storage.env.begin())
        return None
    if op == "readers":
        return log._storage.env.readers()
    if op == "close":
        log.close()
        _log = None
        return None
    raise ValueError(f"unknown op {op!r}")


def main() -> None:
    for line in sys.stdin:
        cmd = json.loads(line)
        try:
            reply: dict[str, Any] = {"ok": True, "result": _run(cmd)}
        except Exception as exc:
            reply = {"ok": False, "error": type(exc).__name__, "message": str(exc),
                     "topic": getattr(exc, "topic", None),
                     "partition": getattr(exc, "partition", None),
                     "offset": getattr(exc, "offset", None)}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
