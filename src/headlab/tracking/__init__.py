"""Where a run's numbers go besides metrics.json: TensorBoard made for comparing runs
(``tensorboard``) and the optional trackers MLflow and Weights & Biases (``trackers``).

May import: ``errors``, ``tables``, ``files``, ``layout``, ``heads`` (their parameter names).
Never ``run`` or ``sweeps``.
"""
