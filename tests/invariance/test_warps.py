"""invariance.warps: (T f)(x) = f(T^{-1} x), exact 90° / integer-shift cases, the central region."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, strategies as st

from invariance.warps import central_mask, pixel_centres, region_info, transform, warp
from sampling import geometry
from tests.tolerances import tol


def _rot(angle, dtype, t=(0.0, 0.0)):
    return geometry.params_to_matrix(
        torch.tensor([angle], dtype=dtype),
        torch.tensor([0.0], dtype=dtype),
        0.0,
        torch.tensor([list(t)], dtype=dtype),
    )


def test_identity_is_exact(dtype, device):
    x = torch.rand(2, 3, 9, 9, dtype=dtype, device=device)
    out = warp(x, geometry.identity(1, dtype=dtype, device=device))
    torch.testing.assert_close(out, x, **tol(dtype))


@pytest.mark.parametrize("quarter", [1, 2, 3])
def test_quarter_rotation_matches_rot90(dtype, quarter):
    """T = R(q·90°) in the (x, y) frame equals torch.rot90(x, -q, dims=(-2, -1)) (y points down)."""
    x = torch.rand(2, 1, 8, 8, dtype=dtype)
    out = transform(x, _rot(quarter * math.pi / 2, dtype))
    torch.testing.assert_close(out, torch.rot90(x, -quarter, dims=(-2, -1)), **tol(dtype))


def test_quarter_rotation_wrong_direction_differs():
    x = torch.rand(1, 1, 8, 8, dtype=torch.float64)
    out = transform(x, _rot(math.pi / 2, torch.float64))
    assert (out - torch.rot90(x, 1, dims=(-2, -1))).abs().max() > 0.1


@given(dx=st.integers(-3, 3), dy=st.integers(-3, 3))
def test_integer_translation_is_roll_inside(dx, dy):
    """(T f)(x) = f(x - t): a translation by (dx, dy) px moves content by +(dx, dy) px."""
    n = 16
    x = torch.rand(1, 1, n, n, dtype=torch.float64)
    out = transform(x, _rot(0.0, torch.float64, t=(2 * dx / n, 2 * dy / n)))
    rolled = torch.roll(x, (dy, dx), dims=(-2, -1))
    inner = (slice(None), slice(None), slice(3, n - 3), slice(3, n - 3))
    torch.testing.assert_close(out[inner], rolled[inner], rtol=0, atol=1e-12)


def test_transform_then_inverse_inside_disk():
    """Interpolated regime: smooth image, central disk, rtol/atol stated."""
    n = 48
    p = pixel_centres(n, n, dtype=torch.float64)
    f = torch.exp(-4 * ((p[..., 0] - 0.1) ** 2 + 2 * (p[..., 1] + 0.05) ** 2))[None, None]
    t = geometry.params_to_matrix(
        torch.tensor([0.4], dtype=torch.float64),
        torch.tensor([0.2], dtype=torch.float64),
        0.1,
        torch.tensor([[0.05, -0.02]], dtype=torch.float64),
    )
    back = transform(transform(f, t), geometry.invert(t))
    mask = central_mask(n, n, 0.5)
    err = (back - f)[..., mask].abs()
    assert float(err.max()) <= 0.02 * float(f.abs().max())


def test_central_mask_and_region():
    m = central_mask(32, 32, 0.5)
    assert m.shape == (32, 32) and m[16, 16] and not m[0, 0]
    info = region_info(m, 0.5)
    assert info["pixels"] == int(m.sum()) and info["radius_pixels"] == 8.0


@pytest.mark.parametrize("radius", [0.0, -0.1, 2.0])
def test_central_mask_rejects_radius(radius):
    with pytest.raises(ValueError, match="radius"):
        central_mask(8, 8, radius)


def test_warp_rejects_bad_matrix():
    with pytest.raises(ValueError, match="input_from_output"):
        warp(torch.rand(2, 1, 4, 4), torch.rand(3, 2, 3))
    with pytest.raises(ValueError, match="x"):
        warp(torch.rand(4, 4), torch.rand(1, 2, 3))
