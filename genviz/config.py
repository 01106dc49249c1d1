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

from genviz.formula import FormulaError, parse_formula
from genviz.models import MODELS, checked_params, hyperparameters
from genviz.targets import REVERSE_KL_TARGETS, TARGETS
from genviz.targets.formula import check_box

Schedule = Literal["constant", "cosine"]
DeviceChoice = Literal["auto", "cpu", "cuda"]
# forward-kl: maximum likelihood on samples of p, i.e. min KL(p ‖ q); reverse-kl: min KL(q ‖ p) =
# E_q[log q − log p] with p's normalised density and reparameterised samples of q
Objective = Literal["forward-kl", "reverse-kl"]
OBJECTIVES: tuple[str, ...] = ("forward-kl", "reverse-kl")
USER_DATA = "data"  # the target name of a user's own points (no density known)
FORMULA = "formula"  # the target name of a log-density the user typed (`formula`, on `box`)
DEFAULT_BOX = (-4.0, 4.0, -4.0, 4.0)  # xmin, xmax, ymin, ymax of a typed density
SCHEDULES: tuple[str, ...] = ("constant", "cosine")
DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda")

# The limits of the training settings, shared by the sidebar's widgets, links and the command line:
# a value outside them is an error that says so, never silently clamped to the nearest one.
MIN_STEPS, MAX_STEPS = 1, 1_000_000  # a step budget ("Step budget" input)
MIN_SEED, MAX_SEED = 0, 2**31 - 1  # a seed ("Seed" input)
MIN_LR, MAX_LR = 1e-5, 1e-1  # a learning rate ("Learning rate" slider, log scale)
BATCH_SIZES: tuple[int, ...] = tuple(2**k for k in range(4, 14))  # the "Batch size" slider's and a link's
MIN_BATCH_SIZE, MAX_BATCH_SIZE = 1, BATCH_SIZES[-1]  # what a configuration takes (`--set batch_size=100`)
MIN_N_TEST, MAX_N_TEST = 100, 1_000_000  # held-out points


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
    objective: Objective = "forward-kl"
    formula: str = ""  # target "formula": log p(x, y) up to a constant, read by genviz.formula
    box: tuple[float, float, float, float] = DEFAULT_BOX  # target "formula": where p is normalised

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        if self.target not in (USER_DATA, FORMULA) and self.target not in TARGETS:
            raise ConfigError(f"unknown target {self.target!r}; choose from {', '.join(TARGETS)}")
        if self.model not in MODELS:
            raise ConfigError(f"unknown model {self.model!r}; choose from {', '.join(MODELS)}")
        try:
            checked_params(MODELS[self.model], self.params)
        except ValueError as error:
            raise ConfigError(str(error)) from None
        _check(
            self.lr is None or (math.isfinite(self.lr) and MIN_LR <= self.lr <= MAX_LR),
            f"lr must lie in [{MIN_LR:g}, {MAX_LR:g}], got {self.lr!r}",
        )
        _check_whole("batch_size", self.batch_size, MIN_BATCH_SIZE, MAX_BATCH_SIZE)
        _check(self.schedule in SCHEDULES, f"schedule must be one of {', '.join(SCHEDULES)}")
        _check(self.device in DEVICES, f"device must be one of {', '.join(DEVICES)}")
        if self.steps is not None:
            _check_whole("steps", self.steps, MIN_STEPS, MAX_STEPS)
        _check(self.seconds is None or 0 <= self.seconds < math.inf, "seconds must be a finite number ≥ 0")
        _check_whole("n_test", self.n_test, MIN_N_TEST, MAX_N_TEST)
        _check_whole("seed", self.seed, MIN_SEED, MAX_SEED)
        self._check_objective()
        self._check_formula()

    def _check_formula(self) -> None:
        """A typed density's syntax and box; its values on the box are checked when it is built."""
        if self.target != FORMULA:
            return
        try:
            parse_formula(self.formula)
            check_box(tuple(self.box))
        except FormulaError as error:
            raise ConfigError(str(error)) from None

    def _check_objective(self) -> None:
        """reverse-kl needs p's differentiable density and q's reparameterised samples with log q."""
        _check(self.objective in OBJECTIVES, f"objective must be one of {', '.join(OBJECTIVES)}")
        if self.objective != "reverse-kl":
            return
        _check(
            self.target in REVERSE_KL_TARGETS,
            f"reverse-kl needs a target with a known, differentiable log density, not {_named(self.target)}: "
            f"use one of {', '.join(REVERSE_KL_TARGETS)}",
        )
        refusal = MODELS[self.model].reverse_kl_refusal(self.model_kwargs())
        _check(
            refusal is None,
            f"reverse-kl cannot train {self.model} ({refusal}); it trains {', '.join(reverse_kl_models())}",
        )

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
        if isinstance(data.get("box"), list):  # JSON has no tuples
            data["box"] = tuple(data["box"])
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
        if self.steps is not None:
            query["steps"] = str(self.steps)
        if self.seconds is not None:
            query["seconds"] = repr(self.seconds)
        query["n_test"] = str(self.n_test)
        if self.objective != "forward-kl":
            query["objective"] = self.objective
        if self.target == FORMULA:
            query |= {"formula": self.formula, "box": ",".join(map(_short_float, self.box))}
        for name, value in self.params.items():
            query[f"p.{name}"] = ",".join(map(str, value)) if isinstance(value, tuple) else str(value)
        return query

    @classmethod
    def from_query(cls, query: dict[str, str], base: RunConfig | None = None) -> RunConfig:
        """Parse query parameters over `base`; raises ConfigError on anything it cannot read.

        A link gets exactly the sidebar's limits: the step budget, seed and learning rate must lie
        in their ranges (see MAX_STEPS, MAX_SEED, MIN_LR, MAX_LR) and the batch size must be one
        of BATCH_SIZES; nothing out of range is clamped."""
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
        readers |= {"objective": str, "formula": str, "box": parse_box}
        for key, reader in (readers | {"steps": int, "seconds": float, "n_test": int}).items():
            if key in query:
                changes[key] = _parse(reader, query[key], key)
        if "batch_size" in changes:
            _check(
                changes["batch_size"] in BATCH_SIZES,
                f"batch_size must be one of {', '.join(map(str, BATCH_SIZES))}, got {changes['batch_size']}",
            )
        return replace(base, **changes)


