"""The event-sourced bank account: deposits, withdrawals, and a balance rebuilt by replay.

    python examples/bank.py [LOG_DIR]

Each account is an aggregate (``eventlog.eventsourcing.Aggregate``): its state (owner,
balance) is never stored as such, only the events that changed it (``opened``,
``deposited``, ``withdrawn``), as the records of one key of the topic ``accounts``, which
keeps a key index. Loading an account replays that key's events (``log.read_key``, no
scan), starting from the newest snapshot in the compacted topic ``account-snapshots``.

Saving appends the new events with the version the account was loaded at as the key's
expected version. Two tellers who loaded the same version cannot both withdraw: the
second save raises ``eventlog.ConcurrencyError`` and writes nothing; the teller reloads
and decides again, and the overdraft is refused.

A projection (``TableProjection``) keeps the current balance of every account in the
compacted topic ``account-balances``, exactly once: its updates and the positions of its
consumer group commit in one transaction.

The log lives in ``demo-data/bank-log`` unless you pass a directory. Run it again and the
same accounts get more deposits and withdrawals; the balances carry on.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import eventlog
from eventlog.eventsourcing import (
    Aggregate,
    AggregateStore,
    ReadModel,
    ReadModelWriter,
    TableProjection,
    decode_event,
)

EVENTS = "accounts"
SNAPSHOTS = "account-snapshots"
BALANCES = "account-balances"

# Amounts are in cents: money is never a float.
OWNERS = {"acc-1001": "Ada Lovelace", "acc-1002": "Grace Hopper"}
OPERATIONS = [
    ("acc-1001", "deposit", 120_00),
    ("acc-1002", "deposit", 45_00),
    ("acc-1001", "withdraw", 20_00),
    ("acc-1001", "deposit", 7_50),
    ("acc-1002", "withdraw", 5_00),
    ("acc-1001", "deposit", 30_00),
    ("acc-1002", "deposit", 60_00),
]


class InsufficientFunds(Exception):
    """A withdrawal larger than the balance: refused, nothing recorded."""


class Account(Aggregate):
    """A bank account, rebuilt from its events."""

    def __init__(self, id: str | bytes) -> None:
        super().__init__(id)
        self.owner = ""
        self.balance = 0

    @classmethod
    def open(cls, id: str, owner: str) -> Account:
        account = cls(id)
        account.record("opened", owner=owner)
        return account

    def deposit(self, amount: int) -> None:
        if amount <= 0:
            raise ValueError("a deposit is a positive amount")
        self.record("deposited", amount=amount)

    def withdraw(self, amount: int) -> None:
        # Decided from the state as loaded: the expected version makes sure that state
        # is still the newest when the withdrawal is saved.
        if amount > self.balance:
            raise InsufficientFunds(
                f"{self.id}: balance {money(self.balance)}, cannot withdraw {money(amount)}"
            )
        self.record("withdrawn", amount=amount)

    def apply(self, event: dict[str, Any]) -> None:
        kind = event["type"]
        if kind == "opened":
            self.owner = event["owner"]
        elif kind == "deposited":
            self.balance += event["amount"]
        elif kind == "withdrawn":
            self.balance -= event["amount"]


def money(cents: int) -> str:
    return f"${cents / 100:,.2f}"


def project_balance(record: eventlog.Record, balances: ReadModelWriter) -> None:
    """The read model: the current balance of each account, from its events."""
    event = decode_event(record)
    assert record.key is not None
    current = balances.get(record.key, {"owner": "", "balance": 0})
    if event["type"] == "opened":
        current["owner"] = event["owner"]
    elif event["type"] == "deposited":
        current["balance"] += event["amount"]
    elif event["type"] == "withdrawn":
        current["balance"] -= event["amount"]
    balances.put(record.key, current)


def main(path: str) -> None:
    with eventlog.open(path) as log:
        store = AggregateStore(log, EVENTS, Account, snapshot_topic=SNAPSHOTS, snapshot_every=5)
        store.create_topics(partitions=2)
        earlier = sum(log.end_offsets(EVENTS).values())
        print(f"log {log.path}: {earlier} account events from earlier runs")

        # 1. Open the accounts (a new aggregate expects version 0: it must not exist yet).
        for account_id, owner in OWNERS.items():
            if store.version(account_id) == 0:
                store.save(Account.open(account_id, owner))
                print(f"opened {account_id} for {owner}")

        # 2. Commands: load the account, decide, save the new events with the version
        #    it was loaded at.
        for account_id, operation, amount in OPERATIONS:
            account = store.load(account_id)
            getattr(account, operation)(amount)
            store.save(account)
        print(f"{len(OPERATIONS)} deposits and withdrawals saved")

        # 3. The balance is not stored anywhere: loading replays the account's events
        #    (from its newest snapshot, written every 5 events with the events themselves).
        for account_id in OWNERS:
            account = store.load(account_id)
            snapshot = log.latest(SNAPSHOTS, account.key)
            since = 0 if snapshot is None else json.loads(snapshot.value or b"")["version"]
            start = f"the snapshot at version {since}" if since else "the first event"
            print(
                f"{account_id} ({account.owner}): balance {money(account.balance)}, "
                f"version {account.version}: replayed {account.version - since} events "
                f"from {start}"
            )
        assert sum(1 for _ in store.history("acc-1001")) == store.version("acc-1001")

        # 4. Two tellers withdraw from the same account at the same time. Both loaded the
        #    same version and both see enough money; only the first save goes in.
        teller_a = store.load("acc-1002")
        teller_b = store.load("acc-1002")
        amount = teller_a.balance * 6 // 10  # 60% of the balance: only one of them fits
        teller_a.withdraw(amount)
        teller_b.withdraw(amount)
        store.save(teller_a)
        print(f"teller A withdrew {money(amount)} from acc-1002 (version {teller_a.version})")
        try:
            store.save(teller_b)
            raise SystemExit("the second withdrawal was saved: expected versions failed")
        except eventlog.ConcurrencyError as conflict:
            print(
                f"teller B's save: ConcurrencyError (expected version "
                f"{conflict.expected_version}, the account is at {conflict.actual_version}); "
                f"nothing written"
            )
        # Teller B retries from the newer state, and the overdraft is refused.
        try:
            store.update("acc-1002", lambda account: account.withdraw(amount))
            raise SystemExit("an overdraft was accepted")
        except InsufficientFunds as refused:
            print(f"teller B retried: refused, {refused}")
        final = store.load("acc-1002")
        assert final.balance >= 0
        print(f"acc-1002 balance {money(final.balance)}: never below zero")

        # 5. The read model: balances in a compacted topic, updated exactly once.
        balances = ReadModel(log, BALANCES)
        balances.create_topic()
        with TableProjection(
            log, EVENTS, group="balances", model=balances, project=project_balance
        ) as projection:
            projected = projection.run(idle_timeout=0.1)
        print(f"projection: {projected} new events applied to {BALANCES!r}")
        for account_id, document in sorted(balances.to_dict().items()):
            assert document["balance"] == store.load(account_id).balance
            print(f"  {account_id} {document['owner']}: {money(document['balance'])}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join("demo-data", "bank-log"))
