"""The two directions of a mirror: Kafka -> log and log -> Kafka.

confluent-kafka is imported only when a mirror runs (``_confluent``), so that the rest of
eventlog, and ``mirror_status``, work without it.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final

import attrs

from ..._errors import InvalidArgumentError, TopicNotFoundError
from ..._partitioner import default_partition
from ..._records import NewRecord
from ._errors import (
    KafkaTopicNotFoundError,
    KafkaUnreachableError,
    MirrorError,
    from_kafka_error,
    missing_extra,
)
from ._positions import (
    FROM_KAFKA,
    TO_KAFKA,
    MirrorStatus,
    ensure_topic,
    load_positions,
    write_positions,
)

if TYPE_CHECKING:
    from ..._log import Log

__all__ = ["KAFKA_POSITIONS_TOPIC", "Mirror", "MirrorResult"]

KAFKA_POSITIONS_TOPIC: Final = "eventlog-mirror-positions"
"""The Kafka topic where an exactly-once log -> Kafka mirror commits its positions, in the
same Kafka transaction as the records."""

_NAME = re.compile(r"[a-zA-Z0-9._-]{1,200}").fullmatch
# librdkafka's own log lines go to this logger (not to stderr): the mirror reports errors
# itself, and a client retrying an unreachable broker would flood the terminal.
_LIBRDKAFKA_LOG = logging.getLogger("eventlog.ext.kafka.librdkafka")
_LIBRDKAFKA_LOG.addHandler(logging.NullHandler())  # not logging's last-resort stderr
_log = logging.getLogger("eventlog.ext.kafka")

# How long one wait for new records lasts: bounds how soon stop() takes effect and how
# stale the lag shown by a following mirror can be.
_POLL_SECONDS: Final = 0.2
# A following mirror with nothing to copy refreshes the end offsets it stores this often.
_STATUS_SECONDS: Final = 1.0


def _confluent() -> Any:
    try:
        import confluent_kafka
    except ImportError:
        raise missing_extra() from None
    return confluent_kafka


@attrs.frozen
class MirrorResult:
    """What a mirror run did (also handed to ``on_progress`` while it runs).

    Attributes:
        name: the mirror's name.
        direction: ``"from-kafka"`` or ``"to-kafka"``.
        records: records copied by this run.
        elapsed: seconds since the run started.
        partitions: the position, end and lag per source partition.
    """

    name: str
    direction: str
    records: int
    elapsed: float
    partitions: tuple[MirrorStatus, ...]

    @property
    def lag(self) -> int:
        """Records not yet mirrored, over all partitions."""
        return sum(p.lag for p in self.partitions)


class Mirror:
    """A mirror between a log and a Kafka cluster, in one direction.

    ``run()`` copies; ``stop()`` (from another thread, or a signal handler) ends a running
    ``run(follow=True)`` after its current batch. A mirror resumes from where the previous
    run with the same ``name`` and direction stopped (positions live in the log topic
    ``__eventlog_mirror``; see :func:`mirror_status`).

    Args:
        log: the log.
        bootstrap_servers: the Kafka cluster (``"host:9092,host2:9092"``).
        topics: topic names (a topic keeps its name on the other side).
        direction: ``"from-kafka"`` (Kafka -> log) or ``"to-kafka"`` (log -> Kafka).
        name: the mirror's name (``[a-zA-Z0-9._-]``): keys its positions, and names its
            Kafka consumer group and transactional id (``eventlog-mirror-<name>``).
        exactly_once: log -> Kafka only: write with Kafka transactions, committing the
            positions in the same transaction (topic ``eventlog-mirror-positions``).
            Kafka -> log is always exactly-once.
        kafka_config: extra librdkafka settings (``{"security.protocol": "SASL_SSL"}``).
        batch_size: records per batch (one log transaction, or one Kafka transaction).
        timeout: seconds to wait for the cluster (metadata, acknowledgements) before
            giving up with :class:`KafkaUnreachableError`.
        positions_topic: the Kafka topic of ``exactly_once`` positions.
        on_progress: called with a :class:`MirrorResult` after every batch.

    Raises:
        InvalidArgumentError: a bad argument.
    """

    def __init__(
        self,
        log: Log,
        bootstrap_servers: str,
        topics: str | Iterable[str],
        *,
        direction: str,
        name: str = "mirror",
        exactly_once: bool = False,
        kafka_config: Mapping[str, Any] | None = None,
        batch_size: int = 500,
        timeout: float = 30.0,
        positions_topic: str = KAFKA_POSITIONS_TOPIC,
        on_progress: Callable[[MirrorResult], None] | None = None,
    ) -> None:
        if direction not in (FROM_KAFKA, TO_KAFKA):
            raise InvalidArgumentError(
                f"direction must be {FROM_KAFKA!r} or {TO_KAFKA!r}; got {direction!r}"
            )
        if not isinstance(bootstrap_servers, str) or not bootstrap_servers.strip():
            raise InvalidArgumentError(
                f"bootstrap_servers must be a non-empty str like 'host:9092'; "
                f"got {bootstrap_servers!r}"
            )
        topic_list = [topics] if isinstance(topics, str) else list(topics)
        if not topic_list or not all(isinstance(t, str) and t for t in topic_list):
            raise InvalidArgumentError(
                f"topics must be one or more non-empty topic names; got {topics!r}"
            )
        if not isinstance(name, str) or _NAME(name) is None:
            raise InvalidArgumentError(
                f"mirror name must be 1-200 characters of [a-zA-Z0-9._-]; got {name!r}"
            )
        if type(batch_size) is not int or batch_size < 1:
            raise InvalidArgumentError(f"batch_size must be an int >= 1; got {batch_size!r}")
        if not isinstance(timeout, int | float) or isinstance(timeout, bool) or timeout <= 0:
            raise InvalidArgumentError(f"timeout must be a number > 0; got {timeout!r}")
        config = dict(kafka_config or {})
        if not all(isinstance(k, str) for k in config):
            raise InvalidArgumentError("kafka_config keys must be librdkafka setting names (str)")
        self._log = log
        self._bootstrap = bootstrap_servers
        self._topics = list(dict.fromkeys(topic_list))
        self._direction = direction
        self._name = name
        self._exactly_once = bool(exactly_once)
        self._config = config
        self._batch_size = batch_size
        self._timeout = float(timeout)
        self._positions_topic = positions_topic
        self._on_progress = on_progress
        self._stop = threading.Event()
        self._started = 0.0
        self._copied = 0
        self._positions: dict[tuple[str, int], int] = {}
        self._ends: dict[tuple[str, int], int] = {}
        self._failures: list[Any] = []  # delivery errors reported by the producer
        self._round = 0
        self._cluster_id: str | None = None  # from the cluster's metadata

    @property
    def name(self) -> str:
        """The mirror's name."""
        return self._name

    @property
    def direction(self) -> str:
        """``"from-kafka"`` or ``"to-kafka"``."""
        return self._direction

    def stop(self) -> None:
        """Ask a running ``run()`` to return after its current batch (thread-safe)."""
        self._stop.set()

    def run(self, *, follow: bool = False) -> MirrorResult:
        """Copy: up to the end of the source as it is now (``follow=False``), or
        continuously until :meth:`stop` (``follow=True``).

        Returns:
            What this run copied, and where every partition stands.

        Raises:
            MirrorError: the extra is missing, or the cluster failed (subclasses
                KafkaUnreachableError, KafkaTopicNotFoundError, KafkaAuthorizationError).
            TopicNotFoundError: log -> Kafka: a topic is not in the log.
        """
        self._stop.clear()
        self._started = time.monotonic()
        self._copied = 0
        ck = _confluent()
        if self._direction == FROM_KAFKA:
            self._from_kafka(ck, follow)
        else:
            self._to_kafka(ck, follow)
        return self.progress()

    # ------------------------------------------------------------------ shared

    def progress(self) -> MirrorResult:
        """Where this mirror stands now (thread-safe enough to call from another thread:
        it copies the current positions)."""
        now = int(time.time() * 1000)
        statuses = []
        for (topic, partition), position in sorted(self._positions.items()):
            end = max(self._ends.get((topic, partition), position), position)
            statuses.append(
                MirrorStatus(
                    name=self._name,
                    direction=self._direction,
                    topic=topic,
                    partition=partition,
                    position=position,
                    end=end,
                    lag=end - position,
                    updated_ms=now,
                    bootstrap=self._bootstrap,
                    cluster_id=self._cluster_id,
                )
            )
        return MirrorResult(
            name=self._name,
            direction=self._direction,
            records=self._copied,
            elapsed=time.monotonic() - self._started,
            partitions=tuple(statuses),
        )

    def _progress(self) -> None:
        if self._on_progress is not None:
            self._on_progress(self.progress())

    def _client_config(self, **settings: Any) -> dict[str, Any]:
        config: dict[str, Any] = {
            "bootstrap.servers": self._bootstrap,
            "logger": _LIBRDKAFKA_LOG,
            "client.id": f"eventlog-mirror-{self._name}",
        }
        config.update(settings)
        config.update(self._config)
        return config

    def _load_positions(self, direction: str) -> dict[tuple[str, int], int]:
        return load_positions(
            self._log,
            self._name,
            direction,
            bootstrap=self._bootstrap,
            cluster_id=self._cluster_id,
        )

    def _error(self, error: Any, doing: str, topic: str | None = None) -> MirrorError:
        return from_kafka_error(error, doing, bootstrap=self._bootstrap, topic=topic)

    def _kafka_partitions(self, ck: Any, client: Any, topics: list[str]) -> dict[str, int]:
        """``{topic: partition count}`` from the cluster's metadata (asking for all topics:
        asking for one by name could auto-create it on a cluster that allows that); also
        notes the cluster's id."""
        try:
            metadata = client.list_topics(timeout=self._timeout)
        except ck.KafkaException as e:
            raise self._error(e, "reading the cluster's metadata") from None
        self._cluster_id = metadata.cluster_id or None
        out: dict[str, int] = {}
        for topic in topics:
            found = metadata.topics.get(topic)
            if found is None and self._exactly_once and topic == self._positions_topic:
                raise KafkaTopicNotFoundError(
                    f"the positions topic {topic!r} of an exactly-once mirror does not exist "
                    f"on the Kafka cluster at {self._bootstrap!r}; create it there with one "
                    f"partition (cleanup.policy=compact keeps it small), or name an existing "
                    f"topic with positions_topic= (--positions-topic)",
                    topic=topic,
                    code="UNKNOWN_TOPIC_OR_PART",
                )
            if found is None:
                raise KafkaTopicNotFoundError(
                    f"topic {topic!r} does not exist on the Kafka cluster at "
                    f"{self._bootstrap!r}; create it first (for log -> Kafka, with the log "
                    f"topic's partition count to keep partition numbers)",
                    topic=topic,
                    code="UNKNOWN_TOPIC_OR_PART",
                )
            if found.error is not None:
                raise self._error(found.error, "reading the topic's metadata", topic)
            out[topic] = len(found.partitions)
        return out

    # ------------------------------------------------------------------ Kafka -> log

    def _from_kafka(self, ck: Any, follow: bool) -> None:
        log = self._log
        consumer = ck.Consumer(
            self._client_config(
                **{
                    "group.id": f"eventlog-mirror-{self._name}",
                    "enable.auto.commit": False,
                    "enable.auto.offset.store": False,
                    "enable.partition.eof": True,
                    # Only what committed: an aborted Kafka transaction is never imported.
                    "isolation.level": "read_committed",
                    "auto.offset.reset": "earliest",
                }
            )
        )
        try:
            self._from_kafka_with(ck, consumer, log, follow)
        finally:
            consumer.close()

    def _from_kafka_with(self, ck: Any, consumer: Any, log: Log, follow: bool) -> None:
        counts = self._kafka_partitions(ck, consumer, self._topics)
        # Before anything is created in the log: refused when the name belongs elsewhere.
        stored = self._load_positions(FROM_KAFKA)
        keep_partition: dict[str, bool] = {}
        for topic, count in counts.items():
            try:
                mine = log.describe_topic(topic)
            except TopicNotFoundError:
                mine = log.create_topic(topic, count, exist_ok=True)
            keep_partition[topic] = len(mine.partitions) == count
        ensure_topic(log)
        targets: dict[tuple[str, int], int] = {}
        assignment = []
        for topic, count in counts.items():
            for p in range(count):
                tp = ck.TopicPartition(topic, p)
                try:
                    low, high = consumer.get_watermark_offsets(tp, timeout=self._timeout)
                except ck.KafkaException as e:
                    raise self._error(e, f"reading the offsets of partition {p}", topic) from None
                position = stored.get((topic, p), low)
                if position < low:
                    _log.warning(
                        "mirror %s: %s[%d]: offsets %d..%d were deleted on the cluster "
                        "(retention) before they were mirrored",
                        self._name,
                        topic,
                        p,
                        position,
                        low - 1,
                    )
                    position = low
                if position > high:
                    # The topic is not the one the positions were stored for (re-created
                    # on the cluster): resuming there would skip its records up to it.
                    raise InvalidArgumentError(
                        f"mirror {self._name!r}: its stored position {position} in Kafka "
                        f"topic {topic!r} partition {p} is past the partition's end offset "
                        f"{high}: the topic was re-created on the cluster; mirror it under "
                        f"another name"
                    )
                self._positions[(topic, p)] = position
                self._ends[(topic, p)] = high
                targets[(topic, p)] = high
                assignment.append(ck.TopicPartition(topic, p, position))
        consumer.assign(assignment)
        done = {tp for tp, target in targets.items() if self._positions[tp] >= target}
        # Every partition gets a status record at once, so mirror_status shows the lag
        # of a mirror that has not copied anything yet.
        self._commit_from_kafka({}, set(self._positions))
        last_status = time.monotonic()
        eof_code = ck.KafkaError._PARTITION_EOF
        while not self._stop.is_set() and (follow or len(done) < len(targets)):
            try:
                messages = consumer.consume(self._batch_size, _POLL_SECONDS)
            except ck.KafkaException as e:
                raise self._error(e, "consuming") from None
            batch: dict[str, list[NewRecord]] = {}
            touched: set[tuple[str, int]] = set()
            for m in messages:
                error = m.error()
                tp = (m.topic(), m.partition())
                if error is not None:
                    if error.code() != eof_code:
                        self._consumer_error(error, m.topic())
                        continue
                    # Nothing readable before this offset (control records of Kafka
                    # transactions take offsets too): the partition is caught up.
                    offset = m.offset()
                    self._ends[tp] = max(self._ends[tp], offset)
                    if offset > self._positions[tp]:
                        self._positions[tp] = offset
                        touched.add(tp)
                    # Caught up with what is committed now: a one-shot run is done here
                    # even when another producer's open transaction holds the end back.
                    done.add(tp)
                    continue
                offset = m.offset()
                if offset < self._positions[tp]:
                    continue
                ts_type, ts = m.timestamp()
                batch.setdefault(tp[0], []).append(
                    NewRecord(
                        m.value(),
                        m.key(),
                        tp[1] if keep_partition[tp[0]] else None,
                        ts if ts_type != ck.TIMESTAMP_NOT_AVAILABLE else None,
                        m.headers(),
                    )
                )
                self._positions[tp] = offset + 1
                touched.add(tp)
                if offset + 1 >= targets[tp]:
                    done.add(tp)
            for tp in touched:
                try:
                    _low, high = consumer.get_watermark_offsets(ck.TopicPartition(*tp), cached=True)
                except ck.KafkaException:
                    continue
                if high >= 0:
                    self._ends[tp] = max(self._ends[tp], high)
            if touched:
                self._commit_from_kafka(batch, touched)
                last_status = time.monotonic()
                self._progress()
            elif follow and time.monotonic() - last_status > _STATUS_SECONDS:
                self._refresh_ends(ck, consumer)
                last_status = time.monotonic()

    def _refresh_ends(self, ck: Any, consumer: Any) -> None:
        changed = set()
        for tp in self._positions:
            try:
                _low, high = consumer.get_watermark_offsets(ck.TopicPartition(*tp), cached=True)
            except ck.KafkaException:
                continue
            if high > self._ends[tp]:
                self._ends[tp] = high
                changed.add(tp)
        if changed:
            self._commit_from_kafka({}, changed)
            self._progress()

    def _commit_from_kafka(
        self, batch: dict[str, list[NewRecord]], touched: set[tuple[str, int]]
    ) -> None:
        """One log transaction: the imported records and the Kafka positions after them."""
        with self._log.transaction() as tx:
            for topic, records in batch.items():
                tx.append_batch(topic, records)
            write_positions(
                tx,
                self._name,
                FROM_KAFKA,
                self._bootstrap,
                self._cluster_id,
                {
                    tp: (self._positions[tp], max(self._ends[tp], self._positions[tp]))
                    for tp in touched
                },
            )
        self._copied += sum(len(r) for r in batch.values())

    def _consumer_error(self, error: Any, topic: str | None) -> None:
        if error.fatal() or error.name() in _FATAL_CONSUMER_ERRORS:
            raise self._error(error, "consuming", topic)
        _log.warning("mirror %s: %s", self._name, error.str())

    # ------------------------------------------------------------------ log -> Kafka

    def _to_kafka(self, ck: Any, follow: bool) -> None:
        log = self._log
        lparts = {t: len(log.describe_topic(t).partitions) for t in self._topics}
        settings: dict[str, Any] = {
            "enable.idempotence": True,
            "linger.ms": 5,
            "message.timeout.ms": int(self._timeout * 1000),
        }
        if self._exactly_once:
            settings["transactional.id"] = f"eventlog-mirror-{self._name}"
            settings["transaction.timeout.ms"] = max(60_000, int(self._timeout * 1000))
        producer = ck.Producer(self._client_config(**settings))
        wanted = list(self._topics)
        if self._exactly_once:
            wanted.append(self._positions_topic)
        kparts = self._kafka_partitions(ck, producer, wanted)
        stored = self._load_positions(TO_KAFKA)
        ensure_topic(log)
        if self._exactly_once:
            try:
                # Fences an older instance and aborts the transaction it left open.
                producer.init_transactions(self._timeout)
            except ck.KafkaException as e:
                raise self._error(e, "starting Kafka transactions") from None
            committed = self._kafka_positions(ck)
            if committed is not None:
                stored = committed
        targets: dict[tuple[str, int], int] = {}
        for topic in self._topics:
            starts = log.beginning_offsets(topic)
            ends = log.end_offsets(topic)
            for p in range(lparts[topic]):
                position = max(stored.get((topic, p), 0), starts[p])
                if position > ends[p]:
                    # Positions past the end: the log is not the one they were stored
                    # for (restored from an older backup, or re-created). Resuming there
                    # would skip the records appended until the log grew past it.
                    raise InvalidArgumentError(
                        f"mirror {self._name!r}: its stored position {position} in topic "
                        f"{topic!r} partition {p} is past the log's end offset {ends[p]}: "
                        f"the log is not the one it mirrored (restored from a backup, or "
                        f"re-created); mirror it under another name"
                    )
                self._positions[(topic, p)] = position
                self._ends[(topic, p)] = ends[p]
                targets[(topic, p)] = ends[p]
        self._store_to_kafka(set(self._positions))
        self._failures = []
        failures = self._failures

        last_status = time.monotonic()
        while not self._stop.is_set():
            records = self._read_round(None if follow else targets)
            if not records:
                if not follow:
                    break  # everything up to the end offsets seen at the start is copied
                if follow and time.monotonic() - last_status > _STATUS_SECONDS:
                    self._progress()
                    last_status = time.monotonic()
                self._stop.wait(_POLL_SECONDS)
                continue
            new_positions = dict(self._positions)
            if self._exactly_once:
                self._begin(ck, producer)
            try:
                for r in records:
                    self._produce(ck, producer, r.topic, self._produce_args(r, kparts, lparts))
                    new_positions[(r.topic, r.partition)] = r.offset + 1
                    if failures:
                        break  # Kafka refused one: the batch is not marked, stop early
                if self._exactly_once:
                    self._produce(
                        ck, producer, self._positions_topic, self._positions_record(new_positions)
                    )
                    if failures:
                        raise self._error(failures[0], "producing")
                    try:
                        producer.commit_transaction(self._timeout)
                    except ck.KafkaException as e:
                        raise self._error(e, "committing a Kafka transaction") from None
                else:
                    left = producer.flush(self._timeout)
                    if left:
                        raise KafkaUnreachableError(
                            f"the Kafka cluster at {self._bootstrap!r} did not acknowledge "
                            f"{left} records within {self._timeout} s; their positions are "
                            f"not marked mirrored (the next run sends them again)",
                            code="_MSG_TIMED_OUT",
                        )
            except BaseException:
                if self._exactly_once:
                    self._abort(producer)
                raise
            if failures:
                raise self._error(failures[0], "producing")
            # Kafka acknowledged every record of the round: now it counts as mirrored.
            touched = {tp for tp, pos in new_positions.items() if pos != self._positions[tp]}
            self._positions = new_positions
            self._copied += len(records)
            for topic in self._topics:
                for p, end in log.end_offsets(topic).items():
                    self._ends[(topic, p)] = end
            self._store_to_kafka(touched)
            last_status = time.monotonic()
            self._progress()
        producer.flush(self._timeout)

    def _produce_args(
        self, r: Any, kparts: dict[str, int], lparts: dict[str, int]
    ) -> dict[str, Any]:
        args: dict[str, Any] = {
            "value": r.value,
            "key": r.key,
            "timestamp": r.timestamp,
            "on_delivery": self._delivered,
        }
        if r.headers:
            args["headers"] = list(r.headers)
        if kparts[r.topic] == lparts[r.topic]:
            args["partition"] = r.partition
        elif r.key is not None:
            # Kafka's default partitioner's choice, whatever the producer is configured with.
            args["partition"] = default_partition(r.key, kparts[r.topic])
        return args

    def _read_round(self, targets: dict[tuple[str, int], int] | None) -> list[Any]:
        """Up to ``batch_size`` records from the log, past the positions (and before the
        ``targets`` of a one-shot run), spread over the partitions that have some."""
        out: list[Any] = []
        items = list(self._positions.items())
        self._round += 1
        # Each round starts at the next partition, so that a busy one cannot starve others.
        start = self._round % len(items)
        for (topic, p), position in items[start:] + items[:start]:
            room = self._batch_size - len(out)
            if room <= 0:
                break
            if targets is None:
                out.extend(self._log.read(topic, p, position, max_records=room))
                continue
            target = targets[(topic, p)]
            if position < target:
                read = self._log.read(topic, p, position, max_records=min(room, target - position))
                out.extend(r for r in read if r.offset < target)
        return out

    def _delivered(self, error: Any, _message: Any) -> None:
        if error is not None:
            self._failures.append(error)

    def _produce(self, ck: Any, producer: Any, topic: str, kwargs: dict[str, Any]) -> None:
        deadline = time.monotonic() + self._timeout
        while True:
            try:
                producer.produce(topic, **kwargs)
                break
            except BufferError:
                # The client's queue is full: let it send, then try again.
                if time.monotonic() > deadline:
                    raise KafkaUnreachableError(
                        f"the Kafka client's queue stayed full for {self._timeout} s: "
                        f"the cluster at {self._bootstrap!r} is not taking records",
                        topic=topic,
                        code="_QUEUE_FULL",
                    ) from None
                producer.poll(0.1)
            except ck.KafkaException as e:
                raise self._error(e, "producing", topic) from None
        producer.poll(0)

    def _begin(self, ck: Any, producer: Any) -> None:
        try:
            producer.begin_transaction()
        except ck.KafkaException as e:
            raise self._error(e, "beginning a Kafka transaction") from None

    def _abort(self, producer: Any) -> None:
        try:
            producer.abort_transaction(self._timeout)
        except Exception as e:  # the error being raised says more than this one
            _log.warning("mirror %s: aborting the Kafka transaction failed: %s", self._name, e)

    def _positions_record(self, positions: dict[tuple[str, int], int]) -> dict[str, Any]:
        table: dict[str, dict[str, int]] = {}
        for (topic, p), position in positions.items():
            table.setdefault(topic, {})[str(p)] = position
        return {
            "key": self._name.encode(),
            "value": json.dumps({"positions": table}, separators=(",", ":")).encode(),
            "partition": 0,
        }

    def _kafka_positions(self, ck: Any) -> dict[tuple[str, int], int] | None:
        """The positions committed with the last Kafka transaction of this mirror: its
        newest record in partition 0 of the positions topic (read committed only)."""
        consumer = ck.Consumer(
            self._client_config(
                **{
                    "group.id": f"eventlog-mirror-{self._name}",
                    "enable.auto.commit": False,
                    "enable.partition.eof": True,
                    "isolation.level": "read_committed",
                }
            )
        )
        key = self._name.encode()
        try:
            tp = ck.TopicPartition(self._positions_topic, 0)
            low, high = consumer.get_watermark_offsets(tp, timeout=self._timeout)
            window = 64
            while True:
                start = max(low, high - window)
                consumer.assign([ck.TopicPartition(self._positions_topic, 0, start)])
                found = None
                deadline = time.monotonic() + self._timeout
                while True:
                    m = consumer.poll(_POLL_SECONDS)
                    if m is None:
                        if time.monotonic() > deadline:
                            raise KafkaUnreachableError(
                                f"reading topic {self._positions_topic!r} from the Kafka "
                                f"cluster at {self._bootstrap!r} timed out after "
                                f"{self._timeout} s",
                                code="_TIMED_OUT",
                            )
                        continue
                    if m.error() is not None:
                        if m.error().code() == ck.KafkaError._PARTITION_EOF:
                            break
                        self._consumer_error(m.error(), self._positions_topic)
                        continue
                    if m.key() == key:
                        found = m.value()
                if found is not None or start <= low:
                    break
                window *= 8
        except ck.KafkaException as e:
            raise self._error(e, "reading the committed positions", self._positions_topic) from None
        finally:
            consumer.close()
        if found is None:
            return None
        table = json.loads(found)["positions"]
        return {(t, int(p)): int(pos) for t, parts in table.items() for p, pos in parts.items()}

    def _store_to_kafka(self, touched: set[tuple[str, int]]) -> None:
        if not touched:
            return
        with self._log.transaction() as tx:
            write_positions(
                tx,
                self._name,
                TO_KAFKA,
                self._bootstrap,
                self._cluster_id,
                {tp: (self._positions[tp], self._ends[tp]) for tp in touched},
            )


