"""Box accuracy over score-map thresholds: MaxBoxAcc as Choe et al. define it, and its
held-out calibrated use (issue 29).

Source: Choe, Oh, Lee, Chun, Akata, Shim, "Evaluating Weakly Supervised Object
Localization Methods Right" (CVPR 2020) and its code, clovaai/wsolevaluation
(``evaluation.py``: ``compute_bboxes_from_scoremaps``, ``BoxEvaluator``), read for this
module. Their definitions, and where we differ:

* **Score map**: min-max normalized per image to ``[0, 1]`` (:func:`normalize_maps`).
* **Boxes at a threshold** ``tau``: the mask is ``map > tau`` (strict, as their
  ``cv2.threshold(..., THRESH_BINARY)``; they first quantize the map to uint8 and compare
  with ``int(tau * 255)``: we compare the float map, so a pixel within 1/255 of ``tau`` may
  fall on the other side). **MaxBoxAcc** (``multi_contour_eval=False``) takes the box of
  the largest connected region; **MaxBoxAccV2** (``multi_contour_eval=True``) takes the
  box of *every* region and counts an image correct if *any* of them reaches the IoU
  threshold (their "best match between the set of all estimated boxes and the GT"). They
  find regions with ``cv2.findContours`` and rank them by ``cv2.contourArea``; we label
  8-connected components (:func:`scipy.ndimage.label`, OpenCV's contours also follow
  8-connectivity) and rank by pixel count (ties: first in raster order). An empty mask
  gives the box ``(0, 0, 0, 0)`` (IoU 0), as theirs.
* **Box coordinates**: pixel edges throughout, ``x1`` = last column + 1, the same for
  ground truth (:mod:`models.wsol_metrics`). Their code takes ``x1 = x + w`` from
  ``boundingRect`` but then computes IoU with ``+1`` (inclusive ends), a one-pixel
  enlargement we do not copy.
* **Threshold grid**: :data:`TAUS`, 0 to 0.99 by 0.01 (their command line's default
  ``cam_curve_interval = 0.01``).
* ``BoxAcc(tau, delta)`` = fraction of images (GT class given) whose box at ``tau`` has
  IoU >= ``delta`` with the GT box; **MaxBoxAcc(delta) = max_tau BoxAcc(tau, delta)**,
  ``delta = 0.5`` (:data:`DELTA`); MaxBoxAccV2 averages ``delta in {0.3, 0.5, 0.7}``.
  Choe et al. take the max **on the split evaluated**: on the test split it is an oracle
  threshold, an upper bound. Their protocol chooses every other hyper-parameter on the
  held-out ``train-fullsup`` split.

**Held-out calibration** (:func:`heldout_box_acc`, what issue 29 asks for): the operating
point (CAM threshold, or CSTN box scale) is the first maximizer of ``BoxAcc(., delta)`` on
the *held-out* split and is then applied unchanged to the test split. The test split's own
maximum is reported beside it, named as the oracle, never as the calibrated number.

Convention:
    ``ious`` arrays are ``(T, N)``: row ``t`` the IoUs of the ``N`` images' boxes at
    operating point ``settings[t]``.
"""

from __future__ import annotations

import numpy as np
import torch

from sampling.checks import check_shape

from .wsol_metrics import box_iou

__all__ = ["TAUS", "DELTA", "V2_DELTAS", "normalize_maps", "component_boxes",
           "threshold_boxes", "threshold_ious", "box_acc", "max_box_acc", "select_setting",
           "heldout_box_acc", "paired_counts"]

TAUS = tuple(round(0.01 * i, 2) for i in range(100))
DELTA = 0.5
V2_DELTAS = (0.3, 0.5, 0.7)


def normalize_maps(maps: torch.Tensor) -> torch.Tensor:
    """Min-max normalize ``(B, H, W)`` maps per image to ``[0, 1]`` (a constant map -> zeros)."""
    check_shape(maps, "B H W", name="maps", fn="normalize_maps")
    m = maps.detach().double()
    lo = m.amin(dim=(1, 2), keepdim=True)
    hi = m.amax(dim=(1, 2), keepdim=True)
    return (m - lo) / (hi - lo).clamp_min(1e-300)


