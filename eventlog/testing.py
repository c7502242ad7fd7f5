"""Helpers for testing applications that use eventlog.

A real log in a temporary directory costs milliseconds, so tests can use the real thing
instead of a mock. With pytest, installing eventlog is enough: its plugin provides the
fixtures ``eventlog_log`` (a fresh open log per test), ``eventlog_factory`` (several logs,
or reopening one) and ``eventlog_clock`` (a :class:`ManualClock` installed for the test),
and reports logs, producers and consumers a test leaves open. This module has the rest:

- :class:`ManualClock`: time that moves only when the test says so, used by record
  timestamps, retention, compaction lags and tombstones, and consumer-group session
  timeouts;
- :func:`seed`, :func:`load_jsonl`: records into topics, from Python or JSON lines;
- :func:`dump`, :func:`dump_jsonl`: a topic (or what a consumer group has consumed of it)
  as JSON lines, for golden-file comparisons;
- :func:`run_until_caught_up`: run a consumer (and a handler) until it has read everything
  there is, then return, with no sleeps;
- :func:`assert_topic_contains`, :func:`wait_for_records`: assertions on a topic's content;
- :func:`eventlog.replay` (re-exported here): rebuild state from a topic or one key.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from . import _clock
from ._consumer import Consumer
from ._errors import InvalidArgumentError, TopicNotFoundError
from ._jsonl import parse_line, read_lines, record_to_json
from ._log import Log
from ._records import NewRecord, Record, RecordMetadata, TopicPartition
from ._replay import replay
from .serde import as_deserializer, as_serializer

__all__ = [
    "ManualClock",
    "assert_topic_contains",
    "dump",
    "dump_jsonl",
    "load_jsonl",
    "replay",
    "run_until_caught_up",
    "seed",
    "wait_for_records",
]

Codec = Callable[[Any], Any]


def _ser(x: object, what: str) -> Codec | None:
    """A serializer argument: a callable or an ``eventlog.serde`` object."""
    return as_serializer(x, what)


def _de(x: object, what: str) -> Codec | None:
    return as_deserializer(x, what)


# --------------------------------------------------------------------------- time


class ManualClock:
    """A clock that moves only when told to.

    Installed (``with clock:``, or the ``eventlog_clock`` fixture), it is the clock of
    every log in the process: default record timestamps, retention (``retention.ms``),
    compaction (lags, tombstone horizons) and consumer-group leases (a member whose session
    timeout passes without a heartbeat in clock time is expired by the next member that
    looks; its own next heartbeat finds it gone). Waiting (poll timeouts) still uses real
    time.

    Args:
        start: the initial time: milliseconds since the epoch, an aware ``datetime``, or
            None for the current time.
    """

    def __init__(self, start: int | _dt.datetime | None = None) -> None:
        if start is None:
            self._now = time.time_ns() // 1_000_000
        else:
            self._now = _to_ms(start, "start")
        self._previous: Callable[[], int] | None = None
        self._installed = False

    def __call__(self) -> int:
        return self._now

    def now_ms(self) -> int:
        """The clock's time in milliseconds since the epoch."""
        return self._now

    def advance(
        self,
        ms: int = 0,
        *,
        seconds: float = 0,
        minutes: float = 0,
        hours: float = 0,
        days: float = 0,
    ) -> int:
        """Move time forward; return the new time (ms).

        Raises:
            InvalidArgumentError: a negative step (time never goes back).
        """
        if type(ms) is not int:
            raise InvalidArgumentError(
                f"ms must be an int (use seconds= for fractions); got {type(ms).__name__} {ms!r}"
            )
        for name, amount in (
            ("seconds", seconds),
            ("minutes", minutes),
            ("hours", hours),
            ("days", days),
        ):
            if not isinstance(amount, int | float) or isinstance(amount, bool):
                raise InvalidArgumentError(
                    f"{name} must be a number; got {type(amount).__name__} {amount!r}"
                )
        step = ms + round(1000 * (seconds + 60 * minutes + 3600 * hours + 86400 * days))
        if step < 0:
            raise InvalidArgumentError(f"time only moves forward; got a step of {step} ms")
        self._now += step
        return self._now

    def set(self, when: int | _dt.datetime) -> None:
        """Move time forward to ``when`` (ms since the epoch or an aware datetime).

        Raises:
            InvalidArgumentError: ``when`` is before the clock's time.
        """
        target = _to_ms(when, "when")
        if target < self._now:
            raise InvalidArgumentError(
                f"time only moves forward: {target} is before the clock's {self._now}"
            )
        self._now = target

    def install(self) -> ManualClock:
        """Make this the clock of every log in the process (until :meth:`uninstall`)."""
        if self._installed:
            raise InvalidArgumentError("this clock is already installed")
        self._previous = _clock.replace_clock(self)
        self._installed = True
        return self

    def uninstall(self) -> None:
        """Put back the clock that was installed before."""
        if self._installed:
            _clock.replace_clock(self._previous)
            self._installed = False

    def __enter__(self) -> ManualClock:
        return self.install()

    def __exit__(self, *exc: object) -> None:
        self.uninstall()

    def __repr__(self) -> str:
        return f"<ManualClock {self._now} ms{' (installed)' if self._installed else ''}>"


