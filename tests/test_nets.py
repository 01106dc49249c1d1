"""The shared networks: layer order, output heads, and the features against direct formulas."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from genviz.models.nets import FourierFeatures, TimeMLP, mlp, octaves, sinusoids


@pytest.mark.parametrize("head", ["default", "small", "zero"])
def test_mlp_layers_in_order_and_its_head(head: str) -> None:
    torch.manual_seed(0)
    net = mlp(3, (8, 5), 2, activation=nn.Tanh, head=head)
    assert [type(m) for m in net] == [nn.Linear, nn.Tanh, nn.Linear, nn.Tanh, nn.Linear]
    assert [m.out_features for m in net if isinstance(m, nn.Linear)] == [8, 5, 2]
    torch.manual_seed(0)
    plain = mlp(3, (8, 5), 2, activation=nn.Tanh)
    torch.testing.assert_close(net[0].weight, plain[0].weight)  # the same seed, the same weights
    scale = {"default": 1.0, "small": 0.1, "zero": 0.0}[head]
    torch.testing.assert_close(net[-1].weight, scale * plain[-1].weight)
    if head != "default":
        assert not net[-1].bias.any()


def test_fourier_features_of_one_coordinate() -> None:
    z = torch.tensor([0.3, -1.2])
    features = FourierFeatures(3)(z)
    angles = z[:, None] * torch.tensor([1.0, 2.0, 4.0])
    torch.testing.assert_close(features, torch.cat([z[:, None], angles.cos(), angles.sin()], 1))
    assert features.shape[1] == FourierFeatures(3).size


def test_time_features_and_the_zero_output() -> None:
    net = TimeMLP(16, 2, 2, time_features=4, max_omega=9.0, zero_output=True)
    x, t = torch.tensor([[0.5, -1.0]]), torch.tensor(0.25)
    sin, cos = sinusoids(x, octaves(2))
    torch.testing.assert_close(
        sin, torch.tensor([[math.sin(0.5), math.sin(1.0), math.sin(-1.0), math.sin(-2.0)]])
    )
    omega = torch.tensor([1.0, 9.0])
    expected = torch.cat([x, sin, cos, (0.25 * omega).sin()[None], (0.25 * omega).cos()[None]], 1)
    torch.testing.assert_close(net.features(x, t), expected)
    assert not net(x, t).any()
    assert set(net.state_dict()) == {"freq", "omega"} | {
        f"net.{i}.{p}" for i in (0, 2, 4) for p in ("weight", "bias")
    }
