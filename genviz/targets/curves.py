"""Targets spread along curves: moons, two spirals, swiss roll.

Each is a curve point drawn with a known law, plus noise; the density is the
noise kernel integrated along the curve by composite Gauss–Legendre quadrature.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from genviz.grid import Box
from genviz.numerics import logsumexp
from genviz.targets.base import CHUNK, DensityKnown, IsotropicMixtureTarget, Target

GL_ORDER = 8  # nodes per panel


def gauss_legendre(edges: torch.Tensor, order: int = GL_ORDER) -> tuple[torch.Tensor, torch.Tensor]:
    """Composite Gauss–Legendre rule on the panels [edges[i], edges[i+1]].

    Returns nodes and weights, each (panels, order) float64, so that
    ∫ f ≈ Σ weights · f(nodes).
    """
    x, w = np.polynomial.legendre.leggauss(order)
    x, w = torch.from_numpy(x), torch.from_numpy(w)
    edges = edges.double()
    half = (edges[1:] - edges[:-1])[:, None] / 2
    mid = (edges[1:] + edges[:-1])[:, None] / 2
    return mid + half * x, half * w


class GaussianCurveTarget(IsotropicMixtureTarget):
    """A noisy curve: the mixture's centres and weights are quadrature nodes along the curve."""

    density_known: DensityKnown = "quadrature"


