"""``log.transaction()``: appends to any topics and consumer-group offset commits, written
in one atomic commit.

Every write of a log is one LMDB transaction, so a transaction here is simply one write
that carries several appends and offset commits: readers see all of it or none of it
(LMDB readers work on snapshots), and a process killed before the commit leaves nothing.
This is what Kafka's transaction coordinator, producer epochs and transaction markers
provide, without any of them: consume-transform-produce is exactly-once by committing the
outputs and the input positions together.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ._errors import (
    CommitFailedError,
    IllegalStateError,
    InvalidArgumentError,
    InvalidRecordError,
    PartitionNotFoundError,
)
from ._groups import OffsetAndMetadata, commit_offsets, validate_group, validate_offsets
from ._idempotence import check_producer
from ._membership import now_ms, offsets_by_id
from ._records import HeadersInput, NewRecord, RecordMetadata, TopicPartition
from ._write import PreparedAppend, check_expected_versions, plainly_valid, single_expected

if TYPE_CHECKING:
    from ._consumer import Consumer
    from ._log import Log

__all__ = ["Transaction"]


class Transaction:
    """A group of appends and offset commits that is written atomically: all or nothing.

    Created by :meth:`eventlog.Log.transaction`; use it as a context manager::

        with log.transaction() as tx:
            tx.append("suspicious-transactions", value, key=key)
            tx.commit_offsets("fraud-detector", {TopicPartition("transactions", 0): 1042})

    Leaving the block normally commits; an exception aborts (nothing is written) and
    propagates. Records are checked when added (bad input raises at once) and written at
    the commit, in the order added; their metadata is in :attr:`results` afterwards.
    """

    def __init__(self, log: Log) -> None:
        self._log = log
        # Prepared appends, and plain single appends (checked, prepared at the commit).
        self._prepared: list[PreparedAppend | tuple[Any, ...]] = []
        self._commits: list[Any] = []  # callables run in the write transaction
        self._after: list[Any] = []  # callables run after a successful commit
        self._state = "open"
        self._results: list[RecordMetadata] | None = None
        # Set while a processor's handler holds the transaction: only the processor ends it
        # (a handler's own commit would write outputs without the input positions).
        self._held_by: str | None = None

    # ------------------------------------------------------------------ building

    def _check_open(self) -> None:
        if self._state != "open":
            raise IllegalStateError(f"this transaction is {self._state}; start a new one")
        self._log._check()

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
    ) -> None:
        """Add one record (see :meth:`eventlog.Log.append`; ``expected_version`` and an
        idempotent ``producer_id``/``sequence`` are checked at the commit, against what
        the transaction sees; a retried idempotent append is skipped there).

        Raises:
            InvalidRecordError, TopicNotFoundError, PartitionNotFoundError, ...: the record
                is not acceptable (the transaction stays open without it).
        """
        if self._state != "open":
            raise IllegalStateError(f"this transaction is {self._state}; start a new one")
        log = self._log
        log._check()
        if expected_version is not None or producer_id is not None or sequence is not None:
            producer = check_producer(producer_id, sequence)
            expected = single_expected(key, expected_version, topic)
            self._prepared.append(
                log._prepare(
                    topic,
                    (value,),
                    (key,),
                    (partition,),
                    (timestamp,),
                    (headers,) if headers is not None else None,
                    expected,
                    producer,
                )
            )
            return
        # A plain append is only checked now (every error it can have); it is partitioned
        # and encoded at the commit, together with its neighbours to the same topic (see
        # _coalesced), so a handler appending an output per input pays little per record.
        info = log._catalog.cached(topic) if type(topic) is str else None
        if info is None:
            info = log._storage.read(
                lambda txn: log._info(txn, topic), f"appending to topic {topic!r}"
            )
        if not plainly_valid(info, value, key, partition, timestamp, headers):
            log._appender.validate(
                info,
                1,
                (value,),
                (key,),
                (partition,),
                (timestamp,),
                (headers,) if headers is not None else None,
                now_ms(),
            )  # says what is wrong
        if partition is not None and partition >= info.partitions:
            raise PartitionNotFoundError(
                f"partition {partition} does not exist; topic {topic!r} has partitions "
                f"0..{info.partitions - 1}",
                topic=topic,
                partition=partition,
            )
        self._prepared.append((topic, value, key, partition, timestamp, headers))

    def append_batch(
        self,
        topic: str,
        records: Iterable[NewRecord],
        *,
        expected_versions: Mapping[bytes, int] | None = None,
        producer_id: str | None = None,
        sequence: int | None = None,
    ) -> None:
        """Add several records (see :meth:`eventlog.Log.append_batch`)."""
        self._check_open()
        producer = check_producer(producer_id, sequence)
        expected = (
            check_expected_versions(expected_versions, topic)
            if expected_versions is not None
            else None
        )
        records = list(records)
        for i, r in enumerate(records):
            if type(r) is not NewRecord:
                raise InvalidRecordError(
                    f"record {i}: expected eventlog.NewRecord; got {type(r).__name__}",
                    topic=topic if isinstance(topic, str) else None,
                )
        if not records:
            return
        values, keys, partitions, timestamps, headers = zip(*records, strict=False)
        self._prepared.append(
            self._log._prepare(
                topic, values, keys, partitions, timestamps, headers, expected, producer
            )
        )

    def commit_offsets(
        self,
        group: str | Consumer,
        offsets: Mapping[TopicPartition, int | OffsetAndMetadata] | None = None,
    ) -> None:
        """Commit consumer-group offsets (the next offset to read) with the transaction.

        Args:
            group: a group name (the offsets are set as they are, as Kafka's
                ``sendOffsetsToTransaction(offsets, groupId)`` does), or a group
                :class:`~eventlog.Consumer`: then the commit is fenced (refused with
                CommitFailedError at the commit, aborting the whole transaction, when the
                consumer no longer owns a partition), and ``offsets`` defaults to its
                positions.
            offsets: ``{TopicPartition: offset or OffsetAndMetadata}``.

        Raises:
            InvalidArgumentError: bad offsets, or no offsets for a group name.
            IllegalStateError: the consumer has no group.
        """
        self._check_open()
        from ._consumer import Consumer

        log = self._log
        if isinstance(group, Consumer):
            consumer = group
            if consumer._membership is None or consumer.group is None:
                raise IllegalStateError(
                    "this consumer has no group: only a group's offsets can be committed"
                )
            if offsets is None:
                wanted = consumer._positions_to_commit(consumer.assignment())
            else:
                wanted = validate_offsets(offsets)
            membership = consumer._membership
            subscribed = consumer._mode == "subscribe"
            member_id = membership.member_id if subscribed else None
            strict = offsets is not None

            def fenced(txn: Any) -> None:
                try:
                    membership.commit_in(txn, wanted, strict=strict, member_id=member_id)
                except CommitFailedError:
                    with membership.lock:
                        membership.dirty = True  # the next poll looks at the group again
                    raise

            def done() -> None:
                for tp, (offset, _m) in wanted.items():
                    consumer._committed[tp] = offset

            if wanted:
                self._commits.append(fenced)
                self._after.append(done)
            return
        validate_group(group)
        if offsets is None:
            raise InvalidArgumentError(
                f"give the offsets to commit for group {group!r} ({{TopicPartition: offset}})"
            )
        values = validate_offsets(offsets)

        def plain(txn: Any) -> None:
            by_id = offsets_by_id(log, txn, values, strict=True)
            commit_offsets(txn, log._dbs[b"groups"], group, by_id, now_ms())

        self._commits.append(plain)

    # ------------------------------------------------------------------ ending

    def commit(self) -> list[RecordMetadata]:
        """Write everything added, atomically; return the metadata of every record in the
        order added. Called by the ``with`` block's normal exit.

        Raises:
            ConcurrencyError: an expected version did not hold (nothing is written).
            CommitFailedError: a fenced offset commit was refused (nothing is written).
            IllegalStateError: the transaction was already committed or aborted, or it
                belongs to a processor's handler.
        """
        self._check_open()
        self._check_not_held("commit")
        log = self._log
        self._state = "failed"  # until the write succeeds
        prepared = self._coalesced()
        commits = self._commits

        def write(txn: Any) -> list[list[tuple[int, int]]]:
            bases = [log._write_prepared(txn, p) for p in prepared]
            for run in commits:
                run(txn)
            return bases

        if prepared or commits:
            bases = log._write(write, "committing a transaction")
        else:
            bases = []
        self._state = "committed"
        results: list[RecordMetadata] = []
        for p, b in zip(prepared, bases, strict=True):
            results.extend(p.metadata(b))
        self._results = results
        for after in self._after:
            after()
        return results

    def _coalesced(self) -> list[PreparedAppend]:
        """The appends to write: each run of consecutive plain single appends to one topic
        prepared as one append (stored as one batch per partition, in the order added),
        the others as they were prepared."""
        out: list[PreparedAppend] = []
        run: list[tuple[Any, ...]] = []

        def flush() -> None:
            if not run:
                return
            _, values, keys, partitions, timestamps, headers = zip(*run)
            out.append(
                self._log._prepare(
                    run[0][0],
                    values,
                    keys,
                    partitions,
                    timestamps,
                    None if all(h is None for h in headers) else headers,
                )
            )
            run.clear()

        for item in self._prepared:
            if isinstance(item, tuple):
                if run and run[0][0] != item[0]:
                    flush()
                run.append(item)
            else:
                flush()
                out.append(item)
        flush()
        return out

    def abort(self) -> None:
        """Discard everything added; nothing is written. Calling it again does nothing.

        Raises:
            IllegalStateError: the transaction belongs to a processor's handler (raise an
                exception from the handler instead: the processor then aborts).
        """
        self._check_not_held("abort")
        if self._state == "open":
            self._state = "aborted"
        self._prepared = []
        self._commits = []

    def _check_not_held(self, what: str) -> None:
        if self._held_by is not None:
            raise IllegalStateError(
                f"a {self._held_by}'s handler must not {what} the transaction it is given: "
                f"the {self._held_by} commits it with the input positions (raise an "
                f"exception to discard the batch)"
            )

    @property
    def results(self) -> list[RecordMetadata]:
        """The metadata of every record, in the order added (after the commit).

        Raises:
            IllegalStateError: the transaction has not committed.
        """
        if self._results is None:
            raise IllegalStateError(f"this transaction is {self._state}: no results")
        return list(self._results)

    @property
    def state(self) -> str:
        """``"open"``, ``"committed"``, ``"aborted"`` or ``"failed"`` (the commit raised)."""
        return self._state

    def __enter__(self) -> Transaction:
        self._check_open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None:
            # (Not abort(): its check would replace the block's exception.)
            if self._state == "open":
                self._state = "aborted"
            self._prepared = []
            self._commits = []
            return
        if self._state == "open":
            self.commit()

    def __repr__(self) -> str:
        records = sum(1 if isinstance(p, tuple) else p.n for p in self._prepared)
        return (
            f"<eventlog.Transaction {self._state}: {records} records, "
            f"{len(self._commits)} offset commits>"
        )
