"""Conveniences at the start of a run: the composed config as a tree, a warning when untagged."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from pathlib import Path

from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)

#: groups first, in the order one reads a run; everything else after them
TREE_ORDER = ("data", "model", "head", "trainer", "callbacks", "logger", "paths")


def config_tree(cfg: DictConfig, order: Sequence[str] = TREE_ORDER):
    """A rich Tree with one branch per top-level key, each holding its YAML."""
    import rich.syntax
    import rich.tree

    tree = rich.tree.Tree("CONFIG", style="dim", guide_style="dim")
    keys = [k for k in order if k in cfg] + [k for k in cfg if k not in order]
    for key in keys:
        branch = tree.add(str(key), style="bold", guide_style="dim")
        value = cfg[key]
        text = OmegaConf.to_yaml(value, resolve=True) if isinstance(value, DictConfig) else value
        branch.add(rich.syntax.Syntax(str(text), "yaml", theme="ansi_dark", word_wrap=True))
    return tree


@rank_zero_only
def print_config_tree(cfg: DictConfig, save_to: str | Path | None = None) -> None:
    """Print the tree; also write it (without colours) to ``save_to`` when given."""
    import rich
    from rich.console import Console

    tree = config_tree(cfg)
    rich.print(tree)
    if save_to is not None:
        Path(save_to).parent.mkdir(parents=True, exist_ok=True)
        with open(save_to, "w") as handle:
            Console(file=handle, color_system=None, width=100).print(tree)


@rank_zero_only
def warn_if_untagged(cfg: DictConfig) -> None:
    if not cfg.get("tags"):
        log.warning("No tags set: add some, e.g. `tags=[head_study]`, to find this run later.")


#: warnings about a library's own internals, printed on every fit, that no user can act on
LIBRARY_NOISE = (
    # Lightning 2.6's _pytree checks torch's deprecated LeafSpec (torch >= 2.10)
    r"`isinstance\(treespec, LeafSpec\)` is deprecated",
)


#: the loggers Lightning gives a stderr handler of their own at import (the last two also
#: stop propagating when nothing configured logging before)
LIGHTNING_LOGGERS = ("lightning", "lightning.fabric", "lightning.pytorch")


def silence_library_noise() -> None:
    """Keep the terminal for what the run says (a one-line error stays one line)."""
    for message in LIBRARY_NOISE:
        warnings.filterwarnings("ignore", message=message)
    route_lightning_logs()


def route_lightning_logs() -> None:
    """Send Lightning's messages through the run's logging (Hydra's console and log file).

    Lightning's own console handler doubles every line under Hydra's. Imported before
    logging is configured (by a notebook, or any module that imports it
    first), Lightning writes to stderr through a handler of its own and bypasses the run's
    handlers: its INFO lines would land on stderr after a one-line error."""
    if not logging.getLogger().hasHandlers():
        return  # nothing configured: Lightning's own handler is the only one that prints
    for name in LIGHTNING_LOGGERS:
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            if type(handler) is logging.StreamHandler:
                logger.removeHandler(handler)
        logger.propagate = True


def apply_extras(cfg: DictConfig) -> None:
    """What ``cfg.extras`` switches on; nothing when the key is absent or null. Library
    noise is silenced always."""
    silence_library_noise()
    extras = cfg.get("extras")
    if not extras:
        return
    if extras.get("warn_no_tags"):
        warn_if_untagged(cfg)
    if extras.get("print_config"):
        output_dir = cfg.get("paths", {}).get("output_dir")
        print_config_tree(cfg, Path(output_dir) / "config_tree.log" if output_dir else None)
