"""One run from config to files: the entry points (``train``, ``evaluate``, ``predict``), the
checks made before any data is loaded (``checks``), how a run ends (``outcome``), its folder
(``dirs``), command-line overrides (``overrides``), eval/predict/resume composed from the
config a checkpoint carries (``from_checkpoint``) and start-up conveniences.

May import: ``errors``, ``files``, ``layout``, ``heads``, ``calibration``, ``metrics``,
``data``, ``shift``, ``checkpoints``, ``models``, ``callbacks``, ``tracking``. Never ``sweeps``.
"""
