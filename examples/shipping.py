"""Shipping: a service that books a carrier for every paid order.

    python examples/shipping.py [LOG_DIR]

The shop publishes order events to the topic ``orders`` (JSON, keyed by order id). This
service consumes them in the consumer group ``shipping``:

* ``order.paid``: book a carrier (``freight`` for parcels over 20 kg, ``parcel-post``
  otherwise; ``courier`` when that carrier's capacity for the day is used up), append
  ``shipment.booked`` to the topic ``shipments`` and the booking to the compacted topic
  ``bookings`` (order id -> the current booking);
* ``order.cancelled``: if the order is booked, append ``shipment.cancelled`` and a
  tombstone for the order to ``bookings``, which frees the carrier's capacity.

The service keeps one piece of state, how many parcels each carrier has been given per
day, and stores it nowhere: on start-up it rebuilds it with ``eventlog.replay`` over
``shipments``. ``bookings`` answers "how is order X shipped?" with ``log.latest()``.

The logic is importable (``create_topics``, ``ShippingService``, ``serve``), and
``examples/test_shipping.py`` is its test suite, written with eventlog's pytest plugin and
``eventlog.testing`` (see docs/how-to/testing.md).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import time
from collections import Counter
from typing import Any

import eventlog

ORDERS = "orders"
SHIPMENTS = "shipments"
BOOKINGS = "bookings"
GROUP = "shipping"
DAY_MS = 24 * 3600 * 1000
HEAVY_KG = 20
# Parcels each carrier takes per day; the courier takes any number (at a price).
CAPACITY = {"parcel-post": 3, "freight": 1}


def create_topics(log: eventlog.Log) -> None:
    """The service's topics, with the settings it relies on."""
    log.create_topic(ORDERS, partitions=2, exist_ok=True)
    # The carriers' integration reads shipments for up to a month.
    log.create_topic(SHIPMENTS, retention_ms=30 * DAY_MS, exist_ok=True)
    # Current bookings only: compaction keeps the newest record per order; a cancelled
    # order's tombstone stays a day, so that readers catching up see the cancellation.
    log.create_topic(BOOKINGS, cleanup_policy="compact", delete_retention_ms=DAY_MS, exist_ok=True)


def day_of(timestamp_ms: int) -> str:
    """The UTC date of a timestamp, as capacity is counted: ``"2026-03-02"``."""
    return dt.datetime.fromtimestamp(timestamp_ms / 1000, dt.timezone.utc).date().isoformat()


def count_bookings(
    booked: Counter[tuple[str, str]], record: eventlog.Record
) -> Counter[tuple[str, str]]:
    """The fold that rebuilds the service's state from ``shipments``: parcels per
    (carrier, day)."""
    event = record.value
    slot = (event["carrier"], event["day"])
    if event["type"] == "shipment.booked":
        booked[slot] += 1
    elif event["type"] == "shipment.cancelled":
        booked[slot] -= 1
    return booked


def bookings_per_day(
    log: eventlog.Log, *, until_timestamp: int | None = None
) -> Counter[tuple[str, str]]:
    """Parcels per (carrier, day), from every shipment event (up to ``until_timestamp``)."""
    return eventlog.replay(
        log,
        SHIPMENTS,
        count_bookings,
        Counter(),
        value_deserializer=json.loads,
        until_timestamp=until_timestamp,
    )


def encode(event: dict[str, Any]) -> bytes:
    return json.dumps(event, sort_keys=True).encode()


