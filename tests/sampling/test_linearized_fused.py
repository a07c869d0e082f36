"""Tests of the fused C++ CPU kernel of the linearized sampler's backward pass.

The kernel (``sampling/csrc/linearized_fit.cpp``, built by :mod:`sampling._ext`) must
give the eager path's numbers (:func:`fit_local_gradient` with ``STNLAB_NO_EXT=1``, the
reference) up to rounding:

* float64: ``max |fused - eager| <= 1e-10 * max |eager|`` (plus ``1e-14`` of the
  gradient scale of a unit-range image, for the cancellation under extreme zoom).
* float32: the two differ by more than float32's epsilon where the 2x2 solve is
  ill-conditioned (few auxiliaries in bounds, large offsets: relative differences up
  to ~1e-3 are normal, and the eager path is no closer to the truth). So the fused
  result is compared with a float64 evaluation of the same float32 inputs and noise
  (``ref``), pixel by pixel: its error must be at most ``8x`` the eager path's own
  error, plus ``1e-4 * max |ref|``, plus ``1e-5 * kappa * |ref|`` with ``kappa`` the
  condition number of the regularized normal matrix (a single auxiliary in bounds and
  a small ``eps`` give ``kappa ~ 1e5``), plus ``1e-8`` of the unit-image gradient
  scale (as for float64). A wrong sign, mask, unit or sum is off by O(1).
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import time
import warnings

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

import sampling._ext as ext
import sampling.linearized as lin
from sampling.linearized import DEFAULT_EPS, fit_local_gradient, linearized_grid_sample
from tests.conftest import DTYPES


@pytest.fixture(scope="module")
def ops():
    """The loaded kernel (built here at first use), or skip where it cannot be."""
    o = ext.load()
    if o is None:
        st_ = ext.status()
        if os.environ.get("CI") and not st_["disabled"]:  # CI must exercise the kernel
            pytest.fail(f"fused kernel unavailable in CI: {st_['error']}")
        pytest.skip("fused kernel unavailable: "
                    + ("STNLAB_NO_EXT is set" if st_["disabled"] else str(st_["error"])))
    return o


@contextlib.contextmanager
def _eager_path():
    """``STNLAB_NO_EXT=1`` for the block (per process, so safe under xdist)."""
    old = os.environ.get("STNLAB_NO_EXT")
    os.environ["STNLAB_NO_EXT"] = "1"
    try:
        yield
    finally:
        if old is None:
            del os.environ["STNLAB_NO_EXT"]
        else:
            os.environ["STNLAB_NO_EXT"] = old


@contextlib.contextmanager
def _float32_noise():
    """Draw the noise in float32 whatever the dtype (a float64 reference of a float32 run)."""
    orig = lin._noise_field

    def noise32(seed, k, h, w, sigma, sux, suy, dtype, device):
        return orig(seed, k, h, w, sigma, sux, suy, torch.float32, device).to(dtype)

    lin._noise_field = noise32
    try:
        yield
    finally:
        lin._noise_field = orig


def _fused_and_eager(x, grid, go, **kw):
    before = ext.status()["fused_calls"]
    fused = fit_local_gradient(x, grid, go, **kw)
    assert ext.status()["fused_calls"] == before + 1, "the fused kernel did not run"
    with _eager_path():
        eager = fit_local_gradient(x, grid, go, **kw)
    assert ext.status()["fused_calls"] == before + 1, "STNLAB_NO_EXT=1 did not force eager"
    return fused, eager


def _unit(x, go):
    """Gradient scale of a unit-range image: |x| |go| C (H + W) (normalized units)."""
    return float(x.abs().max() * go.abs().max()) * x.shape[1] * sum(x.shape[2:])


def _check(fused, eager, x, go, reference, eps):
    """The module docstring's criterion; ``reference()`` is the float64 evaluation."""
    assert fused.shape == eager.shape and fused.dtype == eager.dtype
    assert torch.isfinite(fused).all() == torch.isfinite(eager).all()
    # Under extreme zoom the fit differences values 1e-6 px apart: the cancellation
    # leaves gradients that are themselves tiny with few correct digits, so the floor
    # is relative to the gradient scale of a unit-range image.
    unit = _unit(x, go)
    if x.dtype == torch.float64:
        err, scale = float((fused - eager).abs().max()), float(eager.abs().max())
        assert err <= 1e-10 * scale + 1e-14 * unit, (err, scale, unit)
        return
    ref, fit = reference()
    # condition number of the regularized normal matrix, per pixel
    lo = fit.min_eigenvalue()
    hi = fit.normal[..., 0] + fit.normal[..., 2] - lo
    kappa = ((hi + eps) / (lo + eps).clamp_min(1e-300)).unsqueeze(-1)
    err_fused = (fused.double() - ref).abs()
    err_eager = (eager.double() - ref).abs()
    bound = (8 * err_eager + 1e-4 * ref.abs().max() + 1e-5 * kappa * ref.abs()
             + 1e-8 * unit)
    worst = int((err_fused - bound).flatten().argmax())
    assert (err_fused <= bound).all(), dict(
        err_fused=float(err_fused.flatten()[worst]), err_eager=float(err_eager.flatten()[worst]),
        ref=float(ref.flatten()[worst]), kappa=float(kappa.expand_as(ref).flatten()[worst]),
        bound=float(bound.flatten()[worst]))


