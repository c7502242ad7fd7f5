"""Operations: ``stats``, ``check``, ``compact``, ``retention``, ``backup`` and ``bench``."""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from typing import Any

from .._clock import now_ms
from .._log import Log
from .._log import open as open_log_dir
from .._records import TopicPartition
from ._common import add_common, natural_float, open_log, positive_int
from ._output import Output, format_bytes, format_ms, plural

__all__ = ["register"]

_MINUTE_MS = 60_000


def register(commands: Any) -> None:
    """Add the operations commands."""
    p = commands.add_parser("stats", help="sizes, record counts, rates and group lag")
    p.description = (
        "Per partition: records, bytes, batches, first and last timestamps, and rates (records "
        "per second with timestamps in the last minute, and over the partition's stored "
        "life); per consumer group and topic: the lag; per mirror to or from a Kafka cluster "
        "and partition: its position and lag (Log.describe_topic, Log.offsets_for_times, "
        "Log.describe_group, eventlog.ext.kafka.mirror_status)."
    )
    add_common(p)
    p.add_argument("-t", "--topic", action="append", default=[], help="only this topic")
    p.set_defaults(handler=cmd_stats)

    p = commands.add_parser("check", help="verify the log's integrity (exit 1 when damaged)")
    p.description = (
        "Verify every batch's checksum, offset continuity, partition state, indexes and "
        "committed offsets, read-only (Log.check). Exit status 1 when a problem is found."
    )
    add_common(p)
    p.set_defaults(handler=cmd_check)

    p = commands.add_parser("compact", help="compact the compacted topics now")
    p.description = (
        "Run compaction now on one or every topic whose cleanup.policy has compact (Log.compact)."
    )
    add_common(p)
    p.add_argument("-t", "--topic", action="append", default=[], help="only this topic")
    p.set_defaults(handler=cmd_compact)

    p = commands.add_parser("retention", help="apply retention.ms and retention.bytes now")
    p.description = "Apply retention now, to completion, to one or every topic (Log.run_retention)."
    add_common(p)
    p.add_argument("-t", "--topic", action="append", default=[], help="only this topic")
    p.set_defaults(handler=cmd_retention)

    p = commands.add_parser("backup", help="write a consistent copy of the log to DEST")
    p.description = (
        "Write a consistent copy of the whole log to DEST (a new or empty directory) while "
        "the log stays in use. Free pages are left out unless --no-compact (Log.backup)."
    )
    add_common(p)
    p.add_argument("dest", metavar="DEST", help="the backup directory")
    p.add_argument("--no-compact", action="store_true", help="copy free pages too (faster, bigger)")
    p.set_defaults(handler=cmd_backup)

    p = commands.add_parser("bench", help="a quick producer and consumer performance test")
    p.description = (
        "Produce records with the Producer client into a throwaway topic, then consume "
        "them, and print throughput and latency percentiles. PATH '-' benchmarks a "
        "temporary log that is deleted afterwards; otherwise a temporary topic "
        "(eventlog-bench-...) is created in the log and deleted afterwards, unless --topic "
        "(Log.producer, Log.consumer)."
    )
    add_common(p)
    p.add_argument(
        "--records", type=positive_int, default=100_000, help="records to produce (100000)"
    )
    p.add_argument(
        "--record-size", type=positive_int, default=100, help="value bytes per record (100)"
    )
    p.add_argument(
        "--batch-size",
        type=positive_int,
        default=16384,
        help="the producer's batch_size in bytes (16384)",
    )
    p.add_argument(
        "--linger-ms", type=natural_float, default=0, help="the producer's linger_ms (0)"
    )
    p.add_argument(
        "--partitions", type=positive_int, default=1, help="partitions of the bench topic (1)"
    )
    p.add_argument(
        "--durability",
        choices=["full", "normal", "off"],
        default="full",
        help="the durability mode to open the log with (full)",
    )
    p.add_argument("-t", "--topic", help="use this topic (created if missing, never deleted)")
    p.set_defaults(handler=cmd_bench)


# ------------------------------------------------------------------------------ stats


def _partition_stats(log: Log, topic: str, now: int) -> list[dict[str, Any]]:
    desc = log.describe_topic(topic)
    recent = log.offsets_for_times(topic, max(0, now - _MINUTE_MS))
    rows = []
    for p in desc.partitions:
        records = p.end_offset - p.log_start_offset
        first = log.read(topic, p.partition, p.log_start_offset, max_records=1) if records else []
        first_ts = first[0].timestamp if first else None
        last_ts = p.max_timestamp if p.max_timestamp >= 0 else None
        since = recent.get(p.partition)
        rate_1m = (p.end_offset - since) / 60 if since is not None else 0.0
        span = (last_ts - first_ts) / 1000 if first_ts is not None and last_ts else 0
        rows.append(
            {
                "topic": topic,
                "partition": p.partition,
                "records": records,
                "size_bytes": p.size_bytes,
                "batches": p.batches,
                "first_timestamp": first_ts,
                "last_timestamp": last_ts,
                "rate_1m": round(rate_1m, 3),
                "rate_lifetime": round(records / span, 3) if span > 0 else None,
            }
        )
    return rows


