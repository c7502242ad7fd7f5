"""Exactly-once consume-transform-produce: ``log.processor(...)``.

A processor is a group consumer whose handler writes its outputs into a transaction that
also commits the input positions. Outputs and positions become visible together or not at
all, so after any crash (or a rebalance that moves a partition to another member) each
input record's outputs appear exactly once: a record whose transaction committed is never
read again by the group, one whose transaction did not is read again and its outputs
written then. Fencing applies: a member that lost a partition cannot commit.

What it does not cover: side effects outside the log (an e-mail, a call to another
service) happen again when a record is processed again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ._errors import CommitFailedError, InvalidArgumentError
from ._records import Record, TopicPartition

if TYPE_CHECKING:
    from ._consumer import Consumer
    from ._log import Log
    from ._transaction import Transaction

__all__ = ["Processor"]

Handler = Callable[[Record, "Transaction"], Any]


class Processor:
    """Reads input topics as a consumer-group member and runs ``handler(record, tx)`` on
    each record; what the handler appends with ``tx.append(...)`` is committed atomically
    with the input positions (see the module notes). Create it with
    :meth:`eventlog.Log.processor`.
    """

    def __init__(
        self,
        log: Log,
        topics: Iterable[str],
        *,
        group: str,
        handler: Handler,
        **consumer_options: Any,
    ) -> None:
        if not callable(handler):
            raise InvalidArgumentError("handler must be a callable handler(record, tx)")
        if consumer_options.get("enable_auto_commit"):
            raise InvalidArgumentError(
                "a processor commits input positions in its transactions: "
                "enable_auto_commit must stay off"
            )
        consumer_options["enable_auto_commit"] = False
        self._log = log
        self._handler = handler
        self._consumer: Consumer = log.consumer(*topics, group=group, **consumer_options)

    @property
    def consumer(self) -> Consumer:
        """The underlying group consumer (its assignment, positions, lag)."""
        return self._consumer

    def poll(self, timeout: float = 0.0, max_records: int | None = None) -> int:
        """Poll once and process what came: one transaction for the batch (the handler's
        outputs and the positions after the batch). Returns the number of input records
        processed.

        If the handler raises, nothing of the batch is written, the consumer is moved back
        to the batch's first records (they are processed again at the next poll) and the
        exception propagates.

        Raises:
            CommitFailedError: the consumer lost a partition of the batch to a rebalance;
                nothing was written, and the partition's new owner processes its records.
            Whatever the handler raises.
        """
        consumer = self._consumer
        records = consumer.poll(timeout=timeout, max_records=max_records)
        if not records:
            return 0
        # Each partition's first offset and the position after the batch, keyed by plain
        # tuples (a TopicPartition per record would cost more than the bookkeeping).
        first: dict[tuple[str, int], int] = {}
        after: dict[tuple[str, int], int] = {}
        for record in records:
            key = (record.topic, record.partition)
            if key not in first:
                first[key] = record.offset
            after[key] = record.offset + 1
        tx = self._log.transaction()
        handler = self._handler
        try:
            tx._held_by = "processor"
            try:
                for record in records:
                    handler(record, tx)
            finally:
                tx._held_by = None
            tx.commit_offsets(consumer, {TopicPartition(*k): o for k, o in after.items()})
            tx.commit()
        except BaseException:
            tx.abort()
            assigned = consumer.assignment()
            for (topic, partition), offset in first.items():
                tp = TopicPartition(topic, partition)
                if tp in assigned:
                    consumer.seek(tp, offset)
            raise
        return len(records)

    def run(
        self,
        *,
        idle_timeout: float | None = None,
        max_records: int | None = None,
        poll_timeout: float = 0.5,
    ) -> int:
        """Process records until nothing arrives for ``idle_timeout`` seconds (None: until
        closed from another thread, or the handler raises). A batch refused because of a
        rebalance is not an error here: its records go to their new owner. Returns the
        number of input records processed."""
        total = 0
        idle_since = time.monotonic()
        while not self._consumer.closed:
            try:
                done = self.poll(timeout=poll_timeout, max_records=max_records)
            except CommitFailedError:
                # A rebalance took a partition of the batch: not idle time (the records
                # are the new owner's, and this member rejoins at its next poll).
                idle_since = time.monotonic()
                continue
            if done:
                total += done
                idle_since = time.monotonic()
            elif idle_timeout is not None and time.monotonic() - idle_since >= idle_timeout:
                break
        return total

    def close(self) -> None:
        """Leave the group (nothing is committed outside transactions). Idempotent."""
        self._consumer.close(autocommit=False)

    @property
    def closed(self) -> bool:
        """True after :meth:`close`."""
        return self._consumer.closed

    def __enter__(self) -> Processor:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
