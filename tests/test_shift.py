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


def digit_like(n: int = 5, seed: int = 0) -> torch.Tensor:
    """``n`` different images: a bar in its own place over faint noise, like a "1"."""
    rng = np.random.default_rng(seed)
    images = torch.from_numpy(rng.integers(0, 30, (n, 1, 28, 28)).astype(np.uint8))
    for i in range(n):
        images[i, :, 6 + i : 20 + i, 10 + i : 14 + i] = 255
    return images


@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_each_corruption_is_batch_invariant_deterministic_and_changes_the_images(name):
    images = digit_like()
    batch = CORRUPTIONS[name](images, np.random.default_rng(3))
    assert batch.dtype == torch.uint8 and batch.shape == images.shape
    assert torch.equal(batch, CORRUPTIONS[name](images, np.random.default_rng(3)))
    for i in (0, 3):  # alone, it is corrupted exactly as among the others
        alone = CORRUPTIONS[name](images[i : i + 1], np.random.default_rng(3))
        assert torch.equal(alone[0], batch[i])
    reordered = CORRUPTIONS[name](images.flip(0), np.random.default_rng(3))
    assert torch.equal(reordered, batch.flip(0))
    assert not torch.equal(batch, images)


@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
@pytest.mark.parametrize(
    "bad,line",
    [
        (
            torch.zeros(0, 1, 28, 28, dtype=torch.uint8),
            "MNIST-C corruptions got an empty batch (N = 0 images)",
        ),
        (
            torch.zeros(2, 1, 32, 32, dtype=torch.uint8),
            "MNIST-C corruptions take (N, 1, 28, 28) uint8 images (its severities are fixed "
            "for 28-px digits), got shape (2, 1, 32, 32)",
        ),
        (
            torch.zeros(2, 1, 28, 28),
            "MNIST-C corruptions take uint8 image tensors, got torch.float32",
        ),
    ],
)
def test_each_corruption_refuses_bad_input_in_one_line(name, bad, line):
    from headlab.shift.corruptions import CorruptionInputError

    with pytest.raises(CorruptionInputError) as err:
        CORRUPTIONS[name](bad, np.random.default_rng(0))
    assert isinstance(err.value, RunError)
    assert str(err.value) == line


def test_shot_noise_is_poisson_of_three_photons_divided_by_three():
    from scipy.stats import poisson

    white = torch.full((100, 1, 28, 28), 255, dtype=torch.uint8)
    white[:, 0, 0, 0] = torch.arange(100, dtype=torch.uint8)  # 100 different images
    out = CORRUPTIONS["shot_noise"](white, np.random.default_rng(0))[:, 0, 1:].double() / 255
    assert set(np.unique(np.round(out.numpy() * 3))) <= {0.0, 1.0, 2.0, 3.0}
    expected = sum(poisson.pmf(k, 3) * k / 3 for k in range(3)) + poisson.sf(2, 3)
    se = float(out.std()) / math.sqrt(out.numel())
    assert abs(float(out.mean()) - expected) < 4 * se
    black = torch.zeros(3, 1, 28, 28, dtype=torch.uint8)
    assert torch.equal(CORRUPTIONS["shot_noise"](black, np.random.default_rng(0)), black)


def test_impulse_noise_turns_17_percent_of_pixels_white_or_black_half_each():
    grey = torch.full((50, 1, 28, 28), 128, dtype=torch.uint8)
    grey[:, 0, 0, 0] = torch.arange(50, dtype=torch.uint8)  # 50 different images
    out = CORRUPTIONS["impulse_noise"](grey, np.random.default_rng(0))[:, 0, 1:].numpy()
    assert set(np.unique(out)) == {0, 128, 255}
    se = math.sqrt(0.085 * 0.915 / out.size)
    assert abs((out == 255).mean() - 0.085) < 4 * se
    assert abs((out == 0).mean() - 0.085) < 4 * se


def test_glass_blur_blurs_along_rows_only():
    bar = torch.zeros(1, 1, 28, 28, dtype=torch.uint8)
    bar[0, 0, 10:18, 20] = 255  # a short vertical bar in column 20
    for seed in range(5):
        out = CORRUPTIONS["glass_blur"](bar, np.random.default_rng(seed))[0, 0].numpy()
        # the blur spreads the bar up and down only; a swap carries a value at most one
        # column right per round (pixel (h, w + 1) trades with (h + dy, w)), two rounds:
        # columns >= 23 stay black (a blur across columns would reach them)
        assert out[:, 23:].max() == 0
        assert out[:, 20:22].sum() > 0 and (out[8:10, 19:22] > 0).any()


