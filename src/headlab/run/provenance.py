"""Which code produced a run: the git commit of the source tree, recorded in metrics.json."""

from __future__ import annotations

import subprocess
from pathlib import Path

SOURCE = Path(__file__).resolve().parent


def _git(folder: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=folder, capture_output=True, text=True, timeout=10, check=True
    ).stdout.strip()


def git_commit(folder: Path = SOURCE) -> str:
    """Short commit hash, ``+dirty`` when tracked files changed; ``unknown`` outside git."""
    try:
        commit = _git(folder, "rev-parse", "--short=12", "HEAD")
        dirty = _git(folder, "status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{commit}+dirty" if dirty else commit
