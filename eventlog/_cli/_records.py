"""``produce`` and ``consume``: records in from lines of text, out as text."""

from __future__ import annotations

import argparse
import json
import re
import threading
from collections.abc import Callable
from typing import Any, TextIO

from .._errors import InvalidRecordError, TopicNotFoundError
from .._jsonl import parse_line, record_to_json
from .._log import Log
from .._records import NewRecord, Record, TopicPartition
from ._common import (
    CommandError,
    UsageError,
    add_common,
    ctrl_c_flag,
    header_pair,
    input_stream,
    natural_int,
    open_log,
    parse_when,
    positive_int,
    to_millis,
)
from ._ingest import LineError, Writer, json_obj, read_input, stopped
from ._output import Output

__all__ = ["register"]


def register(commands: Any) -> None:
    """Add the ``produce`` and ``consume`` commands."""
    p = commands.add_parser("produce", help="append one record per input line")
    p.description = (
        "Append one record per line of stdin (or --input FILE); creates the log if missing. "
        "Text mode: the line (without its newline) is the value. --json-input: each line "
        "is a JSON record (topic, partition, timestamp, key, value, headers). Lines are "
        "written in batches (Log.append_batch); a bad line stops the command before it, with "
        "its line number."
    )
    add_common(p)
    p.add_argument("topic", metavar="TOPIC", help="the topic (must exist)")
    p.add_argument("-i", "--input", metavar="FILE", help="read this file instead of stdin")
    p.add_argument(
        "-K",
        "--key-separator",
        metavar="SEP",
        help="split each line at the first SEP into key and value (a line without SEP is an error)",
    )
    p.add_argument(
        "-H",
        "--header",
        type=header_pair,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="add this header to every record (repeatable)",
    )
    p.add_argument(
        "--json-input",
        action="store_true",
        help="each line is a JSON record in eventlog's JSON-lines format",
    )
    p.add_argument(
        "-p", "--partition", type=natural_int, help="write every record to this partition"
    )
    p.add_argument(
        "-v", "--verbose", action="store_true", help="print topic, partition and offset per record"
    )
    p.set_defaults(handler=cmd_produce)

    p = commands.add_parser("consume", help="print records of a topic")
    p.description = (
        "Print a topic's records. Without --follow it stops at the end offsets seen when "
        "it started. With --group it consumes as a member of that consumer group and, "
        "after each batch printed, commits the offsets after the records printed "
        "(Log.consumer, Consumer)."
    )
    add_common(p)
    p.add_argument("topic", metavar="TOPIC", help="the topic")
    p.add_argument(
        "-o",
        "--from",
        dest="start",
        metavar="WHERE",
        default=None,
        help="where to start: beginning (default), end, an OFFSET, @MILLIS (a timestamp) or "
        "an ISO 8601 date-time; with --group only beginning or end (for partitions "
        "without a committed offset)",
    )
    p.add_argument(
        "-p", "--partition", type=natural_int, help="only this partition (not with --group)"
    )
    p.add_argument("-g", "--group", help="consume as a member of this consumer group")
    p.add_argument(
        "-f", "--follow", action="store_true", help="keep waiting for new records (like tail -f)"
    )
    p.add_argument("-n", "--max", type=positive_int, metavar="N", help="stop after N records")
    p.add_argument(
        "-F",
        "--format",
        default="plain",
        metavar="FORMAT",
        help="plain (values, the default), json (one JSON record per line) or a format "
        "string: %%t topic, %%p partition, %%o offset, %%T timestamp, %%k key, %%s value, "
        "%%h headers, %%K/%%S key/value length, %%%% a percent sign, \\n \\t \\\\ escapes",
    )
    p.set_defaults(handler=cmd_consume)


