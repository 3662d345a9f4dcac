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
