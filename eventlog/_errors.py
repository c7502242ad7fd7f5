"""The exception hierarchy.

Every error eventlog raises derives from :class:`EventLogError`. Each subclass also
derives from the builtin exception a Python user would already catch for that kind of
problem (``KeyError`` for an unknown topic, ``ValueError`` for a bad argument, ``OSError``
for storage trouble), so existing ``except`` clauses keep working.

Errors carry context as attributes (``topic``, ``partition``, ``offset``, ``key``, ...)
and a message that says what was wrong and what is allowed.
"""

from __future__ import annotations

from typing import Any


class EventLogError(Exception):
    """Root of every exception raised by eventlog.

    Attributes:
        message: the human-readable explanation.
        topic, partition, offset: the context of the failure, when known (else None).
    """

    message: str
    topic: str | None
    partition: int | None
    offset: int | None

    def __init__(
        self,
        message: str,
        *,
        topic: str | None = None,
        partition: int | None = None,
        offset: int | None = None,
        **context: Any,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.topic = topic
        self.partition = partition
        self.offset = offset
        for name, value in context.items():
            setattr(self, name, value)

    def __str__(self) -> str:
        # KeyError's own __str__ would wrap the message in quotes.
        return self.message


# --- bad arguments ---------------------------------------------------------------


class InvalidArgumentError(EventLogError, ValueError):
    """An argument has the wrong type or an out-of-range value."""


class InvalidTopicNameError(InvalidArgumentError):
    """A topic name breaks Kafka's rule: ``[a-zA-Z0-9._-]``, 1-249 characters, not ``.``/``..``."""


class InvalidConfigError(InvalidArgumentError):
    """A topic configuration key is unknown, or its value has the wrong type or range.

    Attributes:
        key: the configuration key (Kafka spelling) that was rejected.
    """

    key: str | None


class InvalidRecordError(InvalidArgumentError):
    """A record's key, value, headers or timestamp is not acceptable."""


class RecordTooLargeError(InvalidRecordError):
    """A record is larger than its topic's ``max.message.bytes``."""


class TopicExistsError(EventLogError, ValueError):
    """``create_topic`` was called for a topic that already exists."""


# --- lookups ---------------------------------------------------------------------


class TopicNotFoundError(EventLogError, KeyError):
    """The topic does not exist (it was never created, or it was deleted)."""


class PartitionNotFoundError(EventLogError, IndexError):
    """A partition number is outside ``0 .. partitions - 1`` of its topic."""


class OffsetOutOfRangeError(EventLogError, IndexError):
    """An offset lies below the partition's log start offset (its records were removed)."""


# --- log state -------------------------------------------------------------------


class LogClosedError(EventLogError, ValueError):
    """The Log (or the object derived from it) was used after ``close()``.

    A ``ValueError``, like the one Python raises for I/O on a closed file.
    """


class ReadOnlyLogError(EventLogError, PermissionError):
    """A write was attempted through a Log opened with ``readonly=True``."""


class ForkedProcessError(EventLogError, RuntimeError):
    """A Log opened before ``os.fork()`` was used in the child process.

    LMDB environments must not cross a fork; call ``eventlog.open()`` again in the child.
    """


# --- storage ---------------------------------------------------------------------


class StorageError(EventLogError, OSError):
    """The storage layer failed (I/O error, LMDB error)."""


class PermissionDeniedError(StorageError, PermissionError):
    """The operating system denied access to the log's directory or files."""


class NotALogError(StorageError):
    """The path exists but does not hold an eventlog log."""


class LogNotFoundError(StorageError, FileNotFoundError):
    """The log does not exist and could not be created (read-only open, ``create=False``)."""


class UnsupportedFormatError(StorageError):
    """The log was written by a newer, incompatible version of eventlog."""


class CorruptLogError(StorageError):
    """Stored data failed a consistency check (checksum, truncated file, bad structure).

    Damaged data is never returned: it is reported with this error instead.
    """


class DiskFullError(StorageError):
    """The disk (or quota) is full. Nothing of the failed write was stored."""


__all__ = [
    "CorruptLogError",
    "DiskFullError",
    "EventLogError",
    "ForkedProcessError",
    "InvalidArgumentError",
    "InvalidConfigError",
    "InvalidRecordError",
    "InvalidTopicNameError",
    "LogClosedError",
    "LogNotFoundError",
    "NotALogError",
    "OffsetOutOfRangeError",
    "PermissionDeniedError",
    "PartitionNotFoundError",
    "ReadOnlyLogError",
    "RecordTooLargeError",
    "StorageError",
    "TopicExistsError",
    "TopicNotFoundError",
    "UnsupportedFormatError",
]


# --- clients (producer, consumer, groups) -----------------------------------------


class SerializationError(InvalidRecordError):
    """A producer's key or value serializer failed (or returned something not bytes).

    Only the one ``send()`` fails; nothing else is lost.
    """


class DeserializationError(EventLogError, ValueError):
    """A consumer's key or value deserializer failed on a stored record.

    The consumer's position stays at the record (``topic``, ``partition``, ``offset``):
    poll() raises again until the application skips it with
    ``consumer.seek(error.topic_partition, error.offset + 1)``. Records are never dropped
    silently.

    Attributes:
        topic_partition: where the record is.
        record: the raw record (undeserialized key and value).
    """


class ClientClosedError(EventLogError, ValueError):
    """A producer or consumer was used after ``close()``."""


class IllegalStateError(EventLogError, RuntimeError):
    """A client call that is not allowed in the client's current state.

    For example: polling a consumer that has neither a subscription nor an assignment,
    subscribing after assigning, or committing without a group.
    """


class NoOffsetForPartitionError(EventLogError, LookupError):
    """A partition has no committed offset and ``auto_offset_reset="error"``."""


class CommitFailedError(EventLogError, RuntimeError):
    """A commit was refused: the consumer no longer owns the partition.

    The group rebalanced (or this member's session expired, or another instance with the
    same ``group_instance_id`` replaced it) and the partition belongs to another member, or
    the group has live members and this consumer is not one of them. Records processed
    since the last successful commit will be processed again by the new owner.

    Attributes:
        group: the consumer group.
    """


class FencedInstanceIdError(EventLogError, RuntimeError):
    """Another live consumer joined the group with this consumer's ``group_instance_id``.

    Static membership allows one live consumer per instance id: the older one is fenced
    (its partitions pass to the newer one) and must be closed. As Kafka's
    ``FencedInstanceIdException``, it is fatal: every later poll raises it again.
    """


class GroupNotFoundError(EventLogError, KeyError):
    """No consumer group by that name (no members and no committed offsets)."""


class GroupNotEmptyError(EventLogError, RuntimeError):
    """The group has live members; the operation needs an inactive group (or ``force``)."""


class InconsistentGroupProtocolError(EventLogError, ValueError):
    """A consumer tried to join a group whose members use a different assignor."""


class ProducerTimeoutError(EventLogError, TimeoutError):
    """A producer call did not finish in time.

    ``send()`` found the buffer full for ``max_block_ms`` (the sender cannot keep up), or
    ``flush(timeout)`` expired before every record was written. Nothing was lost: records
    already sent are still written; the record passed to the failed ``send()`` was not
    buffered.
    """


# --- transactions and optimistic concurrency ---------------------------------------


class ConcurrencyError(EventLogError, RuntimeError):
    """An append with ``expected_version`` found the key at another version: another
    writer appended to that key first. Nothing of the append (or its transaction) was
    written; reload the key's stream and try again.

    Attributes:
        key: the key.
        expected_version: the version the append expected.
        actual_version: the key's version in the log.
    """

    key: bytes
    expected_version: int
    actual_version: int


class DuplicateSequenceError(EventLogError, RuntimeError):
    """An idempotent append (``producer_id`` + ``sequence``) retried records that were
    written already, too long ago for their metadata to be returned. Nothing was written
    again: for a retry this means success.

    Attributes:
        producer_id, sequence: the append's.
        last_sequence: the producer's last sequence in that partition.
    """


class OutOfOrderSequenceError(EventLogError, RuntimeError):
    """An idempotent append's sequence neither follows the producer's last sequence in the
    partition nor repeats sequences already written (a gap or an overlap). Nothing was
    written.

    Attributes:
        producer_id, sequence: the append's.
        last_sequence: the producer's last sequence in that partition.
    """
