"""One run from config to files: the entry points (``train``, ``evaluate``, ``predict``), the
checks made before any data is loaded (``checks``), how a run ends (``outcome``), its folder
(``dirs``), the checkpoint's own overrides (``overrides``) and start-up conveniences.

May import every package below it (``heads``, ``data``, ``models``, ``metrics``,
``calibration``, ``callbacks``, ``checkpoints``, ``tracking``). Never ``sweeps``.
"""
