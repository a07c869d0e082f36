"""Precision modes of the training step (models/precision.py): measured, not assumed."""

from __future__ import annotations

import math

import pytest
import torch

from models.precision import PRECISIONS, Precision, is_channels_last, to_channels_last
from models.train import init_models, make_step, preset
from models.suites.mnist import SUITE as MNIST
from models.errors import ConfigError as UsageError
from tests.tolerances import tol

#: bf16 unit roundoff: an 8-bit significand (7 stored + 1 implicit) rounds to within 2^-8.
BF16_U = 2.0 ** -8
#: Matmul-like ops (conv, linear, the affine-grid matmul) autocast runs in bf16 on the
#: longest path of the networks below (S / STN-C0: 2 loc convs, loc dense, theta layer,
#: affine grid, 2 classifier convs, head = 8; T / STN-C1: 1 conv, 2 loc convs, loc dense,
#: theta layer, grid, 1 conv, head = 8).
BF16_OPS = 8
#: derived: first-order error propagation with condition number ~1 per op; each op rounds
#: both operands (2u) and its output (u): 3u per op, L ops add up on the forward.
BF16_FWD_RTOL = 3 * BF16_U * BF16_OPS
#: derived: the backward traverses the same L ops again (their transposes): twice the forward.
BF16_GRAD_RTOL = 2 * BF16_FWD_RTOL


def _setup(variant, net, seeds, batch=6, seed=0):
    cfg = preset("small", variant, net, seeds=tuple(range(seeds)), batch_size=batch)
    base, params = init_models(cfg, MNIST.build)
    gen = torch.Generator().manual_seed(seed)
    shape = (seeds, batch) + tuple(base.in_shape)
    x = torch.rand(shape, generator=gen)  # (S, B, C, H, W)
    y = torch.randint(0, 10, (seeds, batch), generator=gen)
    return base, params, x, y


def _rel(a: dict, b: dict, i: int) -> float:
    """||a - b|| / ||b|| over all parameter tensors of seed ``i``."""
    num = sum(float((a[k][i].double() - b[k][i].double()).square().sum()) for k in b)
    den = sum(float(b[k][i].double().square().sum()) for k in b)
    return math.sqrt(num / den)


def bf16_close(got, ref) -> list[str]:
    """Problems of a bf16 step's ``(grads, loss)`` against the fp32 step's (empty: close)."""
    (g, loss), (g0, loss0) = got, ref
    bad = []
    for i in range(loss0.shape[0]):
        if not (torch.isfinite(loss[i]) and all(torch.isfinite(v[i]).all() for v in g.values())):
            bad.append(f"seed {i}: non-finite loss or gradient")
            continue
        lr = abs(float(loss[i] - loss0[i])) / abs(float(loss0[i]))
        if lr > BF16_FWD_RTOL:
            bad.append(f"seed {i}: loss rel. error {lr:.3g} > {BF16_FWD_RTOL:.3g}")
        gr = _rel(g, g0, i)
        if gr > BF16_GRAD_RTOL:
            bad.append(f"seed {i}: gradient rel. error {gr:.3g} > {BF16_GRAD_RTOL:.3g}")
    return bad


def test_parse_names_every_mode_and_rejects_others():
    assert [Precision.parse(m).value for m in PRECISIONS] == list(PRECISIONS)
    assert Precision.parse(Precision.BF16) is Precision.BF16
    assert Precision.BF16_CHANNELS_LAST.autocast_dtype == torch.bfloat16
    assert Precision.CHANNELS_LAST.autocast_dtype is None
    assert Precision.BF16_CHANNELS_LAST.channels_last and not Precision.BF16.channels_last
    with pytest.raises(UsageError, match=r"Precision.parse: expected precision in .* got 'fp16'"):
        Precision.parse("fp16")


def test_to_channels_last_4d_is_torch_channels_last_and_5d_per_slice():
    x = torch.rand(2, 3, 4, 5)
    cl = to_channels_last(x)
    assert torch.equal(cl, x) and cl.stride() == x.contiguous(
        memory_format=torch.channels_last).stride()
    assert is_channels_last(cl) and not is_channels_last(x)
    s = torch.rand(4, 2, 3, 5, 6)  # (S, B, C, H, W)
    scl = to_channels_last(s)
    assert torch.equal(scl, s) and is_channels_last(scl) and not is_channels_last(s)
    assert all(scl[i].is_contiguous(memory_format=torch.channels_last) for i in range(4))
    with pytest.raises(UsageError, match=r"to_channels_last: expected .* 4 dims .* \(2, 3, 4\)"):
        to_channels_last(torch.rand(2, 3, 4))


