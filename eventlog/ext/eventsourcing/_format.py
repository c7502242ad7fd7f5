"""Record formats, topic settings and error translation of the eventsourcing module."""

from __future__ import annotations

import struct
from typing import Final
from uuid import UUID

from eventsourcing.persistence import (
    DatabaseError,
    DataError,
    IntegrityError,
    InterfaceError,
    InternalError,
    OperationalError,
    PersistenceError,
    ProgrammingError,
    StoredEvent,
)

import eventlog

EVENT_HEAD: Final = struct.Struct(">BBqQI")
EVENT_FORMAT: Final = 1
ID_IS_UUID: Final = 1
TRACKING_VALUE: Final = struct.Struct(">Bq")
TRACKING_FORMAT: Final = 1

# Event topics keep every record and its key index. A snapshot may be large: the log's
# default record limit (about 1 MB) is Kafka's, too small for an event store.
EVENTS_CONFIG: Final[dict[str, object]] = {
    "key.index": True,
    "retention.ms": -1,
    "retention.bytes": -1,
    "max.message.bytes": 64 * 1024 * 1024,
}
TRACKING_CONFIG: Final[dict[str, object]] = {"cleanup.policy": "compact"}


def library_error(exc: eventlog.EventLogError) -> PersistenceError:
    """The library's exception (its PEP 249 names) for an eventlog error."""
    kind: type[PersistenceError]
    if isinstance(exc, eventlog.ConcurrencyError):
        kind = IntegrityError
    elif isinstance(exc, eventlog.TopicNotFoundError | eventlog.PartitionNotFoundError):
        kind = ProgrammingError  # "table not found"
    elif isinstance(exc, eventlog.LogClosedError | eventlog.ForkedProcessError):
        kind = InterfaceError
    elif isinstance(exc, eventlog.InvalidRecordError):
        kind = DataError
    elif isinstance(exc, eventlog.CorruptLogError):
        kind = InternalError
    elif isinstance(exc, eventlog.StorageError | eventlog.ReadOnlyLogError):
        kind = OperationalError
    elif isinstance(exc, eventlog.InvalidArgumentError):
        kind = ProgrammingError
    else:
        kind = DatabaseError
    return kind(f"{exc} ({type(exc).__name__})")


def originator_key(originator_id: UUID | str) -> bytes:
    return str(originator_id).encode("utf-8")


def encode_event(key_version: int, flags: int, version: int, topic: bytes, state: bytes) -> bytes:
    return EVENT_HEAD.pack(EVENT_FORMAT, flags, version, key_version, len(topic)) + topic + state


def decode_head(value: bytes | None) -> tuple[int, int, int, int]:
    """An event record's ``(flags, originator version, version within its key, topic
    length)``; the topic follows the header, then the state."""
    if value is None or len(value) < EVENT_HEAD.size:
        raise DataError("a record of the events topic is not a stored event (too short)")
    fmt, flags, version, key_version, topic_length = EVENT_HEAD.unpack_from(value)
    if fmt != EVENT_FORMAT:
        raise DataError(f"a record of the events topic has unknown format {fmt}")
    return flags, version, key_version, topic_length


def decode_originator_id(key: bytes | None, flags: int) -> UUID | str:
    if key is None:
        raise DataError("a record of the events topic has no key (originator id)")
    text = key.decode("utf-8")
    return UUID(text) if flags & ID_IS_UUID else text


def stored_event(
    record: eventlog.Record, originator_id: UUID | str | None = None
) -> tuple[StoredEvent, int]:
    """The stored event a record holds, and its version within its key."""
    value = record.value
    flags, version, key_version, topic_length = decode_head(value)
    assert value is not None
    start = EVENT_HEAD.size
    if originator_id is None or isinstance(originator_id, UUID) != bool(flags & ID_IS_UUID):
        originator_id = decode_originator_id(record.key, flags)
    event = StoredEvent(
        originator_id=originator_id,
        originator_version=version,
        topic=value[start : start + topic_length].decode("utf-8"),
        state=value[start + topic_length :],
    )
    return event, key_version


def decode_tracking(record: eventlog.Record | None) -> int | None:
    if record is None:
        return None
    value = record.value
    if value is None or len(value) != TRACKING_VALUE.size:
        raise DataError("a record of the tracking topic is not a tracking position")
    fmt, notification_id = TRACKING_VALUE.unpack(value)
    if fmt != TRACKING_FORMAT:
        raise DataError(f"a record of the tracking topic has unknown format {fmt}")
    return int(notification_id)


# ---------------------------------------------------------------------------- topics


def ensure_topic(log: eventlog.Log, name: str, config: dict[str, object], *, create: bool) -> None:
    """Create the topic if missing (when ``create``); refuse an existing topic whose
    settings would break the recorder (more than one partition, no key index, records
    that expire)."""
    try:
        try:
            description = log.describe_topic(name)
        except eventlog.TopicNotFoundError:
            if not create:
                return  # CREATE_TABLE=no: using it will say the topic is missing
            description = log.create_topic(name, 1, config=config, exist_ok=True)
    except eventlog.EventLogError as exc:
        raise library_error(exc) from exc
    found = description.config
    problems = []
    if description.partition_count != 1:
        problems.append(f"{description.partition_count} partitions (needs 1)")
    compacted = "compact" in str(found.get("cleanup.policy"))
    if not (found.get("key.index") or compacted):
        problems.append("no key index")
    if config is EVENTS_CONFIG:
        if compacted:
            problems.append("compaction (would remove events)")
        if "delete" in str(found.get("cleanup.policy")) and (
            found.get("retention.ms") != -1 or found.get("retention.bytes") != -1
        ):
            problems.append("retention limits (would remove events)")
    if problems:
        raise ProgrammingError(
            f"topic {name!r} exists with settings an eventsourcing recorder cannot use: "
            f"{', '.join(problems)}; create it with {config!r} or use another name"
        )
