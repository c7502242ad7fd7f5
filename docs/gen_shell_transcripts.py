"""Run the console transcripts of docs/how-to/shell.md and write their real output back.

    python docs/gen_shell_transcripts.py          # rewrite the outputs in the page
    python docs/gen_shell_transcripts.py --check  # exit 1 if a normalised output differs

Every ``$ command`` of every ```console block runs in order, with bash, in one scratch
directory (so the page builds its log from nothing, as a reader would), with ``eventlog``
being this checkout's command. stdout and stderr are shown together, as at a terminal. The
scratch directory is shown as /tmp/shelldemo. tests/test_cli_docs.py runs the check.

What varies from run to run (timestamps, sizes, rates, timings, column widths) is
normalised before comparing (:func:`normalise`). A block preceded by the comment
``<!-- transcript: output not compared -->`` is run (later blocks depend on what it
does) but its output is not compared: it depends on timing.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "how-to" / "shell.md"
SHOWN_DIR = "/tmp/shelldemo"
NOT_COMPARED = "<!-- transcript: output not compared -->"

_BLOCK = re.compile(r"(?P<before>[^\n]*\n)?```console\n(?P<body>.*?)```", re.DOTALL)


class Command:
    """One ``$ command`` of a transcript and the output the page shows for it."""

    def __init__(self, line: str, output: str, compared: bool) -> None:
        self.line = line
        self.output = output
        self.compared = compared


def parse(page: str) -> list[tuple[re.Match[str], list[Command]]]:
    """The console blocks of the page, each with its commands."""
    blocks = []
    for match in _BLOCK.finditer(page):
        compared = (match.group("before") or "").strip() != NOT_COMPARED
        commands: list[Command] = []
        for line in match.group("body").splitlines(keepends=True):
            if line.startswith("$ "):
                commands.append(Command(line[2:].rstrip("\n"), "", compared))
            elif commands:
                commands[-1].output += line
            else:
                raise ValueError(f"output before the first command in a block: {line!r}")
        blocks.append((match, commands))
    return blocks


def run_commands(commands: list[Command], scratch: Path) -> list[str]:
    """Run the commands in ``scratch``; their outputs, with the scratch path shown as
    /tmp/shelldemo."""
    bindir = scratch / ".bin"
    bindir.mkdir()
    wrapper = bindir / "eventlog"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m eventlog "$@"\n')
    wrapper.chmod(0o755)
    workdir = scratch / "shelldemo"
    workdir.mkdir()
    env = {
        **os.environ,
        "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}",
        # stdout and stderr in the order written, as at a terminal.
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": str(ROOT),
        "LC_ALL": "C.UTF-8",
    }
    shown = [str(workdir.resolve()), str(workdir)]
    outputs = []
    for command in commands:
        proc = subprocess.run(
            ["bash", "-c", command.line],
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=300,
        )
        text = proc.stdout.decode("utf-8", "backslashreplace")
        for path in shown:
            text = text.replace(path, SHOWN_DIR)
        outputs.append(text)
    return outputs


def run_page(page: str) -> list[tuple[Command, str]]:
    """Every command of the page with the output it prints now."""
    commands = [c for _match, block in parse(page) for c in block]
    with tempfile.TemporaryDirectory(prefix="eventlog-transcripts-") as scratch:
        outputs = run_commands(commands, Path(scratch))
    return list(zip(commands, outputs))


def normalise(text: str) -> str:
    """The output without what varies between runs."""
    text = re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", "<TIME>", text)
    text = re.sub(r"\b\d{13}\b", "<MILLIS>", text)
    text = re.sub(r"\b\d+(\.\d+)? (B|KiB|MiB|GiB)\b", "<SIZE>", text)
    text = re.sub(r"\b\d[\d,]*\.\d+\b", "<NUMBER>", text)
    text = re.sub(r"-(?= +(<NUMBER>|-)?$)", "<NUMBER>", text, flags=re.MULTILINE)
    return "\n".join(" ".join(line.split()) for line in text.splitlines())


def render(page: str, outputs: list[str]) -> str:
    """The page with each command's output replaced by ``outputs``."""
    pieces = []
    pos = 0
    index = 0
    for match, commands in parse(page):
        body_start = match.start("body")
        pieces.append(page[pos:body_start])
        for command in commands:
            pieces.append(f"$ {command.line}\n{outputs[index]}")
            index += 1
        pos = match.end("body")
    pieces.append(page[pos:])
    return "".join(pieces)


def differences(results: list[tuple[Command, str]]) -> list[str]:
    """A report per command whose normalised output differs from the page's."""
    found = []
    for command, output in results:
        if command.compared and normalise(output) != normalise(command.output):
            found.append(f"$ {command.line}\n--- page:\n{command.output}--- now:\n{output}")
    return found


def main() -> int:
    page = PAGE.read_text(encoding="utf-8")
    results = run_page(page)
    if "--check" in sys.argv[1:]:
        found = differences(results)
        for report in found:
            print(report)
        return 1 if found else 0
    PAGE.write_text(render(page, [output for _c, output in results]), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
