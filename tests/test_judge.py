"""The digit judge: what its confidence measures and what it does not."""

import numpy as np
import pytest

from vaelib.judge import classifier_confidence, memorisation_ratio, nearest_distances, noise_confidence


class _FixedClassifier:
    """predict_proba returns the rows it was given: the test decides what the judge says."""

    classes_ = np.arange(10)

    def predict_proba(self, x):
        return np.asarray(x)


def test_classifier_confidence_tells_confidence_from_diversity():
    clf = _FixedClassifier()
    one_digit = np.tile(np.eye(10)[1], (50, 1))  # fifty perfect "1"s
    all_digits = np.tile(np.eye(10), (5, 1))  # five perfect copies of every digit
    same = classifier_confidence(clf, one_digit)
    every = classifier_confidence(clf, all_digits)
    assert same["frac_confident"] == every["frac_confident"] == 1.0  # confidence cannot tell them apart
    assert same["label_entropy"] == 0.0
    assert every["label_entropy"] == pytest.approx(np.log(10), abs=1e-12)
    two = classifier_confidence(clf, np.vstack([np.eye(10)[[0] * 30], np.eye(10)[[7] * 10]]))
    assert two["label_entropy"] == pytest.approx(-(0.75 * np.log(0.75) + 0.25 * np.log(0.25)), abs=1e-12)


def test_nearest_distances_known_answers():
    ref = np.array([[0.0, 0.0], [3.0, 4.0]])
    d = nearest_distances(np.array([[0.0, 0.0], [3.0, 0.0], [6.0, 8.0]]), ref)
    np.testing.assert_allclose(d, [0.0, 3.0, 5.0], atol=1e-12)  # 3-4-5 triangles
    with pytest.raises(ValueError, match="pixels per row"):
        nearest_distances(np.zeros((2, 3)), ref)


def test_memorisation_ratio_separates_copies_from_new_images():
    rng = np.random.default_rng(0)
    train, test = rng.random((200, 16)), rng.random((100, 16))
    assert memorisation_ratio(train[:50], train, test) == 0.0  # copies
    assert memorisation_ratio(test, train, test) == 1.0  # the test images themselves
    # fresh draws from the same distribution: near 1 (medians of 100 draws each)
    assert 0.85 < memorisation_ratio(rng.random((100, 16)), train, test) < 1.15
    near_copies = train[:100] + 0.01 * rng.standard_normal((100, 16))
    assert memorisation_ratio(near_copies, train, test) < 0.2
    with pytest.raises(ValueError, match="no scale"):
        memorisation_ratio(train[:5], train, train[:5])


def test_noise_confidence_draws_pixels_at_the_real_means():
    class _Count:
        classes_ = np.arange(2)

        def predict_proba(self, x):
            on = x.mean(1)  # share of pixels on
            return np.stack([1 - on, on], 1)

    real = np.tile([1.0, 0.0, 1.0, 0.0], (10, 1))  # pixels 0 and 2 always on, 1 and 3 never
    # every noise image is exactly [1, 0, 1, 0]: half on, so the top probability is 0.5
    assert noise_confidence(_Count(), real, n=20) == pytest.approx(0.5, abs=1e-12)
    with pytest.raises(ValueError, match="n must be"):
        noise_confidence(_Count(), real, n=0)
