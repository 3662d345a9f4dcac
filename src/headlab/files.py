"""Files a run promises to leave behind, written so a crash never leaves half of one, and
readable by the other users of a shared file system (0644 / 0755 under the usual umask 022).

Free of torch (``plain_number`` asks a value for ``.item`` instead): the sweep modules and
the layout use it, and Hydra loads them at every start.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

FILE_MODE, DIR_MODE = 0o666, 0o777  # before the umask, as open() and mkdir() create them


def umask() -> int:
    """The process's umask (read from /proc where it is, without changing it)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)  # elsewhere: set and put back at once
    os.umask(mask)
    return mask


def make_temp_dir(parent: str | Path, prefix: str) -> Path:
    """A new folder in ``parent`` with the mode ``mkdir`` would give it (``mkdtemp``'s is
    0700: nobody else could read what is renamed from it)."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    path.chmod(DIR_MODE & ~umask())
    return path


def atomic_write(path: str | Path, write: Callable[[IO], Any], mode: str = "w") -> None:
    """Write to a temporary file beside ``path`` and rename it over: readers see old or new.

    The file gets the mode ``open`` would give a new file (``mkstemp``'s is 0600)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode) as handle:
            os.fchmod(handle.fileno(), FILE_MODE & ~umask())
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        stop = stop_behind(err)
        if stop is not None:
            raise stop from None
        raise


def stop_behind(err: BaseException) -> BaseException | None:
    """The stop request (Ctrl-C, SIGTERM: a ``BaseException`` that is no ``Exception``) that
    the error ``err`` was raised while handling, if any. A writer interrupted mid-file can
    fail in its own clean-up (torch.save's zip writer: "unexpected pos"), and that error
    then hid the Ctrl-C: the run was reported failed, with a traceback, not interrupted."""
    if not isinstance(err, Exception):
        return None
    seen = err.__context__
    while seen is not None:
        if not isinstance(seen, Exception):
            return seen
        seen = seen.__context__
    return None


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write(path, lambda handle: handle.write(text))


def plain_number(value: Any) -> Any:
    """Tensors and numpy scalars as JSON numbers; non-finite floats as strings JSON accepts."""
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value
