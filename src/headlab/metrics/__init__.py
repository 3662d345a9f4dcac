"""torchmetrics-based metrics, grouped per stage; calibration where torchmetrics falls short.

May import: ``errors``, ``heads``, ``calibration``. Never ``models``, ``run`` or ``sweeps``.
"""

from headlab.metrics.stage import StageMetrics, classification_metrics

__all__ = ["StageMetrics", "classification_metrics"]
