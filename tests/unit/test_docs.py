"""The repository stands alone: docs and docstrings point only at files inside it, and every
relative link in the README and docs/ resolves."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [
    *ROOT.glob("*.md"),
    *ROOT.glob("docs/**/*.md"),
    *ROOT.glob("edgekit/**/*.py"),
    *ROOT.glob("agents/**/*.py"),
    *ROOT.glob("tests/**/*.py"),
    *ROOT.glob("benchmarks/*.py"),
    *ROOT.glob("scripts/**/*.py"),
    *ROOT.glob("device_profiles/*.toml"),
    ROOT / "pyproject.toml",
]
OUTSIDE = re.compile(r"\.\./shared|\bshared/(reference|cases)\b|\bDESIGN\.md\b")
# "issue N" means one of this project's issues, which a user of the repository cannot read; the
# reference pages cite upstream projects' issues by number, which is fine there.
OUR_ISSUE = re.compile(r"\b[Ii]ssue \d+\b")
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


@pytest.mark.parametrize(
    "path", [p for p in SOURCES if p.name != "test_docs.py"], ids=lambda p: str(p.relative_to(ROOT))
)
def test_refers_only_to_files_inside_the_repository(path: Path) -> None:
    hits = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1)
        if OUTSIDE.search(line) or (OUR_ISSUE.search(line) and "docs/reference" not in str(path))
    ]
    assert not hits, "\n".join(hits)


@pytest.mark.parametrize(
    "path", [*ROOT.glob("*.md"), *ROOT.glob("docs/**/*.md")], ids=lambda p: str(p.relative_to(ROOT))
)
def test_relative_links_resolve(path: Path) -> None:
    broken = [
        target
        for target in LINK.findall(path.read_text())
        if "://" not in target and not target.startswith("mailto:") and not (path.parent / target).exists()
    ]
    assert not broken, f"{path.relative_to(ROOT)}: broken links {broken}"
