"""SMP-2, SMP-6, SMP-7: bilinear locality, and the gradient-field / alignment experiments of 003.

SMP-1, -3, -4, -5 (properties of the linearized sampler itself) are registered by
:mod:`proofs.claims.sampling_core`, imported here so that loading this module
loads the whole SMP family.

Every check is split into a *run* (produce numbers) and an *evaluate* (numbers ->
:class:`~proofs.registry.Evidence`), so tests can feed the evaluate step a
deliberately wrong derivative or an inverted comparison and see it fail.
"""

from __future__ import annotations

import proofs.claims.sampling_core  # noqa: F401 - registers SMP-1, SMP-3, SMP-4, SMP-5

from collections.abc import Sequence
from functools import lru_cache

import sympy as sp
import torch
import torch.nn.functional as F

import numpy as np

from models.runio import thread_limit as torch_threads
from proofs.claims.seeded import Part, judge, over_seeds
from proofs.registry import CheckContext, Evidence, check, claim
from proofs.stats import paired_difference_ci, units_mean_ci
from sampling.experiments import trial_auc_scores

claim("SMP-2", "The bilinear sampler's gradient w.r.t. the sample location depends on the "
      "4 neighbouring pixels only (its 'sub-pixel gradients').",
      source="003 Sec. 3", kind="symbolic")
claim("SMP-6", "The linearized sampler has a wider basin of convergence than bilinear "
      "sampling at downsampling 1x, 2x, 4x and 8x (gradient field of the L2 alignment loss).",
      source="003 Sec. 6.3, Fig. 8", kind="numerical",
      note="Issue 23: intervals by the project's rule (proofs.stats.units_mean_ci): Student-t "
      "over the 5 seeds of each seed's mean margin (was a hierarchical percentile bootstrap, "
      "coverage ~0.83 at 5 seeds), and Student-t over the paper record's 6 images (was a "
      "6-value percentile bootstrap).")
claim("SMP-7", "Per-image alignment, 003's protocol (one bilinearly downsampled target per "
      "trial for every sampler): when downsampling, the linearized sampler's recall "
      "beats bilinear and multi-scale sampling (Fig. 7), and bilinear even without "
      "downsampling (Sec. 6.4); a larger sigma (wider auxiliary spread) aligns better "
      "(Fig. 9a); more auxiliary samples help (every doubling of K) and collapse prevention "
      "matters under upsampling (Fig. 10).",
      source="003 Sec. 6.4, 6.5, Figs. 7, 9, 10", kind="numerical",
      note="Issue 23: intervals by the project's rule (Student-t over seeds of each seed's "
      "mean paired AUC difference; a one-seed record: over its trials, bootstrap at >= 30). "
      "The paper-record checks judge a record made by 003's protocol (common bilinear target) "
      "by the same rules and say 'inconclusive: record made by another protocol' only when "
      "the record's config says it was not (the committed H100 record: own target). Added "
      "(issue 23): the sigma ablation of Fig. 9 (sigma in {1, 3, 6} px at 4x down, every "
      "adjacent pair's AUC difference above 0: 003 Sec. 6.5, a wider spread 'translates into "
      "better image alignment results'; 'at the cost of final accuracy' is not judged), and "
      "Sec. 6.4's 'significantly better than bilinear sampling, even when there is no "
      "downsampling' (the full check aligns at d = 1 too; linearized - bilinear judged, "
      "linearized - multi-scale at 1x reported: 003 claims it only 'if there is any "
      "downsampling'). Not done: the paper-record ablation check reads no sigma record, and "
      "the records are not yet re-run by 003's protocol.")

# ------------------------------------------------------------------------------ SMP-2
#: Pixels ``I[i, j]`` (row i, column j) of the symbolic neighbourhood, relative to the
#: top-left neighbour of the sample; the 4 neighbours are i, j in {0, 1}.
NEIGHBOURHOOD = range(-1, 3)
FX, FY = sp.symbols("f_x f_y", real=True)  # position inside the cell, each in (0, 1)
PIXELS = {(i, j): sp.Symbol(f"I_{i}_{j}".replace("-", "m"), real=True)
          for i in NEIGHBOURHOOD for j in NEIGHBOURHOOD}
FOUR_NEIGHBOURS = frozenset(PIXELS[(i, j)] for i in (0, 1) for j in (0, 1))


def _tent_on_cell(offset: int, f: sp.Symbol) -> sp.Expr:
    """The tent kernel ``k(f - offset)`` on the open cell ``f in (0, 1)`` (:func:`_tent_branch`)."""
    return _tent_branch(offset).subs(_CELL, f)


_CELL = sp.Symbol("c", real=True)


