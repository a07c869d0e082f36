"""INV-5, INV-6, INV-7: scalings, isotropic filters, compact invariant receptive fields.

The claims are registered (with their statements) by :mod:`proofs.claims.invariance`,
which this module shares its data, tolerances and helpers with; the measurements are
:mod:`invariance.measures` (plain results), the verdicts are here.
"""

from __future__ import annotations

import math

import torch

from invariance import measures
from invariance.alignment import feature_alignment_error
from invariance.extractors import IsotropicBank, OrientedBank, random_cnn
from invariance.warps import transform
from proofs.claims.invariance import (
    BLUR,
    EXACT_TOL,
    FLOOR_FACTOR,
    INTERP_TOL,
    RADIUS,
    SCALES,
    _one_thread,
    _rot_matrix,
    natural_images,
)
from invariance.conjugacy import conjugacy_report, is_conjugate_to_orthogonal
from proofs.claims.invariance import EXACT_SRC, INTERP_SRC
from proofs.claims.seeded import Part, judge, over_seeds
from proofs.registry import Evidence, check
from sampling import geometry

# ----------------------------------------------------------- measurements (invariance/)
def measure_scales(net, images: torch.Tensor, scales=SCALES, *, modes=("spatial", "mix"),
                   refine_iters: int = 20) -> list[dict]:
    """:func:`invariance.measures.scale_alignment` as evidence rows."""
    return [r.to_row() for r in measures.scale_alignment(net, images, scales, modes=modes,
                                                         refine_iters=refine_iters)]


interpolation_floor = measures.interpolation_floor


def inv7_symbolic() -> dict:
    """:func:`invariance.measures.map_powers_symbolic` as a dict."""
    return measures.map_powers_symbolic().to_dict()


def classify_maps(maps: dict[str, torch.Tensor], n_powers: int = 64) -> dict[str, dict]:
    """:func:`invariance.measures.classify_maps` as dicts."""
    return {k: v.to_dict() for k, v in measures.classify_maps(maps, n_powers).items()}


# ----------------------------------------------------------------------------- INV-5


FLOOR_SRC = ("derived: FLOOR_FACTOR (2) x the interpolation floor (best error after a "
             "half-pixel shift, which is alignable in theory) of the same extractor and images")
S1_SRC = "a priori: float64 with the mix's 1e-9 ridge (s = 1 needs no resampling)"


def inv5_verdict(rows: list[dict], *, mode: str = "spatial", floor: float) -> Evidence:
    """s = 1 ~0 (<= 1e-6); every s != 1 >= FLOOR_FACTOR x the interpolation floor (of the
    same mode); error grows with |log s| on each side of s = 1."""
    by_s = {r["s"]: r[f"{mode}_error"] for r in rows}
    one = by_s.get(1.0, float("nan"))
    others = [v for s, v in by_s.items() if s != 1.0]
    up = sorted((s, v) for s, v in by_s.items() if s >= 1.0)
    down = sorted(((s, v) for s, v in by_s.items() if s <= 1.0), reverse=True)
    grows = all(b[1] > a[1] for side in (up, down) for a, b in zip(side, side[1:]))
    min_ratio = (min(others) / floor) if others and floor > 0 else float("nan")
    return judge(
        [
            Part("error_at_s1", one, "<=", 1e-6, S1_SRC),
            Part(f"min_{mode}_error_s_ne_1_over_floor", min_ratio, ">=", FLOOR_FACTOR, FLOOR_SRC),
            Part("grows_with_abs_log_s", float(grows), ">=", 1.0,
                 "a priori: strict growth on each side of s = 1 (1 = holds)"),
        ],
        {f"min_{mode}_error_s_ne_1": min(others) if others else float("nan")},
    )


