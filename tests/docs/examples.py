"""Every command example the docs show, extracted from the files themselves.

Sources: indented ``cnnscope ...`` lines of README.md and docs/*.md, and the lines after
``Examples:`` in every command's ``--help``. A trailing ``# comment`` is dropped. A Markdown code
block may be preceded by ``<!-- examples: slow -->`` (run in the slow set) or
``<!-- examples: skip REASON -->`` (needs something a test cannot have, e.g. a GitHub runner).
Fenced ``python`` blocks are examples too (:func:`python_blocks`): each runs as a whole script.
"""
from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
MARK = re.compile(r"<!--\s*examples:\s*(slow|skip)\s*(.*?)\s*-->")


@dataclass(frozen=True)
class Example:
    source: str        # file (or "help:COMMAND") and line
    command: str       # the command line as documented
    mark: str = ""     # "", "slow" or "skip"
    reason: str = ""

    @property
    def argv(self) -> list[str]:
        return shlex.split(self.command)[1:]


def _strip_comment(line: str) -> str:
    out, quote = [], None
    for i, ch in enumerate(line):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            break
        out.append(ch)
    return "".join(out).strip()


def from_markdown(path: Path) -> list[Example]:
    found, mark, reason, in_block = [], "", "", False
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        m = MARK.search(line)
        if m:
            mark, reason = m.group(1), m.group(2)
            continue
        is_code = line.startswith("    ") or line.startswith("\t")
        stripped = line.strip()
        if stripped.startswith("```"):
            in_block = not in_block
            if not in_block:
                mark, reason = "", ""
            continue
        if (is_code or in_block) and stripped.startswith("cnnscope "):
            found.append(Example(f"{path.relative_to(ROOT)}:{n}", _strip_comment(stripped), mark, reason))
        elif not is_code and not in_block and stripped:
            mark, reason = "", ""          # a mark applies to the code block right after it
    return found


def from_help() -> list[Example]:
    from click.testing import CliRunner

    from cnnscope.cli import COMMANDS, cli

    found = []
    for name in COMMANDS:
        text = CliRunner().invoke(cli, [name, "--help"]).output
        lines = text.splitlines()
        try:
            start = next(i for i, l in enumerate(lines) if l.strip() == "Examples:")
        except StopIteration:
            continue
        for line in lines[start + 1:]:
            s = line.strip()
            if not s:
                break
            if s.startswith("cnnscope "):
                found.append(Example(f"help:{name}", _strip_comment(s)))
    return found


@dataclass(frozen=True)
class PythonBlock:
    source: str        # file and line of the opening fence
    code: str
    mark: str = ""
    reason: str = ""


def python_blocks() -> list[PythonBlock]:
    """Every fenced ```python block of README.md and docs/*.md, with the mark before it."""
    found = []
    for path in DOCS:
        mark, reason, start, body = "", "", None, []
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            m = MARK.search(line)
            if m and start is None:
                mark, reason = m.group(1), m.group(2)
                continue
            if start is None and line.strip() == "```python":
                start, body = n, []
            elif start is not None and line.strip() == "```":
                found.append(PythonBlock(f"{path.relative_to(ROOT)}:{start}", "\n".join(body) + "\n", mark, reason))
                start, mark, reason = None, "", ""
            elif start is not None:
                body.append(line)
            elif line.strip() and not line.strip().startswith("```"):
                mark, reason = "", ""
    return found


def all_examples() -> list[Example]:
    out = []
    for path in DOCS:
        out += from_markdown(path)
    return out + from_help()
