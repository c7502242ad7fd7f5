"""The Producer: serializers, partitioning, buffering, futures, flush and close.

``send()`` checks and serializes a record in the caller's thread, then puts it in a buffer
per topic. One background *sender* thread per producer writes the buffered records of a
topic with one :meth:`Log.append_batch` call (one LMDB transaction; the storage layer's
group commit combines it with other writers' transactions) and completes their futures.

The sender writes as soon as it is free (``linger_ms=0``): records that arrive while a
write is in progress form the next batch, so batches grow by themselves under load and a
lone record waits for nothing. Kafka 4.0 lingers 5 ms by default to fill network requests;
there is no network here, and waiting would only add latency.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import math
import operator
import os
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from concurrent.futures import InvalidStateError
from functools import partial
from types import TracebackType
from typing import Any, Final, SupportsIndex, cast

from . import _tracking
from ._catalog import MAX_TIMESTAMP, TopicInfo
from ._errors import (
    ClientClosedError,
    EventLogError,
    ForkedProcessError,
    IllegalStateError,
    InvalidArgumentError,
    InvalidRecordError,
    LogClosedError,
    PartitionNotFoundError,
    ProducerTimeoutError,
    ReadOnlyLogError,
    RecordTooLargeError,
    SerializationError,
)
from ._future import SendFuture
from ._log import Log
from ._partitioner import PartitionerFn
from ._records import Headers, HeadersInput, NewRecord, RecordMetadata
from ._topics import validate_topic_name
from ._write import _headers_size, _normalize_headers
from .serde import Serde, as_serializer

__all__ = ["Producer", "SendFuture"]


_new_record: Final = partial(tuple.__new__, NewRecord)
_monotonic: Final = time.monotonic


def _topic_info(log: Log, topic: str, *, refresh: bool = False) -> TopicInfo:
    """The topic's definition (partition count, config), cheaply.

    The one place where the producer reaches into the Log's internals: the Log's catalog
    cache answers with a dictionary lookup (``describe_topic`` would cost a transaction per
    record). A missing entry, or ``refresh``, reads the definition in a short read
    transaction, which also refreshes the cache.

    Raises:
        LogClosedError, InvalidTopicNameError, TopicNotFoundError.
    """
    if log._closed:
        raise LogClosedError(f"the log {log.path!r} is closed", topic=topic)
    if type(topic) is not str:
        validate_topic_name(topic)
    if not refresh:
        info = log._catalog.cached(topic)
        if info is not None:
            return info
    catalog = log._catalog
    return log._storage.read(
        lambda txn: catalog.get(txn, topic), f"looking up topic {topic!r} for a producer"
    )


class _TopicBuffer:
    """Records buffered for one topic, with their futures (parallel lists)."""

    __slots__ = ("futures", "nbytes", "records")

    def __init__(self) -> None:
        self.records: list[NewRecord] = []
        self.futures: list[SendFuture] = []
        self.nbytes = 0


def _record_size(record: NewRecord) -> int:
    value, key, _partition, _timestamp, headers = record
    size = (len(value) if value is not None else 0) + (len(key) if key is not None else 0)
    if headers:
        size += _headers_size(headers)  # type: ignore[arg-type]
    return size


def _resolve(futures: Sequence[SendFuture], metadata: Sequence[RecordMetadata]) -> None:
    try:
        for future, meta in zip(futures, metadata):
            future._complete(meta, None)
    except InvalidStateError:
        # Someone completed a future by hand (set_result is public on Futures): complete
        # the others, never let it stop the sender.
        for future, meta in zip(futures, metadata):
            if not future.done():
                future._complete(meta, None)


def _fail(futures: Sequence[SendFuture], exc: BaseException) -> None:
    for future in futures:
        with contextlib.suppress(InvalidStateError):  # completed by hand
            future._complete(None, exc)


# Every live sender, so that the process can flush them at exit and mark them after fork.
_live: weakref.WeakSet[_Sender] = weakref.WeakSet()
_live_lock: Final = threading.Lock()  # held across fork(), so the child's copy is consistent


def _track(sender: _Sender, alive: bool) -> None:
    with _live_lock:
        if alive:
            _live.add(sender)
        else:
            _live.discard(sender)


class _Sender:
    """The buffer and the background thread that writes it.

    Kept apart from :class:`Producer` so that the thread references this object and not
    the Producer: a producer the application forgets is garbage collected, and its
    finalizer tells the sender to write what is buffered and exit.
    """

    def __init__(
        self,
        log: Log,
        name: str,
        linger: float,
        batch_size: int,
        max_request_size: int,
        max_records: int,
        max_bytes: int,
        max_block: float | None,
    ) -> None:
        self.log = log
        self.linger = linger
        self.batch_size = batch_size
        self.max_request_size = max_request_size
        self.max_records = max_records
        self.max_bytes = max_bytes
        self.max_block = max_block
        self.lock = threading.Lock()
        self.wake = threading.Condition(self.lock)  # the sender waits here for records
        self.progress = threading.Condition(self.lock)  # senders/flushers wait for writes
        self.buffers: dict[str, _TopicBuffer] = {}
        self.count = 0  # records buffered or being written
        self.nbytes = 0  # their key + value + header bytes
        self.seq = 0  # records accepted so far
        self.done_seq = 0  # every record up to this one has been written (or failed)
        self.flush_target = 0  # a flush() waits for done_seq to reach this
        self.first_at = 0.0  # when the oldest buffered record arrived (for linger)
        self.full = False  # a topic buffer reached batch_size, or the buffer is full
        self.idle = False  # the thread waits for records
        self.lingering = False  # the thread waits out linger_ms
        self.closing = False  # no more sends accepted
        self.stopping = False  # the thread exits once everything buffered is written
        self.forked = False  # this object was inherited by a forked child
        self.failure: BaseException | None = None  # why the thread stopped unexpectedly
        self.thread = threading.Thread(target=self.run, name=name, daemon=True)
        _track(self, True)
        self.thread.start()

    # -- called by producer threads --

    def add(self, topic: str, record: NewRecord, future: SendFuture, size: int) -> None:
        with self.lock:
            if self.closing:
                raise self._closed_error(topic)
            if self.count >= self.max_records or self.nbytes + size > self.max_bytes:
                self._wait_for_space(topic, size)
            buf = self.buffers.get(topic)
            if buf is None:
                if not self.buffers:
                    self.first_at = _monotonic()
                buf = self.buffers[topic] = _TopicBuffer()
            buf.records.append(record)
            buf.futures.append(future)
            buf.nbytes += size
            self.count += 1
            self.nbytes += size
            self.seq += 1
            # Wake the thread only when it sleeps: while it writes, it will find these
            # records when it comes back.
            if self.idle:
                self.idle = False
                self.wake.notify()
            if buf.nbytes >= self.batch_size and self.linger:
                self.full = True  # written without waiting out linger_ms
                if self.lingering:
                    self.wake.notify()

    def _closed_error(self, topic: str | None) -> EventLogError:
        if self.failure is not None:
            return IllegalStateError(
                f"the producer's sender thread stopped unexpectedly "
                f"({type(self.failure).__name__}: {self.failure}); create a new producer",
                topic=topic,
            )
        return ClientClosedError("the producer is closed", topic=topic)

    def _wait_for_space(self, topic: str, size: int) -> None:
        """Block (lock held) until the record fits in the buffer, like Kafka's
        ``buffer.memory`` with ``max.block.ms``."""
        if threading.get_ident() == self.thread.ident:
            # A send from a callback: the sender thread cannot wait for itself, so the
            # bound may be exceeded by what callbacks send.
            return
        deadline = None if self.max_block is None else _monotonic() + self.max_block
        while self.count and (
            self.count >= self.max_records or self.nbytes + size > self.max_bytes
        ):
            if self.closing:
                raise self._closed_error(topic)
            self.full = True  # a full buffer is written without waiting out linger_ms
            if self.lingering:
                self.wake.notify()
            remaining = None if deadline is None else deadline - _monotonic()
            if remaining is not None and remaining <= 0:
                raise ProducerTimeoutError(
                    f"send() to topic {topic!r}: the producer's buffer stayed full "
                    f"({self.count} records, {self.nbytes} bytes; max_buffer_records="
                    f"{self.max_records}, buffer_memory={self.max_bytes}) for max_block_ms="
                    f"{round(self.max_block * 1000) if self.max_block is not None else None}"
                    f"; the record was not sent",
                    topic=topic,
                )
            self.progress.wait(remaining)

    def flush(self, timeout: float | None) -> None:
        if self.forked:
            raise ForkedProcessError(
                "this producer was created before os.fork(); create a new one in the child"
            )
        if threading.get_ident() == self.thread.ident:
            raise IllegalStateError(
                "flush() was called from a send callback, which runs in the producer's "
                "sender thread: it would wait for itself"
            )
        deadline = None if timeout is None else _monotonic() + timeout
        with self.lock:
            target = self.seq
            if self.done_seq >= target:
                return
            if self.flush_target < target:
                self.flush_target = target
            if self.lingering:
                self.wake.notify()
            while self.done_seq < target:
                remaining = None if deadline is None else deadline - _monotonic()
                if remaining is not None and remaining <= 0:
                    raise ProducerTimeoutError(
                        f"flush() timed out after {timeout} s with {target - self.done_seq} "
                        f"record(s) not yet written; they are still being written"
                    )
                self.progress.wait(remaining)

    def close(self, timeout: float | None) -> None:
        """Stop accepting sends, write what is buffered (up to ``timeout``), stop."""
        if self.forked:
            return  # the parent's producer writes what was buffered; nothing to do here
        on_thread = threading.get_ident() == self.thread.ident
        deadline = None if timeout is None else _monotonic() + timeout
        with self.lock:
            self.closing = True
            self.progress.notify_all()  # sends blocked on a full buffer fail now
            target = self.seq
            if self.flush_target < target:
                self.flush_target = target
            if self.lingering:
                self.wake.notify()
            if not on_thread:
                while self.done_seq < target:
                    remaining = None if deadline is None else deadline - _monotonic()
                    if remaining is not None and remaining <= 0:
                        break
                    self.progress.wait(remaining)
            aborted = self.buffers if self.done_seq < target and not on_thread else {}
            if aborted:
                self.buffers = {}
                for buf in aborted.values():
                    self.count -= len(buf.records)
                    self.nbytes -= buf.nbytes
            self.stopping = True
            if self.idle:
                self.wake.notify()
        if aborted:
            error = ClientClosedError(
                f"the producer was closed (timeout {timeout} s) before this record was written"
            )
            for buf in aborted.values():
                _fail(buf.futures, error)
        if not on_thread:
            remaining = None if deadline is None else max(0.0, deadline - _monotonic())
            self.thread.join(remaining)
        _track(self, False)

    def shutdown(self) -> None:
        """Finalizer of a forgotten producer: write what is buffered, then stop (no wait)."""
        if self.forked:
            return
        with self.lock:
            self.closing = True
            self.stopping = True
            self.progress.notify_all()
            self.wake.notify()

    # -- the sender thread --

    def run(self) -> None:
        try:
            while True:
                with self.lock:
                    while not self.buffers:
                        if self.stopping:
                            return
                        self.idle = True
                        self.wake.wait()
                        self.idle = False
                    if self.linger:
                        self._linger()
                    taken = self.buffers
                    self.buffers = {}
                    self.full = False
                    seq = self.seq
                count = nbytes = 0
                try:
                    for topic, buf in taken.items():
                        self._write(topic, buf)
                        count += len(buf.records)
                        nbytes += buf.nbytes
                except BaseException as exc:
                    # Not an error of the write (those fail their futures): a bug, or
                    # SystemExit from a callback. Nothing may wait forever on this round.
                    for buf in taken.values():
                        _fail(buf.futures, exc)
                    raise
                with self.lock:
                    self.done_seq = seq
                    self.count -= count
                    self.nbytes -= nbytes
                    self.progress.notify_all()
        except BaseException as exc:
            self.failure = exc
            raise
        finally:
            self._finish()

    def _linger(self) -> None:
        """Wait (lock held) until linger_ms has passed since the oldest buffered record, a
        topic has batch_size bytes, the buffer is full, or a flush or close asks."""
        deadline = self.first_at + self.linger
        while not (self.full or self.stopping or self.flush_target > self.done_seq):
            remaining = deadline - _monotonic()
            if remaining <= 0:
                return
            self.lingering = True
            try:
                self.wake.wait(remaining)
            finally:
                self.lingering = False

    def _write(self, topic: str, buf: _TopicBuffer) -> None:
        records, futures = buf.records, buf.futures
        limit = self.max_request_size
        if buf.nbytes <= limit:
            self._append(topic, records, futures)
            return
        # Too much for one request: split, so that one stored batch stays bounded (readers
        # decode whole batches) while each call still writes many records.
        start = size = 0
        for i, record in enumerate(records):
            rsize = _record_size(record)
            if size and size + rsize > limit:
                self._append(topic, records[start:i], futures[start:i])
                start = i
                size = 0
            size += rsize
        self._append(topic, records[start:], futures[start:])

    def _append(self, topic: str, records: list[NewRecord], futures: list[SendFuture]) -> None:
        try:
            metadata = self.log.append_batch(topic, records)
        except (InvalidArgumentError, PartitionNotFoundError) as exc:
            # One bad record (the topic was altered or re-created since send() checked it)
            # makes append_batch refuse the whole batch: retry one by one, so that only the
            # bad records fail.
            if len(records) == 1:
                _fail(futures, exc)
            else:
                for record, future in zip(records, futures):
                    self._append(topic, [record], [future])
            return
        except Exception as exc:
            _fail(futures, exc)
            return
        _resolve(futures, metadata)

    def _finish(self) -> None:
        """The thread ends: nothing may wait for it any more."""
        with self.lock:
            self.closing = True
            self.stopping = True
            leftovers = self.buffers
            self.buffers = {}
            self.count = self.nbytes = 0
            self.done_seq = self.seq
            self.progress.notify_all()
        _track(self, False)
        if leftovers:
            error = self._closed_error(None)
            for buf in leftovers.values():
                _fail(buf.futures, error)


def _close_all_at_exit() -> None:
    # The sender threads are daemons (they must not keep the process alive), so records
    # still buffered at exit would be lost: write them, as close() would.
    with _live_lock:
        senders = list(_live)
    for sender in senders:
        sender.close(None)


def _after_fork_in_child() -> None:
    # The child has no sender threads, and their locks may have been copied while held:
    # the inherited producers refuse to work instead of hanging.
    for sender in list(_live):
        sender.forked = True
    _live.clear()
    _live_lock.release()


atexit.register(_close_all_at_exit)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=_live_lock.acquire,
        after_in_parent=_live_lock.release,
        after_in_child=_after_fork_in_child,
    )

_client_ids = itertools.count(1)


def _option(name: str, value: object, low: float, allowed: str, *, real: bool = False) -> Any:
    """Check a numeric option; ``real`` also accepts finite floats."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or (isinstance(value, float) and not (real and math.isfinite(value)))
        or value < low
    ):
        raise InvalidArgumentError(f"{name} must be {allowed}; got {value!r}")
    return value


