"""A finished sweep as data: its jobs, what each ran (head, data, seed) and what it left behind.

The comparison report (``sweeps.study.report``) reads only this; a folder that is no sweep, an
empty sweep or one whose jobs all failed is refused here with one line (``BadSweep``)
before anything is written.
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from headlab.calibration import PREDICTIONS_FILE  # every run that tests writes it
from headlab.layout import override_key, sweep_values
from headlab.sweeps.reader import MISSING_STATUS, job_dirs, job_metrics, job_overrides

GRAD_SHARE_TAG = "grad_rows/other_share"


class BadSweep(ValueError):
    """The folder cannot give a report; the message says what was found."""


@dataclass
class Job:
    """One job folder of a sweep."""

    path: Path
    head: str
    data: str
    model: str
    seed: Any
    max_epochs: Any
    metrics: dict[str, Any] = field(default_factory=dict)
    overrides: list[str] = field(default_factory=list)

    @property
    def completed(self) -> bool:
        return self.metrics.get("status") == "completed"

    @property
    def status(self) -> str:
        status = str(self.metrics.get("status", MISSING_STATUS))
        return "no metrics.json" if status == MISSING_STATUS else status

    @cached_property
    def predictions(self) -> tuple[np.ndarray, np.ndarray] | None:
        """Test probabilities (N, C) float64 and targets, or None when the run saved none."""
        file = self.path / PREDICTIONS_FILE
        if not file.is_file():
            return None
        with np.load(file) as saved:
            return saved["probs"].astype(np.float64), saved["targets"]

    @cached_property
    def class_names(self) -> list[str] | None:
        """The data's class names as the run saved them beside its predictions (own image
        data), or None (MNIST: the digits are their own names)."""
        file = self.path / PREDICTIONS_FILE
        if not file.is_file():
            return None
        with np.load(file) as saved:
            return [str(n) for n in saved["class_names"]] if "class_names" in saved else None

    @cached_property
    def grad_share(self) -> list[tuple[int, float]]:
        """(step, grad_rows/other_share) from the run's TensorBoard event files."""
        return read_scalar(self.path / "tensorboard", GRAD_SHARE_TAG)


def event_records(file: Path) -> Iterator[bytes]:
    """The serialized records of a TFRecord file (length, length CRC, data, data CRC).

    Read here rather than by TensorBoard's ``EventFileLoader``, which checks every CRC in
    pure Python: ~0.2 s per run for a few scalars among the run's images and histograms.
    """
    data = file.read_bytes()
    offset = 0
    while offset + 12 <= len(data):
        (length,) = struct.unpack_from("<Q", data, offset)
        start = offset + 12
        if start + length + 4 > len(data):
            return  # a record still being written
        yield data[start : start + length]
        offset = start + length + 4


def read_scalar(folder: Path, tag: str) -> list[tuple[int, float]]:
    """One scalar's (step, value) points from every event file in ``folder``, by step."""
    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.util import tensor_util

    needle = tag.encode()
    points: dict[int, float] = {}
    for file in sorted(folder.glob("events.out.tfevents.*")):
        for record in event_records(file):
            if needle not in record:  # most records are other tags: skip the parse
                continue
            event = Event.FromString(record)
            for value in event.summary.value:
                if value.tag != tag:
                    continue
                if value.HasField("simple_value"):
                    points[event.step] = float(value.simple_value)
                else:
                    points[event.step] = float(tensor_util.make_ndarray(value.tensor).item())
    return sorted(points.items())


def read_job(job_dir: Path) -> Job:
    hydra_file = job_dir / ".hydra" / "hydra.yaml"
    config_file = job_dir / ".hydra" / "config.yaml"
    choices = yaml.safe_load(hydra_file.read_text())["hydra"]["runtime"]["choices"]
    config = yaml.safe_load(config_file.read_text()) if config_file.is_file() else {}
    metrics = job_metrics(job_dir)
    return Job(
        path=job_dir,
        head=str(choices.get("head", "?")),
        data=str(choices.get("data", "?")),
        model=str(choices.get("model", "?")),
        seed=config.get("seed"),
        max_epochs=(config.get("trainer") or {}).get("max_epochs"),
        metrics=metrics,
        overrides=job_overrides(job_dir),
    )


