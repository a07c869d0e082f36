"""Claims SMP-1, SMP-3, SMP-4, SMP-5: the linearized multi-sampler itself (paper 003).

Each check is a numerical experiment on :func:`sampling.linearized_grid_sample`
with a stated tolerance; none takes more than a few seconds. SMP-2, SMP-6 and
SMP-7 (bilinear's 4-neighbour gradient, basins, alignment) live in
:mod:`proofs.claims.sampling`, which imports this module.
"""

from __future__ import annotations

import contextlib
import math
import os

import numpy as np
import torch
import torch.nn.functional as F

from proofs.claims.seeded import Part, SeedRun, over_seeds
from proofs.reference import linearized_numpy as ref
from proofs.registry import Evidence, check, claim
from sampling import _ext
from sampling.warp import affine_grid

claim("SMP-1", "stnlab's design (labelled; not 003's statement): the linearized multi-sampler's "
      "forward value equals bilinear sampling (F.grid_sample), while its backward (grid "
      "gradient) is not bilinear's: in expectation it is 003's fitted gradient (eqs. 3, 5-7) "
      "with the auxiliary samples spread over the output pixel's footprint.",
      source="stnlab design; contrast 003 Sec. 4 eqs. 2, 6 and Sec. 6.5, 7", kind="numerical",
      note="Restated (issue 23). 003 does not say the forward equals bilinear: eq. 6's row of "
      "ones fits an intercept (the official release adds it to the output), Sec. 6.5 says a "
      "larger sigma gives 'a blurrier image', and Sec. 7 that replacing the sampler by "
      "bilinear at inference 'would result in a minor change in the sampling outcome'. The "
      "exactly-bilinear forward is stnlab's own choice (sampling/linearized.py) and is checked "
      "as such. Part (d), added: the Monte Carlo mean (256 calls) of the shipped grid gradient "
      "at 4x downsampling on a sinusoid equals that of an independent reference written from "
      "003 eqs. 3, 5-9 (own NumPy noise, eq. 6's row of ones, T_theta given directly) within 3 "
      "standard errors + 5 % (a priori); removing the footprint spread or swapping in "
      "bilinear fails it.")
claim("SMP-3", "On an affine image the linearized sampler's gradient w.r.t. the sampling "
      "locations equals the true image gradient (exactly with eps = 0; within the Tikhonov "
      "bias eps / (lambda_min + eps) otherwise); on a non-affine image it equals an "
      "independent NumPy implementation of eqs. 5-6 with the same auxiliary offsets, and in "
      "expectation an independent implementation of 003 eqs. 3, 5-9 with its own noise and "
      "eq. 6's row of ones, at sigma = 0.5 and 1 (which differ).",
      source="003 Sec. 4, eqs. 2-7",
      kind="numerical",
      note="Issue 23: the NumPy reference of proofs/reference/linearized_numpy.py shares the "
      "project's anchored fit (no row of ones) and its variates, so it cannot see a change "
      "to the noise; the added part (d) compares expectations with "
      "proofs/reference/linearized_003.py (own noise, intercept column, footprint from T_theta) "
      "at 4x downsampling, sigma = 0.5 and 1, tolerance 3 SE + 5 % fixed a priori; its "
      "validity part requires the reference's gradient to change with sigma.")
claim("SMP-4", "Out-of-bound auxiliary samples are masked (on a partly out-of-bounds "
      "footprint where masking changes the result, the sampler equals the masked NumPy "
      "reference, and in expectation at a border the masked independent 003 reference with "
      "stnlab's anchored fit); when all are out of bounds the gradient is exactly zero; the gradient is "
      "never NaN or Inf.", source="003 Sec. 6.1",
      kind="numerical",
      note="Issue 23, a fidelity finding: at a border the masked auxiliary cloud is one-sided, "
      "and there stnlab's anchored fit (no eq. 6 row of ones) and 003's intercept fit differ "
      "in expectation -- against the independent reference proofs/reference/linearized_003.py "
      "(own noise, 256 calls, 4x down) by up to ~0.5 of the gradient's norm in some random "
      "geometries with the output centres inside the image (seed 3009: 0.51 +- 0.10), and "
      "more with them outside, where 003's intercept absorbs the zero-padded centre value. "
      "That comparison was first judged (3 SE + 5 %) and failed in 3 of the first 10 base "
      "seeds of the sweep, and was then made reported-only. Restored as judged, with its "
      "a-priori bound (3 SE + 5 %) unchanged: the same independent reference with the row of "
      "ones dropped (the fit anchored at the centre sample, stnlab's design, stated in "
      "SMP-1's note before the sweep), so the border expectation tests masking over 003's "
      "footprint, not the fit's design; the intercept-fit differences stay reported "
      "(border_centre_inside/outside_rel_diff). Its power is low (256 calls: 3 SE ~0.3 of the "
      "norm): it fails when the footprint spread is removed or bilinear is swapped in, but "
      "not when masking is switched off (rel. difference ~0.25 there); masking itself is "
      "judged against the masked NumPy reference (part d), which does fail then.")
claim("SMP-5", "Without collapse prevention the least-squares fit becomes ill-conditioned "
      "under zoom-in; with it, the fit stays conditioned and the gradients stay bounded.",
      source="003 Sec. 5, eqs. 8-9, Fig. 4", kind="numerical",
      note="Issue 23: a part checks that the shipped entry point's gradient is the fit's "
      "(sampling.linearized_grid_sample vs fit_local_gradient with the same noise seed), so "
      "a bilinear substitute gives a decided 'failed', not 'not run'.")


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ------------------------------------------------ shipped paths, the NumPy reference, bilinear
#: Agreement with the NumPy reference, relative to the largest gradient. Derived: both sides
#: are float64 sums of K + 2 terms and a 2x2 solve of condition <= 1e3 (sigma >= 1 px
#: footprints, eps > 0), so their rounding differs by ~1e3 (K + 5) eps_64 ~ 1e-11; x100 room.
REF_RTOL = 1e-9
REF_SRC = "derived: 1e3 (condition of the 2x2 solve) x (K + 5) x eps_64 ~ 1e-11, x100 room"
#: A gradient at least 1 % of its scale away is "clearly different" (five orders above
#: REF_RTOL): what plain bilinear must miss by.
CLEAR = 1e-2
CLEAR_SRC = "a priori: 1 % of the gradient scale, five orders above the reference tolerance"
#: Fused kernel vs eager path, float64 (tests/sampling/test_linearized_fused.py): rounding
#: only (input pixels vs normalized units, order of the sums).
FUSED_RTOL = 1e-10
FUSED_SRC = "a priori: float64 rounding of the same sums in another order/unit (1e-10 relative)"
K_REF = 8