class Producer:
    """Sends records to a :class:`Log`'s topics, buffered and written in the background.

    Create one with :meth:`Log.producer`. A producer is thread-safe: share one between all
    threads of a process. Close it (or use it as a context manager) before closing the
    log; :meth:`close` writes everything still buffered.

    Ordering: records sent from one thread to one partition are stored in the order they
    were sent (across threads, in the order their ``send()`` calls took the producer's
    lock).

    Errors: ``send()`` raises at once for anything wrong with the record or its target
    (bad types, serializer failure, unknown topic, partition out of range, too large,
    missing key on a compacted topic, closed producer or log); nothing is buffered then,
    and other records are not affected. Errors of the write itself (the topic was deleted
    meanwhile, the log was closed, disk full) fail the returned future.
    """

    def __init__(
        self,
        log: Log,
        *,
        key_serializer: Serde | Callable[[Any], bytes] | None = None,
        value_serializer: Serde | Callable[[Any], bytes] | None = None,
        partitioner: PartitionerFn | str | None = None,
        linger_ms: float = 0,
        batch_size: int = 16384,
        max_request_size: int = 1_048_576,
        buffer_memory: int = 33_554_432,
        max_buffer_records: int = 100_000,
        max_block_ms: float | None = 60_000,
        client_id: str | None = None,
    ) -> None:
        """Create a producer (usually through :meth:`Log.producer`).

        Args:
            log: the log to write to (open, not read-only).
            key_serializer: turns keys into bytes: ``eventlog.serde.json``, ``.str``,
                ``.bytes``, any :class:`~eventlog.serde.Serde`, or a callable. None (the
                default): keys must be bytes already (bytearray and memoryview are copied).
                A None key is never passed to the serializer.
            value_serializer: the same for values. A None value (a tombstone) is never
                passed to the serializer.
            partitioner: None or ``"default"``: Kafka's partitioner, ``murmur2(key) %
                partitions`` for keyed records (the partition Kafka's Java client picks)
                and a sticky partition for records without a key. Or a callable
                ``(key_bytes_or_None, num_partitions) -> partition``, called in ``send()``.
                An explicit ``partition=`` in ``send()`` overrides either.
            linger_ms: how long the sender waits for more records before writing a batch.
                0 (the default, unlike Kafka 4.0's 5 ms): write as soon as the sender is
                free; records arriving during a write form the next batch, so batches grow
                under load anyway. Raise it to trade latency for fewer, larger batches.
            batch_size: with ``linger_ms > 0``, a topic's buffered records are written at
                once when they reach this many bytes (key + value + headers).
            max_request_size: the most bytes written by one ``append_batch`` call (one
                transaction; one stored batch per partition); a larger backlog is split.
                A single larger record is written alone (the topic's
                ``max.message.bytes`` limits records).
            buffer_memory: bytes of records buffered or being written at most; a
                ``send()`` that would exceed it blocks (see ``max_block_ms``).
            max_buffer_records: records buffered or being written at most (bounds the
                memory of the per-record futures); a ``send()`` beyond it blocks.
            max_block_ms: how long ``send()`` blocks on a full buffer before raising
                :class:`ProducerTimeoutError`; None waits indefinitely. Sends from a
                callback never block (the sender thread cannot wait for itself).
            client_id: a name for the sender thread and ``repr`` (default
                ``"producer-N"``).

        Raises:
            InvalidArgumentError: a bad option (the message says what is allowed).
            LogClosedError: the log is closed.
            ReadOnlyLogError: the log was opened read-only.
        """
        if not isinstance(log, Log):
            raise InvalidArgumentError(
                f"a Producer needs an eventlog.Log (use log.producer()); got {type(log).__name__}"
            )
        if log.closed:
            raise LogClosedError(f"the log {log.path!r} is closed")
        if log.readonly:
            raise ReadOnlyLogError(f"cannot create a producer: the log {log.path!r} is read-only")
        self._key_serializer = as_serializer(key_serializer, "key_serializer")
        self._value_serializer = as_serializer(value_serializer, "value_serializer")
        if partitioner is None or (isinstance(partitioner, str) and partitioner == "default"):
            self._partitioner: PartitionerFn | None = None
        elif callable(partitioner):
            self._partitioner = partitioner
        else:
            raise InvalidArgumentError(
                f"partitioner must be None or 'default' (Kafka's murmur2 partitioner, sticky "
                f"for records without a key), or a callable (key_bytes_or_None, "
                f"num_partitions) -> partition; got {type(partitioner).__name__} "
                f"{partitioner!r}"
            )
        linger_ms = _option("linger_ms", linger_ms, 0, "a number of milliseconds >= 0", real=True)
        batch_size = _option("batch_size", batch_size, 1, "an integer >= 1 (bytes)")
        max_request_size = _option(
            "max_request_size", max_request_size, 1, "an integer >= 1 (bytes)"
        )
        buffer_memory = _option("buffer_memory", buffer_memory, 1, "an integer >= 1 (bytes)")
        max_buffer_records = _option("max_buffer_records", max_buffer_records, 1, "an integer >= 1")
        if max_block_ms is not None:
            max_block_ms = _option(
                "max_block_ms",
                max_block_ms,
                0,
                "None (wait indefinitely) or a number of milliseconds >= 0",
                real=True,
            )
        if client_id is None:
            client_id = f"producer-{next(_client_ids)}"
        elif not isinstance(client_id, str):
            raise InvalidArgumentError(
                f"client_id must be None or a str; got {type(client_id).__name__}"
            )
        self._log = log
        self._client_id = client_id
        self._closed = False
        self._sender = _Sender(
            log,
            f"eventlog-{client_id}",
            linger_ms / 1000,
            batch_size,
            max_request_size,
            max_buffer_records,
            buffer_memory,
            None if max_block_ms is None else max_block_ms / 1000,
        )
        # A producer dropped without close(): its sender writes what is buffered and exits.
        self._finalizer = weakref.finalize(self, _Sender.shutdown, self._sender)
        self._finalizer.atexit = False  # _close_all_at_exit writes the buffers then
        _tracking.opened(self, f"Producer(client_id={self._client_id!r})")

    @property
    def client_id(self) -> str:
        """The producer's name (``client_id`` option)."""
        return self._client_id

    @property
    def closed(self) -> bool:
        """True after :meth:`close`."""
        return self._closed

    def send(
        self,
        topic: str,
        value: Any,
        key: Any = None,
        *,
        partition: int | None = None,
        timestamp: int | None = None,
        headers: HeadersInput | None = None,
    ) -> SendFuture:
        """Send one record; return a future resolving to where it was stored.

        The record is checked and serialized now, in the calling thread, then buffered;
        the sender thread writes it shortly (see ``linger_ms``). ``future.result()`` gives
        its :class:`RecordMetadata` once it is written (durable per the log's durability
        mode).

        Args:
            topic: the topic name (it must exist).
            value: the value: an object for the value serializer, or bytes without one;
                None sends a tombstone (never passed to the serializer).
            key: the key, likewise (None: no key; never passed to the serializer).
            partition: an explicit partition, overriding the partitioner.
            timestamp: milliseconds since the epoch; default: when the sender writes the
                record (right after this call, or after ``linger_ms`` and any backlog).
                Replaced by the append time on ``message.timestamp.type=LogAppendTime``
                topics.
            headers: optional list of ``(name, value)`` pairs (str, bytes or None).

        Returns:
            A :class:`SendFuture`. It fails only with errors of the write itself (the
            topic deleted meanwhile, the log closed, disk full).

        Raises:
            SerializationError: the key or value serializer failed or did not return
                bytes (the message names the topic and which side).
            InvalidRecordError: a key/value that is not bytes without a serializer, bad
                headers or timestamp, or no key on a compacted topic.
            RecordTooLargeError: more than the topic's ``max.message.bytes``.
            TopicNotFoundError, InvalidTopicNameError: no such topic.
            PartitionNotFoundError: ``partition`` (or a custom partitioner's result) is out
                of range; InvalidArgumentError if it is not an int.
            ProducerTimeoutError: the buffer stayed full for ``max_block_ms``.
            ClientClosedError: the producer is closed.
            LogClosedError: the log is closed.
            ForkedProcessError: the producer was created before ``os.fork()``.
        """
        sender = self._sender
        if sender.closing or sender.forked:
            self._check_open(topic)
        info = _topic_info(self._log, topic)
        if value is not None:
            value = _to_bytes(topic, "value", self._value_serializer, value)
        if key is not None:
            key = _to_bytes(topic, "key", self._key_serializer, key)
        if partition is not None:
            if type(partition) is not int or not 0 <= partition < info.partitions:
                partition = self._check_partition(topic, partition, info, None)
        elif self._partitioner is not None:
            partition = self._custom_partition(topic, key, info)
        if timestamp is not None and (
            type(timestamp) is not int or not 0 <= timestamp <= MAX_TIMESTAMP
        ):
            raise InvalidRecordError(
                f"send() to topic {topic!r}: timestamp must be None or milliseconds since "
                f"the epoch, an integer between 0 and 2**63-1; got {timestamp!r}",
                topic=topic,
            )
        size = (len(value) if value is not None else 0) + (len(key) if key is not None else 0)
        if headers is not None:
            headers = _check_headers(topic, headers)
            size += _headers_size(headers)
        config = info.config
        if size > config.max_message_bytes:
            raise RecordTooLargeError(
                f"send() to topic {topic!r}: the record is {size} bytes (key + value + "
                f"headers), more than the topic allows (max.message.bytes="
                f"{config.max_message_bytes}); raise the limit with alter_topic() or split "
                f"the record",
                topic=topic,
                partition=partition,
            )
        if key is None and config.compacted:
            raise InvalidRecordError(
                f"send() to topic {topic!r}: the topic is compacted (cleanup.policy="
                f"{config.cleanup_policy}) and every record needs a key",
                topic=topic,
            )
        future = SendFuture()
        sender.add(topic, _new_record((value, key, partition, timestamp, headers)), future, size)
        return future

    def _check_open(self, topic: str | None) -> None:
        sender = self._sender
        if sender.forked:
            raise ForkedProcessError(
                "this producer was created before os.fork(); create a new one in the child",
                topic=topic,
            )
        if sender.closing:
            raise sender._closed_error(topic)

    def _check_partition(
        self, topic: str, partition: object, info: TopicInfo, partitioner: object
    ) -> int:
        """Validate an explicit partition (or a custom partitioner's result, when
        ``partitioner`` is given); the cached partition count is re-read before refusing,
        as another process may have added partitions."""
        source = f"partitioner {partitioner!r} returned" if partitioner is not None else "partition"
        if isinstance(partition, bool) or not hasattr(partition, "__index__"):
            raise InvalidArgumentError(
                f"send() to topic {topic!r}: {source} {type(partition).__name__} "
                f"{partition!r}; a partition must be an int in 0..{info.partitions - 1}",
                topic=topic,
            )
        partition = operator.index(cast(SupportsIndex, partition))  # numpy integers too
        if partition >= info.partitions:
            info = _topic_info(self._log, topic, refresh=True)
        if not 0 <= partition < info.partitions:
            raise PartitionNotFoundError(
                f"send() to topic {topic!r}: {source} {partition}, but the topic has "
                f"partitions 0..{info.partitions - 1}",
                topic=topic,
                partition=partition,
            )
        return partition

    def _custom_partition(self, topic: str, key: bytes | None, info: TopicInfo) -> int:
        partitioner = self._partitioner
        assert partitioner is not None
        # Exceptions raised by the partitioner propagate unchanged (it is the caller's code).
        partition = partitioner(key, info.partitions)
        if type(partition) is not int or not 0 <= partition < info.partitions:
            partition = self._check_partition(topic, partition, info, partitioner)
        return partition

    def flush(self, timeout: float | None = None) -> None:
        """Block until every record sent before this call is written (or failed).

        "Written" means durable per the log's durability mode. Records sent by other
        threads during the flush are not waited for. After :meth:`close`, returns at once.

        Args:
            timeout: seconds to wait at most; None waits as long as it takes.

        Raises:
            ProducerTimeoutError: ``timeout`` passed first (the records are still written
                later).
            IllegalStateError: called from a send callback (it would wait for itself).
            ForkedProcessError: the producer was created before ``os.fork()``.
        """
        timeout = _timeout(timeout)
        if self._closed and not self._sender.forked:
            return
        self._sender.flush(timeout)

    def close(self, timeout: float | None = None) -> None:
        """Write everything buffered, then stop the sender thread. Idempotent.

        Later ``send()`` calls raise :class:`ClientClosedError`. Called from a send
        callback, it does not wait: the buffered records are still written.

        Args:
            timeout: seconds to wait for buffered records at most; None waits as long as
                it takes. Records not written by then fail with ClientClosedError.
        """
        timeout = _timeout(timeout)
        if self._closed:
            return
        self._closed = True
        _tracking.closed(self)
        self._finalizer.detach()
        self._sender.close(timeout)

    def __enter__(self) -> Producer:
        self._check_open(None)
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
        return f"<eventlog.Producer {self._client_id!r} on {self._log.path!r} {state}>"


