"""eventlog.ext.eventsourcing: the persistence module for the ``eventsourcing`` library.

Runs the library's own recorder and factory suites (``eventsourcing.tests.persistence``)
against this module's recorders, by subclassing them, and its example application; then
checks what those suites do not: an application saved and reloaded through
``PERSISTENCE_MODULE``/``EVENTLOG_PATH`` (and the per-application prefixed settings), a
concurrent save raising the library's ``IntegrityError``, writers in several threads and
processes racing for one aggregate, live subscriptions, a projection whose view lives in
the log, ``select_events`` against the library's in-memory recorder, and the settings
and topics this module refuses.
"""

from __future__ import annotations

import multiprocessing
import os
import tempfile
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar
from unittest import mock
from uuid import NAMESPACE_URL, UUID, uuid4, uuid5

import pytest

pytest.importorskip(
    "eventsourcing",
    reason="the eventsourcing library is not installed (pip install 'eventlog[eventsourcing]'; "
    "it needs Python 3.11+)",
)

from eventsourcing.application import AggregateNotFoundError, Application, ProcessingEvent
from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import (
    InfrastructureFactory,
    IntegrityError,
    InterfaceError,
    ProgrammingError,
    StoredEvent,
    Tracking,
)
from eventsourcing.popo import POPOAggregateRecorder
from eventsourcing.projection import (
    EventSourcedProjection,
    EventSourcedProjectionRunner,
    Projection,
    ProjectionRunner,
)
from eventsourcing.tests import application as library_application
from eventsourcing.tests import persistence as library_suites
from eventsourcing.utils import Environment, get_topic
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import eventlog
from eventlog.ext.eventsourcing import (
    EventLogAggregateRecorder,
    EventLogApplicationRecorder,
    EventLogFactory,
    EventLogProcessRecorder,
    EventLogTrackingRecorder,
)

MODULE = "eventlog.ext.eventsourcing"

# Every log a test opens (through an application, a factory or directly) must be closed
# by the end of the test: an application's close() closes its factory's log.
pytestmark = pytest.mark.eventlog(leak_check=True)


class _LogPerTest:
    """A fresh log in a temporary directory for each test (closed and removed after), with
    the durability applications get by default."""

    durability: ClassVar[str] = "full"

    def setUp(self) -> None:
        super().setUp()  # type: ignore[misc]
        self._directory = tempfile.TemporaryDirectory(prefix="eventlog-es-")
        self.log_path = str(Path(self._directory.name) / "log")
        self.log = eventlog.open(self.log_path, durability=self.durability)  # type: ignore[arg-type]

    def tearDown(self) -> None:
        self.log.close()
        self._directory.cleanup()
        super().tearDown()  # type: ignore[misc]


# ---------------------------------------------------------------------------- the library's suites


class TestAggregateRecorder(_LogPerTest, library_suites.AggregateRecorderTestCase):
    def create_recorder(self) -> EventLogAggregateRecorder:
        return EventLogAggregateRecorder(self.log, events_topic="stored.events")


class TestAggregateRecorderWithTextIds(TestAggregateRecorder):
    """The same suite with ``str`` originator ids (returned as ``str``, not ``UUID``)."""

    def new_originator_id(self) -> str:
        return f"account-{uuid4()}"


class TestApplicationRecorder(_LogPerTest, library_suites.ApplicationRecorderTestCase):
    def create_recorder(self) -> EventLogApplicationRecorder:
        return EventLogApplicationRecorder(self.log, events_topic="stored.events")

    def test_insert_subscribe(self) -> None:
        # Optional in the library (its SQLite module has no subscriptions); ours has.
        self.optional_test_insert_subscribe()


class TestTrackingRecorder(_LogPerTest, library_suites.TrackingRecorderTestCase):
    def create_recorder(self) -> EventLogTrackingRecorder:
        return EventLogTrackingRecorder(self.log, tracking_topic="notification.tracking")


class TestProcessRecorder(_LogPerTest, library_suites.ProcessRecorderTestCase):
    def create_recorder(self) -> EventLogProcessRecorder:
        return EventLogProcessRecorder(
            self.log, events_topic="stored.events", tracking_topic="notification.tracking"
        )


