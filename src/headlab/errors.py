"""Errors whose message already says everything the user needs.

A run that fails with one of these prints the message without a traceback: the cause is
the user's input or data, not the code, and the message names the key or file to fix.
"""

from __future__ import annotations


class RunError(Exception):
    """Base of the errors shown as a message only."""


class ConfigValueError(RunError, ValueError):
    """A config value that cannot work (batch size 0, negative lr, ...)."""


class CheckpointError(RunError, FileNotFoundError):
    """``ckpt_path`` names no file, or a file that is not a Lightning checkpoint."""


class Terminated(SystemExit):
    """SIGTERM outside Lightning's loops (which handle it themselves, at a batch boundary)."""


def interruption_signal(exception: BaseException) -> str | None:
    """``"SIGINT"``/``"SIGTERM"`` when ``exception`` is how an interruption surfaced, else None.

    The one place that decides "interrupted, not failed": the run's outcome and the
    checkpoint callback (which refreshes ``last.ckpt`` only then) both ask here.
    """
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    if isinstance(exception, (Terminated, SIGTERMException)):
        return "SIGTERM"
    if isinstance(exception, KeyboardInterrupt):
        return "SIGINT"
    # Lightning turns Ctrl-C inside fit/test into sys.exit(1), raised while handling it
    if isinstance(exception, SystemExit) and isinstance(exception.__context__, KeyboardInterrupt):
        return "SIGINT"
    return None