@contextlib.contextmanager
def _eager(on: bool):
    """``STNLAB_NO_EXT=1`` for the block when ``on`` (the eager reference path)."""
    old = os.environ.get("STNLAB_NO_EXT")
    if on:
        os.environ["STNLAB_NO_EXT"] = "1"
    try:
        yield
    finally:
        if on:
            if old is None:
                del os.environ["STNLAB_NO_EXT"]
            else:
                os.environ["STNLAB_NO_EXT"] = old


def devices() -> list[str]:
    """CPU, and CUDA when present: every SMP check runs the shipped kernels of each."""
    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def sampler_grid_grad(x, grid, grad_out, *, seed: int, eager: bool, device: str = "cpu",
                      **kw) -> tuple[np.ndarray, bool]:
    """The grid gradient of ``sampling.linearized_grid_sample`` (what training runs), float64.

    Args:
        x, grid, grad_out: ``(N, C, H, W)``, ``(N, h, w, 2)``, ``(N, C, h, w)``.
        seed: seeds the call's generator (``draw_seed`` of it gives the noise seed).
        eager: force the eager path (``STNLAB_NO_EXT=1``); else the fused kernel.
        device: ``"cpu"`` or ``"cuda"``.

    Returns:
        ``(grad (N, h, w, 2) as a NumPy array, whether the fused kernel ran)``.
    """
    import sampling

    before = _ext.status(device)["fused_calls"]
    g = grid.to(device).clone().requires_grad_(True)
    with _eager(eager):
        out = sampling.linearized_grid_sample(x.to(device), g, generator=_gen(seed), **kw)
        (gg,) = torch.autograd.grad(out, g, grad_out.to(device))
    fused = _ext.status(device)["fused_calls"] > before
    return gg.detach().double().cpu().numpy(), fused


def bilinear_grid_grad(x, grid, grad_out, *, align_corners: bool) -> np.ndarray:
    """Plain bilinear sampling's grid gradient (``F.grid_sample`` autograd), for contrast."""
    g = grid.clone().requires_grad_(True)
    out = F.grid_sample(x, g, mode="bilinear", padding_mode="zeros", align_corners=align_corners)
    (gg,) = torch.autograd.grad(out, g, grad_out)
    return gg.double().numpy()


def reference_grid_grad(x, grid, grad_out, *, seed: int, mask: bool = True, eps: float,
                        align_corners: bool, diagnostics: bool = False):
    """The NumPy reference (003 eqs. 2-9) with the offsets of a call seeded by ``seed``."""
    from sampling.linearized import auxiliary_variates, draw_seed

    _, h, w, _ = grid.shape
    v = auxiliary_variates(draw_seed(_gen(seed)), K_REF, h, w, dtype=torch.float64).numpy()
    return ref.fitted_grid_gradient(x.numpy(), grid.numpy(), grad_out.numpy(), v, sigma=1.0,
                                    collapse_noise=True, eps=eps, align_corners=align_corners,
                                    mask=mask, return_diagnostics=diagnostics)


def _rel(a, b) -> float:
    """``max |a - b| / max |b|`` (inf when ``b`` is all zero and ``a`` is not)."""
    scale = float(np.abs(b).max())
    d = float(np.abs(np.asarray(a) - b).max())
    return d / scale if scale > 0 else (0.0 if d == 0 else math.inf)


def non_affine_image(seed: int, n: int = 2, c: int = 2, size: int = 20) -> torch.Tensor:
    """A smooth non-affine image with seeded quadratic/cubic coefficients, float64."""
    gen = _gen(seed)
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, size, dtype=torch.float64),
                            torch.linspace(-1, 1, size, dtype=torch.float64), indexing="ij")
    a = torch.rand(c, 5, generator=gen, dtype=torch.float64) + 0.5
    terms = torch.stack([xs**2, xs * ys, -ys**2, ys**3, xs])  # (5, H, W)
    img = torch.einsum("ct,thw->chw", a, terms)
    return img.expand(n, -1, -1, -1).contiguous()


def _ref_theta(scale: float, seed: int, n: int = 2) -> torch.Tensor:
    u = (torch.rand(3, generator=_gen(seed + 17), dtype=torch.float64) - 0.5) * 0.2
    th = torch.tensor([[scale, 0.2 * scale + float(u[0]), 0.05 + float(u[1])],
                       [-0.1 * scale, 0.9 * scale, 0.02 + float(u[2])]], dtype=torch.float64)
    return th.expand(n, 2, 3).contiguous()


def fused_vs_eager(x, grid, grad_out, *, seed: int, **kw) -> tuple[float, bool]:
    """Worst ``max |fused - eager| / max |eager|`` over :func:`devices` (float64), and
    whether every fused kernel ran."""
    worst, ran = 0.0, True
    for dev in devices():
        f, fused = sampler_grid_grad(x, grid, grad_out, seed=seed, eager=False, device=dev, **kw)
        e, _ = sampler_grid_grad(x, grid, grad_out, seed=seed, eager=True, device=dev, **kw)
        worst, ran = max(worst, _rel(f, e)), ran and fused
    return worst, ran