def test_glass_shuffle_equals_sequential_swaps_done_one_by_one():
    from headlab.shift.corruptions import glass_shuffle

    rng = np.random.default_rng(0)
    x = rng.random((2, 28, 28))
    swap = rng.random((2, 2, 26, 26)) < 0.5
    dy, dx = rng.integers(-1, 1, (2, 2, 2, 26, 26))
    expected = x.copy()
    for b in range(2):
        for r in range(2):
            for h in range(27, 1, -1):
                for w in range(27, 1, -1):
                    if swap[b, r, h - 2, w - 2]:
                        h2, w2 = h + dy[b, r, h - 2, w - 2], w + dx[b, r, h - 2, w - 2]
                        expected[b, h, w], expected[b, h2, w2] = (
                            expected[b, h2, w2],
                            expected[b, h, w],
                        )
    glass_shuffle(x, swap, dy, dx)
    assert np.array_equal(x, expected)


@pytest.mark.parametrize("degrees,axis", [(0.0, "left"), (90.0, "up")])
def test_motion_blur_smears_a_dot_backwards_with_imagemagick_weights(degrees, axis):
    from headlab.shift.corruptions import motion_blur_at

    dot = one_pixel(20, 20)
    out = motion_blur_at(dot, np.array([degrees]))[0, 0].numpy().astype(float)
    taps = np.arange(21)  # ImageMagick: 2 * radius + 1 taps at 0, 1, ..., sigma 3
    weights = np.exp(-(taps**2) / 18.0) / np.exp(-(taps**2) / 18.0).sum()
    expected = np.zeros((28, 28))
    for i, w in enumerate(weights):  # pixel (r, c) reads (r, c + i) at 0 deg, (r + i, c) at 90
        expected[(20, 20 - i) if axis == "left" else (20 - i, 20)] = 200 * w
    assert np.abs(out - expected).max() <= 0.5


def test_motion_blur_smears_every_dot_towards_smaller_columns():
    dots = torch.zeros(12, 1, 28, 28, dtype=torch.uint8)
    for i in range(12):
        dots[i, 0, 8 + i, 20] = 255
    out = CORRUPTIONS["motion_blur"](dots, np.random.default_rng(0))[:, 0].numpy()
    assert out[:, :, 21:].max() == 0  # angles in -45..45: cos > 0, nothing to the right
    assert (out[:, :, 16].max(axis=1) > 0).all()


def sampled(image: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """scikit-image's ``warp`` with an inverse map about (13.5, 13.5), via scipy: bilinear,
    black outside -- an independent reference for the geometric corruptions."""
    from scipy.ndimage import map_coordinates

    rows, cols = np.mgrid[0:28, 0:28].astype(float)
    x_in = matrix[0, 0] * (cols - 13.5) + matrix[0, 1] * (rows - 13.5) + 13.5
    y_in = matrix[1, 0] * (cols - 13.5) + matrix[1, 1] * (rows - 13.5) + 13.5
    # grid-constant: a point near the edge interpolates with black beyond it, as skimage does
    return map_coordinates(image.astype(float), [y_in, x_in], order=1, mode="grid-constant")


def test_shear_is_old_scikit_image_shear_a_slant_and_a_vertical_stretch():
    from headlab.shift.corruptions import shear_by

    line = torch.zeros(2, 1, 28, 28, dtype=torch.uint8)
    line[:, 0, :, 13:15] = 255  # a vertical line through the centre, columns 13 and 14
    out = shear_by(line, np.array([0.4, -0.4]))[:, 0].numpy().astype(float)
    cols = np.arange(28)
    for image, s in zip(out, (0.4, -0.4), strict=True):
        centre = (image * cols).sum(axis=1) / image.sum(axis=1)
        # row r's ink is centred at 13.5 + sin(s) (r - 13.5): slanted by sin(s), not tan(s)
        assert np.abs(centre - (13.5 + np.sin(s) * (cols - 13.5))).max() < 0.02
    image = digit_like(1)[0, 0].numpy()
    for s in (0.4, -0.4):
        matrix = np.array([[1.0, -np.sin(s)], [0.0, np.cos(s)]])
        got = shear_by(digit_like(1), np.array([s]))[0, 0].numpy().astype(float)
        assert np.abs(got - sampled(image, matrix)).max() <= 1
    either = CORRUPTIONS["shear"](digit_like(1), np.random.default_rng(0))[0, 0].numpy()
    assert any(
        np.abs(either - sampled(image, np.array([[1, -np.sin(s)], [0, np.cos(s)]]))).max() <= 1
        for s in (0.4, -0.4)
    )


def test_scale_and_rotate_sample_the_image_as_scikit_image_warp_does():
    images = digit_like(1)
    image = images[0, 0].numpy()
    scaled = CORRUPTIONS["scale"](images, np.random.default_rng(0))[0, 0].numpy()
    assert np.abs(scaled - sampled(image, np.eye(2) / 0.7)).max() <= 1
    turned = CORRUPTIONS["rotate"](images, np.random.default_rng(0))[0, 0].numpy()
    rotations = [np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]) for a in (0.4, -0.4)]
    assert min(np.abs(turned - sampled(image, m)).max() for m in rotations) <= 1


