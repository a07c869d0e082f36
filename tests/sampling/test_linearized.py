"""Tests of :mod:`sampling.linearized` (003 Sec. 4-5, 6.1)."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from sampling.linearized import (
    DEFAULT_EPS,
    fit_local_gradient,
    grid_footprint,
    linearized_grid_sample,
)
from tests.conftest import AFFINE_GRID_FALLBACK, DEVICES, DTYPES
from tests.tolerances import tol

# hypothesis tests take dtype/device by parametrize (fixtures are not reset per example)
DTYPE_DEVICE = pytest.mark.parametrize("dtype, device",
                                       [(dt, dv) for dt in DTYPES for dv in DEVICES])


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _affine_image(n, c, h, w, coef, dtype, device):
    """``I_c(u, v) = a_c u + b_c v + d_c`` in pixel coordinates; ``coef (C, 3)``."""
    v, u = torch.meshgrid(torch.arange(h, dtype=dtype), torch.arange(w, dtype=dtype),
                          indexing="ij")
    img = coef[:, 0, None, None] * u + coef[:, 1, None, None] * v + coef[:, 2, None, None]
    return img.expand(n, c, h, w).contiguous().to(device)


def _affine_grid(n, h, w, angle, scale, shift, dtype, device):
    th = torch.tensor([[scale * math.cos(angle), -scale * math.sin(angle), shift[0]],
                       [scale * math.sin(angle), scale * math.cos(angle), shift[1]]],
                      dtype=dtype)
    return F.affine_grid(th.expand(n, 2, 3), (n, 1, h, w), align_corners=False).to(device)


def _analytic_grid_grad(coef, grad_out, in_hw, align_corners):
    """``sum_c g_c (a_c du/dx, b_c dv/dy)``: the exact gradient on an affine image."""
    h_in, w_in = in_hw
    ux = (w_in - 1) / 2 if align_corners else w_in / 2
    uy = (h_in - 1) / 2 if align_corners else h_in / 2
    gx = torch.einsum("nchw,c->nhw", grad_out, coef[:, 0].to(grad_out)) * ux
    gy = torch.einsum("nchw,c->nhw", grad_out, coef[:, 1].to(grad_out)) * uy
    return torch.stack([gx, gy], -1)


def _rel_err(a, b):
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-30))


# --------------------------------------------------------------------------------- forward

@DTYPE_DEVICE
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(1, 3), c=st.integers(1, 3),
       h_in=st.integers(2, 12), h_out=st.integers(1, 9),
       align_corners=st.booleans(), padding=st.sampled_from(["zeros", "border", "reflection"]))
def test_forward_equals_bilinear(seed, n, c, h_in, h_out, align_corners, padding, dtype, device):
    g = _gen(seed)
    x = torch.rand(n, c, h_in, h_in + 1, generator=g, dtype=dtype).to(device)
    grid = (torch.rand(n, h_out, h_out + 2, 2, generator=g, dtype=dtype) * 2.4 - 1.2).to(device)
    out = linearized_grid_sample(x, grid, align_corners=align_corners, padding_mode=padding,
                                 generator=_gen(seed))
    ref = F.grid_sample(x, grid, mode="bilinear", padding_mode=padding,
                        align_corners=align_corners)
    torch.testing.assert_close(out, ref, **tol(dtype))


def test_forward_check_detects_a_shifted_grid():
    x = torch.rand(1, 1, 8, 8, generator=_gen(1), dtype=torch.float64)
    grid = torch.rand(1, 4, 4, 2, generator=_gen(2), dtype=torch.float64) * 1.6 - 0.8
    out = linearized_grid_sample(x, grid + 0.25, generator=_gen(0))  # half a pixel off
    with pytest.raises(AssertionError):
        torch.testing.assert_close(out, F.grid_sample(x, grid, align_corners=False),
                                   **tol(torch.float64))


# ----------------------------------------------------------------- gradient on affine images

@st.composite
def affine_cases(draw):
    return dict(
        seed=draw(st.integers(0, 2**31 - 1)),
        k=draw(st.integers(3, 12)),
        c=draw(st.integers(1, 3)),
        angle=draw(st.floats(-math.pi, math.pi)),
        # In bounds: the grid stays within |x| <= 0.3 sqrt(2) + 0.1 < 0.53, leaving >= 15 px
        # of a 64 px image to the border, against auxiliary spreads <= 1.5 * 4.8 px + 1 px.
        scale=draw(st.floats(0.05, 0.3)),
        shift=(draw(st.floats(-0.1, 0.1)), draw(st.floats(-0.1, 0.1))),
        h_out=draw(st.integers(4, 9)),
        sigma=draw(st.sampled_from([None, 0.5, 1.5])),
        collapse=draw(st.booleans()),
        align_corners=draw(st.booleans()),
    )


@DTYPE_DEVICE
@given(case=affine_cases())
def test_gradient_on_affine_image_is_exact(case, dtype, device):
    """003 Sec. 4: the fit recovers the true gradient of an affine image (SMP-3)."""
    g = _gen(case["seed"])
    n, c, h_in, w_in = 2, case["c"], 64, 68
    coef = torch.randn(c, 3, generator=g, dtype=torch.float64).to(dtype)
    x = _affine_image(n, c, h_in, w_in, coef, dtype, device)
    grid = _affine_grid(n, case["h_out"], case["h_out"] + 1, case["angle"], case["scale"],
                        case["shift"], dtype, device).requires_grad_(True)
    grad_out = torch.randn(n, c, case["h_out"], case["h_out"] + 1, generator=g,
                           dtype=torch.float64).to(dtype).to(device)
    out = linearized_grid_sample(x, grid, num_samples=case["k"], sigma=case["sigma"],
                                 collapse_noise=case["collapse"], eps=0.0,
                                 align_corners=case["align_corners"], generator=g)
    (grad,) = torch.autograd.grad(out, grid, grad_out)
    expected = _analytic_grid_grad(coef, grad_out, (h_in, w_in), case["align_corners"])
    rtol = 1e-3 if dtype == torch.float32 else 1e-8
    assert _rel_err(grad, expected) <= rtol


def test_default_eps_biases_the_affine_gradient_by_at_most_its_stated_bound():
    dtype = torch.float64
    coef = torch.tensor([[0.7, -1.3, 0.2]], dtype=dtype)
    x = _affine_image(2, 1, 40, 40, coef, dtype, "cpu")
    grid = _affine_grid(2, 6, 6, 0.3, 0.4, (0.0, 0.0), dtype, "cpu").requires_grad_(True)
    grad_out = torch.ones(2, 1, 6, 6, dtype=dtype)
    out = linearized_grid_sample(x, grid, generator=_gen(0))
    (grad,) = torch.autograd.grad(out, grid, grad_out)
    expected = _analytic_grid_grad(coef, grad_out, (40, 40), False)
    err = _rel_err(grad, expected)
    assert 0 < err <= 1e-3  # DEFAULT_EPS = 1e-3 px^2 against >= 1 px^2 of spread


def test_affine_check_detects_a_wrong_unit_convention():
    """The comparison is sharp enough to catch align_corners mixed up (units 20 vs 19.5)."""
    dtype = torch.float64
    coef = torch.tensor([[0.7, -1.3, 0.2]], dtype=dtype)
    x = _affine_image(1, 1, 40, 40, coef, dtype, "cpu")
    grid = _affine_grid(1, 5, 5, 0.2, 0.4, (0.0, 0.0), dtype, "cpu").requires_grad_(True)
    grad_out = torch.ones(1, 1, 5, 5, dtype=dtype)
    out = linearized_grid_sample(x, grid, eps=0.0, align_corners=True, generator=_gen(0))
    (grad,) = torch.autograd.grad(out, grid, grad_out)
    wrong = _analytic_grid_grad(coef, grad_out, (40, 40), align_corners=False)
    assert _rel_err(grad, wrong) > 1e-3


def test_gradient_is_smoothed_under_downsampling():
    """On a non-affine image the fit sees the footprint, not the 4 neighbours (003 Sec. 3)."""
    dtype = torch.float64
    v, u = torch.meshgrid(torch.arange(64, dtype=dtype), torch.arange(64, dtype=dtype),
                          indexing="ij")
    x = (torch.sin(u * 2.5) + 0.05 * u)[None, None]  # fast ripple on a slow ramp
    grid = _affine_grid(1, 8, 8, 0.0, 0.9, (0.0, 0.0), dtype, "cpu").requires_grad_(True)
    lin = torch.autograd.grad(linearized_grid_sample(x, grid, num_samples=64,
                                                     generator=_gen(0)).sum(), grid)[0]
    bil = torch.autograd.grad(F.grid_sample(x, grid, align_corners=False).sum(), grid)[0]
    ramp = 0.05 * 32  # d/dx of the ramp in normalized units
    assert (lin[..., 0] - ramp).abs().mean() < 0.5 * (bil[..., 0] - ramp).abs().mean()


# ----------------------------------------------------------------------- masking, stability

def test_all_out_of_bounds_gives_exactly_zero_gradient(dtype, device):
    x = torch.rand(2, 3, 10, 10, generator=_gen(0), dtype=dtype).to(device)
    grid = torch.full((2, 4, 5, 2), 7.0, dtype=dtype, device=device)
    grid += torch.rand(2, 4, 5, 2, generator=_gen(1), dtype=dtype).to(device)
    grid.requires_grad_(True)
    x.requires_grad_(True)
    out = linearized_grid_sample(x, grid, generator=_gen(2))
    gi, gg = torch.autograd.grad(out, (x, grid), torch.ones_like(out))
    assert torch.equal(gg, torch.zeros_like(gg))
    assert torch.equal(gi, torch.zeros_like(gi))


def test_out_of_bound_auxiliaries_are_masked():
    """A pixel next to a zero-padded border still gets the interior gradient (6.1)."""
    dtype = torch.float64
    coef = torch.tensor([[1.0, 2.0, 5.0]], dtype=dtype)
    x = _affine_image(1, 1, 16, 16, coef, dtype, "cpu")
    # Centre pixel coordinate 0.3: about half of the auxiliaries fall off the left edge.
    grid = torch.tensor([[[[(2 * 0.3 + 1) / 16 - 1, 0.0]]]], dtype=dtype, requires_grad=True)
    out = linearized_grid_sample(x, grid, num_samples=32, eps=0.0, generator=_gen(0))
    (gg,) = torch.autograd.grad(out, grid, torch.ones_like(out))
    torch.testing.assert_close(gg, torch.tensor([[[[8.0, 16.0]]]], dtype=dtype))
    fit = fit_local_gradient(x, grid.detach(), torch.ones_like(out), seed=0, num_samples=32,
                             sigma=1.0, collapse_noise=True, eps=0.0, align_corners=False,
                             padding_mode="zeros", diagnostics=True)
    assert 0 < fit.count.item() < 32  # some, not all, were masked


def test_masking_check_detects_unmasked_padding(monkeypatch):
    """With the mask switched off, zero padding biases the gradient: the test above can fail."""
    import sampling.linearized as lin

    monkeypatch.setattr(lin, "_stencil_bound", lambda size, align_corners: 10.0)
    dtype = torch.float64
    coef = torch.tensor([[1.0, 2.0, 5.0]], dtype=dtype)
    x = _affine_image(1, 1, 16, 16, coef, dtype, "cpu")
    grid = torch.tensor([[[[(2 * 0.3 + 1) / 16 - 1, 0.0]]]], dtype=dtype, requires_grad=True)
    out = linearized_grid_sample(x, grid, num_samples=32, eps=0.0, generator=_gen(0))
    (gg,) = torch.autograd.grad(out, grid, torch.ones_like(out))
    assert (gg - torch.tensor([[[[8.0, 16.0]]]], dtype=dtype)).abs().max() > 1.0


@pytest.mark.parametrize("case", ["zoom", "degenerate", "k1", "thin", "single"])
@pytest.mark.parametrize("collapse", [True, False])
@pytest.mark.parametrize("eps", [0.0, DEFAULT_EPS])
def test_never_nan_or_inf(case, collapse, eps, dtype):
    x = torch.rand(2, 2, 12, 12, generator=_gen(0), dtype=dtype)
    k = 8
    if case == "zoom":  # extreme zoom-in: the whole output covers 1e-5 of an input pixel
        grid = _affine_grid(2, 6, 6, 0.4, 1e-6, (0.01, 0.02), dtype, "cpu")
    elif case == "degenerate":  # every output pixel samples the same point
        grid = torch.full((2, 5, 5, 2), 0.1, dtype=dtype)
    elif case == "k1":
        grid = _affine_grid(2, 6, 6, 0.4, 0.8, (0.0, 0.0), dtype, "cpu")
        k = 1
    elif case == "thin":  # h = 1, no row differences
        grid = _affine_grid(2, 1, 7, 0.4, 0.8, (0.0, 0.0), dtype, "cpu")
    else:
        grid = torch.zeros(2, 1, 1, 2, dtype=dtype)
    grid.requires_grad_(True)
    out = linearized_grid_sample(x, grid, num_samples=k, collapse_noise=collapse, eps=eps,
                                 generator=_gen(1))
    (gg,) = torch.autograd.grad(out, grid, torch.ones_like(out))
    assert torch.isfinite(gg).all()


def test_collapse_noise_keeps_the_fit_conditioned_under_zoom_in():
    """003 Sec. 5: without the noise the normal matrix degenerates (SMP-5)."""
    dtype = torch.float64
    x = torch.rand(1, 1, 16, 16, generator=_gen(0), dtype=dtype)
    grid = _affine_grid(1, 8, 8, 0.3, 0.01, (0.0, 0.0), dtype, "cpu")  # 100x zoom-in
    kw = dict(seed=3, num_samples=8, sigma=1.0, eps=0.0, align_corners=False,
              padding_mode="zeros", diagnostics=True)
    g = torch.ones(1, 1, 8, 8, dtype=dtype)
    without = fit_local_gradient(x, grid, g, collapse_noise=False, **kw).min_eigenvalue()
    with_ = fit_local_gradient(x, grid, g, collapse_noise=True, **kw).min_eigenvalue()
    assert without.max() < 1e-2  # (footprint 0.08 px)^2 * K
    assert with_.min() > 0.1  # about K * (1 px)^2


# ------------------------------------------------------------- input gradient, determinism

def test_input_gradient_is_bilinears(dtype, device):
    x = torch.rand(2, 3, 9, 8, generator=_gen(0), dtype=dtype).to(device).requires_grad_(True)
    grid = (torch.rand(2, 5, 4, 2, generator=_gen(1), dtype=dtype) * 2.2 - 1.1).to(device)
    w = torch.randn(2, 3, 5, 4, generator=_gen(2), dtype=dtype).to(device)
    for pad in ("zeros", "border", "reflection"):
        (gl,) = torch.autograd.grad(linearized_grid_sample(x, grid, padding_mode=pad,
                                                           generator=_gen(3)), x, w)
        (gb,) = torch.autograd.grad(F.grid_sample(x, grid, padding_mode=pad,
                                                  align_corners=False), x, w)
        torch.testing.assert_close(gl, gb, **tol(dtype))


def test_gradcheck_input_gradient():
    """The input gradient is deterministic: gradcheck it (float64, off the lattice)."""
    x = torch.rand(1, 2, 5, 6, generator=_gen(0), dtype=torch.float64, requires_grad=True)
    grid = torch.rand(1, 3, 4, 2, generator=_gen(1), dtype=torch.float64) * 1.6 - 0.8
    grid = grid + 0.013  # keep samples off pixel centres
    assert torch.autograd.gradcheck(
        lambda inp: linearized_grid_sample(inp, grid, generator=_gen(2)), (x,))


def test_gradcheck_detects_the_fitted_grid_gradient_is_not_the_bilinear_derivative():
    """The grid gradient is by design not the derivative of the forward value."""
    x = torch.rand(1, 1, 6, 6, generator=_gen(0), dtype=torch.float64)
    grid = (torch.rand(1, 2, 2, 2, generator=_gen(1), dtype=torch.float64) * 1.2 - 0.6 + 0.013)
    grid.requires_grad_(True)
    assert not torch.autograd.gradcheck(
        lambda g: linearized_grid_sample(x, g, generator=_gen(2)), (grid,), raise_exception=False)


def test_reproducible_with_a_generator():
    x = torch.rand(2, 1, 12, 12, generator=_gen(0))
    grid = _affine_grid(2, 5, 5, 0.1, 0.7, (0.0, 0.0), torch.float32, "cpu").requires_grad_()

    def grad(seed):
        out = linearized_grid_sample(x, grid, generator=_gen(seed))
        return torch.autograd.grad(out.sum(), grid)[0]

    assert torch.equal(grad(5), grad(5))
    assert not torch.equal(grad(5), grad(6))


def test_noise_is_shared_across_the_batch():
    """Documented: identical images in a batch get identical fitted gradients."""
    x = torch.rand(1, 1, 12, 12, generator=_gen(0)).expand(3, 1, 12, 12)
    grid = _affine_grid(3, 5, 5, 0.1, 0.7, (0.0, 0.0), torch.float32, "cpu").requires_grad_()
    gg = torch.autograd.grad(linearized_grid_sample(x, grid, generator=_gen(1)).sum(), grid)[0]
    assert torch.equal(gg[0], gg[1]) and torch.equal(gg[0], gg[2])


@pytest.mark.parametrize("tile", [50, 10])  # 10 < h * w = 42: one auxiliary per tile
@pytest.mark.parametrize("n", [1, 40])
def test_tiling_does_not_change_the_result(n, tile, monkeypatch, device):
    import sampling.linearized as lin

    x = torch.rand(n, 2, 10, 10, generator=_gen(0), dtype=torch.float64).to(device)
    grid = _affine_grid(n, 6, 7, 0.3, 0.8, (0.0, 0.0), torch.float64, device)
    g = torch.randn(n, 2, 6, 7, generator=_gen(1), dtype=torch.float64).to(device)
    kw = dict(seed=0, num_samples=8, sigma=1.0, collapse_noise=True, eps=1e-3,
              align_corners=False, padding_mode="zeros")
    ref = fit_local_gradient(x, grid, g, **kw)
    monkeypatch.setattr(lin, "_TILE_MIN", tile)  # one image and a few auxiliaries per tile
    monkeypatch.setattr(lin, "_TILE_MAX", tile)
    monkeypatch.setattr(lin, "_TILE_MAX_CUDA", tile)
    torch.testing.assert_close(fit_local_gradient(x, grid, g, **kw), ref)


def test_grid_footprint_matches_torch_gradient():
    grid = torch.rand(2, 5, 6, 2, generator=_gen(0), dtype=torch.float64)
    d_col, d_row = grid_footprint(grid)
    torch.testing.assert_close(d_col, torch.gradient(grid, dim=2)[0])
    torch.testing.assert_close(d_row, torch.gradient(grid, dim=1)[0])


# -------------------------------------------------------------------------------- bad input

def test_bad_shapes_dtypes_devices_raise_value_error():
    x = torch.rand(4, 1, 8, 8)
    with pytest.raises(ValueError, match=r"linearized_grid_sample: expected grid of shape "
                                         r"\(N, h, w, 2\), got \(4, 7, 7, 3\)"):
        linearized_grid_sample(x, torch.zeros(4, 7, 7, 3))
    with pytest.raises(ValueError, match="grid"):
        linearized_grid_sample(x, torch.zeros(3, 7, 7, 2))
    with pytest.raises(ValueError, match="input"):
        linearized_grid_sample(torch.rand(1, 8, 8), torch.zeros(1, 7, 7, 2))
    with pytest.raises(ValueError, match="dtype"):
        linearized_grid_sample(x, torch.zeros(4, 7, 7, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match="device"):
        linearized_grid_sample(x, torch.zeros(4, 7, 7, 2, device="meta"))
    with pytest.raises(ValueError, match="floating-point"):
        linearized_grid_sample(torch.zeros(4, 1, 8, 8, dtype=torch.long),
                               torch.zeros(4, 7, 7, 2, dtype=torch.long))


@pytest.mark.parametrize("kw, name", [
    (dict(num_samples=0), "num_samples"), (dict(num_samples=2.5), "num_samples"),
    (dict(num_samples=True), "num_samples"), (dict(sigma=0.0), "sigma"),
    (dict(sigma=-1.0), "sigma"), (dict(sigma=float("nan")), "sigma"),
    (dict(eps=-1e-3), "eps"), (dict(eps=float("inf")), "eps"),
    (dict(collapse_noise="yes"), "collapse_noise"), (dict(generator=0), "generator"),
    (dict(padding_mode="wrap"), "padding_mode"),
])
def test_bad_options_raise_value_error(kw, name):
    with pytest.raises(ValueError, match=name):
        linearized_grid_sample(torch.rand(1, 1, 4, 4), torch.zeros(1, 2, 2, 2), **kw)


# ------------------------------------------------------------------ torch.func transforms

@pytest.mark.filterwarnings("error::UserWarning")  # no vmap fallback ("performance drop")
@pytest.mark.parametrize("fused", [True, False], ids=["fused", "eager"])
def test_torch_func_grad_and_vmap_match_autograd(fused, device, monkeypatch):
    """grad() equals autograd; vmap(grad(), randomness="same") equals a loop over the
    vmapped slices (each call draws its seed from the same generator state)."""
    from torch.func import grad, vmap

    if not fused:
        monkeypatch.setenv("STNLAB_NO_EXT", "1")
    g = torch.Generator().manual_seed(0)
    img = torch.rand(3, 2, 2, 12, 12, generator=g, dtype=torch.float64).to(device)
    theta = (torch.eye(2, 3, dtype=torch.float64)
             + 0.1 * torch.randn(3, 2, 3, generator=g, dtype=torch.float64)).to(device)

    def loss(th, x):
        grid = F.affine_grid(th.expand(x.shape[0], 2, 3), (x.shape[0], 2, 7, 7),
                             align_corners=False)
        gen = torch.Generator(device=x.device).manual_seed(5)
        return linearized_grid_sample(x, grid, generator=gen).square().sum()

    th0 = theta[0].clone().requires_grad_(True)
    (ref0,) = torch.autograd.grad(loss(th0, img[0]), th0)
    torch.testing.assert_close(grad(loss)(theta[0], img[0]), ref0, rtol=1e-12, atol=1e-12)
    with warnings.catch_warnings():  # F.affine_grid: see AFFINE_GRID_FALLBACK
        warnings.filterwarnings("ignore", message=AFFINE_GRID_FALLBACK, category=UserWarning)
        got = vmap(grad(loss), randomness="same")(theta, img)
    ref = torch.stack([grad(loss)(theta[i], img[i]) for i in range(3)])
    torch.testing.assert_close(got, ref, rtol=1e-12, atol=1e-12)
    assert not torch.equal(got[0], got[1])  # the slices really differ


# ------------------------------------------------------------------------------ noise pool

@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
def test_noise_pool_is_a_standard_normal_sample(dtype):
    import sampling.linearized as lin

    pool = lin._noise_pool(dtype, torch.device("cpu")).double()
    n = pool.numel()
    assert n == lin._POOL_SIZE
    se = 1 / math.sqrt(n)  # standard errors: mean 1/sqrt(n), variance sqrt(2/n)
    assert abs(float(pool.mean())) < 5 * se
    assert abs(float(pool.var()) - 1) < 5 * math.sqrt(2) * se
    # tails as a normal's: P(|z| > 2) = 0.0455
    assert abs(float((pool.abs() > 2).double().mean()) - 0.0455) < 5 * math.sqrt(0.0455 / n)


def test_noise_field_is_a_scaled_window_of_the_pool():
    import sampling.linearized as lin

    k, h, w, sigma, ux, uy = 8, 5, 7, 2.0, 4.0, 3.0
    size = 4 * k * h * w
    pool = lin._noise_pool(torch.float64, torch.device("cpu"))
    for seed in (0, 12345, 2**62 - 1):
        field = lin._noise_field(seed, k, h, w, sigma, ux, uy, torch.float64, "cpu")
        start = seed % (pool.numel() - size + 1)
        raw = pool[start:start + size].view(4, k, h, w)
        scale = torch.tensor([sigma, sigma, 1 / ux, 1 / uy], dtype=torch.float64)
        torch.testing.assert_close(field, raw * scale.view(4, 1, 1, 1), rtol=0, atol=0)
    a = lin._noise_field(1, k, h, w, sigma, ux, uy, torch.float64, "cpu")
    b = lin._noise_field(2, k, h, w, sigma, ux, uy, torch.float64, "cpu")
    assert not torch.equal(a, b) and torch.equal(
        a, lin._noise_field(1, k, h, w, sigma, ux, uy, torch.float64, "cpu"))


def test_large_noise_fields_are_drawn_fresh(monkeypatch):
    import sampling.linearized as lin

    monkeypatch.setattr(lin, "_POOL_MAX_WINDOW", 100)
    k, h, w = 2, 4, 4  # 128 variates > 100
    field = lin._noise_field(7, k, h, w, 1.0, 1.0, 1.0, torch.float64, "cpu")
    fresh = torch.randn(4, k, h, w, generator=torch.Generator().manual_seed(7),
                        dtype=torch.float64)
    torch.testing.assert_close(field, fresh, rtol=0, atol=0)


def test_a_field_of_exactly_the_window_size_is_pooled(monkeypatch):
    """The boundary: ``4 K h w == _POOL_MAX_WINDOW`` is still a pool window (the docstring:
    fresh only *above* the window), so the variates are the pool's at ``seed mod ...``."""
    import sampling.linearized as lin

    monkeypatch.setattr(lin, "_POOL_MAX_WINDOW", 128)
    k, h, w, seed = 2, 4, 4, 12345  # exactly 128 variates
    pool = lin._noise_pool(torch.float64, "cpu")
    start = seed % (pool.numel() - 128 + 1)
    torch.testing.assert_close(lin.auxiliary_variates(seed, k, h, w, dtype=torch.float64),
                               pool[start:start + 128].view(4, k, h, w), rtol=0, atol=0)


