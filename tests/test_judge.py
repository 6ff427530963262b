"""The digit judge: what its confidence measures and what it does not."""

import numpy as np
import pytest

from vaelib.judge import classifier_confidence


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
