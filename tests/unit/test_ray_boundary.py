"""Ray stays behind one wrapper: only civicam.scale imports it, and importing civicam.scale does not."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "civicam"


def imports_ray(path: Path) -> list[int]:
    """Lines of ``path`` that import Ray, at any depth (function-local imports count too)."""
    lines = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import) and any(a.name.split(".")[0] == "ray" for a in node.names):
            lines.append(node.lineno)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "ray":
            lines.append(node.lineno)
    return lines


def test_only_scale_imports_ray() -> None:
    offenders = {str(p.relative_to(SRC)): lines for p in SRC.rglob("*.py")
                 if p.parent.name != "scale" and (lines := imports_ray(p))}
    assert offenders == {}
    assert imports_ray(SRC / "scale" / "controller.py"), "the check must see the imports that are there"


def test_single_machine_mode_never_loads_ray() -> None:
    # The hub, its CLI and the scale package itself import without Ray being loaded.
    code = ("import sys, civicam.cli.main, civicam.server, civicam.services, civicam.scale, civicam.domain.placement;"
            "print('ray' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "False"