def _timeout(timeout: object) -> float | None:
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout >= 0:
        raise InvalidArgumentError(f"timeout must be None or seconds >= 0; got {timeout!r}")
    return None if timeout == math.inf else float(timeout)


def _describe(fn: object) -> str:
    owner = getattr(fn, "__self__", None)  # a Serde's bound serialize method
    if isinstance(owner, Serde):
        return repr(owner)
    return str(getattr(fn, "__qualname__", None) or repr(fn))


def _to_bytes(topic: str, side: str, serializer: Any, obj: Any) -> bytes:
    """``obj`` serialized (or checked to be bytes when there is no serializer)."""
    if serializer is None:
        return obj if type(obj) is bytes else _plain_bytes(topic, side, obj)
    try:
        data = serializer(obj)
    except Exception as exc:
        raise _serializer_failed(topic, side, serializer, exc) from exc
    return data if type(data) is bytes else _serialized_bytes(topic, side, serializer, data)


def _serializer_failed(
    topic: str, side: str, serializer: object, exc: Exception
) -> SerializationError:
    return SerializationError(
        f"send() to topic {topic!r}: the {side} serializer {_describe(serializer)} failed: "
        f"{type(exc).__name__}: {exc}; the record was not sent",
        topic=topic,
        side=side,
    )