class TestNonInterleavingNotificationIds(
    _LogPerTest, library_suites.NonInterleavingNotificationIDsBaseCase
):
    def create_recorder(self) -> EventLogApplicationRecorder:
        return EventLogApplicationRecorder(self.log, events_topic="stored.events")


class CustomTrackingRecorder(EventLogTrackingRecorder):
    """A subclass the factory must construct when asked (argument or topic setting)."""


class TestFactory(library_suites.InfrastructureFactoryTestCase[EventLogFactory]):
    def setUp(self) -> None:
        self._directory = tempfile.TemporaryDirectory(prefix="eventlog-es-")
        self.env = Environment(
            "TestCase",
            {
                InfrastructureFactory.PERSISTENCE_MODULE: MODULE,
                EventLogFactory.EVENTLOG_PATH: str(Path(self._directory.name) / "log"),
            },
        )
        super().setUp()

    def tearDown(self) -> None:
        super().tearDown()
        self._directory.cleanup()

    def expected_factory_class(self) -> type[EventLogFactory]:
        return EventLogFactory

    def expected_aggregate_recorder_class(self) -> type[EventLogAggregateRecorder]:
        return EventLogAggregateRecorder

    def expected_application_recorder_class(self) -> type[EventLogApplicationRecorder]:
        return EventLogApplicationRecorder

    def expected_tracking_recorder_class(self) -> type[EventLogTrackingRecorder]:
        return EventLogTrackingRecorder

    def tracking_recorder_subclass(self) -> type[EventLogTrackingRecorder]:
        return CustomTrackingRecorder

    def expected_process_recorder_class(self) -> type[EventLogProcessRecorder]:
        return EventLogProcessRecorder


@pytest.mark.eventlog(leak_check=False)  # the library's test does not close its application
class TestExampleApplication(library_application.ExampleApplicationTestCase):
    """The library's bank-account application (snapshots at chosen versions included),
    configured through the process environment as a deployment would be."""

    expected_factory_topic = f"{MODULE}:EventLogFactory"

    def setUp(self) -> None:
        self._directory = tempfile.TemporaryDirectory(prefix="eventlog-es-")
        settings = {
            "PERSISTENCE_MODULE": MODULE,
            "EVENTLOG_PATH": str(Path(self._directory.name) / "log"),
        }
        patcher = mock.patch.dict(os.environ, settings)
        patcher.start()
        self.addCleanup(patcher.stop)

    def tearDown(self) -> None:
        self._directory.cleanup()


# ---------------------------------------------------------------------------- an application


class Account(Aggregate):
    """A small aggregate for the end-to-end tests."""

    def __init__(self, owner: str) -> None:
        self.owner = owner
        self.balance = Decimal("0")

    @event("Deposited")
    def deposit(self, amount: Decimal) -> None:
        self.balance += amount

    class Snapshot(Aggregate.Snapshot):
        pass


class Bank(Application[UUID]):
    def open_account(self, owner: str) -> UUID:
        account = Account(owner)
        self.save(account)
        return account.id

    def deposit(self, account_id: UUID, amount: Decimal) -> None:
        account: Account = self.repository.get(account_id)
        account.deposit(amount)
        self.save(account)

    def balance(self, account_id: UUID) -> Decimal:
        account: Account = self.repository.get(account_id)
        return account.balance


@pytest.fixture
def bank_env(tmp_path: Path) -> dict[str, str]:
    return {"PERSISTENCE_MODULE": MODULE, "EVENTLOG_PATH": str(tmp_path / "log")}


def test_application_saves_and_reloads_aggregates(bank_env: dict[str, str]) -> None:
    with Bank(env=bank_env) as bank:
        assert isinstance(bank.factory, EventLogFactory)
        account_id = bank.open_account("Alice")
        bank.deposit(account_id, Decimal("10.00"))
        bank.deposit(account_id, Decimal("2.50"))
        notifications = bank.notification_log.select(start=1, limit=10)
        assert [n.id for n in notifications] == [1, 2, 3]
        assert {n.originator_id for n in notifications} == {account_id}

    # A new application object (a restart) reads the events back from disk.
    with Bank(env=bank_env) as reopened:
        assert reopened.balance(account_id) == Decimal("12.50")
        account: Account = reopened.repository.get(account_id)
        assert (account.owner, account.version) == ("Alice", 3)
        with pytest.raises(AggregateNotFoundError):
            reopened.repository.get(uuid4())

    with eventlog.open(bank_env["EVENTLOG_PATH"]) as log:
        assert "bank.events" in log.list_topics()
        records = list(log.read_key("bank.events", str(account_id).encode()))
        assert [r.offset for r in records] == [0, 1, 2]


