"""``invariance.measures``: plain results of the INV-3, INV-5/6 and INV-7 measurements."""

from __future__ import annotations

import math

import torch

from invariance import measures
from invariance.extractors import random_cnn


def test_receptive_field_centres_solve_to_the_inverse():
    r = measures.receptive_field_centres()
    assert isinstance(r, measures.ReceptiveFieldCentres)
    assert r.unique_solution and r.T_g_equals_T_h_inverse


def test_classify_maps_separates_orthogonal_from_shear_and_scale():
    c = measures.classify_maps({
        "rot90": torch.tensor([[0.0, -1.0], [1.0, 0.0]]),
        "shear": torch.tensor([[1.0, 0.5], [0.0, 1.0]]),  # |det| = 1, unbounded powers
        "scale": torch.tensor([[2.0, 0.0], [0.0, 2.0]]),  # bounded? no: |det| = 4
    })
    assert c["rot90"].invariant_compact_rf_possible
    assert not c["shear"].invariant_compact_rf_possible
    assert not c["scale"].invariant_compact_rf_possible
    assert math.isclose(c["shear"].abs_det, 1.0)  # so the power growth is what decides


def test_scale_alignment_is_near_zero_only_at_s_1():
    torch.manual_seed(0)
    net = random_cnn(2, 4, seed=0).double()
    images = torch.rand(2, 1, 32, 32, dtype=torch.float64)
    rows = measures.scale_alignment(net, images, (0.5, 1.0), modes=("spatial",),
                                    refine_iters=2)
    by_s = {r.s: r.error["spatial"] for r in rows}
    # a priori: s = 1 is the identity warp, float64 (the INV-5 verdict's 1e-6 bound)
    assert by_s[1.0] <= 1e-6 and by_s[0.5] > 1e-3
    assert rows[0].to_row()["spatial_error"] == by_s[0.5]
