"""Bad input fails early with a message that names the key or the file (issue 7)."""

from __future__ import annotations

import errno
import json
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from hydra.errors import MissingConfigException
from omegaconf import OmegaConf

from headlab.checkpoints.files import check_checkpoint
from headlab.checkpoints.identity import check_identity
from headlab.data.integrity import MNISTFileCorrupt, check_idx_file
from headlab.data.mnist import MNIST_FILES, MNISTDataModule
from headlab.errors import CheckpointError, ConfigValueError, RunError
from headlab.heads import HEADS, SoftLabelCE
from headlab.models.backbones import MLP
from headlab.models.classifier import Classifier, TargetKindMismatch, check_target
from headlab.run.dirs import unique_dir
from headlab.run.outcome import run_task
from headlab.run.train import build, train
from tests.conftest import REAL_MNIST, compose_train, mnist_available
from tests.idx import write_tiny_mnist


@pytest.mark.parametrize(
    ("group", "option", "known"),
    [
        ("head", "tanh", "softmax"),
        ("data", "cifar", "mnist"),
        ("model", "vit", "cnn"),
        ("trainer", "tpu", "gpu"),
    ],
)
def test_unknown_group_option_gets_hydras_message_with_the_choices(group, option, known):
    with pytest.raises(MissingConfigException) as err:
        compose_train([f"{group}={option}"])
    assert f"Could not find '{group}/{option}'" in str(err.value)
    assert "Available options" in str(err.value) and known in str(err.value)


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("data.batch_size=0", "data.batch_size"),
        ("data.eval_batch_size=-5", "data.eval_batch_size"),
        ("model.optimizer.lr=0", "model.optimizer.lr"),
        ("model.optimizer.lr=-1e-3", "model.optimizer.lr"),
        ("head=soft head.smoothing=1.0", "head.smoothing"),
        ("head=soft head.smoothing=-0.1", "head.smoothing"),
        ("+data.max_digits=0", "data.max_digits"),
        ("+data.max_digits=11", "data.max_digits"),
        ("data.val_size=0", "data.val_size"),
    ],
)
def test_nonsense_numbers_fail_at_start_naming_the_key(tiny_cfg, tmp_path, override, key):
    cfg = tiny_cfg(*override.split())
    with pytest.raises(ConfigValueError, match=key.replace(".", r"\.")):
        train(cfg)
    written = json.loads((tmp_path / "metrics.json").read_text())
    assert written["status"] == "failed" and key in written["error"]
    assert not (tmp_path / "checkpoints").exists()  # nothing was built, let alone trained


def test_an_optimizer_argument_the_optimizer_does_not_take_is_named_with_the_fix(tiny_cfg):
    """The study's Adam is fused; RMSprop has no ``fused``: one line saying how to drop it."""
    from headlab.run.checks import validate

    fused = "+model.optimizer.fused=true"
    with pytest.raises(ConfigValueError) as err:
        validate(tiny_cfg(fused, "model.optimizer._target_=torch.optim.RMSprop"))
    assert str(err.value) == (
        "Invalid config: torch.optim.RMSprop takes no fused; drop it with ~model.optimizer.fused"
    )
    validate(tiny_cfg("model.optimizer._target_=torch.optim.RMSprop"))  # the default: no fused
    validate(tiny_cfg(fused, "model.optimizer._target_=torch.optim.SGD"))  # SGD has fused too


def test_val_size_larger_than_the_train_set_fails_before_training(tiny_cfg, tmp_path):
    with pytest.raises(ValueError, match=r"data\.val_size must lie in 1\.\.599"):
        train(tiny_cfg("data.val_size=600"))
    assert json.loads((tmp_path / "metrics.json").read_text())["status"] == "failed"
    assert not (tmp_path / "checkpoints").exists()


def test_missing_checkpoint_is_named(tiny_cfg, tmp_path):
    missing = tmp_path / "nope" / "last.ckpt"
    with pytest.raises(CheckpointError, match=f"ckpt_path={missing} does not exist"):
        build(tiny_cfg(f"ckpt_path={missing}"))


@pytest.mark.parametrize("content", ["text", "truncated", "tensor"])
def test_file_that_is_not_a_checkpoint_is_named(tmp_path, content):
    path = tmp_path / "model.ckpt"
    if content == "text":
        path.write_text("not a checkpoint\n")
    else:
        torch.save(
            {"state_dict": {"w": torch.zeros(100)}} if content == "truncated" else torch.zeros(3),
            path,
        )
        if content == "truncated":
            path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(CheckpointError, match=f"ckpt_path={path} is"):
        check_checkpoint(path)


def damaged_copy(tmp_path: Path, name: str, damage) -> Path:
    root = write_tiny_mnist(tmp_path / "damaged")
    path = root / "MNIST" / "raw" / name
    path.write_bytes(damage(path.read_bytes()))
    return root


@pytest.mark.parametrize(
    ("name", "damage", "problem"),
    [
        ("train-images-idx3-ubyte", lambda b: b[:-1000], "truncated"),
        ("t10k-labels-idx1-ubyte", lambda b: b + b"\0", "header promises"),
        ("train-labels-idx1-ubyte", lambda b: b"\x1f\x8b" + b[2:], "IDX ubyte header"),
        ("train-labels-idx1-ubyte", lambda b: b[:-1] + b"\x2a", "label 42"),
    ],
)
def test_damaged_data_file_is_named_and_nothing_trains(tmp_path, name, damage, problem):
    root = damaged_copy(tmp_path, name, damage)
    datamodule = MNISTDataModule(str(root), download=False)
    with pytest.raises(MNISTFileCorrupt) as err:
        datamodule.prepare_data()
    assert name in str(err.value) and problem in str(err.value)
    assert "Nothing was trained" in str(err.value)


