"""A generative and a discriminative classifier trained side by side, off the page's drawing path.

Each class density is a session of the live engine (`genviz.engine`), trained in a worker process
on that class's points under the server-wide round-robin, exactly as the Explorer trains a model on
a user's points; the page asks each for log q on one set of query points (the decision grid, the
test points and the point being judged) and for samples, and combines the answers by Bayes' rule.

The discriminative network is tiny (2 → 64 → 64 → K, ~4,500 weights; a step on 256 points takes
about half a millisecond) and its whole budget is at most `MAX_STEPS` steps, a few seconds of one
core. It trains in the page's own process in slices of at most `DISCRIMINATIVE_SLICE` seconds, one
per refresh of the page (a few a second), in the session's state, never in a shared cache. Giving
it an engine session of its own would mean a second kind of model in the worker, with its own
snapshots and evaluations, for a job smaller than one of the worker's training slices.

Everything is bounded: at most `MAX_CLASSES` sessions, each with its step budget and the host's
cost check; at most `MAX_TRAIN_POINTS` and `MAX_TEST_POINTS` points; one query per class in flight,
at most every `QUERY_EVERY` seconds while training, of at most the worker's `MAX_QUERY_POINTS`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from genviz.classify import (
    DISCRIMINATIVE_METHOD,
    ClassificationData,
    DiscriminativeTrainer,
    Scores,
    bayes_scores,
    class_sources,
    decision_regions,
    density_config,
    fitting_points,
    generative_kind,
    generative_method,
    log_joint,
    log_marginal,
    log_posterior,
    log_prior,
    percentile,
    scores,
)
from genviz.engine import LOST, Scheduler, SessionHandle
from genviz.grid import Grid
from genviz.worker import MAX_QUERY_POINTS, Reply

GRID_RESOLUTION = 64  # cells along the shorter side of the decision-region grid
DISCRIMINATIVE_SLICE = 0.05  # seconds of network training per refresh of the page
QUERY_EVERY = 1.0  # seconds between two queries of one class density while it trains, at least
QUERY_SHARE = 0.05  # and at most this share of its training time (an ODE likelihood is costly)
SAMPLES_PER_CLASS = 300
NETWORK_STEPS = 1000  # the discriminative network's default budget: a second or two of one core


@dataclass(frozen=True)
class Side:
    """One classifier as the page shows it: its scores, decision regions and the judged point."""

    scores: Scores
    regions: np.ndarray  # (k, m) int: the most probable class in each grid cell
    confidence: np.ndarray  # (k, m): max_y p(y | x) there
    probe: np.ndarray  # (K,) p(y | x) at the judged point (for the generative one, see `Unusual`)
    step: int  # the fewest steps any of its parts has taken


@dataclass(frozen=True)
class Unusual:
    """How unusual the judged point is: its log density under the generative model and the target,
    and the share of held-out test points whose log density is lower."""

    log_px: float
    percentile: float
    target_log_px: float
    target_percentile: float
    posterior: np.ndarray  # (K,) the generative classifier's p(y | x) there


class LiveClassifier:
    """K class densities in the engine and one discriminative network, on one labelled data set."""

    def __init__(
        self,
        data: ClassificationData,
        family: str,
        steps: int,
        network_steps: int = NETWORK_STEPS,
        params: dict | None = None,
    ) -> None:
        """`steps`: each class density's budget; `network_steps`: the discriminative network's (an
        EM iteration and an Adam step on 256 points are not comparable, so each has its own)."""
        self.data, self.family = data, family
        self.config = density_config(family, steps, data.seed, params)  # refuses a family without a density
        points = fitting_points(class_sources(data), data.classes)
        self.discriminative = DiscriminativeTrainer(points, network_steps, data.seed)
        self.prior = log_prior(data.train.counts())
        self.grid: Grid = data.box.grid(GRID_RESOLUTION)
        self.handles: list[SessionHandle] = []
        self.running = False
        self.paused_reason: str | None = None  # why the server paused a density, which paused them all
        self.probe = (0.0, 0.0)
        self.bayes = bayes_scores(data.target, data.test)
        self._target_test_log_p = data.target.log_prob(data.test.points)
        k = len(data.classes)
        # Per class: the query in flight (command number, probe version), when it was sent, and the
        # latest answer (log q at the query points) with the probe version it was asked for.
        self._asked: list[tuple[int, int] | None] = [None] * k
        self._asked_at = [-float("inf")] * k
        self._answers: list[tuple[Reply, int] | None] = [None] * k
        self._version = 0
        self._sample_asks: list[int | None] = [None] * k
        self.samples: list[np.ndarray | None] = [None] * k
        self._query = self._query_points()

    # ---------------------------------------------------------------- commands
    def build(self, scheduler: Scheduler) -> str | None:
        """One engine session per class, trained on that class's points; returns why it failed."""
        for k, name in enumerate(self.data.classes):
            handle = scheduler.open()
            self.handles.append(handle)
            points = self.data.train.of_class(k)
            error = handle.build(self.config, points=points, name=f"{self.data.target.name}: {name}")
            if error is not None:
                self.close()
                return f"the density of class {name} cannot be built: {error}"
        return None

    def run(self, wanted: bool) -> None:
        if wanted:
            self.paused_reason = None
        self.running = wanted and not self.done
        for handle in self.handles:
            handle.run(self.running)

    def set_probe(self, x: float, y: float) -> None:
        """Judge another point: every class is asked again at once."""
        if (x, y) != self.probe:
            self.probe = (x, y)
            self._query = self._query_points()
            self._version += 1
            self._asked_at = [-float("inf")] * len(self._asked_at)

    def close(self) -> None:
        """Free every class's model now (the handles' finalisers would, later)."""
        for handle in self.handles:
            handle.close()
        self.handles = []
        self.running = False

    # ---------------------------------------------------------------- one refresh
    def tick(self) -> None:
        """A heartbeat for every class session, a slice of the network's training, and the queries
        that are due; bounded in time whatever the state."""
        if not self.handles:
            return
        for handle in self.handles:
            handle.watch(False, {})
        if self.running:
            self.discriminative.train(max_seconds=DISCRIMINATIVE_SLICE)
        now = time.monotonic()
        for k, handle in enumerate(self.handles):
            self._collect(k, handle)
            if self._due(k, handle, now):
                self._ask(k, handle, now)
        paused = [h for h in self.handles if _paused_by_server(h)]
        if self.running and paused:  # by the server (an idle page, a cap, a failure): all pause
            snapshot = paused[0].snapshot
            name = self.data.classes[self.handles.index(paused[0])]
            self.paused_reason = f"the density of class {name}: {snapshot.stopped or snapshot.pause_reason}"
        if self.running and (self.done or paused):
            self.run(False)

    def _collect(self, k: int, handle: SessionHandle) -> None:
        asked = self._asked[k]
        if asked is not None and (reply := handle.answer(asked[0])) is not None:
            self._answers[k], self._asked[k] = (reply, asked[1]), None
        if self._sample_asks[k] is not None and (reply := handle.answer(self._sample_asks[k])) is not None:
            self.samples[k], self._sample_asks[k] = reply.values, None

    def _due(self, k: int, handle: SessionHandle, now: float) -> bool:
        if self._asked[k] is not None or handle.slot is None:
            return False
        answer, snapshot = self._answers[k], handle.snapshot
        fresh = answer is not None and answer[0].step == snapshot.step and answer[1] == self._version
        if fresh:
            return False
        if not snapshot.running or answer is None or answer[1] != self._version:
            return True  # paused, or the judged point moved: at once
        return now - self._asked_at[k] >= max(QUERY_EVERY, answer[0].seconds / QUERY_SHARE)

    def _ask(self, k: int, handle: SessionHandle, now: float) -> None:
        self._asked[k], self._asked_at[k] = (handle.ask_log_density(self._query), self._version), now
        if self._sample_asks[k] is None:
            self._sample_asks[k] = handle.ask_samples(SAMPLES_PER_CLASS, self.data.seed + k)

    # ---------------------------------------------------------------- what the page shows
    @property
    def done(self) -> bool:
        densities = all(h.snapshot.done for h in self.handles) if self.handles else False
        return densities and self.discriminative.done

    @property
    def busy(self) -> bool:
        """Training, or waiting for an answer: the page should poll."""
        return self.running or any(a is not None for a in self._asked) or self._waiting_first()

    def _waiting_first(self) -> bool:
        """Built, and some class has not answered the current query yet."""
        return bool(self.handles) and any(a is None or a[1] != self._version for a in self._answers)

    @property
    def steps_taken(self) -> list[int]:
        return [h.snapshot.step for h in self.handles]

    @property
    def problem(self) -> str | None:
        """A lost worker, a refused query, or why a density paused or rolled back, worth showing."""
        for name, handle, answer in zip(self.data.classes, self.handles, self._answers, strict=False):
            snapshot = handle.snapshot
            if snapshot.build_error == LOST:
                return LOST
            if answer is not None and answer[0].error is not None:
                return f"the density of class {name} could not be evaluated: {answer[0].error}"
            reason = snapshot.stopped or snapshot.pause_reason or next(iter(snapshot.rollbacks), None)
            if reason:
                return f"the density of class {name}: {reason}"
        return self.paused_reason

    def _likelihood(self, current: bool) -> tuple[torch.Tensor, int] | None:
        """log q(x | y) at the query points, (n, K), and the fewest steps behind it; None until every
        class has answered (for the judged point `current`ly asked about, when that matters)."""
        answers = self._answers
        if not self.handles or any(a is None or a[0].values is None for a in answers):
            return None
        if current and any(a[1] != self._version for a in answers):
            return None
        values = np.stack([a[0].values for a in answers], 1)
        return torch.from_numpy(values), min(a[0].step for a in answers)

    def generative(self) -> Side | None:
        """Bayes' rule on the latest class densities; None until every class has answered."""
        found = self._likelihood(current=False)
        if found is None:
            return None
        joint = log_joint(found[0], self.prior)
        kind, method = generative_kind(self.family), generative_method(self.family)
        return self._side(log_posterior(joint), kind, method, found[1])

    def unusual(self) -> Unusual | None:
        """How unusual the judged point is under the generative model (and the target's own density)."""
        found = self._likelihood(current=True)
        if found is None:
            return None
        joint = log_joint(found[0], self.prior)
        log_px = log_marginal(joint)
        cells, n_test = self.grid.m * self.grid.k, len(self.data.test.labels)
        test, point = log_px[cells : cells + n_test], float(log_px[-1])
        target_point = float(self.data.target.log_prob(torch.tensor([self.probe])))
        target_share = percentile(target_point, self._target_test_log_p)
        posterior = log_posterior(joint[-1:]).exp()[0].numpy()
        return Unusual(point, percentile(point, test), target_point, target_share, posterior)

    def discriminative_side(self) -> Side:
        trainer = self.discriminative
        log_post = trainer.log_posterior(torch.from_numpy(self._query))
        return self._side(log_post, "exact", DISCRIMINATIVE_METHOD, trainer.step)

    def _side(self, log_post: torch.Tensor, kind: str, method: str, step: int) -> Side:
        cells, n_test = self.grid.m * self.grid.k, len(self.data.test.labels)
        regions, confidence = decision_regions(log_post[:cells], self.grid)
        test = log_post[cells : cells + n_test]
        probe = log_post[-1].exp().numpy()
        return Side(scores(test, self.data.test.labels, kind, method), regions, confidence, probe, step)

    def _query_points(self) -> np.ndarray:
        """The decision grid's cells, then the test points, then the judged point: (n, 2) float32."""
        probe = torch.tensor([self.probe], dtype=torch.float64)
        points = torch.cat([self.grid.points, self.data.test.points.double(), probe]).float().numpy()
        assert len(points) <= MAX_QUERY_POINTS, "the grid and test points exceed one query"
        return points


def _paused_by_server(handle: SessionHandle) -> bool:
    """Paused by the server, which says why (an idle page, a cap, a failed step): not by the page."""
    snapshot = handle.snapshot
    return not snapshot.running and bool(snapshot.pause_reason or snapshot.stopped)