def _reference(x, grid, go, **kw):
    """float64 eager result and diagnostics of float32 inputs, with the float32 noise."""
    with _eager_path(), _float32_noise():
        fit = fit_local_gradient(x.double(), grid.double(), go.double(), diagnostics=True,
                                 **kw)
    return fit.grad_grid, fit


def _assert_matches_eager(x, grid, go, **kw):
    fused, eager = _fused_and_eager(x, grid, go, **kw)
    _check(fused, eager, x, go, lambda: _reference(x, grid, go, **kw), kw["eps"])


def _affine_grid(n, h, w, angle, scale, shift, dtype):
    th = torch.tensor([[scale * math.cos(angle), -scale * math.sin(angle), shift[0]],
                       [scale * math.sin(angle), scale * math.cos(angle), shift[1]]],
                      dtype=torch.float64)
    return F.affine_grid(th.expand(n, 2, 3), (n, 1, h, w), align_corners=False).to(dtype)


@st.composite
def fit_cases(draw):
    """Shapes, options and one of five grid kinds (partly out of bounds, degenerate, ...)."""
    kind = draw(st.sampled_from(["affine", "random", "degenerate", "zoom", "downsample"]))
    h, w = draw(st.integers(1, 7)), draw(st.integers(1, 7))
    case = dict(
        seed=draw(st.integers(0, 2**31 - 1)), kind=kind,
        n=draw(st.integers(1, 2)), c=draw(st.sampled_from([1, 3])),
        h_in=draw(st.integers(1, 20)), w_in=draw(st.integers(1, 20)), h=h, w=w,
        k=draw(st.sampled_from([1, 3, 8])), sigma=draw(st.sampled_from([0.5, 1.0, 2.0])),
        collapse=draw(st.booleans()), align_corners=draw(st.booleans()),
        eps=draw(st.sampled_from([DEFAULT_EPS, 1e-2])),
        angle=draw(st.floats(-math.pi, math.pi)),
        # up to 1.6x the image and shifted by up to 0.9: partly out of bounds
        scale=draw(st.floats(0.05, 1.6)),
        shift=(draw(st.floats(-0.9, 0.9)), draw(st.floats(-0.9, 0.9))),
        point=(draw(st.floats(-1.1, 1.1)), draw(st.floats(-1.1, 1.1))),
    )
    return case


def _make(case, dtype):
    g = torch.Generator().manual_seed(case["seed"])
    n, c = case["n"], case["c"]
    x = torch.rand(n, c, case["h_in"], case["w_in"], generator=g, dtype=torch.float64)
    h, w = case["h"], case["w"]
    kind = case["kind"]
    if kind == "affine":
        grid = _affine_grid(n, h, w, case["angle"], case["scale"], case["shift"], dtype)
    elif kind == "random":
        grid = torch.rand(n, h, w, 2, generator=g, dtype=torch.float64) * 2.4 - 1.2
    elif kind == "degenerate":  # every output pixel samples the same point
        grid = torch.tensor(case["point"], dtype=torch.float64).expand(n, h, w, 2)
    elif kind == "zoom":  # extreme zoom-in: the output covers ~1e-5 of an input pixel
        grid = _affine_grid(n, h, w, case["angle"], 1e-6, case["point"], dtype)
    else:  # strong downsampling: footprints of many input pixels
        grid = _affine_grid(n, h, w, case["angle"], 3.0 * case["scale"], case["shift"], dtype)
    go = torch.randn(n, c, h, w, generator=g, dtype=torch.float64)
    kw = dict(seed=case["seed"], num_samples=case["k"], sigma=case["sigma"],
              collapse_noise=case["collapse"], eps=case["eps"],
              align_corners=case["align_corners"], padding_mode="zeros")
    return x.to(dtype), grid.to(dtype).contiguous(), go.to(dtype), kw


# ------------------------------------------------------------------------ fused == eager

