"""eventlog's pytest plugin, registered through the ``pytest11`` entry point: installing
eventlog is enough to use it.

Fixtures:

- ``eventlog_log``: a fresh, open log in a new temporary directory, in durability "off"
  (the same code as any log, without fsync), closed and removed after the test;
- ``eventlog_factory``: ``eventlog_factory(name="log", **open_options)`` opens a log in the
  test's temporary directory (the same name opens the same log again: a reopen, or a
  second handle); every log it opened is closed after the test;
- ``eventlog_clock``: a :class:`eventlog.testing.ManualClock` installed for the test.

Leak check: in tests that use these fixtures (or every test, with the ini option
``eventlog_leak_check = true``), logs, producers and consumers opened during the test and
still open at its end make the test fail, naming each one and where it was opened (they
are closed first, so later tests are not affected). ``@pytest.mark.eventlog(leak_check=
False)`` turns the check off for one test.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from . import _tracking
from ._log import Log
from ._log import open as open_log
from .testing import ManualClock

_FIXTURES = frozenset({"eventlog_log", "eventlog_factory", "eventlog_clock"})


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        "eventlog_leak_check",
        "fail any test that leaves an eventlog log, producer or consumer open (default: "
        "only tests using eventlog's fixtures)",
        type="bool",
        default=False,
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "eventlog(leak_check=True, clock_start=None): eventlog's settings for this test "
        "(leak_check=False turns off the check for logs, producers and consumers left open; "
        "clock_start sets where eventlog_clock starts)",
    )


def _wants_leak_check(request: pytest.FixtureRequest) -> bool:
    marker = request.node.get_closest_marker("eventlog")
    if marker is not None and "leak_check" in marker.kwargs:
        return bool(marker.kwargs["leak_check"])
    if request.config.getini("eventlog_leak_check"):
        return True
    return not _FIXTURES.isdisjoint(request.fixturenames)


def _close_quietly(obj: Any) -> None:
    # The report says it was left open; closing it is best effort.
    with contextlib.suppress(Exception):
        obj.close()


@pytest.fixture(autouse=True)
def _eventlog_leak_check(request: pytest.FixtureRequest) -> Iterator[None]:
    if not _wants_leak_check(request):
        yield
        return
    _tracking.start()
    try:
        yield
    finally:
        leaked = _tracking.stop()
    if leaked:
        # Clients before logs: a client's close may still need its log.
        for obj, _what in sorted(leaked, key=lambda item: isinstance(item[0], Log)):
            _close_quietly(obj)
        lines = "\n".join(f"  - {what}" for _obj, what in leaked)
        pytest.fail(
            f"the test left {len(leaked)} eventlog object(s) open (close them, or use them "
            f"as context managers):\n{lines}",
            pytrace=False,
        )


@pytest.fixture
def eventlog_factory() -> Iterator[Callable[..., Log]]:
    """``factory(name="log", **open_options) -> Log``: open a log in this test's temporary
    directory (durability "off" unless given); all are closed after the test."""
    root = tempfile.mkdtemp(prefix="eventlog-test-")
    opened: list[Log] = []

    def factory(name: str = "log", **options: Any) -> Log:
        options.setdefault("durability", "off")
        log = open_log(f"{root}/{name}", **options)
        opened.append(log)
        return log

    try:
        yield factory
    finally:
        for log in reversed(opened):
            log.close()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def eventlog_log(eventlog_factory: Callable[..., Log]) -> Log:
    """A fresh, open log (durability "off"), closed and removed after the test."""
    return eventlog_factory()


@pytest.fixture
def eventlog_clock(request: pytest.FixtureRequest) -> Iterator[ManualClock]:
    """A :class:`~eventlog.testing.ManualClock`, installed for the test: record
    timestamps, retention, compaction and group sessions follow it. It starts at the
    current time, or at ``@pytest.mark.eventlog(clock_start=...)`` (ms since the epoch or
    an aware datetime), for timestamps that do not change from run to run."""
    marker = request.node.get_closest_marker("eventlog")
    start = marker.kwargs.get("clock_start") if marker is not None else None
    with ManualClock(start) as clock:
        yield clock
