"""Crash tests: a writer process is SIGKILLed at random moments, many times, on one log.

After every kill the log is reopened and checked against what the writer acknowledged:

* every acknowledged record is present, byte for byte, at its acknowledged offset;
* offsets are dense from 0 to the end offset in every partition;
* everything stored decodes (no CorruptLogError anywhere, so every CRC verifies);
* records the writer had not acknowledged yet exist only as whole append calls (an
  ``append_batch`` is all-or-nothing, also across partitions).

The writer (``tests/helpers/writer.py``) derives the records of its ``c``-th call from
``(seed, c)`` alone, so this process regenerates them instead of trusting the writer's output.
"""

from __future__ import annotations

import importlib.util
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import eventlog

HELPERS = Path(__file__).parent / "helpers"
WRITER_SCRIPT = HELPERS / "writer.py"


def _load_writer() -> Any:
    spec = importlib.util.spec_from_file_location("_eventlog_crash_writer", WRITER_SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


writer = _load_writer()
TOPIC = writer.TOPIC
PARTITIONS = writer.PARTITIONS

# (timestamp, key, value, headers) as stored
StoredRecord = tuple[int, bytes | None, bytes | None, tuple[tuple[str, bytes | None], ...]]


def _headers(h: list[tuple[str, bytes | None]] | None) -> tuple[tuple[str, bytes | None], ...]:
    return tuple((name, value) for name, value in h) if h else ()


class _Writer:
    """One writer subprocess, started ahead of time and waiting for "go" on stdin."""

    def __init__(self, workdir: Path, logdir: Path, seed: int, durability: str) -> None:
        self.seed = seed
        self.out_path = workdir / f"writer-{seed}.out"
        self.err_path = workdir / f"writer-{seed}.err"
        self._out = self.out_path.open("wb")
        self._err = self.err_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, str(WRITER_SCRIPT), str(logdir), str(seed),
             "--durability", durability, "--wait-go"],
            stdin=subprocess.PIPE, stdout=self._out, stderr=self._err)

    def _output(self) -> bytes:
        return self.out_path.read_bytes()

    def _wait_for(self, marker: bytes, what: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while marker not in self._output():
            if self.proc.poll() is not None:
                pytest.fail(f"writer {self.seed} exited ({self.proc.returncode}) before {what}:"
                            f"\n{self.err_path.read_text(errors='replace')}")
            if time.monotonic() > deadline:
                self.kill()
                pytest.fail(f"writer {self.seed}: no {what} within {timeout} s")
            time.sleep(0.002)

    def go(self) -> None:
        self._wait_for(b"R\n", "ready line")
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"go\n")
        self.proc.stdin.flush()

    def wait_for_first_ack(self) -> None:
        self._wait_for(b"\nA ", "first acknowledgement")

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self._out.close()
        self._err.close()
        if self.proc.stdin is not None:
            self.proc.stdin.close()

    def check_killed(self) -> None:
        if self.proc.returncode != -signal.SIGKILL:
            pytest.fail(f"writer {self.seed} exited on its own ({self.proc.returncode}):\n"
                        f"{self.err_path.read_text(errors='replace')}")

    def acks(self) -> list[tuple[int, int, int, int, int]]:
        """(call, index, partition, offset, timestamp) of every complete ack line."""
        out = []
        for line in self._output().split(b"\n")[:-1]:  # the last piece may be cut short
            if line.startswith(b"A "):
                c, i, p, o, t = map(int, line.split()[1:])
                out.append((c, i, p, o, t))
        return out


