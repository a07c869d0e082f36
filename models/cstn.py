"""Convolutional STN for weakly supervised object localization (004, Meethal et al., Sec. III).

The pieces, in the order of 004 Sec. III:

* **Joint class-location-scale distribution** (eq. 1, Sec. III-A/B):
  :func:`joint_log_softmax` takes one score map ``(B, C, h_s, w_s)`` per pyramid level and
  returns ``log p(c, l, s)`` under *one* softmax over classes x locations x levels;
  :func:`class_log_probs` marginalizes to ``log p(c)`` (cross-entropy on it trains the
  network from image labels only); :func:`map_inference` gives ``(c*, s*, l*)``;
  :func:`topk_locations` gives the ``k`` best ``(s, l)`` for a class.
* **Backbone and feature pyramid**: :class:`SmallBackbone` (a from-scratch CNN, strides 8
  and 16) and :class:`TwoLevelFPN` (lateral 1x1 convs, nearest top-down upsampling, a 3x3
  conv + batch norm per level, as 004 Sec. IV-A adds after its ResNet).
  **Deviation from 004**: 004 uses FPN on ResNet-101 pretrained on ImageNet; no pretrained
  weights are reachable here, so the default backbone is :data:`BACKBONE_NAME`, trained
  from scratch (:data:`BACKBONE_DEVIATION`, to be quoted in every result). A local state
  dict can be given with ``backbone_weights=PATH`` (``torch.load(..., weights_only=True)``,
  never a download).
* **Convolutional STN layer** (Sec. III-C): :class:`LocalTransformConv` samples the feature
  map, at every location ``l``, on the ``k x k`` kernel grid transformed by that location's
  own affine ``theta_l`` (:func:`local_sampling_grid`, then :func:`sampling.grid_sample`),
  and contracts the samples with the filters. At ``theta_l = identity`` it equals
  ``F.conv2d(f, W, b, padding=k // 2)`` (tested). :class:`CSTNHead` adds the convolutional
  localizer that predicts ``theta_l`` (identity at initialisation).
* **Boxes** (Sec. III-C, Table I): :func:`receptive_field_boxes` (the untransformed box of a
  location) and :func:`transformed_boxes` (the same box mapped by ``theta_l``).
* **Regularizers** (Sec. III-D): :func:`theta_loss` (eq. 2), :func:`scale_loss` (eq. 3),
  :func:`cstn_loss` (eq. 4: ``L_cls + lambda L_theta + alpha L_scale``).

Convention:
    * **Local frame.** Around feature-map location ``l = (i, j)`` (row ``i``, column ``j``;
      pixel-centre coordinates ``c_l = (j, i)``), the local frame ``q = (x, y)`` in
      ``[-1, 1]^2`` spans the ``k x k`` kernel window with the meaning of
      ``align_corners=False``: ``+-1`` are the outer edges of the outer taps, one local unit
      is ``r = k / 2`` feature pixels, and tap ``(a, b)`` (row, column) sits at
      ``q_ab = (2 b - (k - 1), 2 a - (k - 1)) / k``.
    * ``theta_l`` ``(2, 3)`` is the local ``input_from_output``: the tap at ``q`` reads the
      feature map at pixel ``p = c_l + r (A_l q + t_l)`` where ``theta_l = [A_l | t_l]``.
      These points are converted to the feature map's normalized coordinates with
      ``align_corners=False`` (:func:`sampling.geometry.pixel_to_normalized`) and sampled
      with ``padding_mode="zeros"`` (an ordinary zero-padded convolution at the identity).
    * **Image boxes** are ``(x0, y0, x1, y1)`` in pixel-*edge* coordinates of the input image:
      the image spans ``[0, W] x [0, H]``. Feature cell ``(i, j)`` of a level with stride
      ``S`` covers image pixels ``[j S, (j + 1) S) x [i S, (i + 1) S)``, so feature pixel
      coordinate ``p`` is image coordinate ``(p + 1/2) S``.
    * **Receptive-field box** of a level (our reading of 004's "the bounding box of the
      object as proportional to the receptive field"): the image footprint of the final
      ``k x k`` kernel window at ``l``, a square of side ``k S`` centred at
      ``((j + 1/2) S, (i + 1/2) S)`` (24 px at stride 8 and 48 px at stride 16 for
      ``k = 3``). The *theoretical* receptive field of the whole network
      (:func:`theoretical_receptive_field`, the recursion ``r += (k - 1) * jump``) is far
      larger and nearly the whole image, so it cannot serve as a box; the footprint is the
      region the classifier's filters read, and it is what ``theta_l`` moves. The
      **transformed box** is the axis-aligned hull of the footprint's corners mapped as the
      taps are: ``C_l + (k S / 2) (A_l q + t_l)``, ``q in {-1, 1}^2``.
    * Levels are ordered fine to coarse (stride 8, then 16): level 0 is 004's "lower" level
      ``s1`` and level 1 its "higher" level ``s2`` of eq. 3.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

import sampling
from sampling.checks import check_choice, check_shape

from sampling.geometry import pixel_to_normalized

from .errors import ConfigError as UsageError
from .wsol_backbone import BACKBONE_DEVIATION, BACKBONE_NAME, SmallBackbone, TwoLevelFPN

__all__ = [
    "BACKBONE_NAME",
    "BACKBONE_DEVIATION",
    "NETS",
    "IDENTITY_THETA",
    "CSTNConfig",
    "CSTNOutput",
    "SmallBackbone",
    "TwoLevelFPN",
    "LocalTransformConv",
    "CSTNHead",
    "CSTN",
    "joint_log_softmax",
    "class_log_probs",
    "map_inference",
    "topk_locations",
    "local_sampling_grid",
    "receptive_field_boxes",
    "transformed_boxes",
    "predict_boxes",
    "theoretical_receptive_field",
    "theta_loss",
    "scale_loss",
    "cstn_loss",
    "build",
    "param_counts",
    "load_backbone_weights",
    "train_smoke",
    "evaluate",
]

NETS = ("CSTN", "CSTN-fine", "CSTN-coarse", "no-CSTN", "CAM")
IDENTITY_THETA = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


# ----------------------------------------------------------------------------- joint softmax

def _check_levels(scores, fn: str) -> list[torch.Tensor]:
    if isinstance(scores, torch.Tensor):
        scores = [scores]
    if not isinstance(scores, (list, tuple)) or len(scores) == 0:
        raise ValueError(f"{fn}: expected scores to be a non-empty list of (B, C, h, w) "
                         f"tensors, got {type(scores).__name__}")
    dims = None
    for s, x in enumerate(scores):
        d = check_shape(x, "B C h w", name=f"scores[{s}]", fn=fn,
                        dims=None if dims is None else {"B": dims["B"], "C": dims["C"]})
        dims = dims or d
    return list(scores)


def joint_log_softmax(scores) -> torch.Tensor:
    """``log p(c, l, s)``: one softmax over classes x locations x levels (004 eq. 1, Sec. III-B).

    ``p(c, l, s) = exp(f_{c,l,s}) / sum_{c',l',s'} exp(f_{c',l',s'})``.

    Args:
        scores: list of ``(B, C, h_s, w_s)`` score maps, one per pyramid level (fine to
            coarse), or one ``(B, C, h, w)`` tensor for a single level.

    Returns:
        ``(B, C, L)`` log-probabilities with ``L = sum_s h_s w_s``; location index
        ``l`` runs over level 0's ``h_0 w_0`` locations (row-major), then level 1's, ...

    Example:
        >>> lp = joint_log_softmax([torch.zeros(1, 2, 2, 2), torch.zeros(1, 2, 1, 1)])
        >>> lp.shape, float(lp.exp().sum())
        (torch.Size([1, 2, 5]), 1.0)
    """
    scores = _check_levels(scores, "joint_log_softmax")
    flat = torch.cat([s.flatten(2) for s in scores], dim=2)  # (B, C, L)
    b, c, n = flat.shape
    return flat.reshape(b, c * n).log_softmax(-1).reshape(b, c, n)


def class_log_probs(log_joint: torch.Tensor) -> torch.Tensor:
    """``log p(c) = log sum_{l,s} p(c, l, s)``: ``(B, C, L) -> (B, C)``."""
    check_shape(log_joint, "B C L", name="log_joint", fn="class_log_probs")
    return torch.logsumexp(log_joint, dim=2)


def _level_sizes(scores) -> list[tuple[int, int]]:
    return [(int(s.shape[-2]), int(s.shape[-1])) for s in scores]


def _decode(flat_l: torch.Tensor, sizes: list[tuple[int, int]]):
    """Flat location index -> (level, row, col), all ``flat_l``-shaped int64."""
    level = torch.zeros_like(flat_l)
    row = torch.zeros_like(flat_l)
    col = torch.zeros_like(flat_l)
    start = 0
    for s, (h, w) in enumerate(sizes):
        inside = (flat_l >= start) & (flat_l < start + h * w)
        local = flat_l - start
        level = torch.where(inside, torch.full_like(flat_l, s), level)
        row = torch.where(inside, local // w, row)
        col = torch.where(inside, local % w, col)
        start += h * w
    return level, row, col


def map_inference(scores, classes: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """MAP of the joint: ``(c*, s*, l*) = argmax p(c, l, s)`` (004 Sec. III-A/B).

    Args:
        scores: per-level ``(B, C, h_s, w_s)`` score maps.
        classes: optional ``(B,)`` class per image; then the argmax is over ``(l, s)`` of
            ``p(c = classes, l, s)`` (GT-known localization).

    Returns:
        ``{"cls", "level", "row", "col", "log_prob"}``, each ``(B,)``.
    """
    fn = "map_inference"
    scores = _check_levels(scores, fn)
    lj = joint_log_softmax(scores)  # (B, C, L)
    b, c, n = lj.shape
    if classes is None:
        lp, idx = lj.reshape(b, c * n).max(-1)
        cls, flat_l = idx // n, idx % n
    else:
        classes = _check_classes(classes, b, c, fn)
        lp, flat_l = lj[torch.arange(b, device=lj.device), classes].max(-1)  # (B,)
        cls = classes
    level, row, col = _decode(flat_l, _level_sizes(scores))
    return {"cls": cls, "level": level, "row": row, "col": col, "log_prob": lp}


def _check_classes(classes, b: int, c: int, fn: str) -> torch.Tensor:
    check_shape(classes, "B", name="classes", fn=fn, dims={"B": b})
    if classes.dtype not in (torch.int64, torch.int32) or bool(
            ((classes < 0) | (classes >= c)).any()):
        raise ValueError(f"{fn}: expected classes to be integers in [0, {c}), got "
                         f"{classes.dtype} with range [{int(classes.min())}, "
                         f"{int(classes.max())}]")
    return classes.long()


def topk_locations(scores, k: int, classes: torch.Tensor | None = None
                   ) -> dict[str, torch.Tensor]:
    """The ``k`` highest-scoring ``(level, location)`` pairs of ``p(c, l, s)``.

    With ``classes`` the ranking is over ``p(c = classes, l, s)`` (004's "GT-known Top-5 box
    Loc"); without, over all ``(c, l, s)``.

    Returns:
        ``{"cls", "level", "row", "col", "log_prob"}``, each ``(B, k)``, best first.
    """
    fn = "topk_locations"
    scores = _check_levels(scores, fn)
    lj = joint_log_softmax(scores)
    b, c, n = lj.shape
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise ValueError(f"{fn}: expected k to be an int >= 1, got {k!r}")
    if classes is None:
        if k > c * n:
            raise ValueError(f"{fn}: expected k <= C * L = {c * n}, got {k}")
        lp, idx = lj.reshape(b, c * n).topk(k, dim=-1)
        cls, flat_l = idx // n, idx % n
    else:
        if k > n:
            raise ValueError(f"{fn}: expected k <= L = {n} locations, got {k}")
        classes = _check_classes(classes, b, c, fn)
        lp, flat_l = lj[torch.arange(b, device=lj.device), classes].topk(k, dim=-1)
        cls = classes[:, None].expand(b, k)
    level, row, col = _decode(flat_l, _level_sizes(scores))
    return {"cls": cls, "level": level, "row": row, "col": col, "log_prob": lp}


# --------------------------------------------------------------- local transformed convolution

def _tap_offsets(k: int, dtype, device) -> torch.Tensor:
    """Local-frame coordinates ``q`` of the ``k x k`` taps, ``(k * k, 2)`` row-major ``(x, y)``."""
    ar = (2 * torch.arange(k, dtype=dtype, device=device) - (k - 1)) / k  # (k,)
    qy, qx = torch.meshgrid(ar, ar, indexing="ij")  # (k, k) each
    return torch.stack([qx, qy], -1).reshape(k * k, 2)


def local_sampling_grid(theta: torch.Tensor, k: int, *, align_corners: bool = False
                        ) -> torch.Tensor:
    """Sampling points of the ``theta_l``-transformed ``k x k`` kernel at every location.

    Convention:
        module docstring ("Local frame"): tap ``q`` of location ``l`` reads pixel
        ``p = c_l + (k / 2) (A_l q + t_l)`` of the ``(h, w)`` feature map, returned in
        normalized coordinates of that map with the given ``align_corners`` (the sampler
        must use the same value).

    Args:
        theta: ``(B, h, w, 2, 3)`` local ``input_from_output`` matrices.
        k: odd kernel size >= 1.
        align_corners: normalization of the returned points (``False``: the package default).

    Returns:
        ``(B, h * w, k * k, 2)`` normalized ``(x, y)``: row ``l = i w + j``, column the tap
        ``a k + b``.
    """
    fn = "local_sampling_grid"
    dims = check_shape(theta, "B h w 2 3", name="theta", fn=fn)
    if not isinstance(k, int) or isinstance(k, bool) or k < 1 or k % 2 == 0:
        raise ValueError(f"{fn}: expected k to be an odd int >= 1, got {k!r}")
    h, w = dims["h"], dims["w"]
    q = _tap_offsets(k, theta.dtype, theta.device)  # (K, 2)
    a, t = theta[..., :2], theta[..., 2]  # (B, h, w, 2, 2), (B, h, w, 2)
    local = torch.einsum("bhwij,kj->bhwki", a, q) + t[:, :, :, None, :]  # (B, h, w, K, 2)
    ys, xs = torch.meshgrid(torch.arange(h, dtype=theta.dtype, device=theta.device),
                            torch.arange(w, dtype=theta.dtype, device=theta.device),
                            indexing="ij")
    centre = torch.stack([xs, ys], -1)[None, :, :, None, :]  # (1, h, w, 1, 2) pixel (x, y)
    pix = centre + (k / 2) * local  # (B, h, w, K, 2)
    grid = pixel_to_normalized(pix, (h, w), align_corners=align_corners)
    return grid.reshape(theta.shape[0], h * w, k * k, 2)


class LocalTransformConv(nn.Module):
    """``f' = conv(f, theta)``: a convolution whose kernel grid is warped per location (004 III-C).

    At location ``l`` the ``k x k`` taps are placed at the points of
    :func:`local_sampling_grid` (``theta_l``-transformed), sampled from ``f`` with
    :func:`sampling.grid_sample` (``method``, ``align_corners=False``,
    ``padding_mode="zeros"``), and contracted with the filters:
    ``f'_o(l) = b_o + sum_{c, tap} W_{o, c, tap} f_c(p_l(tap))``.
    With ``theta=None`` it is ``F.conv2d(f, W, b, padding=k // 2)``, which equals the
    sampled version at ``theta_l = identity`` (tested).

    Convention:
        module docstring (local frame, ``theta`` is the local ``input_from_output``).

    Args:
        in_channels, out_channels, k: as ``nn.Conv2d(in, out, k, padding=k // 2)``.
        method: sampler (:data:`sampling.METHODS`).
    """

    def __init__(self, in_channels: int, out_channels: int, k: int = 3, *,
                 method: str = "bilinear", sampler_options: dict | None = None):
        super().__init__()
        if not isinstance(k, int) or k < 1 or k % 2 == 0:
            raise ValueError(f"LocalTransformConv: expected k to be an odd int >= 1, got {k!r}")
        check_choice(method, sampling.METHODS, name="method", fn="LocalTransformConv")
        conv = nn.Conv2d(in_channels, out_channels, k, padding=k // 2)  # PyTorch's init
        self.weight = conv.weight  # (O, C, k, k)
        self.bias = conv.bias  # (O,)
        self.k, self.method = k, method
        self.sampler_options = dict(sampler_options or {})

    def forward(self, f: torch.Tensor, theta: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, C, h, w)``, ``theta (B, h, w, 2, 3)`` or ``None`` -> ``(B, O, h, w)``."""
        fn = "LocalTransformConv"
        dims = check_shape(f, "B C h w", name="f", fn=fn)
        if theta is None:
            return F.conv2d(f, self.weight, self.bias, padding=self.k // 2)
        check_shape(theta, "B h w 2 3", name="theta", fn=fn, dims=dims)
        b, c, h, w = f.shape
        grid = local_sampling_grid(theta.to(f.dtype), self.k, align_corners=False)
        samples = sampling.grid_sample(f, grid, method=self.method, align_corners=False,
                                       padding_mode="zeros",
                                       **self.sampler_options)  # (B, C, h*w, k*k)
        wt = self.weight.reshape(self.weight.shape[0], c, self.k * self.k)  # (O, C, K)
        out = torch.einsum("bclk,ock->bol", samples, wt) + self.bias[None, :, None]
        return out.reshape(b, -1, h, w)  # (B, O, h, w)


class CSTNHead(nn.Module):
    """Localizer ``theta = loc(f)`` then ``f' = conv(f, theta)`` (004 Sec. III-C).

    The localizer is ``conv3x3(C -> hidden) -> ReLU -> conv1x1(hidden -> 6)`` whose last
    layer has zero weights and the identity bias ``(1, 0, 0, 0, 1, 0)``, so at
    initialisation every ``theta_l`` is the identity and the head is an ordinary conv.
    With ``transform=False`` (004 Table II "without conv STN") there is no localizer and
    ``theta`` is the identity everywhere.
    """

    def __init__(self, in_channels: int, num_classes: int, *, k: int = 3, hidden: int = 32,
                 transform: bool = True, method: str = "bilinear",
                 sampler_options: dict | None = None):
        super().__init__()
        self.transform = bool(transform)
        self.conv = LocalTransformConv(in_channels, num_classes, k, method=method,
                                       sampler_options=sampler_options)
        if self.transform:
            last = nn.Conv2d(hidden, 6, 1)
            nn.init.zeros_(last.weight)
            with torch.no_grad():
                last.bias.copy_(torch.tensor(IDENTITY_THETA))
            self.localizer = nn.Sequential(nn.Conv2d(in_channels, hidden, 3, padding=1),
                                           nn.ReLU(inplace=True), last)
        else:
            self.localizer = None
        self.register_buffer("identity", torch.tensor(IDENTITY_THETA).reshape(2, 3),
                             persistent=False)

    def forward(self, f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, C, h, w)`` -> ``(scores (B, classes, h, w), theta (B, h, w, 2, 3))``."""
        b, _, h, w = f.shape
        if self.localizer is None:
            theta = self.identity.to(f.dtype).expand(b, h, w, 2, 3)
            return self.conv(f, None), theta
        theta = self.localizer(f).permute(0, 2, 3, 1).reshape(b, h, w, 2, 3)  # (B, h, w, 2, 3)
        return self.conv(f, theta), theta


# ----------------------------------------------------------------------- backbone and pyramid

def theoretical_receptive_field(layers) -> tuple[int, int]:
    """``(receptive field, jump)`` in input pixels of a stack of ``(kernel, stride)`` layers.

    The standard recursion ``r_{n} = r_{n-1} + (k_n - 1) j_{n-1}``, ``j_n = j_{n-1} s_n``
    from ``r = j = 1``.
    """
    r, j = 1, 1
    for k, s in layers:
        r, j = r + (k - 1) * j, j * s
    return r, j


# ------------------------------------------------------------------------------ the network

@dataclass(frozen=True)
class CSTNConfig:
    """Configuration of a CSTN / no-CSTN / one-level network (004 Sec. III, IV-A).

    Attributes:
        num_classes: number of classes ``C``.
        levels: which pyramid levels feed the joint distribution: ``(0, 1)`` both (004),
            ``(0,)`` the fine (stride 8) or ``(1,)`` the coarse (stride 16) alone (Fig. 6).
        transform: learn ``theta_l`` (CSTN) or keep the identity (no CSTN, Table II).
        k: kernel size of the classifier conv (odd); its footprint is the receptive-field box.
        width: backbone base width; pyramid channels are ``4 * width``.
        loc_hidden: hidden channels of the localizer.
        lam: ``lambda`` of eq. 4 (weight of ``L_theta``, eq. 2).
        alpha: ``alpha`` of eq. 4 (weight of ``L_scale``, eq. 3; ignored with one level).
        method: sampler of the local transformed conv.
    """

    num_classes: int = 10
    levels: tuple[int, ...] = (0, 1)
    transform: bool = True
    k: int = 3
    width: int = 16
    loc_hidden: int = 32
    lam: float = 1e-4
    alpha: float = 1.0
    method: str = "bilinear"

    def __post_init__(self):
        fn = "CSTNConfig"
        if not isinstance(self.num_classes, int) or self.num_classes < 2:
            raise UsageError(f"{fn}: expected num_classes to be an int >= 2, got "
                             f"{self.num_classes!r}")
        if tuple(self.levels) not in ((0, 1), (0,), (1,)):
            raise UsageError(f"{fn}: expected levels (0, 1), (0,) or (1,), got {self.levels!r}")
        if not isinstance(self.k, int) or self.k < 1 or self.k % 2 == 0:
            raise UsageError(f"{fn}: expected k to be an odd int >= 1, got {self.k!r}")
        for name in ("lam", "alpha"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise UsageError(f"{fn}: expected {name} to be a finite number >= 0, got {v!r}")
        check_choice(self.method, sampling.METHODS, name="method", fn=fn)


@dataclass
class CSTNOutput:
    """What :class:`CSTN` returns.

    Attributes:
        scores: per used level, ``(B, C, h_s, w_s)`` scores ``f_{c,l,s}``.
        theta: per used level, ``(B, h_s, w_s, 2, 3)`` local ``input_from_output``.
        strides: per used level, its stride in input pixels.
        image_size: ``(H, W)`` of the input.
        k: the classifier kernel size (the receptive-field box is ``k * stride`` wide).
    """

    scores: list[torch.Tensor]
    theta: list[torch.Tensor]
    strides: list[int]
    image_size: tuple[int, int]
    k: int
    extra: dict = field(default_factory=dict)


class CSTN(nn.Module):
    """Backbone -> two-level FPN -> CSTN head per level -> joint ``p(c, l, s)`` (004 Fig. 4).

    The head (localizer and filters) is shared by the levels, as detection heads on FPN
    levels are (004 does not say; sharing makes the two levels' scores comparable in one
    softmax). See the module docstring for conventions and the backbone deviation.
    """

    def __init__(self, config: CSTNConfig = CSTNConfig()):
        super().__init__()
        self.config = config
        self.backbone = SmallBackbone(3, config.width)
        ch = 4 * config.width
        self.fpn = TwoLevelFPN(self.backbone.channels, ch)
        self.head = CSTNHead(ch, config.num_classes, k=config.k, hidden=config.loc_hidden,
                             transform=config.transform, method=config.method)

    def forward(self, x: torch.Tensor) -> CSTNOutput:
        """``(B, 3, H, W)`` with ``H, W`` multiples of 16 -> :class:`CSTNOutput`."""
        fn = "CSTN.forward"
        dims = check_shape(x, "B 3 H W", name="x", fn=fn)
        if dims["H"] % 16 or dims["W"] % 16:
            raise ValueError(f"{fn}: expected x's H and W to be multiples of 16, got "
                             f"{tuple(x.shape)}")
        pyramid = self.fpn(*self.backbone(x))
        scores, thetas, strides = [], [], []
        for s in self.config.levels:
            sc, th = self.head(pyramid[s])
            scores.append(sc)
            thetas.append(th)
            strides.append(self.backbone.strides[s])
        return CSTNOutput(scores, thetas, strides, (dims["H"], dims["W"]), self.config.k)


# ---------------------------------------------------------------------------------- boxes

def _gather_theta(out: CSTNOutput, level, row, col) -> torch.Tensor:
    """``theta`` at ``(level, row, col)``: index tensors ``(B, ...)`` -> ``(B, ..., 2, 3)``."""
    b = level.shape[0]
    bi = torch.arange(b, device=level.device).reshape((b,) + (1,) * (level.dim() - 1))
    bi = bi.expand_as(level)
    res = torch.zeros(level.shape + (2, 3), dtype=out.theta[0].dtype,
                      device=out.theta[0].device)
    for s, th in enumerate(out.theta):
        h, w = th.shape[1:3]
        here = level == s
        r = row.clamp(max=h - 1)
        c = col.clamp(max=w - 1)
        res = torch.where(here[..., None, None], th[bi, r, c], res)
    return res


def receptive_field_boxes(out: CSTNOutput, level, row, col, *, theta: torch.Tensor | None = None,
                          clip: bool = True) -> torch.Tensor:
    """Image boxes of locations ``(level, row, col)``: untransformed, or mapped by ``theta``.

    Convention:
        module docstring ("Image boxes", "Receptive-field box"): centre
        ``C = ((col + 1/2) S, (row + 1/2) S)``, half-side ``R = k S / 2``; with ``theta``
        the box is the axis-aligned hull of ``C + R (A q + t)``, ``q in {-1, 1}^2``.

    Args:
        out: the network's output (strides, ``k``, image size).
        level, row, col: int64 index tensors of one shape ``(B, ...)``.
        theta: ``(B, ..., 2, 3)`` or ``None`` (untransformed box).
        clip: clip to the image ``[0, W] x [0, H]``.

    Returns:
        ``(B, ..., 4)`` boxes ``(x0, y0, x1, y1)`` in image pixels.
    """
    dt = out.theta[0].dtype
    dev = out.theta[0].device
    strides = torch.tensor(out.strides, dtype=dt, device=dev)[level]  # (B, ...)
    centre = torch.stack([(col.to(dt) + 0.5) * strides, (row.to(dt) + 0.5) * strides], -1)
    half = (out.k * strides / 2)[..., None]  # (B, ..., 1)
    corners = torch.tensor([[-1.0, -1.0], [1.0, -1.0], [-1.0, 1.0], [1.0, 1.0]], dtype=dt,
                           device=dev)  # (4, 2) q = (x, y)
    if theta is None:
        local = corners.expand(level.shape + (4, 2))
    else:
        local = torch.einsum("...ij,kj->...ki", theta[..., :2], corners) + theta[..., None, :, 2]
    pts = centre[..., None, :] + half[..., None, :] * local  # (B, ..., 4, 2)
    box = torch.cat([pts.amin(-2), pts.amax(-2)], -1)  # (B, ..., 4)
    if clip:
        h, w = out.image_size
        lim = torch.tensor([w, h, w, h], dtype=dt, device=dev)
        box = torch.minimum(box.clamp(min=0), lim)
    return box


def transformed_boxes(out: CSTNOutput, level, row, col, *, clip: bool = True) -> torch.Tensor:
    """The receptive-field boxes of ``(level, row, col)`` mapped by their own ``theta_l``."""
    theta = _gather_theta(out, level, row, col)
    return receptive_field_boxes(out, level, row, col, theta=theta, clip=clip)


def predict_boxes(out: CSTNOutput, classes: torch.Tensor | None = None, k: int = 1
                  ) -> dict[str, torch.Tensor]:
    """Top-``k`` boxes by score (``k = 1``: the MAP), transformed and untransformed.

    Returns:
        ``{"cls", "level", "row", "col", "log_prob"}`` ``(B, k)`` and
        ``"box"`` / ``"rf_box"`` ``(B, k, 4)`` (transformed / untransformed).
    """
    top = topk_locations(out.scores, k, classes)
    top["box"] = transformed_boxes(out, top["level"], top["row"], top["col"])
    top["rf_box"] = receptive_field_boxes(out, top["level"], top["row"], top["col"])
    return top


# ------------------------------------------------------------------------------ regularizers

def theta_loss(thetas) -> torch.Tensor:
    """``L_theta = sum_s sum_l ||theta_ref - theta_l||^2`` with ``theta_ref`` the identity (eq. 2).

    Summed over levels and locations as eq. 2 writes it (squared Frobenius norm of the
    ``2 x 3`` difference), averaged over the batch.

    Args:
        thetas: list of ``(B, h_s, w_s, 2, 3)`` (or one such tensor).

    Returns:
        scalar.
    """
    fn = "theta_loss"
    if isinstance(thetas, torch.Tensor):
        thetas = [thetas]
    total = None
    for s, th in enumerate(thetas):
        check_shape(th, "B h w 2 3", name=f"thetas[{s}]", fn=fn)
        ref = torch.tensor(IDENTITY_THETA, dtype=th.dtype, device=th.device).reshape(2, 3)
        part = (th - ref).pow(2).sum(dim=(1, 2, 3, 4)).mean()
        total = part if total is None else total + part
    return total


def scale_loss(scores, c_star: torch.Tensor, *, fine: int = 0, coarse: int = 1
               ) -> torch.Tensor:
    """``L_scale = max(0, max_l p(s1, l, c*) - max_l p(s2, l, c*))`` (eq. 3), batch mean.

    ``s1`` is the lower (finer) level ``fine`` and ``s2`` the higher (coarser) ``coarse``;
    ``p`` is the joint of :func:`joint_log_softmax` over all given levels.

    Args:
        scores: per-level ``(B, C, h_s, w_s)`` (at least two levels).
        c_star: ``(B,)`` the class ``c*`` (004: the MAP class).

    Returns:
        scalar.
    """
    fn = "scale_loss"
    scores = _check_levels(scores, fn)
    if len(scores) < 2:
        raise ValueError(f"{fn}: expected at least two levels, got {len(scores)}")
    lj = joint_log_softmax(scores)  # (B, C, L)
    b, c, _ = lj.shape
    c_star = _check_classes(c_star, b, c, fn)
    sizes = [h * w for h, w in _level_sizes(scores)]
    starts = [sum(sizes[:s]) for s in range(len(sizes))]
    pc = lj[torch.arange(b, device=lj.device), c_star].exp()  # (B, L)
    m1 = pc[:, starts[fine]:starts[fine] + sizes[fine]].amax(-1)
    m2 = pc[:, starts[coarse]:starts[coarse] + sizes[coarse]].amax(-1)
    return F.relu(m1 - m2).mean()


def cstn_loss(out: CSTNOutput, target: torch.Tensor, *, lam: float, alpha: float
              ) -> tuple[torch.Tensor, dict[str, float]]:
    """Eq. 4: ``L = L_cls + lambda L_theta + alpha L_scale``.

    ``L_cls`` is the cross-entropy of the marginal ``p(c)``; ``L_scale`` uses the MAP class
    ``c*`` (detached argmax) and is 0 with one level; ``L_theta`` is 0 without a transform.

    Returns:
        ``(loss, {"cls", "theta", "scale"})`` (the parts as floats).
    """
    lj = joint_log_softmax(out.scores)
    lpc = class_log_probs(lj)  # (B, C)
    l_cls = F.nll_loss(lpc, target)
    l_theta = theta_loss(out.theta)
    if len(out.scores) >= 2:
        c_star = map_inference([s.detach() for s in out.scores])["cls"]
        l_scale = scale_loss(out.scores, c_star)
    else:
        l_scale = l_cls.new_zeros(())
    loss = l_cls + lam * l_theta + alpha * l_scale
    return loss, {"cls": float(l_cls.detach()), "theta": float(l_theta.detach()),
                  "scale": float(l_scale.detach())}


# --------------------------------------------------------------------------- build, weights

def _config_for(net: str, config: dict) -> CSTNConfig:
    base = {"CSTN": {}, "CSTN-fine": {"levels": (0,)}, "CSTN-coarse": {"levels": (1,)},
            "no-CSTN": {"transform": False}}[net]
    fields = set(CSTNConfig.__dataclass_fields__)
    unknown = sorted(set(config) - fields)
    if unknown:
        raise UsageError(f"build: unknown config keys {unknown} for {net!r}; expected some "
                         f"of {sorted(fields)}")
    return CSTNConfig(**(base | config))


def net_levels(net: str) -> tuple[int, ...]:
    """The pyramid levels (0: fine, stride 8; 1: coarse, stride 16) ``net`` scores on, in the
    order of its outputs: index ``i`` of a prediction's ``level`` is level ``net_levels[i]``."""
    check_choice(net, tuple(n for n in NETS if n != "CAM"), name="net", fn="net_levels")
    return tuple(_config_for(net, {}).levels)


def build(net: str, *, backbone_weights=None, **config) -> nn.Module:
    """Build ``net`` (one of :data:`NETS`) with :class:`CSTNConfig` overrides ``config``.

    ``"CAM"`` is built by :func:`models.cam.build_cam` on the same backbone (``config``
    takes ``num_classes`` and ``width`` there). ``backbone_weights`` is a local state-dict
    file for :class:`SmallBackbone` (:func:`load_backbone_weights`).

    Raises:
        UsageError: unknown ``net`` or config key.
    """
    check_choice(net, NETS, name="net", fn="build")
    if net == "CAM":
        from .cam import build_cam
        model = build_cam(**config)
    else:
        model = CSTN(_config_for(net, config))
    if backbone_weights is not None:
        load_backbone_weights(model.backbone, backbone_weights)
    return model


def load_backbone_weights(backbone: nn.Module, path) -> None:
    """Load a local state dict into ``backbone`` (``torch.load(path, weights_only=True)``).

    Never downloads. Raises ``FileNotFoundError`` if ``path`` does not exist and
    ``ValueError`` naming the missing / unexpected keys if it does not fit.
    """
    from pathlib import Path
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"load_backbone_weights: expected a state-dict file at {p}, "
                                f"found none")
    state = torch.load(p, map_location="cpu", weights_only=True)
    try:
        backbone.load_state_dict(state)
    except RuntimeError as e:
        first = str(e).splitlines()[0]
        raise ValueError(f"load_backbone_weights: expected a state dict of {BACKBONE_NAME} in "
                         f"{p}, got one that does not fit ({first})") from None


def param_counts(num_classes: int = 10, **config) -> dict[str, int]:
    """``{net: learnable parameters}`` for every net of :data:`NETS`."""
    return {n: sum(p.numel() for p in build(n, num_classes=num_classes, **config).parameters())
            for n in NETS}


# --------------------------------------------------------------------- temporary smoke loop

def train_smoke(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, *, steps: int,
                batch_size: int = 16, lr: float = 1e-3, lam: float | None = None,
                alpha: float | None = None, seed: int = 0) -> list[float]:
    """TEMPORARY (until the suite framework of issue 11 lands): a few Adam steps.

    Works for :class:`CSTN` (loss eq. 4 with ``lam`` / ``alpha``, default the model's
    :class:`CSTNConfig`) and :class:`models.cam.CAMNet` (cross-entropy).
    Returns the loss of every step.
    """
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    losses = []
    for _ in range(steps):
        idx = torch.randint(len(images), (batch_size,), generator=g)
        out = model(images[idx])
        if isinstance(out, CSTNOutput):
            cfg = model.config
            loss, _ = cstn_loss(out, labels[idx], lam=cfg.lam if lam is None else lam,
                                alpha=cfg.alpha if alpha is None else alpha)
        else:
            loss = F.cross_entropy(out.logits, labels[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return losses


# ------------------------------------------------------------------------------ evaluation

@torch.no_grad()
def evaluate(model: CSTN, images: torch.Tensor, labels: torch.Tensor, boxes: torch.Tensor, *,
             batch_size: int = 64, gammas=None) -> dict:
    """All 004 localization numbers of a CSTN on images with exact boxes (a measurement).

    Returns:
        ``{"transformed": localization_metrics(...), "untransformed": ... (Table I),
        "max_box_acc": ... (box scale gamma, :data:`models.wsol_metrics.CSTN_GAMMAS`),
        "area_histogram": ... (GT-known, transformed box, by the level of the box),
        "mean_box_area": fraction of the image, "level_share": fraction of MAP boxes per
        level, keyed by the index into ``model.config.levels`` (not the pyramid level:
        for CSTN-coarse index 0 is the coarse level, :func:`net_levels`)}``. GT-known numbers use the MAP over ``(l, s)`` of the true class; Top-5 the
        5 best ``(l, s)`` of the true class.
    """
    from .wsol_metrics import (CSTN_GAMMAS, area_histogram, box_iou, localization_metrics,
                               max_box_acc, scale_boxes)
    gammas = CSTN_GAMMAS if gammas is None else tuple(gammas)
    model.eval()
    acc = {k: [] for k in ("pred", "bp", "bg", "rp", "rg", "top", "rtop", "level")}
    size = None
    for i in range(0, len(images), batch_size):
        out = model(images[i:i + batch_size])
        size = out.image_size
        y = labels[i:i + batch_size]
        mp = predict_boxes(out, None, 1)
        mg = predict_boxes(out, y, 5)
        acc["pred"].append(mp["cls"][:, 0])
        acc["bp"].append(mp["box"][:, 0])
        acc["rp"].append(mp["rf_box"][:, 0])
        acc["bg"].append(mg["box"][:, 0])
        acc["rg"].append(mg["rf_box"][:, 0])
        acc["top"].append(mg["box"])
        acc["rtop"].append(mg["rf_box"])
        acc["level"].append(mg["level"][:, 0])
    cat = {k: torch.cat(v) for k, v in acc.items()}
    gt = boxes.to(cat["bp"].dtype)
    res = {
        "transformed": localization_metrics(pred_class=cat["pred"], gt_class=labels,
                                            box_pred_class=cat["bp"], box_gt_class=cat["bg"],
                                            gt_box=gt, topk_gt_class=cat["top"]),
        "untransformed": localization_metrics(pred_class=cat["pred"], gt_class=labels,
                                              box_pred_class=cat["rp"],
                                              box_gt_class=cat["rg"], gt_box=gt,
                                              topk_gt_class=cat["rtop"]),
    }
    ious = torch.stack([box_iou(scale_boxes(cat["bg"], g, size), gt) for g in gammas])
    res["max_box_acc"] = max_box_acc(ious, gammas)
    correct = box_iou(cat["bg"], gt) >= 0.5
    res["area_histogram"] = area_histogram(gt, correct, size, level=cat["level"])
    area = (cat["bg"][:, 2] - cat["bg"][:, 0]) * (cat["bg"][:, 3] - cat["bg"][:, 1])
    res["mean_box_area"] = float(area.mean() / (size[0] * size[1]))
    res["level_share"] = {int(s): float((cat["level"] == s).double().mean())
                          for s in range(len(model.config.levels))}
    return res
