"""Run configuration: validation, URL round trips and --set parsing (never eval)."""

from __future__ import annotations

import pytest

from genviz.config import (
    BATCH_SIZES,
    MAX_LR,
    MAX_SEED,
    MAX_STEPS,
    MIN_LR,
    MIN_STEPS,
    ConfigError,
    RunConfig,
    parse_assignment,
)


def test_query_round_trip() -> None:
    config = RunConfig(target="checkerboard", model="nsf", params={"bins": 16, "hidden": (32, 32)}, lr=0.01)
    assert RunConfig.from_query(config.to_query()) == config
    assert RunConfig.from_dict(config.to_dict()) == config
    budgeted = config.with_changes(steps=2500, seed=MAX_SEED, batch_size=BATCH_SIZES[-1])
    assert RunConfig.from_query(budgeted.to_query()) == budgeted


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"target": "nope"}, "unknown target"),
        ({"model": "nope"}, "unknown model"),
        ({"lr": "fast"}, "lr: cannot read"),
        ({"lr": "-1"}, "lr must lie"),
        ({"p.bins": "1000"}, "bins must lie in"),
        ({"p.colour": "red"}, "no hyperparameter 'colour'"),
        ({"batch_size": "__import__('os')"}, "batch_size: cannot read"),
    ],
)
def test_bad_query_is_a_clear_error(query: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        RunConfig.from_query(query)


def test_set_assignments() -> None:
    config = parse_assignment(RunConfig(), "hidden=128, 128")
    config = parse_assignment(config, "lr=1e-2")
    assert config.params["hidden"] == (128, 128) and config.lr == 0.01
    assert parse_assignment(RunConfig(model="gmm"), "fit=gradient").params == {"fit": "gradient"}
    for bad, message in [("bins", "key=value"), ("wings=2", "unknown setting"), ("fit=magic", "unknown")]:
        with pytest.raises(ConfigError, match=message):
            parse_assignment(RunConfig(), bad)
    with pytest.raises(ConfigError, match="must be one of"):
        parse_assignment(RunConfig(model="gmm"), "fit=magic")


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"steps": "10000000"}, "steps must be a whole number in [1, 1,000,000], got 10,000,000"),
        ({"steps": "0"}, "steps must be a whole number in [1, 1,000,000], got 0"),
        ({"steps": "-5"}, "steps must be a whole number"),
        ({"steps": "1e6"}, "steps: cannot read '1e6'"),
        ({"seed": "3000000000"}, "seed must be a whole number in [0, 2,147,483,647], got 3,000,000,000"),
        ({"seed": "-1"}, "seed must be a whole number in [0,"),
        (
            {"batch_size": "100"},
            "batch_size must be one of 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192",
        ),
        ({"batch_size": "65536"}, "batch_size must be one of"),
        ({"lr": "0.5"}, "lr must lie in [1e-05, 0.1], got 0.5"),
        ({"lr": "1e-6"}, "lr must lie in"),
        ({"lr": "nan"}, "lr must lie in"),
    ],
)
def test_a_link_outside_the_widgets_limits_is_an_error_not_a_clamp(
    query: dict[str, str], message: str
) -> None:
    """A link gets exactly the sidebar's limits; it used to become steps 1 or seed 0 silently."""
    with pytest.raises(ConfigError) as caught:
        RunConfig.from_query(query)
    assert message in str(caught.value)


def test_the_limits_themselves_are_accepted() -> None:
    edges = [
        {"steps": str(MIN_STEPS)},
        {"steps": str(MAX_STEPS)},
        {"seed": "0"},
        {"seed": str(MAX_SEED)},
        {"lr": repr(MIN_LR)},
        {"lr": repr(MAX_LR)},
        *({"batch_size": str(size)} for size in BATCH_SIZES),
    ]
    for query in edges:
        config = RunConfig.from_query(query)
        assert all(
            str(getattr(config, key)) == value or repr(getattr(config, key)) == value
            for key, value in query.items()
        )


def test_the_same_limits_hold_for_every_configuration() -> None:
    """The command line and the page build RunConfigs too: the same ranges, checked once."""
    for bad, message in [
        ({"steps": MAX_STEPS + 1}, "steps must be"),
        ({"seed": MAX_SEED + 1}, "seed must be"),
        ({"seed": 1.5}, "seed must be a whole number"),
        ({"batch_size": 0}, "batch_size must be"),
        ({"batch_size": BATCH_SIZES[-1] + 1}, "batch_size must be"),
        ({"lr": 1.0}, "lr must lie in"),
    ]:
        with pytest.raises(ConfigError, match=message):
            RunConfig(**bad)
    assert RunConfig(batch_size=100).batch_size == 100  # `--set batch_size=100`: any size in the range
    assert parse_assignment(RunConfig(), "batch_size=100").batch_size == 100
    with pytest.raises(ConfigError, match="lr must lie in"):
        parse_assignment(RunConfig(), "lr=0.5")
