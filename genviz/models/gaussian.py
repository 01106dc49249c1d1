"""Full-covariance Gaussian: the simplest explicit, tractable density."""

from __future__ import annotations

import torch
from torch import nn
from torch.distributions import MultivariateNormal

from genviz.models.base import GenerativeModel, Reparameterised, ViewContext
from genviz.models.contours import contour_view
from genviz.views.layers import View


def lower_triangular(raw: torch.Tensor) -> torch.Tensor:
    """(…, 2, 2) unconstrained -> Cholesky factor with positive diagonal exp(raw_ii)."""
    strict = torch.tril(raw, diagonal=-1)
    return strict + torch.diag_embed(torch.diagonal(raw, dim1=-2, dim2=-1).exp())


def raw_from_lower(scale_tril: torch.Tensor) -> torch.Tensor:
    """Inverse of `lower_triangular`."""
    diag = torch.diagonal(scale_tril, dim1=-2, dim2=-1)
    return torch.tril(scale_tril, diagonal=-1) + torch.diag_embed(diag.log())


class Gaussian(GenerativeModel):
    title = "Gaussian (full covariance)"
    density_kind = "exact"
    branch = "explicit › tractable › closed form"
    reparameterised = True
    summary = "One Gaussian, N(μ, LLᵀ): the baseline every other family must beat."
    view_title = "The Gaussian's 1, 2 and 3 σ contours"

    def __init__(self) -> None:
        super().__init__()
        self.mean = nn.Parameter(torch.zeros(2))
        self.tril_raw = nn.Parameter(torch.zeros(2, 2))

    def fit_data(self, x: torch.Tensor) -> None:
        # Start at the data mean with unit scale; the gradient does the rest.
        with torch.no_grad():
            self.mean.copy_(x.mean(0))

    def distribution(self) -> MultivariateNormal:
        return MultivariateNormal(self.mean, scale_tril=lower_triangular(self.tril_raw))

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        return self.distribution().log_prob(x)

    @torch.no_grad()
    def sample(self, n: int) -> torch.Tensor:
        return self.distribution().sample((n,))

    def rsample_with_log_prob(self, n: int) -> Reparameterised:
        """x = μ + L ε with ε ~ N(0, I): gradients reach μ and L through x and through log q."""
        distribution = self.distribution()
        x = distribution.rsample((n,))
        log_q = distribution.log_prob(x)
        return Reparameterised(x, log_q, torch.full_like(log_q, 1.0 / n))

    @torch.no_grad()
    def view(self, context: ViewContext) -> View:
        tril = lower_triangular(self.tril_raw)
        return contour_view(context, self.mean[None], tril, (1.0, 2.0, 3.0), self.view_title, "1, 2, 3 σ")
