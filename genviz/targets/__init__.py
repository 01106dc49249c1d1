"""Target distributions and their registry.

A new target is a `Target` subclass in one of these modules plus one line in
`TARGETS`. Every target has a normalised log density.
"""

from genviz.targets.base import Target
from genviz.targets.curves import Moons, SwissRoll, TwoSpirals
from genviz.targets.energies import U1, U2, U3, U4
from genviz.targets.mixtures import (
    Banana,
    Checkerboard,
    CorrelatedGaussian,
    EightGaussians,
    TwentyFiveGaussians,
    TwoGaussians,
)
from genviz.targets.pinwheel import Pinwheel
from genviz.targets.rings import Circles, Rings

TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        EightGaussians(),
        Moons(),
        Checkerboard(),
        TwoSpirals(),
        Rings(),
        Pinwheel(),
        SwissRoll(),
        Circles(),
        U1(),
        U2(),
        U3(),
        U4(),
        Banana(),
        CorrelatedGaussian(),
        TwentyFiveGaussians(),
        TwoGaussians(),
    )
}

# Targets a model can be fitted to by the reverse KL (see `Target.reverse_kl`), in the pickers' order.
REVERSE_KL_TARGETS: tuple[str, ...] = tuple(name for name, target in TARGETS.items() if target.reverse_kl)

__all__ = ["REVERSE_KL_TARGETS", "TARGETS", "Target"]
