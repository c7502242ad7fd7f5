"""``eventlog PATH topics``: list, create, describe, alter and delete topics."""

from __future__ import annotations

import argparse
import json
from typing import Any

from .._errors import TopicNotFoundError
from .._records import TopicDescription
from ._common import (
    UsageError,
    add_common,
    add_include_internal,
    config_pair,
    open_log,
    positive_int,
    visible_topics,
)
from ._output import Output, format_bytes, format_ms, plural

__all__ = ["register"]


def register(commands: Any) -> None:
    """Add the ``topics`` command and its actions."""
    topics = commands.add_parser(
        "topics",
        help="list, create, describe, alter or delete topics",
        description="Manage topics. Without an action: topics list.",
    )
    add_common(topics)
    add_include_internal(topics)
    topics.set_defaults(handler=cmd_list)
    actions = topics.add_subparsers(dest="action", metavar="ACTION", title="actions")

    p = actions.add_parser("list", help="list the topics (the default action)")
    p.description = (
        "One row per topic: partitions, records, bytes and cleanup policy; internal topics "
        "(names starting with __) only with --include-internal "
        "(Log.list_topics, Log.describe_topic)."
    )
    add_common(p)
    add_include_internal(p, nested=True)
    p.set_defaults(handler=cmd_list)

    p = actions.add_parser("create", help="create a topic (creates the log if missing)")
    p.description = (
        "Create a topic. The log directory is created when it does not exist yet. "
        "Configuration keys use Kafka's names (see the topic configuration reference). "
        "(Log.create_topic)"
    )
    add_common(p)
    p.add_argument("topic", metavar="TOPIC", help="the topic name")
    p.add_argument(
        "-p", "--partitions", type=positive_int, default=1, help="number of partitions (default 1)"
    )
    p.add_argument(
        "-c",
        "--config",
        type=config_pair,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a configuration key, e.g. retention.ms=3600000 (repeatable)",
    )
    p.add_argument(
        "--if-not-exists",
        action="store_true",
        help="succeed without changing anything when the topic exists",
    )
    p.set_defaults(handler=cmd_create)

    p = actions.add_parser("describe", help="partitions, offsets, sizes and configuration")
    p.description = (
        "Describe topics: partitions with their offsets and sizes, and config (Log.describe_topic)."
    )
    add_common(p)
    p.add_argument(
        "topics",
        metavar="TOPIC",
        nargs="*",
        help="topics (default: all but the internal ones)",
    )
    add_include_internal(p, nested=True)
    p.set_defaults(handler=cmd_describe)

    p = actions.add_parser("alter", help="change a topic's configuration or partitions")
    p.description = (
        "Change some configuration keys (the others keep their values), reset keys to "
        "their defaults, or grow the partition count (Log.alter_topic, Log.create_partitions)."
    )
    add_common(p)
    p.add_argument("topic", metavar="TOPIC", help="the topic name")
    p.add_argument(
        "-c",
        "--config",
        type=config_pair,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="set a configuration key (repeatable)",
    )
    p.add_argument(
        "--delete-config",
        action="append",
        default=[],
        metavar="KEY",
        help="reset a configuration key to its default (repeatable)",
    )
    p.add_argument(
        "-p",
        "--partitions",
        type=positive_int,
        metavar="TOTAL",
        help="grow the topic to TOTAL partitions (never shrinks)",
    )
    p.set_defaults(handler=cmd_alter)

    p = actions.add_parser("delete", help="delete a topic and all its records")
    p.description = "Delete topics and all their records (Log.delete_topic)."
    add_common(p)
    p.add_argument("topics", metavar="TOPIC", nargs="+", help="the topics to delete")
    p.add_argument("--if-exists", action="store_true", help="ignore topics that do not exist")
    p.set_defaults(handler=cmd_delete)


def describe_json(desc: TopicDescription) -> dict[str, Any]:
    """A topic description as JSON-ready data."""
    return {
        "topic": desc.name,
        "topic_id": desc.topic_id,
        "created_ms": desc.created_ms,
        "config": desc.config,
        "partitions": [
            {
                "partition": p.partition,
                "log_start_offset": p.log_start_offset,
                "end_offset": p.end_offset,
                "size_bytes": p.size_bytes,
                "batches": p.batches,
                "max_timestamp": p.max_timestamp,
            }
            for p in desc.partitions
        ],
    }


