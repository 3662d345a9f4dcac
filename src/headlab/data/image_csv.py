"""``data=image_csv data.root=<dir>``: multi-label images listed in a CSV, read into memory.

The CSV (``<root>/labels.csv`` unless ``csv=`` says otherwise) has a ``file`` column (paths
relative to the root) and either a ``labels`` column holding ``;``-separated label names
(``3;7``, empty for none) or one 0/1 column per label, named by the label. Column names are
configurable. An optional ``split`` column (train/val/test) places each row; without it,
``val_size`` of the rows is held out for validation, which also serves as the test set.
Targets are multi-hot vectors over the labels (``classes`` to fix their order, else sorted).
"""

from __future__ import annotations

import csv as csv_module
import logging
from pathlib import Path
from typing import Any

import torch

from headlab.data.batches import InMemoryImages
from headlab.data.image_files import (
    ImageDataError,
    ImageDataModule,
    is_image,
    read_images,
    seeded_split,
    split_sizes,
)

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")


def csv_path(root: Path, csv: str | None) -> Path:
    return Path(str(csv)).expanduser() if csv else root / "labels.csv"


def read_table(path: Path, file_column: str) -> tuple[list[str], list[dict[str, str]]]:
    """The CSV's header and rows; a missing file, a missing column or no rows is one line."""
    if not path.is_file():
        raise ImageDataError(
            f"data.csv: {path} does not exist; write a CSV with a '{file_column}' column and a "
            "labels column (docs/own_data.md), or point data.csv at it"
        )
    with path.open(newline="") as handle:
        reader = csv_module.DictReader(handle)
        rows = list(reader)
        header = list(reader.fieldnames or [])
    if file_column not in header:
        raise ImageDataError(
            f"{path} has no '{file_column}' column (columns: {header}); set data.file_column"
        )
    if not rows:
        raise ImageDataError(f"{path} lists no images")
    return header, rows


def label_layout(header: list[str], file_column: str, labels_column: str, split_column: str):
    """``labels_column`` when the CSV has it, else the list of 0/1 label columns."""
    if labels_column in header:
        return labels_column
    columns = [c for c in header if c not in (file_column, split_column)]
    if not columns:
        raise ImageDataError(
            f"the CSV has neither a '{labels_column}' column nor 0/1 label columns; "
            "set data.labels_column"
        )
    return columns


def label_sets(
    rows: list[dict[str, str]], layout: Any, separator: str, where: Path
) -> list[list[str]]:
    """Each row's label names."""
    if isinstance(layout, str):
        return [
            [x.strip() for x in (row[layout] or "").split(separator) if x.strip()] for row in rows
        ]
    sets = []
    for number, row in enumerate(rows, start=2):  # line 1 is the header
        bad = {c: row[c] for c in layout if (row[c] or "").strip() not in ("0", "1")}
        if bad:
            raise ImageDataError(
                f"{where} line {number}: label columns must hold 0 or 1, got {bad}"
            )
        sets.append([c for c in layout if row[c].strip() == "1"])
    return sets


def label_names(sets: list[list[str]], layout: Any, classes: Any) -> list[str]:
    if classes:
        return [str(c) for c in classes]
    return list(layout) if isinstance(layout, list) else sorted({x for s in sets for x in s})


def count_labels(
    root: Any,
    csv: Any,
    file_column: Any,
    labels_column: Any,
    classes: Any,
    label_separator: Any = ";",
    split_column: Any = "split",
) -> int:
    """The number of labels, for the model config (``${csv_classes:...}``), read with the
    data config's own separator and split column; 0 when the CSV is unusable, which the
    data module then reports in one line."""
    if classes:
        return len(classes)
    try:
        path = csv_path(Path(str(root)).expanduser(), csv)
        header, rows = read_table(path, str(file_column))
        layout = label_layout(header, str(file_column), str(labels_column), str(split_column))
        sets = label_sets(rows, layout, str(label_separator), path)
        return len(label_names(sets, layout, None))
    except ImageDataError:
        return 0


