"""The objectives of the book, as pure functions and small callables for :func:`vaelib.train.fit`.

Per-example quantities (shape ``(B,)``) are summed over data and latent dimensions. The
training objectives average over the batch, because the optimiser needs one scalar; that
average is the (1/M)-scaled minibatch estimate of the per-example mean of the data set
(see the chapter on minibatch SGD, {eq}`sgd-unbiased`), so the reconstruction and KL terms are
always scaled alike.

A training objective (:class:`Objective`) turns the batch means of the two ELBO terms into
``(loss, metrics)``, the scalar to minimise and a dict of scalar tensors to log. Its
hyperparameters are numbers for one model, or ``(K,)`` tensors for K models trained together
(:meth:`Objective.stack`): the same ``loss`` then serves one model and K, broadcasting over K.
Called as ``objective(model, x, y, step)`` it computes the terms on a batch first. The terms
themselves are the model's: ``model.terms(x, y, eps)`` (:mod:`vaelib.models`).
"""

from __future__ import annotations

import copy
import math
import numbers
from typing import NamedTuple

import torch

__all__ = [
    "gaussian_kl",
    "ELBOTerms",
    "elbo",
    "kl_terms",
    "check_targets",
    "check_number",
    "Objective",
    "Reconstruction",
    "BetaELBO",
    "CapacityELBO",
    "ConstrainedELBO",
    "WarmupELBO",
    "FreeBitsELBO",
]


def _as_tensor(name, v, like):
    if isinstance(v, torch.Tensor):
        return v
    if isinstance(v, (int, float)):
        return torch.tensor(float(v), dtype=like.dtype, device=like.device)
    raise TypeError(f"{name} must be a tensor or a number; got {type(v).__name__}")


def gaussian_kl(mu, logvar, prior_mu=0.0, prior_logvar=0.0, check: bool = True) -> torch.Tensor:
    """KL( N(mu, diag e^logvar) || N(prior_mu, diag e^prior_logvar) ), summed over the last dim.

    Implements {eq}`kl-diag` of the Gaussian KL chapter, term by term:
    ``1/2 * sum(prior_logvar - logvar + (e^logvar + (mu - prior_mu)^2) / e^prior_logvar - 1)``.
    With the defaults it is {eq}`kl-standard`, ``1/2 sum(mu^2 + e^logvar - logvar - 1)``.
    Shapes: ``mu`` and ``logvar`` ``(..., d)``; the prior arguments broadcast against them.
    Returns ``(...)``: one KL per example. ``check=False`` skips the input validation (shapes,
    NaN), which costs host synchronisations; the training objectives use it on model outputs.
    """
    if not check:
        return _kl_terms(mu, logvar, prior_mu, prior_logvar).sum(dim=-1)
    if not isinstance(mu, torch.Tensor) or not isinstance(logvar, torch.Tensor):
        raise TypeError("mu and logvar must be torch tensors")
    if mu.shape != logvar.shape:
        raise ValueError(f"mu and logvar must have the same shape; got {tuple(mu.shape)} and {tuple(logvar.shape)}")
    if mu.ndim == 0:
        raise ValueError("mu must have at least one (latent) dimension")
    prior_mu = _as_tensor("prior_mu", prior_mu, mu)
    prior_logvar = _as_tensor("prior_logvar", prior_logvar, mu)
    for name, t in (("mu", mu), ("logvar", logvar), ("prior_mu", prior_mu), ("prior_logvar", prior_logvar)):
        if not t.dtype.is_floating_point:
            raise TypeError(f"{name} must be a real floating-point tensor; got dtype {t.dtype}")
    try:
        shape = torch.broadcast_shapes(mu.shape, prior_mu.shape, prior_logvar.shape)
    except RuntimeError as err:
        shape = None
        cause = err
    else:
        cause = None
    if shape != mu.shape:  # a prior may broadcast against mu, never widen the result
        raise ValueError(f"prior shapes {tuple(prior_mu.shape)}, {tuple(prior_logvar.shape)} must broadcast to "
                         f"mu's shape {tuple(mu.shape)}") from cause
    for name, t in (("mu", mu), ("logvar", logvar), ("prior_mu", prior_mu), ("prior_logvar", prior_logvar)):
        if not torch.isfinite(t).all():
            raise ValueError(f"{name} contains NaN or infinity")
    return _kl_terms(mu, logvar, prior_mu, prior_logvar).sum(dim=-1)


def kl_terms(mu, logvar, prior_mu=0.0, prior_logvar=0.0):
    """The summands of :func:`gaussian_kl`, one per latent dimension, ``(..., d)``, unchecked."""
    return _kl_terms(mu, logvar, prior_mu, prior_logvar)