def with_fused(ev: Evidence, fused_ran: dict) -> Evidence:
    """Add "not run" when a fused kernel did not run (no compiler, STNLAB_NO_EXT set)."""
    ev.numbers["fused_kernel_ran_per_seed"] = fused_ran
    ev.numbers["devices"] = devices()
    if all(fused_ran.values()):
        return ev
    why = _ext.status("cpu")
    out = Evidence.all_of([ev, Evidence.not_run(
        "the fused kernel did not run (" + ("STNLAB_NO_EXT is set" if why.get("disabled")
                                          else str(why.get("error"))) + ")")])
    out.summary, out.data, out.numbers = ev.summary, ev.data, ev.numbers
    return out


# ------------------------------------ 003's defining step: auxiliaries over the footprint
#: Monte Carlo calls per side (shipped sampler, independent reference).
FOOT_CALLS = 256
FOOT_IN, FOOT_OUT, FOOT_DOWN = 96, 12, 4  # 96 px input, 12 px output at 4x downsampling
#: Spatial frequency (rad / input px) of the test image: under the footprint's blur
#: (std sigma * 4 px, plus 1 px collapse noise) the expected gradient is attenuated by
#: exp(-w^2 s^2 / 2): 0.82 at sigma = 0.5, 0.50 at sigma = 1, 0.96 with no spread.
FOOT_OMEGA = 0.285
FOOT_TOL = 0.05
FOOT_SRC = ("a priori (fixed before any run): the Monte Carlo means of the shipped sampler "
            "and of the independent 003 reference (own noise, eq. 6's row of ones) over "
            f"{FOOT_CALLS} calls each may differ by 3 standard errors plus 5 % of the "
            "gradient's norm -- the allowance for stnlab's anchored fit (no intercept) vs "
            "003's intercept fit, which agree exactly on affine images (SMP-3 (a)) but not "
            "at finite K on a curved one")


FOOT_ANCHORED_SRC = (
    "a priori (fixed before any run, restored after issue 23's sweep had made this part "
    "reported-only): 3 standard errors plus 5 % of the gradient's norm, as FOOT_TOL; the "
    "independent 003 reference (own noise) with eq. 6's row of ones dropped -- the fit "
    "anchored at the centre sample, stnlab's design (SMP-1's note, stated before the "
    "sweep) -- so the difference at a one-sided masked cloud is not the fit's design")

#: ``border``'s shift: the left output column's centres ~3.8 input px inside the image, so
#: their footprints (std ~4 px) cross the edge and masking matters while the centre sample
#: I^0 is a real value. (First tried: -0.62, centres *outside* the image, where 003's
#: intercept absorbs the zero-padded I^0 and stnlab's anchored fit does not: rel. difference
#: 0.49 +- 0.17 at seed 0 -- a design difference, reported by SMP-4 as
#: ``border_centre_outside_rel_diff``, not judged.)
BORDER_SHIFT = {"inside": -0.45, "outside": -0.62}


def _foot_case(seed: int, border):
    """A sinusoid (random direction and phase per seed) on a 96 px image, and T_theta at 4x
    downsampling (random rotation); ``border`` (a key of :data:`BORDER_SHIFT`): shifted so
    that part of the footprints leave the image on the left (masking matters), the image
    offset so zero padding is a jump."""
    rng = np.random.default_rng(seed + 4242)
    ang, phase, rot = rng.uniform(0, 2 * np.pi), rng.uniform(0, 2 * np.pi), rng.uniform(0, 0.5)
    yy, xx = np.meshgrid(np.arange(FOOT_IN, dtype=np.float64),
                         np.arange(FOOT_IN, dtype=np.float64), indexing="ij")
    img = np.sin(FOOT_OMEGA * (np.cos(ang) * xx + np.sin(ang) * yy) + phase)
    if border:
        img = img + 1.5
    sc = FOOT_DOWN * FOOT_OUT / FOOT_IN  # normalized extent of the output in the input
    theta = np.array([[sc * np.cos(rot), -sc * np.sin(rot),
                       BORDER_SHIFT[border] if border else 0.0],
                      [sc * np.sin(rot), sc * np.cos(rot), 0.0]])
    go = rng.standard_normal((FOOT_OUT, FOOT_OUT))
    return img, theta, go


def footprint_expectation(seed: int, *, sigma: float, border=None,
                          intercept: bool = True) -> dict:
    """Monte Carlo mean of the shipped ``sampling.linearized_grid_sample`` grid gradient vs
    that of :mod:`proofs.reference.linearized_003` (own noise, eq. 6's row of ones), at one
    sigma (``intercept=False``: the reference's fit anchored at the centre sample, stnlab's
    design, SMP-1's note). Returns ``rel`` (||mean_ship - mean_ref|| / ||mean_ref||), ``se`` (the two
    means' combined standard error, relative), ``excess`` = rel - 3 se, and the means."""
    import sampling
    from proofs.reference.linearized_003 import monte_carlo_003
    from sampling.linearized import DEFAULT_EPS

    img, theta, go = _foot_case(seed, border)
    x = torch.from_numpy(img)[None, None]
    th = torch.from_numpy(theta)[None]
    grid = affine_grid(th, (FOOT_OUT, FOOT_OUT), align_corners=False)
    g_out = torch.from_numpy(go)[None, None]
    gen = _gen(seed + 77)
    draws = []
    for _ in range(FOOT_CALLS):
        gr = grid.clone().requires_grad_(True)
        out = sampling.linearized_grid_sample(x, gr, sigma=sigma, generator=gen)
        (gg,) = torch.autograd.grad(out, gr, g_out)
        draws.append(gg[0].double().numpy())
    d = np.stack(draws)
    m_ship, se_ship = d.mean(0), d.std(0, ddof=1) / math.sqrt(FOOT_CALLS)
    m_ref, se_ref = monte_carlo_003(img, theta, (FOOT_OUT, FOOT_OUT), go, calls=FOOT_CALLS,
                                    seed=seed + 91, sigma=sigma, eps=DEFAULT_EPS,
                                    intercept=intercept)
    norm = float(np.linalg.norm(m_ref))
    rel = float(np.linalg.norm(m_ship - m_ref)) / norm
    se = float(np.sqrt((se_ship**2 + se_ref**2).sum())) / norm
    return {"rel": rel, "se": se, "excess": rel - 3 * se, "m_ref": m_ref, "se_ref": se_ref,
            "norm_ref": norm}