def cmd_stats(args: argparse.Namespace, out: Output) -> int:
    now = now_ms()
    with open_log(args.path) as log:
        topics = args.topic or log.list_topics()
        parts = [row for t in topics for row in _partition_stats(log, t, now)]
        lags: list[dict[str, Any]] = []
        for group in log.list_groups():
            by_topic: dict[str, int] = {}
            for tp, po in log.describe_group(group).offsets.items():
                if not args.topic or tp.topic in args.topic:
                    by_topic[tp.topic] = by_topic.get(tp.topic, 0) + po.lag
            lags.extend({"group": group, "topic": t, "lag": n} for t, n in sorted(by_topic.items()))
        mirrors = _mirror_rows(log, args.topic)
    if out.json:
        out.emit_json({"partitions": parts, "groups": lags, "mirrors": mirrors})
        return 0
    out.table(
        ["TOPIC", "PART", "RECORDS", "SIZE", "BATCHES", "FIRST", "LAST", "REC/S 1M", "REC/S LIFE"],
        [
            [
                r["topic"],
                r["partition"],
                r["records"],
                format_bytes(r["size_bytes"]),
                r["batches"],
                format_ms(r["first_timestamp"]),
                format_ms(r["last_timestamp"]),
                float(r["rate_1m"]),
                None if r["rate_lifetime"] is None else float(r["rate_lifetime"]),
            ]
            for r in parts
        ],
    )
    if lags:
        out.line()
        out.table(["GROUP", "TOPIC", "LAG"], [[g["group"], g["topic"], g["lag"]] for g in lags])
    if mirrors:
        out.line()
        out.table(
            ["MIRROR", "DIRECTION", "TOPIC", "PART", "POSITION", "END", "LAG", "UPDATED"],
            [
                [
                    m["name"],
                    m["direction"],
                    m["topic"],
                    m["partition"],
                    m["position"],
                    m["end"],
                    m["lag"],
                    format_ms(m["updated_ms"]),
                ]
                for m in mirrors
            ],
        )
    return 0


def _mirror_rows(log: Log, topics: list[str]) -> list[dict[str, Any]]:
    """The positions and lag of the log's mirrors to and from Kafka clusters (read from
    the log alone: eventlog.ext.kafka.mirror_status), for the selected topics."""
    from ..ext.kafka import mirror_status

    return [
        {
            "name": s.name,
            "direction": s.direction,
            "topic": s.topic,
            "partition": s.partition,
            "position": s.position,
            "end": s.end,
            "lag": s.lag,
            "updated_ms": s.updated_ms,
            "bootstrap": s.bootstrap,
            "cluster_id": s.cluster_id,
        }
        for s in mirror_status(log)
        if not topics or s.topic in topics
    ]


# ------------------------------------------------------------------------- maintenance


def cmd_check(args: argparse.Namespace, out: Output) -> int:
    with open_log(args.path) as log, out.progress("checking partitions") as bar:
        report = log.check(progress=lambda done, total: bar.update(done, total))
    if out.json:
        out.emit_json(
            {
                "ok": report.ok,
                "topics": report.topics,
                "partitions": report.partitions,
                "batches": report.batches,
                "records": report.records,
                "groups": report.groups,
                "problems": [
                    {
                        "kind": p.kind,
                        "topic": p.topic,
                        "partition": p.partition,
                        "offset": p.offset,
                        "message": p.message,
                    }
                    for p in report.problems
                ],
            }
        )
    else:
        out.line(
            f"{'OK' if report.ok else 'PROBLEMS FOUND'}: checked "
            f"{plural(report.topics, 'topic')}, {plural(report.partitions, 'partition')}, "
            f"{plural(report.batches, 'batch')}, {plural(report.records, 'record')}, "
            f"{plural(report.groups, 'committed offset')}; "
            f"{plural(len(report.problems), 'problem')}"
        )
        for problem in report.problems:
            out.line(f"  {problem}")
    return 0 if report.ok else 1


def _topics_for(log: Log, args: argparse.Namespace, compacted: bool) -> list[str]:
    if args.topic:
        return list(args.topic)
    names = log.list_topics()
    if compacted:
        return [t for t in names if log.topic_config(t).compacted]
    return names