class CrashHarness:
    """Kills writers on one log directory and checks the log against a model after each."""

    def __init__(self, tmp_path: Path, durability: str, seed: int) -> None:
        self.workdir = tmp_path
        self.logdir = tmp_path / "log"
        self.durability = durability
        self.rng = random.Random(seed)
        self.seed = seed
        self.model: dict[int, list[StoredRecord]] = {p: [] for p in range(PARTITIONS)}
        self.kills = 0
        self.kills_after_acks = 0  # rounds that waited for an acknowledgement before killing
        self.rounds_with_acks = 0
        self.acked_records = 0
        self.unacked_calls_found = 0

    def _context(self) -> str:
        return f"(harness seed {self.seed}, kill {self.kills}, durability {self.durability})"

    def run(self, kills: int, full_check_every: int = 10) -> None:
        next_writer = self._start_writer()
        for n in range(kills):
            current = next_writer
            current.go()
            mode = self.rng.random()
            if n == 0 or mode < 0.7:
                # The first round always lets the log be created: a kill inside the very
                # first open is covered by test_kill_during_log_creation_leaves_an_openable_log.
                current.wait_for_first_ack()
                self.kills_after_acks += 1
                time.sleep(self.rng.uniform(0.02, 0.3))
            elif mode < 0.85:
                time.sleep(self.rng.uniform(0.0, 0.02))  # during open / topic creation
            else:
                time.sleep(self.rng.uniform(0.02, 0.3))
            current.kill()
            self.kills += 1
            current.check_killed()
            # Start the next writer now, so that its interpreter start-up overlaps the check.
            next_writer = self._start_writer() if n + 1 < kills else None
            try:
                self._verify(current, full=(n % full_check_every == full_check_every - 1
                                            or n + 1 == kills))
            except BaseException:
                if next_writer is not None:
                    next_writer.kill()
                raise

    def _start_writer(self) -> _Writer:
        return _Writer(self.workdir, self.logdir, self.rng.randrange(2**31), self.durability)

    def _read_partition(self, log: eventlog.Log, p: int, start: int,
                        end: int) -> list[StoredRecord]:
        out: list[StoredRecord] = []
        position = start
        while position < end:
            cols = log.read_columns(TOPIC, p, position, max_records=5000)
            assert cols.offsets, f"partition {p}: read at {position} < end {end} returned " \
                                 f"nothing {self._context()}"
            expected = list(range(position, position + len(cols.offsets)))
            assert list(cols.offsets) == expected, \
                f"partition {p}: offsets not dense after {position} {self._context()}"
            out.extend(zip(cols.timestamps, cols.keys, cols.values, cols.headers, strict=True))
            position = cols.offsets[-1] + 1
            assert cols.next_offset == position
        assert position == end, f"partition {p}: records past the end offset {self._context()}"
        assert log.read(TOPIC, p, end) == [], f"partition {p}: data at the end offset"
        return out

    def _verify(self, w: _Writer, *, full: bool) -> None:
        acks = w.acks()
        readonly = self.kills % 2 == 0
        with eventlog.open(self.logdir, readonly=readonly, durability=self.durability) as log:
            if TOPIC not in log.list_topics():
                assert not acks, f"acknowledged records but no topic {self._context()}"
                assert not any(self.model.values())
                return
            assert log.beginning_offsets(TOPIC) == dict.fromkeys(range(PARTITIONS), 0)
            ends = log.end_offsets(TOPIC)
            starts = {p: len(self.model[p]) for p in range(PARTITIONS)}
            new = {p: self._read_partition(log, p, starts[p], ends[p]) for p in range(PARTITIONS)}
            self._check_round(w, acks, starts, new)
            for p in range(PARTITIONS):
                self.model[p].extend(new[p])
            if full:
                for p in range(PARTITIONS):
                    stored = self._read_partition(log, p, 0, ends[p])
                    assert stored == self.model[p], \
                        f"partition {p}: earlier records changed {self._context()}"
                    scanned = [(r.timestamp, r.key, r.value, r.headers)
                               for r in log.scan(TOPIC, p)]
                    assert scanned == self.model[p]
                report = log.check()  # the library's own integrity check agrees
                assert report, f"log.check() after a kill {self._context()}:\n{report}"

    def _check_round(self, w: _Writer, acks: list[tuple[int, int, int, int, int]],
                     starts: dict[int, int], new: dict[int, list[StoredRecord]]) -> None:
        ctx = self._context()
        calls: dict[int, list[dict[str, Any]]] = {}

        def records_of(c: int) -> list[dict[str, Any]]:
            if c not in calls:
                calls[c] = writer.make_call(w.seed, c)[1]
            return calls[c]

        by_call: dict[int, dict[int, tuple[int, int, int]]] = {}
        for c, i, p, o, t in acks:
            by_call.setdefault(c, {})[i] = (p, o, t)
        last_acked = max(by_call, default=-1)
        assert sorted(by_call) == list(range(last_acked + 1)), f"ack lines skip a call {ctx}"
        for c in range(last_acked):
            assert len(by_call[c]) == len(records_of(c)), f"call {c} half acknowledged {ctx}"
        if acks:
            self.rounds_with_acks += 1
            self.acked_records += len(acks)

        claimed: set[tuple[int, int]] = set()
        for c, got in by_call.items():
            expected = records_of(c)
            per_partition: dict[int, list[tuple[int, int]]] = {}
            for i, (p, o, t) in got.items():
                rec = expected[i]
                assert starts[p] <= o < starts[p] + len(new[p]), \
                    f"acknowledged record {c}/{i} at {p}/{o} is missing {ctx}"
                stored = new[p][o - starts[p]]
                want = (t, rec["key"], rec["value"], _headers(rec["headers"]))
                assert stored == want, f"acknowledged record {c}/{i} at {p}/{o} differs {ctx}"
                if rec["timestamp"] is not None:
                    assert t == rec["timestamp"]
                if rec["partition"] is not None:
                    assert p == rec["partition"]
                claimed.add((p, o))
                per_partition.setdefault(p, []).append((i, o))
            for p, pairs in per_partition.items():
                offsets = [o for _i, o in sorted(pairs)]
                if c < last_acked or len(got) == len(expected):
                    # One call writes one contiguous batch per partition, in call order.
                    assert offsets == list(range(offsets[0], offsets[0] + len(offsets))), \
                        f"call {c}: records not contiguous in partition {p} {ctx}"
                else:
                    assert offsets == sorted(offsets)

        for p in range(PARTITIONS):
            order = sorted((o, c) for c, got in by_call.items() for q, o, _t in got.values()
                           if q == p)
            calls_in_order = [c for _o, c in order]
            assert calls_in_order == sorted(calls_in_order), \
                f"partition {p}: calls stored out of order {ctx}"

        total_new = sum(len(v) for v in new.values())
        acked_calls_size = sum(len(records_of(c)) for c in range(last_acked + 1))
        tail = records_of(last_acked + 1)
        assert total_new in (acked_calls_size, acked_calls_size + len(tail)), (
            f"{total_new} new records; the acknowledged calls hold {acked_calls_size} and the "
            f"next call {len(tail)}: a partial batch is visible {ctx}")
        missing = Counter()
        if last_acked >= 0:
            for i, rec in enumerate(records_of(last_acked)):
                if i not in by_call[last_acked]:
                    missing[(rec["key"], rec["value"], _headers(rec["headers"]))] += 1
        if total_new == acked_calls_size + len(tail):
            self.unacked_calls_found += 1
            for rec in tail:
                missing[(rec["key"], rec["value"], _headers(rec["headers"]))] += 1
        unclaimed = Counter(
            (k, v, h)
            for p, recs in new.items()
            for o, (_t, k, v, h) in enumerate(recs, start=starts[p])
            if (p, o) not in claimed)
        assert unclaimed == missing, f"unacknowledged records are not whole calls {ctx}"