def _to_ms(when: int | _dt.datetime, name: str) -> int:
    if isinstance(when, _dt.datetime):
        if when.tzinfo is None:
            raise InvalidArgumentError(f"{name} must be an aware datetime (with a tzinfo)")
        return int(when.timestamp() * 1000)
    if type(when) is not int or when < 0:
        raise InvalidArgumentError(
            f"{name} must be milliseconds since the epoch (an int >= 0) or a datetime; got {when!r}"
        )
    return when


# --------------------------------------------------------------------------- seeding


_RECORD_FIELDS = frozenset({"value", "key", "headers", "timestamp", "partition"})


def _auto_bytes(item: Any) -> bytes | None:
    """The default serializer for seeding: bytes as they are, text as UTF-8, anything
    else as compact JSON."""
    if item is None or isinstance(item, bytes):
        return item
    if isinstance(item, str):
        return item.encode("utf-8")
    return json.dumps(item, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _ensure_topic(log: Log, topic: str, create: bool, partitions: int) -> None:
    if topic in log.list_topics():
        return
    if not create:
        raise TopicNotFoundError(f"topic {topic!r} does not exist", topic=topic)
    log.create_topic(topic, partitions, exist_ok=True, retention_ms=-1)


def seed(
    log: Log,
    topic: str,
    records: Iterable[Any],
    *,
    key_serializer: Codec | None = None,
    value_serializer: Codec | None = None,
    create: bool = True,
    partitions: int = 1,
) -> list[RecordMetadata]:
    """Append records to a topic in one atomic batch; return their metadata.

    Each item is a :class:`eventlog.NewRecord` (stored as it is); a mapping with any of
    ``value``, ``key``, ``headers`` (``[(name, value), ...]``), ``timestamp``,
    ``partition`` (a dict meant as a value goes under ``"value"``); or a bare value. Keys
    and values go through the serializers (callables or ``eventlog.serde`` objects;
    default: bytes as they are, str as UTF-8, anything else as JSON); a None value stays
    None (a tombstone).

    Args:
        create: create the topic if it does not exist (with ``partitions`` partitions and
            unlimited retention, so records with old timestamps stay).

    Raises:
        TopicNotFoundError: the topic does not exist and ``create`` is false.
        InvalidRecordError, InvalidArgumentError: a record is malformed.
    """
    key_ser = _ser(key_serializer, "key_serializer") or _auto_bytes
    value_ser = _ser(value_serializer, "value_serializer") or _auto_bytes

    def value_of(item: Any) -> bytes | None:
        return None if item is None else value_ser(item)  # None stays a tombstone

    batch: list[NewRecord] = []
    for i, item in enumerate(records):
        if isinstance(item, NewRecord):
            batch.append(item)
            continue
        if isinstance(item, Mapping):
            unknown = set(item) - _RECORD_FIELDS
            if unknown:
                raise InvalidArgumentError(
                    f"record {i}: unknown field(s) {sorted(unknown)}; a mapping describes a "
                    f"record with value, key, headers, timestamp, partition (to seed a dict "
                    f"as a value, write {{'value': {{...}}}})",
                    topic=topic,
                )
            key = item.get("key")
            headers = item.get("headers")
            batch.append(
                NewRecord(
                    value_of(item.get("value")),
                    key=None if key is None else key_ser(key),
                    partition=item.get("partition"),
                    timestamp=item.get("timestamp"),
                    headers=None
                    if headers is None
                    else [(name, _auto_bytes(hvalue)) for name, hvalue in headers],
                )
            )
            continue
        batch.append(NewRecord(value_of(item)))
    _ensure_topic(log, topic, create, partitions)
    if not batch:
        return []
    return list(log.append_batch(topic, batch))


def load_jsonl(
    log: Log,
    source: str | os.PathLike[str] | Iterable[str],
    *,
    topic: str | None = None,
    key_serializer: Codec | None = None,
    value_serializer: Codec | None = None,
    create: bool = True,
) -> list[RecordMetadata]:
    """Append the records of a JSON-lines file (the format :func:`dump_jsonl` writes) in
    one atomic transaction per topic; return their metadata.

    Each line's ``topic`` says where it goes unless ``topic`` is given (which overrides
    it); keys, values, headers, timestamps and partitions are kept; offsets are assigned
    by the log. See ``eventlog._jsonl`` for the format (text, ``{"base64": ...}`` or any
    JSON value).

    Args:
        source: a path, or an iterable of lines.
        create: create missing topics (one partition more than the largest partition
            named, unlimited retention).

    Raises:
        InvalidRecordError: a malformed line (the message names the line).
        TopicNotFoundError: a topic does not exist and ``create`` is false.
    """
    if isinstance(source, str | os.PathLike):
        name = os.fspath(source)
        with open(name, encoding="utf-8") as f:
            lines: list[str] = f.readlines()
    else:
        name = "<lines>"
        lines = list(source)
    by_topic: dict[str, list[NewRecord]] = {}
    key_ser = _ser(key_serializer, "key_serializer")
    value_ser = _ser(value_serializer, "value_serializer")
    for where, obj in read_lines(lines, name):
        line_topic, record = parse_line(
            obj, where, key_serializer=key_ser, value_serializer=value_ser
        )
        target = topic or line_topic
        if target is None:
            raise InvalidArgumentError(f"{where}: the line names no topic; pass topic=")
        by_topic.setdefault(target, []).append(record)
    out: list[RecordMetadata] = []
    for name_, records in by_topic.items():
        highest = max((r.partition for r in records if r.partition is not None), default=0)
        _ensure_topic(log, name_, create, highest + 1)
        out.extend(log.append_batch(name_, records))
    return out


# --------------------------------------------------------------------------- capturing


def _group_view(log: Log, topic: str, group: str) -> dict[int, int]:
    committed = log.committed_offsets(group, topic)
    return {tp.partition: meta.offset for tp, meta in committed.items()}


def dump(
    log: Log,
    topic: str,
    *,
    group: str | None = None,
    partition: int | None = None,
    key_deserializer: Codec | None = None,
    value_deserializer: Codec | None = None,
    timestamps: bool = True,
) -> list[dict[str, Any]]:
    """A topic's records as JSON-ready dicts, partition by partition in offset order.

    Args:
        group: only what this consumer group has consumed (records below its committed
            offsets; partitions it never committed contribute nothing).
        partition: only this partition.
        key_deserializer, value_deserializer: turn key/value bytes into JSON values (e.g.
            ``eventlog.serde.json``) for readable golden files; otherwise they are text or
            ``{"base64": ...}``.
        timestamps: include timestamps (leave out when the test does not control time).
    """
    key_de = _de(key_deserializer, "key_deserializer")
    value_de = _de(value_deserializer, "value_deserializer")
    names = [partition] if partition is not None else None
    bounds = _group_view(log, topic, group) if group is not None else None
    out = []
    for record in log.scan(topic, names[0] if names else None):
        if bounds is not None and record.offset >= bounds.get(record.partition, 0):
            continue
        row = record_to_json(record, key_deserializer=key_de, value_deserializer=value_de)
        if not timestamps:
            del row["timestamp"]
        out.append(row)
    return out


def dump_jsonl(
    log: Log,
    topic: str,
    dest: str | os.PathLike[str] | None = None,
    **options: Any,
) -> str:
    """:func:`dump` as JSON-lines text (keys sorted, one record per line): returned, and
    written to ``dest`` when given. Load it back with :func:`load_jsonl`."""
    text = "".join(
        json.dumps(row, sort_keys=True, ensure_ascii=False) + "\n"
        for row in dump(log, topic, **options)
    )
    if dest is not None:
        with open(dest, "w", encoding="utf-8") as f:
            f.write(text)
    return text


# --------------------------------------------------------------------------- processing


def run_until_caught_up(
    consumer: Consumer,
    handler: Callable[[Record], Any] | None = None,
    *,
    timeout: float = 10.0,
    commit: bool = True,
) -> list[Record]:
    """Poll ``consumer`` (calling ``handler`` on each record) until it has read everything
    in its partitions, then return the records read. No sleeping: it stops as soon as the
    consumer's position reached the end offset of every partition it is assigned (end
    offsets looked at after the last poll, so records the handler appends to the
    consumer's own topics are processed too).

    A group consumer first joins and waits for its assignment. With ``commit`` (and a
    group), its positions are committed before returning. A paused partition with
    records left keeps it from catching up (it times out).

    Raises:
        TimeoutError: not caught up after ``timeout`` seconds (the message shows the
            positions and end offsets).
        Whatever ``handler`` raises (the records before it are processed).
    """
    deadline = time.monotonic() + timeout
    seen: list[Record] = []
    while True:
        batch = consumer.poll(timeout=0.05 if not seen else 0.0)
        for record in batch:
            if handler is not None:
                handler(record)
            seen.append(record)
        if batch:
            continue
        behind = _behind(consumer)
        if behind is not None and not behind:
            if commit and consumer.group is not None and consumer.assignment():
                consumer.commit()
            return seen
        if time.monotonic() >= deadline:
            raise TimeoutError(
                f"the consumer did not catch up within {timeout} s: "
                + (
                    "it has no assignment yet"
                    if behind is None
                    else ", ".join(
                        f"{tp.topic}[{tp.partition}] at {pos} of {end}"
                        + (" (paused)" if tp in consumer.paused() else "")
                        for tp, (pos, end) in sorted(behind.items())
                    )
                )
            )


def _behind(consumer: Consumer) -> dict[TopicPartition, tuple[int, int]] | None:
    """Partitions whose position is below their end offset (None: nothing assigned yet
    while a group member)."""
    assigned = consumer.assignment()
    if not assigned:
        return None if consumer.group is not None else {}
    lag = consumer.lag()
    return {
        tp: (consumer.position(tp), consumer.position(tp) + lag[tp])
        for tp in assigned
        if lag.get(tp, 0) > 0
    }


_FIELDS = frozenset(Record._fields)


def _as_expected(item: Any) -> dict[str, Any]:
    if isinstance(item, Mapping):
        unknown = set(item) - _FIELDS
        if unknown:
            raise InvalidArgumentError(
                f"an expected record {dict(item)!r} names {sorted(unknown)}, which are not "
                f"Record fields ({', '.join(Record._fields)}); to expect a value that is a "
                f"dict, write {{'value': ...}}"
            )
        return dict(item)
    if isinstance(item, tuple) and len(item) == 2:
        return {"key": item[0], "value": item[1]}
    return {"value": item}


def _matches(record: Record, expected: Mapping[str, Any]) -> bool:
    return all(getattr(record, name) == want for name, want in expected.items())


def _topic_records(
    log: Log, topic: str, partition: int | None, key_de: Codec | None, value_de: Codec | None
) -> list[Record]:
    key_de = _de(key_de, "key_deserializer")
    value_de = _de(value_de, "value_deserializer")
    out = []
    for record in log.scan(topic, partition):
        if key_de is not None and record.key is not None:
            record = record._replace(key=key_de(record.key))
        if value_de is not None and record.value is not None:
            record = record._replace(value=value_de(record.value))
        out.append(record)
    return out


def _diff(records: Sequence[Record], expected: Sequence[Mapping[str, Any]]) -> str:
    lines = ["expected:"] + [f"  {e}" for e in expected] + ["found:"]
    lines += [
        f"  {{'partition': {r.partition}, 'offset': {r.offset}, 'key': {r.key!r}, "
        f"'value': {r.value!r}}}"
        for r in records
    ]
    return "\n".join(lines)


def _contains(
    records: Sequence[Record], expected: Sequence[Mapping[str, Any]], exact: bool
) -> bool:
    if exact:
        return len(records) == len(expected) and all(
            _matches(r, e) for r, e in zip(records, expected, strict=True)
        )
    # In order, not necessarily adjacent.
    it = iter(records)
    return all(any(_matches(r, e) for r in it) for e in expected)


def assert_topic_contains(
    log: Log,
    topic: str,
    expected: Iterable[Any],
    *,
    exact: bool = True,
    partition: int | None = None,
    key_deserializer: Codec | None = None,
    value_deserializer: Codec | None = None,
) -> None:
    """Assert what a topic holds, in order (partition by partition, by offset).

    Each expected item is a value, a ``(key, value)`` pair, or a mapping of Record fields
    to compare (``{"key": b"a", "headers": (("h", b"1"),)}``); fields not named are not
    compared. ``exact``: the topic holds exactly these records; otherwise it holds them
    in this order, among others.

    Raises:
        AssertionError: with what was expected and what was found.
    """
    want = [_as_expected(item) for item in expected]
    records = _topic_records(log, topic, partition, key_deserializer, value_deserializer)
    if not _contains(records, want, exact):
        raise AssertionError(
            f"topic {topic!r} does not contain {'exactly ' if exact else ''}the expected "
            f"records\n{_diff(records, want)}"
        )


def wait_for_records(
    log: Log,
    topic: str,
    expected: Iterable[Any],
    *,
    timeout: float = 5.0,
    exact: bool = False,
    partition: int | None = None,
    key_deserializer: Codec | None = None,
    value_deserializer: Codec | None = None,
) -> None:
    """Wait until the topic holds the expected records (see :func:`assert_topic_contains`;
    here ``exact`` defaults to false): for records another thread or process appends.
    Wakes on each commit to the log, so it returns as soon as they are there.

    Raises:
        AssertionError: not there within ``timeout`` seconds.
    """
    want = [_as_expected(item) for item in expected]
    deadline = time.monotonic() + timeout
    while True:
        records = _topic_records(log, topic, partition, key_deserializer, value_deserializer)
        if _contains(records, want, exact):
            return
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(
                f"topic {topic!r} did not come to contain the expected records within "
                f"{timeout} s\n{_diff(records, want)}"
            )
        ends = log.end_offsets(topic)
        parts = [partition] if partition is not None else list(ends)
        # Wake when any partition grows (checking each in turn, briefly).
        step = min(remaining, 0.05) / max(1, len(parts))
        for p in parts:
            if log.wait(topic, p, ends[p], timeout=step):
                break
