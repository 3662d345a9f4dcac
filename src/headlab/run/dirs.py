"""``${unique_dir:...}``: a run folder no other run shares, even one started the same instant;
``${job_dir:num,overrides}``: a sweep job's folder name that says which job it is.

Hydra names run folders by time; two runs started in the same microsecond (a job array, two
shells) would write into one folder. The resolver creates the folder with ``mkdir`` (which
fails if it exists, atomically) and appends ``-1``, ``-2``... until it gets a new one. It
is cached like Hydra's ``now``, so every later read of the same key, including Hydra's
sweep jobs (which copy the resolver cache), gives the same folder.

Imported for its side effect by ``scripts/train.py``, before Hydra composes the config.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

RESOLVER = "unique_dir"
JOB_DIR_RESOLVER = "job_dir"
MAX_JOB_NAME = 200  # characters of overrides kept in a job folder name (limit: 255 bytes)


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
    name = str(overrides).replace("/", "_").replace("\\", "_")[:MAX_JOB_NAME]
    return f"{num}_{name}" if name else str(num)


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


register()
