"""Test-side tools for running eventlog in other processes (imported by the test files by
path, with ``tests/helper_modules.load_helper``)."""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

HELPERS = Path(__file__).resolve().parent
AGENT_SCRIPT = HELPERS / "agent.py"


class AgentError(AssertionError):
    pass


class Agent:
    """A ``tests/helpers/agent.py`` subprocess driven by JSON commands."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(AGENT_SCRIPT)], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1)
        self._replies: queue.Queue[str | None] = queue.Queue()
        self._stderr: list[str] = []
        self._peeked: list[str | None] = []
        threading.Thread(target=self._pump, daemon=True).start()
        threading.Thread(target=self._pump_err, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._replies.put(line)
        self._replies.put(None)

    def _pump_err(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self._stderr.append(line)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def send(self, op: str, **args: Any) -> None:
        """Send a command without waiting for its reply (see :meth:`reply`)."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"op": op, **args}) + "\n")
        self.proc.stdin.flush()

    def has_reply(self, timeout: float = 0.0) -> bool:
        """Whether a reply arrives within ``timeout`` seconds (it stays available)."""
        if self._peeked:
            return True
        try:
            self._peeked.append(self._replies.get(timeout=timeout) if timeout > 0
                                else self._replies.get_nowait())
        except queue.Empty:
            return False
        return True

    def reply(self, timeout: float = 60.0) -> dict[str, Any]:
        try:
            line = self._peeked.pop() if self._peeked else self._replies.get(timeout=timeout)
        except queue.Empty:
            self.kill()
            raise AgentError(f"agent {self.pid}: no reply within {timeout} s") from None
        if line is None:
            self.proc.wait()
            raise AgentError(f"agent {self.pid} exited ({self.proc.returncode}):\n"
                             + "".join(self._stderr))
        result: dict[str, Any] = json.loads(line)
        return result

    def result(self, timeout: float = 60.0) -> Any:
        """The next reply's result; AgentError when the command raised."""
        reply = self.reply(timeout)
        if not reply["ok"]:
            raise AgentError(f"agent {self.pid}: {reply['error']}: {reply['message']}")
        return reply["result"]

    def call(self, op: str, reply_timeout: float = 60.0, **args: Any) -> Any:
        self.send(op, **args)
        return self.result(reply_timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        """End the agent normally (EOF on stdin) and wait for it."""
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()

    def __enter__(self) -> Agent:
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()