def _serialized_bytes(topic: str, side: str, serializer: object, result: object) -> bytes:
    if isinstance(result, bytes | bytearray | memoryview):
        return bytes(result)
    hint = " (to send a tombstone, pass value=None)" if result is None and side == "value" else ""
    raise SerializationError(
        f"send() to topic {topic!r}: the {side} serializer {_describe(serializer)} returned "
        f"{type(result).__name__}, not bytes{hint}; the record was not sent",
        topic=topic,
        side=side,
    )


def _plain_bytes(topic: str, side: str, obj: object) -> bytes:
    # Copied: the record is written later, and the caller may reuse a mutable buffer.
    if isinstance(obj, bytes | bytearray | memoryview):
        return bytes(obj)
    hint = (
        f" (pass {side}_serializer=eventlog.serde.str to the producer, or .encode() it)"
        if isinstance(obj, str)
        else f" (configure {side}_serializer, e.g. eventlog.serde.json)"
    )
    raise InvalidRecordError(
        f"send() to topic {topic!r}: the {side} must be bytes when the producer has no "
        f"{side}_serializer; got {type(obj).__name__}{hint}",
        topic=topic,
    )


def _check_headers(topic: str, headers: object) -> Headers:
    try:
        return _normalize_headers(headers, 0, topic)
    except InvalidRecordError as exc:
        raise InvalidRecordError(
            f"send() to topic {topic!r}: {exc.message.removeprefix('record 0: ')}", topic=topic
        ) from None