class ShippingService:
    """The consumer's logic: :meth:`handle` takes one record of ``orders`` whose value is
    the decoded event."""

    def __init__(self, log: eventlog.Log) -> None:
        self.log = log
        self.booked = bookings_per_day(log)  # the state, rebuilt from the log

    def handle(self, record: eventlog.Record) -> None:
        event = record.value
        if event["type"] == "order.paid":
            self._book(event["order_id"], event["weight_kg"], record.timestamp)
        elif event["type"] == "order.cancelled":
            self._cancel(event["order_id"])

    def _book(self, order_id: str, weight_kg: float, paid_at: int) -> None:
        key = order_id.encode()
        if self.log.latest(BOOKINGS, key) is not None:
            return  # booked already: an order redelivered after a crash
        day = day_of(paid_at)
        carrier = "freight" if weight_kg > HEAVY_KG else "parcel-post"
        if self.booked[(carrier, day)] >= CAPACITY[carrier]:
            carrier = "courier"
        booking = {"order_id": order_id, "carrier": carrier, "day": day}
        # Two appends, not one transaction (transactions are planned): a crash between
        # them is the one moment where a redelivered order could be booked twice.
        self.log.append(SHIPMENTS, encode({"type": "shipment.booked", **booking}), key=key)
        self.log.append(BOOKINGS, encode(booking), key=key)
        self.booked[(carrier, day)] += 1

    def _cancel(self, order_id: str) -> None:
        key = order_id.encode()
        current = self.log.latest(BOOKINGS, key)
        if current is None:
            return  # never booked, or cancelled already
        booking = json.loads(current.value)
        self.log.append(SHIPMENTS, encode({"type": "shipment.cancelled", **booking}), key=key)
        self.log.append(BOOKINGS, None, key=key)  # a tombstone: the booking is gone
        self.booked[(booking["carrier"], booking["day"])] -= 1


def serve(log: eventlog.Log, *, idle_timeout: float | None = None) -> ShippingService:
    """Run the service: consume ``orders`` in the group ``shipping`` until
    ``idle_timeout`` seconds pass without an order (None: until the process stops)."""
    service = ShippingService(log)
    with log.consumer(
        ORDERS,
        group=GROUP,
        value_deserializer=json.loads,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        idle_timeout=idle_timeout,
    ) as consumer:
        for record in consumer:
            service.handle(record)
            consumer.commit()  # after the work: at-least-once
    return service


# ---------------------------------------------------------------- the demo


def publish_orders(log: eventlog.Log, first: int) -> None:
    """The shop's side: six paid orders (two heavy) and one cancellation."""
    weights = [2.5, 31.0, 1.2, 0.8, 24.0, 3.3]
    with log.producer(value_serializer=eventlog.serde.json, key_serializer=eventlog.serde.str) as p:
        for n, kg in enumerate(weights, first):
            order_id = f"o-{n}"
            p.send(
                ORDERS, {"type": "order.paid", "order_id": order_id, "weight_kg": kg}, key=order_id
            )
        cancelled = f"o-{first}"
        p.send(ORDERS, {"type": "order.cancelled", "order_id": cancelled}, key=cancelled)


def main(path: str) -> None:
    with eventlog.open(path) as log:
        create_topics(log)
        first = sum(log.end_offsets(ORDERS).values()) + 1
        print(f"log {log.path}: {first - 1} order events from earlier runs")
        run_started = int(time.time() * 1000)
        publish_orders(log, first)

        service = serve(log, idle_timeout=0.5)
        print(f"group {GROUP!r} caught up: lag {log.describe_group(GROUP).lag}")
        print("parcels per day and carrier:")
        for (carrier, day), parcels in sorted(service.booked.items()):
            print(f"  {day} {carrier}: {parcels}")
        # A restarted service gets the same state from the log.
        assert +bookings_per_day(log) == +service.booked
        for n in (first, first + 1):
            booking = log.latest(BOOKINGS, f"o-{n}".encode())
            print(f"  o-{n}: {'cancelled' if booking is None else json.loads(booking.value)}")
        # The same replay call, as of a point in time: before this run's orders.
        before = bookings_per_day(log, until_timestamp=run_started - 1)
        print(
            f"bookings before this run: {sum(before.values())}, now: {sum(service.booked.values())}"
        )


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join("demo-data", "shipping-log"))
