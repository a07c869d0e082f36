"""The functional multi-seed core: stacked parameters, one ``vmap``-ed SGD step.

One run trains several seeds at once: their parameters are stacked with
``torch.func.stack_module_state`` and one step is ``vmap(grad_and_value(loss))`` over the
seed axis. Where ``vmap`` cannot serve, the same functional step runs seed by seed.
"""

from __future__ import annotations

import copy
from functools import partial

import torch
import torch.nn.functional as F
from torch.func import functional_call, grad_and_value, stack_module_state, vmap

__all__ = ["init_models", "make_step", "seed_params"]

def init_models(cfg, build) -> tuple[torch.nn.Module, dict[str, torch.Tensor]]:
    """Build one model per seed (``torch.manual_seed(seed)`` before each) and stack them.

    Args:
        cfg: the run's config (``seeds``, ``device``).
        build: ``build(cfg) -> nn.Module``, the suite's network builder.

    Returns:
        ``(base, params)``: a stateless copy of the architecture on the ``meta`` device for
        ``functional_call``, and ``{name: (S, ...)}`` stacked parameters on ``cfg.device``.
        Shared tensors (STN-SL) appear once, under the classifier's name.
    """
    models = []
    for seed in cfg.seeds:
        torch.manual_seed(seed)
        models.append(build(cfg))
    params, buffers = stack_module_state(models)
    if buffers:  # the MNIST nets have no buffers (no batch norm)
        raise ValueError("init_models: expected models without buffers")
    base = copy.deepcopy(models[0]).to("meta")
    params = {k: v.detach().to(cfg.device) for k, v in params.items()}
    return base, params


def _loss(base, params, x, y, loss_fn=F.cross_entropy):
    logits = functional_call(base, params, (x,))
    return loss_fn(logits, y), logits


def make_step(base, use_vmap: bool, loss_fn=F.cross_entropy):
    """``step(params, x (S, B, C, H, W), y (S, B)) -> (grads, loss (S,), logits (S, B, K))``.

    Args:
        base: the architecture on the ``meta`` device (from :func:`init_models`).
        use_vmap: one ``vmap``-ed step over the seeds, else seed by seed.
        loss_fn: ``loss_fn(output, y) -> scalar``, the suite's training loss hook
            (functional: it runs under ``vmap``).
    """
    if use_vmap:
        # randomness="different": each seed draws its own dropout masks (nets without
        # randomness, e.g. MNIST's, are unaffected)
        batched = vmap(grad_and_value(partial(_loss, base, loss_fn=loss_fn), has_aux=True),
                       randomness="different")

        def step(params, x, y):
            grads, (loss, logits) = batched(params, x, y)
            return grads, loss, logits
        return step

    def step_seq(params, x, y):
        # Plain autograd, seed by seed: serves samplers whose autograd.Function has no
        # functorch support (torch.func.grad / vmap refuse those).
        grads, losses, logits = {k: [] for k in params}, [], []
        for i in range(x.shape[0]):
            p = {k: v[i].detach().requires_grad_(True) for k, v in params.items()}
            with torch.enable_grad():
                loss, out = _loss(base, p, x[i], y[i], loss_fn)
                g = torch.autograd.grad(loss, list(p.values()))
            for k, gk in zip(p, g):
                grads[k].append(gk)
            losses.append(loss.detach())
            logits.append(out.detach())
        return ({k: torch.stack(v) for k, v in grads.items()}, torch.stack(losses),
                torch.stack(logits))
    return step_seq


def seed_params(params: dict, i: int) -> dict:
    """Parameters of the ``i``-th stacked seed."""
    return {k: v[i] for k, v in params.items()}


