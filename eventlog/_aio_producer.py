"""The asyncio producer, :class:`AsyncProducer` (public as ``eventlog.aio``; see that
module for how the asyncio front ends work)."""

from __future__ import annotations

import asyncio
import collections
import math
import time
from contextlib import suppress
from functools import partial
from types import TracebackType
from typing import Any, Final

from ._errors import (
    ClientClosedError,
    ProducerTimeoutError,
)
from ._future import SendFuture
from ._log import Log
from ._producer import Producer, _option
from ._records import HeadersInput, RecordMetadata

__all__ = ["AsyncProducer"]

# Waiting for space in a full producer buffer: the first and the longest pause between
# attempts (seconds).
_BACKOFF_MIN: Final = 0.0005
_BACKOFF_MAX: Final = 0.02
# Producer futures completed per event loop callback at most.
_DRAIN_BATCH: Final = 500


class _Completer:
    """Completes asyncio futures from the producer's :class:`SendFuture` s, on one loop.

    ``asyncio.wrap_future`` per record would cost a callback registration (which makes
    the SendFuture build its lock and condition) and a loop wake-up per record. The
    sender completes records in rounds, in about the order they were sent, so one callback
    is enough: on the oldest pending future. When it fires, every future done by then is
    handed over, and the callback moves to the oldest one still pending. Everything here
    runs on the loop's thread except :meth:`_wake`.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._pending: collections.deque[tuple[SendFuture, asyncio.Future[RecordMetadata]]] = (
            collections.deque()
        )
        self._armed = False

    def wrap(self, future: SendFuture) -> asyncio.Future[RecordMetadata]:
        waiter: asyncio.Future[RecordMetadata] = self.loop.create_future()
        self._pending.append((future, waiter))
        if not self._armed:
            self._armed = True
            future.add_done_callback(self._wake)
        return waiter

    def _wake(self, _future: object) -> None:
        # In the sender thread (or on the loop, if the future was already done). A closed
        # loop raises RuntimeError: nobody can await these futures any more.
        with suppress(RuntimeError):
            self.loop.call_soon_threadsafe(self._drain)

    def _drain(self) -> None:
        pending = self._pending
        handed = 0
        while pending and pending[0][0].done():
            if handed == _DRAIN_BATCH:
                self.loop.call_soon(self._drain)  # let other callbacks run in between
                return
            handed += 1
            future, waiter = pending.popleft()
            if waiter.done():
                continue  # cancelled by the application (the record is written anyway)
            exc = future.exception()
            if exc is None:
                waiter.set_result(future.result())
            else:
                waiter.set_exception(exc)
        if pending:
            pending[0][0].add_done_callback(self._wake)
        else:
            self._armed = False


class AsyncProducer:
    """An asyncio producer: :meth:`send` buffers a record without blocking the loop.

    Wraps an :class:`eventlog.Producer` (the same options, the same guarantees). Use it as
    an async context manager, or call :meth:`close`. One AsyncProducer can be shared by
    all tasks of a loop.

    Args:
        log: the log to write to (open, not read-only).
        **options: the Producer's keyword arguments (``key_serializer``,
            ``value_serializer``, ``partitioner``, ``linger_ms``, ``batch_size``,
            ``buffer_memory``, ``max_buffer_records``, ``client_id``, ...).
            ``max_block_ms`` bounds how long :meth:`send` waits (asynchronously) for space
            in a full buffer; None waits as long as it takes.

    Raises:
        InvalidArgumentError: a bad option. LogClosedError, ReadOnlyLogError.
    """

    def __init__(self, log: Log, **options: Any) -> None:
        max_block_ms = options.pop("max_block_ms", 60_000)
        if max_block_ms is not None:
            max_block_ms = _option(
                "max_block_ms",
                max_block_ms,
                0,
                "None (wait indefinitely) or a number of milliseconds >= 0",
                real=True,
            )
        self._max_block_ms: float | None = max_block_ms
        # The wrapped producer never blocks in send(): a full buffer raises at once, and
        # send() below waits for space without holding up the loop.
        self._producer = Producer(log, max_block_ms=0, **options)
        self._log = log
        self._completer: _Completer | None = None
        self._close_task: asyncio.Future[None] | None = None

    @property
    def producer(self) -> Producer:
        """The wrapped :class:`eventlog.Producer` (thread-safe; created with
        ``max_block_ms=0``, so its own ``send()`` raises ProducerTimeoutError at once on a
        full buffer instead of waiting)."""
        return self._producer

    @property
    def client_id(self) -> str:
        """The producer's name (``client_id`` option)."""
        return self._producer.client_id

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._producer.closed or self._close_task is not None

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<eventlog.aio.AsyncProducer {self.client_id!r} on {self._log.path!r} {state}>"

    async def start(self) -> None:
        """Do nothing (the producer is ready when created); for aiokafka-style code.

        Raises:
            ClientClosedError: the producer is closed.
        """
        if self.closed:
            raise ClientClosedError("the producer is closed")

    def _needs_thread(self, topic: object, partition: object) -> bool:
        """Whether ``send`` would read the log (the topic is not in the catalog cache, or
        an explicit partition beyond the cached count makes it re-read the definition)."""
        if type(topic) is not str:
            return False  # refused at once, without I/O
        info = self._log._catalog.cached(topic)
        if info is None:
            return True
        return type(partition) is int and partition >= info.partitions

    async def send(
        self,
        topic: str,
        value: Any,
        key: Any = None,
        *,
        partition: int | None = None,
        timestamp: int | None = None,
        headers: HeadersInput | None = None,
    ) -> asyncio.Future[RecordMetadata]:
        """Buffer one record; return a future resolving to its :class:`RecordMetadata`.

        ``fut = await producer.send(...)`` returns once the record is buffered (at once,
        unless the buffer is full); ``meta = await fut`` waits until it is written
        (durable per the log's durability mode). The arguments and errors are those of
        :meth:`eventlog.Producer.send`. Records sent one after another by one task to one
        partition are stored in that order.

        Cancelling the returned future does not unsend the record.

        Raises:
            ProducerTimeoutError: the buffer stayed full for ``max_block_ms``.
            SerializationError, InvalidRecordError, RecordTooLargeError,
            TopicNotFoundError, PartitionNotFoundError, InvalidArgumentError,
            ClientClosedError, LogClosedError: as :meth:`eventlog.Producer.send`.
        """
        if self._close_task is not None:
            raise ClientClosedError("the producer is closed", topic=topic)
        loop = asyncio.get_running_loop()
        producer = self._producer
        deadline: float | None = None
        delay = _BACKOFF_MIN
        while True:
            try:
                if self._needs_thread(topic, partition):
                    future = await loop.run_in_executor(
                        None,
                        partial(
                            producer.send,
                            topic,
                            value,
                            key,
                            partition=partition,
                            timestamp=timestamp,
                            headers=headers,
                        ),
                    )
                else:
                    future = producer.send(
                        topic, value, key, partition=partition, timestamp=timestamp, headers=headers
                    )
                break
            except ProducerTimeoutError:
                now = time.monotonic()
                if deadline is None:
                    max_block = self._max_block_ms
                    deadline = math.inf if max_block is None else now + max_block / 1000
                if now >= deadline:
                    raise ProducerTimeoutError(
                        f"send() to topic {topic!r}: the producer's buffer stayed full for "
                        f"max_block_ms={self._max_block_ms}; the record was not sent (raise "
                        f"max_block_ms, buffer_memory or max_buffer_records, or send slower)",
                        topic=topic,
                    ) from None
                await asyncio.sleep(min(delay, deadline - now))
                delay = min(delay * 2, _BACKOFF_MAX)
        completer = self._completer
        if completer is None or completer.loop is not loop:
            completer = self._completer = _Completer(loop)
        return completer.wrap(future)

    async def send_and_wait(
        self,
        topic: str,
        value: Any,
        key: Any = None,
        *,
        partition: int | None = None,
        timestamp: int | None = None,
        headers: HeadersInput | None = None,
    ) -> RecordMetadata:
        """Send one record and wait until it is written; return its metadata.

        Raises:
            The errors of :meth:`send`, and those of the write (LogClosedError,
            TopicNotFoundError if the topic was deleted meanwhile, DiskFullError, ...).
        """
        future = await self.send(
            topic, value, key, partition=partition, timestamp=timestamp, headers=headers
        )
        return await future

    async def flush(self, timeout: float | None = None) -> None:
        """Wait until every record sent before this call is written (or failed).

        Args:
            timeout: seconds to wait at most; None waits as long as it takes.

        Raises:
            ProducerTimeoutError: ``timeout`` passed first (the records are still written).
        """
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self._producer.flush, timeout)

    async def close(self, timeout: float | None = None) -> None:
        """Write everything buffered, then stop. Idempotent; later sends raise
        :class:`ClientClosedError`.

        Cancelling the call does not stop the closing, which goes on in the background.

        Args:
            timeout: seconds to wait for buffered records at most (None: no limit);
                records not written by then fail with ClientClosedError.
        """
        if self._close_task is None:
            loop = asyncio.get_running_loop()
            self._close_task = loop.run_in_executor(None, self._producer.close, timeout)
        await asyncio.shield(self._close_task)

    async def stop(self) -> None:
        """Same as :meth:`close` (aiokafka's name)."""
        await self.close()

    async def __aenter__(self) -> AsyncProducer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
