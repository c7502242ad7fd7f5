"""Open and read a (possibly damaged) log in a separate process, so that a crash (SIGBUS,
SIGSEGV) fails the calling test instead of killing the test runner.

Run as ``python tests/helpers/probe.py LOGDIR SPEC_JSON``. SPEC is an object with:

* ``open``: keyword arguments for ``eventlog.open`` (default ``{}``);
* ``reads``: a list of ``[topic, partition, offset, max_records]`` reads to try;
* ``scan``: a list of topics to iterate fully with ``Log.scan``;
* ``dump``: when true, read every partition of every topic from its start to its end;
* ``flips``: a list of ``{"at": [file offsets], "xor": mask}``. When given, each flip is
  applied to data.mdb in turn (XOR at every listed offset), the reads/scan/dump run on a
  freshly opened log, and the file is restored before the next flip.

It prints one JSON object: ``{"open": outcome, "reads": [...], "scan": [...], "dump":
{"topic/partition": outcome}}`` (a list of those with ``flips``). An outcome is
``{"ok": true, ...}`` or ``{"ok": false, "error": class name, "topic", "partition",
"offset", "message"}`` for an EventLogError. Any other exception is a bug: it propagates,
and the process exits with status 1 and a traceback.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from typing import Any

import eventlog


def _error(exc: eventlog.EventLogError) -> dict[str, Any]:
    print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
    return {"ok": False, "error": type(exc).__name__, "topic": exc.topic,
            "partition": exc.partition, "offset": exc.offset, "message": str(exc)}


def _digest(records: list[eventlog.Record]) -> str:
    h = hashlib.sha256()
    for r in records:
        h.update(repr((r.offset, r.timestamp, r.key, r.value, r.headers)).encode())
    return h.hexdigest()


def _dump_partition(log: eventlog.Log, topic: str, partition: int, end: int) -> dict[str, Any]:
    records: list[eventlog.Record] = []
    position = log.beginning_offsets(topic)[partition]
    while position < end:
        page = log.read(topic, partition, position, max_records=100_000)
        if not page:
            break
        records.extend(page)
        position = page[-1].offset + 1
    return {"ok": True, "count": len(records), "digest": _digest(records),
            "offsets": [records[0].offset, records[-1].offset] if records else []}


def run_once(path: str, spec: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    try:
        log = eventlog.open(path, **spec.get("open", {}))
    except eventlog.EventLogError as exc:
        out["open"] = _error(exc)
        return out
    out["open"] = {"ok": True}
    try:
        reads = []
        for topic, partition, offset, max_records in spec.get("reads", []):
            try:
                got = log.read(topic, partition, offset, max_records=max_records)
            except eventlog.EventLogError as exc:
                reads.append(_error(exc))
            else:
                reads.append({"ok": True, "count": len(got), "digest": _digest(got),
                              "values": [r.value.hex() if r.value is not None else None
                                         for r in got]})
        out["reads"] = reads
        scans = []
        for topic in spec.get("scan", []):
            try:
                got = list(log.scan(topic))
            except eventlog.EventLogError as exc:
                scans.append(_error(exc))
            else:
                scans.append({"ok": True, "count": len(got), "digest": _digest(got)})
        out["scan"] = scans
        if spec.get("dump"):
            dump = {}
            for topic in log.list_topics():
                for partition, end in sorted(log.end_offsets(topic).items()):
                    try:
                        dump[f"{topic}/{partition}"] = _dump_partition(log, topic, partition,
                                                                       end)
                    except eventlog.EventLogError as exc:
                        dump[f"{topic}/{partition}"] = _error(exc)
            out["dump"] = dump
    finally:
        log.close()
    return out


def _xor(data_path: str, offsets: list[int], mask: int) -> None:
    with open(data_path, "r+b") as f:
        for at in offsets:
            f.seek(at)
            byte = f.read(1)[0]
            f.seek(at)
            f.write(bytes([byte ^ mask]))


def main() -> None:
    path = sys.argv[1]
    spec = json.loads(sys.argv[2])
    flips = spec.get("flips")
    if flips is None:
        print(json.dumps(run_once(path, spec)))
        return
    data_path = os.path.join(path, "data.mdb")
    results = []
    for flip in flips:
        _xor(data_path, flip["at"], flip["xor"])
        try:
            results.append(run_once(path, spec))
        finally:
            _xor(data_path, flip["at"], flip["xor"])  # XOR again restores the byte
    print(json.dumps(results))


if __name__ == "__main__":
    main()
