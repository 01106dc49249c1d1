"""genviz: an interactive explorer of 2D generative models.

The library is independent of the web app: targets, models, training, metrics
and plotting live here; only `genviz.ui` imports streamlit.
"""

__version__ = "0.1.0"