@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@settings(max_examples=200)  # ~1 ms an example
@given(case=fit_cases())
def test_fused_matches_eager(ops, case, dtype):
    x, grid, go, kw = _make(case, dtype)
    _assert_matches_eager(x, grid, go, **kw)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("shape", [(256, 1, 28, 28), (64, 3, 50, 12), (8, 3, 256, 32)])
def test_fused_matches_eager_end_to_end(ops, shape, align_corners, dtype):
    """Through autograd, on the benchmark's shapes and grids (rotation 0.3, scale 0.9)."""
    n, c, h_in, h_out = shape
    n = min(n, 16)
    g = torch.Generator().manual_seed(1)
    x = torch.rand(n, c, h_in, h_in, generator=g, dtype=dtype)
    grid = _affine_grid(n, h_out, h_out, 0.3, 0.9, (0.05, -0.05), dtype).requires_grad_(True)
    go = torch.randn(n, c, h_out, h_out, generator=g, dtype=dtype)

    def grad():
        out = linearized_grid_sample(x, grid, align_corners=align_corners,
                                     generator=torch.Generator().manual_seed(7))
        return torch.autograd.grad(out, grid, go)[0]

    def reference():  # the same seed: linearized_grid_sample draws it from the generator
        seed = lin._draw_seed(torch.Generator().manual_seed(7))
        return _reference(x, grid.detach(), go, seed=seed, num_samples=8, sigma=1.0,
                          collapse_noise=True, eps=DEFAULT_EPS, align_corners=align_corners,
                          padding_mode="zeros")

    before = ext.status()["fused_calls"]
    fused = grad()
    assert ext.status()["fused_calls"] == before + 1
    with _eager_path():
        eager = grad()
    _check(fused, eager, x, go, reference, DEFAULT_EPS)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("eps", [0.0, DEFAULT_EPS])
def test_degenerate_grid_without_collapse_noise_gives_exact_zeros(ops, eps, dtype):
    """Zero footprint and no collapse noise: zero offsets, S = 0, b = 0, J = 0 exactly."""
    x = torch.rand(2, 3, 9, 7, generator=torch.Generator().manual_seed(0), dtype=dtype)
    grid = torch.full((2, 4, 5, 2), 0.1, dtype=dtype)
    go = torch.randn(2, 3, 4, 5, generator=torch.Generator().manual_seed(1), dtype=dtype)
    kw = dict(seed=3, num_samples=8, sigma=1.0, collapse_noise=False, eps=eps,
              align_corners=False, padding_mode="zeros")
    fused, eager = _fused_and_eager(x, grid, go, **kw)
    assert torch.equal(fused, torch.zeros_like(fused)) and torch.equal(fused, eager)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("align_corners", [False, True])
def test_auxiliaries_exactly_on_the_bound_count(ops, align_corners, dtype):
    """|x| <= bx: grids at x = bx (image 0) and -bx (image 1), offsets only along y."""
    n, c, h_in, w_in, h, w = 2, 2, 8, 4, 5, 2
    bx = lin._stencil_bound(w_in, align_corners)  # 0.75 or 1: exact in float
    grid = torch.empty(n, h, w, 2, dtype=dtype)
    grid[..., 0] = torch.tensor([bx, -bx], dtype=dtype)[:, None, None]  # zero x footprint
    grid[..., 1] = torch.linspace(-0.5, 0.5, h, dtype=dtype)[:, None]
    g = torch.Generator().manual_seed(0)
    x = torch.rand(n, c, h_in, w_in, generator=g, dtype=dtype)
    go = torch.randn(n, c, h, w, generator=g, dtype=dtype)
    kw = dict(seed=4, num_samples=8, sigma=1.0, collapse_noise=False, eps=DEFAULT_EPS,
              align_corners=align_corners, padding_mode="zeros")
    fused, eager = _fused_and_eager(x, grid, go, **kw)
    assert (eager[..., 1] != 0).all()  # every auxiliary is on the bound, and counts
    _check(fused, eager, x, go, lambda: _reference(x, grid, go, **kw), kw["eps"])


def test_all_out_of_bounds_gives_exactly_zero(ops):
    x = torch.rand(2, 2, 10, 10, generator=torch.Generator().manual_seed(0))
    grid = torch.full((2, 4, 5, 2), 7.0)
    go = torch.ones(2, 2, 4, 5)
    fused, eager = _fused_and_eager(x, grid, go, seed=0, num_samples=8, sigma=1.0,
                                    collapse_noise=True, eps=DEFAULT_EPS,
                                    align_corners=False, padding_mode="zeros")
    assert torch.equal(fused, torch.zeros_like(fused)) and torch.equal(eager, fused)


