"""The test suite of examples/shipping.py: how an application tests its event-driven code
with eventlog's pytest plugin and ``eventlog.testing``.

The fixtures ``eventlog_log`` (a fresh log per test), ``eventlog_factory`` (reopening a
log) and ``eventlog_clock`` (time that moves only when told to) come with eventlog; there
is nothing to configure. Each test runs the service's real handler over a real log:
seed the input, run the consumer until it has caught up, check the output topics and the
state. docs/how-to/testing.md walks through these tests.

Regenerate the golden file after an intended change of the output with
``UPDATE_GOLDEN=1 pytest examples/test_shipping.py``, and review the diff.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections import Counter
from pathlib import Path

import pytest
from shipping import (
    BOOKINGS,
    GROUP,
    ORDERS,
    SHIPMENTS,
    ShippingService,
    bookings_per_day,
    create_topics,
)

import eventlog
from eventlog.testing import (
    ManualClock,
    assert_topic_contains,
    dump_jsonl,
    run_until_caught_up,
    seed,
)

# A fixed Monday morning, so that days and timestamps are the same in every run.
START = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.timezone.utc)
MONDAY, TUESDAY = "2026-03-02", "2026-03-03"
GOLDEN = Path(__file__).parent / "golden" / "shipments.jsonl"


@pytest.fixture
def clock():
    """Time that starts at START and moves only when the test says so. (The plugin's
    ``eventlog_clock`` starts at the current time: right for tests that only need time
    to pass.)"""
    with ManualClock(START) as clock:
        yield clock


def paid(order_id, weight_kg):
    return {
        "key": order_id,
        "value": {"type": "order.paid", "order_id": order_id, "weight_kg": weight_kg},
    }


def cancelled(order_id):
    return {"key": order_id, "value": {"type": "order.cancelled", "order_id": order_id}}


def shipment(kind, order_id, carrier, day=MONDAY):
    """A shipment event as the service writes it (decoded)."""
    return {"type": f"shipment.{kind}", "order_id": order_id, "carrier": carrier, "day": day}


def process_orders(log, *, commit=True):
    """Run the service over every order there is, as ``serve()`` does in production, and
    return it. ``commit=False``: the process dies before it commits."""
    service = ShippingService(log)
    with log.consumer(
        ORDERS,
        group=GROUP,
        value_deserializer=json.loads,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    ) as consumer:
        run_until_caught_up(consumer, service.handle, commit=commit)
    return service


def one_by_one(log, *orders):
    """Orders that arrive one after another, each handled before the next comes: the
    consumer interleaves the partitions of ``orders`` in an order of its own."""
    for order in orders:
        seed(log, ORDERS, [order])
        process_orders(log)


def test_paid_orders_are_booked(eventlog_log, clock):
    create_topics(eventlog_log)
    seed(eventlog_log, ORDERS, [paid("o-1", 2.5)])

    process_orders(eventlog_log)

    assert_topic_contains(
        eventlog_log,
        SHIPMENTS,
        [("o-1", shipment("booked", "o-1", "parcel-post"))],
        key_deserializer=bytes.decode,
        value_deserializer=json.loads,
    )
    assert eventlog_log.describe_group(GROUP).lag == 0


def test_heavy_parcels_go_by_freight(eventlog_log, clock):
    create_topics(eventlog_log)

    one_by_one(eventlog_log, paid("o-1", 2.5), paid("o-2", 31.0))

    assert_topic_contains(
        eventlog_log,
        SHIPMENTS,
        [
            ("o-1", shipment("booked", "o-1", "parcel-post")),
            ("o-2", shipment("booked", "o-2", "freight")),
        ],
        key_deserializer=bytes.decode,
        value_deserializer=json.loads,
    )


def test_a_full_carrier_overflows_to_the_courier_until_the_next_day(eventlog_log, clock):
    create_topics(eventlog_log)
    seed(eventlog_log, ORDERS, [paid(f"o-{n}", 1.0) for n in range(1, 6)])
    service = process_orders(eventlog_log)
    assert service.booked == Counter({("parcel-post", MONDAY): 3, ("courier", MONDAY): 2})
    monday_evening = clock.advance(hours=10)  # 19:00

    clock.advance(days=1)  # Tuesday
    seed(eventlog_log, ORDERS, [paid("o-6", 1.0)])
    service = process_orders(eventlog_log)

    booking = json.loads(eventlog_log.latest(BOOKINGS, b"o-6").value)
    assert booking == {"order_id": "o-6", "carrier": "parcel-post", "day": TUESDAY}
    # The state the service keeps is the state replay rebuilds, now and as of Monday.
    assert bookings_per_day(eventlog_log) == service.booked
    assert bookings_per_day(eventlog_log, until_timestamp=monday_evening) == Counter(
        {("parcel-post", MONDAY): 3, ("courier", MONDAY): 2}
    )


def test_a_cancelled_order_frees_its_slot(eventlog_log, clock):
    create_topics(eventlog_log)
    seed(eventlog_log, ORDERS, [paid("o-1", 1.0), paid("o-2", 1.0), paid("o-3", 1.0)])
    process_orders(eventlog_log)

    seed(eventlog_log, ORDERS, [cancelled("o-1")])
    service = process_orders(eventlog_log)
    assert service.booked[("parcel-post", MONDAY)] == 2
    seed(eventlog_log, ORDERS, [paid("o-4", 1.0)])
    process_orders(eventlog_log)

    assert eventlog_log.latest(BOOKINGS, b"o-1") is None
    assert sorted(eventlog_log.table(BOOKINGS)) == [b"o-2", b"o-3", b"o-4"]
    assert json.loads(eventlog_log.latest(BOOKINGS, b"o-4").value)["carrier"] == "parcel-post"
    assert_topic_contains(
        eventlog_log,
        SHIPMENTS,
        [{"key": b"o-1", "value": shipment("cancelled", "o-1", "parcel-post")}],
        exact=False,  # among the other shipment events
        value_deserializer=json.loads,
    )


def test_shipments_match_the_golden_file(eventlog_log, clock):
    create_topics(eventlog_log)
    one_by_one(eventlog_log, paid("o-1", 2.5), paid("o-2", 31.0), paid("o-3", 24.0))
    clock.advance(hours=2)
    one_by_one(eventlog_log, cancelled("o-2"), paid("o-4", 40.0))

    actual = dump_jsonl(eventlog_log, SHIPMENTS, value_deserializer=json.loads)
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.write_text(actual, encoding="utf-8")
    assert actual == GOLDEN.read_text(encoding="utf-8")


def test_a_restarted_service_rebuilds_its_state_and_skips_redelivered_orders(
    eventlog_factory, clock
):
    log = eventlog_factory("shop")
    create_topics(log)
    seed(log, ORDERS, [paid(f"o-{n}", 1.0) for n in (1, 2, 3)])
    process_orders(log, commit=False)  # the process dies before it commits
    log.close()

    log = eventlog_factory("shop")  # the same name: the same log, opened again
    seed(log, ORDERS, [paid("o-4", 1.0)])
    service = process_orders(log)  # o-1 to o-3 are delivered again

    assert service.booked == Counter({("parcel-post", MONDAY): 3, ("courier", MONDAY): 1})
    assert sorted(record.key for record in log.scan(SHIPMENTS)) == [b"o-1", b"o-2", b"o-3", b"o-4"]


def test_shipments_are_kept_for_30_days(eventlog_log, eventlog_clock):
    create_topics(eventlog_log)
    seed(eventlog_log, ORDERS, [paid("o-1", 1.0)])
    process_orders(eventlog_log)

    eventlog_clock.advance(days=29)
    eventlog_log.run_retention(SHIPMENTS)
    assert [record.key for record in eventlog_log.scan(SHIPMENTS)] == [b"o-1"]

    eventlog_clock.advance(days=2)
    eventlog_log.run_retention(SHIPMENTS)
    assert list(eventlog_log.scan(SHIPMENTS)) == []


def test_a_cancelled_booking_is_gone_a_day_after_compaction(eventlog_log, eventlog_clock):
    create_topics(eventlog_log)
    one_by_one(eventlog_log, paid("o-1", 1.0), cancelled("o-1"))

    eventlog_log.compact(BOOKINGS)
    # The booking is gone; its tombstone stays a day, for readers still catching up.
    assert [(r.key, r.value) for r in eventlog_log.scan(BOOKINGS)] == [(b"o-1", None)]

    eventlog_clock.advance(days=1)
    eventlog_log.compact(BOOKINGS)
    assert list(eventlog_log.scan(BOOKINGS)) == []


def test_a_hung_worker_is_replaced_after_the_session_timeout(eventlog_log, eventlog_clock):
    create_topics(eventlog_log)
    seed(eventlog_log, ORDERS, [paid("o-1", 1.0)])

    def worker():  # one of the service's processes
        return eventlog_log.consumer(
            ORDERS,
            group=GROUP,
            value_deserializer=json.loads,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            session_timeout_ms=10_000,
        )

    with worker() as worker_1, worker() as worker_2:
        run_until_caught_up(worker_1, ShippingService(eventlog_log).handle)
        # Worker 1 hangs: it stops polling, still holding every partition.
        seed(eventlog_log, ORDERS, [paid("o-2", 1.0), paid("o-3", 1.0)])
        assert worker_2.poll(timeout=0.1) == []

        eventlog_clock.advance(seconds=11)
        run_until_caught_up(worker_2, ShippingService(eventlog_log).handle)

        assert worker_2.assignment() == {
            eventlog.TopicPartition(ORDERS, 0),
            eventlog.TopicPartition(ORDERS, 1),
        }
    assert sorted(record.key for record in eventlog_log.scan(SHIPMENTS)) == [b"o-1", b"o-2", b"o-3"]
