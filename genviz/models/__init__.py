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

# In the order of the taxonomy (Goodfellow 2016), which the model picker follows:
# explicit density (tractable, then approximate), implicit density, then today's heirs.
MODELS: dict[str, type[GenerativeModel]] = {
    "ar-mixture": ARMixture,
    "ar-softmax": ARSoftmax,
    "nsf": NSF,
    "maf": MAF,
    "realnvp": RealNVP,
    "cnf": CNF,
    "gmm": GMM,
    "kde": KDE,
    "gaussian": Gaussian,
    "vae": VAE,
    "ebm": EBM,
    "gan": GAN,
    "gsn": GSN,
    "ddpm": DDPM,
    "flow-matching": FlowMatching,
}

__all__ = ["MODELS", "GenerativeModel", "Hyperparameter", "checked_params", "hyperparameters"]
