"""``eventlog PATH groups``: list, describe, reset offsets of, and delete consumer groups."""

from __future__ import annotations

import argparse
from typing import Any

from .._group_admin import GroupDescription
from ._common import CommandError, UsageError, add_common, natural_int, open_log, parse_when
from ._output import Output, format_ms, plural

__all__ = ["register"]


def register(commands: Any) -> None:
    """Add the ``groups`` command and its actions."""
    groups = commands.add_parser(
        "groups",
        help="list, describe, reset offsets of, or delete consumer groups",
        description="Manage consumer groups. Without an action: groups list.",
    )
    add_common(groups)
    groups.set_defaults(handler=cmd_list)
    actions = groups.add_subparsers(dest="action", metavar="ACTION", title="actions")

    p = actions.add_parser("list", help="list the groups (the default action)")
    p.description = "One row per group: state, members and total lag (Log.describe_group)."
    add_common(p)
    p.set_defaults(handler=cmd_list)

    p = actions.add_parser("describe", help="members, assignment, committed offsets and lag")
    p.description = (
        "Describe groups: live members and, per partition, committed offset and lag "
        "(Log.describe_group)."
    )
    add_common(p)
    p.add_argument("groups", metavar="GROUP", nargs="*", help="groups (default: all)")
    p.set_defaults(handler=cmd_describe)

    p = actions.add_parser("reset-offsets", help="move a group's committed offsets")
    p.description = (
        "Move a group's committed offsets, clamped to each partition's stored range. A dry "
        "run by default: prints the plan; --execute applies it. The group must have no "
        "live members (unless --force). (Log.reset_offsets)"
    )
    add_common(p)
    p.add_argument("group", metavar="GROUP", help="the group")
    p.add_argument(
        "-t",
        "--topic",
        action="append",
        default=[],
        metavar="TOPIC[:P,...]",
        help="the topic, optionally with partitions (orders:0,2); repeatable",
    )
    p.add_argument(
        "--all-topics", action="store_true", help="every topic the group has committed offsets in"
    )
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--to-earliest", action="store_true", help="the beginning offset")
    target.add_argument("--to-latest", action="store_true", help="the end offset")
    target.add_argument(
        "--to-datetime",
        metavar="WHEN",
        help="the first offset at or after WHEN (ISO 8601, local time without a zone; or @MILLIS)",
    )
    target.add_argument("--to-offset", type=natural_int, metavar="N", help="offset N")
    target.add_argument(
        "--shift-by", type=int, metavar="N", help="the committed offset plus N (may be negative)"
    )
    p.add_argument("--execute", action="store_true", help="apply the plan (default: dry run)")
    p.add_argument("--force", action="store_true", help="allow it while the group has members")
    p.set_defaults(handler=cmd_reset)

    p = actions.add_parser("delete", help="delete groups: committed offsets and membership")
    p.description = (
        "Delete consumer groups: their committed offsets and membership (Log.delete_group)."
    )
    add_common(p)
    p.add_argument("groups", metavar="GROUP", nargs="+", help="the groups")
    p.add_argument("--force", action="store_true", help="delete even with live members")
    p.set_defaults(handler=cmd_delete)


def group_json(d: GroupDescription) -> dict[str, Any]:
    """A group description as JSON-ready data."""
    return {
        "group": d.group,
        "state": d.state,
        "protocol": d.protocol,
        "generation": d.generation,
        "lag": d.lag,
        "members": [
            {
                "member_id": m.member_id,
                "instance_id": m.instance_id,
                "client_id": m.client_id,
                "pid": m.pid,
                "topics": list(m.topics),
                "assignment": [[tp.topic, tp.partition] for tp in m.assignment],
                "owned": [[tp.topic, tp.partition] for tp in m.owned],
                "lease_expires_ms": m.lease_expires_ms,
            }
            for m in d.members
        ],
        "offsets": [
            {
                "topic": tp.topic,
                "partition": tp.partition,
                "committed": po.committed,
                "metadata": po.metadata,
                "end_offset": po.end_offset,
                "lag": po.lag,
                "owner": po.owner,
            }
            for tp, po in sorted(d.offsets.items())
        ],
    }


def cmd_list(args: argparse.Namespace, out: Output) -> int:
    with open_log(args.path) as log:
        descs = [log.describe_group(g) for g in log.list_groups()]
    if out.json:
        out.emit_json(
            [
                {"group": d.group, "state": d.state, "members": len(d.members), "lag": d.lag}
                for d in descs
            ]
        )
    elif not descs:
        out.note("no consumer groups")
    else:
        out.table(
            ["GROUP", "STATE", "MEMBERS", "LAG"],
            [[d.group, d.state, len(d.members), d.lag] for d in descs],
        )
    return 0


