"""Kernel density estimate: the nonparametric explicit density.

q(x) = (1/n) Σ_i N(x; x_i, h² S), with h = c · n^(−1/6) (c = 1 is Scott's rule in 2D) and S the
kernel's shape: the data covariance Σ̂, or σ̄² I with σ̄² the data's mean variance. Each training
step adds the batch to the kernel centres, so the estimate sharpens as data arrive; the step's loss
is the NLL of the new batch before it is added (a held-out score).

`bandwidth_rule="auto"` chooses (S, c) the way cross-validation does, from data the estimate has not
seen: every candidate of `SHAPES` × `FACTORS` is scored on a share of each arriving batch before
that batch joins the centres, the running scores pick the best, and a parabola through the best
factor and its neighbours refines it. `"fixed"` keeps c = `bandwidth` on Σ̂.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

import torch

from genviz.models.base import EvaluationCost, GenerativeModel, Range, TrainedBy, ViewContext
from genviz.models.contours import contour_view
from genviz.numerics import EXP_FLOOR, logsumexp
from genviz.views.layers import Points, View

PAIRS_PER_BLOCK = 1 << 18  # (point, centre) pairs per block: 1 MB of float32, fast and bounded in memory
BLOCK_BYTES = 20  # per pair of a block: distances, scaled distances, two temporaries, a copy mask
SEED_POINTS = 100  # centres before the first step, so the estimate visibly sharpens as data arrive
VIEW_KERNELS = 12  # kernels whose 1σ contour the view draws
SHAPES = ("isotropic", "data covariance")  # the kernel shapes S the automatic rule compares
FACTOR_STEP = math.sqrt(2.0)  # the ratio of neighbouring candidate factors
FACTORS = tuple(2.0 ** ((k - 10) / 2) for k in range(13))  # candidate factors c on Scott's rule: 1/32 … 2
START = (0, FACTORS.index(0.25))  # (shape, factor) before anything was scored
SCORE_SHARE = 16  # one point of each batch in this many scores every candidate: their cost stays bounded
INIT_SCORED = 1000  # points of the initial sample, beyond the seed centres, that score the candidates
RULE_HELP = (
    "auto: the kernel of best log-likelihood on each new batch before it joins the centres; "
    "fixed: the bandwidth factor on Scott's rule"
)


def refined_factor(scores: torch.Tensor, best: int) -> float:
    """FACTORS[best], moved to the top of the parabola through its mean score and its neighbours'
    in log c (at most half a step either way). scores: (len(FACTORS),) mean log-likelihoods."""
    if not 0 < best < len(FACTORS) - 1:
        return FACTORS[best]
    low, top, high = (float(s) for s in scores[best - 1 : best + 2])
    curvature = low - 2 * top + high
    shift = 0.5 * (low - high) / curvature if curvature < 0 else 0.0
    return FACTORS[best] * FACTOR_STEP ** max(-0.5, min(0.5, shift))


def log_kernel_sums(gap: torch.Tensor, nearest: torch.Tensor, h: float) -> torch.Tensor:
    """log Σ_j exp(−d²_ij / 2h²) for each row i, from gap = d² − nearest, nearest the row minimum of
    d² (r, 1): a log-sum-exp that knows each row's largest term, in fewer passes over the block."""
    scale = -0.5 / h**2
    return (gap * scale).clamp_min_(EXP_FLOOR).exp_().sum(1).log() + nearest.squeeze(1) * scale


