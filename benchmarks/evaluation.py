"""What one evaluation costs, per family: live (while training) against full (paused), measured
beside the estimates of `genviz.cost` that the server's budget check uses.

    python -m benchmarks.evaluation                      # every family's defaults
    python -m benchmarks.evaluation --expensive          # and the settings a server must refuse
    python -m benchmarks.evaluation --parts --json out.jsonl   # each part timed, for calibration

Times are the best of a few runs in CPU ms of one torch thread (as the server runs), on the
page's settings: 10,000 held-out points, the 128² heat map (or the family's `live_grid`) and the
200² cross-check. `record(live=True)` aims at `cost.LIVE_SECONDS`; `record()` and the grids are
what a paused page computes once.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import torch

from genviz.config import RunConfig
from genviz.cost import (
    CHECK_RESOLUTION,
    LIVE_RESOLUTION,
    estimate,
    full_plan,
    profile_of,
)
from genviz.estimators import knn_log_density
from genviz.metrics import KNN_SAMPLES, model_log_prob, other_nlls, private_samples
from genviz.models import MODELS
from genviz.train import Trainer

N_TEST = 10_000
# Settings known to be expensive: each must be refused by the default budget.
EXPENSIVE: list[tuple[str, dict[str, Any]]] = [
    ("kde", {"max_points": 50_000}),
    ("cnf", {"eval_steps": 256}),
    ("vae", {"iwae_samples": 1024}),
    ("gan", {"hidden": (1024,) * 4}),
    ("ebm", {"hidden": (512,) * 4}),
    ("gsn", {"chain_steps": 200}),
]
# Further sizes that spread the calibration over parameters, widths, pairs and passes.
CALIBRATION: list[tuple[str, dict[str, Any]]] = [
    ("kde", {"max_points": 10_000}),
    ("cnf", {"eval_steps": 64}),
    ("cnf", {"hidden": (128, 128, 128)}),
    ("vae", {"latent": 2}),
    ("vae", {"hidden": (256, 256)}),
    ("gan", {"hidden": (512, 512)}),
    ("ebm", {"hidden": (256, 256, 256)}),
    ("gsn", {"hidden": (256, 256)}),
    ("ddpm", {"hidden": 256, "depth": 6}),
    ("flow-matching", {"hidden": 256}),
    ("ar-mixture", {"hidden": (512, 512, 512)}),
    ("nsf", {"hidden": (256, 256)}),
    ("realnvp", {"hidden": (512, 512)}),
]


def seconds(work: Callable[[], object], repeats: int = 3, budget: float = 2.0) -> float:
    """Best of `repeats` CPU times of `work` (one thread: its wall time on an idle core, and steady
    on a busy shared machine); one run when a run takes longer than `budget`."""
    best = float("inf")
    for _ in range(repeats):
        start = time.process_time()
        work()
        best = min(best, time.process_time() - start)
        if best > budget:
            break
    return best


def trained(model: str, params: dict[str, Any]) -> Trainer:
    """A Trainer after a few steps (a KDE until its centres are full)."""
    trainer = Trainer(RunConfig(model=model, params=params, n_test=N_TEST, steps=100_000, device="cpu"))
    steps = 5
    if model == "kde":
        steps = trainer.model.max_points // trainer.config.batch_size + 1
    trainer.train(max_steps=steps)
    return trainer


def measure(model: str, params: dict[str, Any], parts: bool) -> dict[str, Any]:
    trainer = trained(model, params)
    config = trainer.config
    guess = estimate(config)
    step = seconds(lambda: trainer.train(max_steps=1), repeats=3, budget=1.0)
    heat = min(LIVE_RESOLUTION, trainer.model.live_grid or LIVE_RESOLUTION)
    check = min(CHECK_RESOLUTION, trainer.model.live_grid or CHECK_RESOLUTION)
    row: dict[str, Any] = {
        "model": model,
        "params": {k: list(v) if isinstance(v, tuple) else v for k, v in params.items()},
        "parameters": guess.parameters,
        "live": seconds(lambda: trainer.record(live=True)),
        "full": seconds(trainer.record),
        "heat": seconds(lambda: trainer.density_grid(heat)),
        "check": 0.0 if check == heat else seconds(lambda: trainer.density_grid(check), repeats=1),
        "step": step,
        "live_method": trainer.record(live=True).nll.method,
        "estimate_live": guess.live_seconds,
        "estimate_full": guess.eval_seconds,
        "estimate_step": guess.step_seconds,
        "estimate_mb": guess.memory_bytes / 1e6,
    }
    row["paused"] = row["full"] + row["heat"] + row["check"]
    if parts:
        row |= timed_parts(trainer)
    return row


def timed_parts(trainer: Trainer) -> dict[str, Any]:
    """Each part of an evaluation on its own, with the sizes the prices multiply."""
    model, test = trainer.model, trainer.data.test
    shape = profile_of(model)
    plan = full_plan(shape, len(test))
    out: dict[str, Any] = {
        "activations": shape.activations,
        "layers": shape.layers,
        "cost": asdict(shape.cost),
        "points": plan.points,
    }
    x = test[: plan.points]
    if model.density_kind != "none":
        out["t_density"] = seconds(lambda: model_log_prob(model, x))
        if model.density_kind == "unnormalised":
            grid = trainer.data.box.grid(plan.partition).points.float()
            out["t_partition"] = seconds(lambda: model_log_prob(model, grid))
            out["partition_cells"] = len(grid)
    else:
        out["t_sample"] = seconds(lambda: private_samples(model, KNN_SAMPLES, 0))
        samples = private_samples(model, KNN_SAMPLES, 0)
        out["t_knn"] = seconds(lambda: knn_log_density(samples, x))
        out["samples"] = KNN_SAMPLES
    if shape.cost.other_passes:
        out["t_other"] = seconds(lambda: other_nlls(model, test[: plan.other_points]))
        out["other_points"] = plan.other_points
    return out


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--expensive", action="store_true", help="also the settings a server must refuse")
    parser.add_argument("--calibration", action="store_true", help="also the calibration's further sizes")
    parser.add_argument("--parts", action="store_true", help="time each part of an evaluation too")
    parser.add_argument("--json", metavar="FILE", help="append one JSON line per configuration")
    args = parser.parse_args()
    torch.set_num_threads(1)
    cases: list[tuple[str, dict[str, Any]]] = [(name, {}) for name in args.models]
    if args.expensive:
        cases += EXPENSIVE
    if args.calibration:
        cases += CALIBRATION
    print(f"one evaluation on 8gaussians, {N_TEST:,} held-out points (torch {torch.__version__}, 1 thread)")
    print("measured ms (estimate ms); paused = record() + heat map + cross-check\n")
    print("| model | settings | record(live=True) | record() | paused | step | memory MB (est.) |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for name, params in cases:
        row = measure(name, params, args.parts)
        settings = ", ".join(f"{k}={v}" for k, v in row["params"].items()) or "defaults"
        print(
            f"| {name} | {settings} | {1e3 * row['live']:.0f} ({1e3 * row['estimate_live']:.0f}) "
            f"| {1e3 * row['full']:.0f} | {1e3 * row['paused']:.0f} ({1e3 * row['estimate_full']:.0f}) "
            f"| {1e3 * row['step']:.1f} ({1e3 * row['estimate_step']:.1f}) | {row['estimate_mb']:.0f} |",
            flush=True,
        )
        if args.json:
            with open(args.json, "a") as out:
                out.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