def cmd_describe(args: argparse.Namespace, out: Output) -> int:
    with open_log(args.path) as log:
        names = args.groups or log.list_groups()
        descs = [log.describe_group(g) for g in names]
    if out.json:
        out.emit_json([group_json(d) for d in descs])
        return 0
    for i, d in enumerate(descs):
        if i:
            out.line()
        out.line(
            f"group {d.group}  ({d.state}, generation {d.generation}, "
            f"{plural(len(d.members), 'member')}, lag {d.lag})"
        )
        if d.members:
            out.table(
                ["MEMBER", "CLIENT", "PID", "ASSIGNMENT", "LEASE UNTIL"],
                [
                    [
                        m.member_id,
                        m.client_id,
                        m.pid,
                        " ".join(f"{tp.topic}:{tp.partition}" for tp in m.assignment) or "-",
                        format_ms(m.lease_expires_ms),
                    ]
                    for m in d.members
                ],
            )
        out.table(
            ["TOPIC", "PARTITION", "COMMITTED", "END", "LAG", "OWNER"],
            [
                [tp.topic, tp.partition, po.committed, po.end_offset, po.lag, po.owner]
                for tp, po in sorted(d.offsets.items())
            ],
        )
    return 0


def _targets(args: argparse.Namespace, log: Any) -> list[tuple[str, list[int] | None]]:
    out: list[tuple[str, list[int] | None]] = []
    for spec in args.topic:
        topic, sep, parts = spec.partition(":")
        if not sep:
            out.append((topic, None))
            continue
        try:
            numbers = [int(p) for p in parts.split(",")]
        except ValueError:
            raise UsageError(
                f"--topic {spec!r}: expected TOPIC or TOPIC:PARTITION[,PARTITION...]"
            ) from None
        out.append((topic, numbers))
    if args.all_topics:
        seen = {t for t, _ in out}
        for tp in sorted(log.committed_offsets(args.group)):
            if tp.topic not in seen:
                seen.add(tp.topic)
                out.append((tp.topic, None))
    if not out:
        raise CommandError(f"group {args.group!r} has no committed offsets (--all-topics)")
    return out


def cmd_reset(args: argparse.Namespace, out: Output) -> int:
    if not args.topic and not args.all_topics:
        raise UsageError("give --topic TOPIC (repeatable) or --all-topics")
    to: Any = None
    shift = None
    if args.to_earliest:
        to = "earliest"
    elif args.to_latest:
        to = "latest"
    elif args.to_datetime is not None:
        to = parse_when(args.to_datetime, "--to-datetime")
        if isinstance(to, int):
            import datetime as _dt

            to = _dt.datetime.fromtimestamp(to / 1000, tz=_dt.timezone.utc)
    elif args.to_offset is not None:
        to = args.to_offset
    else:
        shift = args.shift_by
    rows = []
    with open_log(args.path, write=args.execute) as log:
        targets = _targets(args, log)
        before = log.committed_offsets(args.group)
        plans = [
            log.reset_offsets(
                args.group,
                topic,
                to=to,
                shift=shift,
                partitions=parts,
                dry_run=True,
                force=args.force,
            )
            for topic, parts in targets
        ]
        if args.execute:
            plans = [
                log.reset_offsets(
                    args.group, topic, to=to, shift=shift, partitions=parts, force=args.force
                )
                for topic, parts in targets
            ]
        for plan in plans:
            for tp, new in sorted(plan.items()):
                old = before.get(tp)
                rows.append([tp.topic, tp.partition, None if old is None else old.offset, new])
    if out.json:
        out.emit_json(
            {
                "group": args.group,
                "executed": args.execute,
                "offsets": [
                    {"topic": t, "partition": p, "current": c, "new": n} for t, p, c, n in rows
                ],
            }
        )
        return 0
    out.table(["TOPIC", "PARTITION", "CURRENT", "NEW"], rows)
    if args.execute:
        out.line(f"reset {plural(len(rows), 'offset')} of group {args.group!r}")
    else:
        out.line("dry run: nothing changed; add --execute to apply")
    return 0


def cmd_delete(args: argparse.Namespace, out: Output) -> int:
    with open_log(args.path, write=True) as log:
        for group in args.groups:
            log.describe_group(group)  # every group must exist before any is deleted
        for group in args.groups:
            log.delete_group(group, force=args.force)
    if out.json:
        out.emit_json({"deleted": list(args.groups)})
    else:
        for group in args.groups:
            out.line(f"deleted group {group!r}")
    return 0
