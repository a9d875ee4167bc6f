"""The import graph keeps the architecture: data flows readers -> core -> study -> analysis ->
report/web, so a package never imports one downstream of it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import peerlens

PACKAGE = Path(peerlens.__file__).parent
#: What each package may not import (its downstream packages).
FORBIDDEN = {
    "instruments": {"study", "web", "cli", "_commands", "analysis"},
    "hrv": {"study", "web", "cli", "_commands", "analysis"},
    "narrative": {"study", "web", "cli", "_commands", "analysis"},
    "study": {"web", "cli", "_commands", "analysis"},
    "analysis": {"web", "cli", "_commands"},
}


def _imports(path: Path) -> set[str]:
    """The peerlens sub-packages a module imports (absolute imports, at any depth)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        for name in names:
            parts = name.split(".")
            if parts[0] == "peerlens" and len(parts) > 1:
                found.add(parts[1])
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_a_package_never_imports_one_downstream(package: str) -> None:
    bad = []
    for path in sorted((PACKAGE / package).rglob("*.py")):
        for name in sorted(_imports(path) & FORBIDDEN[package]):
            bad.append(f"{path.relative_to(PACKAGE)} imports peerlens.{name}")
    assert bad == []


def test_the_rule_knows_every_package() -> None:
    packages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    known = set(FORBIDDEN) | {"web", "_commands", "_tables", "examples"}
    assert packages <= known, f"new package(s) {packages - known}: add them to FORBIDDEN"
