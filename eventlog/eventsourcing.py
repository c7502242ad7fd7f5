"""Event sourcing on an eventlog log: aggregates, snapshots and projections.

An *aggregate* (an account, an order) keeps its state as the sequence of events that
changed it. Here each aggregate is one key of a topic that keeps a key index
(``key_index=True``): its events are that key's records, read back in order with
``log.read_key`` without scanning the topic, and saved with ``expected_versions`` so that
two writers who loaded the same version cannot both append (the second gets
:class:`eventlog.ConcurrencyError` and nothing of its save is written).

- :class:`Aggregate`: the base class. A subclass implements :meth:`Aggregate.apply` (change
  the state from one event, a JSON object with a ``"type"`` field) and calls
  :meth:`Aggregate.record` from its command methods.
- :class:`AggregateStore`: loads an aggregate by replaying its key's events (from the
  newest snapshot when a compacted snapshot topic is configured) and saves its new events
  atomically with the expected version.
- :class:`ReadModel`, :class:`TableProjection`: a read model kept *in the log*, in a
  compacted topic, updated by a processor in the same transaction that commits the input
  positions (exactly once, see the notes there).
- :func:`run_projection`: a read model kept *elsewhere* (a database): each batch is handed
  to the application with the positions to store in the same transaction of its store.

Events are stored as compact JSON (UTF-8) objects: ``{"type": "deposited", "amount": 5}``.
"""

from __future__ import annotations

import abc
import contextlib
import json
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from itertools import islice
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from ._consumer import RebalanceListener
from ._errors import (
    CommitFailedError,
    ConcurrencyError,
    DeserializationError,
    EventLogError,
    IllegalStateError,
    InvalidArgumentError,
    InvalidRecordError,
)
from ._records import NewRecord, Record, RecordMetadata, TopicPartition
from .serde import json as _json_serde

if TYPE_CHECKING:
    from ._consumer import Consumer
    from ._log import Log
    from ._processing import Processor
    from ._transaction import Transaction

__all__ = [
    "Aggregate",
    "AggregateId",
    "AggregateNotFoundError",
    "AggregateStore",
    "Event",
    "MissingEventsError",
    "ReadModel",
    "ReadModelWriter",
    "TableProjection",
    "decode_event",
    "run_projection",
]

Event = dict[str, Any]
"""An event: a JSON object whose ``"type"`` field names what happened."""

AggregateId = str | bytes
"""An aggregate's id: its key in the events topic (a str is stored as UTF-8)."""

A = TypeVar("A", bound="Aggregate")

_encode_json = _json_serde.serialize


class AggregateNotFoundError(EventLogError, KeyError):
    """:meth:`AggregateStore.load` found no event for that id."""


class MissingEventsError(EventLogError, LookupError):
    """An aggregate's stream has fewer events than its version counts: some were removed
    (retention on the events topic, ``delete_records``), or the snapshot is newer than the
    stream (the topic was deleted and created again). The state cannot be rebuilt."""


# ---------------------------------------------------------------------- encoding


def _key_of(aggregate_id: object) -> bytes:
    if type(aggregate_id) is bytes and aggregate_id:
        return aggregate_id
    if type(aggregate_id) is str and aggregate_id:
        return aggregate_id.encode()
    raise InvalidArgumentError(
        f"an aggregate id must be a non-empty str or bytes; got {aggregate_id!r}"
    )


def _encode(obj: object, what: str) -> bytes:
    try:
        return _encode_json(obj)
    except (TypeError, ValueError) as exc:
        raise InvalidRecordError(f"{what} is not JSON-serializable: {exc}") from exc


def _undecodable(record: Record, why: str) -> DeserializationError:
    return DeserializationError(
        f"topic {record.topic!r} partition {record.partition} offset {record.offset}: {why}",
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        topic_partition=TopicPartition(record.topic, record.partition),
        record=record,
    )


def decode_event(record: Record) -> Event:
    """The event a record holds: its value parsed as a JSON object with a str ``"type"``.

    Raises:
        DeserializationError: the value is None, not JSON, or not such an object.
    """
    if record.value is None:
        raise _undecodable(record, "a tombstone holds no event")
    try:
        event = json.loads(record.value)
    except ValueError as exc:
        raise _undecodable(record, f"the value is not JSON ({exc})") from exc
    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
        raise _undecodable(record, 'the value is not a JSON object with a "type" string')
    return event


