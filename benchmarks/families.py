"""Every family on four targets after a fixed training time with its defaults: the README table.

Each cell is the held-out NLL and KL(p‖q) with the KL's kind (exact, bound or estimate; the
method behind each kind is in the README). Runs go to separate processes with one torch thread
each, `--jobs` at a time; give each job a free core, or the time budgets mean less.

    python -m benchmarks.families --seconds 30 --jobs 2 --markdown docs/families.md
    python -m benchmarks.families --seconds 5 --models gan vae --targets 8gaussians
    python -m benchmarks.families --seconds 30 --models gan --seeds 4 --jobs 2   # seed-to-seed spread
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import platform
import statistics
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from genviz.config import RunConfig
from genviz.models import MODELS
from genviz.targets import TARGETS
from genviz.train import Trainer

TABLE_TARGETS = ["8gaussians", "moons", "checkerboard", "rings"]
KL_GOAL = 0.1  # nats on 8gaussians, for families with a density


@dataclass(frozen=True)
class Cell:
    model: str
    target: str
    nll: float
    nll_se: float
    kl: float
    kl_se: float
    kind: str
    steps: int
    seconds: float


def run(job: tuple[str, str, float, int]) -> Cell:
    """Train one family on one target for `seconds` of training time; evaluate once at the end."""
    model, target, seconds, seed = job
    torch.set_num_threads(1)
    trainer = Trainer(RunConfig(target=target, model=model, seconds=seconds, seed=seed, device="cpu"))
    while not trainer.done:
        trainer.train(max_seconds=seconds)
    last = trainer.record()
    nll, kl = last.nll, last.kl
    return Cell(
        model, target, nll.value, nll.se, kl.value, kl.se, kl.kind, trainer.step, trainer.train_seconds
    )


def table(cells: list[Cell], models: list[str], targets: list[str]) -> str:
    """Rows: families; columns: targets; each cell 'NLL / KL (kind)', or over repeat seeds the
    mean NLL / mean KL ± its spread across seeds (sample standard deviation) and the range."""
    by_key: dict[tuple[str, str], list[Cell]] = {}
    for c in cells:
        by_key.setdefault((c.model, c.target), []).append(c)
    header = "| family | density | " + " | ".join(targets) + " |"
    lines = [header, "|---|---|" + "---:|" * len(targets)]
    floor = " | ".join(f"H(p) = {TARGETS[t].entropy:.3f}" for t in targets)
    lines.append(f"| *target entropy* | | {floor} |")
    for model in models:
        shown = [_shown(by_key[(model, target)]) for target in targets]
        lines.append(f"| {model} | {MODELS[model].density_kind} | " + " | ".join(shown) + " |")
    return "\n".join(lines)


def _shown(runs: list[Cell]) -> str:
    if len(runs) == 1:
        c = runs[0]
        return f"{c.nll:.3f} / **{c.kl:.3f} ± {c.kl_se:.3f}** ({c.kind}) · {c.steps:,} st"
    kls = [c.kl for c in runs]
    nll, kl = statistics.fmean(c.nll for c in runs), statistics.fmean(kls)
    spread = statistics.stdev(kls)
    return (
        f"{nll:.3f} / **{kl:.3f} ± {spread:.3f}** over {len(runs)} seeds ({min(kls):.3f}–{max(kls):.3f}, "
        f"{runs[0].kind}) · {round(statistics.fmean(c.steps for c in runs)):,} st"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--targets", nargs="+", default=TABLE_TARGETS, choices=list(TARGETS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seeds", type=int, default=1, help="runs per cell, from --seed on: their spread")
    parser.add_argument("--jobs", type=int, default=1, help="runs at a time, one core each")
    parser.add_argument("--markdown", type=Path, help="also write the table to this file")
    parser.add_argument("--json", type=Path, help="also write every cell's figures to this file")
    args = parser.parse_args()

    seeds = range(args.seed, args.seed + args.seeds)
    jobs = [(m, t, args.seconds, seed) for m in args.models for t in args.targets for seed in seeds]
    with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
        cells = []
        for cell in pool.imap_unordered(run, jobs):
            cells.append(cell)
            print(
                f"{cell.model:>14} {cell.target:>12}: NLL {cell.nll:.3f} "
                f"KL {cell.kl:.3f} ± {cell.kl_se:.3f} ({cell.kind}) in {cell.steps:,} steps",
                flush=True,
            )
    title = (
        f"Held-out NLL / **KL(p‖q) ± one standard error** in nats (kind) after {args.seconds:g} s of "
        f"training on one CPU thread with default settings, {_seeds(args.seed, args.seeds)}; "
        f"torch {torch.__version__} on {platform.machine()}."
    )
    text = title + "\n\n" + table(cells, args.models, args.targets) + "\n"
    print("\n" + text)
    if args.markdown:
        args.markdown.write_text(text, encoding="utf-8")
    if args.json:
        args.json.write_text(json.dumps([asdict(cell) for cell in cells], indent=1), encoding="utf-8")


def _seeds(first: int, count: int) -> str:
    return f"seed {first}" if count == 1 else f"seeds {first}–{first + count - 1} (± across seeds)"


if __name__ == "__main__":
    main()
