"""Every Python snippet in the user documentation runs, and every link in it resolves.

The ```python blocks of each page are executed in order, in one namespace per page, in a
fresh temporary working directory (so relative log paths like ``data/app-log`` land
there). A block may be skipped only when the line before its fence is
``<!-- skip-test -->``; pages should not need that.

Where a snippet shows an output in a ``# -> value`` comment, the test checks it: the
comment's expression must equal the value of the line's expression, or of the argument of
the line's ``print(...)`` (see ``with_checks``).
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [
    ROOT / "README.md",
    ROOT / "docs" / "tutorial.md",
    ROOT / "docs" / "how-to.md",
    ROOT / "docs" / "explanation" / "durability.md",
    ROOT / "docs" / "how-to" / "asyncio.md",
    ROOT / "docs" / "explanation" / "retention.md",
    ROOT / "docs" / "explanation" / "compaction.md",
    ROOT / "docs" / "how-to" / "operate-for-months.md",
    ROOT / "docs" / "how-to" / "testing.md",
    ROOT / "docs" / "how-to" / "kafka-python.md",
    ROOT / "docs" / "tutorial-event-sourcing.md",
]
SKIP_MARK = "<!-- skip-test -->"
# A fenced block, possibly indented (inside a list item): group 1 is the indentation.
FENCE = re.compile(r"^([ \t]*)```python[ \t]*\n(.*?)^\1```[ \t]*$", re.MULTILINE | re.DOTALL)
# `expression  # -> expected` on one line: the expected value is checked.
_CHECKED = re.compile(r"^(?P<indent>\s*)(?P<expr>[^#\n]+?)\s*# -> (?P<expected>.+)$")
_PRINT = re.compile(r"print\((.*)\)")


def python_blocks(page: Path) -> list[tuple[int, str]]:
    """The (line number, source) of each ```python block that is not marked skip-test."""
    text = page.read_text(encoding="utf-8")
    blocks = []
    for match in FENCE.finditer(text):
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        if before.strip() == SKIP_MARK:
            continue
        line = text.count("\n", 0, match.start()) + 2
        blocks.append((line, textwrap.dedent(match.group(2))))
    return blocks


def with_checks(source: str) -> str:
    """Turn ``expr  # -> expected`` lines into assertions that ``expr == expected``."""
    out = []
    for line in source.splitlines():
        m = _CHECKED.match(line)
        if m is not None and _is_expression(m.group("expr")):
            expr, expected = m.group("expr"), m.group("expected").strip()
            printed = _PRINT.fullmatch(expr.strip())
            if printed is not None:  # print(x)  # -> value: check x, and still print it
                expr = printed.group(1)
                out.append(f"{m.group('indent')}print({expr})")
            out.append(f"{m.group('indent')}__value = {expr}")
            out.append(f"{m.group('indent')}assert __value == {expected}, ({expr!r}, __value)")
        else:
            out.append(line)
    return "\n".join(out) + "\n"


def _is_expression(text: str) -> bool:
    try:
        ast.parse(text.strip(), mode="eval")
    except SyntaxError:
        return False
    return True


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_page_snippets_run(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = python_blocks(page)
    assert blocks, f"{page.name} has no python snippets"
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "__docs__"}
    try:
        for line, source in blocks:
            code = compile(with_checks(source), f"{page.name}:{line}", "exec")
            exec(code, namespace)
    finally:
        # Close what the snippets left open, so the next page starts clean.
        for value in namespace.values():
            close = getattr(value, "close", None)
            if type(value).__name__ == "Log" and callable(close):
                close()


def test_with_checks_turns_comments_into_assertions() -> None:
    namespace: dict[str, object] = {}
    exec(with_checks("x = 2\nx + 1  # -> 3\nprint(x * 2)  # -> 4\n"), namespace)
    with pytest.raises(AssertionError):
        exec(with_checks("x = 2\nx + 1  # -> 4\n"), {})
    with pytest.raises(AssertionError):
        exec(with_checks("x = 2\nprint(x)  # -> 3\n"), {})


def test_python_blocks_found_and_skipped(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "```python\na = 1\n```\n\n<!-- skip-test -->\n```python\nb = 2\n```\n"
        "```python\nc = 3\n```\n"
        "- an indented block in a list item:\n\n  ```python\n  d = 4\n  ```\n"
    )
    assert [src for _line, src in python_blocks(page)] == ["a = 1\n", "c = 3\n", "d = 4\n"]


def github_anchors(markdown: str) -> set[str]:
    """The anchors GitHub generates for a page's headings."""
    anchors: set[str] = set()
    in_fence = False
    for line in markdown.splitlines():
        if line.startswith("```"):
            in_fence = not in_fence
        if in_fence or not line.startswith("#"):
            continue
        title = line.lstrip("#").strip().lower()
        slug = re.sub(r"[^\w\- ]", "", title).replace(" ", "-")
        anchor, n = slug, 1
        while anchor in anchors:
            anchor, n = f"{slug}-{n}", n + 1
        anchors.add(anchor)
    return anchors


