"""Config resolvers that read a user's data folder, so that the model config's
``num_classes`` follows the data: ``${folder_classes:<root>}`` and
``${csv_classes:<root>,<csv>,<file column>,<labels column>,<classes>,<separator>,<split column>}``.

Registered by ``headlab.run.dirs.register`` (every script imports it before Hydra composes);
kept out of ``headlab.data``, whose import loads torch (``--help`` stays instant).
They return 0 for a folder or CSV that cannot be used: the data module, built first, then
says what is wrong in one line.
"""

from __future__ import annotations

from typing import Any

from omegaconf import OmegaConf


def folder_classes(root: Any) -> int:
    from headlab.data.image_folder import count_classes

    return count_classes(str(root))


def csv_classes(*arguments: Any) -> int:
    """``count_labels``' arguments as the resolver passes them (root, csv, columns, ...)."""
    from headlab.data.image_csv import count_labels

    return count_labels(*arguments)


def register() -> None:
    for name, function in (("folder_classes", folder_classes), ("csv_classes", csv_classes)):
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, function)
