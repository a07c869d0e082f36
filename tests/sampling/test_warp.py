"""The one warp (sampling/warp.py): grid equals PyTorch's, both conventions, vmap, pixel units."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from torch.func import vmap

from sampling import geometry, warp_affine
from sampling.warp import affine_grid, base_coordinates
from tests.tolerances import tol

SEEDS = st.integers(0, 2**31 - 1)


@pytest.mark.parametrize("align_corners", [True, False])
@given(seed=SEEDS, h=st.integers(1, 9), w=st.integers(1, 9))
def test_affine_grid_equals_torch(align_corners, seed, h, w):
    theta = torch.randn(3, 2, 3, generator=torch.Generator().manual_seed(seed),
                        dtype=torch.float64)
    ref = F.affine_grid(theta, [3, 1, h, w], align_corners=align_corners)
    torch.testing.assert_close(affine_grid(theta, (h, w), align_corners=align_corners), ref,
                               **tol(torch.float64))
    # (N, C, h, w) sizes as F.affine_grid takes them give the same grid
    torch.testing.assert_close(affine_grid(theta, (3, 1, h, w), align_corners=align_corners),
                               ref, **tol(torch.float64))


@pytest.mark.parametrize("align_corners", [True, False])
def test_affine_grid_tells_the_conventions_apart(align_corners):
    """The comparison above can fail: the other convention gives another grid."""
    theta = torch.eye(2, 3, dtype=torch.float64)[None]
    other = F.affine_grid(theta, [1, 1, 5, 5], align_corners=not align_corners)
    assert not torch.allclose(affine_grid(theta, (5, 5), align_corners=align_corners), other)


def test_affine_grid_rows_are_y_and_columns_are_x():
    """A transposed grid (x and y swapped) would pass an identity test; a shear does not."""
    shear = torch.tensor([[[1.0, 0.5, 0.0], [0.0, 1.0, 0.0]]], dtype=torch.float64)
    ref = F.affine_grid(shear, [1, 1, 4, 6], align_corners=False)
    torch.testing.assert_close(affine_grid(shear, (4, 6)), ref, **tol(torch.float64))
    assert affine_grid(shear, (4, 6)).shape == (1, 4, 6, 2)


def test_affine_grid_under_vmap_equals_loop():
    theta = torch.randn(4, 2, 2, 3, generator=torch.Generator().manual_seed(0))
    batched = vmap(lambda t: affine_grid(t, (5, 7), align_corners=True))(theta)
    loop = torch.stack([affine_grid(t, (5, 7), align_corners=True) for t in theta])
    torch.testing.assert_close(batched, loop, rtol=0, atol=0)


@pytest.mark.parametrize("align_corners", [True, False])
def test_base_coordinates_are_pixel_centres(align_corners):
    c = base_coordinates(4, align_corners=align_corners, dtype=torch.float64)
    px = geometry.normalized_to_pixel(torch.stack([c, c], -1), (4, 4),
                                      align_corners=align_corners)[:, 0]
    torch.testing.assert_close(px, torch.arange(4, dtype=torch.float64), **tol(torch.float64))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("align_corners", [True, False])
def test_warp_affine_equals_torch_pipeline(dtype, align_corners):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 3, 9, 11, generator=g, dtype=dtype)
    theta = geometry.params_to_matrix(torch.tensor([0.3, -1.0], dtype=dtype),
                                      torch.tensor([0.1, -0.2], dtype=dtype), 0.0,
                                      torch.tensor([[0.1, 0.0], [0.0, -0.2]], dtype=dtype))
    ref = F.grid_sample(x, F.affine_grid(theta, [2, 3, 7, 5], align_corners=align_corners),
                        align_corners=align_corners, padding_mode="border")
    out = warp_affine(x, theta, (7, 5), align_corners=align_corners, padding_mode="border")
    torch.testing.assert_close(out, ref, **tol(dtype))


def test_warp_affine_broadcasts_one_matrix_and_keeps_size():
    x = torch.randn(3, 1, 6, 6, dtype=torch.float64)
    m = torch.eye(2, 3, dtype=torch.float64)
    torch.testing.assert_close(warp_affine(x, m), x, **tol(torch.float64))


def test_pixel_matrix_round_trip():
    m = torch.randn(2, 2, 3, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    for ac in (True, False):
        px = geometry.normalized_matrix_to_pixel(m, (9, 9), (5, 5), align_corners=ac)
        back = geometry.pixel_matrix_to_normalized(px, (9, 9), (5, 5), align_corners=ac)
        torch.testing.assert_close(back, m, **tol(torch.float64))


def test_pixel_matrix_translation_is_in_pixels():
    """One output pixel to the right samples one input pixel to the right (unit scale)."""
    shift = torch.tensor([[[1.0, 0.0, 2.0], [0.0, 1.0, 0.0]]], dtype=torch.float64)  # +2 px
    theta = geometry.pixel_matrix_to_normalized(shift, (8, 8), (8, 8))
    x = torch.arange(64, dtype=torch.float64).view(1, 1, 8, 8)
    out = warp_affine(x, theta)
    torch.testing.assert_close(out[0, 0, :, :6], x[0, 0, :, 2:], **tol(torch.float64))


@pytest.mark.parametrize("bad,match", [
    (dict(size=(0, 3)), "size"),
    (dict(size=(2.5, 3)), "size"),
])
def test_affine_grid_rejects_bad_size(bad, match):
    with pytest.raises(ValueError, match=match):
        affine_grid(torch.eye(2, 3)[None], bad["size"])


def test_warp_affine_rejects_mismatched_batch():
    with pytest.raises(ValueError, match="input_from_output"):
        warp_affine(torch.zeros(3, 1, 4, 4), torch.eye(2, 3).expand(2, 2, 3))


def test_grid_is_float32_under_autocast():
    """A bf16 matrix from an autocast localizer still gives float32 grid locations."""
    x = torch.rand(2, 1, 112, 112, generator=torch.Generator().manual_seed(0))
    theta = torch.eye(2, 3).expand(2, 2, 3).to(torch.bfloat16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = warp_affine(x, theta, align_corners=True, padding_mode="border")
    assert out.dtype == torch.float32
    # derived: a float32 grid location is off by <= (W - 1) / 2 * 4 eps pixels (linspace and
    # unnormalization roundings), i.e. 2.6e-5 px at W = 112; the value moves by that times
    # the neighbour difference (<= 1 for x in [0, 1]).
    torch.testing.assert_close(out, x, rtol=0, atol=(112 - 1) / 2 * 4 * 2.0**-23)
    # the check can fail: a bf16 grid misses the pixel centres
    g16 = affine_grid(theta[:, :, :].to(torch.bfloat16), (112, 112), align_corners=True)
    assert (g16.float() - affine_grid(theta.float(), (112, 112), align_corners=True)
            ).abs().max() > 1e-3