def test_fresh_noise_field_is_scaled_by_sigma_and_pixel_units():
    """A field over ``_POOL_MAX_WINDOW`` variates (no monkeypatch: 4 * 8 * 91 * 91 =
    264,992 > 2**18) is a fresh draw times ``(sigma, sigma, 1/u_x, 1/u_y)``."""
    import sampling.linearized as lin

    k, h, w, sigma, ux, uy = 8, 91, 91, 2.0, 4.0, 3.0
    assert 4 * k * h * w > lin._POOL_MAX_WINDOW
    field = lin._noise_field(7, k, h, w, sigma, ux, uy, torch.float64, "cpu")
    fresh = torch.randn(4, k, h, w, generator=torch.Generator().manual_seed(7),
                        dtype=torch.float64)
    scale = torch.tensor([sigma, sigma, 1 / ux, 1 / uy], dtype=torch.float64)
    torch.testing.assert_close(field, fresh * scale.view(4, 1, 1, 1), rtol=0, atol=0)
    torch.testing.assert_close(lin.auxiliary_variates(7, k, h, w, dtype=torch.float64), fresh,
                               rtol=0, atol=0)


@pytest.mark.parametrize("size", [2, 5, 28])
def test_pixel_units_and_stencil_bound_hand_values(size):
    """align_corners=True: -1, 1 are the centres of pixels 0 and W - 1, so (W - 1) / 2 px per
    unit and the stencil stays inside up to |x| = 1; False: -1, 1 are the outer edges, W / 2
    px per unit, the last pixel centre W - 1 sits at x = 1 - 1 / W."""
    import sampling.linearized as lin

    assert lin._pixel_units(size, True) == (size - 1) / 2
    assert lin._pixel_units(size, False) == size / 2
    assert lin._stencil_bound(size, True) == 1.0
    assert lin._stencil_bound(size, False) == pytest.approx(1 - 1 / size, rel=1e-15)
    # both conventions: the bound is the normalized coordinate of pixel centre W - 1
    assert (lin._stencil_bound(size, True) + 1) / 2 * (size - 1) == pytest.approx(size - 1)
    assert ((lin._stencil_bound(size, False) + 1) * size - 1) / 2 == pytest.approx(size - 1)
    # and the known values at size 5
    assert (lin._pixel_units(5, True), lin._pixel_units(5, False)) == (2.0, 2.5)
    assert lin._stencil_bound(5, False) == pytest.approx(0.8)


