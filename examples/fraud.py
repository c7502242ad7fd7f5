"""The fraud check: card transactions totalled per customer over 10-minute windows,
customers over a threshold flagged to ``suspicious-transactions``, exactly once.

    python examples/fraud.py [LOG_DIR]

The card processor publishes every transaction to ``transactions`` (JSON, keyed by
customer, the transaction's time as the record timestamp). The detector is a processor
(``log.processor``) in the consumer group ``fraud-detector``. For each transaction it adds
the amount to its customer's total in the tumbling 10-minute window the timestamp falls in,
and when a window's total first goes over $1,000 it appends an alert to
``suspicious-transactions``.

The window totals are kept in the compacted topic ``fraud-window-totals`` (one key per
customer and window), written in the same transaction as the alerts and the detector's
input positions. So the detector keeps no state of its own: a restart continues from what
the log holds, and a crash at any point loses nothing and repeats nothing. This program
crashes the detector in the middle of a batch, restarts it, and checks that each window is
flagged exactly once.

Timestamps are explicit (1 June 2024, from 10:00 UTC), so the windows and the output are
the same on every run. The log lives in ``demo-data/fraud-log`` unless you pass a
directory; a second run finds the transactions already there and the detector caught up.
"""

from __future__ import annotations

import json
import os
import random
import sys
from typing import Any

import eventlog
from eventlog import NewRecord, Record, Transaction
from eventlog.eventsourcing import ReadModel

TRANSACTIONS = "transactions"
SUSPICIOUS = "suspicious-transactions"
WINDOWS = "fraud-window-totals"
GROUP = "fraud-detector"

WINDOW_MS = 10 * 60 * 1000
THRESHOLD_CENTS = 1_000_00
START_MS = 1_717_236_000_000  # 2024-06-01 10:00:00 UTC, a window boundary
CUSTOMERS = [f"C-{n}" for n in range(101, 109)]


def card_transactions() -> list[tuple[str, int, int]]:
    """(customer, timestamp ms, amount in cents): an hour of ordinary purchases and two
    bursts, the same every run."""
    rng = random.Random(2024)
    out = [
        (
            rng.choice(CUSTOMERS),
            START_MS + rng.randrange(60 * 60 * 1000),
            rng.randrange(5_00, 60_00),
        )
        for _ in range(100)
    ]
    # C-103 spends $1,350 in six minutes: one window, flagged.
    out += [("C-103", START_MS + 12 * 60_000 + i * 90_000, 450_00) for i in range(3)]
    # C-106 spends $1,400 around 10:30, but across two windows: not flagged.
    out += [("C-106", START_MS + 28 * 60_000, 700_00), ("C-106", START_MS + 31 * 60_000, 700_00)]
    # C-108 spends $1,200 within 10:40-10:50, flagged once though the total keeps growing.
    out += [("C-108", START_MS + 41 * 60_000 + i * 60_000, 300_00) for i in range(5)]
    out.sort(key=lambda t: t[1])
    return out


def expected_alerts(transactions: list[tuple[str, int, int]]) -> set[tuple[str, int]]:
    """What the detector must flag, computed directly: (customer, window start)."""
    totals: dict[tuple[str, int], int] = {}
    for customer, timestamp, amount in transactions:
        window = (customer, timestamp - timestamp % WINDOW_MS)
        totals[window] = totals.get(window, 0) + amount
    return {window for window, total in totals.items() if total > THRESHOLD_CENTS}


class Crash(Exception):
    """Stands in for the detector's process dying (a kill, a power cut)."""


class FraudDetector:
    """The processor's handler: window totals in, alerts out, in the batch's transaction."""

    def __init__(self, log: eventlog.Log, crash_after: int | None = None) -> None:
        self.windows = ReadModel(log, WINDOWS)
        self.crash_after = crash_after
        self.handled = 0

    def __call__(self, record: Record, tx: Transaction) -> None:
        if self.crash_after is not None and self.handled == self.crash_after:
            raise Crash(f"the detector dies at {TRANSACTIONS} offset {record.offset}")
        self.handled += 1
        payment = json.loads(record.value or b"")
        customer = payment["customer"]
        window_start = record.timestamp - record.timestamp % WINDOW_MS
        # The writer of this transaction: reads see this batch's own updates first.
        windows = self.windows.writer(tx)
        key = f"{customer}@{window_start}"
        window: dict[str, Any] = windows.get(
            key, {"customer": customer, "window_start": window_start, "total": 0, "count": 0}
        )
        window["total"] += payment["amount"]
        window["count"] += 1
        if window["total"] > THRESHOLD_CENTS and not window.get("flagged"):
            window["flagged"] = True
            alert = {
                "customer": customer,
                "window_start": window_start,
                "window_end": window_start + WINDOW_MS,
                "total": window["total"],
                "transactions": window["count"],
                "last_payment": payment["id"],
            }
            tx.append(SUSPICIOUS, json.dumps(alert).encode(), key=customer.encode())
        windows.put(key, window)


