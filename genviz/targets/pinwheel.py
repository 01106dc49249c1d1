"""FFJORD's pinwheel, with its density by change of variables."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from genviz.grid import Box
from genviz.targets.base import DensityKnown, Target
from genviz.targets.curves import CHUNK, scatter_logsumexp


class Pinwheel(Target):
    """Five arms: a Gaussian rotated by an angle that grows with its first coordinate.

    f ~ N((1, 0), diag(0.3², 0.1²)), k ~ U{0..4}, θ = 2πk/5 + 0.25 e^{f₀},
    y = 2 (f₀ cos θ + f₁ sin θ, −f₀ sin θ + f₁ cos θ).

    In polar coordinates f = r e^{iφ} the map is r ↦ 2r, φ ↦ ψ = φ − θ, with
    |det| = 4 |1 + 0.25 e^{f₀} f₁|. It folds where that factor vanishes, so
    p(y) = Σ_k ⅕ Σ_{roots φ} p_f(f)/|det| over every φ with ψ(φ) ≡ arg y (mod 2π).
    """

    name = "pinwheel"
    description = (
        "FFJORD's pinwheel: f ~ N((1, 0), diag(0.3², 0.1²)), k ~ U{0..4}, "
        "θ = 2πk/5 + 0.25 exp(f₀), y = 2 (f₀ cos θ + f₁ sin θ, −f₀ sin θ + f₁ cos θ)"
    )
    box = Box(-3.8, 3.8, -3.8, 3.8)
    density_known: DensityKnown = "exact"
    density_method = "change of variables, angle by numerical root finding (bisection)"
    entropy = 2.317788
    entropy_method = "quadrature of −p log p on a 2000² grid over [−5, 5]²"
    arms = 5
    classes = ("arm 1", "arm 2", "arm 3", "arm 4", "arm 5")  # label k: the arm at angle 2πk/5
    radial_std, tangential_std, rate, scale = 0.3, 0.1, 0.25, 2.0
    # Roots with f₀ above 1 + 10 radial stds weigh less than e^{−50}; leaving them out
    # bounds the number of roots per point (≤ 40) however far out the point lies. None of
    # them exists for |y| < 2 f0_max = 8, which holds the box with room to spare.
    f0_max = 4.0

    def __init__(self, bisections: int = 52) -> None:
        self.bisections = bisections  # 2π/2^52 ≈ 1e-15

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return self.sample_labelled(n, generator)[0]

    def sample_labelled(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        std = torch.tensor([self.radial_std, self.tangential_std], dtype=torch.float64)
        f = torch.randn(n, 2, generator=generator, dtype=torch.float64) * std
        f[:, 0] += 1
        k = torch.randint(self.arms, (n,), generator=generator)
        theta = 2 * math.pi * k.double() / self.arms + self.rate * f[:, 0].exp()
        c, s = theta.cos(), theta.sin()
        y = torch.stack([f[:, 0] * c + f[:, 1] * s, -f[:, 0] * s + f[:, 1] * c], 1)
        return (self.scale * y).float(), k

    def _phase(self, phi: torch.Tensor, r: torch.Tensor, psi: torch.Tensor) -> torch.Tensor:
        """H = 5/(2π) (φ − 0.25 e^{r cos φ} − ψ): y is an image of f = r e^{iφ} where H ∈ ℤ.

        Class k needs φ − θ ≡ ψ (mod 2π), i.e. H ∈ k + 5ℤ, so the union over the five
        classes is H ∈ ℤ. The cap on f₀ only guards against overflow outside the searched arc.
        """
        f0 = (r * phi.cos()).clamp(max=self.f0_max)
        return self.arms / (2 * math.pi) * (phi - self.rate * f0.exp() - psi)

    def _bisect(
        self, fn: Callable[[torch.Tensor], torch.Tensor], lo: torch.Tensor, hi: torch.Tensor
    ) -> torch.Tensor:
        """The root of fn on [lo, hi], elementwise, for fn(lo) < 0 ≤ fn(hi) or the reverse."""
        sign = torch.where(fn(hi) >= fn(lo), 1.0, -1.0)
        step = hi - lo
        for _ in range(self.bisections):
            step = step / 2
            lo = lo + step * (sign * fn(lo + step) < 0)  # move up while still short of the root
        return lo + step / 2

    def _folds(self, r: torch.Tensor) -> torch.Tensor:
        """(n, 2) angles where dH/dφ ∝ 1 + 0.25 r sin φ e^{r cos φ} vanishes.

        q = sin φ e^{r cos φ} falls from 0 at −π to its minimum at φ₋ = −arccos c,
        c = (√(1 + 4r²) − 1)/(2r), then rises; the folds are where q = −1/(0.25 r), one on
        each side of φ₋. Where q never gets that low both are set to φ₋ (no fold).
        """
        c = ((1 + 4 * r**2).sqrt() - 1) / (2 * r.clamp(min=1e-12))
        phi_min = -torch.arccos(c)
        level = -1 / (self.rate * r.clamp(min=1e-12))

        def excess(phi: torch.Tensor) -> torch.Tensor:
            # the clamp stops overflow; it only acts far beyond f0_max, outside the searched arc
            return phi.sin() * (r * phi.cos()).clamp(max=700).exp() - level

        folded = excess(phi_min) < 0
        left = self._bisect(excess, torch.full_like(r, -math.pi), phi_min)
        right = self._bisect(excess, phi_min, torch.zeros_like(r))
        return torch.where(folded[:, None], torch.stack([left, right], 1), phi_min[:, None])

    def _roots(self, r: torch.Tensor, psi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """All φ with H(φ) ∈ ℤ and r cos φ ≤ f0_max: (point index, φ, arm), one entry per root.
        A root with H = k + 5m is an image of arm k."""
        # H is monotone between consecutive cuts: the folds, ±π, and the ends of the
        # arc r cos φ ≤ f0_max
        edge = torch.arccos((self.f0_max / r.clamp(min=1e-12)).clamp(max=1))
        pi = torch.full_like(r, math.pi)
        cuts = torch.cat([torch.stack([-pi, -edge, edge, pi], 1), self._folds(r)], 1)
        cuts = cuts.sort(1).values
        start, end = cuts[:, :-1], cuts[:, 1:]
        level = self._phase(cuts, r[:, None], psi[:, None]).floor()
        count = (level[:, 1:] - level[:, :-1]).abs().long()
        count[((start + end) / 2).abs() < edge[:, None]] = 0  # f₀ > f0_max there
        point, piece = count.nonzero(as_tuple=True)
        reps = count[point, piece]
        point, piece = point.repeat_interleave(reps), piece.repeat_interleave(reps)
        rank = torch.arange(len(point)) - (reps.cumsum(0) - reps).repeat_interleave(reps)
        target = torch.minimum(level[:, :-1], level[:, 1:])[point, piece] + 1 + rank
        r, psi = r[point], psi[point]

        def excess(phi: torch.Tensor) -> torch.Tensor:
            return self._phase(phi, r, psi) - target

        arm = target.remainder(self.arms).long()
        return point, self._bisect(excess, start[point, piece], end[point, piece]), arm

    def _log_terms(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """log p_f(f)/|det| − log 5 of every root: (terms, point index, arm), one entry per root."""
        y = y / self.scale
        r, psi = y.norm(dim=1), torch.atan2(y[:, 1], y[:, 0])
        point, phi, arm = self._roots(r, psi)
        f0, f1 = r[point] * phi.cos(), r[point] * phi.sin()
        log_pf = (
            -0.5 * ((f0 - 1) / self.radial_std) ** 2
            - 0.5 * (f1 / self.tangential_std) ** 2
            - math.log(2 * math.pi * self.radial_std * self.tangential_std)
        )
        log_det = math.log(self.scale**2) + torch.log((1 + self.rate * f0.exp() * f1).abs())
        return log_pf - log_det - math.log(self.arms), point, arm

    def _log_prob_block(self, y: torch.Tensor) -> torch.Tensor:
        terms, point, _ = self._log_terms(y)
        return scatter_logsumexp(terms, point, len(y))

    def _class_log_prob_block(self, y: torch.Tensor) -> torch.Tensor:
        terms, point, arm = self._log_terms(y)
        joint = scatter_logsumexp(terms, point * self.arms + arm, len(y) * self.arms)
        return joint.reshape(len(y), self.arms)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        x = x.double()
        out = [self._log_prob_block(block) for block in x.split(CHUNK)]
        return torch.cat(out) if out else x.new_zeros(0)

    def class_log_prob(self, x: torch.Tensor) -> torch.Tensor:
        x = x.double()
        out = [self._class_log_prob_block(block) for block in x.split(CHUNK)]
        return torch.cat(out) if out else x.new_zeros(0, self.arms)
