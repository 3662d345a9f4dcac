"""After testing: temperature scaling fitted on validation, and the test predictions on disk."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F

from headlab.calibration.bins import CalibrationMetrics
from headlab.heads import Head

PREDICTIONS_FILE = "test_predictions.npz"


@torch.no_grad()
def collect_logits(
    model: L.LightningModule, datamodule: L.LightningDataModule, loader
) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits and targets of a whole loader, in eval mode, on the model's device."""
    model.eval()
    logits, targets = [], []
    for batch in loader:
        batch = [t.to(model.device) for t in batch]
        images, target = datamodule.on_after_batch_transfer(batch, 0)
        logits.append(model(images).float().cpu())
        targets.append(target.cpu())
    return torch.cat(logits), torch.cat(targets)


def likelihood_nll(head: Head, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """NLL under the head's own probability model: categorical (softmax family) or one
    Bernoulli per class (sigmoid family; its true-class term alone would favour T -> 0)."""
    if head.exclusive:
        return F.cross_entropy(logits, target)
    one_hot = F.one_hot(target, logits.shape[1]).float()
    return F.binary_cross_entropy_with_logits(logits, one_hot, reduction="sum") / len(target)


def fit_temperature(head: Head, logits: torch.Tensor, target: torch.Tensor) -> float:
    """One T > 0 minimising the validation NLL of ``logits / T`` (optimised as log T)."""
    log_t = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.LBFGS([log_t], lr=0.1, max_iter=200, line_search_fn="strong_wolfe")
    logits = logits.double()

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = likelihood_nll(head, logits / log_t.exp().double(), target)
        loss.backward()
        return loss

    optimizer.step(closure)
    return float(log_t.exp().item())


def calibration_metrics_of(probs: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    metrics = CalibrationMetrics(probs.shape[1], sync=False)  # rank 0 alone
    metrics.update(probs, target)
    scalars, _ = metrics.compute()
    return {k: float(v) for k, v in scalars.items()}


def temperature_scaled_test(
    model: L.LightningModule, datamodule: L.LightningDataModule, output_dir: str | Path
) -> dict[str, float]:
    """Fit T on validation, report test ECE/NLL at T, save test probabilities and targets."""
    head: Head = model.head
    # an evaluation-only run has not loaded validation, a spawned-DDP parent has loaded nothing
    datamodule.setup("fit")
    datamodule.setup("test")
    val_logits, val_target = collect_logits(model, datamodule, datamodule.val_dataloader())
    test_logits, test_target = collect_logits(model, datamodule, datamodule.test_dataloader())
    probs = head.probs(test_logits)
    np.savez_compressed(
        Path(output_dir) / PREDICTIONS_FILE,
        probs=probs.numpy(),
        targets=test_target.numpy(),
        logits=test_logits.numpy(),
    )
    temperature = fit_temperature(head, val_logits, val_target)
    scaled = calibration_metrics_of(head.probs(test_logits / temperature), test_target)
    return {
        "temperature": temperature,
        "test/ece_ts": scaled["ece"],
        "test/nll_ts": scaled["nll"],
        "test/mce_ts": scaled["mce"],
        "test/brier_ts": scaled["brier"],
    }
