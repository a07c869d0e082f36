"""Library-grade invariance measurements: each returns a plain result (a dataclass).

The claims (:mod:`proofs.claims.invariance`) judge these results; nothing here decides
a verdict, loads data or writes files.

- :func:`receptive_field_centres` -- 000 eqs. 5-6 in sympy: ``T_g = T_h^{-1}`` is the
  unique solution (INV-3).
- :func:`scale_alignment` / :func:`interpolation_floor` -- best alignment error over
  ``T_g`` for each scaling, and the error interpolation alone leaves (INV-5, INV-6).
- :func:`map_powers_symbolic` / :func:`classify_maps` -- which linear maps admit a compact
  invariant receptive field (INV-7).

Convention: matrices are ``input_from_output`` (:mod:`sampling.geometry`), points
``(x, y)``, radians; images ``(N, C, H, W)``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch

from sampling import geometry

from .search import SearchSpace, search_alignment
from .warps import transform

__all__ = ["RADIUS", "SCALES", "ReceptiveFieldCentres", "ScaleAlignment", "MapClass",
           "MapPowersSymbolic", "receptive_field_centres", "scale_alignment",
           "interpolation_floor", "control_scale_alignment", "map_powers_symbolic",
           "classify_maps", "similarity", "LOG_SCALE_GRID"]

#: Central disk (normalized) where both sides of 000 eq. 4 are defined.
RADIUS = 0.35
#: The scalings of INV-5 (s = 1 is the control).
SCALES = (0.5, 0.71, 1.0, 1.41, 2.0)


def similarity(angle: float, log_scale: float = 0.0, shear: float = 0.0, t=(0.0, 0.0),
               dtype=torch.float64) -> torch.Tensor:
    """One ``(1, 2, 3)`` matrix from :func:`sampling.geometry.params_to_matrix`."""
    return geometry.params_to_matrix(
        torch.tensor([angle], dtype=dtype),
        torch.tensor([log_scale], dtype=dtype),
        torch.tensor([shear], dtype=dtype),
        torch.tensor([list(t)], dtype=dtype),
    )


@dataclass
class ReceptiveFieldCentres:
    """Result of :func:`receptive_field_centres`."""

    unique_solution: bool
    T_g_equals_T_h_inverse: bool
    solution: str

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class ScaleAlignment:
    """Best alignment of ``Γ(T_s f)`` to ``Γ(f)`` over ``T_g`` for one scaling ``s``.

    Attributes:
        s: the scaling; ``abs_log_s`` = ``|log s|``.
        error: ``{mode: best relative error}``.
        found_log_scale: ``{mode: log-scale of the best T_g}``.
        landscape: the first mode's error over the log-scale grid.
    """

    s: float
    abs_log_s: float
    error: dict = field(default_factory=dict)
    found_log_scale: dict = field(default_factory=dict)
    landscape: dict | None = None

    def to_row(self) -> dict:
        """The flat row the INV-5 / INV-6 evidence records (``{mode}_error``, ...)."""
        row = {"s": self.s, "abs_log_s": self.abs_log_s}
        for i, mode in enumerate(self.error):
            row[f"{mode}_error"] = self.error[mode]
            row[f"{mode}_found_log_scale"] = self.found_log_scale[mode]
            if i == 0 and self.landscape is not None:
                row["landscape"] = self.landscape
        return row


@dataclass
class MapClass:
    """Result of :func:`classify_maps` for one map."""

    abs_det: float
    max_power_norm: float
    orbit_radius_n16: float
    orbit_radius_n64: float
    invariant_compact_rf_possible: bool

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class MapPowersSymbolic:
    """Result of :func:`map_powers_symbolic`."""

    scaling_abs_det_1_only_for_s: list
    shear_det: str
    shear_power_n: str
    shear_powers_unbounded: bool
    rotation_power_is_rotation: bool
    rotation_orthogonal: bool
    conjugated_rotation_powers_bounded: bool
    ok: bool

    def to_dict(self) -> dict:
        return asdict(self)


def receptive_field_centres() -> ReceptiveFieldCentres:
    """Receptive-field centres (000 eqs. 5-6) in sympy.

    ``(T_g Γ T_h f)(x)`` is computed from ``f`` around ``c(x) = T_h^{-1} T_g^{-1} x``
    (``Γ`` translation covariant, ``(T f)(x) = f(T^{-1} x)``); ``(Γ f)(x)`` around ``x``.
    Requiring ``c(x) = x`` for all ``x`` is a linear system in the six entries of
    ``T_g^{-1}`` whose unique solution is ``T_g^{-1} = T_h``, i.e. ``T_g = T_h^{-1}``.
    """
    import sympy as sp

    a, b, c, d, e, f_ = sp.symbols("h11 h12 h21 h22 h13 h23", real=True)
    g = sp.symbols("g11 g12 g21 g22 g13 g23", real=True)
    x, y = sp.symbols("x y", real=True)
    th = sp.Matrix([[a, b, e], [c, d, f_], [0, 0, 1]])
    ginv = sp.Matrix([[g[0], g[1], g[4]], [g[2], g[3], g[5]], [0, 0, 1]])  # T_g^{-1}
    centre = th.inv() * ginv * sp.Matrix([x, y, 1])
    eqs = []
    for comp, target in ((centre[0], x), (centre[1], y)):
        num = sp.together(comp - target)
        poly = sp.Poly(sp.numer(num), x, y)
        eqs += poly.coeffs()
    sol = sp.solve(eqs, list(g), dict=True)
    unique = len(sol) == 1
    ok = False
    if unique:
        gi = ginv.subs(sol[0])
        tg = gi.inv()
        ok = sp.simplify(tg - th.inv()) == sp.zeros(3, 3)
    return ReceptiveFieldCentres(unique, bool(ok), str(sol[0]) if unique else str(sol))


def scale_alignment(
    net, images: torch.Tensor, scales=SCALES, *, modes=("spatial", "mix"), refine_iters: int = 20
) -> list[ScaleAlignment]:
    """Best error over ``T_g`` (log-scale grid + refined translation) for each scale ``s``.

    Args:
        net: a :class:`invariance.FeatureExtractor` (``Γ``).
        images: ``(N, C, H, W)`` float64.
        scales: the scalings ``s`` applied to the images.
        modes: alignment modes of :func:`invariance.search.search_alignment`.
        refine_iters: refinement steps of the search (0 at ``s = 1``).
    """
    with torch.no_grad():
        ref = net(images)

    def moved_for(s):
        with torch.no_grad():
            return net(transform(images, similarity(0.0, math.log(s))))

    return _scale_rows(moved_for, ref, scales, modes, refine_iters)


#: The log-scale grid of the scale search (INV-5, INV-6, INV-8 and their controls).
LOG_SCALE_GRID = tuple(0.1 * i for i in range(-9, 10))


def _scale_rows(moved_for, ref, scales, modes, refine_iters) -> list[ScaleAlignment]:
    """The one scale search every scale measurement and its positive control share."""
    rows = []
    for s in scales:
        moved = moved_for(s)
        row = ScaleAlignment(s, abs(math.log(s)))
        for mode in modes:
            space = SearchSpace(log_scales=LOG_SCALE_GRID, refine=("log_scale", "tx", "ty"))
            res = search_alignment(
                moved,
                ref,
                space,
                mode=mode,
                radius=RADIUS,
                refine_iters=refine_iters if s != 1.0 else 0,
            )
            row.error[mode] = res.error
            row.found_log_scale[mode] = res.params["log_scale"]
            if mode == modes[0]:
                row.landscape = {
                    "log_scale": res.landscape["log_scale"].tolist(),
                    "error": res.landscape[f"error_{mode}"].tolist(),
                }
        rows.append(row)
    return rows


def interpolation_floor(net, images: torch.Tensor, *, mode: str = "mix") -> float:
    """Best error after a half-pixel diagonal translation, which *is* alignable in theory.

    Bilinear resampling at half-pixel offsets is its worst case, so this bounds what
    interpolation alone contributes to an alignment error of ``net`` on ``images``.
    """
    size = images.shape[-1]
    th = similarity(0.0, t=(1.0 / size, 1.0 / size))  # (0.5, 0.5) px
    with torch.no_grad():
        ref, moved = net(images), net(transform(images, th))
    return search_alignment(
        moved, ref, SearchSpace(refine=("tx", "ty")), mode=mode, radius=RADIUS
    ).error


def _control_features(images: torch.Tensor, mix: torch.Tensor | None) -> torch.Tensor:
    """``[f, f^2]`` (pointwise, so ``F(T f) = T F(f)`` exactly), channel-mixed by ``mix``."""
    feats = torch.cat([images, images**2], dim=1)
    if mix is not None:
        feats = torch.einsum("dc,nchw->ndhw", mix.to(feats), feats)
    return feats


def control_scale_alignment(images: torch.Tensor, scales=SCALES, *, mode: str = "spatial",
                            mix: torch.Tensor | None = None, refine_iters: int = 20
                            ) -> tuple[list[ScaleAlignment], float]:
    """Positive control of the scale search: a case where alignment is known to exist.

    The features are pointwise functions of the image, ``F(f) = [f, f^2]`` (a receptive
    field of one pixel, so ``F(T_s f) = T_s F(f)``: the scaling *is* alignable, by
    ``T_g = T_s^{-1}``); with ``mix`` (``(2, 2)``, invertible) the transformed side is
    also channel-mixed, ``M F(T_s f)``, so that only ``T_g`` *plus* a channel mix aligns it
    (the control of the ``"mix"`` mode). The search is the same as :func:`scale_alignment`'s
    (same grid, refinement and region), so a search that cannot scale fails it.

    Returns:
        ``(rows, floor)``: one :class:`ScaleAlignment` per ``s`` and the half-pixel
        interpolation floor of the same features (:func:`interpolation_floor`'s rule).
    """
    ref = _control_features(images, None)

    def moved_for(s, t=(0.0, 0.0)):
        return _control_features(transform(images, similarity(0.0, math.log(s), t=t)), mix)

    rows = _scale_rows(moved_for, ref, scales, (mode,), refine_iters)
    size = images.shape[-1]
    floor = search_alignment(moved_for(1.0, (1.0 / size, 1.0 / size)), ref,
                             SearchSpace(refine=("tx", "ty")), mode=mode, radius=RADIUS).error
    return rows, floor


def map_powers_symbolic() -> MapPowersSymbolic:
    """sympy: |det| = 1 from area preservation; powers of rotations bounded, of shears and
    scalings unbounded; conjugates of rotations bounded."""
    import sympy as sp

    s, k, th, n = sp.symbols("s k theta n", real=True)
    nn_ = sp.symbols("n", integer=True, positive=True)
    # Area: ∫ λ(A x) dx = ∫ λ / |det A|. Invariance λ∘A = λ with 0 < ∫|λ| < ∞ forces |det A| = 1.
    scale = sp.Matrix([[s, 0], [0, s]])
    det_scale_solutions = sp.solve(sp.Eq(sp.Abs(scale.det()), 1), s)
    shear = sp.Matrix([[1, k], [0, 1]])
    shear_pow = sp.simplify(shear**nn_)
    shear_unbounded = sp.simplify(shear_pow[0, 1] - nn_ * k) == 0  # grows linearly in n
    rot = sp.Matrix([[sp.cos(th), -sp.sin(th)], [sp.sin(th), sp.cos(th)]])
    rot_pow = sp.simplify(rot**3)
    rot_pow_ok = sp.simplify(rot_pow - rot.subs(th, 3 * th)) == sp.zeros(2, 2)
    rot_norm = sp.simplify((rot.T * rot)) == sp.eye(2)
    p = sp.Matrix([[2, 1], [0, 1]])
    conj = p * rot * p.inv()
    conj_pow_ok = sp.simplify(conj**3 - p * rot.subs(th, 3 * th) * p.inv()) == sp.zeros(2, 2)
    return MapPowersSymbolic(
        scaling_abs_det_1_only_for_s=[str(v) for v in det_scale_solutions],
        shear_det=str(shear.det()),
        shear_power_n=str(shear_pow),
        shear_powers_unbounded=bool(shear_unbounded),
        rotation_power_is_rotation=bool(rot_pow_ok),
        rotation_orthogonal=bool(rot_norm),
        conjugated_rotation_powers_bounded=bool(conj_pow_ok),
        ok=bool(
            set(det_scale_solutions) == {-1, 1}
            and shear_unbounded
            and rot_pow_ok
            and rot_norm
            and conj_pow_ok
            and shear.det() == 1
        ),
    )


def classify_maps(maps: dict[str, torch.Tensor], n_powers: int = 64) -> dict[str, MapClass]:
    """Numerically: |det|, sup_n ||A^n||, ||A^{-n}|| and growth of the orbit of the unit disk.

    A compact invariant receptive field (support ``K`` with ``A K = K``) needs
    ``|det A| = 1`` and bounded ``{A^n : n ∈ Z}``.
    """
    out = {}
    for name, a in maps.items():
        a = a.to(torch.float64)
        det = float(torch.linalg.det(a).abs())
        norms, p, q = [], torch.eye(2, dtype=torch.float64), torch.eye(2, dtype=torch.float64)
        ainv = torch.linalg.inv(a)
        for _ in range(n_powers):
            p, q = p @ a, q @ ainv
            norms.append(
                max(float(torch.linalg.matrix_norm(p, 2)), float(torch.linalg.matrix_norm(q, 2)))
            )
        bounded = max(norms) < 10.0 and norms[-1] < 2 * max(norms[: n_powers // 2])
        out[name] = MapClass(
            abs_det=det,
            max_power_norm=max(norms),
            orbit_radius_n16=norms[15],
            orbit_radius_n64=norms[-1],
            invariant_compact_rf_possible=bool(abs(det - 1) < 1e-9 and bounded),
        )
    return out
