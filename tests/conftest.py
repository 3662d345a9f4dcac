from __future__ import annotations

import atexit
import copy
import functools
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra._internal.config_loader_impl import ConfigLoaderImpl
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from omegaconf import DictConfig

from headlab.run.dirs import register
from tests import launch
from tests.idx import write_tiny_mnist

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"
REAL_MNIST = ROOT / "data"

os.environ.setdefault("HEADLAB_ROOT", str(ROOT))
# the shift sets' disk cache (headlab.shift.cache): this process's own folder, never the
# user's ~/.cache; the scripts the tests start inherit it
os.environ["HEADLAB_CACHE_DIR"] = tempfile.mkdtemp(prefix="headlab-test-cache-")
atexit.register(shutil.rmtree, os.environ["HEADLAB_CACHE_DIR"], ignore_errors=True)
# the tests' own tensors are small: a second intra-op thread costs more than it gives (the
# scripts they start keep torch's default)
torch.set_num_threads(1)
register()  # the config resolvers (${unique_dir:}, ${folder_classes:}, ...), as the scripts do


@pytest.fixture(scope="session")
def tiny_mnist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding MNIST/raw/ with 600 train and 200 test learnable images."""
    return write_tiny_mnist(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="session")
def compare_sweep(tiny_mnist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One real ``experiment=compare_heads`` sweep shared by the report and board tests:
    heads softmax and soft x seeds 1, 2, one epoch on tiny data, ``logger=many`` into a store
    under the returned root (``<root>/store/mlflow.db``), the sweep in ``<root>/sweep`` with
    its report. No off-distribution analysis (``shift=none``): those tests run their own. The
    jobs run one after the other in this process's warm fork: joblib's workers would import
    torch and Lightning afresh (~10 s of CPU each)."""
    root = tmp_path_factory.mktemp("compare_sweep")
    env = {**os.environ, "HEADLAB_ROOT": str(root), "PYTHONPATH": str(ROOT / "src")}
    result = launch.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "train.py"),
            "experiment=compare_heads",
            "hydra.launcher.n_jobs=1",  # joblib runs one job at a time in this process
            "head=softmax,soft",
            "seed=1,2",
            "shift=none",
            "logger=many",
            f"logger.mlflow.tracking_uri=sqlite:///{root}/store/mlflow.db",
            f"logger.mlflow.artifact_location={root}/store/artifacts",
            f"data.data_dir={tiny_mnist}",
            "data.val_size=100",
            "data.batch_size=50",
            "trainer.max_epochs=1",
            "log_grad_every_n_steps=2",
            "calibration.bootstrap=50",
            "hydra.sweep.dir=" + str(root / "sweep"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return root


@functools.cache
def _composed(config_name: str, overrides: tuple[str, ...]) -> DictConfig:
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        return compose(config_name=config_name, overrides=list(overrides))


def _selects_a_config(override: Override) -> bool:
    """Whether Hydra reads ``override`` while building the defaults list (a config group or
    a Hydra setting) rather than applying it to the composed config afterwards."""
    key = override.key_or_group
    return override.is_hydra_override() or (CONFIGS / key).is_dir() or override.package is not None


def compose_config(config_name: str, overrides: Sequence[str] = ()) -> DictConfig:
    """Hydra's compose of ``configs/<config_name>``, ~0.4 s each. Hydra composes the config
    groups an override list selects and then applies the list's value overrides
    (``key=value``, ``+key``, ``~key``) to the result, in order; here the first half is done
    once per distinct choice of groups and the second half with Hydra's own function on a
    copy, so the ~200 override lists of the fast tier compose ~60 times.
    ``tests/test_model.py`` checks the two give the same config."""
    parsed = OverridesParser.create().parse_overrides(list(overrides))
    groups = tuple(o.input_line for o in parsed if _selects_a_config(o))
    cfg = copy.deepcopy(_composed(config_name, groups))
    ConfigLoaderImpl._apply_overrides_to_config(
        [o for o in parsed if not _selects_a_config(o)], cfg
    )
    return cfg


def compose_train(overrides: Sequence[str] = ()) -> DictConfig:
    return compose_config("train.yaml", overrides)


@pytest.fixture
def tiny_cfg(tiny_mnist: Path, tmp_path: Path) -> Callable[..., DictConfig]:
    """The real train.yaml, shrunk to tiny data and quick epochs, writing into tmp_path."""

    def make(*overrides: str) -> DictConfig:
        # the off-distribution analysis (~4 s of CPU a run) only where a test asks for it
        wants_shift = any(o.startswith(("shift=", "shift.")) for o in overrides)
        cfg = compose_train(
            [
                *([] if wants_shift else ["shift=none"]),
                f"data.data_dir={tiny_mnist}",
                "data.val_size=100",
                "data.batch_size=50",
                "data.eval_batch_size=100",
                "trainer.max_epochs=2",
                "trainer.log_every_n_steps=5",
                "callbacks.rich_progress_bar=null",
                "callbacks.rich_model_summary=null",
                *overrides,
            ]
        )
        if not any(o.startswith("paths.output_dir=") for o in overrides):
            cfg.paths.output_dir = str(tmp_path)  # after composing: one composition per test
        return cfg

    return make


def mnist_available() -> bool:
    raw = REAL_MNIST / "MNIST" / "raw"
    return all((raw / f"{p}-images-idx3-ubyte").is_file() for p in ("train", "t10k"))


#: files whose tests share a session fixture that takes a minute to build (``compare_sweep``):
#: under ``--dist loadfile`` each file went to whichever worker was free, and a fixture is
#: built once per worker that asks for it
SHARED_FIXTURE_FILES = {"tests/test_boards.py": "tests/test_report.py"}


def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """``--dist loadfile``, with the files of ``SHARED_FIXTURE_FILES`` sent as one unit."""
    if config.getoption("dist") != "loadfile":
        return None  # xdist's own
    from xdist.scheduler import LoadFileScheduling

    class LoadFileSharingFixtures(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            file = super()._split_scope(nodeid)
            return SHARED_FIXTURE_FILES.get(file, file)

    return LoadFileSharingFixtures(config, log)