#: INV-5's random CNN (fixed before the 40-seed sweep, on pilot CNNs 900000-900009, which
#: no prove seed uses): 4 conv layers, 5x5 kernels, one 2x2 pool -> a 26 px receptive
#: field at 64 px, so the effect sits well above the interpolation floor (the former 3 x 3x3
#: net, a 10 px field, was at 2.0-3.0 x the floor there; this one at 3.0-4.2 x).
INV5_CNN = dict(depth=4, channels=8, kernel_size=5, pool_after=(1,))
CONTROL_SRC = ("a priori: the claim's own threshold -- a case known to be alignable must come "
               "out below FLOOR_FACTOR x its own interpolation floor with the same search, "
               "else the search (or the threshold) cannot support 'cannot align'")
#: A fixed invertible channel mix for the control of the mix search (any would do).
CONTROL_MIX = ((1.0, 0.7), (-0.4, 1.2))


def search_control(images: torch.Tensor, scales, *, mode: str) -> dict:
    """Positive control of the scale search (:func:`invariance.measures.control_scale_alignment`):
    pointwise features ``[f, f^2]`` (exactly alignable by ``T_s^{-1}``; for ``mode="mix"``
    also channel-mixed by :data:`CONTROL_MIX`), the same search at the same settings.
    ``aligned``: every ``s != 1`` below ``FLOOR_FACTOR`` x the control's own floor."""
    mix = torch.tensor(CONTROL_MIX, dtype=torch.float64) if mode == "mix" else None
    rows, floor = measures.control_scale_alignment(images, scales, mode=mode, mix=mix)
    ratios = {f"{r.s:g}": r.error[mode] / floor for r in rows if r.s != 1.0}
    worst = max(ratios.values())
    return {"extractor": "pointwise [f, f^2]" + (" channel-mixed" if mix is not None else ""),
            "mode": mode, "error_over_floor_by_s": ratios, "floor": floor,
            "max_error_over_floor": worst,
            "aligned": bool(math.isfinite(worst) and worst < FLOOR_FACTOR)}


def with_control(ev: Evidence, control: dict) -> Evidence:
    """``ev`` if the positive control aligned; else inconclusive ("search too weak"): a
    search that cannot align a known-alignable case cannot show that anything is not."""
    ev.numbers["positive_control"] = control
    ev.tolerance_source = "; ".join(x for x in (ev.tolerance_source, CONTROL_SRC) if x)
    if control["aligned"]:
        return ev
    out = Evidence.inconclusive(
        f"search too weak: its positive control ({control['extractor']}, alignable by "
        f"T_s^-1) is left at {control['max_error_over_floor']:.2f} x its floor (must be < "
        f"{FLOOR_FACTOR:g}), so 'cannot align' is not evidence; the claim's own numbers: "
        + (ev.summary or ev.status), dict(ev.numbers), figure=ev.figure, data=ev.data)
    out.tolerance_source = ev.tolerance_source
    return out


def log_slope(rows_by_s: dict[float, float]) -> float:
    """Least-squares slope of ``log error`` against ``|log s|`` over ``s != 1``."""
    pts = [(abs(math.log(s)), math.log(max(v, 1e-300))) for s, v in rows_by_s.items()
           if s != 1.0]
    mx = sum(x for x, _ in pts) / len(pts)
    my = sum(y for _, y in pts) / len(pts)
    sxx = sum((x - mx) ** 2 for x, _ in pts)
    return sum((x - mx) * (y - my) for x, y in pts) / sxx if sxx > 0 else float("nan")


INV5_RULE = ("population rule (fixed before the 40-seed sweep): one random CNN per prove "
             "seed; for each s != 1 the 95 % Student-t interval over CNNs of the mean "
             "log(error / floor) must lie above log FLOOR_FACTOR (2), and that of the "
             "per-CNN slope of log error against |log s| above 0; failed when one of these "
             "lies wholly on the other side at the Bonferroni level over the family (the "
             "s != 1 intervals + the slope); s = 1 <= 1e-6 in every CNN")


