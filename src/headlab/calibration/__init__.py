"""Calibration in one place: binned metrics, estimators with bootstrap intervals, post-hoc
calibrators, selective prediction and figures (README: "What is measured")."""

PREDICTIONS_FILE = "test_predictions.npz"

__all__ = ["PREDICTIONS_FILE"]
