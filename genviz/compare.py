"""Compare families on one target at one budget: a leaderboard, for the command line and the page.

    spec = CompareSpec("8gaussians", ("nsf", "gmm", "gaussian"), seconds=10, seeds=2, kl_goal=0.1)
    results = run_compare(spec)                 # one Trainer per (family, seed), one after another
    rows = leaderboard(results, spec.kl_goal)   # best KL first, mean ± spread across seeds

Every run gets the same budget (`RunConfig.steps` or `RunConfig.seconds` of training time) and the
same held-out points; a run's result is read from its history of labelled evaluations, so the page,
whose runs train in the live engine, builds the same leaderboard from their snapshots.
"""

from __future__ import annotations

import csv
import io
import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from genviz.config import MAX_STEPS, ConfigError, RunConfig
from genviz.metrics import Result
from genviz.models import MODELS, GenerativeModel
from genviz.targets import TARGETS
from genviz.train import Evaluation, Trainer

MAX_FAMILIES = len(MODELS)
MAX_SEEDS = 5
MAX_RUNS = 24  # families × seeds: what one comparison may ask of a server
MAX_SECONDS = 600.0  # training seconds per run
EVALUATIONS = 20  # evaluations per run on the command line: the points of its curve
N_TEST = 10_000  # held-out points of every run
COLUMNS = (
    "rank", "model", "runs", "nll", "nll_spread", "kl", "kl_se", "kl_spread", "kl_kind", "kl_method",
    "parameters", "steps", "steps_per_second", "goal_seconds", "goal_reached",
)  # fmt: skip


@dataclass(frozen=True)
class CompareSpec:
    """One comparison: the target, the families, the budget each run gets, seeds and the KL goal."""

    target: str
    models: tuple[str, ...]
    steps: int | None = None
    seconds: float | None = None
    seeds: int = 1
    kl_goal: float | None = None  # "time to reach this KL" in nats, read from each run's history
    n_test: int = N_TEST

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        _check(self.target in TARGETS, f"unknown target {self.target!r}; choose from {', '.join(TARGETS)}")
        _check(bool(self.models), "choose at least one model")
        unknown = [m for m in self.models if m not in MODELS]
        _check(not unknown, f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(MODELS)}")
        _check(len(set(self.models)) == len(self.models), "each model once, please")
        _check((self.steps is None) != (self.seconds is None), "give one budget: steps or seconds")
        if self.steps is not None:
            _check(
                isinstance(self.steps, int) and 1 <= self.steps <= MAX_STEPS,
                f"steps must lie in [1, {MAX_STEPS:,}]",
            )
        if self.seconds is not None:
            _check(0 < self.seconds <= MAX_SECONDS, f"seconds must lie in (0, {MAX_SECONDS:g}]")
        _check(
            isinstance(self.seeds, int) and 1 <= self.seeds <= MAX_SEEDS,
            f"seeds must lie in [1, {MAX_SEEDS}]",
        )
        runs = len(self.models) * self.seeds
        _check(
            runs <= MAX_RUNS, f"{runs} runs asked for; a comparison takes at most {MAX_RUNS} (models × seeds)"
        )
        goal = self.kl_goal
        _check(goal is None or (math.isfinite(goal) and goal > 0), "the KL goal must be a number > 0")

    def configs(self) -> list[RunConfig]:
        """One configuration per (model, seed), models in the order given; seeds 0, 1, …"""
        budget = {"steps": self.steps, "seconds": self.seconds, "n_test": self.n_test}
        return [
            RunConfig(target=self.target, model=model, seed=seed, **budget)
            for model in self.models
            for seed in range(self.seeds)
        ]

    def budget_text(self) -> str:
        return f"{self.steps:,} steps" if self.steps is not None else f"{self.seconds:g} s of training"


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


@dataclass(frozen=True)
class RunResult:
    """One finished (or stopped) run, read from its history."""

    model: str
    seed: int
    steps: int
    seconds: float  # training time
    parameters: int
    nll: Result
    kl: Result
    goal: tuple[float, int] | None  # (training seconds, step) of the first evaluation at or below the goal
    curve: tuple[tuple[int, float, float | None], ...]  # (step, seconds, KL) of every evaluation

    @property
    def steps_per_second(self) -> float | None:
        return self.steps / self.seconds if self.seconds > 0 else None


def parameter_count(model: GenerativeModel) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def time_to_goal(history: Sequence[Evaluation], goal: float | None) -> tuple[float, int] | None:
    """(training seconds, step) of the first evaluation whose KL is at or below `goal`."""
    if goal is None:
        return None
    for evaluation in history:
        if evaluation.kl.value is not None and evaluation.kl.value <= goal:
            return evaluation.seconds, evaluation.step
    return None


def run_result(
    config: RunConfig,
    history: Sequence[Evaluation],
    steps: int,
    seconds: float,
    parameters: int,
    kl_goal: float | None,
) -> RunResult:
    """A run's row, from its history (its last evaluation gives the NLL and the KL)."""
    last = history[-1]
    curve = tuple((e.step, e.seconds, e.kl.value) for e in history)
    goal = time_to_goal(history, kl_goal)
    return RunResult(config.model, config.seed, steps, seconds, parameters, last.nll, last.kl, goal, curve)


