"""Eval, predict and resume compose from the checkpoint's own config, under yours.

Whoever evaluates or resumes a checkpoint means that run's model, head and data, not the
defaults. After Hydra composed the command line, ``apply_run_config`` puts the run's nodes
(``headlab.checkpoints.config.run_config``: the config inside the checkpoint, or for an older
checkpoint the one its run folder kept) in place of the composed ones:

* eval and predict (``train=false``) take ``data``, ``model``, ``head`` and ``seed``; their
  trainer, logger, callbacks and paths stay their own. A key you give (``data.batch_size=512``,
  ``head=softmax``) wins; the checkpoint's identity check refuses a head or data it was not
  trained with.
* a resume (``train=true`` with ``ckpt_path``) also takes ``trainer`` and ``callbacks``, so
  precision, clipping, accumulation, batch limits and determinism are those of the run it
  continues. A key you give must equal the run's, except ``RESUME_MAY_CHANGE`` (how long to
  train, progress display, where the data lies): a changed one is refused in one line.

Nothing of an experiment's sweep settings comes back: Hydra's own node is not in the task
config. ``use_run_config=false`` turns all of this off.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from headlab.checkpoints.config import run_config
from headlab.errors import ConfigValueError
from headlab.run.overrides import override_key

log = logging.getLogger(__name__)

#: what decides the weights' meaning: eval and predict take these from the checkpoint
RUN_KEYS = ("data", "model", "head", "seed")
#: a resume continues the same run: its trainer and callbacks too
RESUME_KEYS = (*RUN_KEYS, "trainer", "callbacks")
#: keys a resume may change: they decide how long it goes on, what it shows, where data lies
RESUME_MAY_CHANGE = (
    "trainer.max_epochs",
    "trainer.max_steps",
    "trainer.max_time",
    "trainer.enable_progress_bar",
    "trainer.enable_model_summary",
    "trainer.log_every_n_steps",
    "callbacks.rich_progress_bar",
    "callbacks.rich_model_summary",
    "data.data_dir",
    "data.root",
)
_ABSENT = object()


def _dotted(key: str) -> str:
    """``model/backbone`` (a nested group) -> ``model.backbone``."""
    return key.replace("/", ".").partition("@")[0]


def _under(key: str, tops: Iterable[str]) -> bool:
    return any(key == top or key.startswith(f"{top}.") for top in tops)


def raw_value(cfg: DictConfig, key: str) -> Any:
    """The value at ``key`` with its interpolations unresolved, or ``_ABSENT``."""
    parent_key, _, last = key.rpartition(".")
    parent = OmegaConf.select(cfg, parent_key, default=None) if parent_key else cfg
    if not isinstance(parent, DictConfig) or last not in parent:
        return _ABSENT
    return OmegaConf.to_container(parent, resolve=False)[last]


def _shown(value: Any) -> str:
    return "(absent)" if value is _ABSENT else repr(value)


def refuse_changes(cfg: DictConfig, stored: DictConfig, given: Sequence[str], source: str) -> None:
    """One line naming every key of ``given`` a resume may not change, when one differs."""
    changed = [
        f"{key}: {_shown(raw_value(stored, key))} -> {_shown(raw_value(cfg, key))}"
        for key in given
        if _under(key, RESUME_KEYS)
        and not _under(key, RESUME_MAY_CHANGE)
        and raw_value(stored, key) != raw_value(cfg, key)
    ]
    if changed:
        raise ConfigValueError(
            f"A resume continues the run of {source} as it was configured, but the command line "
            f"changes {'; '.join(changed)}. Drop these overrides, or start a new run without "
            f"ckpt_path (a resume may change only {', '.join(RESUME_MAY_CHANGE)})."
        )


def apply_run_config(cfg: DictConfig, overrides: Sequence[str]) -> DictConfig:
    """``cfg`` with the checkpoint's run nodes in place of the composed ones (see module doc).

    ``overrides`` are the command line's (Hydra's ``overrides.task``): the keys they name win
    over the checkpoint's, for a resume only where ``RESUME_MAY_CHANGE`` allows.
    """
    ckpt = cfg.get("ckpt_path")
    if not ckpt or not cfg.get("use_run_config", True):
        return cfg
    resume = bool(cfg.get("train", False))
    stored, source = run_config(Path(str(ckpt)).expanduser())
    if stored is None:
        log.warning(
            "%s carries no run config and lies in no run folder: composed from the command "
            "line alone (its head and data are still checked when it loads).",
            ckpt,
        )
        return cfg
    keys = RESUME_KEYS if resume else RUN_KEYS
    given = [_dotted(override_key(o)) for o in overrides]
    if resume:
        refuse_changes(cfg, stored, given, source)
    taken = {}
    for top in keys:
        if top not in stored or (not resume and top in given):  # a whole group given: yours
            continue
        node = OmegaConf.create({top: raw_value(stored, top)})
        for key in (k for k in given if k.startswith(f"{top}.")):
            value = raw_value(cfg, key)
            if value is _ABSENT:  # ~key
                parent, _, last = key.rpartition(".")
                holder = OmegaConf.select(node, parent)
                if isinstance(holder, DictConfig):
                    holder.pop(last, None)
            else:
                OmegaConf.update(node, key, value, merge=False, force_add=True)
        taken[top] = node[top]
    with open_dict(cfg):
        for top, node in taken.items():
            cfg[top] = node
    log.info("Composed %s from %s under the command line's overrides.", ", ".join(taken), source)
    return cfg


def save_composed(cfg: DictConfig) -> None:
    """Rewrite the job's ``.hydra/config.yaml`` so that it shows what really ran."""
    from hydra.core.hydra_config import HydraConfig

    hydra = HydraConfig.get()
    if hydra.output_subdir is None:
        return
    OmegaConf.save(cfg, Path(hydra.runtime.output_dir) / hydra.output_subdir / "config.yaml")


def composed_from_checkpoint(task: Callable[[DictConfig], Any]) -> Callable[[DictConfig], Any]:
    """``task`` run on the checkpoint's run config under the command line (in a Hydra job),
    after ``extras`` printed that config; a refused resume ends as a failed run (one line,
    ``metrics.json`` says ``failed``)."""
    from hydra.core.hydra_config import HydraConfig

    from headlab.run.extras import apply_extras
    from headlab.run.outcome import record_outcome

    @record_outcome
    def prepare(cfg: DictConfig) -> DictConfig:
        if cfg.get("ckpt_path") and HydraConfig.initialized():
            before = OmegaConf.to_yaml(cfg)
            cfg = apply_run_config(cfg, list(HydraConfig.get().overrides.task))
            if OmegaConf.to_yaml(cfg) != before:
                save_composed(cfg)
        apply_extras(cfg)
        return cfg

    @functools.wraps(task)
    def run(cfg: DictConfig) -> Any:
        return task(prepare(cfg))

    return run