def test_looser_bounds_use_zero_padding_like_eager(ops, monkeypatch):
    """With the mask switched off (bounds 10), out-of-image samples are zero-padded."""
    monkeypatch.setattr(lin, "_stencil_bound", lambda size, align_corners: 10.0)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 8, 9, generator=g, dtype=torch.float64)
    grid = torch.rand(2, 5, 6, 2, generator=g, dtype=torch.float64) * 3 - 1.5
    go = torch.randn(2, 3, 5, 6, generator=g, dtype=torch.float64)
    for align_corners in (False, True):
        _assert_matches_eager(x, grid, go, seed=1, num_samples=8, sigma=1.0,
                              collapse_noise=True, eps=DEFAULT_EPS,
                              align_corners=align_corners, padding_mode="zeros")


# ----------------------------------------------------- copies, threads, dispatch, memory

@pytest.mark.parametrize("shape", [(3, 2, 13, 11, 6, 7), (2, 1, 28, 28, 28, 28),
                                   (2, 3, 50, 40, 12, 13), (1, 1, 2, 2, 5, 3)])
def test_the_copies_of_the_loops_agree_bit_for_bit(ops, monkeypatch, shape):
    """AVX-512 (float32), AVX2 and portable copies, on grids partly out of bounds; the
    output sizes leave remainders of every vector width (16, 8 and single pixels)."""
    n, c, h_in, w_in, h, w = shape
    g = torch.Generator().manual_seed(0)
    for dtype in DTYPES:
        x = torch.rand(n, c, h_in, w_in, generator=g, dtype=dtype)
        grid = (torch.rand(n, h, w, 2, generator=g, dtype=dtype) * 2.4 - 1.2)
        go = torch.randn(n, c, h, w, generator=g, dtype=dtype)
        kw = dict(seed=2, num_samples=8, sigma=1.0, collapse_noise=True, eps=DEFAULT_EPS,
                  align_corners=False, padding_mode="zeros")
        results = {}
        for isa in (0, 1, 2):
            monkeypatch.setattr(ext, "isa", isa)
            results[isa] = fit_local_gradient(x, grid, go, **kw)
        monkeypatch.setattr(ext, "isa", 0)
        assert torch.equal(results[0], results[2]) and torch.equal(results[1], results[2]), \
            ops.simd()


@pytest.mark.parametrize("isa", [0, 1, 2])
@pytest.mark.parametrize("align_corners", [False, True])
def test_samples_on_the_last_column_and_row_read_no_neighbour(ops, monkeypatch, isa,
                                                             align_corners):
    """Auxiliaries exactly on the right/bottom edge (x = W - 1, y = H - 1 px) must read
    only that pixel: the next row's first pixel and the pixels past the plane are +inf
    here, and reading any of them with a zero weight would give NaN."""
    monkeypatch.setattr(ext, "isa", isa)
    n, c, h_in, w_in = 1, 1, 6, 5
    x = torch.rand(n, c, h_in, w_in, generator=torch.Generator().manual_seed(0))
    x[..., :, 0] = float("inf")  # column 0: the "next pixel" of the last column
    bx = lin._stencil_bound(w_in, align_corners)
    by = lin._stencil_bound(h_in, align_corners)
    h, w = 4, 16  # sixteen output pixels: one full AVX-512 vector
    grid = torch.empty(n, h, w, 2)
    grid[..., 0] = bx  # every sample on the last column (zero x footprint)
    grid[..., 1] = torch.linspace(-0.5, 0.5, h)[:, None]
    go = torch.ones(n, c, h, w)
    kw = dict(seed=4, num_samples=8, sigma=1.0, collapse_noise=False, eps=DEFAULT_EPS,
              align_corners=align_corners, padding_mode="zeros")
    fused = fit_local_gradient(x, grid, go, **kw)
    assert torch.isfinite(fused).all()
    grid2 = grid.flip(-1).clone()  # every sample on the last row, reading past the plane
    grid2[..., 1] = by
    grid2[..., 0] = torch.linspace(-0.3, 0.3, w)[None, :]
    x2 = torch.rand(1, 1, h_in + 1, w_in, generator=torch.Generator().manual_seed(1))
    x2[..., -1, :] = float("inf")  # the row after the plane: x2[..., :-1, :] is the input
    fused2 = fit_local_gradient(x2[..., :-1, :], grid2, go, **kw)
    assert torch.isfinite(fused2).all()


