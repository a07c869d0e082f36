"""invariance.extractors: INV-1 exactness on random CNNs, the oriented bank's exact channel
shift (and a broken bank's), the isotropic bank's invariance, hooks."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
from hypothesis import given, strategies as st

from invariance.extractors import FeatureHook, IsotropicBank, OrientedBank, random_cnn


@st.composite
def cnn_and_shift(draw):
    depth = draw(st.integers(1, 3))
    pools = tuple(sorted(draw(st.sets(st.integers(0, depth - 1), max_size=2))))
    stride = 2 ** len(pools)
    shift = (stride * draw(st.integers(-3, 3)), stride * draw(st.integers(-3, 3)))
    return depth, pools, shift, draw(st.integers(0, 2**31 - 1))


@given(cnn_and_shift())
def test_inv1_circular_cnn_exact_for_integer_shifts(case):
    depth, pools, (dy, dx), seed = case
    net = random_cnn(
        depth, 4, pool_after=pools, padding_mode="circular", seed=seed, dtype=torch.float64
    )
    f = torch.rand(2, 1, 16, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    ref = net(f)
    moved = net(torch.roll(f, (dy, dx), dims=(-2, -1)))
    s = net.stride
    back = torch.roll(moved, (-dy // s, -dx // s), dims=(-2, -1))
    assert float((back - ref).abs().max()) <= 1e-12 * max(float(ref.abs().max()), 1.0)


def test_inv1_float32_exact_to_float_precision():
    net = random_cnn(3, 4, pool_after=(1,), padding_mode="circular", seed=3)
    f = torch.rand(2, 1, 16, 16)
    back = torch.roll(net(torch.roll(f, (4, -2), dims=(-2, -1))), (-2, 1), dims=(-2, -1))
    torch.testing.assert_close(back, net(f), rtol=1e-5, atol=1e-6)


def test_inv1_breaks_with_zero_padding():
    net = random_cnn(2, 4, padding_mode="zeros", seed=0, dtype=torch.float64)
    f = torch.rand(1, 1, 16, 16, dtype=torch.float64)
    back = torch.roll(net(torch.roll(f, (3, 0), dims=(-2, -1))), (-3, 0), dims=(-2, -1))
    assert float((back - net(f)).abs().max()) > 1e-3


def test_inv1_breaks_for_shift_not_multiple_of_stride():
    net = random_cnn(2, 4, pool_after=(0,), padding_mode="circular", seed=0, dtype=torch.float64)
    f = torch.rand(1, 1, 16, 16, dtype=torch.float64)
    moved = net(torch.roll(f, (1, 0), dims=(-2, -1)))
    assert (
        min(float((torch.roll(moved, (-k, 0), dims=(-2, -1)) - net(f)).abs().max()) for k in (0, 1))
        > 1e-3
    )


@pytest.mark.parametrize("k", [1, 2, 3])
def test_oriented_bank_rot90_permutes_channels_exactly(k, dtype):
    bank = OrientedBank((1.0, 2.0), dtype=dtype)
    f = torch.rand(2, 1, 20, 20, dtype=dtype)
    back = torch.rot90(bank(torch.rot90(f, k, dims=(-2, -1))), -k, dims=(-2, -1))
    perm = bank.orientation_shift(k)
    torch.testing.assert_close(
        back[:, perm], bank(f), rtol=0, atol=1e-6 if dtype == torch.float32 else 1e-14
    )


def test_broken_bank_does_not_match_its_declared_shift():
    bank = OrientedBank((1.0,), direction=-1, dtype=torch.float64)
    f = torch.rand(1, 1, 20, 20, dtype=torch.float64)
    back = torch.rot90(bank(torch.rot90(f, 1, dims=(-2, -1))), -1, dims=(-2, -1))
    assert float((back[:, bank.orientation_shift(1)] - bank(f)).abs().max()) > 1e-3


def test_isotropic_bank_rot90_invariant(dtype):
    bank = IsotropicBank((1.0, 2.0), dtype=dtype)
    f = torch.rand(1, 1, 20, 20, dtype=dtype)
    back = torch.rot90(bank(torch.rot90(f, 1, dims=(-2, -1))), -1, dims=(-2, -1))
    torch.testing.assert_close(
        back, bank(f), rtol=0, atol=1e-6 if dtype == torch.float32 else 1e-14
    )


def test_banks_move_with_to():
    bank = OrientedBank((1.0,)).to(torch.float64)
    assert bank.weight.dtype == torch.float64


def test_feature_hook_returns_layer_output():
    net = random_cnn(3, 4, seed=0)
    hook = FeatureHook(net, "2")  # the second conv
    f = torch.rand(1, 1, 12, 12)
    torch.testing.assert_close(hook(f), net[:3](f))
    with pytest.raises(ValueError, match="layer"):
        FeatureHook(net, "nope")
    with pytest.raises(ValueError, match="layer"):
        FeatureHook(nn.Sequential(nn.Flatten()), "0")(f)


@pytest.mark.parametrize(
    "kw, arg",
    [
        ({"depth": 0}, "depth"),
        ({"kernel_size": 4}, "kernel_size"),
        ({"padding_mode": "reflect"}, "padding_mode"),
        ({"pool_after": (5,)}, "pool_after"),
    ],
)
def test_random_cnn_rejects(kw, arg):
    with pytest.raises(ValueError, match=arg):
        random_cnn(**kw)


def test_bank_rejects_bad_input():
    with pytest.raises(ValueError, match="direction"):
        OrientedBank(direction=2)
    with pytest.raises(ValueError, match="x"):
        OrientedBank()(torch.rand(1, 3, 8, 8))


def test_every_extractor_is_a_feature_extractor_and_a_plain_module_is_not():
    import torch.nn as nn

    from invariance import FeatureExtractor
    from invariance.extractors import FeatureHook, IsotropicBank, OrientedBank, random_cnn

    for net in (random_cnn(2, 4, seed=0), OrientedBank(), IsotropicBank(),
                FeatureHook(nn.Sequential(nn.Conv2d(1, 2, 3)), "0")):
        assert isinstance(net, FeatureExtractor), type(net).__name__
    assert not isinstance(nn.Sequential(nn.ReLU()), FeatureExtractor)  # no stride: refused