def inv5_population_verdict(errors: dict, floors: dict) -> Evidence:
    """INV-5 over the population of random CNNs (:data:`INV5_RULE`).

    Args:
        errors: ``{seed: {s: best spatial error}}`` (the same ``s`` in every seed, with 1).
        floors: ``{seed: interpolation floor}``.
    """
    from proofs.stats import StatsError, family_level, seed_mean_ci

    seeds = list(errors)
    scales = sorted(errors[seeds[0]])
    others = [s for s in scales if s != 1.0]
    m = len(others) + 1
    parts = [Evidence.over_seeds("error_at_s1", {k: errors[k].get(1.0, float("nan"))
                                                 for k in seeds}, "<=", 1e-6,
                                 tolerance=S1_SRC)]
    series = {f"log_error_over_floor_at_s_{s:g}":
              [math.log(max(errors[k][s], 1e-300) / floors[k]) for k in seeds] for s in others}
    series["slope_log_error_vs_abs_log_s"] = [log_slope(errors[k]) for k in seeds]
    nulls = {n: (0.0 if n.startswith("slope") else math.log(FLOOR_FACTOR)) for n in series}
    for name, vals in series.items():
        try:
            ci = seed_mean_ci(vals)
            wide = seed_mean_ci(vals, level=family_level(m)) if m > 1 else ci
        except StatsError as e:
            parts.append(Evidence.inconclusive(f"{name}: {e}", {name: vals}))
            continue
        parts.append(Evidence.from_interval(name, ci, null=nulls[name], direction=">",
                                            fail_interval=wide))
    ev = Evidence.all_of(parts)
    ev.numbers["rule"] = INV5_RULE
    ev.numbers["per_cnn_min_error_over_floor"] = {
        str(k): min(errors[k][s] for s in others) / floors[k] for k in seeds}
    return ev


@check("INV-5")
@_one_thread
def inv5_scaling(ctx):
    """Random CNNs (one per seed, 26 px receptive field) on natural images, s in {0.5, 0.71,
    1, 1.41, 2}: the best purely spatial T_g, judged over the population of CNNs (Student-t
    intervals of log(error / floor) per s and of the slope against |log s|), after a positive
    control of the same search (000's statement, no channel mix)."""
    imgs = natural_images(6, 64, blur=BLUR)
    scales = (0.5, 1.0, 2.0) if ctx.quick else SCALES
    errors, floors, rows_by_seed = {}, {}, {}
    for seed in ctx.seeds:
        net = random_cnn(padding_mode="zeros", seed=seed, dtype=torch.float64, **INV5_CNN)
        rows = measure_scales(net, imgs, scales, modes=("spatial",))
        errors[seed] = {r["s"]: r["spatial_error"] for r in rows}
        floors[seed] = interpolation_floor(net, imgs, mode="spatial")
        rows_by_seed[seed] = rows
    ev = inv5_population_verdict(errors, floors)
    ev.numbers["seeds"] = list(ctx.seeds)
    ev.numbers["spatial_error_by_s"] = {str(k): {f"{s:g}": v for s, v in e.items()}
                                        for k, e in errors.items()}
    ev.numbers["interpolation_floor_half_pixel_shift"] = {str(k): v for k, v in floors.items()}
    first = ctx.seeds[0]
    ev.data = {"rows": rows_by_seed[first], "floor": floors[first],
               "extractor": "random CNN (4 conv 5x5, 8 ch, 1 pool), 6 smoothed natural images"}
    n = ev.numbers
    ratio = {k: v for k, v in n.items() if k.startswith("log_error_over_floor_at_s_")}
    ev.summary = (
        f"random CNNs ({len(ctx.seeds)}), best purely spatial T_g, error / floor (geometric "
        "mean [95 % t-interval]): "
        + ", ".join(f"s {k.rsplit('_', 1)[-1]}: {math.exp(v['estimate']):.2f} "
                    f"[{math.exp(v['lo']):.2f}, {math.exp(v['hi']):.2f}]"
                    for k, v in ratio.items())
        + (f"; slope of log error vs |log s| {n['slope_log_error_vs_abs_log_s']['label']}"
           if "slope_log_error_vs_abs_log_s" in n and isinstance(
               n["slope_log_error_vs_abs_log_s"], dict) else "")
        + f"; per-CNN min ratio {min(n['per_cnn_min_error_over_floor'].values()):.2f}-"
        f"{max(n['per_cnn_min_error_over_floor'].values()):.2f} (claim: > {FLOOR_FACTOR:g})")
    control = search_control(imgs, scales, mode="spatial")
    ev.summary += (f"; positive control (pointwise features, same search): "
                   f"{control['max_error_over_floor']:.2f} x its floor at worst (< "
                   f"{FLOOR_FACTOR:g} needed)")
    ev = with_control(ev, control)
    from figures.invariance import error_vs_log_scale, scale_landscape

    ev.figure = ctx.draw("inv5_error_vs_log_scale.png", error_vs_log_scale, ev.data)
    extra = ctx.draw("inv5_scale_landscape.png", scale_landscape, ev.data)
    ev.data["figures"] = [extra] if extra else []
    return ev


