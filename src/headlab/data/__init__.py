from headlab.data.batches import InMemoryImages, Normalize
from headlab.data.mnist import MNISTDataModule, MNISTFilesMissing

__all__ = ["InMemoryImages", "MNISTDataModule", "MNISTFilesMissing", "Normalize"]
