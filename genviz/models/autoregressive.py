"""Autoregressive densities (fully visible belief nets) in 2D: q(x) = q(x₁) · q(x₂ | x₁).

Both families work in standardised coordinates z = (x − m) / s and add the Jacobian −Σ log s.
The first factor comes from learned constants, the second from an MLP of Fourier features of z₁
(cos, sin of z₁ at octave-spaced frequencies), which lets a small network draw sharp conditional
detail. With two coordinates this is exactly a MADE (Germain et al. 2015): a masked network whose
first output sees no input can only be its bias, and the second output sees z₁ alone; writing the
two parts separately says so plainly and leaves room for the feature map.

- `ARMixture`: each factor a mixture of K Gaussians, a mixture density network (Bishop 1994).
- `ARSoftmax`: each factor a softmax over B bins of [−R, R] plus two overflow classes, PixelCNN's
  discrete softmax (van den Oord et al. 2016) made a continuous density: uniform within a bin,
  an exponential tail beyond ±R, so log q is finite everywhere and integrates to one.
"""

from __future__ import annotations

import math
from typing import Annotated, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from genviz.models.base import GenerativeModel, Range, Standardize, ViewContext, ViewControl
from genviz.models.nets import FourierFeatures, mlp
from genviz.views.layers import Bars, Curve, Layer, Panel, View, VLine

Hidden = Annotated[
    tuple[int, ...], Range(4, 1024, max_length=8), "hidden layer widths of the conditional network"
]
Frequencies = Annotated[int, Range(0, 10), "Fourier frequencies of x₁ fed to the network (0: x₁ only)"]
MIN_SCALE = 1e-3  # smallest component scale, in standard deviations: keeps the likelihood bounded
CURVE_POINTS = 400
BAND_FRACTION = 0.03  # half-width of the held-out band around the slider, as a fraction of the box
HISTOGRAM_BINS = 40


def conditional_net(frequencies: int, hidden: tuple[int, ...], out: int) -> nn.Sequential:
    """Fourier features of z₁, then SiLU layers, then a linear head of `out` values that starts
    close to its bias, which `fit_data` sets from the data."""
    features = FourierFeatures(frequencies)
    return nn.Sequential(features, *mlp(features.size, hidden, out, head="small"))