def test_threads_do_not_change_the_result(ops):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(8, 1, 20, 20, generator=g)
    grid = _affine_grid(8, 24, 24, 0.3, 0.9, (0.0, 0.0), torch.float32)
    go = torch.randn(8, 1, 24, 24, generator=g)
    kw = dict(seed=2, num_samples=8, sigma=1.0, collapse_noise=True, eps=DEFAULT_EPS,
              align_corners=False, padding_mode="zeros")
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = fit_local_gradient(x, grid, go, **kw)
        torch.set_num_threads(2)
        two = fit_local_gradient(x, grid, go, **kw)
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(one, two)


def test_no_ext_env_forces_the_eager_path(ops, monkeypatch):
    x = torch.rand(1, 1, 8, 8)
    grid = torch.zeros(1, 2, 2, 2, requires_grad=True)
    monkeypatch.setenv("STNLAB_NO_EXT", "1")
    ext.reset()
    try:
        out = linearized_grid_sample(x, grid, generator=torch.Generator().manual_seed(0))
        torch.autograd.grad(out.sum(), grid)
        st_ = ext.status()
        assert st_["disabled"] and not st_["tried"] and st_["fused_calls"] == 0
        assert ext.load() is None
    finally:
        monkeypatch.delenv("STNLAB_NO_EXT")
        ext.reset()
    assert ext.load() is not None  # back (from the build cache)
    out = linearized_grid_sample(x, grid, generator=torch.Generator().manual_seed(0))
    torch.autograd.grad(out.sum(), grid)
    assert ext.status()["fused_calls"] == 1


def test_a_failed_build_warns_once_and_uses_the_eager_path(ops, monkeypatch):
    def no_compiler(kind="cpu"):
        raise RuntimeError("no C++ compiler here\nmore lines")

    x = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    grid = torch.rand(2, 3, 3, 2, generator=torch.Generator().manual_seed(1)) - 0.5
    go = torch.ones(2, 1, 3, 3)
    kw = dict(seed=0, num_samples=8, sigma=1.0, collapse_noise=True, eps=DEFAULT_EPS,
              align_corners=False, padding_mode="zeros")
    with _eager_path():
        eager = fit_local_gradient(x, grid, go, **kw)
    monkeypatch.setattr(ext, "_build", no_compiler)
    ext.reset()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            first = fit_local_gradient(x, grid, go, **kw)
            second = fit_local_gradient(x, grid, go, **kw)
        msgs = [str(w.message) for w in caught
                if issubclass(w.category, ext.ExtensionUnavailableWarning)]
        assert len(msgs) == 1 and "no C++ compiler here" in msgs[0], msgs
        assert torch.equal(first, eager) and torch.equal(second, eager)
        assert ext.status()["error"].startswith("RuntimeError: no C++ compiler here")
    finally:
        monkeypatch.undo()
        ext.reset()
    assert ext.load() is not None


