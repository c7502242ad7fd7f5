"""The ``eventlog`` command: a thin shell over the public API for a log directory.

``run(argv)`` returns the exit status (for tests and embedding); ``main()`` is the console
script's entry point and raises ``SystemExit`` with it.
"""

from __future__ import annotations

import sys

from ._app import build_parser, run

__all__ = ["build_parser", "main", "run"]


def main() -> None:
    """Entry point of the ``eventlog`` console script and of ``python -m eventlog``."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            # Text that cannot be encoded in the terminal's encoding shows as escapes.
            reconfigure(errors="backslashreplace")
    raise SystemExit(run())
