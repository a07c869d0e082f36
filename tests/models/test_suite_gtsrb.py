"""``models.suites.gtsrb``: names, presets, the CLI end to end, exact resume, the report."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from models.record import RunRecord
from models.runio import load_checkpoint, save_checkpoint
from models.suites import TrainHooks
from models.suites.gtsrb import (NET_NAMES, SUITE, GtsrbConfig, TensorData, match_nets,
                                 parse_net, preset)
from models.train import train
from proofs.cli import main
from tests.models.gtsrb_files import write_gtsrb


def test_net_names_cover_table_1():
    assert len(NET_NAMES) == 4 + 2 * 3 * 4 and NET_NAMES[0] == "none-d1"
    assert parse_net("ICSTN-linearized-d4") == ("ICSTN", "linearized", 4)
    assert parse_net("none-d8") == ("none", None, 8)
    assert match_nets("ICSTN-*-d4") == ["ICSTN-bilinear-d4", "ICSTN-multiscale-d4",
                                        "ICSTN-linearized-d4"]
    with pytest.raises(ValueError, match=r"parse_net: expected a gtsrb network name.*got 'STN'"):
        parse_net("STN")


def test_preset_follows_003_at_paper_and_refuses_foreign_keys():
    cfg = preset("paper", "table1", "STN-linearized-d8")
    assert (cfg.batch_size, cfg.iters, cfg.patience, cfg.lr_st, cfg.lr_classifier) == \
        (64, 300_000, 80_000, 1e-5, 1e-3)
    assert cfg.method == "linearized" and cfg.downsample == 8
    assert preset("smoke", "table1", "none-d2", lr=None).method == "none"  # None: not given
    with pytest.raises(ValueError, match=r"preset: the gtsrb suite has no config keys \['lr'\]"):
        preset("smoke", "table1", "none-d2", lr=0.1)
    with pytest.raises(ValueError, match=r"GtsrbConfig: expected method 'bilinear'.*got "
                                         r"'linearized'"):
        GtsrbConfig("table1", "STN-bilinear-d2", method="linearized")


def test_optimizer_groups_are_003s():
    cfg = preset("smoke", "table1", "ICSTN-bilinear-d4")
    _, params = __import__("models.core", fromlist=["init_models"]).init_models(cfg, SUITE.build)
    lrs = SUITE.hooks(cfg).optimizer.lrs(params)
    assert {lrs[k] for k in lrs if k.startswith("localizer.")} == {1e-5}
    assert {lrs[k] for k in lrs if k.startswith("classifier.")} == {1e-3}


def _metrics(out, net, variant="table1"):
    return RunRecord.load(out / variant / net).metrics


def test_cli_smoke_on_the_standin_and_the_report(tmp_path, capsys):
    out = tmp_path / "runs"
    assert main(["train", "--suite", "gtsrb", "--scale", "smoke", "--data", "standin",
                 "--variant", "table1", "--net", "none-d2,STN-bilinear-d8", "--out", str(out),
                 "--quiet"]) == 0
    m = _metrics(out, "STN-bilinear-d8")
    assert m["dataset"].startswith("gtsrb-standin") and m["scale"] == "smoke"
    assert m["classifier_params"] == 19_499 and m["steps"] == 3
    assert "images_per_s" in m["train"] and "early_stopping" in m
    assert json.loads((out / "suite.json").read_text())["suite"] == "gtsrb"
    capsys.readouterr()
    assert main(["report", str(out)]) == 0
    text = (out / "report.md").read_text()
    assert "gtsrb-standin" in text and "Scale: smoke" in text and "seeds per run: 1" in text
    assert "d=8 paper" in text and "| classifier params | 965,675 | 966k" in text
    row = next(ln for ln in text.splitlines() if ln.startswith("| STN bilinear |"))
    assert row.split("|")[-3].strip() != "–" and row.split("|")[-2].strip() == "15.31"
    assert (out / "figures" / "fig6_class_means.png").is_file()


def test_cli_smoke_on_official_fixture_files(tmp_path):
    write_gtsrb(tmp_path / "raw", classes=4, tracks=10, per_track=3, n_test=7)
    out = tmp_path / "runs"
    assert main(["train", "--suite", "gtsrb", "--scale", "smoke", "--data",
                 str(tmp_path / "raw"), "--variant", "table1", "--net", "none-d4",
                 "--out", str(out), "--quiet"]) == 0
    m = _metrics(out, "none-d4")
    assert m["dataset"].startswith("gtsrb (") and m["test"]["images"] == 7


def test_cli_wrong_directory_names_the_layout(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["train", "--suite", "gtsrb", "--scale", "smoke", "--data",
                 str(tmp_path / "empty"), "--net", "none-d4", "--out",
                 str(tmp_path / "o")]) == 2
    assert "Final_Training/Images" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_cli_net_patterns_must_match(capsys):
    assert main(["train", "--suite", "gtsrb", "--scale", "smoke", "--data", "standin",
                 "--net", "XSTN-*"]) == 2
    assert "expected --net to be 'all' or names / shell patterns" in capsys.readouterr().err


def _data(n=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, 50, 50, generator=g)
    y = torch.randint(0, 10, (n,), generator=g)
    val = TensorData(x[:8], y[:8], "random", 10)
    return TensorData(x, y, "random", 10, val=val), TensorData(x[32:], y[32:], "random", 10)


def _cfg(**kw):
    base = dict(batch_size=2, iters=6, checkpoint_every=3, validate_every=2, patience=None,
                eval_batch=16, log_every=2, seeds=(0, 1))
    base.update(kw)
    return GtsrbConfig("table1", kw.pop("net", "ICSTN-bilinear-d4"),
                       **{k: v for k, v in base.items() if k != "net"})


def _final(run_dir):
    return load_checkpoint(run_dir / "checkpoint.pt")


@pytest.mark.parametrize("net, kw", [
    ("ICSTN-bilinear-d4", {}),
    # the linearized sampler draws its noise seeds from torch's global generator; it is
    # slow on CPU, so 1 seed, batch 2, 4 steps (checkpoint at 2)
    ("STN-linearized-d8", dict(seeds=(0,), batch_size=2, iters=4, checkpoint_every=2))])
def test_resume_is_exact(tmp_path, net, kw):
    cfg = _cfg(net=net, **kw)
    tr, te = _data()
    full = train(cfg, tmp_path / "full", tr, te, progress=False, suite=SUITE)
    assert train(cfg, tmp_path / "cut", tr, te, progress=False,
                 stop_after=cfg.total_steps - 1, suite=SUITE) is None
    assert _final(tmp_path / "cut")["step"] == cfg.checkpoint_every
    torch.manual_seed(999)  # whatever happened to the global generator in between
    resumed = train(cfg, tmp_path / "cut", tr, te, progress=False, resume=True, suite=SUITE)
    a, b = _final(tmp_path / "full"), _final(tmp_path / "cut")
    for part in ("params", "opt_state", "early_stopping"):
        for k in a[part]:
            assert torch.equal(a[part][k], b[part][k]), (part, k)
    assert resumed["error"] == full["error"]
    assert resumed["early_stopping"] == full["early_stopping"]


def test_resume_check_fails_without_the_optimizer_state(tmp_path):
    cfg = _cfg(net="STN-bilinear-d4")
    tr, _ = _data()
    train(cfg, tmp_path / "full", tr, None, progress=False, suite=SUITE)
    train(cfg, tmp_path / "cut", tr, None, progress=False, stop_after=3, suite=SUITE)
    ck = _final(tmp_path / "cut")
    ck["opt_state"] = {k: torch.zeros_like(v) for k, v in ck["opt_state"].items()}
    save_checkpoint(tmp_path / "cut" / "checkpoint.pt", ck, keep_previous=False)
    train(cfg, tmp_path / "cut", tr, None, progress=False, resume=True, suite=SUITE)
    a, b = _final(tmp_path / "full")["params"], _final(tmp_path / "cut")["params"]
    assert any(not torch.equal(a[k], b[k]) for k in a)


class _Flat(type(SUITE)):
    """The suite with a validation error that never improves after the first check."""

    def hooks(self, cfg):
        h = super().hooks(cfg)
        return dataclasses.replace(h, validate=lambda base, params, data:
                                   torch.ones(len(cfg.seeds), dtype=torch.float64))


def test_early_stopping_ends_the_run_and_evaluates_the_best(tmp_path):
    cfg = _cfg(iters=50, patience=4, validate_every=2, checkpoint_every=100)
    tr, te = _data()
    res = train(cfg, tmp_path / "r", tr, te, progress=False, suite=_Flat())
    # best at the first validation (step 2); done once 4 steps passed: at step 6
    assert res["steps"] == 6 and res["early_stopping"]["best_step"] == [2, 2]
    assert res["early_stopping"]["stopped_at"] == 6
    assert _final(tmp_path / "r")["stopped"] is True


def test_hooks_need_validate_with_early_stopping():
    from models.optim import EarlyStopping
    with pytest.raises(ValueError, match="TrainHooks: expected early_stopping and validate "
                                         "together"):
        TrainHooks(early_stopping=EarlyStopping(1, None))