def test_full_size_file_with_wrong_md5_is_named(tmp_path):
    # the official size with a valid header but zero pixels: only the MD5 can tell
    path = tmp_path / "t10k-images-idx3-ubyte"
    header = bytes([0, 0, 8, 3]) + (10000).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2
    with path.open("wb") as handle:
        handle.write(header)
        handle.truncate(len(header) + 10000 * 28 * 28)
    with pytest.raises(MNISTFileCorrupt, match=r"MD5 is .*official file's is 2646ac64"):
        check_idx_file(path)


@pytest.mark.slow
@pytest.mark.skipif(not mnist_available(), reason="MNIST files are not in data/MNIST/raw")
def test_real_mnist_files_pass_the_checks_and_a_changed_byte_does_not(tmp_path):
    for name in MNIST_FILES:
        real = REAL_MNIST / "MNIST" / "raw" / name
        check_idx_file(real)  # the official MD5 (and for labels: every byte a digit)
        changed = tmp_path / name  # same size, one pixel or label byte different
        data = bytearray(real.read_bytes())
        data[-1] = (data[-1] + 1) % 10
        changed.write_bytes(bytes(data))
        with pytest.raises(MNISTFileCorrupt, match="MD5 is"):
            check_idx_file(changed)


def test_unique_dir_gives_every_caller_its_own_folder(tmp_path):
    wanted = str(tmp_path / "runs" / "2026-01-01_00-00-00_000000")
    got: list[str] = []
    threads = [threading.Thread(target=lambda: got.append(unique_dir(wanted))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(got)) == 8 and wanted in got
    assert all(Path(folder).is_dir() for folder in got)


def _raised(action) -> BaseException:
    try:
        action()
    except Exception as err:
        return err
    raise AssertionError("no error raised")


def _multirun_launch_error(tmp_path, monkeypatch) -> BaseException:
    from lightning.pytorch.strategies.launchers import _SubprocessScriptLauncher

    from headlab.run import distributed

    monkeypatch.setattr(distributed, "in_hydra_multirun", lambda: True)
    launcher = object.__new__(_SubprocessScriptLauncher)
    trainer = SimpleNamespace(strategy=SimpleNamespace(launcher=launcher))
    return _raised(lambda: distributed.check_launch(trainer))


USER_ERRORS = {
    "checkpoint_mismatch": lambda tmp, mp: _raised(
        lambda: check_identity({"head": "sigmoid"}, {"head": "softmax"}, "x.ckpt")
    ),
    "target_kind": lambda tmp, mp: _raised(
        lambda: check_target(torch.arange(4), "distribution", 10)
    ),
    "multirun_launch": _multirun_launch_error,
    "mnist_missing": lambda tmp, mp: _raised(
        MNISTDataModule(str(tmp), download=False).prepare_data
    ),
    "head_data": lambda tmp, mp: _raised(lambda: HEADS["sigmoid_nll"]().check_fits("multi_hot")),
}


@pytest.mark.parametrize("name", sorted(USER_ERRORS))
def test_user_errors_end_as_their_one_line_message_and_exit_1(name, tmp_path, monkeypatch):
    error = USER_ERRORS[name](tmp_path, monkeypatch)
    assert isinstance(error, RunError)

    def fails(cfg):
        raise error

    cfg = OmegaConf.create({"paths": {"output_dir": str(tmp_path)}})
    with pytest.raises(SystemExit) as ended:
        run_task(fails, cfg)
    # a str code: Python prints it to stderr and exits 1; no traceback
    assert ended.value.code == str(error) and len(str(error).splitlines()) == 1


def test_a_full_disk_under_a_wrapped_error_is_one_line_and_exit_1(tmp_path):
    def fails(cfg):
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError as err:  # how torch re-raises a failed write
            raise RuntimeError("PytorchStreamWriter failed writing file data/0") from err

    cfg = OmegaConf.create({"paths": {"output_dir": str(tmp_path)}})
    with pytest.raises(SystemExit) as ended:
        run_task(fails, cfg)
    assert ended.value.code == (
        f"No space left on device while writing into {tmp_path}: free space there or point "
        "paths.log_dir at another disk, then resume from the run's checkpoints/last.ckpt if it "
        "has one (ckpt_path=...)."
    )
    with pytest.raises(RuntimeError):  # anything else keeps its traceback
        run_task(lambda cfg: (_ for _ in ()).throw(RuntimeError("a bug")), cfg)


def test_a_target_kind_mismatch_names_the_argument_that_exists():
    error = _raised(lambda: check_target(torch.full((4, 10), 0.1), "index", 10))
    assert str(error) == (
        "the model expects 'index' targets but got 'distribution' targets (torch.float32, "
        "shape (4, 10)): the model takes its kinds from the data module's target_kind (build "
        "it with headlab.run.train.build_model(cfg, datamodule)); a Classifier built by hand "
        "takes Classifier(..., target_kind='distribution'), or pass targets of kind 'index'."
    )


def test_a_bare_soft_label_model_takes_the_kind_of_its_first_batch():
    """A Classifier built in Python, no data module: distribution targets train it."""
    import torch.nn.functional as F

    torch.manual_seed(0)
    model = Classifier(MLP(hidden=[8], dropout=0.0), SoftLabelCE())
    images, target = torch.randn(4, 1, 28, 28), torch.softmax(torch.randn(4, 10), dim=1)
    loss = model.training_step((images, target), 0)
    assert (model.target_kind, model.eval_target_kind) == ("distribution", "distribution")
    torch.testing.assert_close(loss, F.cross_entropy(model(images), target))
    with pytest.raises(TargetKindMismatch):  # fixed from then on: an index batch contradicts it
        model.training_step((images, torch.arange(4)), 1)
