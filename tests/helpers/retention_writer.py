"""Retention crash-test writer: appends records while retention deletes old batches, forever.

Run as ``python tests/helpers/retention_writer.py LOGDIR SEED ROUND [--durability MODE]
[--wait-go]``.

Two topics of ``PARTITIONS`` partitions each:

* ``BYTES_TOPIC`` has a small ``retention.bytes``: almost every append also deletes old
  batches (automatic retention, in the append's transaction);
* ``MANUAL_TOPIC`` keeps everything by itself; this writer calls ``delete_records()`` and
  ``run_retention(now_ms=...)`` on it now and then (time retention against an explicit
  clock, so the wall clock never matters).

Record number ``seq`` of writer ``SEED`` in round ``ROUND`` is a pure function of those
three numbers (:func:`make_record`), so the parent regenerates it byte for byte. Lines
written to stdout (flushed at once):

* ``R``: imported, waiting for "go" on stdin (with ``--wait-go``);
* ``A <topic> <partition> <offset> <timestamp> <seq>``: record ``seq`` is acknowledged
  (written after append()/append_batch() returned);
* ``I D <partition> <before>`` then ``D <partition> <before> <log start>``: delete_records on
  ``MANUAL_TOPIC`` is about to be called / has returned;
* ``I T <cut>`` then ``T <cut>``: run_retention is about to remove / has removed the batches
  of ``MANUAL_TOPIC`` whose largest timestamp is below ``cut``.
"""

from __future__ import annotations

import argparse
import random
import sys
from typing import Any

BYTES_TOPIC = "by-bytes"
MANUAL_TOPIC = "manual"
TOPICS = (BYTES_TOPIC, MANUAL_TOPIC)
PARTITIONS = 2
RETENTION_BYTES = 8000
# Time retention of MANUAL_TOPIC: so long that the wall clock never expires anything; the
# writer passes now_ms = RETENTION_MS + cut to run_retention() to expire records before cut.
RETENTION_MS = 10**15
T0 = 1_600_000_000_000
MAX_BATCH = 20
HEADER_NAMES = ("trace-id", "ünïcode", "h")
MAX_VALUE = 200
MAX_KEY = 8
MAX_HEADERS = 2
MAX_HEADER_VALUE = 16
# An upper bound on the size_bytes of one record and of one batch.
MAX_RECORD_BYTES = MAX_VALUE + MAX_KEY + MAX_HEADERS * (6 + 10 + MAX_HEADER_VALUE)
MAX_BATCH_BYTES = MAX_BATCH * MAX_RECORD_BYTES


def timestamp_of(round_: int, seq: int, jitter: int) -> int:
    """Roughly increasing timestamps (out of order by up to a few records)."""
    return T0 + round_ * 10**8 + seq * 100 + jitter


def make_record(seed: int, round_: int, seq: int) -> dict[str, Any]:
    """Record ``seq`` of writer ``seed``: value, key, timestamp and headers."""
    rng = random.Random(f"eventlog-retention-crash:{seed}:{seq}")
    size = rng.randrange(0, MAX_VALUE + 1 - 12)
    value = b"%08x%04x" % (seed & 0xFFFFFFFF, seq & 0xFFFF) + rng.randbytes(size)
    key = b"k%d" % rng.randrange(50) if rng.random() < 0.9 else None
    headers = None
    if rng.random() < 0.3:
        headers = [
            (
                rng.choice(HEADER_NAMES),
                None if rng.random() < 0.2 else rng.randbytes(rng.randrange(MAX_HEADER_VALUE + 1)),
            )
            for _ in range(rng.randrange(MAX_HEADERS + 1))
        ]
    return {
        "value": value,
        "key": key,
        "timestamp": timestamp_of(round_, seq, rng.randrange(-500, 501)),
        "headers": headers,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("logdir")
    parser.add_argument("seed", type=int)
    parser.add_argument("round", type=int)
    parser.add_argument("--durability", default="normal")
    parser.add_argument("--wait-go", action="store_true")
    args = parser.parse_args()

    import eventlog

    out = sys.stdout

    def emit(text: str) -> None:
        out.write(text)
        out.flush()

    if args.wait_go:
        emit("R\n")
        if not sys.stdin.readline():
            return
    seed, round_ = args.seed, args.round
    rng = random.Random(f"eventlog-retention-crash-actions:{seed}")
    log = eventlog.open(args.logdir, durability=args.durability)
    log.create_topic(BYTES_TOPIC, partitions=PARTITIONS, exist_ok=True, retention_ms=-1,
                     retention_bytes=RETENTION_BYTES)
    log.create_topic(MANUAL_TOPIC, partitions=PARTITIONS, exist_ok=True,
                     retention_ms=RETENTION_MS, retention_bytes=-1)
    seq = 0
    while True:
        action = rng.random()
        if action < 0.85:
            topic = rng.choice(TOPICS)
            n = 1 if rng.random() < 0.5 else rng.randrange(1, MAX_BATCH + 1)
            partition = rng.randrange(PARTITIONS) if rng.random() < 0.3 else None
            records = [make_record(seed, round_, seq + i) for i in range(n)]
            if n == 1 and rng.random() < 0.7:
                r = records[0]
                metas = [log.append(topic, r["value"], key=r["key"], partition=partition,
                                    timestamp=r["timestamp"], headers=r["headers"])]
            else:
                metas = log.append_batch(
                    topic, [eventlog.NewRecord(partition=partition, **r) for r in records])
            emit("".join(f"A {TOPICS.index(topic)} {m.partition} {m.offset} {m.timestamp} "
                         f"{seq + i}\n" for i, m in enumerate(metas)))
            seq += n
        elif action < 0.93:
            p = rng.randrange(PARTITIONS)
            start = log.beginning_offsets(MANUAL_TOPIC)[p]
            end = log.end_offsets(MANUAL_TOPIC)[p]
            before = start + int((end - start) * rng.uniform(0.0, 0.6))
            emit(f"I D {p} {before}\n")
            got = log.delete_records(MANUAL_TOPIC, p, before)
            emit(f"D {p} {before} {got}\n")
        else:
            # Expire what is older than about 60 records ago.
            cut = timestamp_of(round_, max(0, seq - rng.randrange(20, 100)), 0)
            emit(f"I T {cut}\n")
            log.run_retention(MANUAL_TOPIC if rng.random() < 0.5 else None,
                              now_ms=RETENTION_MS + cut)
            emit(f"T {cut}\n")


if __name__ == "__main__":
    main()
