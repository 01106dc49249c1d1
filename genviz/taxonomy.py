"""The taxonomy of generative models (Goodfellow, NIPS 2016 tutorial) as data, with every family of
`MODELS` at its leaf and the link that opens the Explorer on it.

A family's place is its `branch`, e.g. "explicit › tractable › change of variables": the path of
node keys from the root. Diffusion and flow matching, which came later, sit under the implicit
branch they grew from (a denoising chain, a direct map from noise), marked as its heirs.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from genviz.models import MODELS

AUTOSTART = "autostart"  # a link's query parameter: start training once the Explorer opens it
START_HERE = ("nsf", "8gaussians")  # a newcomer's first run: a spline flow finds the eight modes

# The target each family learns well with its defaults (docs/families.md: KL after 30 s of CPU).
SHOWCASE: dict[str, str] = {
    "ar-mixture": "rings",  # KL 0.001
    "ar-softmax": "checkerboard",  # its bins are the checkerboard's axes
    "nsf": "moons",
    "maf": "moons",
    "realnvp": "moons",
    "cnf": "8gaussians",
    "gmm": "8gaussians",  # eight components for eight modes
    "kde": "moons",
    "gaussian": "gaussian",  # the one target a single Gaussian fits exactly
    "vae": "8gaussians",
    "ebm": "8gaussians",
    "gan": "moons",
    "gsn": "rings",
    "ddpm": "moons",
    "flow-matching": "8gaussians",
}
DEFAULT_SHOWCASE = "8gaussians"
# Each family on its showcase target after a short training run: `python -m scripts.thumbnails`
THUMBNAILS = Path(__file__).resolve().parents[1] / "docs" / "thumbnails"


@dataclass(frozen=True)
class Node:
    """A branch of the tree: `key` is its part of a family's `branch` path (compared in lower case)."""

    key: str
    title: str
    note: str = ""  # what the literature puts there
    heir: bool = False  # a later family grown from its parent branch
    children: tuple[Node, ...] = ()


TREE = Node(
    "",
    "Maximum likelihood",
    children=(
        Node(
            "explicit",
            "Explicit density",
            "the model writes down q(x)",
            children=(
                Node(
                    "tractable",
                    "Tractable density",
                    "log q(x) is computed exactly",
                    children=(
                        Node("autoregressive", "Autoregressive", "fully visible belief nets (NADE, MADE)"),
                        Node("change of variables", "Change of variables", "normalizing flows"),
                        Node("mixture", "Mixture", "a classic tractable density"),
                        Node("nonparametric", "Nonparametric", "a kernel on every data point"),
                        Node("closed form", "Closed form", "the baseline"),
                    ),
                ),
                Node(
                    "approximate",
                    "Approximate density",
                    "log q(x) is bounded or needs sampling",
                    children=(
                        Node("variational", "Variational", "variational autoencoders (an ELBO)"),
                        Node("markov chain", "Markov chain", "Boltzmann machines, energy-based models"),
                    ),
                ),
            ),
        ),
        Node(
            "implicit",
            "Implicit density",
            "the model only samples",
            children=(
                Node(
                    "direct",
                    "Direct",
                    "generative adversarial networks",
                    children=(Node("flow matching", "Flow matching", "an ODE from noise", heir=True),),
                ),
                Node(
                    "markov chain",
                    "Markov chain",
                    "generative stochastic networks",
                    children=(Node("diffusion", "Diffusion", "a denoising chain", heir=True),),
                ),
            ),
        ),
    ),
)


def branch_path(name: str) -> tuple[str, ...]:
    """A family's place as node keys: 'implicit › Markov chain' -> ('implicit', 'markov chain')."""
    return tuple(part.strip().lower() for part in MODELS[name].branch.split("›"))


def families_at(path: tuple[str, ...]) -> list[str]:
    """The families whose branch ends at this node, in the registry's order."""
    return [name for name in MODELS if branch_path(name) == path]


def walk(node: Node = TREE, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Node]]:
    """Every node below `node` with its path, depth first."""
    for child in node.children:
        child_path = (*path, child.key)
        yield child_path, child
        yield from walk(child, child_path)


def unplaced() -> list[str]:
    """Families whose branch names no node of the tree (the tests keep this empty)."""
    paths = {path for path, _ in walk()}
    return [name for name in MODELS if branch_path(name) not in paths]


def showcase(name: str) -> str:
    return SHOWCASE.get(name, DEFAULT_SHOWCASE)


def link_query(name: str, target: str | None = None) -> dict[str, str]:
    """The Explorer's query parameters for a family on its showcase target, training at once."""
    return {"target": target or showcase(name), "model": name, AUTOSTART: "1"}


def thumbnail(name: str) -> Path | None:
    """The family's static thumbnail, if one has been made."""
    path = THUMBNAILS / f"{name}.png"
    return path if path.is_file() else None
