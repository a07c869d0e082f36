"""LayerNet (ordered layers, the placement rule) and the eq. 17 Localizer."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from models.layer_nets import LayerNet, Localizer, count_params, scaled


def tiny():
    layers = [("conv1", nn.Conv2d(1, 2, 3, padding=1)), ("relu1", nn.ReLU()),
              ("pool1", nn.MaxPool2d(2)), ("drop1", nn.Dropout(0.5)),
              ("conv2", nn.Conv2d(2, 3, 3, padding=1)), ("relu2", nn.ReLU()),
              ("flatten", nn.Flatten()), ("fc", nn.Linear(3 * 4 * 4, 5))]
    return LayerNet((1, 8, 8), layers)


def test_st_position_rule_on_a_tiny_net():
    net = tiny()
    assert [net.st_position(x) for x in range(3)] == [0, 4, 6]
    assert net.shape_at_depth(1) == (2, 4, 4) and net.shape_at_depth(2) == (3, 4, 4)
    assert net(torch.zeros(2, 1, 8, 8)).shape == (2, 5)


@pytest.mark.parametrize("bad", [-1, 3, 1.0, True])
def test_st_position_bad_depth(bad):
    with pytest.raises(ValueError, match=r"st_position: expected depth X to be an int in 0..2"):
        tiny().st_position(bad)


def test_prefix_shares_the_very_modules():
    net = tiny()
    pre = net.prefix(1)
    assert len(pre) == 4 and all(a is b for a, b in zip(pre, list(net.layers)[:4]))
    x = torch.randn(3, 1, 8, 8)
    net.eval()
    torch.testing.assert_close(net.run(net.run(x, 0, 4), 4), net.layers(x))


def test_localizer_is_the_identity_at_init_and_learns():
    loc = Localizer(nn.Sequential(nn.Flatten(), nn.Linear(12, 4), nn.ReLU()), 4)
    h = torch.randn(5, 3, 2, 2)
    m = loc(h)
    torch.testing.assert_close(m, torch.eye(2, 3).expand(5, 2, 3))
    assert not loc.out.weight.detach().any() and not loc.out.bias.detach().any()
    m.sum().backward()
    assert float(loc.out.bias.grad.abs().sum()) > 0  # eq. 17's offsets get gradient


def test_helpers():
    assert scaled(48, 0.25) == 12 and scaled(3, 0.1) == 1
    assert count_params(nn.Linear(3, 2)) == 8
