"""Model families and their registry.

A new family is one module with a `GenerativeModel` subclass plus one line in
`MODELS`; the pages, the command line, the tests and the benchmarks read it.
"""

from genviz.models.autoregressive import ARMixture, ARSoftmax
from genviz.models.base import GenerativeModel, Hyperparameter, checked_params, hyperparameters
from genviz.models.cnf import CNF
from genviz.models.diffusion import DDPM
from genviz.models.ebm import EBM
from genviz.models.flow_matching import FlowMatching
from genviz.models.flows import MAF, NSF, RealNVP
from genviz.models.gan import GAN
from genviz.models.gaussian import Gaussian
from genviz.models.gmm import GMM
from genviz.models.gsn import GSN
from genviz.models.kde import KDE
from genviz.models.vae import VAE

MODELS: dict[str, type[GenerativeModel]] = {
    "nsf": NSF,
    "maf": MAF,
    "realnvp": RealNVP,
    "gmm": GMM,
    "kde": KDE,
    "gaussian": Gaussian,
    "cnf": CNF,
    "ddpm": DDPM,
    "flow-matching": FlowMatching,
    "gan": GAN,
    "ebm": EBM,
    "vae": VAE,
    "gsn": GSN,
    "ar-mixture": ARMixture,
    "ar-softmax": ARSoftmax,
}

__all__ = ["MODELS", "GenerativeModel", "Hyperparameter", "checked_params", "hyperparameters"]
