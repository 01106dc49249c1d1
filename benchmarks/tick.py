"""Where the time of one live update goes, per family: training, evaluation, density grid, cross-check.

The Explorer trains for a fixed slice per update and then evaluates and draws; this prints the
cost of each part with the page's settings (10,000 held-out points, a 128² grid, the 200²
quadrature cross-check), so a slow family or a regression shows up as a number.

    python -m benchmarks.tick
    python -m benchmarks.tick --target rings --models nsf kde
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch

from genviz.config import RunConfig
from genviz.models import MODELS
from genviz.targets import TARGETS
from genviz.train import Trainer

TICK_SECONDS = 0.5
LIVE_RESOLUTION = 128
QUADRATURE_RESOLUTION = 200


def milliseconds(work: Callable[[], object], repeats: int = 3) -> float:
    """Best of `repeats` wall times of `work`, in ms."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return 1000 * best


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--target", default="8gaussians", choices=list(TARGETS))
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"one live update on {args.target} (torch {torch.__version__}, 1 thread), times in ms\n")
    print("| model | steps in 0.5 s | evaluate 10k | grid 128² | quadrature 200² |")
    print("|---|---:|---:|---:|---:|")
    for name in args.models:
        trainer = Trainer(RunConfig(target=args.target, model=name, n_test=10_000))
        trainer.train(max_seconds=TICK_SECONDS)  # warm up and fill a KDE
        steps = trainer.train(max_seconds=TICK_SECONDS)
        record = milliseconds(trainer.record)
        grid = milliseconds(lambda t=trainer: t.density_grid(LIVE_RESOLUTION))
        check = milliseconds(lambda t=trainer: t.kl_by_quadrature(QUADRATURE_RESOLUTION), repeats=1)
        print(f"| {name} | {steps} | {record:.0f} | {grid:.0f} | {check:.0f} |", flush=True)


if __name__ == "__main__":
    main()
