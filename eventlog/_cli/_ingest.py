"""Reading input lines and appending them in batches, for ``produce`` and ``import``:
a bad line is reported with its number, after every line before it was written."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import IO, Any

from .._errors import EventLogError
from .._log import Log
from .._records import NewRecord
from ._common import CommandError, iter_line_chunks
from ._output import Output, plural

__all__ = ["LineError", "Writer", "json_obj", "read_input", "stopped"]

_BATCH = 1000  # lines per append_batch: one commit each


class Writer:
    """Appends records in batches, keeping each record's input line number, so that a
    failure names its line and everything before it is written."""

    def __init__(self, log: Log, out: Output, *, verbose: bool = False) -> None:
        self.log = log
        self.out = out
        self.verbose = verbose
        self.written = 0
        self.mismatched = 0
        self.first_mismatch = ""
        # Why offsets moved: "gap" (the export skips offsets: the record lands before its
        # exported offset) and/or "occupied" (the partition was ahead: it lands after).
        self.mismatch_causes: set[str] = set()
        self._pending: list[tuple[int, str, NewRecord, int | None]] = []
        self._next: dict[tuple[str, int], int] = {}
        self._unplaced = False

    def add(self, line: int, topic: str, record: NewRecord, offset: int | None = None) -> None:
        """Queue a record read from input line ``line`` (``offset``: the offset it had in
        an export, to compare with the one it gets). Raises LineError when a batch
        written meanwhile fails."""
        if self._pending and self._pending[0][1] != topic:
            self.flush()
        if record.partition is None:
            self._unplaced = True  # its partition, so the offsets it moves, is not known yet
        else:
            self._next[(topic, record.partition)] = self.predicted(topic, record.partition) + 1
        self._pending.append((line, topic, record, offset))
        if len(self._pending) >= _BATCH:
            self.flush()

    def predicted(self, topic: str, partition: int) -> int:
        """The offset the next record of the partition will get, queued records counted
        (assuming no other writer); -1 for a partition that does not exist."""
        if self._unplaced:
            self.flush()
        tp = (topic, partition)
        if tp not in self._next:
            ends = self.log.end_offsets(topic)
            if partition not in ends:
                return -1
            self._next[tp] = ends[partition]
        return self._next[tp]

    def flush(self) -> None:
        """Write the queued records: one append_batch, or, if it fails, one append per
        record up to the failing one (then LineError names its line)."""
        pending, self._pending = self._pending, []
        self._unplaced = False
        if not pending:
            return
        topic = pending[0][1]
        try:
            metas = list(self.log.append_batch(topic, [p[2] for p in pending]))
        except EventLogError:
            # The batch wrote nothing. Write its records one by one to find the line that
            # fails, so that everything before it is written and the error names it.
            metas = []
            for line, _topic, record, _offset in pending:
                try:
                    metas.append(
                        self.log.append(
                            topic,
                            record.value,
                            key=record.key,
                            partition=record.partition,
                            timestamp=record.timestamp,
                            headers=record.headers,
                        )
                    )
                except EventLogError as exc:
                    self._done(pending[: len(metas)], metas)
                    raise LineError(line, _one_record(str(exc)), topic=exc.topic) from exc
            # (every record succeeded alone: what failed the batch has passed)
        self._done(pending, metas)

    def _done(
        self, pending: list[tuple[int, str, NewRecord, int | None]], metas: list[Any]
    ) -> None:
        for (line, topic, _record, offset), meta in zip(pending, metas):
            self._next[(topic, meta.partition)] = meta.offset + 1
            if offset is not None and offset != meta.offset:
                self.mismatched += 1
                self.mismatch_causes.add("gap" if meta.offset < offset else "occupied")
                if not self.first_mismatch:
                    self.first_mismatch = (
                        f"line {line}: {topic}[{meta.partition}] exported offset {offset}, "
                        f"now {meta.offset}"
                    )
            if self.verbose:
                self.out.line(f"{topic} {meta.partition} {meta.offset}")
        self.written += len(metas)


def _one_record(message: str) -> str:
    # The library numbers the records of a batch ("record 0: ..."); appended alone, the
    # record is the line's, which the message names instead.
    message = re.sub(r"^record \d+: ", "", message)
    return re.sub(r"^record \d+ is ", "the record is ", message)


class LineError(Exception):
    def __init__(self, line: int, message: str, *, topic: str | None = None) -> None:
        super().__init__(message)
        self.line = line
        self.message = message
        self.topic = topic  # the topic the library named, for the hints in the message


def stopped(exc: LineError, written: int, source: str) -> CommandError:
    resume = f"tail -n +{exc.line} {source if source != '-' else 'INPUT'} | eventlog ..."
    return CommandError(
        f"line {exc.line}: {exc.message}; {plural(written, 'record')} before it "
        f"{'was' if written == 1 else 'were'} written, nothing "
        f"from line {exc.line} on; fix the line and resume from it (e.g. {resume})",
        topic=exc.topic,
    )


def _decode(raw: bytes, line: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise LineError(line, "not valid UTF-8") from None


def json_obj(raw: bytes, line: int) -> Any:
    try:
        return json.loads(_decode(raw, line))
    except json.JSONDecodeError as exc:
        raise LineError(line, f"not valid JSON ({exc.msg} at column {exc.colno})") from None


def read_input(stream: IO[bytes], handle: Callable[[int, bytes], None], writer: Writer) -> None:
    """Feed every input line to ``handle``, flushing the writer after each chunk read."""
    number = 0
    try:
        for chunk in iter_line_chunks(stream, _BATCH):
            for raw in chunk:
                number += 1
                handle(number, raw)
            writer.flush()
    except LineError:
        writer.flush()  # the good lines before the bad one
        raise
