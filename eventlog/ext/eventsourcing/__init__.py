"""A persistence module for the ``eventsourcing`` library (9.5): applications store their
events in an eventlog log.

Set two environment variables (or pass them in an application's ``env``)::

    PERSISTENCE_MODULE=eventlog.ext.eventsourcing
    EVENTLOG_PATH=/var/lib/myapp/log

and any ``eventsourcing.application.Application`` records its events, snapshots and
tracking positions in that log. Settings are read as the library's own modules read
theirs, so each may be given per application with the application's name upper-cased as
a prefix (``BANKACCOUNTS_EVENTLOG_PATH``):

- ``EVENTLOG_PATH`` (required): the log directory (created if missing).
- ``EVENTLOG_DURABILITY``: ``full`` (default: every recorded event survives power loss),
  ``normal`` or ``off`` (see eventlog's durability modes). One process uses one
  durability per log.
- ``CREATE_TABLE``: ``no`` to use existing topics only (the library's name for the same
  switch in its SQL modules).
- ``APPLICATION_RECORDER_TOPIC``, ``TRACKING_RECORDER_TOPIC``,
  ``PROCESS_RECORDER_TOPIC``: subclasses of this module's recorders, as in the library.

Topics (``<app>`` is the application's name in lower case, characters outside
``[a-z0-9_-]`` replaced by ``_``; ``stored``/``notification`` when the name is empty, as
the library's PostgreSQL module names its tables):

- ``<app>.events``: the application sequence. One partition, so a record's offset gives
  its notification id (offset + 1: ids start at 1). Records are keyed by originator id
  and the topic keeps a key index, so an aggregate's events are read through the index
  (no scan), and each insert appends with the expected version of every aggregate it
  touches: a writer that lost the race gets ``ConcurrencyError`` from the log, which this
  module turns into the library's ``IntegrityError`` when the versions really collide.
  Kept forever (``retention.ms=-1``).
- ``<app>.snapshots`` (and ``<app>.<purpose>`` for other aggregate recorders): the same
  layout, for snapshots.
- ``<app>.tracking``: one record per recorded tracking position, keyed by the upstream
  application's name; compacted (only each name's newest position is needed), and
  written with expected versions so positions only ever grow. A process application
  appends its events and its tracking record in one log transaction.

Record format (versioned by its first byte, so later versions can read older logs):

- key: the originator id as text (``str(uuid)`` for UUIDs);
- value: ``>BBqQI`` (format 1, flags: bit 0 = the originator id is a UUID, originator
  version, the record's version within its key, topic length) then the event's topic
  (UTF-8) and its state bytes;
- tracking value: ``>Bq`` (format 1, notification id).

Guarantees: every ``insert_events`` call is atomic (one LMDB write transaction); an
aggregate's versions are unique across threads and processes sharing the log (the log's
expected versions enforce it, not a lock here); notification ids are contiguous and
increase in commit order, and the events of one call get consecutive ids.

Difference from the library's SQL modules: an aggregate's versions must be recorded in
increasing order. Recording a version lower than one already recorded for that
aggregate raises ``IntegrityError`` even when that version itself is not recorded (the
SQL modules accept it). The library's aggregates always record increasing versions;
taking a snapshot of an older version than the newest snapshot is refused.

All state lives in the log: a recorder keeps only a bounded in-memory cache of the
versions it last saw, which a conflict corrects.

Unlike the library's SQLite module, ``subscribe()`` works (live, across processes), so
projections (``ProjectionRunner``, ``EventSourcedProjectionRunner``) run on this module.
The library's recorder and factory test suites pass against it
(tests/test_ext_eventsourcing.py), including its optional subscription test.
"""

from __future__ import annotations

import re
from typing import ClassVar, Final, Literal

from eventsourcing.persistence import (
    AggregateRecorder,
    ApplicationRecorder,
    InfrastructureFactory,
    ProcessRecorder,
)
from eventsourcing.utils import Environment, EnvType, resolve_topic, strtobool

import eventlog

from ._format import library_error
from ._recorders import (
    EventLogAggregateRecorder,
    EventLogApplicationRecorder,
    EventLogProcessRecorder,
    EventLogSubscription,
    EventLogTrackingRecorder,
)

__all__ = [
    "EventLogAggregateRecorder",
    "EventLogApplicationRecorder",
    "EventLogFactory",
    "EventLogProcessRecorder",
    "EventLogSubscription",
    "EventLogTrackingRecorder",
    "Factory",
]