def test_translate_moves_a_pixel_three_px_along_each_axis():
    moved = CORRUPTIONS["translate"](one_pixel(10, 12, n=1), np.random.default_rng(0))[0, 0]
    (row,), (col,) = np.nonzero(moved.numpy())
    assert abs(row - 10) == 3 and abs(col - 12) == 3 and moved[row, col] == 200


def test_plasma_fractal_averages_neighbours_and_shrinks_noise_by_decay_squared():
    from headlab.shift.corruptions import plasma_fractal, plasma_noise

    draws = np.zeros((2, sum(plasma_noise(16))))
    draws[0, 0] = 1.0  # only the first centre, (8, 8), gets noise: 100^2
    draws[1, 0] = 1.0
    draws[1, 3] = 1.0  # and the next level's first centre, (4, 4): (100 / 1.4)^2
    grid = plasma_fractal(draws, 1.4, side=16)
    first, both = grid
    assert first[8, 8] == 1.0 and first[0, 0] == 0.0
    assert first[0, 8] == pytest.approx(0.5) and first[8, 0] == pytest.approx(0.5)
    assert first[4, 4] == pytest.approx((0 + 0.5 + 0.5 + 1) / 4)  # mean of its 4 corners
    centre, next_noise = 100.0**2, (100.0 / 1.4) ** 2
    assert both[8, 8] == pytest.approx(centre / (centre / 2 + next_noise))


def test_fog_keeps_black_black_and_lifts_white_to_between_a_quarter_and_one():
    black = torch.zeros(2, 1, 28, 28, dtype=torch.uint8)
    assert torch.equal(CORRUPTIONS["fog"](black, np.random.default_rng(0)), black)
    white = torch.full((4, 1, 28, 28), 255, dtype=torch.uint8)
    white[:, 0, 0, 0] = torch.arange(4, dtype=torch.uint8)  # four different images
    out = CORRUPTIONS["fog"](white, np.random.default_rng(0))[:, :, 1:].numpy()
    # (1 + 3 f) * 1 / (1 + 3) with the fog f in [0, 1]
    assert out.min() >= round(255 / 4) - 1 and out.max() <= 255
    # f is scaled to [0, 1] over the whole 256 x 256 map, not per 28 x 28 crop: no crop
    # spans the whole range (a per-crop rescale would give 64 and 255 in every image)
    spans = out.reshape(4, -1).max(axis=1) - out.reshape(4, -1).min(axis=1)
    assert (spans < 255 - 64 - 10).all()


def test_spatter_leaves_a_pixel_or_covers_it_mostly_with_grey_63():
    for value, low, high in ((255, 63, 102), (0, 50, 63)):
        images = torch.full((6, 1, 28, 28), value, dtype=torch.uint8)
        images[:, 0, 0, 0] = torch.arange(6, dtype=torch.uint8) + 100  # six different images
        out = CORRUPTIONS["spatter"](images, np.random.default_rng(1))[:, 0, 1:].numpy()
        # mask m >= 0.8 where kept: x (1 - m) + 63 m lies between 63 and 0.2 x + 0.8 * 63
        mud = out != value
        assert mud.any() and not mud.all()
        assert out[mud].min() >= low and out[mud].max() <= high