def reverse_kl_models() -> list[str]:
    """The families that can minimise the reverse KL, with what they need, e.g. 'gmm (fit=gradient)'."""
    names = []
    for name, family in MODELS.items():
        if family.reparameterised:
            names.append(f"{name} ({family.reverse_kl_settings})" if family.reverse_kl_settings else name)
    return names


def _named(target: str) -> str:
    return "your own points" if target == USER_DATA else target


def parse_box(text: str) -> tuple[float, float, float, float]:
    """'xmin,xmax,ymin,ymax' -> four floats (their checks are `check_box`'s)."""
    parts = text.split(",", 4) if len(text) <= 200 else []
    try:
        values = tuple(float(part) for part in parts)
    except ValueError:
        values = ()
    if len(values) != 4:
        raise ValueError("expected four numbers xmin,xmax,ymin,ymax")
    return values  # type: ignore[return-value]


def _short_float(value: float) -> str:
    """The shortest text that reads back as the same float: '-4', '0.1'."""
    short = f"{value:g}"
    return short if float(short) == value else repr(value)


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def _check_whole(name: str, value: Any, low: int, high: int) -> None:
    """A whole number in [low, high], or a ConfigError that names the setting, the range and the value."""
    whole = isinstance(value, int) and not isinstance(value, bool)
    shown = f"{value:,}" if whole else repr(value)
    message = f"{name} must be a whole number in [{low:,}, {high:,}], got {shown}"
    _check(whole and low <= value <= high, message)


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
    settings = {"lr": float, "batch_size": int, "schedule": str, "n_test": int, "objective": str}
    if key in settings:
        return config.with_changes(**{key: _parse(settings[key], text, key)})
    specs = {h.name: h for h in hyperparameters(MODELS[config.model])}
    if key not in specs:
        names = ", ".join([*settings, *specs])
        raise ConfigError(f"unknown setting {key!r} for model {config.model}; known: {names}")
    value = _parse(specs[key].parse, text)
    return config.with_changes(params={**config.params, key: value})