def cmd_list(args: argparse.Namespace, out: Output) -> int:
    with open_log(args.path) as log:
        names = log.list_topics()
        shown = visible_topics(names, args)
        descs = [log.describe_topic(name) for name in shown]
    hidden = len(names) - len(shown)
    if out.json:
        out.emit_json(
            [
                {
                    "topic": d.name,
                    "partitions": len(d.partitions),
                    "records": sum(p.end_offset - p.log_start_offset for p in d.partitions),
                    "size_bytes": sum(p.size_bytes for p in d.partitions),
                    "cleanup_policy": d.config.get("cleanup.policy"),
                }
                for d in descs
            ]
        )
        return 0
    if hidden:
        out.note(f"({plural(hidden, 'internal topic')} not shown: --include-internal shows them)")
    if not descs:
        out.note("no topics (create one with: eventlog PATH topics create NAME)")
        return 0
    out.table(
        ["TOPIC", "PARTITIONS", "RECORDS", "SIZE", "POLICY"],
        [
            [
                d.name,
                len(d.partitions),
                sum(p.end_offset - p.log_start_offset for p in d.partitions),
                format_bytes(sum(p.size_bytes for p in d.partitions)),
                str(d.config.get("cleanup.policy")),
            ]
            for d in descs
        ],
    )
    return 0


def cmd_create(args: argparse.Namespace, out: Output) -> int:
    config = dict(args.config)
    with open_log(args.path, write=True, create=True) as log:
        existed = args.if_not_exists and args.topic in log.list_topics()
        desc = log.create_topic(
            args.topic, args.partitions, config=config, exist_ok=args.if_not_exists
        )
    if out.json:
        out.emit_json({**describe_json(desc), "created": not existed})
    elif existed:
        out.line(
            f"topic {desc.name!r} exists ({plural(len(desc.partitions), 'partition')}); unchanged"
        )
    else:
        out.line(f"created topic {desc.name!r} with {plural(len(desc.partitions), 'partition')}")
    return 0


def cmd_describe(args: argparse.Namespace, out: Output) -> int:
    with open_log(args.path) as log:
        names = args.topics or visible_topics(log.list_topics(), args)
        descs = [log.describe_topic(name) for name in names]
    if out.json:
        out.emit_json([describe_json(d) for d in descs])
        return 0
    for i, d in enumerate(descs):
        if i:
            out.line()
        out.line(
            f"topic {d.name}  (id {d.topic_id}, created {format_ms(d.created_ms)}, "
            f"{plural(len(d.partitions), 'partition')})"
        )
        out.table(
            ["PARTITION", "START", "END", "RECORDS", "BATCHES", "SIZE", "LAST TIMESTAMP"],
            [
                [
                    p.partition,
                    p.log_start_offset,
                    p.end_offset,
                    p.end_offset - p.log_start_offset,
                    p.batches,
                    format_bytes(p.size_bytes),
                    format_ms(p.max_timestamp),
                ]
                for p in d.partitions
            ],
        )
        out.line("config:")
        for key, value in sorted(d.config.items()):
            out.line(f"  {key}={json.dumps(value) if isinstance(value, bool) else value}")
    return 0


def cmd_alter(args: argparse.Namespace, out: Output) -> int:
    config: dict[str, object] = dict(args.config)
    for key in args.delete_config:
        if key in config:
            raise UsageError(f"{key} is both set (--config) and reset (--delete-config)")
        config[key] = None
    if not config and args.partitions is None:
        raise UsageError("nothing to change: give --config, --delete-config or --partitions")
    with open_log(args.path, write=True) as log:
        if args.topic not in log.list_topics():
            raise TopicNotFoundError(f"topic {args.topic!r} does not exist", topic=args.topic)
        desc = log.describe_topic(args.topic)
        if config:
            desc = log.alter_topic(args.topic, config)
        if args.partitions is not None and args.partitions != len(desc.partitions):
            desc = log.create_partitions(args.topic, args.partitions)
    if out.json:
        out.emit_json(describe_json(desc))
    else:
        out.line(f"altered topic {desc.name!r} ({plural(len(desc.partitions), 'partition')})")
    return 0


def cmd_delete(args: argparse.Namespace, out: Output) -> int:
    deleted = []
    with open_log(args.path, write=True) as log:
        existing = set(log.list_topics())
        for name in args.topics:
            if name not in existing:
                if args.if_exists:
                    continue
                raise TopicNotFoundError(f"topic {name!r} does not exist", topic=name)
        for name in args.topics:
            if name in existing:
                log.delete_topic(name)
                deleted.append(name)
    if out.json:
        out.emit_json({"deleted": deleted})
    else:
        for name in deleted:
            out.line(f"deleted topic {name!r}")
    return 0
