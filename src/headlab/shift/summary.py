"""The headline off-distribution numbers of finished runs, one Markdown row per run:

    python -m headlab.shift.summary logs/train/runs/<time> [more run folders...]

Each cell is the run's point value and its 95% interval from metrics.json (bootstrap over
the test subset; Wilson for rates); the analysis' CPU seconds come from
off_distribution.json. A value a run did not measure shows as n/a. FPR95 is given in both
conventions (in-distribution positive; OOD positive, as OpenOOD), and the Mahalanobis
control beside the head's own score.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from headlab.layout import read_metrics
from headlab.layout.headline import CONFIDENCE_ANGLE as ANGLE
from headlab.layout.headline import DEFAULT_SCORE as SCORE
from headlab.tables import markdown_table

COLUMNS = {
    "test acc": "test/acc",
    "test ECE": "test/ece",
    f"acc {ANGLE}°": f"shift/rotation/{ANGLE}/acc",
    f"ECE {ANGLE}°": f"shift/rotation/{ANGLE}/ece",
    f"ECE {ANGLE}° TS": f"shift/rotation/{ANGLE}/ece_temperature",
    "mean ECE corr.": "shift/corruption/mean/ece",
    "digits acc": "shift/digits/sklearn/acc",
    "AUROC letters": f"ood/letters/{SCORE}/auroc",
    "FPR95 letters": f"ood/letters/{SCORE}/fpr95",
    "FPR95 letters (OOD+)": f"ood/letters/{SCORE}/fpr95_ood",
    "AUROC letters Mahalanobis": "ood/letters/mahalanobis/auroc",
    "AUROC inverted": f"ood/inverted/{SCORE}/auroc",
    "FPR95 inverted": f"ood/inverted/{SCORE}/fpr95",
    "none test": "test/none_of_the_above",
    "none letters": "ood/letters/none_of_the_above",
    "none inverted": "ood/inverted/none_of_the_above",
    "none gaussian": "ood/gaussian/none_of_the_above",
}


def cell(metrics: dict, key: str) -> str:
    value = metrics.get(key)
    if not isinstance(value, (int, float)):
        return "n/a"
    low, high = metrics.get(f"{key}_ci_low"), metrics.get(f"{key}_ci_high")
    if isinstance(low, (int, float)) and isinstance(high, (int, float)):
        return f"{value:.3f} [{low:.3f}, {high:.3f}]"
    return f"{value:.3f}"


def summary(folders: list[Path]) -> str:
    header = ["run", *COLUMNS, "CPU s"]
    rows = []
    for folder in folders:
        metrics = read_metrics(folder)
        timing = folder / "off_distribution.json"
        cpu = json.loads(timing.read_text()).get("cpu_seconds") if timing.is_file() else None
        cells = [cell(metrics, key) for key in COLUMNS.values()]
        cells.append(f"{cpu:.1f}" if isinstance(cpu, (int, float)) else "n/a")
        rows.append([folder.name, *cells])
    return "\n".join(markdown_table(header, rows))


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: python -m headlab.shift.summary RUN_FOLDER [RUN_FOLDER...]")
    print(summary([Path(arg) for arg in sys.argv[1:]]))
