"""Encoders, decoders and the three models of the book: ``AE``, ``VAE`` and ``CVAE``.

All three share one small interface:

* ``encode(x)`` -> ``(mu, logvar)`` of the Gaussian posterior ``q(z|x)``, each ``(B, latent_dim)``
  (the ``AE`` returns just its code ``z``),
* ``decode(z)`` -> a ``torch.distributions`` distribution over ``x`` whose ``log_prob(x)`` is
  ``(B,)``, summed over the data dimensions: Bernoulli (logits) or Gaussian,
* ``forward(x, eps=None)`` -> :class:`Output` (the decoded distribution, ``mu``, ``logvar``, ``z``);
  ``eps`` is the standard normal noise of the reparameterisation ``(B, latent_dim)``, drawn from
  the global generator when omitted (:func:`vaelib.train.fit` passes it, drawn from its own generator),
* ``terms(x, y=None, eps=None)`` -> ``(px, kl)``: what every training objective is built from, the
  decoded distribution for one reparameterised z and the model's own KL term, ``(B,)`` nats.

Each model declares what it is, so that nothing else in vaelib needs to ask its class:
``likelihood`` (``"bernoulli"`` or ``"gaussian"``), ``has_posterior`` (the ``AE`` has none, and so no
KL), ``needs_labels`` (the ``CVAE``). Every model records its constructor arguments in ``config``,
so that models trained together can be checked to share one architecture. Inputs are flattened
images ``(B, D)``; the convolutional architecture reshapes to ``x_shape`` internally.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn
from torch.distributions import Bernoulli, Independent, Normal

from . import config
from .objectives import kl_terms

__all__ = ["Output", "make_encoder", "make_decoder", "AE", "VAE", "CVAE", "one_per_seed", "require_posterior",
           "check_x", "distribution", "DISTRIBUTION_PARAMS", "LIKELIHOODS", "ARCHS", "POSTERIORS"]

LIKELIHOODS = ("bernoulli", "gaussian")
# The Gaussian decoder's smallest variance: standard deviation 0.01 of a pixel range [0, 1], so each
# pixel's log-density is at most -log(0.01 * sqrt(2 pi)) = 3.69 nats.
DECODER_MIN_LOGVAR = 2 * math.log(0.01)
ARCHS = ("mlp", "conv")
POSTERIORS = ("diagonal", "isotropic")


class Output(NamedTuple):
    px: torch.distributions.Distribution  # p(x|z), log_prob(x) is (B,)
    mu: torch.Tensor | None  # (B, latent) posterior mean (None for the AE)
    logvar: torch.Tensor | None  # (B, latent) posterior log-variance (None for the AE)
    z: torch.Tensor  # (B, latent) the code fed to the decoder


# The tensors that parameterise p(x|z), per likelihood: what a decoded distribution is made from.
DISTRIBUTION_PARAMS = {"bernoulli": ("logits",), "gaussian": ("loc", "scale")}


def distribution(likelihood: str, *params) -> torch.distributions.Distribution:
    """p(x|z) from its parameters (:data:`DISTRIBUTION_PARAMS`): ``log_prob(x)`` sums over the last dim."""
    if likelihood == "bernoulli":
        return Independent(Bernoulli(logits=params[0], validate_args=False), 1)
    if likelihood == "gaussian":
        return Independent(Normal(*params, validate_args=False), 1)
    raise ValueError(f"likelihood must be one of {LIKELIHOODS}; got {likelihood!r}")


def _check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}; got {value!r}")


def _noise(eps, like: torch.Tensor) -> torch.Tensor:
    """The reparameterisation noise: ``eps`` when given (checked against ``like``), else fresh N(0, I)."""
    if eps is None:
        return torch.randn_like(like)
    if not isinstance(eps, torch.Tensor) or eps.shape != like.shape:
        raise ValueError(f"eps must be a tensor of shape {tuple(like.shape)}; got {tuple(getattr(eps, 'shape', ()))}")
    return eps


def _is_batched(t: torch.Tensor) -> bool:
    """True inside ``torch.func.vmap`` (a per-model slice of stacked models), where values cannot be read."""
    check = getattr(getattr(torch._C, "_functorch", None), "is_batchedtensor", None)
    return bool(check is not None and check(t))


def check_x(x: torch.Tensor, x_dim: int, model: nn.Module) -> None:
    """Refuse, with a clear error, input that a model of ``x_dim`` pixels cannot take: not a tensor,
    not ``(B, x_dim)``, or not in the model's dtype (every model of the library checks its input so)."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor; got {type(x).__name__}")
    if x.ndim != 2 or x.shape[1] != x_dim:
        raise ValueError(f"x must have shape (B, {x_dim}); got {tuple(x.shape)}")
    dtype = next(model.parameters()).dtype
    if x.dtype != dtype:
        hint = f", or the model with .to({x.dtype})" if x.dtype.is_floating_point else ""
        raise TypeError(f"x must have the model's dtype {dtype}; got {x.dtype} (convert the data with .to({dtype}){hint})")