_NOT_IN_TOPIC_NAME: Final = re.compile(r"[^a-z0-9_-]")
_DURABILITIES: Final[dict[str, Literal["full", "normal", "off"]]] = {
    "full": "full",
    "normal": "normal",
    "off": "off",
}


class EventLogFactory(InfrastructureFactory[EventLogTrackingRecorder]):
    """Constructs this module's recorders on the log named by ``EVENTLOG_PATH``; one
    log handle per factory, closed by :meth:`close` (an application's ``close()``)."""

    EVENTLOG_PATH: Final = "EVENTLOG_PATH"
    EVENTLOG_DURABILITY: Final = "EVENTLOG_DURABILITY"
    CREATE_TABLE: Final = "CREATE_TABLE"

    aggregate_recorder_class: ClassVar[type[EventLogAggregateRecorder]] = EventLogAggregateRecorder
    application_recorder_class: ClassVar[type[EventLogApplicationRecorder]] = (
        EventLogApplicationRecorder
    )
    tracking_recorder_class: ClassVar[type[EventLogTrackingRecorder]] = EventLogTrackingRecorder
    process_recorder_class: ClassVar[type[EventLogProcessRecorder]] = EventLogProcessRecorder

    def __init__(self, env: Environment | EnvType | None):
        super().__init__(env)
        path = (self.env.get(self.EVENTLOG_PATH) or "").strip()
        if not path:
            raise OSError(
                f"eventlog path not found in environment with keys: "
                f"{', '.join(self.env.create_keys(self.EVENTLOG_PATH))}"
            )
        durability = (self.env.get(self.EVENTLOG_DURABILITY) or "").strip().lower() or "full"
        if durability not in _DURABILITIES:
            raise OSError(
                f"environment value for key '{self.EVENTLOG_DURABILITY}' is invalid: "
                f"{durability!r} (expected 'full', 'normal' or 'off')"
            )
        try:
            self.log = eventlog.open(path, durability=_DURABILITIES[durability])
        except eventlog.EventLogError as exc:
            raise library_error(exc) from exc

    def _topic(self, default_prefix: str, purpose: str) -> str:
        prefix = _NOT_IN_TOPIC_NAME.sub("_", self.env.name.lower()) or default_prefix
        return f"{prefix}.{purpose}"

    def _create_topics(self) -> bool:
        return bool(strtobool(self.env.get(self.CREATE_TABLE) or "yes"))

    def aggregate_recorder(self, purpose: str = "events") -> AggregateRecorder:
        return self.aggregate_recorder_class(
            self.log,
            events_topic=self._topic("stored", purpose),
            create_topics=self._create_topics(),
        )

    def application_recorder(self) -> ApplicationRecorder:
        recorder_class = self.application_recorder_class
        topic = self.env.get(self.APPLICATION_RECORDER_TOPIC)
        if topic:
            recorder_class = resolve_topic(topic)
            assert issubclass(recorder_class, EventLogApplicationRecorder)
        return recorder_class(
            self.log,
            events_topic=self._topic("stored", "events"),
            create_topics=self._create_topics(),
        )

    def tracking_recorder(
        self, tracking_recorder_class: type[EventLogTrackingRecorder] | None = None
    ) -> EventLogTrackingRecorder:
        if tracking_recorder_class is None:
            topic = self.env.get(self.TRACKING_RECORDER_TOPIC)
            if topic:
                tracking_recorder_class = resolve_topic(topic)
            else:
                tracking_recorder_class = self.tracking_recorder_class
        assert tracking_recorder_class is not None
        assert issubclass(tracking_recorder_class, EventLogTrackingRecorder)
        return tracking_recorder_class(
            self.log,
            tracking_topic=self._topic("notification", "tracking"),
            create_topics=self._create_topics(),
        )

    def process_recorder(self) -> ProcessRecorder:
        recorder_class = self.process_recorder_class
        topic = self.env.get(self.PROCESS_RECORDER_TOPIC)
        if topic:
            recorder_class = resolve_topic(topic)
            assert issubclass(recorder_class, EventLogProcessRecorder)
        return recorder_class(
            self.log,
            events_topic=self._topic("stored", "events"),
            tracking_topic=self._topic("notification", "tracking"),
            create_topics=self._create_topics(),
        )

    def close(self) -> None:
        """Close the factory's log handle (recorders made by it stop working)."""
        self.log.close()


Factory = EventLogFactory

# Public classes show (and resolve as library "topics") under this package's name.
for _public in (
    EventLogAggregateRecorder,
    EventLogApplicationRecorder,
    EventLogProcessRecorder,
    EventLogSubscription,
    EventLogTrackingRecorder,
):
    _public.__module__ = __name__
del _public