# ---------------------------------------------------------------------- aggregates


class Aggregate(abc.ABC):
    """Base class of event-sourced aggregates.

    A subclass sets its initial state in ``__init__(self, id)`` (after calling
    ``super().__init__(id)``), implements :meth:`apply`, and records events from its
    command methods::

        class Account(Aggregate):
            def __init__(self, id):
                super().__init__(id)
                self.balance = 0

            def deposit(self, amount):
                self.record("deposited", amount=amount)

            def apply(self, event):
                if event["type"] == "deposited":
                    self.balance += event["amount"]

    The state only ever changes in :meth:`apply`, both when a command records a new event
    and when :class:`AggregateStore` replays stored ones, so the two cannot disagree.

    Attributes:
        id: the aggregate's id (a str or bytes, as given).
        version: how many events the state includes, saved or not (0: none yet).
    """

    def __init__(self, id: AggregateId) -> None:
        self._key = _key_of(id)
        self.id: AggregateId = id
        self.version: int = 0
        self._saved_version = 0
        self._pending: list[tuple[Event, bytes]] = []

    @property
    def key(self) -> bytes:
        """The id as the events topic's key (a str id encoded as UTF-8)."""
        return self._key

    @property
    def saved_version(self) -> int:
        """The version stored in the log when loaded or last saved: a save expects the
        stream to be at this version still."""
        return self._saved_version

    @property
    def pending_events(self) -> list[Event]:
        """The events recorded since the aggregate was loaded or saved, oldest first."""
        return [event for event, _encoded in self._pending]

    @abc.abstractmethod
    def apply(self, event: Event) -> None:
        """Change the state from one event (``event["type"]`` says which). Subclasses
        implement it (an Aggregate without it cannot be instantiated); it must not fail
        for an event that is already stored."""

    def record(self, event_type: str, **data: Any) -> Event:
        """Record a new event: apply it to the state and keep it for the next save.

        The event is ``{"type": event_type, **data}``, as it will be stored (its JSON
        form read back, so ``apply`` sees exactly what a later replay sees: tuples become
        lists, and so on). If ``apply`` raises, nothing is recorded.

        Returns:
            The event.

        Raises:
            InvalidArgumentError: ``event_type`` is not a non-empty str, or ``data`` has a
                ``type`` field.
            InvalidRecordError: ``data`` is not JSON-serializable.
        """
        if type(event_type) is not str or not event_type:
            raise InvalidArgumentError(f"event_type must be a non-empty str; got {event_type!r}")
        if "type" in data:
            raise InvalidArgumentError('"type" is the event type field: name the data otherwise')
        encoded = _encode({"type": event_type, **data}, f"event {event_type!r}")
        event: Event = json.loads(encoded)
        self.apply(event)
        self.version += 1
        self._pending.append((event, encoded))
        return event

    def snapshot_state(self) -> dict[str, Any]:
        """The state to store in a snapshot (JSON-serializable). By default every public
        attribute except ``id`` and ``version``; override it (with
        :meth:`restore_state`) when the state holds anything else."""
        return {
            name: value
            for name, value in vars(self).items()
            if not name.startswith("_") and name not in ("id", "version")
        }

    def restore_state(self, state: Mapping[str, Any]) -> None:
        """Set the state from a snapshot (what :meth:`snapshot_state` returned, read back
        from JSON). By default sets each field as an attribute."""
        for name, value in state.items():
            setattr(self, name, value)

    def __repr__(self) -> str:
        pending = f", {len(self._pending)} unsaved" if self._pending else ""
        return f"<{type(self).__name__} {self.id!r} version {self.version}{pending}>"


