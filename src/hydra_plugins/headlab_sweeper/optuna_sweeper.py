"""The Hydra sweeper ``hydra/sweeper=headlab_optuna``; the search itself is
``headlab.sweeps.optuna_search`` (imported on use: Hydra imports this module at every start)."""

from __future__ import annotations

from typing import Any

from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


class HeadlabOptunaSweeper(Sweeper):
    """Optuna ask-and-tell with pruning, a shared storage and many workers."""

    def __init__(self, **settings: Any) -> None:
        from headlab.sweeps.optuna_search import OptunaSearch

        self.search = OptunaSearch(**settings)

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.hydra_context = hydra_context
        self.config = config
        self.search.setup(
            hydra_context=hydra_context, task_function=task_function, config=config, sweeper=self
        )

    def sweep(self, arguments: list[str]) -> Any:
        return self.search.sweep(arguments)
