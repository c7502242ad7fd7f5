"""What the commands print: aligned tables, JSON, messages, and progress bars."""

from __future__ import annotations

import datetime as _dt
import json
import threading
import time
from collections.abc import Sequence
from typing import Any, TextIO

__all__ = ["Output", "Progress", "format_bytes", "format_ms", "plural"]


def plural(n: int, word: str) -> str:
    """``1 topic``, ``2 topics``, ``2 batches``."""
    if n == 1:
        return f"{n} {word}"
    return f"{n} {word}es" if word.endswith(("s", "sh", "ch", "x")) else f"{n} {word}s"


def format_ms(ms: int | None) -> str:
    """A millisecond timestamp as UTC ISO 8601 text ("-" when unknown)."""
    if ms is None or ms < 0:
        return "-"
    when = _dt.datetime.fromtimestamp(ms / 1000, tz=_dt.timezone.utc)
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def format_bytes(n: int) -> str:
    """A byte count for people: 1.5 KiB, 3.0 MiB."""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{n} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


class Progress:
    """A one-line progress bar on stderr, redrawn with ``\\r`` at most ten times a second.

    It draws only when both stdout and stderr are terminals: output that is piped or
    captured never carries control characters.
    """

    _INTERVAL = 0.1

    def __init__(self, stream: TextIO, label: str, total: int | None, enabled: bool) -> None:
        self._stream = stream
        self._label = label
        self._total = total
        self._enabled = enabled
        self._done = 0
        self._drawn = 0.0
        self._width = 0
        self._lock = threading.Lock()

    def advance(self, n: int = 1) -> None:
        """Count ``n`` more units done; redraw if enough time has passed."""
        self._done += n
        if self._enabled:
            now = time.monotonic()
            if now - self._drawn >= self._INTERVAL:
                self._drawn = now
                self._draw()

    def update(self, done: int, total: int | None) -> None:
        """Set the units done and the total (for work that reports both); redraw if
        enough time has passed. Safe to call from another thread."""
        with self._lock:
            self._done, self._total = done, total
            if self._enabled:
                now = time.monotonic()
                if now - self._drawn >= self._INTERVAL or (total and done >= total):
                    self._drawn = now
                    self._draw()

    def set_label(self, label: str) -> None:
        """Show what is being worked on now."""
        self._label = label
        if self._enabled:
            self._draw()

    def _draw(self) -> None:
        if self._total:
            share = min(self._done / self._total, 1.0)
            filled = int(share * 20)
            text = (
                f"{self._label} [{'#' * filled}{'.' * (20 - filled)}] "
                f"{self._done:,}/{self._total:,} ({share:.0%})"
            )
        else:
            text = f"{self._label} {self._done:,}" if self._done else f"{self._label} ..."
        self._stream.write("\r" + text.ljust(self._width))
        self._width = len(text)
        self._stream.flush()

    def close(self) -> None:
        """Erase the bar."""
        with self._lock:
            self._erase()

    def _erase(self) -> None:
        if self._enabled and self._width:
            self._stream.write("\r" + " " * self._width + "\r")
            self._stream.flush()
            self._width = 0

    def __enter__(self) -> Progress:
        if self._enabled:
            self._draw()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Output:
    """Where a command writes: stdout for results, stderr for messages and progress.

    Attributes:
        json: the user asked for JSON (``--json``) instead of tables.
    """

    def __init__(self, stdout: TextIO, stderr: TextIO, *, json_mode: bool) -> None:
        self.stdout = stdout
        self.stderr = stderr
        self.json = json_mode

    def line(self, text: str = "") -> None:
        """One line of result on stdout."""
        self.stdout.write(text + "\n")

    def note(self, text: str) -> None:
        """One line for the person at the terminal, on stderr."""
        self.stderr.write(text + "\n")

    def warn(self, text: str) -> None:
        """A warning on stderr."""
        self.stderr.write(f"eventlog: warning: {text}\n")

    def emit_json(self, obj: Any) -> None:
        """``obj`` as one JSON document on stdout."""
        self.stdout.write(json.dumps(obj, ensure_ascii=False, indent=2) + "\n")

    def table(self, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """An aligned table: numbers right-aligned, everything else left-aligned."""
        cells = [[_cell(v) for v in row] for row in rows]
        numeric = [
            bool(rows) and all(isinstance(row[i], int | float) or row[i] is None for row in rows)
            for i in range(len(headers))
        ]
        widths = [max([len(h), *(len(row[i]) for row in cells)]) for i, h in enumerate(headers)]

        def fmt(values: Sequence[str]) -> str:
            parts = [
                v.rjust(widths[i]) if numeric[i] else v.ljust(widths[i])
                for i, v in enumerate(values)
            ]
            return "  ".join(parts).rstrip()

        self.line(fmt(list(headers)))
        for row in cells:
            self.line(fmt(row))

    def progress(self, label: str, total: int | None = None) -> Progress:
        """A progress bar, drawn only when stdout and stderr are both terminals."""
        return Progress(self.stderr, label, total, self.interactive)

    @property
    def interactive(self) -> bool:
        """Both stdout and stderr are terminals: progress may be drawn."""
        return _isatty(self.stdout) and _isatty(self.stderr)


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.2f}"
    return str(value)