class AggregateStore(Generic[A]):
    """Loads and saves aggregates of one kind, one key of ``topic`` per aggregate.

    Args:
        log: an open log.
        topic: the events topic. It must keep a key index and every event:
            :meth:`create_topics` creates it with ``key_index=True`` and
            ``retention_ms=-1``.
        factory: makes an empty aggregate from an id (usually the aggregate class).
        snapshot_topic: a compacted topic for snapshots (the newest per aggregate is
            kept): ``{"version": N, "state": ...}``, keyed like the events. Loading starts
            from the snapshot and replays only the events after it.
        snapshot_every: write a snapshot, in the same transaction as the events, whenever
            a save takes an aggregate's version past a multiple of this (needs
            ``snapshot_topic``).

    Raises:
        InvalidArgumentError: a bad topic name type or ``snapshot_every``.
    """

    def __init__(
        self,
        log: Log,
        topic: str,
        factory: Callable[[AggregateId], A],
        *,
        snapshot_topic: str | None = None,
        snapshot_every: int | None = None,
    ) -> None:
        if type(topic) is not str:
            raise InvalidArgumentError(f"topic must be a str; got {type(topic).__name__}")
        if snapshot_topic is not None and type(snapshot_topic) is not str:
            raise InvalidArgumentError(
                f"snapshot_topic must be a str or None; got {type(snapshot_topic).__name__}"
            )
        if snapshot_every is not None:
            if type(snapshot_every) is not int or snapshot_every < 1:
                raise InvalidArgumentError(
                    f"snapshot_every must be an int >= 1 or None; got {snapshot_every!r}"
                )
            if snapshot_topic is None:
                raise InvalidArgumentError("snapshot_every needs a snapshot_topic")
        if not callable(factory):
            raise InvalidArgumentError("factory must be callable: factory(id) -> aggregate")
        self._log = log
        self._topic = topic
        self._factory = factory
        self._snapshot_topic = snapshot_topic
        self._snapshot_every = snapshot_every

    @property
    def topic(self) -> str:
        """The events topic."""
        return self._topic

    @property
    def snapshot_topic(self) -> str | None:
        """The snapshot topic, or None."""
        return self._snapshot_topic

    def create_topics(self, partitions: int = 1) -> None:
        """Create the events topic (``key_index=True``, ``retention_ms=-1``: events are
        kept for ever) and the snapshot topic (compacted), unless they exist.

        Raises:
            InvalidArgumentError: an existing events topic is compacted (compaction would
                remove events) or keeps no key index.
        """
        log = self._log
        log.create_topic(self._topic, partitions, key_index=True, retention_ms=-1, exist_ok=True)
        config = log.topic_config(self._topic)
        if "compact" in config.cleanup_policy or not config.key_index:
            raise InvalidArgumentError(
                f"events topic {self._topic!r} must keep every record and a key index "
                f"(key_index=True, cleanup_policy='delete'); it has cleanup.policy="
                f"{config.cleanup_policy}, key.index={config.key_index}",
                topic=self._topic,
            )
        if self._snapshot_topic is not None:
            log.create_topic(
                self._snapshot_topic, partitions, cleanup_policy="compact", exist_ok=True
            )

    def version(self, aggregate_id: AggregateId) -> int:
        """How many events the aggregate has in the log (0: it does not exist)."""
        return self._log.key_version(self._topic, _key_of(aggregate_id))

    def history(self, aggregate_id: AggregateId, *, from_version: int = 1) -> Iterator[Event]:
        """The aggregate's stored events, oldest first (from ``from_version``)."""
        for record in self._log.read_key(
            self._topic, _key_of(aggregate_id), from_version=from_version
        ):
            yield decode_event(record)

    def load(self, aggregate_id: AggregateId) -> A:
        """The aggregate as stored: the newest snapshot (if any) and the events after it,
        applied in order.

        Raises:
            AggregateNotFoundError: no event has that id.
            MissingEventsError: events the version counts are not stored any more.
            DeserializationError: a stored event or snapshot is not valid.
        """
        key = _key_of(aggregate_id)
        log = self._log
        aggregate = self._factory(aggregate_id)
        if not isinstance(aggregate, Aggregate):
            raise InvalidArgumentError(
                f"the factory returned {type(aggregate).__name__}, not an Aggregate"
            )
        if self._snapshot_topic is not None:
            snapshot = log.latest(self._snapshot_topic, key)
            if snapshot is not None:
                version, state = _decode_snapshot(snapshot)
                aggregate.restore_state(state)
                aggregate.version = version
        # The version first: the events read next include at least that many (a writer
        # may add more meanwhile; they are left for the next load).
        end = log.key_version(self._topic, key)
        start = aggregate.version
        if end == 0 and start == 0:
            raise AggregateNotFoundError(
                f"no aggregate {aggregate_id!r} in topic {self._topic!r}", topic=self._topic
            )
        records = log.read_key(self._topic, key, from_version=start + 1)
        for record in islice(records, max(end - start, 0)):
            aggregate.apply(decode_event(record))
            aggregate.version += 1
        if aggregate.version != end:
            raise MissingEventsError(
                f"aggregate {aggregate_id!r}: its version in topic {self._topic!r} is {end}, "
                f"but {aggregate.version - start} events after version {start} are stored; "
                f"events topics must keep every record (retention_ms=-1)",
                topic=self._topic,
            )
        aggregate._saved_version = end
        return aggregate

    def save(self, aggregate: A) -> list[RecordMetadata]:
        """Append the aggregate's pending events, all or none, if its stream is still at
        :attr:`Aggregate.saved_version` (and a snapshot in the same transaction when one is
        due). Afterwards the aggregate has no pending events.

        Returns:
            The metadata of the appended events ([] when there were none).

        Raises:
            ConcurrencyError: another writer saved events of this aggregate since it was
                loaded; nothing was written and the aggregate is unchanged (load it again,
                and decide again).
        """
        if not isinstance(aggregate, Aggregate):
            raise InvalidArgumentError(f"expected an Aggregate; got {type(aggregate).__name__}")
        if not aggregate._pending:
            return []
        key = aggregate.key
        records = [NewRecord(encoded, key=key) for _event, encoded in aggregate._pending]
        expected = {key: aggregate._saved_version}
        every = self._snapshot_every
        log = self._log
        if every is not None and aggregate.version // every > aggregate._saved_version // every:
            assert self._snapshot_topic is not None
            snapshot = _encode_snapshot(aggregate)
            tx = log.transaction()
            try:
                tx.append_batch(self._topic, records, expected_versions=expected)
                tx.append(self._snapshot_topic, snapshot, key=key)
                written = tx.commit()[: len(records)]
            except BaseException:
                tx.abort()
                raise
        else:
            written = list(log.append_batch(self._topic, records, expected_versions=expected))
        aggregate._saved_version = aggregate.version
        aggregate._pending = []
        return written

    def snapshot(self, aggregate: A) -> RecordMetadata:
        """Store a snapshot of a saved aggregate now (one with no pending events).

        Raises:
            IllegalStateError: no snapshot topic, or the aggregate has unsaved events.
        """
        if self._snapshot_topic is None:
            raise IllegalStateError("this store has no snapshot_topic")
        if aggregate._pending:
            raise IllegalStateError(
                f"{aggregate!r} has unsaved events: save it before taking a snapshot"
            )
        return self._log.append(
            self._snapshot_topic, _encode_snapshot(aggregate), key=aggregate.key
        )

    def update(
        self, aggregate_id: AggregateId, change: Callable[[A], object], *, attempts: int = 3
    ) -> A:
        """Load, ``change(aggregate)``, save; on a concurrency conflict, do it all again
        with the newer state (at most ``attempts`` times). Returns the saved aggregate.

        ``change`` runs again on each attempt, so it must decide from the aggregate's
        state (and may raise to refuse, which ends the update with nothing written).

        Raises:
            ConcurrencyError: every attempt conflicted.
            AggregateNotFoundError, and whatever ``change`` raises.
        """
        if type(attempts) is not int or attempts < 1:
            raise InvalidArgumentError(f"attempts must be an int >= 1; got {attempts!r}")
        for attempt in range(1, attempts + 1):
            aggregate = self.load(aggregate_id)
            change(aggregate)
            try:
                self.save(aggregate)
            except ConcurrencyError:
                if attempt == attempts:
                    raise
                continue
            return aggregate
        raise AssertionError("unreachable")  # pragma: no cover


