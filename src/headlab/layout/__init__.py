"""Where a run's and a sweep's files are, and how their names are read: the one owner of
command-line overrides (parsed by Hydra's own parser), "is this a multirun", the keys a
sweep varies, job folder names and the sweep folder of a job, and ``metrics.json`` (with its
headline off-distribution keys, ``layout.headline``).

Free of torch on purpose: Hydra instantiates the sweep callbacks at every start (``--help``
too), and the sweep readers and summaries are used on machines without a GPU stack loaded.
May import ``errors`` and ``files`` only; every other package may import it.
"""

from headlab.layout.folders import (
    JOB_DIGITS,
    SWEPT_KEYS_ENV,
    SweptKeys,
    in_multirun,
    job_dir,
    job_number,
    sweep_dir_of_job,
)
from headlab.layout.metrics import METRICS_FILE, metrics_path, read_metrics, write_metrics
from headlab.layout.overrides import (
    override_key,
    split_override,
    sweep_values,
    swept_keys,
)

__all__ = [
    "JOB_DIGITS",
    "METRICS_FILE",
    "SWEPT_KEYS_ENV",
    "SweptKeys",
    "in_multirun",
    "job_dir",
    "job_number",
    "metrics_path",
    "override_key",
    "read_metrics",
    "split_override",
    "sweep_dir_of_job",
    "sweep_values",
    "swept_keys",
    "write_metrics",
]