class _Conv(nn.Module):
    """Burgess et al. (2018) style encoder trunk: stride-2 4x4 convolutions, then an MLP."""

    def __init__(self, x_shape, out_dim, hidden, channels=32):
        super().__init__()
        c, h, w = x_shape
        if h != w or h not in (16, 32, 64):
            raise ValueError(f"the conv architecture takes square 16, 32 or 64 pixel images; got {x_shape}")
        n_down = int(math.log2(h)) - 2  # down to 4x4
        layers, cin = [], c
        for _ in range(n_down):
            layers += [nn.Conv2d(cin, channels, 4, 2, 1), nn.ReLU()]
            cin = channels
        self.x_shape = tuple(x_shape)
        self.net = nn.Sequential(
            *layers, nn.Flatten(), nn.Linear(channels * 16, hidden), nn.ReLU(), nn.Linear(hidden, out_dim)
        )

    def forward(self, x):
        return self.net(x.reshape(-1, *self.x_shape))


class _Deconv(nn.Module):
    def __init__(self, in_dim, x_shape, hidden, channels=32):
        super().__init__()
        c, h, _ = x_shape
        n_up = int(math.log2(h)) - 2
        self.channels = channels
        self.fc = nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, channels * 16), nn.ReLU())
        layers = []
        for i in range(n_up):
            last = i == n_up - 1
            layers.append(nn.ConvTranspose2d(channels, c if last else channels, 4, 2, 1))
            if not last:
                layers.append(nn.ReLU())
        self.net = nn.Sequential(*layers)

    def forward(self, z):
        h = self.fc(z).reshape(-1, self.channels, 4, 4)
        return self.net(h).flatten(1)


def make_encoder(arch, x_shape, in_extra, out_dim, hidden):
    """An encoder network ``(B, D + in_extra) -> (B, out_dim)``."""
    _check_choice("arch", arch, ARCHS)
    d = math.prod(x_shape)
    if arch == "mlp":
        return nn.Sequential(
            nn.Linear(d + in_extra, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, out_dim)
        )
    if in_extra:
        raise ValueError("conditioning inputs are supported by the mlp architecture only")
    return _Conv(x_shape, out_dim, hidden)


def make_decoder(arch, latent_dim, x_shape, hidden):
    """A decoder network ``(B, latent_dim) -> (B, D)`` of distribution parameters."""
    _check_choice("arch", arch, ARCHS)
    d = math.prod(x_shape)
    if arch == "mlp":
        return nn.Sequential(
            nn.Linear(latent_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, d)
        )
    return _Deconv(latent_dim, x_shape, hidden)


