"""CAM and CSTN localization with operating points chosen on a held-out split (issue 29).

A measurement (plain result dicts, no verdicts), used by the cub suite's ``standin-v2``
variant. For each trained network it reports on the **test** split:

* the numbers 004 reports, at the method's own fixed operating point (CAM: threshold
  :data:`models.cam.CAM_THRESHOLD` = 0.2, Zhou et al.; CSTN: its MAP box, box scale 1):
  Top-1 Cls, Top-1 Loc, GT-known Loc, and for CSTN GT-known Top-5 box Loc (004 Sec. IV-A:
  one of the five highest-scoring boxes for the true class has IoU >= 0.5) and the same
  with the untransformed receptive-field boxes (Table I);
* the same numbers at the operating point **chosen on the held-out split** by GT-known
  BoxAcc at IoU 0.5 (:func:`models.wsol_boxacc.heldout_box_acc`): CAM over the threshold
  grid :data:`models.wsol_boxacc.TAUS`, CSTN over a global box scale ``gamma``
  (:data:`models.wsol_metrics.CSTN_GAMMAS`; CSTN has no threshold, a box scale is the
  one-parameter knob that plays its part, as in :mod:`models.wsol_metrics`);
* MaxBoxAcc as Choe et al. define it, the max over the operating points **on test** (an
  oracle upper bound, named so), for CAM also MaxBoxAccV2 (all regions' boxes, mean over
  IoU 0.3 / 0.5 / 0.7);
* for CSTN, Table I paired image by image: the counts of test images that are Top-1 Loc
  (and GT-known Loc) correct with the transformed box only, the receptive-field box only,
  both or neither (:func:`models.wsol_boxacc.paired_counts`).
"""

from __future__ import annotations

import torch

from .wsol_boxacc import (DELTA, TAUS, V2_DELTAS, box_acc, heldout_box_acc, normalize_maps,
                          paired_counts, threshold_boxes, threshold_ious)
from .wsol_metrics import CSTN_GAMMAS, box_iou, localization_metrics, scale_boxes

__all__ = ["cam_maps", "cstn_boxes", "evaluate_cam", "evaluate_cstn"]


@torch.no_grad()
def cam_maps(model, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 64) -> dict:
    """``{"pred" (N,), "gt_maps" (N, H, W), "pred_maps" (N, H, W)}``: the predicted class and
    the normalized CAMs of the true and of the predicted class."""
    from .cam import class_activation_maps
    model.eval()
    pred, gm, pm = [], [], []
    for i in range(0, len(images), batch_size):
        out = model(images[i:i + batch_size].float())
        p = out.logits.argmax(-1)
        pred.append(p.cpu())
        gm.append(normalize_maps(class_activation_maps(model, out, labels[i:i + batch_size]))
                  .float().cpu())
        pm.append(normalize_maps(class_activation_maps(model, out, p)).float().cpu())
    return {"pred": torch.cat(pred), "gt_maps": torch.cat(gm), "pred_maps": torch.cat(pm)}


def _area(b: torch.Tensor, size) -> float:
    return float(((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])).double().mean() / (size[0] * size[1]))


def evaluate_cam(model, heldout, test, *, taus=TAUS, fixed_tau: float | None = None,
                 batch_size: int = 64, v2: bool = True) -> dict:
    """CAM on ``test`` at the fixed threshold and at the threshold chosen on ``heldout``.

    Args:
        heldout, test: objects with ``images``, ``labels``, ``boxes``.
        fixed_tau: 004's / Zhou et al.'s operating point (default
            :data:`models.cam.CAM_THRESHOLD`); it is added to ``taus`` if absent.
        v2: also MaxBoxAccV2 (every region's box), which costs a second pass over the grid.

    Returns:
        ``{"fixed": localization_metrics + "tau", "calibrated": {"tau", "heldout_box_acc",
        "top1_cls", "top1_loc", "gt_known_loc", "mean_box_area"}, "max_box_acc": Choe's on
        test (oracle) at IoU 0.5 with its "tau", "max_box_acc_v2": {"per_delta", "mean"}
        (oracle on test) and "calibrated_per_delta" (held-out tau per delta)}``.
    """
    from .cam import CAM_THRESHOLD
    fixed_tau = CAM_THRESHOLD if fixed_tau is None else float(fixed_tau)
    taus = tuple(taus) if fixed_tau in tuple(taus) else tuple(sorted(set(taus) | {fixed_tau}))
    h = cam_maps(model, heldout.images, heldout.labels, batch_size)
    t = cam_maps(model, test.images, test.labels, batch_size)
    gt_h, gt_t = heldout.boxes.double().cpu(), test.boxes.double().cpu()
    y_t = test.labels.cpu()
    size = tuple(t["gt_maps"].shape[1:])
    ious_h = threshold_ious(h["gt_maps"], gt_h, taus)  # (T, Nh)
    ious_t = threshold_ious(t["gt_maps"], gt_t, taus)  # (T, Nt)
    cal = heldout_box_acc(ious_h, ious_t, taus, DELTA)
    out = {}
    for key, tau in (("fixed", fixed_tau), ("calibrated", cal["setting"])):
        bp = threshold_boxes(t["pred_maps"], (tau,))[0]
        bg = threshold_boxes(t["gt_maps"], (tau,))[0]
        m = localization_metrics(pred_class=t["pred"], gt_class=y_t, box_pred_class=bp,
                                 box_gt_class=bg, gt_box=gt_t)
        m.update(tau=tau, mean_box_area=_area(bg, size))
        out[key] = m
    out["calibrated"]["heldout_box_acc"] = cal["heldout_box_acc"]
    out["max_box_acc"] = {"max_box_acc": cal["test_oracle_max_box_acc"],
                          "tau": cal["test_oracle_setting"], "oracle": True}
    if v2:
        mh = threshold_ious(h["gt_maps"], gt_h, taus, multi_contour=True)
        mt = threshold_ious(t["gt_maps"], gt_t, taus, multi_contour=True)
        per, calp = {}, {}
        for d in V2_DELTAS:
            per[d] = float(box_acc(mt, d).max())
            calp[d] = heldout_box_acc(mh, mt, taus, d)["test_box_acc"]
        out["max_box_acc_v2"] = {"per_delta": per, "mean": sum(per.values()) / len(per),
                                 "oracle": True, "calibrated_per_delta": calp,
                                 "calibrated_mean": sum(calp.values()) / len(calp)}
    return out