@lru_cache(maxsize=None)
def _tent_branch(offset: int) -> sp.Expr:
    """The bilinear (tent) kernel ``k(f - offset)`` restricted to the open cell ``f in (0, 1)``.

    ``k(t) = max(0, 1 - |t|)`` is written as a Piecewise; sympy's
    ``as_expr_set_pairs`` finds the single branch active on the whole cell (its
    breakpoints are integers, so one branch covers the open cell).
    """
    t = sp.Symbol("t", real=True)
    k = sp.Piecewise((1 + t, (t > -1) & (t <= 0)), (1 - t, (t > 0) & (t < 1)), (0, True))
    pairs = k.subs(t, _CELL - offset).as_expr_set_pairs(sp.Interval.open(0, 1))
    full = [e for e, s in pairs if s == sp.Interval.open(0, 1)]
    if len(full) != 1:  # pragma: no cover - would mean a breakpoint inside the cell
        raise ArithmeticError(f"tent kernel at offset {offset} is not one branch on (0, 1)")
    return full[0]


def bilinear_interpolant() -> sp.Expr:
    """``f(f_x, f_y) = sum_{i,j} I[i,j] k(f_x - j) k(f_y - i)`` over a 4x4 neighbourhood.

    Convention: ``(f_x, f_y)`` is the sample's pixel position minus that of its
    top-left neighbour ``I[0, 0]``; x along columns ``j``, y along rows ``i``.
    """
    return sum(PIXELS[(i, j)] * _tent_on_cell(j, FX) * _tent_on_cell(i, FY)
               for i in NEIGHBOURHOOD for j in NEIGHBOURHOOD)


@lru_cache(maxsize=1)
def bilinear_location_derivative() -> tuple[sp.Expr, sp.Expr]:
    """``(df/df_x, df/df_y)`` of :func:`bilinear_interpolant`, in intensity per pixel."""
    f = bilinear_interpolant()
    return sp.expand(sp.diff(f, FX)), sp.expand(sp.diff(f, FY))


def smp2_evaluate(derivative: tuple[sp.Expr, sp.Expr] | None = None, *, seed: int = 0,
                  points: int = 64) -> Evidence:
    """SMP-2 from a symbolic derivative ``(d/df_x, d/df_y)`` (default: derived here).

    Three parts, all must hold:

    1. *symbolic*: the derivative's pixel symbols are exactly the 4 neighbours;
    2. *closed form*: it equals ``d/df_x = (1 - f_y)(I01 - I00) + f_y (I11 - I10)``
       (and the transpose for ``d/df_y``);
    3. *numerical*: for random float64 images and off-lattice sample points, the
       autograd gradient of ``F.grid_sample`` w.r.t. the grid (converted to
       pixels) equals the derivative evaluated there, and it is unchanged
       (to 1e-12) when every pixel outside the 4 neighbours is redrawn.
    """
    dfx, dfy = derivative if derivative is not None else bilinear_location_derivative()
    syms = set(PIXELS.values())
    used = (dfx.free_symbols | dfy.free_symbols) & syms
    extra = sorted(str(s) for s in used - FOUR_NEIGHBOURS)
    missing = sorted(str(s) for s in FOUR_NEIGHBOURS - used)
    i00, i01, i10, i11 = (PIXELS[(0, 0)], PIXELS[(0, 1)], PIXELS[(1, 0)], PIXELS[(1, 1)])
    closed_x = (1 - FY) * (i01 - i00) + FY * (i11 - i10)
    closed_y = (1 - FX) * (i10 - i00) + FX * (i11 - i01)
    # both sides are polynomials in (f_x, f_y, I): expanding decides equality exactly
    closed_ok = sp.expand(dfx - closed_x) == 0 and sp.expand(dfy - closed_y) == 0

    # numerical: autograd of F.grid_sample vs the derivative, and locality
    g = torch.Generator().manual_seed(seed)
    h = w = 8
    img = torch.rand(1, 1, h, w, generator=g, dtype=torch.float64)
    # pixel positions with both neighbours and one more pixel on each side inside
    px = 1 + torch.rand(points, generator=g, dtype=torch.float64) * (w - 3)
    py = 1 + torch.rand(points, generator=g, dtype=torch.float64) * (h - 3)
    px = torch.where((px - px.floor()).abs() < 1e-3, px + 0.01, px)  # off the lattice
    py = torch.where((py - py.floor()).abs() < 1e-3, py + 0.01, py)

    def grid_grad(image, x, y):
        gx = (2 * x + 1) / w - 1  # pixel -> normalized, align_corners=False
        gy = (2 * y + 1) / h - 1
        grid = torch.stack([gx, gy], -1).view(1, 1, -1, 2).requires_grad_(True)  # (1, 1, P, 2)
        out = F.grid_sample(image, grid, mode="bilinear", align_corners=False)
        (gr,) = torch.autograd.grad(out.sum(), grid)
        return gr.view(-1, 2) * torch.tensor([2.0 / w, 2.0 / h], dtype=torch.float64)  # per px

    auto = grid_grad(img, px, py)  # (P, 2) d out / d pixel position
    lam = sp.lambdify([FX, FY, *PIXELS.values()], [dfx, dfy], "math")
    max_err, max_change = 0.0, 0.0
    for p in range(points):
        x0, y0 = int(px[p].floor()), int(py[p].floor())
        vals = [float(img[0, 0, y0 + i, x0 + j]) if 0 <= y0 + i < h and 0 <= x0 + j < w else 0.0
                for (i, j) in PIXELS]
        sx, sy = lam(float(px[p] - x0), float(py[p] - y0), *vals)
        max_err = max(max_err, abs(sx - float(auto[p, 0])), abs(sy - float(auto[p, 1])))
        redrawn = torch.rand(1, 1, h, w, generator=g, dtype=torch.float64)
        redrawn[0, 0, y0:y0 + 2, x0:x0 + 2] = img[0, 0, y0:y0 + 2, x0:x0 + 2]
        changed = grid_grad(redrawn, px[p:p + 1], py[p:p + 1])
        max_change = max(max_change, float((changed - auto[p]).abs().max()))
    exact = "a priori: symbolic, exact (0 = holds)"
    parts = [
        Part("extra_pixel_symbols", len(extra), "<=", 0, exact),
        Part("missing_neighbour_symbols", len(missing), "<=", 0, exact),
        Part("closed_form_mismatch", 0 if closed_ok else 1, "<=", 0, exact),
        Part("max_abs_err_autograd_vs_symbolic", max_err, "<=", 1e-10,
             "a priori: float64 rounding of a bilinear interpolant of values in [0, 1]"),
        Part("max_grad_change_when_redrawing_outside_4", max_change, "<=", 1e-12,
             "a priori: float64; pixels outside the stencil enter with weight exactly 0"),
    ]
    ev = judge(parts, {"extra": extra, "missing": missing}, summary=(
        f"d/dx = {sp.factor(dfx)}; uses {len(used)} pixel symbols ({len(extra)} outside the 4 "
        f"neighbours); autograd vs symbolic max err {max_err:.1e}; redrawing the other pixels "
        f"changes the grid gradient by {max_change:.1e} ({points} points)"))
    ev.data = {"dfdx": str(dfx), "dfdy": str(dfy)}
    return ev