def expected_jobs(sweep_dir: Path) -> list[dict[str, str]]:
    """The override combinations the sweep asked for (Hydra's ``multirun.yaml``), for the
    keys ``head`` and ``seed``: a job that never got a folder is still listed as missing."""
    path = sweep_dir / "multirun.yaml"
    if not path.is_file():
        return []
    hydra_cfg = yaml.safe_load(path.read_text())["hydra"]
    params = hydra_cfg.get("sweeper", {}).get("params") or {}
    given = [f"{key}={spec}" for key, spec in params.items()]
    given += [str(o) for o in hydra_cfg.get("overrides", {}).get("task", [])]
    values: dict[str, list[str]] = {}
    for override in given:  # Hydra's reading: seed=range(1,4) is 1, 2, 3
        swept = sweep_values(override)
        if swept is not None:  # a sampled sweep (interval) lists no values in advance
            values[override_key(override)] = swept
    keys = [k for k in ("head", "seed") if k in values]
    combos = itertools.product(*(values[k] for k in keys))
    return [dict(zip(keys, combo, strict=True)) for combo in combos]


@dataclass
class Study:
    """Every job of one or more sweep folders; ``folder`` is where the report goes."""

    folder: Path
    jobs: list[Job]
    never_ran: list[dict[str, str]]

    @property
    def completed(self) -> list[Job]:
        return [j for j in self.jobs if j.completed]

    def shared_overrides(self) -> list[str]:
        """Command-line overrides every completed job had, other than head and seed."""
        common = set.intersection(*(set(j.overrides) for j in self.completed))
        first = self.completed[0].overrides
        return [o for o in first if o in common and override_key(o) not in ("head", "seed")]

    def completed_on(self, data: str) -> dict[str, list[Job]]:
        """head -> its completed jobs on ``data``, sorted by seed; heads in first-seen order."""
        groups: dict[str, list[Job]] = {}
        for job in self.completed:
            if job.data == data:
                groups.setdefault(job.head, []).append(job)
        return {h: sorted(js, key=lambda j: str(j.seed)) for h, js in groups.items()}


def load_study(folder: str | Path, *more: str | Path) -> Study:
    """Read the sweep folder(s); raise ``BadSweep`` for no sweep, an empty one, or no
    completed job."""
    folders = [Path(f) for f in (folder, *more)]
    jobs: list[Job] = []
    never_ran: list[dict[str, str]] = []
    for sweep in folders:
        if not sweep.is_dir():
            raise BadSweep(f"{sweep}: no such folder")
        is_sweep = (sweep / "multirun.yaml").is_file()
        dirs = [d for d in job_dirs(sweep) if (d / ".hydra" / "hydra.yaml").is_file()]
        if not dirs:
            found = (
                "an empty sweep (multirun.yaml, no job folders)"
                if is_sweep
                else ("no sweep: neither multirun.yaml nor job folders with .hydra/")
            )
            raise BadSweep(f"{sweep}: {found}")
        found_jobs = [read_job(d) for d in dirs]
        seen = [{"head": j.head, "seed": str(j.seed)} for j in found_jobs]
        never_ran += [
            e
            for e in expected_jobs(sweep)
            if not any(all(s[k] == v for k, v in e.items()) for s in seen)
        ]
        jobs += found_jobs
    if not any(j.completed for j in jobs):
        states = sorted({j.status for j in jobs})
        raise BadSweep(
            f"{folders[0]}: none of its {len(jobs)} jobs completed ({', '.join(states)})"
        )
    return Study(folders[0], jobs, never_ran)
