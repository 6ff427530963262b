"""The digit judge: a classifier of real digits that scores generated images (chapters 06-08, 10).

Pure functions of NumPy arrays; the classifier is scikit-learn's.
"""

from __future__ import annotations

import numpy as np

__all__ = ["digit_classifier", "classifier_confidence"]


def digit_classifier(x, y, seed: int = 0):
    """A classifier of real digits (sklearn MLP on the pixels) used to judge generated images.

    ``x`` ``(N, 64)`` in [0, 1], ``y`` ``(N,)`` labels. Returns the fitted classifier.
    """
    from sklearn.neural_network import MLPClassifier

    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y)
    if x.ndim != 2 or len(x) != len(y):
        raise ValueError(f"need x (N, D) and y (N,); got {x.shape} and {y.shape}")
    return MLPClassifier(hidden_layer_sizes=(128,), max_iter=500, alpha=1e-3, random_state=seed).fit(x, y)


def classifier_confidence(clf, images, target=None, threshold: float = 0.9) -> dict[str, float]:
    """How sure ``clf`` is about ``images``: mean top-class probability and the fraction above
    ``threshold``; with ``target`` labels, also the fraction classified as the target.

    Confidence is not diversity (one perfect digit drawn every time scores 1), so the result also
    has ``label_entropy``: the entropy in nats of the labels ``clf`` assigns, from 0 (one class) to
    log(number of classes) (all equally often)."""
    from scipy.stats import entropy

    images = np.asarray(images, dtype=np.float64)
    proba = clf.predict_proba(images)
    top = proba.max(1)
    counts = np.bincount(proba.argmax(1), minlength=proba.shape[1])
    out = {"mean_top_prob": float(top.mean()), "frac_confident": float((top > threshold).mean()),
           "label_entropy": float(entropy(counts))}
    if target is not None:
        pred = clf.classes_[proba.argmax(1)]
        out["frac_target"] = float((pred == np.asarray(target)).mean())
    return out
