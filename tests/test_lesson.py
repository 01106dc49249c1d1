"""The lesson's library: the taxonomy places every family, the derivation's numbers agree with the
evaluation they come from, and the likelihood products underflow exactly where floating point says."""

from __future__ import annotations

import math
import struct
import zlib

import numpy as np
import pytest
import torch

from genviz.config import RunConfig
from genviz.lesson import PRODUCT_SIZES, derivation, likelihood_products, training_log_likelihood
from genviz.models import MODELS
from genviz.targets import TARGETS
from genviz.taxonomy import SHOWCASE, families_at, link_query, thumbnail, unplaced, walk
from genviz.train import Trainer
from genviz.views import render


def test_every_family_sits_at_a_leaf_of_the_tree_once() -> None:
    assert unplaced() == []
    placed = [name for path, _ in walk() for name in families_at(path)]
    assert sorted(placed) == sorted(MODELS)


def test_the_heirs_sit_under_the_implicit_branches() -> None:
    heirs = {node.title: path for path, node in walk() if node.heir}
    assert heirs == {"Flow matching": ("implicit", "direct", "flow matching"),
                     "Diffusion": ("implicit", "markov chain", "diffusion")}  # fmt: skip
    assert families_at(heirs["Diffusion"]) == ["ddpm"]


@pytest.mark.parametrize("name", list(MODELS))
def test_each_leaf_link_is_a_valid_configuration_on_a_known_target(name: str) -> None:
    assert SHOWCASE[name] in TARGETS
    query = link_query(name)
    assert query.pop("autostart") == "1"
    config = RunConfig.from_query(query)
    assert (config.model, config.target) == (name, SHOWCASE[name])


def floats_product(values: np.ndarray, dtype: type) -> float:
    """Π exp(v), one factor at a time in plain Python arithmetic of that type: the reference."""
    product = dtype(1)
    for v in values:
        product = dtype(product * dtype(math.exp(v)))
    return float(product)


def test_products_match_a_factor_by_factor_reference_and_underflow_where_floats_do() -> None:
    log_q = (
        torch.distributions.Normal(-2.8, 1.0)
        .sample(
            (10_000,),
        )
        .double()
    )
    products = likelihood_products(log_q)
    assert [p.n for p in products] == list(PRODUCT_SIZES)
    with np.errstate(under="ignore"):
        for p in products[:3]:
            head = log_q[: p.n].numpy()
            assert p.product32 == pytest.approx(floats_product(head, np.float32), rel=1e-4, abs=1e-45)
            assert p.product64 == pytest.approx(floats_product(head, np.float64), rel=1e-9, abs=1e-320)
            assert p.log_sum == pytest.approx(float(head.sum()), rel=1e-12)
    tiny32, tiny64 = math.log(np.finfo(np.float32).smallest_subnormal), math.log(5e-324)
    for p in products:
        assert math.isfinite(p.log_sum)
        if p.log_sum < tiny32 - 5:  # well below the smallest float32: the product is 0
            assert p.product32 == 0
        if p.log_sum < tiny64 - 5:
            assert p.product64 == 0
        if p.log_sum > math.log(np.finfo(np.float64).tiny) + 5:  # a normal float64: exp(Σ log) itself
            assert p.product64 == pytest.approx(math.exp(p.log_sum), rel=1e-9)
    assert products[0].product32 > 0 and products[1].product32 == 0  # e^−28 fits, e^−280 does not
    assert products[1].product64 > 0 and products[2].product64 == 0  # e^−280 fits, e^−2800 does not


def test_fewer_points_than_a_size_leave_that_row_out() -> None:
    assert [p.n for p in likelihood_products(torch.zeros(500))] == [10, 100]


def test_training_log_likelihood_is_labelled_by_what_the_loss_is() -> None:
    assert training_log_likelihood(2.9, MODELS["nsf"]).kind == "estimate"
    assert training_log_likelihood(2.9, MODELS["nsf"]).value == -2.9
    assert training_log_likelihood(3.1, MODELS["vae"]).kind == "bound"
    for name in ("gan", "ddpm", "flow-matching", "ebm", "gsn"):
        result = training_log_likelihood(0.7, MODELS[name])
        assert result.value is None and "not a log-likelihood" in result.method
    assert training_log_likelihood(None, MODELS["nsf"]).value is None
    assert training_log_likelihood(2.9, MODELS["nsf"], "reverse-kl").value is None


def test_the_derivation_agrees_with_the_evaluation_it_reads() -> None:
    trainer = Trainer(RunConfig(model="gmm", target="8gaussians", steps=30, n_test=10_000))
    trainer.train(max_steps=30)
    evaluation = trainer.record()
    steps = derivation(evaluation, MODELS["gmm"])
    nll, kl, entropy = evaluation.nll.value, evaluation.kl.value, TARGETS["8gaussians"].entropy
    assert steps.cross_entropy.value == nll and steps.held_out.value == -nll
    assert steps.training.value == pytest.approx(-evaluation.loss)
    assert steps.entropy.value == entropy and steps.kl.value == kl
    assert steps.gap.value == pytest.approx(nll - entropy)
    # the paired KL and the difference differ only by the entropy's Monte Carlo error on these points
    assert abs(steps.gap.value - kl) < 4 * evaluation.nll.se
    assert steps.sample_entropy.value == pytest.approx(nll - kl)
    assert steps.log_sum.value == pytest.approx(-10_000 * nll, rel=1e-9)
    assert steps.products[-1].product64 == 0 and steps.products[0].product64 > 0


def decode_png(data: bytes) -> np.ndarray:
    """(k, m, 3) pixels of an unfiltered 8-bit RGB PNG: the reference for `render.density_png`."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, at = {}, 8
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        kind, body = data[at + 4 : at + 8], data[at + 8 : at + 8 + length]
        assert struct.unpack(">I", data[at + 8 + length : at + 12 + length])[0] == zlib.crc32(kind + body)
        chunks[kind] = chunks.get(kind, b"") + body
        at += 12 + length
    width, height, depth, colour = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    assert (depth, colour) == (8, 2)
    rows = np.frombuffer(zlib.decompress(chunks[b"IDAT"]), dtype=np.uint8).reshape(height, 1 + 3 * width)
    assert (rows[:, 0] == 0).all()
    return rows[:, 1:].reshape(height, width, 3)


def test_a_density_png_has_one_pixel_per_cell_with_the_largest_y_on_top() -> None:
    log_density = np.full((4, 6), -50.0)
    log_density[-1, 0] = 0.0  # the cell at the largest y, the smallest x: at the peak of the scale
    pixels = decode_png(render.density_png(log_density, cmax=1.0))
    assert pixels.shape == (4, 6, 3)
    bright, dark = pixels[0, 0], pixels[3, 5]
    assert bright.sum() > 400 and dark.sum() < 200  # viridis: yellow at the top, dark violet at 0
    assert (pixels[1:] == dark).all()


@pytest.mark.parametrize("name", [name for name in MODELS if thumbnail(name) is not None])
def test_each_thumbnail_is_a_small_png(name: str) -> None:
    data = thumbnail(name).read_bytes()
    assert len(data) < 40_000
    height, width, _ = decode_png(data).shape
    assert min(height, width) == 96  # the target's box, at least 96 cells a side