def test_github_anchors() -> None:
    text = "# A `b.c` title\n## Status: alpha\n```\n# not a heading\n```\n## x\n## x\n"
    assert github_anchors(text) == {"a-bc-title", "status-alpha", "x", "x-1"}


def test_doc_links_resolve() -> None:
    """Relative links (and their #anchors) in the README and the docs point at something."""
    pages = [
        ROOT / "README.md",
        ROOT / "CHANGELOG.md",
        ROOT / "examples" / "README.md",
        *sorted((ROOT / "docs").rglob("*.md")),
    ]
    link = re.compile(r"\]\(([^)#\s]*)(?:#([^)\s]*))?\)")
    missing = []
    for page in pages:
        for target, anchor in link.findall(page.read_text(encoding="utf-8")):
            if "://" in target or target.startswith("mailto:"):
                continue
            path = (page.parent / target) if target else page
            where = f"{page.relative_to(ROOT)} -> {target}" + (f"#{anchor}" if anchor else "")
            if not path.exists():
                missing.append(where)
            elif (
                anchor
                and path.suffix == ".md"
                and anchor not in github_anchors(path.read_text(encoding="utf-8"))
            ):
                missing.append(where + " (no such heading)")
    assert not missing, "broken links:\n" + "\n".join(missing)


def test_testing_how_to_quotes_the_example_suite() -> None:
    """The how-to's fixture-using blocks (not run by test_page_snippets_run) are excerpts
    of the example suite, which runs: they cannot drift from working code."""
    page = (ROOT / "docs" / "how-to" / "testing.md").read_text(encoding="utf-8")
    sources = [
        (ROOT / "examples" / name).read_text(encoding="utf-8")
        for name in ("test_shipping.py", "shipping.py")
    ]
    blocks = re.findall(
        r"<!-- skip-test -->\n```python\n(.*?)^```", page, re.MULTILINE | re.DOTALL
    )
    chunks = [c.strip("\n") + "\n" for b in blocks for c in b.split("\n\n\n")]
    assert chunks
    missing = [c for c in chunks if not any(c in source for source in sources)]
    assert not missing, missing


def test_eventsourcing_library_how_to_runs_as_a_script(tmp_path: Path) -> None:
    """The eventsourcing library resolves an aggregate's class by its module, so the
    how-to's example runs as a script of its own (a ``__main__`` module), not in the
    shared namespace of test_page_snippets_run."""
    pytest.importorskip("eventsourcing", reason="the eventsourcing extra is not installed")
    page = ROOT / "docs" / "how-to" / "eventsourcing-library.md"
    blocks = python_blocks(page)
    assert len(blocks) == 1
    script = tmp_path / "bank_example.py"
    script.write_text(with_checks(blocks[0][1]), encoding="utf-8")
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