def inv8_mix_ratios(net, images, scales) -> tuple[list[float], list[dict], float]:
    """``mix error / interpolation floor`` for each ``s != 1`` (best T_g + best channel mix)."""
    rows = measure_scales(net, images, scales, modes=("mix",))
    floor = interpolation_floor(net, images, mode="mix")
    ratios = [r["mix_error"] / floor for r in rows if r["s"] != 1.0]
    return ratios, rows, floor


def inv8_verdict(cnn_ratios: list[list[float]], bank_ratios: list[float], *,
                 seed: int = 0) -> Evidence:
    """Random CNNs: 95 % Student-t interval over CNNs (the independent units; one value per
    CNN, its mean ``log(mix error / floor)`` over the scales) against ``log FLOOR_FACTOR``
    (below n = 30 seeds the project's rule is Student-t, not a bootstrap); the bank
    (deterministic): its smallest ratio must be >= FLOOR_FACTOR, else it is a
    counterexample. ``seed`` is unused (kept for callers; the interval draws nothing)."""
    from proofs.stats import StatsError, seed_mean_ci

    per_cnn = [sum(math.log(max(v, 1e-300)) for v in row) / len(row) for row in cnn_ratios]
    try:
        cnn = Evidence.from_interval("random_cnn_log_mix_error_over_floor",
                                     seed_mean_ci(per_cnn), null=math.log(FLOOR_FACTOR),
                                     direction=">")
    except StatsError as e:
        cnn = Evidence.inconclusive(f"random CNNs: {e}",
                                    {"random_cnn_log_mix_error_over_floor": per_cnn})
    bank = Evidence.compare("gaussian_derivative_bank_min_mix_error_over_floor",
                            min(bank_ratios), ">=", FLOOR_FACTOR, tolerance=FLOOR_SRC)
    return Evidence.all_of([cnn, bank])