@check("SMP-2")
def smp2_bilinear_locality(ctx: CheckContext) -> Evidence:
    """Derive the bilinear location derivative in sympy and check it against autograd, on
    random images and points of every seed of ``ctx.seeds``."""
    deriv = bilinear_location_derivative()
    runs = {}

    def body(seed):
        runs[seed] = smp2_evaluate(deriv, seed=seed)
        return runs[seed]

    ev = over_seeds(ctx, body)
    first = runs[ctx.seeds[0]]
    ev.summary = f"{first.summary}; in each of {len(ctx.seeds)} seeds"
    ev.data = first.data
    return ev


# ------------------------------------------------------------------------------ SMP-6
def _natural_or_none():
    try:
        from proofs.experiments.samplers import load_natural_images
        load_natural_images(("camera",), 8)
        return load_natural_images
    except FileNotFoundError:
        return None


def smp6_evaluate(summary: dict, *, downsamples: Sequence[int] = (1, 2, 4, 8)) -> Evidence:
    """SMP-6 criterion on one run: linearized basin fraction > bilinear's at every
    downsampling, judged on a 95 % paired interval over the run's images (per image
    ``basin_fraction_per_image``; Student-t below 30 images, :func:`proofs.stats.units_mean_ci`
    -- the paper record's 6 images were a percentile bootstrap before issue 23); with a
    single image, the interval cannot be formed and the part is inconclusive.

    Args:
        summary: ``{"bilinear": {"1": {"basin_fraction_mean": ..., "basin_fraction_per_image":
            [...]}, ...}, "linearized": {...}}`` (the ``summary`` of a gradient-field result).
    """
    parts, numbers = [], {}
    for d in downsamples:
        lin = summary["linearized"][str(d)]
        bil = summary["bilinear"][str(d)]
        numbers[f"basin_fraction_{d}x"] = {"linearized": lin["basin_fraction_mean"],
                                           "bilinear": bil["basin_fraction_mean"]}
        a = lin.get("basin_fraction_per_image", [lin["basin_fraction_mean"]])
        b = bil.get("basin_fraction_per_image", [bil["basin_fraction_mean"]])
        if len(a) >= 2:
            parts.append(Evidence.from_interval(
                f"basin_margin_linearized_minus_bilinear_{d}x",
                units_mean_ci([[x - y for x, y in zip(a, b)]], seed=d), null=0.0,
                direction=">"))
        else:
            parts.append(Evidence.inconclusive(f"{d}x: one image, no interval"))
    ev = Evidence.all_of(parts, summary="basin fraction (cos > 0.7) linearized vs bilinear: "
                         + ", ".join(f"{d}x {numbers[f'basin_fraction_{d}x']['linearized']:.2f}"
                                     f" vs {numbers[f'basin_fraction_{d}x']['bilinear']:.2f}"
                                     for d in downsamples))
    ev.numbers.update(numbers)
    return ev


