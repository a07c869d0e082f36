"""Linearized multi-sampling (Jiang et al., ICCV 2019; paper 003, Sec. 4-5, 6.1).

A drop-in for ``F.grid_sample(..., mode="bilinear")`` whose *value* is exactly
bilinear sampling but whose gradient with respect to the sampling locations comes
from a least-squares linear fit to the image around each location, using ``K``
random auxiliary samples spread over the output pixel's footprint in the input.
Under downsampling the bilinear gradient only sees the 4 neighbouring pixels
(003 Sec. 3); the fitted gradient sees the whole footprint.

The method, per output pixel ``p`` with sampling location ``x_p`` (003 eqs. 2-9):

1. Auxiliary offsets (Eq. 3, "sigma set to match the pixel width and height of
   the sample output"): ``o_k = sigma * D_p z_k`` with ``z_k ~ N(0, I_2)`` in
   *output*-pixel units, where ``D_p = [dx/dcol, dx/drow]`` is the local Jacobian
   of the grid (finite differences, :func:`grid_footprint`), i.e. the footprint
   of one output pixel in the input. ``sigma`` therefore follows the
   transformation's scale.
2. Collapse prevention (Sec. 5, Eqs. 8-9), applied *after* warping:
   ``o_k += (delta_u c_k, delta_v c'_k)`` with ``c ~ N(0, 1)`` and ``delta`` one
   *input* pixel along each axis.
3. Bilinear samples ``I(x_p + o_k)`` (``F.grid_sample``, stop-gradient, 6.1);
   auxiliaries whose bilinear stencil leaves the image are masked (weight 0, 6.1).
4. Tikhonov-regularized least squares for the local model of Eq. (2),
   ``I(x) ~= I(x_p) + J_p (x - x_p)``:
   ``J_p = (sum_k m_k o_k o_k^T + eps I)^{-1} sum_k m_k o_k (I(x_p + o_k) - I(x_p))``
   (offsets in input pixels, so ``eps`` is in squared input pixels). The 2x2
   normal matrix is shared by all channels and inverted in closed form. The
   Tikhonov term shrinks the exact least-squares answer by ``(S + eps)^{-1} S``,
   i.e. by at most ``eps / (lambda_min(S) + eps)`` (checked by claim SMP-3).
5. ``grad_grid[p] = sum_c grad_out[c, p] * J_{p,c}``, converted to normalized
   units.

Design choices (and how they differ from the paper's text):

* **Forward is exactly bilinear.** Eq. (2) evaluated at ``x = x_p`` is
  ``I(T(x_p))``; the fit only shapes the backward pass, implemented as a custom
  :class:`torch.autograd.Function` that computes it in ``backward``.
* **No bias column.** Eq. (6) appends a row of ones (an intercept). We fit the
  model of Eq. (2) as written, anchored at the centre sample (which is exactly
  the forward value). On an affine image both give the exact gradient; the
  anchored fit needs only the 2x2 system (5 accumulators per pixel instead of
  9), which roughly halves the fit's elementwise work.
* **Masking.** An auxiliary is "in bounds" when its whole bilinear stencil lies
  inside the image (pixel coordinates in ``[0, W-1] x [0, H-1]``), so no padded
  value enters the fit, whatever ``padding_mode``. If every auxiliary of a pixel
  is masked, its normal equations are all zero and its gradient is exactly 0
  (6.1: "A_i becomes a zero matrix").
* **Gradient received by the input image**: exactly bilinear's,
  ``d out / d input`` of ``F.grid_sample`` (the forward value *is* a bilinear
  sample of ``input`` at ``x_p``). The auxiliary samples pass no gradient to the
  input or to anything else (6.1): only the sampling locations receive the fitted
  gradient. The footprint ``D_p`` and the noise are constants.
* **Noise.** One seed is drawn per call from ``generator`` (or torch's default
  generator); ``backward`` turns it into one field of shape ``(4, K, h, w)``
  (footprint ``z``, collapse ``c``) **shared by the images of the batch**.
  Within an image every pixel and auxiliary index gets independent ``N(0, 1)``
  draws, exactly Eq. (3)/(8-9), so each image's gradient has exactly the
  distribution of the per-image method; only the errors of different images in a
  batch become correlated (common random numbers), so a batch-mean gradient
  does not average the sampling noise over images. Drawing per image costs
  ``N x`` more normal variates (``6.4M`` for ``N=256, 28x28, K=8``, slower than
  the whole backward pass). Calls with the same generator state reproduce
  bit-for-bit on the same device.
* **Noise pool.** Drawing even the shared field costs ~0.1 ms a call on CPU (as much
  as a bilinear forward + backward on the small benchmark shapes), so the variates
  come from a pool: ``2**20`` standard normals per (dtype, device), drawn once from a
  fixed seed; a call uses the window of ``4 K h w`` consecutive entries starting at
  ``seed mod (2**20 - 4 K h w + 1)``. Statistically: a window of an i.i.d. sequence
  is i.i.d., so within a call the field is exactly as above (given the pool, its
  values are an empirical sample of 2**20 normals: mean and variance within 0.003
  of 0 and 1, tested). Across calls the start is uniform over >= 786k positions
  (fields up to ``_POOL_MAX_WINDOW = 2**18`` variates; larger ones are drawn fresh),
  so the same (auxiliary, pixel) slot reuses a variate only when two starts
  coincide (probability ~1e-6 per pair of calls); a variate reused at another slot
  meets another pixel's footprint and image content, so successive gradient
  estimates stay (practically) independent. The pool costs 4 MB (float32) per
  dtype and device.
* **torch.func.** ``grad``/``vjp`` work (``setup_context`` style Function; the fused
  kernels are backend kernels, so the transforms unwrap their tensors first), and so
  does ``vmap``: the vmapped dimension joins the batch ``N`` (one call, one shared
  noise field, as within a batch). Drawing the call's seed is a random operation, so
  ``vmap`` needs ``randomness="same"`` (or ``"different"``) as for any random op.
* **Memory and cost.** On CPU (float32/float64) ``backward`` runs a fused C++
  kernel (:mod:`sampling._ext`, ``csrc/linearized_fit.cpp``, built with
  ``torch.utils.cpp_extension`` at first use, ~15 s, then cached): one pass over the
  output pixels computes the footprint, the ``K`` masked bilinear samples of all
  channels, the five sums of the 2x2 normal equations and the solve, from the same
  noise field as the eager path (in input pixels rather than normalized units, so
  the two agree up to rounding; float32 runs AVX-512 or AVX2 intrinsics where the CPU
  has them). It allocates only the ``(N, h, w, 2)`` result: peak memory of a forward
  + backward is 1.04-1.8x bilinear's (eager: 1.9-6.7x). Time: see
  ``benchmarks/README.md`` (``stnlab bench sampler``). On CUDA the same computation
  runs as one CUDA kernel (``csrc/linearized_fit_cuda.cu``). ``STNLAB_NO_EXT=1``,
  ``diagnostics=True``, or a failed build (one warning) use the eager path: tiles of
  ``_TILE_MIN`` to ``_TILE_MAX`` (image, auxiliary, pixel) triples, each sampled with
  one ``F.grid_sample`` call, about 30 elementwise passes over each tile; its
  temporaries are a few tile-sized tensors whatever ``N`` and ``K`` are (plus the
  ``(4, K, h, w)`` noise field).
* **Autograd form.** On CPU (float32/float64, kernel built) outside ``torch.func``
  transforms and ``torch.compile``, the whole sampler is one op of the kernel,
  ``ops.sample``, with a C++ autograd node: the same forward, input gradient and fit
  calls as the Python Function, so the same bits (tested), without the Function's Python
  per call (measured ~100 -> ~80 us a forward + backward at a tiny shape). Elsewhere,
  outside the transforms, the classic ``forward(ctx, ...)`` Function runs: the
  ``setup_context`` form that the transforms need binds its arguments with ``inspect`` at
  every call (measured ~30-50 us a call).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from . import _ext
from .checks import check_positive, check_sampler_inputs

__all__ = ["linearized_grid_sample", "grid_footprint", "DEFAULT_EPS", "LinearizedFit",
           "fit_local_gradient", "auxiliary_variates", "draw_seed"]

#: Tikhonov regularizer of the 2x2 normal equations, in squared input pixels.
#: With the default footprint and collapse noise the normal matrix's eigenvalues
#: are about ``K (sigma^2 + 1) >= 1`` px^2, so ``1e-3`` biases the fitted gradient
#: by ``<= 1e-3`` relative, while bounding it when the samples collapse.
DEFAULT_EPS = 1e-3

_PADDING = {"zeros": 0, "border": 1, "reflection": 2}


def _pixel_units(size: int, align_corners: bool) -> float:
    """Input pixels per normalized unit along an axis of ``size`` pixels."""
    return (size - 1) / 2 if align_corners else size / 2


def _stencil_bound(size: int, align_corners: bool) -> float:
    """Largest ``|x|`` (normalized) whose bilinear stencil stays inside the image."""
    if align_corners:
        return 1.0
    return 1.0 - 1.0 / size  # pixel coordinate W - 1 (and 0 at -bound)


def grid_footprint(grid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Local Jacobian of a sampling grid: the footprint of one output pixel.

    Args:
        grid: ``(N, h, w, 2)`` normalized sampling locations.

    Returns:
        ``(d_col, d_row)``, each ``(N, h, w, 2)``: the change of the sampling
        location per output column and per output row (normalized units),
        central differences inside, one-sided at the border, zero along an axis
        of length 1.
    """
    gx, gy = grid[..., 0].contiguous(), grid[..., 1].contiguous()  # (N, h, w) each
    dcx, dcy, drx, dry = _planar_footprint(gx, gy)
    return torch.stack([dcx, dcy], -1), torch.stack([drx, dry], -1)  # (N, h, w, 2) each