def _encode_snapshot(aggregate: Aggregate) -> bytes:
    return _encode(
        {"version": aggregate.version, "state": aggregate.snapshot_state()},
        f"the snapshot of {aggregate!r}",
    )


def _decode_snapshot(record: Record) -> tuple[int, dict[str, Any]]:
    if record.value is None:  # latest() never returns a tombstone; checked all the same
        raise _undecodable(record, "a tombstone holds no snapshot")
    try:
        snapshot = json.loads(record.value)
    except ValueError as exc:
        raise _undecodable(record, f"the snapshot is not JSON ({exc})") from exc
    if (
        not isinstance(snapshot, dict)
        or type(snapshot.get("version")) is not int
        or snapshot["version"] < 1
        or not isinstance(snapshot.get("state"), dict)
    ):
        raise _undecodable(record, 'a snapshot is {"version": N >= 1, "state": {...}}')
    return snapshot["version"], snapshot["state"]


# ---------------------------------------------------------------------- read models


class ReadModel:
    """A read model kept in the log: a compacted topic of ``key -> JSON document``.

    Read it with :meth:`get` or :meth:`to_dict` (the committed state); change it inside a
    transaction through :meth:`writer`, so that the change commits with whatever else the
    transaction holds (the input positions of a processor, above all).
    """

    def __init__(self, log: Log, topic: str) -> None:
        if type(topic) is not str:
            raise InvalidArgumentError(f"topic must be a str; got {type(topic).__name__}")
        self._log = log
        self._topic = topic
        self._lock = threading.Lock()
        self._writers: weakref.WeakKeyDictionary[Transaction, ReadModelWriter] = (
            weakref.WeakKeyDictionary()
        )

    @property
    def topic(self) -> str:
        """The compacted topic."""
        return self._topic

    @property
    def log(self) -> Log:
        """The log."""
        return self._log

    def create_topic(self, partitions: int = 1) -> None:
        """Create the topic (compacted) unless it exists."""
        self._log.create_topic(self._topic, partitions, cleanup_policy="compact", exist_ok=True)

    def get(self, key: str | bytes, default: Any = None) -> Any:
        """The committed document of ``key``, or ``default``."""
        record = self._log.latest(self._topic, _key_of(key))
        if record is None or record.value is None:
            return default
        return json.loads(record.value)

    def to_dict(self) -> dict[str, Any]:
        """Every committed document, by key (keys decoded from UTF-8)."""
        return {
            key.decode(): json.loads(value) for key, value in self._log.table(self._topic).items()
        }

    def writer(self, tx: Transaction) -> ReadModelWriter:
        """The read model as transaction ``tx`` sees it, for reading and writing: the same
        object for every call with the same transaction."""
        with self._lock:
            writer = self._writers.get(tx)
            if writer is None:
                writer = self._writers[tx] = ReadModelWriter(self, tx)
            return writer

    def __repr__(self) -> str:
        return f"<eventlog.eventsourcing.ReadModel {self._topic!r}>"