def footprint_parts(seed: int, sigmas=(1.0,), *, border=None,
                    sensitivity: bool = False) -> tuple[list[Part], dict]:
    """SMP parts: the shipped gradient equals 003's in expectation at each sigma (and, with
    ``sensitivity``, the reference itself changes with sigma, so the check can tell)."""
    res = {sg: footprint_expectation(seed, sigma=sg, border=border) for sg in sigmas}
    tag = "border_" if border else ""
    parts = [Part(f"{tag}footprint_excess_vs_003_reference_sigma_{sg:g}", r["excess"], "<=",
                  FOOT_TOL, FOOT_SRC) for sg, r in res.items()]
    nums = {f"{tag}footprint_rel_diff_sigma_{sg:g}": r["rel"] for sg, r in res.items()}
    nums.update({f"{tag}footprint_rel_se_sigma_{sg:g}": r["se"] for sg, r in res.items()})
    if sensitivity:
        a, b = (res[sg] for sg in sigmas[:2])
        gap = float(np.linalg.norm(a["m_ref"] - b["m_ref"])) / b["norm_ref"]
        se = float(np.sqrt((a["se_ref"] ** 2 + b["se_ref"] ** 2).sum())) / b["norm_ref"]
        parts.append(Part("footprint_reference_change_with_sigma_minus_3se", gap - 3 * se,
                          ">=", CLEAR, CLEAR_SRC + " (validity: 003's gradient depends on "
                          "sigma, as its footprint blur predicts)"))
    return parts, nums


def runs_nums(ev) -> list[dict]:
    """Every seed's reported numbers of an :func:`over_seeds` Evidence."""
    return list(ev.numbers["per_seed"].values())


def _affine_image(n, c, h, w, coef, dtype):
    v, u = torch.meshgrid(torch.arange(h, dtype=dtype), torch.arange(w, dtype=dtype),
                          indexing="ij")
    img = coef[:, 0, None, None] * u + coef[:, 1, None, None] * v + coef[:, 2, None, None]
    return img.expand(n, c, h, w).contiguous()


def _affine_grid(n, h, w, angle, scale, shift, dtype):
    th = torch.tensor([[scale * math.cos(angle), -scale * math.sin(angle), shift[0]],
                       [scale * math.sin(angle), scale * math.cos(angle), shift[1]]],
                      dtype=dtype)
    return affine_grid(th.expand(n, 2, 3), (h, w), align_corners=False)


def _analytic(coef, grad_out, h_in, w_in, align_corners):
    ux = (w_in - 1) / 2 if align_corners else w_in / 2
    uy = (h_in - 1) / 2 if align_corners else h_in / 2
    gx = torch.einsum("nchw,c->nhw", grad_out, coef[:, 0]) * ux
    gy = torch.einsum("nchw,c->nhw", grad_out, coef[:, 1]) * uy
    return torch.stack([gx, gy], -1)


@check("SMP-1")
def smp1_forward_is_bilinear(ctx):
    """(a) forward = F.grid_sample on random inputs (stnlab's design); (b) on a non-affine
    image the grid gradient of every shipped path is not bilinear's (a bilinear substitute
    fails (b)); (c) fused kernel = eager path; (d) in expectation (256 calls, 4x down,
    sigma = 1) the grid gradient is the independent 003 reference's (own noise, eq. 6's row of
    ones), which needs the footprint spread. Each must hold in every seed of ``ctx.seeds``."""
    from sampling import linearized_grid_sample

    def body(seed):
        g = _gen(seed)
        worst = {"float32": 0.0, "float64": 0.0}
        trials = 0
        for dtype in (torch.float32, torch.float64):
            for align_corners in (False, True):
                for padding in ("zeros", "border", "reflection"):
                    for trial in range(3):
                        n, c = 1 + trial, 1 + (trial % 3)
                        x = torch.rand(n, c, 13, 17, generator=g, dtype=dtype)
                        grid = torch.rand(n, 7, 5, 2, generator=g, dtype=dtype) * 2.4 - 1.2
                        out = linearized_grid_sample(x, grid, align_corners=align_corners,
                                                     padding_mode=padding, generator=g)
                        ref_ = F.grid_sample(x, grid, mode="bilinear", padding_mode=padding,
                                             align_corners=align_corners)
                        key = str(dtype).replace("torch.", "")
                        worst[key] = max(worst[key], float((out - ref_).abs().max()))
                        trials += 1
        # (b) backward on a non-affine image, both align_corners, both CPU paths
        diff, fe, ran = math.inf, 0.0, True
        for ac in (False, True):
            img = non_affine_image(seed)
            grid = affine_grid(_ref_theta(0.6, seed), (7, 9), align_corners=ac)
            go = torch.randn(2, 2, 7, 9, generator=_gen(seed + 5), dtype=torch.float64)
            bil = bilinear_grid_grad(img, grid, go, align_corners=ac)
            for eager in (False, True):
                lin, _ = sampler_grid_grad(img, grid, go, seed=seed, eager=eager,
                                           align_corners=ac)
                diff = min(diff, _rel(lin, bil))
            d, r = fused_vs_eager(img, grid, go, seed=seed, align_corners=ac)
            fe, ran = max(fe, d), ran and r
        foot, foot_nums = footprint_parts(seed, (1.0,))
        return SeedRun([
            Part("max_abs_diff_forward", max(worst.values()), "<=", 1e-6,
                 "a priori: float32 rounding of values in [0, 1] (~8 ulp)"),
            Part("min_rel_diff_backward_vs_bilinear", diff, ">=", CLEAR, CLEAR_SRC),
            Part("max_rel_diff_fused_vs_eager", fe, "<=", FUSED_RTOL, FUSED_SRC),
            *foot,
        ], {"max_abs_diff_float32": worst["float32"], "max_abs_diff_float64": worst["float64"],
            "trials": trials, "fused_ran": ran, **foot_nums})

    def summary(runs, ev):
        n = ev.numbers
        return (f"{len(runs)} seeds x 36 random inputs (both dtypes, align_corners, 3 padding "
                f"modes, grids reaching 20% out): forward differs from F.grid_sample by at "
                f"most {n['max_abs_diff_forward']['max']:.1e}; on a non-affine image the "
                f"grid gradient differs from bilinear's by >= "
                f"{n['min_rel_diff_backward_vs_bilinear']['min']:.2f} (relative); fused "
                f"kernel vs eager {n['max_rel_diff_fused_vs_eager']['max']:.1e}; in expectation "
                f"(4x down, sigma 1) vs the independent 003 reference: rel. difference - 3 SE "
                f"<= {n['footprint_excess_vs_003_reference_sigma_1']['max']:.3f} (<= "
                f"{FOOT_TOL:g})")

    ev = over_seeds(ctx, body, summary=summary)
    return with_fused(ev, {k: v["fused_ran"] for k, v in ev.numbers["per_seed"].items()})