def test_a_concurrent_save_raises_the_library_integrity_error(bank_env: dict[str, str]) -> None:
    """Two application objects (as two processes would) load the same account, both
    change it; the second save is refused and writes nothing."""
    with Bank(env=bank_env) as first, Bank(env=bank_env) as second:
        account_id = first.open_account("Bob")
        mine: Account = first.repository.get(account_id)
        theirs: Account = second.repository.get(account_id)
        mine.deposit(Decimal("1"))
        theirs.deposit(Decimal("100"))
        first.save(mine)
        with pytest.raises(IntegrityError):
            second.save(theirs)
        assert second.balance(account_id) == Decimal("1")
        assert second.recorder.max_notification_id() == 2


def test_snapshots_are_used_and_kept_in_their_own_topic(bank_env: dict[str, str]) -> None:
    env = {**bank_env, "IS_SNAPSHOTTING_ENABLED": "y"}
    with Bank(env=env) as bank:
        account_id = bank.open_account("Carol")
        for _ in range(5):
            bank.deposit(account_id, Decimal("1"))
        bank.take_snapshot(account_id)
        bank.deposit(account_id, Decimal("1"))
        assert bank.snapshots is not None
        snapshots = list(bank.snapshots.get(account_id))
        assert [s.originator_version for s in snapshots] == [6]
        # The newest snapshot, then the one event after it.
        assert bank.balance(account_id) == Decimal("6")
        assert bank.repository.get(account_id, version=4).balance == Decimal("3")
        # Taking an older snapshot after a newer one is the documented refusal.
        with pytest.raises(IntegrityError):
            bank.take_snapshot(account_id, version=2)
    with eventlog.open(bank_env["EVENTLOG_PATH"]) as log:
        assert log.end_offsets("bank.snapshots") == {0: 1}


def test_settings_prefixed_with_the_application_name_win(tmp_path: Path) -> None:
    """``BANK_EVENTLOG_PATH`` is this application's; other applications use
    ``EVENTLOG_PATH`` (the library's rule for every setting)."""
    env = {
        "PERSISTENCE_MODULE": MODULE,
        "EVENTLOG_PATH": str(tmp_path / "shared"),
        "BANK_EVENTLOG_PATH": str(tmp_path / "bank"),
        "BANK_EVENTLOG_DURABILITY": "off",
    }

    class Other(Application[UUID]):
        pass

    with Bank(env=env) as bank, Other(env=env) as other:
        bank.open_account("Dan")
        other.save(Aggregate())
        assert isinstance(bank.factory, EventLogFactory)
        assert isinstance(other.factory, EventLogFactory)
        assert bank.factory.log.path == str(tmp_path / "bank")
        assert bank.factory.log.durability == "off"
        assert other.factory.log.path == str(tmp_path / "shared")
        assert other.factory.log.durability == "full"
        assert other.factory.log.list_topics() == ["other.events"]


def test_several_applications_share_one_log(bank_env: dict[str, str]) -> None:
    class Branch(Application[UUID]):
        pass

    with Bank(env=bank_env) as bank, Branch(env=bank_env) as branch:
        bank.open_account("Eve")
        branch.save(Aggregate(), Aggregate())
        assert bank.recorder.max_notification_id() == 1
        assert branch.recorder.max_notification_id() == 2
        assert sorted(bank.factory.log.list_topics()) == ["bank.events", "branch.events"]


# ---------------------------------------------------------------------------- racing writers


def _stored(originator_id: UUID | str, version: int, topic: str = "topic") -> StoredEvent:
    return StoredEvent(
        originator_id=originator_id, originator_version=version, topic=topic, state=b"{}"
    )


def _append_next_versions(path: str, originator_id: str, attempts: int) -> int:
    """In a child process: try ``attempts`` times to record the aggregate's next version
    (read, then insert); return how many succeeded."""
    won = 0
    with eventlog.open(path) as log:
        recorder = EventLogApplicationRecorder(log, events_topic="race.events")
        for _ in range(attempts):
            newest = recorder.select_events(originator_id, desc=True, limit=1)
            version = newest[0].originator_version + 1 if newest else 1
            try:
                recorder.insert_events([_stored(originator_id, version)])
            except IntegrityError:
                continue
            won += 1
    return won


