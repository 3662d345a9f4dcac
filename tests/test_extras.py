"""run.extras: what every run does to library output before it starts."""

from __future__ import annotations

import io
import logging

import pytest

from headlab.run.extras import LIGHTNING_LOGGERS, route_lightning_logs


@pytest.fixture
def lightning_first():
    """Lightning's loggers as its import leaves them when nothing configured logging yet:
    a stderr handler of their own, not propagating; restored afterwards."""
    saved = {}
    for name in LIGHTNING_LOGGERS:
        logger = logging.getLogger(name)
        saved[name] = (list(logger.handlers), logger.propagate)
        logger.handlers = [logging.StreamHandler(io.StringIO())]
        logger.propagate = False
    root = logging.getLogger()
    root_handlers = list(root.handlers)
    yield root
    root.handlers = root_handlers
    for name, (handlers, propagate) in saved.items():
        logging.getLogger(name).handlers, logging.getLogger(name).propagate = handlers, propagate


def test_lightning_lines_reach_the_runs_handlers_once_logging_is_configured(lightning_first):
    seen = io.StringIO()
    lightning_first.handlers = [logging.StreamHandler(seen)]  # what Hydra's job logging adds
    route_lightning_logs()
    logging.getLogger("lightning.fabric.utilities.seed").warning("Seed set to 42")
    assert seen.getvalue() == "Seed set to 42\n"
    for name in LIGHTNING_LOGGERS:
        assert logging.getLogger(name).handlers == [] and logging.getLogger(name).propagate


def test_without_configured_logging_lightning_keeps_its_own_handler(lightning_first):
    lightning_first.handlers = []
    route_lightning_logs()
    for name in LIGHTNING_LOGGERS:
        assert len(logging.getLogger(name).handlers) == 1
        assert not logging.getLogger(name).propagate
