"""Collapse detection: the ST's geometry measures, the thresholds, and a forced collapse."""

from __future__ import annotations

import json
import math

import pytest
import torch

from models.collapse import (CHANCE_ERROR, INSIDE_THRESHOLD, CollapseWatch, chance_floor,
                             st_geometry, window_lines)
from models.data.perturb import PerturbedMNIST
from models.suites.mnist import MnistSuite
from models.train import TrainingCollapsed, load_checkpoint, preset, train


def _eye(n=4, scale=1.0, tx=0.0):
    t = torch.zeros(n, 2, 3)
    t[:, 0, 0] = t[:, 1, 1] = scale
    t[:, 0, 2] = tx
    return t


def test_geometry_of_identity_zoom_and_drift():
    assert st_geometry(_eye(), (9, 9)) == (1.0, 0.0)
    # A centred zoom-out by s keeps the points with |p| <= 1/s inside: on a 9-point axis
    # (step 0.25) zoom 2 keeps 5 of 9 per axis, and log2 det = log2(s^2) = 2 (derived).
    inside, ld = st_geometry(_eye(scale=2.0), (9, 9))
    assert inside == pytest.approx(25 / 81) and ld == pytest.approx(2.0)
    # Drift by 5 normalized units: every point leaves the image; no zoom.
    assert st_geometry(_eye(tx=5.0), (9, 9)) == (0.0, 0.0)


def test_thresholds_are_the_stated_derivations():
    assert INSIDE_THRESHOLD == 0.5 and CHANCE_ERROR == 0.9
    assert chance_floor(800) == pytest.approx(0.9 - 3 * math.sqrt(0.09 / 800))
    assert window_lines(3500, 25) == 7 and window_lines(6, 2) == 2


def test_watch_needs_both_conditions_for_the_whole_window():
    w = CollapseWatch(2, total_steps=100, log_every=10, batch_size=100)  # window 2
    assert w.update([0.1, 0.9], [0.9, 0.9]) == [0]   # seed 1 is inside the image
    assert w.collapsed() is None
    w.update([0.1, 0.1], [0.2, 0.9])                 # seed 0 learns: its streak ends
    assert w.collapsed() is None and w.streak == [0, 1]
    w.update([0.1, 0.1], [0.9, 0.9])
    assert w.collapsed() == 1


class _OffImage(MnistSuite):
    """The MNIST suite with the ST's bias mapping every sampling point 5 units right."""

    def build(self, cfg):
        net = super().build(cfg)
        with torch.no_grad():
            net.st.to_theta.bias.copy_(torch.tensor([1.0, 0, 5.0, 0, 1.0, 0]))
        return net


@pytest.fixture(scope="module")
def data_r():
    g = torch.Generator().manual_seed(0)
    x = torch.zeros(64, 28, 28)
    x[:, 8:20, 10:18] = torch.rand(64, 12, 8, generator=g)
    return PerturbedMNIST("R", (x * 255).to(torch.uint8), torch.randint(0, 10, (64,),
                                                                         generator=g))


def test_forced_collapse_stops_with_step_seed_and_kept_checkpoint(tmp_path, data_r):
    cfg = preset("smoke", "R", "STN-C0", seeds=(3,), checkpoint_every=1, test_perturb=1)
    with pytest.raises(TrainingCollapsed,
                       match=r"collapsed at step 4: seed 3's ST samples 0% inside .*"
                             r"last good checkpoint: .*checkpoint\.good\.pt \(step 1\)"):
        train(cfg, tmp_path, data_r, None, progress=False, suite=_OffImage())
    rec = json.loads((tmp_path / "collapsed.json").read_text())
    assert (rec["step"], rec["seed"], rec["window_lines"]) == (4, 3, 2)
    assert load_checkpoint(tmp_path / "checkpoint.good.pt")["step"] == 1
    log = [json.loads(ln) for ln in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [r["inside_frac"] for r in log] == [[0.0], [0.0]]


def test_a_normal_run_logs_geometry_and_is_not_stopped(tmp_path, data_r):
    """Control: the same run with the identity initialisation trains to the end."""
    cfg = preset("smoke", "R", "STN-C0", seeds=(3,), checkpoint_every=1, test_perturb=1)
    train(cfg, tmp_path, data_r, None, progress=False)
    log = [json.loads(ln) for ln in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [2, 4, 6]
    assert all(r["inside_frac"][0] > INSIDE_THRESHOLD for r in log)
    assert not (tmp_path / "collapsed.json").exists()
    cnn = preset("smoke", "R", "CNN", seeds=(3,), test_perturb=1)
    train(cnn, tmp_path / "cnn", data_r, None, progress=False)
    first = json.loads((tmp_path / "cnn" / "log.jsonl").read_text().splitlines()[0])
    assert first["inside_frac"] is None and first["log2_det"] is None