def smp6_seeds_evaluate(runs: dict, *, downsamples: Sequence[int]) -> Evidence:
    """SMP-6 over seeds: for each ``d`` the 95 % Student-t interval over seeds (the
    independent units; each seed's mean over its images) of the paired basin margin
    linearized - bilinear must lie above 0 (:func:`proofs.stats.units_mean_ci`; issue 23:
    was a percentile bootstrap over 5 seeds, which covers < 95 %).

    Args:
        runs: ``{seed: summary}`` (gradient-field summaries).
    """
    parts, numbers = [], {}
    for d in downsamples:
        margin = [[a - b for a, b in zip(r["linearized"][str(d)]["basin_fraction_per_image"],
                                         r["bilinear"][str(d)]["basin_fraction_per_image"])]
                  for r in runs.values()]
        ci = units_mean_ci(margin, seed=d)
        parts.append(Evidence.from_interval(f"basin_margin_linearized_minus_bilinear_{d}x", ci,
                                            null=0.0, direction=">"))
        numbers[f"basin_fraction_{d}x_per_seed"] = {
            str(k): {"linearized": r["linearized"][str(d)]["basin_fraction_mean"],
                     "bilinear": r["bilinear"][str(d)]["basin_fraction_mean"]}
            for k, r in runs.items()}
    ev = Evidence.all_of(parts)
    ev.numbers.update(numbers)
    ev.numbers["seeds"] = [int(k) for k in runs]
    ev.summary = (f"basin fraction (cos > 0.7), linearized - bilinear, 95 % interval over "
                  f"{len(runs)} seeds x images: " + ", ".join(
                      f"{d}x {ev.numbers[f'basin_margin_linearized_minus_bilinear_{d}x']['label']}"
                      for d in downsamples))
    return ev


def smp6_run(ctx: CheckContext, *, quick: bool, seed: int | None = None) -> dict:
    """Gradient fields of bilinear and linearized on natural images (sizes below)."""
    from proofs.experiments.samplers import GradientFieldConfig, gradient_field_experiment

    cfg = GradientFieldConfig(image_size=96 if quick else 128, field_images=1 if quick else 3,
                              field_grid=9 if quick else 13, field_extent=0.6)
    with torch_threads(1):
        return gradient_field_experiment(cfg, seed=ctx.seed if seed is None else seed,
                                         device=ctx.device,
                                         methods=("bilinear", "linearized"))


def _smp6(ctx: CheckContext, quick: bool) -> Evidence:
    if _natural_or_none() is None:
        return Evidence.not_run("natural images (skimage.data) are not available")
    res = {s: smp6_run(ctx, quick=quick, seed=s) for s in ctx.seeds}
    first = res[ctx.seeds[0]]
    ev = smp6_seeds_evaluate({s: r["summary"] for s, r in res.items()},
                             downsamples=first["downsamples"])
    ev.data = {k: first[k] for k in ("methods", "downsamples", "summary", "images", "config")}
    from figures.sampling import basin_figure

    ev.figure = ctx.draw(f"smp6_basin{'_quick' if quick else ''}.png", basin_figure, ev.data)
    return ev


@check("SMP-6", scales=("quick",), name="smp6_gradient_field_quick")
def smp6_quick(ctx: CheckContext) -> Evidence:
    """1 natural image at 96 px, 9x9 offsets, d = 1, 2, 4, 8; every seed of ``ctx.seeds``."""
    return _smp6(ctx, quick=True)


@check("SMP-6", scales=("full",), name="smp6_gradient_field")
def smp6_full(ctx: CheckContext) -> Evidence:
    """3 natural images at 128 px, 13x13 offsets, d = 1, 2, 4, 8; every seed of ``ctx.seeds``."""
    return _smp6(ctx, quick=False)


# ------------------------------------------------------------------------------ SMP-7
#: Largest recall threshold (input normalized units) of the AUC: 003 Fig. 7's axis.
TH_MAX = 0.5
BASELINES = ("bilinear", "multiscale")


def smp7_scores(results_by_seed: dict, *, dataset: str = "natural") -> dict:
    """``{method: {d: (S, T) per-trial AUC scores}}`` from ``{seed: alignment results}``."""
    out: dict = {}
    for res in results_by_seed.values():
        for m, byd in res[dataset].items():
            for d, c in byd.items():
                e = torch.tensor([float(x) for x in c["errors"]], dtype=torch.float64)
                out.setdefault(m, {}).setdefault(d, []).append(
                    trial_auc_scores(e, TH_MAX).tolist())
    return {m: {d: np.asarray(v) for d, v in byd.items()} for m, byd in out.items()}


