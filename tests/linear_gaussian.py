"""A linear-Gaussian latent variable model whose posterior and evidence are known exactly.

z ~ N(0, I_d), x | z ~ N(W z + b, s^2 I_D). With W = Q diag(a), Q having orthonormal columns,
the posterior is diagonal: Sigma = diag(s^2 / (s^2 + a^2)), m = Sigma W^T (x - b) / s^2, and
log p(x) = log N(x; b, W W^T + s^2 I).
"""

import torch
from torch.distributions import Independent, MultivariateNormal, Normal


class LinearGaussian:
    def __init__(self, D=5, d=2, s=0.7, seed=0, posterior_shift=0.0):
        g = torch.Generator().manual_seed(seed)
        q, _ = torch.linalg.qr(torch.randn(D, d, generator=g, dtype=torch.float64))
        self.a = torch.linspace(0.5, 2.0, d, dtype=torch.float64)
        self.W = q * self.a
        self.b = torch.randn(D, generator=g, dtype=torch.float64)
        self.s = s
        self.shift = posterior_shift
        self.likelihood = "gaussian"

    def encode(self, x):
        var = self.s**2 / (self.s**2 + self.a**2)
        m = (x - self.b) @ self.W * var / self.s**2 + self.shift
        return m, torch.log(var).expand_as(m)

    def decode(self, z):
        return Independent(Normal(z @ self.W.T + self.b, self.s), 1)

    def log_evidence(self, x):
        cov = self.W @ self.W.T + self.s**2 * torch.eye(self.W.shape[0], dtype=torch.float64)
        return MultivariateNormal(self.b, covariance_matrix=cov).log_prob(x)

    def sample(self, n, seed=1):
        g = torch.Generator().manual_seed(seed)
        z = torch.randn(n, self.W.shape[1], generator=g, dtype=torch.float64)
        return z @ self.W.T + self.b + self.s * torch.randn(n, self.W.shape[0], generator=g, dtype=torch.float64)