def test_processes_racing_for_one_aggregate_never_share_a_version(tmp_path: Path) -> None:
    path = str(tmp_path / "log")
    originator_id = "contested"
    context = multiprocessing.get_context("spawn")
    with context.Pool(3) as pool:
        won = pool.starmap(_append_next_versions, [(path, originator_id, 25)] * 3)
    with eventlog.open(path) as log:
        recorder = EventLogApplicationRecorder(log, events_topic="race.events")
        versions = [e.originator_version for e in recorder.select_events(originator_id)]
    assert versions == list(range(1, sum(won) + 1))  # no gap, no duplicate
    assert sum(won) >= 25  # every round has a winner


def test_threads_racing_for_each_version_have_exactly_one_winner(tmp_path: Path) -> None:
    with eventlog.open(tmp_path / "log", durability="off") as log:
        recorder = EventLogApplicationRecorder(log, events_topic="race.events")
        originator_id = uuid4()
        rounds, writers = 20, 4
        results: list[list[bool]] = [[] for _ in range(rounds)]
        for version in range(1, rounds + 1):
            barrier = threading.Barrier(writers)

            def write(version: int = version, barrier: threading.Barrier = barrier) -> None:
                barrier.wait()
                try:
                    # Each writer its own recorder: no shared memory of versions.
                    own = EventLogApplicationRecorder(log, events_topic="race.events")
                    own.insert_events([_stored(originator_id, version)])
                except IntegrityError:
                    results[version - 1].append(False)
                else:
                    results[version - 1].append(True)

            threads = [threading.Thread(target=write) for _ in range(writers)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        assert [r.count(True) for r in results] == [1] * rounds
        stored = recorder.select_events(originator_id)
        assert [e.originator_version for e in stored] == list(range(1, rounds + 1))


def test_a_stale_memory_of_versions_is_corrected_by_the_log(tmp_path: Path) -> None:
    """A recorder remembers the versions it wrote; another writer moving the aggregate
    on makes it reread, and uniqueness still holds."""
    with eventlog.open(tmp_path / "log", durability="off") as log:
        mine = EventLogApplicationRecorder(log, events_topic="app.events")
        other = EventLogApplicationRecorder(log, events_topic="app.events")
        originator_id = uuid4()
        mine.insert_events([_stored(originator_id, 1)])
        other.insert_events([_stored(originator_id, 2), _stored(originator_id, 3)])
        with pytest.raises(IntegrityError):
            mine.insert_events([_stored(originator_id, 3)])
        assert mine.insert_events([_stored(originator_id, 4)]) == [4]
        with pytest.raises(IntegrityError):
            other.insert_events([_stored(originator_id, 4)])
        assert [e.originator_version for e in other.select_events(originator_id)] == [1, 2, 3, 4]


def test_versions_must_increase_within_an_aggregate(tmp_path: Path) -> None:
    """The documented difference from the SQL modules: a version below the newest
    recorded one is refused even if it is free, and so is a decreasing insert."""
    with eventlog.open(tmp_path / "log", durability="off") as log:
        recorder = EventLogApplicationRecorder(log, events_topic="app.events")
        originator_id = uuid4()
        recorder.insert_events([_stored(originator_id, 1), _stored(originator_id, 5)])
        with pytest.raises(IntegrityError):
            recorder.insert_events([_stored(originator_id, 3)])
        with pytest.raises(IntegrityError):
            recorder.insert_events([_stored(originator_id, 7), _stored(originator_id, 6)])
        # Nothing of the refused inserts was written; other aggregates are independent.
        other = uuid4()
        assert recorder.insert_events([_stored(other, 9), _stored(originator_id, 6)]) == [3, 4]
        assert [e.originator_version for e in recorder.select_events(originator_id)] == [1, 5, 6]


def test_an_insert_touching_several_aggregates_is_all_or_nothing(tmp_path: Path) -> None:
    with eventlog.open(tmp_path / "log", durability="off") as log:
        recorder = EventLogApplicationRecorder(log, events_topic="app.events")
        a, b = uuid4(), uuid4()
        recorder.insert_events([_stored(b, 1)])
        with pytest.raises(IntegrityError):
            recorder.insert_events([_stored(a, 1), _stored(a, 2), _stored(b, 1)])
        assert recorder.select_events(a) == []
        assert recorder.max_notification_id() == 1


# ---------------------------------------------------------------------------- select_events


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    versions=st.lists(st.integers(0, 40), unique=True, max_size=12).map(sorted),
    gt=st.none() | st.integers(-1, 42),
    lte=st.none() | st.integers(-1, 42),
    desc=st.booleans(),
    limit=st.none() | st.integers(1, 5),  # limit=0: the library's modules disagree
)
def test_select_events_agrees_with_the_library_in_memory_recorder(
    tmp_path: Path,
    versions: list[int],
    gt: int | None,
    lte: int | None,
    desc: bool,
    limit: int | None,
) -> None:
    """Every combination of gt/lte/desc/limit over increasing versions with gaps (as
    snapshots have), compared with the library's own in-memory recorder."""
    originator_id = uuid4()
    events = [_stored(originator_id, v, f"topic{v}") for v in versions]
    oracle = POPOAggregateRecorder()
    oracle.insert_events(events)
    with eventlog.open(tmp_path / f"log-{originator_id}", durability="off") as log:
        recorder = EventLogAggregateRecorder(log, events_topic="app.snapshots")
        # Recorded in a few inserts, so the stream spans several batches.
        for start in range(0, len(events), 5):
            recorder.insert_events(events[start : start + 5])
        kwargs: dict[str, Any] = {"gt": gt, "lte": lte, "desc": desc, "limit": limit}
        expected = oracle.select_events(originator_id, **kwargs)
        assert list(recorder.select_events(originator_id, **kwargs)) == list(expected)