def cmd_produce(args: argparse.Namespace, out: Output) -> int:
    source = args.input or "-"
    headers = list(args.header) or None
    sep = args.key_separator.encode("utf-8") if args.key_separator is not None else None
    if sep == b"":
        raise UsageError("--key-separator must not be empty")
    with input_stream(args.input) as stream, open_log(args.path, write=True, create=True) as log:
        if args.topic not in log.list_topics():
            raise TopicNotFoundError(f"topic {args.topic!r} does not exist", topic=args.topic)
        writer = Writer(log, out, verbose=args.verbose)

        def text_line(number: int, raw: bytes) -> None:
            key = None
            value = raw
            if sep is not None:
                key, found, value = raw.partition(sep)
                if not found:
                    raise LineError(number, f"no key separator {args.key_separator!r}")
            writer.add(number, args.topic, NewRecord(value, key, args.partition, None, headers))

        def json_line(number: int, raw: bytes) -> None:
            if not raw.strip():
                return
            try:
                topic, record = parse_line(json_obj(raw, number), f"line {number}")
            except InvalidRecordError as exc:
                raise LineError(number, str(exc).removeprefix(f"line {number}: ")) from None
            if topic is not None and topic != args.topic:
                raise LineError(number, f"the record names topic {topic!r}, not {args.topic!r}")
            if args.partition is not None:
                record = record._replace(partition=args.partition)
            if headers:
                record = record._replace(headers=[*(record.headers or ()), *headers])
            writer.add(number, args.topic, record)

        try:
            read_input(stream, json_line if args.json_input else text_line, writer)
        except LineError as exc:
            raise stopped(exc, writer.written, source) from None
    return 0


# ----------------------------------------------------------------------------- reading

_FIELD = re.compile(r"%(.)|\\(.)", re.DOTALL)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "0": "\0"}


def _text(data: bytes | None) -> str:
    # Bytes that are not UTF-8 show as \xNN escapes instead of failing or vanishing.
    return "" if data is None else data.decode("utf-8", "backslashreplace")


def _const(text: str) -> Callable[[Record], str]:
    return lambda _record: text


def compile_format(fmt: str) -> Callable[[Record], str]:
    """A kcat-like ``-f`` format string as a function of a record."""
    parts: list[Callable[[Record], str]] = []
    fields: dict[str, Callable[[Record], str]] = {
        "t": lambda r: r.topic,
        "p": lambda r: str(r.partition),
        "o": lambda r: str(r.offset),
        "T": lambda r: str(r.timestamp),
        "k": lambda r: _text(r.key),
        "s": lambda r: _text(r.value),
        "K": lambda r: str(-1 if r.key is None else len(r.key)),
        "S": lambda r: str(-1 if r.value is None else len(r.value)),
        "h": lambda r: ",".join(f"{n}={_text(v)}" for n, v in r.headers),
        "%": lambda r: "%",
    }
    pos = 0
    for m in _FIELD.finditer(fmt):
        literal = fmt[pos : m.start()]
        if literal:
            parts.append(_const(literal))
        if m.group(1) is not None:
            if m.group(1) not in fields:
                raise UsageError(
                    f"--format: unknown field %{m.group(1)}; use %t %p %o %T %k %s %h %K %S %%"
                )
            parts.append(fields[m.group(1)])
        else:
            escaped = _ESCAPES.get(m.group(2), "\\" + m.group(2))
            parts.append(_const(escaped))
        pos = m.end()
    if fmt[pos:]:
        parts.append(_const(fmt[pos:]))
    return lambda r: "".join(part(r) for part in parts)


def _formatter(args: argparse.Namespace, out: Output) -> Callable[[Record], str]:
    fmt = "json" if out.json else args.format
    if fmt == "plain":
        return lambda r: _text(r.value) + "\n"
    if fmt == "json":
        return lambda r: json.dumps(record_to_json(r), sort_keys=True, ensure_ascii=False) + "\n"
    return compile_format(fmt)


def _start(args: argparse.Namespace) -> tuple[str, Any]:
    text = args.start or "beginning"
    if text in ("beginning", "end"):
        return text, None
    if args.group is not None:
        raise UsageError(
            "with --group, --from is beginning or end (where partitions without a committed "
            "offset start); move a group's offsets with: eventlog PATH groups reset-offsets"
        )
    if text.isdigit():
        return "offset", int(text)
    return "time", to_millis(parse_when(text, "--from"))


