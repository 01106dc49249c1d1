"""Threads or processes for training many sessions at once on this machine.

k Trainers (one torch thread each) train for S seconds (a) as k threads in one process and
(b) as k worker processes (multiprocessing, spawn); each line gives the aggregate steps per
second, the slowest and fastest trainer, and the resident memory per process. (c) measures
what the GIL costs one training thread when its process also draws: the main thread
serialises a 128×128 plotly heatmap in a loop (`plotly.io.to_json`, a stand-in for the page's
drawing) while the thread trains; beside it, the same serialising from another process (the
CPU shared, no GIL shared).

    python -m benchmarks.engine
    python -m benchmarks.engine --seconds 5 --ks 1,2 --models gmm
    python -m benchmarks.engine --app /path/to/other/checkout --json engine.json

Every run starts in fresh spawned processes, so one measurement's memory and threads cannot
leak into the next. Figures are wall-clock rates on a shared machine: compare rows of one run.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import queue
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

WARM_UP_STEPS = 5  # steps each trainer takes before the clock starts
N_TEST = 10_000  # held-out points, as the page's Trainer
BUDGET = 1_000_000  # a step budget no run reaches
HEATMAP_CELLS = 128  # the page's live grid
APP_VARIABLE = "GENVIZ_BENCH_APP"  # a tree to import genviz from, set by --app


def use_app_tree() -> None:
    """Import genviz from --app's tree. The tree is on the path only for that import, so that
    processes spawned later still find this tree's `benchmarks` package."""
    tree = os.environ.get(APP_VARIABLE)
    if tree and "genviz" not in sys.modules:
        sys.path.insert(0, tree)
        try:
            import genviz.config
            import genviz.train  # noqa: F401
        finally:
            sys.path.remove(tree)


def memory() -> dict[str, float]:
    """This process's resident memory now and at its peak, in MB."""
    found = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            found[name] = int(value.split()[0]) / 1024
    return {"rss_mb": found.get("VmRSS", 0.0), "peak_mb": found.get("VmHWM", 0.0)}


def new_trainer(target: str, model: str, seed: int) -> Any:
    import torch

    use_app_tree()
    from genviz.config import RunConfig
    from genviz.train import Trainer

    torch.set_num_threads(1)
    trainer = Trainer(RunConfig(target=target, model=model, steps=BUDGET, n_test=N_TEST, seed=seed))
    trainer.train(max_steps=WARM_UP_STEPS)
    return trainer


def timed_training(trainer: Any, seconds: float) -> tuple[int, float]:
    start = time.perf_counter()
    steps = trainer.train(max_seconds=seconds)
    return steps, time.perf_counter() - start


# ------------------------------------------------------------------------------- (a) threads
def threads_job(target: str, model: str, k: int, seconds: float) -> dict[str, Any]:
    """k Trainers on k threads of this (fresh) process; steps/s of each, and memory."""
    trainers = [new_trainer(target, model, seed) for seed in range(k)]
    barrier = threading.Barrier(k)
    results: list[tuple[int, float]] = [(0, 0.0)] * k

    def work(i: int) -> None:
        barrier.wait()
        results[i] = timed_training(trainers[i], seconds)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(k)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"rates": [steps / elapsed for steps, elapsed in results], "memory": [memory()]}


# ----------------------------------------------------------------------------- (b) processes
def process_worker(target: str, model: str, seed: int, seconds: float, barrier: Any, out: Any) -> None:
    trainer = new_trainer(target, model, seed)
    barrier.wait()
    steps, elapsed = timed_training(trainer, seconds)
    out.put({"rate": steps / elapsed, "memory": memory()})


def processes_run(context: Any, target: str, model: str, k: int, seconds: float) -> dict[str, Any]:
    barrier, out = context.Barrier(k), context.Queue()
    workers = [
        context.Process(target=process_worker, args=(target, model, seed, seconds, barrier, out))
        for seed in range(k)
    ]
    for worker in workers:
        worker.start()
    found = [collect(out, workers) for _ in workers]
    for worker in workers:
        worker.join()
    return {"rates": [f["rate"] for f in found], "memory": [f["memory"] for f in found]}


