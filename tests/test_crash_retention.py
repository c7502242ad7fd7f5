"""Crash tests for retention: a writer is SIGKILLed at random moments while retention deletes.

The writer (``tests/helpers/retention_writer.py``) appends to a topic with a small
``retention.bytes`` (so that nearly every append also deletes old batches, in its own
transaction) and to a topic on which it calls ``delete_records()`` and
``run_retention(now_ms=...)`` now and then. After every kill the log is reopened and checked
against what the writer acknowledged:

* the log opens, and every stored batch decodes;
* every acknowledged record at or above its partition's log start offset reads back byte
  for byte at its acknowledged offset (retention lost nothing it keeps); nothing below the
  log start can be read;
* log start offsets never move backwards across kills, never past what retention or an
  (acknowledged or in-flight) delete_records call allows, and at least to every
  acknowledged delete_records offset; end offsets cover every acknowledged record;
* describe_topic's ``size_bytes`` and ``batches`` agree with the stored batches;
* offsets_for_times agrees with a brute-force scan (the time index survived the deletions).
"""

from __future__ import annotations

import importlib.util
import itertools
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
from eventlog._catalog import BATCH_KEY, STATE_OFFSET
from eventlog._codec import decode_batch
from eventlog._errors import OffsetOutOfRangeError

HELPERS = Path(__file__).parent / "helpers"
WRITER_SCRIPT = HELPERS / "retention_writer.py"


