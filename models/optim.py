"""Functional SGD with momentum / Nesterov, L2 weight decay and per-parameter lr multipliers.

The training loop (:mod:`models.train`) applies plain SGD unless a suite's
:class:`models.suites.TrainHooks` carries an optimizer; this is the one 000's deep suites
use (App. A.3 / A.4: L2 2e-4 on every layer, per-module learning-rate multipliers, Nesterov
momentum 0.8 on PlanktonSet). Its state (the momentum buffers, stacked over seeds like the
parameters) is a plain ``{name: tensor}`` dict the loop checkpoints, so resume is exact.

Update per parameter ``p`` with gradient ``g`` (PyTorch's ``torch.optim.SGD`` convention)::

    d = g + weight_decay * p
    b = momentum * b + d                  (b = 0 at the start)
    step = d + momentum * b if nesterov else b
    p = p - lr * multiplier[name] * step
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

__all__ = ["MomentumSGD"]


@dataclass(frozen=True)
class MomentumSGD:
    """SGD with momentum, optional Nesterov, L2 weight decay and lr multipliers.

    Attributes:
        momentum: in ``[0, 1)``; 0 is plain SGD (no state).
        nesterov: Nesterov momentum (needs ``momentum > 0``).
        weight_decay: L2 coefficient added to every gradient.
        lr_multipliers: ``{parameter name: multiplier}``; names absent use 1.
    """

    momentum: float = 0.0
    nesterov: bool = False
    weight_decay: float = 0.0
    lr_multipliers: dict = field(default_factory=dict)

    def __post_init__(self):
        fn = "MomentumSGD"
        if not (isinstance(self.momentum, (int, float)) and 0 <= self.momentum < 1):
            raise ValueError(f"{fn}: expected momentum in [0, 1), got {self.momentum!r}")
        if self.nesterov and self.momentum == 0:
            raise ValueError(f"{fn}: expected momentum > 0 with nesterov=True, got 0")
        if not (isinstance(self.weight_decay, (int, float)) and math.isfinite(self.weight_decay)
                and self.weight_decay >= 0):
            raise ValueError(f"{fn}: expected weight_decay to be a finite number >= 0, got "
                             f"{self.weight_decay!r}")
        bad = {k: v for k, v in self.lr_multipliers.items()
               if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0)}
        if bad:
            raise ValueError(f"{fn}: expected lr_multipliers to be finite numbers >= 0, got {bad}")

    def init(self, params: dict) -> dict:
        """The initial state: zero momentum buffers (none without momentum)."""
        if self.momentum == 0:
            return {}
        return {k: torch.zeros_like(v) for k, v in params.items()}

    @torch.no_grad()
    def update(self, params: dict, grads: dict, state: dict, lr: float) -> tuple[dict, dict]:
        """One step: ``(new params, new state)``; the inputs are not modified."""
        new_p, new_s = {}, {}
        for k, p in params.items():
            d = grads[k] + self.weight_decay * p if self.weight_decay else grads[k]
            if self.momentum:
                b = self.momentum * state[k] + d
                new_s[k] = b
                d = d + self.momentum * b if self.nesterov else b
            new_p[k] = p - (lr * self.lr_multipliers.get(k, 1.0)) * d
        return new_p, new_s
