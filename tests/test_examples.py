"""The examples in examples/ run, as documentation must: each one as a subprocess.

Every ``examples/*.py`` takes an optional log directory argument; here it gets one inside
``tmp_path`` so that nothing is written to the repository.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import eventlog

EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "examples"
# examples/test_*.py are an example application's test suite (pytest collects them), not
# programs to run.
EXAMPLES = sorted(p for p in EXAMPLES_DIR.glob("*.py") if not p.name.startswith("test_"))
ORDERS = EXAMPLES_DIR / "orders.py"


def run_example(script: Path, cwd: Path, *args: str) -> str:
    """Run one example; fail the test with its output unless it exits with status 0."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.run(
        [sys.executable, str(script), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, (
        f"{script.name} exited with {proc.returncode}\n--- stdout\n{proc.stdout}"
        f"\n--- stderr\n{proc.stderr}"
    )
    return proc.stdout


def test_examples_exist() -> None:
    assert ORDERS in EXAMPLES


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(script: Path, tmp_path: Path) -> None:
    out = run_example(script, tmp_path, str(tmp_path / "log"))
    assert out.strip(), f"{script.name} printed nothing"


def test_orders_demo_output(tmp_path: Path) -> None:
    out = run_example(ORDERS, tmp_path, str(tmp_path / "log"))
    lines = out.splitlines()
    assert "0 events from earlier runs" in lines[0]
    assert (
        "produced 36 events: 12 placed (append), 12 paid (append_batch), "
        "12 shipped (append_columns)"
    ) in lines
    assert sum("all events in partition" in line for line in lines) == 6
    for p in range(3):
        assert any(line.strip().startswith(f"consumed partition {p}:") for line in lines)
    assert (
        "consumed 36 events: {'order.paid': 12, 'order.placed': 12, 'order.shipped': 12}"
    ) in lines
    assert any(line.startswith("beginning offsets {0: 0, 1: 0, 2: 0}") for line in lines)
    assert any(line.startswith("offsets for 20 minutes ago:") for line in lines)
    assert any(line.startswith("events in the last 20 minutes:") for line in lines)
    assert any("late order arrived at partition" in line for line in lines)
    assert lines[-1].startswith("done: the log now holds 37 events")


def test_orders_demo_log_matches_its_claims(tmp_path: Path) -> None:
    """Check the log the demo leaves behind, independently of what it printed."""
    path = tmp_path / "log"
    run_example(ORDERS, tmp_path, str(path))
    with eventlog.open(path) as log:
        assert log.list_topics() == ["orders"]
        ends = log.end_offsets("orders")
        assert sum(ends.values()) == 37
        assert all(end > 0 for end in ends.values())
        partitions_of: dict[bytes, set[int]] = {}
        kinds: dict[str, int] = {}
        for record in log.scan("orders"):
            assert record.key is not None
            assert record.value is not None
            partitions_of.setdefault(record.key, set()).add(record.partition)
            kind = json.loads(record.value)["type"]
            kinds[kind] = kinds.get(kind, 0) + 1
        assert all(len(parts) == 1 for parts in partitions_of.values())
        assert kinds == {"order.placed": 13, "order.paid": 12, "order.shipped": 12}


def test_orders_demo_appends_on_each_run(tmp_path: Path) -> None:
    """The demo log is persistent: a second run continues at the next offsets."""
    path = str(tmp_path / "log")
    run_example(ORDERS, tmp_path, path)
    out = run_example(ORDERS, tmp_path, path)
    assert "37 events from earlier runs" in out.splitlines()[0]
    assert "consumed 36 events" in out
    assert out.splitlines()[-1].startswith("done: the log now holds 74 events")


def test_orders_demo_default_directory(tmp_path: Path) -> None:
    """Without an argument (as `make demo` runs it) the log goes to demo-data/orders-log."""
    run_example(ORDERS, tmp_path)
    assert (tmp_path / "demo-data" / "orders-log" / "data.mdb").is_file()


def test_signups_fan_out(tmp_path: Path) -> None:
    """Three groups each see every signup once; the two onboarding processes split it."""
    script = EXAMPLES_DIR / "signups.py"
    for run in (1, 2):
        out = run_example(script, tmp_path, str(tmp_path / "log"))
        lines = out.splitlines()
        assert f"{60 * (run - 1)} signups from earlier runs" in lines[0]
        assert "email: 60 welcome emails sent" in lines
        assert "analytics: plan=enterprise 15, plan=free 30, plan=team 15" in lines
        made = [
            int(line.split(": ")[1].split()[0])
            for line in lines
            if line.startswith("onboarding-") and "workspaces created" in line
        ]
        assert len(made) == 2
        assert sum(made) == 60
        for name in ("email", "analytics", "onboarding"):
            assert f"group {name}: lag 0, state Empty" in lines