def component_boxes(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Boxes and pixel counts of the 8-connected components of a 2-D boolean ``mask``.

    Returns:
        ``(boxes (K, 4) float64 pixel-edge (x0, y0, x1, y1), sizes (K,))`` in label
        (raster) order; ``K = 0`` for an empty mask.
    """
    from scipy import ndimage
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise ValueError(f"component_boxes: expected a 2-D mask, got shape {mask.shape}")
    lab, k = ndimage.label(mask, structure=np.ones((3, 3), dtype=int))
    if k == 0:
        return np.zeros((0, 4)), np.zeros((0,), dtype=np.int64)
    sl = ndimage.find_objects(lab)
    boxes = np.array([[s[1].start, s[0].start, s[1].stop, s[0].stop] for s in sl],
                     dtype=np.float64)
    sizes = np.bincount(lab.ravel(), minlength=k + 1)[1:]
    return boxes, sizes


def threshold_boxes(norm_maps: torch.Tensor, taus=TAUS, *, multi_contour: bool = False):
    """Boxes of normalized maps at each ``tau`` (mask ``map > tau``).

    Returns:
        ``multi_contour=False``: ``(T, B, 4)`` float64, the largest component's box
        (``(0, 0, 0, 0)`` if the mask is empty). ``multi_contour=True``: a list over ``T``
        of lists over ``B`` of ``(K, 4)`` arrays (every component; one zero box if empty).
    """
    fn = "threshold_boxes"
    check_shape(norm_maps, "B H W", name="norm_maps", fn=fn)
    th = [float(t) for t in taus]
    if not th or any(not (0.0 <= t <= 1.0) for t in th):
        raise ValueError(f"{fn}: expected taus in [0, 1], got {list(taus)}")
    m = norm_maps.detach().cpu().double().numpy()
    b = m.shape[0]
    if multi_contour:
        out = []
        for t in th:
            row = []
            for i in range(b):
                bx, _ = component_boxes(m[i] > t)
                row.append(bx if len(bx) else np.zeros((1, 4)))
            out.append(row)
        return out
    out = np.zeros((len(th), b, 4))
    for ti, t in enumerate(th):
        for i in range(b):
            bx, sz = component_boxes(m[i] > t)
            if len(bx):
                out[ti, i] = bx[int(np.argmax(sz))]  # first largest
    return torch.from_numpy(out)


def threshold_ious(norm_maps: torch.Tensor, gt_box: torch.Tensor, taus=TAUS, *,
                   multi_contour: bool = False) -> torch.Tensor:
    """``(T, B)`` IoU with ``gt_box (B, 4)`` of the box at each ``tau`` (multi-contour: the
    best of the components' boxes)."""
    fn = "threshold_ious"
    d = check_shape(norm_maps, "B H W", name="norm_maps", fn=fn)
    check_shape(gt_box, "B 4", name="gt_box", fn=fn, dims=d)
    gt = gt_box.detach().cpu().double()
    boxes = threshold_boxes(norm_maps, taus, multi_contour=multi_contour)
    if not multi_contour:
        return box_iou(boxes, gt[None].expand_as(boxes))
    out = torch.zeros(len(boxes), d["B"], dtype=torch.float64)
    for ti, row in enumerate(boxes):
        for i, bx in enumerate(row):
            out[ti, i] = box_iou(torch.from_numpy(bx), gt[i].expand(len(bx), 4)).max()
    return out


def box_acc(ious: torch.Tensor, delta: float = DELTA) -> torch.Tensor:
    """``BoxAcc(t, delta)``: ``(T, N)`` IoUs -> ``(T,)`` fraction with IoU >= ``delta``."""
    check_shape(ious, "T N", name="ious", fn="box_acc")
    if not (0.0 < float(delta) <= 1.0):
        raise ValueError(f"box_acc: expected delta in (0, 1], got {delta!r}")
    if ious.shape[1] == 0:
        raise ValueError("box_acc: expected at least one image, got N = 0")
    return (ious >= float(delta)).double().mean(dim=1)


def select_setting(ious: torch.Tensor, delta: float = DELTA) -> int:
    """Index of the first operating point that maximizes ``BoxAcc(., delta)`` on ``ious``."""
    return int(torch.argmax(box_acc(ious, delta)))  # torch.argmax returns the first maximum


def max_box_acc(ious: torch.Tensor, settings, delta: float = DELTA) -> dict:
    """Choe et al.'s MaxBoxAcc on the split ``ious`` come from (the max over its own points).

    Returns:
        ``{"max_box_acc", "best_setting", "best_index"}``.
    """
    settings = list(settings)
    if len(settings) != ious.shape[0]:
        raise ValueError(f"max_box_acc: expected {ious.shape[0]} settings (one per row of "
                         f"ious), got {len(settings)}")
    acc = box_acc(ious, delta)
    i = select_setting(ious, delta)
    return {"max_box_acc": float(acc[i]), "best_setting": settings[i], "best_index": i}


def heldout_box_acc(heldout_ious: torch.Tensor, test_ious: torch.Tensor, settings,
                    delta: float = DELTA) -> dict:
    """The operating point chosen on the held-out split, applied to the test split.

    Args:
        heldout_ious: ``(T, N_heldout)``; test_ious: ``(T, N_test)``, the same ``T``
            ``settings`` in the same order.

    Returns:
        ``{"setting", "index", "heldout_box_acc", "test_box_acc" (the calibrated number),
        "test_oracle_max_box_acc", "test_oracle_setting" (Choe's max on test, an upper
        bound)}``.
    """
    fn = "heldout_box_acc"
    settings = list(settings)
    check_shape(heldout_ious, "T N", name="heldout_ious", fn=fn, dims={"T": len(settings)})
    check_shape(test_ious, "T M", name="test_ious", fn=fn, dims={"T": len(settings)})
    i = select_setting(heldout_ious, delta)
    test_acc = box_acc(test_ious, delta)
    oracle = max_box_acc(test_ious, settings, delta)
    return {"setting": settings[i], "index": i,
            "heldout_box_acc": float(box_acc(heldout_ious, delta)[i]),
            "test_box_acc": float(test_acc[i]),
            "test_oracle_max_box_acc": oracle["max_box_acc"],
            "test_oracle_setting": oracle["best_setting"]}


def paired_counts(a: torch.Tensor, b: torch.Tensor) -> dict[str, int]:
    """Image-by-image agreement of two ``(N,)`` boolean outcomes on the same images.

    Returns:
        ``{"n", "both", "a_only", "b_only", "neither"}``: the paired difference of the two
        accuracies is ``(a_only - b_only) / n`` and its McNemar / paired variance comes
        from the discordant counts.
    """
    fn = "paired_counts"
    d = check_shape(a, "N", name="a", fn=fn)
    check_shape(b, "N", name="b", fn=fn, dims=d)
    a, b = a.bool(), b.bool()
    return {"n": int(d["N"]), "both": int((a & b).sum()), "a_only": int((a & ~b).sum()),
            "b_only": int((~a & b).sum()), "neither": int((~a & ~b).sum())}