@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("sigma, eps", [(1.0, DEFAULT_EPS), (2.5, 0.7)])
def test_eager_path_equals_the_independent_numpy_reference(align_corners, sigma, eps):
    """The eager path's own check of orientation, Tikhonov sign, masking and scale: an
    anisotropic, sheared footprint (7 rows x 9 columns, partly out of bounds) on a
    non-affine image, against proofs/reference/linearized_numpy.py (float64 NumPy from
    003 Eqs. 2-9, sharing only the standard normal variates). Gradient, normal matrix and
    in-bounds count must agree; rtol 1e-9 derived as in
    tests/proofs/test_linearized_reference.py."""
    import numpy as np

    import sampling.linearized as lin
    from proofs.reference import linearized_numpy as ref

    gen = _gen(3)
    x = torch.rand(2, 2, 11, 13, generator=gen, dtype=torch.float64) ** 2 + 0.5
    th = torch.tensor([[[1.1, 0.35, 0.1], [-0.2, 0.6, 0.05]]], dtype=torch.float64).repeat(2, 1, 1)
    grid = F.affine_grid(th, (2, 1, 7, 9), align_corners=align_corners)
    go = torch.randn(2, 2, 7, 9, generator=gen, dtype=torch.float64)
    fit = fit_local_gradient(x, grid, go, seed=11, num_samples=8, sigma=sigma,
                             collapse_noise=True, eps=eps, align_corners=align_corners,
                             padding_mode="zeros", diagnostics=True)
    v = lin.auxiliary_variates(11, 8, 7, 9, dtype=torch.float64).numpy()
    want, normal, count = ref.fitted_grid_gradient(
        x.numpy(), grid.numpy(), go.numpy(), v, sigma=sigma, eps=eps,
        align_corners=align_corners, return_diagnostics=True)
    assert (count < 8).any() and (count == 8).any()  # masking is exercised
    np.testing.assert_array_equal(fit.count.numpy(), count)
    np.testing.assert_allclose(fit.normal.numpy(), normal, rtol=1e-9,
                               atol=1e-9 * np.abs(normal).max())
    np.testing.assert_allclose(fit.grad_grid.numpy(), want, rtol=1e-9,
                               atol=1e-9 * np.abs(want).max())


