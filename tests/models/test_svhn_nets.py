"""000 App. A.3's SVHN classifier, placement table, localizers, multipliers and counts."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from models import svhn_nets as S
from models.data import svhn as svhn_data
from models.errors import ConfigError as UsageError
from sampling.warp import warp_affine

BETWEEN = (nn.ReLU, nn.MaxPool2d, nn.Dropout)


@pytest.fixture(scope="module")
def full():
    return S.classifier()


@pytest.mark.parametrize("width", [1.0, 0.25])
def test_placement_table_is_the_rule(full, width):
    """ST_POSITIONS (data) = after conv X and the activation / pool / dropout that follow."""
    net = full if width == 1.0 else S.classifier(width=width)
    mods = list(net.layers)
    assert sorted(S.ST_POSITIONS) == list(range(net.n_convs() + 1)) and net.n_convs() == 8
    for x, pos in S.ST_POSITIONS.items():
        assert net.st_position(x) == pos
        assert (net.names[pos - 1] if pos else None) == S.ST_AFTER[x]
        conv_idx = [i for i, m in enumerate(mods) if isinstance(m, nn.Conv2d)]
        assert sum(isinstance(m, nn.Conv2d) for m in mods[:pos]) == x
        nxt = mods[pos]
        assert isinstance(nxt, nn.Conv2d) if x < 8 else isinstance(nxt, nn.Flatten)
        if x > 0:
            assert all(isinstance(m, BETWEEN) for m in mods[conv_idx[x - 1] + 1: pos])
            assert pos - conv_idx[x - 1] >= 2  # at least the activation follows the conv


def test_layer_names_and_maps(full):
    names = full.names
    assert [names[S.ST_POSITIONS[x] - 1] for x in (1, 3, 6, 8)] == ["pool1", "drop3", "drop6",
                                                                    "drop8"]
    assert "drop1" not in names  # no dropout on the first layer
    assert sum(isinstance(m, nn.Dropout) for m in full.layers) == 10  # layers 2..11
    maps = {x: full.shape_at_depth(x) for x in (0, 1, 2, 3, 6, 8)}
    assert maps == {0: (3, 64, 64), 1: (48, 32, 32), 2: (64, 32, 32), 3: (128, 16, 16),
                    6: (192, 8, 8), 8: (192, 4, 4)}


def test_width_changes_widths_never_depth(full):
    small = S.classifier(width=0.25)
    assert len(small.layers) == len(full.layers) and small.names == full.names
    convs = [m.out_channels for m in small.layers if isinstance(m, nn.Conv2d)]
    assert convs == [12, 16, 32, 40, 48, 48, 48, 48]
    assert small(torch.zeros(2, 3, 64, 64)).shape == (2, 5, 11)


def test_param_counts_match_the_architecture_by_hand():
    """CNN and localizer counts recomputed from the layer widths of App. A.3 by formula."""
    cin = (3, 48, 64, 128, 160, 192, 192, 192)
    cout = (48, 64, 128, 160, 192, 192, 192, 192)
    convs = sum(25 * i * o + o for i, o in zip(cin, cout))
    fcs = 3 * (3072 * 3072 + 3072) + 5 * (3072 * 11 + 11)
    cnn = convs + fcs
    f32 = {0: 3 * 64 * 64, 3: 128 * 16 * 16, 6: 192 * 8 * 8, 8: 192 * 4 * 4}
    loc = {x: n * 32 + 32 + 32 * 32 + 32 + 32 * 6 + 6 for x, n in f32.items()}
    large = (25 * 3 * 32 + 32) + (25 * 32 * 32 + 32) + (32 * 32 * 32 * 32 + 32) + (
        32 * 32 + 32) + (32 * 6 + 6)
    counts = S.param_counts()
    assert counts["CNN"] == cnn == 32_820_951
    assert counts["STN-C0-large"] == cnn + large
    for x in (0, 3, 6, 8):
        assert counts[f"STN-C{x}"] == cnn + loc[x]
    for x in (3, 6, 8):
        assert counts[f"STN-SL{x}"] == counts[f"STN-C{x}"]
        copies = sum(25 * i * o + o for i, o in zip(cin[:x], cout[:x]))
        assert counts[f"STN-DL{x}"] == cnn + loc[x] + copies
    assert set(counts) == set(S.NETS)


def test_localizers_identity_at_init():
    large = S.localizer("C0-large")
    x = torch.randn(2, 3, 64, 64)
    torch.testing.assert_close(large(x), torch.eye(2, 3).expand(2, 2, 3))
    net = S.classifier(width=0.125)
    loc = S.localizer("F32", depth=3, net=net)
    h = net.run(x, 0, net.st_position(3))
    torch.testing.assert_close(loc(h), torch.eye(2, 3).expand(2, 2, 3))


def test_build_and_errors():
    assert isinstance(S.build("CNN", width=0.125), nn.Module)
    assert S.build("loc-F32", depth=0, width=0.125)(torch.zeros(1, 3, 64, 64)).shape == (1, 2, 3)
    with pytest.raises(UsageError, match=r"svhn_nets.build: expected net .*got 'STN-C3'"):
        S.build("STN-C3")
    with pytest.raises(ValueError, match=r"svhn_nets.classifier: expected width"):
        S.classifier(width=0)
    with pytest.raises(UsageError, match=r"svhn_nets.localizer: expected kind"):
        S.localizer("F64")


def test_lr_multipliers_are_000s():
    assert S.lr_multipliers("CNN") == {"classifier": 1.0}
    assert S.lr_multipliers("STN-C0123")["localizer"] == 0.01
    assert S.lr_multipliers("STN-DL3")["localizer"] == 0.3
    assert S.lr_multipliers("STN-DL8")["localizer"] == 0.1
    assert S.lr_multipliers("STN-SL6") == {"classifier": 1.0, "localizer": 0.01, "shared": 1.0}
    assert S.lr_multipliers("STN-SL6", iterations=2)["localizer"] == 0.003
    assert S.lr_multipliers("STN-C0", iterations=2)["localizer"] == 0.001
    with pytest.raises(UsageError, match=r"expected \(iterations, net\) among 000's settings"):
        S.lr_multipliers("STN-C3", iterations=2)
    with pytest.raises(UsageError, match=r"lr_multipliers: expected net in"):
        S.lr_multipliers("STN-C5")


@pytest.mark.network
def test_smoke_steps_on_the_standin_without_nan(real_mnist_dir):
    """Temporary smoke loop (the trainer comes with the redesign): CNN and a C0 warp path.

    Three SGD steps on the stand-in at width 1/8; every loss and gradient finite, and the
    localizer's zero-initialized output layer receives gradient through ``warp_affine``.
    """
    torch.manual_seed(0)
    x, y = svhn_data.standin("train", 16, seed=0, cache_dir=real_mnist_dir)
    mean, std = svhn_data.channel_stats(x)
    x = svhn_data.normalize(x, mean, std)
    net = S.classifier(width=0.125)
    loc = S.localizer("F32", depth=0, net=net)
    params = list(net.parameters()) + list(loc.parameters())
    opt = torch.optim.SGD(params, lr=0.01, momentum=0.9, weight_decay=2e-4)
    for _ in range(3):
        theta = loc(x)  # (N, 2, 3) input_from_output
        xw = warp_affine(x, theta, (64, 64), method="bilinear", align_corners=False,
                         padding_mode="zeros")
        logits = net(xw)  # (N, 5, 11)
        loss = nn.functional.cross_entropy(logits.reshape(-1, 11), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        assert torch.isfinite(loss)
        assert all(torch.isfinite(p.grad).all() for p in params if p.grad is not None)
        assert float(loc.out.weight.grad.abs().sum()) > 0
        opt.step()