# ---------------------------------------------------------------------------- notifications


@pytest.fixture
def app_recorder(tmp_path: Path) -> Iterator[EventLogApplicationRecorder]:
    with eventlog.open(tmp_path / "log", durability="off") as log:
        yield EventLogApplicationRecorder(log, events_topic="app.events")


def test_select_notifications_edges(app_recorder: EventLogApplicationRecorder) -> None:
    originator_id = uuid4()
    app_recorder.insert_events([_stored(originator_id, 1), _stored(originator_id, 2)])
    assert [n.id for n in app_recorder.select_notifications(0, 10)] == [1, 2]
    assert [n.id for n in app_recorder.select_notifications(-1, 10)] == [1, 2]
    assert [n.id for n in app_recorder.select_notifications(3, 10)] == []
    assert [n.id for n in app_recorder.select_notifications(2, 10, stop=1)] == []
    assert [n.id for n in app_recorder.select_notifications(None, 0)] == []


def test_topic_filters_look_past_a_page_of_other_events(
    app_recorder: EventLogApplicationRecorder,
) -> None:
    """The wanted events are rare: the filter reads on, page after page, to ``limit``."""
    originator_id = uuid4()
    events = [
        _stored(originator_id, v, "rare" if v % 700 == 0 else "common") for v in range(1, 3001)
    ]
    app_recorder.insert_events(events)
    found = app_recorder.select_notifications(None, 3, topics=["rare"])
    assert [n.originator_version for n in found] == [700, 1400, 2100]
    found = app_recorder.select_notifications(701, 10, topics=["rare"], stop=2800)
    assert [n.id for n in found] == [1400, 2100, 2800]


def test_a_subscription_follows_writers_live(app_recorder: EventLogApplicationRecorder) -> None:
    originator_id = uuid4()
    total = 300
    received: list[int] = []

    def write() -> None:
        for version in range(1, total + 1):
            app_recorder.insert_events([_stored(originator_id, version)])

    writer = threading.Thread(target=write)
    with app_recorder.subscribe(gt=None) as subscription:
        writer.start()
        for notification in subscription:
            received.append(notification.originator_version)
            if len(received) == total:
                break
    writer.join()
    assert received == list(range(1, total + 1))


def test_a_subscription_stopped_from_another_thread_ends(
    app_recorder: EventLogApplicationRecorder,
) -> None:
    subscription = app_recorder.subscribe(gt=None)
    stopper = threading.Timer(0.1, subscription.stop)
    with subscription:
        stopper.start()
        assert list(subscription) == []  # blocked waiting, until stopped
    stopper.join()


