"""The public sampler entry point, a drop-in for ``torch.nn.functional.grid_sample``."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .checks import check_choice, check_sampler_inputs

__all__ = ["grid_sample", "METHODS", "check_sampler_inputs"]

METHODS = ("bilinear", "linearized", "multiscale")
#: torch < 2.13 has the vmap bug worked around in :func:`grid_sample` on CPU too.
_OLD_TORCH = tuple(int(v) for v in torch.__version__.split("+")[0].split(".")[:2]) < (2, 13)


def grid_sample(input: torch.Tensor, grid: torch.Tensor, *, method: str = "bilinear",
                align_corners: bool = False, padding_mode: str = "zeros",
                **method_options) -> torch.Tensor:
    """Sample ``input`` at ``grid`` with the chosen method.

    Convention:
        Same as ``torch.nn.functional.grid_sample``: ``input (N, C, H, W)``,
        ``grid (N, h, w, 2)`` holding normalized ``(x, y)`` in ``[-1, 1]``;
        ``align_corners=False`` by default (see :mod:`sampling.geometry`).

    Args:
        input: ``(N, C, H, W)`` images or feature maps.
        grid: ``(N, h, w, 2)`` sampling locations.
        method: ``"bilinear"`` (``F.grid_sample``), ``"linearized"``
            (:func:`sampling.linearized_grid_sample`) or ``"multiscale"``
            (:func:`sampling.multiscale_grid_sample`).
        align_corners: as in ``F.grid_sample``.
        padding_mode: ``"zeros"``, ``"border"`` or ``"reflection"``.
        **method_options: passed to the chosen method.

    Returns:
        ``(N, C, h, w)`` samples; ``NaN`` where a grid location is not finite (for
        every padding mode; those locations pass no gradient).
    """
    fn = "grid_sample"
    check_choice(method, METHODS, name="method", fn=fn)
    if (isinstance(input, torch.Tensor) and isinstance(grid, torch.Tensor)
            and input.is_floating_point() and grid.is_floating_point()
            and torch.is_autocast_enabled(input.device.type)):
        # Under autocast a localization net's grid (and a feature map) may come out in
        # bf16/fp16: every sampler runs in (at least) float32 with autocast off, so the
        # interpolation weights and their gradients are not rounded to 8 bits (CPU
        # autocast already lists grid_sampler as fp32, CUDA's only promotes; the
        # linearized and multiscale samplers are not on any autocast list).
        dt = torch.promote_types(torch.promote_types(input.dtype, grid.dtype), torch.float32)
        with torch.autocast(device_type=input.device.type, enabled=False):
            return grid_sample(input.to(dt), grid.to(dt), method=method,
                               align_corners=align_corners, padding_mode=padding_mode,
                               **method_options)
    check_sampler_inputs(input, grid, fn=fn, padding_mode=padding_mode)
    if method == "bilinear" and method_options:
        raise ValueError(f"{fn}: method 'bilinear' takes no options, got "
                         f"{sorted(method_options)}")
    # Non-finite locations: sample them at 0 and return NaN there. F.grid_sample (torch
    # 2.13, CPU) returns finite values for NaN locations with padding_mode="border" and
    # segfaults in backward; a diverging STN must see NaN, not a crash. No data-dependent
    # branch, so this also works under torch.func.vmap.
    bad = ~torch.isfinite(grid).all(-1, keepdim=True)  # (N, h, w, 1)
    grid = torch.where(bad, torch.zeros_like(grid), grid)
    if method == "bilinear":
        if (input.is_cuda or _OLD_TORCH) and not input.requires_grad:
            # Work around a PyTorch bug (seen with torch 2.11 on CPU and on CUDA 13 / H100;
            # not on CPU with torch 2.13): under torch.func.vmap(grad(...)),
            # grid_sampler_2d_backward with no input gradient requested fails with
            # "Expected a proper Tensor but got None".
            # Tying the input to the (finite) grid by an exact zero makes autograd ask for
            # the input gradient; values are unchanged and the grid gets an exact zero
            # from it. Costs one input-sized add and the input gradient, only where the
            # bug exists (CUDA, or torch < 2.13).
            input = input + 0 * grid[:, :1, :1, :1]  # (N, 1, 1, 1)
        out = F.grid_sample(input, grid, mode="bilinear", padding_mode=padding_mode,
                            align_corners=align_corners)
    elif method == "linearized":
        from .linearized import linearized_grid_sample
        out = linearized_grid_sample(input, grid, align_corners=align_corners,
                                     padding_mode=padding_mode, **method_options)
    else:
        from .multiscale import multiscale_grid_sample
        out = multiscale_grid_sample(input, grid, align_corners=align_corners,
                                     padding_mode=padding_mode, **method_options)
    return out.masked_fill(bad.permute(0, 3, 1, 2), float("nan"))  # (N, 1, h, w) mask
