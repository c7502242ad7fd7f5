"""Which logs and clients are open: the pytest plugin's leak check.

Tracking is off unless the plugin switches it on around a test (nothing is kept in
production). While on, every Log handle, Producer and Consumer that is opened is recorded
with where it was opened, until it is closed.
"""

from __future__ import annotations

import os
import sys
import threading
from types import FrameType

__all__ = ["closed", "opened", "start", "stop"]

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
_lock = threading.Lock()
# id(object) -> (object, description); None when tracking is off.
_registry: dict[int, tuple[object, str]] | None = None


def start() -> None:
    """Start recording objects opened from now on (forgetting earlier ones)."""
    global _registry
    with _lock:
        _registry = {}


def stop() -> list[tuple[object, str]]:
    """Stop recording; return ``(object, description)`` of what is still open."""
    global _registry
    with _lock:
        entries = list((_registry or {}).values())
        _registry = None
    return [(obj, what) for obj, what in entries if not getattr(obj, "closed", True)]


def _caller() -> str:
    """``file:line`` of the first caller outside eventlog."""
    frame: FrameType | None = sys._getframe(2)
    while frame is not None:
        filename = frame.f_code.co_filename
        if not os.path.abspath(filename).startswith(_PACKAGE_DIR):
            return f"{filename}:{frame.f_lineno}"
        frame = frame.f_back
    return "<unknown>"


def opened(obj: object, what: str) -> None:
    """Record that ``obj`` was opened (a no-op unless tracking is on)."""
    if _registry is None:
        return
    where = _caller()
    with _lock:
        if _registry is not None:
            _registry[id(obj)] = (obj, f"{what}, opened at {where}")


def closed(obj: object) -> None:
    """Record that ``obj`` was closed."""
    if _registry is None:
        return
    with _lock:
        if _registry is not None:
            _registry.pop(id(obj), None)
