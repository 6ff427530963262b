"""The digit judge: a classifier of real digits that scores generated images (chapters 04, 05, 08 and 09).

Pure functions of NumPy arrays; the classifier is scikit-learn's. The chapters train the judge on
the digits' test split, which no generator in the book is trained on, and measure it on the
training split, which the judge never sees. A judge trained on the generators' own training images
could reward a generator for copying them; :func:`memorisation_ratio` asks directly whether the
samples sit closer to the training images than unseen real digits do.
"""

from __future__ import annotations

import numpy as np

__all__ = ["digit_classifier", "classifier_confidence", "noise_confidence", "nearest_distances", "memorisation_ratio"]


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


def _images(name: str, x, dim: int | None = None) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or len(x) == 0:
        raise ValueError(f"{name} must be a non-empty (N, D) array of images; got shape {x.shape}")
    if dim is not None and x.shape[1] != dim:
        raise ValueError(f"{name} must have {dim} pixels per row, like the others; got {x.shape[1]}")
    return x


def noise_confidence(clf, real, n: int = 300, seed: int = 0) -> float:
    """The judge's mean top-class probability on ``n`` images of independent pixels, each pixel on
    with probability equal to its mean over the ``real`` images (the best model with no dependence
    between pixels). A judge that is sure about these is sure about images that are not digits; the
    chapters report it beside every confidence they measure."""
    real = _images("real", real)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int; got {n!r}")
    rng = np.random.default_rng(seed)
    p_on = real.mean(0).clip(0.0, 1.0)
    noise = (rng.random((n, real.shape[1])) < p_on).astype(np.float64)
    return classifier_confidence(clf, noise)["mean_top_prob"]


def nearest_distances(images, reference) -> np.ndarray:
    """Euclidean distance from each of ``images`` ``(N, D)`` to its nearest row of ``reference``
    ``(M, D)``: ``(N,)``. Exact (scikit-learn's brute-force neighbours)."""
    from sklearn.neighbors import NearestNeighbors

    reference = _images("reference", reference)
    images = _images("images", images, reference.shape[1])
    nn = NearestNeighbors(n_neighbors=1, algorithm="brute").fit(reference)
    return nn.kneighbors(images)[0][:, 0]


def memorisation_ratio(samples, train, test) -> float:
    """Median distance of ``samples`` to their nearest ``train`` image over the same for ``test``
    images (real images the generator never saw): 0 when every sample copies a training image,
    about 1 when samples are as close to the training set as new real images are. Well below 1
    is a sign of memorisation; at or above 1 is none (samples may also be far because they are
    blurred, which this statistic cannot tell from novelty)."""
    train = _images("train", train)
    d_test = np.median(nearest_distances(test, train))
    if d_test == 0:
        raise ValueError("every test image is also a training image: the ratio has no scale")
    return float(np.median(nearest_distances(samples, train)) / d_test)
