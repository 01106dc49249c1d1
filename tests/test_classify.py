"""Labelled targets, Bayes' rule, and both classifiers trained for real on labelled points."""

from __future__ import annotations

import math

import pytest
import torch

from genviz.classify import (
    MAX_CLASSES,
    DiscriminativeTrainer,
    GenerativeClassifier,
    bayes_scores,
    class_sources,
    classification_data,
    density_families,
    fitting_points,
    labelled_targets,
    log_joint,
    log_marginal,
    log_posterior,
    log_prior,
    percentile,
    scores,
)
from genviz.config import ConfigError
from genviz.grid import Box, Grid
from genviz.targets import TARGETS

LABELLED = ["moons", "8gaussians", "25gaussians", "pinwheel", "2spirals", "circles", "rings"]
# sum of the 3,000 points `sample` drew from manual_seed(5) before the targets carried labels
SAMPLE_SUMS = {
    "moons": 896.1796992362943,
    "8gaussians": -89.60061156601296,
    "25gaussians": 140.77286763803568,
    "pinwheel": -204.54400846308272,
    "2spirals": -3.3158255382149946,
    "circles": -97.6767378296936,
    "rings": -97.85914303359459,
}
N = 20_000


# ---------------------------------------------------------------- labels


@pytest.mark.parametrize("name", LABELLED)
def test_sample_is_unchanged_and_labels_follow_it(name: str) -> None:
    target = TARGETS[name]
    x = target.sample(3000, torch.Generator().manual_seed(5))
    assert float(x.double().sum()) == pytest.approx(SAMPLE_SUMS[name], rel=1e-9)
    points, labels = target.sample_labelled(3000, torch.Generator().manual_seed(5))
    assert torch.equal(points, x)
    assert labels.dtype == torch.int64 and labels.shape == (3000,)
    again = target.sample_labelled(3000, torch.Generator().manual_seed(5))[1]
    assert torch.equal(labels, again)


@pytest.mark.parametrize("name", LABELLED)
def test_every_class_has_its_share(name: str) -> None:
    """The parts have equal weights: each class's count is within 5 standard errors of n/K."""
    target = TARGETS[name]
    _, labels = target.sample_labelled(N, torch.Generator().manual_seed(1))
    k = len(target.classes)
    counts = torch.bincount(labels, minlength=k).double()
    assert len(counts) == k and labels.min() >= 0
    se = math.sqrt(N * (1 / k) * (1 - 1 / k))
    assert (counts - N / k).abs().max() < 5 * se, counts


@pytest.mark.parametrize("name", LABELLED)
def test_class_densities_sum_to_the_density(name: str) -> None:
    target = TARGETS[name]
    x = target.sample(2000, torch.Generator().manual_seed(2))
    far = torch.tensor([[0.0, 0.0], [30.0, -30.0], [1e3, 1e3]])
    joint = target.class_log_prob(torch.cat([x, far]))
    assert joint.shape == (2003, len(target.classes)) and joint.dtype == torch.float64
    assert not joint.isnan().any()
    torch.testing.assert_close(torch.logsumexp(joint[:2000], 1), target.log_prob(x), atol=1e-9, rtol=0)


@pytest.mark.parametrize("name", ["moons", "pinwheel", "2spirals", "rings"])
def test_each_class_holds_its_prior_mass(name: str) -> None:
    """∫ p(x, y) dx = 1/K, by the midpoint rule on the box grown by a quarter on each side."""
    target = TARGETS[name]
    box = target.box
    dx, dy = (box.xmax - box.xmin) / 4, (box.ymax - box.ymin) / 4
    grid = Grid(Box(box.xmin - dx, box.xmax + dx, box.ymin - dy, box.ymax + dy), 300, 300)
    mass = target.class_log_prob(grid.points).exp().sum(0) * grid.cell_area
    k = len(target.classes)
    torch.testing.assert_close(mass, torch.full((k,), 1 / k, dtype=torch.float64), atol=3e-3, rtol=0)


@pytest.mark.parametrize("name", LABELLED)
def test_labels_agree_with_the_class_densities(name: str) -> None:
    """If labels are drawn as the class densities say, the Bayes classifier's hit rate on them
    estimates the same number as the mean of max_y p(y | x): a wrong or permuted label breaks it."""
    target = TARGETS[name]
    x, labels = target.sample_labelled(5000, torch.Generator().manual_seed(3))
    post = log_posterior(target.class_log_prob(x)).exp()
    hits = (post.argmax(1) == labels).double()
    expected = post.max(1).values
    se = math.sqrt(hits.var().item() / len(hits)) + 1e-4
    assert abs(hits.mean().item() - expected.mean().item()) < 5 * se
    own = post.gather(1, labels[:, None]).squeeze(1)  # p(y_i | x_i): near 1 when labels are right
    assert own.mean().item() == pytest.approx((post**2).sum(1).mean().item(), abs=5 * own.std().item() / 70)


def test_labelled_targets_and_families() -> None:
    assert set(labelled_targets()) == {n for n in LABELLED if len(TARGETS[n].classes) <= MAX_CLASSES}
    assert "25gaussians" not in labelled_targets()  # 25 densities are more than a page trains
    families = density_families()
    assert "gmm" in families and "nsf" in families and "vae" in families
    assert "gan" not in families and "gsn" not in families  # samples only: no p(x | y)
    with pytest.raises(NotImplementedError):
        TARGETS["checkerboard"].sample_labelled(10, torch.Generator())


