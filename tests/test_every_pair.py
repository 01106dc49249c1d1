"""Every family trains on every built-in target without an exception, and reports labelled numbers."""

from __future__ import annotations

import math

import pytest
import torch

from genviz.config import RunConfig
from genviz.models import MODELS
from genviz.targets import TARGETS
from genviz.train import Trainer

SMALL = {"nsf": {"transforms": 1, "hidden": (16,)}, "maf": {"transforms": 1}, "realnvp": {"transforms": 2}}


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("target", TARGETS)
def test_pair_trains_and_reports(target: str, model: str) -> None:
    config = RunConfig(target=target, model=model, params=SMALL.get(model, {}), steps=3, n_test=500)
    trainer = Trainer(config)
    trainer.train()
    evaluation = trainer.record()
    assert trainer.step == 3 and not trainer.rollbacks
    assert evaluation.kl.kind in ("exact", "bound", "estimate") and math.isfinite(evaluation.kl.value)
    if evaluation.nll.kind != "estimate":  # an exact NLL or a bound cannot fall below the entropy
        assert evaluation.nll.value >= evaluation.entropy.value - 5 * evaluation.nll.se
    grid, log_q = trainer.density_grid(48)
    assert log_q.shape == (grid.k, grid.m) and torch.isfinite(log_q).all()
    check = trainer.kl_by_quadrature(48, log_q)
    assert check is None or check.kind == "estimate"
