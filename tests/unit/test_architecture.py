"""The architecture's shape (docs/architecture.md): parts as packages, each saying what it may
import, and no import cycle between any two edgekit modules. The layer rules themselves are the
import-linter contracts in pyproject.toml, which scripts/test checks."""

from __future__ import annotations

import ast
from pathlib import Path

import grimp
import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "edgekit"
ENTRY_POINTS = {"__init__.py", "pytest_plugin.py"}


def test_only_entry_points_at_the_top_of_the_package() -> None:
    modules = {p.name for p in PACKAGE.glob("*.py")}
    assert modules == ENTRY_POINTS


@pytest.mark.parametrize("part", sorted(p.parent.name for p in PACKAGE.glob("*/__init__.py")))
def test_every_part_says_what_it_is_and_what_it_may_import(part: str) -> None:
    doc = ast.get_docstring(ast.parse((PACKAGE / part / "__init__.py").read_text())) or ""
    assert doc.startswith(f"{part}:"), doc[:80]
    assert "May import" in doc


def test_no_import_cycle_between_modules() -> None:
    graph = grimp.build_graph("edgekit")
    cycles = sorted(
        {
            tuple(sorted((module, imported)))
            for module in graph.modules
            for imported in graph.find_modules_directly_imported_by(module)
            if graph.chain_exists(importer=imported, imported=module)
        }
    )
    assert cycles == []