def test_line_ink_is_mnist_cs_log_profile_of_the_vertical_distance():
    from headlab.shift.corruptions import line_ink

    ink = line_ink(0, 5, 27, 5)  # a flat line through row 5
    assert np.all(ink[5, :27] == 1.0) and np.all(ink[:, 27] == 0.0)
    assert ink[4, 3] == pytest.approx(np.log(1 - 1 / 2.3) + 1)  # one row off: 0.429
    assert np.all(ink[[3, 7]] == 0.0)  # two rows off: log(1 - 2 / 2.3) + 1 < 0
    assert np.all(line_ink(4, 0, 4, 20) == 0.0)  # vertical: MNIST-C draws nothing


def test_dotted_line_draws_only_in_every_other_pair_of_columns():
    black = torch.zeros(6, 1, 28, 28, dtype=torch.uint8)
    black[:, 0, 27, 0] = torch.arange(6, dtype=torch.uint8)  # six different images
    out = CORRUPTIONS["dotted_line"](black, np.random.default_rng(0))[:, 0, :27].numpy()
    kept = (np.arange(28) // 2) % 2 == 1
    kept[27] = False
    assert out[:, :, ~kept].max() == 0
    inked = (out > 0).sum(axis=1)[:, kept]
    assert inked.min() >= 1 and inked.max() <= 3  # the profile reaches 1.45 rows either side


def test_zigzag_vertices_follow_mnist_c_and_segments_add_up():
    from headlab.shift.corruptions import line_ink, zigzag_vertices

    cols, rows = zigzag_vertices(14, 14)  # flat: d = 23, teeth at 2, 6, ..., 22
    assert cols.tolist() == [2, 4, 8, 12, 16, 20, 24, 25]
    # the last vertex: r_last / (2 (d - 4 floor(d / 4))) = -2 / (2 * 3)
    assert rows == pytest.approx([14, 16, 12, 16, 12, 16, 12, 14 - 1 / 3])
    cols, rows = zigzag_vertices(10, 14)  # turned: vertices off the pixel grid
    segments = [line_ink(cols[j - 1], rows[j - 1], cols[j], rows[j]) for j in range(1, len(cols))]
    total = np.sum(segments, axis=0)
    assert (total > np.max(segments, axis=0) + 0.1).any()  # somewhere two segments overlap


def test_zigzag_adds_its_segments_and_clips_as_mnist_c_draws_them():
    from headlab.shift.corruptions import line_ink, zigzag_vertices

    black = torch.zeros(3, 1, 28, 28, dtype=torch.uint8)
    black[:, 0, 27, 27] = torch.arange(3, dtype=torch.uint8)  # three different images
    out = CORRUPTIONS["zigzag"](black, np.random.default_rng(4))[:, 0].numpy().astype(float)
    out[:, 27, 27] = 0
    for image in out:  # brute force: the drawn zigzag is one of MNIST-C's r0, r1 choices
        matches = []
        for r0 in range(27):
            for r1 in range(r0 - 5, r0 + 5):
                cols, rows = zigzag_vertices(r0, r1)
                ink = sum(
                    line_ink(cols[j - 1], rows[j - 1], cols[j], rows[j])
                    for j in range(1, len(cols))
                )
                ink[27, 27] = 0
                if np.abs(np.round(np.clip(ink, 0, 1) * 255) - image).max() == 0:
                    matches.append((r0, r1))
        assert len(matches) == 1


def test_canny_edges_of_a_square_are_its_outline():
    square = torch.zeros(1, 1, 28, 28, dtype=torch.uint8)
    square[0, 0, 8:21, 8:21] = 128  # a half-grey rim puts each edge on a pixel centre
    square[0, 0, 9:20, 9:20] = 255
    edges = CORRUPTIONS["canny_edges"](square, np.random.default_rng(0))[0, 0].numpy() > 0
    rows, cols = np.nonzero(edges)
    assert rows.min() == 8 and rows.max() == 20 and cols.min() == 8 and cols.max() == 20
    for k in range(10, 19):  # along each side, exactly the rim
        assert np.flatnonzero(edges[k]).tolist() == [8, 20]
        assert np.flatnonzero(edges[:, k]).tolist() == [8, 20]
    blank = torch.full((1, 1, 28, 28), 90, dtype=torch.uint8)
    assert CORRUPTIONS["canny_edges"](blank, np.random.default_rng(0)).max() == 0


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


def test_ood_point_is_bit_for_bit_scikit_learns_roc_auc_ap_and_fpr95():
    """The counting ``ood_point`` against scikit-learn's curves, on float32 and float64
    scores, with and without ties, sets of 1 to 3,000: the same floats, not just close."""
    from sklearn.metrics import auc, roc_curve

    from headlab.shift.metrics import first_reaching

    rng = np.random.default_rng(0)
    for case in range(40):
        n_in, n_out = rng.integers(1, 3000, 2)
        dtype = (np.float32, np.float64)[case % 2]
        score_in, score_out = rng.normal(1, 1, n_in), rng.normal(0, 1, n_out)
        if case % 3 == 0:  # many ties, within and across the sets
            score_in, score_out = np.round(score_in, 1), np.round(score_out, 1)
        score_in, score_out = score_in.astype(dtype), score_out.astype(dtype)
        labels = np.r_[np.ones(n_in), np.zeros(n_out)]
        scores = np.r_[score_in, score_out]
        fpr, tpr, _ = roc_curve(labels, scores, drop_intermediate=False)
        fpr_ood, tpr_ood, _ = roc_curve(1 - labels, -scores, drop_intermediate=False)
        assert ood_point(score_in, score_out) == {
            "auroc": auc(fpr, tpr),
            "aupr_in": average_precision_score(labels, scores),
            "aupr_out": average_precision_score(1 - labels, -scores),
            "fpr95": first_reaching(fpr, tpr, 0.95),
            "fpr95_ood": first_reaching(fpr_ood, tpr_ood, 0.95),
        }, case


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
    from headlab.run.checks import validate

    with pytest.raises(ConfigValueError) as err:
        validate(compose_train([override]))
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_a_torchvision_ood_set_that_is_not_on_disk_fails_with_one_line(tmp_path):
    settings = Settings(ood=("letters", "kmnist"), download=False)
    with pytest.raises(OODDataMissing) as err:
        check_available(settings, tmp_path)
    assert isinstance(err.value, RunError)
    message = str(err.value)
    assert "kmnist" in message and "drop kmnist from shift.ood" in message
    assert "\n" not in message


def test_fashion_mnist_absent_is_dropped_with_one_log_line(tmp_path, caplog):
    with caplog.at_level("WARNING"):
        settings = Settings.from_config(
            {"ood": ["letters", "fashion_mnist"], "fashion_mnist_dir": str(tmp_path)}
        )
    assert settings.ood == ("letters",)
    (record,) = [r for r in caplog.records if r.levelname == "WARNING"]
    assert record.getMessage() == (
        f"FashionMNIST is not in {tmp_path.resolve()} (apt-get install dataset-fashion-mnist, "
        "or set shift.fashion_mnist_dir): the fashion_mnist OOD set is skipped"
    )


@pytest.mark.parametrize("compressed", [False, True])
def test_fashion_mnist_is_read_from_its_idx_files_when_present(tmp_path, compressed):
    import gzip

    from headlab.shift import sets
    from tests.idx import write_idx

    pictures = np.random.default_rng(0).integers(0, 256, (7, 28, 28), dtype=np.uint8)
    path = tmp_path / "t10k-images-idx3-ubyte"
    write_idx(path, pictures)
    if compressed:  # as Debian ships it
        (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(path.read_bytes()))
        path.unlink()
    settings = Settings.from_config(
        {"ood": ["fashion_mnist"], "fashion_mnist_dir": str(tmp_path), "seed": 11}
    )
    assert settings.ood == ("fashion_mnist",)
    sets._BUILT.clear()
    got = sets.ood_set("fashion_mnist", random_images(5), 5, settings, "unused")
    assert torch.equal(got, torch.from_numpy(pictures[:5])[:, None])


def test_every_ood_set_is_named_near_or_far():
    from headlab.shift.sets import family
    from headlab.shift.settings import OOD_SETS

    assert {name: family(name) for name in OOD_SETS} == {
        "letters": "near",
        "fashion_mnist": "near",
        "kmnist": "near",
        "inverted": "far",
        "permuted": "far",
        "gaussian": "far",
        "gaussian_n01": "far",
        "uniform": "far",
    }
    assert family("digits") == "near"
    images, labels = sklearn_digits(3)
    from headlab.shift.sets import Shifted

    assert Shifted("digits", "sklearn", images, labels).family == "near"
    assert Shifted("rotation", "60", images, labels).family is None


def test_hendrycks_gimpel_noise_sets_are_n01_and_u01_on_the_unit_scale():
    from scipy.stats import norm

    from headlab.shift import sets

    sets._BUILT.clear()
    settings = Settings(ood=("gaussian_n01", "uniform"), seed=3)
    n = 400
    gauss = sets.ood_set("gaussian_n01", random_images(n), n, settings, "unused").numpy()
    uniform = sets.ood_set("uniform", random_images(n), n, settings, "unused").numpy()
    # N(0, 1) x 255, not clipped (Hendrycks & Gimpel fed the raw draws): float pixels whose
    # quantiles are the normal's
    assert gauss.dtype == np.float32
    levels = np.array([0.01, 0.25, 0.5, 0.75, 0.99])
    assert np.quantile(gauss / 255, levels) == pytest.approx(norm.ppf(levels), abs=0.02)
    assert abs(uniform.mean() / 255 - 0.5) < 4 * (1 / math.sqrt(12)) / math.sqrt(uniform.size)


def test_misclassification_auroc_equals_scikit_learn_with_right_predictions_positive():
    from headlab.calibration.selective import misclassification_auroc

    rng = np.random.default_rng(0)
    confidence = np.round(rng.random(500), 2)  # ties, as max probabilities have
    error = (rng.random(500) < 0.3 * (1.2 - confidence)).astype(float)
    got = misclassification_auroc(torch.from_numpy(confidence), torch.from_numpy(error))
    assert got == pytest.approx(roc_auc_score(1 - error, confidence), abs=1e-12)
    assert math.isnan(misclassification_auroc(torch.ones(4), torch.zeros(4)))


def test_hendrycks_gimpel_experiment_builds_their_mlp():
    from hydra.utils import instantiate

    cfg = compose_train(["experiment=hendrycks_gimpel"])
    backbone = instantiate(cfg.model.backbone)
    linear = [m for m in backbone if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linear] == [(784, 256), (256, 256), (256, 256)]
    gelus = [m for m in backbone if isinstance(m, torch.nn.GELU)]
    assert len(gelus) == 3 and all(m.approximate == "tanh" for m in gelus)
    assert not any(isinstance(m, torch.nn.BatchNorm1d) for m in backbone)
    assert cfg.trainer.max_epochs == 30 and cfg.data.batch_size == 128
    assert list(cfg.shift.ood) == ["gaussian_n01", "uniform"] and cfg.shift.samples == 10000


def test_an_unknown_mlp_activation_fails_in_one_line():
    from headlab.models import MLP

    with pytest.raises(ConfigValueError) as err:
        MLP(activation="swish")
    assert str(err.value) == (
        "model.backbone.activation: unknown 'swish'; known: relu, gelu, gelu_tanh"
    )


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
    from headlab.run.checks import validate  # the block's checks live with the others

    with pytest.raises(ConfigValueError, match="0: no per-run intervals"):
        validate(compose_train(["shift.bootstrap=-1"]))


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


def test_publish_renders_once_the_pixels_savefig_and_add_figure_gave(tmp_path):
    """The run folder's PNG and the TensorBoard image come from one rendering: the same
    pixels as ``savefig(dpi=100)`` and as TensorBoard's own ``add_figure`` rendering."""
    from types import SimpleNamespace

    from matplotlib.figure import Figure
    from PIL import Image
    from torch.utils.tensorboard._utils import figure_to_image

    from headlab.shift.analysis import OffDistribution

    def figure() -> Figure:
        fig = Figure(figsize=(3, 2))
        ax = fig.subplots()
        ax.plot([0, 1, 2], [1, 0, 2])
        ax.hist(np.random.default_rng(0).normal(size=200), alpha=0.6)
        ax.set_title("rotation 60°")
        return fig

    class Board:
        def add_image(self, tag, pixels, step, dataformats):
            self.got = (tag, np.array(pixels), step, dataformats)

    board = Board()
    run = SimpleNamespace(output_dir=tmp_path, boards=[board], step=7)
    OffDistribution.publish(run, "shift_x", figure())
    figure().savefig(tmp_path / "reference.png", format="png", dpi=100)
    written = np.asarray(Image.open(tmp_path / "shift_x.png").convert("RGBA"))
    assert np.array_equal(written, np.asarray(Image.open(tmp_path / "reference.png")))
    tag, pixels, step, dataformats = board.got
    assert (tag, step, dataformats) == ("shift/shift_x", 7, "HWC")
    assert np.array_equal(pixels, np.moveaxis(figure_to_image(figure()), 0, 2))
