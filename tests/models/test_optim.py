"""``models.optim.MomentumSGD`` against ``torch.optim.SGD`` (the convention it states)."""

from __future__ import annotations

import pytest
import torch

from models.optim import MomentumSGD


@pytest.mark.parametrize("momentum,nesterov,wd", [(0.0, False, 0.0), (0.9, False, 2e-4),
                                                   (0.8, True, 2e-4)])
def test_matches_torch_sgd_with_multipliers(momentum, nesterov, wd):
    g = torch.Generator().manual_seed(0)
    p0 = {"a": torch.randn(3, 4, generator=g), "b": torch.randn(5, generator=g)}
    grads = [{k: torch.randn(v.shape, generator=g) for k, v in p0.items()} for _ in range(4)]
    mult = {"b": 0.01}
    opt = MomentumSGD(momentum, nesterov, wd, mult)
    params, state = dict(p0), opt.init(p0)
    ref = {k: v.clone().requires_grad_(True) for k, v in p0.items()}
    torch_opt = torch.optim.SGD([{"params": [ref["a"]], "lr": 0.1},
                                 {"params": [ref["b"]], "lr": 0.1 * mult["b"]}],
                                lr=0.1, momentum=momentum, nesterov=nesterov, weight_decay=wd)
    for gr in grads:
        params, state = opt.update(params, gr, state, 0.1)
        for k in ref:
            ref[k].grad = gr[k].clone()
        torch_opt.step()
    for k in ref:
        # derived: 4 steps of float32 arithmetic on O(1) values, a few eps32 (1.2e-7) each
        torch.testing.assert_close(params[k], ref[k].detach(), atol=1e-6, rtol=0)
    assert not torch.equal(params["a"], p0["a"])


def test_rejects_with_names():
    with pytest.raises(ValueError, match=r"MomentumSGD: expected momentum in \[0, 1\), got 1.5"):
        MomentumSGD(1.5)
    with pytest.raises(ValueError, match=r"MomentumSGD: expected momentum > 0 with nesterov"):
        MomentumSGD(0.0, True)
    with pytest.raises(ValueError, match=r"MomentumSGD: expected lr_multipliers to be finite"):
        MomentumSGD(0.9, lr_multipliers={"a": float("nan")})
