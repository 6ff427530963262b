"""Disentanglement: the scores (MIG and its ceiling, the axis angles of the factors, the beta-VAE
metric), a cached dSprites renderer for the beta-VAE metric, and a sweep that trains one model
per (beta, seed) and scores it.

The scores are pure functions of NumPy arrays (codes and integer factor labels). The sweep trains
with :func:`vaelib.train.fit_many` and :class:`vaelib.objectives.BetaELBO`, and scores the
posterior means (:func:`vaelib.estimates.posterior_means`) with :func:`mig_per_factor`; nothing
here is a new model or loss.
"""

from __future__ import annotations

import numpy as np
import torch

from . import config
from .data import ImageData, render_dsprites
from .estimates import posterior_means
from .objectives import BetaELBO
from .train import evaluate, fit_many

__all__ = [
    "mig_per_factor",
    "mutual_information_gap",
    "mig_ceiling",
    "factor_axis_angles",
    "beta_vae_score",
    "encoder_fn",
    "CachedRenderer",
    "beta_sweep",
    "CONTROL_MIN_MIG",
    "CONTROL_MIN_GAIN",
    "positive_control_holds",
]

# The positive control of chapters 07 and 12: a setting counts as one in which a VAE disentangles when
# the best arm's mean MIG is at least CONTROL_MIN_MIG and at least CONTROL_MIN_GAIN above the mean MIG
# of the same encoders before training (the floor that chance alignment gives).
CONTROL_MIN_MIG = 0.3
CONTROL_MIN_GAIN = 0.2


def positive_control_holds(best_mig: float, floor_mig: float) -> bool:
    """Whether a positive control holds: ``best_mig`` (the best arm's mean MIG) at least
    :data:`CONTROL_MIN_MIG` and at least :data:`CONTROL_MIN_GAIN` above ``floor_mig`` (untrained
    encoders' mean MIG)."""
    for name, v in (("best_mig", best_mig), ("floor_mig", floor_mig)):
        if isinstance(v, bool) or not isinstance(v, (int, float, np.floating)) or not np.isfinite(v):
            raise ValueError(f"{name} must be a finite number (a mean MIG); got {v!r}")
    return bool(best_mig >= CONTROL_MIN_MIG and best_mig - floor_mig >= CONTROL_MIN_GAIN)


def mutual_info_score(a, b) -> float:
    """The plug-in mutual information of two label vectors, in nats (scikit-learn's, imported when first
    used: ``import vaelib`` then costs no scikit-learn import, 2 s on these machines)."""
    from sklearn.metrics import mutual_info_score as _mi

    return _mi(a, b)


def _check_n_bins(n_bins) -> None:
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)):
        raise TypeError(f"n_bins must be an int; got {type(n_bins).__name__}")
    if n_bins < 1:
        raise ValueError(f"n_bins must be at least 1; got {n_bins}")


def _check_factors(factors) -> np.ndarray:
    factors = np.asarray(factors)
    if factors.ndim != 2:
        raise ValueError(f"factors must be 2-D (N, K); got shape {factors.shape}")
    if factors.shape[0] < 1 or factors.shape[1] < 1:
        raise ValueError(f"factors must have at least 1 row and 1 column; got shape {factors.shape}")
    if not np.issubdtype(factors.dtype, np.integer):
        raise TypeError(f"factors must be integer labels; got dtype {factors.dtype}")
    return factors


def _factor_entropy(v: np.ndarray, k: int) -> float:
    # plug-in entropy of the empirical distribution of v, in nats: I(v; v) = H(v)
    h = mutual_info_score(v, v)
    if h <= 0:
        raise ValueError(f"factor {k} is constant in this sample: its entropy is 0, so MIG is undefined")
    return h


def _discretize(codes: np.ndarray, n_bins: int) -> np.ndarray:
    # disentanglement_lib's _histogram_discretize: n_bins equal-width bins over [min, max] of each
    # column; np.digitize against the left edges gives labels 1..n_bins, the last bin closed
    out = np.empty_like(codes, dtype=np.int64)
    for j in range(codes.shape[1]):
        edges = np.histogram(codes[:, j], bins=n_bins)[1]
        out[:, j] = np.digitize(codes[:, j], edges[:-1])
    return out


