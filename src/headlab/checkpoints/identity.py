"""What a checkpoint was trained with, stored inside it and compared when it is loaded.

A head swap changes no tensor shape, so ``load_state_dict`` would happily put a sigmoid
head's weights under a softmax head and report nonsense metrics. The identity is a dict of
strings so that checkpoints still load with ``weights_only=True``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from headlab.errors import RunError

log = logging.getLogger(__name__)

IDENTITY_KEY = "headlab_identity"
#: the parts of the identity that must match; others (the head's settings) only warn
MUST_MATCH = {"head": "head", "data": "data", "target_kind": "data targets"}


class CheckpointMismatch(RunError, ValueError):
    """A checkpoint was trained with another head or other data than the current config."""


def identity(head: Any, datamodule: Any | None) -> dict[str, str]:
    """Head name and settings; data name and target kind when a data module is attached."""
    found = {"head": str(head.name), "head_settings": repr(head)}
    if datamodule is not None:
        found["data"] = str(getattr(datamodule, "name", type(datamodule).__name__))
        found["target_kind"] = str(getattr(datamodule, "target_kind", "unknown"))
    return found


def check_identity(
    stored: Mapping[str, Any] | None, current: Mapping[str, str], source: str = "the checkpoint"
) -> None:
    """Raise CheckpointMismatch naming every part (head, data) that differs."""
    if not stored:
        log.warning("%s records no head/data identity: not checked.", source)
        return
    differ = [
        f"{label}: trained with {key}={stored[key]}, the config has {key}={current[key]}"
        for key, label in MUST_MATCH.items()
        if key in stored and key in current and stored[key] != current[key]
    ]
    if differ:
        groups = dict.fromkeys(
            "data=" if key == "target_kind" else f"{key}="
            for key in MUST_MATCH
            if key in stored and key in current and stored[key] != current[key]
        )
        raise CheckpointMismatch(
            f"{source} does not match the current config: "
            + "; ".join(differ)
            + f". Drop {' and '.join(groups)} from the command line (eval, predict and resume "
            "take the checkpoint's), or pass a checkpoint trained with the current ones."
        )
    if stored.get("head_settings") != current.get("head_settings"):
        log.warning(
            "%s was trained with %s, the config has %s.",
            source,
            stored.get("head_settings"),
            current.get("head_settings"),
        )
