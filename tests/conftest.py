"""Shared test settings: one thread is fastest for these small models."""

import torch

torch.set_num_threads(1)
