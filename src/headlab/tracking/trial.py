"""What a run is called in TensorBoard's HPARAMS and in MLflow: its sweep job number and the
overrides it was swept over, from Hydra's runtime and the sweep's own ``multirun.yaml``
(never parsed from folder names, which may change)."""

from __future__ import annotations

from headlab.layout import JOB_DIGITS, in_multirun, override_key
from headlab.layout import sweep_dir_of_job as sweep_dir
from headlab.layout.folders import recorded_swept_keys

__all__ = ["hydra_runtime", "in_multirun", "sweep_dir", "trial_name"]  # the layout's, re-exported


def hydra_runtime():
    """Hydra's config of the running job, or None outside a Hydra app (tests, notebooks)."""
    from hydra.core.hydra_config import HydraConfig

    return HydraConfig.get() if HydraConfig.initialized() else None


def trial_name(default: str = "") -> str:
    """``007 head=soft,seed=2`` for job 7 of a sweep over head and seed (all the job's
    overrides when the swept keys cannot be told); a single run's overrides, or ``default``."""
    hydra = hydra_runtime()
    if hydra is None:
        return default
    overrides = str(hydra.job.get("override_dirname") or "")
    if not in_multirun():
        return overrides or default
    try:
        swept = recorded_swept_keys(hydra)
        own = [str(o) for o in hydra.overrides.task if override_key(str(o)) in swept]
        overrides = ",".join(own) or overrides
    except Exception:  # a name is never worth failing a run: keep all overrides
        pass
    return f"{int(hydra.job.num):0{JOB_DIGITS}d} {overrides}".strip()