def test_diagnostics_use_the_eager_path(ops):
    x = torch.rand(1, 2, 12, 12, generator=torch.Generator().manual_seed(0),
                   dtype=torch.float64)
    grid = _affine_grid(1, 4, 4, 0.2, 0.7, (0.0, 0.0), torch.float64)
    go = torch.ones(1, 2, 4, 4, dtype=torch.float64)
    kw = dict(seed=0, num_samples=8, sigma=1.0, collapse_noise=True, eps=DEFAULT_EPS,
              align_corners=False, padding_mode="zeros")
    before = ext.status()["fused_calls"]
    fit = fit_local_gradient(x, grid, go, diagnostics=True, **kw)
    assert ext.status()["fused_calls"] == before
    fused = fit_local_gradient(x, grid, go, **kw)
    torch.testing.assert_close(fused, fit.grad_grid, rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------------- the CUDA kernel
# CI has no GPU: these run where CUDA is (the device session's `pytest -k cuda`). A
# machine with CUDA but no nvcc skips them, unless STNLAB_REQUIRE_EXT=1 makes that a
# failure (as the GPU session does).

@pytest.fixture(scope="module")
def cuda_ops():
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    o = ext.load("cuda")
    if o is None:
        why = ext.status("cuda")["error"]
        if os.environ.get("STNLAB_REQUIRE_EXT"):
            pytest.fail(f"fused CUDA kernel unavailable: {why}")
        pytest.skip(f"fused CUDA kernel unavailable: {why}")
    return o


def _assert_cuda_matches_eager(x, grid, go, **kw):
    x, grid, go = x.cuda(), grid.cuda(), go.cuda()
    before = ext.status("cuda")["fused_calls"]
    fused = fit_local_gradient(x, grid, go, **kw)
    assert ext.status("cuda")["fused_calls"] == before + 1, "the CUDA kernel did not run"
    with _eager_path():
        eager = fit_local_gradient(x, grid, go, **kw)
    assert ext.status("cuda")["fused_calls"] == before + 1
    # the reference draws the same (CUDA, float32) noise: _float32_noise keeps the device
    _check(fused.cpu(), eager.cpu(), x.cpu(), go.cpu(),
           lambda: _reference_cpu(x, grid, go, **kw), kw["eps"])


def _reference_cpu(x, grid, go, **kw):
    ref, fit = _reference(x, grid, go, **kw)
    return ref.cpu(), lin.LinearizedFit(fit.grad_grid.cpu(), fit.normal.cpu(), fit.count.cpu())


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@settings(max_examples=100)
@given(case=fit_cases())
def test_cuda_fused_matches_eager(cuda_ops, case, dtype):
    x, grid, go, kw = _make(case, dtype)
    _assert_cuda_matches_eager(x, grid, go, **kw)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("shape", [(256, 1, 28, 28), (64, 3, 50, 12), (8, 3, 256, 32)])
def test_cuda_fused_matches_eager_on_bench_shapes(cuda_ops, shape, align_corners, dtype):
    n, c, h_in, h_out = shape
    g = torch.Generator().manual_seed(1)
    x = torch.rand(n, c, h_in, h_in, generator=g, dtype=dtype)
    grid = _affine_grid(n, h_out, h_out, 0.3, 0.9, (0.05, -0.05), dtype)
    go = torch.randn(n, c, h_out, h_out, generator=g, dtype=dtype)
    _assert_cuda_matches_eager(x, grid, go, seed=3, num_samples=8, sigma=1.0,
                               collapse_noise=True, eps=DEFAULT_EPS,
                               align_corners=align_corners, padding_mode="zeros")


def test_cuda_autograd_runs_the_kernel(cuda_ops):
    x = torch.rand(2, 1, 8, 8, device="cuda")
    grid = (torch.rand(2, 3, 3, 2, device="cuda") * 1.6 - 0.8).requires_grad_(True)
    before = ext.status("cuda")["fused_calls"]
    out = linearized_grid_sample(x, grid, generator=torch.Generator("cuda").manual_seed(0))
    (g,) = torch.autograd.grad(out.sum(), grid)
    assert ext.status("cuda")["fused_calls"] == before + 1
    assert g.shape == grid.shape and torch.isfinite(g).all()


def test_fused_backward_allocates_only_its_result(ops):
    """Peak memory: the (N, h, w, 2) result and the noise field, nothing K-sized (after a
    first call, which also draws the noise pool of sampling.linearized once per dtype)."""
    from proofs.bench import peak_memory

    g = torch.Generator().manual_seed(0)
    n, c, h, k = 16, 3, 16, 8
    x = torch.rand(n, c, 32, 32, generator=g, dtype=torch.float64)
    grid = _affine_grid(n, h, h, 0.3, 0.9, (0.0, 0.0), torch.float64)
    go = torch.randn(n, c, h, h, generator=g, dtype=torch.float64)
    out = F.grid_sample(x, grid, align_corners=False)
    kw = dict(seed=0, num_samples=k, sigma=1.0, collapse_noise=True, eps=DEFAULT_EPS,
              align_corners=False, padding_mode="zeros")
    fit_local_gradient(x, grid, go, out, **kw)  # the pool, once
    fused = peak_memory(lambda: fit_local_gradient(x, grid, go, out, **kw),
                        torch.device("cpu"))
    with _eager_path():
        eager = peak_memory(lambda: fit_local_gradient(x, grid, go, out, **kw),
                            torch.device("cpu"))
    result, noise = n * h * h * 2 * 8, 4 * k * h * h * 8
    assert fused <= result + noise + 4096, (fused, result, noise)
    assert fused < eager / 2, (fused, eager)


def test_kernel_checks_its_inputs(ops):
    x = torch.rand(1, 1, 4, 4)
    grid = torch.zeros(1, 2, 2, 2)
    go = torch.ones(1, 1, 2, 2)
    noise = torch.zeros(4, 3, 2, 2)
    with pytest.raises(RuntimeError, match="one dtype"):
        ops.fit(x, grid.double(), go, go, noise, True, 1e-3, 1e-3, 0.75, 0.75, False, 0)
    with pytest.raises(RuntimeError, match="contiguous"):
        ops.fit(x, grid.transpose(1, 2), go, go, noise, True, 1e-3, 1e-3, 0.75, 0.75,
                False, False)


# ----------------------------------------------------------------------------- the build

def test_kernel_builds_where_a_toolchain_exists():
    """A compiler and ninja are here (CI has both): the build must succeed, not fall back."""
    from torch.utils import cpp_extension

    if ext.disabled():
        pytest.skip("STNLAB_NO_EXT is set")
    if shutil.which(os.environ.get("CXX", "c++")) is None or not cpp_extension.is_ninja_available():
        pytest.skip("no C++ compiler or no ninja")
    assert ext.load() is not None, ext.status()["error"]


def test_a_stale_build_lock_is_removed(tmp_path):
    lock = tmp_path / "lock"
    lock.write_text("")
    ext._clear_stale_lock(str(tmp_path))  # fresh: a build is running, keep it
    assert lock.exists()
    old = time.time() - ext.STALE_LOCK_SECONDS - 10
    os.utime(lock, (old, old))
    with pytest.warns(ext.ExtensionUnavailableWarning, match="stale build lock"):
        ext._clear_stale_lock(str(tmp_path))
    assert not lock.exists()


def test_compiling_is_announced_only_when_it_really_compiles(tmp_path, monkeypatch, capsys):
    """One stderr line before a real compile; nothing when the library is cached. The build
    itself is a stub here (a real compile takes ~15 s); the cached case is also checked
    against the real build below."""
    from torch.utils import cpp_extension

    builds = []

    def fake_load(**kw):
        builds.append(kw["build_directory"])
        raise RuntimeError("stub build")

    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path))
    monkeypatch.delenv("STNLAB_NO_EXT", raising=False)
    monkeypatch.setattr(cpp_extension, "load", fake_load)
    saved = dict(ext._states["cpu"])
    try:
        ext.reset("cpu")
        capsys.readouterr()
        with pytest.warns(ext.ExtensionUnavailableWarning, match="stub build"):
            assert ext.load("cpu") is None
        assert capsys.readouterr().err.splitlines() == [ext.COMPILING_MESSAGE["cpu"]]
        assert ext.COMPILING_MESSAGE["cpu"].startswith(
            "stnlab: compiling the linearized sampler's kernel (once, ~15 s)")
        ext.reset("cpu")  # now a library of that name is there: cached, so silent
        (tmp_path / builds[0] / (ext._name("cpu") + ".so")).write_bytes(b"")
        with pytest.warns(ext.ExtensionUnavailableWarning, match="stub build"):
            ext.load("cpu")
        assert len(builds) == 2 and capsys.readouterr().err == ""
    finally:
        ext._states["cpu"].update(saved)