class ReadModelWriter:
    """A :class:`ReadModel` inside one transaction (from :meth:`ReadModel.writer`).

    :meth:`get` sees this transaction's own puts and deletes, then the committed state.
    The first write of a key that was read here carries the version read as the key's
    expected version, so a concurrent writer of the same key (another processor member
    whose input partition updates the same document) makes the commit fail with
    :class:`eventlog.ConcurrencyError` instead of one update overwriting the other.
    """

    def __init__(self, model: ReadModel, tx: Transaction) -> None:
        self._model = model
        self._tx = tx
        self._written: dict[bytes, bytes | None] = {}  # key -> encoded document or None
        self._read_versions: dict[bytes, int] = {}

    @property
    def transaction(self) -> Transaction:
        """The transaction: append other outputs to it (they commit with the model)."""
        return self._tx

    @property
    def model(self) -> ReadModel:
        """The read model."""
        return self._model

    def get(self, key: str | bytes, default: Any = None) -> Any:
        """The document of ``key`` as this transaction sees it, or ``default``."""
        k = _key_of(key)
        if k in self._written:
            data = self._written[k]
            return default if data is None else json.loads(data)
        model = self._model
        # Version first, then value: if a write lands in between, the version is the
        # older one and the commit fails (and is retried) rather than losing that write.
        version = model.log.key_version(model.topic, k)
        record = model.log.latest(model.topic, k)
        self._read_versions.setdefault(k, version)
        if record is None or record.value is None:
            return default
        return json.loads(record.value)

    def put(self, key: str | bytes, document: Any) -> None:
        """Set the document of ``key`` (JSON-serializable) when the transaction commits."""
        if document is None:
            raise InvalidArgumentError("a document cannot be None: use delete(key)")
        k = _key_of(key)
        self._write(k, _encode(document, f"the document of key {k!r}"))

    def delete(self, key: str | bytes) -> None:
        """Remove ``key`` (a tombstone) when the transaction commits."""
        self._write(_key_of(key), None)

    def _write(self, key: bytes, data: bytes | None) -> None:
        expected = None if key in self._written else self._read_versions.get(key)
        self._tx.append(self._model.topic, data, key=key, expected_version=expected)
        self._written[key] = data


