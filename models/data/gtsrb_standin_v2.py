"""GTSRB stand-in v2: real Fashion-MNIST garments in clutter on textures, rendered per batch.

Why a second design (issue 27): nothing in ``results/gtsrb-medium`` (stand-in v1,
:mod:`models.data.gtsrb_standin`) learned -- a fixed set of 8192 images let 003's MLP
memorise, the small digits left the no-STN net at chance, and textureless digits removed
the mechanism 003 App. A.2 names (on textureless images both samplers perform the same).
v2 keeps 003's networks and mechanism and is learnable on a CPU:

* **object**: one real Fashion-MNIST garment (:mod:`models.data.fashion`; ``train`` /
  ``val`` / ``test`` from its 50k / 10k / 10k splits): a textured object, its own
  grey levels kept as texture. Posed with :func:`models.data.perturb.canvas_from_digit`:
  rotation uniform in ``+-10`` degrees, scale uniform in ``[0.6, 0.9]`` (the 28 px image
  becomes 17-25 px), centre within ``+-2`` px of the canvas centre (:data:`POSE`).
  Painted as ``tint * (0.3 + 0.7 g)`` with ``g`` the warped garment in ``[0, 1]`` and
  alpha ``min(1, 4 g)``; each tint channel within 0.35 of the background's mean under
  the object is pushed 0.5 away from it (as v1), so the object never vanishes.
* **clutter**: four 6x6 fragments cut from other garments of the same split (offsets in
  the 28 px image's central ``[4, 18]``, where garments have ink), each painted with its
  own tint at a uniformly random position of the canvas, under the object.
* **background**: one of :data:`POOL_SIZE` 50x50 crops of the scikit-image photographs
  (:mod:`models.data.textures`, *all* sources, train and test alike, crop side 1-3x the
  canvas), with a random horizontal / vertical flip; the pool is drawn once with
  :data:`POOL_SEED` and **shared by train and test**, so a background is never a label
  nor a train/test difference.
* **rendered afresh every batch** (:class:`RenderedSplit`): every training step draws new
  garments, poses, clutter and backgrounds from the seed's own generator, so 003's MLP
  cannot memorise a fixed set (v1's failure); validation and test are rendered once,
  deterministically in ``data_seed``.
* **10 classes** (GTSRB has 43; the networks keep 43 outputs as with v1).

:func:`render` with ``kind="digits"`` paints real MNIST digits instead, their ink filled
with a grey crop of the texture pool (a textured object; added after pilot 1, where no
no-STN net on garments reached the pre-registered 30 % gate), and ``kind="control"`` is
the textureless control 003 App. A.2 names: the same digits, poses and clutter (digit
fragments), white on black -- the digits variant minus texture.

Every result names its data set (:data:`STANDIN_NAME`, :data:`CONTROL_NAME`): a stand-in
for GTSRB, never GTSRB.

Convention:
    Images float32 ``(N, 3, 50, 50)`` in ``[0, 1]`` from :func:`render`; the training /
    evaluation tensors are :func:`models.data.gtsrb.standardize`-d per image. Random
    draws come from the generator passed in, on its device, in a fixed order (objects,
    pose, tints, clutter, background), so a seed's batch stream is reproducible and a
    checkpointed generator resumes it exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from sampling.geometry import invert, pixel_matrix_to_normalized
from sampling.warp import warp_affine

from .gtsrb import standardize
from .gtsrb_standin import keep_contrast
from .perturb import _uniform, canvas_from_digit
from .textures import TEXTURE_SPLITS, load_textures, luminance, random_crops

__all__ = ["STANDIN_NAME", "DIGITS_NAME", "CONTROL_NAME", "KINDS", "NAMES", "NUM_CLASSES", "CANVAS", "POSE", "CLUTTER",
           "POOL_SIZE", "POOL_SEED", "render", "background_pool", "RenderedSplit",
           "fixed_split"]

STANDIN_NAME = ("gtsrb-standin-v2 (stand-in for GTSRB: Fashion-MNIST garments in clutter on "
                "skimage textures, rendered per batch)")
DIGITS_NAME = ("gtsrb-standin-v2-digits (stand-in for GTSRB: MNIST digits filled with texture, "
               "in clutter on skimage textures, rendered per batch)")
CONTROL_NAME = ("gtsrb-control-v2 (003 App. A.2's textureless control: MNIST digits in clutter "
                "on black, rendered per batch)")
#: ``fashion``: garments, their own grey levels as texture; ``digits``: MNIST digits whose
#: ink is filled with a crop of the texture pool (a textured object that an MLP learns
#: more easily than a garment; pilot 1 of issue 27); ``control``: the digits white on black.
KINDS = ("fashion", "digits", "control")
NAMES = {"fashion": STANDIN_NAME, "digits": DIGITS_NAME, "control": CONTROL_NAME}
NUM_CLASSES = 10
CANVAS = 50
_OBJ = 28
#: Object pose (issue 27's probed design): angle +-deg, scale range, centre shift +-px.
POSE = {"angle_deg": 10.0, "scale": (0.6, 0.9), "shift_px": 2.0}
#: Clutter: fragments per image, side (px), offset range inside the 28 px source image.
CLUTTER = {"count": 4, "side": 6, "offset": (4, 18)}
POOL_SIZE = 2048
POOL_SEED = 27
_CROP_SCALE = (1.0, 3.0)
_ALPHA_GAIN = 4.0
_SPLITS = ("train", "val", "test")
_CHUNK = 1000


_POOLS: dict = {}


def background_pool(device="cpu", *, contrast: float = 1.0) -> torch.Tensor:
    """The shared background pool ``(POOL_SIZE, 3, 50, 50)`` (module docstring), cached.

    ``contrast`` scales each crop about its mean (1 = the photographs' own).
    """
    key = (str(device), float(contrast))
    if key not in _POOLS:
        src = [t for split in TEXTURE_SPLITS for t in load_textures(split)]
        g = torch.Generator().manual_seed(POOL_SEED)
        pool = random_crops(src, POOL_SIZE, CANVAS, generator=g, scale_range=_CROP_SCALE)
        mean = pool.mean((1, 2, 3), keepdim=True)
        _POOLS[key] = (mean + float(contrast) * (pool - mean)).clamp(0, 1).to(device)
    return _POOLS[key]


def _paint(canvas, alpha, tint):
    """``canvas (N, 3, H, W)`` with ``tint (N, 3)`` painted at ``alpha (N, 1, H, W)``."""
    return canvas * (1 - alpha) + tint[:, :, None, None] * alpha


def render(objects: torch.Tensor, g: torch.Generator, n: int, *, kind: str = "fashion",
           pool: torch.Tensor | None = None, index: torch.Tensor | None = None):
    """``n`` images from ``objects`` (``(M, 28, 28)`` uint8) drawn with ``g``.

    ``index`` ``(n,)``: the objects to paint (default: drawn uniformly with ``g``); the
    clutter is always drawn from all of ``objects``.

    Returns:
        ``(images (n, 3, 50, 50) in [0, 1], index (n,))``: ``index`` is the object drawn
        for each image (its label is ``labels[index]``).
    """
    dev = g.device
    M = objects.shape[0]
    idx = torch.randint(M, (n,), generator=g, device=dev) if index is None else index.to(dev)
    a = math.radians(POSE["angle_deg"])
    angle = _uniform(g, (n,), -a, a, dev)
    scale = _uniform(g, (n,), *POSE["scale"], dev)
    shift = _uniform(g, (n, 2), -POSE["shift_px"], POSE["shift_px"], dev)
    tint = torch.rand(n, 3, generator=g, device=dev)
    k, side = CLUTTER["count"], CLUTTER["side"]
    lo, hi = CLUTTER["offset"]
    c_idx = torch.randint(M, (n, k), generator=g, device=dev)
    c_off = torch.randint(lo, hi + 1, (n, k, 2), generator=g, device=dev)
    c_pos = torch.randint(0, CANVAS - side + 1, (n, k, 2), generator=g, device=dev)
    c_tint = torch.rand(n, k, 3, generator=g, device=dev)
    b_idx = torch.randint(POOL_SIZE, (n,), generator=g, device=dev)
    flips = torch.rand(n, 2, generator=g, device=dev) < 0.5
    if kind not in KINDS:
        raise ValueError(f"render: expected kind in {list(KINDS)}, got {kind!r}")
    textured = kind != "control"
    fill = (torch.randint(POOL_SIZE, (n,), generator=g, device=dev)
            if kind == "digits" else None)  # drawn last: the other kinds' streams unchanged

    m = canvas_from_digit(angle, scale, shift, canvas=CANVAS, digit=_OBJ)  # (n, 2, 3) px
    theta = pixel_matrix_to_normalized(invert(m), (_OBJ, _OBJ), (CANVAS, CANVAS))
    src = objects[idx].float().div(255.0)[:, None]  # (n, 1, 28, 28)
    gray = warp_affine(src, theta, (CANVAS, CANVAS), method="bilinear", align_corners=False,
                       padding_mode="zeros").clamp(0, 1)  # (n, 1, 50, 50)
    obj_alpha = (_ALPHA_GAIN * gray).clamp(0, 1)

    if textured:
        if pool is None:
            pool = background_pool(dev)
        canvas = pool[b_idx].clone()  # (n, 3, 50, 50)
        canvas = torch.where(flips[:, 0, None, None, None], canvas.flip(-1), canvas)
        canvas = torch.where(flips[:, 1, None, None, None], canvas.flip(-2), canvas)
    else:
        canvas = torch.zeros(n, 3, CANVAS, CANVAS, device=dev)
    rows = torch.arange(side, device=dev)
    ar = torch.arange(n, device=dev)[:, None, None]
    for j in range(k):  # clutter fragments, under the object
        oy, ox = c_off[:, j, 0, None] + rows, c_off[:, j, 1, None] + rows  # (n, side)
        frag = objects[c_idx[:, j]][ar, oy[:, :, None], ox[:, None, :]].float().div(255.0)
        py, px = c_pos[:, j, 0, None] + rows, c_pos[:, j, 1, None] + rows
        f_alpha = torch.zeros(n, 1, CANVAS, CANVAS, device=dev)
        f_gray = torch.zeros(n, 1, CANVAS, CANVAS, device=dev)
        f_alpha[ar, 0, py[:, :, None], px[:, None, :]] = (_ALPHA_GAIN * frag).clamp(0, 1)
        f_gray[ar, 0, py[:, :, None], px[:, None, :]] = frag
        if textured:
            canvas = canvas * (1 - f_alpha) + c_tint[:, j, :, None, None] * (
                0.3 + 0.7 * f_gray) * f_alpha
        else:
            canvas = canvas * (1 - f_alpha) + f_gray * f_alpha
    if textured:
        tint = keep_contrast(tint, canvas, obj_alpha)
        if fill is None:  # a garment: its own grey levels are its texture
            inside = 0.3 + 0.7 * gray
        else:  # a digit: its ink filled with a grey crop of the pool
            inside = 0.3 + 0.7 * luminance(pool[fill], 1)
        images = canvas * (1 - obj_alpha) + tint[:, :, None, None] * inside * obj_alpha
    else:
        images = canvas * (1 - obj_alpha) + gray * obj_alpha
    return images.clamp(0, 1).contiguous(), idx


def _objects(split: str, kind: str, cache_dir):
    if split not in _SPLITS:
        raise ValueError(f"gtsrb_standin_v2: expected split in {list(_SPLITS)}, got {split!r}")
    if kind not in KINDS:
        raise ValueError(f"gtsrb_standin_v2: expected kind in {list(KINDS)}, got {kind!r}")
    if kind == "fashion":
        from .fashion import load_fashion
        return load_fashion(split, cache_dir)
    from .mnist import load_mnist
    return load_mnist(split, cache_dir)


class RenderedSplit:
    """A training split rendered afresh every batch (the loop's ``train_batches``).

    Attributes:
        objects, labels: the split's ``(M, 28, 28)`` uint8 images and ``(M,)`` labels.
        name: :data:`STANDIN_NAME` or :data:`CONTROL_NAME`.
        num_classes: 10.
        val: the fixed validation split (set by the suite), or None.
    """

    def __init__(self, split: str = "train", *, kind: str = "fashion", contrast: float = 1.0,
                 device="cpu", cache_dir=None, limit: int | None = None, limit_seed: int = 0):
        x, y = _objects(split, kind, cache_dir)
        if limit is not None and limit < len(y):  # a fixed subset of the objects to draw from
            keep = torch.randperm(len(y), generator=torch.Generator().manual_seed(limit_seed))
            x, y = x[keep[:limit]], y[keep[:limit]]
        self.objects, self.labels = x.to(device), y.to(device)
        self.kind, self.contrast = kind, float(contrast)
        self.pool = background_pool(device, contrast=contrast) if kind != "control" else None
        self.name = NAMES[kind]
        self.num_classes = NUM_CLASSES
        self.val = None

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def train_batches(self, batch_size: int, generators) -> tuple[torch.Tensor, torch.Tensor]:
        """``(S, B, 3, 50, 50)`` standardized images and ``(S, B)`` labels, one fresh
        rendering per seed's generator."""
        xs, ys = [], []
        for g in generators:
            img, idx = render(self.objects, g, batch_size, kind=self.kind, pool=self.pool)
            xs.append(standardize(img))
            ys.append(self.labels[idx])
        return torch.stack(xs), torch.stack(ys)


def fixed_split(split: str, n: int | None, *, seed: int, kind: str = "fashion",
                contrast: float = 1.0, cache_dir=None):
    """``(images (n, 3, 50, 50) standardized, labels (n,), name)``: ``split`` rendered once,
    deterministically in ``seed`` (validation and test), each object at most once.

    Rendered in chunks of :data:`_CHUNK` images, each chunk's draws in :func:`render`'s
    order: the images are a function of ``(split, n, seed)`` and of the chunk size, which
    is therefore fixed here, not an argument.

    Raises:
        ValueError: unknown split, bad ``n`` / ``seed``.
    """
    fn = "fixed_split"
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"{fn}: expected seed an int >= 0, got {seed!r}")
    x, y = _objects(split, kind, cache_dir)
    n = len(y) if n is None else n
    if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= len(y):
        raise ValueError(f"{fn}: expected n an int in [0, {len(y)}], got {n!r}")
    g = torch.Generator().manual_seed(1000 * seed + 1 + _SPLITS.index(split))
    pool = background_pool(contrast=contrast) if kind != "control" else None
    order = torch.randperm(len(y), generator=g)[:n]  # each object at most once
    imgs, labels = [], []
    for i in range(0, n, _CHUNK):
        part = order[i:i + _CHUNK]
        img, idx = render(x, g, len(part), kind=kind, pool=pool, index=part)
        imgs.append(standardize(img))
        labels.append(y[idx])
    if not imgs:
        return torch.zeros(0, 3, CANVAS, CANVAS), torch.zeros(0, dtype=torch.long), NAMES[kind]
    return torch.cat(imgs), torch.cat(labels), NAMES[kind]
