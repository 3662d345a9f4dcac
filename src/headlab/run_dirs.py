"""``${unique_dir:...}``: a run folder no other run shares, even one started the same instant.

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
    if not OmegaConf.has_resolver(RESOLVER):
        OmegaConf.register_new_resolver(RESOLVER, unique_dir, use_cache=True)


register()
