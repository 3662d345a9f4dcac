"""A sweep's folders: ``<sweep>/003_head=sigmoid,seed=1/`` per job, named by its zero-padded
number (a listing keeps the order of the jobs, so a head's seeds stay together) and the keys
the sweep varies only, not every command-line override; and the way back from a job's
folder to its sweep's.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from headlab.layout.overrides import override_key, swept_keys

#: digits of a job number in folder and trial names: ``007`` sorts before ``010`` as text
JOB_DIGITS = 3
MAX_JOB_NAME = 200  # characters of overrides kept in a job folder name (limit: 255 bytes)
#: the keys the running sweep varies, set by ``SweptKeys`` when the multirun starts (an
#: environment variable, so that launcher workers and SLURM tasks see it too)
SWEPT_KEYS_ENV = "HEADLAB_SWEPT_KEYS"


def in_multirun(hydra: Any = None) -> bool:
    """Whether this is a job of a Hydra multirun (``-m``): ``hydra`` is a config's ``hydra``
    node; without one, the running app's (False outside a Hydra app: tests, notebooks)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if hydra is None:
        if not HydraConfig.initialized():
            return False
        hydra = HydraConfig.get()
    return OmegaConf.select(hydra, "mode") == RunMode.MULTIRUN


def job_dir(num: int | str, overrides: str = "", task: Iterable[str] | None = None) -> str:
    """``003_head=sigmoid,seed=1`` from Hydra's job number and the job's overrides.

    ``overrides`` is Hydra's ``override_dirname``, used whole when the swept keys are not
    known; ``task`` the job's own override list, of which the swept keys' are kept (in
    ``override_dirname``'s order). A ``/`` in a value (``optimized_metric=val/ece``) would
    nest folders, so it becomes ``_``; very long names are cut.
    """
    swept = os.environ.get(SWEPT_KEYS_ENV)
    name = str(overrides or "")
    if swept is not None and task is not None:
        keys = set(swept.split(",")) if swept else set()
        name = ",".join(sorted(o for o in map(str, task) if override_key(o) in keys))
    name = name.replace("/", "_").replace("\\", "_")[:MAX_JOB_NAME]
    text = str(num)
    number = f"{int(text):0{JOB_DIGITS}d}" if text.isdigit() else text
    return f"{number}_{name}" if name else number


def job_number(name: str) -> int | None:
    """The job number a job folder's name starts with (``003_head=...``, ``3_head=...``, ``3``)."""
    head = name.split("_", 1)[0]
    return int(head) if head.isdigit() else None


def sweep_dir_of_job(hydra: Any) -> Path:
    """The sweep folder of a multirun job, from its ``hydra`` node: the job's own folder less
    ``sweep.subdir`` (``sweep.dir`` may hold a ``${now:}`` that a launcher's worker would
    resolve anew, so it is not read)."""
    output_dir = Path(str(hydra.runtime.output_dir))
    depth = len(Path(str(hydra.sweep.subdir)).parts)
    return output_dir.parents[depth - 1] if depth else output_dir


def recorded_swept_keys(hydra: Any) -> list[str]:
    """The keys the running job's sweep varies, from what Hydra recorded in
    ``<sweep>/multirun.yaml`` and the sweeper's ``params``: the same rule ``SweptKeys``
    applies when the sweep starts."""
    params = OmegaConf.select(hydra, "sweeper.params", default=None)
    params = OmegaConf.to_container(params, resolve=False) if params else None
    record = sweep_dir_of_job(hydra) / "multirun.yaml"
    task = OmegaConf.load(record).hydra.overrides.task if record.is_file() else []
    return swept_keys([str(o) for o in task], params)


class SweptKeys(Callback):
    """At the start of a multirun, tell ``job_dir`` which keys the sweep varies."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        params = OmegaConf.select(config, "hydra.sweeper.params", default=None)
        params = OmegaConf.to_container(params, resolve=False) if params else None
        keys = swept_keys(list(config.hydra.overrides.task), params)
        os.environ[SWEPT_KEYS_ENV] = ",".join(keys)