class LinearizedFit:
    """Diagnostics of one fit (returned by :func:`fit_local_gradient`).

    Attributes:
        grad_grid: ``(N, h, w, 2)`` fitted gradient w.r.t. the grid (normalized).
        normal: ``(N, h, w, 3)`` the unregularized normal matrix
            ``sum_k m_k o_k o_k^T`` in input pixels^2, entries ``(xx, xy, yy)``.
        count: ``(N, h, w)`` number of in-bounds auxiliaries.
    """

    def __init__(self, grad_grid, normal, count):
        self.grad_grid = grad_grid
        self.normal = normal
        self.count = count

    def min_eigenvalue(self) -> torch.Tensor:
        """``(N, h, w)`` smallest eigenvalue of the normal matrix (px^2)."""
        a, b, d = self.normal.unbind(-1)
        mean = (a + d) / 2
        rad = torch.sqrt(((a - d) / 2) ** 2 + b * b)
        return mean - rad


def draw_seed(generator: torch.Generator | None) -> int:
    """The noise seed that :func:`linearized_grid_sample` draws from ``generator`` per call.

    A hook for independent references: ``draw_seed(g)`` on a generator in the state
    that a call would see returns that call's seed, which :func:`auxiliary_variates` and
    :func:`fit_local_gradient` accept. It advances ``generator`` as the call does.
    """
    if generator is None:
        return int(torch.randint(0, 2**62, (1,)).item())
    return int(torch.randint(0, 2**62, (1,), generator=generator,
                             device=generator.device).item())


