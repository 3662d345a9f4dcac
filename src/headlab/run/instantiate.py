"""Hydra instantiation of config groups, with one error path: a value the class refuses
(``trainer.precision=13``) is one line naming the group, not Hydra's wrapped traceback."""

from __future__ import annotations

from typing import Any

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig

from headlab.errors import ConfigValueError, RunError


def instantiate_each(group: DictConfig | None) -> list[Any]:
    """Every entry with a ``_target_`` becomes an object; ``null`` entries switch one off."""
    if not group:
        return []
    if not isinstance(group, DictConfig):
        raise TypeError(f"expected a mapping of configs, got {type(group).__name__}")
    return [
        instantiate_group(entry, name)
        for name, entry in group.items()
        if entry and "_target_" in entry
    ]


def instantiate_group(entry: DictConfig, name: str, **kwargs: Any) -> Any:
    """``instantiate(entry)``; Hydra wraps every error in its own: a message meant for the user
    is passed on as is, a value the class refuses (``ValueError``/``TypeError``, Lightning's
    ``MisconfigurationException``) becomes one ``ConfigValueError`` naming the group."""
    try:
        return instantiate(entry, **kwargs)
    except InstantiationException as err:
        cause = err.__cause__
        if isinstance(cause, RunError):
            raise cause from None
        if isinstance(cause, (ValueError, TypeError)):
            raise ConfigValueError(f"Invalid config: {name}: {cause}") from None
        raise