def _kl_terms(mu, logvar, prior_mu, prior_logvar):
    if isinstance(prior_mu, float) and isinstance(prior_logvar, float) and prior_mu == 0.0 and prior_logvar == 0.0:
        return 0.5 * (mu**2 + torch.exp(logvar) - logvar - 1.0)
    prior_logvar = torch.as_tensor(prior_logvar, dtype=mu.dtype, device=mu.device)
    return 0.5 * (prior_logvar - logvar + (torch.exp(logvar) + (mu - prior_mu) ** 2) * torch.exp(-prior_logvar) - 1.0)


class ELBOTerms(NamedTuple):
    """Per-example parts of the ELBO, each ``(B,)``: ``elbo = rec - kl``."""

    elbo: torch.Tensor
    rec: torch.Tensor  # one-sample estimate of E_q[log p(x|z)]
    kl: torch.Tensor  # KL(q(z|x) || p(z)) in closed form


def check_targets(model, x: torch.Tensor) -> None:
    """Raise ``ValueError`` for empty or NaN inputs, or for Bernoulli targets outside [0, 1]."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor; got {type(x).__name__}")
    if x.numel() == 0:
        raise ValueError(f"x is empty (shape {tuple(x.shape)}): there is nothing to evaluate")
    if torch.isnan(x).any():
        raise ValueError("x contains NaN")
    if getattr(model, "likelihood", None) == "bernoulli":
        lo, hi = float(x.min()), float(x.max())
        if lo < 0.0 or hi > 1.0:
            raise ValueError(f"a Bernoulli likelihood needs targets in [0, 1]; got values in [{lo:.3g}, {hi:.3g}]")


def elbo(model, x, y=None, check: bool = True, eps=None) -> ELBOTerms:
    """The ELBO {eq}`elbo-kl-form` = E_q[log p(x|z)] - KL(q(z|x) || p(z)), per example.

    One reparameterised sample of z estimates the reconstruction term; the KL is the model's own,
    closed form ({eq}`kl-diag`: to N(0, I), or to p(z|y) for a :class:`~vaelib.models.CVAE`).
    ``x`` is ``(B, D)``; ``eps`` ``(B, latent_dim)`` is the reparameterisation noise (drawn from the
    global generator when omitted). Returns :class:`ELBOTerms` of ``(B,)`` tensors, in nats.
    A model without a posterior (an AE) has no ELBO: ``TypeError``.
    """
    if not getattr(model, "has_posterior", False):
        raise TypeError(f"the ELBO needs a model with a posterior q(z|x) (a VAE or CVAE); a {type(model).__name__} "
                        f"has none (has_posterior is False)")
    if check:
        check_targets(model, x)
    px, kl = model.terms(x, y, eps=eps)
    if check and not torch.isfinite(kl).all():
        raise ValueError("the KL term is NaN or infinite: the encoder returned non-finite mu or logvar")
    rec = px.log_prob(x)
    return ELBOTerms(rec - kl, rec, kl)


def check_number(name, value, minimum, strict=False):
    """A hyperparameter: a finite real number >= ``minimum`` (> with ``strict``), else a clear error."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number; got {type(value).__name__}")
    if not math.isfinite(value) or value < minimum or (strict and value == minimum):
        raise ValueError(f"{name} must be a finite number {'>' if strict else '>='} {minimum:g}; got {value}")


