"""Tests of :mod:`sampling.api`: the ``grid_sample`` entry point and its input checks."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F

import sampling
from sampling.api import METHODS, check_sampler_inputs, grid_sample
from tests.conftest import AFFINE_GRID_FALLBACK
from tests.tolerances import tol


def _inputs(dtype=torch.float64, device="cpu"):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 9, 8, generator=g, dtype=dtype).to(device)
    grid = (torch.rand(2, 4, 5, 2, generator=g, dtype=dtype) * 2.2 - 1.1).to(device)
    return x, grid


def test_methods():
    assert METHODS == ("bilinear", "linearized", "multiscale")


@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("padding_mode", ["zeros", "border", "reflection"])
def test_bilinear_is_f_grid_sample(align_corners, padding_mode, dtype, device):
    x, grid = _inputs(dtype, device)
    out = grid_sample(x, grid, align_corners=align_corners, padding_mode=padding_mode)
    ref = F.grid_sample(x, grid, mode="bilinear", align_corners=align_corners,
                        padding_mode=padding_mode)
    torch.testing.assert_close(out, ref, **tol(dtype))


def test_methods_forward_to_their_functions():
    x, grid = _inputs()
    lin = grid_sample(x, grid, method="linearized", num_samples=4,
                      generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(lin, F.grid_sample(x, grid, align_corners=False))
    ms = grid_sample(x, grid, method="multiscale", sigmas=(1.0, 2.0), align_corners=True)
    torch.testing.assert_close(ms, sampling.multiscale_grid_sample(x, grid, sigmas=(1.0, 2.0),
                                                                   align_corners=True))


def test_linearized_options_reach_the_sampler():
    x, grid = _inputs()
    grid.requires_grad_(True)

    def grad(**kw):
        out = grid_sample(x, grid, method="linearized", **kw)
        return torch.autograd.grad(out.sum(), grid)[0]

    a = grad(num_samples=4, generator=torch.Generator().manual_seed(1))
    b = sampling.linearized_grid_sample(x, grid, num_samples=4,
                                        generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(a, torch.autograd.grad(b.sum(), grid)[0])
    with pytest.raises(ValueError, match="num_samples"):
        grad(num_samples=0)


def test_lazy_exports():
    from sampling.linearized import linearized_grid_sample
    from sampling.multiscale import multiscale_grid_sample

    assert sampling.linearized_grid_sample is linearized_grid_sample
    assert sampling.multiscale_grid_sample is multiscale_grid_sample
    with pytest.raises(AttributeError, match="no_such_thing"):
        sampling.no_such_thing  # noqa: B018


def test_unknown_method_and_stray_options_raise_value_error():
    x, grid = _inputs()
    with pytest.raises(ValueError, match="method"):
        grid_sample(x, grid, method="bicubic")
    with pytest.raises(ValueError, match="bilinear"):
        grid_sample(x, grid, num_samples=3)
    with pytest.raises(TypeError, match="no_such_option"):
        grid_sample(x, grid, method="linearized", no_such_option=1)


@pytest.mark.parametrize("method", METHODS)
def test_check_sampler_inputs_errors(method):
    x, grid = _inputs()
    cases = [
        ((x[0], grid), "input of shape"),
        ((x, grid[..., :1]), r"grid of shape \(N, h, w, 2\)"),
        ((x, grid[:1]), "N=2"),
        ((x.float(), grid), "dtype"),
        ((x, grid.to("meta")), "device"),
        ((x.long(), grid.long()), "floating-point"),
        ((x, "grid"), "torch.Tensor"),
    ]
    for args, msg in cases:
        with pytest.raises(ValueError, match=msg):
            grid_sample(*args, method=method)
    with pytest.raises(ValueError, match="padding_mode"):
        grid_sample(x, grid, method=method, padding_mode="wrap")


def test_check_sampler_inputs_returns_sizes():
    x, grid = _inputs()
    dims = check_sampler_inputs(x, grid, fn="f")
    assert (dims["N"], dims["C"], dims["H"], dims["W"], dims["h"], dims["w"]) == (2, 3, 9, 8, 4, 5)


@pytest.mark.parametrize("method", ["bilinear", "linearized", "multiscale"])
@pytest.mark.parametrize("padding_mode", ["zeros", "border", "reflection"])
def test_non_finite_locations_give_nan_and_no_crash(method, padding_mode):
    """F.grid_sample (torch 2.13 CPU, border) gives finite garbage at NaN and segfaults in
    backward; sampling.grid_sample must give NaN there, finite values and gradients elsewhere."""
    x = torch.rand(2, 3, 6, 6, dtype=torch.float64, requires_grad=True)
    g = (torch.rand(2, 3, 3, 2, dtype=torch.float64) * 1.6 - 0.8)
    g[0, 1, 2, 0] = float("nan")
    g[1, 0, 0, 1] = float("inf")
    g.requires_grad_(True)
    out = sampling.grid_sample(x, g, method=method, padding_mode=padding_mode)
    bad = torch.zeros(2, 3, 3, dtype=torch.bool)
    bad[0, 1, 2] = bad[1, 0, 0] = True
    assert torch.isnan(out.permute(0, 2, 3, 1)[bad]).all()
    assert torch.isfinite(out.permute(0, 2, 3, 1)[~bad]).all()
    out.nan_to_num(0.0).sum().backward()
    assert torch.isfinite(g.grad).all() and torch.isfinite(x.grad).all()
    assert (g.grad[bad] == 0).all()


@pytest.mark.filterwarnings("error::UserWarning")  # no vmap fallback ("performance drop")
@pytest.mark.parametrize("padding_mode", ["zeros", "border"])
def test_vmapped_grid_gradient_with_a_fixed_input(padding_mode, device):
    # An STN on its input image under torch.func: the image is not differentiated, the
    # affine parameters are, one set per seed (vmap). On CUDA this is the case that hit a
    # PyTorch bug (see sampling.api); on every device it must equal plain autograd.
    from torch.func import grad, vmap

    g = torch.Generator().manual_seed(0)
    img = torch.randn(3, 2, 1, 9, 9, generator=g).to(device)  # (seeds, N, C, H, W)
    theta = (torch.eye(2, 3) + 0.1 * torch.randn(3, 2, 3, generator=g)).to(device)

    def loss(th, x):
        grid = F.affine_grid(th.expand(x.shape[0], 2, 3), (x.shape[0], 1, 7, 7),
                             align_corners=False)
        return grid_sample(x, grid, padding_mode=padding_mode).square().sum()

    with warnings.catch_warnings():  # F.affine_grid: see AFFINE_GRID_FALLBACK
        warnings.filterwarnings("ignore", message=AFFINE_GRID_FALLBACK, category=UserWarning)
        got = vmap(grad(loss))(theta, img)
    for i in range(3):
        th = theta[i].clone().requires_grad_(True)
        (ref,) = torch.autograd.grad(loss(th, img[i]), th)
        torch.testing.assert_close(got[i], ref, **tol(torch.float32))


def test_autocast_promotes_mixed_dtypes_like_f_grid_sample():
    x = torch.rand(2, 1, 6, 6)
    grid = torch.zeros(2, 3, 3, 2, dtype=torch.bfloat16)
    with pytest.raises(ValueError, match="same dtype"):  # outside autocast: a user mistake
        grid_sample(x, grid)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = grid_sample(x, grid)
        ref = F.grid_sample(x, grid.float(), align_corners=False)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, ref)


@pytest.mark.parametrize("method", ["bilinear", "linearized", "multiscale"])
def test_samplers_run_in_float32_under_autocast(method):
    # A bf16 feature map and grid (an STN-C1 under autocast) are sampled in float32: the
    # result equals the float32 sampler on the same (bf16-representable) values, exactly.
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 9, 9, generator=gen).bfloat16()
    grid = (torch.rand(2, 4, 5, 2, generator=gen) * 2 - 1).bfloat16()
    opts = {"num_samples": 4, "generator": torch.Generator().manual_seed(1)} \
        if method == "linearized" else {}
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = grid_sample(x, grid, method=method, **opts)
    if method == "linearized":
        opts["generator"] = torch.Generator().manual_seed(1)
    ref = grid_sample(x.float(), grid.float(), method=method, **opts)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, ref, rtol=0, atol=0)


@pytest.mark.parametrize("method", METHODS)
def test_finite_grids_take_the_unmasked_path_with_the_same_numbers(method, monkeypatch):
    """A finite grid skips the mask (one reduction decides); its numbers and gradients are
    those of the masked path, also for a finite grid whose sum overflows to inf (which
    takes the masked path), and a NaN among huge finite values is still caught."""
    import sampling.api as api

    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 6, 6, generator=g, dtype=torch.float64)
    grid = torch.rand(2, 3, 3, 2, generator=g, dtype=torch.float64) * 1.6 - 0.8
    huge = grid.clone()
    huge[0, 0, 0] = 1e308  # sum overflows: the masked path, same numbers as F.grid_sample
    huge[0, 0, 1] = 1e308
    nan_huge = huge.clone()
    nan_huge[1, 2, 2, 0] = float("nan")
    opts = {"linearized": dict(generator=None)}.get(method, {})

    def run(gr, masked):
        monkeypatch.setattr(api, "_may_branch", lambda: not masked)
        gr = gr.clone().requires_grad_(True)
        if method == "linearized":
            torch.manual_seed(3)
        out = grid_sample(x, gr, method=method, padding_mode="border", **opts)
        (gg,) = torch.autograd.grad(out.nan_to_num(0.0).sum(), gr)
        return out, gg

    for gr in (grid, huge):
        fast, slow = run(gr, masked=False), run(gr, masked=True)
        assert torch.equal(fast[0], slow[0]) and torch.equal(fast[1], slow[1])
        assert torch.isfinite(fast[0]).all()
    out, gg = run(nan_huge, masked=False)
    assert torch.isnan(out[1, :, 2, 2]).all() and torch.isfinite(out[0]).all()
    assert (gg[1, 2, 2] == 0).all()


def test_the_finite_check_is_skipped_under_vmap():
    """Under torch.func transforms the masked path (no data-dependent branch) runs."""
    from torch.func import vmap

    import sampling.api as api

    assert api._may_branch()
    seen = []
    orig = api._may_branch

    def spy():
        seen.append(orig())
        return seen[-1]

    x = torch.rand(3, 1, 1, 5, 5)
    grid = torch.rand(3, 1, 2, 2, 2) * 2 - 1
    grid[1, 0, 0, 0, 0] = float("nan")
    api_may_branch, api._may_branch = api._may_branch, spy
    try:
        out = vmap(lambda a, b: grid_sample(a, b))(x, grid)
    finally:
        api._may_branch = api_may_branch
    assert seen == [False]
    assert torch.isnan(out[1, 0, :, 0, 0]).all() and torch.isfinite(out[0]).all()
