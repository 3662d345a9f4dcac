"""Many runs: reading a sweep folder (``reader``), its ``summary.csv`` (``summary``), failed
jobs (``failed``), the head comparison with its report (``study``) and the Optuna search
with pruning (``optuna_search``, the logic of the ``hydra/sweeper=headlab_optuna`` plugin).

May import: ``errors``, ``tables``, ``files``, ``layout``, ``heads``, ``calibration``, ``metrics``,
``data``, ``shift``, ``checkpoints``, ``models``, ``callbacks``, ``tracking``, ``run``. Nothing
imports it but the scripts and Hydra callbacks.
"""
