"""Command-line overrides read with Hydra's own parser, so that what headlab thinks a
``key=value`` means is what Hydra does: ``seed=range(1,4)`` is three seeds, not the strings
``'range(1'`` and ``'4)'``; ``model.backbone.hidden=[64,32]`` is one value; ``+x``, ``++x``
and ``~x`` name the key ``x``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.errors import HydraException


@lru_cache(maxsize=1)
def _parser() -> OverridesParser:
    return OverridesParser.create()


@lru_cache(maxsize=4096)
def parse(override: str) -> Override:
    """Hydra's reading of one override; raises Hydra's one-line ``OverrideParseException``."""
    return _parser().parse_override(override)


def _key_of(parsed: Override) -> str:
    key = parsed.key_or_group
    return f"{key}@{parsed.package}" if parsed.package else key


def split_override(override: str) -> tuple[str, str]:
    """``+model.x=1`` -> ``("model.x", "1")``; ``~trainer.plugins`` -> ``("trainer.plugins", "")``;
    values as written: ``seed=range(1,4)`` -> ``("seed", "range(1,4)")``.

    Text Hydra cannot parse is split at its first ``=`` (prefixes dropped) so that the caller
    can pass it on and Hydra itself reports the error, in its own words, when it composes.

    >>> split_override("++trainer.max_epochs=2")
    ('trainer.max_epochs', '2')
    """
    try:
        parsed = parse(override)
    except HydraException:
        key, _, value = override.partition("=")
        return key.lstrip("+~").strip(), value
    # the value as written (Hydra's canonical text would escape ``${..}`` and ``:``): a
    # key never holds "=", so once Hydra has read the key the first "=" ends it
    return _key_of(parsed), override.partition("=")[2]


def override_key(override: str) -> str:
    """``+model.x=1`` -> ``model.x``; ``head=sigmoid`` -> ``head``."""
    return split_override(override)[0]


def sweep_values(override: str) -> list[str] | None:
    """The values a sweep override runs, as Hydra enumerates them: ``seed=range(1,4)`` ->
    ``['1', '2', '3']``, ``head=a,b`` -> ``['a', 'b']``, ``seed=1`` -> ``['1']``; None for a
    sweep that is sampled, not enumerated (``interval(0.1,1)``), or text Hydra rejects."""
    try:
        parsed = parse(override)
    except HydraException:
        return None
    if not parsed.is_sweep_override():
        return [split_override(override)[1]]
    try:
        return list(parsed.sweep_string_iterator())
    except HydraException:
        return None


def swept_keys(task_overrides: Iterable[str], params: Mapping[str, Any] | None) -> list[str]:
    """The keys a multirun varies, in order: command-line sweeps (``head=a,b``, ``range(..)``,
    ``choice(..)``) and sweeper ``params`` whose value is a sweep (a single value is none)."""
    given = [str(o) for o in task_overrides]
    given += [f"{key}={value}" for key, value in (params or {}).items()]
    keys = []
    for override in given:
        try:
            parsed = parse(override)
        except HydraException:
            continue  # Hydra refuses it before any job runs
        if parsed.is_sweep_override():
            keys.append(_key_of(parsed))
    return list(dict.fromkeys(keys))
