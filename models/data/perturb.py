"""The perturbed MNIST variants of 000 App. A.1: rotated (R), translated (T), scaled (S).

* **R** (28x28): the digit rotated about its centre by an angle uniform in
  [-90°, 90°], bilinear; no clutter.
* **T** (60x60): the digit pasted at a uniformly random integer position (the
  whole 28x28 image inside the canvas), plus 6 clutter fragments: 6x6 squares
  cut at random from random digits of ``clutter_source``, pasted (added) at
  random integer positions.
* **S** (112x112): the digit scaled about its centre by ``s = exp(U(log 0.5,
  log 4))`` and placed at the canvas centre, bilinear; plus 6 clutter fragments,
  each a random 6x6 square scaled by its own log-uniform factor in [0.5, 4]
  (bilinear) and added at a random position where it fits entirely.

Everything is batched (no Python loop over images; one loop over the 6
fragments), runs on the device of ``digits``, and draws its random numbers from
the ``generator`` passed in, on the generator's device (then moved). The digit's
perturbation is drawn before any clutter, so it does not depend on ``n_clutter``:
``perturb(v, d, l, generator=g(seed), n_clutter=0)`` renders the same digit pose
as with clutter, which is how tests check the boxes against a clean rendering.

Convention:
    * Pixel frame: ``(x, y)`` with x along W (columns) and y along H (rows), y
      pointing down; pixel ``(0, 0)`` is the *centre* of the top-left pixel
      (as in :func:`sampling.geometry.normalized_to_pixel`), so an ``H x W``
      canvas spans ``[-0.5, W - 0.5] x [-0.5, H - 0.5]`` and its centre is
      ``((W - 1) / 2, (H - 1) / 2)`` (29.5 for T, 55.5 for S).
    * The digit transform is ``canvas_from_digit: q -> c_canvas + translation +
      scale * R(angle) (q - c_digit)`` with ``c_digit = (13.5, 13.5)`` and
      ``R(a) = [[cos a, -sin a], [sin a, cos a]]``. The rendered image is
      ``(T f)(p) = f(canvas_from_digit^{-1} p)`` (000 eq. 1), sampled with
      :func:`sampling.warp_affine` (bilinear, ``align_corners=False``, zeros outside)
      with the ``input_from_output`` matrix
      ``canvas_from_digit^{-1}`` expressed in normalized coordinates.
    * ``angle`` (radians) is counter-clockwise in the (x, y) frame; since y points
      down, a positive angle turns the digit **clockwise on screen**. It is
      ``sampling.geometry``'s convention, so ``rotation_matrix(angle)`` is the
      rotation that was applied and an STN that undoes it predicts
      ``input_from_output = R(angle)`` (normalized coordinates, square canvas).
    * ``translation`` ``(B, 2)`` = ``(x, y)`` pixels of the digit's centre minus
      the canvas centre (000 App. A.2's θ for (T)); positive x = right, positive
      y = down. On T it is an integer in [-16, 16] on each axis.
    * ``scale`` is the factor the digit was enlarged by (1 = 28 px wide digit
      image; 000 App. A.2 measures ``log2(scale**2)``).
    * ``bbox`` ``(B, 4)`` = ``(x0, y0, x1, y1)`` in the pixel frame above, computed
      from the geometry (not from the rendered, cluttered image): the smallest
      axis-aligned box containing the image under ``canvas_from_digit`` of the
      support of the rendered digit, i.e. of the squares of half-width ``r``
      around every digit pixel with value > 0, clipped to the canvas. ``r = 0.5``
      on T (pixels are pasted, so the box is exactly the ink's pixel box) and
      ``r = 1`` on R and S (bilinear interpolation spreads a pixel's value up to
      one source pixel around it). So every canvas pixel where the clean digit is
      nonzero has its centre inside the box (up to float rounding); on R and S
      the box exceeds the ink's own box (``r = 0.5``) by
      ``scale * (|cos angle| + |sin angle|) / 2`` canvas pixels on each side.
      A digit with no ink gets the zero-size box at its centre.
    * Clutter is **summed** onto the canvas and **not clamped** (App. A.1:
      "adding those squares"), so overlaps can exceed 1 before normalization.

Normalization: per image, after perturbation and clutter, ``(x - mean) / std``
over the image's pixels (population std), so every image has mean 0 and std 1
exactly, which is what App. A.1 says ("normalized to mean 0 and standard
deviation 1 after perturbation"). Per-image statistics need no estimate of the
variant's dataset statistics (which would depend on the sampled perturbations),
make an image independent of the batch it is in, and are the same on the fixed
test set and in training. A constant image (std 0) becomes all zeros. Pass
``normalize=False`` for the raw canvas (digit intensities in [0, 1]).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, fields

import torch

from sampling.checks import check_choice, check_shape
from sampling.geometry import compose, invert, params_to_matrix, pixel_matrix_to_normalized
from sampling.warp import warp_affine

__all__ = [
    "VARIANTS",
    "CANVAS",
    "ANGLE_RANGE",
    "SCALE_RANGE",
    "N_CLUTTER",
    "FRAGMENT",
    "PerturbedBatch",
    "perturb",
    "canvas_from_digit",
    "PerturbedMNIST",
]

VARIANTS = ("R", "T", "S")
CANVAS = {"R": 28, "T": 60, "S": 112}
DIGIT = 28
ANGLE_RANGE = (-math.pi / 2, math.pi / 2)
SCALE_RANGE = (0.5, 4.0)
N_CLUTTER = 6
FRAGMENT = 6
NORM_EPS = 1e-6
# S clutter windows: a fragment scaled by s has bilinear support centre +- (3 + 0.5) s.
_REACH = math.ceil((FRAGMENT / 2 + 0.5) * SCALE_RANGE[1])  # 14 px
_WINDOW = 2 * _REACH + 2  # 30 px: [floor(c) - 14, floor(c) + 15] covers c +- 14
_PAD = _REACH + 1  # the padded canvas holds every window
_LOG_SCALE_RANGE = (math.log(SCALE_RANGE[0]), math.log(SCALE_RANGE[1]))


@dataclass
class PerturbedBatch:
    """A batch of perturbed digits with their ground-truth perturbations.

    Attributes:
        images: ``(B, 1, H, W)`` float (float32 for uint8 digits), normalized per
            image to mean 0 / std 1 (unless ``normalize=False``).
        labels: ``(B,)`` int64.
        angle: ``(B,)`` radians applied to the digit (0 for T, S); see the module
            ``Convention:`` for the sign.
        translation: ``(B, 2)`` pixels ``(x, y)``: digit centre minus canvas
            centre (0 for R, S).
        scale: ``(B,)`` factor applied to the digit (1 for R, T).
        bbox: ``(B, 4)`` pixels ``(x0, y0, x1, y1)`` of the transformed digit's
            ink on the canvas.
    """

    images: torch.Tensor
    labels: torch.Tensor
    angle: torch.Tensor
    translation: torch.Tensor
    scale: torch.Tensor
    bbox: torch.Tensor

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def to(self, device) -> PerturbedBatch:
        """A copy with every tensor moved to ``device``."""
        return PerturbedBatch(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})


def _uniform(gen: torch.Generator, shape, lo: float, hi: float, device) -> torch.Tensor:
    u = torch.rand(shape, generator=gen, device=gen.device)  # drawn on the generator's device
    return (lo + (hi - lo) * u).to(device)


def _randint(gen: torch.Generator, high: int, shape, device) -> torch.Tensor:
    return torch.randint(high, shape, generator=gen, device=gen.device).to(device)


def _shift(t: torch.Tensor) -> torch.Tensor:
    """``(B, 2) -> (B, 2, 3)`` translation maps ``p -> p + t``."""
    eye = torch.eye(2, dtype=t.dtype, device=t.device).expand(t.shape[0], 2, 2)
    return torch.cat([eye, t[:, :, None]], dim=-1)


def canvas_from_digit(angle: torch.Tensor, scale: torch.Tensor, translation: torch.Tensor, *,
                      canvas: int, digit: int = DIGIT) -> torch.Tensor:
    """The pixel-frame map from a ``digit x digit`` image onto a ``canvas x canvas`` canvas.

    Convention:
        Pixel frame of the module docstring (pixel centres at integers, y down);
        ``q -> c_canvas + translation + scale * R(angle) (q - c_digit)`` with
        ``c = (size - 1) / 2`` on both axes; angle in radians, counter-clockwise
        in (x, y) (clockwise on screen).

    Args:
        angle: ``(B,)`` radians.
        scale: ``(B,)`` positive factors.
        translation: ``(B, 2)`` pixels ``(x, y)``.
        canvas: output side length in pixels.
        digit: input side length in pixels.

    Returns:
        ``(B, 2, 3)`` ``canvas_from_digit`` matrices in pixels.

    Example:
        >>> m = canvas_from_digit(torch.zeros(1), torch.ones(1), torch.zeros(1, 2), canvas=60)
        >>> m[0, :, 2]  # identity pose pastes the digit in the middle: shift by 16 px
        tensor([16., 16.])
    """
    b = angle.shape[0]
    c_in = torch.full((b, 2), (digit - 1) / 2, dtype=angle.dtype, device=angle.device)
    c_out = torch.full((b, 2), (canvas - 1) / 2, dtype=angle.dtype, device=angle.device)
    rs = params_to_matrix(angle, torch.log(scale))  # (B, 2, 3): scale * R(angle), no shift
    return compose(_shift(c_out + translation), compose(rs, _shift(-c_in)))


def _warp(src: torch.Tensor, out_from_src_px: torch.Tensor, out_size: int) -> torch.Tensor:
    """Render ``src`` ``(B, h, h)`` through ``out_from_src_px`` onto ``(B, out, out)``, bilinear."""
    h = src.shape[-1]
    theta = pixel_matrix_to_normalized(invert(out_from_src_px), (h, h), (out_size, out_size))
    out = warp_affine(src[:, None], theta, (out_size, out_size), padding_mode="zeros",
                      align_corners=False)  # (B, 1, o, o)
    return out[:, 0]


def _paste(canvas: torch.Tensor, patch: torch.Tensor, top_left: torch.Tensor) -> None:
    """Add ``patch`` ``(B, h, w)`` into ``canvas`` ``(B, H, W)`` at integer ``top_left`` ``(B, 2)``
    = ``(x, y)``; in place, exact (no interpolation). The patch must fit."""
    b, h, w = patch.shape
    width = canvas.shape[-1]
    rows = top_left[:, 1, None] + torch.arange(h, device=patch.device)  # (B, h)
    cols = top_left[:, 0, None] + torch.arange(w, device=patch.device)  # (B, w)
    flat = (rows[:, :, None] * width + cols[:, None, :]).reshape(b, h * w)  # (B, h*w)
    canvas.view(b, -1).scatter_add_(1, flat, patch.reshape(b, h * w))


def _ink_box(digits: torch.Tensor, m: torch.Tensor, canvas: int, radius: float) -> torch.Tensor:
    """Axis-aligned box ``(B, 4)`` of the images under ``m`` of squares of half-width
    ``radius`` around the ink pixels (the support of the rendered digit).

    The image of a square of half-width ``r`` centred at ``q`` under ``x -> A x + t``
    has the box ``A q + t -+ e`` with ``e_i = r (|A_i1| + |A_i2|)``, so the box of
    all of them is ``[min_q (A q + t) - e, max_q (A q + t) + e]`` over ink ``q``.
    """
    b, h, w = digits.shape
    ys, xs = torch.meshgrid(torch.arange(h, dtype=m.dtype, device=m.device),
                            torch.arange(w, dtype=m.dtype, device=m.device), indexing="ij")
    q = torch.stack([xs, ys], -1).reshape(-1, 2)  # (h*w, 2) pixel centres (x, y)
    mapped = torch.einsum("bij,pj->bpi", m[:, :, :2], q) + m[:, None, :, 2]  # (B, h*w, 2)
    ink = (digits > 0).reshape(b, -1, 1)  # (B, h*w, 1)
    inf = torch.tensor(float("inf"), dtype=m.dtype, device=m.device)
    ext = radius * m[:, :, :2].abs().sum(-1)  # (B, 2)
    lo = torch.where(ink, mapped, inf).amin(1) - ext  # (B, 2)
    hi = torch.where(ink, mapped, -inf).amax(1) + ext  # (B, 2)
    centre = m[:, :, 2] + m[:, :, :2].sum(-1) * (w - 1) / 2  # (B, 2) image of the digit centre
    empty = ~ink[:, :, 0].any(1, keepdim=True)  # (B, 1)
    lo, hi = torch.where(empty, centre, lo), torch.where(empty, centre, hi)
    box = torch.cat([lo, hi], -1)  # (B, 4)
    return box.clamp(-0.5, canvas - 0.5)


def _as_float_digits(x: torch.Tensor, name: str, fn: str) -> torch.Tensor:
    if x.dtype == torch.uint8:
        return x.to(torch.float32) / 255.0
    if not x.is_floating_point():
        raise ValueError(f"{fn}: expected {name} of dtype uint8 or float in [0, 1], got {x.dtype}")
    if x.numel() and not bool(((x >= 0) & (x <= 1)).all()):
        raise ValueError(f"{fn}: expected {name} with values in [0, 1] (or uint8), got range "
                         f"[{float(x.min()):.3g}, {float(x.max()):.3g}]")
    return x


def _draw_fragment(src: torch.Tensor, gen: torch.Generator, b: int) -> tuple:
    """Which digit of ``src`` ``(M, 28, 28)`` each of ``b`` fragments is cut from, and where."""
    m, side = src.shape[0], src.shape[-1]
    idx = _randint(gen, m, (b,), src.device)  # which digit
    corner = _randint(gen, side - FRAGMENT + 1, (b, 2), src.device)  # (x, y) of its top-left
    return idx, corner


def _cut_fragments(src: torch.Tensor, idx: torch.Tensor, corner: torch.Tensor, device, dtype
                   ) -> torch.Tensor:
    """The ``(b, 6, 6)`` squares of ``src`` at ``idx``/``corner`` (indexed on ``src``'s device;
    only the fragments move)."""
    ar = torch.arange(FRAGMENT, device=src.device)
    rows = corner[:, 1, None] + ar  # (b, 6)
    cols = corner[:, 0, None] + ar  # (b, 6)
    frag = src[idx[:, None, None], rows[:, :, None], cols[:, None, :]]  # (b, 6, 6)
    return _as_float_digits(frag, "clutter_source", "perturb").to(device=device, dtype=dtype)


def _draw(variant: str, b: int, generator: torch.Generator, n_clutter: int,
          clutter_source: torch.Tensor | None, device, dtype) -> dict:
    """Every random number of one batch, in the order :func:`perturb` has always drawn them:
    the digit's pose, then per clutter fragment its source digit and corner, then its
    position (T) or scale and position (S). Rendering is a pure function of these."""
    size = CANVAS[variant]
    d: dict = {"angle": torch.zeros(b, dtype=dtype, device=device),
               "scale": torch.ones(b, dtype=dtype, device=device),
               "translation": torch.zeros(b, 2, dtype=dtype, device=device)}
    if variant == "R":
        d["angle"] = _uniform(generator, (b,), *ANGLE_RANGE, device).to(dtype)
    elif variant == "T":
        reach = (size - DIGIT) // 2  # 16: the whole 28x28 image stays on the canvas
        d["translation"] = (_randint(generator, 2 * reach + 1, (b, 2), device)
                            - reach).to(dtype)
    else:
        d["scale"] = torch.exp(_uniform(generator, (b,), *_LOG_SCALE_RANGE, device)).to(dtype)
    frags = []
    for _ in range(n_clutter):
        f = dict(zip(("idx", "corner"), _draw_fragment(clutter_source, generator, b)))
        if variant == "T":
            f["pos"] = _randint(generator, size - FRAGMENT + 1, (b, 2), device)  # top-left
        else:
            f["s"] = torch.exp(_uniform(generator, (b,), *_LOG_SCALE_RANGE, device)).to(dtype)
            f["u"] = _uniform(generator, (b, 2), 0.0, 1.0, device).to(dtype)
        frags.append(f)
    d["clutter"] = frags
    return d


def _cat_draws(draws: list[dict]) -> dict:
    """The draws of several batches as the draws of their concatenation."""
    out = {k: torch.cat([d[k] for d in draws]) for k in ("angle", "scale", "translation")}
    out["clutter"] = [{k: torch.cat([d["clutter"][j][k] for d in draws]) for k in f}
                      for j, f in enumerate(draws[0]["clutter"])]
    return out


def perturb(variant: str, digits: torch.Tensor, labels: torch.Tensor, *,
            generator: torch.Generator, clutter_source: torch.Tensor | None = None,
            n_clutter: int | None = None, normalize: bool = True) -> PerturbedBatch:
    """Perturb a batch of digits as in 000 App. A.1 (see the module docstring).

    Convention:
        See the module docstring: pixel frame with pixel centres at integers and
        y down; ``angle`` counter-clockwise in (x, y) = clockwise on screen;
        ``translation`` = digit centre minus canvas centre in pixels; warps are
        bilinear with ``align_corners=False`` and zeros outside.

    Args:
        variant: ``"R"``, ``"T"`` or ``"S"``.
        digits: ``(B, 28, 28)`` uint8 (0..255) or float in [0, 1], on any device;
            the output is on the same device.
        labels: ``(B,)`` integer labels (returned as int64).
        generator: the source of all randomness; numbers are drawn on its device.
            The same seed gives the same batch.
        clutter_source: ``(M, 28, 28)`` digits (uint8 or float in [0, 1]) the 6x6
            fragments are cut from; required for T and S (unless ``n_clutter=0``),
            ignored for R. May live on another device than ``digits``.
        n_clutter: number of clutter fragments; default 6 for T and S, 0 for R
            (R has no clutter in App. A.1, so a positive value is an error).
        normalize: standardize each image to mean 0 / std 1.

    Returns:
        :class:`PerturbedBatch` with images ``(B, 1, CANVAS[variant], CANVAS[variant])``.

    Raises:
        ValueError: unknown variant, wrong shapes or dtypes, digit values outside
            [0, 1], missing ``clutter_source``, bad ``n_clutter`` or ``generator``.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> b = perturb("R", torch.zeros(2, 28, 28, dtype=torch.uint8), torch.tensor([3, 4]),
        ...             generator=g)
        >>> tuple(b.images.shape), bool(b.angle.abs().max() <= math.pi / 2)
        ((2, 1, 28, 28), True)
    """
    fn = "perturb"
    check_choice(variant, VARIANTS, name="variant", fn=fn)
    if not isinstance(generator, torch.Generator):
        raise ValueError(f"{fn}: expected generator to be a torch.Generator, "
                         f"got {type(generator).__name__}")
    dims = check_shape(digits, f"B {DIGIT} {DIGIT}", name="digits", fn=fn)
    check_shape(labels, "B", name="labels", fn=fn, dims=dims)
    if dims["B"] == 0:
        raise ValueError(f"{fn}: expected digits with B >= 1 images, got B=0")
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise ValueError(f"{fn}: expected labels of an integer dtype, got {labels.dtype}")
    if n_clutter is None:
        n_clutter = 0 if variant == "R" else N_CLUTTER
    if not isinstance(n_clutter, int) or isinstance(n_clutter, bool) or n_clutter < 0:
        raise ValueError(f"{fn}: expected n_clutter to be an int >= 0, got {n_clutter!r}")
    if variant == "R" and n_clutter:
        raise ValueError(f"{fn}: expected n_clutter=0 for variant 'R' (no clutter in "
                         f"000 App. A.1), got {n_clutter}")
    if n_clutter:
        if clutter_source is None:
            raise ValueError(f"{fn}: variant {variant!r} needs clutter_source (M, 28, 28) to cut "
                             f"its {n_clutter} clutter fragments from (or n_clutter=0)")
        check_shape(clutter_source, f"M {DIGIT} {DIGIT}", name="clutter_source", fn=fn)
        if clutter_source.shape[0] == 0:
            raise ValueError(f"{fn}: expected clutter_source with M >= 1 digits, got M=0")
        if not (clutter_source.dtype == torch.uint8 or clutter_source.is_floating_point()):
            raise ValueError(f"{fn}: expected clutter_source of dtype uint8 or float in [0, 1], "
                             f"got {clutter_source.dtype}")

    x = _as_float_digits(digits, "digits", fn)  # (B, 28, 28)
    draws = _draw(variant, dims["B"], generator, n_clutter, clutter_source, digits.device,
                  x.dtype)
    return _render(variant, x, labels, draws, clutter_source, normalize=normalize)


def _render(variant: str, x: torch.Tensor, labels: torch.Tensor, draws: dict,
            clutter_source: torch.Tensor | None, *, normalize: bool = True,
            with_bbox: bool = True) -> PerturbedBatch:
    """Render float digits ``x`` ``(B, 28, 28)`` with the random numbers ``draws`` (:func:`_draw`).

    Every step acts on each image alone, so rendering a concatenation of draws gives the
    concatenation of the renderings (up to float rounding of batched kernels).
    """
    b, device, dtype = x.shape[0], x.device, x.dtype
    size = CANVAS[variant]
    angle, scale, translation = draws["angle"], draws["scale"], draws["translation"]
    m = canvas_from_digit(angle, scale, translation, canvas=size)  # (B, 2, 3) pixels

    # 1. Render the digit.
    if variant == "T":
        canvas = torch.zeros(b, size, size, dtype=dtype, device=device)
        _paste(canvas, x, (translation + (size - DIGIT) // 2).long())  # exact integer paste
    else:
        canvas = _warp(x, m, size)  # (B, size, size)
    bbox = (_ink_box(x, m, size, radius=0.5 if variant == "T" else 1.0) if with_bbox
            else torch.full((b, 4), float("nan"), dtype=dtype, device=device))

    # 2. Clutter: summed, not clamped.
    n_clutter = len(draws["clutter"])
    if n_clutter and variant == "S":
        # Each scaled fragment is rendered into a small window around its centre
        # (its bilinear support, centre +- (3 + 0.5) * s <= 14 px, lies inside) and
        # pasted into a padded canvas: the same pixels as warping onto the whole
        # canvas, at ~1/14 of the cost.
        clutter = torch.zeros(b, size + 2 * _PAD, size + 2 * _PAD, dtype=dtype, device=device)
    for f in draws["clutter"]:
        frag = _cut_fragments(clutter_source, f["idx"], f["corner"], device, dtype)  # (B, 6, 6)
        if variant == "T":
            _paste(canvas, frag, f["pos"])
        else:
            s, u = f["s"], f["u"]
            half = FRAGMENT * s / 2  # the scaled square spans centre +- half
            centre = (half - 0.5)[:, None] + u * (size - 2 * half)[:, None]  # (B, 2), fits
            origin = torch.floor(centre).long() - _REACH  # (B, 2) window's top-left (x, y)
            local = centre - origin.to(dtype)  # centre in the window's pixel frame
            mf = canvas_from_digit(torch.zeros_like(s), s, local - (_WINDOW - 1) / 2,
                                   canvas=_WINDOW, digit=FRAGMENT)
            _paste(clutter, _warp(frag, mf, _WINDOW), origin + _PAD)
    if n_clutter and variant == "S":
        canvas = canvas + clutter[:, _PAD:_PAD + size, _PAD:_PAD + size]

    # 3. Normalize each image.
    images = canvas[:, None]  # (B, 1, H, W)
    if normalize:
        centred = images - images.mean(dim=(2, 3), keepdim=True)
        std = centred.square().mean(dim=(2, 3), keepdim=True).sqrt()  # population std
        images = centred / std.clamp_min(NORM_EPS)
    return PerturbedBatch(images=images, labels=labels.to(torch.int64), angle=angle,
                          translation=translation, scale=scale, bbox=bbox)


class PerturbedMNIST:
    """Fresh perturbed training batches and a fixed perturbed test set from a digit set.

    Args:
        variant: ``"R"``, ``"T"`` or ``"S"``.
        images: ``(N, 28, 28)`` uint8 (or float in [0, 1]) digits, e.g. from
            :func:`models.data.mnist.load_mnist`.
        labels: ``(N,)`` integer labels.
        device: where images are kept and batches are rendered.
        clutter_images: ``(M, 28, 28)`` digits the T/S clutter is cut from; default
            ``images`` itself (App. A.1 cuts clutter from the same MNIST split).

    Example:
        >>> ds = PerturbedMNIST("T", torch.zeros(5, 28, 28, dtype=torch.uint8),
        ...                     torch.arange(5))
        >>> tuple(ds.train_batch(3, torch.Generator().manual_seed(0)).images.shape)
        (3, 1, 60, 60)
    """

    def __init__(self, variant, images, labels, *, device="cpu", clutter_images=None):
        fn = "PerturbedMNIST"
        check_choice(variant, VARIANTS, name="variant", fn=fn)
        dims = check_shape(images, f"N {DIGIT} {DIGIT}", name="images", fn=fn)
        check_shape(labels, "N", name="labels", fn=fn, dims=dims)
        if dims["N"] == 0:
            raise ValueError(f"{fn}: expected images with N >= 1, got N=0")
        self.variant = variant
        self.device = torch.device(device)
        self.images = images.to(self.device)
        self.labels = labels.to(self.device)
        clutter = images if clutter_images is None else clutter_images
        check_shape(clutter, f"M {DIGIT} {DIGIT}", name="clutter_images", fn=fn)
        self.clutter_images = clutter.to(self.device)

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def _render(self, idx: torch.Tensor, generator: torch.Generator) -> PerturbedBatch:
        return perturb(self.variant, self.images[idx], self.labels[idx], generator=generator,
                       clutter_source=self.clutter_images)

    def train_batch(self, batch_size: int, generator: torch.Generator) -> PerturbedBatch:
        """``batch_size`` random digits (with replacement), each freshly perturbed.

        Random numbers (digit indices, poses, clutter) are drawn on the
        generator's device; the same generator state gives the same batch.
        """
        return self._fresh("PerturbedMNIST.train_batch", "generator", batch_size, [generator],
                           with_bbox=True)

    def train_batches(self, batch_size: int, generators) -> tuple[torch.Tensor, torch.Tensor]:
        """One fresh batch per generator, rendered together: ``(images (S, B, 1, H, W),
        labels (S, B))``.

        Batch ``i`` holds the same digits and perturbations as
        ``train_batch(batch_size, generators[i])`` (each generator advances the same way),
        equal up to float rounding; the random numbers are drawn generator by generator
        and the S x B images rendered in one pass, so the number of kernel launches does
        not grow with S (on a GPU the per-seed loop cost 3 ms per seed per step). No
        boxes are computed.
        """
        if isinstance(generators, torch.Generator):
            raise ValueError("PerturbedMNIST.train_batches: expected a sequence of "
                             "torch.Generator (one per seed), got one torch.Generator")
        generators = list(generators)
        out = self._fresh("PerturbedMNIST.train_batches", "generators", batch_size, generators,
                          with_bbox=False)
        shape = (len(generators), batch_size)
        return out.images.reshape(shape + out.images.shape[1:]), out.labels.reshape(shape)

    def _fresh(self, fn: str, name: str, batch_size: int, generators: list, *, with_bbox: bool
               ) -> PerturbedBatch:
        """Draw ``batch_size`` digits and their perturbations from each generator in turn
        (indices first, then :func:`_draw`'s order) and render them all in one pass."""
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"{fn}: expected batch_size to be an int >= 1, got {batch_size!r}")
        bad = [g for g in generators if not isinstance(g, torch.Generator)]
        if not generators or bad:
            raise ValueError(f"{fn}: expected {name} to be torch.Generator, got "
                             f"{type(bad[0]).__name__ if bad else 'an empty sequence'}")
        n_clutter = 0 if self.variant == "R" else N_CLUTTER
        dtype = torch.float32 if self.images.dtype == torch.uint8 else self.images.dtype
        idx, draws = [], []
        for g in generators:
            idx.append(_randint(g, len(self), (batch_size,), self.device))
            draws.append(_draw(self.variant, batch_size, g, n_clutter, self.clutter_images,
                               self.device, dtype))
        idx = torch.cat(idx)
        x = _as_float_digits(self.images[idx], "digits", fn)
        return _render(self.variant, x, self.labels[idx], _cat_draws(draws),
                       self.clutter_images, with_bbox=with_bbox)

    def test_set(self, *, n_perturb: int = 10, seed: int = 0, batch_size: int = 1000
                 ) -> Iterator[PerturbedBatch]:
        """The fixed perturbed evaluation set: every image ``n_perturb`` times.

        Batches come in order: perturbation round ``r = 0 .. n_perturb - 1``, and
        within a round the images in order in chunks of ``batch_size``. The random
        numbers come from one CPU generator seeded with ``seed`` (the same set on
        every device, up to floating point), so the same ``(seed, n_perturb,
        batch_size)`` gives identical batches.
        """
        fn = "PerturbedMNIST.test_set"
        for name, v in (("n_perturb", n_perturb), ("batch_size", batch_size)):
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{fn}: expected {name} to be an int >= 1, got {v!r}")
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise ValueError(f"{fn}: expected seed to be an int, got {seed!r}")
        return self._test_batches(n_perturb, seed, batch_size)

    def _test_batches(self, n_perturb: int, seed: int, batch_size: int
                      ) -> Iterator[PerturbedBatch]:
        gen = torch.Generator().manual_seed(seed)
        n = len(self)
        for _ in range(n_perturb):
            for start in range(0, n, batch_size):
                idx = torch.arange(start, min(start + batch_size, n), device=self.device)
                yield self._render(idx, gen)
