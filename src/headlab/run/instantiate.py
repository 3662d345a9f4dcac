"""Hydra instantiation of the list-like config groups (callbacks, loggers)."""

from __future__ import annotations

from typing import Any

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig

from headlab.errors import RunError


def instantiate_each(group: DictConfig | None) -> list[Any]:
    """Every entry with a ``_target_`` becomes an object; ``null`` entries switch one off."""
    if not group:
        return []
    if not isinstance(group, DictConfig):
        raise TypeError(f"expected a mapping of configs, got {type(group).__name__}")
    return [_instantiate(entry) for entry in group.values() if entry and "_target_" in entry]


def _instantiate(entry: DictConfig) -> Any:
    """Hydra wraps every error in its own; a message meant for the user is passed on as is."""
    try:
        return instantiate(entry)
    except InstantiationException as err:
        if isinstance(err.__cause__, RunError):
            raise err.__cause__ from None
        raise
