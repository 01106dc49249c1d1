"""Target distributions and their registry.

A new target is a `Target` subclass in one of these modules plus one line in
`TARGETS`. Every target has a normalised log density.
"""

from genviz.targets.base import Target
from genviz.targets.mixtures import (
    Banana,
    Checkerboard,
    CorrelatedGaussian,
    EightGaussians,
    TwentyFiveGaussians,
)

TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        EightGaussians(),
        Checkerboard(),
        CorrelatedGaussian(),
        Banana(),
        TwentyFiveGaussians(),
    )
}

__all__ = ["TARGETS", "Target"]
