"""A GTSRB stand-in we can train on: small coloured MNIST digits on natural textures, 50x50.

GTSRB is not reachable here; 003 Table 1 needs a data set where an ST must *zoom in* for a
classifier that sees ``50 / d`` pixels. Every image of :func:`gtsrb_standin`:

* a 50x50 random crop of a natural photograph / texture from ``skimage.data``
  (:mod:`models.data.textures`: a square of 50 to 150 source pixels, resized), drawn from
  the **train** sources for ``train`` / ``val`` and the held-out **test** sources for
  ``test``;
* one real MNIST digit (``train`` / ``val`` / ``test`` from MNIST's own 50k / 10k / 10k
  splits), used as an alpha matte and painted in a random colour: uniform in ``[0, 1]^3``,
  then every channel within 0.35 of the background's mean under the digit is moved 0.5
  away from it (so the digit never vanishes into its background);
* rotated by an angle uniform in ``[-30, 30]`` degrees, scaled by ``s`` uniform in
  ``[0.4, 0.6]`` (the 28 px MNIST image becomes 11 to 17 px; its ~20 px of ink 8 to 12 px)
  and centred at a uniform offset of at most 6 px per axis from the canvas centre
  (:data:`MAX_SHIFT`; GTSRB's ROI crops centre their sign, and 003's STNs mostly learn to
  zoom in, Fig. 6), always with the whole rotated support of the 28 px image inside the
  canvas. So the ink spans at most ``0.6 * 20 * (cos 30 + sin 30) = 16.4`` px: 4.1 px at
  ``d = 4`` and 2.1 px at ``d = 8`` when the input is downsampled without zooming in.

**10 classes** (the digits 0-9; GTSRB has 43). Images are in ``[0, 1]``; train on
:func:`models.data.gtsrb.standardize`-d images (measured: 003's MLP classifier on raw
``[0, 1]`` stand-in images at ``d = 1`` stayed at the class prior, loss 2.30, for 600 Adam
steps; standardized, its training loss fell to 1.56, validation accuracy still near chance
on 6400 images: the stand-in is hard for that classifier; :data:`TEXTURE_CONTRAST` can
soften the backgrounds, default 1 = unchanged). The result names itself
(:data:`STANDIN_NAME`). :func:`mnist_canvas` is 003 App. A.2's textureless control: the
same digits and poses, white on a black canvas (:data:`CONTROL_NAME`).

Rendering goes through :func:`sampling.warp.warp_affine` (bilinear, ``align_corners=False``,
zeros outside) with the pose of :func:`models.data.perturb.canvas_from_digit`.

Convention:
    Images float32 ``(N, C, 50, 50)`` in ``[0, 1]``; ``boxes`` ``(N, 4)`` = ``(x0, y0, x1,
    y1)`` in the pixel frame of :mod:`models.data.perturb` (pixel centres at integers), the
    axis-aligned box of the rotated, scaled support of the 28 px digit image (source pixels
    ``(-1, 28)``, where bilinear sampling with zeros outside can be non-zero), so every
    canvas pixel with ink has its centre inside; angles in radians.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from sampling.geometry import invert, pixel_matrix_to_normalized
from sampling.warp import warp_affine

from .mnist import load_mnist
from .perturb import _uniform, canvas_from_digit
from .textures import load_textures, luminance, random_crops

__all__ = ["STANDIN_NAME", "CONTROL_NAME", "NUM_CLASSES", "CANVAS", "DEFAULT_SIZES",
           "ANGLE_RANGE_DEG", "SCALE_RANGE", "MAX_SHIFT", "TEXTURE_CONTRAST", "Standin",
           "gtsrb_standin", "mnist_canvas"]

STANDIN_NAME = "gtsrb-standin (MNIST digits on skimage textures)"
CONTROL_NAME = "gtsrb-control (MNIST digits on a black canvas, 003 App. A.2)"
NUM_CLASSES = 10
CANVAS = 50
#: Default sizes: GTSRB's train / val (003), and all of MNIST's test split.
DEFAULT_SIZES = {"train": 35309, "val": 3900, "test": 10000}
ANGLE_RANGE_DEG = 30.0
SCALE_RANGE = (0.4, 0.6)
#: The digit's centre is at most this many pixels from the canvas centre on each axis.
MAX_SHIFT = 6.0
TEXTURE_CROP_SCALE = (1.0, 3.0)
MIN_CONTRAST = 0.35
#: Background contrast about each crop's mean (1 = the photograph's own).
TEXTURE_CONTRAST = 1.0
_MNIST_SPLIT = {"train": "train", "val": "val", "test": "test"}
_TEXTURE_SPLIT = {"train": "train", "val": "train", "test": "test"}
_SPLIT_STREAM = {"train": 0, "val": 1, "test": 2}
_DIGIT = 28


@dataclass(frozen=True)
class Standin:
    """One rendered split.

    Attributes:
        images: ``(N, C, 50, 50)`` float32 in ``[0, 1]``.
        labels: ``(N,)`` int64 digit classes 0-9.
        index: ``(N,)`` int64 position of each digit in its MNIST split.
        boxes: ``(N, 4)`` box of the digit image on the canvas (module docstring).
        angle: ``(N,)`` radians; ``scale``: ``(N,)``; ``translation``: ``(N, 2)`` pixels.
        dataset: the name every result carries (:data:`STANDIN_NAME` / :data:`CONTROL_NAME`).
    """

    images: torch.Tensor
    labels: torch.Tensor
    index: torch.Tensor
    boxes: torch.Tensor
    angle: torch.Tensor
    scale: torch.Tensor
    translation: torch.Tensor
    dataset: str


def keep_contrast(colour: torch.Tensor, canvas: torch.Tensor, alpha: torch.Tensor
                  ) -> torch.Tensor:
    """``colour (N, 3)`` with every channel within :data:`MIN_CONTRAST` of the canvas's
    mean under ``alpha (N, 1, H, W)`` moved 0.5 away from it (the object never vanishes
    into its background; shared by stand-ins v1 and v2)."""
    w = alpha.sum((-2, -1)).clamp_min(1e-6)  # (N, 1)
    under = (canvas * alpha).sum((-2, -1)) / w  # (N, 3): background mean under the object
    push = torch.where(under > 0.5, under - 0.5, under + 0.5)
    return torch.where((colour - under).abs() < MIN_CONTRAST, push, colour)


def _render(split: str, n: int | None, seed: int, *, textured: bool, channels: int,
            cache_dir, fn: str) -> Standin:
    if split not in _MNIST_SPLIT:
        raise ValueError(f"{fn}: expected split to be one of {list(_MNIST_SPLIT)}, got {split!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"{fn}: expected seed an int >= 0, got {seed!r}")
    if channels not in (1, 3):
        raise ValueError(f"{fn}: expected channels 1 or 3, got {channels!r}")
    digits, labels = load_mnist(_MNIST_SPLIT[split], cache_dir)
    n = min(DEFAULT_SIZES[split], len(digits)) if n is None else n
    if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= len(digits):
        raise ValueError(f"{fn}: expected n an int in [0, {len(digits)}] (MNIST "
                         f"{_MNIST_SPLIT[split]}), got {n!r}")
    g = torch.Generator().manual_seed(1000 * seed + _SPLIT_STREAM[split])
    # Draw order is fixed: digits, pose, colour, then the texture crops.
    idx = torch.randperm(len(digits), generator=g)[:n]
    a = math.radians(ANGLE_RANGE_DEG)
    angle = _uniform(g, (n,), -a, a, g.device)
    scale = _uniform(g, (n,), *SCALE_RANGE, g.device)
    # half-side of the box of the digit's support: bilinear with zeros outside is non-zero on
    # source pixels (-1, 28), i.e. 14.5 px around the digit's centre 13.5
    half = scale * (_DIGIT / 2 + 0.5) * (angle.cos().abs() + angle.sin().abs())  # (N,)
    room = (CANVAS / 2 - half).clamp(0.0, MAX_SHIFT)  # (N,)
    translation = (2 * torch.rand(n, 2, generator=g) - 1) * room[:, None]  # (N, 2) px
    colour = torch.rand(n, 3, generator=g)  # (N, 3)

    m = canvas_from_digit(angle, scale, translation, canvas=CANVAS, digit=_DIGIT)  # (N, 2, 3)
    theta = pixel_matrix_to_normalized(invert(m), (_DIGIT, _DIGIT), (CANVAS, CANVAS))
    src = digits[idx].float().div(255.0)[:, None]  # (N, 1, 28, 28)
    alpha = warp_affine(src, theta, (CANVAS, CANVAS), method="bilinear", align_corners=False,
                        padding_mode="zeros").clamp(0, 1)  # (N, 1, 50, 50)
    centre = (CANVAS - 1) / 2 + translation  # (N, 2)
    boxes = torch.cat([centre - half[:, None], centre + half[:, None]], dim=1)  # (N, 4)

    if textured:
        bg = random_crops(load_textures(_TEXTURE_SPLIT[split]), n, CANVAS, generator=g,
                          scale_range=TEXTURE_CROP_SCALE)  # (N, 3, 50, 50)
        mean = bg.mean((1, 2, 3), keepdim=True)  # (N, 1, 1, 1)
        bg = mean + TEXTURE_CONTRAST * (bg - mean)
        colour = keep_contrast(colour, bg, alpha)
        images = bg * (1 - alpha) + colour[:, :, None, None] * alpha  # (N, 3, 50, 50)
        if channels == 1:
            images = luminance(images, 1)
        name = STANDIN_NAME
    else:
        images = alpha.expand(n, channels, CANVAS, CANVAS)
        name = CONTROL_NAME
    return Standin(images.contiguous(), labels[idx].clone(), idx, boxes, angle, scale,
                   translation, name)


def gtsrb_standin(split: str, n: int | None = None, *, seed: int = 0, channels: int = 3,
                  cache_dir=None) -> Standin:
    """Render ``n`` stand-in images of ``split`` (module docstring); deterministic in ``seed``.

    Args:
        split: ``"train"``, ``"val"`` or ``"test"`` (MNIST's split of the same name; test
            on held-out textures).
        n: number of images; default :data:`DEFAULT_SIZES` (at most the MNIST split).
        seed: ``>= 0``; each split draws from its own stream of it.
        channels: 3 (RGB) or 1 (luminance).
        cache_dir: MNIST's cache (see :func:`models.data.mnist.load_mnist`).

    Returns:
        a :class:`Standin` with ``dataset == STANDIN_NAME``.

    Raises:
        ValueError: unknown ``split``, bad ``n`` / ``seed`` / ``channels``.
        FileNotFoundError: MNIST is not cached.
    """
    return _render(split, n, seed, textured=True, channels=channels, cache_dir=cache_dir,
                   fn="gtsrb_standin")


def mnist_canvas(split: str, n: int | None = None, *, seed: int = 0, channels: int = 3,
                 cache_dir=None) -> Standin:
    """003 App. A.2's textureless control: the same digits and poses as
    :func:`gtsrb_standin` (same ``seed``), white on a black 50x50 canvas.

    Args and Raises: as :func:`gtsrb_standin`.

    Returns:
        a :class:`Standin` with ``dataset == CONTROL_NAME``.
    """
    return _render(split, n, seed, textured=False, channels=channels, cache_dir=cache_dir,
                   fn="mnist_canvas")