def _run(tmp_path: Path, durability: str, kills: int) -> CrashHarness:
    seed = random.randrange(2**32)
    harness = CrashHarness(tmp_path, durability, seed)
    harness.run(kills, full_check_every=10 if kills <= 100 else 50)
    assert harness.kills == kills
    # The writers really were killed in the middle of their work (and the harness parsed
    # their acknowledgements).
    assert harness.kills_after_acks >= 1
    assert harness.rounds_with_acks >= harness.kills_after_acks
    assert harness.acked_records >= harness.rounds_with_acks
    return harness


def test_sigkill_with_full_durability_loses_nothing_acknowledged(tmp_path: Path) -> None:
    _run(tmp_path, "full", kills=50)


@pytest.mark.parametrize("durability", ["normal", "off"])
def test_sigkill_with_faster_durability_modes_loses_nothing_acknowledged(
        tmp_path: Path, durability: str) -> None:
    # The faster modes only give up durability on power loss; a process crash loses nothing.
    _run(tmp_path, durability, kills=10)


@pytest.mark.stress
@pytest.mark.timeout(3600)
@pytest.mark.skipif(os.environ.get("EVENTLOG_STRESS") != "1",
                    reason="opt-in stress test (1,000 kills, ~10 minutes): set EVENTLOG_STRESS=1, "
                           "e.g. `make stress`")
