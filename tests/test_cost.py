"""The cost check a shared server runs before building a model, and the live evaluation's subsets."""

from __future__ import annotations

import math

import pytest
import torch

from genviz import cost
from genviz.config import ConfigError, RunConfig
from genviz.cost import check_cost, estimate, plan_evaluation, profile, profile_of
from genviz.limits import HostLimits
from genviz.models import MODELS
from genviz.targets import TARGETS
from genviz.train import Trainer

PAGE = {"n_test": 10_000, "steps": 3000}  # the page's defaults (genviz.ui)
DEFAULT_LIMITS = HostLimits()
ZUKO = {"nsf", "maf", "realnvp"}


@pytest.mark.parametrize("name", list(MODELS))
def test_the_count_on_the_meta_device_is_the_built_models(name: str) -> None:
    """Counted without allocating: every family on "meta" (zuko's flows with their weights there)."""
    config = RunConfig(model=name)
    shape = profile(config)
    built = MODELS[name](**config.model_kwargs())
    assert shape.parameters == sum(p.numel() for p in built.parameters() if p.requires_grad)
    assert shape.counted == ("meta weights" if name in ZUKO else "meta")
    assert shape.cost == built.evaluation_cost() and shape.eval_points == built.eval_points


@pytest.mark.parametrize(
    ("name", "params", "expected"),
    [
        # 2 → 1024 → … → 1024 → 1 and latent 2 → … → 2: eight hidden layers of 1024 each
        (
            "gan",
            {"hidden": (1024,) * 8},
            (3 * 1024 + 7 * 1025 * 1024 + 1025) + (3 * 1024 + 7 * 1025 * 1024 + 2050),
        ),
        ("ebm", {"hidden": (1024,) * 8}, 3 * 1024 + 7 * 1025 * 1024 + 1025),
    ],
)
def test_a_huge_model_is_counted_without_being_built(name: str, params: dict, expected: int) -> None:
    shape = profile(RunConfig(model=name, params=params))
    assert shape.parameters == expected and shape.counted == "meta"


def test_a_huge_flow_is_counted_with_only_its_masks_real() -> None:
    config = RunConfig(model="nsf", params={"transforms": 16, "hidden": (512,) * 8, "bins": 64})
    assert profile(config).parameters > 25_000_000  # 29 M weights on "meta": no 120 MB of them