def test_bad_requests_are_refused_with_a_message() -> None:
    with pytest.raises(ConfigError, match="not a labelled target"):
        classification_data("checkerboard", 1000, 1000, 0)
    with pytest.raises(ConfigError, match="training points"):
        classification_data("moons", 10**9, 1000, 0)
    with pytest.raises(ConfigError, match="gives no density"):
        GenerativeClassifier(classification_data("moons", 1000, 1000, 0), "gan", 10)


# ---------------------------------------------------------------- Bayes' rule


def test_posterior_sums_to_one_and_ignores_a_common_factor() -> None:
    likelihood = torch.randn(50, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 30
    prior = log_prior(torch.tensor([10, 30, 60]))
    assert float(prior.exp().sum()) == pytest.approx(1.0)
    post = log_posterior(log_joint(likelihood, prior))
    torch.testing.assert_close(post.exp().sum(1), torch.ones(50, dtype=torch.float64))
    torch.testing.assert_close(log_posterior(log_joint(likelihood - 700, prior)), post)
    nowhere = torch.full((1, 3), -math.inf, dtype=torch.float64)
    torch.testing.assert_close(log_posterior(nowhere).exp(), torch.full((1, 3), 1 / 3, dtype=torch.float64))
    manual = likelihood.exp() * prior.exp()
    torch.testing.assert_close(post.exp(), manual / manual.sum(1, keepdim=True))


def test_the_true_class_densities_give_the_bayes_accuracy() -> None:
    """Bayes' rule on the target's own p(x | y), with priors from the training counts."""
    data = classification_data("pinwheel", 4000, 4000, 0)
    k = len(data.classes)
    likelihood = data.target.class_log_prob(data.test.points) + math.log(k)  # p(x | y) = K p(x, y)
    post = log_posterior(log_joint(likelihood, log_prior(data.train.counts())))
    ours = scores(post, data.test.labels, "exact", "true class densities")
    best = bayes_scores(data.target, data.test)
    assert 0.95 < best.accuracy.value < 1.0
    assert ours.accuracy.value == pytest.approx(best.accuracy.value, abs=2e-3)
    assert ours.log_loss.value == pytest.approx(best.log_loss.value, abs=2e-3)


def test_gaussian_class_densities_reach_the_bayes_accuracy_where_each_class_is_gaussian() -> None:
    """Each part of 8gaussians is a Gaussian, so one Gaussian per class holds the truth: a mixture
    of one component, whose EM step is the maximum-likelihood fit in closed form."""
    data = classification_data("8gaussians", 4000, 4000, 0)
    generative = GenerativeClassifier(data, "gmm", 10, {"components": 1})
    generative.train()
    ours = scores(generative.log_posterior(data.test.points), data.test.labels, "exact", "")
    best = bayes_scores(data.target, data.test)
    assert ours.accuracy.value >= best.accuracy.value - 3 * best.accuracy.se - 2e-3
    assert ours.log_loss.value == pytest.approx(best.log_loss.value, abs=0.01)


# ---------------------------------------------------------------- both classifiers, trained


@pytest.fixture(scope="module")
def moons() -> tuple:
    data = classification_data("moons", 1000, 1000, 0)
    generative = GenerativeClassifier(data, "gmm", 20, {"components": 8})
    generative.train()
    discriminative = DiscriminativeTrainer(fitting_points(generative.sources, data.classes), 200, 0)
    discriminative.train()
    return data, generative, discriminative


def test_both_classifiers_learn_the_moons(moons: tuple) -> None:
    data, generative, discriminative = moons
    gen = scores(generative.log_posterior(data.test.points), data.test.labels, "exact", "")
    disc = scores(discriminative.log_posterior(data.test.points), data.test.labels, "exact", "")
    assert gen.accuracy.value > 0.95 and disc.accuracy.value > 0.95
    assert gen.log_loss.value < 0.2 and disc.log_loss.value < 0.2
    assert discriminative.step == 200 and discriminative.done


def test_both_learn_from_the_same_points(moons: tuple) -> None:
    data, generative, discriminative = moons
    shared = fitting_points(class_sources(data), data.classes)
    assert torch.equal(shared.points, discriminative.train_points.points)
    assert len(shared.labels) == sum(len(t.data.train_points) for t in generative.trainers)


def test_same_seed_same_discriminative_network(moons: tuple) -> None:
    data, generative, discriminative = moons
    again = DiscriminativeTrainer(fitting_points(generative.sources, data.classes), 200, 0)
    again.train()
    torch.testing.assert_close(
        again.log_posterior(data.test.points), discriminative.log_posterior(data.test.points)
    )


def test_only_the_generative_one_says_how_unusual_a_point_is(moons: tuple) -> None:
    data, generative, _ = moons
    test_log_px = log_marginal(generative.log_joint(data.test.points))
    typical, far = generative.log_joint(torch.tensor([[1.0, 0.0], [30.0, 30.0]]))
    assert percentile(float(log_marginal(typical[None])), test_log_px) > 5
    assert percentile(float(log_marginal(far[None])), test_log_px) == 0.0
    # the generative model also draws new points of one class, on that class's moon
    upper = generative.trainers[0].samples(500)
    assert float(upper[:, 1].mean()) > float(generative.trainers[1].samples(500)[:, 1].mean())
