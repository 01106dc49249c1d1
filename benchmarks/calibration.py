"""How wrong the k-nearest-neighbour KL estimate is, measured where the exact KL is known.

A GAN or a GSN has no density, so the app estimates KL(p‖q) from q's samples by k-NN
(`genviz.estimators.knn_log_density`), with the app's own sample sizes. Here the same estimator
runs on samples of models whose log q is exact: the target itself (KL = 0, the hardest case for
the sign), a Gaussian mixture fitted by EM and a spline flow trained briefly. The error of each
estimate is estimate − exact KL (exact: Monte Carlo with the exact log q on the same points).
The largest error in absolute value, rounded up, is the `KNN_KL_ERROR` the app shows beside
every k-NN estimate.

    python -m benchmarks.calibration
    python -m benchmarks.calibration --targets 8gaussians moons --seeds 2 --flow-steps 200
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import torch

from genviz.config import RunConfig
from genviz.estimators import KNN_KL_ERROR, knn_log_density
from genviz.metrics import KNN_EVAL_POINTS, KNN_SAMPLES, model_log_prob, private_samples
from genviz.targets import TARGETS
from genviz.train import Trainer

STANDARD_TARGETS = ["8gaussians", "moons", "checkerboard", "2spirals", "rings", "pinwheel"]


@dataclass(frozen=True)
class Case:
    target: str
    model: str  # "target" for q = p
    exact: float
    estimates: tuple[float, ...]

    @property
    def errors(self) -> tuple[float, ...]:
        return tuple(e - self.exact for e in self.estimates)


def knn_kl(log_p: torch.Tensor, x: torch.Tensor, samples: torch.Tensor) -> float:
    """The app's estimate: mean of log p − log q̂ over held-out points, q̂ by k-NN of q's samples."""
    return float((log_p - knn_log_density(samples, x)).mean())


def target_case(name: str, seeds: int) -> Case:
    """q = p: the exact KL is 0."""
    target = TARGETS[name]
    x = target.sample(KNN_EVAL_POINTS, torch.Generator().manual_seed(1))
    log_p = target.log_prob(x).double()
    estimates = [
        knn_kl(log_p, x, target.sample(KNN_SAMPLES, torch.Generator().manual_seed(100 + s)))
        for s in range(seeds)
    ]
    return Case(name, "target", 0.0, tuple(estimates))


def model_case(name: str, model: str, steps: int, seeds: int) -> Case:
    """A model with an exact log q, trained for `steps`; its exact KL on the held-out points."""
    trainer = Trainer(
        RunConfig(target=name, model=model, steps=steps, seed=0, device="cpu", n_test=KNN_EVAL_POINTS)
    )
    while not trainer.done:
        trainer.train(max_seconds=60)
    x, log_p = trainer.data.test, trainer.data.log_p_test
    exact = float((log_p - model_log_prob(trainer.model, x)).mean())
    samples = [private_samples(trainer.model, KNN_SAMPLES, 100 + s) for s in range(seeds)]
    return Case(name, model, exact, tuple(knn_kl(log_p, x, s) for s in samples))


def table(cases: list[Case]) -> str:
    lines = ["| target | q | exact KL | k-NN estimates | errors |", "|---|---|---:|---|---|"]
    for c in cases:
        estimates = ", ".join(f"{e:.3f}" for e in c.estimates)
        errors = ", ".join(f"{e:+.3f}" for e in c.errors)
        lines.append(f"| {c.target} | {c.model} | {c.exact:.3f} | {estimates} | {errors} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--targets", nargs="+", default=STANDARD_TARGETS)
    parser.add_argument("--seeds", type=int, default=3, help="sample sets per case")
    parser.add_argument("--gmm-steps", type=int, default=60)
    parser.add_argument("--flow-steps", type=int, default=400)
    args = parser.parse_args()
    torch.set_num_threads(1)
    cases = []
    for name in args.targets:
        cases.append(target_case(name, args.seeds))
        cases.append(model_case(name, "gmm", args.gmm_steps, args.seeds))
        cases.append(model_case(name, "nsf", args.flow_steps, args.seeds))
        print(table(cases[-3:]).split("\n", 2)[-1], flush=True)
    errors = [abs(e) for c in cases for e in c.errors]
    print()
    print(table(cases))
    print(f"\nlargest |error| {max(errors):.3f} nats over {len(errors)} estimates; "
          f"mean error {sum(e for c in cases for e in c.errors) / len(errors):+.3f}; "
          f"the app shows ±{KNN_KL_ERROR:g}")  # fmt: skip


if __name__ == "__main__":
    main()
