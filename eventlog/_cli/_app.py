"""The parser, the dispatch to a command, and the one-line error reporting."""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shlex
import sys
from collections.abc import Callable, Sequence
from typing import TextIO

from .._errors import EventLogError, TopicNotFoundError
from . import _groups, _mirror, _ops, _records, _topics, _transfer
from ._common import CommandError, UsageError
from ._output import Output

__all__ = ["COMMAND_MODULES", "build_parser", "run"]

Handler = Callable[[argparse.Namespace, Output], int]

# Each module adds its subcommands with register(subparsers); a new command module is
# plugged in by adding it here.
COMMAND_MODULES = (_topics, _records, _transfer, _groups, _ops, _mirror)

DESCRIPTION = """\
Operate an eventlog log directory from the shell: topics, producing and consuming
records, consumer groups, statistics, integrity checks, compaction, retention, backups,
export and import, a quick benchmark, and mirroring to and from Kafka clusters.
"""

EPILOG = """\
Global options may also follow the command (eventlog data topics list --json).
Exit status: 0 ok, 1 failure, 2 usage error, 130 interrupted.
"""


def build_parser() -> argparse.ArgumentParser:
    """The ``eventlog`` argument parser, with every subcommand."""
    from .. import __version__

    parser = argparse.ArgumentParser(
        prog="eventlog",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    parser.add_argument("--version", action="version", version=f"eventlog {__version__}")
    parser.add_argument("path", metavar="PATH", help="the log directory")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    commands.required = True
    for module in COMMAND_MODULES:
        module.register(commands)
    return parser


def _enable_completion(parser: argparse.ArgumentParser) -> None:
    # Shell completion when the optional argcomplete package is installed; argparse has
    # none of its own and eventlog does not depend on argcomplete.
    try:
        import argcomplete  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return
    argcomplete.autocomplete(parser)


def run(
    argv: Sequence[str] | None = None,
    *,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Run the ``eventlog`` command with ``argv`` (default ``sys.argv[1:]``); return its
    exit status: 0 ok, 1 failure, 2 usage error, 130 interrupted."""
    out_stream = stdout if stdout is not None else sys.stdout
    err_stream = stderr if stderr is not None else sys.stderr
    parser = build_parser()
    _enable_completion(parser)
    try:
        # argparse prints help and usage errors itself, to sys.stdout / sys.stderr.
        with contextlib.redirect_stdout(out_stream), contextlib.redirect_stderr(err_stream):
            args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help, --version (0) or a usage error (2)
        return exc.code if isinstance(exc.code, int) else 2
    debug = bool(getattr(args, "debug", False))
    out = Output(out_stream, err_stream, json_mode=bool(getattr(args, "json", False)))
    handler: Handler = args.handler
    try:
        return handler(args, out)
    except KeyboardInterrupt:
        if debug:
            raise
        return 130
    except UsageError as exc:
        if debug:
            raise
        usage_parser: argparse.ArgumentParser = getattr(args, "usage_parser", parser)
        usage_parser.print_usage(err_stream)
        err_stream.write(f"{usage_parser.prog}: error: {exc}\n")
        return 2
    except BrokenPipeError:
        # The reader went away (| head): stop quietly. Point stdout at /dev/null so the
        # interpreter's final flush does not complain again.
        _silence_stdout(out_stream)
        return 0
    except (EventLogError, CommandError, OSError) as exc:
        if debug:
            raise
        err_stream.write(f"eventlog: error: {shell_message(exc, args.path)}\n")
        return 1


# Hints in the library's messages that speak to Python callers, and what to do in a shell.
_PYTHON_HINTS = (
    (
        re.compile(r"raise the limit with alter_topic\(\)"),
        "raise the limit with: eventlog {path} topics alter {topic} -c max.message.bytes=BYTES,",
    ),
    (re.compile(r"or pass force=True"), "or add --force"),
    (re.compile(r"check\(\) lists the damage"), "eventlog {path} check lists the damage"),
)


def shell_message(exc: BaseException, path: str) -> str:
    """The one-line error text for the shell: hints name commands, not Python calls."""
    quoted = shlex.quote(path)
    if isinstance(exc, TopicNotFoundError) and exc.topic is not None:
        return (
            f"topic {exc.topic!r} does not exist (list the topics with: eventlog {quoted} "
            f"topics; create one with: eventlog {quoted} topics create {shlex.quote(exc.topic)})"
        )
    message = _message(exc)
    topic = getattr(exc, "topic", None) or "TOPIC"
    for pattern, hint in _PYTHON_HINTS:
        message = pattern.sub(hint.format(path=quoted, topic=shlex.quote(topic)), message)
    return message


def _message(exc: BaseException) -> str:
    if isinstance(exc, OSError) and not isinstance(exc, EventLogError) and exc.strerror:
        where = f": {exc.filename}" if exc.filename else ""
        return f"{exc.strerror}{where}"
    return str(exc).replace("\n", " ") or type(exc).__name__


def _silence_stdout(stream: TextIO) -> None:
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)
