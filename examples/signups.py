"""User-signup fan-out: one topic, three independent services, one of them in two processes.

    python examples/signups.py [LOG_DIR]

A web-like producer emits ``user.signed_up`` events. Three consumer groups read the same
topic independently, each at its own pace and with its own committed offsets:

* ``email``       sends a welcome email per signup (a thread of this process);
* ``analytics``   counts signups per plan and country (another thread);
* ``onboarding``  creates a workspace per user, scaled out to two worker processes that
                  split the topic's partitions between them (a consumer group across
                  processes, with no broker and no coordinator process).

Run it again and every service continues after what it already processed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections import Counter

import eventlog
from eventlog import serde

TOPIC = "user.signed_up"
PARTITIONS = 4
SIGNUPS = 60
PLANS = ["free", "free", "team", "enterprise"]
COUNTRIES = ["DE", "FR", "US", "JP", "BR"]


def wait_until_caught_up(log: eventlog.Log, group: str, timeout: float = 60.0) -> None:
    """Block until ``group`` has committed everything in the topic."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ends = log.end_offsets(TOPIC)
        committed = log.committed_offsets(group, TOPIC)
        if all(
            committed.get(eventlog.TopicPartition(TOPIC, p), eventlog.OffsetAndMetadata(0)).offset
            >= end
            for p, end in ends.items()
        ):
            return
        time.sleep(0.02)
    raise TimeoutError(f"group {group!r} did not catch up within {timeout} s")


# ---------------------------------------------------------------- the services


def email_service(log: eventlog.Log, stop: threading.Event, sent: list[str]) -> None:
    with log.consumer(
        TOPIC, group="email", value_deserializer=serde.json, auto_offset_reset="earliest"
    ) as consumer:
        while not stop.is_set():
            for record in consumer.poll(timeout=0.1):
                sent.append(record.value["email"])  # "send" the welcome email
            consumer.commit()  # after the work: at-least-once


def analytics_service(log: eventlog.Log, stop: threading.Event, counts: Counter[str]) -> None:
    with log.consumer(
        TOPIC, group="analytics", value_deserializer=serde.json, auto_offset_reset="earliest"
    ) as consumer:
        while not stop.is_set():
            for record in consumer.poll(timeout=0.1):
                counts[f"plan={record.value['plan']}"] += 1
                counts[f"country={record.value['country']}"] += 1
            consumer.commit()


def onboarding_worker(path: str, name: str) -> None:
    """One of the two onboarding processes: consume until the group has caught up."""
    made: list[str] = []
    read_from: set[int] = set()  # the partitions this worker processed records of

    with eventlog.open(path) as log:
        consumer = log.consumer(
            TOPIC,
            group="onboarding",
            client_id=name,
            value_deserializer=serde.json,
            auto_offset_reset="earliest",
        )
        # The parent closes our stdin once every group has caught up: time to stop.
        stop = threading.Event()
        threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
        with consumer:
            print(f"READY {name}", flush=True)
            while True:
                records = consumer.poll(timeout=0.1)
                for record in records:
                    made.append(record.value["user_id"])  # "create the workspace"
                    read_from.add(record.partition)
                consumer.commit()
                if not records and stop.is_set():
                    break
        print(
            f"{name}: {len(made)} workspaces created (from partitions {sorted(read_from)})",
            flush=True,
        )


# ---------------------------------------------------------------- the demo


def main(path: str) -> None:
    with eventlog.open(path) as log:
        log.create_topic(TOPIC, partitions=PARTITIONS, exist_ok=True)
        before = sum(log.end_offsets(TOPIC).values())
        print(f"log {log.path}: topic {TOPIC!r}, {before} signups from earlier runs")

        # The onboarding service: two worker processes in one consumer group.
        workers = [
            subprocess.Popen(
                [sys.executable, __file__, path, "--onboarding-worker", f"onboarding-{i}"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            for i in (1, 2)
        ]
        for worker in workers:
            assert worker.stdout is not None
            worker.stdout.readline()  # "READY ...": the process is up
        # Wait until both have joined and split the partitions (a rebalance).
        deadline = time.monotonic() + 30
        while True:
            try:
                group = log.describe_group("onboarding")
            except eventlog.GroupNotFoundError:
                pass  # no worker has joined yet (they join at their first poll)
            else:
                if len(group.members) == 2 and group.state == "Stable":
                    break
            if time.monotonic() > deadline:
                raise TimeoutError("the onboarding workers did not join")
            time.sleep(0.02)
        print(
            "onboarding group: "
            + ", ".join(f"{m.client_id} owns {len(m.owned)} partitions" for m in group.members)
        )

        # The other two services: threads of this process, each its own group.
        stop = threading.Event()
        sent: list[str] = []
        counts: Counter[str] = Counter()
        threads = [
            threading.Thread(target=email_service, args=(log, stop, sent)),
            threading.Thread(target=analytics_service, args=(log, stop, counts)),
        ]
        for thread in threads:
            thread.start()

        # The web app: a producer emitting one event per signup, keyed by user id (so
        # all of one user's events land on one partition, in order).
        with log.producer(value_serializer=serde.json, key_serializer=serde.str) as producer:
            futures = []
            for i in range(SIGNUPS):
                user = f"u-{before + i:05d}"
                event = {
                    "user_id": user,
                    "email": f"{user}@example.com",
                    "plan": PLANS[i % len(PLANS)],
                    "country": COUNTRIES[i % len(COUNTRIES)],
                }
                futures.append(producer.send(TOPIC, event, key=user))
            last = futures[-1].result(timeout=10)
        print(
            f"produced {SIGNUPS} signups "
            f"(the last one: partition {last.partition}, offset {last.offset})"
        )

        for group_name in ("email", "analytics", "onboarding"):
            wait_until_caught_up(log, group_name)
        stop.set()
        for thread in threads:
            thread.join()
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.close()
        outputs = [w.stdout.read().strip() for w in workers if w.stdout is not None]
        for worker in workers:
            worker.wait(timeout=30)

        print(f"email: {len(sent)} welcome emails sent")
        print(
            "analytics: "
            + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()) if k.startswith("plan="))
        )
        for line in outputs:
            print(line)
        for name in ("email", "analytics", "onboarding"):
            description = log.describe_group(name)
            print(f"group {name}: lag {description.lag}, state {description.state}")


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[2] == "--onboarding-worker":
        onboarding_worker(sys.argv[1], sys.argv[3])
    else:
        main(sys.argv[1] if len(sys.argv) > 1 else os.path.join("demo-data", "signups-log"))
