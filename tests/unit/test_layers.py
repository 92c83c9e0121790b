"""The service layers below the API never import the web framework or the layers above them."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "civicam"
# Layers below api/web/cli: what they may not import (the framework, and the layers that use them).
BELOW_API = ("live", "ingest", "storage", "analytics", "registry", "audit", "auth", "domain")
FORBIDDEN = ("fastapi", "starlette", "civicam.api", "civicam.web", "civicam.cli")


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("package", BELOW_API)
def test_no_service_layer_imports_the_web_framework(package: str) -> None:
    offending = {f"{path.relative_to(SRC)}: {name}" for path in sorted((SRC / package).rglob("*.py"))
                 for name in _imports(path) if name.split(".")[0] in FORBIDDEN or name.startswith(FORBIDDEN)}
    assert offending == set()
