"""Lightning callbacks: what a run shows while it trains (gradient flow, reliability
figures, training curves, a progress bar that costs little per step), the guard that stops it
on a NaN loss, and in an Optuna search the trial's reports and pruning (``pruning``).
``hooks`` takes the per-batch hooks a callback leaves empty out of Lightning's loop.

May import: ``errors``, ``files``, ``models``, ``calibration``. Never ``run`` or ``sweeps``.
"""

from headlab.callbacks.curves import TrainCurves
from headlab.callbacks.figures import CalibrationFigures
from headlab.callbacks.gradients import GradientNorms
from headlab.callbacks.non_finite import NonFiniteLoss, StopOnNonFiniteLoss
from headlab.callbacks.progress import ProgressBar

__all__ = [
    "CalibrationFigures",
    "GradientNorms",
    "NonFiniteLoss",
    "ProgressBar",
    "StopOnNonFiniteLoss",
    "TrainCurves",
]
