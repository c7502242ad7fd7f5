"""Customer profiles on a compacted topic: the current state per key, kept by the log.

    python examples/customers.py [LOG_DIR]

A compacted topic (``cleanup_policy="compact"``) keeps at least the newest record of every
key, so it can serve as the system of record for "the current profile of each customer":
every update is appended whole, keyed by customer id; a deleted customer gets a tombstone
(the key with a ``None`` value). The log keeps a key index for such a topic, so
``log.latest()`` and ``log.table()`` answer from it without replaying the topic, also
right after a restart.

The log lives in ``demo-data/customers-log`` unless you pass a directory; run it again and
the same updates are appended once more (the table ends up the same).
"""

from __future__ import annotations

import json
import os
import sys

import eventlog

TOPIC = "customer-profiles"
DAY_MS = 24 * 3600 * 1000

# (customer id, changed fields): the first update of a customer creates the profile.
UPDATES = [
    ("C-1001", {"name": "Ada", "email": "ada@example.com", "plan": "free"}),
    ("C-1002", {"name": "Grace", "email": "grace@example.com", "plan": "free"}),
    ("C-1003", {"name": "Alan", "email": "alan@example.com", "plan": "free"}),
    ("C-1005", {"name": "Barbara", "email": "barbara@example.com", "plan": "team"}),
    ("C-1001", {"plan": "pro"}),
    ("C-1002", {"email": "grace@navy.example"}),
    ("C-1001", {"email": "ada@engines.example"}),
    ("C-1005", {"plan": "enterprise"}),
]
DELETED = "C-1003"  # closes the account: a tombstone removes the profile


def stored_records(log: eventlog.Log) -> list[eventlog.Record]:
    """Everything a reader from the beginning sees, partition by partition."""
    return list(log.scan(TOPIC))


def main(path: str) -> None:
    with eventlog.open(path) as log:
        # A compacted topic: records need a key; compaction keeps the newest per key.
        # (Production topics may also set min_compaction_lag_ms, so that consumers that
        # fall behind still see every update for at least that long.)
        log.create_topic(TOPIC, partitions=2, cleanup_policy="compact", exist_ok=True)
        print(f"log {log.path}: topic {TOPIC!r}, cleanup.policy=compact, 2 partitions")

        # 1. The profile service publishes each customer's whole profile on every change
        #    (the value is the current state, not a delta: compaction keeps only the last).
        profiles: dict[str, dict[str, str]] = {}
        with log.producer(
            value_serializer=eventlog.serde.json, key_serializer=eventlog.serde.str
        ) as producer:
            for customer, fields in UPDATES:
                profiles[customer] = {**profiles.get(customer, {}), **fields}
                producer.send(TOPIC, profiles[customer], key=customer)
        # 2. A customer closes the account: a tombstone (value None) deletes the key.
        log.append(TOPIC, None, key=DELETED.encode())
        del profiles[DELETED]
        customers = {customer for customer, _fields in UPDATES}
        print(
            f"produced {len(UPDATES)} profile updates for {len(customers)} customers "
            f"and a tombstone for {DELETED}"
        )

        # 3. Point lookups through the key index: one seek, however long the topic is.
        latest = log.latest(TOPIC, b"C-1001")
        assert latest is not None
        assert latest.value is not None
        print(f"latest(C-1001): offset {latest.offset}, {json.loads(latest.value)}")
        print(f"latest({DELETED}): {log.latest(TOPIC, DELETED.encode())} (deleted)")

    # 4. A restart: opening reads no records (O(1)), and the table of current profiles
    #    comes from the key index the log keeps on disk: no replay, no local state store.
    with eventlog.open(path) as log:
        table = log.table(TOPIC)
        current = {key.decode(): json.loads(value) for key, value in table.items()}
        assert current == profiles, (current, profiles)
        print(f"reopened: the table has {len(table)} customers (no replay):")
        for customer, profile in sorted(current.items()):
            print(f"  {customer} {profile}")

        # 5. Appends compact as they go, once enough of a partition is superseded
        #    (min.cleanable.dirty.ratio); compact() finishes the job now.
        before = stored_records(log)
        ends = log.end_offsets(TOPIC)
        appended = len(UPDATES) + 1  # by this run: the updates and the tombstone
        results = log.compact(TOPIC)
        for tp, result in sorted(results.items()):
            print(f"compact(): partition {tp.partition}: {result}")
        after = stored_records(log)
        print(
            f"records stored: {len(before)} before compact() ({appended} appended), "
            f"{len(after)} after: the newest per key and {DELETED}'s tombstone"
        )
        assert log.end_offsets(TOPIC) == ends, "offsets never change"
        assert log.latest(TOPIC, b"C-1001") == latest, "the same record, at the same offset"

        # 6. A reader from the beginning sees at least the final value of every key, in
        #    order, and (for delete.retention.ms, 1 day by default) the tombstone too.
        final: dict[str, object] = {}
        for record in after:
            assert record.key is not None
            value = None if record.value is None else json.loads(record.value)
            final[record.key.decode()] = value
        assert final == {**profiles, DELETED: None}, final
        print(f"a reader from offset 0 sees the final value of all {len(final)} keys:")
        for customer, value in sorted(final.items()):
            print(f"  {customer} {'tombstone' if value is None else value}")

        # 7. Once delete.retention.ms has passed after compaction first reached it, the
        #    tombstone goes as well (now_ms= stands in for "a day later").
        later = log.compact(TOPIC, now_ms=latest.timestamp + DAY_MS + 60_000)
        for tp, result in sorted(later.items()):
            print(f"a day later, compact(): partition {tp.partition}: {result}")
        assert sum(r.tombstones_removed for r in later.values()) == 1
        assert [r.key for r in stored_records(log)].count(DELETED.encode()) == 0
        assert dict(log.table(TOPIC)).keys() == {c.encode() for c in profiles}

        # 8. check() verifies batches and indexes, the key index included.
        report = log.check()
        print(f"check(): {report}")
        if not report:
            raise SystemExit(1)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join("demo-data", "customers-log"))
