"""Weakly supervised localization metrics (004 Sec. IV-A, Fig. 6; Choe et al. 2020).

Convention:
    Boxes are ``(x0, y0, x1, y1)`` in pixel-edge coordinates (``x1 >= x0``, ``y1 >= y0``),
    as :mod:`models.cstn` and :mod:`models.cam` produce them and as the readers give ground
    truth (CUB's ``x, y, width, height`` becomes ``(x, y, x + width, y + height)``).

Metrics (fractions in ``[0, 1]``):

* **Top-1 Cls**: predicted class = true class.
* **Top-1 Loc** (004): predicted class = true class *and* IoU(box of the predicted class,
  GT) >= 0.5.
* **GT-known Loc** (004): IoU(box for the true class, GT) >= 0.5 (class given).
* **GT-known Top-5 box Loc** (004): at least one of the 5 highest-scoring boxes for the
  true class has IoU >= 0.5.
* **Box-area histogram** (004 Fig. 6): ground-truth boxes binned by area as a fraction of
  the image area into 10 equal bins over ``[0, 1]``; per bin the count and the fraction
  correctly localized, overall and per pyramid level that produced the box.
* **MaxBoxAcc** (Choe et al. 2020, "Evaluating WSOL right"): for an IoU threshold
  ``delta``, ``BoxAcc(tau, delta)`` is the GT-known fraction with IoU >= ``delta`` when
  boxes are made at operating point ``tau``; ``MaxBoxAcc(delta) = max_tau BoxAcc(tau,
  delta)``, reported for ``delta in {0.3, 0.5, 0.7}`` and their mean (Choe's MaxBoxAccV2
  without its multi-contour step: one box, the largest component, per image).
  For CAM ``tau`` is the CAM threshold on a grid (:data:`CAM_TAUS`, 0 to 0.99 by 0.01 as
  Choe et al.). **CSTN analogue**: CSTN has no threshold, but a CAM threshold is in effect
  a global box-size knob; the analogue we use is a global scale factor ``gamma`` applied to
  every predicted box about its centre (:data:`CSTN_GAMMAS`, 0.5 to 2 log-spaced, 1
  included), so MaxBoxAcc >= BoxAcc at ``gamma = 1`` by construction and both methods get
  the same kind of one-parameter calibration on the evaluation set.
"""

from __future__ import annotations

import numpy as np
import torch

from sampling.checks import check_shape

__all__ = ["IOU_THRESHOLDS", "CAM_TAUS", "CSTN_GAMMAS", "box_iou", "scale_boxes",
           "localization_metrics", "max_box_acc", "area_histogram"]

IOU_THRESHOLDS = (0.3, 0.5, 0.7)
CAM_TAUS = tuple(round(0.01 * i, 2) for i in range(100))
CSTN_GAMMAS = tuple(float(g) for g in np.round(np.exp(np.linspace(np.log(0.5), np.log(2.0),
                                                                    13)), 6))


