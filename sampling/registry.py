"""The samplers by name: each sampler's name exists here once, bound to its implementation.

:func:`sampling.grid_sample` dispatches through :data:`SAMPLERS`; every other list of
sampler names (:data:`sampling.METHODS`, ``models.gtsrb_nets.SAMPLERS``, the 003
experiments, ``stnlab bench sampler``, the figures' labels) reads it, so a sampler added
here is known everywhere, and a name cannot exist without an implementation: the only
way in is :func:`register`, which takes both (and refuses a non-callable).

A sampler is called as ``fn(input, grid, *, align_corners, padding_mode, **options)``
(``F.grid_sample``'s convention, see :func:`sampling.grid_sample`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

import torch
import torch.nn.functional as F

from .linearized import linearized_grid_sample
from .multiscale import multiscale_grid_sample

__all__ = ["Sampler", "SAMPLERS", "UnknownSamplerError", "register", "get", "names"]


class UnknownSamplerError(ValueError):
    """A sampler name that is not registered (the message lists the known ones)."""


@dataclass(frozen=True)
class Sampler:
    """One registered sampler.

    Attributes:
        name: the name callers pass (``method=...``).
        fn: ``fn(input, grid, *, align_corners, padding_mode, **options) -> Tensor``.
        label: how figures and reports spell it.
        takes_options: whether ``fn`` accepts options beyond ``align_corners`` and
            ``padding_mode`` (``grid_sample`` rejects stray options for one that does not).
    """

    name: str
    fn: Callable
    label: str
    takes_options: bool = True


_registry: dict[str, Sampler] = {}
#: name -> :class:`Sampler`, in registration order (read-only; add with :func:`register`).
SAMPLERS: Mapping[str, Sampler] = MappingProxyType(_registry)


def register(name: str, fn: Callable, *, label: str | None = None,
             takes_options: bool = True) -> Sampler:
    """Register the sampler ``name`` implemented by ``fn``; returns its entry.

    Raises:
        TypeError: ``fn`` is not callable (a name without an implementation).
        ValueError: ``name`` is empty, not a string, or already registered.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"register: expected a non-empty sampler name, got {name!r}")
    if not callable(fn):
        raise TypeError(f"register: sampler {name!r} needs a callable implementation, "
                        f"got {type(fn).__name__}")
    if name in _registry:
        raise ValueError(f"register: sampler {name!r} is already registered")
    entry = Sampler(name, fn, label or name, takes_options)
    _registry[name] = entry
    return entry


def names(first: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The registered sampler names: those in ``first`` in that order (a display order,
    e.g. 003 Table 1's rows), then the others in registration order.

    Raises:
        UnknownSamplerError: a name in ``first`` is not registered.
    """
    for name in first:
        get(name, fn="sampling.registry.names", arg="name")
    return tuple(first) + tuple(n for n in _registry if n not in first)


def get(name, *, fn: str = "grid_sample", arg: str = "method") -> Sampler:
    """The entry of ``name``; an unknown name raises :class:`UnknownSamplerError` with one
    line listing the known ones."""
    entry = _registry.get(name) if isinstance(name, str) else None
    if entry is None:
        known = ", ".join(repr(n) for n in _registry)
        raise UnknownSamplerError(f"{fn}: unknown {arg} {name!r}; known samplers: {known}")
    return entry


#: torch < 2.13 has the vmap bug worked around in :func:`_bilinear` on CPU too.
_OLD_TORCH = tuple(int(v) for v in torch.__version__.split("+")[0].split(".")[:2]) < (2, 13)


def _bilinear(input, grid, *, align_corners: bool = False, padding_mode: str = "zeros"):
    """``F.grid_sample(mode="bilinear")``."""
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
    return F.grid_sample(input, grid, mode="bilinear", padding_mode=padding_mode,
                         align_corners=align_corners)


register("bilinear", _bilinear, label="bilinear", takes_options=False)
register("linearized", linearized_grid_sample, label="linearized multi-sampling")
register("multiscale", multiscale_grid_sample, label="multi-scale")
