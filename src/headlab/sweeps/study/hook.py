"""Hydra callback: write the comparison report when a comparison sweep ends.

Kept light (the report's torch/matplotlib imports happen only at the sweep's end): Hydra
instantiates callbacks at every start, ``--help`` included.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

log = logging.getLogger(__name__)


class CompareReport(Callback):
    """``on_multirun_end``: ``sweeps.study.report.write_report(<sweep dir>)``; a report that cannot
    be written is logged, never fails the sweep whose runs are already on disk. The keyword
    arguments are ``sweeps.study.verdicts.ComparisonSettings.build``'s (margins, methods, ...),
    checked when the sweep starts: a bad margin fails before any job trains."""

    def __init__(self, **comparison: Any) -> None:
        from omegaconf import OmegaConf

        from headlab.sweeps.study.verdicts import ComparisonSettings

        plain = {
            k: OmegaConf.to_container(v) if OmegaConf.is_config(v) else v
            for k, v in comparison.items()
        }
        self.settings = ComparisonSettings.build(**plain)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from headlab.sweeps.study.report import report_or_error

        try:
            code, line = report_or_error(Path(config.hydra.sweep.dir), settings=self.settings)
        except Exception as err:  # the sweep's results stay; say why there is no report
            log.error("No comparison report: %s: %s", type(err).__name__, err)
            return
        (log.info if code == 0 else log.error)("Comparison report %s", line)