def mig_per_factor(codes, factors, n_bins: int = 20) -> np.ndarray:
    """Mutual information gap of every factor (Chen et al. 2018), by disentanglement_lib's estimator.

    The estimator, exactly as disentanglement_lib's ``mig.py`` computes it from posterior means:

    1. each code dimension c_j is discretised into ``n_bins`` equal-width bins spanning the
       sample's [min c_j, max c_j] (``np.histogram`` edges, ``np.digitize`` on the left edges, the
       last bin closed);
    2. I(c_j; v_k) is the plug-in mutual information, in nats, of the empirical joint
       distribution of the binned c_j and the factor label v_k (sklearn's ``mutual_info_score``);
    3. H(v_k) is the plug-in entropy of v_k's empirical distribution (so a non-uniform factor is
       normalised by its own entropy, not by log K);
    4. the gap of factor k is the largest minus the second largest I(c_j; v_k) over j, over H(v_k).

    Its ceiling is not 1. A binned code takes at most ``n_bins`` values, so I(c_j; v_k) is at most
    the entropy of the binned code, which is at most log ``n_bins``; a factor with more than
    ``n_bins`` values cannot reach a gap of 1, however perfectly it is encoded. A code that is an
    affine copy of the factor reaches :func:`mig_ceiling` (0.85 for a uniform 32-valued factor and
    20 bins, about log 20 / log 32); factors with at most ``n_bins`` equally spaced values reach 1.
    The plug-in MI is biased upwards on finite samples, so an uninformative code scores slightly
    above 0 (of order (bins - 1)(K - 1) / 2N nats).

    ``codes`` ``(N, C)`` with C >= 2, ``factors`` ``(N, K)`` integer labels. Returns ``(K,)``.
    """
    _check_n_bins(n_bins)
    codes = np.asarray(codes, dtype=np.float64)
    factors = np.asarray(factors)
    if codes.ndim != 2 or factors.ndim != 2:
        raise ValueError(f"codes and factors must be 2-D; got {codes.shape} and {factors.shape}")
    if codes.shape[0] != factors.shape[0]:
        raise ValueError(f"codes have {codes.shape[0]} rows but factors have {factors.shape[0]}")
    if codes.shape[1] < 2:
        raise ValueError("MIG needs at least 2 code dimensions")
    if not np.isfinite(codes).all():
        raise ValueError("codes contain NaN or infinity")
    factors = _check_factors(factors)
    disc = _discretize(codes, n_bins)
    gaps = np.empty(factors.shape[1])
    for k in range(factors.shape[1]):
        h = _factor_entropy(factors[:, k], k)
        mi = np.sort([mutual_info_score(disc[:, j], factors[:, k]) for j in range(codes.shape[1])])[::-1]
        gaps[k] = (mi[0] - mi[1]) / h
    return gaps


def mig_ceiling(factors, n_bins: int = 20) -> np.ndarray:
    """The MIG a perfect code reaches under :func:`mig_per_factor`'s estimator, per factor.

    The perfect code copies each factor's integer label into its own coordinate (an affine
    copy of the factor, as labels 0..K-1 of equally spaced values are). Binned into ``n_bins``
    equal-width bins, that coordinate carries I = H(binned v_k) about v_k, and the other
    coordinates carry none when the factors are independent, so the ceiling of factor k is
    H(binned v_k) / H(v_k): 1 when v_k has at most ``n_bins`` equally spaced values, and below 1
    otherwise (0.85 exactly for 32 uniform values and 20 bins, since 12 bins hold two values and 8
    hold one; about log ``n_bins`` / log K in general). It is exactly the MIG of the copy code on a
    full factorial grid of factors, such as dSprites; on a random sample the copy code scores a
    little lower, because the plug-in MI with the other coordinates is positive. It is the
    ceiling for codes affine in the factor; a nonlinear code that spreads the values more evenly
    over the bins can do slightly better (for a uniform factor equal-width bins are already
    nearly balanced), but no code exceeds log ``n_bins`` / H(v_k).

    ``factors`` ``(N, K)`` integer labels (only each column's distribution matters). Returns ``(K,)``.
    """
    _check_n_bins(n_bins)
    factors = _check_factors(factors)
    disc = _discretize(factors.astype(np.float64), n_bins)
    out = np.empty(factors.shape[1])
    for k in range(factors.shape[1]):
        h = _factor_entropy(factors[:, k], k)
        out[k] = mutual_info_score(disc[:, k], factors[:, k]) / h
    return out