_draw_seed = draw_seed  # the former private name


#: The noise pool (see the module docstring): ``_POOL_SIZE`` standard normal variates per
#: (dtype, device), drawn once from the fixed seed ``_POOL_SEED``. A call whose noise field
#: has more than ``_POOL_MAX_WINDOW`` variates draws it fresh instead (so a window start
#: always has at least ``3 * 2**18`` possible positions).
_POOL_SIZE = 2**20
_POOL_MAX_WINDOW = 2**18
_POOL_SEED = 0x5EED_003
_pools: dict = {}


def _noise_pool(dtype, device) -> torch.Tensor:
    """The ``(_POOL_SIZE,)`` pool of ``N(0, 1)`` variates for ``dtype`` on ``device``."""
    pool = _pools.get((dtype, device))  # a torch.device (or str) is hashed as given: no str()
    if pool is None:
        key = (dtype, str(device))
        pool = _pools.get(key)
        if pool is None:
            gen = torch.Generator(device=device)
            gen.manual_seed(_POOL_SEED)
            pool = _pools[key] = torch.randn(_POOL_SIZE, generator=gen, dtype=dtype,
                                             device=device)
        _pools[(dtype, device)] = pool
    return pool


def _noise_field(seed, k, h, w, sigma, safe_ux, safe_uy, dtype, device) -> torch.Tensor:
    """The ``(4, K, h, w)`` auxiliary noise of one call, shared by all images and both paths.

    Components: ``z0, z1`` (footprint, in output pixels, times ``sigma``) and the
    collapse noise ``cx, cy`` (one input pixel, in normalized units). The standard
    normal variates are the window of ``4 K h w`` consecutive entries of the pool that
    starts at ``seed mod (pool size - window + 1)``; a field larger than
    ``_POOL_MAX_WINDOW`` is drawn fresh from ``seed``.
    """
    scale = torch.tensor([sigma, sigma, 1.0 / safe_ux, 1.0 / safe_uy], dtype=dtype)
    scale = scale.to(device).view(4, 1, 1, 1)
    return auxiliary_variates(seed, k, h, w, dtype=dtype, device=device) * scale


