"""Metrics: importance-sampled log-likelihood, latent usage, disentanglement, sample quality.

Metrics that need only arrays are pure functions of NumPy arrays and return numbers.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from sklearn.metrics import mutual_info_score

from .objectives import check_targets, gaussian_kl

__all__ = [
    "iwae_log_likelihood",
    "active_units",
    "kl_per_dimension",
    "mig_per_factor",
    "mutual_information_gap",
    "mig_ceiling",
    "factor_axis_angles",
    "beta_vae_score",
    "digit_classifier",
    "classifier_confidence",
    "class_target_fractions",
    "gaussian_fit_kl",
    "aggregate_posterior",
    "aggregate_log_ratio",
]

_LOG_2PI = math.log(2 * math.pi)


def _std_normal_logpdf(z):
    return -0.5 * (z**2 + _LOG_2PI).sum(-1)


def _normal_logpdf(z, mu, logvar):
    return -0.5 * ((z - mu) ** 2 * torch.exp(-logvar) + logvar + _LOG_2PI).sum(-1)


IWAE_MAX_ROWS = 10**9  # k * len(x) above this is refused: at ~1e6 decoder rows a second, over 15 minutes


def _encode(model, x):
    """``model.encode(x)`` as ``(mu, logvar)``, or a clear error for a model without a posterior."""
    out = model.encode(x)
    if not (isinstance(out, tuple) and len(out) == 2):
        raise TypeError(f"this metric needs a model with a Gaussian posterior, encode(x) -> (mu, logvar), such as a "
                        f"VAE; a model of class {type(model).__name__} encodes to a {type(out).__name__}")
    return out


@torch.no_grad()
def iwae_log_likelihood(model, x: torch.Tensor, k: int, max_rows: int = 2**16,
                        generator: torch.Generator | None = None) -> torch.Tensor:
    """Importance-sampled estimate of log p(x) (Burda et al. 2015), per example, in nats.

    log p(x) ~= log (1/k) sum_i p(x|z_i) p(z_i) / q(z_i|x),  z_i ~ q(z|x)   ({eq}`iwae-bound`)

    computed as a log-mean-exp. ``model`` is any object with ``encode(x) -> (mu, logvar)`` and
    ``decode(z) ->`` a distribution whose ``log_prob(x)`` is ``(B,)``, and the prior N(0, I).
    The k samples are drawn in chunks of at most ``max_rows`` decoder rows and combined with a
    running logsumexp, so k = 5000 fits in memory. k = 1 is the (one-sample) ELBO.
    ``x`` is ``(B, D)``; returns ``(B,)``.
    """
    if isinstance(k, bool) or not isinstance(k, int):
        raise TypeError(f"k must be an int; got {type(k).__name__}")
    if k < 1:
        raise ValueError(f"k must be at least 1; got {k}")
    check_targets(model, x)
    if x.ndim != 2:
        raise ValueError(f"x must be (B, D); got shape {tuple(x.shape)}")
    if k * x.shape[0] > IWAE_MAX_ROWS:
        raise ValueError(f"k * len(x) = {k * x.shape[0]:,} decoder evaluations is more than IWAE_MAX_ROWS = "
                         f"{IWAE_MAX_ROWS:,} (hours on a CPU); use a smaller k or fewer images")
    was_training = getattr(model, "training", False)
    if hasattr(model, "eval"):
        model.eval()
    mu, logvar = _encode(model, x)
    b = x.shape[0]
    chunk = max(1, min(k, max_rows // max(b, 1)))
    sigma = torch.exp(0.5 * logvar)
    running = torch.full((b,), -math.inf, dtype=mu.dtype, device=mu.device)
    done = 0
    while done < k:
        c = min(chunk, k - done)
        eps = torch.randn((c, *mu.shape), dtype=mu.dtype, device=mu.device, generator=generator)
        z = mu + sigma * eps  # (c, B, L)
        px = model.decode(z.reshape(c * b, -1))
        log_px_z = px.log_prob(x.repeat(c, 1)).reshape(c, b)
        log_w = log_px_z + _std_normal_logpdf(z) - _normal_logpdf(z, mu, logvar)
        running = torch.logaddexp(running, torch.logsumexp(log_w, dim=0))
        done += c
    if was_training and hasattr(model, "train"):
        model.train()
    return running - math.log(k)


@torch.no_grad()
def _posterior_params(model, x, batch_size=1024):
    mus, logvars = [], []
    check_targets(model, x)
    for s in range(0, x.shape[0], batch_size):
        mu, logvar = _encode(model, x[s : s + batch_size])
        mus.append(mu)
        logvars.append(logvar)
    return torch.cat(mus), torch.cat(logvars)


def active_units(model, x: torch.Tensor, threshold: float = 0.01):
    """Burda et al. (2015): unit u is active if Cov_x( E_q(u|x)[u] ) > ``threshold``.

    Returns ``(number active, per-dimension variance of the posterior mean over x)`` with the
    variances as a NumPy array ``(latent_dim,)``.
    """
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not threshold >= 0 \
            or math.isinf(threshold):
        raise ValueError(f"threshold must be a finite number >= 0; got {threshold!r}")
    if not isinstance(x, torch.Tensor) or x.ndim != 2:
        raise ValueError(f"x must be a (N, D) tensor; got {getattr(x, 'shape', type(x).__name__)}")
    if x.shape[0] < 2:
        raise ValueError("active_units needs at least 2 examples to estimate a variance")
    was_training = model.training
    model.eval()
    mu, _ = _posterior_params(model, x)
    model.train(was_training)
    var = mu.double().var(dim=0, unbiased=True).cpu().numpy()
    return int((var > threshold).sum()), var


def kl_per_dimension(model, x: torch.Tensor) -> np.ndarray:
    """Mean over x of KL(q(z_j|x) || N(0, 1)) for every latent dimension j: ``(latent_dim,)`` nats."""
    was_training = model.training
    model.eval()
    mu, logvar = _posterior_params(model, x)
    model.train(was_training)
    per_dim = gaussian_kl(mu.unsqueeze(-1), logvar.unsqueeze(-1))  # sum over a last dim of size 1
    return per_dim.mean(0).double().cpu().numpy()


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
    if min(n_train, n_test, pairs_per_point) < 1:
        raise ValueError("n_train, n_test and pairs_per_point must be >= 1")
    rng = np.random.default_rng(seed)

    def points(n):
        ks = rng.integers(0, len(sizes), size=n)
        v1 = rng.integers(0, sizes, size=(n * pairs_per_point, len(sizes)))
        v2 = rng.integers(0, sizes, size=(n * pairs_per_point, len(sizes)))
        kk = np.repeat(ks, pairs_per_point)
        v2[np.arange(len(kk)), kk] = v1[np.arange(len(kk)), kk]
        z1 = np.asarray(encode(render(v1)), dtype=np.float64)
        z2 = np.asarray(encode(render(v2)), dtype=np.float64)
        diffs = np.abs(z1 - z2).reshape(n, pairs_per_point, -1).mean(1)
        return diffs, ks

    xtr, ytr = points(n_train)
    xte, yte = points(n_test)
    clf = LogisticRegression(max_iter=2000).fit(xtr, ytr)
    return {"train_accuracy": float(clf.score(xtr, ytr)), "eval_accuracy": float(clf.score(xte, yte))}


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


def class_target_fractions(clf, images, target, n_classes: int = 10) -> np.ndarray:
    """For every class k, the fraction of the images requested as k that ``clf`` labels k.

    ``images`` ``(N, D)``, ``target`` ``(N,)`` integer labels. Returns ``(n_classes,)``, NaN for a
    class that no image requested.
    """
    images = np.asarray(images, dtype=np.float64)
    target = np.asarray(target)
    if images.ndim != 2 or target.shape != (images.shape[0],):
        raise ValueError(f"need images (N, D) and target (N,); got {images.shape} and {target.shape}")
    pred = clf.predict(images)
    out = np.full(n_classes, np.nan)
    for k in range(n_classes):
        asked = target == k
        if asked.any():
            out[k] = float((pred[asked] == k).mean())
    return out


def gaussian_fit_kl(codes) -> float:
    """KL( N(m, S) || N(0, I) ) in nats, where m and S are the sample mean and covariance of ``codes``.

    How far the cloud of codes is from the prior a sampler would draw from, by {eq}`kl-diag`'s
    full-covariance form ``1/2 (tr S + m^T m - d - log det S)``: 0 when the codes look like
    N(0, I) to second order, large when they are shifted, shrunk or blown up.
    ``codes`` ``(N, d)`` with N > d. Returns a float.
    """
    codes = np.asarray(codes, dtype=np.float64)
    if codes.ndim != 2 or codes.shape[0] <= codes.shape[1]:
        raise ValueError(f"codes must be (N, d) with N > d; got shape {codes.shape}")
    if not np.isfinite(codes).all():
        raise ValueError("codes contain NaN or infinity")
    d = codes.shape[1]
    m = codes.mean(0)
    s = np.atleast_2d(np.cov(codes, rowvar=False))
    sign, logdet = np.linalg.slogdet(s)
    if sign <= 0:
        raise ValueError("the codes' covariance is singular: they do not span all d dimensions")
    return float(0.5 * (np.trace(s) + m @ m - d - logdet))


def _mixture_log_density(z, mu, logvar, chunk: int | None = None):
    """log q(z) = log (1/N) sum_n N(z; mu_n, diag e^logvar_n) for every row of ``z`` ``(M, L)``: ``(M,)``.

    The N Gaussian log-densities of a chunk of rows come from three matrix products (the square
    expanded), in float64, so that M x N never needs an (M, N, L) tensor; the chunk is sized so
    that its (chunk, N) temporaries stay near 2**22 numbers (32 MiB) whatever N is."""
    n = mu.shape[0]
    if chunk is None:
        chunk = max(1, 2**22 // n)
    inv = torch.exp(-logvar)  # (N, L)
    const = (mu**2 * inv).sum(1) + logvar.sum(1) + mu.shape[1] * _LOG_2PI  # (N,)
    out = []
    for s in range(0, z.shape[0], chunk):
        zc = z[s : s + chunk]
        quad = (zc**2) @ inv.T - 2 * zc @ (mu * inv).T  # (m, N)
        out.append(torch.logsumexp(-0.5 * (quad + const), dim=1) - math.log(n))
    return torch.cat(out)


def _posteriors64(model, x, name="x"):
    if not isinstance(x, torch.Tensor) or x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"{name} must be a (N, D) tensor with N >= 2 rows (the aggregate posterior averages "
                         f"over them); got {getattr(x, 'shape', type(x).__name__)}")
    was_training = model.training
    model.eval()
    mu, logvar = _posterior_params(model, x)
    model.train(was_training)
    return mu.double(), logvar.double()


@torch.no_grad()
def aggregate_posterior(model, x: torch.Tensor, n_samples: int = 1,
                        generator: torch.Generator | None = None) -> dict[str, float]:
    """Split the average KL term, E_n KL(q(z|x_n) || p(z)) = I_q(x; z) + KL(q(z) || p(z)) (Hoffman
    and Johnson 2016), for the aggregate posterior q(z) = (1/N) sum_n q(z|x_n) of the N rows of ``x``.

    q(z) is a mixture of N Gaussians, so its density is exact; the two expectations are Monte Carlo,
    over ``n_samples`` draws z ~ q(z|x_n) for every row n (which together are draws from q(z)):

    * ``mutual_info``: I_q = E[log q(z|x_n) - log q(z)], at most log N (``log_n``); every single
      term is at most log N too (``mutual_info_max_term``), since the mixture holds q(z|x_n)/N;
    * ``marginal_kl``: KL(q(z) || p(z)) = E[log q(z) - log p(z)], p = N(0, I);
    * ``rate``: the average KL term in closed form ({eq}`kl-standard`);
    * ``mutual_info_se``, ``marginal_kl_se``: standard errors of the two over the draws.

    The two estimates add up to a Monte Carlo estimate of ``rate`` by construction (log q(z)
    cancels), so their sum checks nothing about q(z). Everything in nats, float64. ``generator``
    seeds the draws (on its own device; they are then moved to the model's).
    """
    if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 1:
        raise ValueError(f"n_samples must be an int >= 1; got {n_samples!r}")
    mu, logvar = _posteriors64(model, x)
    n, d = mu.shape
    gen_device = generator.device if generator is not None else mu.device
    eps = torch.randn(n_samples, n, d, generator=generator, dtype=torch.float64, device=gen_device).to(mu.device)
    z = (mu + torch.exp(0.5 * logvar) * eps).reshape(-1, d)  # row r is from q(z|x_{r mod n})
    log_cond = _normal_logpdf(z, mu.repeat(n_samples, 1), logvar.repeat(n_samples, 1))
    log_agg = _mixture_log_density(z, mu, logvar)
    mi, mkl = log_cond - log_agg, log_agg - _std_normal_logpdf(z)
    m = z.shape[0]

    def se(v):
        return float(v.std(unbiased=True) / math.sqrt(m)) if m > 1 else float("nan")

    return {"mutual_info": float(mi.mean()), "marginal_kl": float(mkl.mean()),
            "rate": float(gaussian_kl(mu, logvar).mean()), "mutual_info_se": se(mi), "marginal_kl_se": se(mkl),
            "mutual_info_max_term": float(mi.max()), "log_n": math.log(n)}


@torch.no_grad()
def aggregate_log_ratio(model, x: torch.Tensor, z) -> np.ndarray:
    """log q(z) - log p(z) at the points ``z`` ``(M, latent_dim)``: how much more (> 0) or less (< 0)
    the aggregate posterior of the rows of ``x`` puts on each point than the prior N(0, I) does.

    Under prior draws its mean is -KL(p(z) || q(z)); a prior draw with a very negative value lies
    in a "hole", where the codes of the rows of ``x`` are rare, so the decoder was hardly trained
    there. Returns ``(M,)`` float64 nats.
    """
    mu, logvar = _posteriors64(model, x)
    z = torch.as_tensor(z, dtype=torch.float64, device=mu.device)
    if z.ndim != 2 or z.shape[1] != mu.shape[1]:
        raise ValueError(f"z must be (M, {mu.shape[1]}), points in the model's latent space; got {tuple(z.shape)}")
    if not torch.isfinite(z).all():
        raise ValueError("z contains NaN or infinity")
    return (_mixture_log_density(z, mu, logvar) - _std_normal_logpdf(z)).cpu().numpy()
