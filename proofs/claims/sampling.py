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

from models.runio import thread_limit as torch_threads
from sampling.experiments import paired_auc_difference
from proofs.registry import CheckContext, Evidence, check, claim

claim("SMP-2", "The bilinear sampler's gradient w.r.t. the sample location depends on the "
      "4 neighbouring pixels only (its 'sub-pixel gradients').",
      source="003 Sec. 3", kind="symbolic")
claim("SMP-6", "The linearized sampler has a wider basin of convergence than bilinear "
      "sampling at downsampling 1x, 2x, 4x and 8x (gradient field of the L2 alignment loss).",
      source="003 Sec. 6.3, Fig. 8", kind="numerical")
claim("SMP-7", "Per-image alignment: when downsampling, the linearized sampler's recall "
      "beats bilinear and multi-scale sampling (Fig. 7); more auxiliary samples help and "
      "collapse prevention matters under upsampling (Figs. 9, 10).",
      source="003 Sec. 6.4, 6.5, Figs. 7, 9, 10", kind="numerical")

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
    parts = [
        Evidence.compare("extra_pixel_symbols", len(extra), "<=", 0,
                         numbers={"extra": extra, "missing": missing}),
        Evidence.compare("missing_neighbour_symbols", len(missing), "<=", 0),
        Evidence.compare("closed_form_mismatch", 0 if closed_ok else 1, "<=", 0),
        Evidence.compare("max_abs_err_autograd_vs_symbolic", max_err, "<=", 1e-10),
        Evidence.compare("max_grad_change_when_redrawing_outside_4", max_change, "<=", 1e-12),
    ]
    ev = Evidence.all_of(parts, summary=(
        f"d/dx = {sp.factor(dfx)}; uses {len(used)} pixel symbols ({len(extra)} outside the 4 "
        f"neighbours); autograd vs symbolic max err {max_err:.1e}; redrawing the other pixels "
        f"changes the grid gradient by {max_change:.1e} ({points} points)"))
    ev.data = {"dfdx": str(dfx), "dfdy": str(dfy)}
    return ev


@check("SMP-2")
def smp2_bilinear_locality(ctx: CheckContext) -> Evidence:
    """Derive the bilinear location derivative in sympy and check it against autograd."""
    return smp2_evaluate(seed=ctx.seed)


# ------------------------------------------------------------------------------ SMP-6
def _natural_or_none():
    try:
        from proofs.experiments.samplers import load_natural_images
        load_natural_images(("camera",), 8)
        return load_natural_images
    except FileNotFoundError:
        return None


def smp6_evaluate(summary: dict, *, downsamples: Sequence[int] = (1, 2, 4, 8)) -> Evidence:
    """SMP-6 criterion: linearized basin fraction > bilinear's at every downsampling.

    Args:
        summary: ``{"bilinear": {"1": {"basin_fraction_mean": ...}, ...},
            "linearized": {...}}`` (the ``summary`` of a gradient-field result).
    """
    margins, numbers = {}, {}
    for d in downsamples:
        lin = summary["linearized"][str(d)]["basin_fraction_mean"]
        bil = summary["bilinear"][str(d)]["basin_fraction_mean"]
        margins[d] = lin - bil
        numbers[f"basin_fraction_{d}x"] = {"linearized": lin, "bilinear": bil}
    worst = min(margins, key=margins.get)
    return Evidence.compare(
        "min_basin_margin_linearized_minus_bilinear", margins[worst], ">", 0.0, numbers=numbers,
        summary="basin fraction (cos > 0.7) linearized vs bilinear: " + ", ".join(
            f"{d}x {numbers[f'basin_fraction_{d}x']['linearized']:.2f} vs "
            f"{numbers[f'basin_fraction_{d}x']['bilinear']:.2f}" for d in downsamples))


def smp6_run(ctx: CheckContext, *, quick: bool) -> dict:
    """Gradient fields of bilinear and linearized on natural images (sizes below)."""
    from proofs.experiments.samplers import GradientFieldConfig, gradient_field_experiment

    cfg = GradientFieldConfig(image_size=96 if quick else 128, field_images=1 if quick else 3,
                              field_grid=9 if quick else 13, field_extent=0.6)
    with torch_threads(1):
        return gradient_field_experiment(cfg, seed=ctx.seed, device=ctx.device,
                                         methods=("bilinear", "linearized"))


def _smp6(ctx: CheckContext, quick: bool) -> Evidence:
    if _natural_or_none() is None:
        return Evidence.not_run("natural images (skimage.data) are not available")
    res = smp6_run(ctx, quick=quick)
    ev = smp6_evaluate(res["summary"], downsamples=res["downsamples"])
    ev.data = {k: res[k] for k in ("methods", "downsamples", "summary", "images", "config")}
    from figures.sampling import basin_figure

    ev.figure = ctx.draw(f"smp6_basin{'_quick' if quick else ''}.png", basin_figure, ev.data)
    return ev


