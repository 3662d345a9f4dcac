"""torchmetrics-based metrics, grouped per stage; calibration where torchmetrics falls short."""

from headlab.metrics.stage import StageMetrics, classification_metrics

__all__ = ["StageMetrics", "classification_metrics"]
