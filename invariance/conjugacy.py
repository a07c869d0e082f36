"""Whether a real 2x2 map is conjugate to an orthogonal one (the criterion behind INV-7).

A compactly supported receptive field can be invariant under the powers of a linear map
``A`` only if ``A`` is conjugate to an orthogonal map, ``A = P Q P^{-1}`` with ``Q``
orthogonal (000 Sec. II; its powers then stay bounded). For a real ``2 x 2`` matrix this
holds **iff ``A`` is diagonalizable over C with unit-modulus eigenvalues**:

* a complex pair ``e^{+-i t}`` (``det A = 1``, discriminant < 0): yes (a conjugated
  rotation);
* real eigenvalues ``1`` and ``-1`` (``det A = -1``, ``tr A = 0``): yes (a conjugated
  reflection);
* a repeated eigenvalue ``+-1`` (``det A = 1``, discriminant 0): yes iff ``A = +-I``;
  otherwise ``A`` is defective (a conjugated shear), no;
* any eigenvalue with ``|lambda| != 1`` (``|det A| != 1``, or ``det A = 1`` with a real
  pair ``lambda, 1/lambda``, e.g. ``diag(2, 1/2)``): no.

Tolerance (derivation): with ``A = [[a, b], [c, d]]`` the criterion reads three
quantities, ``det = a d - b c``, ``tr = a + d`` and the discriminant of the characteristic
polynomial ``disc = (a - d)^2 + 4 b c`` (written without the cancellation of
``tr^2 - 4 det``, so a rotation by a tiny angle keeps its sign). ``A`` is taken as known
up to a normwise error ``delta = rtol * ||A||_F`` in each entry (backward error: the
rounding that made ``A`` and our own). To first order (plus the exact second-order
term) the quantities then move by at most

    |d det|  <= delta (|a| + |b| + |c| + |d|) + 2 delta^2,
    |d tr|   <= 2 delta,
    |d disc| <= 4 delta (|a - d| + |b| + |c|) + 8 delta^2,

and a quantity within that bound of its boundary value (``det = +-1``, ``tr = 0``,
``disc = 0``) is taken to be on it; ``A = +-I`` is accepted within ``delta`` per entry.
The relative size of these bounds is the quantities' condition number: for
``A = P R P^{-1}``, ``||A||_F`` grows like ``cond(P)``, so a worse-conditioned
conjugation is judged with a proportionally wider band. Default ``rtol = 64 eps`` of the
input's dtype (float64 for non-tensor input): forming ``P R P^{-1}`` rounds about ten
times per entry, and a factor ~6 covers our own operations. Entries estimated from data
carry larger errors: pass their relative error as ``rtol``. Near the defective boundary
(``A`` within ``delta`` of a shear) the question is ill-posed and the answer follows the
nearest boundary case.
"""

from __future__ import annotations

import math

import numpy as np
import torch

__all__ = ["is_conjugate_to_orthogonal", "conjugacy_report"]


def _as_matrix(m, fn: str) -> tuple[np.ndarray, float]:
    """``m`` as a float64 ``(2, 2)`` array, and the machine epsilon of its own dtype."""
    if isinstance(m, torch.Tensor):
        if not m.is_floating_point():
            raise ValueError(f"{fn}: expected m to be a real floating-point 2x2 matrix, got "
                             f"dtype {m.dtype}")
        eps = torch.finfo(m.dtype).eps
        arr = m.detach().cpu().double().numpy()
    else:
        arr = np.asarray(m)
        if arr.dtype.kind not in "fiu":
            raise ValueError(f"{fn}: expected m to be a real 2x2 matrix, got dtype {arr.dtype}")
        eps = float(np.finfo(arr.dtype).eps) if arr.dtype.kind == "f" else float(
            np.finfo(np.float64).eps)
        arr = arr.astype(np.float64)
    if arr.shape != (2, 2):
        raise ValueError(f"{fn}: expected m of shape (2, 2), got {tuple(arr.shape)}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{fn}: expected finite values in m, got {arr.tolist()}")
    return arr, eps