@pytest.mark.parametrize("align_corners", [False, True])
def test_eager_path_on_a_two_by_two_image_equals_the_reference(align_corners):
    """A 2 x 2 input: with align_corners=True an axis of 2 pixels has 0.5 pixels per
    normalized unit (``_pixel_units`` < 1), the case where the guard ``max(u, 1e-12)``
    must not clip the unit (a floor of 1 would rescale the collapse noise and the
    Tikhonov term). Against the NumPy reference as above (rtol 1e-9, same derivation)."""
    import numpy as np

    import sampling.linearized as lin
    from proofs.reference import linearized_numpy as ref

    gen = _gen(4)
    x = torch.rand(1, 1, 2, 2, generator=gen, dtype=torch.float64) + 0.5
    grid = (torch.rand(1, 3, 4, 2, generator=gen, dtype=torch.float64) - 0.5) * 1.2
    go = torch.randn(1, 1, 3, 4, generator=gen, dtype=torch.float64)
    fit = fit_local_gradient(x, grid, go, seed=3, num_samples=8, sigma=1.0,
                             collapse_noise=True, eps=0.3, align_corners=align_corners,
                             padding_mode="zeros", diagnostics=True)
    v = lin.auxiliary_variates(3, 8, 3, 4, dtype=torch.float64).numpy()
    want, normal, count = ref.fitted_grid_gradient(
        x.numpy(), grid.numpy(), go.numpy(), v, sigma=1.0, eps=0.3,
        align_corners=align_corners, return_diagnostics=True)
    np.testing.assert_array_equal(fit.count.numpy(), count)
    np.testing.assert_allclose(fit.normal.numpy(), normal, rtol=1e-9,
                               atol=1e-9 * np.abs(normal).max())
    np.testing.assert_allclose(fit.grad_grid.numpy(), want, rtol=1e-9,
                               atol=1e-9 * max(np.abs(want).max(), 1e-300))