Project = Callable[[Record, ReadModelWriter], object]


class TableProjection:
    """A read model in the log, updated exactly once from input topics.

    A processor (:meth:`eventlog.Log.processor`) of ``topics`` in consumer group ``group``
    calls ``project(record, writer)`` for each input record; ``writer`` is the
    :class:`ReadModelWriter` of the batch's transaction. The model's changes, any other
    outputs appended to ``writer.transaction``, and the input positions commit in one
    transaction, so after a crash (or an exception in ``project``) the records whose
    changes did not commit are projected again and those whose changes did are not: each
    record changes the model exactly once. Side effects outside the log are not covered.

    Args:
        log: an open log.
        topics: the input topic(s).
        group: the consumer group that holds the positions.
        model: a :class:`ReadModel`, or the name of its compacted topic.
        project: ``project(record, writer)``.
        consumer_options: for :meth:`eventlog.Log.consumer`; ``auto_offset_reset``
            defaults to ``"earliest"`` (a new projection starts from the beginning).
    """

    def __init__(
        self,
        log: Log,
        topics: str | Iterable[str],
        *,
        group: str,
        model: ReadModel | str,
        project: Project,
        **consumer_options: Any,
    ) -> None:
        if not callable(project):
            raise InvalidArgumentError("project must be callable: project(record, writer)")
        self._model = model if isinstance(model, ReadModel) else ReadModel(log, model)
        self._project = project
        consumer_options.setdefault("auto_offset_reset", "earliest")
        self._processor: Processor = log.processor(
            *_topic_names(topics), group=group, handler=self._handle, **consumer_options
        )

    def _handle(self, record: Record, tx: Transaction) -> None:
        self._project(record, self._model.writer(tx))

    @property
    def model(self) -> ReadModel:
        """The read model."""
        return self._model

    @property
    def processor(self) -> Processor:
        """The underlying processor (its consumer shows assignment and lag)."""
        return self._processor

    def poll(self, timeout: float = 0.0, max_records: int | None = None) -> int:
        """Project one polled batch in one transaction; return how many input records were
        projected. A batch that conflicted with another writer of the model (or lost a
        partition to a rebalance) writes nothing, returns 0 and is projected again at the
        next poll (by the partition's owner).

        Raises:
            Whatever ``project`` raises (nothing of the batch is written; its records come
            again at the next poll).
        """
        try:
            return self._processor.poll(timeout=timeout, max_records=max_records)
        except (ConcurrencyError, CommitFailedError):
            return 0

    def run(
        self,
        *,
        idle_timeout: float | None = None,
        max_records: int | None = None,
        poll_timeout: float = 0.5,
    ) -> int:
        """Project until nothing arrives for ``idle_timeout`` seconds (None: until closed
        from another thread); return the number of records projected."""
        timeout = poll_timeout if idle_timeout is None else min(poll_timeout, idle_timeout)
        return _loop(
            lambda: self.poll(timeout=timeout, max_records=max_records),
            lambda: self._processor.closed,
            idle_timeout,
            None,
        )

    def close(self) -> None:
        """Leave the group. Idempotent."""
        self._processor.close()

    def __enter__(self) -> TableProjection:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


# ---------------------------------------------------------------------- elsewhere


Apply = Callable[[list[Record], dict[TopicPartition, int]], object]


