"""The mirror's errors, and the translation of confluent-kafka's errors into them."""

from __future__ import annotations

from typing import Any

from ..._errors import EventLogError

__all__ = [
    "KafkaAuthorizationError",
    "KafkaTopicNotFoundError",
    "KafkaUnreachableError",
    "MirrorClusterMismatchError",
    "MirrorError",
    "from_kafka_error",
    "missing_extra",
]


class MirrorError(EventLogError, RuntimeError):
    """A mirror to or from a Kafka cluster failed.

    Attributes:
        code: librdkafka's error name (``"_TRANSPORT"``, ``"TOPIC_AUTHORIZATION_FAILED"``,
            ...) when the cluster or the client reported the error, else None.
    """

    code: str | None


class KafkaUnreachableError(MirrorError, ConnectionError):
    """No broker of the cluster answered within the timeout (wrong address, cluster down,
    network or TLS/SASL settings that do not match the cluster's listeners)."""


class KafkaTopicNotFoundError(MirrorError, KeyError):
    """A topic does not exist on the Kafka cluster (or in the log, for ``to-kafka``)."""


class KafkaAuthorizationError(MirrorError, PermissionError):
    """The cluster refused the client: authentication failed, or an ACL denies access to a
    topic, consumer group, transactional id or the cluster."""


class MirrorClusterMismatchError(MirrorError, ValueError):
    """The mirror's name already has positions for another Kafka cluster (per direction, a
    mirror name belongs to one cluster: offsets of one cluster mean nothing on another).

    Attributes:
        cluster_id: the cluster the stored positions belong to (None when they were stored
            before eventlog recorded cluster ids: then they are told apart by bootstrap).
        bootstrap: the bootstrap servers stored with those positions.
    """

    cluster_id: str | None
    bootstrap: str


_AUTHORIZATION = frozenset(
    {
        "TOPIC_AUTHORIZATION_FAILED",
        "GROUP_AUTHORIZATION_FAILED",
        "CLUSTER_AUTHORIZATION_FAILED",
        "TRANSACTIONAL_ID_AUTHORIZATION_FAILED",
        "SASL_AUTHENTICATION_FAILED",
        "DELEGATION_TOKEN_AUTHORIZATION_FAILED",
        "_AUTHENTICATION",
    }
)
_UNKNOWN_TOPIC = frozenset({"UNKNOWN_TOPIC_OR_PART", "_UNKNOWN_TOPIC", "_UNKNOWN_PARTITION"})
_UNREACHABLE = frozenset(
    {"_TRANSPORT", "_ALL_BROKERS_DOWN", "_TIMED_OUT", "_RESOLVE", "_MSG_TIMED_OUT"}
)


def from_kafka_error(
    error: Any, doing: str, *, bootstrap: str, topic: str | None = None
) -> MirrorError:
    """Build the typed error for a librdkafka error (a ``confluent_kafka.KafkaError``, or a
    ``KafkaException`` carrying one) raised while ``doing`` something."""
    if error is not None and hasattr(error, "args") and error.args and not hasattr(error, "name"):
        error = error.args[0]  # a KafkaException: its first argument is the KafkaError
    name = error.name() if hasattr(error, "name") else None
    text = error.str() if hasattr(error, "str") else str(error)
    where = f" (topic {topic!r})" if topic is not None else ""
    message = f"{doing}{where} on the Kafka cluster at {bootstrap!r} failed: {text}"
    cls: type[MirrorError] = MirrorError
    if name in _AUTHORIZATION:
        cls = KafkaAuthorizationError
        message += (
            "; the cluster refused this client: check the credentials (-X sasl.username=..., "
            "security.protocol) and the ACLs for the topic, the consumer group "
            "and the transactional id"
        )
    elif name in _UNKNOWN_TOPIC:
        cls = KafkaTopicNotFoundError
        message += "; create the topic on the cluster first"
    elif name in _UNREACHABLE:
        cls = KafkaUnreachableError
        message += (
            "; no broker answered: check the bootstrap address, that the cluster is up, "
            "and the security settings"
        )
    return cls(message, topic=topic, code=name)


def missing_extra() -> MirrorError:
    return MirrorError(
        "mirroring to and from Kafka needs confluent-kafka: pip install 'eventlog[kafka]'",
        code=None,
    )
