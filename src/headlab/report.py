"""Comparison report over a multirun: one row per head, mean ± std over seeds, and a figure.

Runs that are missing or did not complete are listed in the report, never silently dropped.
"""

from __future__ import annotations

import itertools
import json
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from headlab.calibration.bins import Reliability, ReliabilityBins
from headlab.calibration.posthoc import PREDICTIONS_FILE

COLUMNS = {
    "accuracy": "test/acc",
    "ECE": "test/ece",
    "MCE": "test/mce",
    "Brier": "test/brier",
    "NLL": "test/nll",
    "ECE after TS": "test/ece_ts",
}
NORMALISED_COLUMNS = {
    "ECE": "test/ece_norm",
    "MCE": "test/mce_norm",
    "Brier": "test/brier_norm",
    "NLL": "test/nll_norm",
}


@dataclass
class Job:
    path: Path
    head: str
    seed: Any
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def completed(self) -> bool:
        return self.metrics.get("status") == "completed"


def read_job(job_dir: Path) -> Job:
    hydra_cfg = yaml.safe_load((job_dir / ".hydra" / "hydra.yaml").read_text())["hydra"]
    config = yaml.safe_load((job_dir / ".hydra" / "config.yaml").read_text())
    metrics_file = job_dir / "metrics.json"
    metrics = json.loads(metrics_file.read_text()) if metrics_file.is_file() else {}
    head = hydra_cfg["runtime"]["choices"].get("head", "?")
    return Job(job_dir, head, config.get("seed"), metrics)


def find_jobs(sweep_dir: Path) -> list[Job]:
    dirs = sorted(p.parent.parent for p in sweep_dir.glob("*/.hydra/hydra.yaml"))
    return [read_job(d) for d in dirs]


def expected_combinations(sweep_dir: Path) -> list[tuple[str, str]]:
    """(head, seed) pairs the sweep asked for, from Hydra's multirun.yaml."""
    path = sweep_dir / "multirun.yaml"
    if not path.is_file():
        return []
    hydra_cfg = yaml.safe_load(path.read_text())["hydra"]
    values: dict[str, list[str]] = {}
    for key, spec in (hydra_cfg.get("sweeper", {}).get("params") or {}).items():
        values[key] = [v.strip() for v in str(spec).split(",")]
    for override in hydra_cfg.get("overrides", {}).get("task", []):
        key, _, spec = override.partition("=")
        values[key.lstrip("+~")] = [v.strip() for v in spec.split(",")]
    heads = values.get("head", [])
    seeds = values.get("seed", [])
    return list(itertools.product(heads, seeds)) if heads and seeds else []


def mean_std(values: list[float]) -> str:
    if not values:
        return "—"
    mean = statistics.fmean(values)
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{mean:.4f} ± {std:.4f}"


def table(rows: dict[str, list[Job]], columns: dict[str, str]) -> list[str]:
    lines = ["| head | runs | " + " | ".join(columns) + " |", "|---|---|" + "---|" * len(columns)]
    for head, jobs in rows.items():
        cells = []
        for key in columns.values():
            values = [
                float(j.metrics[key]) for j in jobs if isinstance(j.metrics.get(key), (int, float))
            ]
            cells.append(mean_std([v for v in values if math.isfinite(v)]))
        lines.append(f"| {head} | {len(jobs)} | " + " | ".join(cells) + " |")
    return lines


def pooled_reliability(jobs: list[Job]) -> Reliability | None:
    """Reliability bins over the test predictions of all seeds of one head."""
    bins = ReliabilityBins(1)
    for job in jobs:
        file = job.path / PREDICTIONS_FILE
        if file.is_file():
            saved = np.load(file)
            probs = torch.from_numpy(saved["probs"]).double()
            confidence, predicted = probs.max(dim=1)
            bins.update(confidence, predicted == torch.from_numpy(saved["targets"]))
    result = bins.compute()
    return result if result.count.sum() > 0 else None


def write_report(sweep_dir: str | Path) -> Path:
    """Write ``report.md`` and ``report.png`` into the sweep folder; returns the markdown path."""
    from headlab.calibration.figures import reliability_grid

    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise FileNotFoundError(f"no such multirun folder: {sweep_dir}")
    jobs = find_jobs(sweep_dir)
    if not jobs:
        raise FileNotFoundError(f"{sweep_dir} holds no Hydra job folders (*/.hydra/hydra.yaml)")
    done = [j for j in jobs if j.completed]
    rows: dict[str, list[Job]] = {}
    for job in sorted(done, key=lambda j: j.head):
        rows.setdefault(job.head, []).append(job)

    lines = [
        f"# Head comparison: {sweep_dir.name}",
        "",
        f"{len(done)} of {len(jobs)} runs completed. Test metrics, mean ± std over seeds; "
        "calibration uses each head's own probabilities (raw sigmoids for sigmoid heads).",
        "",
        *table(rows, COLUMNS),
        "",
    ]
    sigmoid_rows = {h: js for h, js in rows.items() if "test/ece_norm" in js[0].metrics}
    if sigmoid_rows:
        lines += [
            "Sigmoid heads with their probabilities renormalised to sum to one:",
            "",
            *table(sigmoid_rows, NORMALISED_COLUMNS),
            "",
        ]
    problems = [
        f"- {j.path.name}: head={j.head} seed={j.seed}, status "
        f"{j.metrics.get('status', 'no metrics.json')}"
        for j in jobs
        if not j.completed
    ]
    seen = {(j.head, str(j.seed)) for j in jobs}
    problems += [
        f"- head={h} seed={s}: no run folder"
        for h, s in expected_combinations(sweep_dir)
        if (h, s) not in seen
    ]
    lines += ["## Missing or failed runs", "", *(problems or ["none"]), ""]
    lines += ["![reliability diagrams](report.png)", ""]
    report = sweep_dir / "report.md"
    report.write_text("\n".join(lines))

    diagrams = {head: r for head, js in rows.items() if (r := pooled_reliability(js))}
    if diagrams:
        fig = reliability_grid(diagrams)
        fig.savefig(sweep_dir / "report.png")
    return report
