"""Tests of models/wsol_metrics.py on hand-made cases."""

from __future__ import annotations

import pytest
import torch

from models.wsol_metrics import (CSTN_GAMMAS, CAM_TAUS, area_histogram, box_iou,
                                 localization_metrics, max_box_acc, scale_boxes)


def T(*rows):
    return torch.tensor(rows, dtype=torch.float64)


def test_box_iou_hand_made():
    a = T([0, 0, 2, 2], [0, 0, 2, 2], [0, 0, 2, 2], [0, 0, 4, 4], [0, 0, 2, 2], [0, 0, 0, 0])
    b = T([0, 0, 2, 2], [1, 0, 3, 2], [2, 0, 4, 2], [1, 1, 3, 3], [5, 5, 6, 6], [0, 0, 0, 0])
    # identical 1; half overlap 2 / (4 + 4 - 2); touching 0; contained 4 / 16; disjoint 0;
    # two empty boxes 0.
    want = torch.tensor([1.0, 1 / 3, 0.0, 0.25, 0.0, 0.0], dtype=torch.float64)
    torch.testing.assert_close(box_iou(a, b), want)
    torch.testing.assert_close(box_iou(b, a), want)  # symmetric
    # Broadcasting: (N, K, 4) against (N, 1, 4).
    assert box_iou(a[:, None].expand(6, 3, 4), b[:, None]).shape == (6, 3)


def test_box_iou_rejects_bad_boxes():
    with pytest.raises(ValueError, match=r"box_iou: expected a of shape \(\.\.\., 4\)"):
        box_iou(torch.zeros(3), torch.zeros(4))
    with pytest.raises(ValueError, match="box_iou: expected b with x1 >= x0"):
        box_iou(T([0, 0, 1, 1]), T([2, 0, 1, 1]))


def test_localization_metrics_hand_made():
    gt = T([0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10])
    good, bad = [0, 0, 10, 9], [0, 0, 4, 4]  # IoU 0.9 and 0.16
    m = localization_metrics(
        pred_class=torch.tensor([1, 1, 2, 3]), gt_class=torch.tensor([1, 1, 1, 3]),
        box_pred_class=T(good, bad, good, bad), box_gt_class=T(good, bad, bad, good),
        gt_box=gt,
        topk_gt_class=torch.stack([T(bad, good), T(bad, bad), T(bad, bad), T(good, bad)]))
    # image 0: cls ok, loc ok; 1: cls ok, loc bad; 2: cls wrong (loc of pred box ok);
    # 3: cls ok, pred box bad but GT-class box good.
    assert m == {"n": 4, "top1_cls": 0.75, "top1_loc": 0.25, "gt_known_loc": 0.5,
                 "gt_known_top5_loc": 0.5}
    with pytest.raises(ValueError, match=r"localization_metrics: expected gt_box of shape"):
        localization_metrics(pred_class=torch.tensor([1]), gt_class=torch.tensor([1]),
                             box_pred_class=T(good), box_gt_class=T(good), gt_box=gt)


def test_iou_threshold_is_inclusive():
    # IoU exactly 0.5 counts (004: "50% overlap").
    m = localization_metrics(pred_class=torch.tensor([0]), gt_class=torch.tensor([0]),
                             box_pred_class=T([0, 0, 5, 10]), box_gt_class=T([0, 0, 5, 10]),
                             gt_box=T([0, 0, 10, 10]))
    assert m["gt_known_loc"] == 1.0 and m["top1_loc"] == 1.0


def test_max_box_acc_hand_made():
    ious = torch.tensor([[0.9, 0.4, 0.2, 0.6],
                         [0.6, 0.6, 0.6, 0.1],
                         [0.35, 0.35, 0.8, 0.75]], dtype=torch.float64)
    r = max_box_acc(ious, ["a", "b", "c"])
    per = r["per_threshold"]
    # delta 0.3: rows give 3/4, 3/4, 4/4 -> 1.0 at c; 0.5: 2/4, 3/4, 2/4 -> b;
    # 0.7: 1/4, 0, 2/4 -> c.
    assert per[0.3] == {"max_box_acc": 1.0, "best_setting": "c"}
    assert per[0.5] == {"max_box_acc": 0.75, "best_setting": "b"}
    assert per[0.7] == {"max_box_acc": 0.5, "best_setting": "c"}
    assert r["mean"] == pytest.approx((1.0 + 0.75 + 0.5) / 3)
    with pytest.raises(ValueError, match="max_box_acc: expected 3 settings"):
        max_box_acc(ious, [1, 2])


def test_operating_point_grids():
    assert CAM_TAUS[0] == 0.0 and CAM_TAUS[-1] == 0.99 and len(CAM_TAUS) == 100
    assert 1.0 in CSTN_GAMMAS and min(CSTN_GAMMAS) == 0.5 and max(CSTN_GAMMAS) == 2.0
    b = scale_boxes(T([10, 10, 20, 30]), 2.0)
    torch.testing.assert_close(b, T([5, 0, 25, 40]))
    torch.testing.assert_close(scale_boxes(T([10, 10, 20, 30]), 2.0, (32, 22)), T([5, 0, 22, 32]))


def test_area_histogram_hand_made():
    # 10 x 10 image: areas 5, 15, 15, 100 -> fractions 0.05, 0.15, 0.15, 1.0 -> bins 0, 1, 1, 9.
    gt = T([0, 0, 5, 1], [0, 0, 5, 3], [0, 0, 3, 5], [0, 0, 10, 10])
    correct = torch.tensor([True, False, True, True])
    level = torch.tensor([0, 0, 1, 1])
    h = area_histogram(gt, correct, (10, 10), level=level)
    assert h["edges"][0] == 0.0 and h["edges"][-1] == 1.0 and len(h["edges"]) == 11
    assert h["all"]["count"] == [1, 2, 0, 0, 0, 0, 0, 0, 0, 1]
    assert h["all"]["correct"] == [1, 1, 0, 0, 0, 0, 0, 0, 0, 1]
    assert h["all"]["accuracy"][:3] == [1.0, 0.5, None]
    assert h["levels"][0]["count"][:2] == [1, 1] and h["levels"][0]["correct"][:2] == [1, 0]
    assert h["levels"][1]["count"][1] == 1 and h["levels"][1]["count"][9] == 1
