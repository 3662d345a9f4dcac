"""Many runs: reading a sweep folder (``reader``), its ``summary.csv`` (``summary``), failed
jobs (``failed``) and the head comparison with its report (``study``).

May import everything else in headlab; nothing imports it but the scripts and Hydra callbacks.
"""
