"""Collapse detection: the ST's geometry measures, the thresholds, and a forced collapse."""

from __future__ import annotations

import json
import math

import pytest
import torch

from models.collapse import (CHANCE_ERROR, INSIDE_THRESHOLD, CollapseWatch, chance_floor,
                             collapse_steps, constant_error, st_geometry, window_lines)
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


def test_constant_error_hand_made():
    assert constant_error(torch.tensor([0, 0, 1, 2])) == pytest.approx(0.5)
    # two positions: commonest 2 of 3 at each -> error 1/3 (labels 10 = "no digit")
    assert constant_error(torch.tensor([[0, 10], [1, 10], [1, 3]])) == pytest.approx(1 / 3)
    for bad in (torch.zeros(0, dtype=torch.long), torch.zeros(3, 2, 2, dtype=torch.long),
                torch.zeros(3)):
        with pytest.raises(ValueError, match="constant_error: expected"):
            constant_error(bad)
    with pytest.raises(ValueError, match="chance in"):
        chance_floor(10, 1.5)


def test_svhn_chance_is_the_constant_predictor_per_head():
    """With 1-5 digits (uniform) the best constant per head errs 0.9, 0.8, 0.6, 0.4, 0.2:
    0.58 (derived). The stand-in's labels give that within 0.02 (n = 2000: a frequency's
    sampling sd ~0.01; head 1's commonest digit biases it down by about as much)."""
    from models.data import svhn as D
    from models.suites import get_suite
    from models.suites._deep import PoolStream
    from models.train import suite_chance_error

    _, y = D.standin("train", 2000, seed=1000)
    got = suite_chance_error(get_suite("svhn"), PoolStream(torch.zeros(2000, 1), y))
    assert got == pytest.approx(constant_error(y)) and abs(got - 0.58) < 0.02
    assert suite_chance_error(get_suite("plankton"), None) == CHANCE_ERROR


def test_svhn_collapse_is_seen_at_its_chance_level():
    """The last log lines of results/svhn-medium STN-DL3 (every seed's ST off the image,
    per-head training error 0.57-0.58 at the constant prediction): with 10 classes' 0.9 the
    watch never fired on SVHN; at SVHN's own chance level it does."""
    lines = [{"step": 50 * (i + 1), "inside_frac": [0.0, 0.0, 0.97],
              "train_error": [0.578, 0.583, 0.31]} for i in range(4)]
    kw = dict(n_seeds=3, total_steps=1600, log_every=50, batch_size=32)  # window 2 lines
    assert collapse_steps(lines, **kw) == {}
    assert collapse_steps(lines, **kw, chance=0.58) == {0: 100, 1: 100}


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