# Consumer errors that end a mirror (others are logged and librdkafka retries).
_FATAL_CONSUMER_ERRORS: Final = frozenset(
    {
        "TOPIC_AUTHORIZATION_FAILED",
        "GROUP_AUTHORIZATION_FAILED",
        "CLUSTER_AUTHORIZATION_FAILED",
        "SASL_AUTHENTICATION_FAILED",
        "_AUTHENTICATION",
        "UNKNOWN_TOPIC_OR_PART",
        "_UNKNOWN_TOPIC",
        "_UNKNOWN_PARTITION",
        "_ALL_BROKERS_DOWN",
    }
)


def mirror_from_kafka(
    log: Log,
    bootstrap_servers: str,
    topics: str | Iterable[str],
    *,
    name: str = "mirror",
    follow: bool = False,
    kafka_config: Mapping[str, Any] | None = None,
    batch_size: int = 500,
    timeout: float = 30.0,
    on_progress: Callable[[MirrorResult], None] | None = None,
) -> MirrorResult:
    """Copy topics from a Kafka cluster into the log, exactly once.

    Each Kafka batch is appended in one log transaction together with the Kafka positions
    after it, so a crash or a restart resumes exactly where the log stopped: no record is
    imported twice or skipped. Keys, values, headers and timestamps are kept; a missing
    log topic is created with Kafka's partition count; partition numbers are kept when the
    counts match, otherwise keyed records go to murmur2's partition (Kafka's default
    partitioner) and keyless ones to the log's sticky partitioner. Only committed Kafka
    transactions are imported (``read_committed``).

    Args:
        log: the destination log.
        bootstrap_servers: the Kafka cluster.
        topics: Kafka topics to copy (same names in the log).
        name: the mirror's name (its positions are kept under it).
        follow: keep copying new records until stopped (Ctrl-C, or use :class:`Mirror`
            and ``stop()``); otherwise stop at the end offsets seen at the start.
        kafka_config, batch_size, timeout, on_progress: see :class:`Mirror`.

    Returns:
        What was copied and where each partition stands.

    Raises:
        KafkaUnreachableError, KafkaTopicNotFoundError, KafkaAuthorizationError,
        MirrorError: the cluster failed, or confluent-kafka is not installed.
    """
    mirror = Mirror(
        log,
        bootstrap_servers,
        topics,
        direction=FROM_KAFKA,
        name=name,
        kafka_config=kafka_config,
        batch_size=batch_size,
        timeout=timeout,
        on_progress=on_progress,
    )
    return _run(mirror, follow)


