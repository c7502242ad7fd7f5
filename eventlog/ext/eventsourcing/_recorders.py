"""The recorders: what the eventsourcing library's persistence contracts ask, on a log."""

from __future__ import annotations

import struct
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any, Final
from uuid import UUID

from eventsourcing.persistence import (
    AggregateRecorder,
    ApplicationRecorder,
    DataError,
    IntegrityError,
    Notification,
    ProcessRecorder,
    ProgrammingError,
    Recorder,
    StoredEvent,
    Subscription,
    Tracking,
    TrackingRecorder,
    WaitInterruptedError,
)

import eventlog

from ._format import (
    EVENT_HEAD,
    EVENTS_CONFIG,
    ID_IS_UUID,
    TRACKING_CONFIG,
    TRACKING_FORMAT,
    TRACKING_VALUE,
    decode_head,
    decode_originator_id,
    decode_tracking,
    encode_event,
    ensure_topic,
    library_error,
    originator_key,
    stored_event,
)

# How many aggregates a recorder remembers the version of (a miss costs one read).
_STREAM_CACHE_SIZE: Final = 10_000
# A subscription or wait() looks at its stop flag (interrupt) at least this often (s).
_WAKE_INTERVAL: Final = 0.05
# Notifications read per transaction by select_notifications() when filtering by topic,
# and at most otherwise (a large limit is read in several short transactions).
_SCAN_PAGE: Final = 1000
_MAX_PAGE: Final = 10_000
# Conflicts caused by a tracking recorder's own writes (a view's topics) before giving up.
_MAX_FOREIGN_CONFLICTS: Final = 100


class _Versions:
    """A bounded, thread-safe memory of ``key -> (version in the log, newest value)``:
    what a recorder last saw of an aggregate or tracking position. Every entry was true
    at some moment, and both numbers only grow, so a stale entry costs one conflict
    and a reread, never a wrong answer."""

    def __init__(self, size: int = _STREAM_CACHE_SIZE) -> None:
        self._size = size
        self._entries: OrderedDict[bytes, tuple[int, int]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: bytes) -> tuple[int, int] | None:
        with self._lock:
            return self._entries.get(key)

    def put(self, key: bytes, version: int, newest: int) -> None:
        with self._lock:
            known = self._entries.get(key)
            if known is not None and known[0] >= version:
                return  # another thread saw a later state
            self._entries[key] = (version, newest)
            self._entries.move_to_end(key)
            if len(self._entries) > self._size:
                self._entries.popitem(last=False)


class _Stream:
    """The events of one insert for one aggregate, and what the log is thought to hold
    of that aggregate (``version``: its records, ``newest``: its last originator
    version)."""

    __slots__ = ("indexes", "key", "newest", "version", "versions")

    def __init__(self, key: bytes) -> None:
        self.key = key
        self.indexes: list[int] = []
        self.versions: list[int] = []
        self.version = 0
        self.newest: int | None = None

    def check(self, originator_id: UUID | str) -> None:
        """Raise IntegrityError unless the new versions increase and follow the newest
        recorded one. Authoritative even when ``newest`` is stale: it only grows."""
        newest = self.newest
        where = "the log"
        for version in self.versions:
            if newest is not None and version <= newest:
                raise IntegrityError(
                    f"version {version} of aggregate {originator_id!s} is not after version "
                    f"{newest} in {where}: already recorded, or recorded out of order"
                )
            newest = version
            where = "the same insert"


# ---------------------------------------------------------------------------- recorders