def test_a_subscription_sees_another_process_writes(tmp_path: Path) -> None:
    path = str(tmp_path / "log")
    with eventlog.open(path) as log:
        recorder = EventLogApplicationRecorder(log, events_topic="race.events")
        context = multiprocessing.get_context("spawn")
        with recorder.subscribe(gt=None) as subscription:
            child = context.Process(target=_append_next_versions, args=(path, "remote", 3))
            child.start()
            received = [next(subscription).originator_version for _ in range(3)]
            child.join()
    assert received == [1, 2, 3]
    assert child.exitcode == 0


# ---------------------------------------------------------------------------- tracking


def test_wait_is_woken_by_a_position_recorded_in_another_thread(tmp_path: Path) -> None:
    with eventlog.open(tmp_path / "log", durability="off") as log:
        recorder = EventLogTrackingRecorder(log, tracking_topic="view.tracking")
        timer = threading.Timer(0.05, recorder.insert_tracking, args=(Tracking("up", 7),))
        timer.start()
        recorder.wait("up", 7, timeout=30)
        timer.join()
        assert recorder.max_tracking_id("up") == 7


def test_process_recorder_tracking_conflict_writes_no_events(tmp_path: Path) -> None:
    with eventlog.open(tmp_path / "log", durability="off") as log:
        first = EventLogProcessRecorder(log, events_topic="p.events", tracking_topic="p.tracking")
        second = EventLogProcessRecorder(log, events_topic="p.events", tracking_topic="p.tracking")
        first.insert_events([_stored(uuid4(), 1)], tracking=Tracking("up", 5))
        # ``second`` has not seen position 5: the log tells it, and it refuses.
        with pytest.raises(IntegrityError):
            second.insert_events([_stored(uuid4(), 1)], tracking=Tracking("up", 5))
        assert second.max_notification_id() == 1
        second.insert_events([_stored(uuid4(), 1)], tracking=Tracking("up", 6))
        assert first.max_tracking_id("up") == 6


class CountersView(EventLogTrackingRecorder):
    """A materialised view kept in the log: counters in a compacted topic, each update
    written in the transaction of its tracking position (the ``write=`` hook)."""

    counters_topic = "counters.view"

    def __init__(self, log: eventlog.Log, **kwargs: Any) -> None:
        super().__init__(log, **kwargs)
        log.create_topic(self.counters_topic, cleanup_policy="compact", exist_ok=True)

    def count(self, name: str) -> int:
        record = self.log.latest(self.counters_topic, name.encode())
        return int(record.value or b"0") if record is not None else 0

    def increment(self, name: str, tracking: Tracking) -> None:
        def write(tx: eventlog.Transaction) -> None:
            key = name.encode()
            version = self.log.key_version(self.counters_topic, key)
            value = str(self.count(name) + 1).encode()
            tx.append(self.counters_topic, value, key=key, expected_version=version)

        self.insert_tracking(tracking, write=write)


class CountingProjection(Projection[CountersView]):
    name = "counting"
    topics = (get_topic(Account.Created), get_topic(Account.Deposited))

    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        kind = "opened" if isinstance(domain_event, Account.Created) else "deposits"
        self.view.increment(kind, tracking)


def test_a_projection_runs_on_a_subscription_with_its_view_in_the_log(
    bank_env: dict[str, str],
) -> None:
    with ProjectionRunner(
        application_class=Bank,
        projection_class=CountingProjection,
        view_class=CountersView,
        env=bank_env,
    ) as runner:
        bank, view = runner.app, runner.projection.view
        account_id = bank.open_account("Frank")
        for _ in range(3):
            bank.deposit(account_id, Decimal("1"))
        last = bank.recorder.max_notification_id()
        runner.wait(last, timeout=30)
        assert (view.count("opened"), view.count("deposits")) == (1, 3)
        assert view.max_tracking_id("Bank") == last
        # A position already recorded cannot count twice.
        with pytest.raises(IntegrityError):
            view.increment("opened", Tracking("Bank", last or 0))
        assert view.count("opened") == 1
        view.log.close()  # the runner's view factory is never closed by the library


class Counter(Aggregate):
    def __init__(self, name: str) -> None:
        self.count = 0

    @classmethod
    def create_id(cls, name: str) -> UUID:
        return uuid5(NAMESPACE_URL, f"/counters/{name}")

    @event("Incremented")
    def increment(self) -> None:
        self.count += 1


