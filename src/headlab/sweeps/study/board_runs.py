"""One TensorBoard run per head beside the report (``report/tensorboard/<head>/``): the mean
over the head's seeds of the key curves, with their minimum and maximum.

A sweep of 8 heads x 3 seeds draws 24 lines per chart; these runs draw one line per head
(Scalars, section ``heads``) and one band per head (Custom Scalars, "heads: mean over
seeds"), so heads are compared, not seeds. A step enters a head's curve only when every
seed has it, so a seed that stopped early does not bend the mean.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from headlab.sweeps.study.jobs import Job, read_scalar

#: curves every head has: train every N steps, val per epoch, the gradient split
KEY_CURVES = (
    "train/loss",
    "train/acc",
    "val/acc",
    "val/ece",
    "val/nll",
    "val/loss",
    "grad_rows/other_share",
)
MEAN, LOW, HIGH = "heads/", "heads_min/", "heads_max/"


def mean_curve(
    curves: Sequence[Sequence[tuple[int, float]]],
) -> list[tuple[int, float, float, float]]:
    """(step, mean, min, max) over the curves, at the steps all of them have."""
    by_step = [dict(c) for c in curves]
    steps = sorted(set.intersection(*(set(c) for c in by_step)))
    rows = []
    for step in steps:
        values = [c[step] for c in by_step]
        rows.append((step, sum(values) / len(values), min(values), max(values)))
    return rows


def layout() -> dict[str, dict[str, list]]:
    """Custom Scalars: a margin chart per curve (the line is the mean, the band min..max)."""
    charts = {
        tag: ["Margin", [f"{MEAN}{tag}", f"{LOW}{tag}", f"{HIGH}{tag}"]] for tag in KEY_CURVES
    }
    return {"heads: mean over seeds (band: min to max)": charts}


def write_head_runs(groups: dict[str, list[Job]], out: Path) -> list[Path]:
    """One run per head with at least one curve; returns their folders."""
    from torch.utils.tensorboard import SummaryWriter
    from torch.utils.tensorboard.summary import custom_scalars

    written = []
    for head, jobs in groups.items():
        curves = {
            tag: [c for c in (read_scalar(job.path / "tensorboard", tag) for job in jobs) if c]
            for tag in KEY_CURVES
        }
        curves = {tag: c for tag, c in curves.items() if c}
        if not curves:
            continue
        writer = SummaryWriter(log_dir=str(out / head))
        try:
            writer._get_file_writer().add_summary(custom_scalars(layout()))
            for tag, runs in curves.items():
                for step, mean, low, high in mean_curve(runs):
                    writer.add_scalar(f"{MEAN}{tag}", mean, step)
                    writer.add_scalar(f"{LOW}{tag}", low, step)
                    writer.add_scalar(f"{HIGH}{tag}", high, step)
            text = f"mean over seeds {sorted(str(j.seed) for j in jobs)} of {len(jobs)} runs"
            writer.add_text("heads/about", text, 0)
        finally:
            writer.close()
        written.append(out / head)
    return written