@check("SMP-6", name="smp6_gradient_field_quick")
def smp6_quick(ctx: CheckContext) -> Evidence:
    """1 natural image at 96 px, 9x9 offsets, d = 1, 2, 4, 8."""
    return _smp6(ctx, quick=True)


@check("SMP-6", scales=("full",), name="smp6_gradient_field")
def smp6_full(ctx: CheckContext) -> Evidence:
    """3 natural images at 128 px, 13x13 offsets, d = 1, 2, 4, 8."""
    return _smp6(ctx, quick=False)


# ------------------------------------------------------------------------------ SMP-7
def smp7_evaluate(results: dict, *, downsamples: Sequence[int], dataset: str = "natural"
                  ) -> Evidence:
    """SMP-7 criterion: at every downsampling ``d > 1`` given, linearized recall AUC exceeds
    both bilinear's and multi-scale's.

    Args:
        results: ``{dataset: {method: {str(d): {"auc": ...}}}}`` (an alignment result's
            ``results``).
        downsamples: the factors to compare (those ``> 1`` are used).
    """
    res = results[dataset]
    numbers, margins = {}, {}
    for d in [d for d in downsamples if d > 1]:
        a = {m: res[m][str(d)]["auc"] for m in ("linearized", "bilinear", "multiscale")}
        numbers[f"recall_auc_{d}x"] = a
        margins[d] = a["linearized"] - max(a["bilinear"], a["multiscale"])
    if not margins:
        raise ValueError("smp7_evaluate: expected at least one downsampling factor > 1")
    worst = min(margins, key=margins.get)
    summary = f"{dataset} recall AUC (lin / bil / ms): " + ", ".join(
        f"{d}x {v['linearized']:.2f} / {v['bilinear']:.2f} / {v['multiscale']:.2f}"
        for d, v in ((k, numbers[f'recall_auc_{k}x']) for k in margins))
    if all("errors" in res[m][str(d)] for m in ("linearized", "multiscale") for d in margins):
        # Not part of the rule: how well the trials resolve linearized vs multi-scale.
        cis = {}
        for d in margins:
            c = paired_auc_difference(
                torch.tensor([float(x) for x in res["linearized"][str(d)]["errors"]]),
                torch.tensor([float(x) for x in res["multiscale"][str(d)]["errors"]]),
                max_threshold=0.5)
            cis[d] = [c["diff"], c["lo"], c["hi"]]
            numbers[f"auc_lin_minus_ms_95ci_{d}x"] = cis[d]
        summary += "; lin - ms, 95% paired bootstrap interval: " + ", ".join(
            f"{d}x {v[0]:+.3f} [{v[1]:+.3f}, {v[2]:+.3f}]" for d, v in cis.items())
    return Evidence.compare(
        "min_auc_margin_linearized_minus_best_baseline", margins[worst], ">", 0.0,
        numbers=numbers, summary=summary)


def smp7_run(ctx: CheckContext, *, quick: bool) -> dict:
    """Alignment on natural images (paired trials) at the sizes below."""
    from proofs.experiments.samplers import AlignmentConfig, alignment_experiment

    cfg = AlignmentConfig(image_size=64 if quick else 80, trials=24 if quick else 48,
                          steps=100 if quick else 200, lr=0.01)
    ds = (4, 8) if quick else (1, 2, 4, 8)
    with torch_threads(1):
        return alignment_experiment(cfg, seed=ctx.seed, device=ctx.device, downsamples=ds,
                                    datasets=("natural",))


def _smp7(ctx: CheckContext, quick: bool) -> Evidence:
    if _natural_or_none() is None:
        return Evidence.not_run("natural images (skimage.data) are not available")
    res = smp7_run(ctx, quick=quick)
    ev = smp7_evaluate(res["results"], downsamples=res["downsamples"])
    ev.data = {k: res[k] for k in ("methods", "downsamples", "thresholds", "trials", "config")}
    ev.data["results"] = {dn: {m: {d: {kk: vv for kk, vv in c.items() if kk != "errors"}
                                   for d, c in byd.items()} for m, byd in r.items()}
                          for dn, r in res["results"].items()}
    from figures.sampling import alignment_figure

    ev.figure = ctx.draw(f"smp7_alignment{'_quick' if quick else ''}.png", alignment_figure,
                         ev.data)
    return ev


@check("SMP-7", name="smp7_alignment_quick")
def smp7_quick(ctx: CheckContext) -> Evidence:
    """24 trials on natural images at 64 px, d = 4, 8, 100 Adam steps."""
    return _smp7(ctx, quick=True)


@check("SMP-7", scales=("full",), name="smp7_alignment")
def smp7_full(ctx: CheckContext) -> Evidence:
    """48 trials on natural images at 80 px, d = 1, 2, 4, 8, 200 Adam steps."""
    return _smp7(ctx, quick=False)


