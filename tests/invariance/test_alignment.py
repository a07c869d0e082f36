"""invariance.alignment: E(T_g; Γ, T_h, f), its modes, and its input checks."""

from __future__ import annotations

import math

import pytest
import torch

from invariance.alignment import alignment_error, feature_alignment_error, relative_error
from invariance.extractors import OrientedBank, random_cnn
from sampling import geometry


def _rot(angle, dtype=torch.float64):
    return geometry.params_to_matrix(
        torch.tensor([angle], dtype=dtype), torch.tensor([0.0], dtype=dtype)
    )


def test_identity_gives_zero(dtype):
    g = random_cnn(2, 4, seed=1, dtype=dtype)
    f = torch.rand(3, 1, 24, 24, dtype=dtype)
    e = alignment_error(g, f, geometry.identity(1, dtype=dtype), geometry.identity(1, dtype=dtype))
    assert e.total <= (1e-6 if dtype == torch.float32 else 1e-12)
    assert e.per_channel.shape == (4,) and e.per_image.shape == (3,)
    assert e.region["pixels"] > 0 and e.region["radius_normalized"] == 0.35


def test_wrong_T_g_gives_large_error():
    g = random_cnn(2, 4, seed=1, dtype=torch.float64)
    f = torch.rand(2, 1, 24, 24, dtype=torch.float64)
    e = alignment_error(g, f, _rot(0.5), geometry.identity(1, dtype=torch.float64))
    assert e.total > 0.1


def test_oriented_bank_modes_exact_90():
    """T_h = R(90°), T_g = T_h^{-1}: spatial error large, permutation exact (pixel centres)."""
    bank = OrientedBank((1.0,), dtype=torch.float64)
    f = torch.rand(2, 1, 24, 24, dtype=torch.float64)
    th = _rot(math.pi / 2)
    sp = alignment_error(bank, f, th, geometry.invert(th))
    pe = alignment_error(bank, f, th, geometry.invert(th), mode="permutation")
    mx = alignment_error(bank, f, th, geometry.invert(th), mode="mix")
    assert sp.total > 0.5
    assert pe.total < 1e-9 and mx.total < 1e-6
    assert pe.permutation is not None and sorted(pe.permutation.tolist()) == [0, 1, 2, 3]


def test_relative_error_per_channel_nan_for_dead_channel():
    ref = torch.zeros(1, 2, 4, 4, dtype=torch.float64)
    ref[:, 0] = 1
    total, per_c, per_i = relative_error(ref + 0.1, ref, torch.ones(4, 4, dtype=torch.bool))
    assert math.isnan(float(per_c[1])) and float(per_c[0]) > 0 and per_i.shape == (1,)


def test_bad_mode_and_shapes():
    x = torch.rand(1, 2, 8, 8)
    with pytest.raises(ValueError, match="mode"):
        feature_alignment_error(x, x, None, mode="rotate")
    with pytest.raises(ValueError, match="transformed"):
        feature_alignment_error(torch.rand(1, 3, 8, 8), x, None)


def test_gradcheck_error_wrt_T_g():
    """The refinement differentiates E through the bilinear warp: check it in float64,
    with sample points kept off the pixel lattice."""
    from invariance.warps import central_mask, transform

    f = torch.rand(1, 2, 10, 10, dtype=torch.float64)
    ref = torch.rand(1, 2, 10, 10, dtype=torch.float64)
    mask = central_mask(10, 10, 0.6)
    m0 = geometry.params_to_matrix(
        torch.tensor([0.13], dtype=torch.float64),
        torch.tensor([0.07], dtype=torch.float64),
        0.03,
        torch.tensor([[0.011, -0.017]], dtype=torch.float64),
    )

    def err(m):
        return relative_error(transform(f, m), ref, mask)[0]

    assert torch.autograd.gradcheck(err, (m0.clone().requires_grad_(True),))
