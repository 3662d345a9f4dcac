"""``${unique_dir:...}``: a run folder no other run shares, even one started the same instant;
``${job_dir:num,override_dirname,task}``: a sweep job's folder name that says which job it is,
by the keys the sweep varies only (``003_head=sigmoid,seed=1``; ``headlab.layout.folders``).

Hydra names run folders by time; two runs started in the same microsecond (a job array, two
shells) would write into one folder. The resolver creates the folder with ``mkdir`` (which
fails if it exists, atomically) and appends ``-1``, ``-2``... until it gets a new one. It
is cached like Hydra's ``now``, so every later read of the same key, including Hydra's
sweep jobs (which copy the resolver cache), gives the same folder.

The scripts call ``register()`` before Hydra composes the config, and again inside the
task function so that a parallel launcher's worker processes have the resolvers too.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

# job folder names live in headlab.layout; the names stay importable from here
from headlab.layout.folders import (  # noqa: F401
    SWEPT_KEYS_ENV,
    SweptKeys,
    job_dir,
    job_number,
)
from headlab.layout.overrides import swept_keys  # noqa: F401

RESOLVER = "unique_dir"
JOB_DIR_RESOLVER = "job_dir"


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


def register() -> None:
    from headlab.run import data_resolvers  # ${folder_classes:}, ${csv_classes:} (own data)

    data_resolvers.register()
    if not OmegaConf.has_resolver(RESOLVER):
        OmegaConf.register_new_resolver(RESOLVER, unique_dir, use_cache=True)
    if not OmegaConf.has_resolver(JOB_DIR_RESOLVER):
        OmegaConf.register_new_resolver(JOB_DIR_RESOLVER, job_dir)
