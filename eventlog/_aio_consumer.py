"""The asyncio consumer, :class:`AsyncConsumer` (public as ``eventlog.aio``; see that
module for how the asyncio front ends work)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from contextlib import suppress
from functools import partial
from types import TracebackType
from typing import Any, Final, TypeVar, cast

from ._catalog import MAX_OFFSET
from ._consumer import Consumer, RebalanceListener, _as_tp
from ._errors import (
    ClientClosedError,
    IllegalStateError,
    InvalidArgumentError,
)
from ._groups import OffsetAndMetadata
from ._log import Log
from ._records import Record, TopicPartition

__all__ = ["AsyncConsumer"]

_T = TypeVar("_T")

# The longest single poll() in a consumer's thread. A cancelled getmany() leaves a poll
# running there; the next operation waits for it, so this bounds that wait.
_CHUNK: Final = 0.1


def _first_offsets(records: Iterable[Record]) -> dict[TopicPartition, int]:
    first: dict[TopicPartition, int] = {}
    for record in records:
        tp = TopicPartition(record.topic, record.partition)
        if tp not in first or record.offset < first[tp]:
            first[tp] = record.offset
    return first


def _rewind(consumer: Consumer, positions: Mapping[TopicPartition, int]) -> None:
    """Move positions back (in the consumer's thread) to records fetched but never handed
    to the application, so that they are returned again and never committed unseen."""
    for tp, offset in positions.items():
        with suppress(IllegalStateError):  # no longer assigned: nothing to give back
            consumer.seek(tp, offset)
    # A poll that returned records and then met an undeserializable record keeps the error
    # for the next poll; after the rewind the next poll meets that record again.
    consumer._pending_error = None


# A deferred operation of a synchronous method: (kind, partitions, offset).
_Op = tuple[str, tuple[TopicPartition, ...], int]


def _apply(consumer: Consumer, rewinds: Mapping[TopicPartition, int], ops: list[_Op]) -> None:
    if consumer.closed:
        return
    if rewinds:
        _rewind(consumer, rewinds)
    for kind, tps, offset in ops:
        for tp in tps:
            # A partition revoked since the call was made: nothing to do.
            with suppress(IllegalStateError):
                if kind == "seek":
                    consumer.seek(tp, offset)
                elif kind == "pause":
                    consumer.pause(tp)
                else:
                    consumer.resume(tp)


class _Job:
    """One call made in a consumer's thread, with the hand-over of its result.

    The awaiting task may be cancelled at any moment. The result (records whose positions
    the poll already advanced) then must not vanish: whichever side comes second — the
    thread finishing the call, or the task giving up — moves the positions back.
    """

    __slots__ = (
        "abandoned",
        "always",
        "delivered",
        "fn",
        "lock",
        "ops",
        "paused",
        "polls",
        "result",
        "rewinds",
    )

    def __init__(
        self,
        fn: Callable[[], Any],
        rewinds: dict[TopicPartition, int],
        ops: list[_Op],
        *,
        polls: bool,
        always: bool,
    ) -> None:
        self.fn = fn
        self.rewinds = rewinds
        self.ops = ops
        self.polls = polls  # fn returns records
        self.always = always  # run fn even if abandoned before it started (close)
        self.lock = threading.Lock()
        self.abandoned = False
        self.delivered = False
        self.result: Any = None
        self.paused: set[TopicPartition] | None = None

    def run(self, consumer: Consumer) -> Any:
        # In the consumer's thread.
        try:
            # Deferred operations first, even if abandoned: they must not be lost.
            _apply(consumer, self.rewinds, self.ops)
            with self.lock:
                if self.abandoned and not self.always:
                    return None
            result = self.fn()
            with self.lock:
                if not self.abandoned:
                    self.result = result
                    self.delivered = True
                    return result
            if self.polls and result:
                _rewind(consumer, _first_offsets(result))
            return None
        finally:
            self.paused = consumer.paused()

    def abandon(self) -> bool:
        """The awaiting task gave up. False if the result was already delivered (then the
        task must give the records back itself)."""
        with self.lock:
            if self.delivered:
                return False
            self.abandoned = True
            return True


def _copy_to_loop(
    loop: asyncio.AbstractEventLoop,
    waiter: asyncio.Future[Any],
    done: concurrent.futures.Future[Any],
) -> None:
    with suppress(RuntimeError):  # the loop is closed: nobody waits any more
        loop.call_soon_threadsafe(_copy_state, waiter, done)


def _copy_state(waiter: asyncio.Future[Any], done: concurrent.futures.Future[Any]) -> None:
    if waiter.done():
        return
    if done.cancelled():
        waiter.cancel()
        return
    exc = done.exception()
    if exc is None:
        waiter.set_result(done.result())
    else:
        waiter.set_exception(exc)


def _check_listener(listener: object) -> None:
    if listener is None:
        return
    for name in ("on_partitions_revoked", "on_partitions_assigned", "on_partitions_lost"):
        if inspect.iscoroutinefunction(getattr(listener, name, None)):
            raise InvalidArgumentError(
                f"the rebalance listener's {name} is a coroutine function; with an "
                f"AsyncConsumer, listener methods are plain functions called in the "
                f"consumer's own thread (use the wrapped consumer, AsyncConsumer.consumer, "
                f"for commits inside them)"
            )


def _check_timeout_ms(timeout_ms: object) -> float:
    if (
        isinstance(timeout_ms, bool)
        or not isinstance(timeout_ms, int | float)
        or not timeout_ms >= 0  # also rejects NaN
    ):
        raise InvalidArgumentError(
            f"timeout_ms must be a number of milliseconds >= 0; got {timeout_ms!r}"
        )
    return timeout_ms / 1000


def _check_max_records(max_records: object) -> int | None:
    if max_records is not None and (
        type(max_records) is not int or not 1 <= max_records <= 1_000_000
    ):
        raise InvalidArgumentError(
            f"max_records must be None or an integer between 1 and 1000000; got {max_records!r}"
        )
    return max_records


def _by_partition(records: list[Record]) -> dict[TopicPartition, list[Record]]:
    out: dict[TopicPartition, list[Record]] = {}
    for record in records:
        tp = TopicPartition(record.topic, record.partition)
        got = out.get(tp)
        if got is None:
            out[tp] = [record]
        else:
            got.append(record)
    return out


class AsyncConsumer:
    """An asyncio consumer: ``getmany``, ``getone``, ``async for`` and ``commit`` that
    never block the event loop.

    Wraps an :class:`eventlog.Consumer` (the same options and semantics: groups,
    positions, commits, auto-commit, deserializers). All its calls are made in one thread
    owned by this object, one call at a time, in the order the application made them.
    Use it as an async context manager, or call :meth:`close`.

    Rebalance listener callbacks run in that thread, inside a ``getmany``/``getone``/
    iteration step or ``close``, while the event loop keeps running. They must be plain
    functions (not coroutines) and must not await or wait on this AsyncConsumer (it is
    waiting for them); to commit from a callback, use the wrapped consumer:
    ``async_consumer.consumer.commit()``.

    Synchronous methods (:meth:`seek`, :meth:`pause`, :meth:`resume`) take effect before
    the consumer's next operation, as Kafka's lazy seeks do; records already fetched for
    those partitions and not yet returned are dropped (and fetched again when due).

    Args:
        log: the log to read.
        *topics: topics to subscribe to (or ``pattern=``, or :meth:`assign` later). The
            subscription is made by :meth:`start` (or the first operation, or ``async
            with``), where a missing topic raises TopicNotFoundError.
        **options: the Consumer's keyword arguments (``group``, ``pattern``,
            ``value_deserializer``, ``auto_offset_reset``, ``enable_auto_commit``,
            ``listener``, ``idle_timeout``, ...). ``idle_timeout`` ends ``async for``
            after that many seconds without records.

    Raises:
        InvalidArgumentError: a bad option (at once).
    """

    def __init__(self, log: Log, *topics: str, **options: Any) -> None:
        pattern = options.pop("pattern", None)
        _check_listener(options.get("listener"))
        # Created without a subscription: the constructor then does no I/O.
        self._consumer = Consumer(log, **options)
        self._pending_subscription: tuple[tuple[str, ...], Any] | None = (
            (topics, pattern) if topics or pattern is not None else None
        )
        self._idle_timeout: float | None = self._consumer._idle_timeout
        self._max_poll_records: int = self._consumer._max_poll_records
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="eventlog-aio-consumer"
        )
        self._lock = asyncio.Lock()  # one call in the consumer's thread at a time
        # Records fetched but not handed out yet (getone, iteration), newest first; their
        # positions are already past them. Given back (rewound) before any other call.
        self._buffer: list[Record] = []
        # Positions to move back to before the next call (records not handed out).
        self._rewinds: dict[TopicPartition, int] = {}
        # Operations of the synchronous methods, applied before the next call.
        self._ops: list[_Op] = []
        # Partitions seeked or paused while the current call runs: its records of them
        # are stale.
        self._dirty: set[TopicPartition] = set()
        self._paused: set[TopicPartition] = set()  # as of the last call
        self._closed = False
        self._close_task: asyncio.Future[None] | None = None

    # ------------------------------------------------------------------ state

    @property
    def consumer(self) -> Consumer:
        """The wrapped :class:`eventlog.Consumer`. Call it only from rebalance listener
        callbacks (they run in its thread)."""
        return self._consumer

    @property
    def group(self) -> str | None:
        """The consumer group, or None."""
        return self._consumer.group

    @property
    def member_id(self) -> str | None:
        """The member id in the group (None outside a group or before the first fetch)."""
        return self._consumer.member_id

    @property
    def generation(self) -> int:
        """The group generation last synced with (-1 before)."""
        return self._consumer.generation

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._closed or self._consumer.closed

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"{len(self.assignment())} partitions"
        return f"<eventlog.aio.AsyncConsumer group={self.group!r} {state}>"

    def _check_open(self) -> None:
        if self.closed:
            raise ClientClosedError("this consumer is closed")

    # ------------------------------------------------------------------ calls in the thread

    async def _call(self, fn: Callable[[], _T], *, polls: bool = False, start: bool = True) -> _T:
        """Run ``fn`` in the consumer's thread, after the deferred operations."""
        self._check_open()
        if start and self._pending_subscription is not None:
            await self.start()
        async with self._lock:
            self._check_open()
            return cast(_T, await self._run(fn, polls=polls, always=False))

    async def _run(self, fn: Callable[[], Any], *, polls: bool, always: bool) -> Any:
        """Submit ``fn`` (lock held) and wait for it; see :class:`_Job` for cancellation."""
        rewinds = self._rewinds
        if self._buffer:
            for tp, offset in _first_offsets(self._buffer).items():
                rewinds[tp] = min(offset, rewinds.get(tp, offset))
            self._buffer = []
        job = _Job(fn, rewinds, self._ops, polls=polls, always=always)
        self._rewinds, self._ops, self._dirty = {}, [], set()
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[Any] = loop.create_future()
        self._executor.submit(job.run, self._consumer).add_done_callback(
            partial(_copy_to_loop, loop, waiter)
        )
        try:
            result = await waiter
        except asyncio.CancelledError:
            if not job.abandon() and polls and job.result:
                # Finished just before the cancellation reached us: give the records back.
                self._give_back(job.result)
            raise
        finally:
            if job.paused is not None:
                self._paused = job.paused
        if polls and self._dirty and result:
            fresh = [r for r in result if (r.topic, r.partition) not in self._dirty]
            if len(fresh) != len(result):
                self._give_back([r for r in result if (r.topic, r.partition) in self._dirty])
                result = fresh
        return result

    def _give_back(self, records: Iterable[Record]) -> None:
        """Records the application will not get now: rewind before the next call."""
        for tp, offset in _first_offsets(records).items():
            self._rewinds[tp] = min(offset, self._rewinds.get(tp, offset))

    def _poll(
        self, partitions: frozenset[TopicPartition] | None, timeout: float, max_records: int | None
    ) -> list[Record]:
        """One poll, in the consumer's thread; ``partitions`` limits what it returns."""
        consumer = self._consumer
        if not partitions:
            return consumer.poll(timeout, max_records)
        assigned = consumer.assignment()
        missing = sorted(partitions - assigned)
        if missing:
            tp = missing[0]
            raise IllegalStateError(
                f"{tp.topic}[{tp.partition}] is not assigned to this consumer; getmany() "
                f"and getone() take assigned partitions only",
                topic=tp.topic,
                partition=tp.partition,
            )
        held = assigned - partitions - consumer.paused()
        if held:
            consumer.pause(*held)
        try:
            records = consumer.poll(timeout, max_records)
        finally:
            if held:
                consumer.resume(*(held & consumer.assignment()))
        wanted = [r for r in records if (r.topic, r.partition) in partitions]
        if len(wanted) != len(records):
            # Partitions assigned by a rebalance inside this poll were not held back.
            others = [r for r in records if (r.topic, r.partition) not in partitions]
            _rewind(consumer, _first_offsets(others))
        return wanted

    def _take(self, partitions: frozenset[TopicPartition] | None, count: int) -> list[Record]:
        """Up to ``count`` buffered records (of ``partitions``), oldest first."""
        buffer = self._buffer
        if not buffer:
            return []
        if not self._consumer._still_member():
            # Removed from the group meanwhile: these partitions may be someone else's.
            self._give_back(buffer)
            self._buffer = []
            return []
        if partitions is None:
            taken = buffer[-count:]
            del buffer[-count:]
            taken.reverse()
            return taken
        taken, rest = [], []
        for record in reversed(buffer):
            if len(taken) < count and (record.topic, record.partition) in partitions:
                taken.append(record)
            else:
                rest.append(record)
        rest.reverse()
        self._buffer = rest
        return taken

    def _keep(self, records: list[Record]) -> Record:
        """Hand out the first record; buffer the rest."""
        if len(records) > 1:
            rest = records[1:]
            rest.reverse()
            self._buffer = rest
        return records[0]

    @staticmethod
    def _partitions(partitions: tuple[TopicPartition, ...]) -> frozenset[TopicPartition] | None:
        return frozenset(_as_tp(tp) for tp in partitions) or None

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Make the subscription given to the constructor (in the consumer's thread).

        Called by ``async with`` and by the first operation; calling it again does
        nothing.

        Raises:
            TopicNotFoundError: a subscribed topic does not exist.
            ClientClosedError: the consumer is closed.
        """
        self._check_open()
        async with self._lock:
            self._check_open()
            pending = self._pending_subscription
            if pending is None:
                return
            topics, pattern = pending
            await self._run(
                partial(self._consumer.subscribe, topics, pattern=pattern),
                polls=False,
                always=False,
            )
            self._pending_subscription = None

    async def close(self, *, autocommit: bool = True) -> None:
        """Leave the group (committing the positions of records handed out so far when
        auto-commit is on and ``autocommit`` is true), release the consumer's thread.

        Idempotent. A ``getmany()`` or iteration waiting in another task ends (with no
        records); later calls raise :class:`ClientClosedError`. Cancelling the call does
        not stop the closing, which goes on in the background.
        """
        if self._close_task is None:
            self._closed = True
            self._close_task = asyncio.ensure_future(self._close(autocommit))
        await asyncio.shield(self._close_task)

    async def _close(self, autocommit: bool) -> None:
        try:
            async with self._lock:
                await self._run(
                    partial(self._consumer.close, autocommit=autocommit), polls=False, always=True
                )
        finally:
            self._executor.shutdown(wait=False)

    async def stop(self) -> None:
        """Same as :meth:`close` (aiokafka's name)."""
        await self.close()

    async def __aenter__(self) -> AsyncConsumer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # ------------------------------------------------------------------ fetching

    async def getmany(
        self,
        *partitions: TopicPartition,
        timeout_ms: float = 0,
        max_records: int | None = None,
    ) -> dict[TopicPartition, list[Record]]:
        """Fetch records: ``{TopicPartition: [Record, ...]}`` (possibly empty).

        Waits up to ``timeout_ms`` for records when none are ready. Positions advance past
        the returned records, which count as processed for the next :meth:`commit`.

        Args:
            *partitions: only these assigned partitions (default: all assigned).
            timeout_ms: how long to wait for records (0: return what is there).
            max_records: at most this many records (default: ``max_poll_records``).

        Raises:
            The errors of :meth:`eventlog.Consumer.poll` (IllegalStateError without a
            subscription, DeserializationError, ...); IllegalStateError for an
            unassigned partition; ClientClosedError; InvalidArgumentError.
        """
        wait = _check_timeout_ms(timeout_ms)
        max_records = _check_max_records(max_records)
        tps = self._partitions(partitions)
        self._check_open()
        # Records fetched for getone() or iteration and not handed out yet are not served
        # from here: the poll below starts by moving the positions back to them, so that
        # they come with everything else that is ready, fairly across partitions.
        deadline = time.monotonic() + wait
        while True:
            remaining = deadline - time.monotonic()
            step = min(max(remaining, 0.0), _CHUNK)
            try:
                records = await self._call(partial(self._poll, tps, step, max_records), polls=True)
            except ClientClosedError:
                if self._closed:
                    return {}  # closed by another task while waiting
                raise
            if records:
                return _by_partition(records)
            if deadline - time.monotonic() <= 0:
                return {}

    async def getone(self, *partitions: TopicPartition) -> Record:
        """Wait for the next record (of ``partitions``, default: all assigned).

        Raises:
            ClientClosedError: the consumer is (or gets) closed.
            The errors of :meth:`getmany`.
        """
        tps = self._partitions(partitions)
        self._check_open()
        while True:
            served = self._take(tps, 1)
            if served:
                return served[0]
            records = await self._call(partial(self._poll, tps, _CHUNK, None), polls=True)
            if records:
                return self._keep(records)

    def __aiter__(self) -> AsyncConsumer:
        return self

    async def __anext__(self) -> Record:
        """The next record; iteration ends after ``idle_timeout`` seconds without
        records (never, by default), or when the consumer is closed by another task."""
        self._check_open()
        served = self._take(None, 1)
        if served:
            return served[0]
        idle = self._idle_timeout
        start = time.monotonic()
        while True:
            if self._closed:
                raise StopAsyncIteration
            step = (
                _CHUNK if idle is None else max(0.0, min(_CHUNK, start + idle - time.monotonic()))
            )
            try:
                records = await self._call(partial(self._poll, None, step, None), polls=True)
            except ClientClosedError:
                if self._closed:
                    raise StopAsyncIteration from None
                raise
            if records:
                return self._keep(records)
            if idle is not None and time.monotonic() - start >= idle:
                raise StopAsyncIteration

    # ------------------------------------------------------------------ commits, positions

    async def commit(
        self, offsets: Mapping[TopicPartition, int | OffsetAndMetadata] | None = None
    ) -> None:
        """Commit the positions of every assigned partition (records handed out so far
        count as processed), or the given ``{TopicPartition: offset or
        OffsetAndMetadata}``. Errors as :meth:`eventlog.Consumer.commit`
        (IllegalStateError without a group, CommitFailedError, ...)."""
        await self._call(partial(self._consumer.commit, offsets))

    async def committed(self, partition: TopicPartition) -> int | None:
        """The group's committed offset for ``partition`` (the next to read), or None."""
        return await self._call(partial(self._consumer.committed, partition))

    async def position(self, partition: TopicPartition) -> int:
        """The offset of the next record to return for ``partition``."""
        return await self._call(partial(self._consumer.position, partition))

    async def lag(self) -> dict[TopicPartition, int]:
        """``{partition: records between the position and the end}`` per assigned
        partition."""
        return await self._call(self._consumer.lag)

    def seek(self, partition: TopicPartition, offset: int) -> None:
        """Read ``partition`` from ``offset``, from the next fetch on.

        Raises:
            IllegalStateError: the partition is not assigned.
            InvalidArgumentError: a bad offset. ClientClosedError.
        """
        self._check_open()
        tp = self._require_assigned(partition)
        if type(offset) is not int or not 0 <= offset <= MAX_OFFSET:
            raise InvalidArgumentError(
                f"offset must be an integer between 0 and 2**63-1; got {offset!r}",
                topic=tp.topic,
                partition=tp.partition,
            )
        self._defer("seek", (tp,), offset)

    async def seek_to_beginning(self, *partitions: TopicPartition) -> None:
        """Read the given partitions (default: all assigned) from their log start."""
        await self._call(partial(self._consumer.seek_to_beginning, *partitions))

    async def seek_to_end(self, *partitions: TopicPartition) -> None:
        """Read only records appended from now on in the given partitions (default: all)."""
        await self._call(partial(self._consumer.seek_to_end, *partitions))

    async def seek_to_timestamp(self, timestamp: int, *partitions: TopicPartition) -> None:
        """Read from the first record with a timestamp >= ``timestamp`` (ms since the
        epoch) in the given partitions (default: all)."""
        await self._call(partial(self._consumer.seek_to_timestamp, timestamp, *partitions))

    def pause(self, *partitions: TopicPartition) -> None:
        """Stop returning records from these assigned partitions until :meth:`resume`."""
        self._check_open()
        tps = tuple(self._require_assigned(tp) for tp in partitions)
        self._defer("pause", tps, 0)

    def resume(self, *partitions: TopicPartition) -> None:
        """Return records from these paused partitions again."""
        self._check_open()
        tps = tuple(self._require_assigned(tp) for tp in partitions)
        self._defer("resume", tps, 0)

    def paused(self) -> set[TopicPartition]:
        """The paused partitions (including pauses not applied yet)."""
        out = set(self._paused)
        for kind, tps, _offset in self._ops:
            if kind == "pause":
                out.update(tps)
            elif kind == "resume":
                out.difference_update(tps)
        return out

    def _require_assigned(self, partition: object) -> TopicPartition:
        tp = _as_tp(partition)
        if tp not in self._consumer.assignment():
            raise IllegalStateError(
                f"{tp.topic}[{tp.partition}] is not assigned to this consumer; it can only "
                f"seek, pause or resume its assigned partitions",
                topic=tp.topic,
                partition=tp.partition,
            )
        return tp

    def _defer(self, kind: str, tps: tuple[TopicPartition, ...], offset: int) -> None:
        if kind != "resume":
            # Buffered records of these partitions are stale now; a call running now may
            # return more, which are given back when it ends.
            touched = set(tps)
            if self._buffer:
                stale = [r for r in self._buffer if (r.topic, r.partition) in touched]
                if stale:
                    self._give_back(stale)
                    self._buffer = [
                        r for r in self._buffer if (r.topic, r.partition) not in touched
                    ]
            self._dirty |= touched
        self._ops.append((kind, tps, offset))

    # ------------------------------------------------------------------ subscriptions

    async def subscribe(
        self,
        topics: Iterable[str] = (),
        *,
        pattern: str | re.Pattern[str] | None = None,
        listener: RebalanceListener | None = None,
    ) -> None:
        """Subscribe to ``topics`` and/or ``pattern``, replacing any previous
        subscription (see :meth:`eventlog.Consumer.subscribe`). A coroutine here (unlike
        aiokafka), as it reads the log."""
        _check_listener(listener)
        self._pending_subscription = None
        if isinstance(topics, str):
            topics = [topics]
        await self._call(
            partial(self._consumer.subscribe, list(topics), pattern=pattern, listener=listener),
            start=False,
        )

    async def assign(self, partitions: Iterable[TopicPartition]) -> None:
        """Read exactly these partitions (see :meth:`eventlog.Consumer.assign`). A
        coroutine here (unlike aiokafka), as it reads the log."""
        await self._call(partial(self._consumer.assign, list(partitions)))

    async def unsubscribe(self) -> None:
        """Drop the subscription or assignment, leaving the group if a member."""
        self._pending_subscription = None
        await self._call(self._consumer.unsubscribe, start=False)

    def subscription(self) -> set[str]:
        """The topics currently subscribed to (pattern matches included)."""
        return self._consumer.subscription()

    def assignment(self) -> set[TopicPartition]:
        """The partitions this consumer currently reads."""
        return self._consumer.assignment()
