"""Model families and their registry.

A new family is one module with a `GenerativeModel` subclass plus one line in
`MODELS`; the pages, the command line, the tests and the benchmarks read it.
"""

from genviz.models.base import GenerativeModel, Hyperparameter, checked_params, hyperparameters
from genviz.models.flows import MAF, NSF, RealNVP
from genviz.models.gaussian import Gaussian
from genviz.models.gmm import GMM
from genviz.models.kde import KDE

MODELS: dict[str, type[GenerativeModel]] = {
    "nsf": NSF,
    "maf": MAF,
    "realnvp": RealNVP,
    "gmm": GMM,
    "kde": KDE,
    "gaussian": Gaussian,
}

__all__ = ["MODELS", "GenerativeModel", "Hyperparameter", "checked_params", "hyperparameters"]