@check("INV-8")
@_one_thread
def inv8_channel_mix(ctx):
    """Beyond the papers: the best T_g plus the best per-location channel mix under scaling,
    on random CNNs (one per seed) and on the oriented Gaussian-derivative bank."""
    imgs = natural_images(6, 64, blur=BLUR)
    scales = (0.5, 2.0) if ctx.quick else (0.5, 0.71, 1.41, 2.0)
    cnn_ratios, per_seed = [], {}
    for seed in ctx.seeds:
        net = random_cnn(
            3, 8, pool_after=(1,), padding_mode="zeros", seed=seed, dtype=torch.float64
        )
        ratios, rows, floor = inv8_mix_ratios(net, imgs, scales)
        cnn_ratios.append(ratios)
        per_seed[str(seed)] = {"mix_error_by_s": {f"{r['s']:g}": r["mix_error"] for r in rows},
                               "floor": floor}
    bank = OrientedBank((1.0, 2.0), dtype=torch.float64)
    bratios, brows, bfloor = inv8_mix_ratios(bank, imgs, scales)
    ev = inv8_verdict(cnn_ratios, bratios, seed=ctx.seed)
    ev.numbers.update({
        "seeds": list(ctx.seeds), "per_seed": per_seed,
        "gaussian_derivative_bank_mix_error_by_s": {f"{r['s']:g}": r["mix_error"] for r in brows},
        "gaussian_derivative_bank_floor": bfloor,
    })
    ci = ev.numbers["random_cnn_log_mix_error_over_floor"]
    counter = min(bratios) < FLOOR_FACTOR
    control = search_control(imgs, scales, mode="mix")
    ev.summary = (
        f"random CNNs ({len(ctx.seeds)} seeds x s in {list(scales)}): mix error / floor = "
        f"{math.exp(ci['estimate']):.2f} [{math.exp(ci['lo']):.2f}, {math.exp(ci['hi']):.2f}] "
        f"(claim: > {FLOOR_FACTOR:g}); Gaussian-derivative bank (σ 1, 2): mix error / floor "
        + ", ".join(f"{s:g}: {v:.2f}" for s, v in zip([x for x in scales], bratios))
        + (" -- a counterexample: a channel mix undoes the scaling up to interpolation"
           if counter else "")
        + f"; positive control (channel-mixed pointwise features, same search): "
        f"{control['max_error_over_floor']:.2f} x its floor at worst (< {FLOOR_FACTOR:g} needed)"
    )
    return with_control(ev, control)


def _merge(ev: Evidence, other: Evidence, prefix: str) -> Evidence:
    """``Evidence.all_of`` keeping ``ev``'s figure/data and prefixing ``other``'s numbers."""
    out = Evidence.all_of([ev, other])
    out.numbers = {**ev.numbers, **{prefix + k: v for k, v in other.numbers.items()}}
    out.tolerance = f"{ev.tolerance}; {prefix.rstrip('_')}: {other.tolerance}"
    out.figure, out.data = ev.figure, ev.data
    return out


# ----------------------------------------------------------------------------- INV-6


def measure_inv6(
    iso, oriented, images: torch.Tensor, angles_deg=(30.0, 45.0, 90.0), scales=(0.5, 2.0)
) -> Evidence:
    """Isotropic bank: rotations align, scalings do not (for a spatial ``T_g``).

    Verdict: (a) rotation error at ``T_g = T_h^{-1}`` <= ``INTERP_TOL`` (bilinear) and at
    float precision for 90° (``torch.rot90``); (b) for each ``s`` the best spatial ``T_g``
    (log-scale grid + refinement) leaves >= ``FLOOR_FACTOR`` x the interpolation floor of
    the same bank and images. Reported besides: the oriented bank at the same angles, and
    the isotropic bank under scaling *with* the best channel mix.
    """
    with torch.no_grad():
        ref_i, ref_o = iso(images), oriented(images)
    rot_iso, rot_or = [], []
    for a in angles_deg:
        th = _rot_matrix(math.radians(a))
        with torch.no_grad():
            mi, mo = iso(transform(images, th)), oriented(transform(images, th))
        tg = geometry.invert(th)
        rot_iso.append(feature_alignment_error(mi, ref_i, tg, radius=RADIUS).total)
        rot_or.append(feature_alignment_error(mo, ref_o, tg, radius=RADIUS).total)
    with torch.no_grad():
        exact = torch.rot90(iso(torch.rot90(images, 1, dims=(-2, -1))), -1, dims=(-2, -1))
    exact_err = feature_alignment_error(exact, ref_i, None, radius=RADIUS).total
    srows = measure_scales(iso, images, scales, modes=("spatial", "mix"))
    scale_sp = [r["spatial_error"] for r in srows]
    floor = interpolation_floor(iso, images, mode="spatial")
    ev = judge(
        [
            Part("max_isotropic_rotation_error", max(rot_iso), "<=", INTERP_TOL, INTERP_SRC),
            Part("isotropic_rot90_exact_error", exact_err, "<=", EXACT_TOL, EXACT_SRC),
            Part("min_isotropic_scale_error_spatial_over_floor", min(scale_sp) / floor, ">=",
                 FLOOR_FACTOR, FLOOR_SRC),
        ]
    )
    ev.numbers.update(
        {
            "angles_deg": list(angles_deg),
            "isotropic_rotation_errors": rot_iso,
            "oriented_rotation_errors": rot_or,
            "scales": list(scales),
            "isotropic_scale_errors_spatial": scale_sp,
            "isotropic_scale_errors_with_mix": [r["mix_error"] for r in srows],
            "interpolation_floor_half_pixel_shift": floor,
        }
    )
    return ev


