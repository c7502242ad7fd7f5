"""A writer competing for one aggregate's versions (a module and a script).

:func:`contend` loops until the key reaches version ``target``: it loads the key's
version (from ``key_version`` or by reading its whole stream with ``read_key``, as an
aggregate is loaded), then tries to append the next events with that expected version,
one of three ways chosen at random:

* ``single``: ``log.append(..., expected_version=v)`` — one event;
* ``batch``: ``log.append_batch(..., expected_versions={key: v})`` — 1 to 3 events;
* ``tx``: a ``log.transaction()`` with two ``tx.append(..., expected_version=...)`` calls
  (v, then v + 1) and one record on the ``side`` topic naming the claim: the side record
  must exist exactly for the transactions that won.

Each event's value is ``<name>:<version>:<way>``. A win is a claim of versions
``v + 1 .. v + n``; a ConcurrencyError must report ``expected_version == v`` and an
``actual_version`` above it (versions only grow), else it is recorded as a bad conflict.

As a script (``python tests/helpers/tx_contender.py LOGDIR TOPIC KEYHEX NAME TARGET
SEED``) it prints ``R``, waits for a line on stdin, contends, and prints one JSON line:
``{"claims": [[first, count, way], ...], "conflicts": n, "bad": [...]}``.
"""

from __future__ import annotations

import json
import random
import sys
from typing import Any

import eventlog

SIDE = "side"


def contend(log: eventlog.Log, topic: str, key: bytes, name: str, target: int,
            seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    claims: list[tuple[int, int, str]] = []
    bad: list[str] = []
    conflicts = 0
    while True:
        if rng.random() < 0.5:
            version = log.key_version(topic, key)
        else:
            stream = list(log.read_key(topic, key))
            version = len(stream)  # nothing is removed from this topic: one record each
        if version >= target:
            break
        way = rng.choice(("single", "batch", "tx"))
        room = target - version

        def event(v: int, way: str = way) -> bytes:
            return f"{name}:{v}:{way}".encode()

        try:
            if way == "single" or room == 1:
                way = "single"
                log.append(topic, event(version + 1, "single"), key=key,
                           expected_version=version)
                count = 1
            elif way == "batch":
                count = rng.randrange(1, min(3, room) + 1)
                log.append_batch(
                    topic,
                    [eventlog.NewRecord(event(version + j), key=key)
                     for j in range(1, count + 1)],
                    expected_versions={key: version})
            else:
                count = 2
                with log.transaction() as tx:
                    tx.append(topic, event(version + 1), key=key, expected_version=version)
                    tx.append(SIDE, f"{name}:{version + 1}".encode())
                    tx.append(topic, event(version + 2), key=key,
                              expected_version=version + 1)
        except eventlog.ConcurrencyError as exc:
            conflicts += 1
            if (exc.expected_version != version or exc.actual_version <= version
                    or exc.key != key or exc.topic != topic):
                bad.append(f"{name}: expected {version}, error says expected "
                           f"{exc.expected_version}, actual {exc.actual_version}")
            continue
        claims.append((version + 1, count, way))
    return {"claims": claims, "conflicts": conflicts, "bad": bad}


def main() -> None:
    logdir, topic, key_hex, name, target, seed = sys.argv[1:7]
    with eventlog.open(logdir, durability="off") as log:
        print("R", flush=True)
        if not sys.stdin.readline():
            return
        result = contend(log, topic, bytes.fromhex(key_hex), name, int(target), int(seed))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