@pytest.mark.parametrize("durability", ["full", "normal", "off"])
def test_sigkill_stress(tmp_path: Path, durability: str) -> None:
    # 250 kills per log directory keeps each log (and each full re-check) a manageable size.
    segments = 2 if durability == "full" else 1
    for segment in range(segments):
        workdir = tmp_path / f"segment-{segment}"
        workdir.mkdir()
        _run(workdir, durability, kills=250)


KILL_DURING_CREATION = """
import os, signal, sys
import eventlog

# Count profiler events (Python and C calls and returns) made by eventlog's own code while
# it creates a new log, and SIGKILL this process at event number `target` (0: never; print
# the total instead). This crashes creation at arbitrary points without knowing its steps.
path, target = sys.argv[1], int(sys.argv[2])
package = os.path.dirname(eventlog.__file__)
count = 0

def profile(frame, event, arg):
    global count
    if frame.f_code.co_filename.startswith(package):
        count += 1
        if count == target:
            os.kill(os.getpid(), signal.SIGKILL)

sys.setprofile(profile)
log = eventlog.open(path)
sys.setprofile(None)
log.close()
print(count)
"""


def _create_and_kill(logdir: Path, target: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", KILL_DURING_CREATION, str(logdir), str(target)],
                          capture_output=True, text=True, timeout=60, check=False)


def test_kill_during_log_creation_leaves_an_openable_log(tmp_path: Path) -> None:
    """A crash at any moment while ``eventlog.open`` creates a brand-new log must leave
    either no log or a complete one: never a directory that every later open refuses."""
    dry = _create_and_kill(tmp_path / "dry-run", 0)
    assert dry.returncode == 0, dry.stderr
    total = int(dry.stdout)
    assert total > 20
    # About 20 crash points spread evenly over the whole creation (a random phase, so that
    # successive runs cover different events), plus the first and the last event.
    step = max(1, total // 20)
    targets = sorted({1, total - 1, *range(random.randrange(1, step + 1), total, step)})
    for target in targets:
        logdir = tmp_path / f"log-{target}"
        proc = _create_and_kill(logdir, target)
        assert proc.returncode == -signal.SIGKILL, proc.stderr
        try:
            with eventlog.open(logdir) as log:
                log.create_topic("t")
                assert log.append("t", b"v").offset == 0
            with eventlog.open(logdir, readonly=True) as log:
                assert [r.value for r in log.read("t", 0)] == [b"v"]
        except eventlog.EventLogError as exc:
            contents = sorted(p.name for p in logdir.iterdir()) if logdir.exists() else None
            pytest.fail(f"killed at profiler event {target} of {total} while creating the "
                        f"log; reopening then failed: {exc!r}; directory: {contents}")