def smp7_interval_evaluate(scores: dict, *, downsamples: Sequence[int], seed: int = 0
                           ) -> Evidence:
    """SMP-7 (alignment) by intervals: for every ``d > 1`` and each baseline, the 95 %
    interval of the paired AUC difference linearized - baseline must lie above 0:
    Student-t over seeds (each with its own trials and sampler noise stream) of the per-seed
    mean difference; one seed: over its trials (bootstrap at >= 30 trials, else Student-t)
    (:func:`proofs.stats.units_mean_ci`; issue 23: was a hierarchical percentile bootstrap
    over 5 seeds).

    Args:
        scores: ``{method: {str(d): (S, T) per-trial AUC scores}}`` (:func:`smp7_scores`).
        downsamples: the factors (those ``> 1`` are judged).
    """
    ds = [d for d in downsamples if d > 1]
    if not ds:
        raise ValueError("smp7_interval_evaluate: expected at least one downsampling factor "
                         f"> 1, got {list(downsamples)}")
    parts, auc = [], {}
    if 1 in downsamples and "1" in scores["linearized"]:
        # 003 Sec. 6.4: "significantly better than ... bilinear sampling, even when there is
        # no downsampling"; multi-scale only "if there is any downsampling at all" (at 1x it
        # is reported, not judged)
        lin1 = scores["linearized"]["1"]
        auc["recall_auc_1x"] = {m: float(scores[m]["1"].mean())
                                for m in ("linearized", *BASELINES)}
        ci = units_mean_ci(lin1 - scores["bilinear"]["1"], seed=seed + 1)
        parts.append(Evidence.from_interval("auc_linearized_minus_bilinear_1x", ci, null=0.0,
                                            direction=">"))
        ms = units_mean_ci(lin1 - scores["multiscale"]["1"], seed=seed + 101)
        auc["auc_linearized_minus_multiscale_1x_reported"] = {
            **ms.as_dict(), "label": f"{ms.estimate:.4g} [{ms.lo:.4g}, {ms.hi:.4g}]"}
    for d in ds:
        lin = scores["linearized"][str(d)]
        auc[f"recall_auc_{d}x"] = {m: float(scores[m][str(d)].mean())
                                   for m in ("linearized", *BASELINES)}
        for b in BASELINES:
            ci = units_mean_ci(lin - scores[b][str(d)], seed=seed + d)
            parts.append(Evidence.from_interval(f"auc_linearized_minus_{b}_{d}x", ci,
                                                null=0.0, direction=">"))
    ev = Evidence.all_of(parts)
    ev.numbers.update(auc)
    s, t = scores["linearized"][str(ds[0])].shape
    ev.summary = (f"003 protocol (common bilinear target), {s} seeds x {t} trials: recall AUC "
                  "lin / bil / ms: " + ", ".join(
                      f"{d}x {auc[f'recall_auc_{d}x']['linearized']:.2f} / "
                      f"{auc[f'recall_auc_{d}x']['bilinear']:.2f} / "
                      f"{auc[f'recall_auc_{d}x']['multiscale']:.2f}" for d in ds)
                  + ("; no downsampling, lin - bil: "
                     + ev.numbers["auc_linearized_minus_bilinear_1x"]["label"]
                     if "auc_linearized_minus_bilinear_1x" in ev.numbers else "")
                  + "; lin - ms: " + ", ".join(
                      f"{d}x {ev.numbers[f'auc_linearized_minus_multiscale_{d}x']['label']}"
                      for d in ds))
    return ev


def smp7_run(ctx: CheckContext, *, quick: bool, seed: int | None = None,
             target: str = "common") -> dict:
    """Alignment on natural images (paired trials) at the sizes below, one seed."""
    from proofs.experiments.samplers import AlignmentConfig, alignment_experiment

    cfg = AlignmentConfig(image_size=64 if quick else 80, trials=24,
                          steps=100 if quick else 150, lr=0.01)
    ds = (4, 8) if quick else (1, 2, 4, 8)  # full: 1x for 003's "even without downsampling"
    with torch_threads(1):
        return alignment_experiment(cfg, seed=ctx.seed if seed is None else seed,
                                    device=ctx.device, downsamples=ds, datasets=("natural",),
                                    target=target)


def _smp7(ctx: CheckContext, quick: bool) -> Evidence:
    if _natural_or_none() is None:
        return Evidence.not_run("natural images (skimage.data) are not available")
    res = {s: smp7_run(ctx, quick=quick, seed=s) for s in ctx.seeds}
    first = res[ctx.seeds[0]]
    ev = smp7_interval_evaluate(smp7_scores({s: r["results"] for s, r in res.items()}),
                                downsamples=first["downsamples"], seed=ctx.seed)
    ev.numbers["seeds"] = list(ctx.seeds)
    ev.numbers["protocol"] = first["config"]["loss"]
    ev.data = {k: first[k] for k in ("methods", "downsamples", "thresholds", "trials", "config")}
    ev.data["results"] = {dn: {m: {d: {kk: vv for kk, vv in c.items() if kk != "errors"}
                                   for d, c in byd.items()} for m, byd in r.items()}
                          for dn, r in first["results"].items()}
    from figures.sampling import alignment_figure

    ev.figure = ctx.draw(f"smp7_alignment{'_quick' if quick else ''}.png", alignment_figure,
                         ev.data)
    return ev


