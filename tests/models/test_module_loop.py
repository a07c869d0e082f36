"""The loop's module mode (models/module_loop.py): stateful modules, optimizer state, resume."""

from __future__ import annotations

import json

import pytest
import torch

from models.errors import ConfigError
from models.runio import load_checkpoint
from models.suites import get_suite
from models.suites.cub import LocSet, preset
from models.train import TrainingDiverged, train


def _data(n, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, 32, 32, generator=g)
    y = torch.randint(10, (n,), generator=g)
    b = torch.tensor([[4.0, 4.0, 20.0, 24.0]]).expand(n, 4)
    return LocSet(x, y, b, "random test images")


def _cfg(net, **kw):
    base = dict(seeds=(0, 1), batch_size=4, iters=4, iters_low=2, checkpoint_every=2,
                log_every=1, width=4, image_size=32, test_digits=8, eval_batch=4)
    base.update(kw)
    return preset("smoke", "standin", net, **base)


def _state(run_dir):
    return load_checkpoint(run_dir / "checkpoint.pt")


@pytest.mark.parametrize("net, optimizer", [("CSTN", "adam"), ("CAM", "sgd")])
def test_resume_ends_where_the_uninterrupted_run_ends(tmp_path, net, optimizer):
    """Stop after 3 of 6 steps (mid learning-rate phase, between checkpoints at 2 and 4),
    resume, and compare every parameter, buffer, optimizer moment and metric exactly."""
    suite = get_suite("cub")
    cfg = _cfg(net, optimizer=optimizer)
    train_data, test_data = _data(24, 0), _data(8, 1)
    full = train(cfg, tmp_path / "full", train_data, test_data, progress=False, suite=suite)
    assert train(cfg, tmp_path / "cut", train_data, test_data, progress=False, suite=suite,
                 stop_after=3) is None
    assert not (tmp_path / "cut" / "metrics.json").exists()
    resumed = train(cfg, tmp_path / "cut", train_data, test_data, progress=False, suite=suite,
                    resume=True)
    a, b = _state(tmp_path / "full"), _state(tmp_path / "cut")
    assert a["step"] == b["step"] == 6
    for ma, mb in zip(a["models"], b["models"]):
        assert ma.keys() == mb.keys()
        for k in ma:
            assert torch.equal(ma[k], mb[k]), k  # a priori: bit-for-bit (same ops, same order)
    assert json.dumps(a["optimizers"], default=lambda t: t.tolist()) == \
        json.dumps(b["optimizers"], default=lambda t: t.tolist())
    assert full["loc"] == resumed["loc"]
    assert full["train"]["final_loss"] == resumed["train"]["final_loss"]
    log = [json.loads(ln) for ln in (tmp_path / "cut" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3, 4, 5, 6]


def test_seeds_differ_and_buffers_are_checkpointed(tmp_path):
    cfg = _cfg("no-CSTN", iters=2, iters_low=0)
    train(cfg, tmp_path / "r", _data(24, 0), None, progress=False, suite=get_suite("cub"))
    ck = _state(tmp_path / "r")
    m0, m1 = ck["models"]
    assert any(k.endswith("running_mean") for k in m0)  # batch norm buffers travel
    assert not torch.equal(m0["head.conv.weight"], m1["head.conv.weight"])
    assert ck["optimizers"][0]["state"]  # Adam moments travel


def test_resume_with_another_config_is_refused(tmp_path):
    suite = get_suite("cub")
    train(_cfg("CSTN"), tmp_path / "r", _data(24, 0), None, progress=False, suite=suite,
          stop_after=2)
    with pytest.raises(ConfigError, match=r"train: --resume with a different config"):
        train(_cfg("CSTN", lr=0.5), tmp_path / "r", _data(24, 0), None, progress=False,
              suite=suite, resume=True)
    with pytest.raises(ConfigError, match=r"checkpoint.pt exists; pass --resume"):
        train(_cfg("CSTN"), tmp_path / "r", _data(24, 0), None, progress=False, suite=suite)


def test_a_non_finite_loss_stops_the_run(tmp_path):
    data = _data(24, 0)
    data.images[:] = float("nan")
    with pytest.raises(TrainingDiverged, match=r"diverged at step 1: non-finite loss for seed 0"):
        train(_cfg("CAM"), tmp_path / "r", data, None, progress=False, suite=get_suite("cub"))
    assert (tmp_path / "r" / "diverged.json").exists()