class _EventLogRecorder(Recorder):
    """What every recorder of this module shares: the log, the topics it writes, and the
    write path (events and a tracking position in one atomic append, retried on a
    conflict that does not break uniqueness)."""

    events_topic: str | None = None
    tracking_topic: str | None = None

    def __init__(self, log: eventlog.Log) -> None:
        self.log = log
        self._streams = _Versions()
        self._positions = _Versions()

    def _use_events_topic(self, topic: str, *, create: bool) -> None:
        ensure_topic(self.log, topic, EVENTS_CONFIG, create=create)
        self.events_topic = topic

    def _use_tracking_topic(self, topic: str, *, create: bool) -> None:
        ensure_topic(self.log, topic, TRACKING_CONFIG, create=create)
        self.tracking_topic = topic

    # -- reading what the log holds

    def _refresh_stream(self, stream: _Stream, version: int | None) -> None:
        """Reread an aggregate's state; ``version``: the log's count, when a conflict
        reported it (else the newest record's own)."""
        assert self.events_topic is not None
        record = self.log.latest(self.events_topic, stream.key)
        if record is None:
            stream.version, stream.newest = (version or 0), None
            return
        _flags, newest, key_version, _n = decode_head(record.value)
        # A conflict's count is the log's; the record read after it is at least as new,
        # so checking against its version is at least as strict.
        stream.version = key_version if version is None else version
        stream.newest = newest

    # -- the write path

    def _record(
        self,
        stored_events: Sequence[StoredEvent],
        tracking: Tracking | None,
        write: Callable[[eventlog.Transaction], None] | None = None,
    ) -> list[int]:
        """Append the events (and the tracking position) atomically; return the events'
        offsets + 1 (their notification ids)."""
        try:
            return self._record_or_raise(stored_events, tracking, write)
        except eventlog.EventLogError as exc:
            raise library_error(exc) from exc

    def _record_or_raise(
        self,
        stored_events: Sequence[StoredEvent],
        tracking: Tracking | None,
        write: Callable[[eventlog.Transaction], None] | None,
    ) -> list[int]:
        log = self.log
        streams: dict[bytes, _Stream] = {}
        keys: list[bytes] = []
        flags: list[int] = []
        topics: list[bytes] = []
        for i, event in enumerate(stored_events):
            key = originator_key(event.originator_id)
            stream = streams.get(key)
            if stream is None:
                stream = streams[key] = _Stream(key)
            stream.indexes.append(i)
            stream.versions.append(event.originator_version)
            keys.append(key)
            flags.append(ID_IS_UUID if isinstance(event.originator_id, UUID) else 0)
            topics.append(event.topic.encode("utf-8"))
        if streams:
            events_topic = self.events_topic
            if events_topic is None:
                raise ProgrammingError("this recorder has no events topic")
            for stream in streams.values():
                known = self._streams.get(stream.key)
                if known is not None:
                    stream.version, stream.newest = known
                elif stream.versions[0] > 1:
                    # Probably an aggregate recorded before: ask the log first.
                    self._refresh_stream(stream, None)
                # else: probably a new aggregate (version 0 or 1): expect none recorded.
        tracking_key = b""
        tracking_version = 0
        tracking_newest: int | None = None
        if tracking is not None:
            if self.tracking_topic is None:
                raise ProgrammingError("this recorder has no tracking topic")
            tracking_key = tracking.application_name.encode("utf-8")
            position = self._positions.get(tracking_key)
            if position is not None:
                tracking_version, tracking_newest = position
        foreign_conflicts = 0
        while True:
            for stream in streams.values():
                stream.check(stored_events[stream.indexes[0]].originator_id)
            if tracking is not None and (
                tracking_newest is not None and tracking.notification_id <= tracking_newest
            ):
                raise IntegrityError(
                    f"tracking position {tracking.notification_id} of "
                    f"{tracking.application_name!r} is not after the recorded "
                    f"{tracking_newest}"
                )
            records = self._event_records(stored_events, streams, keys, flags, topics)
            expected = {s.key: s.version for s in streams.values()}
            try:
                ids = self._append(records, expected, tracking, tracking_version, write)
            except eventlog.ConcurrencyError as conflict:
                tracking_topic = self.tracking_topic
                if (
                    tracking is not None
                    and tracking_topic is not None
                    and conflict.topic == tracking_topic
                ):
                    tracking_version = conflict.actual_version
                    tracking_newest = decode_tracking(log.latest(tracking_topic, tracking_key))
                elif conflict.topic == self.events_topic and conflict.key in streams:
                    self._refresh_stream(streams[conflict.key], conflict.actual_version)
                else:
                    foreign_conflicts += 1
                    if foreign_conflicts >= _MAX_FOREIGN_CONFLICTS:
                        raise
                continue
            for stream in streams.values():
                self._streams.put(
                    stream.key, stream.version + len(stream.versions), stream.versions[-1]
                )
            if tracking is not None:
                self._positions.put(tracking_key, tracking_version + 1, tracking.notification_id)
            return ids

    @staticmethod
    def _event_records(
        stored_events: Sequence[StoredEvent],
        streams: dict[bytes, _Stream],
        keys: list[bytes],
        flags: list[int],
        topics: list[bytes],
    ) -> list[eventlog.NewRecord]:
        key_versions = [0] * len(stored_events)
        for stream in streams.values():
            for n, i in enumerate(stream.indexes, start=stream.version + 1):
                key_versions[i] = n
        try:
            return [
                eventlog.NewRecord(
                    encode_event(
                        key_versions[i], flags[i], event.originator_version, topics[i], event.state
                    ),
                    keys[i],
                )
                for i, event in enumerate(stored_events)
            ]
        except struct.error as exc:
            raise DataError(f"an originator version does not fit in 64 bits: {exc}") from None

    def _append(
        self,
        records: list[eventlog.NewRecord],
        expected: dict[bytes, int],
        tracking: Tracking | None,
        tracking_version: int,
        write: Callable[[eventlog.Transaction], None] | None,
    ) -> list[int]:
        log = self.log
        if tracking is None and write is None:
            if not records:
                return []
            assert self.events_topic is not None
            written = log.append_batch(self.events_topic, records, expected_versions=expected)
            return [offset + 1 for offset in written.partitions[0]]
        assert self.tracking_topic is not None
        position = b""
        if tracking is not None:
            position = TRACKING_VALUE.pack(TRACKING_FORMAT, tracking.notification_id)
            if not records and write is None:
                log.append(
                    self.tracking_topic,
                    position,
                    key=tracking.application_name.encode("utf-8"),
                    expected_version=tracking_version,
                )
                return []
        with log.transaction() as tx:
            if records:
                assert self.events_topic is not None
                tx.append_batch(self.events_topic, records, expected_versions=expected)
            if tracking is not None:
                tx.append(
                    self.tracking_topic,
                    position,
                    key=tracking.application_name.encode("utf-8"),
                    expected_version=tracking_version,
                )
            if write is not None:
                write(tx)
        return [meta.offset + 1 for meta in tx.results[: len(records)]]


