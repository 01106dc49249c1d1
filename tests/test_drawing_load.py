"""The server-wide drawing load that stretches every live page's polling intervals."""

from __future__ import annotations

import time

import pytest

from genviz.ui import polling
from genviz.ui.polling import DrawingLoad, RunGate


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


def test_the_gate_lets_a_burst_pass_then_spaces_the_runs() -> None:
    gate = RunGate(rate=30.0, burst=3.0, start=0.0)
    assert [gate.wait(0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    # the burst spent: each further run at this instant waits one more turn of 1/30 s
    assert [gate.wait(0.0) for _ in range(3)] == pytest.approx([1 / 30, 2 / 30, 3 / 30])
    # time refills the turns, never beyond the burst
    assert gate.wait(10.0) == 0.0
    assert [gate.wait(10.0) for _ in range(3)] == pytest.approx([0.0, 0.0, 1 / 30])


def test_sessions_behind_the_gate_run_at_its_rate_and_wait_in_turn() -> None:
    # 12 sessions, each drawing again the moment its wait ends (their browsers ask far faster)
    gate = RunGate(rate=30.0, burst=10.0, start=0.0)
    cost = 0.005
    next_start = dict.fromkeys(range(12), 0.0)
    runs, waits = 0, []
    while True:
        session, start = min(next_start.items(), key=lambda item: item[1])
        if start >= 60.0:
            break
        end = start + cost
        wait = gate.wait(end)
        waits.append(wait)
        next_start[session] = end + wait
        runs += 1
    assert runs / 60.0 == pytest.approx(30.0, rel=0.05)  # the server's rate, not the browsers'
    assert max(waits) <= 12 / 30.0 + 1e-9  # one turn for each session ahead
    starts = sorted(next_start.values())
    assert starts[-1] - starts[0] <= 12 / 30.0 + cost  # no session left behind


def test_every_measured_run_takes_its_turn_at_the_gate(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr(polling, "TURNS", RunGate(rate=10.0, burst=1.0))
    monkeypatch.setattr(polling.time, "sleep", slept.append)
    load = DrawingLoad()
    inner = load.measured(lambda: None)
    outer = load.measured(inner)  # a group's rerun draws its parts: one turn for the whole run
    for _ in range(3):
        outer()
    assert len(slept) == 3
    assert slept[0] == 0.0 and slept[2] == pytest.approx(0.2, abs=0.01)


def test_a_click_delivered_again_within_a_tenth_of_a_second_acts_once() -> None:
    """The browser may deliver one click two or three times within milliseconds; a second click
    of a person comes later, and each group has its own clock."""
    state = {}
    assert polling.first_delivery(state, "live", now=10.0, window=0.1)
    assert not polling.first_delivery(state, "live", now=10.017, window=0.1)  # the same click, again
    assert polling.first_delivery(state, "pair", now=10.02, window=0.1)  # another group's button
    assert polling.first_delivery(state, "live", now=10.3, window=0.1)  # the next click
    assert polling.first_delivery(state, "live", now=10.45, window=0.1)
