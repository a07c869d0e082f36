"""000 App. A.4's PlanktonSet classifier, placement table, localizer, multipliers, counts."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from models import plankton_nets as P
from models.data import plankton as plankton_data
from models.errors import ConfigError as UsageError
from sampling.warp import warp_affine

BETWEEN = (nn.LeakyReLU, nn.MaxPool2d, nn.Dropout)


@pytest.fixture(scope="module")
def full():
    return P.classifier()


@pytest.mark.parametrize("width", [1.0, 0.25])
def test_placement_table_is_the_rule(full, width):
    """ST_POSITIONS (data) = after conv X and the activation / pool / dropout that follow."""
    net = full if width == 1.0 else P.classifier(width=width, n_classes=10)
    mods = list(net.layers)
    assert sorted(P.ST_POSITIONS) == list(range(11)) and net.n_convs() == 10
    conv_idx = [i for i, m in enumerate(mods) if isinstance(m, nn.Conv2d)]
    for x, pos in P.ST_POSITIONS.items():
        assert net.st_position(x) == pos
        assert (net.names[pos - 1] if pos else None) == P.ST_AFTER[x]
        assert sum(isinstance(m, nn.Conv2d) for m in mods[:pos]) == x
        assert isinstance(mods[pos], nn.Conv2d) if x < 10 else isinstance(mods[pos], nn.Flatten)
        if x > 0:
            assert all(isinstance(m, BETWEEN) for m in mods[conv_idx[x - 1] + 1: pos])
    # 000's depths sit right after their max-pools (and X = 10 also after the dropout)
    names = net.names
    assert [names[P.ST_POSITIONS[x] - 1] for x in (2, 4, 7, 10)] == ["pool2", "pool4", "pool7",
                                                                     "drop11"]


def test_maps_and_output(full):
    maps = {x: full.shape_at_depth(x) for x in P.DEPTHS}
    assert maps == {0: (1, 95, 95), 2: (32, 47, 47), 4: (64, 23, 23), 7: (128, 11, 11),
                    10: (256, 5, 5)}
    assert full(torch.zeros(2, 1, 95, 95)).shape == (2, 121)
    acts = [m for m in full.layers if isinstance(m, nn.LeakyReLU)]
    assert len(acts) == 12 and all(m.negative_slope == pytest.approx(1 / 3) for m in acts)
    drops = [i for i, m in enumerate(full.layers) if isinstance(m, nn.Dropout)]
    linears = [i for i, m in enumerate(full.layers) if isinstance(m, nn.Linear)]
    assert len(drops) == 3 and len(linears) == 3
    assert all(d < f for d, f in zip(drops, linears))  # a dropout before each F layer
    pools = [m for m in full.layers if isinstance(m, nn.MaxPool2d)]
    assert all((m.kernel_size, m.stride) == (3, 2) for m in pools)


def test_param_counts_match_the_architecture_by_hand():
    cin = (1, 32, 32, 64, 64, 128, 128, 128, 256, 256)
    cout = (32, 32, 64, 64, 128, 128, 128, 256, 256, 256)
    cnn = sum(9 * i * o + o for i, o in zip(cin, cout)) + (6400 * 512 + 512) + (
        512 * 512 + 512) + (512 * 121 + 121)
    feats = {0: 95 * 95, 2: 32 * 47 * 47, 4: 64 * 23 * 23, 7: 128 * 11 * 11, 10: 256 * 25}
    loc = {x: f * 64 + 64 + 64 * 64 + 64 + 64 * 6 + 6 for x, f in feats.items()}
    counts = P.param_counts()
    assert counts["CNN"] == cnn == 5_511_385
    for x in P.DEPTHS:
        assert counts[f"STN-C{x}"] == cnn + loc[x]
    for x in P.DEPTHS[1:]:
        copies = sum(9 * i * o + o for i, o in zip(cin[:x], cout[:x]))
        assert counts[f"STN-DL{x}"] == cnn + loc[x] + copies
        assert counts[f"STN-SL{x}"] == counts[f"STN-C{x}"]
    assert set(counts) == set(P.NETS)


def test_width_and_classes():
    small = P.classifier(width=0.25, n_classes=10)
    assert len(small.layers) == len(P.classifier().layers)
    assert small(torch.zeros(1, 1, 95, 95)).shape == (1, 10)
    with pytest.raises(ValueError, match=r"plankton_nets.classifier: expected n_classes"):
        P.classifier(n_classes=1)
    with pytest.raises(UsageError, match=r"plankton_nets.build: expected net"):
        P.build("STN-SL2")


def test_lr_multipliers_are_000s():
    assert P.lr_multipliers("STN-C7")["localizer"] == 0.03
    assert P.lr_multipliers("STN-DL10")["localizer"] == 1.0
    assert P.lr_multipliers("STN-SL2") == {"classifier": 1.0, "localizer": 0.1, "shared": 1.0}
    assert P.lr_multipliers("STN-SL7", iterations=2)["localizer"] == 0.003
    assert P.lr_multipliers("STN-C0", iterations=3)["localizer"] == 0.03
    with pytest.raises(UsageError, match=r"expected \(iterations, net\)"):
        P.lr_multipliers("STN-C7", iterations=2)


@pytest.mark.network
def test_smoke_steps_on_the_standin_without_nan(real_mnist_dir):
    """Temporary smoke loop: three SGD (Nesterov 0.8) steps, CNN behind an ST at X = 2."""
    torch.manual_seed(0)
    x, y = plankton_data.standin("train", 8, seed=0, cache_dir=real_mnist_dir)
    net = P.classifier(width=0.125, n_classes=10)
    loc = P.localizer(depth=2, net=net)
    params = list(net.parameters()) + list(loc.parameters())
    opt = torch.optim.SGD(params, lr=0.003, momentum=0.8, nesterov=True, weight_decay=2e-4)
    pos = net.st_position(2)
    for _ in range(3):
        h = net.run(x, 0, pos)
        theta = loc(h)
        h = warp_affine(h, theta, h.shape[-2:], method="bilinear", align_corners=False,
                        padding_mode="border")
        logits = net.run(h, pos)
        loss = nn.functional.cross_entropy(logits, y)
        opt.zero_grad()
        loss.backward()
        assert torch.isfinite(loss)
        assert all(torch.isfinite(p.grad).all() for p in params if p.grad is not None)
        assert float(loc.out.weight.grad.abs().sum()) > 0
        opt.step()