class EventLogAggregateRecorder(_EventLogRecorder, AggregateRecorder):
    """Records and selects an aggregate's stored events in a topic of the log (see the
    module notes for the layout)."""

    def __init__(self, log: eventlog.Log, *, events_topic: str, create_topics: bool = True):
        super().__init__(log)
        self._use_events_topic(events_topic, create=create_topics)

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        """Record the events atomically; IntegrityError if an aggregate's version is
        already recorded (by any thread or process)."""
        self._record(stored_events, None)
        return None

    def select_events(
        self,
        originator_id: UUID | str,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> Sequence[StoredEvent]:
        """An aggregate's events, read through the key index (no scan)."""
        try:
            return self._select_events(originator_id, gt, lte, desc, limit)
        except eventlog.EventLogError as exc:
            raise library_error(exc) from exc

    def _select_events(
        self,
        originator_id: UUID | str,
        gt: int | None,
        lte: int | None,
        desc: bool,
        limit: int | None,
    ) -> list[StoredEvent]:
        if limit is not None and limit <= 0:
            return []
        assert self.events_topic is not None
        log = self.log
        key = originator_key(originator_id)
        from_version = 1
        if desc or gt is not None:
            newest = log.latest(self.events_topic, key)
            if newest is None:
                return []
            event, key_version = stored_event(newest, originator_id)
            if gt is not None and event.originator_version <= gt:
                return []
            if desc and limit == 1 and (lte is None or event.originator_version <= lte):
                return [event]  # the latest snapshot: one index lookup
            if gt is not None:
                # Versions grow by at least 1 per record, so the record after ``gt`` is
                # at least this many records back from the newest: skip those before
                # it in the index, without reading them.
                from_version = max(1, key_version - (event.originator_version - gt) + 1)
        events: list[StoredEvent] = []
        for record in log.read_key(self.events_topic, key, from_version=from_version):
            event, _ = stored_event(record, originator_id)
            version = event.originator_version
            if gt is not None and version <= gt:
                continue
            if lte is not None and version > lte:
                break
            events.append(event)
            if not desc and limit is not None and len(events) >= limit:
                break
        if desc:
            events.reverse()
            if limit is not None:
                del events[limit:]
        return events


class EventLogApplicationRecorder(EventLogAggregateRecorder, ApplicationRecorder):
    """An aggregate recorder whose topic is also the application sequence: a record's
    offset + 1 is its notification id."""

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        """Record the events atomically; return their notification ids."""
        return self._record(stored_events, None)

    def select_notifications(
        self,
        start: int | None,
        limit: int,
        stop: int | None = None,
        topics: Sequence[str] = (),
        *,
        inclusive_of_start: bool = True,
    ) -> Sequence[Notification]:
        """Notifications with ids from ``start`` (after it, unless inclusive) to ``stop``,
        at most ``limit``, only of ``topics`` if given."""
        if start is None:
            offset = 0
        else:
            offset = max(start - 1 if inclusive_of_start else start, 0)
        try:
            found, _next = self._notifications(offset, limit, stop, topics)
        except eventlog.EventLogError as exc:
            raise library_error(exc) from exc
        return found

    def _notifications(
        self, offset: int, limit: int, stop: int | None, topics: Sequence[str]
    ) -> tuple[list[Notification], int]:
        """Up to ``limit`` notifications from ``offset`` (below offset ``stop``), and the
        offset after the last record looked at."""
        assert self.events_topic is not None
        log = self.log
        wanted = {t.encode("utf-8") for t in topics}
        found: list[Notification] = []
        head = EVENT_HEAD.size
        while len(found) < limit and (stop is None or offset < stop):
            page = _SCAN_PAGE if wanted else min(limit - len(found), _MAX_PAGE)
            if stop is not None:
                page = min(page, stop - offset)
            try:
                records = log.read(self.events_topic, 0, offset, max_records=page)
            except eventlog.OffsetOutOfRangeError:
                offset = log.beginning_offsets(self.events_topic)[0]
                continue
            if not records:
                break
            for record in records:
                if stop is not None and record.offset >= stop:
                    return found, offset
                offset = record.offset + 1
                value = record.value
                flags, version, _kv, topic_length = decode_head(value)
                assert value is not None
                topic = value[head : head + topic_length]
                if wanted and topic not in wanted:
                    continue
                found.append(
                    Notification(
                        id=record.offset + 1,
                        originator_id=decode_originator_id(record.key, flags),
                        originator_version=version,
                        topic=topic.decode("utf-8"),
                        state=value[head + topic_length :],
                    )
                )
                if len(found) >= limit:
                    break
        return found, offset

    def max_notification_id(self) -> int | None:
        """The newest notification id (the topic's end offset), None when empty."""
        assert self.events_topic is not None
        try:
            end = self.log.end_offsets(self.events_topic)[0]
        except eventlog.EventLogError as exc:
            raise library_error(exc) from exc
        return end or None

    def subscribe(
        self, gt: int | None = None, topics: Sequence[str] = ()
    ) -> Subscription[ApplicationRecorder]:
        """Notifications after ``gt``, then new ones as they are recorded (by any
        process), until the subscription is stopped."""
        return EventLogSubscription(self, gt=gt, topics=topics)


class EventLogSubscription(Subscription[EventLogApplicationRecorder]):
    """A live iterator of an application's notifications: reads what is recorded, then
    waits on the log for more (in-process appends wake it at once, other processes'
    within milliseconds). ``stop()`` (from any thread) ends it within about 50 ms."""

    def __init__(
        self,
        recorder: EventLogApplicationRecorder,
        gt: int | None = None,
        topics: Sequence[str] = (),
    ) -> None:
        super().__init__(recorder=recorder, gt=gt, topics=topics)
        self._offset = max(gt or 0, 0)  # id gt is offset gt - 1: read from offset gt
        self._buffer: list[Notification] = []
        self._next = 0

    def __next__(self) -> Notification:
        recorder = self._recorder
        log = recorder.log
        topic = recorder.events_topic
        assert topic is not None
        while not self._has_been_stopped:
            if self._next < len(self._buffer):
                notification = self._buffer[self._next]
                self._next += 1
                self._last_notification_id = notification.id
                return notification
            try:
                found, self._offset = recorder._notifications(self._offset, 500, None, self._topics)
                if not found:
                    log.wait(topic, 0, self._offset, timeout=_WAKE_INTERVAL)
            except eventlog.EventLogError as exc:
                raise library_error(exc) from exc
            self._buffer, self._next = found, 0
        raise StopIteration


class EventLogTrackingRecorder(_EventLogRecorder, TrackingRecorder):
    """Records how far an application has processed each upstream application, in a
    compacted topic keyed by the upstream name.

    A materialised view can subclass it and keep its own state in the log, written
    atomically with the position: ``insert_tracking(tracking, write=fn)`` calls
    ``fn(tx)`` with the :class:`eventlog.Transaction` the position is appended in (again
    after a conflict, so ``fn`` should read what it needs inside).
    """

    def __init__(self, log: eventlog.Log, *, tracking_topic: str, create_topics: bool = True):
        super().__init__(log)
        self._use_tracking_topic(tracking_topic, create=create_topics)

    def insert_tracking(
        self,
        tracking: Tracking,
        *,
        write: Callable[[eventlog.Transaction], None] | None = None,
    ) -> None:
        """Record a position; IntegrityError unless it is after the recorded one."""
        self._record((), tracking, write)

    def max_tracking_id(self, application_name: str) -> int | None:
        """The newest position recorded for ``application_name``, or None."""
        assert self.tracking_topic is not None
        try:
            newest = self.log.latest(self.tracking_topic, application_name.encode("utf-8"))
        except eventlog.EventLogError as exc:
            raise library_error(exc) from exc
        return decode_tracking(newest)

    def wait(
        self,
        application_name: str,
        notification_id: int | None,
        timeout: float = 1.0,
        interrupt: threading.Event | None = None,
    ) -> None:
        """Block until ``notification_id`` of ``application_name`` is recorded, woken by
        appends to the tracking topic rather than polling with backoff.

        Raises:
            TimeoutError: not recorded within ``timeout`` seconds.
            WaitInterruptedError: ``interrupt`` was set first.
        """
        assert self.tracking_topic is not None
        deadline = time.monotonic() + timeout
        log = self.log
        try:
            while True:
                # The end offset is read first: a position recorded after the check
                # below moves it, so the wait returns at once.
                end = log.end_offsets(self.tracking_topic)[0]
                if self.has_tracking_id(application_name, notification_id):
                    return
                if interrupt is not None and interrupt.is_set():
                    raise WaitInterruptedError
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"timed out waiting for notification {notification_id} from "
                        f"application {application_name!r} to be processed"
                    )
                # Bounded, to see ``interrupt`` and positions a subclass keeps elsewhere.
                log.wait(self.tracking_topic, 0, end, timeout=min(remaining, _WAKE_INTERVAL))
        except eventlog.EventLogError as exc:
            raise library_error(exc) from exc


class EventLogProcessRecorder(
    EventLogTrackingRecorder, EventLogApplicationRecorder, ProcessRecorder
):
    """An application recorder that also records tracking positions; ``insert_events(
    events, tracking=t)`` appends both in one log transaction."""

    def __init__(
        self,
        log: eventlog.Log,
        *,
        events_topic: str,
        tracking_topic: str,
        create_topics: bool = True,
    ):
        _EventLogRecorder.__init__(self, log)
        self._use_events_topic(events_topic, create=create_topics)
        self._use_tracking_topic(tracking_topic, create=create_topics)

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        """Record the events and, if given, ``tracking=`` atomically; return the events'
        notification ids."""
        tracking: Tracking | None = kwargs.get("tracking")
        return self._record(stored_events, tracking)
