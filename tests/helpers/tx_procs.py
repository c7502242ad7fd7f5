"""Test-side process control for the transaction tests: a child process whose line output
goes to a file (so that what it printed before a SIGKILL can be read afterwards), started
ahead of time and released with "go" on stdin."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest


class Child:
    """One helper-script process; its stdout and stderr go to files in ``workdir``."""

    def __init__(self, workdir: Path, name: str, script: Path, *args: str) -> None:
        self.name = name
        self.out_path = workdir / f"{name}.out"
        self.err_path = workdir / f"{name}.err"
        self._out = self.out_path.open("wb")
        self._err = self.err_path.open("wb")
        self.proc = subprocess.Popen([sys.executable, str(script), *args],
                                     stdin=subprocess.PIPE, stdout=self._out, stderr=self._err)

    def output(self) -> str:
        return self.out_path.read_text(errors="replace")

    def lines(self) -> list[str]:
        """The complete lines printed so far (a line cut short by a kill is left out)."""
        return self.output().split("\n")[:-1]

    def stderr(self) -> str:
        return self.err_path.read_text(errors="replace")

    def wait_for(self, predicate_or_line: str, what: str, timeout: float = 60.0) -> None:
        """Wait until a complete line equal to (or, ending with a space, starting with) the
        given text was printed."""
        deadline = time.monotonic() + timeout
        prefix = predicate_or_line.endswith(" ")
        while True:
            lines = self.lines()
            if any(line.startswith(predicate_or_line) if prefix else line == predicate_or_line
                   for line in lines):
                return
            if self.proc.poll() is not None:
                lines = self.lines()  # it may have printed the line just before exiting
                if any(line.startswith(predicate_or_line) if prefix
                       else line == predicate_or_line for line in lines):
                    return
                self._close()
                pytest.fail(f"{self.name} exited ({self.proc.returncode}) before {what}:\n"
                            f"{self.stderr()}")
            if time.monotonic() > deadline:
                self.kill()
                pytest.fail(f"{self.name}: no {what} within {timeout} s")
            time.sleep(0.002)

    def go(self) -> None:
        self.wait_for("R", "ready line")
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"go\n")
        self.proc.stdin.flush()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self._close()

    def check_killed(self) -> None:
        if self.proc.returncode != -signal.SIGKILL:
            pytest.fail(f"{self.name} exited on its own ({self.proc.returncode}) before the "
                        f"kill:\n{self.stderr()}")

    def wait(self, timeout: float = 60.0) -> int:
        """Wait for a normal exit; its return code."""
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"{self.name} did not finish within {timeout} s")
        self._close()
        return code

    def _close(self) -> None:
        self._out.close()
        self._err.close()
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            with contextlib.suppress(BrokenPipeError):
                self.proc.stdin.close()
