"""Benchmark: a plain PyTorch loop against headlab's real Trainer configuration, same work.

Both sides train the same model (built from the same config) on the same in-memory tensors
with the same batch size, Adam, and one pass over the validation set per epoch. Each side
runs ``reps + 1`` epochs, as a real run does; the first epoch is the warm-up and
the median of the others is reported. The two alternate epoch by epoch in one process
(``Interleaved``). headlab's epoch is everything between two epoch starts: training,
validation, metrics, figures, checkpoints, TensorBoard writes.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import lightning as L
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from headlab.run.train import build

ROOT = Path(__file__).resolve().parents[1]
T0_ENV = "HEADLAB_BENCH_T0"
C = TypeVar("C", bound=L.Callback)
#: a Trainer with nothing of headlab's: no callbacks, logger, checkpoints or progress bar
BARE_LIGHTNING = [
    "callbacks=none",
    "logger=none",
    "~trainer.plugins",
    "++trainer.enable_progress_bar=false",
    "++trainer.enable_checkpointing=false",
]


def compose(overrides: list[str]) -> DictConfig:
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        return hydra_compose(config_name="train.yaml", overrides=overrides)


def plain_epoch(
    model: torch.nn.Module, optimizer, train, val, normalize, batch_size: int, device: torch.device
) -> None:
    """The hand-written baseline: shuffled index batches, normalise on the fly, Adam."""
    images, labels = train
    model.train()
    order = torch.randperm(len(images))
    for start in range(0, len(images), batch_size):
        index = order[start : start + batch_size]
        x = normalize(images[index].to(device, non_blocking=True))
        y = labels[index].to(device, non_blocking=True)
        loss = torch.nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        for start in range(0, len(val[0]), 1000):
            model(normalize(val[0][start : start + 1000].to(device)))
    if device.type == "cuda":
        torch.cuda.synchronize()


class PlainLoop:
    """The baseline's model, optimizer and data, built from the same config as headlab's."""

    def __init__(self, cfg: DictConfig, device: torch.device) -> None:
        datamodule = instantiate(cfg.data)
        datamodule.setup("fit")
        self.device = device
        self.model = instantiate(cfg.model).to(device)
        self.optimizer = self.model.optimizer_factory(self.model.parameters())  # the config's
        self.train = (datamodule.train_set.images, datamodule.train_set.targets)
        self.val = (datamodule.val_set.images, datamodule.val_set.targets)
        self.normalize = datamodule.normalize
        self.batch_size = cfg.data.batch_size

    @property
    def samples(self) -> int:
        return len(self.train[0])

    def timed_epoch(self) -> float:
        start = time.perf_counter()
        plain_epoch(
            self.model,
            self.optimizer,
            self.train,
            self.val,
            self.normalize,
            self.batch_size,
            self.device,
        )
        return time.perf_counter() - start


class Interleaved(L.Callback):
    """Runs one plain epoch before each headlab epoch and times both.

    Alternating the two in one process cancels the slow drift of a shared machine's speed
    (measured here: the same plain epoch took 1.9 s in one process and 2.6 s in the next).
    headlab's epoch runs from its start to the next plain epoch, or to the end of fitting.
    The first epoch of each is the warm-up and is left out of ``plain_s`` and ``headlab_s``.
    """

    def __init__(self, plain: PlainLoop) -> None:
        self.plain = plain
        self._plain: list[float] = []
        self._headlab: list[float] = []
        self._started: float | None = None

    @property
    def plain_s(self) -> list[float]:
        return self._plain[1:]

    @property
    def headlab_s(self) -> list[float]:
        return self._headlab[1:]

    def _stop_clock(self) -> None:
        if self._started is not None:
            self._headlab.append(time.perf_counter() - self._started)
            self._started = None

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._stop_clock()
        self._plain.append(self.plain.timed_epoch())
        self._started = time.perf_counter()

    def on_fit_end(self, trainer, pl_module) -> None:
        self._stop_clock()


def fit_with(overrides: list[str], max_epochs: int, make_callback: Callable[[DictConfig], C]) -> C:
    """One seeded ``Trainer.fit`` of the real config in a throw-away folder, with one extra
    callback, made from the composed config before the model (and returned after fitting)."""
    with tempfile.TemporaryDirectory() as out:
        cfg = compose(
            [
                *overrides,
                f"paths.output_dir={out}",
                f"trainer.max_epochs={max_epochs}",
                "++trainer.num_sanity_val_steps=0",
            ]
        )
        L.seed_everything(cfg.seed, verbose=False)
        callback = make_callback(cfg)
        datamodule, model, trainer = build(cfg)
        trainer.callbacks.append(callback)
        trainer.fit(model, datamodule=datamodule)
    return callback


def time_interleaved(overrides: list[str], reps: int, device: torch.device) -> Interleaved:
    """``reps`` timed epochs of the plain loop and of ``Trainer.fit``, after a warm-up."""
    return fit_with(overrides, reps + 1, lambda cfg: Interleaved(PlainLoop(cfg, device)))


class FirstStepClock(L.Callback):
    """Prints the seconds since the benchmark launched this process at the first training
    step, and the process's peak RSS whenever a stage ends (the last line is the run's)."""

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == 0 and T0_ENV in os.environ:
            print(f"FIRST_STEP_S={time.time() - float(os.environ[T0_ENV]):.3f}", flush=True)

    def teardown(self, trainer, pl_module, stage: str) -> None:
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"PEAK_RSS_MIB={rss:.0f}", flush=True)


def default_run(extra: list[str]) -> dict[str, float]:
    """`python scripts/train.py` for one epoch (fit, test, the post-test calibration
    analysis), timed from process start to its first training step, with the run's peak RSS
    and the seconds the post-test analysis took (``posthoc_seconds`` in its calibration.json)."""
    with tempfile.TemporaryDirectory() as out:
        path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
        env = {**os.environ, T0_ENV: repr(time.time()), "PYTHONPATH": path}
        result = subprocess.run(
            [
                sys.executable,
                str(ROOT / "scripts" / "train.py"),
                *extra,
                "+callbacks.first_step._target_=benchmarks.timing.FirstStepClock",
                "trainer.max_epochs=1",
                f"hydra.run.dir={out}",
            ],
            env=env,
            capture_output=True,
            text=True,
        )
        record_file = Path(out) / "calibration.json"
        record = json.loads(record_file.read_text()) if record_file.is_file() else {}
    if result.returncode:
        raise RuntimeError(f"the default run failed:\n{result.stderr[-3000:]}")
    values = {}
    for line in result.stdout.splitlines():
        key, _, value = line.partition("=")
        if key in ("FIRST_STEP_S", "PEAK_RSS_MIB"):
            values[key.lower()] = float(value)
    values["posthoc_s"] = float(record.get("posthoc_seconds", float("nan")))
    return values


class TestAccuracyStop(L.Callback):
    """Measures test accuracy after each epoch (time excluded) and stops at the target."""

    def __init__(self, target: float) -> None:
        self.target = target
        self.train_seconds, self.epochs, self.accuracy = 0.0, 0, 0.0
        self._epoch_start = 0.0

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._epoch_start = time.perf_counter()

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking:
            return
        self.train_seconds += time.perf_counter() - self._epoch_start
        self.epochs += 1
        datamodule = trainer.datamodule
        datamodule.setup("test")
        correct = 0
        was_training = pl_module.training
        pl_module.eval()
        with torch.no_grad():
            for images, labels in datamodule.test_dataloader():
                images = datamodule.normalize(images.to(pl_module.device))
                correct += (pl_module(images).argmax(1).cpu() == labels).sum().item()
        pl_module.train(was_training)
        self.accuracy = correct / len(datamodule.test_set)
        if self.accuracy >= self.target:
            trainer.should_stop = True


def time_to_accuracy(overrides: list[str], target: float, max_epochs: int) -> dict[str, Any]:
    stop = fit_with(overrides, max_epochs, lambda cfg: TestAccuracyStop(target))
    return {
        "target": target,
        "reached": stop.accuracy >= target,
        "test_acc": stop.accuracy,
        "epochs": stop.epochs,
        "train_seconds": round(stop.train_seconds, 2),
    }


def benchmark_model(
    model: str, device: str, reps: int, extra: list[str], breakdown: bool = False
) -> dict[str, Any]:
    accelerator = "gpu" if device == "cuda" else "cpu"
    overrides = [f"model={model}", f"trainer.accelerator={accelerator}", *extra]
    clock = time_interleaved(overrides, reps, torch.device(device))
    plain, headlab = statistics.median(clock.plain_s), statistics.median(clock.headlab_s)
    samples = clock.plain.samples
    row = {
        "model": model,
        "device": device,
        "batch_size": clock.plain.batch_size,
        "train_samples": samples,
        "plain_s": round(plain, 3),
        "headlab_s": round(headlab, 3),
        "ratio": round(headlab / plain, 3),
        "plain_samples_per_s": round(samples / plain),
        "headlab_samples_per_s": round(samples / headlab),
    }
    if breakdown:
        bare = time_interleaved([*overrides, *BARE_LIGHTNING], reps, torch.device(device))
        bare_s = statistics.median(bare.headlab_s)
        row["bare_lightning_s"] = round(bare_s, 3)
        row["bare_lightning_ratio"] = round(bare_s / statistics.median(bare.plain_s), 3)
    run = default_run(overrides)
    row["first_step_s"] = round(run["first_step_s"], 2)
    row["peak_rss_mib"] = round(run["peak_rss_mib"])
    row["posthoc_s"] = round(run["posthoc_s"], 2)
    return row


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="headlab vs a plain PyTorch loop")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--models", nargs="+", default=["mlp", "cnn"])
    parser.add_argument("--reps", type=int, default=5, help="timed epochs after the warm-up")
    parser.add_argument(
        "--breakdown",
        action="store_true",
        help="also time a bare Lightning Trainer (no callbacks, logger or checkpoints)",
    )
    parser.add_argument(
        "--time-to-accuracy",
        action="store_true",
        help="also train the cnn to 99%% test accuracy and report the time",
    )
    parser.add_argument(
        "--tta-max-epochs",
        type=int,
        default=10,
        help="give up --time-to-accuracy after this many epochs (reported as NOT reached)",
    )
    parser.add_argument(
        "--markdown",
        action="store_true",
        help="also print the results as a Markdown table (for docs/performance.md)",
    )
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides, e.g. data.data_dir=…")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no CUDA device here")
    rows = []
    for model in args.models:
        rows.append(benchmark_model(model, args.device, args.reps, args.overrides, args.breakdown))
        print(json.dumps(rows[-1]), flush=True)
    tta = None
    if args.time_to_accuracy:
        accelerator = "gpu" if args.device == "cuda" else "cpu"
        result = time_to_accuracy(
            ["model=cnn", f"trainer.accelerator={accelerator}", *args.overrides],
            target=0.99,
            max_epochs=args.tta_max_epochs,
        )
        tta = {"mode": "time_to_accuracy", "model": "cnn", "device": args.device, **result}
        print(json.dumps(tta), flush=True)
    if args.markdown:
        print(results_table(rows, tta), flush=True)
    return 0


def machine() -> str:
    cpus = os.cpu_count()
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"
    return f"{platform.machine()}, {cpus} CPU cores, {gpu}, torch {torch.__version__}"


def results_table(rows: list[dict[str, Any]], tta: dict[str, Any] | None) -> str:
    lines = [
        f"Measured by `python scripts/bench.py` on: {machine()}.",
        "",
        "| model | device | plain s/epoch | headlab s/epoch | ratio | bare Lightning ratio "
        "| headlab samples/s | peak RSS MiB | first step s | post-test analysis s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['model']} | {r['device']} | {r['plain_s']} | {r['headlab_s']} | {r['ratio']} "
        f"| {r.get('bare_lightning_ratio', '-')} | {r['headlab_samples_per_s']} "
        f"| {r['peak_rss_mib']} | {r['first_step_s']} | {r.get('posthoc_s', '-')} |"
        for r in rows
    ]
    if tta:
        reached = "reached" if tta["reached"] else "NOT reached"
        lines += [
            "",
            f"CNN to {tta['target']:.1%} test accuracy ({tta['device']}): {reached}, "
            f"{tta['test_acc']:.2%} after {tta['epochs']} epochs, "
            f"{tta['train_seconds']} s of training.",
        ]
    return "\n".join(lines)
