"""Command-line overrides: how one is split into key and value, and the one line shown
when eval or predict is started without a checkpoint. (A checkpoint's own run config is put
under the command line's overrides after Hydra composes: ``headlab.run.from_checkpoint``.)
"""

from __future__ import annotations

from collections.abc import Sequence

# the one parser of a command-line override (Hydra's); the names stay importable from here
from headlab.layout.overrides import override_key, split_override

__all__ = ["missing_ckpt_message", "override_key", "split_override"]


#: flags that print something instead of running: they need no checkpoint
_INFO_FLAGS = ("--help", "-h", "--hydra-help", "--cfg", "-c", "--info", "-i", "--shell-completion")


def missing_ckpt_message(args: Sequence[str], script: str) -> str | None:
    """The one line to print when ``script`` would run without ``ckpt_path=``, else None.

    Checked on the command line before Hydra composes: the config's ``ckpt_path: ???`` would
    otherwise end in a traceback from the config printer, after an empty run folder is made.
    """
    if any(a in _INFO_FLAGS or a.startswith(("--cfg=", "--info=")) for a in args):
        return None
    given = dict(split_override(a) for a in args if "=" in a)
    if given.get("ckpt_path"):
        return None
    return (
        f"{script} needs a checkpoint: pass ckpt_path=logs/train/runs/<time>/checkpoints/"
        "<name>.ckpt (a run's best or last checkpoint)."
    )
