"""The sampler experiments of 003 Sec. 6.3-6.5 as library functions (tensors in, results out).

* :func:`gradient_field` -- 003 Sec. 6.3, Fig. 8: the negative gradient of the L2
  alignment loss w.r.t. the translation of a crop, over a grid of initial offsets.
* :func:`align_images` -- 003 Sec. 6.4, Fig. 7: direct per-image optimisation of
  the six affine parameters from a random perturbation, batched over trials.
* :func:`corner_reprojection_error`, :func:`recall_curve`, :func:`recall_auc` --
  the metric of Figs. 7, 9 and 10.
* :func:`sample_perturbations` -- the random perturbations of 003 Sec. 6.4.

The ablations of 003 Sec. 6.5 (Figs. 9, 10) are :func:`align_images` runs with
different ``method_options`` (``sigma``, ``num_samples``, ``collapse_noise``) and,
for the collapse ablation, ``downsample < 1`` (an upsampling output grid).

No file I/O, no plotting: drivers (``proofs/experiments/samplers.py``) load the
images and write JSON; figures (``figures/sampling.py``) draw from the JSON.

Convention:
    All matrices are ``input_from_output`` ``(N, 2, 3)`` in normalized
    coordinates (see :mod:`sampling.geometry`), ``align_corners=False`` unless
    given. The *region* of an experiment is the central ``crop`` fraction of the
    input, ``input_from_output = crop * I`` (zero translation); the output grid
    has ``round(crop * H / downsample) x round(crop * W / downsample)`` pixels,
    so ``downsample = 2`` halves the resolution of the region and
    ``downsample = 0.5`` is a 2x upsampling (Fig. 10b). Offsets, translations
    and corner errors are in normalized units of the *input* image (its full
    width is 2); multiply by :func:`sampling.geometry.pixel_units` for pixels.

The loss (both experiments, 003 Sec. 6.3 "an l2 loss"; the reduction is our
choice): for one trial, ``L = mean_{c, y, x} (S_method(I; M)[c, y, x] - T[c, y, x])^2``
where ``S_method(I; M)`` samples image ``I`` on the output grid of ``M`` with the
chosen sampler. In the alignment experiment (``align_images(target="common")``, the
default) the target is 003's (Sec. 6.3-6.4 and its released code): *one* target per
trial, the region at the true matrix downsampled by plain bilinear sampling, shared by
every sampler. ``target="own"`` (a labelled diagnostic) uses the *same sampler's*
rendering at the true matrix instead, so every method has its minimum at the truth; with
the bilinear and linearized samplers (whose forward values agree, SMP-1) the two targets
are the same, with the multi-scale sampler they differ. The gradient field always uses
the own target. Batched trials are summed, which
keeps their gradients independent of each other (the linearized sampler draws
its auxiliary noise once per call and shares it across the batch, so trials of
one batch see correlated noise, never each other's images).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from . import api
from .checks import check_choice, check_finite, check_positive, check_shape
from .geometry import compose, params_to_matrix
from .warp import warp_affine

__all__ = [
    "paired_auc_difference",
    "Perturbation",
    "GradientField",
    "AlignmentResult",
    "region_matrix",
    "output_size",
    "render",
    "gradient_field",
    "basin_statistics",
    "offset_grid",
    "sample_perturbations",
    "align_images",
    "corner_reprojection_error",
    "recall_curve",
    "recall_auc",
    "trial_auc_scores",
    "CORNERS",
]

#: The four corners of the sampled region in output normalized coordinates ``(x, y)``.
CORNERS = ((-1.0, -1.0), (1.0, -1.0), (1.0, 1.0), (-1.0, 1.0))


# --------------------------------------------------------------------------- helpers
def _as_batch_images(images, fn: str, name: str = "images") -> torch.Tensor:
    """Accept ``(C, H, W)`` or ``(N, C, H, W)`` floating images; return 4-D."""
    if isinstance(images, torch.Tensor) and images.dim() == 3:
        images = images.unsqueeze(0)  # (1, C, H, W)
    check_shape(images, "N C H W", name=name, fn=fn)
    if not images.is_floating_point():
        raise ValueError(f"{fn}: expected {name} to be a floating-point tensor, got {images.dtype}")
    check_finite(images, name=name, fn=fn)
    return images


def region_matrix(n: int, crop: float, *, dtype=None, device=None) -> torch.Tensor:
    """The true ``input_from_output`` of the central region: ``(n, 2, 3)`` = ``[crop * I | 0]``."""
    m = torch.zeros(n, 2, 3, dtype=dtype or torch.get_default_dtype(), device=device)
    m[:, 0, 0] = crop
    m[:, 1, 1] = crop
    return m


def output_size(in_hw: Sequence[int], crop: float, downsample: float) -> tuple[int, int]:
    """Output grid ``(h, w)`` = ``round(crop * (H, W) / downsample)``, at least 2 pixels each."""
    check_positive(crop, name="crop", fn="output_size")
    check_positive(downsample, name="downsample", fn="output_size")
    h, w = (max(2, int(round(crop * s / downsample))) for s in in_hw)
    return h, w


def _method_options(method: str, method_options: dict | None,
                    generator: torch.Generator | None) -> dict:
    opts = dict(method_options or {})
    if method == "linearized" and generator is not None:
        opts.setdefault("generator", generator)
    return opts


def render(images: torch.Tensor, input_from_output: torch.Tensor, size: tuple[int, int], *,
           method: str = "bilinear", method_options: dict | None = None,
           align_corners: bool = False) -> torch.Tensor:
    """Sample ``images`` on the output grid of ``input_from_output``.

    Convention:
        ``input_from_output`` maps output normalized ``(x, y)`` to input
        normalized ``(x, y)`` (``F.affine_grid``'s ``theta``); the result is
        ``(T f)`` with ``T^{-1} = input_from_output`` (see :mod:`sampling.geometry`).

    Args:
        images: ``(N, C, H, W)``.
        input_from_output: ``(N, 2, 3)``.
        size: output ``(h, w)``.
        method: a :data:`sampling.METHODS` entry.
        method_options: passed to :func:`sampling.grid_sample`.
        align_corners: as in ``F.affine_grid`` / ``F.grid_sample``.

    Returns:
        ``(N, C, h, w)`` samples.
    """
    return warp_affine(images, input_from_output, tuple(size), method=method,
                       align_corners=align_corners, **(method_options or {}))


# ------------------------------------------------------------------- gradient field
def offset_grid(extent: float, n: int, *, dtype=None, device=None) -> torch.Tensor:
    """A square grid of ``n x n`` translation offsets in ``[-extent, extent]^2``: ``(n * n, 2)``.

    Rows are ``(tx, ty)``; ``tx`` varies fastest. Odd ``n`` includes the zero offset.
    """
    check_positive(extent, name="extent", fn="offset_grid")
    if not isinstance(n, int) or n < 2:
        raise ValueError(f"offset_grid: expected n to be an int >= 2, got {n!r}")
    ticks = torch.linspace(-extent, extent, n, dtype=dtype or torch.get_default_dtype(),
                           device=device)
    ticks = (ticks - ticks.flip(0)) / 2  # exactly antisymmetric: the middle tick is exactly 0
    ty, tx = torch.meshgrid(ticks, ticks, indexing="ij")  # (n, n) each
    return torch.stack([tx, ty], -1).reshape(-1, 2)  # (n * n, 2)


@dataclass
class GradientField:
    """The result of :func:`gradient_field` (all tensors on the CPU).

    Attributes:
        offsets: ``(P, 2)`` initial translation offsets ``(tx, ty)`` (input normalized units).
        descent: ``(P, 2)`` negative gradient ``-dL/d(tx, ty)``.
        cosine: ``(P,)`` cosine between ``descent`` and the direction to the truth,
            ``-offset``; NaN at the zero offset (and where the gradient is exactly 0).
        loss: ``(P,)`` the loss at each offset.
        basin_fraction: fraction of non-zero offsets with ``cosine > cos_threshold``
            (a zero gradient counts as a miss).
        basin_radius: the largest ``r`` such that every non-zero offset with
            ``|offset| < r`` has ``cosine > cos_threshold``: the norm of the
            nearest miss, or the largest offset norm if nothing misses.
        radius_is_lower_bound: ``True`` when nothing missed (the basin reaches
            beyond the grid).
        output_size: ``(h, w)`` of the output grid.
        cos_threshold: the threshold used.
    """

    offsets: torch.Tensor
    descent: torch.Tensor
    cosine: torch.Tensor
    loss: torch.Tensor
    basin_fraction: float
    basin_radius: float
    radius_is_lower_bound: bool
    output_size: tuple[int, int]
    cos_threshold: float

    def to_dict(self) -> dict:
        """JSON-friendly dict (lists and floats; NaN cosines become ``None``)."""
        cos = [None if not math.isfinite(v) else v for v in self.cosine.tolist()]
        return {"offsets": self.offsets.tolist(), "descent": self.descent.tolist(),
                "cosine": cos, "loss": self.loss.tolist(),
                "basin_fraction": self.basin_fraction, "basin_radius": self.basin_radius,
                "radius_is_lower_bound": self.radius_is_lower_bound,
                "output_size": list(self.output_size), "cos_threshold": self.cos_threshold}


def basin_statistics(offsets: torch.Tensor, cosine: torch.Tensor,
                     cos_threshold: float = 0.7) -> tuple[float, float, bool]:
    """``(basin_fraction, basin_radius, radius_is_lower_bound)`` of a gradient field.

    See :class:`GradientField` for the definitions. ``offsets (P, 2)``, ``cosine (P,)``.
    """
    norm = offsets.norm(dim=-1)
    nonzero = norm > 1e-9 * float(norm.max().clamp_min(1e-30))
    hit = torch.nan_to_num(cosine, nan=-2.0) > cos_threshold
    frac = float(hit[nonzero].float().mean()) if bool(nonzero.any()) else float("nan")
    miss = nonzero & ~hit
    if bool(miss.any()):
        return frac, float(norm[miss].min()), False
    return frac, float(norm.max()), True


def gradient_field(image: torch.Tensor, *, downsample: float, offsets: torch.Tensor,
                   method: str = "bilinear", method_options: dict | None = None,
                   crop: float = 2.0 / 3.0, cos_threshold: float = 0.7,
                   align_corners: bool = False, batch_size: int = 64,
                   generator: torch.Generator | None = None) -> GradientField:
    """003 Sec. 6.3 / Fig. 8: the descent direction of the alignment loss over initial offsets.

    For every offset ``t`` the crop is sampled at ``input_from_output = [crop * I | t]``
    on an output grid downsampled by ``downsample`` and compared with the target
    at ``t = 0`` (the loss of the module docstring). The gradient is taken w.r.t.
    ``t`` only, so the field is two-dimensional; its negative should point at the
    truth, i.e. along ``-t``.

    Convention:
        Offsets are input normalized ``(tx, ty)``; see the module docstring.

    Args:
        image: ``(C, H, W)`` or ``(1, C, H, W)`` floating image.
        downsample: output resolution divisor ``d`` (> 0).
        offsets: ``(P, 2)`` initial offsets, e.g. :func:`offset_grid`.
        method: ``"bilinear"``, ``"linearized"`` or ``"multiscale"``.
        method_options: passed to the sampler (e.g. ``{"num_samples": 8}``).
        crop: side fraction of the central region (003: two-thirds).
        cos_threshold: an offset is in the basin when ``cos > cos_threshold``.
        align_corners: as in ``F.grid_sample``.
        batch_size: offsets per forward/backward pass (memory only; results do
            not depend on it for deterministic samplers).
        generator: seeds the linearized sampler's auxiliary samples.

    Returns:
        A :class:`GradientField`.

    Raises:
        ValueError: bad shapes, a non-positive ``downsample`` or ``crop``, an
            unknown method.
    """
    fn = "gradient_field"
    image = _as_batch_images(image, fn, "image")
    if image.shape[0] != 1:
        raise ValueError(f"{fn}: expected image of shape (C, H, W) or (1, C, H, W), "
                         f"got {tuple(image.shape)}")
    check_shape(offsets, "P 2", name="offsets", fn=fn)
    check_finite(offsets, name="offsets", fn=fn)
    check_choice(method, api.METHODS, name="method", fn=fn)
    check_positive(batch_size, name="batch_size", fn=fn)
    offsets = offsets.to(image.dtype).to(image.device)
    size = output_size(image.shape[-2:], crop, downsample)
    opts = _method_options(method, method_options, generator)
    with torch.no_grad():
        target = render(image, region_matrix(1, crop, dtype=image.dtype, device=image.device),
                        size, method=method, method_options=opts,
                        align_corners=align_corners)  # (1, C, h, w)
    grads, losses = [], []
    for start in range(0, offsets.shape[0], int(batch_size)):
        t = offsets[start:start + int(batch_size)].clone().requires_grad_(True)  # (B, 2)
        b = t.shape[0]
        m = region_matrix(b, crop, dtype=image.dtype, device=image.device)
        m = torch.cat([m[:, :, :2], t.unsqueeze(-1)], dim=-1)  # (B, 2, 3)
        out = render(image.expand(b, *image.shape[1:]), m, size, method=method,
                     method_options=opts, align_corners=align_corners)  # (B, C, h, w)
        loss = (out - target).pow(2).flatten(1).mean(1)  # (B,)
        (g,) = torch.autograd.grad(loss.sum(), t)
        grads.append(g.detach())
        losses.append(loss.detach())
    descent = -torch.cat(grads).cpu()  # (P, 2)
    to_truth = -offsets.detach().cpu()
    denom = descent.norm(dim=-1) * to_truth.norm(dim=-1)
    cosine = torch.where(denom > 0, (descent * to_truth).sum(-1) / denom.clamp_min(1e-300),
                         torch.full_like(denom, float("nan")))
    frac, radius, lower = basin_statistics(offsets.cpu(), cosine, cos_threshold)
    return GradientField(offsets.detach().cpu(), descent, cosine, torch.cat(losses).cpu(), frac,
                         radius, lower, size, float(cos_threshold))


# ---------------------------------------------------------------------- alignment
@dataclass(frozen=True)
class Perturbation:
    """The random perturbation of 003 Sec. 6.4 (standard deviations; radians, natural log).

    ``P = [R(angle) diag(exp(log_scale_x), exp(log_scale_y)) | (tx, ty)]`` acts in
    the *output* normalized frame, so the perturbed matrix is
    ``M_init = M_true @ P`` (``P`` first; :func:`sampling.geometry.compose`).

    Attributes:
        rotation_std: 003: pi/4.
        log_scale_std: per-axis, independent. 003's text (as extracted) reads
            "sqrt 2 for scale changes"; we read it as a multiplicative standard
            deviation of sqrt(2), i.e. ``ln(sqrt(2)) = 0.347`` in natural log
            (a log2 std of 0.5). This is our choice.
        translation_std: 003: 0.2 (normalized units).
        clip: each draw is clipped to ``[-clip * std, clip * std]`` as in the
            authors' released perturbation code (our choice to follow it).
    """

    rotation_std: float = math.pi / 4
    log_scale_std: float = math.log(math.sqrt(2.0))
    translation_std: float = 0.2
    clip: float = 2.0

    def to_dict(self) -> dict:
        return {"rotation_std": self.rotation_std, "log_scale_std": self.log_scale_std,
                "translation_std": self.translation_std, "clip": self.clip}


def sample_perturbations(n: int, perturbation: Perturbation = Perturbation(), *,
                         generator: torch.Generator | None = None, dtype=None,
                         device=None) -> torch.Tensor:
    """Draw ``n`` perturbation matrices ``P`` ``(n, 2, 3)`` (see :class:`Perturbation`)."""
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"sample_perturbations: expected n to be a positive int, got {n!r}")
    dtype = dtype or torch.get_default_dtype()
    z = torch.randn(n, 5, generator=generator, dtype=torch.float64)  # angle, lsx, lsy, tx, ty
    z = z.clamp(-perturbation.clip, perturbation.clip)
    std = torch.tensor([perturbation.rotation_std, perturbation.log_scale_std,
                        perturbation.log_scale_std, perturbation.translation_std,
                        perturbation.translation_std], dtype=torch.float64)
    z = (z * std).to(dtype)
    return params_to_matrix(z[:, 0], z[:, 1:3], 0.0, z[:, 3:5]).to(device)


def corner_reprojection_error(estimate: torch.Tensor, truth: torch.Tensor, *,
                              corners=CORNERS) -> torch.Tensor:
    """Mean distance between the corners of the sampled region under two matrices.

    003 Fig. 7: "the average re-projection error of the four corners of the
    sampled region". Each output corner ``c`` (normalized ``(x, y)``, default
    ``(+-1, +-1)``) is mapped by both ``input_from_output`` matrices.

    Args:
        estimate: ``(N, 2, 3)``.
        truth: ``(N, 2, 3)``.
        corners: the output-frame corners.

    Returns:
        ``(N,)`` ``mean_c |estimate(c) - truth(c)|`` in input normalized units
        (``inf`` where ``estimate`` is not finite).
    """
    fn = "corner_reprojection_error"
    dims = check_shape(estimate, "N 2 3", name="estimate", fn=fn)
    check_shape(truth, "N 2 3", name="truth", fn=fn, dims=dims)
    c = torch.tensor(corners, dtype=estimate.dtype, device=estimate.device)  # (4, 2)
    ch = torch.cat([c, torch.ones_like(c[:, :1])], -1)  # (4, 3)
    diff = (estimate - truth.to(estimate)) @ ch.T  # (N, 2, 4)
    err = diff.norm(dim=1).mean(-1)  # (N,)
    return torch.where(torch.isfinite(err), err, torch.full_like(err, float("inf")))


def recall_curve(errors: torch.Tensor, thresholds: torch.Tensor) -> torch.Tensor:
    """Fraction of trials with ``error <= threshold``, for each threshold: ``(T,)`` in [0, 1].

    Args:
        errors: ``(N,)`` (``inf``/NaN count as failures).
        thresholds: ``(T,)``.
    """
    fn = "recall_curve"
    check_shape(errors, "N", name="errors", fn=fn)
    check_shape(thresholds, "T", name="thresholds", fn=fn)
    if errors.shape[0] == 0:
        raise ValueError(f"{fn}: expected at least one error, got an empty errors tensor")
    e = torch.nan_to_num(errors.double(), nan=float("inf"))
    return (e[None, :] <= thresholds.double()[:, None]).double().mean(1)  # (T,)


def recall_auc(errors: torch.Tensor, max_threshold: float, *, n: int = 101) -> float:
    """Mean recall over ``n`` thresholds evenly spaced in ``[0, max_threshold]`` (in [0, 1])."""
    check_positive(max_threshold, name="max_threshold", fn="recall_auc")
    th = torch.linspace(0, max_threshold, n, dtype=torch.float64)
    return float(recall_curve(errors, th).mean())


def trial_auc_scores(errors: torch.Tensor, max_threshold: float, *, n: int = 101
                     ) -> torch.Tensor:
    """Each trial's share of :func:`recall_auc`: ``s_i = mean_t 1[e_i <= t]`` over the same
    ``n`` thresholds, so ``recall_auc(e) == s.mean()`` and paired differences of AUCs are
    means of per-trial differences (what an interval over trials resamples).

    Args:
        errors: ``(N,)`` per-trial errors (non-finite: never recalled).

    Returns:
        ``(N,)`` float64 in ``[0, 1]``.
    """
    check_positive(max_threshold, name="max_threshold", fn="trial_auc_scores")
    th = torch.linspace(0, max_threshold, n, dtype=torch.float64)
    e = errors.detach().double().cpu().reshape(-1, 1)
    ok = torch.isfinite(e) & (e <= th)
    return ok.double().mean(1)


def paired_auc_difference(errors_a: torch.Tensor, errors_b: torch.Tensor, *,
                          max_threshold: float, n_boot: int = 2000, level: float = 0.95,
                          seed: int = 0) -> dict:
    """Recall-AUC difference ``a - b`` of two samplers run on the same trials, with a
    paired bootstrap confidence interval.

    The trials are resampled with replacement (the same indices for both samplers, so
    the pairing by image and perturbation is kept) ``n_boot`` times; the interval is the
    central ``level`` quantile range of the resampled differences (percentile method).

    Args:
        errors_a, errors_b: ``(N,)`` final errors of the same ``N`` trials (``inf``/NaN
            count as failures).
        max_threshold: AUC over thresholds in ``[0, max_threshold]`` (:func:`recall_auc`).
        n_boot: bootstrap resamples (>= 1).
        level: confidence level in (0, 1).
        seed: seed of the resampling (the result is deterministic).

    Returns:
        ``{"diff": float, "lo": float, "hi": float, "level": level, "n": N,
        "n_boot": n_boot}``.
    """
    fn = "paired_auc_difference"
    check_shape(errors_a, "N", name="errors_a", fn=fn)
    check_shape(errors_b, "N", name="errors_b", fn=fn, dims={"N": errors_a.shape[0]})
    if not isinstance(n_boot, int) or n_boot < 1:
        raise ValueError(f"{fn}: expected n_boot to be an int >= 1, got {n_boot!r}")
    if not 0.0 < float(level) < 1.0:
        raise ValueError(f"{fn}: expected level in (0, 1), got {level!r}")
    th = torch.linspace(0, max_threshold, 101, dtype=torch.float64)
    a = torch.nan_to_num(errors_a.double().cpu(), nan=float("inf"))
    b = torch.nan_to_num(errors_b.double().cpu(), nan=float("inf"))
    n = a.shape[0]
    gen = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, n, (n_boot, n), generator=gen)  # (B, N) resampled trials

    def auc(e):  # (B, N) -> (B,): mean recall over the thresholds
        return (e[:, None, :] <= th[None, :, None]).double().mean(2).mean(1)

    diffs = auc(a[idx]) - auc(b[idx])  # (B,)
    q = torch.tensor([(1 - level) / 2, (1 + level) / 2], dtype=torch.float64)
    lo, hi = torch.quantile(diffs, q).tolist()
    return {"diff": recall_auc(a, max_threshold) - recall_auc(b, max_threshold),
            "lo": lo, "hi": hi, "level": float(level), "n": n, "n_boot": n_boot}


@dataclass
class AlignmentResult:
    """The result of :func:`align_images` (all tensors on the CPU).

    Attributes:
        errors: ``(N,)`` final corner reprojection errors (input normalized units).
        initial_errors: ``(N,)`` the same at the perturbed start.
        estimate: ``(N, 2, 3)`` final matrices.
        initial: ``(N, 2, 3)`` perturbed start matrices.
        truth: ``(N, 2, 3)`` true matrices.
        loss_history: ``(S,)`` the mean loss over trials, every ``log_every`` steps.
        output_size: ``(h, w)``.
        config: the settings used (method, options, steps, lr, ...), JSON-friendly.
    """

    errors: torch.Tensor
    initial_errors: torch.Tensor
    estimate: torch.Tensor
    initial: torch.Tensor
    truth: torch.Tensor
    loss_history: torch.Tensor
    output_size: tuple[int, int]
    config: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """JSON-friendly dict (infinite errors become the string ``"inf"``)."""
        def fl(x):
            return [v if math.isfinite(v) else "inf" for v in x.tolist()]
        return {"errors": fl(self.errors), "initial_errors": fl(self.initial_errors),
                "loss_history": fl(self.loss_history), "output_size": list(self.output_size),
                "config": self.config}


def align_images(images: torch.Tensor, *, perturbation: Perturbation | torch.Tensor,
                 method: str = "bilinear", steps: int = 100, lr: float = 1e-2,
                 downsample: float = 1.0, crop: float = 2.0 / 3.0,
                 method_options: dict | None = None, align_corners: bool = False,
                 generator: torch.Generator | None = None, log_every: int = 10,
                 progress: Callable[[int, float], None] | None = None,
                 target: str = "common") -> AlignmentResult:
    """003 Sec. 6.4 / Fig. 7: optimise the six affine parameters of each trial directly.

    Trial ``i`` aligns image ``images[i]``: the target is the central region
    (``M_true = [crop * I | 0]``) rendered on an output grid downsampled by
    ``downsample``; the start is ``M_init = M_true @ P_i`` with a random
    perturbation ``P_i``; the six entries of ``input_from_output`` are the
    parameters (as an STN's localization output would be, 000 eq. 17).

    Optimizer (003 does not state one for this experiment; our choice): Adam
    (``betas = (0.9, 0.999)``) on the ``(N, 2, 3)`` matrix entries, constant
    learning rate ``lr``, ``steps`` iterations, loss as in the module docstring
    summed over trials. Adam acts element-wise, so the batch is exactly ``N``
    independent optimisations, and its step size does not depend on each
    sampler's gradient magnitude (a plain SGD comparison would mostly compare
    gradient scales).

    Convention:
        Matrices ``input_from_output`` in normalized coordinates; errors in input
        normalized units (module docstring).

    Args:
        images: ``(N, C, H, W)`` one image per trial (repeat an image for several
            perturbations of it).
        perturbation: a :class:`Perturbation` to draw from (with ``generator``), or
            ``(N, 2, 3)`` perturbation matrices ``P``.
        method: ``"bilinear"``, ``"linearized"`` or ``"multiscale"``.
        steps: optimisation steps (>= 0).
        lr: Adam learning rate.
        downsample: output resolution divisor (``< 1`` upsamples).
        crop: side fraction of the central region.
        method_options: passed to the sampler.
        align_corners: as in ``F.grid_sample``.
        generator: draws the perturbations and seeds the linearized sampler.
        log_every: record the mean loss every this many steps.
        progress: called as ``progress(step, mean_loss)`` at each record.
        target: ``"common"`` (003's protocol: the region at the truth rendered by plain
            bilinear sampling, the same for every sampler) or ``"own"`` (diagnostic: the
            chosen sampler's own rendering at the truth).

    Returns:
        An :class:`AlignmentResult`.

    Raises:
        ValueError: bad shapes or arguments.
    """
    fn = "align_images"
    images = _as_batch_images(images, fn)
    n = images.shape[0]
    check_choice(method, api.METHODS, name="method", fn=fn)
    if not isinstance(steps, int) or steps < 0:
        raise ValueError(f"{fn}: expected steps to be an int >= 0, got {steps!r}")
    check_positive(lr, name="lr", fn=fn)
    check_positive(log_every, name="log_every", fn=fn)
    check_choice(target, ("common", "own"), name="target", fn=fn)
    kw = dict(dtype=images.dtype, device=images.device)
    if isinstance(perturbation, Perturbation):
        pert = sample_perturbations(n, perturbation, generator=generator, **kw)
    else:
        check_shape(perturbation, "N 2 3", name="perturbation", fn=fn, dims={"N": n})
        check_finite(perturbation, name="perturbation", fn=fn)
        pert = perturbation.to(**kw)
    size = output_size(images.shape[-2:], crop, downsample)
    opts = _method_options(method, method_options, generator)
    truth = region_matrix(n, crop, **kw)
    initial = compose(truth, pert)  # (N, 2, 3): P first, then the region
    with torch.no_grad():
        if target == "common":  # 003: one bilinearly downsampled target for every sampler
            target_img = render(images, truth, size, method="bilinear",
                                align_corners=align_corners)  # (N, C, h, w)
        else:
            target_img = render(images, truth, size, method=method, method_options=opts,
                                align_corners=align_corners)  # (N, C, h, w)
    theta = initial.clone().requires_grad_(True)
    opt = torch.optim.Adam([theta], lr=lr)
    history = []
    for step in range(steps + 1):
        out = render(images, theta, size, method=method, method_options=opts,
                     align_corners=align_corners)  # (N, C, h, w)
        loss = (out - target_img).pow(2).flatten(1).mean(1)  # (N,)
        if step % int(log_every) == 0 or step == steps:
            mean = float(loss.detach().mean())
            history.append(mean)
            if progress is not None:
                progress(step, mean)
        if step == steps:
            break
        opt.zero_grad(set_to_none=True)
        loss.sum().backward()
        # a diverged trial must not poison the others (Adam is element-wise)
        if theta.grad is not None:
            theta.grad.nan_to_num_(nan=0.0, posinf=0.0, neginf=0.0)
        opt.step()
    estimate = theta.detach()
    config = {"method": method, "method_options": {k: v for k, v in opts.items()
                                                   if k != "generator"},
              "steps": steps, "lr": lr, "optimizer": "Adam", "downsample": downsample,
              "crop": crop, "align_corners": align_corners, "target": target,
              "perturbation": (perturbation.to_dict() if isinstance(perturbation, Perturbation)
                               else "given")}
    return AlignmentResult(corner_reprojection_error(estimate, truth).cpu(),
                           corner_reprojection_error(initial, truth).cpu(), estimate.cpu(),
                           initial.cpu(), truth.cpu(), torch.tensor(history), size, config)
