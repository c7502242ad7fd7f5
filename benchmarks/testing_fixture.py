"""How long the pytest plugin's ``eventlog_log`` fixture costs per test.

Issue 7's target: creating, opening and closing a fresh log through the fixture takes a
few milliseconds, median per test over 1,000 tests at most 5 ms. This runs a real pytest
session (a subprocess) over a generated module of N tests that each take the fixture
and append one record, and reads pytest's own phase durations: a test's fixture cost is
its setup + teardown time (the fixture opens the log in setup and closes and removes it
in teardown). A second module of N tests without the fixture gives pytest's own
per-test overhead, reported beside it.

    python benchmarks/testing_fixture.py [--tests 1000] [--output results-testing.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time

TEST_MODULE = """
import eventlog

def _body(log):
    log.create_topic("t")
    log.append("t", b"x")

{tests}
"""

CONFTEST = """
import json, os

_durations = {}

def pytest_runtest_logreport(report):
    if report.when in ("setup", "teardown"):
        _durations.setdefault(report.nodeid, 0.0)
        _durations[report.nodeid] += report.duration

def pytest_sessionfinish(session):
    with open(os.environ["FIXTURE_BENCH_OUT"], "w") as f:
        json.dump(_durations, f)
"""


def _run(tests: int, with_fixture: bool, workdir: str) -> list[float]:
    if with_fixture:
        body = "\n".join(
            f"def test_{i}(eventlog_log):\n    _body(eventlog_log)\n" for i in range(tests)
        )
    else:
        body = "\n".join(f"def test_{i}():\n    pass\n" for i in range(tests))
    module = os.path.join(workdir, "test_generated.py")
    with open(module, "w") as f:
        f.write(textwrap.dedent(TEST_MODULE).format(tests=body))
    with open(os.path.join(workdir, "conftest.py"), "w") as f:
        f.write(CONFTEST)
    out = os.path.join(workdir, "durations.json")
    env = dict(os.environ, FIXTURE_BENCH_OUT=out)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:randomly",
            "--rootdir",
            workdir,
            module,
        ],
        cwd=workdir,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    with open(out) as f:
        durations: dict[str, float] = json.load(f)
    return sorted(durations.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=1000)
    parser.add_argument("--quick", action="store_true", help="200 tests")
    parser.add_argument(
        "--output", default=os.path.join(os.path.dirname(__file__), "results-testing.json")
    )
    args = parser.parse_args()
    tests = 200 if args.quick else args.tests
    started = time.perf_counter()
    rows = []
    for with_fixture in (True, False):
        with tempfile.TemporaryDirectory(prefix="eventlog-fixture-bench-") as workdir:
            durations = _run(tests, with_fixture, workdir)
        ms = [d * 1000 for d in durations]
        rows.append(
            {
                "workload": "eventlog_log fixture (setup + teardown per test)"
                if with_fixture
                else "no fixture (pytest's own setup + teardown per test)",
                "tests": len(ms),
                "median_ms": round(statistics.median(ms), 3),
                "p90_ms": round(ms[int(len(ms) * 0.9) - 1], 3),
                "max_ms": round(ms[-1], 3),
                "target": "median <= 5 ms" if with_fixture else "-",
                "met": statistics.median(ms) <= 5.0 if with_fixture else None,
            }
        )
    machine = {
        "workload": "machine",
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "seconds": round(time.perf_counter() - started, 1),
    }
    print(f"\neventlog_log fixture cost per test ({tests} tests, pytest phase durations)\n")
    print(f"{'workload':55} {'median ms':>10} {'p90 ms':>8} {'max ms':>8}  target        met")
    for row in rows:
        met = "-" if row["met"] is None else str(row["met"])
        print(
            f"{row['workload']:55} {row['median_ms']:>10} {row['p90_ms']:>8} "
            f"{row['max_ms']:>8}  {row['target']:12}  {met}"
        )
    with open(args.output, "w") as f:
        json.dump([machine, *rows], f, indent=2)
    print(f"\nwrote {args.output}")


if __name__ == "__main__":
    main()
