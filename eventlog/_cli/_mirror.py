"""``eventlog PATH mirror``: copy topics to or from a Kafka cluster (eventlog.ext.kafka)."""

from __future__ import annotations

import argparse
import json
import threading
import time
from typing import Any

from ._common import add_common, config_pair, ctrl_c_flag, open_log
from ._output import Output, plural

__all__ = ["register"]

# At most one progress line per this many seconds.
_PROGRESS_SECONDS = 1.0


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1; got {text!r}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number of seconds > 0; got {text!r}")
    return value


def register(commands: Any) -> None:
    """Add the mirror command."""
    from ..ext.kafka._mirror import KAFKA_POSITIONS_TOPIC

    p = commands.add_parser(
        "mirror", help="copy topics to or from a Kafka cluster (needs eventlog[kafka])"
    )
    p.description = (
        "Copy topics from the log to a Kafka cluster (to-kafka) or from a cluster into the log "
        "(from-kafka), keeping keys, values, headers and timestamps, and partition numbers when "
        "the counts match (otherwise keys are re-partitioned with murmur2, as Kafka's default "
        "partitioner does). A rerun resumes where the last one stopped: from-kafka is "
        "exactly-once (records and Kafka positions in one log transaction); to-kafka marks "
        "records mirrored once Kafka acknowledged them (--exactly-once: Kafka transactions). "
        "Copies up to now and exits, or follows new records with --follow until Ctrl-C. "
        "Progress and lag: a line a second here, and `eventlog PATH stats` "
        "(eventlog.ext.kafka.Mirror, mirror_status). Needs pip install 'eventlog[kafka]'."
    )
    add_common(p)
    p.add_argument(
        "direction",
        choices=["to-kafka", "from-kafka"],
        help="to-kafka: log topics to the cluster; from-kafka: cluster topics into the log",
    )
    p.add_argument(
        "--bootstrap", required=True, help="the Kafka cluster's bootstrap servers (host:port,...)"
    )
    p.add_argument(
        "-t",
        "--topic",
        action="append",
        required=True,
        dest="topics",
        metavar="TOPIC",
        help="a topic to mirror (repeat for several); it keeps its name on the other side",
    )
    p.add_argument(
        "--name", default="mirror", help="the mirror's name: its positions are kept under it"
    )
    p.add_argument(
        "--follow",
        action="store_true",
        help="keep copying new records until Ctrl-C (then the summary, status 130)",
    )
    p.add_argument(
        "--exactly-once",
        action="store_true",
        help="to-kafka: write with Kafka transactions (from-kafka is always exactly-once)",
    )
    p.add_argument(
        "-X",
        action="append",
        default=[],
        type=config_pair,
        dest="kafka_config",
        metavar="KEY=VALUE",
        help="a librdkafka setting, e.g. -X security.protocol=SASL_SSL (repeatable)",
    )
    p.add_argument(
        "--batch-size",
        type=_positive_int,
        default=500,
        help="records per batch: one transaction (default 500)",
    )
    p.add_argument(
        "--timeout",
        type=_positive_float,
        default=30.0,
        help="seconds to wait for the cluster before failing (default 30)",
    )
    p.add_argument(
        "--positions-topic",
        default=KAFKA_POSITIONS_TOPIC,
        help=f"to-kafka --exactly-once: the Kafka topic of positions "
        f"(default {KAFKA_POSITIONS_TOPIC})",
    )
    p.set_defaults(handler=cmd_mirror)


def cmd_mirror(args: argparse.Namespace, out: Output) -> int:
    from ..ext.kafka import Mirror, MirrorResult

    last = [time.monotonic()]

    def progress(result: MirrorResult) -> None:
        now = time.monotonic()
        if now - last[0] >= _PROGRESS_SECONDS:
            last[0] = now
            _report(out, "progress", result)

    with open_log(args.path, write=True, create=args.direction == "from-kafka") as log:
        mirror = Mirror(
            log,
            args.bootstrap,
            args.topics,
            direction=args.direction,
            name=args.name,
            exactly_once=args.exactly_once,
            kafka_config=dict(args.kafka_config),
            batch_size=args.batch_size,
            timeout=args.timeout,
            positions_topic=args.positions_topic,
            on_progress=progress,
        )
        with ctrl_c_flag() as interrupt:
            # Ctrl-C asks the mirror to stop after its current batch (Mirror.stop, from a
            # thread: not from the signal handler, which may run inside the mirror's locks).
            def stop_on_ctrl_c() -> None:
                interrupt.wait()
                mirror.stop()

            watcher = threading.Thread(target=stop_on_ctrl_c, name="eventlog-ctrl-c")
            watcher.daemon = True
            watcher.start()
            try:
                result = mirror.run(follow=args.follow)
            except KeyboardInterrupt:  # a second Ctrl-C
                result = mirror.progress()  # everything reported was committed
                interrupt.set()
            interrupted = interrupt.is_set()
            interrupt.set()  # ends the watcher
    _report(out, "done", result)
    # Ctrl-C is how --follow ends: the summary, then 130 like consume --follow.
    return 130 if interrupted else 0


def _report(out: Output, event: str, result: Any) -> None:
    """A progress line (on stderr) or the summary (on stdout); JSON lines with --json."""
    if out.json:
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
        stream = out.stdout if event == "done" else out.stderr
        stream.write(json.dumps(line) + "\n")
        stream.flush()
        return
    rate = result.records / result.elapsed if result.elapsed > 0 else 0.0
    text = (
        f"mirror {result.name} ({result.direction}): {plural(result.records, 'record')} "
        f"in {result.elapsed:.1f} s ({rate:,.0f}/s), lag {result.lag}"
    )
    if event != "done":
        out.note(text)
        out.stderr.flush()
        return
    out.line(text)
    out.table(
        ["TOPIC", "PART", "POSITION", "END", "LAG"],
        [[p.topic, p.partition, p.position, p.end, p.lag] for p in result.partitions],
    )
