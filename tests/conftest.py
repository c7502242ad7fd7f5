"""Shared fixtures for the eventlog test suite.

Keep this small and generic: fixtures that many test files want, nothing test-specific.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import eventlog


@pytest.fixture
def log_path(tmp_path: Path) -> Path:
    """A path for a new log directory (not yet created)."""
    return tmp_path / "log"


@pytest.fixture
def log(log_path: Path) -> Iterator[eventlog.Log]:
    """A fresh, empty log with durability "off" (fast), closed after the test."""
    handle = eventlog.open(log_path, durability="off")
    try:
        yield handle
    finally:
        handle.close()
