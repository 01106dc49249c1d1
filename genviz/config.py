"""Run configuration: one typed, flat record shared by the page, the CLI and the benchmarks.

It round-trips through a plain dict (JSON, `metrics.json`) and through URL query
parameters (so a page state can be shared as a link). Values are parsed by type,
never evaluated.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Literal

from genviz.models import MODELS, checked_params, hyperparameters
from genviz.targets import TARGETS

Schedule = Literal["constant", "cosine"]
DeviceChoice = Literal["auto", "cpu", "cuda"]
USER_DATA = "data"  # the target name of a user's own points (no density known)
SCHEDULES: tuple[str, ...] = ("constant", "cosine")
DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda")


class ConfigError(ValueError):
    """A configuration a user gave that cannot run; the message says what to change."""


@dataclass(frozen=True)
class RunConfig:
    target: str = "8gaussians"  # a TARGETS name, or "data" for a user's points
    model: str = "nsf"
    params: dict[str, Any] = field(default_factory=dict)  # the family's hyperparameters
    lr: float | None = None  # None: the family's own rate (`learning_rate`)
    batch_size: int = 512
    schedule: Schedule = "cosine"  # cosine decays over the step or time budget, when there is one
    steps: int | None = None  # budget in steps
    seconds: float | None = None  # budget in seconds of training
    seed: int = 0
    device: DeviceChoice = "auto"
    n_test: int = 20_000  # held-out points for the NLL and KL

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        if self.target != USER_DATA and self.target not in TARGETS:
            raise ConfigError(f"unknown target {self.target!r}; choose from {', '.join(TARGETS)}")
        if self.model not in MODELS:
            raise ConfigError(f"unknown model {self.model!r}; choose from {', '.join(MODELS)}")
        try:
            checked_params(MODELS[self.model], self.params)
        except ValueError as error:
            raise ConfigError(str(error)) from None
        _check(self.lr is None or (math.isfinite(self.lr) and 0 < self.lr <= 1), "lr must lie in (0, 1]")
        _check(1 <= self.batch_size <= 65_536, "batch_size must lie in [1, 65536]")
        _check(self.schedule in SCHEDULES, f"schedule must be one of {', '.join(SCHEDULES)}")
        _check(self.device in DEVICES, f"device must be one of {', '.join(DEVICES)}")
        _check(self.steps is None or self.steps >= 0, "steps must be ≥ 0")
        _check(self.seconds is None or 0 <= self.seconds < math.inf, "seconds must be a finite number ≥ 0")
        _check(100 <= self.n_test <= 1_000_000, "n_test must lie in [100, 1000000]")
        _check(0 <= self.seed < 2**63, "seed must be a non-negative integer")

    @property
    def learning_rate(self) -> float:
        """The base rate: the run's own, else the family's."""
        return self.lr if self.lr is not None else MODELS[self.model].learning_rate

    def with_changes(self, **changes: Any) -> RunConfig:
        return replace(self, **changes)

    def model_kwargs(self) -> dict[str, Any]:
        """Hyperparameters with the family's defaults filled in."""
        defaults = {h.name: h.default for h in hyperparameters(MODELS[self.model])}
        return {**defaults, **checked_params(MODELS[self.model], self.params)}

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["params"] = {k: list(v) if isinstance(v, tuple) else v for k, v in self.params.items()}
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        _check(not unknown, f"unknown configuration key(s): {', '.join(unknown)}")
        data = dict(data)
        if "params" in data:
            family = MODELS.get(data.get("model", cls.model))
            specs = {h.name: h for h in hyperparameters(family)} if family else {}
            params = data["params"]
            try:
                data["params"] = {k: specs[k].check(v) if k in specs else v for k, v in params.items()}
            except ValueError as error:
                raise ConfigError(str(error)) from None
        return cls(**data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    # URL query parameters: flat strings, e.g. ?target=moons&model=nsf&lr=0.003&p.bins=16
    def to_query(self) -> dict[str, str]:
        query = {"target": self.target, "model": self.model}
        if self.lr is not None:
            query["lr"] = repr(self.lr)
        query |= {"batch_size": str(self.batch_size), "schedule": self.schedule, "seed": str(self.seed)}
        query |= {"device": self.device}
        for name, value in self.params.items():
            query[f"p.{name}"] = ",".join(map(str, value)) if isinstance(value, tuple) else str(value)
        return query

    @classmethod
    def from_query(cls, query: dict[str, str], base: RunConfig | None = None) -> RunConfig:
        """Parse query parameters over `base`; raises ConfigError on anything it cannot read."""
        base = base or cls()
        model = query.get("model", base.model)
        _check(model in MODELS, f"unknown model {model!r}; choose from {', '.join(MODELS)}")
        specs = {h.name: h for h in hyperparameters(MODELS[model])}
        params: dict[str, Any] = {}
        for key, text in query.items():
            if key.startswith("p."):
                name = key[2:]
                _check(name in specs, f"model {model} has no hyperparameter {name!r}")
                params[name] = _parse(specs[name].parse, text)
        changes: dict[str, Any] = {"model": model, "params": params}
        readers = {"target": str, "lr": float, "batch_size": int, "schedule": str, "seed": int, "device": str}
        for key, reader in readers.items():
            if key in query:
                changes[key] = _parse(reader, query[key], key)
        return replace(base, **changes)


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def _parse(reader: Any, text: str, name: str = "") -> Any:
    try:
        return reader(text)
    except ValueError as error:
        if not name:  # hyperparameter parsers already name the setting and the value
            raise ConfigError(str(error)) from None
        raise ConfigError(f"{name}: cannot read {text!r} ({error})") from None


def parse_assignment(config: RunConfig, assignment: str) -> RunConfig:
    """Apply one `--set key=value`: a training setting or one of the model's hyperparameters."""
    key, sep, text = assignment.partition("=")
    key = key.strip()
    _check(bool(sep) and bool(key), f"--set expects key=value, got {assignment!r}")
    settings = {"lr": float, "batch_size": int, "schedule": str, "n_test": int}
    if key in settings:
        return config.with_changes(**{key: _parse(settings[key], text, key)})
    specs = {h.name: h for h in hyperparameters(MODELS[config.model])}
    if key not in specs:
        names = ", ".join([*settings, *specs])
        raise ConfigError(f"unknown setting {key!r} for model {config.model}; known: {names}")
    value = _parse(specs[key].parse, text)
    return config.with_changes(params={**config.params, key: value})
