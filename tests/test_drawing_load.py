"""The server-wide drawing load that stretches every live page's polling intervals."""

from __future__ import annotations

import time

import pytest

from genviz.ui.polling import DrawingLoad


def simulate(load: DrawingLoad, cores_at_base: float, seconds: float, start: float = 0.0) -> float:
    """Pages whose runs would take `cores_at_base` cores at unstretched intervals: each 0.1 s of
    base time costs 0.1 · cores CPU seconds, spread over the stretched interval."""
    now = start
    while now < start + seconds:
        now += 0.1 * load.stretch(now)
        load.record(0.1 * cores_at_base, now)
    return now


def test_the_stretch_brings_the_drawing_down_to_its_target() -> None:
    load = DrawingLoad(cores=0.5, window=3.0, start=0.0)
    now = simulate(load, cores_at_base=2.0, seconds=60)
    assert load.stretch(now) == pytest.approx(4.0, rel=0.2)  # 2 cores of demand, 0.5 allowed
    assert load.cores(now) == pytest.approx(0.5, rel=0.25)
    # the classroom leaves: the intervals come back to their quiet values
    later = simulate(load, cores_at_base=0.1, seconds=60, start=now)
    assert load.stretch(later) == 1.0


def test_the_stretch_relaxes_when_the_runs_stop() -> None:
    # after a burst no run may come for a while (the stretched timers are slow): time alone relaxes it
    load = DrawingLoad(cores=0.5, window=3.0, start=0.0)
    now = simulate(load, cores_at_base=4.0, seconds=30)
    assert load.stretch(now) >= 4.0
    assert load.stretch(now + 20) == 1.0


def test_a_quiet_server_keeps_its_intervals_and_the_stretch_is_bounded() -> None:
    quiet = DrawingLoad(cores=0.5, start=0.0)
    end = simulate(quiet, cores_at_base=0.3, seconds=30)
    assert quiet.stretch(end) == 1.0
    flooded = DrawingLoad(cores=0.5, most=8.0, start=0.0)
    end = simulate(flooded, cores_at_base=100.0, seconds=120)
    assert flooded.stretch(end) == 8.0


def test_runs_nested_in_a_measured_run_count_once() -> None:
    load = DrawingLoad(cores=0.5, window=3.0)

    def busy(seconds: float) -> None:
        end = time.thread_time() + seconds
        while time.thread_time() < end:
            pass

    inner = load.measured(lambda: busy(0.05))
    outer = load.measured(lambda: (busy(0.05), inner()))
    outer()
    # 0.1 s of CPU in all, counted once: 0.1 / window
    assert load.cores() == pytest.approx(0.1 / 3.0, rel=0.3)


def test_many_cheap_runs_stretch_the_intervals_too() -> None:
    # 12 pages × 10 runs a second of almost no CPU: the run rate, not the CPU, is over its budget
    load = DrawingLoad(cores=0.5, runs=30.0, window=3.0, start=0.0)
    now = 0.0
    while now < 60:
        now += 0.1 * load.stretch(now)
        load.record(0.0, now, runs=12)  # 12 runs in each base 0.1 s: 120 a second
        load.record(0.0001, now)
    assert load.stretch(now) == pytest.approx(4.0, rel=0.2)
