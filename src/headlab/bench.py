"""Benchmark: a plain PyTorch loop against headlab's real Trainer configuration, same work.

Both sides train the same model (built from the same config) on the same in-memory tensors
with the same batch size, Adam, and one pass over the validation set per epoch. Times are
medians over repetitions after one warm-up epoch each.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from headlab.train import build

ROOT = Path(__file__).resolve().parents[2]
T0_ENV = "HEADLAB_BENCH_T0"


def compose(overrides: list[str]) -> DictConfig:
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        return hydra_compose(config_name="train.yaml", overrides=overrides)


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


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


def time_plain(cfg: DictConfig, reps: int, device: torch.device) -> list[float]:
    datamodule = instantiate(cfg.data)
    datamodule.setup("fit")
    model = instantiate(cfg.model).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.model.optimizer.lr)
    train = (datamodule.train_set.images, datamodule.train_set.targets)
    val = (datamodule.val_set.images, datamodule.val_set.targets)
    args = (model, optimizer, train, val, datamodule.normalize, cfg.data.batch_size, device)
    plain_epoch(*args)  # warm-up
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        plain_epoch(*args)
        times.append(time.perf_counter() - start)
    return times


def time_headlab(cfg_overrides: list[str], reps: int) -> list[float]:
    """``Trainer.fit`` for one epoch per repetition, the default callbacks and logger on."""
    times = []
    with tempfile.TemporaryDirectory() as out:
        for rep in range(reps + 1):
            cfg = compose(
                [
                    *cfg_overrides,
                    f"paths.output_dir={out}/{rep}",
                    "trainer.max_epochs=1",
                    "++trainer.num_sanity_val_steps=0",
                ]
            )
            L.seed_everything(rep, verbose=False)
            datamodule, model, trainer = build(cfg)
            start = time.perf_counter()
            trainer.fit(model, datamodule=datamodule)
            if rep:  # the first is the warm-up
                times.append(time.perf_counter() - start)
    return times


class FirstStepClock(L.Callback):
    """Prints seconds since the benchmark launched this process, at the first training step."""

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == 0 and T0_ENV in os.environ:
            print(f"FIRST_STEP_S={time.time() - float(os.environ[T0_ENV]):.3f}", flush=True)


def time_to_first_step(extra: list[str]) -> float:
    """Wall time from `python scripts/train.py` starting to its first training step."""
    with tempfile.TemporaryDirectory() as out:
        env = {**os.environ, T0_ENV: repr(time.time())}
        result = subprocess.run(
            [
                sys.executable,
                str(ROOT / "scripts" / "train.py"),
                *extra,
                "+callbacks.first_step._target_=headlab.bench.FirstStepClock",
                "test=false",
                "++trainer.max_steps=1",
                "trainer.min_epochs=0",
                "++trainer.limit_val_batches=0",
                "temperature_scaling=false",
                f"hydra.run.dir={out}",
            ],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
    line = next(s for s in result.stdout.splitlines() if s.startswith("FIRST_STEP_S="))
    return float(line.split("=")[1])


class TestAccuracyStop(L.Callback):
    """Measures test accuracy after each epoch (time excluded) and stops at the target."""

    def __init__(self, datamodule, target: float) -> None:
        self.datamodule, self.target = datamodule, target
        self.train_seconds, self.epochs, self.accuracy = 0.0, 0, 0.0
        self._epoch_start = 0.0

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._epoch_start = time.perf_counter()

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking:
            return
        self.train_seconds += time.perf_counter() - self._epoch_start
        self.epochs += 1
        self.datamodule.setup("test")
        correct = 0
        was_training = pl_module.training
        pl_module.eval()
        with torch.no_grad():
            for images, labels in self.datamodule.test_dataloader():
                images = self.datamodule.normalize(images.to(pl_module.device))
                correct += (pl_module(images).argmax(1).cpu() == labels).sum().item()
        pl_module.train(was_training)
        self.accuracy = correct / len(self.datamodule.test_set)
        if self.accuracy >= self.target:
            trainer.should_stop = True


def time_to_accuracy(overrides: list[str], target: float, max_epochs: int) -> dict[str, Any]:
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
        datamodule, model, trainer = build(cfg)
        stop = TestAccuracyStop(datamodule, target)
        trainer.callbacks.append(stop)
        trainer.fit(model, datamodule=datamodule)
    return {
        "target": target,
        "reached": stop.accuracy >= target,
        "test_acc": stop.accuracy,
        "epochs": stop.epochs,
        "train_seconds": round(stop.train_seconds, 2),
    }


def benchmark_model(model: str, device: str, reps: int, extra: list[str]) -> dict[str, Any]:
    accelerator = "gpu" if device == "cuda" else "cpu"
    overrides = [
        f"model={model}",
        f"trainer.accelerator={accelerator}",
        "callbacks.rich_progress_bar.refresh_rate=50",
        *extra,
    ]
    cfg = compose([*overrides, "paths.output_dir=unused"])
    plain = statistics.median(time_plain(cfg, reps, torch.device(device)))
    headlab = statistics.median(time_headlab(overrides, reps))
    samples = 55_000 if cfg.data.val_size == 5000 else None
    return {
        "model": model,
        "device": device,
        "batch_size": cfg.data.batch_size,
        "plain_s": round(plain, 3),
        "headlab_s": round(headlab, 3),
        "ratio": round(headlab / plain, 3),
        "plain_samples_per_s": round(samples / plain) if samples else None,
        "headlab_samples_per_s": round(samples / headlab) if samples else None,
        "peak_rss_mib": round(peak_rss_mib()),
        "first_step_s": round(time_to_first_step(overrides), 2),
    }


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="headlab vs a plain PyTorch loop")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--models", nargs="+", default=["mlp", "cnn"])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument(
        "--time-to-accuracy",
        action="store_true",
        help="also train the cnn to 99%% test accuracy and report the time",
    )
    parser.add_argument(
        "--readme",
        action="store_true",
        help="rewrite the results table in README.md with these numbers",
    )
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides, e.g. data.data_dir=…")
    args = parser.parse_args(argv)
    rows = []
    for model in args.models:
        rows.append(benchmark_model(model, args.device, args.reps, args.overrides))
        print(json.dumps(rows[-1]), flush=True)
    tta = None
    if args.time_to_accuracy:
        accelerator = "gpu" if args.device == "cuda" else "cpu"
        result = time_to_accuracy(
            [
                "model=cnn",
                f"trainer.accelerator={accelerator}",
                "callbacks.rich_progress_bar=null",
                *args.overrides,
            ],
            target=0.99,
            max_epochs=10,
        )
        tta = {"mode": "time_to_accuracy", "model": "cnn", **result}
        print(json.dumps(tta), flush=True)
    if args.readme:
        update_readme(ROOT / "README.md", results_table(rows, tta))
    return 0


def machine() -> str:
    import platform

    cpus = os.cpu_count()
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"
    return f"{platform.machine()}, {cpus} CPU cores, {gpu}, torch {torch.__version__}"


def results_table(rows: list[dict[str, Any]], tta: dict[str, Any] | None) -> str:
    lines = [
        f"Measured by `python scripts/bench.py` on: {machine()}.",
        "",
        "| model | device | plain s/epoch | headlab s/epoch | ratio | headlab samples/s "
        "| peak RSS MiB | first step s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['model']} | {r['device']} | {r['plain_s']} | {r['headlab_s']} | {r['ratio']} "
        f"| {r['headlab_samples_per_s']} | {r['peak_rss_mib']} | {r['first_step_s']} |"
        for r in rows
    ]
    if tta:
        lines += [
            "",
            f"CNN to {tta['target']:.1%} test accuracy: {tta['train_seconds']} s of "
            f"training, {tta['epochs']} epochs (reached {tta['test_acc']:.2%}).",
        ]
    return "\n".join(lines)


def update_readme(path: Path, table: str) -> None:
    start, end = "<!-- bench:start -->", "<!-- bench:end -->"
    text = path.read_text()
    if start not in text or end not in text:
        raise ValueError(f"{path} has no {start} ... {end} section to fill")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    path.write_text(f"{head}{start}\n{table}\n{end}{tail}")