def smp3_affine(seed: int) -> dict:
    """Affine images: fitted gradient vs analytic with eps = 0 (through the shipped sampler)
    and within the Tikhonov bound with the default eps (eager diagnostics)."""
    from sampling import linearized_grid_sample
    from sampling.linearized import DEFAULT_EPS, fit_local_gradient

    g = _gen(seed + 1)
    worst_rel = 0.0
    dtype = torch.float64
    errs = {0.0: 0.0, DEFAULT_EPS: 0.0}
    trials = 0
    for k in (3, 8):
        for align_corners in (False, True):
            for trial in range(4):
                c = 1 + trial % 3
                coef = torch.randn(c, 3, generator=g, dtype=dtype)
                x = _affine_image(2, c, 64, 64, coef, dtype)
                angle = float(torch.rand((), generator=g, dtype=dtype)) * 2 * math.pi
                scale = 0.05 + 0.25 * float(torch.rand((), generator=g, dtype=dtype))
                shift = (torch.rand(2, generator=g, dtype=dtype) * 0.2 - 0.1).tolist()
                grid = _affine_grid(2, 6, 7, angle, scale, shift, dtype).requires_grad_(True)
                grad_out = torch.randn(2, c, 6, 7, generator=g, dtype=dtype)
                expected = _analytic(coef, grad_out, 64, 64, align_corners)
                out = linearized_grid_sample(x, grid, num_samples=k, eps=0.0,
                                             align_corners=align_corners, generator=g)
                (got,) = torch.autograd.grad(out, grid, grad_out)
                rel = float((got - expected).abs().max() / expected.abs().max())
                errs[0.0] = max(errs[0.0], rel)
                # Default eps: Tikhonov shrinks the exact answer by (S + eps)^-1 S, so
                # |error| <= eps / (lambda_min(S) + eps) |true| per pixel (square image).
                fit = fit_local_gradient(x, grid.detach(), grad_out, seed=trial, num_samples=k,
                                         sigma=1.0, collapse_noise=True, eps=DEFAULT_EPS,
                                         align_corners=align_corners, padding_mode="zeros",
                                         diagnostics=True)
                bound = (DEFAULT_EPS / (fit.min_eigenvalue() + DEFAULT_EPS)
                         * expected.norm(dim=-1))
                excess = (fit.grad_grid - expected).norm(dim=-1) / bound
                errs[DEFAULT_EPS] = max(errs[DEFAULT_EPS], float(excess.max()))
                worst_rel = max(worst_rel, float((fit.grad_grid - expected).norm(dim=-1).max()
                                                 / expected.norm(dim=-1).max()))
                trials += 1
    return {"eps0": errs[0.0], "tikhonov_ratio": errs[DEFAULT_EPS],
            "rel_default_eps": worst_rel, "trials": trials}


