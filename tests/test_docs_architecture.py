"""docs/architecture.md stays true: every file its request path names exists,
and every function or class named right after a file is defined in that file."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "architecture.md"
CODE = re.compile(r"`([^`]+)`")
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


def _request_path() -> list[str]:
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## A request's path", 1)[1].split("\n## ", 1)[0]
    return [line for line in section.splitlines() if re.match(r"\d+\. ", line)]


def _file(token: str) -> Path:
    for candidate in (ROOT / token, ROOT / "orchestrator" / token, ROOT / "runners" / token):
        if candidate.is_file():
            return candidate
    raise AssertionError(f"docs/architecture.md names {token}, which does not exist")


def _defines(path: Path, dotted: str) -> bool:
    """Every part of ``Class.method`` (or ``function``) is defined in ``path``."""
    text = path.read_text(encoding="utf-8")
    return all(
        re.search(rf"^\s*(async def|def|class) {re.escape(part)}\b", text, re.M)
        for part in dotted.split(".")
    )


def _hops() -> list[tuple[str, str]]:
    """(file, name) for each name written right after a file, or after ``->`` or
    ``,`` from one (asides in parentheses left out)."""
    hops = []
    for line in _request_path():
        line = re.sub(r" \([^()]*(\([^()]*\)[^()]*)*\)", "", line)
        current: Path | None = None
        end = 0
        for match in CODE.finditer(line):
            token, gap = match.group(1), line[end : match.start()].strip()
            end = match.end()
            if token.endswith(".py"):
                current = _file(token)
            elif current is not None and gap in ("", "->", ",") and IDENTIFIER.fullmatch(token):
                hops.append((str(current.relative_to(ROOT)), token))
            else:
                current = None  # prose between: the next name needs its own file
    return hops


def test_the_request_path_has_a_hop_per_line_down_to_the_worker_and_back() -> None:
    lines = _request_path()
    assert len(lines) >= 10
    assert any("runners/worker.py" in line for line in lines)
    assert any("on_reply" in line for line in lines)


@pytest.mark.parametrize(("file", "name"), _hops())
def test_each_named_function_is_defined_in_its_file(file: str, name: str) -> None:
    assert _defines(ROOT / file, name), f"{file}: no {name} (docs/architecture.md)"
