"""A consumer group across processes: three member processes share a 6-partition topic
while records are appended; one member is killed with SIGKILL mid-run.

Afterwards every record was processed at least once, committed offsets never went
backwards, and no two live members ever owned the same partition at the same moment (each
member logs its ownership intervals with wall-clock times of this host; see
``helpers/group_member.py`` for the log format).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import attrs
import pytest

import eventlog
from eventlog import TopicPartition

MEMBER_SCRIPT = Path(__file__).parent / "helpers" / "group_member.py"
TOPIC = "events"
GROUP = "workers"
PARTITIONS = 6
MEMBERS = 3
RECORDS = 1800  # appended in three phases of 600; the kill comes after the first
BATCH = 10
SESSION_MS = 2000
HEARTBEAT_MS = 150
DEADLINE = 90.0  # seconds, for every wait: generous, for a loaded 2-core machine


def wait_until(
    what: str, condition: Callable[[], bool], running: list[Member], timeout: float = DEADLINE
) -> None:
    """Wait for ``condition``; fail at once if a member of ``running`` exited."""
    end = time.monotonic() + timeout
    while not condition():
        for m in running:
            if m.proc.poll() is not None:
                raise AssertionError(
                    f"member {m.name} exited ({m.proc.returncode}) while waiting until "
                    f"{what}:\n{m.err.read_text()}"
                )
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout} s waiting until {what}")
        time.sleep(0.02)


@attrs.define
class MemberLog:
    """What one member process wrote (see helpers/group_member.py)."""

    name: str
    pid: int | None = None
    events: list[tuple[str, int, float, str]] = attrs.field(factory=list)  # acquire/release
    records: list[tuple[int, int, int, float]] = attrs.field(factory=list)  # p, off, seq, t
    commits: list[tuple[int, int, float]] = attrs.field(factory=list)  # p, offset, t
    commit_failures: list[str] = attrs.field(factory=list)
    rec_outside_ownership: list[tuple[int, int]] = attrs.field(factory=list)
    protocol_errors: list[str] = attrs.field(factory=list)
    closed: bool = False

    @classmethod
    def parse(cls, name: str, path: Path) -> MemberLog:
        text = path.read_text(encoding="utf-8") if path.exists() else ""
        lines = text.split("\n")
        lines.pop()  # "" after the last newline, or a line torn by SIGKILL
        out = cls(name)
        held: set[int] = set()
        batch_time = 0.0
        for line in lines:
            kind, *rest = line.split(" ")
            if kind == "start":
                out.pid = int(rest[0])
            elif kind == "acquire":
                p, t = int(rest[0]), float(rest[1])
                if p in held:
                    out.protocol_errors.append(f"acquired {p} twice: {line}")
                held.add(p)
                out.events.append(("acquire", p, t, ""))
            elif kind == "release":
                p, t = int(rest[0]), float(rest[1])
                if p not in held:
                    out.protocol_errors.append(f"released {p} it did not hold: {line}")
                held.discard(p)
                out.events.append(("release", p, t, rest[2]))
            elif kind == "batch":
                batch_time = float(rest[0])
            elif kind == "rec":
                p, off, seq = map(int, rest)
                out.records.append((p, off, seq, batch_time))
                if p not in held:
                    out.rec_outside_ownership.append((p, off))
            elif kind == "commit":
                out.commits.append((int(rest[0]), int(rest[1]), float(rest[2])))
            elif kind == "commitfail":
                out.commit_failures.append(line)
            elif kind == "closed":
                out.closed = True
            else:
                out.protocol_errors.append(f"unknown line {line!r}")
        return out

    def intervals(self, end: float | None) -> list[tuple[int, float, float]]:
        """(partition, start, end) of every ownership interval; intervals still open end
        at ``end`` (the kill time), or are reported with end = inf when ``end`` is None."""
        open_at: dict[int, float] = {}
        out: list[tuple[int, float, float]] = []
        for kind, p, t, _how in self.events:
            if kind == "acquire":
                open_at[p] = t
            else:
                out.append((p, open_at.pop(p), t))
        for p, t in open_at.items():
            out.append((p, t, float("inf") if end is None else end))
        return out


@attrs.define
class Member:
    name: str
    proc: subprocess.Popen[bytes]
    out: Path
    err: Path


def start_member(tmp_path: Path, log_path: Path, name: str, strategy: str) -> Member:
    out = tmp_path / f"{name}.out"
    err = tmp_path / f"{name}.err"
    config = {
        "path": str(log_path),
        "topic": TOPIC,
        "group": GROUP,
        "name": name,
        "out": str(out),
        "stop_file": str(tmp_path / "stop"),
        "options": {
            "partition_assignment_strategy": strategy,
            "session_timeout_ms": SESSION_MS,
            "heartbeat_interval_ms": HEARTBEAT_MS,
            "max_poll_records": 50,
        },
    }
    with open(err, "wb") as err_file:
        proc = subprocess.Popen(
            [sys.executable, str(MEMBER_SCRIPT), json.dumps(config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err_file,
        )
    return Member(name, proc, out, err)


class Producer(threading.Thread):
    """Appends RECORDS keyed records (value = sequence number) in three phases: the
    second follows the first at once, the third waits until the test killed a member."""

    def __init__(self, log: eventlog.Log, killed: threading.Event) -> None:
        super().__init__(daemon=True)
        self.log = log
        self.killed = killed
        self.first_phase_done = threading.Event()
        self.where: dict[int, tuple[int, int]] = {}  # seq -> (partition, offset)
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            phase = RECORDS // 3
            for seq in range(0, RECORDS, BATCH):
                if seq == phase:
                    self.first_phase_done.set()
                if seq == 2 * phase and not self.killed.wait(DEADLINE):
                    raise AssertionError("no member was killed")
                batch = [
                    eventlog.NewRecord(b"%d" % s, key=b"key-%d" % (s % 37))
                    for s in range(seq, seq + BATCH)
                ]
                for s, meta in zip(range(seq, seq + BATCH), self.log.append_batch(TOPIC, batch)):
                    self.where[s] = (meta.partition, meta.offset)
                time.sleep(0.01)
        except BaseException as exc:
            self.error = exc
        finally:
            self.first_phase_done.set()


class CommitSampler(threading.Thread):
    """Reads the group's committed offsets every few milliseconds until stopped."""

    def __init__(self, log: eventlog.Log) -> None:
        super().__init__(daemon=True)
        self.log = log
        self.stop = threading.Event()
        self.samples: list[dict[int, int]] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.stop.wait(0.01):
                committed = self.log.committed_offsets(GROUP, TOPIC)
                self.samples.append({tp.partition: om.offset for tp, om in committed.items()})
        except BaseException as exc:
            self.error = exc


