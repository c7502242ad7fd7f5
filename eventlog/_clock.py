"""The wall clock eventlog reads: record timestamps, retention, compaction lags and
tombstone horizons, consumer-group leases (session timeouts).

Everything that judges time calls :func:`now_ms`, so a test can replace the clock once
(:class:`eventlog.testing.ManualClock`) and move time forward instead of sleeping.
Durations that are only waited out (poll timeouts, heartbeat intervals, rate limits) use
the monotonic clock and are not affected.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

__all__ = ["is_manual", "now_ms", "replace_clock"]

_source: Callable[[], int] | None = None
_lock = threading.Lock()


def now_ms() -> int:
    """Milliseconds since the epoch, from the installed clock (default: the system's)."""
    source = _source
    if source is None:
        return time.time_ns() // 1_000_000
    return source()


def replace_clock(source: Callable[[], int] | None) -> Callable[[], int] | None:
    """Install ``source`` as the clock (None: the system clock); return the previous one."""
    global _source
    with _lock:
        previous = _source
        _source = source
        return previous


def is_manual() -> bool:
    """Whether a replacement clock is installed. Checks rate-limited in real time (how
    often retention and compaction look at timestamps) are then made every time, so that
    moving the clock takes effect at the next append."""
    return _source is not None
