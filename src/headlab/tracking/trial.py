"""What a run is called in TensorBoard's HPARAMS and in MLflow: its sweep job number and the
overrides it was swept over, from Hydra's runtime and the sweep's own ``multirun.yaml``
(never parsed from folder names, which may change)."""

from __future__ import annotations

from pathlib import Path

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


def _key(override: str) -> str:
    return override.partition("=")[0].lstrip("+~")


def sweep_dir(hydra) -> Path:
    """The sweep folder of a multirun job (its ``sweep.subdir`` may be several levels)."""
    depth = len(Path(str(hydra.sweep.subdir)).parts)
    return Path(hydra.runtime.output_dir).parents[depth - 1]


def swept_keys(hydra) -> set[str]:
    """Keys the sweep varies: its sweeper's ``params`` and the command line's sweep overrides
    (``head=a,b``), as Hydra recorded them in ``<sweep>/multirun.yaml``."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import OmegaConf

    keys = set(OmegaConf.select(hydra, "sweeper.params", default=None) or {})
    record = sweep_dir(hydra) / "multirun.yaml"
    if record.is_file():
        given = OmegaConf.load(record).hydra.overrides.task
        parsed = OverridesParser.create().parse_overrides([str(o) for o in given])
        keys |= {o.key_or_group for o in parsed if o.is_sweep_override()}
    return keys


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
        swept = swept_keys(hydra)
        own = [str(o) for o in hydra.overrides.task if _key(str(o)) in swept]
        overrides = ",".join(own) or overrides
    except Exception:  # a name is never worth failing a run: keep all overrides
        pass
    return f"{int(hydra.job.num):0{JOB_DIGITS}d} {overrides}".strip()
