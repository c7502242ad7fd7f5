"""Crash-test transaction writer: commits log transactions forever, printing its progress.

Run as ``python tests/helpers/tx_writer.py LOGDIR ROUND [--durability MODE] [--wait-go]
[--stall-in SEQ | --stall-after SEQ]``.

Transaction number ``seq`` of writer ``ROUND`` is a pure function of ``(ROUND, seq)`` (see
:func:`make_tx`): a few appends to ``tx-orders`` (3 partitions), one to ``tx-audit``, an
``append_batch`` of events of one key to the key-indexed ``tx-stream`` with an expected
version, and an offset commit of group ``tx-progress`` whose offset counts the
transactions committed so far and whose metadata names this one. The parent regenerates
every transaction instead of trusting the writer's output. Each record's value is
``<round>:<seq>:<topic>:<index>``.

For each transaction the writer prints, flushing each line at once:

* ``B <seq>`` before it starts building it;
* ``P <seq>`` just before ``commit()`` is called (a transaction without this line was
  killed while being built: it must have left nothing);
* ``A <seq>`` after ``commit()`` returned (it must be complete in the log).

``--stall-in SEQ`` stops in the middle of building transaction ``SEQ`` (after some of its
appends, printing ``M <seq>``) and sleeps until killed; ``--stall-after SEQ`` sleeps right
after acknowledging it. Between appends the writer sleeps up to a millisecond, so that a
kill at a random moment often lands while a transaction is being built.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from typing import Any

ORDERS = "tx-orders"
AUDIT = "tx-audit"
STREAM = "tx-stream"
TOPICS = {ORDERS: 3, AUDIT: 1, STREAM: 2}
STREAM_KEY = b"stream"
GROUP = "tx-progress"


def value(round_: int, seq: int, topic: str, index: int) -> bytes:
    return f"{round_}:{seq}:{topic}:{index}".encode()


def make_tx(round_: int, seq: int) -> dict[str, Any]:
    """What transaction ``seq`` of writer ``round_`` appends: per topic, a list of
    ``(partition or None, key, value)`` in call order (the stream's events go in one
    ``append_batch``)."""
    rng = random.Random(f"eventlog-tx-crash:{round_}:{seq}")
    orders = []
    for i in range(rng.randrange(1, 5)):
        partition = rng.randrange(TOPICS[ORDERS]) if rng.random() < 0.7 else None
        key = None if partition is not None else rng.randbytes(4)
        orders.append((partition, key, value(round_, seq, ORDERS, i)))
    audit = [(None, None, value(round_, seq, AUDIT, 0))]
    stream = [(None, STREAM_KEY, value(round_, seq, STREAM, i))
              for i in range(rng.randrange(1, 4))]
    return {ORDERS: orders, AUDIT: audit, STREAM: stream}


def _pause(rng: random.Random) -> None:
    time.sleep(rng.uniform(0, 0.001))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("logdir")
    parser.add_argument("round", type=int)
    parser.add_argument("--durability", default="full")
    parser.add_argument("--wait-go", action="store_true")
    parser.add_argument("--stall-in", type=int, default=-1)
    parser.add_argument("--stall-after", type=int, default=-1)
    args = parser.parse_args()

    import eventlog

    out = sys.stdout

    def say(line: str) -> None:
        out.write(line + "\n")
        out.flush()

    if args.wait_go:
        say("R")
        if not sys.stdin.readline():
            return
    log = eventlog.open(args.logdir, durability=args.durability)
    for topic, partitions in TOPICS.items():
        log.create_topic(topic, partitions, exist_ok=True, retention_ms=-1,
                         key_index=topic == STREAM)
    progress = eventlog.TopicPartition(AUDIT, 0)
    committed = log.committed_offsets(GROUP).get(progress)
    count = committed.offset if committed is not None else 0
    version = log.key_version(STREAM, STREAM_KEY)
    rng = random.Random(f"eventlog-tx-crash-pauses:{args.round}")
    seq = 0
    while True:
        plan = make_tx(args.round, seq)
        say(f"B {seq}")
        tx = log.transaction()
        for partition, key, data in plan[ORDERS]:
            tx.append(ORDERS, data, key=key, partition=partition)
            _pause(rng)
            if seq == args.stall_in:
                say(f"M {seq}")
                time.sleep(3600)
        tx.append(AUDIT, plan[AUDIT][0][2])
        _pause(rng)
        events = plan[STREAM]
        tx.append_batch(STREAM, [eventlog.NewRecord(v, key=k) for _p, k, v in events],
                        expected_versions={STREAM_KEY: version})
        _pause(rng)
        tx.commit_offsets(GROUP, {progress: eventlog.OffsetAndMetadata(
            count + 1, f"{args.round}:{seq}")})
        say(f"P {seq}")
        tx.commit()
        count += 1
        version += len(events)
        say(f"A {seq}")
        if seq == args.stall_after:
            time.sleep(3600)
        seq += 1


if __name__ == "__main__":
    main()