def test_tikhonov_term_shrinks_the_exact_fit():
    """eps is *added* to the normal matrix: J = (S + eps I)^{-1} S J_exact on an affine image
    (so with eps = 10 S-sized the gradient shrinks, never grows or flips)."""
    dtype = torch.float64
    coef = torch.tensor([[1.0, 2.0, 0.0]], dtype=dtype)  # d/du = 1, d/dv = 2 px^-1
    x = _affine_image(1, 1, 16, 16, coef, dtype, "cpu")
    grid = torch.zeros(1, 1, 1, 2, dtype=dtype)
    go = torch.ones(1, 1, 1, 1, dtype=dtype)
    kw = dict(seed=5, num_samples=16, sigma=1.0, collapse_noise=True, align_corners=False,
              padding_mode="zeros", diagnostics=True)
    exact = fit_local_gradient(x, grid, go, eps=0.0, **kw)
    torch.testing.assert_close(exact.grad_grid, torch.tensor([[[[8.0, 16.0]]]], dtype=dtype))
    eps = 20.0
    fit = fit_local_gradient(x, grid, go, eps=eps, **kw)
    a, b, d = fit.normal[0, 0, 0]
    s = torch.stack([torch.stack([a, b]), torch.stack([b, d])])
    j_px = torch.linalg.solve(s + eps * torch.eye(2, dtype=dtype), s @ torch.tensor([1.0, 2.0],
                                                                                  dtype=dtype))
    torch.testing.assert_close(fit.grad_grid[0, 0, 0], j_px * 8.0, **tol(dtype))
    assert fit.grad_grid.norm() < exact.grad_grid.norm()