# ----------------------------------------------------------------------------------- (c) GIL
def heatmap_figure() -> Any:
    import numpy as np
    import plotly.graph_objects as go

    z = np.random.default_rng(0).random((HEATMAP_CELLS, HEATMAP_CELLS))
    return go.Figure(go.Heatmap(z=z, colorscale="Viridis"))


def serialise_until(stop: Any) -> int:
    """`plotly.io.to_json` of the heatmap figure until `stop` is set; returns how many."""
    import plotly.io as pio

    figure, count = heatmap_figure(), 0
    while not stop.is_set():
        pio.to_json(figure)
        count += 1
    return count


def serialiser_worker(stop: Any, ready: Any, out: Any) -> None:
    ready.set()
    out.put(serialise_until(stop))


def gil_job(target: str, model: str, seconds: float, other_process: bool) -> dict[str, Any]:
    """One training thread alone, then beside a serialising main thread (or another process)."""
    trainer = new_trainer(target, model, 0)
    heatmap_figure()  # import plotly before any clock starts
    alone_steps, alone_time = timed_training(trainer, seconds)

    result: list[tuple[int, float]] = []
    trained = threading.Event()

    def train() -> None:
        result.append(timed_training(trainer, seconds))
        trained.set()

    if other_process:
        context = multiprocessing.get_context("spawn")
        stop, ready, out = context.Event(), context.Event(), context.Queue()
        serialiser = context.Process(target=serialiser_worker, args=(stop, ready, out))
        serialiser.start()
        ready.wait(timeout=120)
        thread = threading.Thread(target=train)
        thread.start()
        thread.join()
        stop.set()
        serialised = collect(out, [serialiser])
        serialiser.join()
    else:
        thread = threading.Thread(target=train)
        thread.start()
        serialised = serialise_until(trained)  # the main thread draws while the thread trains
        thread.join()
    steps, elapsed = result[0]
    return {
        "alone": alone_steps / alone_time,
        "beside": steps / elapsed,
        "serialised_per_s": serialised / elapsed,
    }


def serialise_rate(seconds: float) -> float:
    """`to_json` calls per second with nothing else running in this process."""
    stop = threading.Event()
    threading.Timer(seconds, stop.set).start()
    start = time.perf_counter()
    count = serialise_until(stop)
    return count / (time.perf_counter() - start)


def _call(function: Any, args: tuple[Any, ...], out: Any) -> None:
    out.put(function(*args))


def in_fresh_process(function: Any, *args: Any) -> Any:
    """`function(*args)` in a new spawned process (not a pool's daemon: it may start its own)."""
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    process = context.Process(target=_call, args=(function, args, out))
    process.start()
    found = collect(out, [process])
    process.join()
    return found


def collect(out: Any, workers: list[Any]) -> Any:
    """The next result from `out`; an error if a worker died without giving one."""
    while True:
        try:
            return out.get(timeout=1)
        except queue.Empty:
            dead = [w for w in workers if w.exitcode not in (None, 0)]
            if dead:
                raise RuntimeError(f"a worker exited with code {dead[0].exitcode}") from None


# ------------------------------------------------------------------------------------ tables
@dataclass
class Row:
    model: str
    k: int
    how: str  # "threads" or "processes"
    rates: list[float]
    memory: list[dict[str, float]]

    @property
    def total(self) -> float:
        return sum(self.rates)


@dataclass
class GilRow:
    model: str
    how: str  # "main thread" or "other process"
    alone: float
    beside: float
    serialised_per_s: float


def memory_cell(row: Row) -> str:
    peaks = [m["peak_mb"] for m in row.memory]
    if len(peaks) == 1:
        return f"{peaks[0]:.0f}"
    return f"{min(peaks):.0f}–{max(peaks):.0f} each, {sum(peaks):,.0f} in all"


