"""Data modules: plain MNIST and the two sets built from it in memory (multi-label
canvases, soft-label blends), and a user's own images (``image_folder``, ``image_csv``, on
``image_files``). Each declares the target kind its batches carry
(``target_kind``), the one source the heads and metrics are checked against.

May import: ``errors``, ``files``. Never ``models``, ``run`` or ``sweeps``.
"""

from headlab.data.batches import InMemoryImages, Normalize
from headlab.data.mnist import MNISTDataModule, MNISTFilesMissing
from headlab.data.multilabel import MultiLabelMNISTDataModule
from headlab.data.soft import SoftMNISTDataModule

__all__ = [
    "InMemoryImages",
    "MNISTDataModule",
    "MNISTFilesMissing",
    "MultiLabelMNISTDataModule",
    "Normalize",
    "SoftMNISTDataModule",
]