def conjugacy_report(m, *, rtol: float | None = None) -> dict:
    """The criterion with its numbers: which case ``m`` falls in, and the verdict.

    Args:
        m: ``(2, 2)`` real matrix (tensor, array or nested list).
        rtol: relative error of ``m``'s entries (see the module docstring); ``None``
            means ``64 eps`` of ``m``'s dtype.

    Returns:
        dict with ``conjugate`` (bool), ``case`` (``"complex unit pair"``,
        ``"reflection"``, ``"+-identity"``, ``"defective"``, ``"non-unit modulus"``),
        ``det``, ``trace``, ``discriminant`` and ``rtol``.
    """
    fn = "is_conjugate_to_orthogonal"
    arr, eps = _as_matrix(m, fn)
    if rtol is None:
        rtol = 64.0 * eps
    elif isinstance(rtol, bool) or not isinstance(rtol, (int, float)) or not 0 <= rtol < 0.1:
        raise ValueError(f"{fn}: expected rtol in [0, 0.1), got {rtol!r}")
    (a, b), (c, d) = arr.tolist()
    det, tr, disc = a * d - b * c, a + d, (a - d) ** 2 + 4 * b * c
    delta = rtol * math.sqrt(a * a + b * b + c * c + d * d)
    tol_det = delta * (abs(a) + abs(b) + abs(c) + abs(d)) + 2 * delta * delta
    tol_tr = 2 * delta
    tol_disc = 4 * delta * (abs(a - d) + abs(b) + abs(c)) + 8 * delta * delta
    out = dict(det=det, trace=tr, discriminant=disc, rtol=float(rtol))
    if abs(det + 1) <= tol_det:  # eigenvalues real with product -1: unit iff they are +-1
        unit = abs(tr) <= tol_tr
        return dict(out, conjugate=unit, case="reflection" if unit else "non-unit modulus")
    if abs(det - 1) > tol_det:
        return dict(out, conjugate=False, case="non-unit modulus")
    if disc < -tol_disc:  # complex pair with |lambda|^2 = det = 1, distinct: diagonalizable
        return dict(out, conjugate=True, case="complex unit pair")
    if disc > tol_disc:  # real pair lambda, 1/lambda with lambda != +-1
        return dict(out, conjugate=False, case="non-unit modulus")
    s = math.copysign(1.0, tr)  # repeated eigenvalue s = +-1: diagonalizable iff m = s I
    ident = max(abs(a - s), abs(d - s), abs(b), abs(c)) <= delta
    return dict(out, conjugate=ident, case="+-identity" if ident else "defective")


def is_conjugate_to_orthogonal(m, *, rtol: float | None = None) -> bool:
    """Whether the real 2x2 map ``m`` is conjugate to an orthogonal map (exact criterion).

    True iff ``m`` is diagonalizable over C with unit-modulus eigenvalues (see the module
    docstring for the cases and the tolerance).

    Convention:
        ``m`` is the linear part of a map in any frame (conjugation does not change the
        answer, so ``input_from_output`` and its inverse agree).

    Args:
        m: ``(2, 2)`` real matrix (tensor, array or nested list).
        rtol: relative error of the entries; ``None`` means ``64 eps`` of ``m``'s dtype.

    Returns:
        bool.

    Raises:
        ValueError: ``m`` not a finite real ``(2, 2)`` matrix, or ``rtol`` outside
            ``[0, 0.1)``.

    Example:
        >>> import math
        >>> t = math.radians(30)
        >>> r = [[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]]
        >>> p = np.array([[10.0, 1.0], [0.0, 1.0]])
        >>> is_conjugate_to_orthogonal(p @ np.array(r) @ np.linalg.inv(p))
        True
        >>> is_conjugate_to_orthogonal([[1.0, 0.5], [0.0, 1.0]])  # a shear
        False
    """
    return bool(conjugacy_report(m, rtol=rtol)["conjugate"])
