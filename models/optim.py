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

Also here: :class:`Adam` and :class:`EarlyStopping` over stacked multi-seed parameters.

The loop (:mod:`models.train`) trains several seeds at once on parameters stacked along
a leading seed axis (``{name: (S, ...)}``). Its default update is plain SGD with the
config's learning rate; a suite that needs more returns, from its
:class:`models.suites.TrainHooks`, an :class:`Adam` (per-parameter-group learning rates)
and/or an :class:`EarlyStopping` rule. Both keep their whole state in a dict of tensors
(``state_dict`` / ``load_state_dict``) that the loop writes into every checkpoint, so a
resumed run continues bit for bit.

Every operation is elementwise per seed: seed ``i``'s slice evolves exactly as one
``torch.optim.Adam`` on that seed's model would (tested against it).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

__all__ = ["MomentumSGD", "Adam", "EarlyStopping"]


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



class Adam:
    """Adam (Kingma & Ba) on a dict of stacked parameters, torch's update order.

    Args:
        lr: one learning rate, or ``lr(name) -> float`` for per-parameter rates (e.g. 003's
            1e-5 for the ST and 1e-3 for the classifier).
        betas, eps: as :class:`torch.optim.Adam` (no weight decay, no amsgrad).

    Raises:
        ValueError: a non-positive learning rate, betas outside ``[0, 1)``, ``eps < 0``.
    """

    def __init__(self, lr: float | Callable[[str], float], *, betas=(0.9, 0.999),
                 eps: float = 1e-8):
        fn = "Adam"
        if not callable(lr) and (not isinstance(lr, (int, float)) or not math.isfinite(lr)
                                 or lr <= 0):
            raise ValueError(f"{fn}: expected lr a finite number > 0 or a callable, got {lr!r}")
        b1, b2 = betas
        if not (0 <= b1 < 1 and 0 <= b2 < 1):
            raise ValueError(f"{fn}: expected betas in [0, 1), got {betas!r}")
        if eps < 0:
            raise ValueError(f"{fn}: expected eps >= 0, got {eps!r}")
        self.lr = lr if callable(lr) else (lambda name, _lr=float(lr): _lr)
        self.betas = (float(b1), float(b2))
        self.eps = float(eps)

    def init(self, params: dict[str, torch.Tensor]) -> dict:
        """Zero moments and step 0: ``{"step": int tensor, "m/<name>", "v/<name>"}``."""
        state: dict = {"step": torch.zeros((), dtype=torch.int64)}
        for k, p in params.items():
            state[f"m/{k}"] = torch.zeros_like(p)
            state[f"v/{k}"] = torch.zeros_like(p)
        return state

    def lrs(self, params) -> dict[str, float]:
        """``{name: learning rate}`` for ``params``' names."""
        return {k: float(self.lr(k)) for k in params}

    @torch.no_grad()
    def update(self, params: dict, grads: dict, state: dict, lr: float | None = None
               ) -> tuple[dict, dict]:
        """One step: ``(new params, new state)``; the inputs are not modified.

        ``lr`` (the loop's ``cfg.lr_at(step)``, passed by loops that pass one) is ignored:
        Adam's rates are the per-parameter ones given at construction.
        """
        b1, b2 = self.betas
        t = int(state["step"]) + 1
        bc1 = 1 - b1 ** t
        bc2_sqrt = math.sqrt(1 - b2 ** t)
        new_p, new_s = {}, {"step": torch.tensor(t, dtype=torch.int64)}
        for k, p in params.items():
            g = grads[k]
            m = state[f"m/{k}"].lerp(g, 1 - b1)  # torch: exp_avg.lerp_(grad, 1 - beta1)
            v = state[f"v/{k}"].mul(b2).addcmul(g, g.conj(), value=1 - b2)
            denom = (v.sqrt() / bc2_sqrt).add(self.eps)
            new_p[k] = p.addcdiv(m, denom, value=-(float(self.lr(k)) / bc1))
            new_s[f"m/{k}"], new_s[f"v/{k}"] = m, v
        return new_p, new_s


class EarlyStopping:
    """Stop when every seed has gone ``patience`` steps without a lower validation error.

    Validation runs every ``every`` steps (and at the last step); each seed's best
    parameters (lowest validation error, the earliest on ties) are kept, and
    :meth:`select` returns them for the final evaluation (003 Sec. 6.2: "early stopping
    after 80k iterations without improvement on validation").

    Args:
        every: steps between validations (>= 1).
        patience: steps without improvement after which a seed is done; ``None`` never
            stops early (validation still selects the best parameters).
    """

    def __init__(self, every: int, patience: int | None):
        fn = "EarlyStopping"
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"{fn}: expected every an int >= 1, got {every!r}")
        if patience is not None and (isinstance(patience, bool) or not isinstance(patience, int)
                                     or patience < 1):
            raise ValueError(f"{fn}: expected patience None or an int >= 1, got {patience!r}")
        self.every = every
        self.patience = patience

    def init(self, params: dict) -> dict:
        """No validation yet: best error +inf, best step 0, best params = the initial ones."""
        S = next(iter(params.values())).shape[0]
        dev = next(iter(params.values())).device
        state = {"best_error": torch.full((S,), math.inf, dtype=torch.float64, device=dev),
                 "best_step": torch.zeros(S, dtype=torch.int64, device=dev)}
        state.update({f"best/{k}": v.clone() for k, v in params.items()})
        return state

    @torch.no_grad()
    def observe(self, params: dict, step: int, errors: torch.Tensor, state: dict
                ) -> tuple[dict, bool]:
        """Record validation ``errors`` ``(S,)`` at ``step``: ``(new state, stop)``."""
        errors = errors.to(state["best_error"])
        better = errors < state["best_error"]  # (S,)
        new = {"best_error": torch.where(better, errors, state["best_error"]),
               "best_step": torch.where(better, torch.full_like(state["best_step"], step),
                                        state["best_step"])}
        for k, v in params.items():
            b = better.view(-1, *([1] * (v.dim() - 1)))
            new[f"best/{k}"] = torch.where(b, v, state[f"best/{k}"])
        stop = (self.patience is not None
                and bool(((step - new["best_step"]) >= self.patience).all()))
        return new, stop

    def select(self, state: dict) -> dict:
        """Each seed's best parameters ``{name: (S, ...)}``."""
        return {k[len("best/"):]: v for k, v in state.items() if k.startswith("best/")}

    def summary(self, state: dict) -> dict:
        """``{"best_step": [...], "best_val_error": [...], "patience", "every"}``."""
        return {"best_step": state["best_step"].tolist(),
                "best_val_error": state["best_error"].tolist(),
                "patience": self.patience, "every": self.every}
