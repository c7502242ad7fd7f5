"""The exceptions of :mod:`eventlog.kafka`, named as in ``kafka.errors``.

Code written for kafka-python catches these names (``except KafkaError``,
``except CommitFailedError``...); ``from eventlog.kafka.errors import ...`` keeps that code
working. Each class also derives from the eventlog exception it stands for (and so from the
builtin that one derives from): ``UnknownTopicOrPartitionError`` is an
:class:`eventlog.TopicNotFoundError` and a ``KeyError``, ``KafkaTimeoutError`` is a
``TimeoutError``, and so on. The eventlog error raised by the core is kept as
``__cause__``.

Errors of the storage itself (disk full, a damaged file) and of (de)serializers are not
translated: they are eventlog's own (:class:`eventlog.StorageError`,
:class:`eventlog.SerializationError`, :class:`eventlog.DeserializationError`); Kafka has no
client-side equivalent to map them to.
"""

from __future__ import annotations

from typing import Any, ClassVar, NoReturn

from .. import _errors as core

__all__ = [
    "BrokerResponseError",
    "CommitFailedError",
    "FencedInstanceIdError",
    "GroupIdNotFoundError",
    "IllegalArgumentError",
    "IllegalStateError",
    "InconsistentGroupProtocolError",
    "InvalidConfigurationError",
    "InvalidPartitionsError",
    "InvalidReplicationFactorError",
    "InvalidTimestampError",
    "InvalidTopicError",
    "KafkaConfigurationError",
    "KafkaError",
    "KafkaTimeoutError",
    "MessageSizeTooLargeError",
    "NoBrokersAvailable",
    "NoOffsetForPartitionError",
    "NonEmptyGroupError",
    "OffsetOutOfRangeError",
    "TopicAlreadyExistsError",
    "UnknownTopicOrPartitionError",
]


class KafkaError(core.EventLogError):
    """Root of the kafka-python-named errors (an :class:`eventlog.EventLogError`).

    Attributes:
        retriable: as in kafka-python: whether retrying the call may succeed.
    """

    retriable: ClassVar[bool] = False
    default_message: ClassVar[str] = ""

    def __init__(self, *args: Any, **context: Any) -> None:
        message = str(args[0]) if args else (self.default_message or type(self).__name__)
        super().__init__(message, **context)
        self.args = args if args else (message,)


class BrokerResponseError(KafkaError):
    """An error Kafka reports with an error code (``errno``, the protocol's number)."""

    errno: ClassVar[int | None] = None


class KafkaConfigurationError(KafkaError, core.InvalidArgumentError):
    """A client argument that is unknown, refused (its meaning cannot be kept), or has a
    bad value. Also a ``ValueError`` (kafka-python's producer raises ``ValueError``)."""


class IllegalArgumentError(KafkaError, core.InvalidArgumentError):
    """A bad argument to a client method (a ``ValueError``)."""


class NoBrokersAvailable(KafkaError, core.InvalidArgumentError):
    """``bootstrap_servers`` names a network address (``host:port``): eventlog.kafka
    opens a log directory instead (``bootstrap_servers="eventlog:PATH"``)."""


class IllegalStateError(KafkaError, core.IllegalStateError):
    """A call not allowed in the client's state (closed, no subscription, no group...)."""


class KafkaTimeoutError(KafkaError, core.ProducerTimeoutError):
    """A wait timed out (``future.get(timeout)``, ``flush(timeout)``, a full buffer for
    ``max_block_ms``). A ``TimeoutError``."""

    retriable = True


class CommitFailedError(KafkaError, core.CommitFailedError):
    """A commit was refused: the group rebalanced and the partition has another owner."""

    default_message = (
        "Commit cannot be completed since the group has already rebalanced and assigned "
        "the partitions to another member."
    )


class NoOffsetForPartitionError(KafkaError, core.NoOffsetForPartitionError):
    """No committed offset and ``auto_offset_reset='none'``."""


class OffsetOutOfRangeError(BrokerResponseError, core.OffsetOutOfRangeError):
    """A position outside the stored offsets with ``auto_offset_reset='none'``."""

    errno = 1