def cmd_compact(args: argparse.Namespace, out: Output) -> int:
    rows: list[dict[str, Any]] = []
    with open_log(args.path, write=True) as log:
        topics = _topics_for(log, args, compacted=True)
        with out.progress("compacting", len(topics)) as bar:
            for topic in topics:
                bar.set_label(f"compacting {topic}")
                for tp, r in sorted(log.compact(topic).items()):
                    rows.append(
                        {
                            "topic": tp.topic,
                            "partition": tp.partition,
                            "passes": r.passes,
                            "records_removed": r.records_removed,
                            "tombstones_removed": r.tombstones_removed,
                            "batches_rewritten": r.batches_rewritten,
                            "batches_deleted": r.batches_deleted,
                            "bytes": r.bytes,
                        }
                    )
                bar.advance()
    if out.json:
        out.emit_json(rows)
    elif not rows:
        out.line(f"nothing to compact ({plural(len(topics), 'compacted topic')})")
    else:
        out.table(
            ["TOPIC", "PART", "PASSES", "REMOVED", "TOMBSTONES", "REWRITTEN", "DELETED", "FREED"],
            [
                [
                    r["topic"],
                    r["partition"],
                    r["passes"],
                    r["records_removed"],
                    r["tombstones_removed"],
                    r["batches_rewritten"],
                    r["batches_deleted"],
                    format_bytes(r["bytes"]),
                ]
                for r in rows
            ],
        )
    return 0


def cmd_retention(args: argparse.Namespace, out: Output) -> int:
    rows: list[dict[str, Any]] = []
    with open_log(args.path, write=True) as log:
        topics = _topics_for(log, args, compacted=False)
        with out.progress("retention", len(topics)) as bar:
            for topic in topics:
                bar.set_label(f"retention {topic}")
                for tp, r in sorted(log.run_retention(topic).items()):
                    rows.append(
                        {
                            "topic": tp.topic,
                            "partition": tp.partition,
                            "batches": r.batches,
                            "records": r.records,
                            "bytes": r.bytes,
                            "log_start_offset": r.log_start_offset,
                        }
                    )
                bar.advance()
    if out.json:
        out.emit_json(rows)
    elif not rows:
        out.line(f"nothing to delete ({plural(len(topics), 'topic')} checked)")
    else:
        out.table(
            ["TOPIC", "PART", "BATCHES", "RECORDS", "FREED", "NEW START"],
            [
                [
                    r["topic"],
                    r["partition"],
                    r["batches"],
                    r["records"],
                    format_bytes(r["bytes"]),
                    r["log_start_offset"],
                ]
                for r in rows
            ],
        )
    return 0


def _dir_size(path: str) -> int:
    return sum(
        os.path.getsize(os.path.join(root, name))
        for root, _dirs, files in os.walk(path)
        for name in files
    )


def cmd_backup(args: argparse.Namespace, out: Output) -> int:
    with open_log(args.path) as log, out.progress("backing up (bytes)") as bar:
        dest = log.backup(
            args.dest,
            compact=not args.no_compact,
            progress=lambda done, total: bar.update(done, total),
        )
    size = _dir_size(dest)
    if out.json:
        out.emit_json({"backup": dest, "size_bytes": size, "compacted": not args.no_compact})
    else:
        out.line(f"backed up {os.path.abspath(args.path)} to {dest} ({format_bytes(size)})")
    return 0


# ------------------------------------------------------------------------------- bench


def _percentile(sorted_values: list[float], share: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, int(share * len(sorted_values)))
    return sorted_values[index]


def cmd_bench(args: argparse.Namespace, out: Output) -> int:
    temp_dir = None
    if args.path == "-":
        temp_dir = tempfile.mkdtemp(prefix="eventlog-bench-")
        path = os.path.join(temp_dir, "log")
    else:
        path = args.path
    try:
        with open_log_dir(path, create=temp_dir is not None, durability=args.durability) as log:
            topic = args.topic or f"eventlog-bench-{uuid.uuid4().hex[:12]}"
            throwaway = args.topic is None
            log.create_topic(topic, args.partitions, retention_ms=-1, exist_ok=not throwaway)
            try:
                result = _bench(log, topic, args, out)
            finally:
                if throwaway and temp_dir is None:
                    log.delete_topic(topic)
    finally:
        if temp_dir is not None:
            shutil.rmtree(temp_dir, ignore_errors=True)
    if out.json:
        out.emit_json(result)
        return 0
    p, c = result["produce"], result["consume"]
    out.line(
        f"{p['records']} records sent, {p['records_per_sec']:.1f} records/sec "
        f"({p['mb_per_sec']:.2f} MB/sec), {p['latency_avg_ms']:.2f} ms avg latency, "
        f"{p['latency_max_ms']:.2f} ms max latency, {p['latency_p50_ms']:.2f} ms 50th, "
        f"{p['latency_p95_ms']:.2f} ms 95th, {p['latency_p99_ms']:.2f} ms 99th, "
        f"{p['latency_p999_ms']:.2f} ms 99.9th."
    )
    out.line(
        f"{c['records']} records consumed in {c['seconds']:.3f} s, "
        f"{c['records_per_sec']:.1f} records/sec ({c['mb_per_sec']:.2f} MB/sec)."
    )
    return 0