def auxiliary_variates(seed: int, num_samples: int, h: int, w: int, *,
                       dtype: torch.dtype = torch.float32,
                       device: torch.device | str = "cpu") -> torch.Tensor:
    """The standard normal variates behind the auxiliary offsets of one call (a hook).

    Independent references of the fit (e.g. ``proofs/reference/linearized_numpy.py``)
    take these and build the offsets themselves, so they need not copy the pool logic.
    Component ``0, 1`` of the result are ``z_k`` of Eq. (3) (footprint offset
    ``sigma * (d_col z0 + d_row z1)``), ``2, 3`` the collapse noise ``(c_x, c_y)`` of
    Eqs. (8-9) in input pixels; both paths of :func:`fit_local_gradient` with this
    ``seed`` use exactly these values (the eager path scales them by ``(sigma, sigma,
    1/u_x, 1/u_y)`` into normalized units).

    Args:
        seed: the call's seed (:func:`draw_seed`).
        num_samples: ``K``.
        h, w: the output's height and width.
        dtype, device: of the grid.

    Returns:
        ``(4, K, h, w)``: the window of ``4 K h w`` pool entries starting at
        ``seed mod (pool size - window + 1)``, or, above ``_POOL_MAX_WINDOW`` variates,
        a fresh draw from ``seed``.
    """
    size = 4 * num_samples * h * w
    if size <= _POOL_MAX_WINDOW:
        pool = _noise_pool(dtype, device)
        start = seed % (pool.numel() - size + 1)
        hw = h * w  # the window as one strided view (no slice + view)
        return pool.as_strided((4, num_samples, h, w), (num_samples * hw, hw, w, 1), start)
    gen = torch.Generator(device=device)
    gen.manual_seed(seed)
    return torch.randn(4, num_samples, h, w, generator=gen, dtype=dtype, device=device)


def _planar_footprint(gx: torch.Tensor, gy: torch.Tensor):
    """Planar finite differences of the grid: ``(N, h, w)`` each (see :func:`grid_footprint`)."""

    def diff(t, dim):  # central inside, one-sided at the ends (torch.gradient), 0 if size 1
        if t.shape[dim] == 1:
            return torch.zeros_like(t)
        return torch.gradient(t, dim=dim)[0]

    return diff(gx, 2), diff(gy, 2), diff(gx, 1), diff(gy, 1)


#: Bounds on the elements per tile of the backward pass (images x auxiliary indices x
#: h x w); a tile holds about twice the output's pixels, clamped to these bounds. The
#: fit is computed tile by tile, so its temporaries (about 7 tile-sized tensors live at
#: once) stay bounded whatever N and K are. Measured on 1 CPU thread with ``stnlab
#: bench sampler``: larger tiles save at most ~10-20% time but raise the peak memory
#: (at 2**18 the (256, 1, 28 -> 28) case needs 4.5x bilinear's instead of 1.9x).
#: On a GPU the same small tiles make the backward launch-bound (one H100 measured
#: 165x bilinear's fwd+bwd on (256, 1, 28 -> 28) with the CPU tiling): there a tile
#: takes up to all K auxiliaries of as many images as fit in ``_TILE_MAX_CUDA``
#: elements (about 7 x 4 MiB of float32 temporaries at once).
_TILE_MIN, _TILE_MAX = 2**14, 2**16
_TILE_MAX_CUDA = 2**20


def _tile_elems(n: int, h: int, w: int, k: int = 2, device_type: str = "cpu") -> int:
    if device_type == "cuda":
        return int(min(_TILE_MAX_CUDA, max(_TILE_MIN, k * n * h * w)))
    return int(min(_TILE_MAX, max(_TILE_MIN, 2 * n * h * w)))


