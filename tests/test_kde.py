"""The kernel density estimate: its bandwidth chosen by held-out likelihood as the data arrive, the
fixed override, the cost it declares, and a density that stays normalised."""

from __future__ import annotations

import math

import pytest
import torch

from genviz.config import RunConfig, parse_assignment
from genviz.cost import check_cost, estimate
from genviz.data import DataSource
from genviz.grid import Box
from genviz.limits import HostLimits
from genviz.models.kde import FACTORS, KDE, SCORE_SHARE, SHAPES, refined_factor
from genviz.targets import TARGETS
from genviz.train import Trainer

WIDE = Box(-8, 8, -8, 8)  # holds every kernel's mass on 8gaussians (whose box is ±4.5)


def fed(model: KDE, target: str = "8gaussians", batches: int = 6, seed: int = 0) -> KDE:
    """The model after `fit_data` and `batches` updates of 512 points of the target."""
    generator = torch.Generator().manual_seed(seed)
    model.fit_data(TARGETS[target].sample(4096, generator))
    for _ in range(batches):
        model.update(TARGETS[target].sample(512, generator))
    return model


def held_out_nll(model: KDE, target: str = "8gaussians") -> float:
    x = TARGETS[target].sample(5000, torch.Generator().manual_seed(99))
    return float(-model.log_prob(x).mean())


def kernel_width(model: KDE) -> float:
    """det(kernel covariance)^(1/4): the geometric mean of the kernel's two standard deviations."""
    return float(torch.diagonal(model.kernel_tril()).prod().sqrt())


def test_the_automatic_bandwidth_beats_the_old_fixed_factor_on_a_multimodal_target() -> None:
    auto = fed(KDE(max_points=1000))
    scott = fed(KDE(bandwidth_rule="fixed", bandwidth=0.5, max_points=1000))  # the former default
    assert torch.equal(auto.points, scott.points)  # the same data
    assert held_out_nll(auto) < held_out_nll(scott) - 0.04


def test_the_chosen_bandwidth_shrinks_as_data_arrive() -> None:
    generator = torch.Generator().manual_seed(1)
    model = KDE(max_points=3000)
    model.fit_data(TARGETS["8gaussians"].sample(4096, generator))
    widths = [kernel_width(model)]
    for _ in range(2):
        for _ in range(3):
            model.update(TARGETS["8gaussians"].sample(512, generator))
        widths.append(kernel_width(model))
    assert len(model.points) == 3000
    assert widths[0] > widths[1] > widths[2] and widths[2] < 0.8 * widths[0]


def test_the_factor_is_refined_to_the_top_of_a_parabola() -> None:
    best = math.log(0.3)  # between the candidates 0.25 and 0.354
    scores = torch.tensor([-((math.log(c) - best) ** 2) for c in FACTORS], dtype=torch.float64)
    assert refined_factor(scores, int(scores.argmax())) == pytest.approx(0.3, rel=1e-9)
    assert refined_factor(scores.flip(0), 0) == FACTORS[0]  # at the end of the grid: no parabola


def test_every_candidate_is_scored_on_a_share_of_each_batch_before_it_joins_the_centres() -> None:
    model = fed(KDE(max_points=1000), batches=0)
    scored = int(model.scored)
    batch = TARGETS["8gaussians"].sample(512, torch.Generator().manual_seed(3))
    expected, _ = model.candidate_log_likelihoods(batch[: 512 // SCORE_SHARE])  # against the old centres
    before = model.scores.clone()
    model.update(batch)
    assert int(model.scored) == scored + 512 // SCORE_SHARE and len(model.points) == 612
    torch.testing.assert_close(model.scores, (before + expected) * 100 / 612)  # discounted as it grew


def test_a_point_drawn_again_from_a_finite_data_set_does_not_score_its_own_copy() -> None:
    """On your own points the batches repeat the centres; a score that counted a point's own copy
    would choose too narrow a kernel (here 0.22 × Scott's rule, NLL 2.83 on fresh points of the
    target). Left out of its copies, it does as well as the best fixed factor."""
    points = TARGETS["moons"].sample(400, torch.Generator().manual_seed(0))
    data = DataSource.from_points(points, torch.Generator().manual_seed(1), "moons.csv")
    trainer = Trainer(RunConfig(target="data", model="kde", steps=30, batch_size=64), data)
    trainer.train()
    model, fresh = trainer.model, TARGETS["moons"].sample(5000, torch.Generator().manual_seed(99))
    best_fixed = math.inf
    for factor in FACTORS[2:]:  # from 0.0625, within the bandwidth's range
        fixed = KDE(bandwidth_rule="fixed", bandwidth=factor)
        fixed.points = model.points
        best_fixed = min(best_fixed, float(-fixed.log_prob(fresh).mean()))
    assert float(-model.log_prob(fresh).mean()) < best_fixed + 0.02


def test_a_fixed_bandwidth_is_honoured_from_the_command_line_and_a_link() -> None:
    config = RunConfig(model="kde", target="moons", steps=5, n_test=500)
    for assignment in ("bandwidth_rule=fixed", "bandwidth=0.3"):
        config = parse_assignment(config, assignment)
    assert RunConfig.from_query(config.to_query()).params == {"bandwidth_rule": "fixed", "bandwidth": 0.3}
    trainer = Trainer(config)
    trainer.train()
    model = trainer.model
    cov = torch.cov(model.points.T) + 1e-9 * torch.eye(2)
    expected = torch.linalg.cholesky(cov) * 0.3 * len(model.points) ** (-1 / 6)
    torch.testing.assert_close(model.kernel_tril(), expected)
    assert int(model.scored) == 0 and not model.scores.any()
    assert "h = 0.3 × Scott's n^(−1/6), fixed" in trainer.record().nll.method


def test_the_metrics_say_how_the_bandwidth_was_chosen() -> None:
    trainer = Trainer(RunConfig(model="kde", target="rings", steps=5, n_test=500))
    trainer.train()
    method = trainer.record().nll.method
    shape, factor = trainer.model.choice()
    assert f"h = {factor:.3g} × Scott's n^(−1/6), chosen by held-out log-likelihood of" in method
    assert ("isotropic" if SHAPES[shape] == "isotropic" else "data covariance") in method


@pytest.mark.parametrize("params", [{}, {"bandwidth_rule": "fixed"}])
def test_log_prob_integrates_to_one(params: dict) -> None:
    model = fed(KDE(max_points=600, **params), batches=1)
    grid = WIDE.grid(500)  # cells of 0.032: three or more per standard deviation of the kernel
    assert kernel_width(model) > 0.1
    assert grid.mass(model.log_prob(grid.points.float())) == pytest.approx(1.0, abs=0.005)


def test_the_declared_cost_counts_the_candidates_and_the_largest_batch_stays_affordable() -> None:
    auto, fixed = KDE().evaluation_cost(), KDE(bandwidth_rule="fixed").evaluation_cost()
    assert fixed.train_pairs == KDE().max_points
    assert auto.train_pairs == KDE().max_points * (1 + len(SHAPES) * len(FACTORS) / SCORE_SHARE)
    largest = RunConfig(model="kde", batch_size=8192)
    check_cost(largest, HostLimits())
    fixed_step = estimate(largest.with_changes(params={"bandwidth_rule": "fixed"})).step_seconds
    assert estimate(largest).step_seconds > fixed_step
