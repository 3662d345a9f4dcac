"""Train one model (or, with -m, a sweep): `python scripts/train.py head=sigmoid`."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from headlab.run.dirs import register

os.environ.setdefault("HEADLAB_ROOT", str(Path(__file__).resolve().parents[1]))


@hydra.main(version_base="1.3", config_path="../configs", config_name="train.yaml")
def main(cfg: DictConfig) -> float | None:
    register()  # in a parallel launcher's worker too
    from headlab.sweeps.interrupt import ctrl_c_stops_this_job

    with ctrl_c_stops_this_job():  # a joblib worker ignores Ctrl-C between its jobs
        return run(cfg)


def run(cfg: DictConfig) -> float | None:
    from headlab.layout import in_multirun
    from headlab.sweeps.interrupt import skip_if_interrupted

    if skip_if_interrupted():  # a sweep job queued before a Ctrl-C: recorded, not trained
        return float("nan")
    # after Hydra parsed args: `--help` stays instant
    from headlab.run.from_checkpoint import composed_from_checkpoint
    from headlab.run.outcome import EXIT_SIGINT, EXIT_SIGTERM, run_task
    from headlab.run.train import train

    try:
        # resuming a checkpoint: its run's config under yours (headlab.run.from_checkpoint)
        metrics = run_task(composed_from_checkpoint(train), cfg)  # None: a failed sweep job
    except SystemExit as stop:
        # an interrupted sweep job (its metrics.json says so) returns: Hydra's end-of-job
        # callbacks then still run (summary.csv gets its row, a joblib worker stays alive),
        # and sweeps.interrupt ends the sweep with 130/143
        if stop.code in (EXIT_SIGINT, EXIT_SIGTERM) and in_multirun():
            return float("nan")
        raise
    if metrics is None:
        return float("nan")
    value = metrics.get(cfg.get("optimized_metric"))  # what a sweeper optimises
    return float(value) if isinstance(value, (int, float)) else None


if __name__ == "__main__":
    register()  # ${unique_dir:} and ${job_dir:}, before Hydra composes
    try:
        main()  # a sweep with failed jobs exits 1 from its last callback (sweeps.failed)
    except KeyboardInterrupt:  # a second Ctrl-C while a parallel launcher waits on its workers
        from headlab.run.outcome import EXIT_SIGINT

        print("Interrupted: each started job's metrics.json says where it stopped", file=sys.stderr)
        sys.exit(EXIT_SIGINT)