def scaling_table(rows: list[Row]) -> str:
    lines = [
        "| model | k | how | sum st/s | per trainer min / max | ×1 trainer | peak RSS per process MB |",
        "|---|---:|---|---:|---:|---:|---:|",
    ]
    single = {(r.model, r.how): r.total for r in rows if r.k == 1}
    for r in rows:
        base = single.get((r.model, r.how))
        speedup = f"{r.total / base:.2f}" if base else "—"
        lines.append(
            f"| {r.model} | {r.k} | {r.how} | {r.total:.0f} | {min(r.rates):.1f} / {max(r.rates):.1f} "
            f"| {speedup} | {memory_cell(r)} |"
        )
    return "\n".join(lines)


def gil_table(rows: list[GilRow]) -> str:
    lines = [
        "| model | serialising in | training alone st/s | beside it st/s | relative | to_json/s |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.model} | {r.how} | {r.alone:.0f} | {r.beside:.0f} | {r.beside / r.alone:.2f} "
            f"| {r.serialised_per_s:.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="training per measurement")
    parser.add_argument("--ks", default="1,2,4,12", help="comma-separated numbers of trainers")
    parser.add_argument("--models", default="nsf,gmm", help="comma-separated families")
    parser.add_argument("--target", default="8gaussians")
    parser.add_argument("--skip", default="", help="parts to leave out: any of a,b,c")
    parser.add_argument("--app", type=Path, help="import genviz from this tree instead of this one")
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    args = parser.parse_args()
    if args.app:
        os.environ[APP_VARIABLE] = str(args.app.resolve())  # spawned workers inherit it
    ks = [int(k) for k in args.ks.split(",") if k.strip()]
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    skip = set(args.skip.split(","))
    context = multiprocessing.get_context("spawn")
    load_before = os.getloadavg()

    rows: list[Row] = []
    for model in models:
        for k in ks:
            if "a" not in skip:
                found = in_fresh_process(threads_job, args.target, model, k, args.seconds)
                rows.append(Row(model, k, "threads", found["rates"], found["memory"]))
                print(f"  {model} k={k} threads: {rows[-1].total:.0f} st/s", file=sys.stderr, flush=True)
            if "b" not in skip:
                found = processes_run(context, args.target, model, k, args.seconds)
                rows.append(Row(model, k, "processes", found["rates"], found["memory"]))
                print(f"  {model} k={k} processes: {rows[-1].total:.0f} st/s", file=sys.stderr, flush=True)
    gil: list[GilRow] = []
    serialise_alone = None
    if "c" not in skip:
        serialise_alone = in_fresh_process(serialise_rate, min(args.seconds, 5.0))
        for model in models:
            for how, other in (("main thread", False), ("other process", True)):
                found = in_fresh_process(gil_job, args.target, model, args.seconds, other)
                gil.append(GilRow(model, how, found["alone"], found["beside"], found["serialised_per_s"]))
                print(f"  {model} GIL, {how}: done", file=sys.stderr, flush=True)
    load_after = os.getloadavg()

    import plotly
    import torch

    print(
        f"\n{args.target}, {args.seconds:g} s per measurement, one torch thread per process; torch "
        f"{torch.__version__}, plotly {plotly.__version__}, Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs; load average {load_before[0]:.1f} before, {load_after[0]:.1f} after\n"
    )
    if rows:
        print(scaling_table(rows))
    if gil:
        print(
            f"\none training thread while {HEATMAP_CELLS}×{HEATMAP_CELLS} heatmaps are serialised "
            f"(plotly.io.to_json, {serialise_alone:.0f}/s with nothing else running)\n"
        )
        print(gil_table(gil))
    if args.json:
        meta = {
            "target": args.target,
            "seconds": args.seconds,
            "ks": ks,
            "models": models,
            "cpus": os.cpu_count(),
            "load_before": load_before,
            "load_after": load_after,
            "torch": torch.__version__,
            "plotly": plotly.__version__,
            "serialise_alone_per_s": serialise_alone,
        }
        figures = {"meta": meta, "scaling": [asdict(r) for r in rows], "gil": [asdict(r) for r in gil]}
        args.json.write_text(json.dumps(figures, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
