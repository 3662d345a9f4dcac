"""Command-line overrides: how one is split into key and value, and the one line shown
when eval or predict is started without a checkpoint. (A checkpoint's own run config is put
under the command line's overrides after Hydra composes: ``headlab.run.from_checkpoint``.)
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

log = logging.getLogger(__name__)

_KEY = re.compile(r"^[+~]*([^=]+)")


def split_override(override: str) -> tuple[str, str]:
    """``+model.x=1`` -> ``("model.x", "1")``; ``~trainer.plugins`` -> ``("trainer.plugins", "")``.

    The one parser of a command-line override: run overrides, sweep summaries and the study
    all split them here.

    >>> split_override("++trainer.max_epochs=2")
    ('trainer.max_epochs', '2')
    """
    match = _KEY.match(override)
    key = match.group(1).strip() if match else override
    return key, override.partition("=")[2]


def override_key(override: str) -> str:
    """``+model.x=1`` -> ``model.x``; ``head=sigmoid`` -> ``head``."""
    return split_override(override)[0]


#: flags that print something instead of running: they need no checkpoint
_INFO_FLAGS = ("--help", "-h", "--hydra-help", "--cfg", "-c", "--info", "-i", "--shell-completion")


def missing_ckpt_message(args: Sequence[str], script: str) -> str | None:
    """The one line to print when ``script`` would run without ``ckpt_path=``, else None.

    Checked on the command line before Hydra composes: the config's ``ckpt_path: ???`` would
    otherwise end in a traceback from the config printer, after an empty run folder is made.
    """
    if any(a in _INFO_FLAGS or a.startswith(("--cfg=", "--info=")) for a in args):
        return None
    if any(override_key(a) == "ckpt_path" and a.partition("=")[2] for a in args if "=" in a):
        return None
    return (
        f"{script} needs a checkpoint: pass ckpt_path=logs/train/runs/<time>/checkpoints/"
        "<name>.ckpt (a run's best or last checkpoint)."
    )
