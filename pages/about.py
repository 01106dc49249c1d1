"""About: the idea behind the explorer, the families of generative models, the targets and the labels."""

import streamlit as st

from genviz import ui
from genviz.models import MODELS
from genviz.targets import TARGETS
from genviz.taxonomy import families_at, walk

ui.run_through_app()  # first: a page opened by its address on a fresh server


def branch_rows() -> list[dict[str, str]]:
    """One row per branch of the taxonomy that has families here, from the tree Home draws."""
    rows = []
    for path, node in walk():
        names = families_at(path)
        if names:
            branch = " › ".join(path) + (" (a later heir)" if node.heir else "")
            trained = ", ".join(f"{MODELS[name].title} ({name})" for name in names)
            rows.append({"branch": branch, "in the literature": node.note, "available here": trained})
    return rows


st.title("About genviz")
st.markdown(
    "Fitting a model q to data from p by **maximum likelihood** minimises the expected negative "
    "log-likelihood, which splits in two:"
)
st.latex(r"\mathbb{E}_{p}[-\log q(x)] \;=\; H(p) + \mathrm{KL}(p \,\|\, q)")
st.markdown(
    "The entropy H(p) does not depend on the model, so maximising likelihood **is** minimising KL(p‖q). "
    "The held-out NLL can never fall below H(p): that is the floor drawn under every NLL curve, and the "
    "gap between the curve and the floor **is** the KL. Every target here has a normalised density, so "
    "the floor and the KL are computed, not guessed."
)

st.header("Families of generative models")
st.markdown(
    "Goodfellow's taxonomy (NIPS 2016 tutorial) sorts models by how they give access to a density. "
    "Diffusion and flow matching came later, heirs of the implicit branches: they sample by a chain of "
    "denoising steps or an ODE from noise, like a GSN or a generator, yet their likelihood can be computed "
    "through the probability-flow ODE, which this app does. **Available here** lists the families this app "
    "trains now; the model picker lists them in this order."
)
st.table(branch_rows(), hide_index=True)

st.header("Targets")
facts = [t.describe() for t in TARGETS.values()]
columns = {"name": "target", "description": "description", "density": "density", "density_method": "how"}
rows = [{label: f[key] for key, label in columns.items()} for f in facts]
for row, f in zip(rows, facts, strict=True):
    row["H(p) (nats)"] = "unknown" if f["entropy"] is None else f"{f['entropy']:.4f}"
    row["how H(p) is known"] = f["entropy_method"]
st.table(rows, hide_index=True)

st.header("Exact, bound, estimate")
st.markdown(
    """
Every number is labelled with what it is and how it was computed:

- **exact**: the true quantity, from normalised densities (closed form, or computed numerically to
  1e-4). As a mean over held-out points (Monte Carlo) it comes with ± one standard error.
- **bound**: an upper bound, e.g. an NLL from an evidence lower bound (a variational model);
  the true NLL and KL are at most this.
- **estimate**: an approximation with a bias that has no error bar, e.g. the KL by quadrature on a
  grid (the cross-check beside the Monte Carlo KL), or a KL against a density that is itself estimated.
- **unavailable**: the quantity cannot be computed here (a model with no density has no NLL), and
  the app says so rather than show a number.
"""
)
