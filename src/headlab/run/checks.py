"""Start-up checks of the composed config: a nonsense number fails before any data loads.

Each check names the config key, so the message says what to change on the command line.
Keys that a config does not have are skipped (e.g. ``data.max_digits`` exists only for the
multi-label data), so one table serves every data/model/head option.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from omegaconf import DictConfig, OmegaConf

from headlab.checkpoints.files import check_checkpoint
from headlab.errors import ConfigValueError
from headlab.heads import PARAMETER_CHOICES, PARAMETER_RULES

Check = tuple[str, Callable[[Any], bool], str]

CHECKS: tuple[Check, ...] = (
    ("data.batch_size", lambda v: v > 0, "must be > 0"),
    ("data.eval_batch_size", lambda v: v > 0, "must be > 0"),
    ("data.val_size", lambda v: v > 0, "must be > 0 (and smaller than the training set)"),
    ("data.max_digits", lambda v: 1 <= v <= 10, "must lie in 1..10"),
    ("model.optimizer.lr", lambda v: v > 0, "must be > 0"),
    ("model.optimizer.weight_decay", lambda v: v >= 0, "must be >= 0"),
    ("trainer.max_epochs", lambda v: v == -1 or v > 0, "must be > 0 (or -1: no limit)"),
    ("calibration.bootstrap", lambda v: v > 0 and v == int(v), "must be a whole number > 0"),
    ("calibration.min_bin_count", lambda v: v >= 1, "must be >= 1"),
    ("calibration.n_bins", lambda v: v >= 2 and v == int(v), "must be a whole number >= 2"),
    ("shift.samples", lambda v: v >= 10 and v == int(v), "must be a whole number >= 10"),
    ("shift.seed", lambda v: v == int(v), "must be a whole number"),
    (
        "shift.bootstrap",
        lambda v: v >= 0 and v == int(v),
        "must be a whole number >= 0 (0: no per-run intervals)",
    ),
    (
        "shift.ood_bootstrap",
        lambda v: v >= 0 and v == int(v),
        "must be a whole number >= 0 (0: no per-run intervals)",
    ),
    ("shift.level", lambda v: 0 < v < 1, "must lie in (0, 1)"),
)


#: the heads' own rules, read from the one table in ``headlab.heads``
CHECKS += tuple((f"head.{key}", ok, rule) for key, (ok, rule) in PARAMETER_RULES.items())

#: config keys that take one of a few names (null skipped, like a missing key)
CHOICES: tuple[tuple[str, tuple[str, ...]], ...] = tuple(
    (f"head.{key}", names) for key, names in PARAMETER_CHOICES.items()
)


def check_choices(cfg: DictConfig, choices: tuple[tuple[str, tuple[str, ...]], ...] = CHOICES):
    """Raise ``ConfigValueError`` naming every key whose value is not one of its names."""
    problems = [
        f"{key} must be null or one of {list(allowed)}, got {value!r}"
        for key, allowed in choices
        if (value := OmegaConf.select(cfg, key, default=None)) is not None and value not in allowed
    ]
    if problems:
        raise ConfigValueError("Invalid config: " + "; ".join(problems))


def check_numbers(cfg: DictConfig, checks: tuple[Check, ...] = CHECKS) -> None:
    """Raise ``ConfigValueError`` naming every key whose value cannot work."""
    problems = []
    for key, ok, rule in checks:
        value = OmegaConf.select(cfg, key, default=None)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            problems.append(f"{key} {rule}, got {value!r} (not a number)")
        elif not ok(value):
            problems.append(f"{key} {rule}, got {value!r}")
    if problems:
        raise ConfigValueError("Invalid config: " + "; ".join(problems))


#: keys that must be true or false (a string such as ``maybe`` would be truthy and pass)
BOOLEANS: tuple[str, ...] = (
    "train",
    "test",
    "model.compile",
    "data.hard_targets",
    "calibration.enabled",
    "calibration.method_intervals",
    "shift.enabled",
    "shift.digits",
    "shift.download",
    "shift.figures",
)


def check_booleans(cfg: DictConfig, keys: tuple[str, ...] = BOOLEANS) -> None:
    """Raise ``ConfigValueError`` naming every key that is set but not true/false."""
    problems = [
        f"{key} must be true or false, got {value!r}"
        for key in keys
        if (value := OmegaConf.select(cfg, key, default=None)) is not None
        and not isinstance(value, bool)
    ]
    if problems:
        raise ConfigValueError("Invalid config: " + "; ".join(problems))


def check_methods(cfg: DictConfig) -> None:
    """``calibration.methods``: a list of known post-hoc calibrators."""
    from headlab.calibration import METHODS

    methods = OmegaConf.select(cfg, "calibration.methods", default=None)
    if methods is None:
        return
    if isinstance(methods, str) or not OmegaConf.is_list(methods):
        methods = [methods]
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ConfigValueError(
            f"Invalid config: calibration.methods has unknown {unknown}; "
            f"the methods are {', '.join(METHODS)}"
        )


def check_optimizer_arguments(cfg: DictConfig) -> None:
    """Every ``model.optimizer`` key is an argument of its optimizer: experiment=compare_heads's
    ``fused: true`` would otherwise end a run with another optimizer (RMSprop has no
    ``fused``) in a traceback."""
    node = OmegaConf.select(cfg, "model.optimizer", default=None)
    if not OmegaConf.is_dict(node) or "_target_" not in node:
        return
    import inspect

    from hydra.utils import get_class

    try:
        optimizer = get_class(node._target_)
        accepted = inspect.signature(optimizer).parameters
    except Exception:  # not importable here: Hydra's own error says so when it is built
        return
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values()):
        return
    unknown = [k for k in node if not k.startswith("_") and k not in accepted]
    if unknown:
        drop = " ".join(f"~model.optimizer.{k}" for k in unknown)
        raise ConfigValueError(
            f"Invalid config: {node._target_} takes no {', '.join(unknown)}; drop it with {drop}"
        )


def shift_problems(block: dict[str, Any]) -> list[str]:
    """What is wrong with the ``shift`` block's keys and names, angles and pixels (its
    numbers and booleans are in ``CHECKS`` and ``BOOLEANS``), one entry per problem."""
    from headlab.calibration import METHODS
    from headlab.shift.corruptions import CORRUPTIONS
    from headlab.shift.scores import COMMON, SIGMOID_ONLY
    from headlab.shift.settings import CANVAS_FILLS, MAX_TRANSLATION, OOD_SETS, Settings

    known_keys = tuple(Settings.__dataclass_fields__)
    problems = [
        f"shift.{key} is not a setting; known: {', '.join(known_keys)}"
        for key in block
        if key not in known_keys
    ]
    names = {
        "corruptions": tuple(CORRUPTIONS),
        "ood": OOD_SETS,
        "methods": METHODS,
        "canvas_ood": CANVAS_FILLS,
        "interval_scores": COMMON + SIGMOID_ONLY,
    }
    for key, known in names.items():
        values = block.get(key) or ()
        bad = [v for v in ([values] if isinstance(values, str) else values) if v not in known]
        if bad:
            problems.append(f"shift.{key}: unknown {bad[0]!r}; known: {', '.join(known)}")
    for angle in block.get("rotation") or ():
        if not (is_number(angle) and 0 <= angle <= 360):
            problems.append(f"shift.rotation: angles lie in 0..360 degrees, got {angle}")
    for px in block.get("translation") or ():
        if not (is_number(px) and float(px).is_integer() and 0 <= px <= MAX_TRANSLATION):
            problems.append(f"shift.translation: whole pixels in 0..{MAX_TRANSLATION}, got {px}")
    return problems


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_shift(cfg: DictConfig) -> None:
    """The ``shift`` block: every problem in one line, then (enabled) the downloaded OOD sets
    it asks for, which fail in one line when they cannot be had."""
    node = OmegaConf.select(cfg, "shift", default=None)
    if node is None:
        return
    block = OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node
    problems = shift_problems(dict(block or {}))
    if problems:
        raise ConfigValueError("Invalid config: " + "; ".join(problems))
    from headlab.shift.sets import check_available
    from headlab.shift.settings import Settings

    data_dir = OmegaConf.select(cfg, "data.data_dir", default="data")
    check_available(Settings.from_config(block), data_dir)


def validate(cfg: DictConfig) -> None:
    """Everything that can be checked from the config alone, before anything is built."""
    check_numbers(cfg)
    check_booleans(cfg)
    check_choices(cfg)
    check_methods(cfg)
    check_optimizer_arguments(cfg)
    check_shift(cfg)
    if cfg.get("ckpt_path"):
        check_checkpoint(cfg.ckpt_path)
