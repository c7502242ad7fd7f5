"""eventlog.eventsourcing: aggregates, snapshots, optimistic concurrency and projections.

What is verified:

- an aggregate saved and loaded again has the same state and version, whatever the number
  of saves; its events are stored as JSON objects with a ``type`` field, one key per
  aggregate;
- snapshots are written in the transaction of the save that crosses ``snapshot_every``,
  loading starts from the newest one and replays only the events after it;
- two stores saving the same aggregate from the same version: one wins, the other gets
  ConcurrencyError and nothing of its save (events or snapshot) is written;
- a stream with events missing is refused rather than silently rebuilt wrong;
- both projection runners are exactly once across a simulated crash: a projection that
  raises in the middle of a batch writes nothing of it (model, outputs, positions), and
  the batch is projected again, so each record counts once.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

import eventlog
from eventlog import NewRecord, Record, TopicPartition
from eventlog.eventsourcing import (
    Aggregate,
    AggregateNotFoundError,
    AggregateStore,
    MissingEventsError,
    ReadModel,
    ReadModelWriter,
    TableProjection,
    decode_event,
    run_projection,
)

ROOT = Path(__file__).resolve().parent.parent


class InsufficientFunds(Exception):
    pass


class Account(Aggregate):
    def __init__(self, id: str | bytes) -> None:
        super().__init__(id)
        self.owner: str | None = None
        self.balance = 0

    def open(self, owner: str) -> None:
        self.record("opened", owner=owner)

    def deposit(self, amount: int) -> None:
        self.record("deposited", amount=amount)

    def withdraw(self, amount: int) -> None:
        if amount > self.balance:
            raise InsufficientFunds(f"{self.id}: balance {self.balance} < {amount}")
        self.record("withdrawn", amount=amount)

    def apply(self, event: dict[str, Any]) -> None:
        if event["type"] == "opened":
            self.owner = event["owner"]
        elif event["type"] == "deposited":
            self.balance += event["amount"]
        elif event["type"] == "withdrawn":
            self.balance -= event["amount"]


class CountingAccount(Account):
    """Counts the events applied to each instance (to see what a load replays)."""

    def __init__(self, id: str | bytes) -> None:
        super().__init__(id)
        self._applied = 0

    def apply(self, event: dict[str, Any]) -> None:
        self._applied += 1
        super().apply(event)


@pytest.fixture
def store(log: eventlog.Log) -> AggregateStore[Account]:
    s = AggregateStore(log, "accounts", Account)
    s.create_topics(partitions=3)
    return s


def opened(store: AggregateStore[Account], id: str, deposit: int = 0) -> Account:
    account = Account(id)
    account.open("Ada")
    if deposit:
        account.deposit(deposit)
    store.save(account)
    return account


# ---------------------------------------------------------------------- aggregates


def test_record_applies_and_keeps_pending_events() -> None:
    account = Account("acc-1")
    event = account.record("deposited", amount=5)
    assert event == {"type": "deposited", "amount": 5}
    assert (account.balance, account.version, account.saved_version) == (5, 1, 0)
    assert account.pending_events == [event]
    assert account.key == b"acc-1"


def test_record_gives_apply_the_stored_json_form() -> None:
    seen: list[dict[str, Any]] = []

    class Recorder(Aggregate):
        def apply(self, event: dict[str, Any]) -> None:
            seen.append(event)

    Recorder("x").record("tagged", tags=("a", "b"), counts={1: 2})
    assert seen == [{"type": "tagged", "tags": ["a", "b"], "counts": {"1": 2}}]


def test_record_refuses_bad_events_and_records_nothing() -> None:
    account = Account("acc-1")
    with pytest.raises(eventlog.InvalidArgumentError):
        account.record("")
    with pytest.raises(eventlog.InvalidArgumentError):
        account.record("deposited", type="x")
    with pytest.raises(eventlog.InvalidRecordError):
        account.record("deposited", amount=object())
    with pytest.raises(eventlog.InvalidRecordError):
        account.record("deposited", amount=float("nan"))
    with pytest.raises(InsufficientFunds):
        account.withdraw(1)  # the command refuses: nothing recorded
    with pytest.raises(KeyError):
        account.record("deposited")  # apply raises (no amount): nothing recorded
    assert (account.version, account.pending_events) == (0, [])


@pytest.mark.parametrize("bad", ["", b"", 7, None])
def test_aggregate_ids_are_non_empty_str_or_bytes(bad: object) -> None:
    with pytest.raises(eventlog.InvalidArgumentError):
        Account(bad)  # type: ignore[arg-type]


def test_save_and_load_round_trip(store: AggregateStore[Account], log: eventlog.Log) -> None:
    account = opened(store, "acc-1", deposit=100)
    assert (account.version, account.saved_version, account.pending_events) == (2, 2, [])
    account.withdraw(30)
    account.deposit(5)
    written = store.save(account)
    assert [m.topic for m in written] == ["accounts", "accounts"]
    assert store.save(account) == []  # nothing pending: nothing written

    loaded = store.load("acc-1")
    assert isinstance(loaded, Account)
    assert (loaded.id, loaded.owner, loaded.balance) == ("acc-1", "Ada", 75)
    assert (loaded.version, loaded.saved_version, loaded.pending_events) == (4, 4, [])
    assert store.version("acc-1") == 4
    assert [e["type"] for e in store.history("acc-1")] == [
        "opened",
        "deposited",
        "withdrawn",
        "deposited",
    ]
    assert list(store.history("acc-1", from_version=4)) == [{"type": "deposited", "amount": 5}]
    # Stored as compact JSON objects, keyed by the id, in the key's partition only.
    records = list(log.scan("accounts"))
    assert {r.key for r in records} == {b"acc-1"}
    assert len({r.partition for r in records}) == 1
    assert json.loads(records[2].value or b"") == {"type": "withdrawn", "amount": 30}


def test_many_aggregates_stay_separate(store: AggregateStore[Account]) -> None:
    for i in range(12):
        opened(store, f"acc-{i}", deposit=i)
    for i in range(0, 12, 3):
        account = store.load(f"acc-{i}")
        account.deposit(1000)
        store.save(account)
    balances = {i: store.load(f"acc-{i}").balance for i in range(12)}
    assert balances == {i: i + (1000 if i % 3 == 0 else 0) for i in range(12)}


def test_bytes_ids(store: AggregateStore[Account]) -> None:
    account = Account(b"\x00acc")
    account.deposit(3)
    store.save(account)
    assert store.load(b"\x00acc").balance == 3


def test_load_missing_aggregate(store: AggregateStore[Account]) -> None:
    with pytest.raises(AggregateNotFoundError) as info:
        store.load("nobody")
    assert isinstance(info.value, KeyError)
    assert store.version("nobody") == 0


def test_update_retries_with_the_newer_state(
    store: AggregateStore[Account], log: eventlog.Log
) -> None:
    opened(store, "acc-1", deposit=10)
    other = AggregateStore(log, "accounts", Account)
    calls = 0

    def add_five(account: Account) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:  # another writer gets in between this load and this save
            rival = other.load("acc-1")
            rival.deposit(100)
            other.save(rival)
        account.deposit(5)

    result = store.update("acc-1", add_five)
    assert calls == 2
    assert (result.balance, result.version) == (115, 4)
    assert store.load("acc-1").balance == 115


def test_update_gives_up_after_its_attempts(store: AggregateStore[Account]) -> None:
    opened(store, "acc-1")

    def always_beaten(account: Account) -> None:
        rival = store.load("acc-1")
        rival.deposit(1)
        store.save(rival)
        account.deposit(5)

    with pytest.raises(eventlog.ConcurrencyError):
        store.update("acc-1", always_beaten, attempts=2)
    assert store.load("acc-1").balance == 2  # the rivals' deposits only


def test_store_validates_its_arguments(log: eventlog.Log) -> None:
    with pytest.raises(eventlog.InvalidArgumentError):
        AggregateStore(log, "accounts", Account, snapshot_every=5)
    with pytest.raises(eventlog.InvalidArgumentError):
        AggregateStore(log, "accounts", Account, snapshot_topic="s", snapshot_every=0)
    with pytest.raises(eventlog.InvalidArgumentError):
        AggregateStore(log, b"accounts", Account)  # type: ignore[arg-type]
    log.create_topic("compacted", cleanup_policy="compact")
    with pytest.raises(eventlog.InvalidArgumentError, match="must keep every record"):
        AggregateStore(log, "compacted", Account).create_topics()


# ---------------------------------------------------------------------- snapshots


@pytest.fixture
def snapshot_store(log: eventlog.Log) -> AggregateStore[CountingAccount]:
    s = AggregateStore(
        log, "accounts", CountingAccount, snapshot_topic="account-snapshots", snapshot_every=5
    )
    s.create_topics()
    return s


def test_snapshots_are_written_when_a_save_crosses_the_interval(
    snapshot_store: AggregateStore[CountingAccount], log: eventlog.Log
) -> None:
    account = CountingAccount("acc-1")
    account.open("Ada")
    for amount in (1, 2, 3):
        account.deposit(amount)
    snapshot_store.save(account)  # version 4: no snapshot yet
    assert log.latest("account-snapshots", b"acc-1") is None
    account.deposit(4)
    account.deposit(5)
    snapshot_store.save(account)  # version 6: crossed 5
    snapshot = log.latest("account-snapshots", b"acc-1")
    assert snapshot is not None
    assert json.loads(snapshot.value or b"") == {
        "version": 6,
        "state": {"owner": "Ada", "balance": 15},
    }
    for amount in range(3):
        account.deposit(amount)
        snapshot_store.save(account)  # versions 7, 8, 9: no new snapshot
    assert log.end_offsets("account-snapshots") == {0: 1}

    loaded = snapshot_store.load("acc-1")
    assert (loaded.balance, loaded.version, loaded.owner) == (18, 9, "Ada")
    assert loaded._applied == 3  # only the events after the snapshot were replayed


def test_snapshot_on_demand(
    snapshot_store: AggregateStore[CountingAccount], log: eventlog.Log
) -> None:
    account = CountingAccount("acc-1")
    account.deposit(7)
    with pytest.raises(eventlog.IllegalStateError):
        snapshot_store.snapshot(account)  # unsaved events
    snapshot_store.save(account)
    snapshot_store.snapshot(account)
    loaded = snapshot_store.load("acc-1")
    assert (loaded.balance, loaded._applied) == (7, 0)
    with pytest.raises(eventlog.IllegalStateError):
        AggregateStore(log, "accounts", Account).snapshot(loaded)


def test_snapshot_older_than_the_stream_is_still_correct(
    snapshot_store: AggregateStore[CountingAccount],
) -> None:
    account = CountingAccount("acc-1")
    account.deposit(1)
    snapshot_store.save(account)
    snapshot_store.snapshot(account)  # version 1
    later = snapshot_store.load("acc-1")
    later.deposit(10)
    later.deposit(100)
    snapshot_store.save(later)  # version 3: below snapshot_every, no snapshot
    loaded = snapshot_store.load("acc-1")
    assert (loaded.balance, loaded.version, loaded._applied) == (111, 3, 2)


def test_custom_snapshot_state(log: eventlog.Log) -> None:
    class Tags(Aggregate):
        def __init__(self, id: str | bytes) -> None:
            super().__init__(id)
            self.tags: set[str] = set()

        def apply(self, event: dict[str, Any]) -> None:
            self.tags.add(event["tag"])

        def snapshot_state(self) -> dict[str, Any]:
            return {"tags": sorted(self.tags)}

        def restore_state(self, state: Mapping[str, Any]) -> None:
            self.tags = set(state["tags"])

    store = AggregateStore(log, "tags", Tags, snapshot_topic="tag-snapshots", snapshot_every=2)
    store.create_topics()
    item = Tags("item")
    for tag in "abc":
        item.record("tagged", tag=tag)
    store.save(item)
    assert store.load("item").tags == {"a", "b", "c"}


def test_unserializable_snapshot_writes_nothing(log: eventlog.Log) -> None:
    class Opaque(Aggregate):
        def apply(self, event: dict[str, Any]) -> None:
            self.handle = object()  # fine in memory, not in a snapshot

    store = AggregateStore(log, "things", Opaque, snapshot_topic="snaps", snapshot_every=1)
    store.create_topics()
    thing = Opaque("t")
    thing.record("made")
    with pytest.raises(eventlog.InvalidRecordError):
        store.save(thing)
    assert log.end_offsets("things") == {0: 0}
    assert thing.pending_events == [{"type": "made"}]


# ---------------------------------------------------------------------- conflicts


def test_conflicting_saves_one_wins_the_other_writes_nothing(log: eventlog.Log) -> None:
    def make_store() -> AggregateStore[Account]:
        return AggregateStore(
            log, "accounts", Account, snapshot_topic="account-snapshots", snapshot_every=3
        )

    teller_a, teller_b = make_store(), make_store()
    teller_a.create_topics()
    opened(teller_a, "acc-1", deposit=100)
    ends_before = (log.end_offsets("accounts"), log.end_offsets("account-snapshots"))

    a = teller_a.load("acc-1")
    b = teller_b.load("acc-1")
    a.withdraw(80)
    b.withdraw(70)
    b.deposit(1)  # b's save would also cross snapshot_every: a snapshot in the transaction
    teller_a.save(a)
    with pytest.raises(eventlog.ConcurrencyError) as info:
        teller_b.save(b)
    err = info.value
    assert (err.key, err.expected_version, err.actual_version) == (b"acc-1", 2, 3)

    # Nothing of b's save is stored: not its events, not its snapshot.
    assert sum(log.end_offsets("accounts").values()) == sum(ends_before[0].values()) + 1
    snapshot = log.latest("account-snapshots", b"acc-1")
    assert snapshot is not None
    assert json.loads(snapshot.value or b"")["version"] == 3  # a's
    # b is unchanged, its events still pending: the caller reloads and decides again.
    assert (b.version, b.saved_version, len(b.pending_events)) == (4, 2, 2)
    b = teller_b.load("acc-1")
    assert b.balance == 20
    with pytest.raises(InsufficientFunds):
        b.withdraw(70)


def test_creating_an_existing_aggregate_conflicts(store: AggregateStore[Account]) -> None:
    opened(store, "acc-1")
    with pytest.raises(eventlog.ConcurrencyError):
        opened(store, "acc-1")  # a new Account expects version 0
    assert store.version("acc-1") == 1


def test_concurrent_savers_exactly_one_wins_each_version(log: eventlog.Log) -> None:
    """Threads racing to append to one aggregate: the stream has no gap or duplicate."""
    import threading

    store = AggregateStore(log, "accounts", Account)
    store.create_topics()
    opened(store, "acc-1")
    wins: list[int] = []
    lock = threading.Lock()

    def teller(n: int) -> None:
        for _ in range(15):
            account = store.load("acc-1")
            account.deposit(n)
            try:
                store.save(account)
            except eventlog.ConcurrencyError:
                continue
            with lock:
                wins.append(account.version)

    threads = [threading.Thread(target=teller, args=(n,)) for n in (1, 10, 100)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(wins) == list(range(2, 2 + len(wins)))
    assert store.version("acc-1") == 1 + len(wins)
    assert len(list(store.history("acc-1"))) == 1 + len(wins)


def test_missing_events_are_reported(log: eventlog.Log) -> None:
    # A topic with retention lost the oldest events of the stream.
    log.create_topic("accounts", key_index=True, retention_ms=-1)
    store = AggregateStore(log, "accounts", Account)
    account = Account("acc-1")
    account.deposit(1)
    store.save(account)
    account.deposit(2)
    store.save(account)
    log.delete_records("accounts", 0, 1)
    with pytest.raises(MissingEventsError):
        store.load("acc-1")


def test_a_corrupt_event_is_not_applied(log: eventlog.Log) -> None:
    log.create_topic("accounts", key_index=True)
    log.append("accounts", b"[1, 2]", key=b"acc-1")
    with pytest.raises(eventlog.DeserializationError) as info:
        AggregateStore(log, "accounts", Account).load("acc-1")
    assert info.value.offset == 0


def test_decode_event() -> None:
    def record(value: bytes | None) -> Record:
        return Record("t", 0, 3, 0, b"k", value, ())

    assert decode_event(record(b'{"type":"x","a":1}')) == {"type": "x", "a": 1}
    for bad in (None, b"not json", b'{"a": 1}', b'{"type": 3}', b'"x"'):
        with pytest.raises(eventlog.DeserializationError):
            decode_event(record(bad))


# ---------------------------------------------------------------------- read model in the log


def balances_projection(record: Record, model: ReadModelWriter) -> None:
    """Balance per account, from account events."""
    event = decode_event(record)
    assert record.key is not None
    current = model.get(record.key, {"balance": 0, "events": 0})
    if event["type"] == "deposited":
        current["balance"] += event["amount"]
    elif event["type"] == "withdrawn":
        current["balance"] -= event["amount"]
    current["events"] += 1
    model.put(record.key, current)


def seed_accounts(log: eventlog.Log, accounts: int, deposits: int) -> None:
    log.create_topic("accounts", partitions=2, key_index=True, retention_ms=-1, exist_ok=True)
    log.append_batch(
        "accounts",
        [
            NewRecord(
                json.dumps({"type": "deposited", "amount": d + 1}).encode(), key=f"a{a}".encode()
            )
            for d in range(deposits)
            for a in range(accounts)
        ],
    )


def expected_balances(accounts: int, deposits: int) -> dict[str, dict[str, int]]:
    total = sum(range(1, deposits + 1))
    return {f"a{a}": {"balance": total, "events": deposits} for a in range(accounts)}


def test_table_projection_builds_the_read_model(log: eventlog.Log) -> None:
    seed_accounts(log, accounts=4, deposits=5)
    model = ReadModel(log, "balances")
    model.create_topic()
    with TableProjection(
        log, "accounts", group="balances", model=model, project=balances_projection
    ) as projection:
        assert projection.poll(timeout=1.0, max_records=7) == 7
        assert projection.run(idle_timeout=0.05) == 13
    assert model.to_dict() == expected_balances(4, 5)
    assert model.get("a1") == {"balance": 15, "events": 5}
    assert model.get("nobody") is None
    # Positions were committed with the model: nothing left to project.
    with TableProjection(
        log, ["accounts"], group="balances", model="balances", project=balances_projection
    ) as again:
        assert again.run(idle_timeout=0.05) == 0


def test_table_projection_crash_mid_batch_is_exactly_once(log: eventlog.Log) -> None:
    """The projection raises on the 6th record of a 10-record batch: nothing of the batch
    is written (model, other outputs, positions); after a restart the batch is projected
    again, and every record counts once."""
    seed_accounts(log, accounts=3, deposits=6)
    log.create_topic("audit")
    model = ReadModel(log, "balances")
    model.create_topic()
    seen = 0

    def crashing(record: Record, writer: ReadModelWriter) -> None:
        nonlocal seen
        seen += 1
        balances_projection(record, writer)
        writer.transaction.append("audit", record.value)
        if seen == 6:
            raise RuntimeError("the process dies here")

    first = TableProjection(log, "accounts", group="balances", model=model, project=crashing)
    with pytest.raises(RuntimeError):
        first.poll(timeout=1.0, max_records=10)
    first.close()
    assert model.to_dict() == {}
    assert log.end_offsets("audit") == {0: 0}
    assert log.committed_offsets("balances") == {}

    with TableProjection(log, "accounts", group="balances", model=model, project=crashing) as p:
        assert p.run(idle_timeout=0.05) == 18
    assert model.to_dict() == expected_balances(3, 6)
    assert log.end_offsets("audit") == {0: 18}  # each input's output exactly once
    committed = log.committed_offsets("balances")
    assert {tp.partition: o.offset for tp, o in committed.items()} == log.end_offsets("accounts")


def test_concurrent_writers_of_a_document_conflict_instead_of_losing_updates(
    log: eventlog.Log,
) -> None:
    model = ReadModel(log, "counters")
    model.create_topic()
    with log.transaction() as setup:
        model.writer(setup).put("c", {"n": 1})
    tx_a, tx_b = log.transaction(), log.transaction()
    writer_a, writer_b = model.writer(tx_a), model.writer(tx_b)
    assert model.writer(tx_a) is writer_a
    for writer in (writer_a, writer_b):
        document = writer.get("c")
        document["n"] += 1
        writer.put("c", document)
        assert writer.get("c") == {"n": 2}  # its own write, before the commit
        writer.put("c", {"n": 3})  # a second write of the key in one transaction
    assert model.get("c") == {"n": 1}  # nothing committed yet
    tx_a.commit()
    with pytest.raises(eventlog.ConcurrencyError):
        tx_b.commit()
    assert model.get("c") == {"n": 3}
    assert log.key_version("counters", b"c") == 3  # the setup and tx_a's two writes

    with log.transaction() as tx:
        writer = model.writer(tx)
        writer.delete("c")
        assert writer.get("c", "gone") == "gone"
    assert model.get("c") is None
    assert "c" not in model.to_dict()
    with pytest.raises(eventlog.InvalidArgumentError):
        model.writer(log.transaction()).put("c", None)


def test_table_projection_retries_a_conflicting_batch(log: eventlog.Log) -> None:
    """A batch whose read-model document changed under it (another writer) is not lost:
    it is projected again from the newer document."""
    seed_accounts(log, accounts=1, deposits=2)
    model = ReadModel(log, "balances")
    model.create_topic()
    interfered = False

    def interfering(record: Record, writer: ReadModelWriter) -> None:
        nonlocal interfered
        balances_projection(record, writer)
        if not interfered:
            interfered = True
            with log.transaction() as other:  # another member updates the document
                model.writer(other).put(b"a0", {"balance": 1000, "events": 0})

    with TableProjection(log, "accounts", group="g", model=model, project=interfering) as p:
        assert p.poll(timeout=1.0) == 0  # conflicted: nothing written, rewound
        assert p.run(idle_timeout=0.05) == 2
    assert model.get("a0") == {"balance": 1003, "events": 2}


# ---------------------------------------------------------------------- read model elsewhere


class SqliteBalances:
    """A read model in SQLite: balances and the positions, stored in one transaction,
    records below a stored position ignored (the exactly-once conditions)."""

    def __init__(self, path: Path, fail_at: int | None = None) -> None:
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("CREATE TABLE IF NOT EXISTS balances (account TEXT PRIMARY KEY, n INT)")
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS positions "
            "(topic TEXT, partition INT, next INT, PRIMARY KEY (topic, partition))"
        )
        self.fail_at = fail_at
        self.applied = 0
        self.loads = 0

    def load_positions(self) -> dict[TopicPartition, int]:
        self.loads += 1
        rows = self.db.execute("SELECT topic, partition, next FROM positions")
        return {TopicPartition(t, p): n for t, p, n in rows}

    def apply(self, records: list[Record], positions: dict[TopicPartition, int]) -> None:
        db = self.db
        db.execute("BEGIN")
        try:
            stored = self.load_positions()
            for record in records:
                if record.offset < stored.get(TopicPartition(record.topic, record.partition), 0):
                    continue
                self.applied += 1
                if self.applied == self.fail_at:
                    raise RuntimeError("the process dies here")
                event = decode_event(record)
                db.execute(
                    "INSERT INTO balances VALUES (?, ?) "
                    "ON CONFLICT (account) DO UPDATE SET n = n + excluded.n",
                    ((record.key or b"").decode(), event["amount"]),
                )
            db.executemany(
                "INSERT OR REPLACE INTO positions VALUES (?, ?, ?)",
                [(tp.topic, tp.partition, offset) for tp, offset in positions.items()],
            )
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def balances(self) -> dict[str, int]:
        return dict(self.db.execute("SELECT account, n FROM balances"))

    def positions(self) -> dict[int, int]:
        return {tp.partition: n for tp, n in self.load_positions().items()}


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Callable[..., SqliteBalances]]:
    """Opens SqliteBalances on one database file (a restart opens it again); closes them."""
    opened: list[SqliteBalances] = []

    def open_store(fail_at: int | None = None) -> SqliteBalances:
        opened.append(SqliteBalances(tmp_path / "balances.sqlite3", fail_at))
        return opened[-1]

    yield open_store
    for store in opened:
        store.db.close()


def test_run_projection_keeps_an_external_read_model(
    log: eventlog.Log, sqlite_store: Callable[..., SqliteBalances]
) -> None:
    seed_accounts(log, accounts=4, deposits=3)
    store = sqlite_store()
    applied = run_projection(
        log,
        "accounts",
        group="sqlite-balances",
        apply=store.apply,
        load_positions=store.load_positions,
        idle_timeout=0.05,
        max_records=5,
    )
    assert applied == 12
    assert store.balances() == {f"a{a}": 6 for a in range(4)}
    assert store.positions() == log.end_offsets("accounts")
    # The group's offsets follow, for monitoring.
    committed = log.committed_offsets("sqlite-balances")
    assert {tp.partition: o.offset for tp, o in committed.items()} == log.end_offsets("accounts")


def test_run_projection_crash_mid_batch_is_exactly_once(
    log: eventlog.Log, sqlite_store: Callable[..., SqliteBalances]
) -> None:
    seed_accounts(log, accounts=3, deposits=4)
    crashing = sqlite_store(fail_at=8)
    with pytest.raises(RuntimeError):
        run_projection(
            log,
            "accounts",
            group="sqlite-balances",
            apply=crashing.apply,
            load_positions=crashing.load_positions,
            idle_timeout=0.05,
            max_records=5,
        )
    partial = crashing.positions()
    assert 0 < sum(partial.values()) < 12  # the batches before the crash were stored

    restarted = sqlite_store()
    applied = run_projection(
        log,
        "accounts",
        group="sqlite-balances",
        apply=restarted.apply,
        load_positions=restarted.load_positions,
        idle_timeout=0.05,
    )
    assert applied == 12 - sum(partial.values())
    assert restarted.balances() == {f"a{a}": 10 for a in range(3)}
    assert restarted.positions() == log.end_offsets("accounts")


def test_run_projection_starts_from_the_store_not_the_group(
    log: eventlog.Log, sqlite_store: Callable[..., SqliteBalances]
) -> None:
    """A rebuilt (empty) store starts from the beginning even though the group committed
    everything; a store ahead of the group wins as well."""
    seed_accounts(log, accounts=2, deposits=2)
    tp0 = TopicPartition("accounts", 0)
    log.commit_offsets("sqlite-balances", {tp0: 1, TopicPartition("accounts", 1): 2})
    store = sqlite_store()
    run_projection(
        log,
        "accounts",
        group="sqlite-balances",
        apply=store.apply,
        load_positions=store.load_positions,
        idle_timeout=0.05,
    )
    assert store.balances() == {"a0": 3, "a1": 3}


def test_run_projection_stops_on_request(
    log: eventlog.Log, sqlite_store: Callable[..., SqliteBalances]
) -> None:
    import threading

    seed_accounts(log, accounts=1, deposits=1)
    store = sqlite_store()
    stop = threading.Event()

    def apply_then_stop(records: list[Record], positions: dict[TopicPartition, int]) -> None:
        store.apply(records, positions)
        stop.set()

    assert (
        run_projection(
            log,
            "accounts",
            group="g",
            apply=apply_then_stop,
            load_positions=store.load_positions,
            stop=stop,
        )
        == 1
    )


def test_run_projection_refuses_options_it_owns(log: eventlog.Log) -> None:
    log.create_topic("accounts")
    for option in ({"enable_auto_commit": True}, {"listener": eventlog.RebalanceListener()}):
        with pytest.raises(eventlog.InvalidArgumentError):
            run_projection(log, "accounts", group="g", apply=print, load_positions=dict, **option)


# ---------------------------------------------------------------------- the examples


def run_example(name: str, tmp_path: Path) -> list[str]:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / name), str(tmp_path / "log")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout.splitlines()


def test_bank_example_claims(tmp_path: Path) -> None:
    lines = run_example("bank.py", tmp_path)
    assert any("ConcurrencyError" in line for line in lines)
    with eventlog.open(tmp_path / "log") as log:
        store = AggregateStore(log, "accounts", Account)
        balances = ReadModel(log, "account-balances").to_dict()
        for account_id, document in balances.items():
            assert store.load(account_id).balance == document["balance"]
        assert log.check()


def test_fraud_example_flags_each_window_once(tmp_path: Path) -> None:
    first = run_example("fraud.py", tmp_path)
    assert any("restart" in line for line in first)
    second = run_example("fraud.py", tmp_path)  # a rerun adds nothing
    with eventlog.open(tmp_path / "log") as log:
        flags = [json.loads(r.value or b"") for r in log.scan("suspicious-transactions")]
        windows = [(f["customer"], f["window_start"]) for f in flags]
        assert flags
        assert len(windows) == len(set(windows))
    assert first[-1] == second[-1]