@check("SMP-7", scales=("quick",), name="smp7_alignment_quick")
def smp7_quick(ctx: CheckContext) -> Evidence:
    """24 trials per seed on natural images at 64 px, d = 4, 8, 100 Adam steps."""
    return _smp7(ctx, quick=True)


@check("SMP-7", scales=("full",), name="smp7_alignment")
def smp7_full(ctx: CheckContext) -> Evidence:
    """24 trials per seed on natural images at 80 px, d = 2, 4, 8, 150 Adam steps."""
    return _smp7(ctx, quick=False)


def smp7_curve_evaluate(k_scores: dict, collapse_scores: dict, *, seed: int = 0,
                        sigma_scores: dict | None = None) -> Evidence:
    """Ablations judged on intervals over the whole curves, no endpoint picks.

    * K (Fig. 10a, 4x down): for every adjacent pair ``K -> 2K`` of the curve, the paired
      interval of ``AUC(2K) - AUC(K)`` must lie above 0 ("more samples help").
    * Collapse prevention (Fig. 10b): at every upsampling ``u > 1`` of the curve, the paired
      interval of ``AUC(on) - AUC(off)`` must lie above 0 (at 1x no claim; reported).

    * sigma (Fig. 9a, 4x down): for every adjacent pair ``sigma_a < sigma_b`` of the curve,
      the paired interval of ``AUC(sigma_b) - AUC(sigma_a)`` must lie above 0 (003 Sec. 6.5:
      "the wider spatial extent covered by the random samples translates into better image
      alignment results"; Fig. 9's "at the cost of final accuracy" is not judged: AUC over
      [0, TH_MAX] is the alignment result 003 plots).

    Args:
        k_scores: ``{K: (S, T) per-trial AUC scores}``.
        collapse_scores: ``{(u, "on" | "off"): (S, T)}``.
        sigma_scores: ``{sigma: (S, T)}`` (None: no sigma curve).
    """
    parts, numbers = [], {}
    sg = sorted(sigma_scores or {})
    for a, b in zip(sg, sg[1:]):
        ci = _ci(sigma_scores[b] - sigma_scores[a], seed + 7)
        parts.append(Evidence.from_interval(f"auc_sigma{b:g}_minus_sigma{a:g}", ci, null=0.0,
                                            direction=">"))
    if sg:
        numbers["auc_by_sigma"] = {f"{k:g}": float(np.mean(v)) for k, v in sigma_scores.items()}
    ks = sorted(k_scores)
    for a, b in zip(ks, ks[1:]):
        ci = _ci(k_scores[b] - k_scores[a], seed)
        parts.append(Evidence.from_interval(f"auc_K{b}_minus_K{a}", ci, null=0.0,
                                            direction=">"))
    numbers["auc_by_K"] = {str(k): float(np.mean(v)) for k, v in k_scores.items()}
    ups = sorted({u for u, _ in collapse_scores})
    for u in ups:
        diff = collapse_scores[(u, "on")] - collapse_scores[(u, "off")]
        ci = _ci(diff, seed + u)
        if u > 1:
            parts.append(Evidence.from_interval(f"auc_collapse_on_minus_off_{u}x_up", ci,
                                                null=0.0, direction=">"))
        else:
            numbers[f"auc_collapse_on_minus_off_{u}x_up_reported"] = ci.as_dict()
    numbers["auc_collapse"] = {f"{u}x_{v}": float(np.mean(s))
                               for (u, v), s in collapse_scores.items()}
    ev = Evidence.all_of(parts)
    ev.numbers.update(numbers)
    ev.summary = ("K curve, adjacent doublings: " + ", ".join(
        f"{b} - {a}: {ev.numbers[f'auc_K{b}_minus_K{a}']['label']}" for a, b in zip(ks, ks[1:]))
        + "; collapse prevention on - off: " + ", ".join(
            f"{u}x up {ev.numbers[f'auc_collapse_on_minus_off_{u}x_up']['label']}"
            for u in ups if u > 1)
        + ("; sigma curve, adjacent pairs: " + ", ".join(
            f"{b:g} - {a:g}: {ev.numbers[f'auc_sigma{b:g}_minus_sigma{a:g}']['label']}"
            for a, b in zip(sg, sg[1:])) if sg else ""))
    return ev


def _ci(diff, seed):
    """:func:`proofs.stats.units_mean_ci` of ``(S, T)`` differences: Student-t over seeds
    when ``S >= 2``; else over the trials (bootstrap at >= 30, else Student-t)."""
    return units_mean_ci(diff, seed=seed)