class OpenedAccounts(EventSourcedProjection[UUID]):
    """Counts opened accounts in an aggregate of its own: its events and the tracking
    position of each processed event are recorded together (the process recorder)."""

    topics = (get_topic(Account.Created),)

    def policy(self, domain_event: Any, processing_event: ProcessingEvent[UUID]) -> None:
        try:
            counter: Counter = self.repository.get(Counter.create_id("opened"))
        except AggregateNotFoundError:
            counter = Counter("opened")
        counter.increment()
        processing_event.collect_events(counter)


def test_an_event_sourced_projection_runs_on_the_process_recorder(
    bank_env: dict[str, str],
) -> None:
    with EventSourcedProjectionRunner(
        application_class=Bank, projection_class=OpenedAccounts, env=bank_env
    ) as runner:
        bank, projection = runner.app, runner.projection
        first = bank.open_account("Hal")
        bank.deposit(first, Decimal("5"))  # not a topic the projection follows
        bank.open_account("Ida")
        last_opened = bank.recorder.max_notification_id()
        runner.wait(last_opened, timeout=30)
        counter: Counter = projection.repository.get(Counter.create_id("opened"))
        assert counter.count == 2
        assert projection.recorder.max_tracking_id("Bank") == last_opened
        assert isinstance(projection.recorder, EventLogProcessRecorder)
        assert projection.recorder.events_topic == "openedaccounts.events"


# ---------------------------------------------------------------------------- settings and topics


def test_missing_path_and_bad_durability_are_configuration_errors(tmp_path: Path) -> None:
    with pytest.raises(OSError, match="EVENTLOG_PATH"):
        InfrastructureFactory.construct(Environment("App", {"PERSISTENCE_MODULE": MODULE}))
    env = {"PERSISTENCE_MODULE": MODULE, "EVENTLOG_PATH": str(tmp_path / "log")}
    with pytest.raises(OSError, match="EVENTLOG_DURABILITY"):
        InfrastructureFactory.construct(Environment("App", {**env, "EVENTLOG_DURABILITY": "x"}))


def test_topics_with_unusable_settings_are_refused(tmp_path: Path) -> None:
    with eventlog.open(tmp_path / "log", durability="off") as log:
        log.create_topic("expiring.events", key_index=True)  # default retention: 7 days
        log.create_topic("wide.events", 3, key_index=True, retention_ms=-1)
        log.create_topic("plain.events", retention_ms=-1)
        for topic, problem in [
            ("expiring.events", "retention"),
            ("wide.events", "3 partitions"),
            ("plain.events", "no key index"),
        ]:
            with pytest.raises(ProgrammingError, match=problem):
                EventLogApplicationRecorder(log, events_topic=topic)


def test_without_creating_topics_a_missing_topic_is_a_programming_error(tmp_path: Path) -> None:
    env = {
        "PERSISTENCE_MODULE": MODULE,
        "EVENTLOG_PATH": str(tmp_path / "log"),
        "CREATE_TABLE": "no",
    }
    with Bank(env=env) as bank:
        with pytest.raises(ProgrammingError):
            bank.open_account("Gina")
        assert bank.factory.log.list_topics() == []


def test_a_closed_factory_is_an_interface_error(bank_env: dict[str, str]) -> None:
    bank = Bank(env=bank_env)
    bank.close()
    with pytest.raises(InterfaceError):
        bank.recorder.max_notification_id()


def test_application_names_become_valid_topic_names(tmp_path: Path) -> None:
    env = Environment(
        "Café Orders!", {"PERSISTENCE_MODULE": MODULE, "EVENTLOG_PATH": str(tmp_path)}
    )
    factory = InfrastructureFactory.construct(env)
    try:
        recorder = factory.application_recorder()
        assert isinstance(recorder, EventLogApplicationRecorder)
        assert recorder.events_topic == "caf__orders_.events"
    finally:
        factory.close()


def test_large_snapshots_are_accepted(tmp_path: Path) -> None:
    with eventlog.open(tmp_path / "log", durability="off") as log:
        recorder = EventLogAggregateRecorder(log, events_topic="app.snapshots")
        big = StoredEvent(
            originator_id=uuid4(), originator_version=1, topic="t", state=bytes(3 << 20)
        )
        recorder.insert_events([big])
        assert recorder.select_events(big.originator_id) == [big]
