"""Helpers the commands share: opening the log, parsing option values, reading input."""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import os
import signal
import sys
import threading
from collections.abc import Iterator
from types import FrameType
from typing import IO

from .._log import Log
from .._log import open as open_log_dir

__all__ = [
    "CommandError",
    "UsageError",
    "add_common",
    "config_pair",
    "iter_line_chunks",
    "open_log",
    "parse_when",
]


class CommandError(Exception):
    """A failure the command reports in one line (exit status 1); ``topic``: the topic
    it concerns, when known (for the hints of the message)."""

    def __init__(self, message: str, *, topic: str | None = None) -> None:
        super().__init__(message)
        self.topic = topic


class UsageError(CommandError):
    """A bad option value or a contradiction between options, found after parsing: it is
    reported like argparse's own usage errors (the command's usage line, exit status 2)."""


def positive_int(text: str) -> int:
    """An argparse type: an integer of at least 1."""
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1; got {value}")
    return value


def natural_int(text: str) -> int:
    """An argparse type: an integer of at least 0."""
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more; got {value}")
    return value


def natural_float(text: str) -> float:
    """An argparse type: a number of at least 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number; got {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number of 0 or more; got {text}")
    return value


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer; got {text!r}") from None


def add_common(parser: argparse.ArgumentParser) -> None:
    """--json and --debug on a subcommand too, so they may follow the command.

    SUPPRESS keeps a subcommand from overwriting a value given before the command.
    """
    parser.add_argument(
        "--json",
        action="store_true",
        default=argparse.SUPPRESS,
        help="print JSON instead of tables",
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show the traceback of an error",
    )
    # The innermost subcommand's parser, to report a UsageError with its usage line.
    parser.set_defaults(usage_parser=parser)


INTERNAL_PREFIX = "__"
"""Topics whose names start with this are eventlog's own (``__eventlog_mirror``, the
mirror positions): listings and ``export`` leave them out unless asked."""


def add_include_internal(parser: argparse.ArgumentParser, *, nested: bool = False) -> None:
    """--include-internal: also the internal topics (names starting with ``__``).

    ``nested``: the parser of an action under a command that has the option too, so
    that the action does not overwrite a value given before it.
    """
    parser.add_argument(
        "--include-internal",
        action="store_true",
        default=argparse.SUPPRESS if nested else False,
        help="also internal topics (names starting with __, e.g. __eventlog_mirror)",
    )


def visible_topics(names: list[str], args: argparse.Namespace) -> list[str]:
    """``names`` without the internal topics, unless --include-internal."""
    if getattr(args, "include_internal", False):
        return names
    return [n for n in names if not n.startswith(INTERNAL_PREFIX)]


def open_log(path: str, *, write: bool = False, create: bool = False) -> Log:
    """Open the log for a command.

    Reading commands open it read-only, so they work beside a running writer. Only the
    commands that add data (``topics create``, ``produce``, ``import``) create a missing log.
    """
    if not write:
        return open_log_dir(path, readonly=True)
    if create:
        return open_log_dir(path, create=True)
    return open_log_dir(path, create=False)


@contextlib.contextmanager
def ctrl_c_flag() -> Iterator[threading.Event]:
    """While inside, the first Ctrl-C (SIGINT) sets the returned event instead of raising
    KeyboardInterrupt wherever the main thread is: raised inside the library's waits it
    can land in the middle of a lock operation and turn into another error. The command
    checks the event between polls and stops there; a second Ctrl-C raises as usual."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop  # signal handlers can only be set from the main thread
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield stop
    finally:
        signal.signal(
            signal.SIGINT, previous if previous is not None else signal.default_int_handler
        )


def config_pair(text: str) -> tuple[str, str]:
    """An argparse type for ``--config key=value``."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(
            f"expected key=value (e.g. retention.ms=3600000); got {text!r}"
        )
    return key.strip(), value


def header_pair(text: str) -> tuple[str, bytes]:
    """An argparse type for ``--header name=value``."""
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected name=value; got {text!r}")
    return name, value.encode("utf-8")


def parse_when(text: str, what: str) -> int | _dt.datetime:
    """``@MILLIS`` (milliseconds since the epoch) or an ISO 8601 date-time.

    A date-time without a time zone is local time, as ``Log.reset_offsets`` reads it.
    """
    if text.startswith("@"):
        digits = text[1:]
        if not digits.isdigit():
            raise UsageError(f"{what}: expected @MILLISECONDS since the epoch; got {text!r}")
        return int(digits)
    try:
        return _dt.datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(
            f"{what}: expected @MILLISECONDS or an ISO 8601 date-time such as "
            f"2024-05-01T12:00:00+00:00; got {text!r}"
        ) from None


def to_millis(when: int | _dt.datetime) -> int:
    """Milliseconds since the epoch (a naive date-time is local time)."""
    if isinstance(when, int):
        return when
    return int(when.timestamp() * 1000)


def iter_line_chunks(stream: IO[bytes], max_lines: int) -> Iterator[list[bytes]]:
    """The complete lines of ``stream`` (without their ``\\n``), in lists of at most
    ``max_lines``, each list holding only what was already available.

    It reads with ``read1``: from a file that gives large chunks (large batches), from a
    pipe or a terminal whatever has arrived (so a line typed or piped slowly is written
    at once, not after ``max_lines`` more).
    """
    read1 = getattr(stream, "read1", None)
    pending = b""
    while True:
        chunk = read1(1 << 20) if read1 is not None else stream.read(1 << 20)
        if not chunk:
            if pending:
                yield [pending]
            return
        data = pending + chunk
        lines = data.split(b"\n")
        pending = lines.pop()
        for start in range(0, len(lines), max_lines):
            yield lines[start : start + max_lines]


def input_stream(path: str | None) -> contextlib.AbstractContextManager[IO[bytes]]:
    """A binary input as a context manager: the file at ``path`` (closed at the end), or
    stdin for None or ``-`` (left open)."""
    if path is None or path == "-":
        return contextlib.nullcontext(sys.stdin.buffer)
    if not os.path.exists(path):
        raise CommandError(f"input file {path!r} does not exist")
    return open(path, "rb")