def smp7_ablation_evaluate(k_auc: dict, collapse_auc: dict) -> Evidence:
    """Ablation criteria: ``AUC(K=32) > AUC(K=4)`` (Fig. 10a) and, at 4x upsampling,
    ``AUC(collapse prevention on) > AUC(off)`` (Fig. 10b).

    Args:
        k_auc: ``{4: auc, 32: auc}``.
        collapse_auc: ``{"on": auc, "off": auc}``.
    """
    return Evidence.all_of([
        Evidence.compare("auc_K32_minus_K4", k_auc[32] - k_auc[4], ">", 0.0,
                         numbers={"auc_K4": k_auc[4], "auc_K32": k_auc[32]}),
        Evidence.compare("auc_collapse_on_minus_off_4x_up",
                         collapse_auc["on"] - collapse_auc["off"], ">", 0.0, numbers={"auc_collapse_on": collapse_auc["on"],
                                            "auc_collapse_off": collapse_auc["off"]}),
    ], summary=(f"K=4 {k_auc[4]:.2f} vs K=32 {k_auc[32]:.2f} (4x down); collapse prevention on "
                f"{collapse_auc['on']:.2f} vs off {collapse_auc['off']:.2f} (4x up)"))


@check("SMP-7", scales=("full",), name="smp7_ablations")
def smp7_ablations(ctx: CheckContext) -> Evidence:
    """K in {4, 32} at 4x down (64 px images) and collapse prevention on/off at 4x up (32 px)."""
    if _natural_or_none() is None:
        return Evidence.not_run("natural images (skimage.data) are not available")
    th_max = 0.5
    with torch_threads(1):
        aucs = _ablation_aucs(ctx, th_max)
    return smp7_ablation_evaluate({4: aucs["K4"], 32: aucs["K32"]},
                                  {"on": aucs["on"], "off": aucs["off"]})


def _ablation_aucs(ctx: CheckContext, th_max: float) -> dict:
    from proofs.experiments.samplers import NATURAL_IMAGES, trial_setup, load_natural_images
    from sampling import experiments as ex

    aucs = {}
    for key, size, d, opts in (("K4", 64, 4, {"num_samples": 4}),
                               ("K32", 64, 4, {"num_samples": 32}),
                               ("on", 32, 0.25, {"collapse_noise": True}),
                               ("off", 32, 0.25, {"collapse_noise": False})):
        images, _ = load_natural_images(NATURAL_IMAGES, size)
        idx, pert = trial_setup(images.shape[0], 24, ctx.seed, "cpu")
        r = ex.align_images(images[idx].to(ctx.device), perturbation=pert.to(ctx.device),
                            method="linearized", steps=100, lr=0.01, downsample=d,
                            method_options=opts,
                            generator=torch.Generator(device=ctx.device).manual_seed(ctx.seed))
        aucs[key] = ex.recall_auc(r.errors, th_max)
    return aucs


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
    return ev


@check("SMP-6", name="smp6_paper_record")
def smp6_paper_record(ctx: CheckContext) -> Evidence:
    """The committed paper-scale gradient field (6 images, 21^2 offsets) judged by SMP-6's rule."""
    return _judge_record(ctx, "gradient-field", lambda r: smp6_evaluate(
        r["summary"], downsamples=r["downsamples"]))


@check("SMP-7", name="smp7_alignment_paper_record")
def smp7_alignment_paper_record(ctx: CheckContext) -> Evidence:
    """The committed paper-scale alignment (80 trials, 384 px, 500 steps) judged by SMP-7's rule."""
    return _judge_record(ctx, "alignment", lambda r: smp7_evaluate(
        r["results"], downsamples=r["downsamples"]))


def smp7_ablation_aucs_from_records(k_rec: dict, collapse_rec: dict) -> tuple[dict, dict]:
    """``({4: auc, 32: auc}, {"on": auc, "off": auc})`` at 4x down / 4x up from ablation records."""
    k_auc = {int(e["options"]["num_samples"]): e["auc"] for e in k_rec["entries"]
             if e["method"] == "linearized"}
    up4 = [e for e in collapse_rec["entries"] if e["group"] == "4x"]
    collapse_auc = {e["variant"]: e["auc"] for e in up4}
    return k_auc, collapse_auc


@check("SMP-7", name="smp7_ablations_paper_record")
def smp7_ablations_paper_record(ctx: CheckContext) -> Evidence:
    """The committed paper-scale K and collapse-prevention ablations judged by SMP-7's rule."""
    k_rec, missing = _paper_record(ctx, "ablation-k")
    if missing:
        return missing
    c_rec, missing = _paper_record(ctx, "ablation-collapse")
    if missing:
        return missing
    ev = smp7_ablation_evaluate(*smp7_ablation_aucs_from_records(k_rec, c_rec))
    ev.summary = f"{ev.summary}; {_record_note(k_rec)}"
    return ev