@check("SMP-7", scales=("full",), name="smp7_ablations")
def smp7_ablations(ctx: CheckContext) -> Evidence:
    """K in {4, 8, 16, 32} and sigma in {1, 3, 6} px (003 Fig. 9) at 4x down (64 px), and
    collapse prevention on/off at 1x, 2x, 4x up (32 px); 16 trials per seed of
    ``ctx.seeds``, 003's common bilinear target."""
    if _natural_or_none() is None:
        return Evidence.not_run("natural images (skimage.data) are not available")
    with torch_threads(1):
        per = [_ablation_scores(ctx, s) for s in ctx.seeds]
    k = {kk: np.stack([p["K"][kk] for p in per]) for kk in per[0]["K"]}
    c = {kk: np.stack([p["collapse"][kk] for p in per]) for kk in per[0]["collapse"]}
    sg = {kk: np.stack([p["sigma"][kk] for p in per]) for kk in per[0]["sigma"]}
    ev = smp7_curve_evaluate(k, c, seed=ctx.seed, sigma_scores=sg)
    ev.numbers["seeds"] = list(ctx.seeds)
    return ev


def _ablation_scores(ctx: CheckContext, seed: int, trials: int = 16) -> dict:
    from proofs.experiments.samplers import KS, NATURAL_IMAGES, UPSAMPLINGS, trial_setup
    from proofs.experiments.samplers import load_natural_images
    from sampling import experiments as ex

    from proofs.experiments.samplers import ABLATION_DOWNSAMPLE, SIGMAS

    out = {"K": {}, "collapse": {}, "sigma": {}}
    settings = [("K", k, 64, 4, {"num_samples": k}) for k in KS]
    settings += [("sigma", sg, 64, ABLATION_DOWNSAMPLE, {"sigma": sg}) for sg in SIGMAS]
    settings += [("collapse", (u, "on" if on else "off"), 32, 1.0 / u, {"collapse_noise": on})
                 for u in UPSAMPLINGS for on in (True, False)]
    for group, key, size, d, opts in settings:
        images, _ = load_natural_images(NATURAL_IMAGES, size)
        idx, pert = trial_setup(images.shape[0], trials, seed, "cpu")
        r = ex.align_images(images[idx].to(ctx.device), perturbation=pert.to(ctx.device),
                            method="linearized", steps=100, lr=0.01, downsample=d,
                            method_options=opts, target="common",
                            generator=torch.Generator(device=ctx.device).manual_seed(seed))
        out[group][key] = trial_auc_scores(r.errors, TH_MAX).numpy()
    return out


# ------------------------------------------------------- SMP-6 / SMP-7: the paper-scale record
#: Where ``stnlab experiment ... --scale paper`` results are committed, under the results dir.
PAPER_RECORD = "samplers-paper"


def _paper_record(ctx: CheckContext, name: str) -> tuple[dict | None, Evidence | None]:
    """The committed paper-scale result ``name`` (e.g. ``"alignment"``), or a not-run Evidence.

    A record at another scale is refused: only 003's sizes (80 trials, 384 px images) count.
    """
    import json
    from pathlib import Path

    where = Path(ctx.results_dir or "results") / PAPER_RECORD / f"{name}.json"
    if not where.exists():
        return None, Evidence.not_run(
            f"no paper-scale record {where}; run `stnlab experiment {name} --scale paper "
            f"--device cuda --out {where.parent}` (a GPU helps)")
    rec = json.loads(where.read_text())
    if rec.get("scale") != "paper":
        return None, Evidence.not_run(f"{where} is at scale {rec.get('scale')!r}, not 'paper'")
    return rec, None


def _record_note(rec: dict) -> str:
    return (f"read from the committed record ({rec['scale']} scale, {rec['device']}, "
            f"{rec['date']}, commit {str(rec['versions'].get('git_sha'))[:7]})")


def _judge_record(ctx: CheckContext, name: str, evaluate) -> Evidence:
    """``evaluate(record)`` of the committed paper-scale record ``name``, its provenance noted."""
    rec, missing = _paper_record(ctx, name)
    if missing:
        return missing
    ev = evaluate(rec)
    ev.summary = f"{ev.summary}; {_record_note(rec)}"
    # the record's numbers are other numbers than this run's: their own names in the claim
    ev.numbers = {f"{k} (paper record)": v for k, v in (ev.numbers or {}).items()}
    return ev


@check("SMP-6", name="smp6_paper_record")
def smp6_paper_record(ctx: CheckContext) -> Evidence:
    """The committed paper-scale gradient field (6 images, 21^2 offsets) judged by SMP-6's rule
    (a paired interval over its images for every d; one seed)."""
    return _judge_record(ctx, "gradient-field", lambda r: smp6_evaluate(
        r["summary"], downsamples=r["downsamples"]))


