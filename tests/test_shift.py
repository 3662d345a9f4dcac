"""headlab.shift without training: each transform against a reference on a known image, the
OOD metrics against scikit-learn and brute force, the scores against their formulas, the
letters' determinism, the sigmoid_softmax bound, and the one-line errors of bad settings."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.special import logsumexp
from sklearn.metrics import average_precision_score, roc_auc_score

from headlab.errors import ConfigValueError, RunError
from headlab.heads import SigmoidBCE, SigmoidSoftmax, SoftmaxCE
from headlab.shift import transforms
from headlab.shift.corruptions import CORRUPTIONS
from headlab.shift.letters import letters
from headlab.shift.metrics import ood_metrics, ood_point, rate_with_interval
from headlab.shift.scores import none_of_the_above, ood_scores
from headlab.shift.sets import OODDataMissing, check_available, sklearn_digits
from headlab.shift.settings import Settings
from tests.conftest import compose_train


def one_pixel(row: int, col: int, n: int = 1) -> torch.Tensor:
    image = torch.zeros(n, 1, 28, 28, dtype=torch.uint8)
    image[:, 0, row, col] = 200
    return image


def random_images(n: int = 4, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 1, 28, 28), generator=generator, dtype=torch.uint8)


# ---------------------------------------------------------------- transforms


def test_rotation_by_90_degrees_moves_a_pixel_counter_clockwise():
    turned = transforms.rotate(one_pixel(5, 20), 90)
    # upper right goes to upper left: (row, col) -> (27 - col, row)
    assert turned[0, 0, 7, 5] == 200
    assert int(turned.sum()) == 200


@pytest.mark.parametrize("degrees,k", [(90, 1), (180, 2), (270, 3), (360, 0)])
def test_rotation_by_quarter_turns_equals_rot90_of_a_whole_image(degrees, k):
    images = random_images()
    expected = torch.rot90(images, k, dims=(2, 3))
    assert torch.equal(transforms.rotate(images, degrees), expected)


def test_integer_shift_equals_a_numpy_roll_with_zeros_shifted_in():
    images = random_images(2)
    moved = transforms.shift(images, torch.tensor([3, -2]), torch.tensor([-1, 4]))
    for i, (dx, dy) in enumerate([(3, -1), (-2, 4)]):
        expected = np.roll(images[i, 0].numpy(), (dy, dx), axis=(0, 1))
        if dy > 0:
            expected[:dy] = 0
        else:
            expected[dy:] = 0
        if dx > 0:
            expected[:, :dx] = 0
        else:
            expected[:, dx:] = 0
        assert np.array_equal(moved[i, 0].numpy(), expected)


def test_translation_moves_every_image_by_the_given_distance():
    moved = transforms.translate(one_pixel(14, 14, n=50), 6, np.random.default_rng(0))
    rows, cols = np.nonzero(moved[:, 0].numpy())[1:]
    distance = np.hypot(rows - 14, cols - 14)
    assert len(rows) == 50
    assert np.all(np.abs(distance - 6) <= 0.75)  # whole pixels along a random direction


def test_inversion_is_255_minus_each_pixel():
    images = random_images()
    assert torch.equal(transforms.invert(images), 255 - images)
    assert transforms.invert(one_pixel(3, 3))[0, 0, 3, 3] == 55


def test_permutation_keeps_each_histogram_and_uses_one_order_for_all():
    images = random_images(3)
    permuted = transforms.permute_pixels(images, np.random.default_rng(1))
    for a, b in zip(images, permuted, strict=True):
        assert torch.equal(a.flatten().sort().values, b.flatten().sort().values)
    # one pixel in the same place in every image lands in the same place in every image
    moved = transforms.permute_pixels(one_pixel(4, 9, n=3), np.random.default_rng(1))
    assert torch.equal(moved[0], moved[1]) and torch.equal(moved[1], moved[2])


def test_mnist_format_fits_the_ink_into_20_pixels_centred_by_mass():
    glyph = np.zeros((100, 60), dtype=np.uint8)
    glyph[10:90, 20:40] = 255  # a tall bar: 80 x 20 -> 20 x 5
    image = transforms.to_mnist_format(glyph)[0].numpy()
    rows, _ = np.nonzero(image)
    assert rows.max() - rows.min() + 1 == 20
    mass = image.astype(float)
    centre = (
        (mass.sum(1) * np.arange(28)).sum() / mass.sum(),
        (mass.sum(0) * np.arange(28)).sum() / mass.sum(),
    )
    assert abs(centre[0] - 13.5) <= 0.5 and abs(centre[1] - 13.5) <= 0.5


# ---------------------------------------------------------------- corruptions


def test_stripe_and_brightness_equal_their_definitions():
    images = random_images()
    expected = images.clone()
    expected[..., :7] = 255 - expected[..., :7]
    expected[..., 21:] = 255 - expected[..., 21:]
    rng = np.random.default_rng(0)
    assert torch.equal(CORRUPTIONS["stripe"](images, rng), expected)
    # HSV value + 0.5 of a grey pixel: min(x + 127.5, 255), the .5 rounded either way
    bright = (images.double() + 127.5).clamp(max=255)
    assert (CORRUPTIONS["brightness"](images, rng).double() - bright).abs().max() <= 0.5


@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_each_corruption_is_deterministic_by_seed_and_changes_the_images(name):
    images = torch.zeros(6, 1, 28, 28, dtype=torch.uint8)
    images[:, :, 8:20, 12:16] = 255  # a bar, like a "1"
    first = CORRUPTIONS[name](images, np.random.default_rng(3))
    again = CORRUPTIONS[name](images, np.random.default_rng(3))
    assert first.dtype == torch.uint8 and first.shape == images.shape
    assert torch.equal(first, again)
    assert not torch.equal(first, images)


def test_sklearn_digits_come_in_mnist_format_with_their_labels():
    images, labels = sklearn_digits()
    assert images.shape == (1797, 1, 28, 28) and images.dtype == torch.uint8
    assert sorted(labels.unique().tolist()) == list(range(10))
    ink = images[:, 0] > 0
    index = torch.arange(28)

    def extent(lit: torch.Tensor) -> torch.Tensor:  # (n, 28) -> first to last lit, inclusive
        last = torch.where(lit, index, -1).amax(dim=1)
        return last - torch.where(lit, index, 28).amin(dim=1) + 1

    height, width = extent(ink.any(dim=2)), extent(ink.any(dim=1))
    longer = torch.maximum(height, width)
    assert (longer <= 20).all() and (longer >= 19).all()  # fitted into MNIST's 20 x 20 box


# ---------------------------------------------------------------- letters


def test_letters_are_deterministic_by_seed_and_look_like_mnist():
    a = letters(40, np.random.default_rng(5))
    b = letters(40, np.random.default_rng(5))
    c = letters(40, np.random.default_rng(6))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.shape == (40, 1, 28, 28) and a.dtype == torch.uint8
    assert int(a[:, :, 0, :].sum()) == 0  # white on black: the border stays black
    assert (a.flatten(1).amax(dim=1) > 200).all()


# ---------------------------------------------------------------- OOD metrics


def brute_force_fpr95(score_in: np.ndarray, score_out: np.ndarray) -> float:
    """Lowest share of out-samples accepted by any threshold that accepts >= 95% of in."""
    best = 1.0
    for threshold in np.unique(np.concatenate([score_in, score_out])):
        if (score_in >= threshold).mean() >= 0.95:
            best = min(best, (score_out >= threshold).mean())
    return best


def test_ood_metrics_equal_scikit_learn_and_brute_force_on_the_same_scores():
    rng = np.random.default_rng(0)
    score_in, score_out = rng.normal(1.0, 1.0, 300), rng.normal(0.0, 1.0, 200)
    score_in[:20] = score_out[:20]  # ties across the two sets
    point = ood_point(score_in, score_out)
    labels = np.r_[np.ones(300), np.zeros(200)]
    scores = np.r_[score_in, score_out]
    assert point["auroc"] == pytest.approx(roc_auc_score(labels, scores))
    pairs = (score_in[:, None] > score_out[None, :]) + 0.5 * (score_in[:, None] == score_out)
    assert point["auroc"] == pytest.approx(pairs.mean())  # Mann-Whitney by hand
    assert point["aupr_in"] == pytest.approx(average_precision_score(labels, scores))
    assert point["aupr_out"] == pytest.approx(average_precision_score(1 - labels, -scores))
    assert point["fpr95"] == pytest.approx(brute_force_fpr95(score_in, score_out))


def test_ood_intervals_are_seeded_and_hold_the_point():
    rng = np.random.default_rng(1)
    score_in, score_out = rng.normal(1.0, 1.0, 400), rng.normal(0.0, 1.0, 400)
    first = ood_metrics("x/", score_in, score_out, 40, seed=3)
    assert first == ood_metrics("x/", score_in, score_out, 40, seed=3)
    for name in ("auroc", "aupr_in", "aupr_out", "fpr95"):
        assert first[f"x/{name}_ci_low"] <= first[f"x/{name}"] <= first[f"x/{name}_ci_high"]
    assert set(ood_metrics("x/", score_in, score_out, 0, seed=3)) == {
        "x/auroc",
        "x/aupr_in",
        "x/aupr_out",
        "x/fpr95",
        "x/fpr95_ood",
    }


def test_rate_interval_is_scipys_wilson_interval():
    from scipy.stats import binomtest

    flags = torch.tensor([True] * 7 + [False] * 93)
    out = rate_with_interval("r", flags)
    ci = binomtest(7, 100).proportion_ci(method="wilson")
    assert out == pytest.approx({"r": 0.07, "r_ci_low": ci.low, "r_ci_high": ci.high})


# ---------------------------------------------------------------- scores


def test_scores_follow_their_formulas():
    logits = torch.randn(50, 10, generator=torch.Generator().manual_seed(0)) * 3
    z = logits.double().numpy()
    scores = {k: v.numpy() for k, v in ood_scores(SigmoidBCE(), logits).items()}
    sig = 1 / (1 + np.exp(-z))
    soft = np.exp(z - logsumexp(z, axis=1, keepdims=True))
    normalised = sig / sig.sum(axis=1, keepdims=True)
    assert scores["msp"] == pytest.approx(sig.max(axis=1))
    assert scores["max_logit"] == pytest.approx(z.max(axis=1))
    assert scores["energy"] == pytest.approx(logsumexp(z, axis=1))
    assert scores["entropy"] == pytest.approx((normalised * np.log(normalised)).sum(axis=1))
    assert scores["sum_sigmoid"] == pytest.approx(sig.sum(axis=1))
    assert scores["joint_energy"] == pytest.approx(np.log1p(np.exp(z)).sum(axis=1))
    assert scores["softmax_msp"] == pytest.approx(soft.max(axis=1))
    assert set(ood_scores(SoftmaxCE(), logits)) == {"msp", "max_logit", "energy", "entropy"}


def test_max_sigmoid_and_max_logit_rank_inputs_identically():
    g = torch.Generator().manual_seed(1)
    head = SigmoidBCE()
    in_scores = ood_scores(head, torch.randn(200, 10, generator=g) * 4 + 1)
    out_scores = ood_scores(head, torch.randn(200, 10, generator=g) * 4)
    by_msp = ood_point(in_scores["msp"].numpy(), out_scores["msp"].numpy())
    by_logit = ood_point(in_scores["max_logit"].numpy(), out_scores["max_logit"].numpy())
    assert by_msp == pytest.approx(by_logit)


def test_none_of_the_above_is_every_sigmoid_below_the_threshold():
    logits = torch.tensor([[-3.0, -1.0, -0.1], [-3.0, 0.1, -2.0], [0.0, -5.0, -5.0]])
    assert none_of_the_above(SigmoidBCE(), logits).tolist() == [True, False, False]
    assert none_of_the_above(SoftmaxCE(), logits) is None


# ---------------------------------------------------------------- sigmoid_softmax


def test_sigmoid_softmax_probabilities_never_exceed_e_over_e_plus_9():
    bound = math.e / (math.e + 9)
    assert bound == pytest.approx(0.2320, abs=1e-4)
    head = SigmoidSoftmax()
    extreme = torch.full((1, 10), -1e4, dtype=torch.float64)
    extreme[0, 3] = 1e4  # as confident as logits get
    assert head.probs(extreme)[0, 3].item() == pytest.approx(bound, rel=1e-12)
    random = torch.randn(1000, 10, generator=torch.Generator().manual_seed(0)) * 50
    assert head.probs(random).max().item() <= bound + 1e-7
    # so the loss never falls below -log(bound), however confident
    loss = head.loss(extreme, torch.tensor([3]), "index")
    assert loss.item() == pytest.approx(-math.log(bound), rel=1e-9)


def test_sigmoid_softmax_trains_on_class_indices_only():
    from headlab.heads import HeadDataMismatch

    with pytest.raises(HeadDataMismatch, match="head=sigmoid_softmax"):
        SigmoidSoftmax().check_fits("multi_hot", "data=multilabel_mnist")


# ---------------------------------------------------------------- bad settings


@pytest.mark.parametrize(
    "override,message",
    [
        ("shift.corruptions=[fog,frost]", "shift.corruptions: unknown 'frost'; known: shot_noise"),
        ("shift.ood=[letters,cifar10]", "shift.ood: unknown 'cifar10'; known: letters"),
        ("shift.rotation=[0,400]", "shift.rotation: angles lie in 0..360 degrees, got 400"),
        ("shift.rotation=[-15]", "shift.rotation: angles lie in 0..360 degrees, got -15"),
        ("shift.translation=[20]", "shift.translation: whole pixels in 0..14, got 20"),
        ("+shift.blur=[1]", "shift.blur is not a setting"),
    ],
)
def test_bad_shift_settings_fail_with_one_line_before_anything_is_built(override, message):
    from headlab.shift.analysis import check_shift_config

    with pytest.raises(ConfigValueError) as err:
        check_shift_config(compose_train([override]))
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_a_torchvision_ood_set_that_is_not_on_disk_fails_with_one_line(tmp_path):
    settings = Settings(ood=("letters", "fashion_mnist"), download=False)
    with pytest.raises(OODDataMissing) as err:
        check_available(settings, tmp_path)
    assert isinstance(err.value, RunError)
    message = str(err.value)
    assert "fashion_mnist" in message and "drop fashion_mnist from shift.ood" in message
    assert "\n" not in message


def test_shift_none_and_shift_full_compose():
    from headlab.shift.settings import settings_of

    assert not settings_of(compose_train(["shift=none"])).enabled
    full = settings_of(compose_train(["shift=full"]))
    assert full.samples == 10000 and full.interval_scores is None
    assert full.methods == ("temperature", "vector", "matrix", "isotonic")
    default = settings_of(compose_train([]))
    assert default.enabled and len(default.corruptions) == 15 and default.rotation[-1] == 180


# ---------------------------------------------------------------- multi-label canvases


def test_ood_canvases_fill_one_to_max_cells_with_letters_or_noise():
    from headlab.shift.canvases import ood_canvases

    for fill in ("letters", "noise"):
        canvases = ood_canvases(fill, 60, 2, 3, np.random.default_rng(0))
        assert canvases.shape == (60, 1, 56, 56) and canvases.dtype == torch.uint8
        cells = canvases.view(60, 2, 28, 2, 28).permute(0, 1, 3, 2, 4).reshape(60, 4, 784)
        filled = (cells.amax(dim=2) > 0).sum(dim=1)
        assert filled.min() == 1 and filled.max() == 3
        assert torch.equal(canvases, ood_canvases(fill, 60, 2, 3, np.random.default_rng(0)))


def test_data_without_shift_sets_is_skipped_with_one_warning_line(caplog):
    from types import SimpleNamespace

    from headlab.shift.analysis import analyse_off_distribution

    soft = SimpleNamespace(name="soft_mnist")
    with caplog.at_level("WARNING"):
        assert analyse_off_distribution(None, soft, compose_train([]), "/nonexistent") == {}
    (record,) = [r for r in caplog.records if r.levelname == "WARNING"]
    assert "no shifted or OOD sets are defined for data=soft_mnist" in record.getMessage()
    assert "\n" not in record.getMessage()


def test_mean_over_corruptions_takes_its_interval_from_the_paired_mean_of_draws():
    from headlab.shift.metrics import mean_over_sets

    draws = {"ece": [torch.arange(100.0), torch.arange(100.0) * 3]}  # two sets, same rows
    out = mean_over_sets("m/", {"ece": [1.0, 4.0]}, draws)
    assert out["m/ece"] == 2.5
    mean = np.arange(100.0) * 2  # row-wise mean of the two sets' draws
    assert out["m/ece_ci_low"] == pytest.approx(np.percentile(mean, 2.5))
    assert out["m/ece_ci_high"] == pytest.approx(np.percentile(mean, 97.5))
    assert set(mean_over_sets("m/", {"nll": [1.0]}, {})) == {"m/nll"}  # no draws: no interval


def test_sets_are_built_once_per_process_and_equal_a_fresh_build():
    from headlab.shift import sets

    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (30, 1, 28, 28), dtype=torch.uint8, generator=gen)
    targets = torch.zeros(30, dtype=torch.long)
    settings = Settings(rotation=(30,), translation=(4,), corruptions=("shot_noise",), digits=False)
    sets._BUILT.clear()
    first = list(sets.shifted_sets(images, targets, settings))
    again = list(sets.shifted_sets(images, targets, settings))
    assert all(a.images is b.images for a, b in zip(first, again, strict=True))  # kept
    sets._BUILT.clear()
    fresh = list(sets.shifted_sets(images, targets, settings))
    assert all(torch.equal(a.images, b.images) for a, b in zip(first, fresh, strict=True))
    other = images.clone()
    other[0, 0, 0, 0] ^= 1  # other source pixels: another set, never the kept one
    moved = next(sets.shifted_sets(other, targets, settings)).images
    assert moved is not first[0].images
    ood = sets.ood_set("permuted", images, 30, settings, "data")
    assert ood is sets.ood_set("permuted", images, 30, settings, "data")


def test_shift_bootstrap_zero_gives_points_without_intervals():
    from headlab.shift.metrics import shift_metrics

    gen = torch.Generator().manual_seed(1)
    probs = torch.softmax(torch.randn(50, 10, generator=gen), 1)
    targets = torch.randint(0, 10, (50,), generator=gen)
    points = shift_metrics("shift/x/", probs, targets, None)
    assert points and not any(k.endswith(("_ci_low", "_ci_high")) for k in points)
    assert Settings.from_config({"bootstrap": 0, "ood_bootstrap": 0}).bootstrap == 0
    with pytest.raises(ConfigValueError, match="0: no per-run intervals"):
        Settings.from_config({"bootstrap": -1})


@pytest.mark.parametrize("ties", [False, True])
def test_resampled_auroc_and_fpr95_equal_scikit_learn_per_resample(ties):
    from headlab.shift.metrics import resampled_auroc_fpr95

    rng = np.random.default_rng(5)
    score_in, score_out = rng.normal(1, 1, 300), rng.normal(0, 1, 200)
    if ties:  # many equal scores across and within the two sets
        score_in, score_out = np.round(score_in, 1), np.round(score_out, 1)
    rows_in, rows_out = rng.integers(0, 300, (25, 300)), rng.integers(0, 200, (25, 200))
    together = resampled_auroc_fpr95(score_in, score_out, rows_in, rows_out)
    for b, (a, o) in enumerate(zip(rows_in, rows_out, strict=True)):
        one = ood_point(score_in[a], score_out[o])
        assert together["auroc"][b].item() == pytest.approx(one["auroc"], abs=1e-12)
        assert together["fpr95"][b].item() == one["fpr95"]
