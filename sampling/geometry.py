"""Affine geometry for spatial transformers: parameters, matrices, frames.

Convention:
    * A batched affine map is a tensor of shape ``(N, 2, 3)``: ``[A | t]`` acting
      on column vectors ``(x, y)`` as ``x' = A @ (x, y) + t``. ``(N, 3, 3)`` is the
      same map in homogeneous coordinates (last row ``0 0 1``).
    * Points are ``(x, y)`` in that order (x horizontal, along W; y vertical,
      along H), exactly as in ``torch.nn.functional.affine_grid`` / ``grid_sample``.
    * Angles are radians, positive = counter-clockwise *in the (x, y) frame*.
      Because y points down in an image, a positive angle appears clockwise on
      screen.
    * The matrix an STN predicts is ``input_from_output``: it maps a location of
      the *output* grid to the location in the *input* where it samples. An
      image transform ``T_h`` acts as ``(T_h f)(x) = f(T_h^{-1} x)`` (000 eq. 1),
      so sampling ``f`` with ``input_from_output = T_h^{-1}`` yields ``T_h f``.
    * Normalized coordinates span ``[-1, 1]``; ``align_corners=False`` is the
      package-wide default (the PyTorch default since 1.4). See
      :func:`normalized_to_pixel` for both conventions.

Parametrisation (:func:`params_to_matrix`)::

    A = R(angle) @ H(shear) @ diag(exp(log_scale_x), exp(log_scale_y)),
    R(a) = [[cos a, -sin a], [sin a, cos a]],   H(k) = [[1, k], [0, 1]].

Every ``A`` with ``det A > 0`` has exactly one such decomposition (it is the QR
decomposition of ``A`` with a positive diagonal), so :func:`matrix_to_params`
inverts :func:`params_to_matrix`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .checks import check_finite, check_shape

__all__ = [
    "AffineParams",
    "rotation_matrix",
    "params_to_matrix",
    "matrix_to_params",
    "identity",
    "to_homogeneous",
    "from_homogeneous",
    "compose",
    "invert",
    "offsets_to_matrix",
    "matrix_to_offsets",
    "pixel_units",
    "normalized_to_pixel",
    "pixel_to_normalized",
    "pixel_from_normalized_matrix",
    "pixel_matrix_to_normalized",
    "normalized_matrix_to_pixel",
    "similarity_fit",
    "determinant",
]


@dataclass(frozen=True)
class AffineParams:
    """Batched affine parameters (see the module docstring for the composition order).

    Attributes:
        angle: ``(N,)`` rotation in radians, in ``(-pi, pi]``.
        log_scale: ``(N, 2)`` natural-log scale along x and y (equal for isotropic).
        shear: ``(N,)`` shear ``k`` of ``H(k) = [[1, k], [0, 1]]``.
        translation: ``(N, 2)`` translation ``(tx, ty)`` in the matrix's units.
    """

    angle: torch.Tensor
    log_scale: torch.Tensor
    shear: torch.Tensor
    translation: torch.Tensor

    def matrix(self) -> torch.Tensor:
        """The ``(N, 2, 3)`` matrix of these parameters."""
        return params_to_matrix(self.angle, self.log_scale, self.shear, self.translation)


def _as_tensor(x, like: torch.Tensor | None) -> torch.Tensor:
    """A float / sequence / tensor argument as a floating-point tensor (like ``like``)."""
    if not isinstance(x, torch.Tensor):
        x = torch.as_tensor(x, dtype=like.dtype if like is not None else torch.get_default_dtype(),
                            device=like.device if like is not None else None)
    if not x.is_floating_point():
        x = x.to(torch.get_default_dtype() if like is None else like.dtype)
    return x


def _as_batch(x, n: int | None, like: torch.Tensor | None, name: str, fn: str, tail=()):
    """Turn a float / tensor argument into a ``(N, *tail)`` tensor.

    Broadcasting (only where ``n`` is known): a scalar (Python number or 0-d tensor)
    is repeated to ``(N, *tail)``; a tensor of shape ``tail`` (e.g. one ``(tx, ty)``
    pair) is repeated to ``(N, *tail)``. Anything else must be ``(N, *tail)``.
    """
    x = _as_tensor(x, like)
    if n is not None and (x.dim() == 0 or (tail and tuple(x.shape) == tuple(tail))):
        x = x.expand(n, *tail) if tail else x.expand(n)
    expected = ("N",) + tuple(str(t) for t in tail)
    check_shape(x, " ".join(expected), name=name, fn=fn, dims={"N": n} if n is not None else None)
    check_finite(x, name=name, fn=fn)
    return x


def rotation_matrix(angle) -> torch.Tensor:
    """``(N,) -> (N, 2, 2)`` rotation matrices ``[[cos, -sin], [sin, cos]]``.

    Any shape works elementwise (``(...) -> (..., 2, 2)``); a Python number or a 0-d
    tensor gives one ``(2, 2)`` matrix.
    """
    angle = _as_tensor(angle, None)
    c, s = torch.cos(angle), torch.sin(angle)
    return torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2)


def params_to_matrix(angle, log_scale, shear=0.0, translation=0.0) -> torch.Tensor:
    """Build ``(N, 2, 3)`` affine matrices from parameters.

    Broadcasting: ``angle`` fixes ``N`` -- a ``(N,)`` tensor gives ``N`` matrices, a
    Python number or 0-d tensor gives one (``N = 1``). Every other argument may be a
    Python number / 0-d tensor (the same value for all ``N``) or one value per
    matrix; ``translation`` may also be one ``(tx, ty)`` pair for all ``N``, and
    with a scalar ``angle`` ``log_scale`` may be one ``(log sx, log sy)`` pair.
    A 1-d ``log_scale`` tensor of length ``N`` is isotropic (one scale per matrix).

    Args:
        angle: ``(N,)`` radians, or a scalar (``N = 1``).
        log_scale: ``(N,)`` isotropic or ``(N, 2)`` anisotropic natural-log scale, or a
            scalar; ``(2,)`` = ``(log sx, log sy)`` when ``angle`` is a scalar.
        shear: ``(N,)`` or a scalar.
        translation: ``(N, 2)``, one ``(tx, ty)`` pair ``(2,)``, or a scalar (``tx = ty``).

    Returns:
        ``(N, 2, 3)`` matrices ``[R(angle) H(shear) S(exp(log_scale)) | translation]``.

    Raises:
        ValueError: a shape is wrong, sizes of N disagree, or a value is not finite.

    Example:
        >>> m = params_to_matrix(torch.tensor([0.0]), torch.tensor([0.0]))
        >>> m.squeeze(0)
        tensor([[1., 0., 0.],
                [0., 1., 0.]])
        >>> params_to_matrix(0.3, 0.0, 0.0, (1.0, 2.0)).shape
        torch.Size([1, 2, 3])
    """
    fn = "params_to_matrix"
    angle = _as_tensor(angle, None)
    single = angle.dim() == 0
    if single:
        angle = angle.reshape(1)
    angle = _as_batch(angle, None, None, "angle", fn)
    n = angle.shape[0]
    log_scale = _as_tensor(log_scale, angle)  # a sequence follows the tensor rules
    if single and log_scale.dim() == 1 and log_scale.shape[0] == 2:
        log_scale = log_scale.reshape(1, 2)  # one (log sx, log sy) pair
    if log_scale.dim() == 1:
        log_scale = _as_batch(log_scale, n, angle, "log_scale", fn)
        log_scale = torch.stack([log_scale, log_scale], -1)
    else:
        log_scale = _as_batch(log_scale, n, angle, "log_scale", fn, tail=(2,))
    shear = _as_batch(shear, n, angle, "shear", fn)
    translation = _as_batch(translation, n, angle, "translation", fn, tail=(2,))
    scale = torch.exp(log_scale)  # (N, 2)
    zero, one = torch.zeros_like(shear), torch.ones_like(shear)
    h = torch.stack([torch.stack([one, shear], -1), torch.stack([zero, one], -1)], -2)
    lin = rotation_matrix(angle) @ h * scale[:, None, :]  # columns scaled: (N, 2, 2)
    return torch.cat([lin, translation[:, :, None]], dim=-1)


def _check_affine(m, name: str, fn: str) -> torch.Tensor:
    check_shape(m, "N 2 3", name=name, fn=fn)
    if not m.is_floating_point():
        raise ValueError(f"{fn}: expected {name} to be a floating-point tensor, got {m.dtype}")
    check_finite(m, name=name, fn=fn)
    return m


def determinant(m: torch.Tensor) -> torch.Tensor:
    """``(N, 2, 3) -> (N,)`` determinant of the linear part."""
    return m[:, 0, 0] * m[:, 1, 1] - m[:, 0, 1] * m[:, 1, 0]


def _singular(m: torch.Tensor) -> torch.Tensor:
    """Mask of matrices whose linear part is singular to working precision."""
    lin = m[:, :, :2]
    norm2 = (lin * lin).sum((-1, -2))
    tol = 64 * torch.finfo(m.dtype).eps
    return determinant(m).abs() <= tol * norm2.clamp_min(torch.finfo(m.dtype).tiny)


def matrix_to_params(m: torch.Tensor) -> AffineParams:
    """Decompose ``(N, 2, 3)`` matrices into :class:`AffineParams` (inverse of
    :func:`params_to_matrix`).

    Raises:
        ValueError: wrong shape, non-finite values, or a linear part with
            ``det <= 0`` (singular, or a reflection, which the parametrisation
            cannot represent).
    """
    fn = "matrix_to_params"
    _check_affine(m, "m", fn)
    det = determinant(m)
    if bool(_singular(m).any()) or bool((det <= 0).any()):
        bad = int((_singular(m) | (det <= 0)).nonzero()[0, 0])
        raise ValueError(f"{fn}: expected m with a positive determinant (no reflection, not "
                         f"singular), got det={float(det[bad]):.3g} at index {bad}")
    a00, a10 = m[:, 0, 0], m[:, 1, 0]
    angle = torch.atan2(a10, a00)
    sx = torch.sqrt(a00 * a00 + a10 * a10)
    c, s = torch.cos(angle), torch.sin(angle)
    # U = R(-angle) A = [[sx, k*sy], [0, sy]]
    u01 = c * m[:, 0, 1] + s * m[:, 1, 1]
    sy = det / sx
    shear = u01 / sy
    return AffineParams(angle, torch.stack([torch.log(sx), torch.log(sy)], -1), shear,
                        m[:, :, 2].clone())


def identity(n: int, *, dtype=None, device=None) -> torch.Tensor:
    """``(n, 2, 3)`` identity maps."""
    eye = torch.eye(2, 3, dtype=dtype or torch.get_default_dtype(), device=device)
    return eye.expand(n, 2, 3).clone()


def to_homogeneous(m: torch.Tensor) -> torch.Tensor:
    """``(N, 2, 3) -> (N, 3, 3)`` by appending the row ``0 0 1``."""
    _check_affine(m, "m", "to_homogeneous")
    last = torch.zeros(m.shape[0], 1, 3, dtype=m.dtype, device=m.device)
    last[:, 0, 2] = 1
    return torch.cat([m, last], dim=1)


def from_homogeneous(h: torch.Tensor) -> torch.Tensor:
    """``(N, 3, 3) -> (N, 2, 3)``; the last row must be ``0 0 1``."""
    fn = "from_homogeneous"
    check_shape(h, "N 3 3", name="h", fn=fn)
    last = torch.tensor([0.0, 0.0, 1.0], dtype=h.dtype, device=h.device)
    if not torch.allclose(h[:, 2, :], last.expand_as(h[:, 2, :])):
        raise ValueError(f"{fn}: expected h with last row (0, 0, 1), got another last row")
    return h[:, :2, :]


def compose(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The map ``x -> a(b(x))``: ``b`` first, then ``a``. Both ``(N, 2, 3)``.

    For STN matrices, ``input_from_mid = compose(input_from_out1, out1_from_mid)``.
    """
    fn = "compose"
    _check_affine(a, "a", fn)
    dims = check_shape(a, "N 2 3", name="a", fn=fn)
    _check_affine(b, "b", fn)
    check_shape(b, "N 2 3", name="b", fn=fn, dims=dims)
    lin = a[:, :, :2] @ b[:, :, :2]
    t = a[:, :, :2] @ b[:, :, 2:] + a[:, :, 2:]
    return torch.cat([lin, t], dim=-1)


