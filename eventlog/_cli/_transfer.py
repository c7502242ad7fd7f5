"""``export`` and ``import``: topics (configuration and records) as JSON lines."""

from __future__ import annotations

import argparse
import json
import os
from typing import Any, TextIO

from .._errors import EventLogError, InvalidRecordError
from .._jsonl import parse_line, record_to_json
from .._log import Log
from ._common import add_common, add_include_internal, input_stream, open_log, visible_topics
from ._ingest import LineError, Writer, json_obj, read_input, stopped
from ._output import Output, plural

__all__ = ["register"]


def register(commands: Any) -> None:
    """Add the ``export`` and ``import`` commands."""
    p = commands.add_parser("export", help="write topics as JSON lines")
    p.description = (
        "Write topics as JSON lines: per topic a line with its partitions and config, "
        "then its records (offsets, timestamps, keys, values, headers). Internal topics "
        "(names starting with __, such as the mirror positions in __eventlog_mirror) are "
        "left out unless named with --topic or --include-internal. Read back with "
        "import (Log.describe_topic, Log.scan)."
    )
    add_common(p)
    p.add_argument(
        "-t",
        "--topic",
        action="append",
        default=[],
        help="export this topic (repeatable; default: all but the internal ones)",
    )
    add_include_internal(p)
    p.add_argument(
        "-O", "--output", metavar="FILE", help="write to FILE (replaced whole) instead of stdout"
    )
    p.set_defaults(handler=cmd_export)

    p = commands.add_parser("import", help="append JSON lines written by export")
    p.description = (
        "Append the records of an export (or any JSON-lines records naming their topic); "
        "creates the log and missing topics (with the exported partitions and config). "
        "Offsets are kept when the topic starts empty at the exported offsets; records "
        "that get another offset are counted in a warning, or refused with --strict-offsets. "
        "Timestamps are kept: a LogAppendTime topic it creates takes CreateTime while the "
        "records are appended, then its exported config "
        "(Log.create_topic, Log.append_batch, Log.alter_topic)."
    )
    add_common(p)
    p.add_argument("-i", "--input", metavar="FILE", help="read FILE instead of stdin")
    p.add_argument(
        "--strict-offsets",
        action="store_true",
        help="stop at the first record that would not get its exported offset",
    )
    p.set_defaults(handler=cmd_import)


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
        topics = args.topic or visible_topics(log.list_topics(), args)
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
    with (
        input_stream(args.input) as stream,
        open_log(args.path, write=True, create=True) as log,
        out.progress("importing") as bar,
    ):
        writer = Writer(log, out)
        known = set(log.list_topics())
        created: list[str] = []
        # Topics created with CreateTime in place of their exported LogAppendTime, so the
        # exported timestamps are kept; they get their exported config back at the end.
        restore: dict[str, dict[str, Any]] = {}
        # Existing LogAppendTime topics: records appended to them get the import time.
        append_time = {t for t in known if _log_append_time(log.topic_config(t).to_dict())}
        restamped: set[str] = set()

        def line(number: int, raw: bytes) -> None:
            bar.advance()
            if not raw.strip():
                return
            obj = json_obj(raw, number)
            if isinstance(obj, dict) and obj.get("type") == "topic":
                writer.flush()
                _create_topic(log, obj, number, known, created, restore)
                return
            if isinstance(obj, dict):
                obj = dict(obj)
                offset = obj.pop("offset", None)
                if offset is not None and (type(offset) is not int or offset < 0):
                    raise LineError(number, f"offset must be an integer >= 0; got {offset!r}")
            try:
                topic, record = parse_line(obj, f"line {number}")
            except InvalidRecordError as exc:
                raise LineError(number, str(exc).removeprefix(f"line {number}: ")) from None
            if topic is None:
                raise LineError(number, "the record names no topic")
            if topic not in known:
                raise LineError(
                    number,
                    f"topic {topic!r} does not exist and no topic line before it describes it",
                )
            if topic in append_time:
                restamped.add(topic)
            if args.strict_offsets and offset is not None and record.partition is not None:
                expected = writer.predicted(topic, record.partition)
                if expected != offset:
                    raise LineError(
                        number,
                        f"the record would get offset {expected} in {topic}[{record.partition}], "
                        f"not its exported offset {offset} (--strict-offsets)",
                    )
            writer.add(number, topic, record, offset)

        try:
            read_input(stream, line, writer)
        except LineError as exc:
            raise stopped(exc, writer.written, source) from None
        finally:
            for name, config in restore.items():
                log.alter_topic(name, config)
    if writer.mismatched:
        out.warn(_offsets_warning(writer))
    for name in sorted(restamped):
        out.warn(
            f"topic {name!r} existed with message.timestamp.type=LogAppendTime: the "
            f"records imported into it got the import time, not their exported timestamps"
        )
    summary = f"imported {plural(writer.written, 'record')}"
    if created:
        summary += f"; created topics {', '.join(created)}"
    out.note(summary)
    return 0


def _offsets_warning(writer: Writer) -> str:
    why = []
    if "gap" in writer.mismatch_causes:
        why.append(
            "the export skips offsets (records removed by compaction, retention or "
            "delete_records before it was taken, or a partition not starting at 0), and "
            "an append always takes the partition's next offset, so the gaps close up"
        )
    if "occupied" in writer.mismatch_causes:
        why.append("the partition already held records, so the imported ones follow them")
    return (
        f"{plural(writer.mismatched, 'record')} got another offset than in the export "
        f"(first: {writer.first_mismatch}): {'; and '.join(why)}; keys, values, "
        f"timestamps and order are unchanged (--strict-offsets stops instead)"
    )


def _log_append_time(config: dict[str, Any]) -> bool:
    return config.get("message.timestamp.type") == "LogAppendTime"


def _create_topic(
    log: Log,
    obj: dict[str, Any],
    number: int,
    known: set[str],
    created: list[str],
    restore: dict[str, dict[str, Any]],
) -> None:
    name, partitions, config = obj.get("topic"), obj.get("partitions"), obj.get("config")
    if not isinstance(name, str) or type(partitions) is not int or not isinstance(config, dict):
        raise LineError(
            number, "a topic line needs topic (a string), partitions (an int) and config"
        )
    if name in known:
        return  # an existing topic keeps its own partitions and config
    if _log_append_time(config):
        # Appended records would take the import time: keep the exported timestamps.
        config = {**config, "message.timestamp.type": "CreateTime"}
        restore[name] = {"message.timestamp.type": "LogAppendTime"}
    try:
        log.create_topic(name, partitions, config=config)
    except EventLogError as exc:
        restore.pop(name, None)
        raise LineError(number, str(exc)) from None
    known.add(name)
    created.append(name)