def mirror_to_kafka(
    log: Log,
    bootstrap_servers: str,
    topics: str | Iterable[str],
    *,
    name: str = "mirror",
    follow: bool = False,
    exactly_once: bool = False,
    kafka_config: Mapping[str, Any] | None = None,
    batch_size: int = 500,
    timeout: float = 30.0,
    positions_topic: str = KAFKA_POSITIONS_TOPIC,
    on_progress: Callable[[MirrorResult], None] | None = None,
) -> MirrorResult:
    """Copy topics from the log to a Kafka cluster (the topics must exist there).

    Records are sent with Kafka's idempotent producer; a batch's positions are stored in
    the log only after Kafka acknowledged every record of it, so nothing is marked mirrored
    that Kafka does not have: after a crash the unacknowledged tail is sent again
    (at-least-once; duplicates possible). With ``exactly_once=True`` each batch is one
    Kafka transaction that also writes the positions to ``positions_topic``; a restart
    reads them back (read committed), so consumers reading committed records see each
    record once. Keys, values, headers and timestamps are kept; partition numbers are
    kept when the counts match, otherwise keyed records go to murmur2's partition and
    keyless ones to librdkafka's partitioner.

    Args:
        log: the source log.
        bootstrap_servers: the Kafka cluster.
        topics: log topics to copy (same names in Kafka).
        name: the mirror's name (positions, transactional id ``eventlog-mirror-<name>``).
        follow: keep copying new records until stopped; otherwise stop at the log's end
            offsets seen at the start.
        exactly_once: use Kafka transactions (see above).
        kafka_config, batch_size, timeout, positions_topic, on_progress: see
            :class:`Mirror`.

    Returns:
        What was copied and where each partition stands.

    Raises:
        TopicNotFoundError: a topic is not in the log.
        KafkaUnreachableError, KafkaTopicNotFoundError, KafkaAuthorizationError,
        MirrorError: the cluster failed or did not acknowledge, or confluent-kafka is not
        installed.
    """
    mirror = Mirror(
        log,
        bootstrap_servers,
        topics,
        direction=TO_KAFKA,
        name=name,
        exactly_once=exactly_once,
        kafka_config=kafka_config,
        batch_size=batch_size,
        timeout=timeout,
        positions_topic=positions_topic,
        on_progress=on_progress,
    )
    return _run(mirror, follow)


def _run(mirror: Mirror, follow: bool) -> MirrorResult:
    if not follow or threading.current_thread() is not threading.main_thread():
        return mirror.run(follow=follow)
    # Ctrl-C ends a following mirror: a batch it interrupts is not marked mirrored (the
    # log transaction is all or nothing) and is copied by the next run.
    try:
        return mirror.run(follow=True)
    except KeyboardInterrupt:
        return mirror.progress()
