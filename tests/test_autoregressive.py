"""The autoregressive families against independent computations: quadrature of their densities
along lines and over the plane, their own samples, and the binned softmax's edge rule and tails."""

from __future__ import annotations

import math
from functools import cache

import numpy as np
import pytest
import torch

from genviz.config import RunConfig
from genviz.grid import Box
from genviz.models.autoregressive import BAND_FRACTION, ARSoftmax, Autoregressive2D
from genviz.models.base import ViewContext
from genviz.train import Trainer
from genviz.views.layers import Bars, Curve, VLine

# "softmax-tails" bins only ±1 standard deviation, so that a third of 8gaussians' mass lies in
# the exponential tails and their rates are trained: the tails then matter to every check.
CONFIGS = {
    "mixture": ("ar-mixture", {}),
    "softmax": ("ar-softmax", {}),
    "softmax-tails": ("ar-softmax", {"bins": 32, "half_range": 1.0}),
}


Rule = tuple[torch.Tensor, torch.Tensor]  # quadrature nodes and their weights


@cache
def trained(name: str) -> Autoregressive2D:
    """A short real training run on 8gaussians (about a second of CPU)."""
    model, params = CONFIGS[name]
    trainer = Trainer(RunConfig(target="8gaussians", model=model, params=params, steps=300, n_test=500))
    trainer.train()
    return trainer.model.eval()


def midpoints(a: float, b: float, n: int) -> Rule:
    """Nodes and weights of the n-cell midpoint rule on [a, b], float64."""
    h = (b - a) / n
    return a + h * (torch.arange(n, dtype=torch.float64) + 0.5), torch.full((n,), h, dtype=torch.float64)


def line_rule(
    model: Autoregressive2D, coordinate: int, per_bin: int = 4, tail: int = 800, reach: float = 20
) -> Rule:
    """Midpoint nodes and weights (n,) in data units along one coordinate, covering the support.

    The softmax's [−R, R] is cut into `per_bin` cells per bin, so the rule is exact there for its
    piecewise-constant density; each exponential tail gets `tail` cells out to reach/λ. The
    mixture's rule is 3·tail cells on ±reach/2 standard deviations: for Gaussians wider than the
    cells the midpoint rule's error is exponentially small."""
    if isinstance(model, ARSoftmax):
        r, rates = model.half_range, model.log_rate[coordinate].detach().double().exp()
        pieces = [
            midpoints(-r - reach / float(rates[0]), -r, tail),
            midpoints(-r, r, per_bin * model.bins),
            midpoints(r, r + reach / float(rates[1]), tail),
        ]
    else:
        pieces = [midpoints(-reach / 2, reach / 2, tail * 3)]
    z = torch.cat([p[0] for p in pieces])
    weights = torch.cat([p[1] for p in pieces])
    shift, scale = (float(model.standardize.shift[coordinate]), float(model.standardize.scale[coordinate]))
    return shift + scale * z, scale * weights


