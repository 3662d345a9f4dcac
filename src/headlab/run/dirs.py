"""``${unique_dir:...}``: a run folder no other run shares, even one started the same instant;
``${job_dir:num,overrides}``: a sweep job's folder name that says which job it is, by the
keys the sweep varies only (``3_head=sigmoid,seed=1``, not every command-line override).

Hydra names run folders by time; two runs started in the same microsecond (a job array, two
shells) would write into one folder. The resolver creates the folder with ``mkdir`` (which
fails if it exists, atomically) and appends ``-1``, ``-2``... until it gets a new one. It
is cached like Hydra's ``now``, so every later read of the same key, including Hydra's
sweep jobs (which copy the resolver cache), gives the same folder.

The scripts call ``register()`` before Hydra composes the config, and again inside the
task function so that a parallel launcher's worker processes have the resolvers too.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

RESOLVER = "unique_dir"
JOB_DIR_RESOLVER = "job_dir"
MAX_JOB_NAME = 200  # characters of overrides kept in a job folder name (limit: 255 bytes)
#: the keys the running sweep varies, set by ``SweptKeys`` when the multirun starts (an
#: environment variable, so that launcher workers and SLURM tasks see it too)
SWEPT_KEYS_ENV = "HEADLAB_SWEPT_KEYS"
#: a comma that starts the next ``key=value`` of ``override_dirname`` (not one inside ``[1,2]``)
_ITEM_SEP = re.compile(r",(?=[\w.+~/@-]+=)")


def unique_dir(path: str) -> str:
    """Create ``path`` (or ``path-N``) and return the one that was created by this call."""
    base = Path(path)
    base.parent.mkdir(parents=True, exist_ok=True)
    candidate, n = base, 0
    while True:
        try:
            candidate.mkdir()
            return str(candidate)
        except FileExistsError:
            n += 1
            candidate = base.with_name(f"{base.name}-{n}")


def job_dir(num: int | str, overrides: str = "") -> str:
    """``3_head=sigmoid,seed=1`` from Hydra's job number and ``override_dirname``.

    The number keeps names unique and sortable; a ``/`` in a value (``optimized_metric=val/ece``)
    would nest folders, so it becomes ``_``; very long override lists are cut.
    """
    swept = os.environ.get(SWEPT_KEYS_ENV)
    items = _ITEM_SEP.split(str(overrides)) if overrides else []
    if swept is not None:
        keys = set(swept.split(","))
        items = [item for item in items if item.partition("=")[0].lstrip("+~") in keys]
    name = ",".join(items).replace("/", "_").replace("\\", "_")[:MAX_JOB_NAME]
    return f"{num}_{name}" if name else str(num)


def swept_keys(task_overrides: list[str], params: dict[str, Any] | None) -> list[str]:
    """The keys a multirun varies: command-line sweeps (``head=a,b``, ``range(..)``,
    ``choice(..)``) and ``hydra.sweeper.params``, parsed by Hydra's own override parser."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    given = list(task_overrides) + [f"{k}={v}" for k, v in (params or {}).items()]
    return list(
        dict.fromkeys(
            o.key_or_group for o in parser.parse_overrides(given) if o.is_sweep_override()
        )
    )


class SweptKeys(Callback):
    """At the start of a multirun, tell ``job_dir`` which keys the sweep varies."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        params = OmegaConf.select(config, "hydra.sweeper.params", default=None)
        params = OmegaConf.to_container(params, resolve=False) if params else None
        keys = swept_keys(list(config.hydra.overrides.task), params)
        os.environ[SWEPT_KEYS_ENV] = ",".join(keys)


def job_number(name: str) -> int | None:
    """The job number a sweep job folder's name starts with (``3`` or ``3_head=...``)."""
    head = name.split("_", 1)[0]
    return int(head) if head.isdigit() else None


def register() -> None:
    from headlab.run import data_resolvers  # ${folder_classes:}, ${csv_classes:} (own data)

    data_resolvers.register()
    if not OmegaConf.has_resolver(RESOLVER):
        OmegaConf.register_new_resolver(RESOLVER, unique_dir, use_cache=True)
    if not OmegaConf.has_resolver(JOB_DIR_RESOLVER):
        OmegaConf.register_new_resolver(JOB_DIR_RESOLVER, job_dir)
