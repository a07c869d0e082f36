"""Best spatial alignment: search ``T_g`` over a dense affine family.

Given ``transformed = Γ(T_h f)`` and ``reference = Γ f`` this finds

    T_g* = argmin_{T_g} E(T_g; Γ, T_h, f)

over ``T_g = [R(angle) H(shear) exp(log_scale) | (tx, ty)]``
(:func:`sampling.geometry.params_to_matrix`, isotropic scale): first on a coarse
product grid (evaluated in batched chunks; the whole grid of errors is kept as
the *error landscape*), then by local refinement of the best grid point with
L-BFGS through the bilinear sampler. Optionally the error is the channel-aware
one (best permutation or best linear mix on top of ``T_g``, see
:mod:`invariance.channels`), so the search finds the strongest alignment a
spatial ST plus channel re-mixing could achieve.

Convention:
    ``T_g`` acts on feature maps as ``(T_g F)(x) = F(T_g^{-1} x)`` in the shared
    normalized frame (:mod:`invariance.warps`); translations are normalized
    (multiply by ``W / 2`` for pixels of the feature map). Angles are radians.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import torch

from sampling import geometry
from sampling.checks import check_choice

from . import channels as ch
from .alignment import MODES, align_channels, check_feature_pair, relative_error
from .warps import central_mask, region_info, warp

__all__ = ["SearchSpace", "SearchResult", "search_alignment", "PARAM_NAMES"]

PARAM_NAMES = ("angle", "log_scale", "shear", "tx", "ty")


def _tuple(x) -> tuple[float, ...]:
    if isinstance(x, torch.Tensor):
        x = x.tolist()
    x = tuple(float(v) for v in x)
    if not x or not all(math.isfinite(v) for v in x):
        raise ValueError("SearchSpace: expected non-empty finite value lists")
    return x


@dataclass(frozen=True)
class SearchSpace:
    """A coarse product grid over ``T_g`` parameters and which ones to refine.

    Attributes:
        angles: radians.
        log_scales: natural-log isotropic scales.
        shears: shear ``k`` of ``[[1, k], [0, 1]]``.
        tx: normalized x translations.
        ty: normalized y translations.
        refine: parameter names (from :data:`PARAM_NAMES`) refined by L-BFGS
            after the grid; the others stay at their grid value.
    """

    angles: tuple = (0.0,)
    log_scales: tuple = (0.0,)
    shears: tuple = (0.0,)
    tx: tuple = (0.0,)
    ty: tuple = (0.0,)
    refine: tuple = PARAM_NAMES

    def __post_init__(self):
        for name in ("angles", "log_scales", "shears", "tx", "ty"):
            object.__setattr__(self, name, _tuple(getattr(self, name)))
        bad = [r for r in self.refine if r not in PARAM_NAMES]
        if bad:
            raise ValueError(f"SearchSpace: expected refine names in {PARAM_NAMES}, got {bad}")
        object.__setattr__(self, "refine", tuple(self.refine))

    @classmethod
    def affine(
        cls,
        *,
        max_angle_deg: float = 60.0,
        angle_step_deg: float = 7.5,
        max_log_scale: float = 0.75,
        log_scale_step: float = 0.125,
        shears=(-0.3, 0.0, 0.3),
        translations=(0.0,),
        refine=PARAM_NAMES,
    ) -> "SearchSpace":
        """A symmetric dense grid: angles, log-scales, shears, translations."""
        na = int(round(max_angle_deg / angle_step_deg))
        ns = int(round(max_log_scale / log_scale_step))
        return cls(
            angles=tuple(math.radians(i * angle_step_deg) for i in range(-na, na + 1)),
            log_scales=tuple(i * log_scale_step for i in range(-ns, ns + 1)),
            shears=tuple(shears),
            tx=tuple(translations),
            ty=tuple(translations),
            refine=refine,
        )

    def grid(self, *, dtype=torch.float64, device=None) -> dict[str, torch.Tensor]:
        """All grid points: ``{name: (G,)}`` in :data:`PARAM_NAMES` order (angle slowest)."""
        pts = list(itertools.product(self.angles, self.log_scales, self.shears, self.tx, self.ty))
        t = torch.tensor(pts, dtype=dtype, device=device)  # (G, 5)
        return {n: t[:, i] for i, n in enumerate(PARAM_NAMES)}

    def size(self) -> int:
        """Number of grid points."""
        return (
            len(self.angles) * len(self.log_scales) * len(self.shears) * len(self.tx) * len(self.ty)
        )


@dataclass
class SearchResult:
    """The minimiser of the alignment error and its landscape.

    Attributes:
        params: refined ``{angle, log_scale, shear, tx, ty}`` of ``T_g*`` (floats).
        matrix: ``(1, 2, 3)`` ``T_g*``.
        error: relative error ``E`` at ``T_g*`` for ``mode`` (float).
        mode: ``"spatial"``, ``"permutation"`` or ``"mix"``.
        coarse_params: best grid point (before refinement).
        coarse_error: its error.
        landscape: ``{name: (G,) grid values, "error_<mode>": (G,) errors}`` for
            every mode evaluated on the grid.
        grid_shape: sizes of the grid axes ``(angles, log_scales, shears, tx, ty)``.
        permutation: ``(C,)`` at ``T_g*`` for mode ``"permutation"``.
        mix: ``(C, C)`` at ``T_g*`` for mode ``"mix"``.
        per_channel: ``(C,)`` per-channel error at ``T_g*``.
        region: central region description.
    """

    params: dict
    matrix: torch.Tensor
    error: float
    mode: str
    coarse_params: dict
    coarse_error: float
    landscape: dict = field(repr=False)
    grid_shape: tuple = ()
    permutation: torch.Tensor | None = None
    mix: torch.Tensor | None = None
    per_channel: torch.Tensor | None = field(default=None, repr=False)
    region: dict = field(default_factory=dict)


def _matrices(p: dict[str, torch.Tensor]) -> torch.Tensor:
    return geometry.params_to_matrix(
        p["angle"], p["log_scale"], p["shear"], torch.stack([p["tx"], p["ty"]], -1)
    )


def _grid_errors(
    moved: torch.Tensor,
    ref_flat: torch.Tensor,
    mask: torch.Tensor,
    mats: torch.Tensor,
    modes: tuple[str, ...],
) -> dict[str, torch.Tensor]:
    """Errors of every candidate ``T_g`` (``mats`` ``(g, 2, 3)``) for each mode."""
    g = mats.shape[0]
    n, c, h, w = moved.shape
    x = moved.unsqueeze(0).expand(g, n, c, h, w).reshape(g * n, c, h, w)  # (g N, C, h, w)
    m = geometry.invert(mats).repeat_interleave(n, 0)  # (g N, 2, 3)
    aligned = warp(x, m).reshape(g, n, c, h, w)  # (g, N, C, h, w)
    a = ch.flatten_region(aligned, mask)  # (g, C, N P)
    bb = (ref_flat * ref_flat).sum()
    out = {}
    for mode in modes:
        if mode == "spatial":
            err2 = ((a - ref_flat) ** 2).sum((-1, -2)) / bb
        elif mode == "permutation":
            dist = ch.channel_distances(ref_flat, a)  # (g, C, C)
            perm = ch.best_permutations(dist)  # (g, C)
            err2 = dist.gather(-1, perm[..., None]).squeeze(-1).sum(-1) / bb
        else:
            mix = ch.best_channel_mix(ref_flat, a)  # (g, C, C)
            err2 = ((mix @ a - ref_flat) ** 2).sum((-1, -2)) / bb
        out[mode] = err2.clamp_min(0).sqrt()
    return out


def search_alignment(
    transformed: torch.Tensor,
    reference: torch.Tensor,
    space: SearchSpace | None = None,
    *,
    mode: str = "spatial",
    landscape_modes: tuple[str, ...] = (),
    radius: float = 0.35,
    refine_iters: int = 40,
    chunk: int = 64,
) -> SearchResult:
    """Find the ``T_g`` that best aligns ``transformed`` to ``reference``.

    Convention:
        ``E(T_g) = ‖A(T_g Γ T_h f) − Γ f‖ / ‖Γ f‖`` over the central disk, where ``A``
        is the identity (``"spatial"``), the best channel permutation or the best
        linear channel mix, fitted over the whole batch; ``(T_g F)(x) = F(T_g^{-1} x)``.
        Computed in float64.

    Args:
        transformed: ``(N, C, h, w)`` feature maps ``Γ(T_h f)``.
        reference: ``(N, C, h, w)`` feature maps ``Γ f``.
        space: the grid (default :meth:`SearchSpace.affine`).
        mode: the error minimised: ``"spatial"``, ``"permutation"`` or ``"mix"``.
        landscape_modes: extra modes whose error is also recorded on the grid.
        radius: central disk radius (normalized).
        refine_iters: L-BFGS iterations (0: grid only).
        chunk: grid points evaluated per batch.

    Returns:
        :class:`SearchResult`.
    """
    fn = "search_alignment"
    dims = check_feature_pair(reference, transformed, mode, fn=fn)
    for m_ in landscape_modes:
        check_choice(m_, MODES, name="landscape_modes", fn=fn)
    space = space or SearchSpace.affine()
    moved = transformed.detach().to(torch.float64)
    ref = reference.detach().to(torch.float64)
    mask = central_mask(dims["h"], dims["w"], radius, device=ref.device)
    ref_flat = ch.flatten_region(ref, mask)  # (C, N P)
    modes = tuple(dict.fromkeys((mode, *landscape_modes)))

    grid = space.grid(dtype=torch.float64, device=ref.device)
    gsize = grid["angle"].shape[0]
    errs = {m_: [] for m_ in modes}
    with torch.no_grad():
        for start in range(0, gsize, chunk):
            part = {k: v[start : start + chunk] for k, v in grid.items()}
            for m_, e in _grid_errors(moved, ref_flat, mask, _matrices(part), modes).items():
                errs[m_].append(e)
    landscape = {k: v for k, v in grid.items()}
    for m_ in modes:
        landscape[f"error_{m_}"] = torch.cat(errs[m_])
    best = int(torch.argmin(landscape[f"error_{mode}"]))
    coarse = {k: float(v[best]) for k, v in grid.items()}
    coarse_error = float(landscape[f"error_{mode}"][best])

    # Fixed channel alignment for the permutation refinement (from the best grid point).
    perm = None
    if mode == "permutation":
        a0 = ch.flatten_region(
            warp(
                moved, geometry.invert(_matrices({k: v[best : best + 1] for k, v in grid.items()}))
            ),
            mask,
        )
        perm = ch.best_permutation(ref_flat, a0)

    def loss_of(p: dict[str, torch.Tensor]) -> torch.Tensor:
        m = geometry.invert(_matrices(p)).expand(dims["N"], 2, 3)
        a = ch.flatten_region(warp(moved, m), mask)  # (C, N P)
        if mode == "permutation":
            a = a[perm]
        elif mode == "mix":
            a = ch.best_channel_mix(ref_flat, a) @ a
        return ((a - ref_flat) ** 2).sum() / (ref_flat * ref_flat).sum()

    params = {
        k: torch.tensor([coarse[k]], dtype=torch.float64, device=ref.device) for k in PARAM_NAMES
    }
    free = [k for k in PARAM_NAMES if k in space.refine]
    if refine_iters > 0 and free:
        for k in free:
            params[k].requires_grad_(True)
        opt = torch.optim.LBFGS(
            [params[k] for k in free], lr=1.0, max_iter=refine_iters, line_search_fn="strong_wolfe"
        )

        def closure():
            opt.zero_grad()
            loss = loss_of(params)
            loss.backward()
            return loss

        try:
            opt.step(closure)
        except (RuntimeError, ValueError):  # a degenerate step: keep the grid point
            pass
        params = {k: v.detach() for k, v in params.items()}
        with torch.no_grad():
            refined = float(loss_of(params).clamp_min(0).sqrt())
        if not math.isfinite(refined) or refined > coarse_error:
            params = {
                k: torch.tensor([coarse[k]], dtype=torch.float64, device=ref.device)
                for k in PARAM_NAMES
            }

    mat = _matrices(params).detach()  # (1, 2, 3)
    with torch.no_grad():
        aligned = warp(moved, geometry.invert(mat).expand(dims["N"], 2, 3))
        if mode == "permutation":
            aligned = ch.apply_permutation(aligned, perm)
            mix = None
        else:
            aligned, _, mix = align_channels(aligned, ref, mask, mode)
        total, per_c, _ = relative_error(aligned, ref, mask)
    return SearchResult(
        {k: float(v) for k, v in params.items()},
        mat,
        float(total),
        mode,
        coarse,
        coarse_error,
        landscape,
        (len(space.angles), len(space.log_scales), len(space.shears), len(space.tx), len(space.ty)),
        perm,
        mix,
        per_c,
        region_info(mask, radius),
    )
