"""A stand-in for CUB with exact boxes: real MNIST digits at varied scale and aspect on textures.

**Superseded** by :mod:`models.data.wsol_standin_v2` (issue 29: these digits cover 4.8 % of
the image on average, too little for 004's boxes; ``results/cub-medium/README.md``). Kept
unchanged for the runs made with it (the cub suite's ``standin`` variant).

Used only when asked for (``--data standin``) and named in every result
(:data:`STANDIN_NAME`). Each image (``size x size``, default 128, RGB):

* **object**: one real MNIST digit (train split: MNIST's 60k training digits; test split:
  MNIST's 10k test digits), scaled by ``sx = s sqrt(a)``, ``sy = s / sqrt(a)`` with the
  overall scale ``s`` log-uniform in :data:`SCALE_RANGE` and the aspect ratio ``a``
  log-uniform in :data:`ASPECT_RANGE` (so a square receptive-field box is wrong), placed
  at a uniformly random position where the whole ``28 sx x 28 sy`` digit image fits;
  rendered with :func:`sampling.warp_affine` (bilinear, ``align_corners=False``, zeros
  outside);
* **background**: a random crop of a natural texture (:mod:`models.data.textures`; train
  and test use disjoint source images), crop side 1 to 3 times the canvas;
* **compositing**: ``image = (1 - m) * background + m * colour`` with ``m`` the rendered
  digit in ``[0, 1]`` and ``colour`` random, bright (``0.7 + 0.3 U``) on a dark
  background (mean luminance < 0.5), dark (``0.3 U``) on a bright one;
* **label**: the digit's class (image-level; the only supervision for training);
* **box**: the tight box of the rendered digit's nonzero support (``m > 0``),
  ``(x0, y0, x1, y1)`` in pixel-edge coordinates (``x1`` = last column + 1), for
  evaluation only.

Images are normalized with the ImageNet statistics (:func:`models.data.cub.imagenet_normalize`)
as the CUB loader does, unless ``normalize=False``. Fashion-MNIST is not used (Debian's
``dataset-fashion-mnist`` is not installed here).

Convention:
    The digit transform, in pixel-edge coordinates, is ``canvas = c + diag(sx, sy)
    (digit - (14, 14))`` with ``c`` the digit image's centre on the canvas; the warp's
    ``input_from_output`` is its inverse, converted with
    :func:`sampling.geometry.pixel_matrix_to_normalized` (pixel-centre coordinates,
    ``align_corners=False``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from sampling.geometry import pixel_matrix_to_normalized
from sampling.warp import warp_affine

from .cub import imagenet_normalize
from .textures import load_textures, random_crops

__all__ = ["STANDIN_NAME", "SCALE_RANGE", "ASPECT_RANGE", "LocData", "render_digits",
           "support_boxes", "make_standin"]

STANDIN_NAME = "cub-standin (MNIST digits at log-uniform scale and aspect on skimage textures)"
SCALE_RANGE = (0.7, 2.6)
ASPECT_RANGE = (0.5, 2.0)


@dataclass
class LocData:
    """Images with image-level labels and exact boxes.

    Attributes:
        images: ``(N, 3, S, S)`` float32 (ImageNet-normalized unless asked otherwise).
        labels: ``(N,)`` int64 classes.
        boxes: ``(N, 4)`` exact ``(x0, y0, x1, y1)`` (evaluation only).
        scale: ``(N, 2)`` the ``(sx, sy)`` each digit was scaled by.
        centre: ``(N, 2)`` the digit image's centre on the canvas, pixel-edge ``(x, y)``.
        digits: ``(N, 28, 28)`` the source digits in ``[0, 1]``.
        dataset: :data:`STANDIN_NAME`.
        num_classes: 10.
    """

    images: torch.Tensor
    labels: torch.Tensor
    boxes: torch.Tensor
    scale: torch.Tensor
    centre: torch.Tensor
    digits: torch.Tensor
    dataset: str = STANDIN_NAME
    num_classes: int = 10


def render_digits(digits: torch.Tensor, scale_xy: torch.Tensor, centre: torch.Tensor,
                  size: int) -> torch.Tensor:
    """Render ``(N, 28, 28)`` digits (values in ``[0, 1]``) onto ``(N, 1, size, size)`` canvases.

    Args:
        digits: ``(N, h, w)`` float images.
        scale_xy: ``(N, 2)`` ``(sx, sy)``.
        centre: ``(N, 2)`` the digit image's centre on the canvas, pixel-edge ``(x, y)``.
        size: canvas side.
    """
    n, h, w = digits.shape
    dt = digits.dtype
    sx, sy = scale_xy[:, 0].to(dt), scale_xy[:, 1].to(dt)
    cx, cy = centre[:, 0].to(dt), centre[:, 1].to(dt)
    # Pixel-centre coordinates: canvas pixel p (edge p + 1/2) -> digit pixel d (edge d + 1/2):
    # d + 1/2 = (p + 1/2 - c) / s + w / 2.
    m = torch.zeros(n, 2, 3, dtype=dt)
    m[:, 0, 0] = 1 / sx
    m[:, 0, 2] = (0.5 - cx) / sx + w / 2 - 0.5
    m[:, 1, 1] = 1 / sy
    m[:, 1, 2] = (0.5 - cy) / sy + h / 2 - 0.5
    m_norm = pixel_matrix_to_normalized(m, (h, w), (size, size), align_corners=False)
    return warp_affine(digits[:, None], m_norm, (size, size), method="bilinear",
                       align_corners=False, padding_mode="zeros")  # (N, 1, size, size)


def support_boxes(mask: torch.Tensor) -> torch.Tensor:
    """Tight ``(x0, y0, x1, y1)`` (pixel edges) of ``(N, H, W)`` boolean masks; empty -> zeros."""
    n, h, w = mask.shape
    cols = mask.any(1)  # (N, W)
    rows = mask.any(2)  # (N, H)
    ar_w = torch.arange(w)
    ar_h = torch.arange(h)
    big = max(h, w) + 1
    x0 = torch.where(cols, ar_w, big).amin(1)
    x1 = torch.where(cols, ar_w, -1).amax(1) + 1
    y0 = torch.where(rows, ar_h, big).amin(1)
    y1 = torch.where(rows, ar_h, -1).amax(1) + 1
    box = torch.stack([x0, y0, x1, y1], 1).float()
    empty = ~mask.flatten(1).any(1)
    return torch.where(empty[:, None], torch.zeros_like(box), box)


def _log_uniform(n: int, lo: float, hi: float, g: torch.Generator) -> torch.Tensor:
    return torch.exp(math.log(lo) + (math.log(hi) - math.log(lo)) * torch.rand(n, generator=g))


def make_standin(n: int, split: str, *, seed: int, size: int = 128, normalize: bool = True,
                 cache_dir=None) -> LocData:
    """``n`` stand-in images of ``split`` (``"train"`` or ``"test"``), reproducible from ``seed``.

    Raises:
        ValueError: bad ``n``, ``split`` or ``size`` (a multiple of 16 in [112, 128]).
        FileNotFoundError: MNIST is not cached (``stnlab data fetch mnist``).
    """
    fn = "make_standin"
    if split not in ("train", "test"):
        raise ValueError(f"{fn}: expected split 'train' or 'test', got {split!r}")
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"{fn}: expected n to be an int >= 1, got {n!r}")
    if size not in (112, 128):
        raise ValueError(f"{fn}: expected size 112 or 128 (multiples of 16 in [112, 128]), "
                         f"got {size!r}")
    from .mnist import load_mnist
    x, y = load_mnist("train60k" if split == "train" else "test", cache_dir)
    g = torch.Generator().manual_seed(int(seed))
    pick = torch.randint(len(x), (n,), generator=g)
    digits = x[pick].float() / 255.0  # (n, 28, 28)
    labels = y[pick].clone()
    s = _log_uniform(n, *SCALE_RANGE, g)
    a = _log_uniform(n, *ASPECT_RANGE, g)
    sxy = torch.stack([s * a.sqrt(), s / a.sqrt()], 1)  # (n, 2)
    half = 14 * sxy  # half extent of the 28 px digit image
    u = torch.rand(n, 2, generator=g)
    centre = half + u * (size - 2 * half).clamp(min=0)
    m = render_digits(digits, sxy, centre, size).clamp(0, 1)  # (n, 1, S, S)
    boxes = support_boxes(m[:, 0] > 0)
    bg = random_crops(load_textures(split), n, size, generator=g, scale_range=(1.0, 3.0))
    lum = (0.2125 * bg[:, 0] + 0.7154 * bg[:, 1] + 0.0721 * bg[:, 2]).mean(dim=(1, 2))  # (n,)
    c = torch.rand(n, 3, generator=g)
    colour = torch.where((lum < 0.5)[:, None], 0.7 + 0.3 * c, 0.3 * c)[:, :, None, None]
    images = (1 - m) * bg + m * colour  # (n, 3, S, S)
    if normalize:
        images = imagenet_normalize(images)
    return LocData(images.float(), labels, boxes, sxy, centre, digits)