@check("SMP-3")
def smp3_affine_gradient_is_exact(ctx):
    """(a) affine images: exact (eps = 0) and within the Tikhonov bound; (b) a non-affine
    image: every CPU path (fused, eager) equals the NumPy reference of 003 eqs. 5-6 with the
    same auxiliary offsets, while bilinear's gradient does not (a bilinear substitute fails
    (b)); (c) fused = eager on every device; (d) in expectation (256 calls, 4x down) equal to
    the independent 003 reference (own noise, eq. 6's row of ones) at sigma = 0.5 and 1,
    whose gradients differ. In every seed of ``ctx.seeds``."""
    from sampling.linearized import DEFAULT_EPS

    def body(seed):
        aff = smp3_affine(seed)
        foot, foot_nums = footprint_parts(seed, (0.5, 1.0), sensitivity=True)
        ref_err, bil_gap, fe, ran = 0.0, math.inf, 0.0, True
        for ac in (False, True):
            for scale in (0.6, 0.25):
                img = non_affine_image(seed)
                grid = affine_grid(_ref_theta(scale, seed), (7, 9), align_corners=ac)
                go = torch.randn(2, 2, 7, 9, generator=_gen(seed + 9), dtype=torch.float64)
                r = reference_grid_grad(img, grid, go, seed=seed, eps=DEFAULT_EPS,
                                        align_corners=ac)
                for eager in (False, True):
                    got, _ = sampler_grid_grad(img, grid, go, seed=seed, eager=eager,
                                               num_samples=K_REF, align_corners=ac)
                    ref_err = max(ref_err, _rel(got, r))
                bil_gap = min(bil_gap, _rel(bilinear_grid_grad(img, grid, go,
                                                               align_corners=ac), r))
                d, ok = fused_vs_eager(img, grid, go, seed=seed, num_samples=K_REF,
                                       align_corners=ac)
                fe, ran = max(fe, d), ran and ok
        return SeedRun([
            Part("max_rel_error_eps0", aff["eps0"], "<=", 1e-8,
                 "a priori: float64 least squares on exact affine data (cond <= 1e3)"),
            Part("max_error_over_tikhonov_bound", aff["tikhonov_ratio"], "<=", 1.0 + 1e-6,
                 "derived: |error| <= eps / (lambda_min + eps) |true| (Tikhonov shrinkage), "
                 "1e-6 for rounding"),
            Part("max_rel_error_vs_numpy_reference", ref_err, "<=", REF_RTOL, REF_SRC),
            Part("bilinear_rel_gap_to_reference", bil_gap, ">=", CLEAR, CLEAR_SRC),
            Part("max_rel_diff_fused_vs_eager", fe, "<=", FUSED_RTOL, FUSED_SRC),
            *foot,
        ], {"max_rel_error_default_eps": aff["rel_default_eps"], "affine_trials": aff["trials"],
            "fused_ran": ran, **foot_nums})

    def summary(runs, ev):
        n = ev.numbers
        return (f"{len(runs)} seeds: affine images (K = 3, 8, both align_corners): max rel. "
                f"error {n['max_rel_error_eps0']['max']:.1e} with eps = 0, within the "
                f"Tikhonov bound with eps = {DEFAULT_EPS:g} (worst ratio "
                f"{n['max_error_over_tikhonov_bound']['max']:.3f}); non-affine image: fused "
                f"and eager equal the NumPy reference of eqs. 5-6 to "
                f"{n['max_rel_error_vs_numpy_reference']['max']:.1e}, bilinear misses it by "
                f">= {n['bilinear_rel_gap_to_reference']['min']:.2f}; fused vs eager "
                f"{n['max_rel_diff_fused_vs_eager']['max']:.1e}; in expectation vs the "
                f"independent 003 reference (4x down), rel. difference - 3 SE <= "
                f"{n['footprint_excess_vs_003_reference_sigma_0.5']['max']:.3f} (sigma 0.5) / "
                f"{n['footprint_excess_vs_003_reference_sigma_1']['max']:.3f} (sigma 1), the "
                f"reference's own change with sigma - 3 SE >= "
                f"{n['footprint_reference_change_with_sigma_minus_3se']['min']:.2f}")

    ev = over_seeds(ctx, body, summary=summary)
    return with_fused(ev, {k: v["fused_ran"] for k, v in ev.numbers["per_seed"].items()})


def smp4_masking(seed: int, align_corners: bool) -> dict:
    """A grid reaching past the border of an image that is nonzero there (zero padding is a
    jump): the shipped paths vs the masked and the unmasked NumPy reference."""
    from sampling.linearized import DEFAULT_EPS

    img = non_affine_image(seed) + 1.0
    grid = affine_grid(_ref_theta(1.05, seed), (7, 9), align_corners=align_corners)
    go = torch.ones(2, 2, 7, 9, dtype=torch.float64)
    r, _, count = reference_grid_grad(img, grid, go, seed=seed, eps=DEFAULT_EPS,
                                      align_corners=align_corners, diagnostics=True)
    unmasked = reference_grid_grad(img, grid, go, seed=seed, eps=DEFAULT_EPS, mask=False,
                                   align_corners=align_corners)
    err = 0.0
    for eager in (False, True):
        got, _ = sampler_grid_grad(img, grid, go, seed=seed, eager=eager, num_samples=K_REF,
                                   align_corners=align_corners)
        err = max(err, _rel(got, r))
    fe, ran = fused_vs_eager(img, grid, go, seed=seed, num_samples=K_REF,
                             align_corners=align_corners)
    partly = float(((count < K_REF) & (count > 0)).mean())
    return {"err": err, "mask_effect": _rel(unmasked, r), "partly_out_fraction": partly,
            "fe": fe, "ran": ran}


