"""The network: backbones (MLP, CNN) that end in a linear ``classifier`` layer, the
LightningModule that joins a backbone to a head (``Classifier``), and the last-layer gradient
split per sample (``grad_rows``).

May import: ``errors``, ``files``, ``heads``, ``metrics``, ``checkpoints``. Never ``run``.
"""

from headlab.models.backbones import CNN, MLP
from headlab.models.classifier import Classifier

__all__ = ["CNN", "MLP", "Classifier"]
