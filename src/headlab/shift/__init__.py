"""Off the training distribution: shifted test sets (labels kept), inputs of no class (OOD),
per-head scores of "how in-distribution is this input", their metrics and figures.

Everything is built in memory from MNIST test, scikit-learn's bundled digits and
matplotlib's bundled fonts (and FashionMNIST's test files where Debian's package put them),
deterministically from a seed: no download unless KMNIST is asked for.
``analysis.analyse_off_distribution`` is the one entry point; the post-test analysis
(``headlab.run.train``) calls it after the calibration analysis.

* ``transforms``  -- geometric and pixel transforms of uint8 image batches,
* ``corruptions`` -- MNIST-C's 15 corruptions at its fixed severities (own implementations),
* ``letters``     -- letters rendered from matplotlib's fonts in MNIST's format,
* ``fashion``     -- FashionMNIST's test images from IDX files on disk (never downloaded),
* ``sets``        -- the shifted and OOD sets by name, and each OOD set's near/far family,
* ``scores``      -- per-sample OOD scores from logits (higher = more in-distribution),
* ``metrics``     -- shift metrics (calibration estimators) and OOD metrics (scikit-learn),
* ``figures``     -- accuracy/ECE vs angle, accuracy vs confidence, histograms, image grid,
* ``settings``    -- the ``shift:`` config block, checked before anything trains.

May import: ``errors``, ``tables``, ``files``, ``layout``, ``heads``, ``calibration``,
``metrics``, ``data``.
Never ``models``, ``run`` or ``sweeps``.
"""

#: per-sample OOD scores and shifted predictions, beside ``test_predictions.npz``
SHIFT_FILE = "off_distribution.npz"

__all__ = ["SHIFT_FILE"]
