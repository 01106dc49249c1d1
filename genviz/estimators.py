"""Density estimates from samples, for models that define no density (a GAN, a GSN).

Both are estimates and are labelled so wherever they are shown:
- `knn_log_density`: the k-nearest-neighbour estimate of log q at query points, with the
  digamma correction that makes E[log q̂] consistent (Kozachenko & Leonenko 1987; Wang,
  Kulkarni & Verdú 2009 use the same statistic for KL between samples);
- `binned_kde`: a Gaussian KDE of samples computed on a grid (a smoothed histogram), the
  heat map and the quadrature cross-check (GAN Lab's evaluator).
"""

from __future__ import annotations

import math

import torch

from genviz.grid import Grid

KNN_K = 10
# nats: the largest error of a k-NN KL where the exact KL is known, rounded up (benchmarks.calibration)
KNN_KL_ERROR = 0.08
DIRECT = "donot_use_mm_for_euclid_dist"
KNN_PAIRS = 1 << 22  # (query point, sample) distances per block: 16 MB of float32
KDE_FACTOR = 0.5  # bandwidth = factor × Scott's rule: Scott's alone blurs multimodal targets
UNIFORM_SHARE = 1e-3  # mixed in over the box, so that an empty cell costs a finite, large KL


def digamma_int(k: int) -> float:
    """ψ(k) for a positive integer: −γ + Σ_{j<k} 1/j."""
    return -0.5772156649015329 + sum(1.0 / j for j in range(1, k))


def knn_log_density(samples: torch.Tensor, x: torch.Tensor, k: int = KNN_K) -> torch.Tensor:
    """log q̂(x) = ψ(k) − log m − log(π r_k(x)²), r_k the distance to the k-th nearest of m samples.

    samples: (m, 2), x: (n, 2) -> (n,) float64. Distances in float32 (twice as fast as float64),
    computed directly: the matrix-product shortcut loses the small distances a sharp model has."""
    samples, x = samples.float(), x.float()
    r = torch.empty(len(x), dtype=torch.float64)  # one tensor: no small results between large blocks
    rows = max(1, KNN_PAIRS // len(samples))
    for start in range(0, len(x), rows):
        distances = torch.cdist(x[start : start + rows], samples, compute_mode=DIRECT)
        r[start : start + rows] = distances.topk(k, dim=1, largest=False).values[:, -1].cpu()
    r = r.clamp_min(1e-12)
    return digamma_int(k) - math.log(len(samples)) - math.log(math.pi) - 2 * r.log()


def knn_method(m: int, k: int = KNN_K) -> str:
    return f"log q by k-nearest-neighbour density (k = {k}) of {m:,} model samples"


def scott_bandwidth(samples: torch.Tensor, factor: float = KDE_FACTOR) -> torch.Tensor:
    """(2,) per-axis bandwidth: factor × σ_j · n^(−1/6) (Scott's rule in 2D)."""
    return factor * samples.double().std(0).clamp_min(1e-6) * len(samples) ** (-1 / 6)


def binned_kde(samples: torch.Tensor, grid: Grid, factor: float = KDE_FACTOR) -> torch.Tensor:
    """log of a Gaussian KDE of `samples` on `grid`, shape (k, m), float64.

    Samples are binned into the grid's cells and the histogram is blurred with a separable
    Gaussian, which is the KDE up to the binning. Mass that falls off the box is lost (the
    estimate then integrates to less than one), and `UNIFORM_SHARE` of uniform mass keeps
    every cell positive."""
    samples = samples.double()
    counts = _histogram(samples, grid)
    h = scott_bandwidth(samples, factor)
    dx = (grid.box.xmax - grid.box.xmin) / grid.m
    dy = (grid.box.ymax - grid.box.ymin) / grid.k
    blurred = _blur(_blur(counts, float(h[0]) / dx, dim=1), float(h[1]) / dy, dim=0)
    density = blurred / (len(samples) * grid.cell_area)
    return ((1 - UNIFORM_SHARE) * density + UNIFORM_SHARE / grid.box.area).log()


def kde_method(n: int, factor: float = KDE_FACTOR) -> str:
    return f"binned Gaussian KDE of {n:,} model samples (bandwidth {factor:g} × Scott's rule)"


def _histogram(samples: torch.Tensor, grid: Grid) -> torch.Tensor:
    """(k, m) counts of samples per cell; samples off the box are dropped."""
    box = grid.box
    col = ((samples[:, 0] - box.xmin) / (box.xmax - box.xmin) * grid.m).floor().long()
    row = ((samples[:, 1] - box.ymin) / (box.ymax - box.ymin) * grid.k).floor().long()
    inside = (col >= 0) & (col < grid.m) & (row >= 0) & (row < grid.k)
    flat = row[inside] * grid.m + col[inside]
    return torch.bincount(flat, minlength=grid.k * grid.m).double().reshape(grid.k, grid.m)


def _blur(values: torch.Tensor, sigma_cells: float, dim: int) -> torch.Tensor:
    """Convolve (k, m) values along `dim` with a normalised Gaussian of `sigma_cells` cells."""
    radius = max(1, math.ceil(4 * sigma_cells))
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float64)
    kernel = torch.exp(-0.5 * (offsets / max(sigma_cells, 1e-3)) ** 2)
    kernel = (kernel / kernel.sum()).reshape(1, 1, -1)
    moved = values.movedim(dim, -1)
    rows = moved.reshape(-1, 1, moved.shape[-1])
    out = torch.nn.functional.conv1d(rows, kernel, padding=radius)
    return out.reshape(moved.shape).movedim(-1, dim)
