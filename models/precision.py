"""Numeric precision and memory layout of a training step: fp32, channels-last, bf16 autocast.

A :class:`Precision` mode says how one functional training step (``models.train.make_step``:
``vmap(grad_and_value(loss))`` over stacked seeds, or the seed-by-seed fallback) runs:

==========================  ===============  =======================================
mode                        autocast         memory layout of images and conv weights
==========================  ===============  =======================================
``fp32``                    off              PyTorch's default (contiguous NCHW)
``channels_last``           off              channels last (NHWC strides)
``bf16``                    bfloat16         default
``bf16_channels_last``      bfloat16         channels last
==========================  ===============  =======================================

bf16 modes keep **fp32 master weights**: the parameters stay float32, autocast runs the
convolutions and matmuls of the forward (and so their backward) in bfloat16, and the loss
and the gradients handed to the optimizer are float32 (autocast keeps ``cross_entropy`` in
float32; gradients take their parameter's dtype). The samplers run in float32 under
autocast (:func:`sampling.grid_sample` upcasts its input and grid and turns autocast off
inside), so bilinear weights and their gradients are not rounded to bf16, and
:func:`sampling.warp_affine` builds the affine grid in float32 under autocast (a bf16
grid, rounded to an 8-bit significand, put the S / STN-C0 gradient 30-40 % off fp32's;
tests/models/test_precision.py checks the float32 grid against a derived tolerance).
Training takes its mode from ``TrainConfig.precision`` (``stnlab train --precision``;
``fp32`` by default until an A/B, :mod:`proofs.precision_ab`, shows a faster mode
indistinguishable from it; the (S) A/B at ``small`` with 3 seeds did not, for 3 of 5
networks: ``results/precision-ab-small``).

Verified here (tests/models/test_precision.py), not assumed:

* autocast entered *outside* ``torch.func.vmap(grad_and_value(...))`` reaches the ops inside
  (the vmapped convolutions run in bf16; loss and gradients come back float32);
* channels-last strides on the 5-d stacked tensors ``(S, B, C, H, W)`` / ``(S, O, C, kh,
  kw)`` (each seed's slice is channels-last) survive vmap's batching of the convolution
  and the SGD update; the step's values are those of the fp32 step to fp32 rounding;
* ``fp32`` is the step itself: bit-identical to ``make_step``'s.

Usage::

    mode = Precision.parse("bf16_channels_last")
    params = mode.format_params(params)           # once, after init / resume
    step = mode.wrap_step(make_step(base, use_vmap), device)
    grads, loss, logits = step(params, x, y)      # x (S, B, C, H, W), all fp32 out
"""

from __future__ import annotations

import contextlib
import enum

import torch

from models.errors import ConfigError as UsageError

__all__ = ["Precision", "PRECISIONS", "to_channels_last", "is_channels_last"]


class Precision(str, enum.Enum):
    """How a training step runs: autocast dtype and memory layout (see the module doc)."""

    FP32 = "fp32"
    CHANNELS_LAST = "channels_last"
    BF16 = "bf16"
    BF16_CHANNELS_LAST = "bf16_channels_last"

    @classmethod
    def parse(cls, mode: "str | Precision", *, fn: str = "Precision.parse") -> "Precision":
        """The mode named ``mode`` (a :class:`Precision` passes through).

        Raises:
            UsageError: ``mode`` is not one of :data:`PRECISIONS`.
        """
        if isinstance(mode, cls):
            return mode
        try:
            return cls(mode)
        except ValueError:
            raise UsageError(f"{fn}: expected precision in {list(PRECISIONS)}, got "
                             f"{mode!r}") from None

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        """``torch.bfloat16`` for the bf16 modes, else None (no autocast)."""
        return torch.bfloat16 if self in (Precision.BF16, Precision.BF16_CHANNELS_LAST) else None

    @property
    def channels_last(self) -> bool:
        """Whether images and conv weights are laid out channels-last."""
        return self in (Precision.CHANNELS_LAST, Precision.BF16_CHANNELS_LAST)

    def autocast(self, device: str | torch.device):
        """Context manager: ``torch.autocast(device type, bfloat16)`` or a no-op."""
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=torch.device(device).type, dtype=self.autocast_dtype)

    def format_input(self, x: torch.Tensor) -> torch.Tensor:
        """``x (..., C, H, W)`` in this mode's layout (the values are unchanged)."""
        return to_channels_last(x) if self.channels_last else x

    def format_params(self, params: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Conv weights (per-seed ``(O, C, kh, kw)``, stacked ``(S, O, C, kh, kw)``) in this
        mode's layout; other parameters unchanged. Values and dtypes are unchanged (fp32
        master weights). Apply once: an SGD update ``p - lr * g`` keeps the layout."""
        if not self.channels_last:
            return params
        return {k: to_channels_last(v) if v.dim() >= 4 else v for k, v in params.items()}

    def wrap_step(self, step, device: str | torch.device):
        """``step(params, x, y) -> (grads, loss, logits)`` run in this mode.

        The wrapped step lays ``x`` out as :meth:`format_input` says, runs ``step`` under
        :meth:`autocast`, and returns float32 ``loss`` and ``logits`` and gradients in
        their parameter's dtype (float32). ``fp32`` returns ``step`` itself.
        """
        if self is Precision.FP32:
            return step

        def wrapped(params, x, y):
            with self.autocast(device):
                grads, loss, logits = step(params, self.format_input(x), y)
            grads = {k: g.to(params[k].dtype) for k, g in grads.items()}
            return grads, loss.float(), logits.float()

        wrapped.precision = self
        return wrapped


#: The mode names, in the order benchmarks report them.
PRECISIONS = tuple(p.value for p in Precision)


def _last3_perm(dim: int) -> list[int]:
    return list(range(dim - 3)) + [dim - 2, dim - 1, dim - 3]


def to_channels_last(t: torch.Tensor) -> torch.Tensor:
    """``t (..., C, H, W)`` with channels-last strides on its last three dimensions.

    For a 4-d tensor this is ``t.contiguous(memory_format=torch.channels_last)``; for the
    5-d stacked tensors of a multi-seed step (``(S, B, C, H, W)`` images, ``(S, O, C, kh,
    kw)`` conv weights) every slice along the leading dimension is channels-last, which is
    what ``torch.func.vmap`` hands to the convolutions (``torch.channels_last_3d`` would
    put C after D = B, the wrong dimension). Same shape and values.

    Raises:
        UsageError: ``t`` has fewer than 4 dimensions.
    """
    if t.dim() < 4:
        raise UsageError(f"to_channels_last: expected a tensor of at least 4 dims "
                         f"(..., C, H, W), got shape {tuple(t.shape)}")
    perm = _last3_perm(t.dim())
    inv = [perm.index(i) for i in range(t.dim())]
    return t.permute(perm).contiguous().permute(inv)  # (..., H, W, C) in memory


def is_channels_last(t: torch.Tensor) -> bool:
    """Whether ``t (..., C, H, W)``'s memory is ordered (..., H, W, C) (size-1 dims aside)."""
    if t.dim() < 4:
        return False
    return t.permute(_last3_perm(t.dim())).is_contiguous()
