"""A real one-epoch training on MNIST, when its files are in data/ (CI copies them)."""

from __future__ import annotations

import pytest

from headlab.run.train import train
from tests.conftest import REAL_MNIST, compose_train, mnist_available


@pytest.mark.slow
@pytest.mark.skipif(not mnist_available(), reason="MNIST files are not in data/MNIST/raw")
def test_one_epoch_on_real_mnist_beats_96_percent(tmp_path):
    cfg = compose_train(
        [
            f"data.data_dir={REAL_MNIST}",
            "trainer.max_epochs=1",
            "shift=none",
            f"paths.output_dir={tmp_path}",
            "callbacks.rich_progress_bar=null",
        ]
    )
    metrics = train(cfg)
    assert metrics["test/acc"] >= 0.96, metrics
    assert (tmp_path / "metrics.json").is_file()
