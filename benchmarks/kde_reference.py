"""genviz's KDE against scikit-learn's KernelDensity with a cross-validated bandwidth.

genviz's `kde` trains with its defaults through the Trainer; scikit-learn's KernelDensity (a
Gaussian kernel, isotropic in the data's units) is then fitted to the very points genviz kept as
kernel centres, its bandwidth chosen by GridSearchCV (5-fold held-out log-likelihood) over a
log-spaced grid. Both are scored on the same held-out points: KL(p‖q) = mean of log p − log q,
with the target's exact log p. The ratio is genviz's KL over scikit-learn's.

scikit-learn is needed by this script only: `pip install scikit-learn`.

    python -m benchmarks.kde_reference --seconds 20
    python -m benchmarks.kde_reference --seconds 5 --targets 8gaussians rings --set max_points=10000
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch

from benchmarks.compare import REFERENCE_TARGETS
from genviz.config import RunConfig, parse_assignment
from genviz.models.kde import SHAPES
from genviz.targets import TARGETS
from genviz.train import Trainer

BANDWIDTHS = np.logspace(-2.5, 0.5, 31)  # scikit-learn's candidates, in the data's units
FOLDS = 5


def train_genviz(config: RunConfig) -> Trainer:
    trainer = Trainer(config)
    while not trainer.done:
        trainer.train()
    return trainer


def genviz_kernel(trainer: Trainer) -> str:
    """The kernel genviz chose: its shape and its root-mean-square width σ = √(tr(h²S)/2) in the
    data's units, comparable to scikit-learn's bandwidth."""
    model = trainer.model
    shape, _ = model.choice()
    tril = model.kernel_tril()
    sigma = float((tril @ tril.T).trace() / 2) ** 0.5
    return f"{SHAPES[shape]}, σ = {sigma:.3f}"


def sklearn_fit(points: np.ndarray, seed: int) -> tuple[object, float]:
    """KernelDensity with the bandwidth of best cross-validated held-out log-likelihood."""
    from sklearn.model_selection import GridSearchCV, KFold
    from sklearn.neighbors import KernelDensity

    search = GridSearchCV(
        KernelDensity(kernel="gaussian"),
        {"bandwidth": BANDWIDTHS},
        cv=KFold(FOLDS, shuffle=True, random_state=seed),
        n_jobs=1,
    )
    search.fit(points)
    return search.best_estimator_, float(search.best_params_["bandwidth"])


def kl(log_p: torch.Tensor, log_q: np.ndarray) -> tuple[float, float]:
    """Monte Carlo KL(p‖q) over the held-out points and its standard error."""
    gap = log_p.double().numpy() - log_q
    return float(gap.mean()), float(gap.std(ddof=1) / math.sqrt(len(gap)))


def row(config: RunConfig) -> str:
    start = time.perf_counter()
    trainer = train_genviz(config)
    result = trainer.record().kl
    genviz_seconds = time.perf_counter() - start
    points = trainer.model.points.double().cpu().numpy()
    start = time.perf_counter()
    estimator, bandwidth = sklearn_fit(points, config.seed)
    log_q = estimator.score_samples(trainer.data.test.double().numpy())
    value, se = kl(trainer.data.log_p_test, log_q)
    sklearn_seconds = time.perf_counter() - start
    return (
        f"| {config.target} | {len(points):,} | {result.value:.3f} ± {result.se:.3f} | "
        f"{genviz_kernel(trainer)} | {trainer.step:,} st, {genviz_seconds:.0f} s | {value:.3f} ± {se:.3f} | "
        f"{bandwidth:.3f} | {sklearn_seconds:.0f} s | {result.value / value:.2f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=20.0, help="genviz's training time per target")
    parser.add_argument("--targets", nargs="+", default=REFERENCE_TARGETS, choices=list(TARGETS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--set", action="append", default=[], help="a kde hyperparameter, e.g. max_points=10000"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)

    base = RunConfig(model="kde", seconds=args.seconds, seed=args.seed, device="cpu")
    for assignment in args.set:
        base = parse_assignment(base, assignment)
    print(
        f"KL(p‖q) in nats on {base.n_test:,} held-out points (exact log p; ± one standard error); genviz "
        f"`kde` {base.params or 'defaults'} trained {args.seconds:g} s on one CPU thread; scikit-learn "
        f"KernelDensity on genviz's centres, bandwidth by {FOLDS}-fold GridSearchCV over {len(BANDWIDTHS)} "
        f"values in [{BANDWIDTHS[0]:.3g}, {BANDWIDTHS[-1]:.3g}]; torch {torch.__version__}\n"
    )
    print(
        "| target | centres | genviz KL | genviz kernel | genviz training | scikit-learn KL "
        "| its bandwidth | its search | ratio |"
    )
    print("|---|---:|---:|---|---:|---:|---:|---:|---:|")
    for target in args.targets:
        print(row(base.with_changes(target=target)), flush=True)


if __name__ == "__main__":
    main()
