"""One place to validate user input, so that every error reads the same way.

Every check raises a :class:`ValueError` subclass whose message names the
function, the argument, what was expected and what came, e.g.::

    linearized_grid_sample: expected grid of shape (N, h, w, 2), got (4, 7, 7, 3)

Never use ``assert`` for user input: it vanishes under ``python -O``.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

__all__ = [
    "check_sampler_inputs",
    "PADDING_MODES",
    "ShapeError",
    "NonFiniteError",
    "check_shape",
    "check_finite",
    "check_same_device_dtype",
    "check_positive",
    "check_choice",
]


class ShapeError(ValueError):
    """A tensor argument has the wrong number of dimensions or sizes."""


class NonFiniteError(ValueError):
    """A tensor argument holds NaN or Inf (in training: the network has diverged)."""


def _fmt(shape) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ")"


def check_shape(
    x,
    spec: str,
    *,
    name: str,
    fn: str,
    dims: Mapping[str, int] | None = None,
) -> dict[str, int]:
    """Check that ``x`` is a tensor of the shape described by ``spec``.

    Args:
        x: the value to check.
        spec: space-separated dimension names, e.g. ``"N h w 2"``. An integer
            fixes that size; a name binds the size, and the same name used twice
            (or already in ``dims``) must agree.
        name: the argument's name, for the message.
        fn: the calling function's name, for the message.
        dims: sizes already bound by earlier arguments (e.g. ``{"N": 4}``).

    Returns:
        ``dims`` extended with the sizes bound by this argument.

    Raises:
        ShapeError: ``x`` is not a tensor, or its shape does not match.

    Example:
        >>> d = check_shape(torch.zeros(4, 7, 7, 2), "N h w 2", name="grid", fn="f")
        >>> d["N"], d["h"]
        (4, 7)
    """
    tokens = spec.split()
    bound = dict(dims or {})
    expected = "(" + ", ".join(tokens) + ")"
    if not isinstance(x, torch.Tensor):
        raise ShapeError(f"{fn}: expected {name} to be a torch.Tensor of shape {expected}, "
                         f"got {type(x).__name__}")
    if x.dim() != len(tokens):
        raise ShapeError(f"{fn}: expected {name} of shape {expected}, got {_fmt(x.shape)}")
    for tok, size in zip(tokens, x.shape):
        if tok.isdigit():
            if size != int(tok):
                raise ShapeError(f"{fn}: expected {name} of shape {expected}, got {_fmt(x.shape)}")
        elif tok in bound and bound[tok] != size:
            raise ShapeError(
                f"{fn}: expected {name} of shape {expected} with {tok}={bound[tok]} "
                f"(from another argument), got {_fmt(x.shape)}"
            )
        else:
            bound[tok] = int(size)
    return bound


def check_finite(x: torch.Tensor, *, name: str, fn: str) -> None:
    """Raise :class:`NonFiniteError` (a ``ValueError``) if ``x`` holds NaN or Inf."""
    if x.is_floating_point() and not bool(torch.isfinite(x).all()):
        bad = int((~torch.isfinite(x)).sum())
        raise NonFiniteError(f"{fn}: expected finite values in {name}, got {bad} NaN/Inf "
                             f"entries")


def check_same_device_dtype(a: torch.Tensor, b: torch.Tensor, *, names: tuple[str, str],
                            fn: str) -> None:
    """Raise ``ValueError`` if two tensors differ in device or dtype."""
    if a.device != b.device:
        raise ValueError(f"{fn}: expected {names[0]} and {names[1]} on the same device, "
                         f"got {a.device} and {b.device}")
    if a.dtype != b.dtype:
        raise ValueError(f"{fn}: expected {names[0]} and {names[1]} of the same dtype, "
                         f"got {a.dtype} and {b.dtype}")


def check_positive(value, *, name: str, fn: str, allow_zero: bool = False) -> None:
    """Raise ``ValueError`` unless ``value`` is a finite number > 0 (>= 0 with ``allow_zero``)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{fn}: expected {name} to be a number, got {value!r}") from None
    ok = v >= 0 if allow_zero else v > 0
    if not ok or v != v or v in (float("inf"), float("-inf")):
        want = "a finite number >= 0" if allow_zero else "a finite number > 0"
        raise ValueError(f"{fn}: expected {name} to be {want}, got {value!r}")


def check_choice(value, choices, *, name: str, fn: str) -> None:
    """Raise ``ValueError`` unless ``value`` is one of ``choices``."""
    if value not in choices:
        opts = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{fn}: expected {name} to be one of {opts}, got {value!r}")


PADDING_MODES = ("zeros", "border", "reflection")


def check_sampler_inputs(input, grid, *, fn: str, padding_mode: str = "zeros") -> dict[str, int]:
    """Validate ``input (N, C, H, W)`` and ``grid (N, h, w, 2)`` as ``F.grid_sample`` expects."""
    dims = check_shape(input, "N C H W", name="input", fn=fn)
    dims = check_shape(grid, "N h w 2", name="grid", fn=fn, dims={"N": dims["N"]} | dims)
    if not input.is_floating_point():
        raise ValueError(f"{fn}: expected input to be a floating-point tensor, got {input.dtype}")
    check_same_device_dtype(input, grid, names=("input", "grid"), fn=fn)
    check_choice(padding_mode, PADDING_MODES, name="padding_mode", fn=fn)
    return dims
