"""Every run ends with a ``metrics.json`` whose ``status`` says how it ended.

``status`` is ``completed`` (written by ``train``), ``failed`` (any error; ``error`` holds
the message), ``interrupted`` (Ctrl-C / SIGTERM; ``signal`` says which) or ``pruned`` (an
Optuna trial stopped early by its pruner; its last validation metrics are kept). Sweep
summaries and scripts read only this file, so a crashed job is never mistaken for a
missing or still-running one.

Exit codes: 0 completed, 1 failed, 130 SIGINT, 143 SIGTERM (the shell's 128 + signal).
"""

from __future__ import annotations

import contextlib
import errno
import functools
import logging
import signal
import sys
from collections.abc import Callable, Iterator
from typing import Any

from omegaconf import DictConfig

from headlab.checkpoints.files import checkpoint_dir
from headlab.errors import RunError, Terminated, interruption_signal
from headlab.layout import read_metrics, write_metrics
from headlab.run.distributed import in_hydra_multirun

log = logging.getLogger(__name__)

EXIT_FAILED, EXIT_SIGINT, EXIT_SIGTERM = 1, 128 + signal.SIGINT, 128 + signal.SIGTERM


def pruned(exception: BaseException) -> bool:
    """Optuna's pruner stopped this trial (headlab.callbacks.pruning): an ending, not a failure."""
    optuna = sys.modules.get("optuna")  # only loaded when a search runs
    return optuna is not None and isinstance(exception, optuna.TrialPruned)


#: a write that failed for want of space: the user's to fix (free space, another folder)
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def disk_full(exception: BaseException) -> OSError | None:
    """The ``OSError`` (no space, quota exceeded) behind ``exception``, else None.

    Walks the cause/context chain: torch and Lightning re-raise a failed write as their own
    error, with the OS error underneath.
    """
    seen: set[int] = set()
    current: BaseException | None = exception
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in DISK_FULL:
            return current
        current = current.__cause__ or current.__context__
    return None


def disk_full_message(error: OSError, output_dir: str) -> str:
    where = error.filename or f"into {output_dir}"
    return (
        f"{error.strerror or 'No space left on device'} while writing {where}: free space "
        "there or point paths.log_dir at another disk, then resume from the run's "
        "checkpoints/last.ckpt if it has one (ckpt_path=...)."
    )


def user_errors() -> tuple[type[BaseException], ...]:
    """Errors whose message is the whole story: shown without a traceback."""
    from hydra.errors import ConfigCompositionException

    return (RunError, ConfigCompositionException)


def one_line(exception: BaseException, output_dir: str) -> str | None:
    """The message to show instead of a traceback, or None when a traceback is the story."""
    full = disk_full(exception)
    if full is not None:
        return disk_full_message(full, output_dir)
    if isinstance(exception, user_errors()):
        return " ".join(str(exception).split("\n"))  # one line, whatever the message held
    return None


def outcome_of(cfg: DictConfig, exception: BaseException) -> dict[str, Any]:
    """What ``metrics.json`` records for a run that did not complete."""
    name = interruption_signal(exception)
    outcome: dict[str, Any] = (
        {"status": "interrupted", "signal": name}
        if name
        else {"status": "failed", "error": f"{type(exception).__name__}: {exception}"}
    )
    if pruned(exception):
        kept = getattr(exception, "metrics", {})  # the last validation metrics
        outcome = {"status": "pruned", "reason": str(exception), **kept}
    if getattr(exception, "step", None) is not None:
        outcome["failed_step"] = exception.step
    folder = checkpoint_dir(cfg)
    last = folder / "last.ckpt" if folder else None
    outcome["last_ckpt_path"] = str(last) if last and last.is_file() else ""
    return outcome