def check_label_splits(
    lines: list[int], sets: list[list[str]], splits: list[str], where: Path
) -> None:
    """A label on val/test rows but on no train row cannot be learnt: read from the CSV
    (no ``classes`` given) it is nearly always a typo, which would otherwise become a new
    class in silence. One line naming the label and its lines."""
    trained = {
        x for labels, split in zip(sets, splits, strict=True) if split == "train" for x in labels
    }
    untrained = sorted({x for labels in sets for x in labels} - trained)
    if untrained:
        label = untrained[0]
        on = [str(n) for n, labels in zip(lines, sets, strict=True) if label in labels]
        shown = ", ".join(on[:5]) + (", ..." if len(on) > 5 else "")
        raise ImageDataError(
            f"{where}: label {label!r} is on no train row, only on line(s) {shown}: "
            "a typo? fix those rows, or add train rows that carry it"
        )


class ImageCSVDataModule(ImageDataModule):
    """Multi-label classification of the images a CSV lists."""

    name = "image_csv"
    target_kind = "multi_hot"

    def __init__(
        self,
        root: str,
        csv: str | None = None,
        file_column: str = "file",
        labels_column: str = "labels",
        label_separator: str = ";",
        split_column: str = "split",
        classes: list[str] | None = None,
        **settings: Any,
    ) -> None:
        super().__init__(root, **settings)
        self.csv = csv_path(self.root, csv)
        self.file_column = file_column
        self.labels_column = labels_column
        self.label_separator = label_separator
        self.split_column = split_column
        self.classes = list(classes) if classes else None
        self._names: list[str] | None = None
        self.class_names  # noqa: B018  a missing or malformed CSV fails here, before the model

    def _table(self) -> tuple[list[dict[str, str]], list[list[str]], list[str]]:
        header, rows = read_table(self.csv, self.file_column)
        layout = label_layout(header, self.file_column, self.labels_column, self.split_column)
        sets = label_sets(rows, layout, self.label_separator, self.csv)
        return rows, sets, label_names(sets, layout, self.classes)

    @property
    def class_names(self) -> list[str]:
        if self._names is None:
            self._names = self._table()[2]
        return self._names

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        rows, sets, names = self._table()
        self._names = names
        self.check_classes()
        index = {name: i for i, name in enumerate(names)}
        paths, targets, splits, kept, skipped = [], [], [], [], 0
        for number, (row, labels) in enumerate(zip(rows, sets, strict=True), start=2):
            path = self.root / row[self.file_column]
            if not is_image(path):
                skipped += 1
                continue
            if not path.is_file():
                raise ImageDataError(f"{self.csv} line {number}: {path} does not exist")
            unknown = [x for x in labels if x not in index]
            if unknown:
                raise ImageDataError(
                    f"{self.csv} line {number}: unknown label(s) {unknown}; the labels are "
                    f"{names} (data.classes)"
                )
            split = (row.get(self.split_column) or "train").strip()
            if split not in SPLITS:
                raise ImageDataError(
                    f"{self.csv} line {number}: {self.split_column}={split!r}, use {SPLITS}"
                )
            target = torch.zeros(len(names), dtype=torch.int64)
            target[[index[x] for x in labels]] = 1
            paths.append(path)
            targets.append(target)
            splits.append(split)
            kept.append((number, labels))
        if skipped:
            log.info(
                "%s: skipped %d rows whose file is not an image by its extension", self.csv, skipped
            )
        if not paths:
            raise ImageDataError(f"{self.csv} lists no image files")
        if self.classes is None:  # labels read from the rows: a new one may be a typo
            check_label_splits([n for n, _ in kept], [x for _, x in kept], splits, self.csv)
        images = read_images(paths, self.image_size, self.channels)
        stacked = torch.stack(targets)
        part = {s: torch.tensor([i for i, x in enumerate(splits) if x == s]) for s in SPLITS}

        def subset(idx: torch.Tensor) -> InMemoryImages:
            return InMemoryImages(images[idx], stacked[idx])

        if len(part["val"]):
            self.train_set, self.val_set = subset(part["train"]), subset(part["val"])
        else:
            train = part["train"]
            held_out = split_sizes(len(train), self.val_size, f"train rows of {self.csv}")
            train_idx, val_idx = seeded_split(len(train), held_out, self.split_seed)
            self.train_set, self.val_set = subset(train[train_idx]), subset(train[val_idx])
        if len(part["test"]):
            self.test_set = subset(part["test"])
        else:
            log.warning("%s has no test rows: test metrics are the validation set's", self.csv)
            self.test_set = self.val_set
        self.warn_single_images(stacked)
