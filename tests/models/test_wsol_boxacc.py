"""Tests of models/wsol_boxacc.py: MaxBoxAcc (Choe et al. 2020) on hand-computed maps, the
held-out choice of the operating point, and checks that catch a broken metric."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import models.wsol_boxacc as B
from models.wsol_metrics import box_iou


def T(*rows):
    return torch.tensor(rows, dtype=torch.float64)


def test_component_boxes_8_connected_in_raster_order():
    m = torch.zeros(6, 8, dtype=torch.bool)
    m[0, 0] = m[1, 1] = True  # diagonal neighbours: one component (8-connectivity)
    m[3:5, 4:8] = True  # a 2 x 4 block
    boxes, sizes = B.component_boxes(m.numpy())
    assert boxes.tolist() == [[0, 0, 2, 2], [4, 3, 8, 5]] and sizes.tolist() == [2, 8]
    e_boxes, e_sizes = B.component_boxes(torch.zeros(3, 3, dtype=torch.bool).numpy())
    assert e_boxes.shape == (0, 4) and e_sizes.shape == (0,)


def _two_blob_map():
    """A 10 x 10 map: a big blob (value 1) at rows 0-3, cols 0-4 and a small one (0.6) at
    rows 7-8, cols 7-8; background 0."""
    m = torch.zeros(1, 10, 10, dtype=torch.float64)
    m[0, 0:4, 0:5] = 1.0
    m[0, 7:9, 7:9] = 0.6
    return m


def test_threshold_boxes_largest_component_strict_and_multi_contour():
    m = _two_blob_map()
    b = B.threshold_boxes(m, (0.0, 0.5, 0.6, 1.0))
    # tau = 0: the mask `> 0` is both blobs; the largest is the big one.
    assert b[0, 0].tolist() == [0, 0, 5, 4]
    assert b[1, 0].tolist() == [0, 0, 5, 4]
    assert b[2, 0].tolist() == [0, 0, 5, 4]  # 0.6 > 0.6 is false: strict, as cv2 THRESH_BINARY
    assert b[3, 0].tolist() == [0, 0, 0, 0]  # empty mask -> zero box (IoU 0)
    multi = B.threshold_boxes(m, (0.5,), multi_contour=True)
    assert multi[0][0].tolist() == [[0, 0, 5, 4], [7, 7, 9, 9]]


def hand_case_holds() -> bool:
    """Three images whose MaxBoxAcc is computed by hand; True if the module reproduces every
    number. Used on the real module and on broken copies of it."""
    maps = torch.cat([_two_blob_map()] * 3)
    # image 0: the small blob is the object; 1: the big one; 2: a box taller than the big
    # blob, [0, 0, 5, 9] (area 45).
    gt = T([7, 7, 9, 9], [0, 0, 5, 4], [0, 0, 5, 9])
    taus = (0.0, 0.5, 0.6, 1.0)
    ious = B.threshold_ious(maps, gt, taus)
    # Largest region's box at tau 0 / 0.5 / 0.6 is the big blob's [0, 0, 5, 4] (area 20);
    # at tau 1 the mask is empty (zero box, IoU 0). image 0: disjoint, 0; image 1: 1;
    # image 2: 20 / 45 = 0.444 (pixel edges) -- Choe's inclusive "+1" formula would give
    # 30 / 60 = 0.5 (counted correct) and intersection / min area 1.
    r = 20 / 45
    want = T([0, 1, r], [0, 1, r], [0, 1, r], [0, 0, 0])
    multi = B.threshold_ious(maps, gt, taus, multi_contour=True)
    # multi-contour: image 0 finds its blob among the regions while the small blob is on
    # (tau 0 and 0.5); at 0.6 only the big blob is left (0.6 > 0.6 is false).
    want_multi = T([1, 1, r], [1, 1, r], [0, 1, r], [0, 0, 0])
    a = B.max_box_acc(ious, taus, 0.5)
    return (bool((ious - want).abs().max() < 1e-12)
            and bool((multi - want_multi).abs().max() < 1e-12)
            and a == {"max_box_acc": 1 / 3, "best_setting": 0.0, "best_index": 0}
            and B.max_box_acc(multi, taus, 0.5)["max_box_acc"] == 2 / 3)


def test_hand_computed_max_box_acc():
    assert hand_case_holds()


def _iou_choe_inclusive(a, b):
    """Choe et al.'s code's IoU: ``+1`` on every side length (inclusive pixel ends)."""
    iw = (torch.minimum(a[..., 2], b[..., 2]) - torch.maximum(a[..., 0], b[..., 0]) + 1).clamp(min=0)
    ih = (torch.minimum(a[..., 3], b[..., 3]) - torch.maximum(a[..., 1], b[..., 1]) + 1).clamp(min=0)
    area = lambda x: (x[..., 2] - x[..., 0] + 1) * (x[..., 3] - x[..., 1] + 1)  # noqa: E731
    return iw * ih / (area(a) + area(b) - iw * ih)


def _iou_wrong_min_area(a, b):
    iw = (torch.minimum(a[..., 2], b[..., 2]) - torch.maximum(a[..., 0], b[..., 0])).clamp(min=0)
    ih = (torch.minimum(a[..., 3], b[..., 3]) - torch.maximum(a[..., 1], b[..., 1])).clamp(min=0)
    area = lambda x: (x[..., 2] - x[..., 0]) * (x[..., 3] - x[..., 1])  # noqa: E731
    return iw * ih / torch.minimum(area(a), area(b)).clamp_min(1e-12)


@pytest.mark.parametrize("wrong", [_iou_wrong_min_area, _iou_choe_inclusive])
def test_a_wrong_iou_formula_is_caught(monkeypatch, wrong):
    monkeypatch.setattr(B, "box_iou", wrong)
    assert not hand_case_holds()


def test_a_non_strict_threshold_is_caught(monkeypatch):
    # `>=` instead of `>` (simulated by lifting every positive pixel by 1e-9): at tau 0.6
    # the small blob stays on and multi-contour finds it.
    orig = B.threshold_boxes

    def threshold_boxes_ge(norm_maps, taus=B.TAUS, *, multi_contour=False):
        return orig(norm_maps + 1e-9 * (norm_maps > 0), taus, multi_contour=multi_contour)
    monkeypatch.setattr(B, "threshold_boxes", threshold_boxes_ge)
    assert not hand_case_holds()


def test_threshold_is_chosen_on_heldout_not_on_test():
    settings = (0.1, 0.2, 0.3)
    # held-out: best at 0.2 (2 of 3); test: best at 0.3 (3 of 4), 0.2 gives 1 of 4.
    held = T([0.1, 0.2, 0.9], [0.6, 0.7, 0.1], [0.2, 0.3, 0.4])
    test = T([0.1, 0.1, 0.1, 0.1], [0.6, 0.1, 0.1, 0.1], [0.6, 0.6, 0.6, 0.1])
    r = B.heldout_box_acc(held, test, settings, 0.5)
    assert r["setting"] == 0.2 and r["index"] == 1
    assert r["heldout_box_acc"] == pytest.approx(2 / 3, abs=1e-15)
    assert r["test_box_acc"] == 0.25  # applied to test unchanged
    assert r["test_oracle_max_box_acc"] == 0.75 and r["test_oracle_setting"] == 0.3
    # choosing on test instead would report 0.75: the two differ, so a mutant that selects
    # on the test split fails the line above.
    assert B.max_box_acc(test, settings)["max_box_acc"] != r["test_box_acc"]


def test_ties_go_to_the_first_setting_and_delta_is_inclusive():
    ious = T([0.5, 0.5], [0.5, 0.5])
    assert B.select_setting(ious, 0.5) == 0
    assert B.box_acc(ious, 0.5).tolist() == [1.0, 1.0]  # IoU exactly 0.5 counts


@given(seed=st.integers(0, 2**31 - 1), t=st.integers(1, 6), n=st.integers(1, 9),
       m=st.integers(1, 9))
def test_calibrated_never_beats_the_oracle(seed, t, n, m):
    g = torch.Generator().manual_seed(seed)
    held, test = torch.rand(t, n, generator=g), torch.rand(t, m, generator=g)
    r = B.heldout_box_acc(held, test, list(range(t)))
    assert r["test_box_acc"] <= r["test_oracle_max_box_acc"]
    assert r["heldout_box_acc"] == float(B.box_acc(held).max())
    assert r["test_box_acc"] == float(B.box_acc(test)[r["index"]])
    assert bool((B.box_acc(test, 0.3) >= B.box_acc(test, 0.7)).all())  # monotone in delta


def test_paired_counts_hand_made():
    a = torch.tensor([1, 1, 0, 0, 1], dtype=torch.bool)
    b = torch.tensor([1, 0, 1, 0, 0], dtype=torch.bool)
    assert B.paired_counts(a, b) == {"n": 5, "both": 1, "a_only": 2, "b_only": 1,
                                     "neither": 1}


def test_bad_input_names_the_argument():
    with pytest.raises(ValueError, match="threshold_boxes: expected taus in"):
        B.threshold_boxes(torch.zeros(1, 4, 4), (1.5,))
    with pytest.raises(ValueError, match="box_acc: expected delta"):
        B.box_acc(torch.zeros(2, 3), 0.0)
    with pytest.raises(ValueError, match="heldout_box_acc: expected test_ious"):
        B.heldout_box_acc(torch.zeros(2, 3), torch.zeros(3, 3), (0.1, 0.2))
    with pytest.raises(ValueError, match="max_box_acc: expected 2 settings"):
        B.max_box_acc(torch.zeros(2, 3), (0.1,))
    with pytest.raises(ValueError, match="paired_counts: expected b"):
        B.paired_counts(torch.zeros(3, dtype=torch.bool), torch.zeros(4, dtype=torch.bool))