@check("INV-6")
@_one_thread
def inv6_isotropic(ctx):
    """Isotropic bank (G, ±LoG, DoG at σ = 1.5) vs oriented bank on smoothed natural images."""
    imgs = natural_images(4, 64, blur=BLUR)
    iso = IsotropicBank((1.5,), dtype=torch.float64)
    ori = OrientedBank((1.0, 2.0), dtype=torch.float64)
    ev = measure_inv6(iso, ori, imgs, scales=(0.5, 2.0))
    control = search_control(imgs, (0.5, 2.0), mode="spatial")
    n = ev.numbers
    ev.summary = (
        f"isotropic: rotation error {max(n['isotropic_rotation_errors']):.3f} at "
        f"{n['angles_deg']}° (oriented: {min(n['oriented_rotation_errors']):.2f}-"
        f"{max(n['oriented_rotation_errors']):.2f}); s = 0.5 / 2, best spatial T_g: "
        + " / ".join(f"{v:.3f}" for v in n["isotropic_scale_errors_spatial"])
        + f" (floor {n['interpolation_floor_half_pixel_shift']:.3f}); note: with a "
        "channel mix "
        + " / ".join(f"{v:.3f}" for v in n["isotropic_scale_errors_with_mix"])
        + " (G and ∇²G span a first-order scale change); positive control of the scale "
        f"search (pointwise features): {control['max_error_over_floor']:.2f} x its floor "
        f"at worst (< {FLOOR_FACTOR:g} needed)"
    )
    return with_control(ev, control)


# ----------------------------------------------------------------------------- INV-7


def measure_inv7(maps: dict[str, torch.Tensor], expected: dict[str, bool]) -> Evidence:
    """The exact criterion (:func:`invariance.is_conjugate_to_orthogonal`) must match
    ``expected`` for each map (True: a compact invariant receptive field exists)."""
    cls = {n: conjugacy_report(m) for n, m in maps.items()}
    powers = classify_maps(maps)
    wrong = [n for n in maps if is_conjugate_to_orthogonal(maps[n]) != expected[n]]
    ev = judge([Part("misclassified_maps", float(len(wrong)), "<=", 0,
                     "a priori: exact classification (criterion tolerance derived in "
                     "invariance.conjugacy: 64 eps backward error)")])
    ev.numbers.update({"maps": {n: {**cls[n], "max_power_norm": powers[n]["max_power_norm"]}
                                for n in maps}, "misclassified": wrong})
    return ev


#: Powers for the independent criterion: bounded iff the largest ||A^{+-n}|| over the second
#: half (n in (2048, 4096]) is at most 1.5x the largest over the first half. A bounded orbit
#: reaches its sup early (ratio ~1); a Jordan block grows linearly (ratio -> 2); |λ| != 1
#: grows exponentially. A priori, from those three cases.
POWER_N, POWER_RATIO = 4096, 1.5


def _norm2(a, b, c, d) -> float:
    """Spectral norm of ``[[a, b], [c, d]]`` (largest singular value, closed form)."""
    f = a * a + b * b + c * c + d * d
    det = a * d - b * c
    return math.sqrt(max(0.0, (f + math.sqrt(max(0.0, f * f - 4 * det * det))) / 2))