@check("SMP-4")
def smp4_masking_and_finiteness(ctx):
    """(a) an affine image 0.3 px from a zero-padded border: masked, interior gradient;
    (b) every auxiliary out of bounds: exactly 0 on every path; (c) never NaN/Inf;
    (d) a partly out-of-bounds footprint where masking changes the result: every path equals
    the masked NumPy reference (a bilinear substitute fails (d)); fused = eager; (e) in
    expectation at a border (footprints crossing it) the masked independent 003 reference
    with the fit anchored at the centre sample (stnlab's design), 3 SE + 5 %; reported: the
    same against 003's intercept fit. Every seed."""
    from sampling import linearized_grid_sample
    from sampling.linearized import fit_local_gradient

    dtype = torch.float64

    def body(seed):
        # (a) Partially out of bounds: centre 0.3 px from the left edge, zero padding.
        coef = torch.tensor([[1.0, 2.0, 5.0]], dtype=dtype)
        x = _affine_image(1, 1, 16, 16, coef, dtype)
        grid = torch.tensor([[[[(2 * 0.3 + 1) / 16 - 1, 0.0]]]], dtype=dtype)
        ones = torch.ones(1, 1, 1, 1, dtype=dtype)
        fit = fit_local_gradient(x, grid, ones, seed=seed, num_samples=32, sigma=1.0,
                                 collapse_noise=True, eps=0.0, align_corners=False,
                                 padding_mode="zeros", diagnostics=True)
        expected = torch.tensor([8.0, 16.0], dtype=dtype)  # (1, 2) px^-1 times 8 px per unit
        border_err = float((fit.grad_grid.flatten() - expected).abs().max() / 16.0)
        in_bounds = int(fit.count.item())

        # (b) Every auxiliary out of bounds: exactly zero, on each path.
        img = torch.rand(2, 3, 10, 10, generator=_gen(seed), dtype=dtype)
        far = (torch.full((2, 4, 5, 2), 7.0, dtype=dtype)
               + torch.rand(2, 4, 5, 2, generator=_gen(seed + 1), dtype=dtype))
        zero_max = 0.0
        for dev in devices():
            for eager in (False, True):
                gg, _ = sampler_grid_grad(img, far, torch.ones(2, 3, 4, 5, dtype=dtype),
                                          seed=seed + 2, eager=eager, device=dev)
                zero_max = max(zero_max, float(np.abs(gg).max()))

        # (c) Never NaN/Inf: extreme zoom-in, degenerate grids, K = 1, eps = 0, float32.
        nonfinite = 0
        cases = 0
        x32 = torch.rand(2, 2, 12, 12, generator=_gen(seed + 3))
        grids = {
            "zoom_1e6": _affine_grid(2, 6, 6, 0.4, 1e-6, (0.01, 0.02), torch.float32),
            "degenerate": torch.full((2, 5, 5, 2), 0.1),
            "single_pixel": torch.zeros(2, 1, 1, 2),
            "regular": _affine_grid(2, 6, 6, 0.4, 0.8, (0.0, 0.0), torch.float32),
        }
        for name, gr in grids.items():
            for k in (1, 8):
                for collapse in (False, True):
                    for eps in (0.0, 1e-3):
                        gr_ = gr.clone().requires_grad_(True)
                        o = linearized_grid_sample(x32, gr_, num_samples=k,
                                                   collapse_noise=collapse, eps=eps,
                                                   generator=_gen(seed + 4))
                        (gg,) = torch.autograd.grad(o, gr_, torch.ones_like(o))
                        nonfinite += int((~torch.isfinite(gg)).sum())
                        cases += 1
        # (d) masking that matters
        m = [smp4_masking(seed, ac) for ac in (False, True)]
        # (e) judged: the expectation at a border (centres inside, footprints crossing the
        # edge) vs the masked independent 003 reference with its fit anchored at the centre
        # sample -- stnlab's design (SMP-1's note), so the comparison tests masking and the
        # footprint, not the fit's design -- within FOOT_TOL (3 SE + 5 %, a priori, the bound
        # this part had before issue 23's sweep, restored). Reported: the same against 003's
        # intercept fit (eq. 6's row of ones), where a one-sided cloud makes the two fits
        # differ by design, centres inside and outside the image.
        anchored = footprint_expectation(seed, sigma=1.0, border="inside", intercept=False)
        inside = footprint_expectation(seed, sigma=1.0, border="inside")
        outside = footprint_expectation(seed, sigma=1.0, border="outside")
        return SeedRun([
            Part("border_rel_error", border_err, "<=", 1e-9,
                 "a priori: float64 least squares on exact affine data"),
            Part("in_bounds_auxiliaries_of_32", in_bounds, "<", 32,
                 "a priori: the test case is partly out of bounds (validity)"),
            Part("all_out_max_abs_grad", zero_max, "<=", 0.0, "a priori: exactly zero"),
            Part("nonfinite_entries", nonfinite, "<=", 0, "a priori: none"),
            Part("max_rel_error_vs_masked_reference", max(d["err"] for d in m), "<=", REF_RTOL,
                 REF_SRC),
            Part("masking_effect_rel", min(d["mask_effect"] for d in m), ">=", CLEAR,
                 CLEAR_SRC + " (validity: masking changes the answer)"),
            Part("max_rel_diff_fused_vs_eager", max(d["fe"] for d in m), "<=", FUSED_RTOL,
                 FUSED_SRC),
            Part("border_footprint_excess_vs_anchored_003_reference_sigma_1",
                 anchored["excess"], "<=", FOOT_TOL, FOOT_ANCHORED_SRC),
        ], {"cases": cases, "partly_out_fraction": min(d["partly_out_fraction"] for d in m),
            "fused_ran": all(d["ran"] for d in m),
            "border_centre_inside_anchored_rel_diff": anchored["rel"],
            "border_centre_inside_anchored_rel_se": anchored["se"],
            "border_centre_inside_rel_diff": inside["rel"],
            "border_centre_inside_rel_se": inside["se"],
            "border_centre_outside_rel_diff": outside["rel"],
            "border_centre_outside_rel_se": outside["se"]})

    def summary(runs, ev):
        n = ev.numbers
        return (f"{len(runs)} seeds: 0.3 px from a zero-padded border "
                f"{32 - int(n['in_bounds_auxiliaries_of_32']['max'])}+/32 auxiliaries are "
                f"masked, interior gradient (rel. error {n['border_rel_error']['max']:.1e}); "
                f"all out of bounds: max |grad| = {n['all_out_max_abs_grad']['max']:g} on every "
                f"path; 64 extreme cases: {int(n['nonfinite_entries']['max'])} NaN/Inf; a "
                f"footprint past the border where masking changes the gradient by "
                f">= {n['masking_effect_rel']['min']:.2f}: fused and eager equal the masked "
                f"NumPy reference to {n['max_rel_error_vs_masked_reference']['max']:.1e}; "
                f"in expectation at a border (4x down, centres inside) vs the masked "
                f"independent 003 reference with the anchored fit: rel. difference - 3 SE <= "
                f"{n['border_footprint_excess_vs_anchored_003_reference_sigma_1']['max']:.3f} "
                f"(<= {FOOT_TOL:g}); "
                f"reported, not judged: in expectation at a border (4x down) stnlab's anchored "
                f"fit differs from the masked independent 003 reference (intercept fit) by up "
                f"to {max(v['border_centre_inside_rel_diff'] for v in runs_nums(ev)):.2f} of "
                f"the gradient's norm with the output centres inside the image, "
                f"{max(v['border_centre_outside_rel_diff'] for v in runs_nums(ev)):.2f} with "
                f"them outside (a design difference, see the claim's note)")

    ev = over_seeds(ctx, body, summary=summary)
    return with_fused(ev, {k: v["fused_ran"] for k, v in ev.numbers["per_seed"].items()})


