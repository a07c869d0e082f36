"""One warp: affine matrix -> sampling grid -> sampler, for every caller in the project.

Every place that resamples an image or a feature map with an affine matrix (the spatial
transformers in :mod:`models`, the MNIST perturbations, :mod:`invariance`'s ``T_g``, the
sampler experiments and the claims) goes through :func:`affine_grid` and
:func:`warp_affine`, so the project has one answer to "which ``align_corners``" and
"which pixel is ``-1``". Matrices in pixel units convert with
:func:`sampling.geometry.pixel_matrix_to_normalized` and its inverse
:func:`sampling.geometry.normalized_matrix_to_pixel`.

Convention:
    ``input_from_output`` ``(N, 2, 3)`` maps a normalized output location ``(x, y, 1)``
    to the normalized input location it samples: ``out(p) = in(input_from_output @ p)``.
    Points are ``(x, y)``; with ``align_corners=True`` ``+-1`` are the centres of the
    corner pixels, with ``align_corners=False`` (the package default) their outer edges —
    the meanings of ``torch.nn.functional.affine_grid``.
"""

from __future__ import annotations

import torch

from . import api
from .checks import check_shape

__all__ = ["affine_grid", "warp_affine", "base_coordinates"]


def base_coordinates(n: int, *, align_corners: bool, dtype=None, device=None) -> torch.Tensor:
    """Normalized coordinates of the ``n`` pixel centres along one axis: ``(n,)``.

    ``align_corners=True``: ``linspace(-1, 1, n)`` (0 for ``n = 1``);
    ``align_corners=False``: ``(2 i + 1) / n - 1``.
    """
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"base_coordinates: expected n to be an int >= 1, got {n!r}")
    if align_corners:
        if n == 1:
            return torch.zeros(1, dtype=dtype, device=device)
        return torch.linspace(-1, 1, n, dtype=dtype, device=device)
    ar = torch.arange(n, dtype=dtype, device=device)
    return (2 * ar + 1) / n - 1


def _out_hw(size, fn: str) -> tuple[int, int]:
    if isinstance(size, torch.Size) or (isinstance(size, (tuple, list)) and len(size) == 4):
        size = tuple(size)[-2:]
    if (not isinstance(size, (tuple, list)) or len(size) != 2
            or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in size)):
        raise ValueError(f"{fn}: expected size (h, w) or (N, C, h, w) of ints >= 1, got {size!r}")
    return int(size[0]), int(size[1])


def affine_grid(input_from_output: torch.Tensor, size, *, align_corners: bool = False
                ) -> torch.Tensor:
    """Sampling grid of an affine ``input_from_output``, by broadcasting.

    The same numbers as ``F.affine_grid(input_from_output, (N, C, h, w), align_corners)``
    to float rounding (tested), but written as ``a00 x + a01 y + a02`` with broadcasting:
    it has a batching rule under ``torch.func.vmap`` (``aten::affine_grid_generator`` has
    none) and on CPU it is several times faster than the batched matmul with inner
    dimension 3.

    Convention:
        see the module docstring (``input_from_output``, normalized, ``(x, y)``).

    Args:
        input_from_output: ``(N, 2, 3)`` normalized matrices.
        size: output ``(h, w)``, or ``(N, C, h, w)`` as ``F.affine_grid`` takes it.
        align_corners: as in ``F.affine_grid``.

    Returns:
        ``(N, h, w, 2)`` sampling locations ``(x, y)``.

    Example:
        >>> import torch
        >>> eye = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]])
        >>> affine_grid(eye, (2, 2), align_corners=True)[0, 0]
        tensor([[-1., -1.],
                [ 1., -1.]])
    """
    fn = "affine_grid"
    h, w = _out_hw(size, fn)
    check_shape(input_from_output, "N 2 3", name="input_from_output", fn=fn)
    m = input_from_output
    xs = base_coordinates(w, align_corners=align_corners, dtype=m.dtype, device=m.device)
    ys = base_coordinates(h, align_corners=align_corners, dtype=m.dtype, device=m.device)
    a = m[:, :, None, None, :]  # (N, 2, 1, 1, 3)
    grid = a[..., 0] * xs[None, None, None, :] + a[..., 1] * ys[None, None, :, None] + a[..., 2]
    return grid.permute(0, 2, 3, 1)  # (N, 2, h, w) -> (N, h, w, 2)


def warp_affine(x: torch.Tensor, input_from_output: torch.Tensor, size=None, *,
                method: str = "bilinear", align_corners: bool = False,
                padding_mode: str = "zeros", **method_options) -> torch.Tensor:
    """Resample ``x`` through an affine ``input_from_output``: ``out(p) = x(M p)``.

    Convention:
        ``input_from_output`` in normalized coordinates (module docstring); the image is
        transformed by ``M^{-1}``: ``(T f)(p) = f(T^{-1} p)`` with ``T = M^{-1}``. Outside
        ``x`` the sampler's ``padding_mode`` applies.

    Args:
        x: ``(N, C, H, W)`` images or feature maps.
        input_from_output: ``(N, 2, 3)``, or ``(1, 2, 3)`` / ``(2, 3)`` for every image.
        size: output ``(h, w)``; default ``(H, W)``.
        method: a :data:`sampling.METHODS` entry (``"bilinear"``, ``"linearized"``,
            ``"multiscale"``).
        align_corners: as in ``F.grid_sample``; used for the grid and the sampler alike.
        padding_mode: ``"zeros"``, ``"border"`` or ``"reflection"`` (sampler permitting).
        method_options: passed to :func:`sampling.grid_sample` (e.g. ``num_samples``).

    Returns:
        ``(N, C, h, w)``.
    """
    fn = "warp_affine"
    check_shape(x, "N C H W", name="x", fn=fn)
    m = input_from_output
    if isinstance(m, torch.Tensor) and m.dim() == 2:
        m = m.unsqueeze(0)
    check_shape(m, "M 2 3", name="input_from_output", fn=fn)
    if m.shape[0] == 1 and x.shape[0] != 1:
        m = m.expand(x.shape[0], 2, 3)
    elif m.shape[0] != x.shape[0]:
        raise ValueError(f"{fn}: expected input_from_output of shape (N, 2, 3) with N = "
                         f"{x.shape[0]} (or 1), got {tuple(input_from_output.shape)}")
    out_hw = tuple(x.shape[-2:]) if size is None else _out_hw(size, fn)
    if torch.is_autocast_enabled(x.device.type):
        # Under autocast a localizer's matrix comes out in bf16/fp16; grid locations with
        # an 8-bit mantissa miss the pixel centres by up to ~0.4 px on a 112 px canvas, so
        # the grid is built in float32 (the sampler runs in float32 under autocast too).
        gdt = torch.promote_types(m.dtype, torch.float32)
        with torch.autocast(x.device.type, enabled=False):
            grid = affine_grid(m.to(gdt), out_hw, align_corners=align_corners)
    else:
        grid = affine_grid(m.to(x.dtype), out_hw, align_corners=align_corners)  # (N, h, w, 2)
    return api.grid_sample(x, grid, method=method, align_corners=align_corners,
                           padding_mode=padding_mode, **method_options)
