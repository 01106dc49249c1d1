"""Gaussian mixture model, trained by expectation–maximisation or by gradient.

q(x) = Σ_k π_k N(x; μ_k, Σ_k). With `fit="em"` each training step is one full
EM iteration on the batch (Dempster, Laird & Rubin 1977); with `fit="gradient"`
the same parameters are trained by Adam on −log q.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

import torch
from torch import nn
from torch.distributions import Categorical, MixtureSameFamily, MultivariateNormal

from genviz.models.base import (
    EvaluationCost,
    GenerativeModel,
    Range,
    Reparameterised,
    TrainedBy,
    ViewContext,
)
from genviz.models.contours import contour_view, weighted_means
from genviz.models.gaussian import lower_triangular, raw_from_lower
from genviz.views.layers import View

REG_COVAR = 1e-6  # added to every covariance, as scikit-learn does, so none collapses


def kmeans_plus_plus(x: torch.Tensor, k: int) -> torch.Tensor:
    """k centres by D² seeding (Arthur & Vassilvitskii 2007). x: (n, 2) -> (k, 2)."""
    centres = x[torch.randint(len(x), (1,), device=x.device)]
    for _ in range(k - 1):
        d2 = torch.cdist(x, centres).min(1).values ** 2
        pick = torch.multinomial(d2 + 1e-12, 1)
        centres = torch.cat([centres, x[pick]])
    return centres


class GMM(GenerativeModel):
    title = "Gaussian mixture"
    density_kind = "exact"
    branch = "explicit › tractable › mixture"
    reparameterised = True
    reverse_kl_settings = "fit=gradient"
    summary = "K full-covariance Gaussians; EM makes each step one E and one M step."
    update_batch_size = 8192  # an EM step is a full M-step: it wants a large batch
    view_title = "Each component's 2σ contour, and its weight"

    def __init__(
        self,
        *,
        components: Annotated[int, Range(1, 128), "number of mixture components"] = 32,
        fit: Literal["em", "gradient"] = "em",
    ) -> None:
        super().__init__()
        self.fit = fit
        self.logits = nn.Parameter(torch.zeros(components))
        self.means = nn.Parameter(torch.randn(components, 2))
        self.tril_raw = nn.Parameter(torch.zeros(components, 2, 2))

    @property
    def trained_by(self) -> TrainedBy:
        return "update" if self.fit == "em" else "gradient"

    def evaluation_cost(self) -> EvaluationCost:
        """A 2D Gaussian per component per point (about 10 pairs' work each); an EM step ~3 times that."""
        pairs = 10.0 * len(self.logits)
        return EvaluationCost(0, 0, 0, 0, pairs=pairs, train_pairs=3 * pairs)

    @torch.no_grad()
    def fit_data(self, x: torch.Tensor) -> None:
        """Seed means by k-means++ and give every component a share of the data's spread."""
        k = len(self.logits)
        self.means.copy_(kmeans_plus_plus(x[:4096], k))
        cov = torch.cov(x.T) / k + REG_COVAR * torch.eye(2, device=x.device)
        self.tril_raw.copy_(raw_from_lower(torch.linalg.cholesky(cov)).expand_as(self.tril_raw))
        self.logits.zero_()

    def distribution(self) -> MixtureSameFamily:
        components = MultivariateNormal(self.means, scale_tril=lower_triangular(self.tril_raw))
        return MixtureSameFamily(Categorical(logits=self.logits), components)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        return self.distribution().log_prob(x)

    @torch.no_grad()
    def sample(self, n: int) -> torch.Tensor:
        return self.distribution().sample((n,))

    def rsample_with_log_prob(self, n: int) -> Reparameterised:
        """m = ⌈n/K⌉ reparameterised samples from every component, weighted π_k/m:
        E_q[f] = Σ_k π_k E_{N_k}[f], an unbiased estimate whose every term has gradients (the weights
        through π, the samples through μ_k and L_k), with no discrete draw to relax."""
        k = len(self.logits)
        per = max(1, math.ceil(n / k))
        trils = lower_triangular(self.tril_raw)
        noise = torch.randn(k, per, 2, device=self.means.device)
        x = (self.means[:, None, :] + torch.einsum("kij,kmj->kmi", trils, noise)).reshape(-1, 2)
        weights = (self.logits.softmax(0) / per).repeat_interleave(per)
        return Reparameterised(x, self.log_prob(x), weights)

    @classmethod
    def reverse_kl_refusal(cls, params: dict[str, Any]) -> str | None:
        if params.get("fit", "em") == "em":
            return f"EM fits samples of the data, not a density: set {cls.reverse_kl_settings}"
        return None

    @torch.no_grad()
    def update(self, x: torch.Tensor) -> float:
        """One EM iteration on x; returns the NLL of x before the update."""
        dist = self.distribution()
        joint = dist.component_distribution.log_prob(x[:, None, :]) + dist.mixture_distribution.logits
        log_px = torch.logsumexp(joint, 1, keepdim=True)
        resp = (joint - log_px).exp()  # (n, K) responsibilities
        counts = resp.sum(0) + 1e-10
        means = resp.T @ x / counts[:, None]
        diff = x[None, :, :] - means[:, None, :]  # (K, n, 2)
        cov = torch.einsum("kn,kni,knj->kij", resp.T, diff, diff) / counts[:, None, None]
        cov = cov + REG_COVAR * torch.eye(2, device=x.device)
        self.logits.copy_((counts / counts.sum()).log())
        self.means.copy_(means)
        self.tril_raw.copy_(raw_from_lower(torch.linalg.cholesky(cov)))
        return float(-log_px.mean())

    @torch.no_grad()
    def view(self, context: ViewContext) -> View:
        trils = lower_triangular(self.tril_raw)
        means = weighted_means(self.means, self.logits.softmax(0))
        return contour_view(context, self.means, trils, (2.0,), self.view_title, "2σ contours", means)