def test_a_cached_kernel_loads_silently_in_a_fresh_process():
    import subprocess
    import sys

    from torch.utils import cpp_extension

    if ext.disabled():
        pytest.skip("STNLAB_NO_EXT is set")
    if shutil.which(os.environ.get("CXX", "c++")) is None or not cpp_extension.is_ninja_available():
        pytest.skip("no C++ compiler or no ninja")
    assert ext.load() is not None  # built (or cached) by now
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [root] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    # Also: the name (a hash of the flags) is the same before and after the first load of a
    # process (torch's loader extends the ldflags list it gets; a shared list changed the name,
    # and every load after reset() compiled another copy).
    script = ("import sampling._ext as e; n = e._name(); assert e.load(); "
              "assert e._name() == n == e.status()['name'], (n, e._name())")
    r = subprocess.run([sys.executable, "-c", script],
                       capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "compiling" not in r.stderr, r.stderr


@pytest.mark.filterwarnings("error::UserWarning")  # the rule, not functorch's fallback loop
@pytest.mark.parametrize("batched", ["all", "grid-only", "noise-too"])
def test_fit_vmap_rule_equals_one_call_per_slice(ops, batched):
    """vmap of ``fit`` (the registered batching rule) equals a loop over the slices, bit
    for bit (exact: each image's fit is computed by the same code on the same values)."""
    from torch.func import vmap

    g = torch.Generator().manual_seed(3)
    b, n, h = 3, 2, 5
    x = torch.rand(b, n, 2, 8, 8, generator=g, dtype=torch.float64)
    grid = torch.rand(b, n, h, h, 2, generator=g, dtype=torch.float64) * 1.6 - 0.8
    go = torch.randn(b, n, 2, h, h, generator=g, dtype=torch.float64)
    noise = torch.randn(b, 4, 3, h, h, generator=g, dtype=torch.float64)
    out = torch.stack([F.grid_sample(x[i], grid[i], align_corners=False) for i in range(b)])
    if batched == "grid-only":  # one image batch and one upstream gradient for every slice
        x, go, out = x[0], go[0], F.grid_sample(x[0], grid[0], align_corners=False)
    scalars = (True, 1e-3, 1e-3, 0.75, 0.75, False, 0)

    def fit(x_, grid_, go_, out_, noise_):
        return ops.fit(x_, grid_, go_, out_, noise_, *scalars)

    dims = (None, 0, None, None, None) if batched == "grid-only" else (0, 0, 0, 0, None)
    if batched == "noise-too":
        dims = (0, 0, 0, 0, 0)
    got = vmap(fit, in_dims=dims)(x, grid, go, out, noise if batched == "noise-too" else noise[0])
    pick = (lambda t, d, i: t[i] if d is not None else t)
    ref = torch.stack([fit(*[pick(t, d, i).contiguous() for t, d in zip(
        (x, grid, go, out, noise if batched == "noise-too" else noise[0]), dims)])
        for i in range(b)])
    assert got.shape == (b, n, h, h, 2)
    assert torch.equal(got, ref)
    # ... and the rule, not functorch's per-slice fallback, ran (that fallback only warns
    # on stderr from C++ when called outside autograd, so ask the dispatcher):
    assert torch._C._dispatch_has_kernel_for_dispatch_key(f"{ext.status()['name']}::fit",
                                                          "FuncTorchBatched")
    assert not torch.equal(got[0], got[1])


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("isa", [0, 1, 2])
@pytest.mark.parametrize("c", [1, 2])
@pytest.mark.parametrize("sigma,collapse", [(1.0, True), (0.5, True), (2.0, False)])
def test_c1_specialization_and_in_kernel_noise_scaling_match_eager(ops, monkeypatch, dtype,
                                                                   isa, c, sigma, collapse):
    """The CPU kernel scales the raw pool variates itself (sigma, one input pixel) and has a
    C = 1 copy of its SIMD loops (float32): each copy, at C = 1 and C = 2, with sigma != 1
    and without collapse noise, matches the eager path (the reference) by the module
    docstring's criterion, on output sizes that fill 16- and 8-wide vectors and leave
    remainders (29 x 23 pixels)."""
    monkeypatch.setattr(ext, "isa", isa)
    g = torch.Generator().manual_seed(5)
    n, h_in, w_in, h, w = 3, 30, 26, 29, 23
    x = torch.rand(n, c, h_in, w_in, generator=g, dtype=dtype)
    grid = _affine_grid(n, h, w, 0.4, 0.85, (0.03, -0.02), dtype).contiguous()
    go = torch.randn(n, c, h, w, generator=g, dtype=dtype)
    _assert_matches_eager(x, grid, go, seed=11, num_samples=8, sigma=sigma,
                          collapse_noise=collapse, eps=DEFAULT_EPS, align_corners=False,
                          padding_mode="zeros")


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("padding_mode", ["zeros", "border", "reflection"])
@pytest.mark.parametrize("input_grad", [False, True])
def test_the_cpp_autograd_op_equals_the_python_function(ops, monkeypatch, dtype, padding_mode,
                                                        input_grad):
    """Outside torch.func transforms linearized_grid_sample runs ops.sample (forward and
    backward in C++); it must give the Python Function's value and both gradients bit for
    bit, count its kernel calls, and give the value alone under inference mode."""
    g = torch.Generator().manual_seed(2)
    x = torch.rand(3, 2, 13, 11, generator=g, dtype=dtype).requires_grad_(input_grad)
    grid = (_affine_grid(3, 7, 9, 0.3, 0.9, (0.05, -0.05), dtype) * 1.1).requires_grad_(True)
    go = torch.randn(3, 2, 7, 9, generator=g, dtype=dtype)

    def run():
        out = linearized_grid_sample(x, grid, padding_mode=padding_mode,
                                     generator=torch.Generator().manual_seed(9))
        wrt = (x, grid) if input_grad else (grid,)
        return (out, *torch.autograd.grad(out, wrt, go))

    before = ext.status()["fused_calls"]
    fast = run()
    assert ext.status()["fused_calls"] == before + 1
    assert "CppNode" in fast[0].grad_fn.name()  # the C++ node, not the Python Function
    monkeypatch.setattr(lin, "_fused_sample", lambda *a, **k: None)
    slow = run()
    assert ext.status()["fused_calls"] == before + 2
    assert "CppNode" not in slow[0].grad_fn.name()
    assert all(torch.equal(a, b) for a, b in zip(fast, slow, strict=True))
    monkeypatch.undo()
    out = linearized_grid_sample(x, grid, padding_mode=padding_mode)
    with pytest.raises(RuntimeError, match="not differentiable"):
        torch.autograd.grad(out, grid, go, create_graph=True)
    with torch.inference_mode():
        ref = F.grid_sample(x.detach(), grid.detach(), padding_mode=padding_mode,
                            align_corners=False)
        assert torch.equal(linearized_grid_sample(x.detach(), grid.detach(),
                                                  padding_mode=padding_mode), ref)