def test_a_family_that_cannot_be_built_on_meta_gets_a_rough_count(monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise RuntimeError("no meta kernel")

    monkeypatch.setattr(cost, "profile_of", refuse)  # as if building on either kind of "meta" failed
    cost._profile.cache_clear()
    try:
        shape = profile(RunConfig(model="gan", params={"hidden": (128, 128)}))
    finally:
        monkeypatch.undo()
        cost._profile.cache_clear()
    assert shape.counted == "rough" and 10_000 < shape.parameters < 100_000


def test_counting_leaves_the_random_stream_alone() -> None:
    torch.manual_seed(3)
    expected = torch.rand(3)
    torch.manual_seed(3)
    cost._profile.cache_clear()
    for name in MODELS:
        profile(RunConfig(model=name))
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize("name", list(MODELS))
def test_every_familys_defaults_pass_on_every_target(name: str) -> None:
    for target in TARGETS:
        for config in (RunConfig(model=name, target=target, **PAGE), RunConfig(model=name, target=target)):
            check_cost(config, DEFAULT_LIMITS)
    guess = estimate(RunConfig(model=name, **PAGE))
    assert guess.memory_bytes < 300e6 and guess.eval_seconds < DEFAULT_LIMITS.max_eval_seconds
    assert guess.live_seconds < 2 * cost.LIVE_SECONDS  # a live update stays near 0.1 s


@pytest.mark.parametrize(
    ("name", "params", "limit"),
    [
        ("kde", {"max_points": 50_000}, "GENVIZ_MAX_EVAL_SECONDS"),  # ~10 s and 1.8 GB an update before
        ("cnf", {"eval_steps": 256}, "GENVIZ_MAX_EVAL_SECONDS"),  # ~13 s
        ("vae", {"iwae_samples": 1024}, "GENVIZ_MAX_SESSION_MB"),  # 1.5 GB of IWAE draws
        ("gan", {"hidden": (1024,) * 8}, "GENVIZ_MAX_PARAMETERS"),  # the link that took the server down
        ("vae", {"hidden": (1024,) * 8}, "GENVIZ_MAX_PARAMETERS"),
        ("ebm", {"hidden": (1024,) * 8}, "GENVIZ_MAX_PARAMETERS"),
        ("ebm", {"chains": 8192, "langevin_steps": 200}, "GENVIZ_MAX_STEP_SECONDS"),
        ("gsn", {"chain_steps": 200, "hidden": (512, 512)}, "GENVIZ_MAX_EVAL_SECONDS"),
    ],
)
def test_expensive_settings_are_refused_naming_the_limit(name: str, params: dict, limit: str) -> None:
    with pytest.raises(ConfigError, match=limit) as refused:
        check_cost(RunConfig(model=name, params=params, **PAGE), DEFAULT_LIMITS)
    assert "× over" in str(refused.value) and "this server allows" in str(refused.value)


def test_the_message_says_how_much_and_what_is_allowed() -> None:
    config = RunConfig(model="vae", params={"iwae_samples": 1024}, **PAGE)
    with pytest.raises(ConfigError) as refused:
        check_cost(config, HostLimits(max_session_mb=100))
    message = str(refused.value)
    assert (
        message.startswith("this model needs ~")
        and "allows 100 MB per session (GENVIZ_MAX_SESSION_MB)" in message
    )
    needed = estimate(config).memory_bytes
    assert f"{needed / 100e6:.1f}× over" in message


def test_a_host_sets_its_own_budget_and_zero_lifts_a_limit() -> None:
    config = RunConfig(model="kde", params={"max_points": 50_000}, **PAGE)
    roomy = HostLimits.from_environment({"GENVIZ_MAX_EVAL_SECONDS": "0", "GENVIZ_MAX_STEP_SECONDS": "0"})
    check_cost(config, roomy)
    with pytest.raises(ConfigError, match="GENVIZ_MAX_PARAMETERS"):
        check_cost(RunConfig(model="gan"), HostLimits.from_environment({"GENVIZ_MAX_PARAMETERS": "1000"}))
    for bad in ("-1", "nan", "inf", "lots"):
        with pytest.raises(ValueError, match="GENVIZ_MAX_SESSION_MB"):
            HostLimits.from_environment({"GENVIZ_MAX_SESSION_MB": bad})


@pytest.mark.parametrize(
    ("name", "knob", "low", "high", "part"),
    [
        ("kde", "max_points", 2000, 20_000, "log q"),  # a distance to every centre
        ("cnf", "eval_steps", 12, 96, "log q"),  # RK4 steps
        ("vae", "iwae_samples", 64, 512, "further bounds"),  # IWAE draws
        ("gsn", "chain_steps", 8, 64, "heat map"),  # chain steps behind each of 20,000 samples
        ("gan", "hidden", (128, 128), (1024,) * 4, "heat map"),  # the generator behind 20,000 samples
        ("ebm", "hidden", (64, 64), (512,) * 4, "partition function"),  # the energy on a 256² grid
    ],
)
def test_the_estimate_follows_what_an_evaluation_does(name: str, knob: str, low, high, part: str) -> None:
    small = estimate(RunConfig(model=name, params={knob: low}, **PAGE))
    large = estimate(RunConfig(model=name, params={knob: high}, **PAGE))
    assert large.parts[part] > 3 * small.parts[part] and large.eval_seconds > small.eval_seconds


def test_a_users_data_set_is_priced_by_its_held_out_points() -> None:
    # a 1-D latent: a 2-D one caps its full evaluation at a fixed number of held-out points
    config = RunConfig(model="vae", target="data", params={"latent": 1}, **PAGE)
    large, small = estimate(config, held_out=200_000), estimate(config, held_out=2000)
    assert large.parts["log q"] > 50 * small.parts["log q"]
    with pytest.raises(ConfigError, match="GENVIZ_MAX_EVAL_SECONDS"):
        check_cost(config, DEFAULT_LIMITS, held_out=200_000)


# ---------------------------------------------------------------- live evaluations


def trainer(name: str, params: dict | None = None, steps: int = 3) -> Trainer:
    run = Trainer(RunConfig(model=name, params=params or {}, n_test=10_000, steps=1000, device="cpu"))
    run.train(max_steps=steps)
    return run


def test_a_cheap_family_is_evaluated_in_full_while_training() -> None:
    run = trainer("gaussian")
    live, full = run.record(live=True), run.record()
    assert live.live and not full.live
    assert live.nll == full.nll and live.kl == full.kl
    assert "while training" not in live.nll.method


def test_a_costly_density_is_evaluated_on_a_labelled_subset_while_training() -> None:
    run = trainer("kde", {"max_points": 10_000}, steps=25)
    plan = plan_evaluation(run.model, len(run.data.test), live=True)
    assert 500 <= plan.points < 10_000 and str(plan.points)[0] in "125"
    live, full = run.record(live=True), run.record()
    assert f"{plan.points:,} of 10,000 held-out points while training" in live.nll.method
    assert f"Monte Carlo on {plan.points:,} of 10,000 held-out points while training" in live.kl.method
    assert "while training" not in full.nll.method and "10,000 held-out points" in full.nll.method
    assert live.kl.kind == full.kl.kind == "exact"  # a subset is still an unbiased Monte Carlo mean
    assert abs(live.nll.value - full.nll.value) < 5 * live.nll.se


def test_an_iwae_bound_of_many_draws_uses_fewer_points_while_training() -> None:
    run = trainer("vae", {"iwae_samples": 512})
    live, full = run.record(live=True), run.record()
    live_iwae, full_iwae = (next(o for o in e.others if "IWAE" in o.name) for e in (live, full))
    assert "of 2,000 held-out points while training" in live_iwae.method
    assert "mean over 2,000 held-out points" in full_iwae.method


def test_a_sampler_without_a_density_draws_fewer_samples_while_training() -> None:
    run = trainer("gsn", {"chain_steps": 64})
    plan = plan_evaluation(run.model, len(run.data.test), live=True)
    full = plan_evaluation(run.model, len(run.data.test))
    assert plan.samples < full.samples and plan.points <= full.points
    live = run.record(live=True)
    assert f"of {plan.samples:,} model samples" in live.nll.method and live.nll.kind == "estimate"


def test_a_wide_energy_normalises_on_a_coarser_grid_while_training() -> None:
    run = trainer("ebm", {"hidden": (256, 256, 256)}, steps=1)
    plan = plan_evaluation(run.model, len(run.data.test), live=True)
    assert plan.partition < 256
    assert f"on a {plan.partition}² grid" in run.record(live=True).nll.method
    assert "on a 256² grid" in run.record().nll.method


def test_every_familys_live_evaluation_is_finite_and_labelled() -> None:
    for name in MODELS:
        run = Trainer(RunConfig(model=name, n_test=2000, steps=10, device="cpu"))
        evaluation = run.record(live=True)
        assert evaluation.live and math.isfinite(evaluation.nll.value)
        assert evaluation.nll.kind in ("exact", "bound", "estimate")


def test_the_live_heat_map_is_coarser_for_a_costly_density() -> None:
    cheap, costly = trainer("gaussian"), trainer("kde", {"max_points": 20_000}, steps=40)
    assert cheap.live_resolution(128) == 128
    assert 32 <= costly.live_resolution(128) < 128
    assert trainer("cnf", steps=1).live_resolution(128) <= MODELS["cnf"].live_grid
    assert profile_of(costly.model).cost.pairs == 20_000