class UnknownTopicOrPartitionError(
    BrokerResponseError, core.TopicNotFoundError, core.PartitionNotFoundError
):
    """No such topic (or partition). A ``KeyError`` and an ``IndexError``."""

    errno = 3
    retriable = True


class MessageSizeTooLargeError(BrokerResponseError, core.RecordTooLargeError):
    """A record larger than its topic's ``max.message.bytes``."""

    errno = 10


class InvalidTopicError(BrokerResponseError, core.InvalidTopicNameError):
    """A topic name outside Kafka's rules (``[a-zA-Z0-9._-]``, 1-249 characters)."""

    errno = 17


class InconsistentGroupProtocolError(BrokerResponseError, core.InconsistentGroupProtocolError):
    """The group's members use another partition assignment strategy."""

    errno = 23


class InvalidTimestampError(BrokerResponseError, core.InvalidRecordError):
    """A record timestamp outside 0..2**63-1."""

    errno = 32


class TopicAlreadyExistsError(BrokerResponseError, core.TopicExistsError):
    """``create_topics`` for a topic that exists."""

    errno = 36


class InvalidPartitionsError(BrokerResponseError, core.InvalidArgumentError):
    """A partition count outside 1..10000."""

    errno = 37


class InvalidReplicationFactorError(BrokerResponseError, core.InvalidArgumentError):
    """A replication factor other than 1 or -1 (a log directory holds one copy)."""

    errno = 38


class InvalidConfigurationError(BrokerResponseError, core.InvalidConfigError):
    """A topic configuration key or value eventlog does not accept."""

    errno = 40


class NonEmptyGroupError(BrokerResponseError, core.GroupNotEmptyError):
    """The group has live members."""

    errno = 68


class GroupIdNotFoundError(BrokerResponseError, core.GroupNotFoundError):
    """No such consumer group."""

    errno = 69


class FencedInstanceIdError(BrokerResponseError, core.FencedInstanceIdError):
    """Another consumer joined with this consumer's ``group_instance_id``."""

    errno = 82


# eventlog error -> its kafka-python-named counterpart; the most specific class first.
_TRANSLATIONS: tuple[tuple[type[core.EventLogError], type[KafkaError]], ...] = (
    (core.RecordTooLargeError, MessageSizeTooLargeError),
    (core.InvalidTopicNameError, InvalidTopicError),
    (core.InvalidConfigError, InvalidConfigurationError),
    (core.TopicExistsError, TopicAlreadyExistsError),
    (core.TopicNotFoundError, UnknownTopicOrPartitionError),
    (core.PartitionNotFoundError, UnknownTopicOrPartitionError),
    (core.OffsetOutOfRangeError, OffsetOutOfRangeError),
    (core.NoOffsetForPartitionError, NoOffsetForPartitionError),
    (core.CommitFailedError, CommitFailedError),
    (core.FencedInstanceIdError, FencedInstanceIdError),
    (core.InconsistentGroupProtocolError, InconsistentGroupProtocolError),
    (core.GroupNotEmptyError, NonEmptyGroupError),
    (core.GroupNotFoundError, GroupIdNotFoundError),
    (core.ProducerTimeoutError, KafkaTimeoutError),
    (core.ClientClosedError, IllegalStateError),
    (core.IllegalStateError, IllegalStateError),
)


def _raise(exc: BaseException) -> NoReturn:
    """Raise :func:`_translate` of ``exc`` (from ``exc`` when translated)."""
    new = _translate(exc)
    if new is exc:
        raise exc
    raise new from exc


def _translate(exc: BaseException) -> BaseException:
    """The kafka-python-named error for an eventlog error (with ``exc`` as its cause and
    the same message and context); other exceptions unchanged."""
    if isinstance(exc, KafkaError) or not isinstance(exc, core.EventLogError):
        return exc
    for source, target in _TRANSLATIONS:
        if isinstance(exc, source):
            context = {k: v for k, v in vars(exc).items() if k != "message"}
            new = target(exc.message, **context)
            new.__cause__ = exc
            return new
    return exc
