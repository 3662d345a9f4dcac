from headlab.models.backbones import CNN, MLP
from headlab.models.classifier import Classifier

__all__ = ["CNN", "MLP", "Classifier"]
