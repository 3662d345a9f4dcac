"""Comparing heads over sweeps: read a sweep's jobs (``jobs``), tabulate them (``table``),
pair runs for differences (``paired``), draw (``figures``) and write the report (``report``,
run at the end of ``experiment=compare_heads`` by the Hydra callback in ``hook``)."""