def _stable(log: eventlog.Log, count: int) -> bool:
    try:
        group = log.describe_group(GROUP)
    except eventlog.GroupNotFoundError:
        return False
    return (
        group.state == "Stable"
        and len(group.members) == count
        and sorted(len(m.owned) for m in group.members) == [PARTITIONS // count] * count
    )


def _processed_count(member: Member) -> int:
    return len(MemberLog.parse(member.name, member.out).records)


@pytest.mark.parametrize("strategy", ["cooperative-sticky", "range"])
def test_group_of_processes_survives_a_sigkilled_member(tmp_path: Path, strategy: str) -> None:
    log_path = tmp_path / "log"
    log = eventlog.open(log_path, durability="off")
    log.create_topic(TOPIC, partitions=PARTITIONS)
    members = [start_member(tmp_path, log_path, f"m{i}", strategy) for i in range(MEMBERS)]
    victim = members[1]
    killed = threading.Event()
    producer = Producer(log, killed)
    sampler = CommitSampler(log)
    try:
        wait_until(
            "the three members split the six partitions", lambda: _stable(log, MEMBERS), members
        )
        sampler.start()
        producer.start()
        assert producer.first_phase_done.wait(DEADLINE)
        wait_until(
            "the victim processed records",
            lambda: _processed_count(victim) > 0,
            members,
        )
        victim_pid = victim.proc.pid
        owned_before = {
            tp.partition
            for m in log.describe_group(GROUP).members
            if m.pid == victim_pid
            for tp in m.owned
        }
        kill_time = time.time()
        os.kill(victim_pid, signal.SIGKILL)
        killed.set()
        victim.proc.wait()
        producer.join(DEADLINE)
        assert not producer.is_alive()
        if producer.error is not None:
            raise producer.error
        end = log.end_offsets(TOPIC)
        assert sum(end.values()) == RECORDS

        def caught_up() -> bool:
            committed = log.committed_offsets(GROUP, TOPIC)
            return all(
                committed.get(TopicPartition(TOPIC, p), eventlog.OffsetAndMetadata(-1)).offset
                == end[p]
                for p in range(PARTITIONS)
            )

        survivors = [m for m in members if m is not victim]
        wait_until("the survivors committed every record", caught_up, survivors)
        (tmp_path / "stop").touch()
        for m in survivors:
            assert m.proc.wait(DEADLINE) == 0, m.err.read_text()
    finally:
        killed.set()  # (lets the producer finish if the test failed early)
        sampler.stop.set()
        for m in members:
            if m.proc.poll() is None:
                m.proc.kill()
            m.proc.wait()
        if sampler.is_alive():
            sampler.join()
        if producer.is_alive():
            producer.join(DEADLINE)
        log.close()
    assert sampler.error is None, sampler.error
    assert victim.proc.returncode == -signal.SIGKILL

    logs = {m.name: MemberLog.parse(m.name, m.out) for m in members}
    survivor_logs = [logs[m.name] for m in members if m is not victim]
    dead = logs[victim.name]
    for m in members:
        if m is not victim:
            assert m.err.read_text() == "", f"{m.name} wrote to stderr"
    for ml in logs.values():
        assert ml.protocol_errors == [], ml.name
        # poll() returned records only of partitions the member held at that moment.
        assert ml.rec_outside_ownership == [], ml.name
    assert all(ml.closed for ml in survivor_logs)
    assert dead.pid == victim.proc.pid
    assert owned_before, "the victim owned no partitions when it was killed"
    assert dead.records, "the victim processed nothing before it was killed"

    # (a) Every record was processed at least once, and was the record appended there.
    processed: dict[tuple[int, int], set[int]] = {}
    for ml in logs.values():
        for p, off, seq, _t in ml.records:
            processed.setdefault((p, off), set()).add(seq)
    expected = {where: seq for seq, where in producer.where.items()}
    assert len(expected) == RECORDS
    missing = sorted(set(expected) - set(processed))
    assert missing == [], f"{len(missing)} records never processed, first {missing[:5]}"
    assert set(processed) == set(expected)
    wrong = {k: v for k, v in processed.items() if v != {expected[k]}}
    assert wrong == {}

    # (b) Committed offsets never went backwards: as sampled from outside ...
    assert len(sampler.samples) > 10
    for p in range(PARTITIONS):
        seen = [s[p] for s in sampler.samples if p in s]
        assert seen == sorted(seen), f"partition {p}: committed offsets went back"
    # ... and as the members committed them, in time order across members (a member's
    # commit is logged before its release, which precedes the next owner's acquire).
    for p in range(PARTITIONS):
        commits = sorted((t, off) for ml in logs.values() for q, off, t in ml.commits if q == p)
        offsets = [off for _t, off in commits]
        assert offsets == sorted(offsets), f"partition {p}: commits went back"
        assert offsets[-1] == end[p]

    # (c) No two live members owned a partition at the same moment. The killed member's
    # open intervals end at the kill; the survivors released everything when closing.
    intervals: dict[int, list[tuple[float, float, str]]] = {}
    for ml in logs.values():
        stop = kill_time if ml is dead else None
        for p, start, finish in ml.intervals(stop):
            # (A victim's acquire logged after the kill time taken here would give an
            # empty interval: it died before it could process anything then.)
            intervals.setdefault(p, []).append((start, max(start, finish), ml.name))
    assert sorted(intervals) == list(range(PARTITIONS))
    for p, spans in intervals.items():
        spans.sort()
        latest_end, latest_owner = float("-inf"), ""
        for start, finish, name in spans:
            assert start >= latest_end, (
                f"partition {p}: {name} acquired it at {start!r} while {latest_owner} held "
                f"it until {latest_end!r}"
            )
            if finish > latest_end:
                latest_end, latest_owner = finish, name
        assert latest_end < float("inf"), f"partition {p} was never released at close"

    # Every partition the victim held went to a survivor; report how long that took.
    takeover = []
    for p in sorted(owned_before):
        first = min(
            (
                t
                for ml in survivor_logs
                for kind, q, t, _h in ml.events
                if kind == "acquire" and q == p and t > kill_time
            ),
            default=None,
        )
        assert first is not None, f"partition {p} of the killed member was never taken over"
        takeover.append(first - kill_time)
    duplicates = sum(len(ml.records) for ml in logs.values()) - len(processed)
    print(
        f"\n[{strategy}] kill -> takeover of partitions {sorted(owned_before)}: "
        f"first {min(takeover) * 1000:.0f} ms, all {max(takeover) * 1000:.0f} ms; "
        f"{duplicates} records processed twice; "
        f"commit failures {sum(len(ml.commit_failures) for ml in logs.values())}"
    )