def invert(m: torch.Tensor) -> torch.Tensor:
    """Inverse maps, ``(N, 2, 3)``; closed form, differentiable.

    Raises:
        ValueError: a linear part is singular to working precision: ``|det A| <= 64 eps
            ||A||_F^2`` (scale-relative, so ``0.03 I`` inverts and ``diag(1, 0)`` does not;
            64 eps: the rounding of the determinant's two products, with headroom).
    """
    fn = "invert"
    _check_affine(m, "m", fn)
    sing = _singular(m)
    if bool(sing.any()):
        bad = int(sing.nonzero()[0, 0])
        raise ValueError(f"{fn}: expected m with an invertible linear part, got a singular "
                         f"matrix (det={float(determinant(m)[bad]):.3g}) at index {bad}")
    det = determinant(m)
    a, b, c, d = m[:, 0, 0], m[:, 0, 1], m[:, 1, 0], m[:, 1, 1]
    inv = torch.stack([torch.stack([d, -b], -1), torch.stack([-c, a], -1)], -2) / det[:, None, None]
    t = -(inv @ m[:, :, 2:])
    return torch.cat([inv, t], dim=-1)


def offsets_to_matrix(o: torch.Tensor) -> torch.Tensor:
    """000 eq. 17: six localization outputs ``o`` ``(N, 6)`` -> ``[[o1+1, o2, o3], [o4, o5+1, o6]]``.

    With ``o = 0`` (zero weights and bias in the last localization layer) this is
    the identity, so L2 regularisation pulls towards the identity.
    """
    fn = "offsets_to_matrix"
    check_shape(o, "N 6", name="o", fn=fn)
    eye = torch.eye(2, 3, dtype=o.dtype, device=o.device)
    return o.view(-1, 2, 3) + eye


