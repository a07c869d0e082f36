"""Claims SMP-1, SMP-3, SMP-4, SMP-5: the linearized multi-sampler itself (paper 003).

Each check is a numerical experiment on :func:`sampling.linearized_grid_sample`
with a stated tolerance; none takes more than a few seconds. SMP-2, SMP-6 and
SMP-7 (bilinear's 4-neighbour gradient, basins, alignment) live in
:mod:`proofs.claims.sampling`, which imports this module.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from proofs.registry import Evidence, check, claim
from sampling.warp import affine_grid

claim("SMP-1", "The linearized multi-sampler's forward value equals bilinear sampling "
      "(F.grid_sample).", source="003 Sec. 4, eq. 2", kind="numerical")
claim("SMP-3", "On an affine image the linearized sampler's gradient w.r.t. the sampling "
      "locations equals the true image gradient (exactly with eps = 0; within the Tikhonov "
      "bias eps / (lambda_min + eps) otherwise).", source="003 Sec. 4, eqs. 2-7",
      kind="numerical")
claim("SMP-4", "Out-of-bound auxiliary samples are masked; when all are out of bounds the "
      "gradient is exactly zero; the gradient is never NaN or Inf.", source="003 Sec. 6.1",
      kind="numerical")
claim("SMP-5", "Without collapse prevention the least-squares fit becomes ill-conditioned "
      "under zoom-in; with it, the fit stays conditioned and the gradients stay bounded.",
      source="003 Sec. 5, eqs. 8-9, Fig. 4", kind="numerical")


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


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
    from sampling import linearized_grid_sample

    g = _gen(ctx.seed)
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
                    ref = F.grid_sample(x, grid, mode="bilinear", padding_mode=padding,
                                        align_corners=align_corners)
                    key = str(dtype).replace("torch.", "")
                    worst[key] = max(worst[key], float((out - ref).abs().max()))
                    trials += 1
    err = max(worst.values())
    return Evidence.compare(
        "max_abs_diff", err, "<=", 1e-6,
        numbers={"max_abs_diff_float32": worst["float32"],
                 "max_abs_diff_float64": worst["float64"], "trials": trials},
        summary=f"{trials} random inputs (both dtypes, align_corners, 3 padding modes, grids "
                f"reaching 20% out of the image): forward differs from F.grid_sample by at "
                f"most {err:.1e}.")


@check("SMP-3")
def smp3_affine_gradient_is_exact(ctx):
    from sampling import linearized_grid_sample
    from sampling.linearized import DEFAULT_EPS, fit_local_gradient

    g = _gen(ctx.seed + 1)
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
    parts = [
        Evidence.compare("max_rel_error_eps0", errs[0.0], "<=", 1e-8),
        Evidence.compare("max_error_over_tikhonov_bound", errs[DEFAULT_EPS], "<=", 1.0 + 1e-6,
                         numbers={"max_rel_error_default_eps": worst_rel}),
    ]
    return Evidence.all_of(
        parts,
        summary=f"{trials} random affine images x in-bounds affine grids (K = 3 and 8, both "
                f"align_corners, float64): fitted grid gradient vs analytic, max rel. error "
                f"{errs[0.0]:.1e} with eps = 0; with the default eps = {DEFAULT_EPS:g} px^2 the "
                f"error ({worst_rel:.1e} rel.) stays within the Tikhonov bound "
                f"eps / (lambda_min + eps) (worst ratio {errs[DEFAULT_EPS]:.3f}).")


@check("SMP-4")
def smp4_masking_and_finiteness(ctx):
    from sampling import linearized_grid_sample
    from sampling.linearized import fit_local_gradient

    dtype = torch.float64
    # (a) Partially out of bounds: centre 0.3 px from the left edge, zero padding.
    coef = torch.tensor([[1.0, 2.0, 5.0]], dtype=dtype)
    x = _affine_image(1, 1, 16, 16, coef, dtype)
    grid = torch.tensor([[[[(2 * 0.3 + 1) / 16 - 1, 0.0]]]], dtype=dtype)
    ones = torch.ones(1, 1, 1, 1, dtype=dtype)
    fit = fit_local_gradient(x, grid, ones, seed=ctx.seed, num_samples=32, sigma=1.0,
                             collapse_noise=True, eps=0.0, align_corners=False,
                             padding_mode="zeros", diagnostics=True)
    expected = torch.tensor([8.0, 16.0], dtype=dtype)  # (1, 2) px^-1 times 8 px per unit
    border_err = float((fit.grad_grid.flatten() - expected).abs().max() / 16.0)
    in_bounds = int(fit.count.item())

    # (b) Every auxiliary out of bounds: exactly zero.
    img = torch.rand(2, 3, 10, 10, generator=_gen(ctx.seed), dtype=dtype)
    far = (torch.full((2, 4, 5, 2), 7.0, dtype=dtype)
           + torch.rand(2, 4, 5, 2, generator=_gen(ctx.seed + 1), dtype=dtype))
    far.requires_grad_(True)
    out = linearized_grid_sample(img, far, generator=_gen(ctx.seed + 2))
    (g_far,) = torch.autograd.grad(out, far, torch.ones_like(out))
    zero_max = float(g_far.abs().max())

    # (c) Never NaN/Inf: extreme zoom-in, degenerate grids, K = 1, eps = 0, float32.
    nonfinite = 0
    cases = 0
    x32 = torch.rand(2, 2, 12, 12, generator=_gen(ctx.seed + 3))
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
                    o = linearized_grid_sample(x32, gr_, num_samples=k, collapse_noise=collapse,
                                               eps=eps, generator=_gen(ctx.seed + 4))
                    (gg,) = torch.autograd.grad(o, gr_, torch.ones_like(o))
                    nonfinite += int((~torch.isfinite(gg)).sum())
                    cases += 1
    parts = [
        Evidence.compare("border_rel_error", border_err, "<=", 1e-9),
        Evidence.compare("in_bounds_auxiliaries_of_32", in_bounds, "<", 32),
        Evidence.compare("all_out_max_abs_grad", zero_max, "<=", 0.0),
        Evidence.compare("nonfinite_entries", nonfinite, "<=", 0),
    ]
    return Evidence.all_of(
        parts,
        summary=f"0.3 px from a zero-padded border {32 - in_bounds}/32 auxiliaries are masked "
                f"and the gradient is the interior one (rel. error {border_err:.1e}); all "
                f"auxiliaries out of bounds gives max |grad| = {zero_max:g}; {cases} extreme "
                f"cases (zoom 1e6, degenerate grids, K = 1, eps = 0, float32): "
                f"{nonfinite} NaN/Inf.")


@check("SMP-5")
def smp5_collapse_prevention(ctx):
    from sampling.linearized import fit_local_gradient
    from sampling.multiscale import gaussian_blur

    x = gaussian_blur(torch.rand(1, 1, 32, 32, generator=_gen(ctx.seed)), 1.5)  # float32
    ones = torch.ones(1, 1, 16, 16)
    zooms = (1.0, 10.0, 100.0, 1e3, 1e4)
    lam = {False: [], True: []}
    grad = {False: [], True: []}
    for zoom in zooms:
        # zoom 1: 16 output px over the central 16 input px, all inside the image
        grid = _affine_grid(1, 16, 16, 0.3, 0.5 / zoom, (0.123, -0.0571), torch.float32)
        for collapse in (False, True):
            fit = fit_local_gradient(x, grid, ones, seed=ctx.seed, num_samples=8, sigma=1.0,
                                     collapse_noise=collapse, eps=1e-3, align_corners=False,
                                     padding_mode="zeros", diagnostics=True)
            lam[collapse].append(float(fit.min_eigenvalue().median()))
            # |J| in intensity per input pixel (16 px per normalized unit).
            grad[collapse].append(float((fit.grad_grid / 16).norm(dim=-1).max()))
    # The image's own steepest slope (per pixel), the scale a gradient should have.
    dx = (x[..., :, 1:] - x[..., :, :-1]).abs().max()
    dy = (x[..., 1:, :] - x[..., :-1, :]).abs().max()
    slope = float(torch.hypot(dx, dy))
    degeneration = lam[False][-1] / lam[False][0]
    parts = [
        Evidence.compare("lambda_min_ratio_without_noise_zoom1e4_vs_1", degeneration, "<=", 1e-6),
        Evidence.compare("lambda_min_with_noise_px2_min_over_zooms", min(lam[True]), ">=", 1.0),
        Evidence.compare("max_grad_with_noise_over_image_slope", max(grad[True]) / slope,
                         "<=", 2.0),
        Evidence.compare("min_grad_with_noise_over_image_slope", min(grad[True]) / slope,
                         ">=", 0.05),
    ]
    return Evidence.all_of(
        parts,
        data={"zooms": list(zooms), "lambda_min_px2": {"without": lam[False], "with": lam[True]},
              "max_abs_grad_per_px": {"without": grad[False], "with": grad[True]},
              "image_slope_per_px": slope},
        summary=f"output pixel = 1 .. 1e-4 input px, K = 8, float32, default eps: without "
                f"collapse noise the "
                f"median smallest eigenvalue of the normal matrix falls from "
                f"{lam[False][0]:.2g} to {lam[False][-1]:.2g} px^2 (ill-conditioned: the "
                f"Tikhonov term takes over and max |grad| shrinks to {grad[False][-1]:.1e} per "
                f"px); with it, it stays >= "
                f"{min(lam[True]):.2g} px^2 and max |grad| stays in "
                f"[{min(grad[True]):.3g}, {max(grad[True]):.3g}] per px (image slope "
                f"{slope:.3g}).")
