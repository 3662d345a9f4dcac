"""Lightning callbacks: what a run shows while it trains (gradient flow, reliability figures)
and the guard that stops it on a NaN loss; in an Optuna search, the trial's reports and
pruning (``pruning``).

May import: ``errors``, ``files``, ``models``, ``calibration``. Never ``run`` or ``sweeps``.
"""

from headlab.callbacks.curves import TrainCurves
from headlab.callbacks.figures import CalibrationFigures
from headlab.callbacks.gradients import GradientNorms
from headlab.callbacks.non_finite import NonFiniteLoss, StopOnNonFiniteLoss

__all__ = [
    "CalibrationFigures",
    "GradientNorms",
    "NonFiniteLoss",
    "StopOnNonFiniteLoss",
    "TrainCurves",
]
