"""The numbers of the Theory page: maximum likelihood, one step at a time, from a run's evaluations.

    argmax_θ Π p_θ(xᵢ) = argmax_θ Σ log p_θ(xᵢ) = argmax_θ E_p*[log p_θ]
                       = argmin_θ E_p*[−log p_θ] = argmin_θ KL(p* ‖ p_θ),

the last because E_p*[−log p_θ] = H(p*) + KL(p* ‖ p_θ) and H(p*) does not depend on θ. Every
number is a labelled `Result`. The product of likelihoods is multiplied out in float32 and in
float64 from the held-out log-likelihoods themselves, to show where it underflows and the sum of
logs does not: that is why the log is taken.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from genviz.metrics import Result, at_floor, unavailable
from genviz.models.base import GenerativeModel

if TYPE_CHECKING:
    from genviz.train import Evaluation

PRODUCT_SIZES = (10, 100, 1000, 10_000)  # held-out points multiplied out in the underflow table
FORWARD_KL = "forward-kl"  # maximum likelihood; the derivation is about this objective


@dataclass(frozen=True)
class LikelihoodProduct:
    """Π q(xᵢ) over the first n held-out points, multiplied one factor at a time in float32 and in
    float64, beside Σ log q(xᵢ) (float64)."""

    n: int
    product32: float
    product64: float
    log_sum: float


def likelihood_products(
    log_q: torch.Tensor, sizes: Sequence[int] = PRODUCT_SIZES
) -> tuple[LikelihoodProduct, ...]:
    """The products and sums for each n in `sizes` that the points allow. log_q: (n,) held-out."""
    values = log_q.detach().double().cpu().numpy()
    likelihoods = np.exp(values)
    # numpy's accumulate multiplies in the array's own type, so float32 underflows as float32 does
    with np.errstate(under="ignore", over="ignore"):
        product32 = np.multiply.accumulate(likelihoods.astype(np.float32))
        product64 = np.multiply.accumulate(likelihoods)
    sums = np.cumsum(values)
    return tuple(
        LikelihoodProduct(n, float(product32[n - 1]), float(product64[n - 1]), float(sums[n - 1]))
        for n in sizes
        if 0 < n <= len(values)
    )


TRAINING = "training mean log q"


def training_log_likelihood(
    loss: float | None, family: type[GenerativeModel], objective: str = FORWARD_KL
) -> Result:
    """Minus the mean training loss since the previous evaluation, where that loss is an NLL.

    It is an estimate of E_p*[log q] (a bound for a −ELBO): the batches are fresh samples of p*,
    but the model moved while they were drawn, so the mean lags behind the current model."""
    if objective != FORWARD_KL:
        return unavailable(TRAINING, "this run minimises the reverse KL; its loss is no likelihood of data")
    if family.training_loss == "other":
        return unavailable(TRAINING, f"its training loss, the {family.loss_name}, is not a log-likelihood")
    if loss is None:
        return unavailable(TRAINING, "no training step since the previous evaluation")
    method = "minus the mean training loss since the last evaluation (fresh batches of p*; the model moved)"
    if family.training_loss == "bound":
        bound = f"a lower bound on log q: minus the {family.loss_name}"
        return Result(TRAINING, -loss, None, "bound", f"{bound}; {method}")
    if family.density_kind == "ode":
        method += "; log q by the training ODE solver"
    return Result(TRAINING, -loss, None, "estimate", method)


@dataclass(frozen=True)
class Derivation:
    """The chain's numbers at one evaluation."""

    step: int
    training: Result  # E_p*[log q] on the training batches
    held_out: Result  # E_p*[log q] on the held-out points: minus the NLL
    log_sum: Result  # Σ log q(xᵢ) over the held-out points
    cross_entropy: Result  # E_p*[−log q]: the held-out NLL
    entropy: Result  # H(p*)
    kl: Result  # KL(p* ‖ q), the mean of the paired differences log p − log q
    gap: Result  # cross-entropy − H(p*): the KL by the identity
    sample_entropy: Result  # −mean log p on the same held-out points: cross-entropy − KL exactly
    products: tuple[LikelihoodProduct, ...]


def derivation(
    evaluation: Evaluation, family: type[GenerativeModel], objective: str = FORWARD_KL
) -> Derivation:
    nll, entropy, kl = evaluation.nll, evaluation.entropy, evaluation.kl
    return Derivation(
        step=evaluation.step,
        training=training_log_likelihood(evaluation.loss, family, objective),
        held_out=_negated(nll, "held-out mean log q"),
        log_sum=_log_sum(nll, evaluation.products),
        cross_entropy=_renamed(nll, "cross-entropy CE = E_p*[−log q]"),
        entropy=_renamed(entropy, "H(p*)"),
        kl=_renamed(kl, "KL(p*‖q)"),
        gap=_gap(nll, entropy),
        sample_entropy=_sample_entropy(nll, kl),
        products=evaluation.products,
    )


def _renamed(result: Result, name: str) -> Result:
    return Result(name, result.value, result.se, result.kind, result.method)


def _negated(result: Result, name: str) -> Result:
    if result.value is None:
        return unavailable(name, result.method)
    return Result(name, -result.value, result.se, result.kind, result.method)


def _log_sum(nll: Result, products: tuple[LikelihoodProduct, ...]) -> Result:
    name = "Σ log q(xᵢ)"
    if nll.value is None or not products:
        return unavailable(name, nll.method if nll.value is None else "no held-out log-likelihoods")
    last = products[-1]
    return Result(name, last.log_sum, None, nll.kind, f"sum over the first {last.n:,} held-out points")


def _gap(nll: Result, entropy: Result) -> Result:
    name = "CE − H(p*)"  # the cross-entropy minus the entropy
    if nll.value is None or entropy.value is None:
        why = entropy.method if entropy.value is None else nll.method
        return unavailable(name, why)
    kind = "estimate" if "estimate" in (nll.kind, entropy.kind) else nll.kind
    method = "the held-out NLL minus the target's entropy; ± the NLL's standard error"
    return at_floor(Result(name, nll.value - entropy.value, nll.se, kind, method))


def _sample_entropy(nll: Result, kl: Result) -> Result:
    name = "−mean log p*(xᵢ), held-out"
    if nll.value is None or kl.value is None:
        return unavailable(name, "needs the target's density at the held-out points")
    method = "the NLL minus the paired KL, on the same held-out points: H(p*) by Monte Carlo"
    return Result(name, nll.value - kl.value, None, "estimate", method)


def curve_rows(
    history: Sequence[Evaluation], family: type[GenerativeModel], objective: str = FORWARD_KL
) -> list[dict[str, Any]]:
    """One row per evaluation for the Theory page's chart (None where a number is unavailable)."""
    rows = []
    for evaluation in history:
        training = training_log_likelihood(evaluation.loss, family, objective)
        nll = evaluation.nll.value
        rows.append(
            {
                "step": evaluation.step,
                "training": training.value,
                "held_out": None if nll is None else -nll,
                "cross_entropy": nll,
                "se": evaluation.nll.se,
                "kl": evaluation.kl.value,
            }
        )
    return rows