def fit_local_gradient(input: torch.Tensor, grid: torch.Tensor, grad_out: torch.Tensor,
                       output: torch.Tensor | None = None, *, seed: int, num_samples: int,
                       sigma: float, collapse_noise: bool, eps: float, align_corners: bool,
                       padding_mode: str, diagnostics: bool = False):
    """The backward pass of :func:`linearized_grid_sample`: the fitted grid gradient.

    Computes ``grad_grid[p] = sum_c grad_out[c, p] J_{p, c}`` where ``J_{p, c}``
    is the least-squares gradient of channel ``c`` around ``grid[p]`` (see the
    module docstring). Because ``J`` is linear in the sampled values, the channel
    contraction is done first: only ``y_k = sum_c grad_out_c (I_c(x_p + o_k) -
    I_c(x_p))`` is fitted.

    Implementation: on CPU (float32/float64, ``diagnostics=False``) the fused C++
    kernel of :mod:`sampling._ext` (``csrc/linearized_fit.cpp``) does the whole fit
    in one pass over the output pixels, from the same noise field; it allocates
    only the result. Otherwise (CUDA, ``diagnostics=True``, ``STNLAB_NO_EXT=1``, or
    no compiler) the eager path below, the reference: planar ``(x, y)`` tensors
    (contiguous, broadcast over leading dimensions only, which is what makes
    elementwise ops fast on CPU); the work is split into tiles of ``_TILE_MIN`` to
    ``_TILE_MAX`` (image, auxiliary, pixel) triples so temporaries do not grow with
    ``N`` or ``K``; each tile samples all its auxiliaries with one ``F.grid_sample``
    call. Both give the same numbers up to rounding (the CPU kernel fits in input
    pixels, the eager path in normalized units; the order of the sums over the
    auxiliaries; fused multiply-adds in torch's own kernels). On CUDA the fused
    kernel of ``csrc/linearized_fit_cuda.cu`` plays the CPU kernel's part.

    Convention:
        Normalized ``(x, y)`` grid as ``F.grid_sample``; the fit is in input
        pixels (``eps`` in px^2) and the result in normalized units.

    Args:
        input: ``(N, C, H, W)``.
        grid: ``(N, h, w, 2)``.
        grad_out: ``(N, C, h, w)`` upstream gradient.
        output: ``(N, C, h, w)`` the forward value (bilinear at ``grid``), or
            ``None`` to recompute it.
        seed: seed of the auxiliary noise (see the module docstring).
        num_samples, sigma, collapse_noise, eps, align_corners, padding_mode:
            as in :func:`linearized_grid_sample` (``sigma`` already resolved).
        diagnostics: also return the normal matrices (:class:`LinearizedFit`).

    Returns:
        ``(N, h, w, 2)`` gradient w.r.t. ``grid``, or a :class:`LinearizedFit`.
    """
    n, c, h_in, w_in = input.shape
    _, h, w, _ = grid.shape
    dtype, device = grid.dtype, grid.device
    ux, uy = _pixel_units(w_in, align_corners), _pixel_units(h_in, align_corners)
    safe_ux, safe_uy = max(ux, 1e-12), max(uy, 1e-12)
    bx, by = _stencil_bound(w_in, align_corners), _stencil_bound(h_in, align_corners)
    if output is None:
        output = F.grid_sample(input, grid, mode="bilinear", padding_mode=padding_mode,
                               align_corners=align_corners)  # (N, C, h, w)
    K = num_samples
    if (not diagnostics and dtype in (torch.float32, torch.float64)
            and device.type in _ext.KERNELS
            and all(t.device == device and t.dtype == dtype
                    for t in (input, grid, grad_out, output))):
        # The fused kernel: same noise, footprint, mask, sums, solve. None: STNLAB_NO_EXT=1
        # or no compiler (warned once), and the eager path below runs instead. The CPU
        # kernel scales the raw variates itself (a view of the pool: nothing allocated);
        # the CUDA one takes the scaled field.
        if device.type == "cpu":
            noise = auxiliary_variates(seed, K, h, w, dtype=dtype, device=device)
            extra = (float(sigma), 1.0 / safe_ux, 1.0 / safe_uy)
        else:
            noise = _noise_field(seed, K, h, w, sigma, safe_ux, safe_uy, dtype, device)
            extra = ()
        fused = _ext.fit(device.type, input.contiguous(), grid.contiguous(),
                         grad_out.contiguous(), output.contiguous(), noise,
                         bool(collapse_noise), float(eps / safe_ux**2),
                         float(eps / safe_uy**2), float(bx), float(by), bool(align_corners),
                         *extra)
        if fused is not None:
            return fused
    noise = _noise_field(seed, K, h, w, sigma, safe_ux, safe_uy, dtype, device)

    hw = h * w
    tile = _tile_elems(n, h, w, K, device.type)
    n_b = max(1, tile // (K * hw))  # images per tile
    k_c = K if n_b > 1 else max(1, min(K, tile // hw))  # auxiliaries per tile
    # Tile results are collected and concatenated (no writes into a preallocated
    # tensor: under torch.func.vmap the tiles are batched and such a buffer is not).
    grads, normals, counts = [], [], []
    for i0 in range(0, n, n_b):
        i1 = min(n, i0 + n_b)
        nb = i1 - i0
        g = grid[i0:i1]
        gx, gy = g[..., 0].contiguous(), g[..., 1].contiguous()  # (nb, h, w) each
        dcx, dcy, drx, dry = (t.unsqueeze(1) for t in _planar_footprint(gx, gy))  # (nb, 1, h, w)
        gx, gy = gx.unsqueeze(1), gy.unsqueeze(1)  # (nb, 1, h, w)
        go = grad_out[i0:i1].unsqueeze(2)  # (nb, C, 1, h, w)
        y0 = (output[i0:i1].unsqueeze(2) * go).sum(1)  # (nb, 1, h, w)
        sums = None  # running sums over the auxiliaries: s_xx, s_xy, s_yy, b_x, b_y, count
        for k0 in range(0, K, k_c):
            k1 = min(K, k0 + k_c)
            kk = k1 - k0
            z0, z1, cx, cy = noise[:, k0:k1]  # (kk, h, w) each
            # (nb, kk, h, w) offsets, normalized units. Out-of-place addcmul (the same
            # kernel, the same bits): the in-place one has no vmap batching rule.
            ox = torch.addcmul(dcx * z0, drx, z1)
            oy = torch.addcmul(dcy * z0, dry, z1)
            if collapse_noise:
                ox.add_(cx)
                oy.add_(cy)
            px, py = ox + gx, oy + gy  # (nb, kk, h, w) auxiliary locations
            pos = torch.view_as_real(torch.complex(px, py))  # (nb, kk, h, w, 2)
            # Whole bilinear stencil inside the image: |x| <= bx and |y| <= by, a bool mask
            # (out-of-place comparisons: in-place le_ has no vmap batching rule).
            m = torch.le(px.abs_(), bx).logical_and_(torch.le(py.abs_(), by))  # (nb, kk, h, w)
            del px, py
            vals = F.grid_sample(input[i0:i1], pos.view(nb, kk * h, w, 2), mode="bilinear",
                                 padding_mode="zeros", align_corners=align_corners)
            del pos
            vals = vals.view(nb, c, kk, h, w)  # (nb, C, kk, h, w)
            if c == 1:
                y = vals[:, 0].mul_(go[:, 0])  # (nb, kk, h, w)
            else:
                y = (vals * go).sum(1)
            del vals
            y.sub_(y0)
            ox.mul_(m)  # masked offsets (m is False/True = 0/1), in place
            oy.mul_(m)
            if diagnostics:
                part_sums = [m.sum(1, dtype=dtype)]
            del m
            part_sums = [torch.mul(ox, ox).sum(1), torch.mul(ox, oy).sum(1),
                         torch.mul(oy, oy).sum(1), ox.mul_(y).sum(1), oy.mul_(y).sum(1)] + (
                part_sums if diagnostics else [])  # (nb, h, w) each, one product at a time
            del ox, oy, y
            sums = part_sums if sums is None else [s.add_(p) for s, p in zip(sums, part_sums)]
        s_xx, s_xy, s_yy, b_x, b_y = sums[:5]
        # Closed-form 2x2 solve of (S + diag(eps/ux^2, eps/uy^2)) J = b (normalized units).
        a_ = s_xx + eps / safe_ux**2
        d_ = s_yy + eps / safe_uy**2
        det = a_ * d_ - s_xy * s_xy
        ok = det > 0
        det = torch.where(ok, det, torch.ones_like(det))
        jx = torch.where(ok, (d_ * b_x - s_xy * b_y) / det, torch.zeros_like(det))
        jy = torch.where(ok, (a_ * b_y - s_xy * b_x) / det, torch.zeros_like(det))
        grads.append(torch.stack([jx, jy], -1))
        if diagnostics:
            normals.append(torch.stack([s_xx * ux * ux, s_xy * ux * uy, s_yy * uy * uy], -1))
            counts.append(sums[5])
    if not grads:  # N = 0
        return (torch.empty(n, h, w, 2, dtype=dtype, device=device) if not diagnostics else
                LinearizedFit(*(torch.empty(n, h, w, *s_, dtype=dtype, device=device)
                                for s_ in ((2,), (3,), ()))))
    grad_grid = torch.cat(grads)
    if not diagnostics:
        return grad_grid
    return LinearizedFit(grad_grid, torch.cat(normals), torch.cat(counts))


def _backward(ctx, grad_out):
    """The shared backward: bilinear input gradient, fitted grid gradient."""
    input, grid, out = ctx.saved_tensors
    o = ctx.opts
    grad_input = grad_grid = None
    grad_out = grad_out.contiguous()
    if ctx.needs_input_grad[0]:
        grad_input, _ = torch.ops.aten.grid_sampler_2d_backward(
            grad_out, input, grid, 0, _PADDING[o["padding_mode"]], o["align_corners"],
            [True, False])
    if ctx.needs_input_grad[1]:
        if grid.dtype in (torch.float32, torch.float64):
            grad_grid = fit_local_gradient(input, grid, grad_out, out, **o)
        else:  # half precision: fit in float32 (complex32 and the 2x2 solve need it)
            grad_grid = fit_local_gradient(input.float(), grid.float(), grad_out.float(),
                                           out.float(), **o).to(grid.dtype)
    return grad_input, grad_grid, None, None, None, None, None, None, None


def _save(ctx, input, grid, output, seed, num_samples, sigma, collapse_noise, eps,
          align_corners, padding_mode):
    ctx.save_for_backward(input, grid, output)
    ctx.opts = dict(seed=seed, num_samples=num_samples, sigma=sigma,
                    collapse_noise=collapse_noise, eps=eps, align_corners=align_corners,
                    padding_mode=padding_mode)


class _LinearizedGridSample(torch.autograd.Function):
    """Forward: bilinear. Backward: bilinear input gradient, fitted grid gradient.

    The ``setup_context`` form that ``torch.func`` transforms need; outside them
    :class:`_LinearizedGridSampleCtx` (the same computation) is used, because this form
    binds its arguments with ``inspect`` at every call (~30 us)."""

    @staticmethod
    def forward(input, grid, seed, num_samples, sigma, collapse_noise, eps, align_corners,
                padding_mode):
        return F.grid_sample(input, grid, mode="bilinear", padding_mode=padding_mode,
                             align_corners=align_corners)

    @staticmethod
    def setup_context(ctx, inputs, output):
        input, grid, *options = inputs
        _save(ctx, input, grid, output, *options)

    @staticmethod
    def vmap(info, in_dims, input, grid, *options):
        """Under ``torch.func.vmap`` the vmapped dimension joins the batch ``N``: one call,
        one noise field shared by every image of every vmapped slice (as within a batch)."""
        b = info.batch_size

        def fold(x, d):
            x = x.movedim(d, 0) if d is not None else x.expand(b, *x.shape)
            return x.reshape(b * x.shape[1], *x.shape[2:])

        out = _LinearizedGridSample.apply(fold(input, in_dims[0]), fold(grid, in_dims[1]),
                                          *options)
        return out.reshape(b, -1, *out.shape[1:]), 0

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        return _backward(ctx, grad_out)


class _LinearizedGridSampleCtx(torch.autograd.Function):
    """:class:`_LinearizedGridSample` in the classic ``forward(ctx, ...)`` form."""

    @staticmethod
    def forward(ctx, input, grid, *options):
        output = _LinearizedGridSample.forward(input, grid, *options)
        _save(ctx, input, grid, output, *options)
        return output

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        return _backward(ctx, grad_out)


def _fused_sample(input, grid, seed, num_samples, sigma, collapse_noise, eps, align_corners,
                  padding_mode):
    """The CPU kernel's whole-sampler op (``ops.sample``: forward and backward in C++, the
    same calls and bits as the Python Function below), or ``None`` where the Python
    Function runs instead: another device or dtype, an empty batch, no kernel
    (``STNLAB_NO_EXT=1``, no compiler), ``_ext.fit`` wrapped by a caller, or while
    ``torch.compile`` traces."""
    if (input.device.type != "cpu" or grid.dtype not in (torch.float32, torch.float64)
            or input.numel() == 0 or grid.numel() == 0):
        return None
    compiling = getattr(getattr(torch, "compiler", None), "is_compiling", None)
    if compiling is not None and compiling():
        return None
    if _ext.fit is not _ext._OWN_FIT:  # wrapped (e.g. fault injection): every call through it
        return None
    ops = _ext.load("cpu")
    if ops is None:
        return None
    _, _, h_in, w_in = input.shape
    _, h, w, _ = grid.shape
    ux, uy = _pixel_units(w_in, align_corners), _pixel_units(h_in, align_corners)
    safe_ux, safe_uy = max(ux, 1e-12), max(uy, 1e-12)
    noise = auxiliary_variates(seed, num_samples, h, w, dtype=grid.dtype, device=grid.device)
    return ops.sample(input, grid, noise, collapse_noise, eps / safe_ux**2, eps / safe_uy**2,
                      float(_stencil_bound(w_in, align_corners)),
                      float(_stencil_bound(h_in, align_corners)), align_corners,
                      _PADDING[padding_mode], int(_ext.isa), sigma, 1.0 / safe_ux,
                      1.0 / safe_uy)


def _transforms_active() -> bool:
    """Whether a ``torch.func`` transform is active (private torch API; assume yes if absent)."""
    probe = getattr(torch._C, "_are_functorch_transforms_active", None)
    return True if probe is None else bool(probe())


def _check_options(fn, num_samples, sigma, eps, collapse_noise, generator):
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
        raise ValueError(f"{fn}: expected num_samples to be an int >= 1, got {num_samples!r}")
    if sigma is not None:
        check_positive(sigma, name="sigma", fn=fn)
    check_positive(eps, name="eps", fn=fn, allow_zero=True)
    if not isinstance(collapse_noise, bool):
        raise ValueError(f"{fn}: expected collapse_noise to be a bool, got {collapse_noise!r}")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise ValueError(f"{fn}: expected generator to be a torch.Generator or None, "
                         f"got {type(generator).__name__}")


def linearized_grid_sample(input: torch.Tensor, grid: torch.Tensor, *, num_samples: int = 8,
                           sigma: float | None = None, collapse_noise: bool = True,
                           eps: float = DEFAULT_EPS, align_corners: bool = False,
                           padding_mode: str = "zeros",
                           generator: torch.Generator | None = None) -> torch.Tensor:
    """Bilinear sampling whose grid gradient is a least-squares fit over K auxiliary samples.

    See the module docstring for the method (003 Sec. 4-5, 6.1) and the choices.

    Convention:
        Same as ``F.grid_sample(mode="bilinear")``: ``input (N, C, H, W)``,
        ``grid (N, h, w, 2)`` holding normalized ``(x, y)`` (``x`` along the width),
        ``grid`` maps output pixels to input locations (``input_from_output``);
        ``align_corners=False`` by default. ``sigma`` is in *output* pixels (mapped
        to the input through the grid's local Jacobian), the collapse noise is one
        *input* pixel, ``eps`` is in squared input pixels.

    Gradients:
        * w.r.t. ``grid``: ``sum_c grad_out_c J_c`` with ``J_c`` the fitted local
          gradient of channel ``c`` (stochastic; reproducible with ``generator``);
          exactly 0 where every auxiliary sample falls outside the image.
        * w.r.t. ``input``: exactly ``F.grid_sample``'s (bilinear weights at the
          sampling location); auxiliary samples contribute nothing.

    Args:
        input: ``(N, C, H, W)`` float32/float64 images or feature maps.
        grid: ``(N, h, w, 2)`` sampling locations, same dtype and device.
        num_samples: ``K >= 1`` auxiliary samples per output pixel (paper: 8).
        sigma: std of the auxiliary offsets in output pixels; ``None`` means 1,
            "the pixel width and height of the sample output" (003 Sec. 4).
        collapse_noise: add ``N(0, 1 input px)`` after warping (003 Sec. 5).
        eps: Tikhonov regularizer ``>= 0`` (px^2), see :data:`DEFAULT_EPS`.
        align_corners: as in ``F.grid_sample``.
        padding_mode: ``"zeros"``, ``"border"`` or ``"reflection"`` (forward value
            and input gradient; the fit never uses padded values).
        generator: a ``torch.Generator`` for the auxiliary noise (one seed is
            drawn from it per call); ``None`` uses torch's default generator.

    Returns:
        ``(N, C, h, w)``, equal to ``F.grid_sample(input, grid, mode="bilinear")``.

    Raises:
        ValueError: bad shapes, dtypes, devices or options.

    Example:
        >>> x = torch.arange(16.).reshape(1, 1, 4, 4)
        >>> g = torch.zeros(1, 1, 1, 2, requires_grad=True)
        >>> out = linearized_grid_sample(x, g, generator=torch.Generator().manual_seed(0))
        >>> out.item()
        7.5
        >>> out.sum().backward()
        >>> [round(v, 2) for v in g.grad.flatten().tolist()]  # exact: d/dx = 1 * 2, d/dy = 4 * 2
        [2.0, 8.0]
    """
    fn = "linearized_grid_sample"
    check_sampler_inputs(input, grid, fn=fn, padding_mode=padding_mode)
    _check_options(fn, num_samples, sigma, eps, collapse_noise, generator)
    seed = draw_seed(generator)
    sigma = 1.0 if sigma is None else float(sigma)
    transforms = _transforms_active()
    if not transforms:
        out = _fused_sample(input, grid, seed, num_samples, sigma, collapse_noise, float(eps),
                            bool(align_corners), padding_mode)
        if out is not None:
            return out
    fn_cls = _LinearizedGridSample if transforms else _LinearizedGridSampleCtx
    return fn_cls.apply(input, grid, seed, num_samples, sigma, collapse_noise, float(eps),
                        bool(align_corners), padding_mode)
