"""The package layout is the architecture (docs/architecture.md): no import points up a layer."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "headlab"
#: low to high: a package may import only those before it
LAYERS = (
    "errors",
    "tables",
    "files",
    "heads",
    "calibration",
    "metrics",
    "data",
    "shift",
    "checkpoints",
    "models",
    "callbacks",
    "tracking",
    "run",
    "sweeps",
)


def imports_of(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("headlab."):
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("headlab.")]
    return found


def test_every_module_sits_in_a_layer_and_imports_only_below_it():
    rank = {name: i for i, name in enumerate(LAYERS)}
    upward, unplaced = [], []
    for path in sorted(SRC.rglob("*.py")):
        top = path.relative_to(SRC).parts[0].removesuffix(".py")
        if top == "__init__":
            continue
        if top not in rank:
            unplaced.append(str(path))
            continue
        for line, module in imports_of(path):
            target = module.split(".")[1]
            if rank.get(target, -1) > rank[top]:
                upward.append(f"{path.relative_to(SRC)}:{line} imports {module}")
    assert not unplaced, f"modules outside every layer: {unplaced}"
    assert not upward, upward


def test_at_most_a_handful_of_modules_sit_flat():
    flat = sorted(p.name for p in SRC.glob("*.py"))
    assert flat == ["__init__.py", "errors.py", "files.py", "heads.py", "tables.py"]
