"""Class activation maps (Zhou et al. 2016): 004's WSOL baseline (Table IV), on the CSTN backbone.

:class:`CAMNet` is the backbone and pyramid of :class:`models.cstn.CSTN` (the same
:class:`models.wsol_backbone.SmallBackbone` and :class:`models.wsol_backbone.TwoLevelFPN`),
then global average pooling of the fine pyramid level ``P3`` (stride 8) and one linear classifier.
The class activation map of class ``c`` is ``M_c(x, y) = sum_k w_{c,k} P3_k(x, y)``
(Zhou et al. eq. 2; the bias is dropped as there).

Box from a CAM (:func:`cam_boxes`):

1. ``M_c`` is upsampled to the image size (``F.interpolate``, bilinear,
   ``align_corners=False``; a resize, not a warp);
2. normalized per image to ``[0, 1]`` by min-max (Choe et al. 2020);
3. thresholded at ``tau`` (default :data:`CAM_THRESHOLD` = 0.2: Zhou et al.'s "20 % of the
   max value of the CAM", applied after the min-max normalization so that ``tau`` lives in
   ``[0, 1]`` as in Choe et al.; the two agree when the CAM's minimum is 0);
4. the box is the tight box of the largest 8-connected component
   (:func:`scipy.ndimage.label`), ``(x0, y0, x1, y1)`` in pixel-edge coordinates
   (``x1 = last column + 1``), as :mod:`models.cstn`'s boxes. An empty mask (only when
   ``tau > 1``) gives the whole image.

Backbone deviation: :data:`models.cstn.BACKBONE_DEVIATION`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from sampling.checks import check_shape

from .errors import ConfigError as UsageError
from .wsol_backbone import SmallBackbone, TwoLevelFPN

__all__ = ["CAM_THRESHOLD", "CAMOutput", "CAMNet", "build_cam", "class_activation_maps",
           "cam_boxes", "largest_component_box", "evaluate"]

CAM_THRESHOLD = 0.2


@dataclass
class CAMOutput:
    """``logits (B, C)`` and ``features (B, K, h, w)`` (the pooled map), ``image_size``."""

    logits: torch.Tensor
    features: torch.Tensor
    image_size: tuple[int, int]


class CAMNet(nn.Module):
    """Backbone -> two-level FPN -> ``P3`` -> global average pool -> linear (Zhou et al. 2016)."""

    def __init__(self, num_classes: int = 10, width: int = 16):
        super().__init__()
        if not isinstance(num_classes, int) or num_classes < 2:
            raise UsageError(f"CAMNet: expected num_classes to be an int >= 2, got "
                             f"{num_classes!r}")
        self.backbone = SmallBackbone(3, width)
        ch = 4 * width
        self.fpn = TwoLevelFPN(self.backbone.channels, ch)
        self.classifier = nn.Linear(ch, num_classes)
        self.stride = self.backbone.strides[0]

    def forward(self, x: torch.Tensor) -> CAMOutput:
        """``(B, 3, H, W)`` (multiples of 16) -> :class:`CAMOutput`."""
        dims = check_shape(x, "B 3 H W", name="x", fn="CAMNet.forward")
        if dims["H"] % 16 or dims["W"] % 16:
            raise ValueError(f"CAMNet.forward: expected x's H and W to be multiples of 16, "
                             f"got {tuple(x.shape)}")
        p3 = self.fpn(*self.backbone(x))[0]  # (B, K, H/8, W/8)
        return CAMOutput(self.classifier(p3.mean(dim=(2, 3))), p3, (dims["H"], dims["W"]))


def build_cam(num_classes: int = 10, width: int = 16, **unknown) -> CAMNet:
    """Build the CAM baseline (``models.cstn.build("CAM", ...)`` lands here)."""
    if unknown:
        raise UsageError(f"build: unknown config keys {sorted(unknown)} for 'CAM'; expected "
                         f"some of ['num_classes', 'width']")
    return CAMNet(num_classes, width)


def class_activation_maps(model: CAMNet, out: CAMOutput, classes: torch.Tensor) -> torch.Tensor:
    """``M_c`` at ``classes`` ``(B,)``, upsampled to the image: ``(B, H, W)``."""
    fn = "class_activation_maps"
    b = out.features.shape[0]
    check_shape(classes, "B", name="classes", fn=fn, dims={"B": b})
    w = model.classifier.weight[classes]  # (B, K)
    cam = torch.einsum("bk,bkhw->bhw", w, out.features)[:, None]  # (B, 1, h, w)
    return F.interpolate(cam, size=out.image_size, mode="bilinear",
                         align_corners=False)[:, 0]  # (B, H, W)


def largest_component_box(mask: np.ndarray) -> tuple[float, float, float, float]:
    """Tight ``(x0, y0, x1, y1)`` (pixel edges) of the largest 8-connected component of ``mask``.

    Ties go to the component with the smallest label (first in raster order). An empty
    mask gives the whole image.
    """
    from scipy import ndimage
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise ValueError(f"largest_component_box: expected a 2-D mask, got shape {mask.shape}")
    h, w = mask.shape
    lab, n = ndimage.label(mask, structure=np.ones((3, 3), dtype=int))
    if n == 0:
        return 0.0, 0.0, float(w), float(h)
    sizes = np.bincount(lab.ravel())[1:]
    ys, xs = np.nonzero(lab == int(np.argmax(sizes)) + 1)
    return float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)


def cam_boxes(cams: torch.Tensor, thresholds=(CAM_THRESHOLD,)) -> torch.Tensor:
    """Boxes from CAMs at each threshold: ``(B, H, W)`` -> ``(T, B, 4)``.

    Each CAM is min-max normalized to ``[0, 1]`` (a constant CAM becomes all zeros), the
    mask is ``cam >= tau``, and the box is :func:`largest_component_box` of it.
    """
    fn = "cam_boxes"
    check_shape(cams, "B H W", name="cams", fn=fn)
    th = [float(t) for t in thresholds]
    if not th or any(not (0.0 <= t <= 1.0) for t in th):
        raise ValueError(f"{fn}: expected thresholds in [0, 1], got {list(thresholds)}")
    c = cams.detach().float().cpu()
    lo = c.amin(dim=(1, 2), keepdim=True)
    hi = c.amax(dim=(1, 2), keepdim=True)
    norm = ((c - lo) / (hi - lo).clamp_min(1e-12)).numpy()  # (B, H, W) in [0, 1]
    out = np.zeros((len(th), c.shape[0], 4), dtype=np.float64)
    for ti, t in enumerate(th):
        for b in range(c.shape[0]):
            out[ti, b] = largest_component_box(norm[b] >= t)
    return torch.from_numpy(out).to(cams.dtype if cams.is_floating_point() else torch.float32)


@torch.no_grad()
def evaluate(model: CAMNet, images: torch.Tensor, labels: torch.Tensor, boxes: torch.Tensor, *,
             batch_size: int = 64, threshold: float = CAM_THRESHOLD, taus=None) -> dict:
    """CAM's localization numbers on images with exact boxes (a measurement).

    Returns:
        ``{"metrics": localization_metrics(...) at ``threshold`` (no Top-5: CAM gives one
        box), "max_box_acc": over ``taus`` (:data:`models.wsol_metrics.CAM_TAUS`), GT-known,
        "mean_box_area"}``.
    """
    from .wsol_metrics import CAM_TAUS, box_iou, localization_metrics, max_box_acc
    taus = CAM_TAUS if taus is None else tuple(taus)
    model.eval()
    pred, bp, ious, bg = [], [], [], []
    size = None
    for i in range(0, len(images), batch_size):
        out = model(images[i:i + batch_size])
        size = out.image_size
        y = labels[i:i + batch_size]
        p = out.logits.argmax(-1)
        gt = boxes[i:i + batch_size].float()
        pred.append(p)
        bp.append(cam_boxes(class_activation_maps(model, out, p), (threshold,))[0])
        at_gt = cam_boxes(class_activation_maps(model, out, y), taus)  # (T, b, 4)
        ious.append(box_iou(at_gt, gt[None]))
        bg.append(cam_boxes(class_activation_maps(model, out, y), (threshold,))[0])
    bg_all = torch.cat(bg)
    res = {"metrics": localization_metrics(pred_class=torch.cat(pred), gt_class=labels,
                                           box_pred_class=torch.cat(bp), box_gt_class=bg_all,
                                           gt_box=boxes.float()),
           "max_box_acc": max_box_acc(torch.cat(ious, 1), taus)}
    area = (bg_all[:, 2] - bg_all[:, 0]) * (bg_all[:, 3] - bg_all[:, 1])
    res["mean_box_area"] = float(area.mean() / (size[0] * size[1]))
    return res