def record_outcome(train: Callable[[DictConfig], dict[str, Any]]):
    """Decorate ``train``: on any exception write ``metrics.json`` with the status, re-raise.

    SIGTERM outside Lightning's loops (while building, between fit and test) would kill the
    process with no file; here it raises ``Terminated`` instead. Inside the loops Lightning's
    own handler is installed on top and stops at the next batch boundary.
    """

    @functools.wraps(train)
    def wrapper(cfg: DictConfig) -> dict[str, Any]:
        with sigterm_raises():
            try:
                return train(cfg)
            except BaseException as exception:
                if is_rank_zero() and not completed_before(cfg, exception):
                    outcome = outcome_of(cfg, exception)
                    try:
                        write_metrics(cfg.paths.output_dir, outcome)
                    except OSError as err:  # a full disk: the run's own error says it
                        log.warning("metrics.json not written: %s", err)
                raise

    return wrapper


def completed_before(cfg: DictConfig, exception: BaseException) -> bool:
    """An interruption after ``train`` wrote ``status: completed`` (while it published to the
    trackers, say) leaves that record: the run's results are whole, and saying otherwise would
    send a user to resume a finished run."""
    if interruption_signal(exception) is None:
        return False
    try:
        return read_metrics(cfg.paths.output_dir).get("status") == "completed"
    except (OSError, ValueError):
        return False


def is_rank_zero() -> bool:
    from lightning.fabric.utilities.rank_zero import rank_zero_only

    return getattr(rank_zero_only, "rank", 0) == 0


@contextlib.contextmanager
def sigterm_raises() -> Iterator[None]:
    """While active, SIGTERM raises ``Terminated`` unless another handler was put on top."""

    def handle(signum: int, frame: Any) -> None:
        # Lightning calls the previous handler too, after flagging a graceful stop at the
        # next batch boundary: then it is not ours to raise mid-step.
        if signal.getsignal(signal.SIGTERM) is handle:
            raise Terminated(EXIT_SIGTERM)

    try:
        previous = signal.signal(signal.SIGTERM, handle)
    except ValueError:  # not the main thread: signals are not ours to change
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def log_to_files(message: str) -> None:
    """``message`` as an error record in the run's log files only (Hydra's ``<task>.log``)."""
    record = log.makeRecord(log.name, logging.ERROR, __file__, 0, message, (), None)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)


def run_task(train: Callable[[DictConfig], dict[str, Any]], cfg: DictConfig) -> dict | None:
    """The task of ``scripts/train.py``: clear messages, exit codes, sweeps that go on.

    * a user error (bad value, damaged file, NaN loss) is logged as one message, no traceback;
    * an interruption exits with 130 (SIGINT) or 143 (SIGTERM);
    * in a multirun a failed job returns ``None`` so the next jobs still run (its
      ``metrics.json`` says ``failed``), and ``FailedJobs`` makes the sweep exit 1 at the end.
    """
    try:
        return train(cfg)
    except (KeyboardInterrupt, SystemExit) as exception:
        name = interruption_signal(exception)
        if name is None:
            raise
        log.error(
            "Interrupted by %s: %s holds metrics.json, and checkpoints/last.ckpt of the last "
            "completed epoch if one ended (resume: scripts/train.py ckpt_path=<that file>).",
            name,
            cfg.paths.output_dir,
        )
        raise SystemExit(EXIT_SIGTERM if name == "SIGTERM" else EXIT_SIGINT) from None
    except Exception as exception:
        if pruned(exception) and in_hydra_multirun():
            log.info("%s", exception)  # the sweeper tells the study; the sweep goes on
            return None
        message = one_line(exception, cfg.paths.output_dir)
        if in_hydra_multirun():
            shown = message or exception
            log.error("Job failed, the sweep goes on: %s", shown, exc_info=message is None)
            return None
        if message is None:
            raise
        log_to_files(message)  # the run's log keeps it; the terminal gets it once, on stderr
        raise SystemExit(message) from None  # printed to stderr, exit 1 (EXIT_FAILED)
