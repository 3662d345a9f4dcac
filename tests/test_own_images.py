"""A user's own images: data=image_folder (class subfolders) and data=image_csv (multi-label
CSV), their bad inputs, the model following the data, and (slow) trainings on PNGs written
from MNIST digits."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from headlab.data.image_csv import ImageCSVDataModule, count_labels
from headlab.data.image_files import ImageDataError, image_files, read_image
from headlab.data.image_folder import ImageFolderDataModule, count_classes
from headlab.run.predict import PredictInputError, prediction_rows, read_inputs
from tests.conftest import REAL_MNIST, compose_train, mnist_available


def write(path: Path, pixels: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels.astype(np.uint8)).save(path)
    return path


def small_folder(root: Path, classes=("cat", "dog"), per_class: int = 5) -> Path:
    for c, name in enumerate(classes):
        for i in range(per_class):
            write(root / name / f"{i}.png", np.full((10, 12), 40 * c + i))
    return root


# ---------------------------------------------------------------- reading files (fast)


def test_files_that_are_not_images_by_extension_are_skipped_and_counted(tmp_path):
    small_folder(tmp_path, per_class=2)
    (tmp_path / "cat" / "README").write_text("notes")
    (tmp_path / "cat" / ".DS_Store").write_bytes(b"\0\1")
    (tmp_path / "cat" / "notes.txt").write_text("notes")
    files, skipped = image_files(tmp_path / "cat")
    assert [p.name for p in files] == ["0.png", "1.png"] and skipped == 3


def test_grey_rgb_and_any_size_become_the_configured_input(tmp_path):
    rgb = np.zeros((30, 17, 3), dtype=np.uint8)
    rgb[..., 0] = 255  # pure red
    path = write(tmp_path / "red.png", rgb)
    grey = read_image(path, 28, channels=1)
    colour = read_image(path, 28, channels=3)
    assert grey.shape == (1, 28, 28) and colour.shape == (3, 28, 28)
    # ITU-R 601-2 luma, PIL's "L": 299/1000 of red
    assert np.all(grey == round(255 * 299 / 1000))
    assert np.all(colour[0] == 255) and np.all(colour[1:] == 0)
    with pytest.raises(ImageDataError, match="is 17x30 px, the model takes 28x28"):
        read_image(path, 28, channels=1, resize=False)


def test_folder_data_module_splits_and_labels_by_folder(tmp_path):
    small_folder(tmp_path / "train")
    small_folder(tmp_path / "test", per_class=2)
    data = ImageFolderDataModule(str(tmp_path), image_size=8, val_size=0.2, split_seed=0)
    data.setup("fit")
    assert data.class_names == ["cat", "dog"] and count_classes(str(tmp_path)) == 2
    assert (len(data.train_set), len(data.val_set), len(data.test_set)) == (8, 2, 4)
    labels = torch.cat([data.train_set.targets, data.val_set.targets]).sort().values
    assert labels.tolist() == [0] * 5 + [1] * 5
    assert data.train_set.images.shape[1:] == (1, 8, 8)
    # every dog pixel is brighter than every cat pixel: labels follow folders
    test = data.test_set
    assert test.images[test.targets == 1].min() > test.images[test.targets == 0].max()


def bad_folders(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    (tmp_path / "empty").mkdir()
    small_folder(tmp_path / "no_images")
    for p in (tmp_path / "no_images" / "dog").iterdir():
        p.rename(p.with_suffix(".txt"))
    small_folder(tmp_path / "broken")
    (tmp_path / "broken" / "dog" / "3.png").write_text("not a png")
    return {
        "missing": (tmp_path / "nope", "is not a folder"),
        "empty": (tmp_path / "empty", "holds no class subfolders"),
        "class without images": (tmp_path / "no_images", "dog holds no images"),
        "unreadable image": (tmp_path / "broken", "3.png has an image extension but cannot"),
    }


@pytest.mark.parametrize("case", ["missing", "empty", "class without images", "unreadable image"])
def test_each_bad_folder_is_one_line_naming_it(tmp_path, case):
    root, message = bad_folders(tmp_path)[case]
    with pytest.raises(ImageDataError, match=message) as error:
        ImageFolderDataModule(str(root)).setup("fit")
    assert "\n" not in str(error.value)


def write_csv(root: Path, text: str) -> None:
    small_folder(root, classes=("a", "b"), per_class=4)
    (root / "labels.csv").write_text(text)


def test_csv_labels_column_and_01_columns_give_the_same_multi_hot_targets(tmp_path):
    rows = [("a/0.png", "x;y"), ("a/1.png", "y"), ("b/0.png", ""), ("b/1.png", "z;x")]
    rows += [("a/2.png", "x"), ("b/2.png", "y")]
    write_csv(tmp_path / "one", "file,labels\n" + "".join(f"{f},{v}\n" for f, v in rows))
    names = ["x", "y", "z"]
    hot = [[int(n in v.split(";")) for n in names] for _, v in rows]
    table = "file,x,y,z\n" + "".join(
        f"{f},{','.join(map(str, h))}\n" for (f, _), h in zip(rows, hot, strict=True)
    )
    write_csv(tmp_path / "cols", table)
    for folder in ("one", "cols"):
        data = ImageCSVDataModule(str(tmp_path / folder), image_size=8, val_size=2, split_seed=3)
        data.setup("fit")
        assert data.class_names == names
        assert count_labels(tmp_path / folder, None, "file", "labels", None) == 3
        got = torch.cat([data.train_set.targets, data.val_set.targets])
        assert sorted(got.tolist()) == sorted(hot)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("file,labels\na/0.png,x\nc/9.png,y\n", "line 3: .*c/9.png does not exist"),
        ("file,labels\na/0.png,x\na/1.png,w\n", "line 3: unknown label"),
        ("file,x,y\na/0.png,1,2\n", "line 2: label columns must hold 0 or 1"),
        ("path,labels\na/0.png,x\n", "has no 'file' column"),
    ],
)
def test_each_bad_csv_is_one_line_naming_the_row(tmp_path, table, message):
    write_csv(tmp_path, table)
    classes = ["x", "y"] if "labels" in table else None
    with pytest.raises(ImageDataError, match=message) as error:
        ImageCSVDataModule(str(tmp_path), classes=classes).setup("fit")
    assert "\n" not in str(error.value)
    with pytest.raises(ImageDataError, match="does not exist"):
        ImageCSVDataModule(str(tmp_path), csv=str(tmp_path / "other.csv")).setup("fit")


def test_the_model_config_follows_the_data(tmp_path):
    small_folder(tmp_path, classes=("a", "b", "c"))
    root = f"data.root={tmp_path}"
    cfg = compose_train(["data=image_folder", root, "data.channels=3", "data.image_size=20"])
    assert cfg.model.num_classes == 3
    cfg = compose_train(["data=image_folder", root, "data.channels=3", "model=cnn"])
    assert cfg.model.num_classes == 3
    assert (cfg.model.backbone.in_channels, cfg.model.backbone.image_size) == (3, 28)
    assert compose_train([]).model.num_classes == 10  # MNIST as before


def test_predict_skips_other_files_and_names_classes(tmp_path):
    write(tmp_path / "x.png", np.zeros((40, 33, 3)))
    (tmp_path / "notes.txt").write_text("a note")
    (tmp_path / ".DS_Store").write_bytes(b"\0")
    names, images = read_inputs(str(tmp_path), 28, channels=3, resize=True)
    assert names == ["x.png"] and images.shape == (1, 3, 28, 28)
    rows = prediction_rows(names, torch.tensor([[0.2, 0.8]]), False, 0.5, ["cat", "dog"])
    assert rows[0]["predicted"] == "dog"
    rows = prediction_rows(names, torch.tensor([[0.7, 0.8]]), True, 0.5, ["cat", "dog"])
    assert rows[0]["predicted"] == "cat;dog"


def test_the_label_count_reads_the_configured_separator_and_split_column(tmp_path):
    """The model's num_classes comes from the CSV read with data.label_separator and
    data.split_column; before, the count split on ';' and took the split column as a label."""
    small_folder(tmp_path / "piped", classes=("a", "b"), per_class=4)
    rows = [("a/0.png", "x|y"), ("a/1.png", "y"), ("b/0.png", "z"), ("b/1.png", "x|z")]
    text = "file,labels\n" + "".join(f"{f},{v}\n" for f, v in rows)
    (tmp_path / "piped" / "labels.csv").write_text(text)
    small_folder(tmp_path / "parts", classes=("a", "b"), per_class=4)
    table = "file,x,y,part\na/0.png,1,0,train\na/1.png,0,1,train\nb/0.png,1,1,val\n"
    (tmp_path / "parts" / "labels.csv").write_text(table)
    piped = ["data=image_csv", f"data.root={tmp_path / 'piped'}", "data.label_separator=|"]
    assert compose_train(piped).model.num_classes == 3
    parts = ["data=image_csv", f"data.root={tmp_path / 'parts'}", "data.split_column=part"]
    assert compose_train(parts).model.num_classes == 2
    data = ImageCSVDataModule(str(tmp_path / "parts"), split_column="part", image_size=8)
    data.setup("fit")
    assert data.class_names == ["x", "y"] and data.val_set.targets.tolist() == [[1, 1]]


def test_a_label_only_on_val_or_test_rows_is_a_typo_named_in_one_line(tmp_path):
    table = "file,labels,split\na/0.png,x,train\na/1.png,y,train\nb/0.png,x,train\n"
    table += "b/1.png,y;ys,val\na/2.png,ys,test\n"
    write_csv(tmp_path, table)
    with pytest.raises(ImageDataError) as error:
        ImageCSVDataModule(str(tmp_path), image_size=8).setup("fit")
    assert str(error.value) == (
        f"{tmp_path / 'labels.csv'}: label 'ys' is on no train row, only on line(s) 5, 6: "
        "a typo? fix those rows, or add train rows that carry it"
    )


def test_a_class_with_a_single_image_is_one_warning_line(tmp_path, caplog):
    small_folder(tmp_path / "folder", classes=("cat", "dog"), per_class=4)
    write(tmp_path / "folder" / "eel" / "0.png", np.zeros((10, 10)))
    with caplog.at_level("WARNING"):
        ImageFolderDataModule(str(tmp_path / "folder"), image_size=8, val_size=2).setup("fit")
    write_csv(tmp_path / "csv", "file,labels\na/0.png,x\na/1.png,x;y\nb/0.png,y\nb/1.png,ys\n")
    with caplog.at_level("WARNING"):
        ImageCSVDataModule(str(tmp_path / "csv"), image_size=8, val_size=1).setup("fit")
    single = [r.getMessage() for r in caplog.records if "single image" in r.getMessage()]
    assert single == [
        f"{tmp_path / 'folder'}: class(es) ['eel'] have a single image, which cannot be both "
        "trained on and evaluated: add images or remove the class",
        f"{tmp_path / 'csv'}: class(es) ['ys'] have a single image, which cannot be both "
        "trained on and evaluated: add images or remove the class",
    ]


def test_16_bit_pngs_are_scaled_by_their_bit_depth_not_clipped(tmp_path):
    ramp = np.linspace(0, 65535, 28 * 28).round().astype(np.uint16).reshape(28, 28)
    path = tmp_path / "deep.png"
    Image.fromarray(ramp).save(path)
    assert Image.open(path).mode.startswith("I")  # 16 bits per pixel on disk and when opened
    expected = np.rint(ramp.astype(np.float64) * 255 / 65535).astype(np.uint8)
    assert np.array_equal(read_image(path, 28, channels=1)[0], expected)
    assert np.array_equal(read_image(path, 28, channels=3)[1], expected)
    _, images = read_inputs(str(path), 28)  # predict's reader, MNIST-sized grey input
    assert np.array_equal(images[0, 0].numpy().astype(np.uint8), expected)


def test_predict_takes_npy_arrays_for_an_rgb_model(tmp_path):
    rng = np.random.default_rng(0)
    first = rng.integers(0, 256, (2, 3, 20, 20)).astype(np.uint8)
    np.save(tmp_path / "first.npy", first)
    np.save(tmp_path / "last.npy", first.transpose(0, 2, 3, 1))  # (N, H, W, 3), as images are
    for name in ("first.npy", "last.npy"):
        names, images = read_inputs(str(tmp_path / name), 20, channels=3, resize=True)
        assert names == ["0", "1"] and torch.equal(images, torch.from_numpy(first).float())
    np.save(tmp_path / "grey.npy", first[:, :1])
    with pytest.raises(PredictInputError) as error:
        read_inputs(str(tmp_path / "grey.npy"), 20, channels=3)
    assert str(error.value) == (
        f"input={tmp_path / 'grey.npy'} has shape (2, 1, 20, 20), the model takes "
        "(N, 3, 20, 20) or (N, 20, 20, 3) arrays of 0..255 pixel values."
    )


def test_probability_columns_are_named_by_class_when_the_data_names_them():
    probs = torch.tensor([[0.25, 0.75]])
    named = prediction_rows(["x.png"], probs, False, 0.5, ["eight", "five"])
    assert list(named[0]) == ["input", "predicted", "p_eight", "p_five"]
    assert named[0]["p_five"] == "0.75" and named[0]["predicted"] == "five"
    assert list(prediction_rows(["x.png"], probs, False, 0.5)[0])[2:] == ["p0", "p1"]


def test_predict_counts_the_subfolders_and_files_it_skips(tmp_path, caplog):
    write(tmp_path / "x.png", np.zeros((28, 28)))
    write(tmp_path / "more" / "y.png", np.zeros((28, 28)))
    (tmp_path / "notes.txt").write_text("a note")
    with caplog.at_level("WARNING"):
        names, _ = read_inputs(str(tmp_path), 28)
    assert names == ["x.png"]
    assert [r.getMessage() for r in caplog.records] == [
        "input: skipped 1 files that are not images by their extension and 1 subfolders "
        "(not searched: give each folder as its own input)"
    ]


def test_predict_and_the_data_take_the_same_image_files(tmp_path):
    """One list of image extensions: a .bmp or .webp file trains, so predict takes it too."""
    for suffix in (".bmp", ".webp", ".tif"):
        Image.fromarray(np.full((28, 28), 9, dtype=np.uint8)).save(tmp_path / f"x{suffix}")
        names, images = read_inputs(str(tmp_path / f"x{suffix}"), 28)
        assert names == [f"x{suffix}"] and images.max() == 9
    files, _ = image_files(tmp_path)
    names, _ = read_inputs(str(tmp_path), 28)
    assert names == [p.name for p in files]


def test_no_calibrator_is_fitted_and_scored_on_one_sample(tmp_path):
    """Own data without test files tests on the validation split: a calibrator fitted there
    and scored there reported accuracy 1.0000 as 'fitted on validation, scored on test'."""
    import lightning as L

    from headlab.calibration import METHODS
    from headlab.calibration.posthoc import Settings, post_test_analysis
    from headlab.heads import SoftmaxCE

    class Logits(L.LightningModule):  # the "images" are the logits
        def __init__(self):
            super().__init__()
            self.head, self.eval_target_kind = SoftmaxCE(), "index"

        def forward(self, x):
            return x

    class Split:
        def __init__(self, batch, same: bool):
            self.batch, self.val_set = batch, object()
            self.test_set = self.val_set if same else object()

        def setup(self, stage):
            pass

        def val_dataloader(self):
            return [self.batch]

        def on_after_batch_transfer(self, batch, index):
            return batch

    generator = torch.Generator().manual_seed(0)
    logits = 3 * torch.randn(400, 3, generator=generator)
    # labels drawn from the softmax: a calibrated model (random labels made the smooth ECE's
    # interval search visit ~300 bandwidths, 6 s of this fast test)
    target = torch.multinomial(logits.softmax(dim=1), 1, generator=generator).squeeze(1)
    settings = Settings(bootstrap=10)
    results = {}
    for same in (False, True):
        (tmp_path / str(same)).mkdir()
        split = Split((logits, target), same)
        results[same], _ = post_test_analysis(
            Logits(), split, tmp_path / str(same), settings, test=(logits, target)
        )
    assert "test/ece_temperature" in results[False]  # held out: calibrated and scored
    calibrated = [k for k in results[True] if k.startswith("test/") and k.endswith(METHODS)]
    assert calibrated == []
    assert {k: v for k, v in results[True].items() if k.startswith("calibration/")} == {
        f"calibration/{m}_error": (
            "the test split is the validation split: fitted and scored on one sample"
        )
        for m in settings.methods
    }


# ---------------------------------------------------------------- trainings (slow)


def mnist_test_digits() -> tuple[np.ndarray, np.ndarray]:
    from torchvision.datasets import MNIST

    data = MNIST(str(REAL_MNIST), train=False, download=False)
    return data.data.numpy(), data.targets.numpy()


def png_folder(root: Path, per_class: int) -> Path:
    """10 class folders of MNIST test digits: every 3rd saved as RGB, every 4th at 37x33 px,
    plus the files a real folder holds (a README, .DS_Store)."""
    images, labels = mnist_test_digits()
    for c in range(10):
        for j, i in enumerate(np.flatnonzero(labels == c)[:per_class]):
            image = Image.fromarray(images[i])
            image = image.convert("RGB") if j % 3 == 1 else image
            image = image.resize((37, 33)) if j % 4 == 2 else image
            (root / f"digit_{c}").mkdir(parents=True, exist_ok=True)
            image.save(root / f"digit_{c}" / f"{i}.png")
    (root / "digit_0" / "README.txt").write_text("where these come from")
    (root / "digit_1" / ".DS_Store").write_bytes(b"\0")
    return root


def train_on(tmp_path: Path, *overrides: str) -> dict:
    from headlab.run.train import train

    cfg = compose_train(
        [
            "trainer.max_epochs=4",
            "callbacks.rich_progress_bar=null",
            "callbacks.rich_model_summary=null",
            "logger=none",
            "calibration.enabled=false",
            f"paths.output_dir={tmp_path / 'run'}",
            *overrides,
        ]
    )
    train(cfg)
    return json.loads((tmp_path / "run" / "metrics.json").read_text())


@pytest.mark.slow
@pytest.mark.skipif(not mnist_available(), reason="needs real MNIST in data/MNIST/raw")
def test_a_folder_of_pngs_trains_to_the_accuracy_of_that_many_digits(tmp_path):
    root = png_folder(tmp_path / "pngs", per_class=100)
    metrics = train_on(
        tmp_path,
        "data=image_folder",
        f"data.root={root}",
        "data.batch_size=50",
        "data.val_size=0.2",
    )
    assert metrics["status"] == "completed"
    # 800 training digits: an MLP reaches about 85-90% on MNIST (measured 0.82-0.9 under load);
    # chance is 10%, a label/file mix-up would sit near it
    assert metrics["test/acc"] > 0.75, metrics["test/acc"]


@pytest.mark.slow
@pytest.mark.skipif(not mnist_available(), reason="needs real MNIST in data/MNIST/raw")
def test_a_multilabel_csv_trains_with_a_sigmoid_head(tmp_path):
    images, labels = mnist_test_digits()
    rng = np.random.default_rng(0)
    root, lines = tmp_path / "pairs", ["file,labels"]
    (root / "img").mkdir(parents=True)
    for n in range(800):  # two digits side by side: labels "a;b", an RGB file in every fifth
        i, j = rng.integers(0, len(images), size=2)
        pair = Image.fromarray(np.concatenate([images[i], images[j]], axis=1))
        (pair.convert("RGB") if n % 5 == 0 else pair).save(root / "img" / f"{n}.png")
        lines.append(f"img/{n}.png,{labels[i]};{labels[j]}")
    (root / "labels.csv").write_text("\n".join(lines) + "\n")
    metrics = train_on(
        tmp_path,
        "data=image_csv",
        f"data.root={root}",
        "data.image_size=28",
        "data.batch_size=50",
        "data.val_size=0.2",
        "head=sigmoid",
        "model=cnn",
    )
    assert metrics["status"] == "completed"
    # predicting no label scores F1 0; the two digits are learnable from 640 pairs
    assert metrics["test/f1_micro"] > 0.5, metrics


@pytest.mark.slow
def test_a_missing_image_folder_on_the_command_line_is_one_line_and_exit_1(tmp_path):
    from tests.test_train import run_cli

    result = run_cli("data=image_folder", f"data.root={tmp_path / 'nope'}", cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 1
    errors = result.stderr.splitlines()  # the message alone, on stderr
    assert len(errors) == 1 and "nope is not a folder" in errors[0], output[-2000:]
    assert "Traceback" not in output