def _load_writer() -> Any:
    spec = importlib.util.spec_from_file_location("_eventlog_retention_writer", WRITER_SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


writer = _load_writer()
TOPICS: tuple[str, str] = writer.TOPICS
BYTES_TOPIC: str = writer.BYTES_TOPIC
MANUAL_TOPIC: str = writer.MANUAL_TOPIC
PARTITIONS: int = writer.PARTITIONS
TP = tuple[str, int]
# (timestamp, key, value, headers) as read back
Stored = tuple[int, bytes | None, bytes | None, tuple[tuple[str, bytes | None], ...]]


def _headers(h: list[tuple[str, bytes | None]] | None) -> tuple[tuple[str, bytes | None], ...]:
    return tuple((name, value) for name, value in h) if h else ()


def _item_bytes(keys: Any, values: Any, headers: Any) -> int:
    """What an append adds to ``size_bytes`` for these records: key, value and header-block
    bytes (a header block stores u16 name length, name, i32 value length, value)."""
    total = sum(len(k) for k in keys if k is not None)
    total += sum(len(v) for v in values if v is not None)
    for hs in headers or ():
        total += sum(6 + len(name.encode()) + len(hv or b"") for name, hv in hs)
    return total


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

    def _wait_for(self, marker: bytes, what: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while marker not in self.output():
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

    def wait_for_acks(self, n: int) -> None:
        """Wait until ``n`` records are acknowledged (or a delete/retention call returned)."""
        deadline = time.monotonic() + 60.0
        while True:
            out = self.output()
            if out.count(b"\nA ") >= n and (b"\nD " in out or b"\nT " in out or n <= 1
                                            or out.count(b"\nA ") >= 4 * n):
                return
            if self.proc.poll() is not None:
                pytest.fail(f"writer {self.seed} exited ({self.proc.returncode}):\n"
                            f"{self.err_path.read_text(errors='replace')}")
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
            pytest.fail(f"writer {self.seed} exited on its own ({self.proc.returncode}):\n"
                        f"{self.err_path.read_text(errors='replace')}")


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
        # (topic, partition) -> {offset: (timestamp, key, value, headers)} of acknowledged
        # records (also those retention has removed since).
        self.acked: dict[TP, dict[int, Stored]] = {
            (t, p): {} for t in TOPICS for p in range(PARTITIONS)}
        self.log_start: dict[TP, int] = dict.fromkeys(self.acked, 0)
        # (topic, partition) -> {a batch's end (last offset + 1): its size_bytes}, for every
        # batch seen stored after some kill.
        self.batch_bytes: dict[TP, dict[int, int]] = {tp: {} for tp in self.acked}
        # Upper bounds on MANUAL_TOPIC's log start: every delete_records call ("D",
        # partition, before) and time retention cut ("T", cut, 0) the writers started
        # (acknowledged or in flight), in the order they ran: their effects compose (a cut
        # after a delete_records removes expired batches from the new log start on).
        self.intents: list[tuple[str, int, int]] = []
        # Lower bounds: acknowledged delete_records offsets.
        self.deleted_to: dict[int, int] = dict.fromkeys(range(PARTITIONS), 0)
        # Coverage counters.
        self.acked_records = 0
        self.deletes_acked = 0
        self.cuts_acked = 0
        self.moved_starts = 0
        self.checked_stored = 0
        self.exact_byte_checks = 0

    def _ctx(self) -> str:
        return f"(harness seed {self.seed}, kill {self.kills}, durability {self.durability})"

    def run(self, kills: int) -> None:
        next_writer: _Writer | None = self._start_writer()
        for n in range(kills):
            current = next_writer
            assert current is not None
            current.go()
            mode = self.rng.random()
            if n == 0 or mode < 0.75:
                current.wait_for_acks(self.rng.choice((1, 5, 30, 100)))
                time.sleep(self.rng.uniform(0.0, 0.15))
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

    def _parse(self, w: _Writer) -> None:
        ctx = self._ctx()
        for line in w.output().split(b"\n")[:-1]:  # the last piece may be cut short
            fields = line.split()
            if fields[0] == b"A":
                t, p, o, ts, seq = map(int, fields[1:])
                rec = writer.make_record(w.seed, w.round, seq)
                assert ts == rec["timestamp"], ctx
                tp = (TOPICS[t], p)
                assert o not in self.acked[tp], f"offset {tp}/{o} acknowledged twice {ctx}"
                self.acked[tp][o] = (ts, rec["key"], rec["value"], _headers(rec["headers"]))
                self.acked_records += 1
            elif fields[:2] == [b"I", b"D"]:
                p, before = int(fields[2]), int(fields[3])
                self.intents.append(("D", p, before))
            elif fields[:2] == [b"I", b"T"]:
                self.intents.append(("T", int(fields[2]), 0))
            elif fields[0] == b"D":
                p, before, got = map(int, fields[1:])
                assert got >= before, f"delete_records({p}, {before}) returned {got} {ctx}"
                self.deleted_to[p] = max(self.deleted_to[p], before)
                self.deletes_acked += 1
            elif fields[0] == b"T":
                self.cuts_acked += 1
            else:
                assert fields == [b"R"], f"unexpected writer output {line!r} {ctx}"

    def _verify(self, w: _Writer) -> None:
        self._parse(w)
        ctx = self._ctx()
        readonly = self.kills % 2 == 0
        with eventlog.open(self.logdir, readonly=readonly, durability=self.durability) as log:
            topics = log.list_topics()
            for topic in TOPICS:
                if topic not in topics:
                    assert not any(self.acked[(topic, p)] for p in range(PARTITIONS)), \
                        f"acknowledged records but no topic {topic!r} {ctx}"
                    continue
                desc = log.describe_topic(topic)
                assert len(desc.partitions) == PARTITIONS
                for info in desc.partitions:
                    self._check_partition(log, topic, info)
            # The library's own integrity check agrees: nothing torn, nothing orphaned.
            report = log.check()
            assert report, f"log.check() after a kill {ctx}:\n{report}"

    def _stored_batches(self, log: eventlog.Log, topic: str,
                        partition: int) -> list[Any]:
        """Every batch stored for a partition, decoded (white box: retention's own view)."""
        topic_id = log.describe_topic(topic).topic_id
        db = log._storage.dbs[b"batches"]

        def batches(txn: Any) -> list[Any]:
            out = []
            cursor = txn.cursor(db=db)
            if not cursor.set_range(BATCH_KEY.pack(topic_id, partition, 0)):
                return out
            for key, value in cursor:
                t, p, base = BATCH_KEY.unpack(bytes(key))
                if (t, p) != (topic_id, partition) or base == STATE_OFFSET:
                    break
                out.append(decode_batch(bytes(key), bytes(value), base))
            return out

        return log._storage.read(batches)

    def _check_partition(self, log: eventlog.Log, topic: str,
                         info: eventlog.PartitionInfo) -> None:
        p = info.partition
        tp = (topic, p)
        ctx = f"{topic!r} partition {p} {self._ctx()}"
        start, end = info.log_start_offset, info.end_offset
        acked = self.acked[tp]
        assert log.beginning_offsets(topic)[p] == start
        assert log.end_offsets(topic)[p] == end
        assert start >= self.log_start[tp], \
            f"log start moved backwards: {self.log_start[tp]} -> {start} {ctx}"
        if start > self.log_start[tp]:
            self.moved_starts += 1
        self.log_start[tp] = start
        assert start <= end, ctx
        if acked:
            assert end >= max(acked) + 1, f"end offset {end} below an acknowledged record {ctx}"

        # What is stored: batches dense from the first one's base to the end offset, the
        # first one holding (or starting at) the log start, sizes as describe_topic says.
        batches = self._stored_batches(log, topic, p)
        assert info.batches == len(batches), \
            f"describe_topic says {info.batches} batches, {len(batches)} stored {ctx}"
        sizes = [_item_bytes(b.keys or (), b.values, b.headers) for b in batches]
        size = sum(sizes)
        for b, nbytes in zip(batches, sizes, strict=True):
            self.batch_bytes[tp][b.base_offset + b.count] = nbytes
        assert info.size_bytes == size, \
            f"describe_topic says {info.size_bytes} bytes, the batches hold {size} {ctx}"
        if batches:
            assert batches[0].base_offset <= start, ctx
            assert batches[-1].base_offset + batches[-1].count == end, ctx
            for a, b in itertools.pairwise(batches):
                assert a.base_offset + a.count == b.base_offset, f"gap between batches {ctx}"
        else:
            assert start == end, f"no batches, but log start {start} < end {end} {ctx}"

        # Everything from the log start reads back, dense; acknowledged records exactly.
        stored: dict[int, Stored] = {}
        position = start
        while position < end:
            cols = log.read_columns(topic, p, position, max_records=5000)
            assert cols.offsets, f"read at {position} < end {end} returned nothing {ctx}"
            assert list(cols.offsets) == list(range(position, position + len(cols.offsets))), \
                f"offsets not dense after {position} {ctx}"
            for o, rec in zip(cols.offsets, zip(cols.timestamps, cols.keys, cols.values,
                                                cols.headers, strict=True), strict=True):
                stored[o] = rec
            position = cols.next_offset
        assert position == end, ctx
        assert log.read(topic, p, end) == []
        for o, want in acked.items():
            if o >= start:
                assert stored.get(o) == want, \
                    f"acknowledged record at offset {o} (log start {start}) lost or changed {ctx}"
                self.checked_stored += 1
        # Nothing below the log start can be read (acknowledged offsets among them).
        below = [o for o in acked if o < start][-3:]
        if start > 0:
            below += [start - 1, self.rng.randrange(start)]
        for o in below:
            with pytest.raises(OffsetOutOfRangeError):
                log.read(topic, p, o)

        # The log start did not move further than retention and delete_records allow.
        if topic == MANUAL_TOPIC:
            assert start >= self.deleted_to[p], \
                f"log start {start} below an acknowledged delete_records({self.deleted_to[p]})" \
                f" {ctx}"
            allowed = 0
            for kind, a, b in self.intents:
                if kind == "D":
                    if a == p:
                        allowed = max(allowed, b)
                    continue
                # Time retention removes batches from the log start on while their largest
                # timestamp is below the cut: it stops at the latest at the first batch
                # holding a record at or above the log start with a timestamp >= cut, so at
                # the latest at the first such acknowledged record.
                later = [o for o, rec in acked.items() if o >= allowed and rec[0] >= a]
                allowed = min(later) if later else max(allowed, end)
            assert start <= allowed, \
                f"log start {start} past what retention and delete_records allow ({allowed}) " \
                f"{ctx}"
        elif start > 0:
            # Byte retention removes a batch only while the partition holds more than
            # retention.bytes: what is left is more than the limit minus the last batch
            # removed (the one that ended at the log start; its size is known when an
            # earlier check saw it).
            last = self.batch_bytes[tp].get(start, writer.MAX_BATCH_BYTES)
            assert info.size_bytes > writer.RETENTION_BYTES - last, \
                f"byte retention removed too much: {info.size_bytes} bytes left, the last " \
                f"batch removed held at most {last} {ctx}"
            self.exact_byte_checks += start in self.batch_bytes[tp]

        # The time index agrees with a scan of what is readable.
        first = log.offsets_for_times(topic, 0)[p]
        assert first == (start if end > start else None), \
            f"offsets_for_times(0) is {first}; log start {start}, end {end} {ctx}"
        stamps = [rec[0] for rec in stored.values()]
        targets = [self.rng.randrange(writer.T0 + 10**8 * (self.rounds + 2)) for _ in range(2)]
        targets += [ts + d for ts in self.rng.sample(stamps, min(3, len(stamps)))
                    for d in (-1, 0, 1)]
        # Records still stored below the log start (in the batch delete_records cut into)
        # must not be found.
        if batches:
            first_batch = batches[0]
            hidden = [ts for o, ts in zip(first_batch.offsets, first_batch.timestamps,
                                          strict=True) if o < start]
            targets += self.rng.sample(hidden, min(3, len(hidden)))
        for target in targets:
            want = next((o for o in sorted(stored) if stored[o][0] >= target), None)
            got = log.offsets_for_times(topic, target)[p]
            assert got == want, \
                f"offsets_for_times({target}) is {got}, a scan finds {want} {ctx}"


def _run(tmp_path: Path, durability: str, kills: int) -> Harness:
    seed = random.randrange(2**32)
    harness = Harness(tmp_path, durability, seed)
    harness.run(kills)
    assert harness.kills == kills
    # The writers really worked, and retention really ran, between the kills.
    assert harness.acked_records > 0
    assert harness.moved_starts > 0
    assert harness.checked_stored > 0
    return harness


@pytest.mark.parametrize("durability", ["normal", "off"])
def test_sigkill_during_retention_loses_nothing_retained(tmp_path: Path, durability: str) -> None:
    # A process crash loses nothing acknowledged in any durability mode.
    _run(tmp_path, durability, kills=15)


@pytest.mark.stress
@pytest.mark.timeout(3600)
@pytest.mark.skipif(os.environ.get("EVENTLOG_STRESS") != "1",
                    reason="opt-in stress test (about 500 kills, a few minutes): set "
                           "EVENTLOG_STRESS=1, e.g. `make stress`")
@pytest.mark.parametrize("durability", ["full", "normal", "off"])
def test_sigkill_during_retention_stress(tmp_path: Path, durability: str) -> None:
    _run(tmp_path, durability, kills=150)
