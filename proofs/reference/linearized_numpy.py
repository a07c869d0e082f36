"""An independent float64 NumPy reference of 003's linearized sampler gradient (Eqs. 2-9).

Written from the paper's equations (Jiang et al., "Linearized Multi-Sampling for
Differentiable Image Transformation", ICCV 2019, Sec. 4-5 and 6.1), without torch, so
that a check built on it can tell the fitted gradient from plain bilinear's. It shares
with :mod:`sampling.linearized` only the *standard normal variates* of one call (handed
in; get them with :func:`sampling.linearized.auxiliary_variates`), never code.

Per output pixel ``p`` (sampling location ``x_p`` in input pixels):

1. Footprint (Eq. 3, sigma "matched to the pixel width and height of the sample
   output"): ``D_p = [dx/dcol, dx/drow]``, finite differences of the grid (central
   inside, one-sided at the ends, zero along an axis of length 1);
   ``o_k = sigma * D_p (z0_k, z1_k)``.
2. Collapse prevention (Sec. 5, Eqs. 8-9), after warping: ``o_k += (c_x, c_y)``, one
   input pixel per unit variate.
3. Masking (6.1): auxiliary ``k`` counts (``m_k = 1``) iff its whole bilinear stencil
   is inside the image, i.e. ``0 <= x <= W - 1`` and ``0 <= y <= H - 1`` in pixels.
4. Least squares of the local linear model of Eq. (2), anchored at the centre sample
   (the repository's choice: no intercept column, see :mod:`sampling.linearized`)
   with a Tikhonov term ``eps`` (px^2):
   ``J_p = (sum_k m_k o_k o_k^T + eps I)^{-1} sum_k m_k o_k (y_k - y_0)`` where
   ``y_k = sum_c g_c I_c(x_p + o_k)`` and ``y_0 = sum_c g_c I_c(x_p)`` (``g`` the
   upstream gradient; the fit is linear in the values, so contracting the channels
   first is exact). A singular system (every auxiliary masked and ``eps = 0``) gives 0.
5. ``grad_grid = (J_x u_x, J_y u_y)`` with ``u`` input pixels per normalized unit.

Convention:
    ``grid`` as ``F.grid_sample``: normalized ``(x, y)``, ``input_from_output``;
    ``align_corners`` maps ``-1, 1`` to pixel centres ``0, W - 1`` (True) or to the
    outer edges ``-0.5, W - 0.5`` (False). Sampling uses zero padding.
"""

from __future__ import annotations

import numpy as np

__all__ = ["to_pixels", "pixels_per_unit", "bilinear", "footprint", "fitted_grid_gradient",
           "bilinear_grid_gradient"]


def pixels_per_unit(size: int, align_corners: bool) -> float:
    """Input pixels per normalized unit along an axis of ``size`` pixels."""
    return (size - 1) / 2.0 if align_corners else size / 2.0


def to_pixels(x: np.ndarray, size: int, align_corners: bool) -> np.ndarray:
    """Normalized coordinate -> pixel coordinate (pixel centres at integers)."""
    if align_corners:
        return (x + 1.0) / 2.0 * (size - 1)
    return ((x + 1.0) * size - 1.0) / 2.0


def bilinear(image: np.ndarray, px: np.ndarray, py: np.ndarray) -> np.ndarray:
    """Zero-padded bilinear samples of ``image (C, H, W)`` at pixel coordinates.

    Args:
        image: ``(C, H, W)``.
        px, py: arrays of one shape ``S`` (pixel coordinates).

    Returns:
        ``(C, *S)``.
    """
    c, hgt, wid = image.shape
    x0, y0 = np.floor(px), np.floor(py)
    fx, fy = px - x0, py - y0
    x0, y0 = x0.astype(np.int64), y0.astype(np.int64)
    out = np.zeros((c,) + px.shape)
    for dy, wy in ((0, 1.0 - fy), (1, fy)):
        for dx, wx in ((0, 1.0 - fx), (1, fx)):
            xi, yi = x0 + dx, y0 + dy
            ok = (xi >= 0) & (xi < wid) & (yi >= 0) & (yi < hgt)
            vals = image[:, np.clip(yi, 0, hgt - 1), np.clip(xi, 0, wid - 1)]  # (C, *S)
            out += vals * (wx * wy * ok)
    return out


def footprint(px: np.ndarray, py: np.ndarray):
    """``(d_col, d_row)`` of a pixel-coordinate grid ``(h, w)``: each ``(h, w, 2)``."""

    def diff(t, axis):
        if t.shape[axis] == 1:
            return np.zeros_like(t)
        return np.gradient(t, axis=axis, edge_order=1)

    d_col = np.stack([diff(px, 1), diff(py, 1)], -1)
    d_row = np.stack([diff(px, 0), diff(py, 0)], -1)
    return d_col, d_row


