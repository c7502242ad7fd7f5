"""The flagship demo: an online shop's order events in an embedded eventlog.

    python examples/orders.py [LOG_DIR]        (`make demo` runs it)

The log lives in ``demo-data/orders-log`` unless you pass a directory. It is a persistent
log, like a database file: run the demo again and the new events get the next offsets,
after the ones from earlier runs. Delete the directory to start over.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections import Counter, defaultdict

import eventlog

TOPIC = "orders"
CUSTOMERS = ["C-1001", "C-1005", "C-1008", "C-1012", "C-1013", "C-1018"]
MINUTE = 60_000  # timestamps are milliseconds since the epoch


def event(kind: str, order_id: int, customer: str, **fields: object) -> bytes:
    """One order event as JSON bytes (eventlog stores bytes; serializing is up to you)."""
    body = {"type": kind, "order_id": order_id, "customer": customer, **fields}
    return json.dumps(body).encode()


def main(path: str) -> None:
    with eventlog.open(path) as log:
        log.create_topic(TOPIC, partitions=3, exist_ok=True)
        start = log.end_offsets(TOPIC)  # where this run's events begin, per partition
        print(
            f"log {log.path}: topic {TOPIC!r} with {len(start)} partitions, "
            f"{sum(start.values())} events from earlier runs"
        )

        # 1. Orders arrive one at a time: append() each, keyed by customer id, so that all
        #    of a customer's events land on one partition, in order.
        now = int(time.time() * 1000)
        first_id = sum(start.values()) + 1
        orders = [(first_id + i, CUSTOMERS[i % len(CUSTOMERS)]) for i in range(12)]
        partition_of: dict[str, set[int]] = defaultdict(set)
        for i, (order_id, customer) in enumerate(orders):
            meta = log.append(
                TOPIC,
                event("order.placed", order_id, customer, total=round(9.5 + 3.25 * i, 2)),
                key=customer.encode(),
                timestamp=now - (60 - 2 * i) * MINUTE,
                headers=[("source", b"web"), ("schema", b"order.v1")],
            )
            partition_of[customer].add(meta.partition)

        # 2. The payment service confirms them in one atomic batch: all or nothing, one
        #    stored record batch per partition touched.
        paid = log.append_batch(
            TOPIC,
            [
                eventlog.NewRecord(
                    event("order.paid", order_id, customer),
                    key=customer.encode(),
                    timestamp=now - (30 - i) * MINUTE,
                    headers=[("source", b"payments")],
                )
                for i, (order_id, customer) in enumerate(orders)
            ],
        )
        for meta, (_, customer) in zip(paid, orders):
            partition_of[customer].add(meta.partition)

        # 3. The warehouse reports shipments in bulk: append_columns() takes plain lists,
        #    with no object per record (all share one timestamp: now).
        shipped = log.append_columns(
            TOPIC,
            [event("order.shipped", oid, c) for oid, c in orders],
            keys=[c.encode() for _, c in orders],
        )
        produced = len(orders) + len(paid) + sum(len(r) for r in shipped.values())
        print(
            f"produced {produced} events: {len(orders)} placed (append), {len(paid)} paid "
            f"(append_batch), {produced - 2 * len(orders)} shipped (append_columns)"
        )
        for customer, parts in sorted(partition_of.items()):
            assert len(parts) == 1, "a key always maps to the same partition"
            print(f"  customer {customer}: all events in partition {min(parts)}")

        # 4. Consume partition by partition, as a consumer does: keep a position per
        #    partition (the next offset to read) and read() pages from it until caught up.
        position = dict(start)
        kinds: Counter[str] = Counter()
        for p in sorted(position):
            while page := log.read(TOPIC, p, position[p], max_records=5):
                for record in page:
                    kinds[json.loads(record.value)["type"]] += 1
                position[p] = page[-1].offset + 1
            count = position[p] - start[p]
            span = f"offsets {start[p]}..{position[p] - 1}" if count else "nothing new"
            print(f"  consumed partition {p}: {span} ({count} events)")
        print(f"consumed {sum(kinds.values())} events: {dict(sorted(kinds.items()))}")

        # 5. Offsets: the first offset still stored, and the next offset to be written.
        print(
            f"beginning offsets {log.beginning_offsets(TOPIC)}, "
            f"end offsets {log.end_offsets(TOPIC)}"
        )

        # 6. Time lookups: which events happened in the last 20 minutes? offsets_for_times()
        #    gives, per partition, the earliest offset with a timestamp >= the time (a time
        #    index seek, not a scan); scan() then iterates from there.
        since = now - 20 * MINUTE
        print(f"offsets for 20 minutes ago: {log.offsets_for_times(TOPIC, since)}")
        recent: Counter[str] = Counter()
        for record in log.scan(TOPIC, start_timestamp=since):
            # Timestamps are the producer's (CreateTime): a later offset may carry an
            # earlier time (an earlier run's backdated events), so filter, as Kafka
            # consumers do after a seek by time.
            if record.timestamp >= since:
                recent[json.loads(record.value)["type"]] += 1
        print(f"events in the last 20 minutes: {dict(sorted(recent.items()))}")

        # 7. Waiting: a consumer that has caught up blocks in wait() until a record arrives.
        #    Here a background thread places a late order 0.2 s from now.
        late_customer = CUSTOMERS[0]
        p = min(partition_of[late_customer])
        end = log.end_offsets(TOPIC)[p]
        late_order = event("order.placed", first_id + len(orders), late_customer, total=99.0)
        appender = threading.Timer(
            0.2, log.append, args=(TOPIC, late_order), kwargs={"key": late_customer.encode()}
        )
        began = time.monotonic()
        appender.start()
        arrived = log.wait(TOPIC, p, end, timeout=10)  # True as soon as offset `end` exists
        waited = time.monotonic() - began
        appender.join()
        if not arrived:
            raise SystemExit("the late order did not arrive")
        (late,) = log.read(TOPIC, p, end)
        print(
            f"waited {waited:.2f} s; late order arrived at partition {p} offset "
            f"{late.offset}: {late.value!r}"
        )
        print(
            f"done: the log now holds {sum(log.end_offsets(TOPIC).values())} events; "
            f"run again to append more"
        )


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "demo-data/orders-log")
