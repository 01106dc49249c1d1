"""Training reaches the target: KL falls toward zero and its two estimates agree."""

from __future__ import annotations

import pytest

from genviz.config import RunConfig
from genviz.train import Trainer


def train_for(config: RunConfig) -> Trainer:
    trainer = Trainer(config)
    while not trainer.done:
        trainer.train(max_seconds=5.0)
    return trainer


def assert_kl_consistent(trainer: Trainer, ceiling: float) -> None:
    evaluation = trainer.record()
    kl, quadrature = evaluation.kl, trainer.kl_by_quadrature()
    assert kl.kind == "exact" and kl.value <= ceiling
    # Monte Carlo on held-out points and quadrature on the grid are independent computations.
    assert kl.value == pytest.approx(quadrature.value, abs=4 * kl.se + 0.005)
    # Held-out NLL = H(p) + KL, so it cannot sit below the entropy beyond its noise.
    assert evaluation.nll.value >= evaluation.entropy.value - 3 * evaluation.nll.se


def test_em_fits_eight_gaussians_in_seconds() -> None:
    trainer = train_for(RunConfig(target="8gaussians", model="gmm", steps=40, n_test=10_000))
    assert_kl_consistent(trainer, ceiling=0.05)


@pytest.mark.slow
@pytest.mark.parametrize("model", ["nsf", "realnvp"])
def test_flow_reaches_small_kl_on_eight_gaussians_in_30_seconds(model: str) -> None:
    trainer = train_for(RunConfig(target="8gaussians", model=model, seconds=30))
    assert_kl_consistent(trainer, ceiling=0.1)