@pytest.mark.parametrize("axis", ["x", "y"])
@pytest.mark.parametrize("diagnostics", [True, False], ids=["eager", "default"])
def test_one_pixel_wide_input_with_align_corners(diagnostics, axis):
    """W = 1 (or H = 1) and align_corners=True: 0 input pixels per normalized unit along
    that axis. The fit must stay finite."""
    x = torch.rand(1, 1, 6, 1, generator=_gen(0), dtype=torch.float64)
    grid = torch.zeros(1, 3, 1, 2, dtype=torch.float64)
    grid[0, :, 0, 1] = torch.tensor([-0.3, 0.0, 0.3], dtype=torch.float64)
    if axis == "y":  # the transposed case: H = 1
        x, grid = x.transpose(2, 3).contiguous(), grid.flip(-1).transpose(1, 2).contiguous()
    h, w = grid.shape[1:3]
    out = fit_local_gradient(x, grid, torch.ones(1, 1, h, w, dtype=torch.float64), seed=0,
                             num_samples=8, sigma=1.0, collapse_noise=True, eps=DEFAULT_EPS,
                             align_corners=True, padding_mode="zeros", diagnostics=diagnostics)
    gg = out.grad_grid if diagnostics else out
    assert torch.isfinite(gg).all()


def test_empty_batch_diagnostics_shapes():
    x = torch.rand(0, 1, 5, 5, dtype=torch.float64)
    grid = torch.zeros(0, 3, 4, 2, dtype=torch.float64)
    fit = fit_local_gradient(x, grid, torch.zeros(0, 1, 3, 4, dtype=torch.float64), seed=0,
                             num_samples=4, sigma=1.0, collapse_noise=True, eps=DEFAULT_EPS,
                             align_corners=False, padding_mode="zeros", diagnostics=True)
    assert fit.grad_grid.shape == (0, 3, 4, 2)
    assert fit.normal.shape == (0, 3, 4, 3) and fit.count.shape == (0, 3, 4)
    kw = dict(seed=0, num_samples=4, sigma=1.0, collapse_noise=True, eps=DEFAULT_EPS,
              align_corners=False, padding_mode="zeros")
    assert fit_local_gradient(x, grid, torch.zeros(0, 1, 3, 4, dtype=torch.float64),
                              **kw).shape == (0, 3, 4, 2)


