"""The disk cache of built shift sets (headlab.shift.cache): read back instead of built,
keyed by everything a set depends on, whole files only, never in the user's home in tests."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from headlab.shift import cache, sets
from headlab.shift.settings import Settings


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(cache.ENV, str(tmp_path))
    monkeypatch.setattr(cache, "_UNWRITABLE", set())
    return tmp_path / cache.FOLDER / cache.code_version()[:16]


class Builder:
    """Counts its calls; returns a fixed tensor (or pair) that depends on ``value``."""

    def __init__(self, value: int = 3, pair: bool = False):
        self.calls, self.value, self.pair = 0, value, pair

    def __call__(self):
        self.calls += 1
        images = torch.full((4, 1, 28, 28), self.value, dtype=torch.uint8)
        return (images, torch.arange(4)) if self.pair else images


def test_a_second_build_reads_the_file_and_never_calls_the_builder(folder):
    build = Builder()
    first = cache.load_or_build("corruption/fog", (0, ("src",)), build)
    again = cache.load_or_build("corruption/fog", (0, ("src",)), Builder(value=9))
    assert build.calls == 1 and torch.equal(again, first) and again.dtype == torch.uint8
    (file,) = folder.iterdir()
    assert file.name.startswith("corruption-fog-") and file.suffix == ".npz"
    pair = Builder(pair=True)
    cache.load_or_build("digits/sklearn/all", (0,), pair)
    images, labels = cache.load_or_build("digits/sklearn/all", (0,), Builder(9, pair=True))
    assert pair.calls == 1 and torch.equal(images, pair()[0]) and torch.equal(labels, pair()[1])


def test_another_seed_source_name_or_code_misses(folder, monkeypatch):
    cache.load_or_build("rotation/30", (0, ("src",)), Builder())
    for name, key in (
        ("rotation/30", (1, ("src",))),
        ("rotation/30", (0, ("other",))),
        ("rotation/45", (0, ("src",))),
    ):
        build = Builder(value=5)
        assert cache.load_or_build(name, key, build)[0, 0, 0, 0] == 5 and build.calls == 1
    monkeypatch.setattr(cache, "code_version", lambda: "edited corruptions.py")
    build = Builder(value=6)
    assert cache.load_or_build("rotation/30", (0, ("src",)), build)[0, 0, 0, 0] == 6
    assert build.calls == 1


def test_the_code_version_changes_with_a_builders_source_and_a_librarys_version(
    tmp_path, monkeypatch
):
    from importlib import metadata

    before = cache.code_version()
    package = Path(cache.__file__).parent
    for module in cache.BUILDERS:  # the same sources elsewhere: the same version
        (tmp_path / f"{module}.py").write_bytes((package / f"{module}.py").read_bytes())
    monkeypatch.setattr(cache, "__file__", str(tmp_path / "cache.py"))
    versions, real = {}, metadata.version
    for change in ("none", "source", "library"):
        if change == "source":
            with (tmp_path / "corruptions.py").open("a") as handle:
                handle.write("# edited\n")
        if change == "library":
            monkeypatch.setattr(metadata, "version", lambda n: "0" if n == "numpy" else real(n))
        cache.code_version.cache_clear()
        versions[change] = cache.code_version()
    monkeypatch.undo()
    cache.code_version.cache_clear()
    assert versions["none"] == before == cache.code_version()
    assert len(set(versions.values())) == 3


@pytest.mark.parametrize("damage", ["truncated", "flipped byte", "empty", "other arrays"])
def test_a_damaged_file_is_built_again_and_replaced(folder, damage):
    build = Builder()
    expected = cache.load_or_build("corruption/zigzag", (0,), build)
    (file,) = folder.iterdir()
    data = bytearray(file.read_bytes())
    if damage == "truncated":
        data = data[: len(data) // 2]
    elif damage == "flipped byte":
        data[len(data) // 2] ^= 0xFF  # inside the array: the zip's CRC-32 catches it
    elif damage == "empty":
        data = bytearray()
    else:
        np.savez(file, something=np.zeros(3))
        data = bytearray(file.read_bytes())
    file.write_bytes(bytes(data))
    again = cache.load_or_build("corruption/zigzag", (0,), build)
    assert build.calls == 2 and torch.equal(again, expected)
    assert torch.equal(cache.read(file), expected)  # replaced by a whole file


def test_files_are_0644_and_a_failure_leaves_no_file_behind(folder, monkeypatch):
    old = os.umask(0o022)
    try:
        cache.load_or_build("rotation/15", (0,), Builder())
    finally:
        os.umask(old)
    (file,) = folder.iterdir()
    assert file.stat().st_mode & 0o777 == 0o644

    def failing():
        raise RuntimeError("builder failed")

    with pytest.raises(RuntimeError, match="builder failed"):
        cache.load_or_build("rotation/30", (0,), failing)
    assert list(folder.iterdir()) == [file]

    def full_disk(*args):  # the write fails before its rename
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full_disk)
    value = cache.load_or_build("rotation/45", (0,), Builder(value=8))
    monkeypatch.undo()
    assert value[0, 0, 0, 0] == 8 and list(folder.iterdir()) == [file]  # no temporary left


def test_an_unwritable_folder_warns_once_and_still_returns_the_sets(tmp_path, monkeypatch, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(cache.ENV, str(blocker))
    monkeypatch.setattr(cache, "_UNWRITABLE", set())
    with caplog.at_level(logging.WARNING, logger="headlab.shift.cache"):
        for name in ("rotation/0", "rotation/15"):
            assert cache.load_or_build(name, (0,), Builder())[0, 0, 0, 0] == 3
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and warnings[0].startswith("shift: cannot write the set cache in ")


@pytest.mark.parametrize("value", ["off", "OFF", "", " "])
def test_off_or_empty_turns_the_disk_cache_off(tmp_path, monkeypatch, value):
    monkeypatch.setenv(cache.ENV, value)
    monkeypatch.chdir(tmp_path)
    assert cache.cache_dir() is None and cache.path_for("rotation/0", (0,)) is None
    build = Builder()
    cache.load_or_build("rotation/0", (0,), build)
    cache.load_or_build("rotation/0", (0,), build)
    assert build.calls == 2 and list(tmp_path.iterdir()) == []


def test_the_default_folder_is_xdg_cache_home_or_home_cache(tmp_path, monkeypatch):
    monkeypatch.delenv(cache.ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache.cache_dir() == tmp_path / "headlab"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/path")  # the XDG spec: ignored
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache.cache_dir() == tmp_path / "home" / ".cache" / "headlab"
    monkeypatch.setenv(cache.ENV, "~/elsewhere")
    assert cache.cache_dir() == tmp_path / "home" / "elsewhere"


def test_the_tests_never_cache_into_the_users_home():
    folder = Path(os.environ[cache.ENV]).resolve()
    assert folder.name.startswith("headlab-test-cache-") and folder.is_dir()
    assert not folder.is_relative_to((Path.home() / ".cache").resolve())


def test_a_new_process_reads_the_shifted_sets_a_run_before_built(folder, monkeypatch):
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (20, 1, 28, 28), dtype=torch.uint8, generator=gen)
    targets = torch.zeros(20, dtype=torch.long)
    settings = Settings(rotation=(30,), translation=(4,), corruptions=("fog",), digits=False)
    sets._BUILT.clear()
    first = [s.images for s in sets.shifted_sets(images, targets, settings)]
    letters = sets.ood_set("letters", images, 20, settings, "data")
    assert len(list(folder.iterdir())) == 4  # rotation, translation, fog, letters
    sets._BUILT.clear()  # as in a new process
    calls = []
    fog = sets.CORRUPTIONS["fog"]
    monkeypatch.setitem(sets.CORRUPTIONS, "fog", lambda *a: calls.append(a) or fog(*a))
    monkeypatch.setattr(sets.transforms, "rotate", lambda *a: calls.append(a))
    again = [s.images for s in sets.shifted_sets(images, targets, settings)]
    assert calls == [] and all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert torch.equal(sets.ood_set("letters", images, 20, settings, "data"), letters)
    sets.ood_set("permuted", images, 20, settings, "data")  # cheaper to build than to read
    assert len(list(folder.iterdir())) == 4
    sets._BUILT.clear()


def test_only_the_newest_code_versions_stay_on_disk(folder, monkeypatch):
    root = folder.parent
    for age, version in enumerate(["v5", "v4", "v3", "v2", "v1"]):  # v1 the oldest
        (root / version).mkdir(parents=True)
        (root / version / "rotation-0-x.npz").write_bytes(b"old")
        os.utime(root / version, (1e9 - age, 1e9 - age))
    cache.load_or_build("rotation/0", (0,), Builder())  # a new version: its folder, 3 others
    assert sorted(p.name for p in root.iterdir()) == sorted([folder.name, "v5", "v4", "v3"])
    cache.load_or_build("rotation/15", (0,), Builder())  # the same version: nothing pruned
    assert len(list(root.iterdir())) == cache.KEEP_VERSIONS
