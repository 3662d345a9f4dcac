"""Calibration in one place: binned metrics, estimators with bootstrap intervals, post-hoc
calibrators, selective prediction and figures (docs/measurements.md).

May import: ``errors``, ``files``, ``heads``. Never ``models``, ``run`` or ``sweeps``.
"""

PREDICTIONS_FILE = "test_predictions.npz"
#: post-hoc calibrators, in the order they run (``calibration.methods``)
METHODS = ("temperature", "vector", "matrix", "isotonic")

__all__ = ["METHODS", "PREDICTIONS_FILE"]