def powers_bounded(a: torch.Tensor) -> tuple[bool, float]:
    """The independent criterion (numerical boundedness of powers, no eigenvalues): ``(bounded,
    second-half / first-half ratio of the largest power norm)``, multiplying out ``A^n`` and
    ``A^{-n}`` in float64 (plain floats: 2x2 products)."""
    a = a.to(torch.float64)
    worst = 0.0
    for m in (a, torch.linalg.inv(a)):
        (m00, m01), (m10, m11) = m.tolist()
        p00, p01, p10, p11 = 1.0, 0.0, 0.0, 1.0
        first = second = 0.0
        for n in range(1, POWER_N + 1):
            p00, p01, p10, p11 = (p00 * m00 + p01 * m10, p00 * m01 + p01 * m11,
                                  p10 * m00 + p11 * m10, p10 * m01 + p11 * m11)
            nrm = _norm2(p00, p01, p10, p11)
            if not math.isfinite(nrm) or nrm > 1e12:
                return False, math.inf
            if n <= POWER_N // 2:
                first = max(first, nrm)
            else:
                second = max(second, nrm)
        worst = max(worst, second / first)
    return worst <= POWER_RATIO, worst


def random_maps(seed: int, per_class: int = 2) -> dict[str, torch.Tensor]:
    """Maps drawn at random from five families (conjugated rotations and reflections;
    scalings, conjugated shears, hyperbolic maps), each conjugated by a random matrix of
    condition up to ~10; their class is decided by :func:`powers_bounded`, not by the
    family's name."""
    g = torch.Generator().manual_seed(seed + 7)

    def u(lo, hi):
        return lo + (hi - lo) * float(torch.rand((), generator=g, dtype=torch.float64))

    def conj(m):
        while True:
            p = torch.randn(2, 2, generator=g, dtype=torch.float64)
            if float(torch.linalg.cond(p)) < 10:
                return p @ m @ torch.linalg.inv(p)

    out = {}
    for i in range(per_class):
        t = u(0.05, math.pi - 0.05)
        out[f"random_rotation_{i}"] = conj(torch.tensor(
            [[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]], dtype=torch.float64))
        out[f"random_reflection_{i}"] = conj(torch.diag(torch.tensor([1.0, -1.0],
                                                                      dtype=torch.float64)))
        sc = u(1.1, 2.0) if i % 2 else u(0.5, 0.9)
        out[f"random_scaling_{i}"] = conj(sc * torch.eye(2, dtype=torch.float64))
        k = u(0.2, 2.0) * (1 if i % 2 else -1)
        out[f"random_shear_{i}"] = conj(torch.tensor([[1.0, k], [0.0, 1.0]],
                                                     dtype=torch.float64))
        lam = u(1.2, 3.0)
        out[f"random_hyperbolic_{i}"] = conj(torch.diag(torch.tensor([lam, 1 / lam],
                                                                     dtype=torch.float64)))
    return out


