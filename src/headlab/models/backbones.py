"""Feature extractors. The classifier layer lives in the LightningModule so every backbone
shares one last linear layer whose per-class rows the gradient probes can find."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from headlab.errors import ConfigValueError

#: hidden-layer nonlinearities of the MLP by name; ``gelu_tanh`` is the tanh approximation
#: Hendrycks & Gimpel's MNIST baseline used (configs/experiment/hendrycks_gimpel.yaml)
ACTIVATIONS = {
    "relu": lambda: nn.ReLU(inplace=True),
    "gelu": nn.GELU,
    "gelu_tanh": lambda: nn.GELU(approximate="tanh"),
}


class MLP(nn.Sequential):
    """Flatten, then Linear-BatchNorm-activation-Dropout blocks (ReLU unless ``activation``).

    Sized by ``image_size`` like the CNN, so one data key sets the input of either backbone.
    """

    def __init__(
        self,
        in_channels: int = 1,
        image_size: int = 28,
        hidden: Sequence[int] = (512, 256),
        dropout: float = 0.1,
        batch_norm: bool = True,
        activation: str = "relu",
    ) -> None:
        if activation not in ACTIVATIONS:
            known = ", ".join(ACTIVATIONS)
            raise ConfigValueError(
                f"model.backbone.activation: unknown {activation!r}; known: {known}"
            )
        layers: list[nn.Module] = [nn.Flatten()]
        width = in_channels * image_size * image_size
        for size in hidden:
            layers.append(nn.Linear(width, size, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm1d(size))
            layers += [ACTIVATIONS[activation](), nn.Dropout(dropout)]
            width = size
        super().__init__(*layers)
        self.out_features = width


class CNN(nn.Sequential):
    """Conv-BatchNorm-ReLU-MaxPool stages, then one hidden linear layer."""

    def __init__(
        self,
        in_channels: int = 1,
        image_size: int = 28,
        channels: Sequence[int] = (16, 32),
        kernel_size: int = 3,
        hidden: int = 128,
        dropout: float = 0.25,
    ) -> None:
        layers: list[nn.Module] = []
        size, width = image_size, in_channels
        for out in channels:
            layers += [
                nn.Conv2d(width, out, kernel_size, padding=kernel_size // 2, bias=False),
                nn.BatchNorm2d(out),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            ]
            size, width = size // 2, out
        layers += [
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(width * size * size, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
        ]
        super().__init__(*layers)
        self.out_features = hidden
