"""Tests of :mod:`sampling.multiscale` (003 Sec. 6, the multi-scale baseline)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from scipy import ndimage

from sampling.multiscale import PAPER_SIGMAS, gaussian_blur, multiscale_grid_sample
from tests.conftest import DEVICES, DTYPES
from tests.tolerances import tol

DTYPE_DEVICE = pytest.mark.parametrize("dtype, device",
                                       [(dt, dv) for dt in DTYPES for dv in DEVICES])


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_paper_sigmas():
    assert PAPER_SIGMAS == (1.0, 5.0, 10.0)  # 003 Sec. 6 "Baselines"


@DTYPE_DEVICE
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(1, 2), c=st.integers(1, 3),
       size=st.integers(4, 20), align_corners=st.booleans(),
       sigmas=st.lists(st.sampled_from([0.0, 0.7, 1.0, 2.5, 5.0]), min_size=1, max_size=3))
def test_equals_mean_of_blurred_bilinear_samples(seed, n, c, size, align_corners, sigmas,
                                                 dtype, device):
    g = _gen(seed)
    x = torch.rand(n, c, size, size + 2, generator=g, dtype=dtype).to(device)
    grid = (torch.rand(n, 3, 4, 2, generator=g, dtype=dtype) * 2.2 - 1.1).to(device)
    out = multiscale_grid_sample(x, grid, sigmas=sigmas, align_corners=align_corners)
    ref = sum(F.grid_sample(gaussian_blur(x, s), grid, align_corners=align_corners)
              for s in sigmas) / len(sigmas)
    torch.testing.assert_close(out, ref, **tol(dtype))


def test_sigma_zero_is_bilinear():
    x = torch.rand(2, 3, 9, 9, generator=_gen(0), dtype=torch.float64)
    grid = torch.rand(2, 4, 4, 2, generator=_gen(1), dtype=torch.float64) * 2 - 1
    torch.testing.assert_close(multiscale_grid_sample(x, grid, sigmas=(0,)),
                               F.grid_sample(x, grid, align_corners=False))


@pytest.mark.parametrize("sigma", [1.0, 2.5])
def test_blur_matches_scipy_in_the_interior(sigma):
    x = torch.rand(1, 1, 40, 40, generator=_gen(0), dtype=torch.float64)
    ours = gaussian_blur(x, sigma)[0, 0].numpy()
    ref = ndimage.gaussian_filter(x[0, 0].numpy(), sigma, mode="constant", truncate=3.0)
    r = int(np.ceil(3 * sigma))
    np.testing.assert_allclose(ours[r:-r, r:-r], ref[r:-r, r:-r], rtol=1e-2, atol=1e-3)


def test_blur_check_detects_a_wrong_sigma():
    x = torch.rand(1, 1, 40, 40, generator=_gen(0), dtype=torch.float64)
    ours = gaussian_blur(x, 2.0)[0, 0].numpy()
    ref = ndimage.gaussian_filter(x[0, 0].numpy(), 2.5, mode="constant", truncate=3.0)
    with pytest.raises(AssertionError):
        np.testing.assert_allclose(ours[8:-8, 8:-8], ref[8:-8, 8:-8], rtol=1e-2, atol=1e-3)


def test_constant_image_stays_constant_even_with_kernels_wider_than_the_image():
    x = torch.full((1, 2, 6, 5), 3.0, dtype=torch.float64)
    torch.testing.assert_close(gaussian_blur(x, 10.0), x)
    grid = torch.rand(1, 3, 3, 2, generator=_gen(0), dtype=torch.float64) * 1.6 - 0.8
    out = multiscale_grid_sample(x, grid, align_corners=True)
    torch.testing.assert_close(out, torch.full_like(out, 3.0))


def test_gradcheck_input_and_grid():
    x = torch.rand(1, 2, 7, 6, generator=_gen(0), dtype=torch.float64, requires_grad=True)
    grid = torch.rand(1, 3, 2, 2, generator=_gen(1), dtype=torch.float64) * 1.4 - 0.7 + 0.013
    grid.requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda a, b: multiscale_grid_sample(a, b, sigmas=(0.0, 1.0, 2.0)), (x, grid))


def test_coarse_levels_widen_the_gradient_support():
    """A grid point 6 px from a bright dot: bilinear sees nothing, the pyramid does."""
    x = torch.zeros(1, 1, 32, 32, dtype=torch.float64)
    x[0, 0, 16, 16] = 1.0
    grid = torch.tensor([[[[(2 * 10.3 + 1) / 32 - 1, (2 * 16 + 1) / 32 - 1]]]],
                        dtype=torch.float64, requires_grad=True)
    (gb,) = torch.autograd.grad(F.grid_sample(x, grid, align_corners=False).sum(), grid)
    (gm,) = torch.autograd.grad(multiscale_grid_sample(x, grid).sum(), grid)
    assert gb.abs().max() == 0
    assert gm[..., 0].item() > 0  # points towards the dot (+x)


@pytest.mark.parametrize("kw, name", [
    (dict(sigmas=()), "sigmas"), (dict(sigmas=(1, -1)), "sigmas"),
    (dict(sigmas=3), "sigmas"), (dict(sigmas=(float("nan"),)), "sigmas"),
    (dict(padding_mode="wrap"), "padding_mode"),
])
def test_bad_options_raise_value_error(kw, name):
    with pytest.raises(ValueError, match=name):
        multiscale_grid_sample(torch.rand(1, 1, 4, 4), torch.zeros(1, 2, 2, 2), **kw)


def test_bad_shapes_raise_value_error():
    with pytest.raises(ValueError, match="multiscale_grid_sample: expected grid"):
        multiscale_grid_sample(torch.rand(1, 1, 4, 4), torch.zeros(1, 2, 2, 3))
    with pytest.raises(ValueError, match="dtype"):
        multiscale_grid_sample(torch.rand(1, 1, 4, 4), torch.zeros(1, 2, 2, 2,
                                                                    dtype=torch.float64))
