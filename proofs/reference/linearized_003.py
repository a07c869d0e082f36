"""A second, independent reference of 003's linearized multi-sampling gradient, from the
paper's equations as written (Jiang et al., ICCV 2019, Sec. 4 eqs. 2-7, Sec. 5 eqs. 8-9,
Sec. 6.1), with its **own noise source** and **eq. 6's row of ones**.

It shares nothing with :mod:`sampling.linearized` (no variates, no footprint code, no
bilinear sampler): the caller gives the affine transformation ``T_theta`` itself, and the
auxiliary samples are drawn, as eq. 3 says, around each *output* pixel ``x_i`` with
``x_i^k ~ N(x_i, sigma)`` (sigma in output pixels, "set to match the pixel width and
height of the sample output"), then mapped through ``T_theta`` -- so they are spread over
the output pixel's footprint in the input -- and perturbed after the transformation by one
input pixel (eqs. 8-9). Its noise is NumPy's (``numpy.random.default_rng``), so it can only
agree with the shipped sampler *in expectation*: checks compare Monte Carlo means over
many calls.

Per output pixel ``i`` (eqs. 5-7): ``Y_i = [I^1 - I^0, ..., I^{K} - I^0]^T`` and
``X_i = [[u^k - u^0], [v^k - v^0], [1]]^T`` (``K x 3``: the coordinate differences in input
pixels and a column of ones, the intercept), ``A_i = (X_i^T X_i + eps E)^{-1} X_i^T Y_i``
with ``E`` the 3x3 identity; the gradient w.r.t. the sampling location is ``A_i``'s first
two entries. Out-of-bound auxiliaries (bilinear stencil not inside the image) are
excluded from eqs. 5-6 (6.1); if all are, ``A_i = 0``.

Convention: ``theta`` ``(2, 3)`` maps normalized output ``(x, y)`` to normalized input
``(x, y)`` (``F.affine_grid``), ``align_corners=False``: normalized ``-1, 1`` are the outer
pixel edges; pixel centres at integers.
"""

from __future__ import annotations

import numpy as np

__all__ = ["bilinear_zero", "fitted_gradient_003", "monte_carlo_003"]


def bilinear_zero(img: np.ndarray, px: np.ndarray, py: np.ndarray) -> np.ndarray:
    """Zero-padded bilinear interpolation of ``img (H, W)`` at pixel coordinates."""
    hgt, wid = img.shape
    x0 = np.floor(px).astype(np.int64)
    y0 = np.floor(py).astype(np.int64)
    fx, fy = px - x0, py - y0
    out = np.zeros(px.shape)
    for dy in (0, 1):
        for dx in (0, 1):
            xi, yi = x0 + dx, y0 + dy
            w = (fx if dx else 1 - fx) * (fy if dy else 1 - fy)
            ok = (xi >= 0) & (xi < wid) & (yi >= 0) & (yi < hgt)
            out += w * ok * img[np.clip(yi, 0, hgt - 1), np.clip(xi, 0, wid - 1)]
    return out


def _to_input_pixels(theta: np.ndarray, xo: np.ndarray, yo: np.ndarray, h: int, w: int,
                     hin: int, win: int):
    """Output pixel coordinates -> input pixel coordinates through ``T_theta``."""
    xn = (2 * xo + 1) / w - 1  # normalized output (align_corners=False)
    yn = (2 * yo + 1) / h - 1
    xi = theta[0, 0] * xn + theta[0, 1] * yn + theta[0, 2]
    yi = theta[1, 0] * xn + theta[1, 1] * yn + theta[1, 2]
    return ((xi + 1) * win - 1) / 2, ((yi + 1) * hin - 1) / 2


def fitted_gradient_003(img: np.ndarray, theta: np.ndarray, out_hw: tuple[int, int],
                        grad_out: np.ndarray, rng: np.random.Generator, *, k: int = 8,
                        sigma: float = 1.0, collapse: bool = True, eps: float = 1e-3,
                        intercept: bool = True) -> np.ndarray:
    """One call: the gradient w.r.t. the normalized grid, ``(h, w, 2)``.

    Args:
        img: ``(H, W)`` one channel.
        theta: ``(2, 3)``.
        out_hw: output size ``(h, w)``.
        grad_out: ``(h, w)`` upstream gradient.
        rng: the noise source (eq. 3 and eqs. 8-9).
        k: auxiliary samples per pixel (003: 8).
        sigma: eq. 3's std in output pixels.
        collapse: eqs. 8-9 (one input pixel after the transformation).
        eps: eq. 7's Tikhonov scalar.
        intercept: eq. 6's row of ones (003); False drops it -- the fit anchored at the
            centre sample, stnlab's own design (SMP-1's note), for comparisons that must not
            test that design (SMP-4's border expectation).
    """
    h, w = out_hw
    hin, win = img.shape
    yo, xo = np.meshgrid(np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64),
                         indexing="ij")
    u0, v0 = _to_input_pixels(theta, xo, yo, h, w, hin, win)  # (h, w) x_i^0 = x_i
    xk = xo + sigma * rng.standard_normal((k, h, w))  # eq. 3, output pixels
    yk = yo + sigma * rng.standard_normal((k, h, w))
    uk, vk = _to_input_pixels(theta, xk, yk, h, w, hin, win)
    if collapse:  # eqs. 8-9: delta = one input pixel
        uk = uk + rng.standard_normal((k, h, w))
        vk = vk + rng.standard_normal((k, h, w))
    m = ((uk >= 0) & (uk <= win - 1) & (vk >= 0) & (vk <= hin - 1)).astype(np.float64)
    i0 = bilinear_zero(img, u0, v0)
    y = (bilinear_zero(img, uk, vk) - i0) * m  # eq. 5, masked rows
    cols = [(uk - u0) * m, (vk - v0) * m] + ([m] if intercept else [])
    x = np.stack(cols, -1)  # eq. 6 (K, h, w, 3), row of ones (or (K, h, w, 2) anchored)
    xtx = np.einsum("khwa,khwb->hwab", x, x) + eps * np.eye(len(cols))  # eq. 7
    xty = np.einsum("khwa,khw->hwa", x, y)
    a = np.linalg.solve(xtx, xty[..., None])[..., 0]  # (h, w, 3) or (h, w, 2)
    a[m.sum(0) == 0] = 0.0  # 6.1: all out of bounds -> A_i = 0
    # d/d(normalized x) = d/d(pixel x) * win / 2 (align_corners=False)
    return np.stack([a[..., 0] * win / 2, a[..., 1] * hin / 2], -1) * grad_out[..., None]


def monte_carlo_003(img, theta, out_hw, grad_out, *, calls: int, seed: int, **kw):
    """Mean and standard error over ``calls`` independent calls (own noise stream)."""
    rng = np.random.default_rng(seed)
    g = np.stack([fitted_gradient_003(img, theta, out_hw, grad_out, rng, **kw)
                  for _ in range(calls)])
    return g.mean(0), g.std(0, ddof=1) / np.sqrt(calls)