class Objective:
    """A training objective: ``loss(rec, kl, step)`` from the batch means of the two ELBO terms.

    ``rec`` is the batch mean of log p(x|z) and ``kl`` that of the model's KL term, 0-d tensors for
    one model or ``(K,)`` for K models trained together (:meth:`stack`); ``loss`` returns ``(loss,
    metrics)``, the loss to minimise and a dict of tensors of the same shape to log. ``train=False``
    (evaluation) leaves any state of the objective (a dual variable) untouched. An objective with
    ``kl_per_dimension = True`` receives ``kl`` as the batch means of the KL of every latent
    dimension, ``(latent_dim,)`` (``(K, latent_dim)`` for K models), unsummed; one with
    ``needs_kl = False`` (:class:`Reconstruction`) also trains a model without a posterior (an AE).
    ``hyperparameters`` names the numbers that define the objective; :meth:`stack` makes each a
    ``(K,)`` tensor. Calling the objective, ``objective(model, x, y, step)``, computes the terms first.
    """

    kl_per_dimension = False
    needs_kl = True
    hyperparameters: tuple[str, ...] = ()

    def loss(self, rec, kl, step: int, train: bool = True):
        raise NotImplementedError

    def check_model(self, model) -> None:
        """Raise ``TypeError`` when ``model`` cannot be trained with this objective (an AE has no KL)."""
        if self.needs_kl and not getattr(model, "has_posterior", False):
            raise TypeError(f"{type(self).__name__} needs the KL of a posterior q(z|x); a {type(model).__name__} has "
                            f"no posterior (has_posterior is False): train it with Reconstruction()")

    def value(self, name: str, like: torch.Tensor) -> torch.Tensor:
        """Hyperparameter ``name`` as a tensor of ``like``'s dtype and device: 0-d, or ``(K,)`` when stacked.
        Schedules are computed in float64 first (:meth:`schedule`), as Python floats would be. Read once
        per dtype and device (no new tensor every step): to change a hyperparameter, build a new objective."""
        cache = self.__dict__.setdefault("_values", {})
        key = (name, like.dtype, like.device)
        if key not in cache:
            cache[key] = self.schedule(name).to(dtype=like.dtype, device=like.device)
        return cache[key]

    def schedule(self, name: str, step=None) -> torch.Tensor:
        """Hyperparameter ``name`` as a float64 CPU tensor (0-d, or ``(K,)`` when stacked)."""
        return torch.as_tensor(getattr(self, name), dtype=torch.float64)

    @classmethod
    def stack(cls, objectives) -> Objective:
        """One objective for K models trained together: every hyperparameter becomes a ``(K,)`` tensor.

        All K objectives must be of this one class; the result's ``loss`` on ``(K,)`` terms equals
        the K members' losses on their own terms (tested for every objective).
        """
        objectives = list(objectives)
        kinds = {type(o) for o in objectives}
        if not objectives or kinds != {cls}:
            raise ValueError(f"objectives trained together must all be {cls.__name__}; got "
                             f"{sorted(k.__name__ for k in kinds) or 'none'}")
        stacked = copy.copy(objectives[0])
        stacked.__dict__.pop("_values", None)
        for name in cls.hyperparameters:
            setattr(stacked, name, torch.tensor([float(getattr(o, name)) for o in objectives], dtype=torch.float64))
        return stacked

    def write_back(self, objectives) -> None:
        """After training a stacked objective, hand each member its share of the state (none by default)."""

    def __call__(self, model, x, y=None, step=0, eps=None):
        self.check_model(model)
        px, kl = model.terms(x, y, eps=eps, per_dim=self.kl_per_dimension)
        return self.loss(px.log_prob(x).mean(), None if kl is None else kl.mean(0), step)


class Reconstruction(Objective):
    """Autoencoder loss: the negative log-likelihood -log p(x|z) of the code, batch mean."""

    needs_kl = False

    def loss(self, rec, kl, step, train=True):
        return -rec, {"rec": rec}


class BetaELBO(Objective):
    """Minimise -(E_q[log p(x|z)] - beta * KL), batch mean ({eq}`beta-vae`; beta = 1 is the ELBO)."""

    hyperparameters = ("beta",)

    def __init__(self, beta: float = 1.0):
        check_number("beta", beta, minimum=0.0)
        self.beta = float(beta)

    def loss(self, rec, kl, step, train=True):
        beta = self.value("beta", rec)
        return -(rec - beta * kl), {"elbo": rec - kl, "rec": rec, "kl": kl}


class CapacityELBO(Objective):
    """Burgess et al. (2018): minimise -E_q[log p(x|z)] + gamma * |KL - C|, batch mean,
    with the capacity C growing linearly from 0 to ``c_max`` nats over ``anneal_steps`` steps."""

    hyperparameters = ("gamma", "c_max", "anneal_steps")

    def __init__(self, gamma: float, c_max: float, anneal_steps: int):
        check_number("gamma", gamma, minimum=0.0)
        check_number("c_max", c_max, minimum=0.0)
        if isinstance(anneal_steps, bool) or not isinstance(anneal_steps, numbers.Integral) or anneal_steps < 1:
            raise ValueError(f"anneal_steps must be an int >= 1; got {anneal_steps!r}")
        self.gamma, self.c_max, self.anneal_steps = float(gamma), float(c_max), int(anneal_steps)

    def capacity(self, step: int) -> torch.Tensor:
        """C(step) = c_max * min(1, step / anneal_steps), float64 (0-d, or (K,) when stacked)."""
        return self.schedule("c_max") * torch.clamp(step / self.schedule("anneal_steps"), max=1.0)

    def loss(self, rec, kl, step, train=True):
        c = self.capacity(step).to(dtype=rec.dtype, device=rec.device)
        loss = -rec + self.value("gamma", rec) * (kl - c).abs()
        return loss, {"elbo": rec - kl, "rec": rec, "kl": kl, "capacity": c}


