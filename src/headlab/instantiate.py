"""Hydra instantiation of the list-like config groups (callbacks, loggers)."""

from __future__ import annotations

from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig


def instantiate_each(group: DictConfig | None) -> list[Any]:
    """Every entry with a ``_target_`` becomes an object; ``null`` entries switch one off."""
    if not group:
        return []
    if not isinstance(group, DictConfig):
        raise TypeError(f"expected a mapping of configs, got {type(group).__name__}")
    return [instantiate(entry) for entry in group.values() if entry and "_target_" in entry]
