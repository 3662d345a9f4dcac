"""What the report's readers need before its numbers: the heads, the setting's caveats, the
column definitions, and which calibrator fits did not work.

Each head's description comes from its class (``Head.describe``) built with the parameters
its jobs ran with, so ``head.gamma=3`` reads gamma = 3 here; nothing about a head is restated.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from headlab.heads import HEADS
from headlab.tables import markdown_table

#: a fitted temperature outside this range turns every probability into ~uniform or ~0/1:
#: the fit degenerated (e.g. T ≈ 1e7 on sigmoid_nll gives p = 0.5 everywhere)
TEMPERATURE_RANGE = (0.01, 100.0)


def head_config(job_dir: Path) -> dict[str, Any] | None:
    """The ``head`` block a job ran with (its ``.hydra/config.yaml``), or None."""
    file = job_dir / ".hydra" / "config.yaml"
    if not file.is_file():
        return None
    head = (yaml.safe_load(file.read_text()) or {}).get("head")
    return head if isinstance(head, dict) else None


def describe_head(
    name: str, config: Mapping[str, Any] | None = None, num_classes: int = 10
) -> tuple[str, str]:
    """(probabilities, loss) of head ``name`` as configured: the class named by the config's
    ``_target_`` (else ``heads.HEADS[name]``), built with its parameters, describes itself."""
    params = {k: v for k, v in (config or {}).items() if k != "_target_"}
    target = str((config or {}).get("_target_", ""))
    by_path = {f"{c.__module__}.{c.__name__}": c for c in HEADS.values()}
    cls = by_path.get(target) or HEADS.get(name)
    if cls is None:
        return "?", "not described"
    try:
        return cls(**params).describe(num_classes)
    except (TypeError, ValueError) as error:  # a head config this code cannot build
        return "?", f"not described ({error})"


def heads_table(
    heads: Sequence[str] | Mapping[str, Sequence[Mapping[str, Any] | None]], num_classes: int = 10
) -> list[str]:
    """One row per head. ``heads`` maps each head to the head configs its jobs ran with (a
    plain list of names: the classes' defaults); jobs of one head that ran with different
    parameters show each description once, joined by "; "."""
    configs = heads if isinstance(heads, Mapping) else {h: [None] for h in heads}
    rows = []
    for head, found in configs.items():
        described = list(
            dict.fromkeys(describe_head(head, c, num_classes) for c in found or [None])
        )
        probabilities = "; ".join(dict.fromkeys(d[0] for d in described))
        rows.append([f"`{head}`", probabilities, "; ".join(d[1] for d in described)])
    return ["## Heads", "", *markdown_table(["head", "probabilities", "loss"], rows), ""]


def caveats(
    epochs: str, model: str, data: str = "mnist", test_size: int = 10_000, classes: int = 10
) -> list[str]:
    """The setting's limits and the columns' definitions, for the data the study ran on."""
    data_name = "MNIST" if data == "mnist" else f"`data={data}`"
    return [
        f"**Caveats.** {epochs} epoch(s) of a small `{model}` on {data_name}: the heads are "
        "compared early in training, where calibration still moves from epoch to epoch; what "
        "holds here need not hold for a converged or larger model. Differences are measured "
        f"on the {test_size:,} test images of {data_name}, paired over the shared training "
        "seeds.",
        "",
        "**Columns.** ECE-type columns (`ece`, `ece_adaptive`, `smece`) are top-label, on the "
        "head's own probabilities (raw sigmoids for sigmoid heads). `nll` and `brier` are of "
        "the normalised distribution p/Σp for every head (a softmax head's p unchanged); "
        f"`nll_ovr` and `brier_ovr` score the {classes} outputs as one-vs-rest Bernoullis (raw "
        "sigmoids). NLL and Brier are summed over classes and averaged over samples, as in "
        "metrics.json and calibration.json (docs/statistics.md).",
        "",
    ]


def degenerate(metrics: Mapping[str, Any], method: str) -> str | None:
    """Why a calibrator's result is no result (failed or degenerate fit), else None."""
    error = metrics.get(f"calibration/{method}_error")
    if error:
        return f"failed: {error}"
    if method == "temperature":
        t = metrics.get("temperature")
        low, high = TEMPERATURE_RANGE
        if isinstance(t, (int, float)) and not low <= t <= high:
            return f"degenerate: T = {t:.3g}"
    return None
