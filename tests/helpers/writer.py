"""Crash-test writer: appends records to a log forever, printing one line per acknowledged record.

Run as ``python tests/helpers/writer.py LOGDIR SEED [--durability MODE] [--wait-go]``.

The records of call number ``c`` are a pure function of ``(SEED, c)`` (see :func:`make_call`),
so the parent process regenerates them byte for byte instead of reading them back from the
writer. After each ``append``/``append_batch`` returns, the writer prints, per record::

    A <call> <index in call> <partition> <offset> <timestamp>

and flushes stdout. With ``--wait-go`` it imports everything, prints ``R`` and waits for one
line on stdin before opening the log, so that the parent can pre-start the next writer while
it verifies the previous one (this hides the interpreter start-up time).
"""

from __future__ import annotations

import argparse
import random
import sys
from typing import Any

TOPIC = "crash"
PARTITIONS = 2
HEADER_NAMES = ("trace-id", "source", "h", "ünïcode")


def _value(rng: random.Random) -> bytes | None:
    shape = rng.random()
    if shape < 0.02:
        return None  # a tombstone (keyed or not)
    size = rng.choice((0, rng.randrange(1, 64), rng.randrange(64, 600), rng.randrange(600, 2001)))
    if rng.random() < 0.5:
        return rng.randbytes(size)  # incompressible
    # Compressible: a repeated short pattern, so that zstd batches are exercised too.
    pattern = rng.randbytes(rng.randrange(1, 9))
    return (pattern * (size // len(pattern) + 1))[:size]


def _key(rng: random.Random) -> bytes | None:
    if rng.random() < 0.35:
        return None
    return rng.randbytes(rng.randrange(0, 41))


def _headers(rng: random.Random) -> list[tuple[str, bytes | None]] | None:
    if rng.random() < 0.75:
        return None
    out: list[tuple[str, bytes | None]] = []
    for _ in range(rng.randrange(0, 4)):
        value = None if rng.random() < 0.2 else rng.randbytes(rng.randrange(0, 30))
        out.append((rng.choice(HEADER_NAMES), value))
    return out


def _count(rng: random.Random) -> int:
    # 1..200, weighted towards small batches so that every run has many commits.
    r = rng.random()
    if r < 0.5:
        return rng.randrange(1, 11)
    if r < 0.85:
        return rng.randrange(11, 61)
    return rng.randrange(61, 201)


def make_call(seed: int, call: int) -> tuple[str, list[dict[str, Any]]]:
    """The call ``call`` of writer ``seed``: ("single" | "batch", record field dicts)."""
    rng = random.Random(f"eventlog-crash:{seed}:{call}")
    kind = "single" if rng.random() < 0.4 else "batch"
    n = 1 if kind == "single" else _count(rng)
    explicit_partition = rng.random() < 0.2
    explicit_ts = rng.random() < 0.3
    records = []
    for _ in range(n):
        records.append({
            "value": _value(rng),
            "key": _key(rng),
            "partition": rng.randrange(PARTITIONS) if explicit_partition else None,
            "timestamp": rng.randrange(1, 2**41) if explicit_ts else None,
            "headers": _headers(rng),
        })
    return kind, records


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("logdir")
    parser.add_argument("seed", type=int)
    parser.add_argument("--durability", default="full")
    parser.add_argument("--wait-go", action="store_true")
    args = parser.parse_args()

    import eventlog

    out = sys.stdout
    if args.wait_go:
        out.write("R\n")
        out.flush()
        if not sys.stdin.readline():
            return
    log = eventlog.open(args.logdir, durability=args.durability)
    # Random timestamps reach back to 1970: keep them (no retention).
    log.create_topic(TOPIC, partitions=PARTITIONS, exist_ok=True, retention_ms=-1)
    call = 0
    while True:
        kind, records = make_call(args.seed, call)
        if kind == "single":
            r = records[0]
            metas = [log.append(TOPIC, r["value"], key=r["key"], partition=r["partition"],
                                timestamp=r["timestamp"], headers=r["headers"])]
        else:
            metas = log.append_batch(TOPIC, [eventlog.NewRecord(**r) for r in records])
        out.write("".join(f"A {call} {i} {m.partition} {m.offset} {m.timestamp}\n"
                          for i, m in enumerate(metas)))
        out.flush()
        call += 1


if __name__ == "__main__":
    main()