def mutual_information_gap(codes, factors, n_bins: int = 20) -> float:
    """MIG: the mean over factors of :func:`mig_per_factor` (its ceiling is the mean of
    :func:`mig_ceiling`, below 1 when a factor has more than ``n_bins`` values)."""
    return float(mig_per_factor(codes, factors, n_bins).mean())


def factor_axis_angles(codes, factors) -> np.ndarray:
    """For every factor, the angle (degrees) between its direction in code space and the nearest axis.

    The codes are regressed linearly on the standardised factors (least squares with an
    intercept); column k of the coefficients is the direction in which factor k moves the code,
    and its angle to the nearest coordinate axis is arccos(max_j |w_jk| / ||w_k||): 0 when one
    coordinate carries the factor alone, up to arccos(1/sqrt(C)) (45 degrees for C = 2) when it
    is spread evenly. Unlike MIG it measures only orientation, not how cleanly (linearly) the
    code follows the factor. ``codes`` ``(N, C)``, ``factors`` ``(N, K)``. Returns ``(K,)``.
    """
    codes = np.asarray(codes, dtype=np.float64)
    factors = np.asarray(factors, dtype=np.float64)
    if codes.ndim != 2 or factors.ndim != 2 or codes.shape[0] != factors.shape[0]:
        raise ValueError(f"need codes (N, C) and factors (N, K) with the same N; got {codes.shape} and {factors.shape}")
    if not np.isfinite(codes).all():
        raise ValueError("codes contain NaN or infinity")
    sd = factors.std(0)
    if (sd == 0).any():
        raise ValueError(f"factor {int(np.flatnonzero(sd == 0)[0])} is constant: it has no direction")
    design = np.column_stack([np.ones(len(factors)), (factors - factors.mean(0)) / sd])
    w = np.linalg.lstsq(design, codes, rcond=None)[0][1:].T  # (C, K): factor k's direction is column k
    norms = np.linalg.norm(w, axis=0)
    if (norms == 0).any():
        raise ValueError("a factor does not move the code at all: its direction is undefined")
    return np.degrees(np.arccos(np.clip(np.abs(w).max(0) / norms, 0.0, 1.0)))


def beta_vae_score(encode, render, factor_sizes, *, n_train: int = 1000, n_test: int = 500,
                   pairs_per_point: int = 64, seed: int = 0) -> dict[str, float]:
    """The beta-VAE disentanglement metric (Higgins et al. 2017).

    For each point: pick a factor k uniformly, draw ``pairs_per_point`` pairs of factor vectors
    that agree on factor k only by construction, encode both images, and average |z1 - z2|. A
    linear classifier (logistic regression) then predicts k from that average; the score is its
    accuracy on ``n_test`` fresh points. ``encode``: ``(N, D)`` tensor -> ``(N, C)`` codes;
    ``render``: ``(N, K)`` integer factors -> ``(N, D)`` images. Chance level is 1/K.
    """
    from sklearn.linear_model import LogisticRegression

    if not all(isinstance(n, (int, np.integer)) and not isinstance(n, bool) for n in np.ravel(factor_sizes)):
        raise TypeError(f"factor_sizes must be ints (the number of values of each factor); got {factor_sizes!r}")
    sizes = np.asarray(factor_sizes, dtype=np.int64)
    if sizes.ndim != 1 or (sizes < 1).any():
        raise ValueError(f"factor_sizes must be positive ints; got {factor_sizes!r}")
    if len(sizes) < 2:  # with one factor the classifier has one class to predict: the score says nothing
        raise ValueError(f"the beta-VAE metric needs at least 2 factors to tell apart; got factor_sizes={factor_sizes!r}")
    for name, n in (("n_train", n_train), ("n_test", n_test), ("pairs_per_point", pairs_per_point)):
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"{name} must be an int >= 1; got {n!r}")
    rng = np.random.default_rng(config.check_seed(seed))

    def codes_of(v):
        z = np.asarray(encode(render(v)), dtype=np.float64)
        if z.ndim != 2 or z.shape[0] != len(v):
            raise ValueError(f"encode must return one code per image, shape ({len(v)}, C); got shape {z.shape}")
        return z

    def points(n):
        ks = rng.integers(0, len(sizes), size=n)
        v1 = rng.integers(0, sizes, size=(n * pairs_per_point, len(sizes)))
        v2 = rng.integers(0, sizes, size=(n * pairs_per_point, len(sizes)))
        kk = np.repeat(ks, pairs_per_point)
        v2[np.arange(len(kk)), kk] = v1[np.arange(len(kk)), kk]
        z1, z2 = codes_of(v1), codes_of(v2)
        diffs = np.abs(z1 - z2).reshape(n, pairs_per_point, -1).mean(1)
        return diffs, ks

    xtr, ytr = points(n_train)
    xte, yte = points(n_test)
    clf = LogisticRegression(max_iter=2000).fit(xtr, ytr)
    return {"train_accuracy": float(clf.score(xtr, ytr)), "eval_accuracy": float(clf.score(xte, yte))}


