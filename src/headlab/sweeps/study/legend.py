"""What the report's readers need before its numbers: the heads, the setting's caveats, the
column definitions, and which calibrator fits did not work."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

#: one line per head of configs/head/*.yaml, as the comparison runs them
HEADS = {
    "softmax": ("softmax", "cross-entropy"),
    "soft": (
        "softmax",
        "cross-entropy against labels smoothed by 0.1 (label smoothing, not the soft-label data)",
    ),
    "focal": ("softmax", "focal loss, gamma = 2"),
    "poly": ("softmax", "Poly-1: cross-entropy + 1·(1 - p_y)"),
    "sigmoid": ("one sigmoid per class", "binary cross-entropy against one-hot targets"),
    "sigmoid_focal": ("one sigmoid per class", "binary focal loss per class, gamma = 2"),
    "asl": ("one sigmoid per class", "asymmetric loss, gamma- = 4, clip 0.05"),
    "sigmoid_softmax": (
        "softmax of the sigmoids of the logits",
        "cross-entropy: no class can get more than e / (e + 9) = 0.232, so the loss never "
        "reaches 0 and its ECE is large by construction",
    ),
    "sigmoid_nll": (
        "one sigmoid per class",
        "-log sigmoid(z_y) only: **deliberately degenerate**, "
        "the wrong classes get no gradient, so every output drifts towards 1",
    ),
}
#: a fitted temperature outside this range turns every probability into ~uniform or ~0/1:
#: the fit degenerated (e.g. T ≈ 1e7 on sigmoid_nll gives p = 0.5 everywhere)
TEMPERATURE_RANGE = (0.01, 100.0)


def heads_table(heads: Sequence[str]) -> list[str]:
    rows = [
        f"| `{h}` | {HEADS.get(h, ('?', 'not described'))[0]} | {HEADS.get(h, ('?', '?'))[1]} |"
        for h in heads
    ]
    return [
        "## Heads",
        "",
        "| head | probabilities | loss |",
        "|---|---|---|",
        *rows,
        "",
    ]


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
