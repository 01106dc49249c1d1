"""The table of density kinds is the one place their meaning is written."""

from __future__ import annotations

import typing

from genviz.metrics import nll_kind
from genviz.models import MODELS
from genviz.models.base import DensityKind
from genviz.models.kinds import DENSITY_KINDS
from genviz.train import KDE_SAMPLES, density_title


def test_every_kind_has_an_entry_and_every_family_a_kind() -> None:
    assert set(DENSITY_KINDS) == set(typing.get_args(DensityKind))
    assert {family.density_kind for family in MODELS.values()} <= set(DENSITY_KINDS)


def test_titles_and_labels_come_from_the_table() -> None:
    assert density_title(MODELS["gan"]) == f"model q(x): KDE of {KDE_SAMPLES:,} samples (an estimate)"
    assert density_title(MODELS["vae"]) == "model q(x)"
    assert density_title(MODELS["ebm"]) == "model q(x) (normalised on the box)"
    assert [nll_kind(kind) for kind in DENSITY_KINDS] == ["exact", "bound", "exact", "estimate", "estimate"]
    only = {
        flag: [k for k, v in DENSITY_KINDS.items() if getattr(v, flag)] for flag in ("normalise", "autograd")
    }
    assert only == {"normalise": ["unnormalised"], "autograd": ["ode"]}
    assert [k for k, v in DENSITY_KINDS.items() if not v.quadrature] == ["bound"]
