"""Crash tests for compaction: a writer is SIGKILLed at random moments while compaction runs.

The writer (``tests/helpers/compaction_writer.py``) appends keyed records and tombstones
over a small key set to a ``compact`` topic and to a ``compact,delete`` topic with a small
``retention.bytes``, while compaction runs all the time (in small chunks, so a kill often
lands in the middle of a pass) and ``log.compact()`` is called now and then. It announces
each append before making it, and acknowledges it after it returns.

The parent knows every committed record exactly: acknowledged ones, and the append in
flight at the kill, which committed when (and only when) the end offsets moved past the
acknowledged records (it must have committed entirely or not at all). After every kill the
log is reopened and checked:

* ``log.check()`` is clean (the key index agrees with the batches, nothing torn);
* end offsets are exactly what was committed; log start offsets never move back (and stay
  0 on the ``compact`` topic, whose records only compaction removes);
* every stored record is a committed record, unchanged, at its own offset;
* the newest record of every key (tombstones too: ``delete.retention.ms`` outlives the
  test) is stored, unless retention moved the log start past it;
* ``latest(topic, key)`` is that record (None for a tombstone or a key retention removed)
  and ``table(topic)`` agrees with ``latest`` for every key;
* on every other kill, the log is opened writable and ``log.compact()`` finishes the work:
  afterwards each partition holds exactly the newest record of each key, and check() is
  still clean.
"""

from __future__ import annotations

import importlib.util
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import eventlog
from eventlog._partitioner import default_partition

HELPERS = Path(__file__).parent / "helpers"
WRITER_SCRIPT = HELPERS / "compaction_writer.py"


def _load_writer() -> Any:
    spec = importlib.util.spec_from_file_location("_eventlog_compaction_writer", WRITER_SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


writer = _load_writer()
TOPICS: tuple[str, str] = writer.TOPICS
COMPACT_TOPIC: str = writer.COMPACT_TOPIC
BOTH_TOPIC: str = writer.BOTH_TOPIC
PARTITIONS: int = writer.PARTITIONS
KEYS: tuple[bytes, ...] = writer.KEYS
TP = tuple[str, int]
# (timestamp, key, value) of a committed record
Committed = tuple[int, bytes, bytes | None]


class _Writer:
    """One writer subprocess, started ahead of time and waiting for "go" on stdin."""

    def __init__(self, workdir: Path, logdir: Path, seed: int, round_: int,
                 durability: str) -> None:
        self.seed = seed
        self.round = round_
        self.out_path = workdir / f"writer-{round_}.out"
        self.err_path = workdir / f"writer-{round_}.err"
        self._out = self.out_path.open("wb")
        self._err = self.err_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, str(WRITER_SCRIPT), str(logdir), str(seed), str(round_),
             "--durability", durability, "--wait-go"],
            stdin=subprocess.PIPE, stdout=self._out, stderr=self._err)

    def output(self) -> bytes:
        return self.out_path.read_bytes()

    def _fail(self, what: str) -> None:
        pytest.fail(f"writer {self.seed} {what}:\n{self.err_path.read_text(errors='replace')}")

    def go(self) -> None:
        deadline = time.monotonic() + 60.0
        while b"R\n" not in self.output():
            if self.proc.poll() is not None:
                self._fail(f"exited ({self.proc.returncode}) before its ready line")
            if time.monotonic() > deadline:
                self.kill()
                pytest.fail(f"writer {self.seed}: no ready line within 60 s")
            time.sleep(0.002)
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"go\n")
        self.proc.stdin.flush()

    def wait_for_acks(self, n: int) -> None:
        """Wait until ``n`` records are acknowledged."""
        deadline = time.monotonic() + 60.0
        while self.output().count(b"\nA ") < n:
            if self.proc.poll() is not None:
                self._fail(f"exited ({self.proc.returncode})")
            if time.monotonic() > deadline:
                return  # a slow machine: kill wherever it got to
            time.sleep(0.002)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self._out.close()
        self._err.close()
        if self.proc.stdin is not None:
            self.proc.stdin.close()

    def check_killed(self) -> None:
        if self.proc.returncode != -signal.SIGKILL:
            self._fail(f"exited on its own ({self.proc.returncode})")


