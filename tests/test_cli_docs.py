"""The CLI reference (docs/cli.md) is generated from the commands and up to date, every
command has help text, and the how-to's transcripts show real commands."""

from __future__ import annotations

import importlib.util
import io
import re
import shlex
from pathlib import Path
from types import ModuleType

import pytest

from eventlog._cli import run

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "cli.md"


def generator() -> ModuleType:
    return load("gen_cli_reference")


def load(name: str) -> ModuleType:
    """A script of docs/ as a module."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "docs" / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GEN = generator()
TRANSCRIPTS = load("gen_shell_transcripts")
COMMANDS = GEN.all_commands()


def test_reference_page_is_up_to_date() -> None:
    text = PAGE.read_text(encoding="utf-8")
    assert GEN.updated(text) == text, "run: python docs/gen_cli_reference.py"


def test_the_commands_the_issue_asks_for_exist() -> None:
    names = {name for name, _, _ in COMMANDS}
    expected = {
        "topics", "topics list", "topics create", "topics describe", "topics alter",
        "topics delete", "produce", "consume", "groups", "groups list", "groups describe",
        "groups reset-offsets", "groups delete", "stats", "check", "compact", "retention",
        "backup", "export", "import", "bench",
    }  # fmt: skip
    assert expected <= names


@pytest.mark.parametrize("name", [name for name, _, _ in COMMANDS])
def test_every_command_is_documented_with_its_help(name: str) -> None:
    (help_text, parser) = next((h, p) for n, h, p in COMMANDS if n == name)
    assert help_text.strip(), f"{name} has no one-line help"
    assert (parser.description or "").strip(), f"{name} has no description"
    text = PAGE.read_text(encoding="utf-8")
    assert f"### `{name}`" in text
    section = text.split(f"### `{name}`", 1)[1].split("\n### ", 1)[0]
    assert help_text in section
    for action in parser._actions:
        for option in action.option_strings:
            if option not in GEN.COMMON:
                assert f"`{option}" in section, f"{name}: {option} is not documented"
        if action.help and not (GEN.COMMON & set(action.option_strings)):
            assert GEN._cell(action.help) in section
    # And `--help` works and shows the same help.
    out = io.StringIO()
    assert run(["PATH", *name.split(), "--help"], stdout=out, stderr=io.StringIO()) == 0
    shown = " ".join(out.getvalue().split())
    assert " ".join((parser.description or "").split()) in shown


def test_help_and_usage_errors_go_to_the_given_streams() -> None:
    out, err = io.StringIO(), io.StringIO()
    assert run(["PATH", "consume", "--help"], stdout=out, stderr=err) == 0
    assert "--follow" in out.getvalue()
    out, err = io.StringIO(), io.StringIO()
    assert run(["PATH", "consume"], stdout=out, stderr=err) == 2
    assert "the following arguments are required: TOPIC" in err.getvalue()


def test_how_to_transcripts_use_existing_commands() -> None:
    """Every ``eventlog ...`` command in the how-to's transcripts parses, except those
    whose transcript shows the usage error (exit status 2) on purpose."""
    page = (ROOT / "docs" / "how-to" / "shell.md").read_text(encoding="utf-8")
    parser = GEN.build_parser()
    checked = 0
    for match in re.finditer(r"^\$ (.*)\n((?:(?!\$ |```).*\n)*)", page, re.MULTILINE):
        line, output = match.group(1), match.group(2)
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        words: list[str] = []
        for token in [*lexer, ";"]:
            if token and set(token) <= set("|;&()<>"):  # an operator ends a command
                if words and words[0] == "eventlog":
                    checked += 1
                    if "exit status 2" in output:
                        with pytest.raises(SystemExit):
                            parser.parse_args(words[1:])
                    else:
                        parser.parse_args(words[1:])
                words = []
            else:
                words.append(token)
    assert checked >= 30


def test_how_to_transcripts_are_the_output_of_their_commands() -> None:
    """Every transcript of the how-to runs again, in order, in an empty directory, and
    prints what the page shows (timestamps, sizes, rates and column widths aside)."""
    page = (ROOT / "docs" / "how-to" / "shell.md").read_text(encoding="utf-8")
    results = TRANSCRIPTS.run_page(page)
    assert len(results) >= 30
    assert sum(1 for command, _output in results if command.compared) >= len(results) - 1
    found = TRANSCRIPTS.differences(results)
    assert not found, "run: python docs/gen_shell_transcripts.py\n" + "\n".join(found)
    # The comparison sees a stale line, and ignores only what varies between runs.
    command, output = next((c, o) for c, o in results if c.line.startswith("eventlog data stats"))
    assert TRANSCRIPTS.normalise(output) == TRANSCRIPTS.normalise(command.output)
    stale = TRANSCRIPTS.Command(command.line, command.output.replace("orders", "order"), True)
    assert TRANSCRIPTS.differences([(stale, output)])
    command, output = next((c, o) for c, o in results if "consume nope" in c.line)
    assert "create one with: eventlog data topics create nope" in output
    old = "topic 'nope' does not exist; create it with create_topic()\nexit status 1\n"
    assert TRANSCRIPTS.differences([(TRANSCRIPTS.Command(command.line, old, True), output)])
