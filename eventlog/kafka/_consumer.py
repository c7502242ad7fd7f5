"""KafkaConsumer: kafka-python's consumer API over :class:`eventlog.Consumer`."""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from types import TracebackType
from typing import Any, Final, TypeVar

from .._consumer import Consumer
from .._errors import EventLogError, InvalidArgumentError, TopicNotFoundError
from .._groups import OffsetAndMetadata as _CoreOffset
from .._log import Log
from .._records import Record, TopicPartition
from ..serde import Serde
from ._config import CONSUMER, open_log
from ._structs import (
    CREATE_TIME,
    LOG_APPEND_TIME,
    ConsumerRebalanceListener,
    ConsumerRecord,
    OffsetAndMetadata,
    OffsetAndTimestamp,
    header_size,
)
from .errors import (
    IllegalArgumentError,
    IllegalStateError,
    KafkaConfigurationError,
    UnknownTopicOrPartitionError,
    _raise,
)

__all__ = ["KafkaConsumer"]

_RESETS: Final = {
    "earliest": "earliest",
    "smallest": "earliest",  # kafka-python's deprecated spellings
    "latest": "latest",
    "largest": "latest",
    "none": "error",
}
_ISOLATION: Final = ("read_uncommitted", "read_committed")
_STRATEGIES: Final = ("range", "roundrobin", "sticky", "cooperative-sticky")

_F = TypeVar("_F", bound=Callable[..., Any])


def _translating(method: _F) -> _F:
    """Raise eventlog's errors under their kafka-python names (see errors.py)."""

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except EventLogError as exc:
            _raise(exc)

    return wrapper  # type: ignore[return-value]


class _Sized:
    """A deserialized key or value with the size of its bytes (ConsumerRecord's
    ``serialized_*_size``), unwrapped when the record is converted."""

    __slots__ = ("obj", "size")

    def __init__(self, obj: object, size: int) -> None:
        self.obj = obj
        self.size = size


def _as_deserializer(value: object, name: str) -> Callable[[bytes], _Sized] | None:
    if value is None:
        return None
    if isinstance(value, Serde):
        fn: Callable[[bytes], object] = value.deserialize
    elif callable(value) and not isinstance(value, type):
        fn = value
    else:
        hint = (
            " (kafka-python 3's Deserializer objects are not supported: pass a callable, "
            "e.g. lambda b: json.loads(b))"
            if hasattr(value, "deserialize")
            else ""
        )
        raise KafkaConfigurationError(
            f"{name} must be None, a callable taking bytes (for example lambda b: "
            f"json.loads(b)) or an eventlog.serde Serde; got {type(value).__name__}{hint}"
        )
    return lambda data: _Sized(fn(data), len(data))


def _strategy(value: object) -> str:
    """kafka-python's ``partition_assignment_strategy`` (a list of assignor classes, the
    first being preferred) as the name of one of eventlog's assignors."""
    first = value[0] if isinstance(value, list | tuple) and value else value
    name = first if isinstance(first, str) else getattr(first, "name", None)
    if name not in _STRATEGIES:
        raise KafkaConfigurationError(
            f"partition_assignment_strategy must name one of eventlog's assignors "
            f"{', '.join(map(repr, _STRATEGIES))} (a str, or kafka-python's "
            f"RangePartitionAssignor / RoundRobinPartitionAssignor / StickyPartitionAssignor "
            f"class); got {value!r}"
        )
    return str(name)


