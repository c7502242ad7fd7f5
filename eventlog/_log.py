"""The Log: topics, partitions, appends, reads, offsets and waiting for new records."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from . import _backup, _storage, _tracking
from ._catalog import (
    Catalog,
    TopicInfo,
)
from ._check import CheckAdmin
from ._clock import now_ms
from ._codec import DecodedBatch
from ._compaction import CompactionAdmin, Compactor
from ._errors import (
    InvalidArgumentError,
    InvalidRecordError,
    PartitionNotFoundError,
    ReadOnlyLogError,
)
from ._group_admin import GroupAdmin
from ._idempotence import (
    check_producer,
    check_producer_append,
    last_sequence,
    record_append,
)
from ._keyindex import INDEX_FORMAT, INDEX_MARKER, KeyIndex, index_existing_topics
from ._logbase import LogBase
from ._partitioner import default_partition
from ._read import BatchCache, Reader
from ._reading import ReadAPI
from ._records import (
    BatchMetadata,
    HeadersInput,
    NewRecord,
    Record,
    RecordMetadata,
)
from ._retention import Retention, RetentionAdmin
from ._table import KeyLookup
from ._topic_admin import TopicAdmin
from ._topics import (
    validate_topic_name,
)
from ._write import (
    Appender,
    PreparedAppend,
    Uniform,
    check_expected_versions,
    new_group,
    plainly_valid,
    single_expected,
)

if TYPE_CHECKING:
    from ._consumer import Consumer
    from ._processing import Processor
    from ._producer import Producer
    from ._transaction import Transaction

T = TypeVar("T")


class _TopicChanged(Exception):
    """Raised inside a fast-path write when the topic changed since it was validated."""


def _index_older_log(storage: _storage.Storage) -> KeyIndex | None:
    """The environment's key index. A log written before the key index existed gets it on
    its first writable open; read-only, its index cannot be used (None)."""
    dbs = storage.dbs
    meta = dbs[b"meta"]
    if b"keys" in dbs and storage.read(
        lambda txn: txn.get(INDEX_MARKER, db=meta) == INDEX_FORMAT, "opening the log"
    ):
        return KeyIndex(dbs)
    if storage.readonly:
        return None

    def build(txn: Any) -> None:
        if txn.get(INDEX_MARKER, db=meta) != INDEX_FORMAT:  # (another process may have)
            index_existing_topics(txn, dbs)

    storage.write(build, "building the key index of an older log")
    return KeyIndex(dbs)


class Log(
    ReadAPI,
    TopicAdmin,
    GroupAdmin,
    RetentionAdmin,
    CompactionAdmin,
    KeyLookup,
    CheckAdmin,
    LogBase,
):
    """An open event log: a directory of topics and partitions on local disk.

    Create one with :func:`eventlog.open`. A Log is thread-safe; use it as a context
    manager or call :meth:`close`. Every method raises :class:`~eventlog.LogClosedError`
    after :meth:`close`.
    """

    def __init__(self, storage: _storage.Storage, *, readonly: bool = False) -> None:
        self._readonly = readonly or storage.readonly
        self._storage = storage
        self._closed = False
        cache = storage.cache
        if "catalog" not in cache:
            cache["catalog"] = Catalog(storage.dbs[b"meta"], storage.dbs[b"topics"])
            cache["batches"] = BatchCache()
        self._catalog: Catalog = cache["catalog"]
        self._batch_cache: BatchCache = cache["batches"]
        if "retention" not in cache:
            cache["retention"] = Retention(storage.dbs)
        if "keyindex" not in cache:
            # None: a read-only open of a log written before the key index existed.
            cache["keyindex"] = _index_older_log(storage)
            if cache["keyindex"] is not None:
                cache["compactor"] = Compactor(storage.dbs, cache["keyindex"])
        self._keyindex = cache.get("keyindex")
        self._reader = Reader(storage.dbs, cache["batches"])
        self._appender = Appender(
            storage.dbs, cache["retention"], cache.get("keyindex"), cache.get("compactor")
        )
        self._dbs = storage.dbs
        self._batches_db = storage.dbs[b"batches"]
        _tracking.opened(self, f"Log({storage.path!r})")

    # ------------------------------------------------------------------ lifecycle

    @property
    def path(self) -> str:
        """The log directory (absolute)."""
        return self._storage.path

    @property
    def readonly(self) -> bool:
        """Whether the log was opened read-only."""
        return self._readonly

    @property
    def durability(self) -> str:
        """The durability mode: ``"full"``, ``"normal"`` or ``"off"``."""
        return self._storage.durability

    @property
    def closed(self) -> bool:
        """True after :meth:`close`."""
        return self._closed

    def close(self) -> None:
        """Close this handle. The environment closes when the last handle on it closes.

        Calling close() again does nothing.
        """
        if self._closed:
            return
        self._closed = True
        _tracking.closed(self)
        _storage.release(self._storage)

    def __enter__(self) -> Log:
        self._check()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("read-only" if self.readonly else "open")
        return f"<eventlog.Log {self.path!r} {state}>"

    def sync(self) -> None:
        """Flush every committed write to disk now (useful with durability "normal"/"off")."""
        self._check()
        if not self.readonly:
            self._storage.sync()

    def backup(
        self,
        dest: str | os.PathLike[str],
        *,
        compact: bool = True,
        progress: Callable[[int, int], object] | None = None,
    ) -> str:
        """Write a consistent copy of the whole log to the new directory ``dest``.

        The log stays in use meanwhile: the copy reads one snapshot (LMDB's copy, in a
        single read transaction), so appends and consumers go on; what they write after
        the snapshot is not in the copy. With ``compact`` (the default) free pages are left
        out and the rest is renumbered, so the copy is as small as the live data: the way
        to shrink a log whose file grew (see docs/how-to.md). The copy is written in a
        temporary directory next to ``dest`` and renamed into place, so ``dest`` is
        either a complete log or absent.

        Args:
            dest: a directory that does not exist yet, or is empty.
            compact: omit free pages (slower to write, smaller).
            progress: called as ``progress(bytes_written, bytes_total)`` about ten times
                a second while the copy is written, from another thread (``bytes_total``
                is the size of the data the log uses: a compacted copy may finish below
                it), and once with ``(total, total)`` when it is complete.

        Returns:
            The backup's absolute path; open it with :func:`eventlog.open`.

        Raises:
            InvalidArgumentError: ``dest`` exists and is not an empty directory, or is
                this log's own directory; ``progress`` is not callable.
            StorageError: the copy failed (disk full: ``DiskFullError``).
        """
        self._check()
        return _backup.backup(self._storage, dest, compact=compact, progress=progress)

    # ------------------------------------------------------------------ clients

    def transaction(self) -> Transaction:
        """Start a transaction: appends to any topics and partitions, and consumer-group
        offset commits, written in one atomic commit (all visible together, or nothing).

        Use it as a context manager: the block's normal end commits, an exception aborts::

            with log.transaction() as tx:
                tx.append("suspicious-transactions", value, key=key)
                tx.commit_offsets("fraud-detector", {TopicPartition("transactions", 0): 1042})

        Raises:
            ReadOnlyLogError: the log is open read-only.
        """
        self._check()
        if self._readonly:
            raise ReadOnlyLogError(
                f"starting a transaction: the log {self._storage.path!r} is open read-only"
            )
        from ._transaction import Transaction

        return Transaction(self)

    def processor(
        self,
        *topics: str,
        group: str,
        handler: Callable[[Record, Transaction], Any],
        **consumer_options: Any,
    ) -> Processor:
        """An exactly-once consume-transform-produce loop: a group consumer of ``topics``
        that runs ``handler(record, tx)`` on each record, where ``tx`` is a
        :class:`Transaction` the handler appends its outputs to; the outputs and the input
        positions commit together, so each input's outputs appear exactly once even
        across crashes and rebalances (side effects outside the log are not covered).

        Args:
            topics: the input topics.
            group: the consumer group (required: positions are committed to it).
            handler: ``handler(record, tx)``.
            consumer_options: as for :meth:`consumer` (except ``enable_auto_commit``,
                which stays off).

        Returns:
            A :class:`Processor`: ``poll(timeout)`` processes one batch, ``run(...)``
            loops; use it as a context manager, or ``close()`` it.
        """
        from ._processing import Processor

        return Processor(self, topics, group=group, handler=handler, **consumer_options)

    def producer(self, **options: Any) -> Producer:
        """Create a :class:`~eventlog.Producer` writing to this log.

        ``options`` are the Producer's keyword arguments (serializers, partitioner,
        ``linger_ms``, ``batch_size``, ...). Close the producer (or use it as a context
        manager) before closing the log.
        """
        from eventlog._producer import Producer

        return Producer(self, **options)

    def consumer(self, *topics: str, **options: Any) -> Consumer:
        """Create a :class:`~eventlog.Consumer` reading from this log.

        ``topics`` are subscribed to (or pass ``pattern=`` or, later, call ``assign()``);
        ``options`` are the Consumer's keyword arguments (``group``, deserializers,
        ``auto_offset_reset``, ...).
        """
        from eventlog._consumer import Consumer

        return Consumer(self, *topics, **options)

    # ------------------------------------------------------------------ topics

    # ------------------------------------------------------------------ appending

    def append(
        self,
        topic: str,
        value: bytes | None,
        *,
        key: bytes | None = None,
        partition: int | None = None,
        timestamp: int | None = None,
        headers: HeadersInput | None = None,
        expected_version: int | None = None,
        producer_id: str | None = None,
        sequence: int | None = None,
    ) -> RecordMetadata:
        """Append one record and return where it was stored.

        Args:
            topic: the topic name.
            value: the payload (bytes), or None for a tombstone.
            key: optional key (bytes). Keyed records go to partition
                ``murmur2(key) % partitions`` (Kafka's default partitioner).
            partition: an explicit partition, overriding the partitioner.
            timestamp: milliseconds since the epoch; default now. Ignored (replaced by the
                append time) on topics with ``message.timestamp.type=LogAppendTime``.
            headers: optional list of ``(name, value)`` pairs (str, bytes or None).
            expected_version: optimistic concurrency: append only if the key's version
                (how many records have been appended with that key; 0: none yet) is this
                (needs a key and a topic with a key index: ``key_index=True`` or
                compacted).
            producer_id, sequence: an idempotent append: a stable producer id and this
                record's sequence number in its partition (see :meth:`last_sequence`). A
                retry of a record already written writes nothing and returns the original
                metadata.

        Returns:
            RecordMetadata(topic, partition, offset, timestamp); the record is durable per
            the log's durability mode when this returns.

        Raises:
            ConcurrencyError: the key is at another version (nothing is written).
            OutOfOrderSequenceError, DuplicateSequenceError: see ``producer_id``.
            TopicNotFoundError, PartitionNotFoundError, InvalidRecordError,
            RecordTooLargeError: nothing is written.
        """
        self._check()
        if expected_version is not None or producer_id is not None or sequence is not None:
            return self._append(
                topic,
                (value,),
                (key,),
                (partition,),
                (timestamp,),
                (headers,) if headers is not None else None,
                single_expected(key, expected_version, topic),
                check_producer(producer_id, sequence),
            )[0]
        info = self._catalog.cached(topic) if type(topic) is str else None
        if info is not None and plainly_valid(info, value, key, partition, timestamp, headers):
            try:
                return self._append_one(info, value, key, partition, timestamp)
            except _TopicChanged:
                pass  # altered or re-created meanwhile: the general path checks it all again
        # The columns of a one-record batch, built directly (no NewRecord, no transpose).
        return self._append(
            topic,
            (value,),
            (key,),
            (partition,),
            (timestamp,),
            (headers,) if headers is not None else None,
        )[0]

    def _append_one(
        self,
        info: TopicInfo,
        value: bytes | None,
        key: bytes | None,
        partition: int | None,
        timestamp: int | None,
    ) -> RecordMetadata:
        """The single-record fast path, for inputs already known valid for ``info``.

        Durable single appends are bound by fsync, but with several threads the Python
        work of each append is serialised by the GIL: less of it means larger groups.
        """
        config = info.config
        if timestamp is None or config.message_timestamp_type == "LogAppendTime":
            timestamp = now_ms()
        if partition is None:
            count = info.partitions
            if count == 1:
                partition = 0
            elif key is not None:
                partition = default_partition(key, count)
            else:
                partition = self._appender.sticky_for(info.name).partition(count, len(value or b""))
        group = new_group(info, partition, value, key, timestamp)
        topic = info.name

        def write(txn: Any) -> list[tuple[int, int]]:
            current = self._catalog.get(txn, topic, writing=True)
            if current is not info and current != info:
                raise _TopicChanged
            return self._appender.write_groups(txn, info, [group])

        offset = self._write(write, f"appending to topic {topic!r}")[0][1]
        crc = group.stored_crc
        if crc is not None:
            # A consumer usually reads this record next: hand it the decoded batch (it
            # would otherwise decode what we just encoded). Validated by the checksum,
            # as every cached batch is.
            self._batch_cache.put(
                (info.topic_id, partition, offset),
                crc,
                DecodedBatch(
                    offset,
                    range(offset, offset + 1),
                    [timestamp],
                    [key],
                    [value],
                    None,
                    timestamp,
                    offset,
                ),
                len(value or b"") + len(key or b""),
            )
        return RecordMetadata(topic, partition, offset, timestamp)

    def append_batch(
        self,
        topic: str,
        records: Iterable[NewRecord],
        *,
        expected_versions: Mapping[bytes, int] | None = None,
        producer_id: str | None = None,
        sequence: int | None = None,
    ) -> BatchMetadata:
        """Append many records atomically: all are written, or none.

        One LMDB entry (a record batch) is written per partition touched, in one
        transaction.

        Args:
            topic: the topic name.
            records: :class:`NewRecord` instances.
            expected_versions: optimistic concurrency, ``{key: version}``: append only if
                each key is at that version before the batch (several records of one key
                take the following versions). Needs a topic with a key index.
            producer_id, sequence: an idempotent append (all records to one partition):
                the records take sequence numbers ``sequence .. sequence + n - 1``; a retry
                writes nothing and returns the original metadata (see :meth:`append`).

        Returns:
            A sequence with one RecordMetadata per record, in input order (built lazily,
            on first access; ``.partitions`` gives ``{partition: range of offsets}``).

        Raises:
            ConcurrencyError: a key is at another version (nothing is written).
            TopicNotFoundError, PartitionNotFoundError, InvalidRecordError,
            RecordTooLargeError: nothing is written.
        """
        self._check()
        expected = None
        if expected_versions is not None:
            expected = check_expected_versions(expected_versions, topic)
        producer = check_producer(producer_id, sequence)
        if not isinstance(records, list | tuple):
            given: object = records  # the annotation is a promise callers may break
            if isinstance(given, str | bytes) or not isinstance(given, Iterable):
                raise InvalidRecordError(
                    f"records must be an iterable of eventlog.NewRecord; got "
                    f"{type(records).__name__}",
                    topic=topic if isinstance(topic, str) else None,
                )
            records = list(records)
        if not records:
            return BatchMetadata(topic, 0, [])
        if set(map(type, records)) != {NewRecord}:
            for i, r in enumerate(records):
                if type(r) is not NewRecord:
                    raise InvalidRecordError(
                        f"record {i}: expected eventlog.NewRecord; got {type(r).__name__}",
                        topic=topic if isinstance(topic, str) else None,
                    )
        values, keys, partitions, timestamps, headers = zip(*records, strict=False)
        return self._append(
            topic, values, keys, partitions, timestamps, headers, expected, producer
        )

    def append_columns(
        self,
        topic: str,
        values: Sequence[bytes | None],
        *,
        keys: Sequence[bytes | None] | None = None,
        partition: int | None = None,
        timestamp: int | None = None,
    ) -> dict[int, range]:
        """Append many records given as columns, without a Python object per record.

        The bulk path for high-throughput writers: ``values[i]`` and ``keys[i]`` form
        record ``i``; all records share one timestamp. Atomic like :meth:`append_batch`.

        Args:
            topic: the topic name.
            values: the values (bytes, or None for tombstones).
            keys: optional keys, same length as ``values``.
            partition: write every record to this partition; by default keyed records are
                partitioned by key and unkeyed ones by the sticky partitioner.
            timestamp: milliseconds since the epoch for every record; default now.

        Returns:
            ``{partition: range of offsets}``: the offsets given to the records of each
            partition, which are stored in input order.

        Raises:
            TopicNotFoundError, PartitionNotFoundError, InvalidRecordError,
            RecordTooLargeError: nothing is written.
        """
        self._check()
        if not isinstance(values, list | tuple):
            raise InvalidRecordError(
                f"values must be a list or tuple of bytes; got {type(values).__name__}"
            )
        n = len(values)
        if keys is not None:
            if not isinstance(keys, list | tuple):
                raise InvalidRecordError(
                    f"keys must be a list or tuple of bytes; got {type(keys).__name__}"
                )
            if len(keys) != n:
                raise InvalidRecordError(f"keys has {len(keys)} items for {n} values")
        if n == 0:
            return {}
        return self._append(
            topic,
            values,
            keys if keys is not None else Uniform(None),
            Uniform(partition),
            Uniform(timestamp),
            None,
        ).partitions

    def _append(
        self,
        topic: str,
        values: Sequence[Any],
        keys: Iterable[Any] | Uniform,
        partitions: Iterable[Any] | Uniform,
        timestamps: Iterable[Any] | Uniform,
        headers: Sequence[Any] | None,
        expected: Mapping[bytes, int] | None = None,
        producer: tuple[str, int] | None = None,
    ) -> BatchMetadata:
        prepared = self._prepare(
            topic, values, keys, partitions, timestamps, headers, expected, producer
        )
        bases = self._write(
            lambda txn: self._write_prepared(txn, prepared), f"appending to topic {topic!r}"
        )
        return prepared.metadata(bases)

    def _prepare(
        self,
        topic: str,
        values: Sequence[Any],
        keys: Iterable[Any] | Uniform,
        partitions: Iterable[Any] | Uniform,
        timestamps: Iterable[Any] | Uniform,
        headers: Sequence[Any] | None,
        expected: Mapping[bytes, int] | None = None,
        producer: tuple[str, int] | None = None,
    ) -> PreparedAppend:
        """Validate, partition and encode an append before its write transaction (so that
        compression overlaps other writers' commits). Raises for bad input."""
        storage = self._storage
        if type(topic) is not str:
            validate_topic_name(topic)
        if not isinstance(keys, Uniform | list | tuple):
            keys = list(keys)
        if not isinstance(partitions, Uniform | list | tuple):
            partitions = list(partitions)
        if not isinstance(timestamps, Uniform | list | tuple):
            timestamps = list(timestamps)
        cached = info = self._catalog.cached(topic)
        if info is None:
            info = storage.read(
                lambda txn: self._catalog.get(txn, topic), f"appending to {topic!r}"
            )
        n = len(values)
        now = now_ms()
        cols = self._appender.validate(info, n, values, keys, partitions, timestamps, headers, now)
        try:
            groups = self._appender.partition(info, n, cols)
        except PartitionNotFoundError:
            if cached is None:
                raise
            # The cached definition may predate partitions another process just added.
            info = storage.read(
                lambda txn: self._catalog.get(txn, topic), f"appending to {topic!r}"
            )
            if info == cached:
                raise
            cols = self._appender.validate(
                info, n, values, keys, partitions, timestamps, headers, now
            )
            groups = self._appender.partition(info, n, cols)
        if expected:
            self._appender.expected_partitions(info, groups, expected)  # bad input: now
        if producer is not None and len(groups) != 1:
            raise InvalidArgumentError(
                f"an idempotent append (producer_id, sequence) goes to one partition; these "
                f"records go to partitions {sorted(g.partition for g in groups)} (give "
                f"partition=, or append per partition)",
                topic=topic,
            )
        self._appender.encode(info, groups)
        return PreparedAppend(
            topic,
            info,
            n,
            groups,
            (values, keys, partitions, timestamps, headers, now),
            expected,
            producer,
        )

    def _write_prepared(self, txn: Any, prepared: PreparedAppend) -> list[tuple[int, int]]:
        """Write a prepared append inside a write transaction; ``(partition, base offset)``
        per batch written."""
        appender = self._appender
        info = prepared.info
        current = self._catalog.get(txn, prepared.topic, writing=True)
        if current is not info and current != info:
            # The topic changed since we looked (altered, grown, re-created): check,
            # partition and encode again against what the transaction sees.
            values, keys, partitions, timestamps, headers, now = prepared.columns
            n = prepared.n
            recols = appender.validate(
                current, n, values, keys, partitions, timestamps, headers, now
            )
            regroup = appender.partition(current, n, recols)
            appender.encode(current, regroup)
            prepared.groups[:] = regroup
            info = current
        producer = prepared.producer
        if producer is not None:
            if len(prepared.groups) != 1:
                raise InvalidArgumentError(
                    "an idempotent append (producer_id, sequence) goes to one partition",
                    topic=info.name,
                )
            group = prepared.groups[0]
            original = check_producer_append(
                txn,
                self._dbs[b"producers"],
                producer,
                info.name,
                info.topic_id,
                group.partition,
                prepared.n,
            )
            if original is not None:
                # A retry of an append already written: its original metadata, no write.
                group.timestamps = self._original_timestamps(
                    txn, info, group.partition, original, prepared.n, group.timestamps
                )
                return [(group.partition, original)]
        if prepared.expected:
            appender.check_versions(txn, info, prepared.groups, prepared.expected)
        written = appender.write_groups(txn, info, prepared.groups)
        if producer is not None:
            partition, base = written[0]
            record_append(
                txn, self._dbs[b"producers"], producer, info.topic_id, partition, prepared.n, base
            )
        return written

    def _original_timestamps(
        self, txn: Any, info: TopicInfo, partition: int, base: int, count: int, fallback: Any
    ) -> Any:
        """The timestamps of the records an earlier append wrote at ``base`` (``fallback``
        when they are gone or no longer dense: retention or compaction removed some)."""
        cursor = txn.cursor(db=self._batches_db)
        batch = self._reader.batch_at(txn, cursor, info, partition, base)
        if batch is None or batch.base_offset != base or batch.count < count:
            return fallback
        if list(batch.offsets[:count]) != list(range(base, base + count)):
            return fallback
        return list(batch.timestamps[:count])

    def last_sequence(self, producer_id: str, topic: str, partition: int) -> int:
        """The last sequence number an idempotent producer wrote to a partition (-1: none
        yet): where a restarted writer that lost track resumes (``sequence=last + 1``).

        Raises:
            TopicNotFoundError, PartitionNotFoundError, InvalidArgumentError.
        """
        self._check()
        check_producer(producer_id, 0)
        pdb = self._dbs.get(b"producers")

        def run(txn: Any) -> int:
            info = self._info(txn, topic)
            self._reader.state(txn, info, partition)  # validates the partition
            if pdb is None:
                return -1
            return last_sequence(txn, pdb, producer_id, info.topic_id, partition)

        return self._storage.read(run, f"reading producer {producer_id!r}'s sequence")


def open(
    path: str | os.PathLike[str],
    *,
    readonly: bool = False,
    create: bool = True,
    durability: _storage.Durability = "full",
    map_size: int | None = None,
) -> Log:
    """Open (or create) the event log in directory ``path``.

    Args:
        path: a directory. Created (with parents) if missing, unless ``create`` is false
            or ``readonly`` is true.
        readonly: open for reading only; writes raise ReadOnlyLogError and nothing on disk
            changes.
        create: create the log when the directory has none.
        durability: ``"full"`` (default: fsync per commit; every acknowledged write
            survives a process crash, an OS crash and power loss), ``"normal"`` (an OS crash
            or power loss may undo the last commit) or ``"off"`` (no fsync: an OS crash or
            power loss may lose recent commits, and on filesystems that do not keep write
            order may damage the file). Every mode survives a process crash (SIGKILL).
            See docs/explanation/durability.md.
        map_size: the initial LMDB map size in bytes (it grows automatically).

    Returns:
        A :class:`Log`. Opening the same directory again in one process shares one
        LMDB environment between the handles.

    Raises:
        NotALogError: the path is a file, or a directory with other content and no log.
        LogNotFoundError: nothing to open (read-only, or ``create=False``).
        CorruptLogError: the data file is empty or truncated.
        UnsupportedFormatError: the log was written by a newer eventlog.
        InvalidArgumentError: a bad option.
    """
    if not isinstance(path, str | os.PathLike):
        raise InvalidArgumentError(f"path must be a str or os.PathLike; got {type(path).__name__}")
    if not isinstance(readonly, bool) or not isinstance(create, bool):
        raise InvalidArgumentError("readonly and create must be True or False")
    storage = _storage.acquire(
        os.fsdecode(path),
        readonly=readonly,
        durability=durability,
        map_size=map_size,
        create=create,
    )
    return Log(storage, readonly=readonly)


__all__ = ["Log", "open"]