def detector(log: eventlog.Log, handler: FraudDetector) -> eventlog.Processor:
    return log.processor(TRANSACTIONS, group=GROUP, handler=handler, auto_offset_reset="earliest")


def publish(log: eventlog.Log, transactions: list[tuple[str, int, int]], first_id: int) -> None:
    log.append_batch(
        TRANSACTIONS,
        [
            NewRecord(
                json.dumps({"id": first_id + i, "customer": c, "amount": a}).encode(),
                key=c.encode(),
                timestamp=t,
            )
            for i, (c, t, a) in enumerate(transactions)
        ],
    )


def clock(timestamp_ms: int) -> str:
    minutes = (timestamp_ms - START_MS) // 60_000
    return f"{10 + minutes // 60:02d}:{minutes % 60:02d}"


def main(path: str) -> None:
    transactions = card_transactions()
    half = len(transactions) // 2
    with eventlog.open(path) as log:
        # The input and the alerts keep their 2024 timestamps for ever (retention.ms=-1:
        # the default 7 days would delete them at once); window totals keep the newest
        # record per window.
        log.create_topic(TRANSACTIONS, partitions=3, retention_ms=-1, exist_ok=True)
        log.create_topic(SUSPICIOUS, retention_ms=-1, exist_ok=True)
        log.create_topic(WINDOWS, cleanup_policy="compact", exist_ok=True)
        first_run = sum(log.end_offsets(TRANSACTIONS).values()) == 0
        if first_run:
            # 1. The first half of the hour's transactions arrive.
            publish(log, transactions[:half], 1)
            print(f"published {half} card transactions to {TRANSACTIONS!r} (3 partitions)")
            # 2. The detector processes batches of 20, and dies in the middle of its
            #    third batch: the transaction of that batch never commits.
            handler = FraudDetector(log, crash_after=50)
            with detector(log, handler) as processor:
                try:
                    while processor.poll(timeout=0.2, max_records=20):
                        pass
                except Crash as crash:
                    print(f"crash: {crash}, in the middle of a batch")
            committed = sum(o.offset for o in log.committed_offsets(GROUP).values())
            alerts = sum(log.end_offsets(SUSPICIOUS).values())
            print(
                f"after the crash: {committed} transactions committed as processed, "
                f"{alerts} alert(s); the {handler.handled - committed} handled in the failed "
                f"batch left nothing behind"
            )
        else:
            print("the transactions are already in the log: the detector is caught up")

    # 3. A restart: a new process (here: a new log handle and a new processor) continues
    #    from the committed positions and the window totals in the log.
    with eventlog.open(path) as log:
        with detector(log, FraudDetector(log)) as processor:
            resumed = processor.run(idle_timeout=0.1, max_records=20)
            if first_run:
                # 4. The rest of the hour arrives while it runs.
                publish(log, transactions[half:], half + 1)
                resumed += processor.run(idle_timeout=0.1, max_records=20)
        print(f"restarted detector: processed {resumed} transactions")

        # 5. Each over-threshold window is flagged exactly once: no alert lost in the
        #    crash, none repeated by the reprocessing.
        alerts = [json.loads(r.value or b"") for r in log.scan(SUSPICIOUS)]
        flagged = [(a["customer"], a["window_start"]) for a in alerts]
        assert len(flagged) == len(set(flagged)), f"duplicate alerts: {flagged}"
        assert set(flagged) == expected_alerts(transactions), flagged
        for a in sorted(alerts, key=lambda a: (a["window_start"], a["customer"])):
            print(
                f"  {a['customer']} {clock(a['window_start'])}-{clock(a['window_end'])}: "
                f"flagged at ${a['total'] / 100:,.2f} after {a['transactions']} transactions"
            )
        print(f"{SUSPICIOUS}: {len(alerts)} alerts, one per suspicious window, no duplicates")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join("demo-data", "fraud-log"))
