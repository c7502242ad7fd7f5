"""The ``eventlog PATH mirror`` command: argument parsing and the run, for the CLI.

``add_arguments`` fills an argparse (sub)parser; ``run`` opens the log, runs the mirror
and prints progress lines (at most one a second) and a summary, as text or JSON lines.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any, TextIO

from ..._errors import EventLogError, InvalidArgumentError
from ._mirror import KAFKA_POSITIONS_TOPIC, Mirror, MirrorResult

__all__ = ["add_arguments", "run"]

_PROGRESS_SECONDS = 1.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the mirror command's arguments to ``parser``."""
    parser.add_argument(
        "direction",
        choices=["to-kafka", "from-kafka"],
        help="to-kafka: copy log topics to the cluster; from-kafka: copy cluster topics "
        "into the log",
    )
    parser.add_argument(
        "--bootstrap", required=True, help="the Kafka cluster's bootstrap servers (host:port,...)"
    )
    parser.add_argument(
        "--topic",
        action="append",
        required=True,
        dest="topics",
        metavar="TOPIC",
        help="a topic to mirror (repeat for several); it keeps its name on the other side",
    )
    parser.add_argument(
        "--name", default="mirror", help="the mirror's name: its positions are kept under it"
    )
    parser.add_argument(
        "--follow", action="store_true", help="keep copying new records until Ctrl-C"
    )
    parser.add_argument(
        "--exactly-once",
        action="store_true",
        help="to-kafka: write with Kafka transactions (from-kafka is always exactly-once)",
    )
    parser.add_argument(
        "-X",
        action="append",
        default=[],
        dest="kafka_config",
        metavar="KEY=VALUE",
        help="a librdkafka setting, e.g. -X security.protocol=SASL_SSL (repeatable)",
    )
    parser.add_argument(
        "--batch-size", type=int, default=500, help="records per batch (default 500)"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        help="seconds to wait for the cluster before failing (default 30)",
    )
    parser.add_argument(
        "--positions-topic",
        default=KAFKA_POSITIONS_TOPIC,
        help=f"to-kafka --exactly-once: the Kafka topic of positions "
        f"(default {KAFKA_POSITIONS_TOPIC})",
    )
    parser.add_argument("--json", action="store_true", help="print JSON lines")


def run(log_path: str, args: argparse.Namespace, out: TextIO) -> int:
    """Run the mirror described by ``args`` on the log at ``log_path``; return the exit
    status (0 done, 1 the mirror failed, 2 bad arguments)."""
    import eventlog

    config: dict[str, Any] = {}
    for item in args.kafka_config:
        key, sep, value = item.partition("=")
        if not sep or not key:
            _emit(
                out, args.json, "error", f"-X takes key=value (a librdkafka setting); got {item!r}"
            )
            return 2
        config[key.strip()] = value
    last = [time.monotonic()]

    def progress(result: MirrorResult) -> None:
        now = time.monotonic()
        if now - last[0] >= _PROGRESS_SECONDS:
            last[0] = now
            _report(out, args.json, "progress", result)

    try:
        with eventlog.open(log_path, create=args.direction == "from-kafka") as log:
            try:
                mirror = Mirror(
                    log,
                    args.bootstrap,
                    args.topics,
                    direction=args.direction,
                    name=args.name,
                    exactly_once=args.exactly_once,
                    kafka_config=config,
                    batch_size=args.batch_size,
                    timeout=args.timeout,
                    positions_topic=args.positions_topic,
                    on_progress=progress,
                )
            except InvalidArgumentError as e:
                _emit(out, args.json, "error", str(e))
                return 2
            try:
                result = mirror.run(follow=args.follow)
            except KeyboardInterrupt:
                result = mirror.progress()
    except EventLogError as e:
        _emit(out, args.json, "error", str(e))
        return 1
    _report(out, args.json, "done", result)
    return 0


def _emit(out: TextIO, as_json: bool, event: str, message: str) -> None:
    if as_json:
        out.write(json.dumps({"event": event, "message": message}) + "\n")
    else:
        out.write(f"{event}: {message}\n")
    out.flush()


def _report(out: TextIO, as_json: bool, event: str, result: MirrorResult) -> None:
    if as_json:
        line = {
            "event": event,
            "name": result.name,
            "direction": result.direction,
            "records": result.records,
            "lag": result.lag,
            "elapsed": round(result.elapsed, 3),
            "partitions": [
                {
                    "topic": p.topic,
                    "partition": p.partition,
                    "position": p.position,
                    "end": p.end,
                    "lag": p.lag,
                }
                for p in result.partitions
            ],
        }
        out.write(json.dumps(line) + "\n")
        out.flush()
        return
    rate = result.records / result.elapsed if result.elapsed > 0 else 0.0
    out.write(
        f"{event}: mirror {result.name} ({result.direction}): {result.records} records "
        f"in {result.elapsed:.1f} s ({rate:,.0f}/s), lag {result.lag}\n"
    )
    if event == "done":
        for p in result.partitions:
            out.write(f"  {p.topic}[{p.partition}] position {p.position} end {p.end} lag {p.lag}\n")
    out.flush()