def smp5_measure(seed: int) -> dict:
    """Zoom-in from 1 to 1e-4 input px per output px, K = 8, float32 eager diagnostics
    (normal matrices), plus fused vs eager (float64) through the shipped sampler."""
    from sampling.linearized import draw_seed, fit_local_gradient
    from sampling.multiscale import gaussian_blur

    x = gaussian_blur(torch.rand(1, 1, 32, 32, generator=_gen(seed)), 1.5)  # float32
    ones = torch.ones(1, 1, 16, 16)
    zooms = (1.0, 10.0, 100.0, 1e3, 1e4)
    lam = {False: [], True: []}
    grad = {False: [], True: []}
    fe, ran, sf = 0.0, True, 0.0
    for zoom in zooms:
        # zoom 1: 16 output px over the central 16 input px, all inside the image
        grid = _affine_grid(1, 16, 16, 0.3, 0.5 / zoom, (0.123, -0.0571), torch.float32)
        for collapse in (False, True):
            fit = fit_local_gradient(x, grid, ones, seed=seed, num_samples=8, sigma=1.0,
                                     collapse_noise=collapse, eps=1e-3, align_corners=False,
                                     padding_mode="zeros", diagnostics=True)
            lam[collapse].append(float(fit.min_eigenvalue().median()))
            # |J| in intensity per input pixel (16 px per normalized unit).
            grad[collapse].append(float((fit.grad_grid / 16).norm(dim=-1).max()))
        d, ok = fused_vs_eager(x.double(), grid.double(), ones.double(), seed=seed,
                               num_samples=8, eps=1e-3)
        fe, ran = max(fe, d), ran and ok
        # the shipped entry point's gradient is this fit's (same noise seed, collapse on)
        got, _ = sampler_grid_grad(x.double(), grid.double(), ones.double(), seed=seed,
                                   eager=True, num_samples=8, eps=1e-3)
        want = fit_local_gradient(x.double(), grid.double(), ones.double(),
                                  seed=draw_seed(_gen(seed)), num_samples=8, sigma=1.0,
                                  collapse_noise=True, eps=1e-3, align_corners=False,
                                  padding_mode="zeros")
        sf = max(sf, _rel(got, want.numpy()))
    # The image's own steepest slope (per pixel), the scale a gradient should have.
    dx = (x[..., :, 1:] - x[..., :, :-1]).abs().max()
    dy = (x[..., 1:, :] - x[..., :-1, :]).abs().max()
    slope = float(torch.hypot(dx, dy))
    return {"zooms": list(zooms), "lam": lam, "grad": grad, "slope": slope, "fe": fe,
            "ran": ran, "sampler_vs_fit": sf}


@check("SMP-5")
def smp5_collapse_prevention(ctx):
    """Zooming in from 1 to 1e-4 input px per output px (K = 8, float32): without collapse
    noise the normal matrix's smallest eigenvalue collapses (~zoom^-2); with it, it stays
    >= 1 px^2 and the fitted gradient stays between 5 % and 2x of the image's steepest
    slope; fused and eager agree."""
    def body(seed):
        m = smp5_measure(seed)
        lam, grad, slope = m["lam"], m["grad"], m["slope"]
        return SeedRun([
            Part("lambda_min_ratio_without_noise_zoom1e4_vs_1", lam[False][-1] / lam[False][0],
                 "<=", 1e-6, "derived: without noise the offsets shrink with the zoom, so "
                 "lambda_min ~ zoom^-2 = 1e-8 at 1e4; x100 room"),
            Part("lambda_min_with_noise_px2_min_over_zooms", min(lam[True]), ">=", 1.0,
                 "a priori: 1 px std collapse noise over K = 8 auxiliaries gives ~K px^2; "
                 "1 px^2 is 8x below"),
            Part("max_grad_with_noise_over_image_slope", max(grad[True]) / slope, "<=", 2.0,
                 "a priori: at most twice the image's steepest slope"),
            Part("min_grad_with_noise_over_image_slope", min(grad[True]) / slope, ">=", 0.05,
                 "a priori: at least 5 % of the image's steepest slope (not collapsed)"),
            Part("max_rel_diff_fused_vs_eager", m["fe"], "<=", FUSED_RTOL, FUSED_SRC),
            Part("max_rel_diff_sampler_vs_fit", m["sampler_vs_fit"], "<=", FUSED_RTOL,
                 FUSED_SRC + " (the entry point's backward is this fit)"),
        ], {"lambda_min_px2_without": lam[False], "lambda_min_px2_with": lam[True],
            "fused_ran": m["ran"]},
            data={"zooms": m["zooms"], "lambda_min_px2": {"without": lam[False],
                                                          "with": lam[True]},
                  "max_abs_grad_per_px": {"without": grad[False], "with": grad[True]},
                  "image_slope_per_px": slope})

    def summary(runs, ev):
        d = next(iter(runs.values())).data
        lam = d["lambda_min_px2"]
        n = ev.numbers
        return (f"{len(runs)} seeds; output pixel = 1 .. 1e-4 input px, K = 8, float32: "
                f"without collapse noise the median smallest eigenvalue of the normal matrix "
                f"falls from {lam['without'][0]:.2g} to {lam['without'][-1]:.2g} px^2 (first "
                f"seed); with it, it stays >= "
                f"{n['lambda_min_with_noise_px2_min_over_zooms']['min']:.2g} px^2 and max "
                f"|grad| / image slope stays in "
                f"[{n['min_grad_with_noise_over_image_slope']['min']:.3g}, "
                f"{n['max_grad_with_noise_over_image_slope']['max']:.3g}]; fused kernel vs "
                f"eager (float64) {n['max_rel_diff_fused_vs_eager']['max']:.1e}")

    ev = over_seeds(ctx, body, summary=summary)
    return with_fused(ev, {k: v["fused_ran"] for k, v in ev.numbers["per_seed"].items()})