class _SeekToStored(RebalanceListener):
    """Starts each newly assigned partition at the position the application stored."""

    def __init__(self, load_positions: Callable[[], Mapping[TopicPartition, int]]) -> None:
        self.load_positions = load_positions
        self.consumer: Consumer | None = None

    def on_partitions_assigned(self, partitions: set[TopicPartition]) -> None:
        consumer = self.consumer
        assert consumer is not None
        stored = self.load_positions()
        if not isinstance(stored, Mapping):
            raise InvalidArgumentError(
                f"load_positions() must return {{TopicPartition: offset}}; got "
                f"{type(stored).__name__}"
            )
        for tp in partitions:
            if tp in stored:
                consumer.seek(tp, stored[tp])
            else:
                # Not the group's committed offset: the store decides (an empty store is
                # a read model being rebuilt from the beginning).
                consumer.seek_to_beginning(tp)


def run_projection(
    log: Log,
    topics: str | Iterable[str],
    *,
    group: str,
    apply: Apply,
    load_positions: Callable[[], Mapping[TopicPartition, int]],
    idle_timeout: float | None = None,
    max_records: int | None = None,
    poll_timeout: float = 0.5,
    stop: threading.Event | None = None,
    **consumer_options: Any,
) -> int:
    """Keep a read model stored outside the log (a database) up to date, exactly once
    under the conditions below.

    Reads ``topics`` as a member of consumer group ``group`` and calls
    ``apply(records, positions)`` for each polled batch: ``positions`` is
    ``{TopicPartition: offset of the next record}`` after the batch. ``apply`` must store
    the model's changes **and** ``positions`` in one transaction of its own store.
    ``load_positions()`` must return what that store holds (``{TopicPartition: offset}``);
    each partition this runner is assigned starts there (at the beginning when the store
    has no position for it, whatever the group committed).

    Exactly once holds when (1) ``apply`` commits changes and positions atomically, (2)
    ``load_positions`` reads the same store, and (3) with more than one runner in the
    group, ``apply`` ignores, inside its transaction, records below the position its
    store holds for their partition (a runner that lost a partition to another may still
    apply a batch of it: the log cannot fence another store's writes). Side effects
    outside that store are not covered.

    After each batch the positions are also committed to the group (for lag in
    ``describe_group``; they are never read back here). Returns the number of records
    applied when nothing arrived for ``idle_timeout`` seconds, or when ``stop`` is set.

    Raises:
        Whatever ``apply`` or ``load_positions`` raises: the runner stops (closing its
        consumer); run it again and it resumes from the stored positions.
    """
    if not callable(apply) or not callable(load_positions):
        raise InvalidArgumentError("apply and load_positions must be callable")
    for option in ("enable_auto_commit", "listener"):
        if consumer_options.get(option):
            raise InvalidArgumentError(f"run_projection sets {option} itself")
    listener = _SeekToStored(load_positions)
    consumer = log.consumer(
        *_topic_names(topics),
        group=group,
        enable_auto_commit=False,
        auto_offset_reset=consumer_options.pop("auto_offset_reset", "earliest"),
        listener=listener,
        **consumer_options,
    )
    listener.consumer = consumer

    timeout = poll_timeout if idle_timeout is None else min(poll_timeout, idle_timeout)

    def step() -> int:
        records = consumer.poll(timeout=timeout, max_records=max_records)
        if not records:
            return 0
        positions: dict[TopicPartition, int] = {}
        for record in records:
            positions[TopicPartition(record.topic, record.partition)] = record.offset + 1
        apply(records, dict(positions))
        # Informational only (lag in describe_group): the store's positions count.
        with contextlib.suppress(CommitFailedError):
            consumer.commit(positions)
        return len(records)

    try:
        return _loop(step, lambda: consumer.closed, idle_timeout, stop)
    finally:
        consumer.close(autocommit=False)


def _loop(
    step: Callable[[], int],
    closed: Callable[[], bool],
    idle_timeout: float | None,
    stop: threading.Event | None,
) -> int:
    total = 0
    idle_since = time.monotonic()
    while not closed() and (stop is None or not stop.is_set()):
        done = step()
        if done:
            total += done
            idle_since = time.monotonic()
        elif idle_timeout is not None and time.monotonic() - idle_since >= idle_timeout:
            break
    return total


def _topic_names(topics: str | Iterable[str]) -> tuple[str, ...]:
    if isinstance(topics, str):
        return (topics,)
    names = tuple(topics)
    if not names:
        raise InvalidArgumentError("give at least one topic")
    return names