class _Base(nn.Module):
    def __init__(self, x_shape, latent_dim, arch, hidden, likelihood):
        super().__init__()
        _check_choice("likelihood", likelihood, LIKELIHOODS)
        _check_choice("arch", arch, ARCHS)
        if len(tuple(x_shape)) != 3:
            raise ValueError(f"x_shape must be (C, H, W); got {x_shape!r}")
        if isinstance(latent_dim, bool) or not isinstance(latent_dim, int) or latent_dim < 1:
            raise ValueError(f"latent_dim must be a positive int; got {latent_dim!r}")
        if isinstance(hidden, bool) or not isinstance(hidden, int) or hidden < 1:
            raise ValueError(f"hidden must be a positive int (units per hidden layer); got {hidden!r}")
        self.x_shape = tuple(int(s) for s in x_shape)
        self.x_dim = math.prod(self.x_shape)
        self.latent_dim = latent_dim
        self.likelihood = likelihood
        if likelihood == "gaussian":
            # one learned log-variance per pixel: a proper Gaussian likelihood, not a fixed MSE
            self.decoder_logvar = nn.Parameter(torch.zeros(self.x_dim))

    def _px(self, params: torch.Tensor) -> torch.distributions.Distribution:
        """p(x|z) from decoder outputs ``(B, D)``; its ``log_prob`` sums over the D pixels."""
        if self.likelihood == "bernoulli":
            return distribution("bernoulli", params)
        # floored: a learned variance that may go to 0 makes the likelihood of a pixel the decoder
        # predicts exactly (e.g. one that is 0 in every image) unbounded, and with it the ELBO
        # (Mattei & Frellsen, 2018)
        logvar = self.decoder_logvar.clamp(min=DECODER_MIN_LOGVAR)
        scale = torch.exp(0.5 * logvar).expand_as(params)
        return distribution("gaussian", params, scale)

    def terms(self, x, y=None, eps=None, per_dim: bool = False):
        """``(px, kl)``: p(x|z) for one reparameterised z = mu + sigma * eps, and KL(q(z|x) || p(z)) ``(B,)``.

        The reconstruction term of the ELBO is ``px.log_prob(x)``. ``per_dim=True`` gives the KL of
        every latent dimension, ``(B, latent_dim)``, unsummed. ``y`` is read only by a model with
        ``needs_labels``. Unchecked (no host synchronisation): training validates its data once.
        """
        out = self(x, y, eps=eps) if self.needs_labels else self(x, eps=eps)
        return out.px, self.kl(out, y, per_dim)

    def kl(self, out: Output, y=None, per_dim: bool = False) -> torch.Tensor:
        """KL(q(z|x) || p(z)) of a forward pass, closed form ({eq}`kl-standard`): ``(B,)``, or
        ``(B, latent_dim)`` with ``per_dim``. Overridden by a model whose prior is not N(0, I)."""
        terms = kl_terms(out.mu, out.logvar)
        return terms if per_dim else terms.sum(-1)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Means of p(x|z) for ``n`` codes z ~ N(0, I): ``(n, D)``."""
        device = next(self.parameters()).device
        z = torch.randn(n, self.latent_dim, device=device, generator=generator)
        return self.decode(z).mean


class VAE(_Base):
    has_posterior, needs_labels = True, False

    """Variational autoencoder: q(z|x) = N(mu(x), diag exp(logvar(x))), p(z) = N(0, I).

    ``posterior="isotropic"`` restricts q to one variance per example, N(mu(x), s(x)^2 I): the
    encoder outputs ``latent_dim + 1`` numbers and ``logvar`` repeats the last one. With it the
    whole objective is unchanged by a rotation z -> Rz of the code (the decoder can absorb R), so
    nothing in it prefers the coordinate axes; the default diagonal posterior is not rotation
    invariant (the chapter on beta-VAE and disentanglement measures what that does).
    """

    def __init__(self, x_shape, latent_dim, arch="mlp", hidden=256, likelihood="bernoulli", posterior="diagonal"):
        super().__init__(x_shape, latent_dim, arch, hidden, likelihood)
        _check_choice("posterior", posterior, POSTERIORS)
        self.config = dict(x_shape=list(self.x_shape), latent_dim=latent_dim, arch=arch, hidden=hidden,
                           likelihood=likelihood, posterior=posterior)
        self.posterior = posterior
        n_var = latent_dim if posterior == "diagonal" else 1
        self.encoder = make_encoder(arch, self.x_shape, 0, latent_dim + n_var, hidden)
        self.decoder = make_decoder(arch, latent_dim, self.x_shape, hidden)

    def encode(self, x):
        """``(B, D)`` -> ``(mu, logvar)``, each ``(B, latent_dim)``."""
        check_x(x, self.x_dim, self)
        h = self.encoder(x)
        mu, logvar = h[..., : self.latent_dim], h[..., self.latent_dim :]
        if self.posterior == "isotropic":
            logvar = logvar.expand_as(mu)
        return mu, logvar

    def decode(self, z):
        """``(B, latent_dim)`` -> p(x|z)."""
        return self._px(self.decoder(z))

    def forward(self, x, eps=None):
        """Encode, draw z = mu + sigma * eps ({eq}`reparam`), decode."""
        mu, logvar = self.encode(x)
        z = mu + torch.exp(0.5 * logvar) * _noise(eps, mu)
        return Output(self.decode(z), mu, logvar, z)


class AE(_Base):
    """Deterministic autoencoder with the same networks as :class:`VAE`.

    ``input_noise > 0`` adds N(0, input_noise^2) noise to the code before decoding during
    training (the "noise on the decoder input" fix that the source text says is not enough).
    It has no posterior q(z|x), so no KL: :meth:`terms` returns ``kl=None``, and anything that
    needs a posterior (the ELBO, a KL) refuses an AE.
    """

    has_posterior, needs_labels = False, False

    def __init__(self, x_shape, latent_dim, arch="mlp", hidden=256, likelihood="bernoulli", input_noise=0.0):
        super().__init__(x_shape, latent_dim, arch, hidden, likelihood)
        if isinstance(input_noise, bool) or not isinstance(input_noise, (int, float)) \
                or not math.isfinite(input_noise) or input_noise < 0:
            raise ValueError(f"input_noise must be a finite number >= 0; got {input_noise!r}")
        self.config = dict(x_shape=list(self.x_shape), latent_dim=latent_dim, arch=arch, hidden=hidden,
                           likelihood=likelihood, input_noise=input_noise)
        self.input_noise = input_noise
        self.encoder = make_encoder(arch, self.x_shape, 0, latent_dim, hidden)
        self.decoder = make_decoder(arch, latent_dim, self.x_shape, hidden)

    def encode(self, x):
        """``(B, D)`` -> the code ``z`` ``(B, latent_dim)``."""
        check_x(x, self.x_dim, self)
        return self.encoder(x)

    def decode(self, z):
        return self._px(self.decoder(z))

    def forward(self, x, eps=None):
        """Encode; in training with ``input_noise``, decode z + input_noise * eps instead of z."""
        z = self.encode(x)
        z_in = z + self.input_noise * _noise(eps, z) if (self.training and self.input_noise) else z
        return Output(self.decode(z_in), None, None, z)

    def kl(self, out=None, y=None, per_dim: bool = False):
        """None: an AE has no posterior q(z|x), so there is no KL term (see :func:`require_posterior`)."""
        return None


class CVAE(_Base):
    """Conditional VAE on class labels ``y``.

    ``prior="conditional"`` is Sohn et al. (2015): encoder q(z|x,y) and decoder p(x|z,y) both
    see the label, and the prior p(z|y) = N(mu(y), diag exp(logvar(y))) is learned.
    ``prior="class_mean"`` is the source text's minimal change: an unconditional encoder and
    decoder, and a learned prior mean per class with unit variance, p(z|y) = N(mu^y, I).
    Its KL term is to that prior, KL(q(z|x,y) || p(z|y)) ({eq}`kl-diag`).
    ``decoder_label=True`` with ``prior="class_mean"`` also hands the label to the decoder,
    p(x|z,y), keeping the class-mean prior and the unconditional encoder: the arm that separates
    what a conditional model owes to its decoder from what it owes to its prior. (Sohn et al.'s
    model always conditions its decoder; ``decoder_label=False`` with it is an error.)
    """

    has_posterior, needs_labels = True, True

    def __init__(self, x_shape, latent_dim, n_classes, prior="conditional", arch="mlp", hidden=256,
                 likelihood="bernoulli", decoder_label=None):
        super().__init__(x_shape, latent_dim, arch, hidden, likelihood)
        _check_choice("prior", prior, ("conditional", "class_mean"))
        if not isinstance(n_classes, int) or n_classes < 2:
            raise ValueError(f"n_classes must be an int >= 2; got {n_classes!r}")
        if decoder_label is None:
            decoder_label = prior == "conditional"
        if not isinstance(decoder_label, bool):
            raise TypeError(f"decoder_label must be True, False or None; got {decoder_label!r}")
        if prior == "conditional" and not decoder_label:
            raise ValueError("decoder_label=False needs prior='class_mean': the conditional CVAE's decoder "
                             "always sees the label")
        self.config = dict(x_shape=list(self.x_shape), latent_dim=latent_dim, n_classes=n_classes, prior=prior,
                           arch=arch, hidden=hidden, likelihood=likelihood, decoder_label=decoder_label)
        self.n_classes = n_classes
        self.prior_kind = prior
        self.decoder_label = decoder_label
        cond = n_classes if prior == "conditional" else 0
        self.encoder = make_encoder(arch, self.x_shape, cond, 2 * latent_dim, hidden)
        self.decoder = make_decoder(arch, latent_dim + (n_classes if decoder_label else 0), self.x_shape, hidden)
        if prior == "conditional":
            self.prior_net = nn.Embedding(n_classes, 2 * latent_dim)
            nn.init.zeros_(self.prior_net.weight)
        else:
            self.class_means = nn.Embedding(n_classes, latent_dim)
            nn.init.normal_(self.class_means.weight, std=1.0)

    def _onehot(self, y):
        if not isinstance(y, torch.Tensor) or y.dtype.is_floating_point or y.dtype.is_complex or y.dtype == torch.bool:
            raise TypeError(f"y must be an integer tensor of class labels (any integer dtype); "
                            f"got {getattr(y, 'dtype', type(y).__name__)}")
        if y.ndim != 1:
            raise ValueError(f"y must be (B,); got shape {tuple(y.shape)}")
        # inside vmap (fit_many) values cannot be read; fit_many checks the labels once, up front
        if not _is_batched(y) and y.numel() and (int(y.min()) < 0 or int(y.max()) >= self.n_classes):
            raise ValueError(f"labels must lie in 0..{self.n_classes - 1}")
        classes = torch.arange(self.n_classes, device=y.device)
        return (y.long().unsqueeze(-1) == classes).to(self.decoder_dtype)

    @property
    def decoder_dtype(self):
        return next(self.parameters()).dtype

    def prior(self, y):
        """p(z|y) as ``(mu, logvar)``, each ``(B, latent_dim)``."""
        self._onehot(y)  # checks the labels
        if self.prior_kind == "conditional":
            return self.prior_net(y.long()).chunk(2, dim=-1)
        mu = self.class_means(y.long())
        return mu, torch.zeros_like(mu)

    def kl(self, out: Output, y=None, per_dim: bool = False) -> torch.Tensor:
        """KL(q(z|x,y) || p(z|y)), closed form ({eq}`kl-diag`): ``(B,)``, or ``(B, latent_dim)`` with ``per_dim``."""
        if y is None:
            raise ValueError("a CVAE's KL is to its prior p(z|y): pass the labels y")
        terms = kl_terms(out.mu, out.logvar, *self.prior(y))
        return terms if per_dim else terms.sum(-1)

    def encode(self, x, y):
        check_x(x, self.x_dim, self)
        if y.shape[0] != x.shape[0]:
            raise ValueError(f"x has {x.shape[0]} rows but y has {y.shape[0]}")
        inp = torch.cat([x, self._onehot(y)], dim=1) if self.prior_kind == "conditional" else x
        return self.encoder(inp).chunk(2, dim=-1)

    def decode(self, z, y):
        inp = torch.cat([z, self._onehot(y)], dim=1) if self.decoder_label else z
        return self._px(self.decoder(inp))

    def forward(self, x, y, eps=None):
        mu, logvar = self.encode(x, y)
        z = mu + torch.exp(0.5 * logvar) * _noise(eps, mu)
        return Output(self.decode(z, y), mu, logvar, z)

    def sample(self, y, generator=None):
        """Means of p(x|z, y) for z ~ p(z|y): one image per label in ``y``."""
        mu, logvar = self.prior(y)
        eps = torch.randn(mu.shape, device=mu.device, generator=generator)
        return self.decode(mu + torch.exp(0.5 * logvar) * eps, y).mean


def require_posterior(model, what: str) -> None:
    """Raise ``TypeError`` when ``model`` has no posterior q(z|x) (an :class:`AE`) but ``what`` needs one."""
    if not getattr(model, "has_posterior", False):
        raise TypeError(f"{what} needs a model with a posterior q(z|x) (a VAE or CVAE); a "
                        f"{type(model).__name__} has none (has_posterior is False)")


def one_per_seed(make, seeds) -> list[nn.Module]:
    """``[make() for each seed]``, each built right after :func:`vaelib.config.seed_everything` with its
    seed, so seed s fixes model s's initialisation (the same in every arm that shares the seeds)."""
    if not callable(make):
        raise TypeError(f"make must be a function that builds a model; got {type(make).__name__}")
    out = []
    for s in seeds:
        config.seed_everything(s)
        out.append(make())
    return out
