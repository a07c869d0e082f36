"""Properties of the sampler experiments' library (sampling/experiments.py)."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from sampling import experiments as ex
from sampling import geometry as g

seeds = st.integers(0, 2**31 - 1)


def smooth_image(size: int = 32, dtype=torch.float64, device="cpu") -> torch.Tensor:
    """``(1, size, size)``: two off-centre Gaussian blobs (smooth, no symmetry)."""
    t = torch.linspace(-1, 1, size, dtype=dtype, device=device)
    y, x = torch.meshgrid(t, t, indexing="ij")
    img = torch.exp(-((x - 0.15) ** 2 + (y + 0.1) ** 2) / 0.08)
    img = img + 0.6 * torch.exp(-((x + 0.3) ** 2 + (y - 0.25) ** 2) / 0.15)
    return img.unsqueeze(0)


# ------------------------------------------------------------------- gradient field
def test_gradient_field_is_zero_at_truth_and_points_inwards_nearby(dtype, device):
    img = smooth_image(dtype=dtype, device=device)
    ring = torch.tensor([[math.cos(a), math.sin(a)] for a in
                         torch.linspace(0, 2 * math.pi, 9)[:-1].tolist()], dtype=dtype) * 0.05
    offsets = torch.cat([torch.zeros(1, 2, dtype=dtype), ring]).to(device)  # (9, 2)
    f = ex.gradient_field(img, downsample=1, offsets=offsets, method="bilinear", crop=2 / 3)
    assert f.descent[0].abs().max() <= 1e-6  # target rendered at t = 0: zero residual
    assert f.loss[0] <= 1e-12
    assert math.isnan(f.cosine[0])
    assert bool((f.cosine[1:] > 0.9).all()), f.cosine
    assert f.basin_fraction == 1.0 and f.radius_is_lower_bound


def test_gradient_field_detects_outward_gradients():
    """The statistics must flag a field that points away from the truth."""
    img = smooth_image()
    offsets = ex.offset_grid(0.05, 3, dtype=torch.float64)
    f = ex.gradient_field(img, downsample=1, offsets=offsets)
    flipped = -f.descent
    cos = (flipped * -f.offsets).sum(-1) / (flipped.norm(dim=-1) * f.offsets.norm(dim=-1))
    frac, radius, lower = ex.basin_statistics(f.offsets, cos)
    assert frac == 0.0 and not lower
    assert radius == pytest.approx(0.05)


def test_basin_statistics_known_values():
    offsets = torch.tensor([[0.0, 0.0], [0.1, 0.0], [0.0, 0.2], [0.3, 0.0], [0.0, -0.4]])
    cos = torch.tensor([float("nan"), 0.9, 0.8, 0.2, 0.95])
    frac, radius, lower = ex.basin_statistics(offsets, cos, 0.7)
    assert frac == pytest.approx(3 / 4)
    assert radius == pytest.approx(0.3) and not lower
    frac, radius, lower = ex.basin_statistics(offsets, torch.tensor([float("nan"), 1, 1, 1, 1.0]))
    assert frac == 1.0 and radius == pytest.approx(0.4) and lower
    # a zero gradient (NaN cosine) away from the truth is a miss
    frac, _, _ = ex.basin_statistics(offsets, torch.tensor([float("nan")] * 5))
    assert frac == 0.0


def test_offset_grid_is_symmetric_with_exact_zero():
    o = ex.offset_grid(0.7, 15)
    assert o.shape == (225, 2)
    assert bool((o.norm(dim=-1) == 0).any())
    assert torch.equal(o, -o.flip(0))


def test_gradient_field_rejects_bad_input():
    img = smooth_image()
    offs = ex.offset_grid(0.1, 3)
    with pytest.raises(ValueError, match="offsets"):
        ex.gradient_field(img, downsample=1, offsets=torch.zeros(4, 3))
    with pytest.raises(ValueError, match="image"):
        ex.gradient_field(img.expand(2, 1, 32, 32), downsample=1, offsets=offs)
    with pytest.raises(ValueError, match="downsample"):
        ex.gradient_field(img, downsample=0, offsets=offs)
    with pytest.raises(ValueError, match="method"):
        ex.gradient_field(img, downsample=1, offsets=offs, method="nearest")


def test_gradient_field_runs_with_the_linearized_sampler():
    pytest.importorskip("sampling.linearized")
    img = smooth_image(dtype=torch.float32)
    f = ex.gradient_field(img, downsample=4, offsets=ex.offset_grid(0.3, 3), method="linearized",
                          generator=torch.Generator().manual_seed(0))
    assert f.descent.shape == (9, 2) and bool(torch.isfinite(f.descent).all())
    assert f.descent[4].abs().max() <= 1e-6  # zero residual at the truth, whatever the fit


# --------------------------------------------------------------------- corner error
def test_corner_error_is_zero_for_identity_and_the_shift_for_a_translation(dtype, device):
    truth = ex.region_matrix(3, 2 / 3, dtype=dtype, device=device)
    assert ex.corner_reprojection_error(truth, truth).abs().max() == 0
    shifted = truth.clone()
    shifted[:, :, 2] += torch.tensor([0.3, -0.4], dtype=dtype, device=device)
    err = ex.corner_reprojection_error(shifted, truth)
    torch.testing.assert_close(err, torch.full((3,), 0.5, dtype=dtype, device=device))


@given(seed=seeds)
def test_corner_error_of_a_translation_is_its_norm_for_any_truth(seed):
    gen = torch.Generator().manual_seed(seed)
    truth = g.params_to_matrix(torch.rand(4, generator=gen, dtype=torch.float64) * 6 - 3,
                               torch.randn(4, 2, generator=gen, dtype=torch.float64) * 0.3,
                               torch.randn(4, generator=gen, dtype=torch.float64) * 0.3,
                               torch.randn(4, 2, generator=gen, dtype=torch.float64))
    t = torch.randn(4, 2, generator=gen, dtype=torch.float64)
    est = truth.clone()
    est[:, :, 2] += t
    torch.testing.assert_close(ex.corner_reprojection_error(est, truth), t.norm(dim=-1))


def test_corner_error_known_scaling_and_nonfinite():
    truth = ex.region_matrix(1, 1.0, dtype=torch.float64)
    est = ex.region_matrix(1, 1.5, dtype=torch.float64)  # corners move by 0.5 * sqrt(2)
    assert float(ex.corner_reprojection_error(est, truth)) == pytest.approx(0.5 * math.sqrt(2))
    est[0, 0, 0] = float("nan")
    assert math.isinf(float(ex.corner_reprojection_error(est, truth)))
    with pytest.raises(ValueError, match="truth"):
        ex.corner_reprojection_error(est, torch.zeros(2, 2, 3, dtype=torch.float64))


# --------------------------------------------------------------------------- recall
@given(seed=seeds, n=st.integers(1, 40))
def test_recall_curve_is_monotone_and_in_unit_interval(seed, n):
    gen = torch.Generator().manual_seed(seed)
    errors = torch.rand(n, generator=gen) * 0.6
    errors[torch.rand(n, generator=gen) < 0.2] = float("inf")
    errors[torch.rand(n, generator=gen) < 0.1] = float("nan")
    th = torch.sort(torch.rand(30, generator=gen) * 0.7).values
    r = ex.recall_curve(errors, th)
    assert r.shape == (30,)
    assert bool((r >= 0).all() and (r <= 1).all())
    assert bool((r[1:] >= r[:-1]).all())
    finite = torch.isfinite(errors)
    assert float(ex.recall_curve(errors, torch.tensor([1.0]))[0]) == pytest.approx(
        float(finite.double().mean()))


def test_recall_curve_known_values_and_bad_input():
    r = ex.recall_curve(torch.tensor([0.1, 0.2, 0.3, float("inf")]),
                        torch.tensor([0.0, 0.1, 0.25, 1.0]))
    torch.testing.assert_close(r, torch.tensor([0.0, 0.25, 0.5, 0.75], dtype=torch.float64))
    assert ex.recall_auc(torch.zeros(3), 0.5) == 1.0
    assert ex.recall_auc(torch.full((3,), float("inf")), 0.5) == 0.0
    with pytest.raises(ValueError, match="errors"):
        ex.recall_curve(torch.zeros(0), torch.tensor([0.1]))
    with pytest.raises(ValueError, match="thresholds"):
        ex.recall_curve(torch.zeros(3), torch.zeros(2, 2))
    with pytest.raises(ValueError, match="max_threshold"):
        ex.recall_auc(torch.zeros(3), 0.0)


# --------------------------------------------------------------------- perturbations
def test_perturbations_are_seeded_and_clipped():
    p = ex.Perturbation(rotation_std=0.5, log_scale_std=0.2, translation_std=0.1, clip=2.0)
    a = ex.sample_perturbations(500, p, generator=torch.Generator().manual_seed(3),
                                dtype=torch.float64)
    b = ex.sample_perturbations(500, p, generator=torch.Generator().manual_seed(3),
                                dtype=torch.float64)
    assert torch.equal(a, b)
    params = g.matrix_to_params(a)
    assert float(params.angle.abs().max()) <= 1.0 + 1e-9
    assert float(params.log_scale.abs().max()) <= 0.4 + 1e-9
    assert float(params.translation.abs().max()) <= 0.2 + 1e-9
    assert float(params.shear.abs().max()) <= 1e-9
    assert 0.3 < float(params.angle.std()) < 0.6  # not degenerate
    with pytest.raises(ValueError, match="n"):
        ex.sample_perturbations(0, p)


# ------------------------------------------------------------------------ alignment
def _small_perturbation(n: int, dtype=torch.float64) -> torch.Tensor:
    ang = torch.tensor([0.06, -0.05], dtype=dtype)[:n]
    ls = torch.tensor([[0.04, -0.03], [-0.05, 0.02]], dtype=dtype)[:n]
    t = torch.tensor([[0.05, -0.04], [-0.06, 0.03]], dtype=dtype)[:n]
    return g.params_to_matrix(ang, ls, 0.0, t)


def test_alignment_recovers_a_small_known_perturbation_with_bilinear():
    img = smooth_image(48).unsqueeze(0).expand(2, 1, 48, 48)
    pert = _small_perturbation(2)
    r = ex.align_images(img, perturbation=pert, method="bilinear", steps=150, lr=0.01,
                        downsample=1)
    assert bool((r.initial_errors > 0.05).all()), r.initial_errors
    assert bool((r.errors < 0.01).all()), r.errors
    assert r.loss_history[-1] < r.loss_history[0]
    # without optimisation the start is returned, and it is far from the truth
    r0 = ex.align_images(img, perturbation=pert, method="bilinear", steps=0)
    torch.testing.assert_close(r0.errors, r0.initial_errors)
    assert bool((r0.errors > 0.05).all())


def test_alignment_batch_is_independent_trials():
    """One optimizer over the batch = each trial optimised alone (Adam is element-wise)."""
    img = smooth_image(32).unsqueeze(0).expand(2, 1, 32, 32)
    pert = _small_perturbation(2)
    both = ex.align_images(img, perturbation=pert, steps=20, lr=0.01)
    for i in range(2):
        one = ex.align_images(img[i:i + 1], perturbation=pert[i:i + 1], steps=20, lr=0.01)
        torch.testing.assert_close(one.estimate[0], both.estimate[i], rtol=1e-9, atol=1e-12)


def test_alignment_rejects_bad_input():
    img = smooth_image(16).unsqueeze(0)
    with pytest.raises(ValueError, match="steps"):
        ex.align_images(img, perturbation=ex.Perturbation(), steps=-1)
    with pytest.raises(ValueError, match="perturbation"):
        ex.align_images(img, perturbation=torch.zeros(2, 2, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match="lr"):
        ex.align_images(img, perturbation=ex.Perturbation(), lr=0)
    with pytest.raises(ValueError, match="images"):
        ex.align_images(img.long(), perturbation=ex.Perturbation())


@pytest.mark.parametrize("method, opts", [("linearized", {"num_samples": 4}),
                                          ("multiscale", {}),
                                          ("linearized", {"collapse_noise": False})])
def test_alignment_runs_with_every_sampler_and_upsampling(method, opts):
    pytest.importorskip(f"sampling.{method}")
    img = smooth_image(16, dtype=torch.float32).unsqueeze(0).expand(2, 1, 16, 16)
    r = ex.align_images(img, perturbation=ex.Perturbation(), method=method, steps=3,
                        downsample=0.5, method_options=opts,
                        generator=torch.Generator().manual_seed(0))
    assert r.output_size == (21, 21)
    assert r.errors.shape == (2,) and bool((r.errors >= 0).all())
    d = r.to_dict()
    assert d["config"]["method"] == method and "generator" not in d["config"]["method_options"]


def test_output_size():
    assert ex.output_size((96, 96), 2 / 3, 1) == (64, 64)
    assert ex.output_size((96, 96), 2 / 3, 8) == (8, 8)
    assert ex.output_size((28, 28), 1.0, 0.25) == (112, 112)
    assert ex.output_size((8, 8), 2 / 3, 8) == (2, 2)  # at least 2 px


# ----------------------------------------------------------------- paired AUC difference

def test_paired_auc_difference_of_identical_samplers_is_exactly_zero():
    e = torch.rand(30, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    c = ex.paired_auc_difference(e, e.clone(), max_threshold=0.5, n_boot=200)
    assert c["diff"] == 0.0 and c["lo"] == 0.0 and c["hi"] == 0.0 and c["n"] == 30


def test_paired_auc_difference_separates_a_clearly_better_sampler():
    g = torch.Generator().manual_seed(1)
    good = torch.rand(40, generator=g, dtype=torch.float64) * 0.05  # all recalled early
    bad = torch.full((40,), float("inf"), dtype=torch.float64)  # all failed
    bad[:5] = 0.01
    c = ex.paired_auc_difference(good, bad, max_threshold=0.5, n_boot=500)
    assert c["lo"] > 0 and c["lo"] <= c["diff"] <= c["hi"]
    swapped = ex.paired_auc_difference(bad, good, max_threshold=0.5, n_boot=500)
    assert swapped["diff"] == -c["diff"] and swapped["hi"] < 0
    assert c["diff"] == ex.recall_auc(good, 0.5) - ex.recall_auc(bad, 0.5)


def test_paired_auc_difference_keeps_the_pairing():
    """Trial difficulty shared by both samplers cancels in a paired bootstrap: b is a
    fixed 0.01 worse on every trial, so every resampled difference has the same sign."""
    g = torch.Generator().manual_seed(2)
    a = torch.rand(60, generator=g, dtype=torch.float64) * 0.4
    b = a + 0.01
    c = ex.paired_auc_difference(a, b, max_threshold=0.5, n_boot=500)
    assert c["lo"] > 0  # an unpaired bootstrap of these would straddle 0


@pytest.mark.parametrize("kw, msg", [(dict(n_boot=0), "n_boot"), (dict(level=1.0), "level")])
def test_paired_auc_difference_rejects_bad_options(kw, msg):
    e = torch.rand(5, dtype=torch.float64)
    with pytest.raises(ValueError, match=msg):
        ex.paired_auc_difference(e, e, max_threshold=0.5, **kw)
    with pytest.raises(ValueError, match="errors_b"):
        ex.paired_auc_difference(e, e[:4], max_threshold=0.5)


def test_alignment_common_target_is_bilinear_for_every_sampler():
    """003's protocol: one bilinearly downsampled target. For bilinear it is its own
    rendering (same run); for multi-scale it is not, so the estimates differ from the
    own-target diagnostic; at steps = 0 nothing differs."""
    img = smooth_image(32).unsqueeze(0).expand(2, 1, 32, 32)
    pert = _small_perturbation(2)
    kw = dict(perturbation=pert, steps=15, lr=0.01, downsample=2)
    common = ex.align_images(img, method="bilinear", **kw)
    own = ex.align_images(img, method="bilinear", target="own", **kw)
    torch.testing.assert_close(common.estimate, own.estimate, rtol=0, atol=0)
    ms_common = ex.align_images(img, method="multiscale", **kw)
    ms_own = ex.align_images(img, method="multiscale", target="own", **kw)
    assert float((ms_common.estimate - ms_own.estimate).abs().max()) > 1e-6
    assert ms_common.to_dict()["config"]["target"] == "common"


def test_alignment_rejects_an_unknown_target():
    img = smooth_image(16).unsqueeze(0)
    with pytest.raises(ValueError, match="align_images.*target"):
        ex.align_images(img, perturbation=ex.Perturbation(), target="mine")


def test_trial_auc_scores_average_to_recall_auc():
    e = torch.tensor([0.0, 0.1, 0.3, float("inf"), 0.6], dtype=torch.float64)
    s = ex.trial_auc_scores(e, 0.5)
    assert s.shape == (5,) and float(s[3]) == 0.0 and float(s[0]) == 1.0
    assert float(s.mean()) == pytest.approx(ex.recall_auc(e, 0.5))
