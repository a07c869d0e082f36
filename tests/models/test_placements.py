"""``models.placements``: the placement strategies STNNet asks, and a new one plugging in."""

from __future__ import annotations

import pytest
import torch

from models import placements
from models.stn import ConvSpec, DenseSpec, Placement, STNNet


class _TwoStep(placements.PlacementStrategy):
    """An iterative ST (two predictions, composed): one class, no edit of STNNet."""

    kind = "IT"

    def predict(self, net, x, h):
        t1 = net.st.predict(x)
        t2 = net.st.predict(net.st.warp(x, t1))
        bottom = torch.tensor([0.0, 0.0, 1.0]).expand(x.shape[0], 1, 3)
        return t1 @ torch.cat([t2, bottom], 1)  # input_from_output: theta1 o theta2


@pytest.fixture
def registry(monkeypatch):
    monkeypatch.setattr(placements, "STRATEGIES", dict(placements.STRATEGIES))
    return placements


def test_a_new_placement_is_one_class(registry):
    registry.register(_TwoStep)
    torch.manual_seed(0)
    net = STNNet((1, 28, 28), (ConvSpec(4, 9), ConvSpec(4, 7)), placement=Placement("IT", 0),
                 localization=(DenseSpec(8),))
    with torch.no_grad():
        net.st.to_theta.bias.copy_(torch.tensor([0.9, 0.1, 0.0, -0.1, 0.9, 0.0]))
    x = torch.rand(3, 1, 28, 28)
    logits, theta = net(x, return_theta=True)
    assert logits.shape == (3, 10)
    t = torch.tensor([[0.9, 0.1, 0.0], [-0.1, 0.9, 0.0]])
    want = t @ torch.cat([t, torch.tensor([[0.0, 0.0, 1.0]])])  # the bias twice, composed
    torch.testing.assert_close(theta, want.expand(3, 2, 3))
    assert net.warped_frame()["stride"] == 1


def test_a_second_registration_under_one_kind_is_an_error(registry):
    with pytest.raises(ValueError, match=r"register: expected a new non-empty kind, got 'C'"):
        registry.register(placements.FeatureMap)


def test_unknown_kind_and_depth_rules_are_the_strategies():
    with pytest.raises(ValueError, match="placement kind"):
        Placement("IT", 1)  # not registered outside the test above
    with pytest.raises(ValueError, match="depth >= 1 for SLX"):
        Placement("SL", 0)
    assert isinstance(Placement("C", 1).strategy(), placements.FeatureMap)
    assert Placement("C", 1).strategy().warp_depth == 1
    assert Placement("SL", 1).strategy().warp_depth == 0