def log_q(model: Autoregressive2D, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
    """log q at the points (x1, x2), float64. x1, x2: (n,)."""
    with torch.no_grad():
        return model.log_prob(torch.stack([x1, x2], dim=1).float()).double()


def plane_rule(model: Autoregressive2D) -> Rule:
    """Tensor-product nodes (n, 2) and weights (n,) over the model's support, at most 150,000:
    the softmax's at bin centres, tails out to 12/λ (e^−12 left); the mixture's ±9 sd."""
    if isinstance(model, ARSoftmax):
        rules = [line_rule(model, j, per_bin=1, tail=60, reach=12) for j in (0, 1)]
    else:
        rules = [line_rule(model, j, tail=100, reach=18) for j in (0, 1)]
    (x1, w1), (x2, w2) = rules
    xx, yy = torch.meshgrid(x1, x2, indexing="ij")
    return torch.stack([xx.reshape(-1), yy.reshape(-1)], 1), torch.outer(w1, w2).reshape(-1)


# ---------------------------------------------------------------- normalisation


@pytest.mark.parametrize("name", CONFIGS)
def test_joint_integrates_to_one_including_tails(name: str) -> None:
    model = trained(name)
    points, weights = plane_rule(model)
    q = log_q(model, points[:, 0], points[:, 1]).exp()
    assert float((q * weights).sum()) == pytest.approx(1.0, abs=2e-3)
    if name == "softmax-tails":  # the check covers the tails only if they carry mass
        z = model.standardize(points.float()).double()
        outside = (z.abs() > model.half_range).any(dim=1)
        assert float((q * weights)[outside].sum()) > 0.1


@pytest.mark.parametrize("name", CONFIGS)
def test_factors_integrate_to_one_along_lines(name: str) -> None:
    """∫ q(x₁) dx₁ = 1; along each vertical line ∫ q(x₁, x₂) dx₂ = q(x₁), so q(x₂ | x₁) = q / q(x₁)
    integrates to one and log q = log q(x₁) + log q(x₂ | x₁) — in the tails and on bin edges too."""
    model = trained(name)
    x1, w1 = line_rule(model, 0)
    with torch.no_grad():
        marginal = model.log_marginal(x1.float()).double()
    assert float((marginal.exp() * w1).sum()) == pytest.approx(1.0, abs=1e-3)
    x2, w2 = line_rule(model, 1)
    shift, scale = float(model.standardize.shift[0]), float(model.standardize.scale[0])
    r = getattr(model, "half_range", 3.0)
    for z1 in (-r - 0.7, -r, -0.31, 0.0, 0.52, r - 1e-3, r + 1.3):
        a = torch.full_like(x2, shift + scale * z1)
        joint = log_q(model, a, x2)
        with torch.no_grad():
            log_marginal = float(model.log_marginal(a[:1].float()))
            conditional = model.log_conditional(x2.float(), a.float()).double()
        assert float((joint.exp() * w2).sum()) == pytest.approx(math.exp(log_marginal), rel=1e-3)
        torch.testing.assert_close(joint, log_marginal + conditional, atol=1e-4, rtol=0)


def test_softmax_conditions_on_the_bin_of_x1() -> None:
    """q(x₂ | x₁) is the same anywhere inside one bin of x₁, and differs in the next bin."""
    model = trained("softmax")
    shift, scale = float(model.standardize.shift[0]), float(model.standardize.scale[0])
    x2, _ = line_rule(model, 1)
    x2 = x2.float()

    def conditional(z1: float) -> torch.Tensor:
        with torch.no_grad():
            return model.log_conditional(x2, torch.full_like(x2, shift + scale * z1))

    left = -model.half_range + 100 * model.width  # an edge in the middle of the data
    torch.testing.assert_close(conditional(left + 0.01 * model.width), conditional(left + 0.99 * model.width))
    assert (
        conditional(left - 0.01 * model.width) - conditional(left + 0.01 * model.width)
    ).abs().max() > 1e-3


def test_softmax_edge_rule() -> None:
    """A point on an edge belongs to the bin above it; R itself closes the last bin; beyond ±R
    are the overflow classes 0 and B + 1. Checked by counting the edges at or below each point."""
    model = ARSoftmax(bins=256, half_range=3.0)  # w = 3/128: every edge is exact in binary
    edges = -3.0 + model.width * torch.arange(257, dtype=torch.float64)
    random = torch.empty(5000, dtype=torch.float64).uniform_(
        -4.0, 4.0, generator=torch.Generator().manual_seed(0)
    )
    below, above = torch.nextafter(edges, edges - 1), torch.nextafter(edges, edges + 1)
    z = torch.cat([edges, below, above, random])
    expected = (z[:, None] >= edges).sum(1)  # the number of edges at or below z
    expected[z == 3.0] = 256
    torch.testing.assert_close(model.classes(z), expected)
    assert model.classes(torch.tensor([-3.0, 3.0, -3.0001, 3.0001])).tolist() == [1, 256, 0, 257]


# ---------------------------------------------------------------- sampling


@pytest.mark.parametrize("name", CONFIGS)
def test_samples_agree_with_log_prob(name: str) -> None:
    """E over the model's own samples of log q equals ∫ q log q by quadrature."""
    model = trained(name)
    points, weights = plane_rule(model)
    log_q_grid = log_q(model, points[:, 0], points[:, 1])
    by_quadrature = float((log_q_grid.exp() * log_q_grid * weights).sum())
    torch.manual_seed(1)
    samples = model.sample(20_000)
    values = log_q(model, samples[:, 0], samples[:, 1])
    se = float(values.std()) / math.sqrt(len(values))
    assert float(values.mean()) == pytest.approx(by_quadrature, abs=4 * se + 2e-3)


@pytest.mark.parametrize("name", CONFIGS)
def test_sampled_conditional_matches_q(name: str) -> None:
    """The x₂ of samples whose x₁ falls in a narrow band follow q(x₂ | x₁ in band), computed by
    quadrature of the joint over the band: a χ² test on cells of x₂ plus the two outer ones."""
    model = trained(name)
    shift, scale = model.standardize.shift.double(), model.standardize.scale.double()
    if isinstance(model, ARSoftmax):  # eight bins of x₁; cells of x₂ on bin edges, 16 over [−R, R]
        r, middle = model.half_range, model.bins // 2
        band = -r + model.width * torch.tensor([middle, middle + 8.0], dtype=torch.float64)
        cells_z = torch.linspace(-r, r, 17, dtype=torch.float64)
    else:
        band = torch.tensor([-0.05, 0.05], dtype=torch.float64)
        cells_z = torch.linspace(-2.5, 2.5, 21, dtype=torch.float64)
    lo, hi = (shift[0] + scale[0] * band).tolist()
    edges = shift[1] + scale[1] * cells_z
    torch.manual_seed(2)
    samples = model.sample(100_000).double()
    near = samples[(samples[:, 0] >= lo) & (samples[:, 0] < hi), 1]
    counts = torch.bincount(torch.bucketize(near, edges), minlength=len(edges) + 1).double()

    x1, w1 = midpoints(lo, hi, 16)
    x2, w2 = line_rule(model, 1)
    joint = log_q(model, x1.repeat_interleave(len(x2)), x2.repeat(len(x1))).exp().reshape(len(x1), -1)
    along = (joint * w1[:, None]).sum(0) * w2  # ∫_band q(x₁, x₂) dx₁ per x₂ cell
    cells = torch.bincount(torch.bucketize(x2, edges), weights=along, minlength=len(edges) + 1)
    expected = len(near) * cells / cells.sum()
    keep = expected > 5
    chi2 = float(((counts - expected)[keep] ** 2 / expected[keep]).sum())
    dof = int(keep.sum()) - 1
    assert len(near) > 2000 and chi2 < dof + 5 * math.sqrt(2 * dof)


def test_tail_sampler_overshoot_is_exponential() -> None:
    """Beyond ±R the samples overshoot by Exp(λ): mean 1/λ, and P(overshoot > 1/λ) = e^−1.
    The share of x₁ samples in each tail is that overflow class's probability."""
    model = trained("softmax-tails")
    torch.manual_seed(3)
    z = model.standardize(model.sample(100_000))
    r = model.half_range
    first = torch.softmax(model.first.detach(), 0)
    for coordinate in (0, 1):
        for side, sign in ((0, -1.0), (1, 1.0)):
            overshoot = (sign * z[:, coordinate] - r)[sign * z[:, coordinate] > r].double()
            rate = float(model.log_rate[coordinate, side].detach().exp())
            se = float(overshoot.std()) / math.sqrt(len(overshoot))
            assert len(overshoot) > 2000
            assert float(overshoot.mean()) == pytest.approx(1 / rate, abs=4 * se)
            beyond = float((overshoot > 1 / rate).double().mean())
            assert beyond == pytest.approx(math.exp(-1), abs=4 * math.sqrt(0.25 / len(overshoot)))
            if coordinate == 0:
                share, p = len(overshoot) / len(z), float(first[0 if side == 0 else -1])
                assert share == pytest.approx(p, abs=4 * math.sqrt(p * (1 - p) / len(z)))


# ---------------------------------------------------------------- the view


def view_context(position: float, data: torch.Tensor) -> ViewContext:
    return ViewContext(Box(-4.0, 4.0, -4.0, 4.0), data, {"position": position})


@pytest.mark.parametrize("name", ["mixture", "softmax"])
@pytest.mark.parametrize("position", [0.0, 0.5, 1.0])
def test_view_draws_the_conditional_over_held_out_points(name: str, position: float) -> None:
    model = trained(name)
    torch.manual_seed(4)
    data = model.sample(5000)
    view = model.view(view_context(position, data))
    a = -4.0 + 8.0 * position
    line = view.layer("model q(x₂ |")
    assert isinstance(line, Curve)
    ys, shown = torch.tensor(line.x), line.y
    joint = log_q(model, torch.full_like(ys, a), ys)  # q(a, y) / q(a), independently of the view
    with torch.no_grad():
        marginal = float(model.log_marginal(torch.tensor([a])))
    np.testing.assert_allclose(shown, (joint - marginal).exp().numpy(), rtol=1e-3, atol=1e-6)
    bars = [layer for layer in view.layers if isinstance(layer, Bars)]
    near = int((data[:, 0] - a).abs().le(BAND_FRACTION * 8.0).sum())
    assert len(bars) == (near > 0) and (not bars or f"n = {near}" in bars[0].name)
    if bars:  # a density histogram of the held-out x₂ in the band
        assert float((bars[0].heights * bars[0].widths).sum()) == pytest.approx(1.0)
    assert [layer.x for layer in view.layers if isinstance(layer, VLine)] == [pytest.approx(a)]


def test_view_with_no_held_out_points_in_the_band() -> None:
    model = trained("mixture")
    far = torch.tensor([[3.5, 0.0], [3.6, 1.0]])
    view = model.view(view_context(0.0, far))
    assert not [layer for layer in view.layers if isinstance(layer, Bars)]
    assert all(np.isfinite(layer.y).all() for layer in view.layers if isinstance(layer, Curve))
    assert view.panels[0].note.startswith("no held-out points")
    assert model.view(view_context(0.5, torch.zeros(0, 2))) is not None


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("name", ["mixture", "softmax"])
def test_view_on_cuda_matches_the_cpu(name: str) -> None:
    model = trained(name)
    data = model.sample(2000)
    on_cpu = model.view(view_context(0.5, data))
    on_gpu = model.cuda().view(view_context(0.5, data))
    model.cpu()
    cpu_curves = [layer for layer in on_cpu.layers if isinstance(layer, Curve | Bars)]
    gpu_curves = [layer for layer in on_gpu.layers if isinstance(layer, Curve | Bars)]
    for cpu_layer, gpu_layer in zip(cpu_curves, gpu_curves, strict=True):
        cpu_y = cpu_layer.y if isinstance(cpu_layer, Curve) else cpu_layer.heights
        gpu_y = gpu_layer.y if isinstance(gpu_layer, Curve) else gpu_layer.heights
        np.testing.assert_allclose(gpu_y, cpu_y, rtol=1e-4, atol=1e-6)


# ---------------------------------------------------------------- training


def assert_trains_to(model: str, budget: dict[str, float], ceiling: float) -> None:
    """Held-out KL (exact) under `ceiling`, agreeing with the grid quadrature, an independent sum."""
    trainer = Trainer(RunConfig(target="8gaussians", model=model, n_test=5000, **budget))
    while not trainer.done:
        trainer.train(max_seconds=5.0)
    kl, quadrature = trainer.record().kl, trainer.kl_by_quadrature()
    assert kl.kind == "exact" and kl.value <= ceiling
    # the midpoint grid blurs the softmax's bin edges: a few thousandths of a nat
    assert kl.value == pytest.approx(quadrature.value, abs=4 * kl.se + 0.01)


@pytest.mark.parametrize("model", ["ar-mixture", "ar-softmax"])
def test_trains_on_eight_gaussians_in_600_steps(model: str) -> None:
    assert_trains_to(model, {"steps": 600}, ceiling=0.03)


@pytest.mark.slow
@pytest.mark.parametrize("model", ["ar-mixture", "ar-softmax"])
def test_reaches_its_floor_on_eight_gaussians_in_60_seconds(model: str) -> None:
    """The mixture can represent 8gaussians exactly; the softmax's 256 bins of ±3 sd cost it
    KL(p ‖ p averaged over its bins) ≈ 0.0014 nats (by quadrature), its floor."""
    assert_trains_to(model, {"seconds": 60.0}, ceiling=0.01)
