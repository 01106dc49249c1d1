"""Generative against discriminative classification of a labelled target's points.

A generative classifier models the joint p(x, y) = p(x | y) p(y): one density per class (any
family with a density) and the class priors from the counts, and classifies by Bayes' rule,

    p(y | x) = p(x | y) p(y) / Σ_y' p(x | y') p(y'),

computed with a log-sum-exp. Having p(x) = Σ_y p(x, y), it can also draw new points of a class
and say how unusual a point is. A discriminative classifier models p(y | x) alone: here an MLP
trained by cross-entropy (Ng & Jordan 2002 compare the two).

    data = classification_data("moons", n_train=2000, n_test=2000, seed=0)
    generative = GenerativeClassifier(data, "gmm", steps=200)
    generative.train()
    scores(generative.log_posterior(data.test.points), data.test.labels, generative.kind, "…")
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from genviz.config import USER_DATA, ConfigError, RunConfig
from genviz.data import DataSource
from genviz.grid import Box, Grid
from genviz.metrics import Kind, Result, log_q_at, mean_and_se
from genviz.models import MODELS
from genviz.models.base import Standardize
from genviz.models.kinds import DENSITY_KINDS
from genviz.models.nets import mlp
from genviz.targets import TARGETS, Target
from genviz.train import Trainer

MAX_CLASSES = 8  # one density per class: each is a model of its own
MIN_TRAIN_POINTS, MAX_TRAIN_POINTS = 200, 20_000
MIN_TEST_POINTS, MAX_TEST_POINTS = 200, 5_000
MIN_CLASS_POINTS = 20  # a density fitted to fewer points than this means little
MIN_STEPS, MAX_STEPS = 10, 5_000  # per class density, and for the discriminative network
# Each class density also stops after this much training time: K of them take K turns on the shared
# training slots, so a costly family (an ODE's step can take 70 ms) must not hold them for long.
DENSITY_SECONDS = 60.0
PROBABILITY_FLOOR = 1e-12  # log-loss clips p(y | x) here, as scikit-learn's log_loss does
EVAL_BLOCK = 16_384  # points per block when the network classifies a grid


# ---------------------------------------------------------------- labelled points


@dataclass(frozen=True)
class LabelledSample:
    """Points and their class labels."""

    points: torch.Tensor  # (n, 2) float32
    labels: torch.Tensor  # (n,) int64, indices into `classes`
    classes: tuple[str, ...]

    def of_class(self, k: int) -> torch.Tensor:
        """(n_k, 2) the points of class k."""
        return self.points[self.labels == k]

    def counts(self) -> torch.Tensor:
        """(K,) int64 points per class."""
        return torch.bincount(self.labels, minlength=len(self.classes))


@dataclass(frozen=True)
class ClassificationData:
    """A labelled target's training and test points, drawn with one seed."""

    target: Target
    train: LabelledSample
    test: LabelledSample
    seed: int

    @property
    def classes(self) -> tuple[str, ...]:
        return self.target.classes

    @property
    def box(self) -> Box:
        return self.target.box


def labelled_targets() -> list[str]:
    """The targets a classifier can be trained on: made of 2 to MAX_CLASSES labelled parts."""
    return [name for name, t in TARGETS.items() if 2 <= len(t.classes) <= MAX_CLASSES]


def density_families() -> list[str]:
    """The families that give a density (exact, a bound, normalised on the box, or by an ODE):
    those that have only samples cannot be used in Bayes' rule."""
    return [name for name, family in MODELS.items() if not DENSITY_KINDS[family.density_kind].from_samples]


def classification_data(target: str, n_train: int, n_test: int, seed: int) -> ClassificationData:
    """Draw labelled training and then test points from one generator; refuses what it cannot use."""
    _check(
        target in labelled_targets(),
        f"{target!r} is not a labelled target; choose from {', '.join(labelled_targets())}",
    )
    _check_whole("training points", n_train, MIN_TRAIN_POINTS, MAX_TRAIN_POINTS)
    _check_whole("test points", n_test, MIN_TEST_POINTS, MAX_TEST_POINTS)
    source = TARGETS[target]
    generator = torch.Generator().manual_seed(seed)
    train = LabelledSample(*source.sample_labelled(n_train, generator), source.classes)
    test = LabelledSample(*source.sample_labelled(n_test, generator), source.classes)
    fewest = int(train.counts().min())
    _check(
        fewest >= MIN_CLASS_POINTS,
        f"a class has {fewest} training points; draw more (at least {MIN_CLASS_POINTS} each)",
    )
    return ClassificationData(source, train, test, seed)


def class_sources(data: ClassificationData) -> list[DataSource]:
    """Each class's points split as a density's run splits them (`DataSource.from_points` with the
    run's seed): the live engine builds the same split from the same points and seed."""
    return [
        DataSource.from_points(data.train.of_class(k), torch.Generator().manual_seed(data.seed), name)
        for k, name in enumerate(data.classes)
    ]


