"""The two head studies compose to the promised sweeps (which heads, seeds, data, epochs)."""

from __future__ import annotations

from hydra import compose, initialize_config_dir

from headlab.heads import HEADS
from tests.conftest import CONFIGS


def sweep(experiment: str):
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        return compose("train.yaml", [f"experiment={experiment}"], return_hydra_config=True)


def test_compare_multilabel_is_four_heads_times_three_seeds_on_multilabel_mnist():
    cfg = sweep("compare_multilabel")
    assert str(cfg.hydra.mode) == "RunMode.MULTIRUN"
    params = cfg.hydra.sweeper.params
    assert params.head.split(",") == ["sigmoid", "asl", "sigmoid_focal", "softmax"]
    assert params.seed == "1,2,3"
    assert cfg.data._target_.endswith("MultiLabelMNISTDataModule") and cfg.trainer.max_epochs == 3
    assert all(head in HEADS for head in params.head.split(","))


def test_compare_heads_includes_focal_and_poly():
    heads = sweep("compare_heads").hydra.sweeper.params.head.split(",")
    assert {"focal", "poly"} <= set(heads) and all(head in HEADS for head in heads)


def test_the_reports_heads_table_describes_every_head_the_study_runs():
    """The report's legend is its own table: a head added to the study must be described
    (sigmoid_softmax once showed up as '? | ?')."""
    from headlab.heads import HEADS as DESCRIBED
    from headlab.sweeps.study.legend import heads_table

    heads = sweep("compare_heads").hydra.sweeper.params.head.split(",")
    assert set(heads) <= set(DESCRIBED)
    assert not any("?" in row for row in heads_table(heads))


def test_study_table_gives_mean_and_sample_std_per_head_over_completed_jobs(tmp_path):
    import numpy as np

    from headlab.sweeps.study.table import study_table

    summary = tmp_path / "summary.csv"
    summary.write_text(
        "job,status,head,seed,overrides,test/map,test/ece\n"
        "0,completed,asl,1,head=asl seed=1,0.90,0.01\n"
        "1,completed,asl,2,head=asl seed=2,0.96,0.03\n"
        "2,failed,asl,3,head=asl seed=3,0.10,0.50\n"
        "3,completed,softmax,1,head=softmax seed=1,0.80,0.20\n"
    )
    table = study_table(summary, ("test/map", "test/ece")).splitlines()
    asl = [0.90, 0.96]
    assert table[2] == (
        f"| `asl` | 2 | {np.mean(asl):.4f} ± {np.std(asl, ddof=1):.4f} | 0.0200 ± 0.0141 |"
    )
    assert table[3] == "| `softmax` | 1 | 0.8000 | 0.2000 |"  # one run: no spread shown
    assert len(table) == 4  # the failed job is left out
