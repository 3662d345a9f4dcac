"""The headline off-distribution keys of ``metrics.json``, named once.

``shift`` writes them (its default OOD score, the angle of the accuracy-vs-confidence figure)
and ``tracking`` shows them (TensorBoard scalars, HPARAMS columns, MLflow metrics); tracking
may not import shift, so both read the names here, low in the layering and torch-free.
"""

from __future__ import annotations

import re

#: the OOD score every head has (largest probability): the headline AUROC is by it
DEFAULT_SCORE = "msp"
#: the rotation angle of the headline accuracy and ECE (Ovadia et al.'s figure's angle)
CONFIDENCE_ANGLE = "60"
#: the shift keys of the headline: accuracy and ECE at that angle, mean corruption ECE
HEADLINE_SHIFT = (
    f"shift/rotation/{CONFIDENCE_ANGLE}/acc",
    f"shift/rotation/{CONFIDENCE_ANGLE}/ece",
    "shift/corruption/mean/ece",
)
#: per OOD set: the AUROC by the default score, and the none-of-the-above rate
HEADLINE_OOD = (f"{DEFAULT_SCORE}/auroc", "none_of_the_above")

#: a metrics.json key that is a headline number (``ood/<set>/...`` for any set)
HEADLINE = re.compile(
    "^(?:"
    + "|".join(
        [*map(re.escape, HEADLINE_SHIFT), *(rf"ood/[^/]+/{re.escape(k)}" for k in HEADLINE_OOD)]
    )
    + ")$"
)


def is_headline(key: str) -> bool:
    return HEADLINE.match(key) is not None
