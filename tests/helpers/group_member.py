"""One member of a consumer group, run as a separate process by ``test_group_processes``.

Run as ``python tests/helpers/group_member.py CONFIG_JSON``. The config names the log, the
topic, the group, the consumer options, an output file and a stop file. The member polls
until the stop file exists, then closes its consumer and exits 0.

It appends one line per event to its output file, flushed after every poll batch (so a
member killed with SIGKILL leaves everything up to its last batch, and at most a torn last
line, which the reader ignores). Times are ``time.time()`` (one host, one clock):

* ``start <pid> <t>`` — the consumer exists (not yet joined: it joins at its first poll);
* ``acquire <partition> <t>`` — in ``on_partitions_assigned``, i.e. after the ownership
  write committed (so the logged interval starts no earlier than the real one);
* ``release <partition> <t> revoked|lost`` — in ``on_partitions_revoked`` /
  ``on_partitions_lost``, before the release is written;
* ``batch <t> <n>`` — a poll returned ``n`` records, followed by one
  ``rec <partition> <offset> <seq>`` line per record (``seq`` is the record's value);
* ``commit <partition> <offset> <t>`` — one line per partition of a commit that succeeded
  (``t`` is taken after it returned); ``commitfail <t> <message>`` when it was refused;
* ``closed <t>`` — ``close()`` returned.

The member processes a batch completely (writes it) and commits it before its next poll,
so it never holds records of a partition it no longer owns across a rebalance callback.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any, TextIO

import eventlog
from eventlog._errors import CommitFailedError


class Listener(eventlog.RebalanceListener):
    def __init__(self, out: TextIO) -> None:
        self.out = out

    def _write(self, line: str) -> None:
        self.out.write(line + "\n")
        self.out.flush()

    def on_partitions_assigned(self, partitions: set[eventlog.TopicPartition]) -> None:
        now = time.time()
        for tp in sorted(partitions):
            self._write(f"acquire {tp.partition} {now!r}")

    def on_partitions_revoked(self, partitions: set[eventlog.TopicPartition]) -> None:
        now = time.time()
        for tp in sorted(partitions):
            self._write(f"release {tp.partition} {now!r} revoked")

    def on_partitions_lost(self, partitions: set[eventlog.TopicPartition]) -> None:
        now = time.time()
        for tp in sorted(partitions):
            self._write(f"release {tp.partition} {now!r} lost")


def run(config: dict[str, Any]) -> None:
    stop_file = config["stop_file"]
    with (
        open(config["out"], "a", encoding="utf-8") as out,
        eventlog.open(config["path"], durability="off") as log,
    ):
        listener = Listener(out)
        consumer = log.consumer(
            config["topic"],
            group=config["group"],
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            listener=listener,
            client_id=config["name"],
            **config["options"],
        )
        out.write(f"start {os.getpid()} {time.time()!r}\n")
        out.flush()
        while not os.path.exists(stop_file):
            records = consumer.poll(timeout=0.1)
            if not records:
                continue
            lines = [f"batch {time.time()!r} {len(records)}"]
            ends: dict[eventlog.TopicPartition, int] = {}
            for record in records:
                lines.append(f"rec {record.partition} {record.offset} {record.value.decode()}")
                ends[eventlog.TopicPartition(record.topic, record.partition)] = record.offset + 1
            out.write("\n".join(lines) + "\n")
            out.flush()
            try:
                consumer.commit(ends)
            except CommitFailedError as exc:
                out.write(f"commitfail {time.time()!r} {str(exc).splitlines()[0]}\n")
            else:
                now = time.time()
                out.write(
                    "".join(f"commit {tp.partition} {off} {now!r}\n" for tp, off in ends.items())
                )
            out.flush()
        consumer.close()
        out.write(f"closed {time.time()!r}\n")
        out.flush()


if __name__ == "__main__":
    run(json.loads(sys.argv[1]))
