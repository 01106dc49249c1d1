"""Every registered target: normalised density, sampler and density agree, entropy, seeds."""

from __future__ import annotations

import math
from functools import cache

import pytest
import torch

from genviz.grid import Box, Grid
from genviz.targets import TARGETS, Target

# Independent reference figures for FFJORD's toy data sets (entropy in nats), computed
# separately from this code base; the stored constants must agree with them.
ANCHOR_ENTROPY = {
    "8gaussians": 2.8324,
    "moons": 2.3949,
    "checkerboard": 3.4657,
    "2spirals": 2.6445,
    "rings": 2.6239,
    "pinwheel": 2.3173,
}

COARSE = 24  # cells per side when binning samples
FINE = 8  # quadrature cells per coarse cell and side
PAD = 48  # fine cells added on each side for the normalisation check (a quarter of the box)
N_SAMPLES = 50_000
SEED = 1234

names = list(TARGETS)


def padded_grid(box: Box) -> Grid:
    """A midpoint grid over the box grown by PAD cells per side; the box is a block of it."""
    cells = COARSE * FINE
    dx, dy = (box.xmax - box.xmin) / cells, (box.ymax - box.ymin) / cells
    grown = Box(box.xmin - PAD * dx, box.xmax + PAD * dx, box.ymin - PAD * dy, box.ymax + PAD * dy)
    return Grid(grown, cells + 2 * PAD, cells + 2 * PAD)


@cache
def density_on_grid(name: str) -> tuple[Grid, torch.Tensor]:
    """The padded grid and the density on it, (k, m)."""
    grid = padded_grid(TARGETS[name].box)
    return grid, grid.reshape(TARGETS[name].log_prob(grid.points).exp())


def box_cells(name: str) -> torch.Tensor:
    """Quadrature masses of the fine cells inside the box, (COARSE·FINE, COARSE·FINE)."""
    grid, density = density_on_grid(name)
    return density[PAD:-PAD, PAD:-PAD] * grid.cell_area


@cache
def samples(name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """N_SAMPLES samples and their log density."""
    x = TARGETS[name].sample(N_SAMPLES, torch.Generator().manual_seed(SEED))
    return x, TARGETS[name].log_prob(x)


@pytest.mark.parametrize("name", names)
def test_contract(name: str) -> None:
    target = TARGETS[name]
    assert isinstance(target, Target) and target.name == name
    assert target.density_known in ("exact", "quadrature", "estimated")
    assert isinstance(target.entropy, float) and target.entropy_method
    x, log_p = samples(name)
    assert x.shape == (N_SAMPLES, 2) and x.dtype == torch.float32
    assert log_p.shape == (N_SAMPLES,) and log_p.dtype == torch.float64
    far = torch.tensor([[0.0, 0.0], [40.0, -40.0], [-300.0, 7.0], [1e4, 1e4]])
    assert not target.log_prob(far).isnan().any()


@pytest.mark.parametrize("name", names)
def test_box_holds_mass(name: str) -> None:
    assert box_cells(name).sum().item() >= 0.999


@pytest.mark.parametrize("name", names)
def test_normalised_over_larger_box(name: str) -> None:
    grid, density = density_on_grid(name)
    assert density.sum().item() * grid.cell_area == pytest.approx(1.0, abs=2e-3)


@pytest.mark.parametrize("name", names)
def test_samples_in_box(name: str) -> None:
    x, _ = samples(name)
    assert TARGETS[name].box.contains(x).double().mean().item() >= 0.999


@pytest.mark.parametrize("name", names)
def test_samples_match_density(name: str) -> None:
    """Chi-square of sample counts on a 24×24 grid over the box against quadrature masses."""
    box = TARGETS[name].box
    x, _ = samples(name)
    expected = box_cells(name).reshape(COARSE, FINE, COARSE, FINE).sum((1, 3)).reshape(-1)
    expected = expected.double() * N_SAMPLES
    inside = box.contains(x)
    col = ((x[inside, 0].double() - box.xmin) / (box.xmax - box.xmin) * COARSE).long()
    row = ((x[inside, 1].double() - box.ymin) / (box.ymax - box.ymin) * COARSE).long()
    cell = row.clamp(0, COARSE - 1) * COARSE + col.clamp(0, COARSE - 1)
    observed = torch.bincount(cell, minlength=COARSE**2).double()
    # cells expecting fewer than 5 points join the mass outside the box in one category
    big = expected >= 5
    rest_obs = observed[~big].sum() + (~inside).sum()
    rest_exp = expected[~big].sum() + N_SAMPLES - expected.sum()
    obs = torch.cat([observed[big], rest_obs[None]])
    exp = torch.cat([expected[big], rest_exp[None]]).clamp(min=1.0)
    chi2 = ((obs - exp) ** 2 / exp).sum().item()
    dof = len(obs) - 1
    assert chi2 < dof + 6 * math.sqrt(2 * dof) + 10, (chi2, dof)


@pytest.mark.parametrize("name", names)
def test_entropy_matches_monte_carlo(name: str) -> None:
    _, log_p = samples(name)
    estimate = -log_p.mean().item()
    stderr = log_p.std().item() / math.sqrt(N_SAMPLES)
    assert abs(estimate - TARGETS[name].entropy) <= 4 * stderr + 1e-3, (estimate, stderr)


@pytest.mark.parametrize("name", sorted(ANCHOR_ENTROPY))
def test_entropy_matches_reference(name: str) -> None:
    assert TARGETS[name].entropy == pytest.approx(ANCHOR_ENTROPY[name], abs=3e-3)


@pytest.mark.parametrize("name", names)
def test_same_seed_same_samples(name: str) -> None:
    target = TARGETS[name]
    first = target.sample(2000, torch.Generator().manual_seed(7))
    assert torch.equal(first, target.sample(2000, torch.Generator().manual_seed(7)))
    assert not torch.equal(first, target.sample(2000, torch.Generator().manual_seed(8)))


quadrature = [n for n in names if TARGETS[n].density_known == "quadrature"]


@pytest.mark.parametrize("name", quadrature)
def test_quadrature_converged(name: str) -> None:
    """Doubling the quadrature nodes moves the density by less than 1e-4, relatively."""
    target = TARGETS[name]
    finer = type(target)(nodes=2 * target.nodes)
    x, _ = samples(name)
    grid = target.box.grid(60)
    points = torch.cat([x[:4000].double(), grid.points])
    log_p = target.log_prob(points)
    shift = (finer.log_prob(points) - log_p).abs()[log_p.isfinite()]
    assert shift.max().item() < 1e-4