def fitted_grid_gradient(input, grid, grad_out, variates, *, sigma: float = 1.0,
                         collapse_noise: bool = True, eps: float = 1e-3,
                         align_corners: bool = False, mask: bool = True,
                         return_diagnostics: bool = False):
    """The linearized sampler's gradient w.r.t. ``grid`` (003 Eqs. 2-9), float64.

    Args:
        input: ``(N, C, H, W)`` array.
        grid: ``(N, h, w, 2)`` normalized sampling locations.
        grad_out: ``(N, C, h, w)`` upstream gradient.
        variates: ``(4, K, h, w)`` standard normals ``(z0, z1, c_x, c_y)``, shared by
            the images (as the repository shares them).
        sigma: footprint scale (output pixels).
        collapse_noise: add ``(c_x, c_y)`` input pixels to each offset.
        eps: Tikhonov term in px^2.
        align_corners: as ``F.grid_sample``.
        mask: drop auxiliaries whose stencil leaves the image (6.1); ``False`` keeps
            them with their zero-padded values (a diagnostic: what masking changes).
        return_diagnostics: also return ``(normal (N, h, w, 3) [xx, xy, yy] px^2,
            count (N, h, w))``.

    Returns:
        ``(N, h, w, 2)`` gradient in normalized units (and the diagnostics).
    """
    input = np.asarray(input, dtype=np.float64)
    grid = np.asarray(grid, dtype=np.float64)
    grad_out = np.asarray(grad_out, dtype=np.float64)
    z0, z1, cx, cy = np.asarray(variates, dtype=np.float64)  # (K, h, w) each
    n, _, hgt, wid = input.shape
    ux, uy = pixels_per_unit(wid, align_corners), pixels_per_unit(hgt, align_corners)
    out = np.zeros(grid.shape[:3] + (2,))
    normal = np.zeros(grid.shape[:3] + (3,))
    count = np.zeros(grid.shape[:3])
    for i in range(n):
        px = to_pixels(grid[i, ..., 0], wid, align_corners)  # (h, w)
        py = to_pixels(grid[i, ..., 1], hgt, align_corners)
        d_col, d_row = footprint(px, py)  # (h, w, 2)
        ox = sigma * (d_col[..., 0] * z0 + d_row[..., 0] * z1)  # (K, h, w)
        oy = sigma * (d_col[..., 1] * z0 + d_row[..., 1] * z1)
        if collapse_noise:
            ox, oy = ox + cx, oy + cy
        qx, qy = px + ox, py + oy  # (K, h, w) auxiliary locations, pixels
        inside = (qx >= 0) & (qx <= wid - 1) & (qy >= 0) & (qy <= hgt - 1)
        m = inside.astype(np.float64) if mask else np.ones_like(qx)
        g = grad_out[i]  # (C, h, w)
        y0 = (bilinear(input[i], px, py) * g).sum(0)  # (h, w)
        yk = (bilinear(input[i], qx, qy) * g[:, None]).sum(0) - y0  # (K, h, w)
        sxx, sxy, syy = (m * ox * ox).sum(0), (m * ox * oy).sum(0), (m * oy * oy).sum(0)
        bx, by = (m * ox * yk).sum(0), (m * oy * yk).sum(0)
        a, d = sxx + eps, syy + eps
        det = a * d - sxy * sxy
        ok = det > 0
        safe = np.where(ok, det, 1.0)
        jx = np.where(ok, (d * bx - sxy * by) / safe, 0.0)
        jy = np.where(ok, (a * by - sxy * bx) / safe, 0.0)
        out[i] = np.stack([jx * ux, jy * uy], -1)
        normal[i] = np.stack([sxx, sxy, syy], -1)
        count[i] = m.sum(0)
    return (out, normal, count) if return_diagnostics else out


def bilinear_grid_gradient(input, grid, grad_out, *, align_corners: bool = False):
    """Plain bilinear sampling's gradient w.r.t. ``grid`` (zero padding), for contrast.

    ``d/dx`` of the bilinear interpolant: the difference of the two neighbouring columns,
    weighted by the row fraction (and likewise for ``y``), times ``u``.
    """
    input = np.asarray(input, dtype=np.float64)
    grid = np.asarray(grid, dtype=np.float64)
    grad_out = np.asarray(grad_out, dtype=np.float64)
    n, _, hgt, wid = input.shape
    ux, uy = pixels_per_unit(wid, align_corners), pixels_per_unit(hgt, align_corners)
    out = np.zeros(grid.shape[:3] + (2,))
    for i in range(n):
        px = to_pixels(grid[i, ..., 0], wid, align_corners)
        py = to_pixels(grid[i, ..., 1], hgt, align_corners)
        x0, y0 = np.floor(px), np.floor(py)
        # d/dpx at fixed row fraction: I(x0 + 1, y) - I(x0, y) along the interpolated row.
        dx = bilinear(input[i], x0 + 1, py) - bilinear(input[i], x0, py)  # (C, h, w)
        dy = bilinear(input[i], px, y0 + 1) - bilinear(input[i], px, y0)
        g = grad_out[i]
        out[i, ..., 0] = (dx * g).sum(0) * ux
        out[i, ..., 1] = (dy * g).sum(0) * uy
    return out