def cmd_consume(args: argparse.Namespace, out: Output) -> int:
    if args.group is not None and args.partition is not None:
        raise UsageError(
            "--partition and --group exclude each other: a group member consumes the "
            "partitions the group assigns it (read one partition with --partition alone)"
        )
    fmt = _formatter(args, out)
    kind, where = _start(args)
    with open_log(args.path, write=args.group is not None) as log:
        ends = log.end_offsets(args.topic)
        if args.partition is not None and args.partition not in ends:
            raise CommandError(
                f"topic {args.topic!r} has no partition {args.partition} "
                f"(it has {len(ends)}: 0 to {len(ends) - 1})"
            )
        if args.group is not None:
            reset = "latest" if kind == "end" else "earliest"
            consumer = log.consumer(
                args.topic, group=args.group, auto_offset_reset=reset, enable_auto_commit=False
            )
        else:
            consumer = log.consumer(auto_offset_reset="earliest", enable_auto_commit=False)
        with consumer, ctrl_c_flag() as stop:
            if args.group is None:
                _position(log, consumer, args, kind, where, ends)
            _consume_loop(consumer, args, out.stdout, fmt, ends, stop)
    if stop.is_set():
        raise KeyboardInterrupt  # after the last batch printed (and committed): 130
    return 0


def _position(
    log: Log, consumer: Any, args: argparse.Namespace, kind: str, where: Any, ends: dict[int, int]
) -> None:
    parts = [args.partition] if args.partition is not None else sorted(ends)
    tps = [TopicPartition(args.topic, p) for p in parts]
    consumer.assign(tps)
    if kind == "beginning":
        consumer.seek_to_beginning()
    elif kind == "end":
        consumer.seek_to_end()
    elif kind == "time":
        consumer.seek_to_timestamp(where)
    else:
        starts = log.beginning_offsets(args.topic)
        for tp in tps:
            # Clamped to what is stored, as kafka-console-consumer --offset does.
            consumer.seek(tp, min(max(where, starts[tp.partition]), ends[tp.partition]))


def _consume_loop(
    consumer: Any,
    args: argparse.Namespace,
    stdout: TextIO,
    fmt: Callable[[Record], str],
    ends: dict[int, int],
    stop: threading.Event,
) -> None:
    printed = 0
    empty_polls = 0
    while (args.max is None or printed < args.max) and not stop.is_set():
        budget = None if args.max is None else args.max - printed
        timeout = 0.5 if (args.follow or args.group is not None) else 0.0
        records = consumer.poll(timeout=timeout, max_records=budget)
        if not args.follow:
            records = _drop_past_ends(consumer, records, ends)
        for record in records:
            stdout.write(fmt(record))
        printed += len(records)
        if records:
            stdout.flush()
            if args.group is not None:
                # Only what was printed: the partitions printed from, at their positions,
                # which _drop_past_ends moved back to the first record not printed.
                consumer.commit({tp: consumer.position(tp) for tp in _touched(records)})
        if args.follow:
            continue
        assigned = consumer.assignment()
        caught_up = bool(assigned) and all(
            consumer.position(tp) >= ends[tp.partition] for tp in assigned
        )
        if caught_up:
            return
        if not records:
            empty_polls += 1
            # Outside a group an empty poll means caught up; a member may need a few
            # polls to join and be assigned partitions.
            if args.group is None or (assigned and empty_polls > 1) or empty_polls > 20:
                return


def _drop_past_ends(consumer: Any, records: list[Record], ends: dict[int, int]) -> list[Record]:
    """The records before the end offsets seen at the start (consume stops there, like
    kcat -e). A partition whose records are dropped is sought back to the first dropped
    one, so that its position, and so what a group commits, never passes what was printed.
    """
    kept: list[Record] = []
    dropped: dict[int, int] = {}
    for r in records:
        if r.offset < ends[r.partition]:
            kept.append(r)
        elif r.partition not in dropped:
            dropped[r.partition] = r.offset
    for partition, offset in dropped.items():
        consumer.seek(TopicPartition(records[0].topic, partition), offset)
    return kept


def _touched(records: list[Record]) -> list[TopicPartition]:
    return sorted({TopicPartition(r.topic, r.partition) for r in records})