OTHER_PROTOCOL = ("inconclusive: record made by another protocol -- the committed record "
                  "used the own-target protocol (each sampler against its own rendering at "
                  "the truth), not 003's common bilinear target; reported as a labelled "
                  "diagnostic only")


def _own_target(rec: dict) -> bool:
    loss = str(rec.get("config", {}).get("loss", ""))
    return rec.get("config", {}).get("target", "own") == "own" or "same sampler" in loss


def smp7_alignment_record_evaluate(rec: dict) -> Evidence:
    """SMP-7's alignment rule on a committed record. Made by 003's protocol (common bilinear
    target): judged by :func:`smp7_interval_evaluate` (one seed: intervals over its trials,
    the percentile bootstrap at >= 30 trials, which 003's 80 are); made by another protocol:
    inconclusive with :data:`OTHER_PROTOCOL` and the diagnostic numbers."""
    scores = smp7_scores({0: rec["results"]})
    ds = [d for d in rec["downsamples"] if d > 1]
    if not _own_target(rec):
        ev = smp7_interval_evaluate(scores, downsamples=list(rec["downsamples"]))
        ev.numbers["protocol"] = str(rec.get("config", {}).get("loss", "common target"))
        return ev
    numbers = {}
    for d in ds:
        for b in BASELINES:
            ci = paired_difference_ci(scores["linearized"][str(d)][0],
                                      scores[b][str(d)][0], seed=d)
            numbers[f"diagnostic_auc_linearized_minus_{b}_{d}x"] = {
                **ci.as_dict(), "label": f"{ci.estimate:.3f} [{ci.lo:.3f}, {ci.hi:.3f}]"}
    return Evidence.inconclusive(
        f"{OTHER_PROTOCOL}. Own-target lin - ms (paired over trials): " + ", ".join(
            f"{d}x {numbers[f'diagnostic_auc_linearized_minus_multiscale_{d}x']['label']}"
            for d in ds), numbers)


@check("SMP-7", name="smp7_alignment_paper_record")
def smp7_alignment_paper_record(ctx: CheckContext) -> Evidence:
    """The committed paper-scale alignment (80 trials, 384 px, 500 steps): judged by SMP-7's
    rule when made by 003's protocol; "inconclusive: record made by another protocol" only
    when it was not (:func:`smp7_alignment_record_evaluate`)."""
    rec, missing = _paper_record(ctx, "alignment")
    if missing:
        return missing
    ev = smp7_alignment_record_evaluate(rec)
    ev.summary = f"{ev.summary}; {_record_note(rec)}"
    ev.numbers = {f"{k} (paper record)": v for k, v in ev.numbers.items()}
    return ev


def smp7_ablation_scores_from_records(k_rec: dict, collapse_rec: dict) -> tuple[dict, dict]:
    """``({K: (1, T) scores}, {(u, "on" | "off"): (1, T)})`` from ablation records."""
    def sc(e):
        return trial_auc_scores(torch.tensor([float(x) for x in e["errors"]],
                                             dtype=torch.float64), TH_MAX).numpy()[None]

    k = {int(e["options"]["num_samples"]): sc(e) for e in k_rec["entries"]
         if e["method"] == "linearized"}
    c = {(int(str(e["group"]).rstrip("x")), e["variant"]): sc(e)
         for e in collapse_rec["entries"]}
    return k, c


def smp7_ablations_record_evaluate(k_rec: dict, c_rec: dict) -> Evidence:
    """SMP-7's ablation rule (:func:`smp7_curve_evaluate`) on committed records made by
    003's protocol; inconclusive with :data:`OTHER_PROTOCOL` when either was not."""
    ev = smp7_curve_evaluate(*smp7_ablation_scores_from_records(k_rec, c_rec))
    if _own_target(k_rec) or _own_target(c_rec):
        return Evidence.inconclusive(f"{OTHER_PROTOCOL}. Curves: {ev.summary}",
                                     {f"diagnostic_{k}": v for k, v in ev.numbers.items()})
    return ev


@check("SMP-7", name="smp7_ablations_paper_record")
def smp7_ablations_paper_record(ctx: CheckContext) -> Evidence:
    """The committed paper-scale K and collapse ablations, whole curves (adjacent K pairs,
    every upsampling): judged when made by 003's protocol, "inconclusive: record made by
    another protocol" only when not (:func:`smp7_ablations_record_evaluate`)."""
    k_rec, missing = _paper_record(ctx, "ablation-k")
    if missing:
        return missing
    c_rec, missing = _paper_record(ctx, "ablation-collapse")
    if missing:
        return missing
    ev = smp7_ablations_record_evaluate(k_rec, c_rec)
    ev.summary = f"{ev.summary}; {_record_note(k_rec)}"
    ev.numbers = {f"{k} (paper record)": v for k, v in ev.numbers.items()}
    return ev