class _Listener:
    """Adapts a kafka-python rebalance listener (``on_partitions_lost`` optional) to the
    core consumer's."""

    def __init__(self, listener: Any) -> None:
        for method in ("on_partitions_revoked", "on_partitions_assigned"):
            if not callable(getattr(listener, method, None)):
                raise IllegalArgumentError(
                    f"listener must be a ConsumerRebalanceListener (with {method}()); got "
                    f"{type(listener).__name__}"
                )
        self.listener = listener

    def on_partitions_revoked(self, partitions: set[TopicPartition]) -> None:
        self.listener.on_partitions_revoked(partitions)

    def on_partitions_assigned(self, partitions: set[TopicPartition]) -> None:
        self.listener.on_partitions_assigned(partitions)

    def on_partitions_lost(self, partitions: set[TopicPartition]) -> None:
        lost = getattr(self.listener, "on_partitions_lost", None)
        if callable(lost):
            lost(partitions)
        else:
            self.listener.on_partitions_revoked(partitions)


class CommitFuture:
    """What :meth:`KafkaConsumer.commit_async` returns: already done (a commit is one
    local write). ``is_done``, ``value``, ``exception``, ``succeeded()``, ``failed()``,
    ``get()``, ``add_callback``, ``add_errback`` as on kafka-python's futures."""

    __slots__ = ("exception", "is_done", "value")

    def __init__(self, value: object, exception: BaseException | None) -> None:
        self.is_done = True
        self.value = value
        self.exception = exception

    def succeeded(self) -> bool:
        """True when the commit was written."""
        return self.exception is None

    def failed(self) -> bool:
        """True when the commit was refused."""
        return self.exception is not None

    def get(self, timeout: float | None = None) -> object:
        """None once committed; raises the commit's error otherwise."""
        if self.exception is not None:
            raise self.exception
        return self.value

    def add_callback(self, f: Callable[..., object], *args: Any, **kwargs: Any) -> CommitFuture:
        """Call ``f(*args, None, **kwargs)`` now if the commit succeeded."""
        if self.exception is None:
            f(*args, self.value, **kwargs)
        return self

    def add_errback(self, f: Callable[..., object], *args: Any, **kwargs: Any) -> CommitFuture:
        """Call ``f(*args, exception, **kwargs)`` now if the commit failed."""
        if self.exception is not None:
            f(*args, self.exception, **kwargs)
        return self


def _check_tp(value: object) -> TopicPartition:
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str):
        return TopicPartition(value[0], value[1])
    raise IllegalArgumentError(f"expected a TopicPartition(topic, partition); got {value!r}")


def _core_offsets(offsets: object) -> dict[TopicPartition, int | _CoreOffset]:
    if not isinstance(offsets, Mapping):
        raise IllegalArgumentError(
            f"offsets must be a dict of TopicPartition to OffsetAndMetadata; got "
            f"{type(offsets).__name__}"
        )
    out: dict[TopicPartition, int | _CoreOffset] = {}
    for tp, value in offsets.items():
        tp = _check_tp(tp)
        if isinstance(value, OffsetAndMetadata | _CoreOffset):
            metadata = value.metadata if value.metadata is not None else ""
            out[tp] = _CoreOffset(value.offset, metadata)  # type: ignore[arg-type]
        else:
            out[tp] = value
    return out


def _offsets_for_time(log: Log, timestamp: int, topic: str) -> dict[int, int | None]:
    return log.offsets_for_times(topic, timestamp)


