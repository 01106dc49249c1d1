"""Held-out KL after a fixed training time, for every family on the reference targets.

Prints a markdown table beside the reference figures in ../shared/ANCHORS.md
(what zuko, normflows and scikit-learn reach with their default loops in 20 s
of CPU). Timings are noisy: compare columns from the same run.

    python -m benchmarks.compare --seconds 20
    python -m benchmarks.compare --seconds 5 --models nsf gmm --targets 8gaussians moons
"""

from __future__ import annotations

import argparse
import time

import torch

from genviz.config import RunConfig
from genviz.models import MODELS
from genviz.targets import TARGETS
from genviz.train import Trainer

REFERENCE_TARGETS = ["8gaussians", "moons", "checkerboard", "2spirals", "rings", "pinwheel"]
# Best of zuko MAF / zuko NSF / normflows RealNVP / normflows NSF after 20 s (ANCHORS.md).
BEST_FLOW_20S = {
    "8gaussians": 0.024,
    "moons": 0.016,
    "checkerboard": 0.110,
    "2spirals": 0.088,
    "rings": 0.206,
    "pinwheel": 0.033,
}


def run(target: str, model: str, seconds: float, seed: int) -> tuple[float, float, int]:
    """Train for `seconds` of training time; returns KL, its standard error and steps."""
    trainer = Trainer(RunConfig(target=target, model=model, seconds=seconds, seed=seed))
    while not trainer.done:
        trainer.train(max_seconds=seconds)
    kl = trainer.record().kl
    return kl.value, kl.se, trainer.step


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--targets", nargs="+", default=REFERENCE_TARGETS, choices=list(TARGETS))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)

    print(
        f"KL(p‖q) in nats after {args.seconds:g} s of training (exact, Monte Carlo on 20,000 held-out points)"
    )
    device = "cuda" if torch.cuda.is_available() else "cpu"
    print(f"torch {torch.__version__}, device {device}, 1 thread; st/s = steps per second of wall time\n")
    print("| target | " + " | ".join(args.models) + " | best reference flow, 20 s |")
    print("|---|" + "---:|" * (len(args.models) + 1))
    for target in args.targets:
        cells = []
        for model in args.models:
            start = time.perf_counter()
            kl, se, steps = run(target, model, args.seconds, args.seed)
            rate = steps / (time.perf_counter() - start)
            cells.append(f"{kl:.3f} ± {se:.3f} ({rate:.0f} st/s)")
        reference = BEST_FLOW_20S.get(target)
        shown = f"{reference:.3f}" if reference is not None else "—"
        print(f"| {target} | " + " | ".join(cells) + f" | {shown} |", flush=True)


if __name__ == "__main__":
    main()
