"""The command line: list what there is, train a model, evaluate a saved one.

    python -m genviz list [--json]
    python -m genviz train --target 8gaussians --model nsf --seconds 30 --out runs/nsf
    python -m genviz train --data points.csv --set transforms=3 --out runs/mine
    python -m genviz train --formula "-(x**2 + y**2)/2" --box -6,6,-6,6 --out runs/typed
    python -m genviz eval runs/mine --data more_points.csv

A mistake a user can fix (a bad argument, file or setting) exits with status 2
and one line on stderr that says what is wrong.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import torch

from genviz.bundle import BundleError
from genviz.config import FORMULA, USER_DATA, ConfigError, RunConfig, parse_assignment, parse_box
from genviz.data import DataSource, config_target
from genviz.grid import Box
from genviz.metrics import Result, log_q_at, mean_and_se
from genviz.models import MODELS, GenerativeModel, Hyperparameter, hyperparameters
from genviz.pointsfile import PointsError, read_points
from genviz.rundir import (
    KNOWN_FILES,
    METRICS_FILE,
    RunDirError,
    json_ready,
    read_files,
    read_run,
    resume,
    write_run,
)
from genviz.targets import TARGETS, Target
from genviz.train import Evaluation, Trainer, resolve_device

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
DEFAULT_SECONDS = 30.0  # the budget when neither --steps nor --seconds is given
PROGRESS_SECONDS = 1.0  # training time between progress lines
MIN_EVAL_POINTS = 2  # a standard error needs two
THREADS_VARIABLE = "GENVIZ_THREADS"
DEFAULT_THREADS = 1  # these models are small: one thread beats several contending for a few cores
LIST_DESCRIPTION = 72  # characters of a target's definition in the human-readable list


class UsageError(Exception):
    """A mistake the user can fix; the message says what to change."""


class _Parser(argparse.ArgumentParser):
    # argparse prints usage plus the error and exits; one line through `main` is clearer.
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    try:
        args = build_parser().parse_args(_attached(sys.argv[1:] if argv is None else list(argv)))
        return args.run(args)
    except (UsageError, ConfigError, PointsError) as error:
        print(f"error: {' '.join(str(error).split())}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`list | head`): point stdout at devnull so the exit flush is quiet.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


VALUES_WITH_A_SIGN = ("--formula", "--box")  # "-(x**2 + y**2)/2" and "-4,4,-4,4" start with a minus


def _attached(argv: list[str]) -> list[str]:
    """`--formula -x**2` as `--formula=-x**2`: argparse would read a value that starts with '-' as
    an option."""
    out: list[str] = []
    for word in argv:
        if out and out[-1] in VALUES_WITH_A_SIGN and word.startswith("-"):
            out[-1] = f"{out[-1]}={word}"
        else:
            out.append(word)
    return out


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m genviz", description="Train and evaluate 2D generative models.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="{list,train,eval,compare}")
    listing = commands.add_parser("list", help="targets and models, with their settings")
    listing.add_argument("--json", action="store_true", help="print one JSON document")
    listing.set_defaults(run=run_list)
    _add_train(commands.add_parser("train", help="train a model and write a run directory"))
    evaluate = commands.add_parser("eval", help="NLL of a CSV of points under a saved model")
    evaluate.add_argument("run_dir", type=Path, metavar="DIR", help="a directory written by train")
    evaluate.add_argument("--data", type=Path, required=True, metavar="FILE.csv", help="points, x,y per line")
    evaluate.set_defaults(run=run_eval)
    _add_compare(commands.add_parser("compare", help="models on one target at one budget: a leaderboard"))
    return parser


def _add_train(train: argparse.ArgumentParser) -> None:
    source = train.add_mutually_exclusive_group(required=True)
    source.add_argument("--target", help="a built-in target (see `list`)")
    source.add_argument("--data", type=Path, metavar="FILE.csv", help="your own points, x,y per line")
    source.add_argument("--formula", metavar="LOG_P", help="a log-density in x and y, up to a constant")
    resume_help = "continue a saved run, a model file or a run directory (--steps/--seconds: how much more)"
    source.add_argument("--resume", type=Path, metavar="FILE_OR_DIR", help=resume_help)
    box_help = "where --formula is normalised and drawn (default -4,4,-4,4)"
    train.add_argument("--box", metavar="XMIN,XMAX,YMIN,YMAX", help=box_help)
    train.add_argument("--model", default=RunConfig.model, help=f"a model (default {RunConfig.model})")
    budget = train.add_mutually_exclusive_group()
    budget.add_argument("--steps", type=int, help="training steps")
    budget.add_argument("--seconds", type=_seconds, help=f"training seconds (default {DEFAULT_SECONDS:g})")
    train.add_argument("--seed", type=int, default=RunConfig.seed)
    train.add_argument("--device", default=RunConfig.device, help="auto, cpu or cuda")
    objective_help = "forward-kl (maximum likelihood, the default) or reverse-kl (fit q to p's density)"
    train.add_argument("--objective", default=RunConfig.objective, help=objective_help)
    train.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="lr, batch_size, schedule, n_test or a model hyperparameter; repeatable",
    )
    train.add_argument("--out", type=Path, required=True, metavar="DIR", help="where to write the run")
    train.set_defaults(run=run_train)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"expected a finite number of seconds ≥ 0, got {text!r}")
    return value


def set_threads() -> None:
    """One torch thread unless GENVIZ_THREADS asks for more."""
    text = os.environ.get(THREADS_VARIABLE, "").strip()
    threads = int(text) if text.isdigit() else DEFAULT_THREADS if not text else 0
    if threads < 1:
        raise UsageError(f"{THREADS_VARIABLE} must be a positive integer, got {text!r}")
    torch.set_num_threads(threads)


# ----------------------------------------------------------------------- list


def run_list(args: argparse.Namespace) -> int:
    if args.json:
        print(json.dumps(catalogue(), indent=2, ensure_ascii=False))
        return 0
    targets = [_target_row(target) for target in TARGETS.values()]
    print("Targets")
    print(_table(["name", "H(p)", "box", "density", "description"], targets))
    print("\nModels")
    rows = [[name, f.title, f.density_kind, f.branch, _defaults(f)] for name, f in MODELS.items()]
    print(_table(["name", "title", "density", "branch", "hyperparameters (defaults)"], rows))
    return 0


def catalogue() -> dict[str, list[dict[str, Any]]]:
    """Every target and model, as plain data."""
    models = [
        {
            "name": name,
            "title": family.title,
            "density": family.density_kind,
            "branch": family.branch,
            "summary": family.summary,
            "hyperparameters": [_hyperparameter(h) for h in hyperparameters(family)],
        }
        for name, family in MODELS.items()
    ]
    return {"targets": [t.describe() for t in TARGETS.values()], "models": models}


def _hyperparameter(spec: Hyperparameter) -> dict[str, Any]:
    return {
        "name": spec.name,
        "type": "ints" if spec.kind is tuple else spec.kind.__name__,
        "default": list(spec.default) if spec.kind is tuple else spec.default,
        "choices": list(spec.choices) if spec.choices is not None else None,
        "range": [spec.range.low, spec.range.high] if spec.range else None,
        "help": spec.help,
    }


def _target_row(target: Target) -> list[str]:
    facts = target.describe()
    x0, x1, y0, y1 = facts["box"]
    entropy = f"{facts['entropy']:.3f}" if facts["entropy"] is not None else "unknown"
    # The full density method and definition are in `list --json` and the README; keep rows one screen wide.
    description = textwrap.shorten(facts["description"], LIST_DESCRIPTION, placeholder=" …")
    return [facts["name"], entropy, f"[{x0:g}, {x1:g}]×[{y0:g}, {y1:g}]", facts["density"], description]


def _defaults(family: type[GenerativeModel]) -> str:
    show = {tuple: lambda value: ",".join(map(str, value))}  # as --set would take it
    return " ".join(f"{h.name}={show.get(h.kind, str)(h.default)}" for h in hyperparameters(family)) or "none"


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in [header, *rows]]
    return "\n".join(line.rstrip() for line in lines)


# ---------------------------------------------------------------------- train


def run_train(args: argparse.Namespace) -> int:
    set_threads()
    if args.resume is not None:
        return run_resume(args)
    config = train_config(args)
    resolve_device(config.device)  # fail before reading data or training
    config_target(config)  # a typed density is normalised (or refused) before anything is written
    data = _points_source(args.data, config.seed) if args.data else None
    out = _prepare_out(args.out)
    trainer = Trainer(config, data)
    train_with_progress(trainer)
    quadrature = write_run(out, trainer)
    print(summary(trainer, out, quadrature))
    return 0


def train_config(args: argparse.Namespace) -> RunConfig:
    """The RunConfig the arguments describe, `--set` applied in order."""
    seconds = DEFAULT_SECONDS if args.steps is None and args.seconds is None else args.seconds
    target = USER_DATA if args.data else FORMULA if args.formula is not None else args.target
    budget = {"steps": args.steps, "seconds": seconds}
    config = RunConfig(
        target=target, model=args.model, seed=args.seed, device=args.device, **budget, **_formula_fields(args)
    )
    for assignment in args.set:
        config = parse_assignment(config, assignment)
    # last, so that the --set it may need (gmm's fit=gradient) is already applied
    return config.with_changes(objective=args.objective) if args.objective != config.objective else config


def _formula_fields(args: argparse.Namespace) -> dict[str, Any]:
    """formula and box for RunConfig from --formula and --box."""
    if args.formula is None:
        if args.box is not None:
            raise UsageError("--box goes with --formula")
        return {}
    if args.box is None:
        return {"formula": args.formula}
    try:
        return {"formula": args.formula, "box": parse_box(args.box)}
    except ValueError as error:
        raise UsageError(f"--box: cannot read {args.box[:60]!r} ({error})") from None


def _prepare_out(out: Path) -> Path:
    # Made before training, so an unwritable path fails now rather than after the budget is spent.
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} exists and is not a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UsageError(f"cannot create {out}: {error.strerror or error}") from None
    return out


def run_resume(args: argparse.Namespace) -> int:
    """Continue a saved run where it stopped: the same weights, optimiser state, random states and curve."""
    changed = {"--model": args.model != RunConfig.model, "--seed": args.seed != RunConfig.seed}
    changed |= {"--set": bool(args.set), "--box": args.box is not None}
    changed["--objective"] = args.objective != RunConfig.objective
    if given := [flag for flag, value in changed.items() if value]:
        raise UsageError(f"{' and '.join(given)} cannot change a resumed run: its settings are the file's")
    try:
        trainer = resume(read_files(args.resume), device=args.device)
    except BundleError as error:
        raise UsageError(f"--resume {args.resume}: {error}") from None
    trainer.config = continued(trainer, args.steps, args.seconds)
    out = _prepare_out(args.out)
    print(f"resuming {trainer.config.model} at step {trainer.step:,}", file=sys.stderr)
    train_with_progress(trainer)
    print(summary(trainer, out, write_run(out, trainer)))
    return 0


def continued(trainer: Trainer, steps: int | None, seconds: float | None) -> RunConfig:
    """The budget of a resumed run: `steps` or `seconds` more than it has had, else its own (the
    cosine schedule decays over the whole budget, so a longer one raises the rate it goes on with)."""
    config = trainer.config
    if steps is not None:
        return config.with_changes(steps=trainer.step + steps, seconds=None)
    if seconds is not None:
        return config.with_changes(seconds=trainer.train_seconds + seconds, steps=None)
    if trainer.done:
        budget = f"{config.steps:,} steps" if config.steps is not None else f"{config.seconds:g} s"
        raise UsageError(f"the run has used its budget of {budget}; give --steps or --seconds to train more")
    return config


def _points_source(path: Path, seed: int) -> DataSource:
    return DataSource.from_points(read_points(path), torch.Generator().manual_seed(seed))


def train_with_progress(trainer: Trainer) -> None:
    """Train to the budget, evaluating and printing a progress line about once a second."""
    shown = 0
    resumed = trainer.history and trainer.history[-1].step == trainer.step  # evaluated when it was saved
    _progress(trainer.history[-1] if resumed else trainer.record())
    while not trainer.done:
        trainer.train(max_seconds=PROGRESS_SECONDS)
        _progress(trainer.record())
        for rollback in trainer.rollbacks[shown:]:
            print(f"  {rollback.message()}", file=sys.stderr)
        shown = len(trainer.rollbacks)
    if trainer.stopped:
        print(f"  {trainer.stopped}", file=sys.stderr)


def _progress(evaluation: Evaluation) -> None:
    parts = [f"step {evaluation.step:>7,}", f"{evaluation.seconds:6.1f} s"]
    parts += [f"NLL {_short(evaluation.nll)}", f"KL {_short(evaluation.kl)}", f"lr {evaluation.lr:.1e}"]
    print("  ".join(parts), file=sys.stderr, flush=True)


def _short(result: Result) -> str:
    if result.value is None:
        return "n/a"
    return f"{result.value:.3f}" + (f" ± {result.se:.3f}" if result.se is not None else "")


def summary(trainer: Trainer, out: Path, quadrature: Result) -> str:
    """What a user reads at the end: the run, where it went, and the labelled results."""
    config, last = trainer.config, trainer.history[-1]
    lines = [
        f"{config.model} on {config.target}: {trainer.step:,} steps in {trainer.train_seconds:.1f} s "
        f"on {trainer.device}",
        f"wrote {', '.join(name for name in KNOWN_FILES if (out / name).is_file())} to {out}",
    ]
    if trainer.rollbacks:
        lines.append(f"{len(trainer.rollbacks)} rollback(s) after non-finite values; see {METRICS_FILE}")
    if trainer.stopped:
        lines.append(f"stopped early: {trainer.stopped}")
    lines += [last.entropy.text(), last.nll.text(), *(other.text() for other in last.others), last.kl.text()]
    if trainer.data.target is not None:  # for a user's data the line above already says why there is no KL
        lines.append(quadrature.text())
    if last.reverse_kl is not None:
        lines.append(last.reverse_kl.text())
    return "\n".join(lines)


# ----------------------------------------------------------------------- eval


def run_eval(args: argparse.Namespace) -> int:
    set_threads()
    _, model, box = open_run(args.run_dir)
    points = read_points(args.data, min_points=MIN_EVAL_POINTS, need_spread=False)
    print(json.dumps(evaluate_points(model, points, box), allow_nan=False))
    return 0


def open_run(directory: Path) -> tuple[RunConfig, GenerativeModel, Box]:
    """read_run, its complaint about the directory as a usage error."""
    try:
        return read_run(directory)
    except RunDirError as error:
        raise UsageError(str(error)) from None


def evaluate_points(model: GenerativeModel, points: torch.Tensor, box: Box) -> dict[str, Any]:
    """{"nll", "nll_se", "n", "kind"}: the mean −log q of the points, normalised over `box`."""
    log_q = log_q_at(model, points, box)
    nll, se = mean_and_se(-log_q.values)
    why_null: dict[str, str] = {}
    fields = {"nll": nll, "nll_se": se, "n": len(points), "kind": log_q.kind, "method": log_q.method}
    record = json_ready(fields, "", why_null)
    return {**record, "why_null": why_null} if why_null else record


# -------------------------------------------------------------------- compare


def _add_compare(compare: argparse.ArgumentParser) -> None:
    compare.add_argument("--target", required=True, help="a built-in target (see `list`)")
    compare.add_argument("--models", required=True, help="comma-separated models, e.g. nsf,maf,gmm")
    budget = compare.add_mutually_exclusive_group(required=True)
    budget.add_argument("--steps", type=int, help="training steps per run")
    budget.add_argument("--seconds", type=_seconds, help="training seconds per run")
    compare.add_argument("--seeds", type=int, default=1, help="runs per model, seeds 0, 1, … (default 1)")
    compare.add_argument("--kl-goal", type=float, help="also report the training time to reach this KL")
    compare.add_argument("--out", type=Path, required=True, metavar="DIR", help="where to write the tables")
    compare.set_defaults(run=run_compare_command)


def run_compare_command(args: argparse.Namespace) -> int:
    """Train every (model, seed) in turn; write leaderboard.csv, leaderboard.md and curves.csv."""
    from genviz import compare  # the comparison runner, only for this command

    set_threads()
    models = tuple(m.strip() for m in args.models.split(",") if m.strip())
    spec = compare.CompareSpec(args.target, models, args.steps, args.seconds, args.seeds, args.kl_goal)
    out = _prepare_out(args.out)
    done = lambda r: print(f"  {r.model} seed {r.seed}: {r.steps:,} steps, {_short(r.kl)}", file=sys.stderr)  # noqa: E731
    results = compare.run_compare(spec, done)
    rows = compare.leaderboard(results)
    (out / "leaderboard.csv").write_text(compare.to_csv(rows), encoding="utf-8")
    table = compare.to_markdown(rows, spec)
    (out / "leaderboard.md").write_text(table, encoding="utf-8")
    (out / "curves.csv").write_text(compare.curves_csv(results), encoding="utf-8")
    print(table + f"wrote leaderboard.csv, leaderboard.md and curves.csv to {out}")
    return 0
