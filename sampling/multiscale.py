"""The multi-scale sampling baseline of 003 (Sec. 6, "Baselines").

"The image is sampled at multiple scales and then aggregated ... similar to how
multi-scale sampling with mipmaps is performed. To create a multi-scale
representation, we create three scale levels, using Gaussian kernels with
standard deviations {1, 5, 10}."

We blur the input with each Gaussian (in input pixels), sample every level
bilinearly at the same grid, and aggregate by the mean over levels. The paper
does not say how levels are aggregated; the mean is the simplest choice that
makes the gradient w.r.t. the grid the average of the levels' bilinear
gradients, so the coarse levels widen the basin of the fine one. Everything is
differentiable by autograd (no randomness), w.r.t. both ``input`` and ``grid``.

Borders: the blur is a *normalized* convolution, ``(G * (I 1_Omega)) / (G * 1_Omega)``,
so a level is a weighted mean of image pixels only (no darkening by zero
padding), for kernels of any size, even wider than the image (sigma = 10 on a
28 px digit).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .checks import check_positive, check_sampler_inputs

__all__ = ["multiscale_grid_sample", "gaussian_blur", "PAPER_SIGMAS"]

#: 003 Sec. 6: "three scale levels, using Gaussian kernels with standard deviations {1, 5, 10}".
PAPER_SIGMAS = (1.0, 5.0, 10.0)


def _blur_matrix(n: int, sigma: float, dtype, device) -> torch.Tensor:
    """``(n, n)`` weights ``exp(-(i - j)^2 / 2 sigma^2)``, zero beyond ``ceil(3 sigma)``."""
    t = torch.arange(n, dtype=dtype, device=device)
    d = t[:, None] - t[None, :]
    g = torch.exp(-0.5 * (d / sigma) ** 2)
    return g.masked_fill_(d.abs() > max(1, math.ceil(3 * sigma)), 0.0)


def gaussian_blur(input: torch.Tensor, sigma: float) -> torch.Tensor:
    """Normalized-convolution Gaussian blur of ``(N, C, H, W)`` images (``sigma`` in pixels).

    ``blur(I) = (G_H I G_W^T) / (G_H 1 1^T G_W^T)`` with the separable, truncated
    (``3 sigma``) Gaussian matrices ``G``: a weighted mean of image pixels only, so
    borders do not darken. Computed as two matrix products (much faster on CPU
    than ``conv2d`` with long 1-D kernels). ``sigma == 0`` returns ``input``
    unchanged. Differentiable w.r.t. ``input``.

    Example:
        >>> x = torch.ones(1, 2, 5, 7)
        >>> bool(torch.allclose(gaussian_blur(x, 3.0), x))  # constants stay constant
        True
    """
    fn = "gaussian_blur"
    check_positive(sigma, name="sigma", fn=fn, allow_zero=True)
    if sigma == 0:
        return input
    _, _, h, w = input.shape
    g_h = _blur_matrix(h, float(sigma), input.dtype, input.device)  # (H, H)
    g_w = _blur_matrix(w, float(sigma), input.dtype, input.device)  # (W, W)
    num = torch.matmul(g_h, torch.matmul(input, g_w.T))  # (N, C, H, W)
    den = torch.outer(g_h.sum(1), g_w.sum(1))  # (H, W)
    return num / den


def multiscale_grid_sample(input: torch.Tensor, grid: torch.Tensor, *,
                           sigmas=PAPER_SIGMAS, align_corners: bool = False,
                           padding_mode: str = "zeros") -> torch.Tensor:
    """Mean of bilinear samples of Gaussian-blurred copies of ``input`` (003 Sec. 6).

    Convention:
        Same as ``F.grid_sample(mode="bilinear")``: ``input (N, C, H, W)``,
        ``grid (N, h, w, 2)`` holding normalized ``(x, y)``, ``input_from_output``;
        ``align_corners=False`` by default. ``sigmas`` are in input pixels.

    Args:
        input: ``(N, C, H, W)``.
        grid: ``(N, h, w, 2)``.
        sigmas: non-empty sequence of blur standard deviations ``>= 0`` in input
            pixels (paper: ``(1, 5, 10)``; ``0`` is the unblurred image).
        align_corners: as in ``F.grid_sample``.
        padding_mode: as in ``F.grid_sample`` (applied when sampling each level).

    Returns:
        ``(N, C, h, w)``: ``mean_s grid_sample(blur_s(input), grid)``.

    Example:
        >>> x = torch.rand(2, 1, 8, 8)
        >>> g = torch.rand(2, 3, 3, 2) * 2 - 1
        >>> a = multiscale_grid_sample(x, g, sigmas=(0,))
        >>> bool(torch.allclose(a, F.grid_sample(x, g, align_corners=False)))
        True
    """
    fn = "multiscale_grid_sample"
    check_sampler_inputs(input, grid, fn=fn, padding_mode=padding_mode)
    try:
        sigmas = tuple(sigmas)
    except TypeError:
        raise ValueError(f"{fn}: expected sigmas to be a sequence of numbers, "
                         f"got {sigmas!r}") from None
    if not sigmas:
        raise ValueError(f"{fn}: expected sigmas to be non-empty, got ()")
    for s in sigmas:
        check_positive(s, name="sigmas", fn=fn, allow_zero=True)
    out = None
    for s in sigmas:
        level = gaussian_blur(input, float(s))
        sample = F.grid_sample(level, grid, mode="bilinear", padding_mode=padding_mode,
                               align_corners=align_corners)  # (N, C, h, w)
        out = sample if out is None else out + sample
    return out / len(sigmas)
