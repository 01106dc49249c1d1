"""The classifier pair trained through the live engine: class densities in worker processes, the
engine's log-density and sample queries, and the network in bounded slices."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import numpy as np
import pytest

from genviz.classify import GenerativeClassifier, classification_data
from genviz.classify_live import LiveClassifier
from genviz.config import USER_DATA, RunConfig
from genviz.engine import Scheduler
from genviz.limits import HostLimits
from genviz.worker import MAX_QUERY_POINTS

GMM = {"components": 8}


def wait_for(
    condition: Callable[[], bool], timeout: float = 60, tick: Callable[[], None] = lambda: None
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        tick()
        time.sleep(0.05)


@pytest.fixture(scope="module")
def engine() -> Iterator[Scheduler]:
    scheduler = Scheduler(HostLimits(slots=1, idle_pause_seconds=2.0))
    yield scheduler
    scheduler.shutdown()


def test_a_query_answers_log_q_as_the_library_computes_it(engine: Scheduler) -> None:
    """The worker's log q at given points is the in-process classifier's, for the same run."""
    data = classification_data("moons", 1000, 500, 3)
    local = GenerativeClassifier(data, "gmm", 10, GMM)
    config = RunConfig(target=USER_DATA, model="gmm", params=GMM, steps=10, seed=3)
    handle = engine.open()
    assert handle.build(config, points=data.train.of_class(0), name="upper moon") is None
    points = data.test.points.numpy()
    seq = handle.ask_log_density(points)
    wait_for(lambda: seq <= handle.snapshot.seq)
    reply = handle.answer(seq)
    assert reply is not None and reply.step == 0 and reply.kind == "exact" and reply.error is None
    expected = local.log_likelihood(data.test.points)[:, 0].numpy()
    np.testing.assert_allclose(reply.values, expected, rtol=1e-6, atol=1e-6)
    assert handle.answer(seq) is None  # collected once
    drawn = handle.answer(wait_seq(handle, handle.ask_samples(50, 7)))
    again = handle.answer(wait_seq(handle, handle.ask_samples(50, 7)))
    assert drawn.values.shape == (50, 2) and np.array_equal(drawn.values, again.values)
    handle.close()


def wait_seq(handle, seq: int) -> int:
    wait_for(lambda: seq <= handle.snapshot.seq)
    return seq


def test_a_query_too_large_or_not_finite_is_refused(engine: Scheduler) -> None:
    handle = engine.open()
    assert handle.build(RunConfig(model="gaussian", n_test=1000)) is None
    for points in (np.zeros((MAX_QUERY_POINTS + 1, 2), np.float32), np.full((3, 2), np.nan, np.float32)):
        reply = handle.answer(wait_seq(handle, handle.ask_log_density(points)))
        assert reply.values is None and "at most" in reply.error
    reply = handle.answer(wait_seq(handle, handle.ask_samples(10**9, 0)))
    assert reply.values is None and reply.error
    assert handle.snapshot.build_error is None  # a refused query leaves the model as it was
    handle.close()


def test_both_classifiers_train_live_and_the_point_is_judged(engine: Scheduler) -> None:
    data = classification_data("moons", 1000, 500, 0)
    live = LiveClassifier(data, "gmm", 40, network_steps=300, params=GMM)
    assert live.build(engine) is None and len(live.handles) == 2
    live.run(True)
    wait_for(lambda: live.done and not live.busy and live.generative() is not None, tick=live.tick)
    generative, discriminative = live.generative(), live.discriminative_side()
    assert generative.step == 40 and discriminative.step == 300
    assert generative.scores.accuracy.value > 0.95 and discriminative.scores.accuracy.value > 0.95
    assert generative.regions.shape == (live.grid.k, live.grid.m)
    assert set(np.unique(generative.regions)) == {0, 1}
    assert all(s is not None and s.shape == (300, 2) for s in live.samples)
    live.set_probe(25.0, 25.0)  # far from both moons: the generative model finds it unusual
    assert live.unusual() is None  # until every class has answered for the new point
    wait_for(lambda: live.unusual() is not None, tick=live.tick)
    far = live.unusual()
    assert far.percentile == 0.0 and far.target_percentile == 0.0 and far.log_px < -50
    assert far.posterior.sum() == pytest.approx(1.0)
    live.set_probe(1.0, 0.0)
    wait_for(lambda: live.unusual() is not None, tick=live.tick)
    assert live.unusual().percentile > 5
    live.close()
    assert live.handles == [] and not live.busy


def test_a_page_that_stops_refreshing_pauses_both_and_says_why(engine: Scheduler) -> None:
    data = classification_data("moons", 1000, 500, 0)
    live = LiveClassifier(data, "gmm", 5000, network_steps=5000, params=GMM)
    assert live.build(engine) is None
    live.run(True)
    live.tick()
    wait_for(lambda: not live.handles[0].snapshot.running)  # no heartbeat: the server pauses it
    live.tick()
    assert not live.running and not live.done
    assert "stopped asking for updates" in live.problem
    network = live.discriminative.step
    live.tick()
    assert live.discriminative.step == network  # the network pauses with the densities
    live.close()
