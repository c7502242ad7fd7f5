"""Compaction crash-test writer: appends keyed records while compaction runs, forever.

Run as ``python tests/helpers/compaction_writer.py LOGDIR SEED ROUND [--durability MODE]
[--wait-go]``.

Two topics of ``PARTITIONS`` partitions each, written with a small key set (keys repeat
all the time, one key is longer than the key index stores raw) and tombstones:

* ``COMPACT_TOPIC`` (``cleanup.policy=compact``);
* ``BOTH_TOPIC`` (``compact,delete``) with a small ``retention.bytes``, so that retention
  deletes old batches too.

Compaction runs constantly: ``min.cleanable.dirty.ratio`` is tiny, the time-based triggers
are looked at on every append (``CHECK_INTERVAL`` patched to 0), the chunks of work are
made small (``AUTO_RECORDS``/``EXPLICIT_RECORDS`` patched) so that a pass spans many
transactions and a kill lands in the middle of one, and ``log.compact()`` is called now
and then. Tombstones stay (``delete.retention.ms`` is far longer than a test runs).

Every record goes to its key's default partition. Record number ``seq`` of writer
``SEED`` in round ``ROUND`` is a pure function of those three numbers
(:func:`make_record`), so the parent regenerates it byte for byte. Lines written to stdout
(flushed at once):

* ``R``: imported, waiting for "go" on stdin (with ``--wait-go``);
* ``W <topic> <seq> <n>``: records ``seq`` .. ``seq + n - 1`` are about to be appended to
  topic number ``topic`` in one call (one transaction: all of them or none);
* ``A <topic> <partition> <offset> <seq>``: record ``seq`` is acknowledged (written after
  append()/append_batch() returned);
* ``I C`` then ``C <records removed>``: log.compact() is about to be called / has returned.
"""

from __future__ import annotations

import argparse
import random
import sys
from typing import Any

COMPACT_TOPIC = "compacted"
BOTH_TOPIC = "compact-delete"
TOPICS = (COMPACT_TOPIC, BOTH_TOPIC)
PARTITIONS = 2
RETENTION_BYTES = 800
# Tombstones outlive the test (the horizon is the wall clock plus this).
DELETE_RETENTION_MS = 10**12
DIRTY_RATIO = 0.05
KEYS = (*(b"key-%02d" % i for i in range(10)), b"long-" + b"x" * 420)
TOMBSTONE_CHANCE = 0.15
T0 = 1_600_000_000_000
MAX_BATCH = 12
MAX_VALUE = 120
# Small chunks of compaction work per transaction (the engine's are hundreds or thousands
# of records and tens of batches): a pass over these small partitions then spans several
# transactions.
AUTO_RECORDS = 7
AUTO_BATCHES = 3
EXPLICIT_RECORDS = 13
EXPLICIT_BATCHES = 4


def make_record(seed: int, round_: int, seq: int) -> dict[str, Any]:
    """Record ``seq`` of writer ``seed``: value (None: a tombstone), key, timestamp."""
    rng = random.Random(f"eventlog-compaction-crash:{seed}:{seq}")
    key = rng.choice(KEYS)
    value = None
    if rng.random() >= TOMBSTONE_CHANCE:
        value = b"%08x%04x" % (seed & 0xFFFFFFFF, seq & 0xFFFF) + rng.randbytes(
            rng.randrange(MAX_VALUE - 12))
    return {"value": value, "key": key, "timestamp": T0 + round_ * 10**8 + seq * 10}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("logdir")
    parser.add_argument("seed", type=int)
    parser.add_argument("round", type=int)
    parser.add_argument("--durability", default="normal")
    parser.add_argument("--wait-go", action="store_true")
    args = parser.parse_args()

    import eventlog
    import eventlog._compaction as compaction

    compaction.CHECK_INTERVAL = 0.0  # type: ignore[misc]
    compaction.AUTO_RECORDS = AUTO_RECORDS  # type: ignore[misc]
    compaction.EXPLICIT_RECORDS = EXPLICIT_RECORDS  # type: ignore[misc]
    compaction.AUTO_BATCHES = AUTO_BATCHES  # type: ignore[misc]
    compaction.EXPLICIT_BATCHES = EXPLICIT_BATCHES  # type: ignore[misc]

    out = sys.stdout

    def emit(text: str) -> None:
        out.write(text)
        out.flush()

    if args.wait_go:
        emit("R\n")
        if not sys.stdin.readline():
            return
    seed, round_ = args.seed, args.round
    rng = random.Random(f"eventlog-compaction-crash-actions:{seed}")
    log = eventlog.open(args.logdir, durability=args.durability)
    common = {
        "delete_retention_ms": DELETE_RETENTION_MS,
        "min_cleanable_dirty_ratio": DIRTY_RATIO,
        "retention_ms": -1,
    }
    log.create_topic(COMPACT_TOPIC, partitions=PARTITIONS, exist_ok=True,
                     cleanup_policy="compact", **common)
    log.create_topic(BOTH_TOPIC, partitions=PARTITIONS, exist_ok=True,
                     cleanup_policy="compact,delete", retention_bytes=RETENTION_BYTES, **common)
    seq = 0
    while True:
        if rng.random() < 0.93:
            t = rng.randrange(len(TOPICS))
            topic = TOPICS[t]
            n = 1 if rng.random() < 0.5 else rng.randrange(1, MAX_BATCH + 1)
            records = [make_record(seed, round_, seq + i) for i in range(n)]
            emit(f"W {t} {seq} {n}\n")
            if n == 1 and rng.random() < 0.7:
                r = records[0]
                metas = [log.append(topic, r["value"], key=r["key"], timestamp=r["timestamp"])]
            else:
                metas = log.append_batch(topic, [eventlog.NewRecord(**r) for r in records])
            emit("".join(f"A {t} {m.partition} {m.offset} {seq + i}\n"
                         for i, m in enumerate(metas)))
            seq += n
        else:
            emit("I C\n")
            results = log.compact(rng.choice((None, *TOPICS)))
            emit(f"C {sum(r.records_removed for r in results.values())}\n")


if __name__ == "__main__":
    main()