class ConstrainedELBO(Objective):
    """max E_q[log p(x|z)] s.t. KL <= delta, by gradient descent-ascent on the Lagrangian
    F = E_q[log p(x|z)] - beta (KL - delta) ({eq}`kkt-lagrangian`).

    The model takes a descent step on the loss -F; beta takes a projected gradient ascent step on
    the loss, beta <- max(0, beta + lr_beta * (KL - delta)), since d(-F)/d(beta) = KL - delta. For
    the problem written as min -E_q[log p(x|z)] s.t. KL <= delta this is dual ascent: the dual
    function d(beta) = min -F is maximised over beta >= 0 and d'(beta) = KL - delta at the inner
    minimiser (in the max form, the dual g = -d is minimised and the step descends g). So beta
    grows while the constraint is violated and decays to 0 while it is slack (complementary
    slackness). The dual step is taken on every training batch, not in evaluation (``train=False``).
    """

    hyperparameters = ("delta", "lr_beta", "beta")

    def __init__(self, delta: float, lr_beta: float = 0.01, beta0: float = 1.0):
        check_number("delta", delta, minimum=0.0)
        check_number("lr_beta", lr_beta, minimum=0.0, strict=True)
        check_number("beta0", beta0, minimum=0.0)
        self.delta, self.lr_beta = float(delta), float(lr_beta)
        self.beta = float(beta0)  # the starting value; the dual variable itself is _beta_t
        self._beta_t = None

    def loss(self, rec, kl, step, train=True):
        if self._beta_t is None or self._beta_t.device != kl.device or self._beta_t.dtype != kl.dtype:
            self._beta_t = self.value("beta", kl).clone()
        beta, delta = self._beta_t.clone(), self.value("delta", kl)
        loss = -(rec - beta * (kl - delta))
        if train:  # dual ascent, on the device, without a host sync
            self._beta_t = torch.clamp(beta + self.value("lr_beta", kl) * (kl.detach() - delta), min=0.0)
        return loss, {"elbo": rec - kl, "rec": rec, "kl": kl, "beta": beta}

    @property
    def current_beta(self):
        """The dual variable now: a float (a list of K floats when stacked)."""
        if self._beta_t is None:
            return self.beta if isinstance(self.beta, float) else self.beta.tolist()
        return self._beta_t.tolist()

    def write_back(self, objectives) -> None:
        for i, o in enumerate(objectives):
            o._beta_t = None if self._beta_t is None else self._beta_t[i].clone()


class WarmupELBO(Objective):
    """KL warm-up (Bowman et al. 2016): minimise -(E_q[log p(x|z)] - beta(step) * KL), batch mean,
    with the weight beta(step) = min(1, step / warmup_steps) rising linearly from 0 to 1.

    Once ``step >= warmup_steps`` this is :class:`BetaELBO` with beta = 1, the ELBO. The logged
    ``elbo`` is always the ELBO itself, whatever the current weight. Evaluation (``step=0``) logs
    the weight 0 and a loss without the KL; read ``elbo``, ``rec`` and ``kl`` there.
    """

    hyperparameters = ("warmup_steps",)

    def __init__(self, warmup_steps: int):
        if isinstance(warmup_steps, bool) or not isinstance(warmup_steps, numbers.Integral) or warmup_steps < 1:
            raise ValueError(f"warmup_steps must be an int >= 1; got {warmup_steps!r}")
        self.warmup_steps = int(warmup_steps)

    def weight(self, step: int) -> torch.Tensor:
        """min(1, step / warmup_steps), float64 (0-d, or (K,) when stacked)."""
        return torch.clamp(step / self.schedule("warmup_steps"), max=1.0)

    def loss(self, rec, kl, step, train=True):
        beta = self.weight(step).to(dtype=rec.dtype, device=rec.device)
        return -(rec - beta * kl), {"elbo": rec - kl, "rec": rec, "kl": kl, "beta": beta}


class FreeBitsELBO(Objective):
    """Free bits (Kingma et al. 2016, one group per latent dimension): minimise
    -E_q[log p(x|z)] + sum_j max(lam, KL_j), where KL_j is the batch mean of KL(q(z_j|x) || p(z_j)).

    A dimension whose KL is below ``lam`` nats pays ``lam`` whatever it carries, so its KL has no
    gradient: the encoder may put up to ``lam`` nats into every dimension for free. With
    ``lam = 0`` this is the ELBO. ``kl`` arrives per dimension (``kl_per_dimension = True``); the
    logged ``kl`` and ``elbo`` are the plain sums, the ELBO itself.
    """

    kl_per_dimension = True
    hyperparameters = ("lam",)

    def __init__(self, lam: float):
        check_number("lam", lam, minimum=0.0)
        self.lam = float(lam)

    def loss(self, rec, kl, step, train=True):
        if kl.ndim != rec.ndim + 1:
            raise ValueError(f"FreeBitsELBO needs the KL of every latent dimension, shape {tuple(rec.shape) + ('L',)}; "
                             f"got shape {tuple(kl.shape)}")
        total = kl.sum(-1)
        lam = self.value("lam", rec).unsqueeze(-1)
        return -rec + torch.maximum(kl, lam).sum(-1), {"elbo": rec - total, "rec": rec, "kl": total}