class KDE(GenerativeModel):
    title = "Kernel density estimate"
    density_kind = "exact"
    branch = "explicit › tractable › nonparametric"
    summary = (
        "A Gaussian bump on every stored point; the bandwidth that best predicts each new batch "
        "before it is stored (or Scott's rule × a factor)."
    )
    update_batch_size = SCORE_SHARE  # so that every batch has a point to score the candidates
    view_title = "Kernel centres, and the shape of one kernel"

    def __init__(
        self,
        *,
        bandwidth_rule: Annotated[Literal["auto", "fixed"], RULE_HELP] = "auto",
        bandwidth: Annotated[
            float, Range(0.05, 5.0, log=True), "factor on Scott's rule when bandwidth_rule is fixed"
        ] = 0.5,
        max_points: Annotated[int, Range(10, 50_000), "kernel centres kept"] = 5000,
    ) -> None:
        super().__init__()
        self.bandwidth_rule = bandwidth_rule
        self.bandwidth = bandwidth
        self.max_points = max_points
        self.register_buffer("points", torch.zeros(0, 2))
        # Σ of held-out log q under every (shape, factor) candidate; `weight` is what the sums count
        # after older ones were discounted as the centres grew, `scored` the points scored in all.
        self.register_buffer("scores", torch.zeros(len(SHAPES), len(FACTORS), dtype=torch.float64))
        self.register_buffer("weight", torch.zeros((), dtype=torch.float64))
        self.register_buffer("scored", torch.zeros((), dtype=torch.int64))

    @property
    def trained_by(self) -> TrainedBy:
        return "update"

    @property
    def candidates(self) -> int:
        """Kernels scored on each arriving point share: all of SHAPES × FACTORS, or none when fixed."""
        return len(SHAPES) * len(FACTORS) if self.bandwidth_rule == "auto" else 0

    def evaluation_cost(self) -> EvaluationCost:
        """A distance to every kept centre per point, in blocks of PAIRS_PER_BLOCK pairs; no network.
        A step also scores every candidate on 1/SCORE_SHARE of its batch against every centre."""
        centres = float(self.max_points)
        train = centres * (1 + self.candidates / SCORE_SHARE)
        block = BLOCK_BYTES * PAIRS_PER_BLOCK
        return EvaluationCost(0, 0, 0, 0, pairs=centres, train_pairs=train, working_bytes=block)

    @torch.no_grad()
    def fit_data(self, x: torch.Tensor) -> None:
        """The first points become the seed centres; some of the rest give the candidates a first score."""
        seed = min(SEED_POINTS, self.max_points)
        self.points = x[:seed].detach().clone()
        if self.candidates:
            self._score(x[seed : seed + INIT_SCORED])

    # ------------------------------------------------------------------ the kernel

    def shape_trils(self) -> torch.Tensor:
        """(len(SHAPES), 2, 2): the Cholesky factor of each shape S at h = 1: σ̄ I, and that of Σ̂."""
        eye = torch.eye(2, device=self.points.device)
        cov = torch.cov(self.points.T) + 1e-9 * eye
        return torch.stack([eye * torch.diagonal(cov).mean().sqrt(), torch.linalg.cholesky(cov)])

    def choice(self) -> tuple[int, float]:
        """The kernel in use: its shape (an index into SHAPES) and its factor c on Scott's rule."""
        if not self.candidates:
            return SHAPES.index("data covariance"), self.bandwidth
        if self.weight <= 0:
            return START[0], FACTORS[START[1]]
        mean = self.scores / self.weight
        shape, best = divmod(int(mean.argmax()), len(FACTORS))
        return shape, refined_factor(mean[shape], best)

    def kernel_tril(self) -> torch.Tensor:
        """(2, 2) Cholesky factor of the kernel covariance h² S of the chosen shape and factor."""
        shape, factor = self.choice()
        return self.shape_trils()[shape] * factor * len(self.points) ** (-1 / 6)

    def bandwidth_text(self) -> str:
        """How the kernel was chosen, e.g. 'covariance h²·σ̄²I (isotropic), h = 0.21 × Scott's n^(−1/6), …'."""
        shape, factor = self.choice()
        kernel = "h²·σ̄²I (isotropic)" if SHAPES[shape] == "isotropic" else "h²·Σ̂ (data covariance)"
        text = f"covariance {kernel}, h = {factor:.3g} × Scott's n^(−1/6)"
        if not self.candidates:
            return f"{text}, fixed"
        if not self.scored:
            return f"{text}, a starting guess: no held-out point scored yet"
        return f"{text}, chosen by held-out log-likelihood of {int(self.scored):,} arriving points"

    @property
    def density_method(self) -> str:  # an instance's: it follows the data
        return f"Gaussian kernels on {len(self.points):,} centres, {self.bandwidth_text()}"

    # ------------------------------------------------------------------ density, training, samples

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
        """The batch's NLL under the kernel in use; then a share of it scores the candidates, and
        then it joins the centres while there is room."""
        nll = float(-self.log_prob(x).mean())
        if self.candidates:
            self._score(x[: len(x) // SCORE_SHARE])
        room = self.max_points - len(self.points)
        if room > 0:
            before = len(self.points)
            self.points = torch.cat([self.points, x[:room].detach()])
            # the scores so far judged a smaller estimate: discount them as it grows
            self.scores.mul_(before / len(self.points))
            self.weight.mul_(before / len(self.points))
        return nll

    def _score(self, x: torch.Tensor) -> None:
        """Add the log-likelihoods of points x: (m, 2), none of them a centre yet, under every
        candidate to the running scores."""
        if len(x):
            sums, counted = self.candidate_log_likelihoods(x)
            self.scores += sums
            self.weight += counted
            self.scored += counted

    def candidate_log_likelihoods(self, x: torch.Tensor) -> tuple[torch.Tensor, int]:
        """Σ log q(x_j) under every candidate kernel, (len(SHAPES), len(FACTORS)) float64, and how many
        points it sums. A point drawn again from a finite data set is left out of its own copies'
        kernels (a leave-one-out score), and dropped if every centre is a copy of it."""
        trils = self.shape_trils()
        centres = [torch.linalg.solve_triangular(tril, self.points.T, upper=False).T for tril in trils]
        sums = torch.zeros(len(SHAPES), len(FACTORS), dtype=torch.float64, device=x.device)
        rows, counted = max(1, PAIRS_PER_BLOCK // len(self.points)), 0
        for start in range(0, len(x), rows):
            block = x[start : start + rows]
            copies = (block[:, None, :] == self.points[None]).all(-1)  # (r, n)
            others = len(self.points) - copies.sum(1)
            kept = others > 0
            counted += int(kept.sum())
            for s, (tril, shape_centres) in enumerate(zip(trils, centres, strict=True)):
                z = torch.linalg.solve_triangular(tril, block.T, upper=False).T
                gap = torch.cdist(z, shape_centres).square_().masked_fill_(copies, math.inf)
                log_norm = (
                    math.log(2 * math.pi) + torch.log(torch.diagonal(tril)).sum() + others.double().log()
                )
                sums[s] += self._factor_log_likelihoods(gap, log_norm)[:, kept].sum(1)
        return sums, counted

    def _factor_log_likelihoods(self, gap: torch.Tensor, log_norm: torch.Tensor) -> torch.Tensor:
        """(len(FACTORS), r) log q of a block's points for every factor on Scott's rule, from their
        squared distances gap: (r, n) to the centres in the shape's units (overwritten) and the
        normaliser of the shape at h = 1 over each point's centres, log_norm: (r,)."""
        nearest = gap.amin(1, keepdim=True)
        gap -= nearest
        scales = [factor * len(self.points) ** (-1 / 6) for factor in FACTORS]
        return torch.stack([log_kernel_sums(gap, nearest, h) - log_norm - 2 * math.log(h) for h in scales])

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
        shape, factor = self.choice()
        kernel = f"{SHAPES[shape]} kernel, h = {factor:.2g} × Scott's rule"
        title = f"{len(self.points):,} kernel centres; 1σ of the {kernel} around {len(shown)} of them"
        centres = Points(self.points.cpu().numpy(), "kernel centres", "kernel")
        return contour_view(context, shown, self.kernel_tril(), (1.0,), title, "kernel, 1σ", centres)