class KafkaConsumer:
    """kafka-python's ``KafkaConsumer`` over a log directory.

    ``KafkaConsumer(*topics, bootstrap_servers="eventlog:data", group_id=..., ...)``
    takes kafka-python's keyword arguments; ``bootstrap_servers`` names the log directory
    (a path, ``"eventlog:PATH"``, ``"eventlog:///abs/path"``, a one-item list, or an open
    :class:`eventlog.Log`). Records are read by an :class:`eventlog.Consumer`; groups,
    commits, rebalances and rebalance listeners are eventlog's, with Kafka's semantics.

    ``poll()`` returns ``{TopicPartition: [ConsumerRecord, ...]}``; iterating the
    consumer yields ConsumerRecords and ends (StopIteration) after ``consumer_timeout_ms``
    without records (never, by default). Subscribing to a missing topic creates it with
    one partition, as a Kafka broker does by default (``allow_auto_create_topics=False``:
    UnknownTopicOrPartitionError instead).

    See docs/how-to/kafka-python.md for every argument (accepted, ignored and why).

    Raises:
        KafkaConfigurationError: an unknown argument or a bad value.
        NoBrokersAvailable: ``bootstrap_servers`` is a ``host:port`` address.
    """

    def __init__(self, *topics: str, **configs: Any) -> None:
        config = CONSUMER.parse(configs)
        reset = (
            _RESETS.get(config["auto_offset_reset"])
            if isinstance(config["auto_offset_reset"], str)
            else None
        )
        if reset is None:
            raise KafkaConfigurationError(
                f"auto_offset_reset must be 'earliest', 'latest' or 'none'; got "
                f"{config['auto_offset_reset']!r}"
            )
        if config["isolation_level"] not in _ISOLATION:
            raise KafkaConfigurationError(
                f"isolation_level must be 'read_uncommitted' or 'read_committed' (eventlog "
                f"only ever shows committed records); got {config['isolation_level']!r}"
            )
        if not isinstance(config["allow_auto_create_topics"], bool):
            raise KafkaConfigurationError("allow_auto_create_topics must be True or False")
        timeout = config["consumer_timeout_ms"]
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout >= 0:
            raise KafkaConfigurationError(
                f"consumer_timeout_ms must be a number of milliseconds >= 0 (default: "
                f"float('inf'), iterate forever); got {timeout!r}"
            )
        callback = config["default_offset_commit_callback"]
        if callback is not None and not callable(callback):
            raise KafkaConfigurationError("default_offset_commit_callback must be callable")
        options: dict[str, Any] = {
            "group": config["group_id"],
            "group_instance_id": config["group_instance_id"],
            "key_deserializer": _as_deserializer(config["key_deserializer"], "key_deserializer"),
            "value_deserializer": _as_deserializer(
                config["value_deserializer"], "value_deserializer"
            ),
            "auto_offset_reset": reset,
            "enable_auto_commit": config["enable_auto_commit"],
            "auto_commit_interval_ms": config["auto_commit_interval_ms"],
            "max_poll_records": config["max_poll_records"],
            "max_poll_interval_ms": config["max_poll_interval_ms"],
            "partition_assignment_strategy": _strategy(config["partition_assignment_strategy"]),
            "client_id": config["client_id"],
            "idle_timeout": None if math.isinf(timeout) else timeout / 1000,
        }
        for name in ("session_timeout_ms", "heartbeat_interval_ms"):
            if config[name] is not None:
                options[name] = config[name]
        self.config = config
        self._auto_create: bool = config["allow_auto_create_topics"]
        self._commit_callback: Callable[..., object] | None = callback
        self._handle = open_log("KafkaConsumer", config["bootstrap_servers"])
        self._log = self._handle.log
        try:
            self._consumer = Consumer(self._log, **options)
        except InvalidArgumentError as exc:
            self._handle.release()
            raise KafkaConfigurationError(exc.message) from exc
        except BaseException:
            self._handle.release()
            raise
        self._closed = False
        self._subscribed = False
        self._consumed = 0
        self._timestamp_types: dict[str, int] = {}
        if topics:
            try:
                self.subscribe(list(topics))
            except BaseException:
                self.close(autocommit=False)
                raise

    # ------------------------------------------------------------------ records

    def _timestamp_type(self, topic: str) -> int:
        found = self._timestamp_types.get(topic)
        if found is None:
            config = self._log.topic_config(topic)
            found = (
                LOG_APPEND_TIME if config.message_timestamp_type == "LogAppendTime" else CREATE_TIME
            )
            self._timestamp_types[topic] = found
        return found

    def _record(self, record: Record) -> ConsumerRecord:
        topic, partition, offset, timestamp, raw_key, raw_value, headers = record
        key: object = raw_key
        value: object = raw_value
        if type(key) is _Sized:
            key_size, key = key.size, key.obj
        else:
            key_size = -1 if raw_key is None else len(raw_key)
        if type(value) is _Sized:
            value_size, value = value.size, value.obj
        else:
            value_size = -1 if raw_value is None else len(raw_value)
        return ConsumerRecord(
            topic,
            partition,
            -1,
            offset,
            timestamp,
            self._timestamp_type(topic),
            key,
            value,
            list(headers),
            None,
            key_size,
            value_size,
            header_size(headers),
        )

    def _check_open(self) -> None:
        if self._closed:
            raise IllegalStateError("KafkaConsumer is closed")

    # ------------------------------------------------------------------ subscriptions

    @_translating
    def subscribe(
        self,
        topics: Iterable[str] = (),
        pattern: str | re.Pattern[str] | None = None,
        listener: ConsumerRebalanceListener | None = None,
    ) -> None:
        """Subscribe to ``topics`` or to every topic matching the regular expression
        ``pattern`` (not both), replacing any previous subscription. In a group
        (``group_id``), the group's members share the partitions.

        Raises:
            IllegalStateError: both topics and a pattern, or the consumer uses assign().
            IllegalArgumentError: neither topics nor a pattern; a bad listener.
            UnknownTopicOrPartitionError: a missing topic and
                ``allow_auto_create_topics=False``.
        """
        self._check_open()
        names = [topics] if isinstance(topics, str) else list(topics)
        if names and pattern is not None:
            raise IllegalStateError(
                "Subscription to topics, partitions and pattern are mutually exclusive: "
                "give topics or a pattern"
            )
        if not names and pattern is None:
            raise IllegalArgumentError("subscribe() needs topics or a pattern")
        wrapped = None if listener is None else _Listener(listener)
        if names:
            existing = set(self._log.list_topics())
            for name in names:
                if isinstance(name, str) and name not in existing:
                    if not self._auto_create:
                        raise UnknownTopicOrPartitionError(
                            f"topic {name!r} does not exist, and allow_auto_create_topics is "
                            f"False; create it first (KafkaAdminClient.create_topics)",
                            topic=name,
                        )
                    self._log.create_topic(name, 1, exist_ok=True)
        self._consumer.subscribe(names, pattern=pattern, listener=wrapped)  # type: ignore[arg-type]
        self._subscribed = True

    def subscription(self) -> set[str] | None:
        """The subscribed topics (pattern matches included), or None without a
        subscription."""
        return self._consumer.subscription() if self._subscribed else None

    @_translating
    def unsubscribe(self) -> None:
        """Drop the subscription or assignment (leaving the group)."""
        self._check_open()
        self._consumer.unsubscribe()
        self._subscribed = False

    @_translating
    def assign(self, partitions: Iterable[TopicPartition]) -> None:
        """Read exactly these partitions, without group management (an empty list
        unsubscribes). Commits still go to ``group_id``, if given.

        Raises:
            IllegalStateError: the consumer has a subscription.
            UnknownTopicOrPartitionError: no such topic or partition.
        """
        self._check_open()
        tps = [_check_tp(tp) for tp in partitions]
        if not tps:
            self.unsubscribe()
            return
        self._consumer.assign(tps)

    def assignment(self) -> set[TopicPartition]:
        """The partitions this consumer reads now."""
        return self._consumer.assignment()

    # ------------------------------------------------------------------ polling

    @_translating
    def poll(
        self, timeout_ms: float = 0, max_records: int | None = None, update_offsets: bool = True
    ) -> dict[TopicPartition, list[ConsumerRecord]]:
        """Fetch records: ``{TopicPartition: [ConsumerRecord, ...]}`` (empty when none
        came within ``timeout_ms``).

        Rebalance listeners run inside this call; with ``enable_auto_commit`` the
        positions of earlier polls are committed here every ``auto_commit_interval_ms``.
        With ``update_offsets=False`` the positions stay where they were (kafka-python's
        internal flag, kept for code that passes it).

        Raises:
            IllegalArgumentError: a negative timeout, or a bad max_records.
            IllegalStateError: closed, or no subscription and no assignment.
            NoOffsetForPartitionError, OffsetOutOfRangeError: ``auto_offset_reset='none'``.
            eventlog.DeserializationError: a deserializer failed (the position stays at
                that record: seek past it to skip it).
        """
        self._check_open()
        if isinstance(timeout_ms, bool) or not isinstance(timeout_ms, int | float):
            raise IllegalArgumentError(f"timeout_ms must be a number; got {timeout_ms!r}")
        if timeout_ms < 0:
            raise IllegalArgumentError("Timeout must not be negative")
        if max_records is not None and (type(max_records) is not int or max_records <= 0):
            raise IllegalArgumentError(f"max_records must be a positive int; got {max_records!r}")
        records = self._consumer.poll(timeout_ms / 1000, max_records)
        out: dict[TopicPartition, list[ConsumerRecord]] = {}
        for record in records:
            tp = TopicPartition(record.topic, record.partition)
            batch = out.get(tp)
            if batch is None:
                batch = out[tp] = []
            batch.append(self._record(record))
        if not update_offsets:
            for tp, batch in out.items():
                self._consumer.seek(tp, batch[0].offset)
        else:
            self._consumed += len(records)
        return out

    def __iter__(self) -> Iterator[ConsumerRecord]:
        return self

    def __next__(self) -> ConsumerRecord:
        """The next record, waiting for one; StopIteration after ``consumer_timeout_ms``
        without records. The position advances record by record."""
        self._check_open()
        try:
            record = next(self._consumer)
        except EventLogError as exc:
            _raise(exc)
        self._consumed += 1
        return self._record(record)

    # ------------------------------------------------------------------ positions

    def _assigned(self, partitions: tuple[TopicPartition, ...], what: str) -> list[TopicPartition]:
        assigned = self._consumer.assignment()
        tps = [_check_tp(tp) for tp in partitions]
        if not tps and not assigned:
            raise IllegalArgumentError(f"{what}(): no partitions are currently assigned")
        for tp in tps:
            if tp not in assigned:
                raise IllegalArgumentError(f"{what}(): unassigned partition {tp}")
        return tps

    @_translating
    def seek(self, partition: TopicPartition, offset: int) -> None:
        """Read ``partition`` from ``offset`` at the next poll.

        Raises:
            IllegalArgumentError: the partition is not assigned, or the offset is not an
                int >= 0.
        """
        self._check_open()
        (tp,) = self._assigned((partition,), "seek")
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise IllegalArgumentError(f"Offset must be int >= 0; got {offset!r}")
        self._consumer.seek(tp, offset)

    @_translating
    def seek_to_beginning(self, *partitions: TopicPartition) -> None:
        """Read the given partitions (default: all assigned) from their first stored
        offset."""
        self._check_open()
        self._consumer.seek_to_beginning(*self._assigned(partitions, "seek_to_beginning"))

    @_translating
    def seek_to_end(self, *partitions: TopicPartition) -> None:
        """Read only records appended from now on (default: all assigned partitions)."""
        self._check_open()
        self._consumer.seek_to_end(*self._assigned(partitions, "seek_to_end"))

    @_translating
    def position(self, partition: TopicPartition, timeout_ms: float | None = None) -> int:
        """The offset of the next record ``poll()`` returns for ``partition``.

        Raises:
            IllegalStateError: the partition is not assigned.
        """
        self._check_open()
        return self._consumer.position(_check_tp(partition))

    @_translating
    def highwater(self, partition: TopicPartition) -> int:
        """The partition's end offset (the offset the next record will get). Always known
        here, unlike kafka-python, which learns it from fetch responses.

        Raises:
            IllegalStateError: the partition is not assigned.
        """
        self._check_open()
        tp = _check_tp(partition)
        if tp not in self._consumer.assignment():
            raise IllegalStateError(f"Partition {tp} is not assigned")
        return self._log.end_offsets(tp.topic)[tp.partition]

    @_translating
    def committed(
        self, partition: TopicPartition, metadata: bool = False, timeout_ms: float | None = None
    ) -> int | OffsetAndMetadata | None:
        """The group's committed offset for ``partition`` (an int, or an
        :class:`OffsetAndMetadata` with ``metadata=True``), or None.

        Raises:
            IllegalStateError: no ``group_id``.
        """
        self._check_open()
        group = self.config["group_id"]
        if group is None:
            raise IllegalStateError("committed() requires group_id")
        tp = _check_tp(partition)
        found = self._log.committed_offsets(group, tp.topic).get(tp)
        if found is None:
            return None
        return OffsetAndMetadata(found.offset, found.metadata, -1) if metadata else found.offset

    @_translating
    def commit(
        self,
        offsets: Mapping[TopicPartition, OffsetAndMetadata] | None = None,
        timeout_ms: float | None = None,
    ) -> None:
        """Commit positions for the group: by default everything returned so far; or
        ``{TopicPartition: OffsetAndMetadata(offset, metadata, -1)}`` (offset = the next
        record to read).

        Raises:
            IllegalStateError: no ``group_id``.
            CommitFailedError: the group rebalanced and a partition has a new owner.
        """
        self._check_open()
        if self.config["group_id"] is None:
            raise IllegalStateError("commit() requires group_id")
        self._consumer.commit(None if offsets is None else _core_offsets(offsets))

    def commit_async(
        self,
        offsets: Mapping[TopicPartition, OffsetAndMetadata] | None = None,
        callback: Callable[[Any, Any], object] | None = None,
    ) -> CommitFuture:
        """Commit like :meth:`commit`, reporting the outcome instead of raising:
        ``callback(offsets, response)`` (default: ``default_offset_commit_callback``) gets
        None on success or the exception. The commit is a local write, so it is done when
        this returns; so is the returned future.

        Raises:
            IllegalStateError: no ``group_id`` (at once, as kafka-python).
        """
        self._check_open()
        if self.config["group_id"] is None:
            raise IllegalStateError("commit_async() requires group_id")
        error: BaseException | None = None
        try:
            self.commit(offsets)
        except Exception as exc:  # reported to the callback and the future, as kafka-python
            error = exc
        callback = callback if callback is not None else self._commit_callback
        if callback is not None:
            callback(offsets, error)
        return CommitFuture(None, error)

    # ------------------------------------------------------------------ topics and offsets

    @_translating
    def topics(self) -> set[str]:
        """Every topic in the log."""
        self._check_open()
        return set(self._log.list_topics())

    @_translating
    def partitions_for_topic(self, topic: str) -> set[int]:
        """The topic's partition numbers (an empty set for a missing topic)."""
        self._check_open()
        try:
            return set(range(self._log.describe_topic(topic).partition_count))
        except TopicNotFoundError:
            return set()

    def _per_topic(
        self, partitions: Iterable[TopicPartition], read: Callable[[str], dict[int, Any]]
    ) -> dict[TopicPartition, Any]:
        tps = [_check_tp(tp) for tp in partitions]
        found: dict[str, dict[int, Any]] = {}
        out: dict[TopicPartition, Any] = {}
        for tp in tps:
            if tp.topic not in found:
                found[tp.topic] = read(tp.topic)
            by_partition = found[tp.topic]
            if tp.partition not in by_partition:
                raise UnknownTopicOrPartitionError(
                    f"partition {tp.partition} does not exist; topic {tp.topic!r} has "
                    f"partitions 0..{len(by_partition) - 1}",
                    topic=tp.topic,
                    partition=tp.partition,
                )
            out[tp] = by_partition[tp.partition]
        return out

    @_translating
    def beginning_offsets(
        self, partitions: Iterable[TopicPartition], timeout_ms: float | None = None
    ) -> dict[TopicPartition, int]:
        """``{TopicPartition: first stored offset}`` (the consumer's positions do not
        change)."""
        self._check_open()
        return self._per_topic(partitions, self._log.beginning_offsets)

    @_translating
    def end_offsets(
        self, partitions: Iterable[TopicPartition], timeout_ms: float | None = None
    ) -> dict[TopicPartition, int]:
        """``{TopicPartition: end offset}``: the offset the next record will get."""
        self._check_open()
        return self._per_topic(partitions, self._log.end_offsets)

    @_translating
    def offsets_for_times(
        self, timestamps: Mapping[TopicPartition, int], timeout_ms: float | None = None
    ) -> dict[TopicPartition, OffsetAndTimestamp | None]:
        """``{TopicPartition: OffsetAndTimestamp(offset, timestamp, -1) or None}``: the
        first record whose timestamp is >= the given one (ms since the epoch), or None
        when there is none. Uses the time index.

        Raises:
            IllegalArgumentError: a negative timestamp.
        """
        self._check_open()
        out: dict[TopicPartition, OffsetAndTimestamp | None] = {}
        for tp, ts in timestamps.items():
            tp = _check_tp(tp)
            if isinstance(ts, bool) or not isinstance(ts, int | float) or ts < 0:
                raise IllegalArgumentError(
                    f"The target time for partition {tp} is {ts!r}. The target time cannot "
                    f"be negative."
                )
            find = functools.partial(_offsets_for_time, self._log, int(ts))
            (offset,) = self._per_topic([tp], find).values()
            if offset is None:
                out[tp] = None
                continue
            # The offset's record gives the timestamp (the next one's, had compaction
            # removed it meanwhile).
            records = self._log.read(tp.topic, tp.partition, offset, max_records=1)
            out[tp] = (
                OffsetAndTimestamp(records[0].offset, records[0].timestamp, -1) if records else None
            )
        return out

    # ------------------------------------------------------------------ flow control

    @_translating
    def pause(self, *partitions: TopicPartition) -> None:
        """Stop returning records of these partitions until :meth:`resume`."""
        self._check_open()
        self._consumer.pause(*(_check_tp(tp) for tp in partitions))

    @_translating
    def resume(self, *partitions: TopicPartition) -> None:
        """Return records of these paused partitions again."""
        self._check_open()
        self._consumer.resume(*(_check_tp(tp) for tp in partitions))

    def paused(self) -> set[TopicPartition]:
        """The paused partitions."""
        return self._consumer.paused()

    # ------------------------------------------------------------------ the rest

    def metrics(self, raw: bool = False) -> dict[str, dict[str, float]]:
        """A small dictionary: records returned so far, and the current lag per
        partition summed. (kafka-python's full metrics registry is not reproduced.)"""
        lag = 0.0 if self._closed else float(sum(self._consumer.lag().values()))
        return {
            "consumer-fetch-manager-metrics": {
                "records-consumed-total": float(self._consumed),
                "records-lag": lag,
            }
        }

    def bootstrap_connected(self) -> bool:
        """True while the consumer is open (there is no connection to lose)."""
        return not self._closed

    def close(self, autocommit: bool = True, timeout_ms: float | None = None) -> None:
        """Leave the group (committing first when ``enable_auto_commit`` and
        ``autocommit``) and release the log. Calling it again does nothing."""
        if self._closed:
            return
        self._closed = True
        try:
            self._consumer.close(autocommit=autocommit)
        finally:
            self._handle.release()

    def __enter__(self) -> KafkaConsumer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # As kafka-python: no auto-commit when the block failed (the record in hand may
        # not have been processed).
        self.close(autocommit=exc_type is None)

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"{len(self._consumer.assignment())} partitions"
        return f"<eventlog.kafka.KafkaConsumer group={self.config['group_id']!r} {state}>"
