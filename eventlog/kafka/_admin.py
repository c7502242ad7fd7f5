"""KafkaAdminClient basics (create, delete, list and describe topics) over a Log."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any

from .._errors import EventLogError, TopicExistsError
from .._topics import parse_config, validate_topic_name
from ._config import ADMIN, open_log
from .errors import (
    BrokerResponseError,
    IllegalArgumentError,
    IllegalStateError,
    InvalidPartitionsError,
    InvalidReplicationFactorError,
    _raise,
    _translate,
)

__all__ = ["KafkaAdminClient", "NewTopic"]


class NewTopic:
    """A topic to create with :meth:`KafkaAdminClient.create_topics`.

    Args:
        name: the topic name.
        num_partitions: the partition count; -1 (the default) means the broker default,
            one partition here.
        replication_factor: 1 or -1 (a log directory holds one copy of each record).
        replica_assignments: must be empty (no brokers to place replicas on).
        topic_configs: topic configuration with Kafka's names (``{"retention.ms":
            "3600000"}``; string values are converted as Kafka does).
    """

    def __init__(
        self,
        name: str,
        num_partitions: int = -1,
        replication_factor: int = -1,
        replica_assignments: Mapping[int, list[int]] | None = None,
        topic_configs: Mapping[str, Any] | None = None,
    ) -> None:
        self.name = name
        self.num_partitions = num_partitions
        self.replication_factor = replication_factor
        self.replica_assignments = dict(replica_assignments or {})
        self.topic_configs = dict(topic_configs or {})

    def __repr__(self) -> str:
        return (
            f"NewTopic(name={self.name!r}, num_partitions={self.num_partitions}, "
            f"replication_factor={self.replication_factor}, topic_configs={self.topic_configs!r})"
        )


def _new_topics(new_topics: object) -> list[NewTopic]:
    """kafka-python's accepted shapes: a list of NewTopic or of names, or a dict of
    ``{name: {num_partitions, replication_factor, assignments, configs}}``."""
    if isinstance(new_topics, Mapping):
        out = []
        for name, options in new_topics.items():
            options = dict(options or {})
            unknown = set(options) - {
                "num_partitions",
                "replication_factor",
                "assignments",
                "configs",
            }
            if unknown:
                raise IllegalArgumentError(
                    f"create_topics(): unknown options {sorted(unknown)} for topic {name!r}; "
                    f"allowed: num_partitions, replication_factor, assignments, configs"
                )
            out.append(
                NewTopic(
                    name,
                    options.get("num_partitions", -1),
                    options.get("replication_factor", -1),
                    options.get("assignments"),
                    options.get("configs"),
                )
            )
        return out
    if isinstance(new_topics, str | bytes) or not isinstance(new_topics, Iterable):
        raise IllegalArgumentError(
            f"create_topics() takes a list of NewTopic (or of names) or a dict; got "
            f"{type(new_topics).__name__}"
        )
    out = []
    for item in new_topics:
        if isinstance(item, NewTopic):
            out.append(item)
        elif isinstance(item, str):
            out.append(NewTopic(item))
        else:
            raise IllegalArgumentError(
                f"create_topics(): expected a NewTopic or a topic name; got {item!r}"
            )
    return out


def _topic_result(name: str, exc: BaseException | None, **extra: Any) -> dict[str, Any]:
    if exc is None:
        return {"name": name, "error_code": 0, "error_message": None, **extra}
    errno = exc.errno if isinstance(exc, BrokerResponseError) else -1
    return {"name": name, "error_code": errno, "error_message": str(exc), **extra}


class KafkaAdminClient:
    """kafka-python's ``KafkaAdminClient`` basics over a log directory: create, delete,
    list and describe topics.

    ``bootstrap_servers`` names the log directory as for the producer and consumer.
    Results are dictionaries shaped like kafka-python 3's (``{"topics": [{"name": ...,
    "error_code": 0, "error_message": None, ...}]}``); with ``raise_errors=True`` (the
    default) the first failing topic raises its error instead (the topics before it in
    the list are created or deleted, as on a broker).

    Raises:
        KafkaConfigurationError: an unknown argument. NoBrokersAvailable: a host:port.
    """

    def __init__(self, **configs: Any) -> None:
        self.config = ADMIN.parse(configs)
        self._handle = open_log("KafkaAdminClient", self.config["bootstrap_servers"])
        self._log = self._handle.log
        self._closed = False

    def _check_open(self) -> None:
        if self._closed:
            raise IllegalStateError("KafkaAdminClient is closed")

    def _create(self, topic: NewTopic, validate_only: bool) -> int:
        if topic.replication_factor not in (-1, 1):
            raise InvalidReplicationFactorError(
                f"topic {topic.name!r}: replication_factor {topic.replication_factor!r}: a log "
                f"directory keeps one copy of each record, so use 1 (or -1)",
                topic=topic.name,
            )
        if topic.replica_assignments:
            raise IllegalArgumentError(
                f"topic {topic.name!r}: replica_assignments need brokers; leave them empty",
                topic=topic.name,
            )
        partitions = 1 if topic.num_partitions == -1 else topic.num_partitions
        if (
            isinstance(partitions, bool)
            or not isinstance(partitions, int)
            or not 1 <= partitions <= 10_000
        ):
            raise InvalidPartitionsError(
                f"topic {topic.name!r}: num_partitions must be -1 (one partition) or 1 to "
                f"10000; got {topic.num_partitions!r}",
                topic=topic.name,
            )
        try:
            if validate_only:
                validate_topic_name(topic.name)
                parse_config(dict(topic.topic_configs))
                if topic.name in self._log.list_topics():
                    raise TopicExistsError(f"topic {topic.name!r} already exists", topic=topic.name)
            else:
                self._log.create_topic(topic.name, partitions, config=topic.topic_configs)
        except EventLogError as exc:
            _raise(exc)
        return partitions

    def create_topics(
        self,
        new_topics: Iterable[NewTopic | str] | Mapping[str, Mapping[str, Any]],
        timeout_ms: float | None = None,
        validate_only: bool = False,
        raise_errors: bool = True,
        wait_for_metadata: bool = False,
    ) -> dict[str, Any]:
        """Create topics (``NewTopic`` objects, names, or a dict as in kafka-python).

        Returns:
            ``{"topics": [{"name", "error_code", "error_message", "num_partitions",
            "replication_factor"}, ...]}``.

        Raises (with ``raise_errors``):
            TopicAlreadyExistsError, InvalidTopicError, InvalidPartitionsError,
            InvalidReplicationFactorError, InvalidConfigurationError.
        """
        self._check_open()
        results = []
        for topic in _new_topics(new_topics):
            try:
                partitions = self._create(topic, validate_only)
            except EventLogError as exc:
                if raise_errors:
                    raise
                results.append(
                    _topic_result(topic.name, exc, num_partitions=-1, replication_factor=-1)
                )
                continue
            results.append(
                _topic_result(topic.name, None, num_partitions=partitions, replication_factor=1)
            )
        return {"topics": results}

    def delete_topics(
        self, topics: Iterable[str], timeout_ms: float | None = None, raise_errors: bool = True
    ) -> dict[str, Any]:
        """Delete topics and their records.

        Returns:
            ``{"topics": [{"name", "error_code", "error_message"}, ...]}``.

        Raises (with ``raise_errors``):
            UnknownTopicOrPartitionError: no such topic.
        """
        self._check_open()
        if isinstance(topics, str):
            raise IllegalArgumentError("delete_topics() takes a list of topic names")
        results = []
        for name in topics:
            try:
                self._log.delete_topic(name)
            except EventLogError as exc:
                if raise_errors:
                    _raise(exc)
                results.append(_topic_result(name, _translate(exc)))
                continue
            results.append(_topic_result(name, None))
        return {"topics": results}

    def list_topics(self) -> list[str]:
        """Every topic name (sorted)."""
        self._check_open()
        return self._log.list_topics()

    def describe_topics(self, topics: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """``[{"name", "error_code", "is_internal", "partitions": [{"partition_index",
        "leader_id", "replica_nodes", "isr_nodes", "offline_replicas", ...}]}]`` for the
        given topics (default: all). The single "broker" is node 0.

        Raises:
            UnknownTopicOrPartitionError: no such topic.
        """
        self._check_open()
        names = self._log.list_topics() if topics is None else list(topics)
        out = []
        for name in names:
            try:
                description = self._log.describe_topic(name)
            except EventLogError as exc:
                _raise(exc)
            out.append(
                {
                    "error_code": 0,
                    "name": name,
                    "is_internal": False,
                    "partitions": [
                        {
                            "error_code": 0,
                            "partition_index": p.partition,
                            "leader_id": 0,
                            "leader_epoch": -1,
                            "replica_nodes": [0],
                            "isr_nodes": [0],
                            "offline_replicas": [],
                        }
                        for p in description.partitions
                    ],
                }
            )
        return out

    def close(self) -> None:
        """Release the log. Calling it again does nothing."""
        if self._closed:
            return
        self._closed = True
        self._handle.release()

    def __enter__(self) -> KafkaAdminClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<eventlog.kafka.KafkaAdminClient on {self._log.path!r} {state}>"