def test_min_eigenvalue_known_values():
    """Normal matrices (xx, xy, yy) with known eigenvalues: diag(5, 1) -> 1,
    [[2, 1], [1, 2]] -> 1 (and 3), [[4, 0], [0, 9]] -> 4."""
    import sampling.linearized as lin

    normal = torch.tensor([[[[5.0, 0.0, 1.0], [2.0, 1.0, 2.0], [4.0, 0.0, 9.0]]]],
                          dtype=torch.float64)  # (1, 1, 3, 3)
    fit = lin.LinearizedFit(None, normal, None)
    torch.testing.assert_close(fit.min_eigenvalue(),
                               torch.tensor([[[1.0, 1.0, 4.0]]], dtype=torch.float64))


def test_mixed_dtypes_reach_no_kernel():
    """The internal fit called with a float32 image and float64 grid / gradients (the
    public sampler refuses this earlier): an error, never the fused kernel reading one
    dtype as another."""
    x = torch.rand(1, 1, 5, 5)
    grid = torch.zeros(1, 2, 2, 2, dtype=torch.float64)
    go = torch.ones(1, 1, 2, 2, dtype=torch.float64)
    with pytest.raises(RuntimeError):
        fit_local_gradient(x, grid, go, torch.zeros(1, 1, 2, 2, dtype=torch.float64), seed=0,
                           num_samples=4, sigma=1.0, collapse_noise=True, eps=1e-3,
                           align_corners=False, padding_mode="zeros")