def _check_boxes(b, name: str, fn: str) -> torch.Tensor:
    if not isinstance(b, torch.Tensor) or b.dim() < 1 or b.shape[-1] != 4:
        got = tuple(b.shape) if isinstance(b, torch.Tensor) else type(b).__name__
        raise ValueError(f"{fn}: expected {name} of shape (..., 4) (x0, y0, x1, y1), got {got}")
    if bool(((b[..., 2] < b[..., 0]) | (b[..., 3] < b[..., 1])).any()):
        raise ValueError(f"{fn}: expected {name} with x1 >= x0 and y1 >= y0, got an inverted box")
    return b


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Intersection over union of boxes, broadcasting: ``(..., 4), (..., 4) -> (...)``.

    Two empty boxes have IoU 0.

    Example:
        >>> box_iou(torch.tensor([0., 0., 2., 2.]), torch.tensor([1., 0., 3., 2.]))
        tensor(0.3333)
    """
    fn = "box_iou"
    a = _check_boxes(a, "a", fn)
    b = _check_boxes(b, "b", fn)
    iw = (torch.minimum(a[..., 2], b[..., 2]) - torch.maximum(a[..., 0], b[..., 0])).clamp(min=0)
    ih = (torch.minimum(a[..., 3], b[..., 3]) - torch.maximum(a[..., 1], b[..., 1])).clamp(min=0)
    inter = iw * ih
    area = lambda x: (x[..., 2] - x[..., 0]) * (x[..., 3] - x[..., 1])  # noqa: E731
    union = area(a) + area(b) - inter
    return torch.where(union > 0, inter / union.clamp_min(1e-12), torch.zeros_like(inter))


def scale_boxes(boxes: torch.Tensor, gamma: float, image_size=None) -> torch.Tensor:
    """Scale boxes by ``gamma`` about their centres (then clip to ``(H, W)`` if given)."""
    boxes = _check_boxes(boxes, "boxes", "scale_boxes")
    c = (boxes[..., :2] + boxes[..., 2:]) / 2
    half = (boxes[..., 2:] - boxes[..., :2]) / 2 * gamma
    out = torch.cat([c - half, c + half], -1)
    if image_size is not None:
        h, w = image_size
        lim = torch.tensor([w, h, w, h], dtype=out.dtype, device=out.device)
        out = torch.minimum(out.clamp(min=0), lim)
    return out


def localization_metrics(*, pred_class: torch.Tensor, gt_class: torch.Tensor,
                         box_pred_class: torch.Tensor, box_gt_class: torch.Tensor,
                         gt_box: torch.Tensor, topk_gt_class: torch.Tensor | None = None,
                         iou_threshold: float = 0.5) -> dict[str, float]:
    """Top-1 Cls, Top-1 Loc, GT-known Loc and GT-known Top-5 box Loc (004 Sec. IV-A).

    Args:
        pred_class, gt_class: ``(N,)`` class indices.
        box_pred_class: ``(N, 4)`` the box the method gives for its predicted class.
        box_gt_class: ``(N, 4)`` the box it gives when told the true class.
        gt_box: ``(N, 4)`` ground truth.
        topk_gt_class: ``(N, K, 4)`` its ``K`` best boxes for the true class (004: ``K = 5``),
            or ``None`` (then ``gt_known_top5_loc`` is absent).
        iou_threshold: 0.5 in 004.

    Returns:
        ``{"n", "top1_cls", "top1_loc", "gt_known_loc"[, "gt_known_top5_loc"]}``.
    """
    fn = "localization_metrics"
    d = check_shape(pred_class, "N", name="pred_class", fn=fn)
    check_shape(gt_class, "N", name="gt_class", fn=fn, dims=d)
    for name, b in (("box_pred_class", box_pred_class), ("box_gt_class", box_gt_class),
                    ("gt_box", gt_box)):
        check_shape(b, "N 4", name=name, fn=fn, dims=d)
    if d["N"] == 0:
        raise ValueError(f"{fn}: expected at least one image, got N = 0")
    cls_ok = pred_class == gt_class
    res = {
        "n": int(d["N"]),
        "top1_cls": float(cls_ok.double().mean()),
        "top1_loc": float((cls_ok & (box_iou(box_pred_class, gt_box) >= iou_threshold))
                          .double().mean()),
        "gt_known_loc": float((box_iou(box_gt_class, gt_box) >= iou_threshold).double().mean()),
    }
    if topk_gt_class is not None:
        check_shape(topk_gt_class, "N K 4", name="topk_gt_class", fn=fn, dims=d)
        hit = (box_iou(topk_gt_class, gt_box[:, None]) >= iou_threshold).any(-1)
        res["gt_known_top5_loc"] = float(hit.double().mean())
    return res


def max_box_acc(ious: torch.Tensor, settings, iou_thresholds=IOU_THRESHOLDS) -> dict:
    """MaxBoxAcc (Choe et al. 2020) from IoUs at each operating point.

    Args:
        ious: ``(T, N)`` IoU of image ``n``'s GT-known box made at operating point ``t``.
        settings: the ``T`` operating points (CAM thresholds or CSTN box scales), reported
            with the maximum.
        iou_thresholds: the ``delta`` values.

    Returns:
        ``{"per_threshold": {delta: {"max_box_acc", "best_setting"}}, "mean"}``; ties go to
        the first setting.
    """
    fn = "max_box_acc"
    d = check_shape(ious, "T N", name="ious", fn=fn)
    settings = list(settings)
    if len(settings) != d["T"]:
        raise ValueError(f"{fn}: expected {d['T']} settings (one per row of ious), got "
                         f"{len(settings)}")
    per = {}
    for delta in iou_thresholds:
        acc = (ious >= delta).double().mean(dim=1)  # (T,)
        best = int(torch.argmax(acc))  # first maximum
        per[float(delta)] = {"max_box_acc": float(acc[best]), "best_setting": settings[best]}
    mean = float(np.mean([v["max_box_acc"] for v in per.values()]))
    return {"per_threshold": per, "mean": mean}


def area_histogram(gt_box: torch.Tensor, correct: torch.Tensor, image_size, *,
                   level: torch.Tensor | None = None, bins: int = 10) -> dict:
    """004 Fig. 6: ground-truth box area (fraction of the image) in ``bins`` equal bins.

    Args:
        gt_box: ``(N, 4)``.
        correct: ``(N,)`` bool, localized correctly.
        image_size: ``(H, W)`` (one size for all images; the loaders resize).
        level: ``(N,)`` pyramid level of each predicted box, or ``None``.
        bins: number of equal bins over ``[0, 1]``; an area fraction of exactly 1 goes in
            the last bin.

    Returns:
        ``{"edges": [bins + 1], "all": {"count", "correct", "accuracy"}, "levels": {s: ...}}``;
        ``accuracy`` is ``None`` for an empty bin.
    """
    fn = "area_histogram"
    d = check_shape(gt_box, "N 4", name="gt_box", fn=fn)
    check_shape(correct, "N", name="correct", fn=fn, dims=d)
    h, w = image_size
    frac = ((gt_box[:, 2] - gt_box[:, 0]) * (gt_box[:, 3] - gt_box[:, 1]) / (h * w)).double()
    idx = (frac * bins).floor().long().clamp(0, bins - 1)

    def _hist(mask: torch.Tensor) -> dict:
        cnt = torch.bincount(idx[mask], minlength=bins)
        ok = torch.bincount(idx[mask & correct.bool()], minlength=bins)
        return {"count": cnt.tolist(), "correct": ok.tolist(),
                "accuracy": [None if c == 0 else o / c for c, o in zip(cnt.tolist(),
                                                                       ok.tolist())]}

    res = {"edges": [i / bins for i in range(bins + 1)],
           "all": _hist(torch.ones_like(correct, dtype=torch.bool))}
    if level is not None:
        check_shape(level, "N", name="level", fn=fn, dims=d)
        res["levels"] = {int(s): _hist(level == s) for s in torch.unique(level).tolist()}
    return res