@torch.no_grad()
def cstn_boxes(model, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 64) -> dict:
    """A CSTN's MAP and top-5 boxes: ``{"pred", "bp", "rp" (predicted class, transformed /
    receptive-field), "bg", "rg" (true class), "top", "rtop" (true class, 5 best, (N, 5, 4)),
    "level" (true class MAP level index), "size"}``."""
    from .cstn import predict_boxes
    model.eval()
    acc = {k: [] for k in ("pred", "bp", "rp", "bg", "rg", "top", "rtop", "level")}
    size = None
    for i in range(0, len(images), batch_size):
        out = model(images[i:i + batch_size].float())
        size = out.image_size
        mp = predict_boxes(out, None, 1)
        mg = predict_boxes(out, labels[i:i + batch_size], 5)
        for k, v in (("pred", mp["cls"][:, 0]), ("bp", mp["box"][:, 0]),
                     ("rp", mp["rf_box"][:, 0]), ("bg", mg["box"][:, 0]),
                     ("rg", mg["rf_box"][:, 0]), ("top", mg["box"]), ("rtop", mg["rf_box"]),
                     ("level", mg["level"][:, 0])):
            acc[k].append(v.cpu())
    res = {k: torch.cat(v) for k, v in acc.items()}
    for k in ("bp", "rp", "bg", "rg", "top", "rtop"):
        res[k] = res[k].double()
    res["size"] = size
    return res


def evaluate_cstn(model, heldout, test, *, gammas=CSTN_GAMMAS, batch_size: int = 64,
                  return_boxes: bool = False) -> dict:
    """A CSTN (or no-CSTN) on ``test``: 004's numbers at box scale 1, the box scale chosen on
    ``heldout``, the oracle MaxBoxAcc over the scales, and Table I's paired counts.

    Returns:
        ``{"transformed", "untransformed": localization_metrics (with Top-5),
        "calibrated": {"gamma", "heldout_box_acc", "top1_cls", "top1_loc", "gt_known_loc"},
        "max_box_acc": {"max_box_acc", "gamma", "oracle": True}, "paired_top1_loc",
        "paired_gt_known_loc": paired_counts(transformed, untransformed), "mean_box_area",
        "rf_box_area", "gt_box_area", "level_share"}``, and with ``return_boxes`` the test
        split's :func:`cstn_boxes` under ``"boxes"``.
    """
    gammas = tuple(float(g) for g in gammas)
    if 1.0 not in gammas:
        raise ValueError(f"evaluate_cstn: expected gammas to include 1.0 (004's own boxes), "
                         f"got {gammas}")
    h = cstn_boxes(model, heldout.images, heldout.labels, batch_size)
    t = cstn_boxes(model, test.images, test.labels, batch_size)
    size = t["size"]
    gt_h, gt_t = heldout.boxes.double().cpu(), test.boxes.double().cpu()
    y_t = test.labels.cpu()

    def ious(r, gt):
        return torch.stack([box_iou(scale_boxes(r["bg"], g, size), gt) for g in gammas])

    cal = heldout_box_acc(ious(h, gt_h), ious(t, gt_t), gammas, DELTA)
    res = {}
    for key, b_p, b_g, top in (("transformed", "bp", "bg", "top"),
                               ("untransformed", "rp", "rg", "rtop")):
        res[key] = localization_metrics(pred_class=t["pred"], gt_class=y_t,
                                        box_pred_class=t[b_p], box_gt_class=t[b_g],
                                        gt_box=gt_t, topk_gt_class=t[top])
    g = cal["setting"]
    m = localization_metrics(pred_class=t["pred"], gt_class=y_t,
                             box_pred_class=scale_boxes(t["bp"], g, size),
                             box_gt_class=scale_boxes(t["bg"], g, size), gt_box=gt_t)
    m.update(gamma=g, heldout_box_acc=cal["heldout_box_acc"])
    res["calibrated"] = m
    res["max_box_acc"] = {"max_box_acc": cal["test_oracle_max_box_acc"],
                          "gamma": cal["test_oracle_setting"], "oracle": True}
    cls_ok = t["pred"] == y_t
    ok = {k: box_iou(t[k], gt_t) >= DELTA for k in ("bp", "rp", "bg", "rg")}
    res["paired_top1_loc"] = paired_counts(cls_ok & ok["bp"], cls_ok & ok["rp"])
    res["paired_gt_known_loc"] = paired_counts(ok["bg"], ok["rg"])
    res["mean_box_area"] = _area(t["bg"], size)
    res["rf_box_area"] = _area(t["rg"], size)
    res["gt_box_area"] = _area(gt_t, size)
    levels = sorted(set(t["level"].tolist()) | set(range(len(model.config.levels))))
    res["level_share"] = {int(s): float((t["level"] == s).double().mean()) for s in levels}
    if return_boxes:
        res["boxes"] = t
    return res
