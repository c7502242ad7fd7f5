"""The Consumer: subscriptions and assignments, poll, positions, commits, groups."""

from __future__ import annotations

import contextlib
import itertools
import re
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Literal

from . import _tracking
from ._assignors import validate_protocol
from ._catalog import MAX_OFFSET, MAX_TIMESTAMP
from ._clock import is_manual, now_ms
from ._coordination import _EARLIEST, _LATEST, _UNSET, GroupCoordination, RebalanceListener
from ._errors import (
    ClientClosedError,
    CommitFailedError,
    DeserializationError,
    FencedInstanceIdError,
    ForkedProcessError,
    IllegalStateError,
    InvalidArgumentError,
    LogClosedError,
    NoOffsetForPartitionError,
    OffsetOutOfRangeError,
    PartitionNotFoundError,
    ReadOnlyLogError,
    TopicNotFoundError,
)
from ._groups import OffsetAndMetadata, read_committed, validate_group, validate_offsets
from ._membership import Membership
from ._records import Record, TopicPartition
from .serde import as_deserializer

if TYPE_CHECKING:
    from ._log import Log

__all__ = ["Consumer", "RebalanceListener"]

OffsetReset = Literal["earliest", "latest", "error"]
_RESETS: Final = ("earliest", "latest", "error")
_client_ids = itertools.count(1)


def _check_ms(name: str, value: object, low: int, high: int = 2**31 - 1) -> int:
    if type(value) is not int or not low <= value <= high:
        raise InvalidArgumentError(
            f"{name} must be an integer between {low} and {high} (milliseconds); got {value!r}"
        )
    return value


def _check_timeout(timeout: object, name: str = "timeout") -> float | None:
    if timeout is None:
        return None
    if (
        not isinstance(timeout, (int, float))
        or isinstance(timeout, bool)
        or not timeout >= 0  # also rejects NaN
    ):
        raise InvalidArgumentError(f"{name} must be None or seconds >= 0; got {timeout!r}")
    return None if timeout == float("inf") else float(timeout)


def _as_tp(value: object) -> TopicPartition:
    if type(value) is TopicPartition:
        return value
    if (
        isinstance(value, tuple)
        and len(value) == 2
        and isinstance(value[0], str)
        and type(value[1]) is int
    ):
        return TopicPartition(value[0], value[1])
    raise InvalidArgumentError(
        f"expected an eventlog.TopicPartition(topic, partition); got {value!r}"
    )