def _consume_back(
    log: Log, topic: str, before: dict[int, int], ours: dict[int, set[int]], out: Output
) -> tuple[int, float]:
    """Read from the end offsets seen before producing up to those after it, counting the
    records this run wrote; (records, seconds). It stops when every partition's position
    reaches that end, or no longer moves (records removed meanwhile by retention or
    compaction are skipped, so the count may be lower than what was produced)."""
    ends = log.end_offsets(topic)
    parts = [p for p in sorted(ends) if ends[p] > before.get(p, 0)]
    clock = time.perf_counter
    consumed = 0
    with (
        log.consumer(auto_offset_reset="earliest") as consumer,
        out.progress("consuming", sum(len(v) for v in ours.values())) as bar,
    ):
        tps = [TopicPartition(topic, p) for p in parts]
        consumer.assign(tps)
        for tp in tps:
            consumer.seek(tp, before.get(tp.partition, 0))
        started = clock()
        stalled = 0
        while tps:
            records = consumer.poll(timeout=1.0, max_records=10_000)
            got = sum(
                1
                for r in records
                if r.offset < ends[r.partition] and r.offset in ours.get(r.partition, ())
            )
            consumed += got
            bar.advance(got)
            positions = [consumer.position(tp) for tp in tps]
            if all(pos >= ends[tp.partition] for pos, tp in zip(positions, tps)):
                break
            # Nothing more to read while a position is short of its end: the records
            # there are gone. A few empty polls (a second each) end the wait.
            stalled = 0 if records else stalled + 1
            if stalled >= 3:
                break
        return consumed, clock() - started


def _bench(log: Log, topic: str, args: argparse.Namespace, out: Output) -> dict[str, Any]:
    n, size = args.records, args.record_size
    # Distinct random payloads, so that compression does not flatter the numbers.
    distinct = min(n, 4096)
    pool = os.urandom(size * distinct)
    payloads = [pool[i * size : (i + 1) * size] for i in range(distinct)]
    latencies: list[float] = []
    clock = time.perf_counter
    # The offsets this run wrote, per partition: with --topic the topic may hold other
    # records, and other writers may append meanwhile; only ours are counted back.
    ours: dict[int, set[int]] = {}
    before = log.end_offsets(topic)

    def acked(sent: float) -> Callable[[Any], None]:
        def done(meta: Any) -> None:
            latencies.append(clock() - sent)
            ours.setdefault(meta.partition, set()).add(meta.offset)

        return done

    with (
        log.producer(linger_ms=args.linger_ms, batch_size=args.batch_size) as producer,
        out.progress("producing", n) as bar,
    ):
        started = clock()
        for i in range(n):
            sent = clock()
            future = producer.send(topic, payloads[i % distinct])
            future.add_callback(acked(sent))
            if i % 1000 == 999:
                bar.advance(1000)
        producer.flush()
        produce_s = clock() - started
    latencies.sort()
    mb = n * size / (1024 * 1024)
    produce = {
        "records": n,
        "seconds": round(produce_s, 6),
        "records_per_sec": n / produce_s,
        "mb_per_sec": mb / produce_s,
        "latency_avg_ms": statistics.fmean(latencies) * 1000 if latencies else 0.0,
        "latency_max_ms": latencies[-1] * 1000 if latencies else 0.0,
        "latency_p50_ms": _percentile(latencies, 0.5) * 1000,
        "latency_p95_ms": _percentile(latencies, 0.95) * 1000,
        "latency_p99_ms": _percentile(latencies, 0.99) * 1000,
        "latency_p999_ms": _percentile(latencies, 0.999) * 1000,
    }
    consumed, consume_s = _consume_back(log, topic, before, ours, out)
    consume = {
        "records": consumed,
        "seconds": round(consume_s, 6),
        "records_per_sec": consumed / consume_s if consume_s else 0.0,
        "mb_per_sec": consumed * size / (1024 * 1024) / consume_s if consume_s else 0.0,
    }
    return {
        "topic": topic,
        "record_size": size,
        "durability": args.durability,
        "produce": produce,
        "consume": consume,
    }
