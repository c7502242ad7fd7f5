"""KafkaProducer: kafka-python's producer API over :class:`eventlog.Producer`."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from concurrent.futures import Future
from types import TracebackType
from typing import Any, Final

from .._errors import (
    EventLogError,
    InvalidArgumentError,
    InvalidTopicNameError,
    SerializationError,
    TopicNotFoundError,
)
from .._future import SendFuture
from .._producer import Producer
from .._records import RecordMetadata as _CoreMetadata
from .._records import TopicPartition
from ..serde import Serde
from ._config import PRODUCER, open_log
from ._structs import RecordMetadata, header_size
from .errors import (
    IllegalArgumentError,
    IllegalStateError,
    KafkaConfigurationError,
    KafkaError,
    KafkaTimeoutError,
    _raise,
    _translate,
)

__all__ = ["FutureRecordMetadata", "KafkaProducer"]

_ACKS: Final = (0, 1, -1, "all")
_COMPRESSION: Final = (None, "gzip", "snappy", "lz4", "zstd")
_client_ids = itertools.count(1)

_Serialize = Callable[[str, list[tuple[str, bytes | None]], Any], Any]


def _as_serializer(value: object, name: str) -> _Serialize | None:
    """A serializer argument as ``(topic, headers, data) -> bytes``: a callable
    ``data -> bytes`` (kafka-python's usual form), an :class:`eventlog.serde.Serde`, or an
    object with kafka-python 3's ``serialize(topic, headers, data)``."""
    if value is None:
        return None
    if isinstance(value, Serde):
        serde = value
        return lambda _topic, _headers, data: serde.serialize(data)
    if callable(value) and not isinstance(value, type):
        fn = value
        return lambda _topic, _headers, data: fn(data)
    method = getattr(value, "serialize", None)
    if callable(method) and not isinstance(value, type):
        return method  # type: ignore[no-any-return]
    raise KafkaConfigurationError(
        f"{name} must be None, a callable taking the object and returning bytes (for "
        f"example lambda v: json.dumps(v).encode()), an eventlog.serde Serde, or an object "
        f"with serialize(topic, headers, data); got {type(value).__name__} {value!r}"
    )


def _as_partitioner(value: object) -> Callable[[bytes | None, int], int] | None:
    """kafka-python's callable partitioner ``(key_bytes, all_partitions, available)`` as
    the core's ``(key_bytes, num_partitions)``; None keeps the default (murmur2 of the
    key, as Kafka's and kafka-python's default partitioner)."""
    if value is None:
        return None
    if callable(value) and not isinstance(value, type):
        fn = value

        def partition(key: bytes | None, count: int) -> int:
            partitions = list(range(count))
            return fn(key, partitions, partitions)  # type: ignore[no-any-return]

        return partition
    raise KafkaConfigurationError(
        f"partitioner must be None (Kafka's default: murmur2 of the key) or a callable "
        f"(key_bytes, all_partitions, available_partitions) -> partition; got "
        f"{type(value).__name__}. kafka-python 3's Partitioner objects read cluster "
        f"metadata, which a log directory does not have"
    )


class FutureRecordMetadata:
    """What :meth:`KafkaProducer.send` returns: resolves to a :class:`RecordMetadata`.

    As kafka-python's: ``get(timeout)`` waits, ``add_callback(fn, *args, **kwargs)`` calls
    ``fn(*args, metadata, **kwargs)`` once the record is written, ``add_errback`` calls
    ``fn(*args, exception, **kwargs)`` if it fails; ``is_done``, ``value`` and
    ``exception`` are attributes, ``succeeded()`` and ``failed()`` methods. Callbacks run
    in the producer's sender thread (or at once when the future is already done); an
    exception a callback raises is logged and ignored.
    """

    __slots__ = ("_future", "_sizes")

    def __init__(self, future: SendFuture, sizes: tuple[int, int, int]) -> None:
        self._future = future
        self._sizes = sizes

    def _convert(self, meta: _CoreMetadata) -> RecordMetadata:
        topic, partition, offset, timestamp = meta
        key_size, value_size, headers_size = self._sizes
        return RecordMetadata(
            topic,
            partition,
            TopicPartition(topic, partition),
            offset,
            timestamp,
            None,
            key_size,
            value_size,
            headers_size,
        )

    @property
    def is_done(self) -> bool:
        """True once the record is written or has failed."""
        return self._future.done()

    @property
    def value(self) -> RecordMetadata | None:
        """The metadata once written, else None."""
        if not self._future.done() or self._future.exception() is not None:
            return None
        return self._convert(self._future.result())

    @property
    def exception(self) -> BaseException | None:
        """The error once failed, else None."""
        if not self._future.done():
            return None
        exc = self._future.exception()
        return None if exc is None else _translate(exc)

    def succeeded(self) -> bool:
        """True once written."""
        return self._future.done() and self._future.exception() is None

    def failed(self) -> bool:
        """True once failed."""
        return self._future.done() and self._future.exception() is not None

    def retriable(self) -> bool:
        """True when failed with an error a retry may fix."""
        exc = self.exception
        return isinstance(exc, KafkaError) and exc.retriable

    def get(self, timeout: float | None = None) -> RecordMetadata:
        """Wait up to ``timeout`` seconds (None: as long as it takes) for the record to be
        written; return its metadata.

        Raises:
            KafkaTimeoutError: not written within ``timeout`` (it still may be later).
            The write's error, e.g. UnknownTopicOrPartitionError.
        """
        try:
            meta = self._future.result(timeout)
        except BaseException as exc:
            if not self._future.done():
                raise KafkaTimeoutError(f"Timeout after waiting for {timeout} secs.") from None
            _raise(exc)
        return self._convert(meta)

    def add_callback(
        self, f: Callable[..., object], *args: Any, **kwargs: Any
    ) -> FutureRecordMetadata:
        """Call ``f(*args, metadata, **kwargs)`` when the record is written (not on
        failure). Returns this future."""
        fn = functools.partial(f, *args, **kwargs) if args or kwargs else f

        def done(future: Future[_CoreMetadata]) -> None:
            if future.exception() is None:
                fn(self._convert(future.result()))

        self._future.add_done_callback(done)
        return self

    def add_errback(
        self, f: Callable[..., object], *args: Any, **kwargs: Any
    ) -> FutureRecordMetadata:
        """Call ``f(*args, exception, **kwargs)`` if the record fails to be written.
        Returns this future."""
        fn = functools.partial(f, *args, **kwargs) if args or kwargs else f

        def done(future: Future[_CoreMetadata]) -> None:
            exc = future.exception()
            if exc is not None:
                fn(_translate(exc))

        self._future.add_done_callback(done)
        return self

    def add_both(self, f: Callable[..., object], *args: Any, **kwargs: Any) -> FutureRecordMetadata:
        """``add_callback`` and ``add_errback`` with the same function."""
        self.add_callback(f, *args, **kwargs)
        return self.add_errback(f, *args, **kwargs)

    def __repr__(self) -> str:
        state = "failed" if self.failed() else "done" if self.is_done else "pending"
        return f"<eventlog.kafka.FutureRecordMetadata {state}>"


def _failed(exc: BaseException, sizes: tuple[int, int, int]) -> FutureRecordMetadata:
    future = SendFuture()
    future._complete(None, exc)
    return FutureRecordMetadata(future, sizes)


class KafkaProducer:
    """kafka-python's ``KafkaProducer`` over a log directory.

    ``KafkaProducer(bootstrap_servers="eventlog:data", value_serializer=...)`` takes
    kafka-python's keyword arguments; ``bootstrap_servers`` names the log directory (a
    path, ``"eventlog:PATH"``, ``"eventlog:///abs/path"``, a one-item list of those, or an
    open :class:`eventlog.Log`). Records are written by an :class:`eventlog.Producer`
    (a background thread batches them); a future resolves once its record is durable per
    the log's durability mode, whatever ``acks`` says.

    Topics that do not exist are created on first send with one partition, as a Kafka
    broker does by default (``allow_auto_create_topics=False`` turns that off: the
    future then fails with :class:`~eventlog.kafka.errors.UnknownTopicOrPartitionError`).

    See docs/how-to/kafka-python.md for every argument (accepted, ignored and why,
    refused and why).

    Raises:
        KafkaConfigurationError: an unknown or refused argument, or a bad value.
        NoBrokersAvailable: ``bootstrap_servers`` is a ``host:port`` address.
    """

    def __init__(self, **configs: Any) -> None:
        config = PRODUCER.parse(configs)
        if config["acks"] not in _ACKS or isinstance(config["acks"], bool):
            raise KafkaConfigurationError(f"acks must be 0, 1, -1 or 'all'; got {config['acks']!r}")
        if config["acks"] == "all":
            config["acks"] = -1
        if config["compression_type"] not in _COMPRESSION:
            raise KafkaConfigurationError(
                f"compression_type must be None, 'gzip', 'snappy', 'lz4' or 'zstd' (eventlog "
                f"stores every batch zstd-compressed whatever is chosen); got "
                f"{config['compression_type']!r}"
            )
        for flag in ("allow_auto_create_topics", "enable_idempotence"):
            if not isinstance(config[flag], bool):
                raise KafkaConfigurationError(f"{flag} must be True or False; got {config[flag]!r}")
        self._key_serializer = _as_serializer(config["key_serializer"], "key_serializer")
        self._value_serializer = _as_serializer(config["value_serializer"], "value_serializer")
        partitioner = _as_partitioner(config["partitioner"])
        if config["client_id"] is None:
            config["client_id"] = f"kafka-python-producer-{next(_client_ids)}"
        self.config = config
        self._auto_create: bool = config["allow_auto_create_topics"]
        self._handle = open_log("KafkaProducer", config["bootstrap_servers"])
        self._log = self._handle.log
        try:
            self._producer = Producer(
                self._log,
                partitioner=partitioner,
                linger_ms=config["linger_ms"],
                batch_size=config["batch_size"],
                max_request_size=config["max_request_size"],
                buffer_memory=config["buffer_memory"],
                max_block_ms=config["max_block_ms"],
                client_id=config["client_id"],
            )
        except InvalidArgumentError as exc:
            self._handle.release()
            raise KafkaConfigurationError(exc.message) from exc
        except BaseException:
            self._handle.release()
            raise
        self._closed = False
        self._sent = 0

    def _serialize(
        self,
        serializer: _Serialize | None,
        topic: str,
        headers: list[tuple[str, bytes | None]],
        data: Any,
        side: str,
    ) -> Any:
        if serializer is None or data is None:
            return data  # None is never serialized: a None value is a tombstone
        try:
            out = serializer(topic, headers, data)
        except Exception as exc:
            raise SerializationError(
                f"send() to topic {topic!r}: the {side} serializer failed: "
                f"{type(exc).__name__}: {exc}; the record was not sent",
                topic=topic,
                side=side,
            ) from exc
        if out is not None and not isinstance(out, bytes | bytearray | memoryview):
            raise SerializationError(
                f"send() to topic {topic!r}: the {side} serializer returned "
                f"{type(out).__name__}, not bytes; the record was not sent",
                topic=topic,
                side=side,
            )
        return out

    def send(
        self,
        topic: str,
        value: Any = None,
        key: Any = None,
        headers: list[tuple[str, bytes | None]] | None = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
    ) -> FutureRecordMetadata:
        """Send a record; return a :class:`FutureRecordMetadata` at once.

        Args:
            topic: the topic (created with one partition if missing, unless
                ``allow_auto_create_topics=False``).
            value: the value (serialized by ``value_serializer``); None with a key is a
                tombstone (None is never passed to a serializer).
            key: the key (serialized by ``key_serializer``); keyed records go to
                ``murmur2(key) % partitions``, as with Kafka's default partitioner.
            headers: a list of ``(str, bytes)`` pairs.
            partition: an explicit partition.
            timestamp_ms: the record's timestamp (default: now).

        Raises:
            IllegalStateError: the producer is closed.
            IllegalArgumentError: neither a key nor a value.
            eventlog.SerializationError: a serializer failed (the record is not sent).
            MessageSizeTooLargeError, InvalidTopicError, UnknownTopicOrPartitionError (a
            partition out of range), KafkaTimeoutError (the buffer stayed full for
            ``max_block_ms``), eventlog.InvalidRecordError (bad headers, no key on a
            compacted topic).
        """
        if self._closed:
            raise IllegalStateError("KafkaProducer already closed!")
        if value is None and key is None:
            raise IllegalArgumentError("send() needs a key or a value (or both); got neither")
        hdrs = [] if headers is None else headers
        key_bytes = self._serialize(self._key_serializer, topic, hdrs, key, "key")
        value_bytes = self._serialize(self._value_serializer, topic, hdrs, value, "value")
        sizes = (
            -1 if key_bytes is None else len(key_bytes),
            -1 if value_bytes is None else len(value_bytes),
            header_size(tuple(hdrs)) if isinstance(hdrs, list | tuple) else -1,
        )
        for attempt in (1, 2):
            try:
                future = self._producer.send(
                    topic,
                    value_bytes,
                    key_bytes,
                    partition=partition,
                    timestamp=timestamp_ms,
                    headers=headers or None,
                )
            except InvalidTopicNameError as exc:
                _raise(exc)
            except TopicNotFoundError as exc:
                if not self._auto_create:
                    # As kafka-python does for a metadata error: a failed future, not a raise.
                    return _failed(_translate(exc), sizes)
                if attempt == 2:
                    _raise(exc)
                self._create_topic(topic)
                continue
            except EventLogError as exc:
                _raise(exc)
            self._sent += 1
            return FutureRecordMetadata(future, sizes)
        raise AssertionError("unreachable")  # pragma: no cover

    def _create_topic(self, topic: str) -> None:
        """Kafka's ``auto.create.topics.enable``: a new topic with one partition."""
        try:
            self._log.create_topic(topic, 1, exist_ok=True)
        except EventLogError as exc:
            _raise(exc)

    def flush(self, timeout: float | None = None) -> None:
        """Wait until every record sent so far is written (or failed).

        Raises:
            KafkaTimeoutError: ``timeout`` seconds passed first.
        """
        try:
            self._producer.flush(timeout)
        except EventLogError as exc:
            _raise(exc)

    def close(self, timeout: float | None = None) -> None:
        """Write what is buffered (waiting up to ``timeout`` seconds), stop, and release
        the log. Calling it again does nothing."""
        if self._closed:
            return
        self._closed = True
        try:
            self._producer.close(timeout)
        finally:
            self._handle.release()

    def partitions_for(self, topic: str) -> set[int]:
        """The topic's partition numbers (creating the topic, with one partition, when it
        is missing and ``allow_auto_create_topics`` is on).

        Raises:
            UnknownTopicOrPartitionError: no such topic (and no auto-creation).
        """
        if self._closed:
            raise IllegalStateError("KafkaProducer already closed!")
        try:
            if self._auto_create and topic not in self._log.list_topics():
                self._create_topic(topic)
            return set(range(self._log.describe_topic(topic).partition_count))
        except EventLogError as exc:
            _raise(exc)

    def bootstrap_connected(self) -> bool:
        """True while the producer is open (there is no connection to lose)."""
        return not self._closed

    def metrics(self, raw: bool = False) -> dict[str, dict[str, float]]:
        """A small dictionary: the records accepted by ``send()`` so far. (kafka-python's
        full metrics registry is not reproduced.)"""
        return {"producer-metrics": {"record-send-total": float(self._sent)}}

    def _no_transactions(self, *args: Any, **kwargs: Any) -> None:
        raise IllegalStateError(
            "Transactional method invoked on a non-transactional producer: eventlog.kafka "
            "does not offer KafkaProducer transactions; use log.transaction() (appends and "
            "consumer-group offset commits in one atomic commit) or log.processor()"
        )

    init_transactions = begin_transaction = send_offsets_to_transaction = _no_transactions
    commit_transaction = abort_transaction = _no_transactions

    def __enter__(self) -> KafkaProducer:
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
        name = self.config["client_id"]
        return f"<eventlog.kafka.KafkaProducer {name!r} on {self._log.path!r} {state}>"
