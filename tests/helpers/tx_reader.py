"""Atomicity checker for concurrent readers of log transactions (a module and a script).

Transaction ``i`` of :func:`write_tx` appends ``RECORDS_PER_TX`` records tagged ``i``
across three topics (every partition of each) and commits offset ``i + 1`` of group
``atom`` for ``atom-b[0]``, all in one ``log.transaction()``. A :class:`SnapshotChecker`
repeatedly takes a snapshot of the log and checks that every transaction is in it entirely
or not at all:

* ``cross-topic``: the end offsets of all three topics are read in ONE read transaction
  (white box: ``log._storage.read``), then the records below them (records below an end
  offset never change, so reading them later, in other transactions, is exact);
* ``public``: ``log.end_offsets("atom-a")`` (one read transaction for the topic's three
  partitions) — the public API alone, one topic.

Around each snapshot the group's committed offset is read before (``c1``) and after
(``c2``): the transactions visible in the snapshot must number at least ``c1`` and at most
``c2`` (offsets and records commit together), and they must be ``0 .. n - 1``.

As a script (``python tests/helpers/tx_reader.py LOGDIR MODE STOPFILE``) it checks
snapshots until STOPFILE exists, then prints one JSON line: ``{"snapshots": ...,
"violations": [...], "seen": ...}``.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import eventlog

TOPICS = {"atom-a": 3, "atom-b": 1, "atom-c": 2}
GROUP = "atom"
PROGRESS = eventlog.TopicPartition("atom-b", 0)
# atom-a: one per partition; atom-b: two; atom-c: one per partition.
RECORDS_PER_TX = 3 + 2 + 2


def create_topics(log: eventlog.Log) -> None:
    for topic, partitions in TOPICS.items():
        log.create_topic(topic, partitions, exist_ok=True, retention_ms=-1)


def write_tx(log: eventlog.Log, i: int) -> None:
    """Transaction ``i``: RECORDS_PER_TX records across the topics, and the group offset."""
    with log.transaction() as tx:
        for p in range(3):
            tx.append("atom-a", b"%d:a:%d" % (i, p), partition=p)
        tx.append_batch("atom-b", [eventlog.NewRecord(b"%d:b:%d" % (i, j)) for j in range(2)])
        for p in range(2):
            tx.append("atom-c", b"%d:c:%d" % (i, p), partition=p)
        tx.commit_offsets(GROUP, {PROGRESS: i + 1})


def write_partial(log: eventlog.Log, i: int) -> None:
    """Half of transaction ``i``, written outside any transaction (the checker's control:
    a snapshot after this must be reported)."""
    for p in range(3):
        log.append("atom-a", b"%d:a:%d" % (i, p), partition=p)
    log.append("atom-b", b"%d:b:0" % i)


class SnapshotChecker:
    """Checks snapshots of one log (see the module notes); ``mode`` is ``cross-topic`` or
    ``public``."""

    def __init__(self, log: eventlog.Log, mode: str) -> None:
        assert mode in ("cross-topic", "public")
        self.log = log
        self.mode = mode
        self.topics = list(TOPICS) if mode == "cross-topic" else ["atom-a"]
        self.per_tx = RECORDS_PER_TX if mode == "cross-topic" else 3
        self.read_to = {t: [0] * TOPICS[t] for t in self.topics}
        self.counts: dict[int, int] = {}
        self.snapshots = 0
        self.violations: list[str] = []

    def _ends(self) -> dict[str, list[int]]:
        log = self.log
        if self.mode == "public":
            ends = log.end_offsets("atom-a")
            return {"atom-a": [ends[p] for p in range(3)]}

        def read(txn: Any) -> dict[str, list[int]]:
            return {
                t: [s.next_offset for s in log._reader.states(txn, log._info(txn, t))]
                for t in self.topics
            }

        return log._storage.read(read, "reading a snapshot of end offsets")

    def _committed(self) -> int:
        found = self.log.committed_offsets(GROUP).get(PROGRESS)
        return found.offset if found is not None else 0

    def check(self) -> bool:
        """Take one snapshot and check it; False (and a violation noted) if it is wrong."""
        before = self._committed()
        ends = self._ends()
        after = self._committed()
        self.snapshots += 1
        for topic, partition_ends in ends.items():
            for p, end in enumerate(partition_ends):
                position = self.read_to[topic][p]
                while position < end:
                    cols = self.log.read_columns(topic, p, position,
                                                 max_records=min(5000, end - position))
                    if not cols.offsets:
                        self.violations.append(f"{topic}[{p}]: nothing at {position} < {end}")
                        return False
                    for value in cols.values:
                        i = int(value.split(b":")[0])
                        self.counts[i] = self.counts.get(i, 0) + 1
                    position = cols.offsets[-1] + 1
                self.read_to[topic][p] = end
        partial = {i: n for i, n in self.counts.items() if n != self.per_tx}
        present = len(self.counts)
        problems = []
        if partial:
            problems.append(f"partial transactions {sorted(partial.items())[:5]} "
                            f"(each has {self.per_tx} records here)")
        if sorted(self.counts) != list(range(present)):
            problems.append(f"the visible transactions are not 0..{present - 1}")
        if not before <= present <= after:
            problems.append(f"{present} transactions visible, but the committed offset was "
                            f"{before} before and {after} after")
        if problems:
            self.violations.append(f"snapshot {self.snapshots} ({self.mode}, ends {ends}): "
                                   + "; ".join(problems))
            return False
        return True


def main() -> None:
    logdir, mode, stop_file = sys.argv[1:4]
    with eventlog.open(logdir, durability="off") as log:
        checker = SnapshotChecker(log, mode)
        print("R", flush=True)
        while not os.path.exists(stop_file) and len(checker.violations) < 5:
            checker.check()
        checker.check()  # one after the writer finished
        print(json.dumps({"snapshots": checker.snapshots, "violations": checker.violations,
                          "seen": len(checker.counts)}), flush=True)


if __name__ == "__main__":
    main()
