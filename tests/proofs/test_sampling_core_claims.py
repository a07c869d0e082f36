"""SMP-1, 3, 4, 5 verify on the shipped sampler and are not verified for a substitute.

Break cases: plain bilinear sampling swapped in for ``sampling.linearized_grid_sample``
(exact on affine images and zero out of bounds too) must not verify SMP-1, SMP-3 or SMP-4;
one bad seed fails a claim (every seed must pass); a fused kernel that drifts from the eager
path fails the fused-vs-eager part.
"""

from __future__ import annotations

import pytest
import torch.nn.functional as F

import proofs.claims.sampling_core as core
import sampling
import sampling.linearized as lin
from proofs.registry import CheckContext


@pytest.fixture
def ctx(tmp_path):
    return CheckContext(out_dir=tmp_path, quick=True, seed=0)


CHECKS = {
    "SMP-1": core.smp1_forward_is_bilinear,
    "SMP-3": core.smp3_affine_gradient_is_exact,
    "SMP-4": core.smp4_masking_and_finiteness,
    "SMP-5": core.smp5_collapse_prevention,
}


def _bilinear(input, grid, *, align_corners=False, padding_mode="zeros", **_):
    return F.grid_sample(input, grid, mode="bilinear", padding_mode=padding_mode,
                         align_corners=align_corners)


@pytest.mark.parametrize("cid", sorted(CHECKS))
def test_smp_checks_verify_on_the_shipped_sampler(ctx, cid):
    ev = CHECKS[cid](ctx)
    assert ev.status == "verified", ev.summary
    assert ev.numbers["seeds"] == list(ctx.seeds)
    if sampling._ext.load("cpu") is not None:
        assert all(ev.numbers["fused_kernel_ran_per_seed"].values())
    assert ev.numbers["max_rel_diff_fused_vs_eager"]["max"] <= core.FUSED_RTOL


@pytest.mark.parametrize("cid, part", [
    ("SMP-1", "min_rel_diff_backward_vs_bilinear"),
    ("SMP-3", "max_rel_error_vs_numpy_reference"),
    ("SMP-4", "max_rel_error_vs_masked_reference"),
])
def test_bilinear_substitute_is_not_verified(ctx, monkeypatch, cid, part):
    monkeypatch.setattr(sampling, "linearized_grid_sample", _bilinear)
    ev = CHECKS[cid](ctx)
    assert ev.status == "failed", ev.summary
    # the part built for it is the one that fails, in every seed
    worst = ev.numbers[part]
    if part.startswith("min_"):
        assert worst["max"] < core.CLEAR
    else:
        assert worst["min"] > core.REF_RTOL


def test_one_bad_seed_fails_the_claim(ctx, monkeypatch):
    """A sampler that is bilinear only for the last seed's calls: SMP-3 fails as a whole."""
    real = lin.linearized_grid_sample
    bad_seed = ctx.seeds[-1]
    last = {"seed": None}  # the seed of the last generator the check made
    orig_gen = core._gen

    def gen(seed):
        last["seed"] = seed
        return orig_gen(seed)

    def sometimes(input, grid, **kw):
        if bad_seed <= last["seed"] < bad_seed + 100:
            return _bilinear(input, grid, **kw)
        return real(input, grid, **kw)

    monkeypatch.setattr(sampling, "linearized_grid_sample", sometimes)
    monkeypatch.setattr(core, "_gen", gen)
    ev = core.smp3_affine_gradient_is_exact(ctx)
    assert ev.status == "failed"
    per = ev.numbers["max_rel_error_vs_numpy_reference"]["per_seed"]
    assert per[str(ctx.seeds[0])] <= core.REF_RTOL < per[str(bad_seed)]


def test_fused_kernel_drift_fails_the_fused_vs_eager_part(ctx, monkeypatch):
    """A fused kernel whose result is off by 1e-6 relative (an eager path unchanged)."""
    if sampling._ext.load("cpu") is None:
        pytest.skip("the fused CPU kernel is not available here")
    real = sampling._ext.fit

    def drift(kind, *args):
        out = real(kind, *args)
        return None if out is None else out * (1 + 1e-6)

    monkeypatch.setattr(sampling._ext, "fit", drift)
    ev = core.smp5_collapse_prevention(ctx)
    assert ev.status == "failed"
    assert ev.numbers["max_rel_diff_fused_vs_eager"]["min"] > core.FUSED_RTOL


def test_masking_part_fails_when_masking_is_switched_off(ctx, monkeypatch):
    """_stencil_bound = inf keeps every auxiliary (no masking): SMP-4's masked-reference part
    fails while a bilinear-free sampler is otherwise unchanged."""
    monkeypatch.setattr(lin, "_stencil_bound", lambda size, align_corners: float("inf"))
    ev = core.smp4_masking_and_finiteness(ctx)
    assert ev.status == "failed"
    assert ev.numbers["max_rel_error_vs_masked_reference"]["min"] > core.REF_RTOL