def matrix_to_offsets(m: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`offsets_to_matrix`: ``(N, 2, 3) -> (N, 6)``."""
    _check_affine(m, "m", "matrix_to_offsets")
    return (m - torch.eye(2, 3, dtype=m.dtype, device=m.device)).reshape(-1, 6)


def pixel_units(width: int, *, align_corners: bool = False) -> float:
    """Pixels per unit of normalized coordinate along an axis of ``width`` pixels.

    ``(W - 1) / 2`` with ``align_corners=True`` (000 App. A.2: 29.5 for 60 px),
    ``W / 2`` without.
    """
    if not isinstance(width, int) or width < 1:
        raise ValueError(f"pixel_units: expected width to be a positive int, got {width!r}")
    return (width - 1) / 2 if align_corners else width / 2


def _size_hw(size, fn: str) -> tuple[int, int]:
    if (not isinstance(size, (tuple, list)) or len(size) != 2
            or not all(isinstance(s, int) and s >= 1 for s in size)):
        raise ValueError(f"{fn}: expected size to be (H, W) with positive ints, got {size!r}")
    return int(size[0]), int(size[1])


def _points_wh(pts, name: str, fn: str, h: int, w: int) -> torch.Tensor:
    """Check ``pts`` is ``(..., 2)``; return ``(W, H)`` as a tensor like it."""
    if not isinstance(pts, torch.Tensor) or pts.dim() < 1 or pts.shape[-1] != 2:
        got = tuple(pts.shape) if isinstance(pts, torch.Tensor) else type(pts).__name__
        raise ValueError(f"{fn}: expected {name} of shape (..., 2), got {got}")
    return torch.tensor([w, h], dtype=pts.dtype, device=pts.device)


def normalized_to_pixel(xy: torch.Tensor, size, *, align_corners: bool = False) -> torch.Tensor:
    """Map normalized ``(..., 2)`` points ``(x, y)`` to pixel coordinates of an ``(H, W)`` image.

    Pixel ``(0, 0)`` is the centre of the top-left pixel.

    * ``align_corners=True``: ``-1`` and ``+1`` are the centres of the corner
      pixels, ``px = (x + 1) / 2 * (W - 1)``.
    * ``align_corners=False``: ``-1`` and ``+1`` are the outer edges of the
      corner pixels, ``px = ((x + 1) * W - 1) / 2``.
    """
    h, w = _size_hw(size, "normalized_to_pixel")
    wh = _points_wh(xy, "xy", "normalized_to_pixel", h, w)
    if align_corners:
        return (xy + 1) / 2 * (wh - 1)
    return ((xy + 1) * wh - 1) / 2


def pixel_to_normalized(pix: torch.Tensor, size, *, align_corners: bool = False) -> torch.Tensor:
    """Inverse of :func:`normalized_to_pixel`."""
    fn = "pixel_to_normalized"
    h, w = _size_hw(size, fn)
    wh = _points_wh(pix, "pix", fn, h, w)
    if align_corners:
        if h == 1 or w == 1:
            raise ValueError(f"{fn}: align_corners=True needs size >= 2 on both axes, got {size!r}")
        return pix * 2 / (wh - 1) - 1
    return (2 * pix + 1) / wh - 1


def pixel_from_normalized_matrix(size, *, align_corners: bool = False, dtype=None,
                                 device=None) -> torch.Tensor:
    """The ``(3, 3)`` homogeneous map from normalized to pixel coordinates of ``(H, W)``."""
    h, w = _size_hw(size, "pixel_from_normalized_matrix")
    sx, sy = (pixel_units(w, align_corners=align_corners), pixel_units(h, align_corners=align_corners))
    ox, oy = ((w - 1) / 2, (h - 1) / 2)
    return torch.tensor([[sx, 0.0, ox], [0.0, sy, oy], [0.0, 0.0, 1.0]],
                        dtype=dtype or torch.get_default_dtype(), device=device)


def normalized_matrix_to_pixel(input_from_output: torch.Tensor, in_size, out_size, *,
                               align_corners: bool = False) -> torch.Tensor:
    """Express a normalized ``input_from_output`` ``(N, 2, 3)`` in pixel coordinates.

    Returns ``P_in @ M @ P_out^{-1}`` where ``P`` are the normalized->pixel maps,
    i.e. the map from output pixel ``(u, v)`` to the input pixel it samples.
    """
    fn = "normalized_matrix_to_pixel"
    _check_affine(input_from_output, "input_from_output", fn)
    kw = dict(align_corners=align_corners, dtype=input_from_output.dtype,
              device=input_from_output.device)
    p_in = pixel_from_normalized_matrix(in_size, **kw)
    p_out = pixel_from_normalized_matrix(out_size, **kw)
    h = p_in @ to_homogeneous(input_from_output) @ torch.linalg.inv(p_out)
    return h[:, :2, :]


def pixel_matrix_to_normalized(input_from_output_px: torch.Tensor, in_size, out_size, *,
                               align_corners: bool = False) -> torch.Tensor:
    """Inverse of :func:`normalized_matrix_to_pixel`: a pixel ``input_from_output``
    ``(N, 2, 3)`` (output pixel ``(u, v)`` -> the input pixel it samples) as the normalized
    matrix that :func:`sampling.warp.affine_grid` takes: ``P_in^{-1} @ M @ P_out``.
    """
    fn = "pixel_matrix_to_normalized"
    _check_affine(input_from_output_px, "input_from_output_px", fn)
    kw = dict(align_corners=align_corners, dtype=input_from_output_px.dtype,
              device=input_from_output_px.device)
    p_in = pixel_from_normalized_matrix(in_size, **kw)
    p_out = pixel_from_normalized_matrix(out_size, **kw)
    h = torch.linalg.inv(p_in) @ to_homogeneous(input_from_output_px) @ p_out
    return h[:, :2, :]


def similarity_fit(m: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Least-squares rotation + isotropic scale of the linear part (000 App. A.2).

    Minimises ``||A - S R(phi)||_F`` (eq. 10). With ``u = S cos phi``, ``v = S sin phi``
    the minimiser is ``u = (a11 + a22) / 2``, ``v = (a21 - a12) / 2`` (eq. 11), so

        S = 1/2 sqrt(a11^2 + a12^2 + a21^2 + a22^2 + 2 (a11 a22 - a12 a21))   (eq. 12)
        phi = atan2(a21 - a12, a11 + a22)                                     (eqs. 13-14)

    where ``atan2`` picks the ``n pi`` branch of eq. 14 that makes ``S >= 0``.

    Args:
        m: ``(N, 2, 3)`` or ``(N, 2, 2)``.

    Returns:
        ``(scale, angle)``, each ``(N,)``; angle in radians in ``(-pi, pi]``.
    """
    fn = "similarity_fit"
    if isinstance(m, torch.Tensor) and m.dim() == 3 and m.shape[-1] == 2:
        check_shape(m, "N 2 2", name="m", fn=fn)
        check_finite(m, name="m", fn=fn)
    else:
        _check_affine(m, "m", fn)
    a11, a12, a21, a22 = m[:, 0, 0], m[:, 0, 1], m[:, 1, 0], m[:, 1, 1]
    u = (a11 + a22) / 2
    v = (a21 - a12) / 2
    return torch.sqrt(u * u + v * v), torch.atan2(v, u)


# Convenience constant used across the package for degree conversions.
DEG = 180.0 / math.pi
