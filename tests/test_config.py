"""Run configuration: validation, URL round trips and --set parsing (never eval)."""

from __future__ import annotations

import pytest

from genviz.config import ConfigError, RunConfig, parse_assignment


def test_query_round_trip() -> None:
    config = RunConfig(target="checkerboard", model="nsf", params={"bins": 16, "hidden": (32, 32)}, lr=0.01)
    assert RunConfig.from_query(config.to_query()) == config
    assert RunConfig.from_dict(config.to_dict()) == config


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
