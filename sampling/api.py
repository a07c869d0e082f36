"""The public sampler entry point, a drop-in for ``torch.nn.functional.grid_sample``."""

from __future__ import annotations

import torch

from . import registry
from .checks import check_sampler_inputs

__all__ = ["grid_sample", "METHODS", "check_sampler_inputs"]

#: The sampler names, read from :data:`sampling.registry.SAMPLERS` (defined there once).
METHODS = registry.names()


def _may_branch() -> bool:
    """Whether a data-dependent Python branch is allowed here: not under a ``torch.func``
    transform (private torch API; assume one is active if it is absent) nor while
    ``torch.compile`` traces."""
    probe = getattr(torch._C, "_are_functorch_transforms_active", None)
    if probe is None or probe():
        return False
    compiling = getattr(getattr(torch, "compiler", None), "is_compiling", None)
    return not (compiling is not None and compiling())


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
        method: a name in :data:`sampling.registry.SAMPLERS`: ``"bilinear"``
            (``F.grid_sample``), ``"linearized"`` (:func:`sampling.linearized_grid_sample`)
            or ``"multiscale"`` (:func:`sampling.multiscale_grid_sample`); an unknown name
            raises one line listing the known ones.
        align_corners: as in ``F.grid_sample``.
        padding_mode: ``"zeros"``, ``"border"`` or ``"reflection"``.
        **method_options: passed to the chosen method.

    Returns:
        ``(N, C, h, w)`` samples; ``NaN`` where a grid location is not finite (for
        every padding mode; those locations pass no gradient).
    """
    fn = "grid_sample"
    sampler = registry.get(method, fn=fn)
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
    if method_options and not sampler.takes_options:
        raise ValueError(f"{fn}: method {method!r} takes no options, got "
                         f"{sorted(method_options)}")
    # Non-finite locations: sample them at 0 and return NaN there. F.grid_sample (torch
    # 2.13, CPU) returns finite values for NaN locations with padding_mode="border" and
    # segfaults in backward; a diverging STN must see NaN, not a crash.
    # The common case, every location finite, is told by one reduction: the sum of the
    # grid is finite only if every entry is (NaN and +-inf propagate; a finite grid whose
    # sum overflows only takes the masked path below, which gives the same numbers).
    # That is a data-dependent branch, so under torch.func transforms (vmap) and
    # torch.compile the masked path always runs: it has no branch.
    if _may_branch() and bool(torch.isfinite(grid.detach().sum())):
        return sampler.fn(input, grid, align_corners=align_corners,
                          padding_mode=padding_mode, **method_options)
    bad = ~torch.isfinite(grid).all(-1, keepdim=True)  # (N, h, w, 1)
    grid = torch.where(bad, torch.zeros_like(grid), grid)
    out = sampler.fn(input, grid, align_corners=align_corners, padding_mode=padding_mode,
                     **method_options)
    return out.masked_fill(bad.permute(0, 3, 1, 2), float("nan"))  # (N, 1, h, w) mask