class Harness:
    """Kills writers on one log directory and checks the log after each kill."""

    def __init__(self, tmp_path: Path, durability: str, seed: int) -> None:
        self.workdir = tmp_path
        self.logdir = tmp_path / "log"
        self.durability = durability
        self.seed = seed
        self.rng = random.Random(seed)
        self.kills = 0
        self.rounds = 0
        # Every committed record, by (topic, partition) and offset (also those compaction
        # or retention removed since).
        self.committed: dict[TP, dict[int, Committed]] = {
            (t, p): {} for t in TOPICS for p in range(PARTITIONS)}
        self.end: dict[TP, int] = dict.fromkeys(self.committed, 0)
        self.log_start: dict[TP, int] = dict.fromkeys(self.committed, 0)
        # Coverage counters.
        self.acked_records = 0
        self.in_flight_committed = 0
        self.in_flight_lost = 0
        self.compacted_away = 0  # committed records found removed by compaction
        self.tombstones_checked = 0
        self.moved_starts = 0
        self.explicit_compactions = 0

    def _ctx(self) -> str:
        return f"(harness seed {self.seed}, kill {self.kills}, durability {self.durability})"

    def run(self, kills: int) -> None:
        next_writer: _Writer | None = self._start_writer()
        for n in range(kills):
            current = next_writer
            assert current is not None
            current.go()
            if n == 0 or self.rng.random() < 0.8:
                current.wait_for_acks(self.rng.choice((1, 5, 30, 100)))
                time.sleep(self.rng.uniform(0.0, 0.1))
            else:
                time.sleep(self.rng.uniform(0.0, 0.2))  # maybe inside open / create_topic
            current.kill()
            self.kills += 1
            current.check_killed()
            next_writer = self._start_writer() if n + 1 < kills else None
            try:
                self._verify(current)
            except BaseException:
                if next_writer is not None:
                    next_writer.kill()
                raise

    def _start_writer(self) -> _Writer:
        self.rounds += 1
        return _Writer(self.workdir, self.logdir, self.rng.randrange(2**31), self.rounds,
                       self.durability)

    def _targets(self, w: _Writer, seq: int, n: int) -> list[tuple[int, Committed]]:
        """(partition, record) of records seq .. seq + n - 1 (each in its key's default
        partition)."""
        out = []
        for s in range(seq, seq + n):
            rec = writer.make_record(w.seed, w.round, s)
            record: Committed = (rec["timestamp"], rec["key"], rec["value"])
            out.append((default_partition(rec["key"], PARTITIONS), record))
        return out

    def _commit(self, topic: str, targets: list[tuple[int, Committed]]) -> list[int]:
        """Add an append's records to the model; their offsets."""
        offsets = []
        for p, record in targets:
            tp = (topic, p)
            self.committed[tp][self.end[tp]] = record
            offsets.append(self.end[tp])
            self.end[tp] += 1
        return offsets

    def _parse(self, w: _Writer) -> tuple[str, list[tuple[int, Committed]]] | None:
        """Take in the writer's acknowledged appends; return the one in flight at the kill
        (topic and records), if any."""
        ctx = self._ctx()
        in_flight: tuple[str, list[tuple[int, Committed]]] | None = None
        acks: list[tuple[int, int, int, int]] = []
        lines = w.output().split(b"\n")[:-1]  # the last piece may be cut short
        for line in [*lines, b"END"]:
            fields = line.split()
            if fields[0] != b"A" and acks:
                # The acknowledgement lines of one append are one write: all of them.
                assert in_flight is not None, ctx
                topic, targets = in_flight
                offsets = self._commit(topic, targets)
                # (A kill may cut the acknowledgement lines short: the append returned.)
                assert len(acks) <= len(targets), ctx
                for (t, p, o, _seq), (q, _rec), want in zip(acks, targets, offsets):
                    assert (TOPICS[t], p, o) == (topic, q, want), \
                        f"acknowledged {TOPICS[t]}/{p}@{o}, expected {topic}/{q}@{want} {ctx}"
                self.acked_records += len(acks)
                acks = []
                in_flight = None
            if fields[0] == b"W":
                assert in_flight is None, ctx
                t, seq, n = map(int, fields[1:])
                in_flight = (TOPICS[t], self._targets(w, seq, n))
            elif fields[0] == b"A":
                acks.append(tuple(map(int, fields[1:])))  # type: ignore[arg-type]
            elif fields[0] == b"C":
                self.explicit_compactions += 1
            else:
                assert fields in ([b"R"], [b"I", b"C"], [b"END"]), \
                    f"unexpected writer output {line!r} {ctx}"
        return in_flight

    def _verify(self, w: _Writer) -> None:
        in_flight = self._parse(w)
        ctx = self._ctx()
        readonly = self.kills % 2 == 0
        with eventlog.open(self.logdir, readonly=readonly, durability=self.durability) as log:
            topics = log.list_topics()
            if not set(TOPICS) <= set(topics):
                assert not any(self.end.values()), f"committed records but no topics {ctx}"
                assert in_flight is None, ctx
                return
            self._settle_in_flight(log, in_flight)
            report = log.check()
            assert report, f"log.check() after a kill {ctx}:\n{report}"
            for topic in TOPICS:
                self._check_topic(log, topic)
            if not readonly:
                self._compact_and_check(log)

    def _settle_in_flight(self, log: eventlog.Log,
                          in_flight: tuple[str, list[tuple[int, Committed]]] | None) -> None:
        """Whether the append in flight committed: end offsets say (all partitions agree)."""
        ctx = self._ctx()
        moved = {}
        for topic in TOPICS:
            for p, end in log.end_offsets(topic).items():
                moved[(topic, p)] = end - self.end[(topic, p)]
        counts: dict[TP, int] = {}
        if in_flight is not None:
            topic, targets = in_flight
            for p, _record in targets:
                counts[(topic, p)] = counts.get((topic, p), 0) + 1
        committed = bool(counts) and all(moved[tp] == n for tp, n in counts.items())
        for tp, delta in moved.items():
            want = counts.get(tp, 0) if committed else 0
            assert delta == want, \
                f"{tp}: end offset {self.end[tp] + delta}, expected {self.end[tp] + want} " \
                f"(the append in flight committed: {committed}) {ctx}"
        if committed:
            assert in_flight is not None
            self._commit(*in_flight)
            self.in_flight_committed += 1
        elif in_flight is not None:
            self.in_flight_lost += 1

    def _newest(self, tp: TP) -> dict[bytes, int]:
        """key -> the offset of its newest committed record in a partition."""
        newest: dict[bytes, int] = {}
        for offset, (_ts, key, _value) in self.committed[tp].items():
            newest[key] = offset
        return newest

    def _check_topic(self, log: eventlog.Log, topic: str) -> None:
        ctx = self._ctx()
        desc = log.describe_topic(topic)
        assert len(desc.partitions) == PARTITIONS
        expected_table: dict[bytes, bytes] = {}
        for info in desc.partitions:
            p = info.partition
            tp = (topic, p)
            start = info.log_start_offset
            assert info.end_offset == self.end[tp], ctx
            assert start >= self.log_start[tp], f"{tp}: log start moved back {ctx}"
            if topic == COMPACT_TOPIC:
                assert start == 0, f"{tp}: the log start moved on a compact topic {ctx}"
            elif self.end[tp]:
                # Retention never deletes the last batch, and compaction keeps the last
                # record (the newest of its key): the log start stays below the end.
                assert start < self.end[tp], ctx
            self.moved_starts += start > self.log_start[tp]
            self.log_start[tp] = start
            committed = self.committed[tp]
            stored = list(log.scan(topic, p))
            offsets = [r.offset for r in stored]
            assert offsets == sorted(set(offsets)), f"{tp}: offsets out of order {ctx}"
            for r in stored:
                assert start <= r.offset < self.end[tp], ctx
                assert (r.timestamp, r.key, r.value, r.headers) == (*committed[r.offset], ()), \
                    f"{tp}@{r.offset}: a stored record is not the committed one {ctx}"
            present = set(offsets)
            self.compacted_away += sum(o not in present for o in range(start, self.end[tp]))
            newest = self._newest(tp)
            for key, offset in newest.items():
                if offset >= start:
                    assert offset in present, \
                        f"{tp}: the newest record of {key[:12]!r} (offset {offset}) is gone " \
                        f"{ctx}"
                    self.tombstones_checked += committed[offset][2] is None
            for key in KEYS:
                if default_partition(key, PARTITIONS) != p:
                    continue
                got = log.latest(topic, key)
                offset = newest.get(key)
                if offset is None or offset < start or committed[offset][2] is None:
                    assert got is None, f"{tp}: latest({key[:12]!r}) is {got} {ctx}"
                    continue
                assert got is not None, f"{tp}: latest({key[:12]!r}) is None {ctx}"
                assert (got.partition, got.offset) == (p, offset), ctx
                value = committed[offset][2]
                assert value is not None
                assert got.value == value, ctx
                expected_table[key] = value
        table = log.table(topic)
        assert dict(table.items()) == expected_table, f"{topic}: table {ctx}"
        assert len(table) == len(expected_table), f"{topic}: len(table) {ctx}"
        for key in KEYS:
            assert table.get(key) == expected_table.get(key), ctx

    def _compact_and_check(self, log: eventlog.Log) -> None:
        """compact() finishes whatever a pass left and leaves the newest record of each
        key, nothing else."""
        ctx = self._ctx()
        log.compact()
        for topic in TOPICS:
            for p in range(PARTITIONS):
                tp = (topic, p)
                start = log.beginning_offsets(topic)[p]
                want = sorted(o for o in self._newest(tp).values() if o >= start)
                got = [r.offset for r in log.scan(topic, p)]
                assert got == want, f"{tp}: after compact() {got}, expected {want} {ctx}"
        report = log.check()
        assert report, f"log.check() after compact() {ctx}:\n{report}"


def _run(tmp_path: Path, durability: str, kills: int) -> Harness:
    seed = random.randrange(2**32)
    harness = Harness(tmp_path, durability, seed)
    harness.run(kills)
    assert harness.kills == kills
    # The writers really worked, compaction and retention really ran, between the kills.
    assert harness.acked_records > 0
    assert harness.compacted_away > 0
    assert harness.moved_starts > 0
    assert harness.tombstones_checked > 0
    return harness


@pytest.mark.parametrize("durability", ["normal", "off"])
def test_sigkill_during_compaction_keeps_latest_values(tmp_path: Path, durability: str) -> None:
    # A process crash loses nothing committed in any durability mode.
    _run(tmp_path, durability, kills=20)


@pytest.mark.stress
@pytest.mark.timeout(3600)
@pytest.mark.skipif(os.environ.get("EVENTLOG_STRESS") != "1",
                    reason="opt-in stress test (about 450 kills, a few minutes): set "
                           "EVENTLOG_STRESS=1, e.g. `make stress`")
@pytest.mark.parametrize("durability", ["full", "normal", "off"])
def test_sigkill_during_compaction_stress(tmp_path: Path, durability: str) -> None:
    _run(tmp_path, durability, kills=150)