class Autoregressive2D(GenerativeModel):
    """q(z) = q(z₁) q(z₂ | z₁) over standardised z; subclasses give the two 1D factors."""

    density_kind = "exact"
    branch: ClassVar[str] = "explicit › tractable › autoregressive"
    view_title = "Conditional q(x₂ | x₁)"
    view_controls = (
        ViewControl(
            "position", "x₁ (position across the box)", 0.0, 1.0, 0.5, 0.01,
            "where to slice: 0 is the box's left edge, 1 its right edge",
        ),
    )  # fmt: skip

    def __init__(self) -> None:
        super().__init__()
        self.standardize = Standardize()

    # the two factors, in standardised units; z1, z2: (n,) -> (n,)
    def marginal_log_prob(self, z1: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def conditional_log_prob(self, z2: torch.Tensor, z1: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def marginal_sample(self, n: int) -> torch.Tensor:
        raise NotImplementedError

    def conditional_sample(self, z1: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        z = self.standardize(x)
        return (
            self.marginal_log_prob(z[:, 0])
            + self.conditional_log_prob(z[:, 1], z[:, 0])
            + self.standardize.log_det()
        )

    @torch.no_grad()
    def sample(self, n: int) -> torch.Tensor:
        z1 = self.marginal_sample(n)
        return self.standardize.inverse(torch.stack([z1, self.conditional_sample(z1)], dim=1))

    # the two factors in data units (the Jacobian of x₁ cancels from the conditional)
    def log_marginal(self, x1: torch.Tensor) -> torch.Tensor:
        """log q(x₁). x1: (n,) -> (n,)."""
        shift, scale = self.standardize.shift, self.standardize.scale
        return self.marginal_log_prob((x1 - shift[0]) / scale[0]) - scale[0].log()

    def log_conditional(self, x2: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
        """log q(x₂ | x₁). x2, x1: (n,) -> (n,)."""
        shift, scale = self.standardize.shift, self.standardize.scale
        z1, z2 = (x1 - shift[0]) / scale[0], (x2 - shift[1]) / scale[1]
        return self.conditional_log_prob(z2, z1) - scale[1].log()

    @torch.no_grad()
    def view(self, context: ViewContext) -> View:
        box = context.box
        a = box.xmin + context.controls.get("position", 0.5) * (box.xmax - box.xmin)
        # computed where the model lives (a GPU, perhaps), plotted from the CPU
        xs = torch.linspace(box.xmin, box.xmax, CURVE_POINTS, device=self.device)
        ys = torch.linspace(box.ymin, box.ymax, CURVE_POINTS, device=self.device)
        conditional = self.log_conditional(ys, torch.full_like(ys, a)).exp()
        marginal = self.log_marginal(xs).exp()
        curves = [t.double().cpu().numpy() for t in (ys, conditional, xs, marginal)]
        return conditional_view(context, a, *curves)


def conditional_view(
    context: ViewContext,
    a: float,
    ys: np.ndarray,
    conditional: np.ndarray,
    xs: np.ndarray,
    marginal: np.ndarray,
) -> View:
    """The model's q(x₂ | x₁ = a) over a histogram of held-out x₂ near x₁ = a; q(x₁) below."""
    box, data = context.box, context.data.cpu().numpy()
    half = BAND_FRACTION * (box.xmax - box.xmin)
    near = data[np.abs(data[:, 0] - a) <= half, 1]
    top: list[Layer] = []
    note = ""
    if len(near):
        counts, edges = np.histogram(near, bins=HISTOGRAM_BINS, range=(box.ymin, box.ymax), density=True)
        label = f"held-out x₂ with |x₁ − {a:.2f}| ≤ {half:.2f} (histogram, n = {len(near)})"
        top.append(Bars((edges[:-1] + edges[1:]) / 2, counts, np.diff(edges), label))
    else:  # say why there is no histogram rather than leave the reader to guess
        note = f"no held-out points with |x₁ − {a:.2f}| ≤ {half:.2f}"
    top.append(Curve(ys, conditional, f"model q(x₂ | x₁ = {a:.2f})"))
    slice_ = Panel(tuple(top), (box.ymin, box.ymax), None, x_title="x₂", y_title="density",
                   equal=False, note=note, share=0.72)  # fmt: skip
    below = Panel((Curve(xs, marginal, "model q(x₁)", "marginal"), VLine(a)), (box.xmin, box.xmax), None,
                  x_title="x₁", equal=False, share=0.28)  # fmt: skip
    return View(f"q(x₂ | x₁ = {a:.2f})", (slice_, below), stacked=True)


# ---------------------------------------------------------------- mixture density network


def inverse_softplus(y: torch.Tensor) -> torch.Tensor:
    return y + torch.log(-torch.expm1(-y))


def mixture_log_prob(params: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """params: (n, 3K) or (3K,) as (logits, means, raw scales); z: (n,) -> (n,)."""
    logits, means, raw = params.chunk(3, dim=-1)
    scales = F.softplus(raw) + MIN_SCALE
    log_normal = -0.5 * ((z[:, None] - means) / scales) ** 2 - scales.log() - 0.5 * math.log(2 * math.pi)
    return torch.logsumexp(F.log_softmax(logits, dim=-1) + log_normal, dim=-1)


def mixture_sample(params: torch.Tensor) -> torch.Tensor:
    """params: (n, 3K) -> (n,) one draw from each row's mixture."""
    logits, means, raw = params.chunk(3, dim=-1)
    k = torch.multinomial(F.softmax(logits, dim=-1), 1)[:, 0]
    pick = torch.arange(len(k), device=k.device), k
    return means[pick] + (F.softplus(raw[pick]) + MIN_SCALE) * torch.randn(len(k), device=k.device)


def quantile_mixture(z: torch.Tensor, k: int) -> torch.Tensor:
    """Mixture parameters (3K,) with means at K quantiles of z: (n,) and scales the local spacing."""
    q = torch.quantile(z, (torch.arange(k, device=z.device) + 0.5) / k)
    padded = torch.cat([q[:1] - 0.5, q, q[-1:] + 0.5])
    scales = (0.5 * (padded[2:] - padded[:-2])).clamp(0.05, 1.0)
    return torch.cat([torch.zeros(k, device=z.device), q, inverse_softplus(scales - MIN_SCALE)])


class ARMixture(Autoregressive2D):
    title = "Autoregressive mixture density network"
    summary = (
        "Bishop 1994; Germain et al. 2015 (MADE): q(x₁) a Gaussian mixture, q(x₂ | x₁) a mixture "
        "whose weights, means and scales an MLP of x₁ outputs."
    )

    def __init__(self, *, components: Annotated[int, Range(1, 64), "Gaussians per conditional"] = 32,
                 hidden: Hidden = (64, 64), frequencies: Frequencies = 5) -> None:  # fmt: skip
        super().__init__()
        self.first = nn.Parameter(torch.zeros(3 * components))  # q(z₁): logits, means, raw scales
        self.net = conditional_net(frequencies, hidden, 3 * components)

    @torch.no_grad()
    def fit_data(self, x: torch.Tensor) -> None:
        """Start from the product of the two marginals: quantile-placed components for each."""
        self.standardize.fit(x)
        z, k = self.standardize(x), len(self.first) // 3
        self.first.copy_(quantile_mixture(z[:, 0], k))
        self.net[-1].bias.copy_(quantile_mixture(z[:, 1], k))

    def marginal_log_prob(self, z1: torch.Tensor) -> torch.Tensor:
        return mixture_log_prob(self.first, z1)

    def conditional_log_prob(self, z2: torch.Tensor, z1: torch.Tensor) -> torch.Tensor:
        return mixture_log_prob(self.net(z1), z2)

    def marginal_sample(self, n: int) -> torch.Tensor:
        return mixture_sample(self.first.expand(n, -1))

    def conditional_sample(self, z1: torch.Tensor) -> torch.Tensor:
        return mixture_sample(self.net(z1))


# ---------------------------------------------------------------- binned softmax


class ARSoftmax(Autoregressive2D):
    title = "Autoregressive binned softmax"
    summary = (
        "van den Oord et al. 2016 (PixelCNN's softmax): each coordinate binned, p(bin of x₁) and "
        "p(bin of x₂ | bin of x₁) softmaxes; uniform within a bin, exponential tails outside."
    )

    def __init__(
        self,
        *,
        bins: Annotated[int, Range(4, 512), "bins per coordinate over [−R, R] (standardised)"] = 256,
        half_range: Annotated[float, Range(1.0, 8.0), "R: binned range, in standard deviations"] = 3.0,
        hidden: Hidden = (64, 64),
        frequencies: Frequencies = 5,
    ) -> None:
        super().__init__()
        self.bins, self.half_range = bins, half_range
        self.width = 2 * half_range / bins
        # classes: 0 below −R, 1..B the bins, B + 1 above R. The B + 1 edges are kept out of the
        # saved weights, since the hyperparameters fix them.
        edges = torch.linspace(-half_range, half_range, bins + 1, dtype=torch.float64)
        self.register_buffer("edges", edges.float(), persistent=False)
        self.first = nn.Parameter(torch.zeros(bins + 2))
        self.net = conditional_net(frequencies, hidden, bins + 2)
        self.log_rate = nn.Parameter(torch.zeros(2, 2))  # exponential tail rates: [coordinate, side]

    def classes(self, z: torch.Tensor) -> torch.Tensor:
        """z: (n,) -> (n,) long class indices: 0 below −R, 1..B the bins, B + 1 above R.

        Bin k covers [−R + (k − 1)w, −R + kw): a point on an inner edge belongs to the bin above
        it, −R to bin 1 and R itself to bin B, so the overflow classes are the open half-lines."""
        # a search, not floor((z + R) / w): that rounding puts a point just below an edge above it
        c = torch.bucketize(z.contiguous(), self.edges.to(z.dtype), right=True)  # edges[c − 1] ≤ z < edges[c]
        return torch.where(z == self.edges[-1].to(z.dtype), self.bins, c)

    def centres(self, c: torch.Tensor) -> torch.Tensor:
        """Class index (n,) -> (n,) the value fed to the conditional network (overflow: R + w/2)."""
        return -self.half_range + (c.float() - 0.5) * self.width

    def within(self, z: torch.Tensor, c: torch.Tensor, coordinate: int) -> torch.Tensor:
        """log density of z within its class: −log w in a bin, log λ − λ·distance in a tail."""
        rate = self.log_rate[coordinate].exp()
        beyond = (z.abs() - self.half_range).clamp_min(0)
        tail = torch.where(c == 0, self.log_rate[coordinate, 0] - rate[0] * beyond,
                           self.log_rate[coordinate, 1] - rate[1] * beyond)  # fmt: skip
        inside = (c > 0) & (c <= self.bins)
        return torch.where(inside, torch.full_like(z, -math.log(self.width)), tail)

    def categorical_log_prob(self, logits: torch.Tensor, z: torch.Tensor, coordinate: int) -> torch.Tensor:
        c = self.classes(z)
        log_p = F.log_softmax(logits, dim=-1).expand(len(z), -1).gather(1, c[:, None])[:, 0]
        return log_p + self.within(z, c, coordinate)

    def categorical_sample(self, logits: torch.Tensor, coordinate: int) -> torch.Tensor:
        """logits: (n, B + 2) -> (n,) a class, then a uniform point in it or an exponential tail."""
        c = torch.multinomial(F.softmax(logits, dim=-1), 1)[:, 0]
        u = torch.rand(len(c), device=c.device)
        rate = self.log_rate[coordinate].exp()
        tail_low = -self.half_range + torch.log1p(-u) / rate[0]
        tail_high = self.half_range - torch.log1p(-u) / rate[1]
        inside = self.centres(c) + (u - 0.5) * self.width
        return torch.where(c == 0, tail_low, torch.where(c == self.bins + 1, tail_high, inside))

    @torch.no_grad()
    def fit_data(self, x: torch.Tensor) -> None:
        """Start from the product of the two marginals: each softmax the smoothed histogram."""
        self.standardize.fit(x)
        z = self.standardize(x)
        for j, logits in enumerate([self.first, self.net[-1].bias]):
            counts = torch.bincount(self.classes(z[:, j]), minlength=self.bins + 2).float()
            logits.copy_((counts + 0.5).log())

    def marginal_log_prob(self, z1: torch.Tensor) -> torch.Tensor:
        return self.categorical_log_prob(self.first, z1, 0)

    def conditional_log_prob(self, z2: torch.Tensor, z1: torch.Tensor) -> torch.Tensor:
        return self.categorical_log_prob(self.net(self.centres(self.classes(z1))), z2, 1)

    def marginal_sample(self, n: int) -> torch.Tensor:
        return self.categorical_sample(self.first.expand(n, -1), 0)

    def conditional_sample(self, z1: torch.Tensor) -> torch.Tensor:
        return self.categorical_sample(self.net(self.centres(self.classes(z1))), 1)