class Moons(GaussianCurveTarget):
    """Two half circles of radius 2 with Gaussian noise of std 0.2.

    Outer arc (2 cos t − 1, 2 sin t − 0.2), inner arc (1 − 2 cos t, 0.8 − 2 sin t),
    t ~ U[0, π], each arc with probability ½.
    """

    name = "moons"
    description = (
        "scikit-learn's two moons, noise 0.1, ×2 and shifted by (−1, −0.2): arcs "
        "(2 cos t − 1, 2 sin t − 0.2) and (1 − 2 cos t, 0.8 − 2 sin t), t ~ U[0, π], "
        "each with probability ½, plus N(0, 0.2² I)"
    )
    box = Box(-3.6, 3.6, -1.8, 2.4)
    density_method = "Gaussian kernel integrated along the arcs, composite Gauss–Legendre in t"
    entropy = 2.393879
    entropy_method = "quadrature of −p log p on a 2000² grid over [−5, 5] × [−3.5, 4.5]"
    std = 0.2
    classes = ("upper moon", "lower moon")  # the outer arc, the inner arc

    def __init__(self, nodes: int = 256) -> None:
        self.nodes = nodes  # per arc
        edges = torch.linspace(0, math.pi, nodes // GL_ORDER + 1, dtype=torch.float64)
        t, w = gauss_legendre(edges)
        t, w = t.reshape(-1), w.reshape(-1) / math.pi
        outer = torch.stack([2 * t.cos() - 1, 2 * t.sin() - 0.2], 1)
        inner = torch.stack([1 - 2 * t.cos(), 0.8 - 2 * t.sin()], 1)
        self.centres = torch.cat([outer, inner])
        self.log_weights = (w / 2).log().repeat(2)
        self.component_class = torch.arange(2).repeat_interleave(len(t))  # outer arc, then inner

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return self.sample_labelled(n, generator)[0]

    def sample_labelled(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        t = torch.rand(n, generator=generator, dtype=torch.float64) * math.pi
        inner = torch.rand(n, generator=generator, dtype=torch.float64) < 0.5
        outer_xy = torch.stack([t.cos(), t.sin()], 1)
        inner_xy = torch.stack([1 - t.cos(), 1 - t.sin() - 0.5], 1)
        xy = torch.where(inner[:, None], inner_xy, outer_xy)
        xy = xy + 0.1 * torch.randn(n, 2, generator=generator, dtype=torch.float64)
        return (2 * xy + torch.tensor([-1.0, -0.2], dtype=torch.float64)).float(), inner.long()


class SwissRoll(GaussianCurveTarget):
    """The (x, z) plane of scikit-learn's swiss roll with noise 1, divided by 5.

    t = 1.5π (1 + 2u), u ~ U[0, 1]; x = (t cos t, t sin t)/5 + N(0, 0.2² I).
    """

    name = "swissroll"
    description = (
        "scikit-learn's swiss roll (noise 1.0), coordinates (x, z), divided by 5: "
        "(t cos t, t sin t)/5 + N(0, 0.2² I), t = 1.5π(1 + 2u), u ~ U[0, 1]"
    )
    box = Box(-2.5, 3.1, -2.8, 3.3)
    density_method = (
        "Gaussian kernel integrated along the roll, composite Gauss–Legendre in t² "
        "(panels of about equal arc length)"
    )
    entropy = 2.669646
    entropy_method = "quadrature of −p log p on a 2000² grid over [−4.5, 5]²"
    std = 0.2
    t0, t1 = 1.5 * math.pi, 4.5 * math.pi

    def __init__(self, nodes: int = 512) -> None:
        self.nodes = nodes
        # arc length grows like t²/2, so panels uniform in v = t² have about equal length
        v, w = gauss_legendre(
            torch.linspace(self.t0**2, self.t1**2, nodes // GL_ORDER + 1, dtype=torch.float64)
        )
        t = v.reshape(-1).sqrt()
        w = w.reshape(-1) / (2 * t) / (self.t1 - self.t0)  # dt = dv / (2t), t uniform
        self.centres = torch.stack([t * t.cos(), t * t.sin()], 1) / 5
        self.log_weights = w.log()

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        u = torch.rand(n, generator=generator, dtype=torch.float64)
        t = self.t0 + (self.t1 - self.t0) * u
        xy = torch.stack([t * t.cos(), t * t.sin()], 1)
        xy = xy + torch.randn(n, 2, generator=generator, dtype=torch.float64)
        return (xy / 5).float()


def log_window(z: torch.Tensor, width: float, std: float) -> torch.Tensor:
    """log density of U[0, w] + N(0, σ²) at z, elementwise.

    (Φ(z/σ) − Φ((z − w)/σ))/w = (erfc(a) − erfc(b))/(2w) with s = |z − w/2|,
    a = (s − w/2)/(σ√2), b = (s + w/2)/(σ√2). Factoring out exp(−a²) through erfcx keeps
    the log finite where erfc underflows; a ≥ −w/(2σ√2) keeps erfcx(a) moderate.
    """
    s = (z - width / 2).abs()
    a = (s - width / 2) / (std * math.sqrt(2))
    b = (s + width / 2) / (std * math.sqrt(2))
    # exp(a² − b²) = exp(−w s/σ²) ≤ 1, and erfcx(a) > erfcx(b): no cancellation
    bracket = torch.special.erfcx(a) - torch.exp(-width * s / std**2) * torch.special.erfcx(b)
    return torch.log(bracket) - a**2 - math.log(2 * width)


def scatter_logsumexp(values: torch.Tensor, index: torch.Tensor, size: int) -> torch.Tensor:
    """out[i] = log Σ_{index[j] = i} exp(values[j]); −inf where nothing lands."""
    top = values.new_full((size,), -math.inf).scatter_reduce(0, index, values, "amax")
    shift = torch.where(top.isfinite(), top, torch.zeros_like(top))
    total = values.new_zeros(size).index_add(0, index, (values - shift[index]).exp())
    return shift + total.log()


class TwoSpirals(Target):
    """FFJORD's two spirals.

    t = 3π √u, u ~ U[0, 1]; d = (−t cos t + ½U₁, t sin t + ½U₂), U₁, U₂ ~ U[0, 1];
    x = ±d/3 + N(0, 0.1² I), each sign with probability ½.
    """

    name = "2spirals"
    description = (
        "FFJORD's two spirals: t = 3π√u, u ~ U[0, 1]; ±(−t cos t + U₁/2, t sin t + U₂/2)/3 "
        "with U₁, U₂ ~ U[0, 1], plus N(0, 0.1² I)"
    )
    box = Box(-3.5, 3.5, -3.5, 3.5)
    density_known: DensityKnown = "quadrature"
    density_method = (
        "uniform offset ⊛ Gaussian in closed form (erfc), integrated along the arms by "
        "composite Gauss–Legendre in t on panels of equal arc length, graded at the ends"
    )
    entropy = 2.645450
    entropy_method = "quadrature of −p log p on a 2000² grid over [−5, 5]²"
    classes = ("− arm", "+ arm")
    std = 0.1
    width = 0.5 / 3  # side of the uniform offset after dividing by 3
    t_max = 3 * math.pi  # 540 degrees
    # Panels whose windows lie this much farther than the nearest panel's are dropped:
    # they weigh less than exp(−(0.75/σ)²/2) ≈ 1e-12 of the nearest one.
    margin = 0.75

    def __init__(self, nodes: int = 384) -> None:
        self.nodes = nodes  # before the extra panels at the ends
        t, w = gauss_legendre(self._edges(nodes // GL_ORDER))
        self.curve = torch.stack([-t * t.cos(), t * t.sin()], -1) / 3  # (panels, order, 2)
        self.log_weights = (2 * t / self.t_max**2 * w).log()  # u = (t/t_max)², du = 2t dt/t_max²
        self.lo = self.curve.amin(1)
        self.hi = self.curve.amax(1) + self.width

    def _edges(self, panels: int) -> torch.Tensor:
        """Panel ends in t: equal arc lengths, halved towards each end of the arm.

        Beyond an arm's end the integrand decays within σ²/d of the end (d the distance),
        far less than a panel; the graded panels keep the tails as accurate as the bulk.
        """
        equal = torch.linspace(0, 1, panels + 1, dtype=torch.float64)
        halves = 0.5 ** torch.arange(1.0, 7.0, dtype=torch.float64) / panels
        # six halvings at the outer end, where the arm stops in open space; three at the centre
        fraction = torch.cat([equal, halves[:3], 1 - halves]).sort().values

        def arc(t: torch.Tensor) -> torch.Tensor:  # 6 × arc length
            return t * (1 + t**2).sqrt() + torch.asinh(t)

        target = fraction * arc(torch.tensor(self.t_max, dtype=torch.float64))
        lo, hi = torch.zeros_like(target), torch.full_like(target, self.t_max)
        for _ in range(60):  # bisection: arc is increasing
            mid = (lo + hi) / 2
            above = arc(mid) > target
            lo, hi = torch.where(above, lo, mid), torch.where(above, mid, hi)
        return (lo + hi) / 2

    def _log_arm(self, x: torch.Tensor) -> torch.Tensor:
        """log density of the arm with the + sign at x: (n, 2) -> (n,)."""
        gap = (self.lo - x[:, None]).clamp(min=0) + (x[:, None] - self.hi).clamp(min=0)
        dist = gap.square().sum(-1).sqrt()  # (n, panels): a lower bound on any node's distance
        near = dist <= dist.amin(1, keepdim=True) + self.margin
        point, panel = near.nonzero(as_tuple=True)
        terms = self._log_kernel(x, 0, point, panel) + self._log_kernel(x, 1, point, panel)
        terms = terms + self.log_weights[panel]
        return scatter_logsumexp(logsumexp(terms, 1), point, len(x))

    def _log_kernel(
        self, x: torch.Tensor, axis: int, point: torch.Tensor, panel: torch.Tensor
    ) -> torch.Tensor:
        """log_window along one axis for each (point, panel) pair: (pairs, order)."""
        values, index = x[:, axis].unique(return_inverse=True)
        nodes = self.curve[..., axis]
        if len(values) * nodes.shape[0] < len(point):
            # few distinct coordinates (a grid): tabulate them once against every node
            table = log_window(values[:, None, None] - nodes, self.width, self.std)
            return table[index[point], panel]
        return log_window(x[point, axis, None] - nodes[panel], self.width, self.std)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        x = x.double()
        # the − arm is the mirror image of the + arm through the origin
        both = [torch.logaddexp(self._log_arm(b), self._log_arm(-b)) for b in x.split(CHUNK)]
        return torch.cat(both) - math.log(2) if both else x.new_zeros(0)

    def class_log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log p(x, arm): the − arm (label 0) and the + arm (label 1), each with probability ½."""
        x = x.double()
        arms = [torch.stack([self._log_arm(-b), self._log_arm(b)], 1) for b in x.split(CHUNK)]
        return torch.cat(arms) - math.log(2) if arms else x.new_zeros(0, 2)

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return self.sample_labelled(n, generator)[0]

    def sample_labelled(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        u = torch.rand(n, generator=generator, dtype=torch.float64)
        t = self.t_max * u.sqrt()
        offset = torch.rand(n, 2, generator=generator, dtype=torch.float64) * 0.5
        d = torch.stack([-t * t.cos(), t * t.sin()], 1) + offset
        label = torch.randint(0, 2, (n,), generator=generator)
        sign = label[:, None].double() * 2 - 1
        noise = torch.randn(n, 2, generator=generator, dtype=torch.float64) * self.std
        return (sign * d / 3 + noise).float(), label
