"""proofs.reference.linearized_numpy: an independent NumPy 003 Eqs. 2-9 against the sampler.

The reference shares only the standard normal variates with :mod:`sampling.linearized`
(:func:`sampling.linearized.auxiliary_variates`). On a non-affine image both the eager
path and the fused CPU kernel must equal it; plain bilinear's gradient must not (so a
check built on the reference fails when bilinear is swapped in).

Tolerances: ``REF_RTOL = 1e-9`` relative to the largest gradient, derived: both sides are
float64 sums of ``K + 2`` terms and a 2x2 solve of a system with condition number
``<= 1e3`` here (sigma >= 1 px footprints, eps > 0), so their rounding differs by about
``1e3 * (K + 5) * eps_64 ~ 1e-11`` relative; 1e-9 leaves a factor 100 for unlucky sums.
``CLEAR = 1e-2`` (a priori): a gradient that differs from the reference by at least 1 %
of its scale is "clearly different", five orders above ``REF_RTOL``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import sampling.linearized as lin
from proofs.reference import linearized_numpy as ref
from sampling import _ext

REF_RTOL = 1e-9
CLEAR = 1e-2
K = 8


def _quadratic_image(n=2, c=2, size=20):
    """A smooth non-affine image (bilinear is exact only on affine ones)."""
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, size, dtype=torch.float64),
                            torch.linspace(-1, 1, size, dtype=torch.float64), indexing="ij")
    base = xs**2 + 0.5 * xs * ys - ys**2 + 0.3 * xs
    img = torch.stack([base, -0.5 * base + ys**3], 0)[:c]  # (C, H, W)
    return img.expand(n, -1, -1, -1).contiguous()


def _grid(theta, h, w, align_corners):
    return F.affine_grid(theta, (theta.shape[0], 1, h, w), align_corners=align_corners)


def _theta(scale, n=2):
    th = torch.tensor([[scale, 0.2 * scale, 0.05], [-0.1 * scale, 0.9 * scale, 0.02]],
                      dtype=torch.float64)
    return th.expand(n, 2, 3).contiguous()


def _agrees(candidate, expected) -> bool:
    """The check a claim would run: ``|candidate - expected| <= REF_RTOL * max|expected|``."""
    scale = float(np.abs(expected).max())
    return bool(np.abs(np.asarray(candidate) - expected).max() <= REF_RTOL * scale)


def _fit(img, grid, go, *, seed, eager, sigma=1.0, eps=lin.DEFAULT_EPS, align_corners):
    out = lin.fit_local_gradient(img, grid, go, seed=seed, num_samples=K, sigma=sigma,
                                 collapse_noise=True, eps=eps, align_corners=align_corners,
                                 padding_mode="zeros", diagnostics=eager)
    return (out.grad_grid if eager else out).numpy()


def _reference(img, grid, go, *, seed, sigma=1.0, eps=lin.DEFAULT_EPS, align_corners,
               mask=True):
    _, h, w, _ = grid.shape
    v = lin.auxiliary_variates(seed, K, h, w, dtype=torch.float64).numpy()
    return ref.fitted_grid_gradient(img.numpy(), grid.numpy(), go.numpy(), v, sigma=sigma,
                                    eps=eps, align_corners=align_corners, mask=mask)


def _bilinear_grad(img, grid, go, align_corners):
    g = grid.clone().requires_grad_(True)
    (F.grid_sample(img, g, mode="bilinear", padding_mode="zeros",
                   align_corners=align_corners) * go).sum().backward()
    return g.grad.numpy()


@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("sigma, eps", [(1.0, lin.DEFAULT_EPS), (2.0, 0.5)])
def test_reference_equals_eager_and_fused_on_a_non_affine_image(align_corners, sigma, eps):
    img = _quadratic_image()
    grid = _grid(_theta(0.6), 7, 9, align_corners)  # anisotropic: 9 columns, 7 rows
    go = torch.randn(2, 2, 7, 9, generator=torch.Generator().manual_seed(1),
                     dtype=torch.float64)
    r = _reference(img, grid, go, seed=12345, sigma=sigma, eps=eps,
                   align_corners=align_corners)
    eager = _fit(img, grid, go, seed=12345, eager=True, sigma=sigma, eps=eps,
                 align_corners=align_corners)
    assert _agrees(eager, r)
    if _ext.load("cpu") is not None:  # the fused kernel, where it builds
        assert _agrees(_fit(img, grid, go, seed=12345, eager=False, sigma=sigma, eps=eps,
                            align_corners=align_corners), r)
    # Plain bilinear is a trivial substitute the same check must refuse.
    bil = _bilinear_grad(img, grid, go, align_corners)
    assert not _agrees(bil, r)
    assert np.abs(bil - r).max() > CLEAR * np.abs(r).max()


def test_reference_sees_the_noise_through_the_seed():
    """Another seed is another gradient: the comparison depends on the handed-in offsets."""
    img, ac = _quadratic_image(), False
    grid = _grid(_theta(0.6), 7, 9, ac)
    go = torch.ones(2, 2, 7, 9, dtype=torch.float64)
    r = _reference(img, grid, go, seed=1, align_corners=ac)
    assert _agrees(_fit(img, grid, go, seed=1, eager=True, align_corners=ac), r)
    assert not _agrees(_fit(img, grid, go, seed=2, eager=True, align_corners=ac), r)


def test_draw_seed_reproduces_a_call_of_linearized_grid_sample():
    img, ac = _quadratic_image(), False
    grid = _grid(_theta(0.6), 7, 9, ac).requires_grad_(True)
    go = torch.randn(2, 2, 7, 9, generator=torch.Generator().manual_seed(3),
                     dtype=torch.float64)
    out = lin.linearized_grid_sample(img, grid, generator=torch.Generator().manual_seed(5))
    (out * go).sum().backward()
    seed = lin.draw_seed(torch.Generator().manual_seed(5))
    assert _agrees(grid.grad.numpy(), _reference(img, grid.detach(), go, seed=seed,
                                                 align_corners=ac))


@pytest.mark.parametrize("align_corners", [False, True])
def test_masking_changes_the_result_on_a_partly_out_of_bounds_footprint(align_corners):
    """A grid reaching past the border: the masked reference equals the sampler, the
    unmasked one (zero-padded auxiliaries kept) does not."""
    img = _quadratic_image() + 1.0  # nonzero at the border, so zero padding is a jump
    grid = _grid(_theta(1.05), 7, 9, align_corners)
    go = torch.ones(2, 2, 7, 9, dtype=torch.float64)
    v = lin.auxiliary_variates(7, K, 7, 9, dtype=torch.float64).numpy()
    r, _, count = ref.fitted_grid_gradient(img.numpy(), grid.numpy(), go.numpy(), v,
                                           align_corners=align_corners,
                                           return_diagnostics=True)
    assert (count < K).any() and (count > 0).any()  # partly out of bounds
    eager = lin.fit_local_gradient(img, grid, go, seed=7, num_samples=K, sigma=1.0,
                                   collapse_noise=True, eps=lin.DEFAULT_EPS,
                                   align_corners=align_corners, padding_mode="zeros",
                                   diagnostics=True)
    np.testing.assert_array_equal(eager.count.numpy(), count)
    assert _agrees(eager.grad_grid.numpy(), r)
    if _ext.load("cpu") is not None:
        assert _agrees(_fit(img, grid, go, seed=7, eager=False,
                            align_corners=align_corners), r)
    unmasked = _reference(img, grid, go, seed=7, align_corners=align_corners, mask=False)
    assert np.abs(unmasked - r).max() > CLEAR * np.abs(r).max()
    assert not _agrees(eager.grad_grid.numpy(), unmasked)


def test_reference_bilinear_gradient_matches_torch():
    """The contrast gradient itself is right (else "differs from bilinear" means nothing)."""
    img, ac = _quadratic_image(), True
    grid = _grid(_theta(0.7), 5, 6, ac)
    go = torch.randn(2, 2, 5, 6, generator=torch.Generator().manual_seed(4),
                     dtype=torch.float64)
    b = ref.bilinear_grid_gradient(img.numpy(), grid.numpy(), go.numpy(), align_corners=ac)
    assert _agrees(b, _bilinear_grad(img, grid, go, ac))


def test_reference_is_exact_on_an_affine_image():
    """On an affine image with eps = 0 the fit recovers the exact gradient (Eq. 2)."""
    ys, xs = torch.meshgrid(torch.arange(12.0, dtype=torch.float64),
                            torch.arange(10.0, dtype=torch.float64), indexing="ij")
    img = (2.0 * xs - 3.0 * ys + 1.0)[None, None]  # d/dpx = 2, d/dpy = -3
    grid = _grid(_theta(0.5, n=1), 4, 4, False)
    v = lin.auxiliary_variates(9, K, 4, 4, dtype=torch.float64).numpy()
    r = ref.fitted_grid_gradient(img.numpy(), grid.numpy(), np.ones((1, 1, 4, 4)), v, eps=0.0)
    want = np.broadcast_to(np.array([2.0 * 10 / 2, -3.0 * 12 / 2]), r.shape)
    np.testing.assert_allclose(r, want, rtol=REF_RTOL, atol=0)
