"""Transforming images and feature maps, and the central region where both are defined.

Convention:
    * Affine maps are ``(N, 2, 3)`` tensors in *normalized* coordinates
      (``[-1, 1]`` over the image, ``align_corners=False``, points ``(x, y)``),
      exactly as in :mod:`sampling.geometry`.
    * An image transform ``T_h`` acts as ``(T_h f)(x) = f(T_h^{-1} x)`` (000 eq. 1),
      so it is sampled with ``input_from_output = T_h^{-1}``.
    * The same normalized frame is used for an image and for every feature map of
      it: with ``align_corners=False`` a ``same``-padded convolution keeps pixel
      centres, and a stride-``s`` pooling maps the centre of feature pixel ``i`` to
      the normalized centre of the image block it pools. Hence ``T_g = T_h^{-1}``
      means the same matrix for the image and for its feature maps.
    * For non-square maps the normalized frame is anisotropic (x and y are scaled
      by ``W/2`` and ``H/2`` pixels); use square images when rotations matter.
"""

from __future__ import annotations

import torch
from sampling import geometry
from sampling.checks import check_shape
from sampling.warp import warp_affine

__all__ = ["warp", "transform", "central_mask", "region_info", "pixel_centres"]


def _check_pair(x: torch.Tensor, m: torch.Tensor, fn: str) -> torch.Tensor:
    dims = check_shape(x, "N C H W", name="x", fn=fn)
    if m.dim() == 2:
        m = m.unsqueeze(0)
    check_shape(m, "M 2 3", name="input_from_output", fn=fn)
    if m.shape[0] == 1 and dims["N"] != 1:
        m = m.expand(dims["N"], 2, 3)
    check_shape(m, "N 2 3", name="input_from_output", fn=fn, dims={"N": dims["N"]})
    if not x.is_floating_point():
        raise ValueError(f"{fn}: expected x to be a floating-point tensor, got {x.dtype}")
    return m.to(dtype=x.dtype, device=x.device)


def warp(
    x: torch.Tensor, input_from_output: torch.Tensor, *, padding_mode: str = "zeros"
) -> torch.Tensor:
    """Resample ``x`` with an affine ``input_from_output`` (bilinear, same size).

    Convention:
        ``out(p) = x(input_from_output @ p)`` for every normalized output location
        ``p`` (``align_corners=False``); ``x`` is zero outside its domain with
        ``padding_mode="zeros"``.

    Args:
        x: ``(N, C, H, W)`` images or feature maps.
        input_from_output: ``(N, 2, 3)``, ``(1, 2, 3)`` or ``(2, 3)`` normalized map.
        padding_mode: as in :func:`sampling.grid_sample`.

    Returns:
        ``(N, C, H, W)`` resampled tensor.
    """
    m = _check_pair(x, input_from_output, "warp")
    return warp_affine(x, m, method="bilinear", align_corners=False, padding_mode=padding_mode)


def transform(x: torch.Tensor, t: torch.Tensor, *, padding_mode: str = "zeros") -> torch.Tensor:
    """Apply the transform ``T`` to ``x``: ``(T x)(p) = x(T^{-1} p)`` (000 eq. 1).

    Convention:
        ``t`` is ``T`` itself (``output_from_input``) in normalized coordinates,
        ``align_corners=False``; this samples with ``input_from_output = T^{-1}``.

    Args:
        x: ``(N, C, H, W)``.
        t: ``(N, 2, 3)``, ``(1, 2, 3)`` or ``(2, 3)``.
        padding_mode: as in :func:`sampling.grid_sample`.

    Returns:
        ``(N, C, H, W)``.
    """
    m = t.unsqueeze(0) if t.dim() == 2 else t
    check_shape(m, "M 2 3", name="t", fn="transform")
    return warp(x, geometry.invert(m.to(x.dtype)), padding_mode=padding_mode)


def pixel_centres(h: int, w: int, *, dtype=torch.float32, device=None) -> torch.Tensor:
    """Normalized ``(x, y)`` of the pixel centres of an ``(h, w)`` map: ``(h, w, 2)``."""
    ys = (2 * torch.arange(h, dtype=dtype, device=device) + 1) / h - 1
    xs = (2 * torch.arange(w, dtype=dtype, device=device) + 1) / w - 1
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([gx, gy], -1)


def central_mask(h: int, w: int, radius: float, *, device=None) -> torch.Tensor:
    """Boolean ``(h, w)`` mask of pixel centres inside the normalized disk ``|p| <= radius``.

    Raises:
        ValueError: ``radius`` is not in ``(0, sqrt(2)]`` or the disk holds no pixel.
    """
    fn = "central_mask"
    if not (0 < float(radius) <= 2**0.5):
        raise ValueError(f"{fn}: expected radius in (0, 1.414], got {radius!r}")
    p = pixel_centres(h, w, dtype=torch.float64, device=device)
    mask = (p * p).sum(-1) <= float(radius) ** 2
    if not bool(mask.any()):
        raise ValueError(
            f"{fn}: expected a radius that holds a pixel of a ({h}, {w}) map, got radius={radius}"
        )
    return mask


def region_info(mask: torch.Tensor, radius: float) -> dict:
    """Describe a central region for reports: radius, pixels, map size."""
    h, w = mask.shape
    return {
        "shape": "disk",
        "radius_normalized": float(radius),
        "radius_pixels": float(radius) * min(h, w) / 2,
        "pixels": int(mask.sum()),
        "map_size": [int(h), int(w)],
    }
