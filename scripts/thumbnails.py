"""The Home page's thumbnails: each family trained briefly on its showcase target, its density as a PNG.

    python -m scripts.thumbnails                      # every family, 20 s each (60 s for three)
    python -m scripts.thumbnails --models nsf,gmm --seconds 5  # into docs/thumbnails/

Static files, made once and committed, so that the Home page never trains to draw them. Each image
is the model's density on the target's box (96² cells) on the target's colour scale, as the
Explorer draws it; a family without a density is drawn by the KDE of its samples, as there.
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

from genviz.config import RunConfig
from genviz.models import MODELS
from genviz.taxonomy import THUMBNAILS, showcase
from genviz.train import Trainer
from genviz.views import render

RESOLUTION = 96
SLOW_TO_SHOW = ("cnf", "ebm", "vae")  # three times as long: few steps a second, or a slow start


def thumbnail(name: str, seconds: float) -> bytes:
    config = RunConfig(target=showcase(name), model=name, seconds=seconds, n_test=2000, device="cpu")
    trainer = Trainer(config)
    while not trainer.done:
        trainer.train(max_seconds=1.0)
    _, log_q = trainer.density_grid(RESOLUTION)
    _, log_p = trainer.target_grid(RESOLUTION)
    return render.density_png(log_q.numpy(), render.density_scale(log_p.numpy(), None))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated families")
    parser.add_argument("--seconds", type=float, default=20.0, help="training time per family")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    THUMBNAILS.mkdir(parents=True, exist_ok=True)
    for name in args.models.split(","):
        start = time.perf_counter()
        path = THUMBNAILS / f"{name}.png"
        seconds = args.seconds * (3 if name in SLOW_TO_SHOW else 1)
        path.write_bytes(thumbnail(name, seconds))
        took = time.perf_counter() - start
        print(f"{name:14s} on {showcase(name):12s} {path} ({took:.0f} s)", file=sys.stderr)


if __name__ == "__main__":
    main()
