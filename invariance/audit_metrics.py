"""Pieces of the per-layer audit (:mod:`invariance.audit`): transforms, intervals, verdicts.

Transforms (``T_h``, names as on the command line):

* ``rotA`` -- rotation by ``A`` degrees counter-clockwise on screen (``rot90`` is
  ``torch.rot90(x, 1, dims=(-2, -1))``, an exact index operation on the image);
* ``scaleS`` -- isotropic scaling by ``S`` about the image centre (bilinear);
* ``shiftD`` -- integer shift by ``D`` pixels along x (``torch.roll``, exact; circular, so a
  zero-padded network sees a seam ``D`` pixels from the right border); ``shift`` alone shifts
  by the largest measured stride that is at most 1/8 of the image side.

Intervals (:func:`interval`): over images, Student-t 95 % on the mean for ``n < 30`` and the
percentile bootstrap (2000 resamples, ``numpy.random.default_rng(seed)``) for ``n >= 30``,
the rule of :mod:`proofs.stats` (which library code may not import).

Verdicts (:func:`verdict`): ``alignable`` when the whole 95 % interval of error / floor is
``<= FLOOR_FACTOR`` (2, the interpolation-floor rule of INV-5 / INV-6 / INV-8,
``proofs.claims.invariance.FLOOR_FACTOR``), ``not alignable`` when it is wholly above,
``undecided`` when it contains 2. Where the floor is 0 (exact index operations on both
image and feature map) the error itself must be within :data:`EXACT_TOL` of 0.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
import torch

from sampling import geometry

from .measures import similarity
from .warps import transform

__all__ = ["FLOOR_FACTOR", "EXACT_TOL", "Transform", "parse_transforms", "interval", "verdict",
           "DEFAULT_TRANSFORMS"]

FLOOR_FACTOR = 2.0
#: exact regime: errors of index operations (float64 / float32 rounding through a network)
EXACT_TOL = {torch.float64: 1e-12, torch.float32: 1e-5}
DEFAULT_TRANSFORMS = ("rot90", "rot15", "rot30", "rot45", "scale0.71", "scale0.84",
                      "scale1.19", "scale1.41", "shift")


@dataclass(frozen=True)
class Transform:
    """An image transform ``T_h``.

    Attributes:
        name: as given (``rot30``, ``scale1.41``, ``shift8``).
        kind: ``"rot"``, ``"scale"`` or ``"shift"``.
        value: degrees, scale factor, or pixels (0: the largest stride, resolved later).
    """

    name: str
    kind: str
    value: float

    @property
    def exact_on_image(self) -> bool:
        """An index operation on the image (no interpolation)."""
        return (self.kind == "rot" and self.value % 90 == 0) or self.kind == "shift"

    def matrix(self, side: int) -> torch.Tensor:
        """``(1, 2, 3)`` ``T_h`` in normalized coordinates (``output_from_input``)."""
        if self.kind == "rot":
            return similarity(-math.radians(self.value))
        if self.kind == "scale":
            return similarity(0.0, math.log(self.value))
        return similarity(0.0, t=(2 * self.value / side, 0.0))

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        """``T_h x`` (exact ops by index, else :func:`invariance.warps.transform`)."""
        if self.kind == "rot" and self.value % 90 == 0:
            return torch.rot90(x, int(self.value // 90) % 4, dims=(-2, -1))
        if self.kind == "shift":
            return torch.roll(x, int(self.value), dims=-1)
        return transform(x, self.matrix(x.shape[-1]).to(x.dtype))

    def round_trip(self, x: torch.Tensor) -> torch.Tensor:
        """``T_h^{-1} T_h x`` (what resampling the image twice leaves)."""
        if self.exact_on_image:
            return x
        m = self.matrix(x.shape[-1]).to(x.dtype)
        return transform(transform(x, m), geometry.invert(m))


_PAT = re.compile(r"^(rot|scale|shift)(-?\d+(?:\.\d+)?)?$")


def parse_transforms(spec) -> list[Transform]:
    """``"rot90,scale1.41"`` or a sequence of names -> :class:`Transform` list.

    Raises:
        ValueError: a name that is not ``rotA``, ``scaleS`` (S > 0, != 1) or ``shift[D]``.
    """
    names = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec)]
    out = []
    for n in names:
        m = _PAT.match(n)
        if not m or (m.group(1) != "shift" and m.group(2) is None):
            raise ValueError(f"audit: expected transforms like rot90, rot30, scale1.41, shift8 "
                             f"or shift, got {n!r}")
        kind, v = m.group(1), float(m.group(2) or 0)
        if kind == "scale" and (v <= 0 or v == 1):
            raise ValueError(f"audit: expected a scale > 0 and != 1, got {n!r}")
        if kind == "shift" and v != int(v):
            raise ValueError(f"audit: expected an integer shift in pixels, got {n!r}")
        out.append(Transform(n, kind, v))
    if not out:
        raise ValueError("audit: expected at least one transform")
    return out


def interval(values, *, seed: int = 0) -> dict:
    """Mean and 95 % interval of ``values`` over images (see the module docstring)."""
    v = np.asarray([float(x) for x in values], dtype=np.float64)
    v = v[np.isfinite(v)]
    n = int(v.size)
    if n == 0:
        return {"mean": None, "lo": None, "hi": None, "n": 0, "method": "none"}
    mean = float(v.mean())
    if n == 1:
        return {"mean": mean, "lo": None, "hi": None, "n": 1, "method": "single value"}
    if n < 30:
        from scipy.stats import t as student_t

        half = float(student_t.ppf(0.975, n - 1)) * float(v.std(ddof=1)) / math.sqrt(n)
        return {"mean": mean, "lo": mean - half, "hi": mean + half, "n": n,
                "method": "student-t 95%"}
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(2000, n))
    means = v[idx].mean(1)
    return {"mean": mean, "lo": float(np.quantile(means, 0.025)),
            "hi": float(np.quantile(means, 0.975)), "n": n, "method": "bootstrap 95% (2000)"}


def verdict(error: dict, ratio: dict | None, exact: bool, dtype) -> str:
    """``alignable`` / ``not alignable`` / ``undecided`` (see the module docstring)."""
    if exact:
        tol = EXACT_TOL.get(dtype, 1e-5)
        hi = error["hi"] if error["hi"] is not None else error["mean"]
        if hi is None:
            return "n/a"
        return "alignable" if hi <= tol else "not alignable"
    if ratio is None or ratio["mean"] is None:
        return "n/a"
    lo = ratio["lo"] if ratio["lo"] is not None else ratio["mean"]
    hi = ratio["hi"] if ratio["hi"] is not None else ratio["mean"]
    if hi <= FLOOR_FACTOR:
        return "alignable"
    if lo > FLOOR_FACTOR:
        return "not alignable"
    return "undecided"