def fitting_points(sources: list[DataSource], classes: tuple[str, ...]) -> LabelledSample:
    """The points the class densities train on (each class's held-out fifth left out), labelled:
    the discriminative network trains on exactly these, so the two see the same data."""
    points = torch.cat([s.train_points for s in sources])
    labels = torch.cat([torch.full((len(s.train_points),), k) for k, s in enumerate(sources)])
    return LabelledSample(points, labels, classes)


# ---------------------------------------------------------------- Bayes' rule and the scores


def log_prior(counts: torch.Tensor) -> torch.Tensor:
    """log p(y) from class counts: (K,) -> (K,) float64."""
    counts = counts.double()
    return counts.log() - counts.sum().log()


def log_joint(log_likelihood: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
    """log p(x, y) = log p(x | y) + log p(y): (n, K), (K,) -> (n, K)."""
    return log_likelihood.double() + prior.double()


def log_posterior(joint: torch.Tensor) -> torch.Tensor:
    """Bayes' rule, log p(y | x) = log p(x, y) − log Σ_y' p(x, y'): (n, K) -> (n, K).

    A point no class density reaches (log p(x, y) = −∞ for every y: outside an energy's box)
    gets the uniform posterior rather than NaN."""
    evidence = torch.logsumexp(joint, 1, keepdim=True)
    uniform = torch.full_like(joint, -math.log(joint.shape[1]))
    return torch.where(torch.isfinite(evidence), joint - evidence, uniform)


def log_marginal(joint: torch.Tensor) -> torch.Tensor:
    """log p(x) = log Σ_y p(x, y): (n, K) -> (n,)."""
    return torch.logsumexp(joint, 1)


@dataclass(frozen=True)
class Scores:
    """A classifier's test accuracy and log-loss, labelled."""

    accuracy: Result
    log_loss: Result


def scores(log_post: torch.Tensor, labels: torch.Tensor, kind: Kind, method: str) -> Scores:
    """Accuracy and log-loss −mean log p(y_i | x_i) on labelled test points, ± one standard error.
    log_post: (n, K), labels: (n,)."""
    right = (log_post.argmax(1) == labels).double()
    floor = math.log(PROBABILITY_FLOOR)
    loss = -log_post.double().gather(1, labels[:, None]).squeeze(1).clamp_min(floor)
    where = f"mean over {len(labels):,} test points"
    accuracy = Result("accuracy", *mean_and_se(right), kind, f"{where}; {method}")
    clipped = f"{where}, p(y | x) clipped at {PROBABILITY_FLOOR:g}; {method}"
    return Scores(accuracy, Result("log-loss", *mean_and_se(loss), kind, clipped))


def bayes_scores(target: Target, test: LabelledSample) -> Scores:
    """The Bayes-optimal classifier, argmax of the target's own p(x, y): the best any can do."""
    log_post = log_posterior(target.class_log_prob(test.points))
    method = f"Bayes-optimal: the target's own p(x, y), {target.density_known}"
    return scores(log_post, test.labels, "exact", method)


def decision_regions(log_post: torch.Tensor, grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """The most probable class in each grid cell and its probability, each (k, m), from
    log p(y | x) at the grid's points, (k·m, K)."""
    post = log_post.exp()
    return grid.reshape(post.argmax(1)).numpy(), grid.reshape(post.max(1).values).numpy()


def percentile(value: float, reference: torch.Tensor) -> float:
    """The share of `reference` (n,) below `value`, in per cent: how ordinary a log density is."""
    return 100.0 * float((reference < value).double().mean())


def generative_kind(family: str) -> Kind:
    """What a generative classifier's numbers are: exact with exact (or box-normalised) densities;
    an estimate when p(x | y) is a lower bound or an ODE solve stands in for it."""
    return "exact" if DENSITY_KINDS[MODELS[family].density_kind].nll == "exact" else "estimate"


def generative_method(family: str) -> str:
    kind = MODELS[family].density_kind
    words = {"bound": "a lower bound on log p(x | y)", "ode": "an ODE likelihood", "unnormalised":
             "an energy normalised on the class's box"}.get(kind, "exact densities")  # fmt: skip
    return f"Bayes' rule on {MODELS[family].title} class densities ({words}), priors from counts"


# ---------------------------------------------------------------- the generative classifier, in process


class GenerativeClassifier:
    """One density per class, each a `Trainer` on its class's points, and the priors from counts.

    This trains in the calling process (tests, scripts); the page trains the same densities, built
    from the same `RunConfig` and points, as sessions of the live engine."""

    def __init__(self, data: ClassificationData, family: str, steps: int, params: dict | None = None) -> None:
        self.family = family
        self.config = density_config(family, steps, data.seed, params or {})
        self.sources = class_sources(data)
        self.trainers = [Trainer(self.config, source) for source in self.sources]
        self.prior = log_prior(data.train.counts())
        self.kind = generative_kind(family)

    def train(self, max_seconds: float | None = None) -> None:
        for trainer in self.trainers:
            trainer.train(max_seconds=None if max_seconds is None else max_seconds / len(self.trainers))

    def log_likelihood(self, x: torch.Tensor) -> torch.Tensor:
        """log p(x | y) for every class, as the engine's query computes it: (n, 2) -> (n, K)."""
        columns = [log_q_at(t.model, x, t.data.box, t.config.seed + t.step).values for t in self.trainers]
        return torch.stack(columns, 1)

    def log_joint(self, x: torch.Tensor) -> torch.Tensor:
        return log_joint(self.log_likelihood(x), self.prior)

    def log_posterior(self, x: torch.Tensor) -> torch.Tensor:
        return log_posterior(self.log_joint(x))


def density_config(family: str, steps: int, seed: int, params: dict | None = None) -> RunConfig:
    """The run of one class density: the family on a class's points, `steps` steps (or
    DENSITY_SECONDS of training, whichever comes first)."""
    _check(
        family in density_families(),
        f"{family!r} gives no density for Bayes' rule; choose from {', '.join(density_families())}",
    )
    _check_whole("steps", steps, MIN_STEPS, MAX_STEPS)
    params = params or {}
    return RunConfig(
        target=USER_DATA, model=family, params=params, steps=steps, seconds=DENSITY_SECONDS, seed=seed
    )


# ---------------------------------------------------------------- the discriminative classifier


class Discriminative(nn.Module):
    """p(y | x) = softmax(f(x)): an MLP on standardised coordinates, nothing about p(x)."""

    def __init__(self, classes: int, hidden: tuple[int, ...] = (64, 64)) -> None:
        super().__init__()
        self.standardize = Standardize()
        self.net = mlp(2, hidden, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits: (n, 2) -> (n, K)."""
        return self.net(self.standardize(x))


class DiscriminativeTrainer:
    """Trains a `Discriminative` network by cross-entropy on labelled points with Adam and a cosine
    schedule, in slices that stop after `max_seconds`; its own random streams, so a seed fixes it."""

    def __init__(
        self, train: LabelledSample, steps: int, seed: int, *, lr: float = 1e-2, batch_size: int = 256
    ) -> None:
        _check_whole("steps", steps, MIN_STEPS, MAX_STEPS)
        with torch.random.fork_rng(devices=[]):  # the initial weights, without touching global streams
            torch.manual_seed(seed)
            self.model = Discriminative(len(train.classes))
        self.model.standardize.fit(train.points)
        self.train_points, self.steps, self.lr, self.batch_size = train, steps, lr, batch_size
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=lr)
        self.generator = torch.Generator().manual_seed(seed)
        self.step = 0
        self.loss: float | None = None

    @property
    def done(self) -> bool:
        return self.step >= self.steps

    def train(self, max_seconds: float | None = None) -> int:
        """Steps until the budget or `max_seconds` (wall) runs out; returns the steps taken."""
        start, taken = time.perf_counter(), 0
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # matrices this small only lose time to more threads (6× on 2 busy cores)
        try:
            while not self.done and (max_seconds is None or time.perf_counter() - start < max_seconds):
                self._one_step()
                taken += 1
        finally:
            torch.set_num_threads(threads)
        return taken

    def _one_step(self) -> None:
        data = self.train_points
        pick = torch.randint(len(data.labels), (self.batch_size,), generator=self.generator)
        loss = nn.functional.cross_entropy(self.model(data.points[pick]), data.labels[pick])
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        for group in self.optimizer.param_groups:  # cosine decay to 2 % over the budget
            group["lr"] = self.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * self.step / self.steps)))
        self.optimizer.step()
        self.step += 1
        self.loss = float(loss.detach())

    @torch.no_grad()
    def log_posterior(self, x: torch.Tensor) -> torch.Tensor:
        """log p(y | x): (n, 2) -> (n, K) float64."""
        blocks = [self.model(b.float()).log_softmax(1).double() for b in x.split(EVAL_BLOCK)]
        return torch.cat(blocks) if blocks else x.new_zeros(0, len(self.train_points.classes)).double()


DISCRIMINATIVE_METHOD = "an MLP (64, 64) trained by cross-entropy on p(y | x) alone"


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def _check_whole(name: str, value: object, low: int, high: int) -> None:
    whole = isinstance(value, int) and not isinstance(value, bool)
    _check(
        whole and low <= value <= high, f"{name} must be a whole number in [{low:,}, {high:,}], got {value!r}"
    )
