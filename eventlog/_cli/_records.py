"""``produce``, ``consume``, ``export`` and ``import``: records in and out as text."""

from __future__ import annotations

import argparse
import json
import os
import re
from collections.abc import Callable
from typing import IO, Any, TextIO

from .._errors import EventLogError, InvalidRecordError, TopicNotFoundError
from .._jsonl import parse_line, record_to_json
from .._log import Log
from .._records import NewRecord, Record, TopicPartition
from ._common import (
    CommandError,
    add_common,
    header_pair,
    input_stream,
    iter_line_chunks,
    open_log,
    parse_when,
    to_millis,
)
from ._output import Output, plural

__all__ = ["register"]

_BATCH = 1000  # lines per append_batch: one commit each


def register(commands: Any) -> None:
    """Add the ``produce``, ``consume``, ``export`` and ``import`` commands."""
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
    p.add_argument("-p", "--partition", type=int, help="write every record to this partition")
    p.add_argument(
        "-v", "--verbose", action="store_true", help="print topic, partition and offset per record"
    )
    p.set_defaults(handler=cmd_produce)

    p = commands.add_parser("consume", help="print records of a topic")
    p.description = (
        "Print a topic's records. Without --follow it stops at the end offsets seen when "
        "it started. With --group it consumes as a member of that consumer group and "
        "commits its position after each batch printed (Log.consumer, Consumer)."
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
    p.add_argument("-p", "--partition", type=int, help="only this partition")
    p.add_argument("-g", "--group", help="consume as a member of this consumer group")
    p.add_argument(
        "-f", "--follow", action="store_true", help="keep waiting for new records (like tail -f)"
    )
    p.add_argument("-n", "--max", type=int, metavar="N", help="stop after N records")
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

    p = commands.add_parser("export", help="write topics as JSON lines")
    p.description = (
        "Write topics as JSON lines: per topic a line with its partitions and config, "
        "then its records (offsets, timestamps, keys, values, headers). Read back with "
        "import (Log.describe_topic, Log.scan)."
    )
    add_common(p)
    p.add_argument(
        "-t", "--topic", action="append", default=[], help="export this topic (default: all)"
    )
    p.add_argument(
        "-O", "--output", metavar="FILE", help="write to FILE (replaced whole) instead of stdout"
    )
    p.set_defaults(handler=cmd_export)

    p = commands.add_parser("import", help="append JSON lines written by export")
    p.description = (
        "Append the records of an export (or any JSON-lines records naming their topic); "
        "creates the log and missing topics (with the exported partitions and config). "
        "Offsets are kept when the topic starts empty at the exported offsets; records "
        "that get another offset are counted in a warning, or refused with --strict-offsets "
        "(Log.create_topic, Log.append_batch)."
    )
    add_common(p)
    p.add_argument("-i", "--input", metavar="FILE", help="read FILE instead of stdin")
    p.add_argument(
        "--strict-offsets",
        action="store_true",
        help="stop at the first record that would not get its exported offset",
    )
    p.set_defaults(handler=cmd_import)


# ----------------------------------------------------------------------------- writing


class _Writer:
    """Appends records in batches, keeping each record's input line number, so that a
    failure names its line and everything before it is written."""

    def __init__(self, log: Log, out: Output, *, verbose: bool = False) -> None:
        self.log = log
        self.out = out
        self.verbose = verbose
        self.written = 0
        self.mismatched = 0
        self.first_mismatch = ""
        self._pending: list[tuple[int, str, NewRecord, int | None]] = []
        self._next: dict[tuple[str, int], int] = {}

    def add(self, line: int, topic: str, record: NewRecord, offset: int | None = None) -> None:
        if self._pending and self._pending[0][1] != topic:
            self.flush()
        self._pending.append((line, topic, record, offset))
        if len(self._pending) >= _BATCH:
            self.flush()

    def predicted(self, topic: str, partition: int) -> int:
        """The offset the next record of the partition will get (no other writer)."""
        tp = (topic, partition)
        if tp not in self._next:
            ends = self.log.end_offsets(topic)
            if partition not in ends:
                return -1
            self._next[tp] = ends[partition]
        return self._next[tp]

    def flush(self) -> None:
        pending, self._pending = self._pending, []
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
                    raise _LineError(line, str(exc)) from exc
            # (every record succeeded alone: what failed the batch has passed)
        self._done(pending, metas)

    def _done(
        self, pending: list[tuple[int, str, NewRecord, int | None]], metas: list[Any]
    ) -> None:
        for (line, topic, _record, offset), meta in zip(pending, metas):
            self._next[(topic, meta.partition)] = meta.offset + 1
            if offset is not None and offset != meta.offset:
                self.mismatched += 1
                if not self.first_mismatch:
                    self.first_mismatch = (
                        f"line {line}: {topic}[{meta.partition}] exported offset {offset}, "
                        f"now {meta.offset}"
                    )
            if self.verbose:
                self.out.line(f"{topic} {meta.partition} {meta.offset}")
        self.written += len(metas)


class _LineError(Exception):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


def _stopped(exc: _LineError, written: int, source: str) -> CommandError:
    resume = f"tail -n +{exc.line} {source if source != '-' else 'INPUT'} | eventlog ..."
    return CommandError(
        f"line {exc.line}: {exc.message}; {plural(written, 'record')} before it "
        f"{'was' if written == 1 else 'were'} written, nothing "
        f"from line {exc.line} on; fix the line and resume from it (e.g. {resume})"
    )


def _decode(raw: bytes, line: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _LineError(line, "not valid UTF-8") from None


def _json_obj(raw: bytes, line: int) -> Any:
    try:
        return json.loads(_decode(raw, line))
    except json.JSONDecodeError as exc:
        raise _LineError(line, f"not valid JSON ({exc.msg} at column {exc.colno})") from None


def _read(stream: IO[bytes], handle: Callable[[int, bytes], None], writer: _Writer) -> None:
    """Feed every input line to ``handle``, flushing the writer after each chunk read."""
    number = 0
    try:
        for chunk in iter_line_chunks(stream, _BATCH):
            for raw in chunk:
                number += 1
                handle(number, raw)
            writer.flush()
    except _LineError:
        writer.flush()  # the good lines before the bad one
        raise


def cmd_produce(args: argparse.Namespace, out: Output) -> int:
    source = args.input or "-"
    headers = list(args.header) or None
    sep = args.key_separator.encode("utf-8") if args.key_separator is not None else None
    if sep == b"":
        raise CommandError("--key-separator must not be empty")
    stream = input_stream(args.input)
    with open_log(args.path, write=True, create=True) as log:
        if args.topic not in log.list_topics():
            raise TopicNotFoundError(
                f"topic {args.topic!r} does not exist; create it with: eventlog "
                f"{args.path} topics create {args.topic}",
                topic=args.topic,
            )
        writer = _Writer(log, out, verbose=args.verbose)

        def text_line(number: int, raw: bytes) -> None:
            key = None
            value = raw
            if sep is not None:
                key, found, value = raw.partition(sep)
                if not found:
                    raise _LineError(number, f"no key separator {args.key_separator!r}")
            writer.add(number, args.topic, NewRecord(value, key, args.partition, None, headers))

        def json_line(number: int, raw: bytes) -> None:
            if not raw.strip():
                return
            try:
                topic, record = parse_line(_json_obj(raw, number), f"line {number}")
            except InvalidRecordError as exc:
                raise _LineError(number, str(exc).removeprefix(f"line {number}: ")) from None
            if topic is not None and topic != args.topic:
                raise _LineError(number, f"the record names topic {topic!r}, not {args.topic!r}")
            if args.partition is not None:
                record = record._replace(partition=args.partition)
            if headers:
                record = record._replace(headers=[*(record.headers or ()), *headers])
            writer.add(number, args.topic, record)

        try:
            _read(stream, json_line if args.json_input else text_line, writer)
        except _LineError as exc:
            raise _stopped(exc, writer.written, source) from None
        finally:
            if args.input not in (None, "-"):
                stream.close()
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
                raise CommandError(
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
        raise CommandError(
            "with --group, --from is beginning or end (where partitions without a committed "
            "offset start); move a group's offsets with: eventlog PATH groups reset-offsets"
        )
    if text.isdigit():
        return "offset", int(text)
    return "time", to_millis(parse_when(text, "--from"))


def cmd_consume(args: argparse.Namespace, out: Output) -> int:
    if args.max is not None and args.max < 1:
        raise CommandError(f"--max must be at least 1; got {args.max}")
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
        with consumer:
            if args.group is None:
                _position(log, consumer, args, kind, where, ends)
            _consume_loop(consumer, args, out.stdout, fmt, ends)
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
) -> None:
    printed = 0
    empty_polls = 0
    while args.max is None or printed < args.max:
        budget = None if args.max is None else args.max - printed
        timeout = 0.5 if (args.follow or args.group is not None) else 0.0
        records = consumer.poll(timeout=timeout, max_records=budget)
        if not args.follow:
            # Stop at the end offsets seen at the start (like kcat -e).
            records = [r for r in records if r.offset < ends[r.partition]]
        for record in records:
            stdout.write(fmt(record))
        printed += len(records)
        if records:
            stdout.flush()
            if args.group is not None:
                consumer.commit()
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


# ------------------------------------------------------------------------ export/import


def topic_line(log: Log, topic: str) -> dict[str, Any]:
    """The export line that describes a topic."""
    desc = log.describe_topic(topic)
    return {
        "type": "topic",
        "topic": topic,
        "partitions": len(desc.partitions),
        "config": desc.config,
    }


def cmd_export(args: argparse.Namespace, out: Output) -> int:
    with open_log(args.path) as log:
        topics = args.topic or log.list_topics()
        for name in topics:
            log.describe_topic(name)  # an unknown topic fails before anything is written
        if args.output is None:
            _export(log, topics, out.stdout, out)
        else:
            tmp = f"{args.output}.tmp-{os.getpid()}"
            try:
                with open(tmp, "w", encoding="utf-8") as f:
                    _export(log, topics, f, out)
                os.replace(tmp, args.output)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
    return 0


def _export(log: Log, topics: list[str], dest: TextIO, out: Output) -> None:
    total = 0
    for name in topics:
        starts, ends = log.beginning_offsets(name), log.end_offsets(name)
        total += sum(ends[p] - starts[p] for p in ends)
    with out.progress("exporting", total) as bar:
        for name in topics:
            dest.write(json.dumps(topic_line(log, name), sort_keys=True, ensure_ascii=False))
            dest.write("\n")
            bar.set_label(f"exporting {name}")
            for record in log.scan(name):
                row = record_to_json(record)
                dest.write(json.dumps(row, sort_keys=True, ensure_ascii=False) + "\n")
                bar.advance()


def cmd_import(args: argparse.Namespace, out: Output) -> int:
    source = args.input or "-"
    stream = input_stream(args.input)
    with open_log(args.path, write=True, create=True) as log, out.progress("importing") as bar:
        writer = _Writer(log, out)
        known = set(log.list_topics())
        created: list[str] = []

        def line(number: int, raw: bytes) -> None:
            bar.advance()
            if not raw.strip():
                return
            obj = _json_obj(raw, number)
            if isinstance(obj, dict) and obj.get("type") == "topic":
                writer.flush()
                _create_topic(log, obj, number, known, created)
                return
            if isinstance(obj, dict):
                obj = dict(obj)
                offset = obj.pop("offset", None)
                if offset is not None and (type(offset) is not int or offset < 0):
                    raise _LineError(number, f"offset must be an integer >= 0; got {offset!r}")
            try:
                topic, record = parse_line(obj, f"line {number}")
            except InvalidRecordError as exc:
                raise _LineError(number, str(exc).removeprefix(f"line {number}: ")) from None
            if topic is None:
                raise _LineError(number, "the record names no topic")
            if topic not in known:
                raise _LineError(
                    number,
                    f"topic {topic!r} does not exist and no topic line before it describes it",
                )
            if args.strict_offsets and offset is not None and record.partition is not None:
                writer.flush()
                expected = writer.predicted(topic, record.partition)
                if expected != offset:
                    raise _LineError(
                        number,
                        f"the record would get offset {expected} in {topic}[{record.partition}], "
                        f"not its exported offset {offset} (--strict-offsets)",
                    )
            writer.add(number, topic, record, offset)

        try:
            _read(stream, line, writer)
        except _LineError as exc:
            raise _stopped(exc, writer.written, source) from None
        finally:
            if args.input not in (None, "-"):
                stream.close()
    if writer.mismatched:
        out.warn(
            f"{plural(writer.mismatched, 'record')} got another offset than exported (first: "
            f"{writer.first_mismatch}); import into empty topics keeps dense offsets"
        )
    summary = f"imported {plural(writer.written, 'record')}"
    if created:
        summary += f"; created topics {', '.join(created)}"
    out.note(summary)
    return 0


def _create_topic(
    log: Log, obj: dict[str, Any], number: int, known: set[str], created: list[str]
) -> None:
    name, partitions, config = obj.get("topic"), obj.get("partitions"), obj.get("config")
    if not isinstance(name, str) or type(partitions) is not int or not isinstance(config, dict):
        raise _LineError(
            number, "a topic line needs topic (a string), partitions (an int) and config"
        )
    if name in known:
        return  # an existing topic keeps its own partitions and config
    try:
        log.create_topic(name, partitions, config=config)
    except EventLogError as exc:
        raise _LineError(number, str(exc)) from None
    known.add(name)
    created.append(name)