@check("INV-7")
@_one_thread
def inv7_det_and_powers(ctx):
    """sympy + the exact criterion: rotations (and conjugates, also by the ill-conditioned
    [[10, 1], [0, 1]]) and reflections pass, scalings, shears and hyperbolic maps fail.

    A compact rot90-invariant filter exists (group average, random per seed); a
    shear-invariant one would need a support that grows without bound.
    """
    sym = inv7_symbolic()

    def r(deg):
        return geometry.rotation_matrix(torch.tensor([math.radians(deg)], dtype=torch.float64))[0]

    p = torch.tensor([[2.0, 1.0], [0.0, 1.0]], dtype=torch.float64)
    q = torch.tensor([[10.0, 1.0], [0.0, 1.0]], dtype=torch.float64)
    maps = {
        "rotation_90": r(90),
        "rotation_30": r(30),
        "conjugated_rotation_30": p @ r(30) @ torch.linalg.inv(p),
        "conjugated_by_10_1_0_1_rotation_30": q @ r(30) @ torch.linalg.inv(q),
        "conjugated_by_10_1_0_1_rotation_1": q @ r(1) @ torch.linalg.inv(q),
        "reflection": torch.tensor([[1.0, 0.0], [0.0, -1.0]], dtype=torch.float64),
        "conjugated_reflection": q @ torch.tensor([[1.0, 0.0], [0.0, -1.0]],
                                                  dtype=torch.float64) @ torch.linalg.inv(q),
        "scaling_2": 2 * torch.eye(2, dtype=torch.float64),
        "scaling_0.71": 0.71 * torch.eye(2, dtype=torch.float64),
        "shear_0.5": torch.tensor([[1.0, 0.5], [0.0, 1.0]], dtype=torch.float64),
        "hyperbolic_diag_2_half": torch.diag(torch.tensor([2.0, 0.5], dtype=torch.float64)),
        # elliptic (|trace| = 1.98 < 2, det 1): conjugate to a rotation, so it passes
        "shear_0.5_after_rotation_30": torch.tensor([[1.0, 0.5], [0.0, 1.0]], dtype=torch.float64)
        @ r(30),
        # hyperbolic (|trace| = 2.23 > 2, det 1): powers grow, it fails
        "shear_1_after_rotation_30": torch.tensor([[1.0, 1.0], [0.0, 1.0]], dtype=torch.float64)
        @ r(30),
    }
    expected = {
        n: n.startswith(("rotation_", "conjugated", "reflection", "shear_0.5_after")) for n in maps
    }
    num = measure_inv7(maps, expected)

    def body(seed):
        # A compact rot90-invariant receptive field: the group average of a random 7x7 filter
        # (true by construction: reported, a sanity check of the filter code only).
        gen = torch.Generator().manual_seed(seed)
        w = torch.randn(7, 7, generator=gen, dtype=torch.float64)
        avg = sum(torch.rot90(w, k) for k in range(4)) / 4
        inv_err = float((torch.rot90(avg, 1) - avg).abs().max())
        # Random maps, classified by the independent criterion (boundedness of powers): the
        # exact criterion must agree on every one.
        rnd = random_maps(seed)
        disagree, ratios = [], {}
        for nm, a in rnd.items():
            bounded, ratio = powers_bounded(a)
            ratios[nm] = ratio
            if bool(is_conjugate_to_orthogonal(a)) != bounded:
                disagree.append(nm)
        return judge([Part("rot90_group_average_invariance_error", inv_err, "<=", EXACT_TOL,
                           EXACT_SRC),
                      Part("random_maps_exact_vs_power_criterion_disagreements",
                           float(len(disagree)), "<=", 0,
                           "a priori: the exact criterion and numerical boundedness of powers "
                           f"(ratio <= {POWER_RATIO:g} over n <= {POWER_N}) must agree on every "
                           "random map")],
                     {"random_maps_disagreeing": disagree,
                      "random_maps_power_ratio": ratios,
                      "random_maps_bounded": sum(r <= POWER_RATIO for r in ratios.values()),
                      "random_maps": len(rnd)})

    sym_ev = Evidence(
        "verified" if sym["ok"] else "failed", {"sympy": sym}, "sympy identities hold"
    )
    ev = Evidence.all_of([sym_ev, num, over_seeds(ctx, body)])
    m = num.numbers["maps"]
    ev.summary = (
        f"sympy: |det sI| = 1 only for s = ±1, shear^n = {sym['shear_power_n']}; exact criterion "
        f"(diagonalizable over C, |λ| = 1) on {len(maps)} maps, misclassified: "
        f"{num.numbers['misclassified'] or 'none'} (R30 conjugated by [[10, 1], [0, 1]]: "
        f"{m['conjugated_by_10_1_0_1_rotation_30']['case']}, ||A^±n|| up to "
        f"{m['conjugated_by_10_1_0_1_rotation_30']['max_power_norm']:.1f}; shear 0.5: "
        f"{m['shear_0.5']['case']}); random maps (10 per seed, 5 families, random "
        "conjugations) classified by boundedness of their powers: the exact criterion "
        "disagrees on "
        f"{int(ev.numbers['random_maps_exact_vs_power_criterion_disagreements']['max'])} "
        "in the worst seed"
    )
    return ev
