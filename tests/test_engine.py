"""The live engine: worker processes train the sessions' models, share their slots fairly, pause
idle or capped sessions, survive a dead worker, and leave no process or model behind."""

from __future__ import annotations

import gc
import os
import queue
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator

import pytest

from genviz.config import RunConfig
from genviz.engine import LOST, Scheduler, SessionHandle
from genviz.limits import HostLimits
from genviz.worker import (
    LIVE_MAX_RESOLUTION,
    LIVE_MIN_RESOLUTION,
    REFRESH,
    Cadence,
    Worker,
    fitting_resolution,
)

SMALL = RunConfig(model="gaussian", n_test=1000, steps=100_000)


def wait_for(condition: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def engine() -> Iterator[Scheduler]:
    scheduler = Scheduler(HostLimits(slots=1, idle_pause_seconds=1.5, max_session_steps=50_000))
    yield scheduler
    scheduler.shutdown()


def opened(engine: Scheduler, config: RunConfig = SMALL) -> SessionHandle:
    handle = engine.open()
    assert handle.build(config) is None
    return handle


def test_a_session_trains_in_the_worker_and_pauses_at_once(engine: Scheduler) -> None:
    handle = opened(engine)
    assert handle.snapshot.step == 0 and handle.snapshot.ready
    handle.run(True)
    wait_for(lambda: handle.watch(False, {}).step > 20)
    handle.run(False)  # returns once the worker has applied it
    paused = handle.snapshot
    assert not paused.running
    time.sleep(0.5)
    assert handle.snapshot.step == paused.step
    handle.close()


def test_train_is_answered_with_steps_already_taken(engine: Scheduler) -> None:
    # so the click's own redraw shows training under way, without waiting for the next refresh
    handle = opened(engine)
    handle.run(True)
    assert handle.snapshot.running and handle.snapshot.step > 0
    handle.run(False)
    handle.close()


def test_a_command_cuts_a_slice_of_training_short() -> None:
    # a slice far longer than a click may wait: the worker stops it when a command comes
    asked = []

    def waiting() -> bool:
        asked.append(True)
        return len(asked) > 3  # a command arrives after the third step

    worker = Worker(queue.SimpleQueue(), HostLimits(slice_seconds=60.0), waiting=waiting)
    worker.handle(("build", "page", 1, (RunConfig(model="gmm", n_test=1000), None, None)))
    worker.handle(("run", "page", 2, (True,)))
    trainer = worker.runs["page"].trainer
    started, asked[:] = trainer.step, []
    worker.work()
    assert trainer.step == started + 3


def test_evaluations_take_their_share_of_each_sessions_own_time() -> None:
    # six sessions on a slot: each trains a sixth of the time, so its evaluations come six times rarer
    interval, share = REFRESH["record"]

    def runs_in(seconds: float, cost: float, sharing: int, check_every: float) -> int:
        """How often a task of `cost` runs when it is checked every `check_every` seconds."""
        cadence, runs, now = Cadence(interval, share), 0, 0.0
        while now < seconds:
            if cadence.due(now):
                cadence.ran(now, cost, sharing)
                runs += 1
            now += check_every
        return runs

    alone, shared = runs_in(100, 0.2, 1, 0.05), runs_in(100, 0.2, 6, 0.05)
    assert alone == pytest.approx(100 * share / 0.2, abs=2)  # its share of the time, no more
    assert shared == pytest.approx(100 * share / (6 * 0.2), abs=2)
    assert runs_in(100, 1e-6, 1, 0.05) == pytest.approx(100 / interval, abs=2)  # never above its rate
    # checked just more often than its period (a turn every 0.44 s, a period of 0.5 s): it keeps
    # its rate rather than running at every other check
    assert runs_in(100, 1e-6, 1, 0.44) == pytest.approx(100 / interval, abs=2)


def test_a_shared_slot_draws_coarser_heat_maps_more_often() -> None:
    # a model whose 88² heat map fills the budget alone: six sessions on its slot each get a coarser
    # grid, whose cheaper heat map comes more often than a sixth of the lone rate
    interval, share = REFRESH["grid"]
    per_cell = 0.0096 / 88**2
    alone, shared = fitting_resolution(per_cell, 1), fitting_resolution(per_cell, 6)
    assert alone == 88 and LIVE_MIN_RESOLUTION <= shared < alone

    def rate(side: int, sharing: int) -> float:
        return 1 / max(interval, per_cell * side**2 * sharing / share)

    assert rate(shared, 6) > 2 * rate(alone, 6)
    assert fitting_resolution(1e-9, 6) == LIVE_MAX_RESOLUTION  # a cheap model stays sharp
    assert fitting_resolution(1.0, 1) == LIVE_MIN_RESOLUTION  # and a costly one readable


def test_a_snapshot_is_one_consistent_state(engine: Scheduler) -> None:
    handle = opened(engine, RunConfig(model="gmm", n_test=1000, steps=100_000))
    handle.run(True)
    for _ in range(20):
        snapshot = handle.watch(True, {})
        assert snapshot.history[-1].step <= snapshot.step
        assert snapshot.density is not None and snapshot.density.step <= snapshot.step
        steps = [e.step for e in snapshot.history]
        assert steps == sorted(steps)
        time.sleep(0.1)
    wait_for(lambda: handle.snapshot.density.samples is not None)  # the overlay was asked for
    handle.run(False)
    paused = handle.snapshot
    wait_for(lambda: handle.snapshot.history[-1].step == handle.snapshot.step)  # evaluated in full
    assert handle.snapshot.density.resolution == 128 and paused.step == handle.snapshot.step
    handle.close()


def test_step_and_a_failed_build_keep_the_model(engine: Scheduler) -> None:
    handle = opened(engine)
    handle.step()
    assert handle.snapshot.step == 1
    error = handle.build(RunConfig(model="gaussian", device="cuda", n_test=1000))
    if error is None:
        pytest.skip("a CUDA GPU is present")
    assert "CUDA" in error
    handle.step()
    assert handle.snapshot.step == 2  # the model the session had still trains
    handle.close()


def test_sessions_beyond_the_slots_take_fair_turns(engine: Scheduler) -> None:
    handles = [opened(engine) for _ in range(4)]
    for handle in handles:
        handle.run(True)
    # Counted only while all four run: starting and stopping them one by one, a slice apart,
    # is not a matter of fairness.
    wait_for(lambda: all(h.watch(False, {}).running and h.snapshot.step > 0 for h in handles))
    start = [h.snapshot.step for h in handles]
    seen_waiting = False
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        snapshots = [h.watch(False, {}) for h in handles]
        seen_waiting |= any(s.ahead for s in snapshots)
        assert all(s.sharing in range(1, 5) for s in snapshots if s.running)
        time.sleep(0.05)
    steps = [h.watch(False, {}).step - first for h, first in zip(handles, start, strict=True)]
    for handle in handles:
        handle.run(False)
    assert seen_waiting  # a waiting session is told how many are ahead of it
    assert min(steps) > 0 and max(steps) / min(steps) < 1.5, steps
    for handle in handles:
        handle.close()


def test_a_page_that_stops_polling_pauses(engine: Scheduler) -> None:
    handle = opened(engine)
    handle.run(True)
    wait_for(lambda: not handle.snapshot.running, timeout=10)  # nobody calls watch()
    assert "stopped asking for updates" in handle.snapshot.pause_reason
    handle.close()


def test_the_hosts_step_cap_pauses_with_a_message() -> None:
    scheduler = Scheduler(HostLimits(slots=1, max_session_steps=30))
    try:
        handle = opened(scheduler)
        handle.run(True)
        wait_for(lambda: not handle.watch(False, {}).running)
        assert handle.snapshot.step == 30
        assert "30 steps per model" in handle.snapshot.pause_reason
        assert "GENVIZ_MAX_SESSION_STEPS" in handle.snapshot.pause_reason
    finally:
        scheduler.shutdown()


def test_a_dropped_session_frees_its_model_in_the_worker(engine: Scheduler) -> None:
    handle = opened(engine)
    session = handle.session
    slot = handle.slot
    assert session in engine.census(slot)
    del handle
    gc.collect()
    wait_for(lambda: session not in engine.census(slot))


def test_a_slot_starts_its_worker_with_its_first_session() -> None:
    scheduler = Scheduler(HostLimits(slots=2))
    try:
        first, second = scheduler.slots
        assert first.process.is_alive() and second.process is None
        handles = [scheduler.open() for _ in range(2)]
        assert all(handle.build(SMALL) is None for handle in handles)
        assert {handle.slot.index for handle in handles} == {0, 1}
        assert second.process.is_alive() and scheduler.census(second) == {handles[1].session}
    finally:
        scheduler.shutdown()


def test_a_dead_worker_is_replaced_and_its_sessions_told(engine: Scheduler) -> None:
    handle = opened(engine)
    old = handle.slot.process
    os.kill(old.pid, signal.SIGKILL)  # as the kernel would when a model runs out of memory
    wait_for(lambda: handle.snapshot.build_error == LOST)
    assert handle.build(SMALL) is None  # Reset rebuilds on the fresh worker
    assert handle.slot.process.pid != old.pid and handle.snapshot.step == 0
    handle.close()


WORKER_PIDS = textwrap.dedent(
    """
    import os, sys
    from genviz.engine import Scheduler
    from genviz.limits import HostLimits
    if __name__ == "__main__":
        scheduler = Scheduler(HostLimits(slots=2))
        handles = [scheduler.open() for _ in scheduler.slots]
        for handle in handles:  # a session on each slot starts its worker
            scheduler.place(handle)
        print(" ".join(str(slot.process.pid) for slot in scheduler.slots), flush=True)
        os._exit(0)  # as a server killed without a chance to clean up
    """
)


def worker_pids_of(server_script: str, tmp_path) -> list[int]:
    """Run a server script that prints its workers' pids and dies; its output goes to a file, not
    a pipe, so a worker left behind cannot keep this waiting."""
    script, printed = tmp_path / "server.py", tmp_path / "pids.txt"
    script.write_text(server_script)
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    with printed.open("w") as out:
        subprocess.run([sys.executable, str(script)], stdout=out, env=env, timeout=120, check=True)
    return [int(p) for p in printed.read_text().split()]


def test_no_worker_outlives_its_server(tmp_path) -> None:
    pids = worker_pids_of(WORKER_PIDS, tmp_path)
    assert len(pids) == 2

    def gone() -> bool:
        return not any(os.path.exists(f"/proc/{pid}") and _alive(pid) for pid in pids)

    wait_for(gone, timeout=15)


KILLED_WHILE_TRAINING = textwrap.dedent(
    """
    import os, sys, time
    from genviz.config import RunConfig
    from genviz.engine import Scheduler
    from genviz.limits import HostLimits
    if __name__ == "__main__":
        scheduler = Scheduler(HostLimits(slots=1))
        handles = [scheduler.open() for _ in range(3)]
        for handle in handles:
            assert handle.build(RunConfig(model="gmm", n_test=1000)) is None
            handle.run(True)
        print(scheduler.slots[0].process.pid, flush=True)
        time.sleep(3)  # the worker sends updates; once the reader is gone they fill the pipe
        os._exit(0)
    """
)


def test_a_worker_exits_when_its_server_dies_mid_training(tmp_path) -> None:
    # the worker's queue must not wait at exit to flush updates that nobody will ever read
    [pid] = worker_pids_of(KILLED_WHILE_TRAINING, tmp_path)
    wait_for(lambda: not _alive(pid), timeout=20)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as status:
            return "zombie" not in status.read()
    except OSError:
        return False


def test_a_model_over_the_hosts_budget_is_refused_before_it_is_built(engine: Scheduler) -> None:
    handle = opened(engine)
    handle.step()
    huge = RunConfig(model="gan", params={"hidden": (1024,) * 8}, n_test=1000)
    error = handle.build(huge)
    assert error is not None and "GENVIZ_MAX_" in error, error
    handle.step()
    assert handle.snapshot.step == 2  # the model the session had is kept
    handle.close()


def test_a_live_batch_size_over_the_budget_is_refused(engine: Scheduler) -> None:
    config = RunConfig(model="cnf", n_test=1000, steps=1000)
    handle = opened(engine, config)
    error = handle.configure(config.with_changes(batch_size=8192))
    assert error is not None and "GENVIZ_MAX_SESSION_MB" in error, error
    assert handle.configure(config.with_changes(batch_size=256)) is None
    handle.close()
