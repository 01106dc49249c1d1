"""Kernel density estimate: the nonparametric explicit density.

q(x) = (1/n) Σ_i N(x; x_i, h² Σ̂) with Σ̂ the data covariance and h = s · n^(−1/6)
(Scott's rule in 2D, scaled by the `bandwidth` slider). Each training step adds
the batch to the kernel centres, so the estimate sharpens as data arrive; the
step's loss is the NLL of the new batch before it is added (a held-out score).
"""

from __future__ import annotations

import math
from typing import Annotated

import torch

from genviz.models.base import EvaluationCost, GenerativeModel, Range, TrainedBy, ViewContext
from genviz.models.contours import contour_view
from genviz.numerics import logsumexp
from genviz.views.layers import Points, View

PAIRS_PER_BLOCK = 1 << 18  # (point, centre) pairs per block: 1 MB of float32, fast and bounded in memory
SEED_POINTS = 100  # centres before the first step, so the estimate visibly sharpens as data arrive
VIEW_KERNELS = 12  # kernels whose 1σ contour the view draws


class KDE(GenerativeModel):
    title = "Kernel density estimate"
    density_kind = "exact"
    branch = "explicit › tractable › nonparametric"
    summary = "A Gaussian bump on every stored point; bandwidth by Scott's rule × a factor."
    view_title = "Kernel centres, and the shape of one kernel"

    def __init__(
        self,
        *,
        bandwidth: Annotated[float, Range(0.05, 5.0, log=True), "factor on Scott's rule"] = 0.5,
        max_points: Annotated[int, Range(10, 50_000), "kernel centres kept"] = 2000,
    ) -> None:
        super().__init__()
        self.bandwidth = bandwidth
        self.max_points = max_points
        self.register_buffer("points", torch.zeros(0, 2))

    @property
    def trained_by(self) -> TrainedBy:
        return "update"

    def evaluation_cost(self) -> EvaluationCost:
        """A distance to every kept centre per point, in blocks of PAIRS_PER_BLOCK pairs; no network."""
        centres = float(self.max_points)
        block = 16 * PAIRS_PER_BLOCK  # bytes of a block's temporaries
        return EvaluationCost(0, 0, 0, 0, pairs=centres, train_pairs=centres, working_bytes=block)

    def fit_data(self, x: torch.Tensor) -> None:
        self.points = x[: min(SEED_POINTS, self.max_points)].detach().clone()

    def kernel_tril(self) -> torch.Tensor:
        """(2, 2) Cholesky factor of the kernel covariance h² Σ̂."""
        n = len(self.points)
        cov = torch.cov(self.points.T) + 1e-9 * torch.eye(2, device=self.points.device)
        h = self.bandwidth * n ** (-1 / 6)
        return torch.linalg.cholesky(cov) * h

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        tril = self.kernel_tril()
        log_norm = math.log(2 * math.pi) + torch.log(torch.diagonal(tril)).sum() + math.log(len(self.points))
        centres = torch.linalg.solve_triangular(tril, self.points.T, upper=False).T
        # written into one tensor: small results kept between the blocks' large temporaries would
        # fragment the heap, and the process would hold on to gigabytes it no longer uses
        out = torch.empty(len(x), device=x.device, dtype=x.dtype)
        rows = max(1, PAIRS_PER_BLOCK // len(centres))
        for start in range(0, len(x), rows):
            z = torch.linalg.solve_triangular(tril, x[start : start + rows].T, upper=False).T
            out[start : start + rows] = logsumexp(-0.5 * torch.cdist(z, centres) ** 2, 1) - log_norm
        return out

    @torch.no_grad()
    def update(self, x: torch.Tensor) -> float:
        nll = float(-self.log_prob(x).mean())
        room = self.max_points - len(self.points)
        if room > 0:
            self.points = torch.cat([self.points, x[:room].detach()])
        return nll

    @torch.no_grad()
    def sample(self, n: int) -> torch.Tensor:
        which = torch.randint(len(self.points), (n,), device=self.points.device)
        noise = torch.randn(n, 2, device=self.points.device) @ self.kernel_tril().T
        return self.points[which] + noise

    @torch.no_grad()
    def view(self, context: ViewContext) -> View:
        """The stored centres, and the 1σ contour of the kernel around a few of them."""
        step = max(1, len(self.points) // VIEW_KERNELS)
        shown = self.points[::step][:VIEW_KERNELS]
        title = f"{len(self.points):,} kernel centres; 1σ of the kernel around {len(shown)} of them"
        centres = Points(self.points.cpu().numpy(), "kernel centres", "kernel")
        return contour_view(context, shown, self.kernel_tril(), (1.0,), title, "kernel, 1σ", centres)
