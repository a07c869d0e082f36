"""The functional multi-seed core: stacked parameters, one ``vmap``-ed SGD step.

One run trains several seeds at once: their parameters are stacked with
``torch.func.stack_module_state`` and one step is ``vmap(grad_and_value(loss))`` over the
seed axis. Where ``vmap`` cannot serve, the same functional step runs seed by seed.
"""

from __future__ import annotations

import contextlib
import copy
from functools import partial

import torch
import torch.nn.functional as F
from torch.func import functional_call, grad_and_value, stack_module_state, vmap

__all__ = ["init_models", "make_step", "seed_params", "tie_exact_convolutions"]

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


@contextlib.contextmanager
def tie_exact_convolutions(x: torch.Tensor):
    """Run the step's CPU float32 convolutions on ATen's im2col + GEMM path, not oneDNN's.

    Max-pooling over a constant background (every MNIST digit's) sees windows whose values
    are equal in exact arithmetic. Whether they stay equal in float32 depends on the
    convolution: ATen's im2col + GEMM computes identical patches identically, so the tie
    is exact and the pooling's gradient goes to the window's first element on every CPU;
    oneDNN's AVX2 direct convolution (``ONEDNN_MAX_CPU_ISA=AVX2``, e.g. a Zen 3 CPU)
    accumulates border columns in another order, breaking such ties by one ulp, and it
    breaks them differently for the per-seed ``(B, C, H, W)`` convolution and the
    vmapped (grouped) one. The max-pool gradient then moves to another pixel: STN-C0's
    ``st.to_theta.bias`` gradient moved by 1.3e-3 (|g| ~ 1) between the two paths, 19 of
    12 800 first-layer pooling windows having flipped; without oneDNN the two agree to
    1.8e-7 under the AVX-512, AVX2 and default ATen kernels alike
    (tests/models/test_train.py). On this path the small nets' step is no slower
    (STN-C0, batch 64, one thread: 20.5 ms vs 28.0 ms with oneDNN under AVX-512 kernels,
    34.0 vs 36.4 ms under AVX2 ones, on a loaded 2-core EPYC).

    Only plain float32 on CPU is affected: under autocast (bf16) or with channels-last
    images (the :mod:`models.precision` modes, chosen for oneDNN's speed) oneDNN stays on.
    """
    one = x[0] if x.dim() == 5 else x  # one seed's (B, C, H, W): its layout is the mode's
    use = (x.device.type == "cpu" and x.dtype == torch.float32
           and not torch.is_autocast_enabled("cpu") and one.is_contiguous()
           and torch.backends.mkldnn.enabled)
    if not use:
        yield
        return
    torch.backends.mkldnn.enabled = False
    try:
        yield
    finally:
        torch.backends.mkldnn.enabled = True


@contextlib.contextmanager
def _no_ties(x: torch.Tensor):
    yield


def _loss(base, params, x, y, loss_fn=F.cross_entropy):
    logits = functional_call(base, params, (x,))
    return loss_fn(logits, y), logits


def make_step(base, use_vmap: bool, loss_fn=F.cross_entropy, *, exact_ties: bool = True):
    """``step(params, x (S, B, C, H, W), y (S, B)) -> (grads, loss (S,), logits (S, B, K))``.

    Args:
        base: the architecture on the ``meta`` device (from :func:`init_models`).
        use_vmap: one ``vmap``-ed step over the seeds, else seed by seed.
        loss_fn: ``loss_fn(output, y) -> scalar``, the suite's training loss hook
            (functional: it runs under ``vmap``).
        exact_ties: wrap the step in :func:`tie_exact_convolutions` (the suite's
            ``TrainHooks.exact_conv_ties``); False keeps oneDNN's convolutions.
    """
    ties = tie_exact_convolutions if exact_ties else _no_ties

    if use_vmap:
        # randomness="different": each seed draws its own dropout masks (nets without
        # randomness, e.g. MNIST's, are unaffected)
        batched = vmap(grad_and_value(partial(_loss, base, loss_fn=loss_fn), has_aux=True),
                       randomness="different")

        def step(params, x, y):
            with ties(x):
                grads, (loss, logits) = batched(params, x, y)
            return grads, loss, logits
        return step

    def step_seq(params, x, y):
        # Plain autograd, seed by seed: serves samplers whose autograd.Function has no
        # functorch support (torch.func.grad / vmap refuse those).
        grads, losses, logits = {k: [] for k in params}, [], []
        with ties(x):
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


