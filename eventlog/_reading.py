"""The reading methods of :class:`eventlog.Log` (a mixin): ``read``, ``read_columns``,
``scan``, the offset lookups and ``wait``."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from ._catalog import MAX_OFFSET, MAX_TIMESTAMP, PartitionState
from ._errors import (
    InvalidArgumentError,
    OffsetOutOfRangeError,
    PartitionNotFoundError,
    TopicNotFoundError,
)
from ._logbase import LogBase
from ._records import Record, RecordColumns
from ._topic_admin import _check_int

__all__ = ["ReadAPI"]


class ReadAPI(LogBase):
    """Reading methods of :class:`eventlog.Log` (a mixin, as TopicAdmin is)."""

    def read(
        self,
        topic: str,
        partition: int,
        offset: int = 0,
        *,
        max_records: int = 500,
        max_bytes: int | None = None,
    ) -> list[Record]:
        """Read records of one partition, starting at ``offset``.

        Args:
            topic: the topic name.
            partition: the partition number.
            offset: the first offset to read. If that record was removed by compaction,
                reading continues at the next existing one.
            max_records: at most this many records (>= 1).
            max_bytes: stop once this many key+value bytes are returned (at least one
                record is returned even if larger, as in Kafka).

        Returns:
            Records in offset order; an empty list at or past the end of the partition.

        Raises:
            OffsetOutOfRangeError: ``offset`` is below the log start offset.
            TopicNotFoundError, PartitionNotFoundError, InvalidArgumentError.
            CorruptLogError: a stored batch fails its checksum.
        """
        cols = self._read(topic, partition, offset, max_records, max_bytes, records=True)
        return cols  # type: ignore[return-value]

    def read_columns(
        self,
        topic: str,
        partition: int,
        offset: int = 0,
        *,
        max_records: int = 10_000,
        max_bytes: int | None = None,
    ) -> RecordColumns:
        """Read a range of one partition as columns (the bulk read path).

        Like :meth:`read`, but returns parallel lists (offsets, timestamps, keys, values,
        headers) instead of one object per record, and ``next_offset`` to continue from.
        """
        return self._read(
            topic,
            partition,
            offset,
            max_records,
            max_bytes,  # type: ignore[return-value]
            records=False,
        )

    def _read(
        self,
        topic: str,
        partition: int,
        offset: int,
        max_records: int,
        max_bytes: int | None,
        *,
        records: bool,
        topic_id: int | None = None,
    ) -> list[Record] | RecordColumns:
        self._check()
        if type(offset) is not int:
            offset = _check_int("offset", offset, 0, MAX_OFFSET, "between 0 and 2**63-1")
        elif not 0 <= offset <= MAX_OFFSET:
            raise InvalidArgumentError(
                f"offset must be between 0 and 2**63-1; got {offset}",
                topic=topic,
                partition=partition,
                offset=offset,
            )
        if type(max_records) is not int or max_records < 1:
            _check_int("max_records", max_records, 1, MAX_OFFSET, ">= 1")
        if max_bytes is not None:
            _check_int("max_bytes", max_bytes, 1, MAX_OFFSET, ">= 1")

        def read(txn: Any) -> list[Record] | RecordColumns:
            info = self._info(txn, topic)
            if topic_id is not None and info.topic_id != topic_id:
                raise TopicNotFoundError(
                    f"topic {topic!r} was deleted (and re-created) during the scan; the "
                    f"records read so far belong to the deleted topic",
                    topic=topic,
                )
            state = self._reader.state(txn, info, partition)
            if offset < state.log_start:
                raise OffsetOutOfRangeError(
                    f"offset {offset} of topic {topic!r} partition {partition} is below the "
                    f"log start offset {state.log_start} (those records were deleted); read "
                    f"from {state.log_start} or later",
                    topic=topic,
                    partition=partition,
                    offset=offset,
                )
            return self._reader.collect(
                txn, info, partition, offset, state.next_offset, max_records, max_bytes, records
            )

        return self._storage.read(read, f"reading topic {topic!r}")

    def scan(
        self,
        topic: str,
        partition: int | None = None,
        *,
        start_offset: int | None = None,
        start_timestamp: int | None = None,
        end_offset: int | None = None,
        page_size: int = 1000,
    ) -> Iterator[Record]:
        """Iterate over a topic's records, partition by partition, in offset order.

        Each page is read in its own short transaction, so a slow consumer of the iterator
        never pins old pages (which would make the data file grow).

        Args:
            topic: the topic name.
            partition: one partition, or None for all (partition 0 first).
            start_offset: start here (clamped to the log start offset); default: the start.
            start_timestamp: start at the first record with timestamp >= this (ms).
            end_offset: stop before this offset; default: the end offsets when the scan
                starts (records appended later are not included).
            page_size: records per read transaction.

        Raises:
            TopicNotFoundError, PartitionNotFoundError, InvalidArgumentError.
        """
        self._check()
        if start_offset is not None and start_timestamp is not None:
            raise InvalidArgumentError(
                "give start_offset or start_timestamp, not both", topic=topic
            )
        page_size = _check_int("page_size", page_size, 1, 1_000_000, "between 1 and 1000000")
        if start_offset is not None:
            _check_int("start_offset", start_offset, 0, MAX_OFFSET, "between 0 and 2**63-1")
        if end_offset is not None:
            _check_int("end_offset", end_offset, 0, MAX_OFFSET, "between 0 and 2**63-1")

        def snapshot(txn: Any) -> tuple[int, list[PartitionState]]:
            info = self._info(txn, topic)
            return info.topic_id, self._reader.states(txn, info)

        topic_id, states = self._storage.read(snapshot, f"scanning {topic!r}")
        ends = {p: st.next_offset for p, st in enumerate(states)}
        starts = {p: st.log_start for p, st in enumerate(states)}
        if partition is None:
            selected = sorted(ends)
        else:
            if type(partition) is not int:
                raise InvalidArgumentError(
                    f"partition must be None or an int; got {type(partition).__name__} "
                    f"{partition!r}",
                    topic=topic,
                )
            if partition not in ends:
                raise PartitionNotFoundError(
                    f"partition {partition!r} does not exist; topic {topic!r} has partitions "
                    f"0..{len(ends) - 1}",
                    topic=topic,
                    partition=partition if isinstance(partition, int) else None,
                )
            selected = [partition]
        by_time = (
            self.offsets_for_times(topic, start_timestamp) if start_timestamp is not None else None
        )
        return self._scan(
            topic, topic_id, selected, starts, ends, start_offset, by_time, end_offset, page_size
        )

    def _scan(
        self,
        topic: str,
        topic_id: int,
        selected: list[int],
        starts: dict[int, int],
        ends: dict[int, int],
        start_offset: int | None,
        by_time: dict[int, int | None] | None,
        end_offset: int | None,
        page_size: int,
    ) -> Iterator[Record]:
        for p in selected:
            stop = ends[p] if end_offset is None else end_offset
            if by_time is not None:
                found = by_time[p]
                if found is None:
                    continue
                position = found
            else:
                position = max(start_offset or 0, starts[p])
            while position < stop:
                try:
                    page: list[Record] = self._read(  # type: ignore[assignment]
                        topic, p, position, page_size, None, records=True, topic_id=topic_id
                    )
                except OffsetOutOfRangeError:
                    # Retention moved the start while we were reading: skip ahead.
                    position = self.beginning_offsets(topic)[p]
                    continue
                if not page:
                    break
                for record in page:
                    if record.offset >= stop:
                        return_now = True
                        break
                    yield record
                else:
                    return_now = False
                if return_now:
                    break
                position = page[-1].offset + 1

    # ------------------------------------------------------------------ offsets

    def beginning_offsets(self, topic: str) -> dict[int, int]:
        """``{partition: log start offset}``: the first offset still stored per partition."""
        self._check()
        return self._storage.read(
            lambda txn: {
                p: s.log_start
                for p, s in enumerate(self._reader.states(txn, self._info(txn, topic)))
            },
            f"reading offsets of {topic!r}",
        )

    def end_offsets(self, topic: str) -> dict[int, int]:
        """``{partition: end offset}``: the offset the next appended record will get."""
        self._check()
        return self._storage.read(
            lambda txn: {
                p: s.next_offset
                for p, s in enumerate(self._reader.states(txn, self._info(txn, topic)))
            },
            f"reading offsets of {topic!r}",
        )

    def offsets_for_times(self, topic: str, timestamp: int) -> dict[int, int | None]:
        """``{partition: offset or None}``: the earliest offset whose timestamp is >=
        ``timestamp`` in each partition, or None when there is none.

        Uses the time index (one seek per partition), not a scan.
        """
        self._check()
        _check_int("timestamp", timestamp, 0, MAX_TIMESTAMP, ">= 0 (milliseconds since the epoch)")

        def find(txn: Any) -> dict[int, int | None]:
            info = self._info(txn, topic)
            return {
                p: self._reader.offset_for_time(txn, info, p, st, timestamp)
                for p, st in enumerate(self._reader.states(txn, info))
            }

        return self._storage.read(find, f"reading offsets of {topic!r}")

    # ------------------------------------------------------------------ waiting

    def wait(self, topic: str, partition: int, offset: int, timeout: float | None = None) -> bool:
        """Block until ``partition`` has a record at or past ``offset``, or ``timeout`` passes.

        Appends from this process wake the waiter at once; appends from other processes
        are noticed within a few milliseconds.

        Returns:
            True when records at or past ``offset`` exist, False on timeout.
        """
        self._check()
        _check_int("offset", offset, 0, MAX_OFFSET, "between 0 and 2**63-1")
        if timeout is not None and (
            not isinstance(timeout, int | float)
            or isinstance(timeout, bool)
            or not timeout >= 0  # also rejects NaN
        ):
            raise InvalidArgumentError(f"timeout must be None or seconds >= 0; got {timeout!r}")
        if timeout is not None and timeout == float("inf"):
            timeout = None
        storage = self._storage
        deadline = None if timeout is None else time.monotonic() + timeout

        def ready(txn: Any) -> bool:
            info = self._info(txn, topic)
            return bool(self._reader.state(txn, info, partition).next_offset > offset)

        while True:
            seen = storage.commits
            if storage.read(ready, f"waiting on {topic!r}"):
                return True
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return False
            # In-process commits wake the waiter; other processes' commits are polled.
            pause = 0.005 if remaining is None else min(0.005, remaining)
            storage.wait_for_commit(seen, pause)
            self._check()