class Consumer(GroupCoordination):
    """Reads records from topics, alone or as a member of a consumer group.

    Create one with :meth:`eventlog.Log.consumer`. Like Kafka's consumer, one consumer is
    used by one thread at a time (``close()`` may come from another thread). Use it as a
    context manager, or call :meth:`close`.

    Args:
        log: the log to read.
        *topics: topics to subscribe to (or use ``pattern``, or :meth:`assign` later).
        pattern: a regular expression (str or compiled): subscribe to every matching
            topic, including topics created later.
        group: the consumer group. Members of one group split the partitions of the
            subscribed topics among themselves and commit their positions in the log.
            Without a group the consumer reads every partition and keeps its position in
            memory only.
        group_instance_id: static membership (Kafka's ``group.instance.id``): a restart
            with the same id within ``session_timeout_ms`` takes over its partitions
            without a rebalance.
        key_deserializer, value_deserializer: ``eventlog.serde.json``/``str``/``bytes``,
            or any callable ``bytes -> object``. None keys and values stay None.
        auto_offset_reset: where to start when there is no committed offset, or when the
            position is outside the stored range (after retention, or a seek past the end):
            ``"latest"`` (Kafka's default), ``"earliest"`` or ``"error"``.
        enable_auto_commit: commit positions every ``auto_commit_interval_ms`` (inside
            ``poll()``), before partitions are revoked and on ``close()``.
        max_poll_records: the default ``max_records`` of :meth:`poll`.
        partition_assignment_strategy: ``"cooperative-sticky"`` (default), ``"sticky"``,
            ``"range"`` or ``"roundrobin"``. Every member of a group must use the same.
        session_timeout_ms: a member that sends no heartbeat for this long is removed and
            its partitions reassigned (a member whose process ended is removed sooner,
            at the next heartbeat of another member).
        heartbeat_interval_ms: how often the background thread renews the lease (default:
            a third of the session timeout, at most 1 s).
        max_poll_interval_ms: a member that does not call ``poll()`` for this long leaves
            the group, so that a stuck consumer does not hold partitions forever.
        listener: a :class:`RebalanceListener` (or any object with its methods).
        client_id: a name for this consumer (appears in member ids and group listings).
        idle_timeout: iteration (``for record in consumer``) ends after this many seconds
            without records; None (default) iterates forever.

    Raises:
        InvalidArgumentError: a bad option. TopicNotFoundError: an unknown topic.
    """

    def __init__(
        self,
        log: Log,
        *topics: str,
        pattern: str | re.Pattern[str] | None = None,
        group: str | None = None,
        group_instance_id: str | None = None,
        key_deserializer: Any = None,
        value_deserializer: Any = None,
        auto_offset_reset: OffsetReset = "latest",
        enable_auto_commit: bool = True,
        auto_commit_interval_ms: int = 5000,
        max_poll_records: int = 500,
        partition_assignment_strategy: str = "cooperative-sticky",
        session_timeout_ms: int = 10_000,
        heartbeat_interval_ms: int | None = None,
        max_poll_interval_ms: int = 300_000,
        listener: RebalanceListener | None = None,
        client_id: str | None = None,
        idle_timeout: float | None = None,
    ) -> None:
        log._check()
        if auto_offset_reset not in _RESETS:
            raise InvalidArgumentError(
                f"auto_offset_reset must be one of {', '.join(map(repr, _RESETS))}; "
                f"got {auto_offset_reset!r}"
            )
        if not isinstance(enable_auto_commit, bool):
            raise InvalidArgumentError("enable_auto_commit must be True or False")
        _check_ms("auto_commit_interval_ms", auto_commit_interval_ms, 0)
        if type(max_poll_records) is not int or not 1 <= max_poll_records <= 1_000_000:
            raise InvalidArgumentError(
                f"max_poll_records must be an integer between 1 and 1000000; got "
                f"{max_poll_records!r}"
            )
        protocol = validate_protocol(partition_assignment_strategy)
        _check_ms("session_timeout_ms", session_timeout_ms, 1)
        if heartbeat_interval_ms is None:
            heartbeat_interval_ms = max(1, min(1000, session_timeout_ms // 3))
        _check_ms("heartbeat_interval_ms", heartbeat_interval_ms, 1)
        if heartbeat_interval_ms >= session_timeout_ms:
            raise InvalidArgumentError(
                f"heartbeat_interval_ms ({heartbeat_interval_ms}) must be lower than "
                f"session_timeout_ms ({session_timeout_ms}); a third of it is usual"
            )
        _check_ms("max_poll_interval_ms", max_poll_interval_ms, 1)
        if client_id is None:
            client_id = f"consumer-{next(_client_ids)}"
        elif type(client_id) is not str or not client_id or len(client_id) > 249:
            raise InvalidArgumentError(
                f"client_id must be a non-empty str of up to 249 characters; got {client_id!r}"
            )
        if group is not None:
            validate_group(group)
        if group_instance_id is not None:
            if group is None:
                raise InvalidArgumentError("group_instance_id needs a group")
            if type(group_instance_id) is not str or not group_instance_id:
                raise InvalidArgumentError(
                    f"group_instance_id must be a non-empty str; got {group_instance_id!r}"
                )
        self._log = log
        self._storage = log._storage
        self._group = group
        self._key_de = as_deserializer(key_deserializer, "key_deserializer")
        self._value_de = as_deserializer(value_deserializer, "value_deserializer")
        self._reset: OffsetReset = auto_offset_reset
        self._auto_commit = enable_auto_commit and group is not None
        self._auto_commit_s = auto_commit_interval_ms / 1000
        self._max_poll_records = max_poll_records
        self._protocol = protocol
        self._eager = protocol != "cooperative-sticky"
        self._listener = listener
        self._client_id = client_id
        self._idle_timeout = _check_timeout(idle_timeout, "idle_timeout")
        self._lock = threading.RLock()
        self._closed = False
        self._closing = False
        self._mode: Literal["subscribe", "assign"] | None = None
        self._topics: frozenset[str] = frozenset()
        self._pattern: re.Pattern[str] | None = None
        self._resolved: tuple[str, ...] = ()  # topics the subscription currently covers
        self._schema: bytes | None = None  # the catalog version the subscription was resolved at
        self._assigned: list[TopicPartition] = []
        self._positions: dict[TopicPartition, int] = {}
        self._committed: dict[TopicPartition, int] = {}  # what we last committed
        self._paused: set[TopicPartition] = set()
        self._rr = 0
        self._pending_error: Exception | None = None
        self._last_auto_commit = time.monotonic()
        self._announced_generation = -1
        self._iter_buffer: list[Record] = []
        self._snapshot = -1  # the transaction id the last fetch read
        self._membership: Membership | None = None
        self._topic_ids: dict[TopicPartition, int] = {}
        self._fenced: FencedInstanceIdError | None = None
        if group is not None:
            self._membership = Membership(
                log,
                group,
                instance_id=group_instance_id,
                client_id=client_id,
                protocol=protocol,
                session_ms=session_timeout_ms,
                heartbeat_ms=heartbeat_interval_ms,
                max_poll_interval_ms=max_poll_interval_ms,
            )
            self._topic_ids = self._membership.topic_ids
        if listener is not None and not all(
            callable(getattr(listener, name, None))
            for name in ("on_partitions_revoked", "on_partitions_assigned", "on_partitions_lost")
        ):
            raise InvalidArgumentError(
                "listener must be a RebalanceListener (or have its three methods)"
            )
        given: tuple[object, ...] = topics  # the annotation is a promise callers may break
        if len(given) == 1 and isinstance(given[0], (list, tuple, set, frozenset)):
            topics = tuple(given[0])  # log.consumer(["a", "b"]), the Kafka habit
        if topics or pattern is not None:
            self.subscribe(topics, pattern=pattern)
        _tracking.opened(
            self,
            f"Consumer(topics={sorted(self._topics)!r}, group={self._group!r})"
            if self._mode is not None
            else f"Consumer(group={self._group!r})",
        )

    # ------------------------------------------------------------------ state

    def _check(self) -> None:
        if self._closed:
            raise ClientClosedError("this consumer is closed")
        self._log._check()

    @property
    def group(self) -> str | None:
        """The consumer group, or None."""
        return self._group

    @property
    def member_id(self) -> str | None:
        """This consumer's member id in its group (None outside a group or before the
        first poll)."""
        return None if self._membership is None else self._membership.member_id

    @property
    def generation(self) -> int:
        """The group generation this consumer last synced with (-1 before)."""
        return -1 if self._membership is None else self._membership.generation

    @property
    def closed(self) -> bool:
        return self._closed

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"{len(self._assigned)} partitions"
        return f"<eventlog.Consumer group={self._group!r} {state}>"

    def __enter__(self) -> Consumer:
        self._check()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ subscriptions

    def subscribe(
        self,
        topics: Iterable[str] = (),
        *,
        pattern: str | re.Pattern[str] | None = None,
        listener: RebalanceListener | None = None,
    ) -> None:
        """Subscribe to ``topics`` and/or every topic matching ``pattern`` (replacing any
        previous subscription). With a group, the group's members split the partitions.

        Raises:
            IllegalStateError: the consumer uses :meth:`assign`.
            TopicNotFoundError: a named topic does not exist (use ``pattern`` to follow
                topics created later).
            InvalidArgumentError: bad topics or pattern.
        """
        with self._lock:
            self._check()
            if self._mode == "assign":
                raise IllegalStateError(
                    "this consumer uses assign(); call unsubscribe() before subscribe()"
                )
            if isinstance(topics, str):
                topics = [topics]
            if not isinstance(topics, Iterable):
                raise InvalidArgumentError(
                    f"topics must be a list of topic names; got {type(topics).__name__}"
                )
            topics = list(topics)
            for name in topics:
                if type(name) is not str:
                    raise InvalidArgumentError(f"topic names must be str; got {name!r}")
            names = frozenset(topics)
            for name in names:
                if type(name) is not str:
                    raise InvalidArgumentError(f"topic names must be str; got {name!r}")
            compiled: re.Pattern[str] | None = None
            if pattern is not None:
                if isinstance(pattern, re.Pattern):
                    compiled = pattern
                elif isinstance(pattern, str):
                    try:
                        compiled = re.compile(pattern)
                    except re.error as exc:
                        raise InvalidArgumentError(
                            f"pattern is not a valid regular expression: {exc}"
                        ) from None
                else:
                    raise InvalidArgumentError(
                        f"pattern must be a str or re.Pattern; got {type(pattern).__name__}"
                    )
            if not names and compiled is None:
                raise InvalidArgumentError("subscribe to at least one topic or a pattern")
            existing = set(self._log.list_topics())
            missing = sorted(names - existing)
            if missing:
                raise TopicNotFoundError(
                    f"topic {missing[0]!r} does not exist; create it first, or subscribe "
                    f"with pattern= to pick up topics created later",
                    topic=missing[0],
                )
            if listener is not None:
                self._listener = listener
            self._mode = "subscribe"
            self._topics = names
            self._pattern = compiled
            self._schema = None  # resolve at the next poll
            self._refresh_subscription()

    def subscription(self) -> set[str]:
        """The topics currently subscribed to (pattern matches included)."""
        return set(self._resolved) if self._mode == "subscribe" else set()

    def assign(self, partitions: Iterable[TopicPartition]) -> None:
        """Read exactly these partitions (no group membership; a group, if given, is
        only used for committed offsets). Replaces any previous assignment.

        Raises:
            IllegalStateError: the consumer has a subscription.
            TopicNotFoundError, PartitionNotFoundError: no such partition.
        """
        with self._lock:
            self._check()
            if self._mode == "subscribe":
                raise IllegalStateError(
                    "this consumer has a subscription; call unsubscribe() before assign()"
                )
            given: object = partitions
            if not isinstance(given, Iterable) or isinstance(given, str):
                raise InvalidArgumentError(
                    f"assign() takes a list of TopicPartition; got {type(partitions).__name__}"
                )
            tps = list(dict.fromkeys(_as_tp(tp) for tp in partitions))
            counts = {t: self._log.describe_topic(t).partition_count for t in {t for t, _ in tps}}
            for tp in tps:
                if not 0 <= tp.partition < counts[tp.topic]:
                    raise PartitionNotFoundError(
                        f"partition {tp.partition} does not exist; topic {tp.topic!r} has "
                        f"partitions 0..{counts[tp.topic] - 1}",
                        topic=tp.topic,
                        partition=tp.partition,
                    )
            self._mode = "assign" if tps else None
            self._set_assignment(tps)

    def unsubscribe(self) -> None:
        """Drop the subscription or assignment (leaving the group, if a member)."""
        with self._lock:
            self._check()
            self._leave_group()
            self._mode = None
            self._topics = frozenset()
            self._pattern = None
            self._resolved = ()
            self._set_assignment([])

    def assignment(self) -> set[TopicPartition]:
        """The partitions this consumer currently reads."""
        return set(self._assigned)

    def _refresh_subscription(self) -> None:
        """Re-resolve the subscription against the current topics (pattern matches,
        deleted topics, added partitions)."""

        def read(txn: Any) -> tuple[bytes, dict[str, int]]:
            schema = bytes(txn.get(b"schema", db=self._log._dbs[b"meta"]) or b"")
            counts: dict[str, int] = {}
            cursor = txn.cursor(db=self._log._dbs[b"topics"])
            for raw in cursor.iternext(values=False):
                name = bytes(raw).decode()
                if name in self._topics or (
                    self._pattern is not None and self._pattern.fullmatch(name)
                ):
                    counts[name] = self._log._catalog.get(txn, name).partitions
            return schema, counts

        schema, counts = self._storage.read(read, "resolving a subscription")
        self._schema = schema
        resolved = tuple(sorted(counts))
        changed = resolved != self._resolved
        self._resolved = resolved
        membership = self._membership
        if membership is None:
            self._set_assignment([TopicPartition(t, p) for t in resolved for p in range(counts[t])])
        elif membership.member_id is not None and (changed or membership.topics != resolved):
            membership.heartbeat(resolved)
        elif membership.member_id is not None:
            membership.heartbeat()  # partition counts may have changed: let the group settle

    # ------------------------------------------------------------------ polling

    def poll(self, timeout: float = 0.0, max_records: int | None = None) -> list[Record]:
        """Return the next records from the assigned partitions (possibly none).

        Waits up to ``timeout`` seconds for records when there are none. Records of
        several partitions are interleaved fairly: no busy partition starves the others.
        Rebalance callbacks run inside this call. With ``enable_auto_commit``, positions
        returned by earlier polls are committed here every ``auto_commit_interval_ms``.

        Raises:
            IllegalStateError: no subscription or assignment.
            DeserializationError: a record could not be deserialized (records before it
                were returned by the previous poll; seek past it to skip it).
            OffsetOutOfRangeError, NoOffsetForPartitionError: ``auto_offset_reset="error"``.
            ClientClosedError: the consumer is closed.
        """
        with self._lock:
            self._check()
            wait = _check_timeout(timeout)
            if max_records is None:
                max_records = self._max_poll_records
            elif type(max_records) is not int or not 1 <= max_records <= 1_000_000:
                raise InvalidArgumentError(
                    f"max_records must be an integer between 1 and 1000000; got {max_records!r}"
                )
            if self._mode is None:
                raise IllegalStateError(
                    "this consumer has no subscription and no assignment; call subscribe() "
                    "or assign() first"
                )
            if self._iter_buffer and not self._still_member():
                self._iter_buffer = []  # positions are at the first record not handed out
            if self._iter_buffer:
                # Records iteration fetched but has not handed out come before anything
                # else (including a deserialization error found after them).
                return self._take_buffered(max_records)
            self._raise_pending()
            membership = self._membership
            if membership is not None:
                membership.last_poll = time.monotonic()
                if (
                    is_manual()
                    and membership.member_id is not None
                    and not membership.lost
                    and now_ms() - membership.renewed_ms >= membership.heartbeat_ms
                ):
                    # Under a manual clock the heartbeat thread's real-time interval says
                    # nothing about clock time: a polling member heartbeats in clock time.
                    membership.heartbeat(alive=True)
            if (
                self._auto_commit
                and time.monotonic() - self._last_auto_commit >= self._auto_commit_s
            ):
                self._commit_quietly()
            deadline = None if wait is None else time.monotonic() + wait
            storage = self._storage
            while True:
                seen = storage.commits
                if self._membership is not None:
                    # Waiting inside poll() is polling: not a reason to be thrown out.
                    self._membership.last_poll = time.monotonic()
                if self._mode == "subscribe" and self._membership is not None:
                    self._coordinate()
                records = self._fetch(max_records)
                if records and not self._still_member():
                    # Removed while fetching (a slow listener, a stall): these partitions
                    # may be someone else's now. The next round rejoins (on_partitions_lost).
                    self._pending_error = None
                    continue
                if records:
                    return records
                self._raise_pending()
                remaining = None if deadline is None else deadline - time.monotonic()
                if (remaining is not None and remaining <= 0) or self._closing:
                    return []
                # Wait for a commit newer than the snapshot the fetch read.
                self._wait_for_change(seen, self._snapshot, remaining)
                self._check()

    def _take_buffered(self, max_records: int) -> list[Record]:
        """Records fetched for iteration but not handed out yet come first."""
        buffer = self._iter_buffer
        taken = buffer[-max_records:]
        del buffer[-max_records:]
        taken.reverse()
        positions = self._positions
        for record in taken:
            positions[TopicPartition(record.topic, record.partition)] = record.offset + 1
        return taken

    def _raise_pending(self) -> None:
        error = self._pending_error
        if error is not None:
            self._pending_error = None
            raise error

    def _wait_for_change(self, seen: int, txid: int, remaining: float | None) -> None:
        """Sleep until something is committed (any process), ``remaining`` passes, or a
        coordination deadline comes (rebalances are driven from poll)."""
        storage = self._storage
        limit = 0.1 if remaining is None else min(0.1, remaining)
        end = time.monotonic() + limit
        while True:
            # In-process commits wake the waiter at once; other processes' commits show
            # as a new transaction id, checked every millisecond (a cheap read of LMDB's
            # lock file).
            storage.wait_for_commit(seen, min(0.001, end - time.monotonic()))
            if storage.commits != seen or self._closing or storage.closed:
                return
            if storage.last_txnid() != txid or time.monotonic() >= end:
                return
            membership = self._membership
            if membership is not None and membership.dirty:
                return

    def _fetch(self, max_records: int) -> list[Record]:
        log = self._log
        catalog = log._catalog
        reader = log._reader
        membership = self._membership
        members_db = log._dbs.get(b"members")
        meta_db = log._dbs[b"meta"]
        groups_db = log._dbs.get(b"groups")
        parts = [tp for tp in self._assigned if tp not in self._paused]
        if parts:
            start = self._rr % len(parts)
            self._rr += 1
            parts = parts[start:] + parts[:start]
        positions = self._positions
        topic_ids = self._topic_ids
        committed_cache = self._committed
        group = self._group
        reset = self._reset

        def run(
            txn: Any,
        ) -> tuple[bytes, list[tuple[TopicPartition, list[Record]]], Exception | None]:
            self._snapshot = int(txn.id())
            schema = bytes(txn.get(b"schema", db=meta_db) or b"")
            if membership is not None and members_db is not None and group is not None:
                raw = txn.get(group.encode(), db=members_db)
                membership.observe_raw(None if raw is None else bytes(raw))
            ready: list[tuple[TopicPartition, Any, int, int]] = []
            for tp in parts:
                try:
                    info = catalog.get(txn, tp.topic)
                except TopicNotFoundError:
                    continue  # deleted: the subscription refresh drops it
                if tp.partition >= info.partitions:
                    continue
                state = reader.state(txn, info, tp.partition)
                pos = positions[tp]
                if topic_ids.get(tp, info.topic_id) != info.topic_id:
                    # The topic was deleted and re-created: start it afresh.
                    pos = _UNSET
                    committed_cache.pop(tp, None)
                topic_ids[tp] = info.topic_id
                if pos == _UNSET and groups_db is not None and group is not None:
                    found = read_committed(txn, groups_db, group, info.topic_id, tp.partition)
                    if found is not None:
                        pos = found[0]
                if pos == _UNSET:
                    if reset == "error":
                        return (
                            schema,
                            [],
                            NoOffsetForPartitionError(
                                f"no committed offset for {tp.topic}[{tp.partition}] and "
                                f"auto_offset_reset='error'; seek() to choose a position",
                                topic=tp.topic,
                                partition=tp.partition,
                            ),
                        )
                    pos = _EARLIEST if reset == "earliest" else _LATEST
                elif pos >= 0 and not state.log_start <= pos <= state.next_offset:
                    if reset == "error":
                        return (
                            schema,
                            [],
                            OffsetOutOfRangeError(
                                f"position {pos} of {tp.topic}[{tp.partition}] is outside the "
                                f"stored offsets {state.log_start}..{state.next_offset} and "
                                f"auto_offset_reset='error'; seek() to a valid offset",
                                topic=tp.topic,
                                partition=tp.partition,
                                offset=pos,
                            ),
                        )
                    pos = _EARLIEST if reset == "earliest" else _LATEST
                if pos == _EARLIEST:
                    pos = state.log_start
                elif pos == _LATEST:
                    pos = state.next_offset
                positions[tp] = pos
                if pos < state.next_offset:
                    ready.append((tp, info, pos, state.next_offset))
            chunks: list[tuple[TopicPartition, list[Record]]] = []
            budget = max_records
            # Fair shares: partitions with little to give take it all; the rest split
            # what is left evenly (rotating the starting partition between polls).
            ready.sort(key=lambda r: r[3] - r[2])
            for i, (tp, info, pos, end) in enumerate(ready):
                if budget <= 0:
                    break
                share = max(1, budget // (len(ready) - i))
                got: list[Record] = reader.collect(  # type: ignore[assignment]
                    txn, info, tp.partition, pos, end, share, None, True
                )
                if got:
                    chunks.append((tp, got))
                    budget -= len(got)
                else:
                    # Compaction removed every record from the position to the end: move
                    # past the gap, as a Kafka consumer moves past a compacted batch.
                    positions[tp] = end
            return schema, chunks, None

        schema, chunks, error = self._storage.read(run, "polling")
        if error is not None:
            raise error
        if self._schema is not None and schema != self._schema and self._mode == "subscribe":
            self._refresh_subscription()
        return self._deliver(chunks)

    def _deliver(self, chunks: list[tuple[TopicPartition, list[Record]]]) -> list[Record]:
        key_de = self._key_de
        value_de = self._value_de
        positions = self._positions
        out: list[Record] = []
        for tp, records in chunks:
            if key_de is None and value_de is None:
                out.extend(records)
                positions[tp] = records[-1].offset + 1
                continue
            for record in records:
                try:
                    key = record.key
                    value = record.value
                    if key is not None and key_de is not None:
                        side = "key"
                        key = key_de(key)
                    if value is not None and value_de is not None:
                        side = "value"
                        value = value_de(value)
                except Exception as exc:
                    positions[tp] = record.offset
                    self._pending_error = DeserializationError(
                        f"could not deserialize the {side} of the record at "
                        f"{tp.topic}[{tp.partition}] offset {record.offset}: "
                        f"{type(exc).__name__}: {exc}; seek(TopicPartition({tp.topic!r}, "
                        f"{tp.partition}), {record.offset + 1}) skips it",
                        topic=tp.topic,
                        partition=tp.partition,
                        offset=record.offset,
                        topic_partition=tp,
                        record=record,
                    )
                    self._pending_error.__cause__ = exc
                    return out
                out.append(record._replace(key=key, value=value))
                positions[tp] = record.offset + 1
        return out

    # ------------------------------------------------------------------ positions

    def _require_assigned(self, tp: TopicPartition) -> TopicPartition:
        tp = _as_tp(tp)
        if tp not in self._positions:
            raise IllegalStateError(
                f"{tp.topic}[{tp.partition}] is not assigned to this consumer; it can only "
                f"seek, pause or ask positions of its assigned partitions",
                topic=tp.topic,
                partition=tp.partition,
            )
        return tp

    def _targets(self, partitions: Iterable[TopicPartition]) -> list[TopicPartition]:
        given = list(partitions)
        return list(self._assigned) if not given else [self._require_assigned(tp) for tp in given]

    def seek(self, partition: TopicPartition, offset: int) -> None:
        """Read ``partition`` from ``offset`` at the next poll. An offset outside the
        stored range is handled by ``auto_offset_reset`` then."""
        with self._lock:
            self._check()
            tp = self._require_assigned(partition)
            if type(offset) is not int or not 0 <= offset <= MAX_OFFSET:
                raise InvalidArgumentError(
                    f"offset must be an integer between 0 and 2**63-1; got {offset!r}",
                    topic=tp.topic,
                    partition=tp.partition,
                )
            self._positions[tp] = offset
            self._iter_buffer = [r for r in self._iter_buffer if (r.topic, r.partition) != tp]

    def seek_to_beginning(self, *partitions: TopicPartition) -> None:
        """Read the given partitions (default: all assigned) from their log start."""
        with self._lock:
            self._check()
            for tp in self._targets(partitions):
                self._positions[tp] = _EARLIEST
            self._iter_buffer.clear()

    def seek_to_end(self, *partitions: TopicPartition) -> None:
        """Read only records appended from now on in the given partitions (default: all)."""
        with self._lock:
            self._check()
            for tp in self._targets(partitions):
                self._positions[tp] = _LATEST
            self._iter_buffer.clear()

    def seek_to_timestamp(self, timestamp: int, *partitions: TopicPartition) -> None:
        """Read from the first record with a timestamp >= ``timestamp`` (ms since the
        epoch) in the given partitions (default: all); partitions with no such record
        go to their end."""
        with self._lock:
            self._check()
            if type(timestamp) is not int or not 0 <= timestamp <= MAX_TIMESTAMP:
                raise InvalidArgumentError(
                    f"timestamp must be an integer >= 0 (ms since the epoch); got {timestamp!r}"
                )
            targets = self._targets(partitions)
            for topic in sorted({tp.topic for tp in targets}):
                found = self._log.offsets_for_times(topic, timestamp)
                for tp in targets:
                    if tp.topic == topic:
                        offset = found.get(tp.partition)
                        self._positions[tp] = _LATEST if offset is None else offset
            self._iter_buffer.clear()

    def position(self, partition: TopicPartition) -> int:
        """The offset of the next record to return for ``partition`` (resolving a
        pending seek or reset)."""
        with self._lock:
            self._check()
            tp = self._require_assigned(partition)
            if self._positions[tp] < 0:
                self._resolve([tp])
            return self._positions[tp]

    def _resolve(self, tps: list[TopicPartition]) -> None:
        pending = [tp for tp in tps if self._positions[tp] < 0]
        if not pending:
            return
        begin: dict[str, dict[int, int]] = {}
        end: dict[str, dict[int, int]] = {}
        committed = self._read_committed(pending) if self._group is not None else {}
        for tp in pending:
            pos = self._positions[tp]
            if pos == _UNSET:
                found = committed.get(tp)
                if found is not None:
                    self._positions[tp] = found.offset
                    continue
                if self._reset == "error":
                    raise NoOffsetForPartitionError(
                        f"no committed offset for {tp.topic}[{tp.partition}] and "
                        f"auto_offset_reset='error'; seek() to choose a position",
                        topic=tp.topic,
                        partition=tp.partition,
                    )
                pos = _EARLIEST if self._reset == "earliest" else _LATEST
            if pos == _EARLIEST:
                if tp.topic not in begin:
                    begin[tp.topic] = self._log.beginning_offsets(tp.topic)
                self._positions[tp] = begin[tp.topic][tp.partition]
            else:
                if tp.topic not in end:
                    end[tp.topic] = self._log.end_offsets(tp.topic)
                self._positions[tp] = end[tp.topic][tp.partition]

    def _read_committed(
        self, tps: Iterable[TopicPartition]
    ) -> dict[TopicPartition, OffsetAndMetadata]:
        group = self._group
        assert group is not None
        db = self._log._dbs.get(b"groups")
        wanted = list(tps)

        def read(txn: Any) -> dict[TopicPartition, OffsetAndMetadata]:
            out: dict[TopicPartition, OffsetAndMetadata] = {}
            if db is None:
                return out
            for tp in wanted:
                info = self._log._catalog.get(txn, tp.topic)
                if not 0 <= tp.partition < info.partitions:
                    raise PartitionNotFoundError(
                        f"partition {tp.partition} does not exist; topic {tp.topic!r} has "
                        f"partitions 0..{info.partitions - 1}",
                        topic=tp.topic,
                        partition=tp.partition,
                    )
                found = read_committed(txn, db, group, info.topic_id, tp.partition)
                if found is not None:
                    out[tp] = OffsetAndMetadata(found[0], found[2])
            return out

        return self._storage.read(read, f"reading committed offsets of group {group!r}")

    def committed(self, partition: TopicPartition) -> int | None:
        """The group's committed offset for ``partition`` (the next offset to read), or
        None.

        Raises:
            IllegalStateError: the consumer has no group.
        """
        with self._lock:
            self._check()
            self._require_group("committed")
            tp = _as_tp(partition)
            found = self._read_committed([tp]).get(tp)
            return None if found is None else found.offset

    def _require_group(self, what: str) -> str:
        if self._group is None:
            raise IllegalStateError(
                f"{what}() needs a consumer group: create the consumer with group=..."
            )
        return self._group

    # ------------------------------------------------------------------ commits

    def commit(
        self, offsets: Mapping[TopicPartition, int | OffsetAndMetadata] | None = None
    ) -> None:
        """Commit positions for the group: by default the position of every assigned
        partition (everything returned by poll so far counts as processed); or the given
        ``{TopicPartition: offset or OffsetAndMetadata}`` (offset = the next to read).

        Raises:
            IllegalStateError: the consumer has no group.
            CommitFailedError: this consumer no longer owns a partition (the group
                rebalanced); its new owner continues from the last committed offset.
            TopicNotFoundError, PartitionNotFoundError, InvalidArgumentError.
        """
        with self._lock:
            self._check()
            self._require_group("commit")
            if offsets is None:
                wanted = self._positions_to_commit(self._assigned)
            else:
                wanted = validate_offsets(offsets)  # unknown partitions: refused in the commit
            if wanted:
                self._commit(wanted, strict=offsets is not None)

    def _commit(
        self, offsets: dict[TopicPartition, tuple[int, str]], *, strict: bool = False
    ) -> None:
        membership = self._membership
        assert membership is not None
        if self._mode == "subscribe":
            if membership.member_id is None:
                raise CommitFailedError(
                    f"this consumer is not a member of group {self._group!r} now, so it owns "
                    f"no partitions to commit: it joins at its first poll, and rejoins at "
                    f"the next poll after it was removed (session timeout, or "
                    f"max_poll_interval_ms exceeded)",
                    group=self._group,
                )
            membership.commit(offsets, strict=strict)
        else:
            saved, membership.member_id = membership.member_id, None
            try:
                membership.commit(offsets, strict=strict)  # as a standalone consumer
            finally:
                membership.member_id = saved
        for tp, (offset, _m) in offsets.items():
            self._committed[tp] = offset
        self._last_auto_commit = time.monotonic()

    def _commit_quietly(self) -> None:
        """Auto-commit: a refused commit is not an error for the application (the new
        owner re-reads from the last committed offset); the rebalance follows."""
        self._last_auto_commit = time.monotonic()
        wanted = self._positions_to_commit(self._assigned)
        if not wanted:
            return
        with contextlib.suppress(CommitFailedError):
            self._commit(wanted)

    # ------------------------------------------------------------------ flow control

    def pause(self, *partitions: TopicPartition) -> None:
        """Stop returning records from these partitions until :meth:`resume`."""
        with self._lock:
            self._check()
            for tp in partitions:
                self._paused.add(self._require_assigned(tp))
            paused = self._paused
            self._iter_buffer = [
                r for r in self._iter_buffer if (r.topic, r.partition) not in paused
            ]

    def resume(self, *partitions: TopicPartition) -> None:
        """Return records from these paused partitions again."""
        with self._lock:
            self._check()
            for tp in partitions:
                self._paused.discard(self._require_assigned(tp))

    def paused(self) -> set[TopicPartition]:
        """The paused partitions."""
        return set(self._paused)

    def lag(self) -> dict[TopicPartition, int]:
        """``{partition: records between the position and the end}`` for every assigned
        partition (the consumer lag)."""
        with self._lock:
            self._check()
            self._resolve(list(self._assigned))
            ends: dict[str, dict[int, int]] = {}
            out: dict[TopicPartition, int] = {}
            for tp in self._assigned:
                if tp.topic not in ends:
                    ends[tp.topic] = self._log.end_offsets(tp.topic)
                end = ends[tp.topic].get(tp.partition, 0)
                out[tp] = max(0, end - self._positions[tp])
            return out

    # ------------------------------------------------------------------ iteration

    def __iter__(self) -> Iterator[Record]:
        return self

    def __next__(self) -> Record:
        """The next record, waiting for one; ends after ``idle_timeout`` seconds without
        records (never, by default).

        Positions advance record by record as they are handed out, so a commit between
        two records covers exactly the records already returned.
        """
        self._check()
        if self._iter_buffer and not self._still_member():
            self._iter_buffer = []  # positions are at the first record not handed out
        buffer = self._iter_buffer
        if not buffer:
            idle = self._idle_timeout
            start = time.monotonic()
            while True:
                if self._closed or self._closing:
                    raise StopIteration
                step = 1.0 if idle is None else max(0.0, min(1.0, start + idle - time.monotonic()))
                records = self.poll(step)
                if records:
                    break
                if idle is not None and time.monotonic() - start >= idle:
                    raise StopIteration
            # poll() moved the positions past every record; move them back to the first
            # record not handed out yet.
            positions = self._positions
            for record in reversed(records):
                positions[TopicPartition(record.topic, record.partition)] = record.offset
            records.reverse()
            self._iter_buffer = buffer = records
        record = buffer.pop()
        self._positions[TopicPartition(record.topic, record.partition)] = record.offset + 1
        return record

    # ------------------------------------------------------------------ closing

    def close(self, *, autocommit: bool = True) -> None:
        """Leave the group (committing positions first when auto-commit is on and
        ``autocommit`` is true) and release resources. Calling it again does nothing.

        A static member (``group_instance_id``) keeps its place in the group until its
        session times out, so that a restart does not cause a rebalance.
        """
        self._closing = True
        with self._lock:
            if self._closed:
                return
            try:
                if not autocommit:
                    self._auto_commit = False
                if self._membership is not None:
                    if self._mode == "subscribe":
                        self._leave_group()
                    elif self._auto_commit and self._mode == "assign":
                        self._commit_quietly()
            except (LogClosedError, ReadOnlyLogError, ForkedProcessError):
                # The log went first (our lease simply runs out), cannot commit, or
                # belongs to the parent process (whose membership this is, not ours).
                pass
            finally:
                if self._membership is not None:
                    self._membership.stop_heartbeats()
                self._closed = True
                _tracking.closed(self)
                self._iter_buffer = []
