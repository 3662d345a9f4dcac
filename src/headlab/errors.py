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
