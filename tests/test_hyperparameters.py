"""Every hyperparameter is bounded in its type, so the sidebar, a link and `--set` all get the same limits."""

from __future__ import annotations

import pytest

from genviz.config import ConfigError, RunConfig, parse_assignment
from genviz.models import MODELS, checked_params, hyperparameters
from genviz.models.base import MAX_TUPLE_LENGTH, Hyperparameter, Range

SPECS = [(name, h) for name, family in MODELS.items() for h in hyperparameters(family)]
TUPLES = [(name, h) for name, h in SPECS if h.kind is tuple]


@pytest.mark.parametrize(("name", "spec"), SPECS, ids=[f"{n}.{h.name}" for n, h in SPECS])
def test_every_numeric_hyperparameter_has_a_range_its_default_lies_in(
    name: str, spec: Hyperparameter
) -> None:
    if spec.choices is None and spec.kind in (int, float, tuple):
        assert spec.range is not None, f"{name}.{spec.name} has no Range"
        assert spec.range.low <= spec.range.high
    assert spec.check(spec.default) == spec.default


@pytest.mark.parametrize(("name", "spec"), TUPLES, ids=[f"{n}.{h.name}" for n, h in TUPLES])
def test_layer_widths_have_a_width_bound_and_a_length_cap(name: str, spec: Hyperparameter) -> None:
    assert spec.range is not None and spec.range.max_length is not None
    assert 1 <= spec.max_length <= MAX_TUPLE_LENGTH and spec.range.high <= 1024
    widest = (int(spec.range.high),) * spec.max_length
    assert spec.check(widest) == widest
    with pytest.raises(ValueError, match=f"at most {spec.max_length} entries, got {spec.max_length + 1}"):
        spec.check((int(spec.range.low),) * (spec.max_length + 1))
    with pytest.raises(ValueError, match="must lie in"):
        spec.check((int(spec.range.high) + 1,))


def test_a_thousand_layers_are_refused_by_every_route() -> None:
    """The link that built a billion-parameter model: every way in goes through Hyperparameter.check."""
    text = ",".join(["1024"] * 1000)
    for model in ("gan", "vae", "ebm", "nsf"):
        with pytest.raises(ConfigError, match="hidden takes at most 8 entries, got 1,000"):
            RunConfig.from_query({"model": model, "p.hidden": text})
        with pytest.raises(ConfigError, match="at most 8 entries"):
            parse_assignment(RunConfig(model=model), f"hidden={text}")
        with pytest.raises(ConfigError, match="at most 8 entries"):
            RunConfig(model=model, params={"hidden": (1024,) * 1000})
        with pytest.raises(ConfigError, match="at most 8 entries"):
            RunConfig.from_dict({"model": model, "params": {"hidden": [1024] * 1000}})
        with pytest.raises(ValueError, match="at most 8 entries"):
            checked_params(MODELS[model], {"hidden": (64,) * 9})


def test_tuple_entries_must_be_whole_numbers() -> None:
    spec = Hyperparameter("hidden", tuple, (64,), range=Range(4, 1024, max_length=4))
    for bad in [(64.5,), ("64",), (True,)]:
        with pytest.raises(ValueError, match="comma-separated integers"):
            spec.check(bad)
    assert spec.parse("32, 32") == (32, 32)


def test_a_tuple_without_a_cap_gets_the_default_cap() -> None:
    spec = Hyperparameter("hidden", tuple, (64,), range=Range(4, 64))
    assert spec.max_length == MAX_TUPLE_LENGTH
    with pytest.raises(ValueError, match=f"at most {MAX_TUPLE_LENGTH} entries"):
        spec.check((8,) * (MAX_TUPLE_LENGTH + 1))
