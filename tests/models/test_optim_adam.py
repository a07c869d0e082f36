"""``models.optim``: the functional Adam and early stopping on stacked multi-seed parameters."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.func import stack_module_state

from models.optim import Adam, EarlyStopping


def _models(n=2):
    out = []
    for s in range(n):
        torch.manual_seed(s)
        out.append(nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 3)))
    return out


def _lr(name):
    return 1e-2 if name.startswith("0.") else 1e-3


def _run_both(lr_fn, steps=6):
    """Our Adam on stacked params vs one torch.optim.Adam per seed (same gradients)."""
    models = _models()
    torch_opts = [torch.optim.Adam([{"params": m[0].parameters(), "lr": 1e-2},
                                    {"params": m[2].parameters(), "lr": 1e-3}], foreach=False)
                  for m in models]
    params, _ = stack_module_state(models)
    params = {k: v.detach().clone() for k, v in params.items()}
    opt = Adam(lr_fn)
    state = opt.init(params)
    g = torch.Generator().manual_seed(0)
    for _ in range(steps):
        grads = {k: torch.randn(v.shape, generator=g) for k, v in params.items()}
        params, state = opt.update(params, grads, state)
        for i, (m, o) in enumerate(zip(models, torch_opts)):
            for k, p in m.named_parameters():
                p.grad = grads[k][i].clone()
            o.step()
    return params, models


def test_adam_matches_torch_per_seed_and_group():
    params, models = _run_both(_lr)
    for i, m in enumerate(models):
        for k, p in m.named_parameters():
            # a priori: the same float32 operations in torch's order -> equal bits
            assert torch.equal(params[k][i], p.detach()), k


def test_adam_check_fails_with_the_groups_swapped():
    params, models = _run_both(lambda n: 1e-3 if n.startswith("0.") else 1e-2)
    assert any(not torch.equal(params[k][0], p.detach()) for k, p in models[0].named_parameters())


def test_adam_bad_arguments():
    with pytest.raises(ValueError, match=r"Adam: expected lr a finite number > 0.*got -1"):
        Adam(-1)
    with pytest.raises(ValueError, match=r"Adam: expected betas in \[0, 1\), got \(1"):
        Adam(1e-3, betas=(1.0, 0.9))


def test_early_stopping_keeps_each_seeds_best_and_stops_when_all_are_done():
    es = EarlyStopping(every=1, patience=2)
    p = {"w": torch.zeros(2, 3)}
    st = es.init(p)
    errs = [(0.5, 0.5), (0.4, 0.6), (0.45, 0.3), (0.46, 0.31), (0.47, 0.32)]
    stops = []
    for step, e in enumerate(errs, start=1):
        p = {"w": torch.full((2, 3), float(step))}
        st, stop = es.observe(p, step, torch.tensor(e), st)
        stops.append(stop)
    # seed 0: best at step 2 (done from step 4); seed 1: best at step 3 (done at step 5)
    assert stops == [False, False, False, False, True]
    assert st["best_step"].tolist() == [2, 3]
    best = es.select(st)["w"]
    assert best[0].eq(2).all() and best[1].eq(3).all()
    assert es.summary(st)["best_val_error"] == pytest.approx([0.4, 0.3])


def test_early_stopping_without_patience_never_stops():
    es = EarlyStopping(every=1, patience=None)
    st = es.init({"w": torch.zeros(1, 1)})
    for step in range(1, 20):
        st, stop = es.observe({"w": torch.zeros(1, 1)}, step, torch.tensor([1.0]), st)
        assert not stop
    assert st["best_step"].tolist() == [1] and math.isclose(float(st["best_error"]), 1.0)


def test_early_stopping_bad_arguments():
    with pytest.raises(ValueError, match="EarlyStopping: expected every an int >= 1, got 0"):
        EarlyStopping(0, 5)
    with pytest.raises(ValueError, match="EarlyStopping: expected patience None or an int"):
        EarlyStopping(1, 0)
