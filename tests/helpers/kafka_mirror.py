"""Run one mirror to the end (the kill tests SIGKILL it at random moments).

Usage: kafka_mirror.py LOG_PATH BOOTSTRAP DIRECTION NAME BATCH_SIZE EXACTLY_ONCE TOPIC...
"""

from __future__ import annotations

import sys

import eventlog
from eventlog.ext.kafka import Mirror


def main() -> None:
    path, bootstrap, direction, name, batch, exactly_once, *topics = sys.argv[1:]
    with eventlog.open(path) as log:
        result = Mirror(
            log,
            bootstrap,
            topics,
            direction=direction,
            name=name,
            batch_size=int(batch),
            exactly_once=exactly_once == "1",
            timeout=60,
        ).run()
    print(f"done {result.records}", flush=True)


if __name__ == "__main__":
    main()
