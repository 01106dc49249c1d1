"""Where training and held-out points come from: a target's sampler or a user's points."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import torch

from genviz.config import FORMULA, USER_DATA, ConfigError, RunConfig
from genviz.formula import FormulaError
from genviz.grid import Box, Grid
from genviz.targets import TARGETS
from genviz.targets.base import Target
from genviz.targets.formula import formula_target

TEST_FRACTION = 0.2  # share of a user's points held out


@dataclass
class DataSource:
    """Training batches, a fixed held-out sample, and what is known about its density.

    For a target, every training batch is fresh from the sampler (unlimited data)
    and `log_p_test` holds the target's exact log density on the held-out points.
    For a user's points, batches are drawn from a fixed training split and the
    density is unknown (`target` and `log_p_test` are None).
    """

    name: str
    box: Box
    test: torch.Tensor  # (n_test, 2) float32, CPU
    target: Target | None = None
    log_p_test: torch.Tensor | None = None  # (n_test,) float64
    train_points: torch.Tensor | None = None  # (n_train, 2) for a fixed data set

    @classmethod
    def from_target(cls, target: Target, n_test: int, generator: torch.Generator) -> DataSource:
        test = target.sample(n_test, generator)
        return cls(target.name, target.box, test, target, target.log_prob(test))

    @classmethod
    def from_points(
        cls, points: torch.Tensor, generator: torch.Generator, name: str = USER_DATA
    ) -> DataSource:
        """Shuffle and split a user's (n, 2) points into training and held-out parts."""
        order = torch.randperm(len(points), generator=generator)
        n_test = max(1, round(len(points) * TEST_FRACTION))
        test, train = points[order[:n_test]].float(), points[order[n_test:]].float()
        return cls(name, box_around(points), test, train_points=train)

    def batch(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """(n, 2) float32 CPU training points."""
        if self.target is not None:
            return self.target.sample(n, generator)
        pick = torch.randint(len(self.train_points), (n,), generator=generator)
        return self.train_points[pick]


def box_around(points: torch.Tensor, margin: float = 0.1) -> Box:
    """The data's bounding box, widened by `margin` of its size on each side."""
    low, high = points.min(0).values.double(), points.max(0).values.double()
    pad = (high - low) * margin
    (x0, y0), (x1, y1) = (low - pad).tolist(), (high + pad).tolist()
    return Box(x0, x1, y0, y1)


@lru_cache(maxsize=64)
def target_log_prob_grid(target_name: str, resolution: int) -> tuple[Grid, torch.Tensor]:
    """The target's log density on its box grid, shape (k, m); cached, since targets never change."""
    target = TARGETS[target_name]
    grid = target.box.grid(resolution)
    return grid, grid.reshape(target.log_prob(grid.points))


def config_target(config: RunConfig) -> Target | None:
    """The target a configuration names: a registry entry, a typed density (built on its box and
    cached), or None for a user's points. A typed density that cannot be normalised is a ConfigError."""
    if config.target == USER_DATA:
        return None
    if config.target == FORMULA:
        try:
            return formula_target(config.formula, tuple(map(float, config.box)))
        except FormulaError as error:
            raise ConfigError(str(error)) from None
    return TARGETS[config.target]


def log_prob_grid(target: Target, resolution: int) -> tuple[Grid, torch.Tensor]:
    """`target_log_prob_grid` for any target: a registry target's grid is cached by name."""
    if TARGETS.get(target.name) is target:
        return target_log_prob_grid(target.name, resolution)
    grid = target.box.grid(resolution)
    return grid, grid.reshape(target.log_prob(grid.points))