@pytest.mark.parametrize("seeds", [1, 2])
def test_fp32_mode_is_bit_identical_to_the_step(seeds):
    base, params, x, y = _setup("T", "STN-C1", seeds)
    raw = make_step(base, seeds > 1)
    mode = Precision.FP32
    g, loss, logits = mode.wrap_step(make_step(base, seeds > 1), "cpu")(
        mode.format_params(params), mode.format_input(x), y)
    g0, loss0, logits0 = raw(params, x, y)
    assert torch.equal(loss, loss0) and torch.equal(logits, logits0)
    assert all(torch.equal(g[k], g0[k]) for k in g0)


def test_autocast_reaches_inside_vmap():
    base, params, x, y = _setup("S", "STN-C0", 2, batch=4)
    step = make_step(base, True)
    with Precision.BF16.autocast("cpu"):
        g, loss, logits = step(params, x, y)
    assert logits.dtype == torch.bfloat16  # the head (a linear layer) ran in bf16 under vmap
    assert loss.dtype == torch.float32  # cross_entropy stays fp32 under autocast
    assert all(v.dtype == torch.float32 for v in g.values())


# Regression: sampling.warp_affine builds the grid in float32 under autocast. With the grid
# in bf16 (the old models.stn.affine_grid matmul under autocast), S/STN-C0 gradients were
# 0.3-0.4 off fp32 (relative norm) and the theta layer 0.6-1.2.
def test_bf16_step_builds_the_grid_in_float32():
    base, params, x, y = _setup("S", "STN-C0", 2, batch=4)
    m = Precision.BF16
    g, loss, _ = m.wrap_step(make_step(base, True), "cpu")(params, x, y)
    g0, loss0, _ = make_step(base, True)(params, x, y)
    assert bf16_close((g, loss), (g0, loss0)) == []


@pytest.mark.parametrize("variant, net, seeds", [("S", "STN-C0", 2), ("S", "STN-C0", 1),
                                                 ("T", "STN-C1", 2)])
@pytest.mark.parametrize("mode", ["bf16", "bf16_channels_last"])
def test_bf16_step_is_finite_and_close_to_fp32(variant, net, seeds, mode):
    base, params, x, y = _setup(variant, net, seeds, batch=4)
    m = Precision.parse(mode)
    g, loss, logits = m.wrap_step(make_step(base, seeds > 1), "cpu")(
        m.format_params(params), x, y)
    g0, loss0, _ = make_step(base, seeds > 1)(params, x, y)
    assert loss.dtype == logits.dtype == torch.float32
    assert all(g[k].dtype == torch.float32 and g[k].shape == g0[k].shape for k in g0)
    assert bf16_close((g, loss), (g0, loss0)) == []
    # ...and the check sees a wrong gradient: the fp32 gradients of other labels.
    g_wrong, loss_wrong, _ = make_step(base, seeds > 1)(params, x, (y + 1) % 10)
    assert bf16_close((g_wrong, loss_wrong), (g0, loss0)) != []


@pytest.mark.parametrize("seeds", [1, 2])
def test_channels_last_step_matches_fp32_and_keeps_the_layout(seeds):
    base, params, x, y = _setup("S", "STN-C0", seeds, batch=4)
    m = Precision.CHANNELS_LAST
    p = m.format_params(params)
    convs = [k for k, v in params.items() if v.dim() == 5]  # stacked (S, O, C, kh, kw)
    assert convs and all(is_channels_last(p[k]) for k in convs)
    g, loss, _ = m.wrap_step(make_step(base, seeds > 1), "cpu")(p, x, y)
    g0, loss0, _ = make_step(base, seeds > 1)(params, x, y)
    # a priori: the project's float32 tolerance (a reordered sum in the conv kernels).
    torch.testing.assert_close(loss, loss0, **tol(torch.float32))
    for k in g0:
        torch.testing.assert_close(g[k], g0[k], **tol(torch.float32, scale=10))
    new = {k: v - 0.01 * g[k] for k, v in p.items()}  # the loop's SGD update
    assert all(is_channels_last(new[k]) for k in convs)
