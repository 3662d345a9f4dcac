"""Multi-process training under Hydra: refuse the one combination that silently goes wrong.

Lightning's default DDP launcher starts each extra process by re-running the script with
the same command line plus ``hydra.run.dir=<run folder>``. In a single run that keeps every
process in one folder. In a multirun the command line holds ``-m`` and the sweep, so each
extra process would start the whole sweep again in a second sweep folder. Spawned processes
(``start_method=spawn`` / ``ddp_spawn``) and SLURM tasks (hydra/launcher=slurm) do not re-run
the script and are fine.
"""

from __future__ import annotations

import lightning as L
from lightning.pytorch.strategies.launchers import _SubprocessScriptLauncher

from headlab.errors import RunError
from headlab.layout import in_multirun


class MultirunLaunchError(RunError, RuntimeError):
    """A multirun job asked for DDP processes started by re-running the script."""


def in_hydra_multirun() -> bool:
    """The running Hydra app is a multirun job (one owner: ``headlab.layout.in_multirun``)."""
    return in_multirun()


def check_launch(trainer: L.Trainer) -> None:
    """Fail before any process starts when a multirun job would re-run the script per device."""
    launcher = getattr(trainer.strategy, "launcher", None)
    if isinstance(launcher, _SubprocessScriptLauncher) and in_hydra_multirun():
        raise MultirunLaunchError(
            "DDP re-runs scripts/train.py for each extra process, and in a multirun (-m) that "
            "would start the whole sweep again. Spawn the processes instead "
            "(trainer.strategy.start_method=spawn, or trainer.strategy=ddp_spawn), "
            "or run the sweep with hydra/launcher=slurm (one SLURM task per device)."
        )
