"""Exactly-once pipeline worker: a ``log.processor`` run until idle, killed by the tests.

Run as ``python tests/helpers/tx_worker.py LOGDIR NAME SEED [--durability MODE]
[--wait-go] [--idle SECONDS]``.

The worker is a member of group ``eo`` reading topic ``in``; for each input record its
handler appends two outputs tagged with the input's ``<topic>:<partition>:<offset>``: one to
``out-a`` (keyed by the tag, value ``<tag>:a``) and one to ``out-b`` (value ``<tag>:b``),
pausing up to half a millisecond between them so that a kill often lands inside a
batch. Outputs and input positions commit in one transaction per polled batch; each batch is
1 to 8 records (chosen from SEED).

Output lines (flushed at once): ``R`` when ready (with ``--wait-go``: then it waits for a
line on stdin), ``A <n>`` after each batch of ``n`` records committed, ``F`` when a batch
was refused because a rebalance took a partition, ``DONE <total>`` when nothing arrived
for ``--idle`` seconds (then it leaves the group and exits 0).
"""

from __future__ import annotations

import argparse
import random
import sys
import time

GROUP = "eo"
INPUT = "in"
OUT_A = "out-a"
OUT_B = "out-b"


def tag(topic: str, partition: int, offset: int) -> bytes:
    return f"{topic}:{partition}:{offset}".encode()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("logdir")
    parser.add_argument("name")
    parser.add_argument("seed", type=int)
    parser.add_argument("--durability", default="full")
    parser.add_argument("--wait-go", action="store_true")
    parser.add_argument("--idle", type=float, default=1.0)
    args = parser.parse_args()

    import eventlog

    def say(line: str) -> None:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    if args.wait_go:
        say("R")
        if not sys.stdin.readline():
            return
    rng = random.Random(args.seed)

    def handler(record: eventlog.Record, tx: eventlog.Transaction) -> None:
        t = tag(record.topic, record.partition, record.offset)
        tx.append(OUT_A, t + b":a", key=t)
        time.sleep(rng.uniform(0, 0.0005))
        tx.append(OUT_B, t + b":b")

    total = 0
    with eventlog.open(args.logdir, durability=args.durability) as log:
        processor = log.processor(
            INPUT, group=GROUP, handler=handler, auto_offset_reset="earliest",
            max_poll_records=rng.randrange(1, 9), client_id=args.name,
            session_timeout_ms=10_000, heartbeat_interval_ms=200)
        with processor:
            idle_since = time.monotonic()
            while True:
                try:
                    done = processor.poll(timeout=0.1)
                except eventlog.CommitFailedError:
                    say("F")
                    continue
                if done:
                    total += done
                    say(f"A {done}")
                    idle_since = time.monotonic()
                elif time.monotonic() - idle_since >= args.idle:
                    break
    say(f"DONE {total}")


if __name__ == "__main__":
    main()
