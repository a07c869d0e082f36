"""Tests of the cub suite's standin-v2 variant (models/suites/_cub_v2.py) and of
models/wsol_heldout.py (CAM and CSTN with held-out operating points)."""

from __future__ import annotations

import json

import pytest
import torch

from models.cstn import build
from models.data import wsol_standin_v2 as V
from models.errors import ConfigError
from models.suites import DataSource, get_suite
from models.suites.cub import CubConfig, preset
from models.wsol_boxacc import TAUS
from models.wsol_heldout import evaluate_cam, evaluate_cstn
from proofs.cli import main


class _Split:
    def __init__(self, d):
        self.images, self.labels, self.boxes = d["images"], d["labels"], d["boxes"]


@pytest.fixture(scope="module")
def splits():
    return (_Split(V.make_split("heldout", 12, seed=0, size=32)),
            _Split(V.make_split("test", 10, seed=0, size=32)))


def test_cam_threshold_is_chosen_on_heldout(splits):
    held, test = splits
    torch.manual_seed(0)
    cam = build("CAM", num_classes=10, width=2)
    taus = TAUS[::5]  # 0, 0.05, ..., 0.95 (holds 0.2): a coarser grid keeps the test fast
    ev = evaluate_cam(cam, held, test, taus=taus, batch_size=5)
    assert ev["fixed"]["tau"] == 0.2 and ev["fixed"]["n"] == 10
    tau = ev["calibrated"]["tau"]
    # the calibrated threshold is the first maximizer on held-out: recompute it alone
    only = evaluate_cam(cam, held, held, taus=taus, batch_size=5, v2=False)
    assert only["max_box_acc"]["tau"] == tau  # held-out's own oracle = the chosen point
    assert ev["calibrated"]["heldout_box_acc"] == only["max_box_acc"]["max_box_acc"]
    assert ev["calibrated"]["gt_known_loc"] <= ev["max_box_acc"]["max_box_acc"]
    v2 = ev["max_box_acc_v2"]
    assert set(v2["per_delta"]) == {0.3, 0.5, 0.7} and v2["oracle"]
    assert v2["per_delta"][0.3] >= v2["per_delta"][0.5] >= v2["per_delta"][0.7]


def test_cstn_pairs_table_i_image_by_image(splits):
    held, test = splits
    torch.manual_seed(0)
    for net in ("CSTN", "no-CSTN"):
        m = build(net, num_classes=10, width=2)
        ev = evaluate_cstn(m, held, test, batch_size=5)
        p = ev["paired_top1_loc"]
        assert p["n"] == 10 and p["both"] + p["a_only"] + p["b_only"] + p["neither"] == 10
        n_t = round(ev["transformed"]["top1_loc"] * 10)
        n_r = round(ev["untransformed"]["top1_loc"] * 10)
        assert (p["both"] + p["a_only"], p["both"] + p["b_only"]) == (n_t, n_r)
        assert ev["calibrated"]["gt_known_loc"] <= ev["max_box_acc"]["max_box_acc"]
        assert "gt_known_top5_loc" in ev["transformed"]
    # no-CSTN: theta is the identity, so its transformed box is its receptive-field box
    assert ev["paired_top1_loc"]["a_only"] == ev["paired_top1_loc"]["b_only"] == 0
    with pytest.raises(ValueError, match="evaluate_cstn: expected gammas to include 1.0"):
        evaluate_cstn(m, held, test, gammas=(0.5, 2.0))


def test_preset_and_config(tmp_path):
    cfg = preset("medium", "standin-v2", "CSTN")
    assert cfg.image_size == 64 and cfg.num_classes == 10 and cfg.heldout_images == 1000
    assert cfg.train_digits >= 8000 and cfg.total_steps == 5000 and cfg.width == 8
    with pytest.raises(ConfigError, match="heldout_images"):
        CubConfig(variant="standin-v2", net="CSTN", heldout_images=0)
    suite = get_suite("cub")
    with pytest.raises(ConfigError, match="expected --data standin for variant 'standin-v2'"):
        suite.load_data("standin-v2", cfg, DataSource("official", tmp_path))


def test_smoke_run_names_the_stand_in_and_reports(tmp_path, capsys):
    out = tmp_path / "cub"
    assert main(["train", "--suite", "cub", "--scale", "smoke", "--data", "standin",
                 "--variant", "standin-v2", "--net", "CSTN,CAM", "--out", str(out)]) == 0
    for net in ("CSTN", "CAM"):
        r = json.loads((out / "standin-v2" / net / "metrics.json").read_text())
        assert "a stand-in for CUB-200-2011" in r["dataset"] and r["standin"]
        assert r["heldout"]["images"] == 16 and r["test"]["images"] == 16
        assert {"top1_cls", "top1_loc", "gt_known_loc"} <= set(r["calibrated"])
    r = json.loads((out / "standin-v2" / "CSTN" / "metrics.json").read_text())
    assert "paired_top1_loc" in r["per_seed"][0] and "untransformed" in r
    capsys.readouterr()
    assert main(["report", str(out)]) == 0
    text = capsys.readouterr().out
    assert "Held-out operating points and MaxBoxAcc (standin-v2)" in text
    assert "Table I paired image by image" in text


def test_resume_with_fresh_epochs_ends_where_the_uninterrupted_run_ends(tmp_path):
    """8 training garments at batch 4: a new epoch (a new rendering) every 2 steps; stop after
    3 of 6 steps, resume, and compare every parameter exactly (the rendering depends on the
    step the loop passes, so a resumed run renders what the uninterrupted one rendered)."""
    from models.runio import load_checkpoint
    from models.suites._cub_v2 import EvalSet
    from models.train import train

    suite = get_suite("cub")
    cfg = preset("smoke", "standin-v2", "CSTN", seeds=(0, 1), batch_size=4, iters=4,
                 iters_low=2, checkpoint_every=2, log_every=1, image_size=32, eval_batch=4)
    train_data = V.EpochLocSet(V.load_sources("train", 8, seed=0), seed=0, size=32)
    held = EvalSet(V.make_split("heldout", 6, seed=0, size=32))
    test = EvalSet(V.make_split("test", 6, seed=0, size=32), heldout=held)
    full = train(cfg, tmp_path / "full", train_data, test, progress=False, suite=suite)
    assert train(cfg, tmp_path / "cut", train_data, test, progress=False, suite=suite,
                 stop_after=3) is None
    resumed = train(cfg, tmp_path / "cut", train_data, test, progress=False, suite=suite,
                    resume=True)
    a = load_checkpoint(tmp_path / "full" / "checkpoint.pt")
    b = load_checkpoint(tmp_path / "cut" / "checkpoint.pt")
    for ma, mb in zip(a["models"], b["models"]):
        for k in ma:
            assert torch.equal(ma[k], mb[k]), k  # a priori: bit-for-bit
    assert full["loc"] == resumed["loc"]
