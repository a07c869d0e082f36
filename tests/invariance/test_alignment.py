"""invariance.alignment: E(T_g; Γ, T_h, f), its modes, and its input checks."""

from __future__ import annotations

import math

import pytest
import torch

from invariance.alignment import alignment_error, feature_alignment_error, relative_error
from invariance.extractors import OrientedBank, random_cnn
from sampling import geometry


def _rot(angle, dtype=torch.float64):
    return geometry.params_to_matrix(
        torch.tensor([angle], dtype=dtype), torch.tensor([0.0], dtype=dtype)
    )


def test_identity_gives_zero(dtype):
    g = random_cnn(2, 4, seed=1, dtype=dtype)
    f = torch.rand(3, 1, 24, 24, dtype=dtype)
    e = alignment_error(g, f, geometry.identity(1, dtype=dtype), geometry.identity(1, dtype=dtype))
    assert e.total <= (1e-6 if dtype == torch.float32 else 1e-12)
    assert e.per_channel.shape == (4,) and e.per_image.shape == (3,)
    assert e.region["pixels"] > 0 and e.region["radius_normalized"] == 0.35


def test_wrong_T_g_gives_large_error():
    g = random_cnn(2, 4, seed=1, dtype=torch.float64)
    f = torch.rand(2, 1, 24, 24, dtype=torch.float64)
    e = alignment_error(g, f, _rot(0.5), geometry.identity(1, dtype=torch.float64))
    assert e.total > 0.1


def test_oriented_bank_modes_exact_90():
    """T_h = R(90°), T_g = T_h^{-1}: spatial error large, permutation exact (pixel centres)."""
    bank = OrientedBank((1.0,), dtype=torch.float64)
    f = torch.rand(2, 1, 24, 24, dtype=torch.float64)
    th = _rot(math.pi / 2)
    sp = alignment_error(bank, f, th, geometry.invert(th))
    pe = alignment_error(bank, f, th, geometry.invert(th), mode="permutation")
    mx = alignment_error(bank, f, th, geometry.invert(th), mode="mix")
    assert sp.total > 0.5
    assert pe.total < 1e-9 and mx.total < 1e-6
    assert pe.permutation is not None and sorted(pe.permutation.tolist()) == [0, 1, 2, 3]


def test_relative_error_per_channel_nan_for_dead_channel():
    ref = torch.zeros(1, 2, 4, 4, dtype=torch.float64)
    ref[:, 0] = 1
    total, per_c, per_i = relative_error(ref + 0.1, ref, torch.ones(4, 4, dtype=torch.bool))
    assert math.isnan(float(per_c[1])) and float(per_c[0]) > 0 and per_i.shape == (1,)


def test_bad_mode_and_shapes():
    x = torch.rand(1, 2, 8, 8)
    with pytest.raises(ValueError, match="mode"):
        feature_alignment_error(x, x, None, mode="rotate")
    with pytest.raises(ValueError, match="transformed"):
        feature_alignment_error(torch.rand(1, 3, 8, 8), x, None)


def test_gradcheck_error_wrt_T_g():
    """The refinement differentiates E through the bilinear warp: check it in float64,
    with sample points kept off the pixel lattice."""
    from invariance.warps import central_mask, transform

    f = torch.rand(1, 2, 10, 10, dtype=torch.float64)
    ref = torch.rand(1, 2, 10, 10, dtype=torch.float64)
    mask = central_mask(10, 10, 0.6)
    m0 = geometry.params_to_matrix(
        torch.tensor([0.13], dtype=torch.float64),
        torch.tensor([0.07], dtype=torch.float64),
        0.03,
        torch.tensor([[0.011, -0.017]], dtype=torch.float64),
    )

    def err(m):
        return relative_error(transform(f, m), ref, mask)[0]

    assert torch.autograd.gradcheck(err, (m0.clone().requires_grad_(True),))


def test_error_is_normalised_by_the_reference():
    """E = ‖aligned − ref‖ / ‖ref‖ (000 eq. 4): transformed = 2 ref gives exactly 1
    (normalising by ‖aligned‖ would give 1/2)."""
    ref = torch.rand(2, 3, 8, 8, dtype=torch.float64) + 0.1
    e = feature_alignment_error(2 * ref, ref, None)
    assert e.total == pytest.approx(1.0, rel=1e-12)
    torch.testing.assert_close(e.per_channel, torch.ones(3, dtype=torch.float64))
    torch.testing.assert_close(e.per_image, torch.ones(2, dtype=torch.float64))
    # and the other way round: transformed = ref / 2 gives 1/2
    assert feature_alignment_error(ref / 2, ref, None).total == pytest.approx(0.5, rel=1e-12)


