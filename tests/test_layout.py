"""The package layout is the architecture (docs/architecture.md): no import points up a layer."""

from __future__ import annotations

import ast
import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "headlab"
#: low to high: a package may import only those before it
LAYERS = (
    "errors",
    "tables",
    "files",
    "layout",
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


def constants_and_names(path: Path) -> tuple[set[str], set[str]]:
    """String constants (docstrings aside) and attribute/variable names used in a module."""
    tree = ast.parse(path.read_text())
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    strings = {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
        if id(node) not in docstrings
    }
    names = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
    names |= {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    return strings, names


def owners(predicate) -> list[str]:
    return sorted(str(path.relative_to(SRC)) for path in SRC.rglob("*.py") if predicate(path))


def test_the_sweep_layout_has_one_owner():
    """metrics.json is named, a multirun recognised and an override split in headlab.layout
    only (the Optuna sweeper parses its search space, a different job, with Hydra's parser)."""

    def names_metrics_json(path: Path) -> bool:
        return "metrics.json" in constants_and_names(path)[0]

    def reads_the_run_mode(path: Path) -> bool:
        return "MULTIRUN" in constants_and_names(path)[1]

    def parses_overrides(path: Path) -> bool:
        return "OverridesParser" in constants_and_names(path)[1]

    assert owners(names_metrics_json) == ["layout/metrics.py"]
    assert owners(reads_the_run_mode) == ["layout/folders.py"]
    assert owners(parses_overrides) == ["layout/overrides.py", "sweeps/optuna_search.py"]


def test_files_and_the_layout_import_no_torch():
    """Hydra loads the sweep callbacks (layout, reader, summary) at every start, --help too:
    nothing they import when loaded may pull in torch (seconds on a loaded machine)."""
    light = [SRC / "files.py", SRC / "errors.py", *sorted((SRC / "layout").glob("*.py"))]
    light += [SRC / "sweeps" / f"{name}.py" for name in ("reader", "summary", "failed")]
    light.append(SRC / "sweeps" / "interrupt.py")
    heavy = []
    for path in light:
        for node in ast.parse(path.read_text()).body:  # at import time (lazy ones may be heavy)
            if isinstance(node, ast.Import):
                modules = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                modules = [node.module or ""]
            else:
                continue
            for module in modules:
                top = module.split(".")
                light_headlab = module == "headlab.sweeps.reader" or (
                    top[0] == "headlab" and top[1] in ("errors", "files", "layout")
                )
                if top[0] in ("torch", "lightning") or (top[0] == "headlab" and not light_headlab):
                    heavy.append(f"{path.relative_to(SRC)}:{node.lineno} imports {module}")
    assert not heavy, heavy


def claimed_imports(package: Path) -> set[str]:
    """The packages a package's ``__init__`` docstring says it may import (``May import: ...``)."""
    doc = ast.get_docstring(ast.parse((package / "__init__.py").read_text())) or ""
    claim = re.search(r"May import:?(.*?)(?:\.\s|\.$|$)", doc, re.S)
    assert claim, f"{package.name}/__init__.py does not say what it may import"
    return set(re.findall(r"``(\w+)``", claim.group(1)))


def test_each_package_imports_only_what_its_docstring_says_it_may():
    """The "May import" line of each package's docstring is a claim this test keeps true."""
    broken = []
    for package in sorted(p for p in SRC.iterdir() if (p / "__init__.py").is_file()):
        allowed = claimed_imports(package) | {package.name}
        for path in sorted(package.rglob("*.py")):
            for line, module in imports_of(path):
                if module.split(".")[1] not in allowed:
                    broken.append(f"{path.relative_to(SRC)}:{line} imports {module}")
    assert broken == []