def train_run(config: RunConfig, kl_goal: float | None = None, evaluations: int = EVALUATIONS) -> RunResult:
    """Train one configuration to its budget, evaluating `evaluations` times along the way."""
    trainer = Trainer(config)
    trainer.record()
    while not trainer.done:
        if config.steps is not None:
            trainer.train(max_steps=max(1, config.steps // evaluations))
        else:
            trainer.train(max_seconds=config.seconds / evaluations)
        trainer.record()
    count = parameter_count(trainer.model)
    return run_result(config, trainer.history, trainer.step, trainer.train_seconds, count, kl_goal)


def run_compare(spec: CompareSpec, progress: Callable[[RunResult], None] | None = None) -> list[RunResult]:
    """Every (model, seed) run of the comparison, one after another; `progress` hears of each."""
    results = []
    for config in spec.configs():
        results.append(train_run(config, spec.kl_goal))
        if progress is not None:
            progress(results[-1])
    return results


# ------------------------------------------------------------------ the leaderboard


@dataclass(frozen=True)
class Row:
    """One family's line: means across its seeds, with the spread (sample standard deviation)."""

    model: str
    runs: int
    nll: float | None
    nll_spread: float | None
    kl: float | None
    kl_se: float | None  # the mean of the runs' Monte Carlo standard errors
    kl_spread: float | None
    kl_kind: str
    kl_method: str
    parameters: int
    steps: float
    steps_per_second: float | None
    goal_seconds: float | None  # mean over the runs that reached the goal
    goal_reached: int  # runs that reached it

    def as_dict(self, rank: int) -> dict[str, object]:
        return {"rank": rank, **{name: getattr(self, name) for name in COLUMNS[1:]}}


def _mean_spread(values: Sequence[float | None]) -> tuple[float | None, float | None]:
    known = [v for v in values if v is not None and math.isfinite(v)]
    if not known:
        return None, None
    spread = statistics.stdev(known) if len(known) > 1 else None
    return statistics.fmean(known), spread


def family_row(model: str, runs: Sequence[RunResult]) -> Row:
    nll, nll_spread = _mean_spread([r.nll.value for r in runs])
    kl, kl_spread = _mean_spread([r.kl.value for r in runs])
    kl_se, _ = _mean_spread([r.kl.se for r in runs])
    rate, _ = _mean_spread([r.steps_per_second for r in runs])
    reached = [r.goal[0] for r in runs if r.goal is not None]
    kinds = sorted({r.kl.kind for r in runs})
    methods = sorted({r.kl.method for r in runs})
    return Row(
        model, len(runs), nll, nll_spread, kl, kl_se, kl_spread, "/".join(kinds), "; ".join(methods),
        runs[0].parameters, statistics.fmean(r.steps for r in runs), rate,
        statistics.fmean(reached) if reached else None, len(reached),
    )  # fmt: skip


def leaderboard(results: Sequence[RunResult]) -> list[Row]:
    """One row per family, best first: by mean KL (an unavailable KL last), then by mean NLL."""
    models = list(dict.fromkeys(r.model for r in results))
    rows = [family_row(m, [r for r in results if r.model == m]) for m in models]
    return sorted(rows, key=lambda row: (row.kl is None, row.kl or 0.0, row.nll is None, row.nll or 0.0))


def to_csv(rows: Sequence[Row]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for rank, row in enumerate(rows, start=1):
        writer.writerow({k: "" if v is None else v for k, v in row.as_dict(rank).items()})
    return buffer.getvalue()


def curves_csv(results: Sequence[RunResult]) -> str:
    """Every run's KL curve: model, seed, step, seconds, kl."""
    lines = ["model,seed,step,seconds,kl"]
    for r in results:
        lines += [f"{r.model},{r.seed},{s},{t:.4f},{'' if kl is None else kl}" for s, t, kl in r.curve]
    return "\n".join(lines) + "\n"


def _plus_minus(value: float | None, spread: float | None, digits: int = 3) -> str:
    if value is None:
        return "—"
    return f"{value:.{digits}f}" + (f" ± {spread:.{digits}f}" if spread is not None else "")


def table_rows(rows: Sequence[Row], kl_goal: float | None) -> list[dict[str, str]]:
    """The leaderboard as text cells, for a Markdown table or the page."""
    out = []
    for rank, row in enumerate(rows, start=1):
        cells = {
            "rank": str(rank),
            "model": row.model,
            "held-out NLL": _plus_minus(row.nll, row.nll_spread),
            "KL(p‖q)": _plus_minus(row.kl, row.kl_spread if row.runs > 1 else row.kl_se),
            "KL kind": row.kl_kind,
            "parameters": f"{row.parameters:,}",
            "steps/s": "—" if row.steps_per_second is None else f"{row.steps_per_second:,.0f}",
        }
        if kl_goal is not None:
            cells[f"time to KL ≤ {kl_goal:g}"] = _goal_text(row)
        out.append(cells)
    return out


def _goal_text(row: Row) -> str:
    if row.goal_seconds is None:
        return "not reached"
    reached = "" if row.goal_reached == row.runs else f" ({row.goal_reached} of {row.runs} runs)"
    return f"{row.goal_seconds:.1f} s{reached}"


def to_markdown(rows: Sequence[Row], spec: CompareSpec) -> str:
    cells = table_rows(rows, spec.kl_goal)
    header = list(cells[0]) if cells else ["model"]
    seeds = f"{spec.seeds} seeds, mean ± standard deviation across them" if spec.seeds > 1 else (
        "one seed, KL ± its Monte Carlo standard error"
    )  # fmt: skip
    lines = [
        f"Leaderboard on {spec.target}: {spec.budget_text()} per run, {seeds}; "
        f"held-out NLL and KL(p‖q) in nats on {spec.n_test:,} held-out points.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---:" if h not in ("model", "KL kind") else "---" for h in header) + "|",
    ]
    lines += ["| " + " | ".join(row[h] for h in header) + " |" for row in cells]
    return "\n".join(lines) + "\n"
