"""What a run is called in TensorBoard's HPARAMS and in MLflow: its sweep job number and its
overrides, from Hydra's runtime (never parsed from folder names, which may change)."""

from __future__ import annotations

#: digits of the job number in a trial name: "007 head=soft,seed=2" sorts as a number
JOB_DIGITS = 3


def hydra_runtime():
    """Hydra's config of the running job, or None outside a Hydra app (tests, notebooks)."""
    from hydra.core.hydra_config import HydraConfig

    return HydraConfig.get() if HydraConfig.initialized() else None


def in_multirun() -> bool:
    from hydra.types import RunMode

    hydra = hydra_runtime()
    return hydra is not None and hydra.mode == RunMode.MULTIRUN


def trial_name(default: str = "") -> str:
    """``007 head=soft,seed=2`` for job 7 of a sweep (the overrides as ``override_dirname``
    writes them, paths left out); ``head=soft`` for a single run with overrides; else
    ``default``."""
    hydra = hydra_runtime()
    if hydra is None:
        return default
    overrides = str(hydra.job.get("override_dirname") or "")
    if in_multirun():
        return f"{int(hydra.job.num):0{JOB_DIGITS}d} {overrides}".strip()
    return overrides or default