def encoder_fn(model, batch_size: int = 2048):
    """A function ``images (N, D) -> posterior means (N, latent_dim)`` for :func:`beta_vae_score`."""

    def encode(images):
        return posterior_means(model, torch.as_tensor(images, dtype=torch.float32), batch_size)

    return encode


class CachedRenderer:
    """``render_dsprites(factors, resolution)`` that remembers what it rendered.

    The beta-VAE metric with a fixed ``seed`` asks for the same factor arrays for every model it
    scores; caching them renders the images once per sweep instead of once per model.
    """

    def __init__(self, resolution: int):
        self.resolution = int(resolution)
        self._cache: dict[tuple, torch.Tensor] = {}

    def __call__(self, factors) -> torch.Tensor:
        f = np.ascontiguousarray(np.asarray(factors, dtype=np.int64))
        key = (f.shape, f.tobytes())
        if key not in self._cache:
            self._cache[key] = render_dsprites(f, self.resolution)
        return self._cache[key]

    def __len__(self) -> int:
        return len(self._cache)


def beta_sweep(make_model, data: ImageData, betas, seeds, *, eval_data: ImageData, epochs: int,
               batch_size: int = 128, lr: float = 1e-3, n_bins: int = 20, progress: bool = False) -> list[dict]:
    """Train one model per ``(beta, seed)`` with :class:`~vaelib.objectives.BetaELBO` and score it.

    ``seeds`` is a list (the same seeds for every beta) or a dict ``{beta: seeds}`` (arms of
    different sizes, e.g. a pre-registered pair with more seeds than the rest of the sweep).
    All models train as one batched computation (:func:`~vaelib.train.fit_many`).
    ``make_model()`` returns a fresh model; it is called after ``config.seed_everything(seed)``,
    so the seed fixes the initialisation as well as the shuffling and the noise, and models of
    one seed are paired: same initialisation, same batches, same noise draws, different beta.
    ``eval_data.y`` must hold integer factor labels ``(N, K)``.
    Returns one dict per run: ``beta``, ``seed``, ``model``, ``history`` (from :func:`fit_many`),
    ``rec`` and ``kl`` (means over ``eval_data``, nats), ``mig`` (``(K,)`` per factor, on the
    posterior means of ``eval_data``).
    """
    if eval_data.y.ndim != 2:
        raise ValueError(f"eval_data.y must be (N, K) factor labels; got shape {tuple(eval_data.y.shape)}")
    if isinstance(seeds, dict):
        missing = [b for b in betas if b not in seeds]
        if missing:
            raise ValueError(f"seeds is a dict but names no seeds for beta {missing}")
        grid = [(float(beta), int(seed)) for beta in betas for seed in seeds[beta]]
    else:
        grid = [(float(beta), int(seed)) for beta in betas for seed in seeds]
    if not grid:
        raise ValueError("beta_sweep needs at least one beta and one seed")
    models = []
    for _, seed in grid:
        config.seed_everything(seed)
        models.append(make_model())
    histories = fit_many(models, data, [BetaELBO(b) for b, _ in grid], seeds=[s for _, s in grid], epochs=epochs,
                         batch_size=batch_size, lr=lr, progress=progress)
    factors = eval_data.y.cpu().numpy()
    runs = []
    for (beta, seed), model, history in zip(grid, models, histories):
        ev = evaluate(model, eval_data, BetaELBO(1.0), seed=seed)
        mig = mig_per_factor(posterior_means(model, eval_data.x), factors, n_bins=n_bins)
        runs.append(dict(beta=beta, seed=seed, model=model, history=history, rec=ev["rec"], kl=ev["kl"], mig=mig))
    return runs