def test_relative_error_known_values_per_channel_and_per_image():
    """Hand-computed: ref has channel 0 = 1 and channel 1 = 2 on image 0, 3 and 4 on
    image 1, over 4 masked pixels; aligned adds 1 to (image 0, channel 1) only."""
    ref = torch.empty(2, 2, 3, 3, dtype=torch.float64)
    ref[0, 0], ref[0, 1], ref[1, 0], ref[1, 1] = 1.0, 2.0, 3.0, 4.0
    aligned = ref.clone()
    aligned[0, 1] += 1.0
    aligned[:, :, 2, 2] = 100.0  # outside the mask: must not count
    mask = torch.zeros(3, 3, dtype=torch.bool)
    mask[:2, :2] = True  # 4 pixels
    total, per_c, per_i = relative_error(aligned, ref, mask)
    # squared norms over 4 pixels: diff 4 (image 0, channel 1); ref 4 (1 + 9 + 4 + 16) = 120
    assert float(total) == pytest.approx(math.sqrt(4 / 120), rel=1e-12)
    # channel 0: no error; channel 1: diff 4, ref 4 (4 + 16) = 80
    torch.testing.assert_close(per_c, torch.tensor([0.0, math.sqrt(4 / 80)], dtype=torch.float64))
    # image 0: diff 4, ref 4 (1 + 4) = 20; image 1: no error
    torch.testing.assert_close(per_i, torch.tensor([math.sqrt(4 / 20), 0.0], dtype=torch.float64))
    # swapping the arguments (normalising by aligned) changes every number
    swapped = relative_error(ref, aligned, mask)
    assert float(swapped[0]) != pytest.approx(float(total), rel=1e-3)
    assert float(swapped[2][0]) != pytest.approx(float(per_i[0]), rel=1e-3)


def test_permutation_and_mix_modes_recover_known_channel_maps():
    """transformed = a known channel permutation / mix of the reference: the modes undo it,
    report it, and the spatial mode does not."""
    gen = torch.Generator().manual_seed(0)
    ref = torch.randn(2, 3, 10, 10, generator=gen, dtype=torch.float64)
    perm = torch.tensor([2, 0, 1])
    moved = ref[:, torch.argsort(perm)]  # moved channel perm[i] holds ref channel i
    pe = feature_alignment_error(moved, ref, None, mode="permutation")
    assert torch.equal(pe.permutation, perm) and pe.total < 1e-12
    assert feature_alignment_error(moved, ref, None).total > 0.5
    mix = torch.tensor([[1.0, 0.5, 0.0], [0.0, 2.0, -1.0], [0.3, 0.0, 1.0]], dtype=torch.float64)
    mixed = torch.einsum("ij,njhw->nihw", mix, ref)  # mixed = mix @ ref per pixel
    mx = feature_alignment_error(mixed, ref, None, mode="mix")
    torch.testing.assert_close(mx.mix, torch.linalg.inv(mix), rtol=1e-6, atol=1e-6)
    assert mx.total < 1e-6 and mx.per_channel.max() < 1e-6


def test_defaults_names_and_non_square_maps():
    """Default radius 0.35; a non-square map (6 x 12) is measured over its own disk; a bad
    reference is reported under its own name."""
    from invariance.warps import central_mask

    ref = torch.rand(2, 3, 6, 12, dtype=torch.float64) + 0.1
    e = feature_alignment_error(ref * 1.5, ref, None)
    assert e.region["radius_normalized"] == 0.35
    assert e.region["pixels"] == int(central_mask(6, 12, 0.35).sum()) > 0
    assert e.total == pytest.approx(0.5, rel=1e-12) and e.mode == "spatial"
    assert e.permutation is None and e.mix is None and torch.equal(e.aligned, ref * 1.5)
    with pytest.raises(ValueError, match=r"feature_alignment_error: expected reference of shape "
                                         r"\(N, C, h, w\), got \(1, 2, 8\)"):
        feature_alignment_error(torch.rand(1, 2, 8, 8), torch.rand(1, 2, 8), None)


def test_small_but_live_reference_channel_is_measured():
    """A reference channel with ‖b_c‖² = 0.04 (< 1) is live: its error is a number, not nan."""
    ref = torch.zeros(1, 2, 2, 2, dtype=torch.float64)
    ref[:, 0] = 0.1  # ‖b_0‖² = 4 * 0.01 = 0.04
    ref[:, 1] = 3.0
    aligned = ref.clone()
    aligned[:, 0] = 0.2  # ‖a_0 − b_0‖² = 0.04: relative error exactly 1
    _, per_c, _ = relative_error(aligned, ref, torch.ones(2, 2, dtype=torch.bool))
    torch.testing.assert_close(per_c, torch.tensor([1.0, 0.0], dtype=torch.float64))


def test_float64_images_into_a_float32_network_are_converted_not_a_torch_error():
    import torch

    from invariance import alignment_error, random_cnn
    from sampling.geometry import identity

    g = random_cnn(depth=2, channels=4, seed=0)
    f = torch.rand(2, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    t = identity(1)
    e32 = alignment_error(g, f, t, t).total
    e64 = alignment_error(g, f.double(), t, t).total  # was: "Input type (double) and bias..."
    assert e64 == e32
    g64 = random_cnn(depth=2, channels=4, seed=0, dtype=torch.float64)
    assert alignment_error(g64, f, t, t).total < 1e-12  # float32 images into float64
    with pytest.raises(ValueError, match="alignment_error: expected images of a floating"):
        alignment_error(g, (f * 255).to(torch.uint8), t, t)
