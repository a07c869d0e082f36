"""``models.data.gtsrb_standin_v2``: pose, clutter, the shared background pool, per-batch
rendering that resumes exactly, and the suite's v2 variants end to end.

The tests render synthetic objects (or MNIST digits from the cache) through the same
code as Fashion-MNIST: the renderer never looks at which data set its objects are from.
"""

from __future__ import annotations

import math

import pytest
import torch

from models.data import gtsrb_standin_v2 as v2
from models.suites.gtsrb import SUITE, preset
from models.train import train


def _objects(m=20, value=255):
    x = torch.full((m, 28, 28), value, dtype=torch.uint8)
    return x, torch.arange(m) % 10


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_names_say_stand_in_for_gtsrb():
    assert "stand-in for GTSRB" in v2.STANDIN_NAME and "Fashion-MNIST" in v2.STANDIN_NAME
    assert "control" in v2.CONTROL_NAME and "MNIST" in v2.CONTROL_NAME


def test_render_is_deterministic_in_the_generator_and_in_range():
    x, _ = _objects()
    x[:, :14] = 40  # some texture inside the object
    a, ia = v2.render(x, _gen(3), 16, kind="fashion")
    b, ib = v2.render(x, _gen(3), 16, kind="fashion")
    c, _ = v2.render(x, _gen(4), 16, kind="fashion")
    assert a.shape == (16, 3, 50, 50) and a.dtype == torch.float32
    assert torch.equal(a, b) and torch.equal(ia, ib) and not torch.equal(a, c)
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0


def test_pose_centres_and_scales_the_object(monkeypatch):
    """Without clutter, on black, a full-ink 28 px square: its ink centroid is within the
    pose's +-2 px of the canvas centre, and its ink mass is the square's area (28 s)^2 for
    s in [0.6, 0.9] (rotation keeps area); tolerance: bilinear edges, one pixel of the
    perimeter 4 * 28 s (each edge pixel is partly covered)."""
    monkeypatch.setitem(v2.CLUTTER, "count", 0)
    x, _ = _objects(8)
    img, _ = v2.render(x, _gen(0), 64, kind="control")
    ink = img[:, 0].double()  # (64, 50, 50), white on black
    mass = ink.sum((-2, -1))
    ys, xs = torch.meshgrid(torch.arange(50.0), torch.arange(50.0), indexing="ij")
    cy = (ink * ys).sum((-2, -1)) / mass
    cx = (ink * xs).sum((-2, -1)) / mass
    centre = (v2.CANVAS - 1) / 2
    assert float((cx - centre).abs().max()) <= v2.POSE["shift_px"] + 0.05
    assert float((cy - centre).abs().max()) <= v2.POSE["shift_px"] + 0.05
    lo, hi = v2.POSE["scale"]
    side_lo, side_hi = 28 * lo, 28 * hi
    assert float(mass.min()) >= side_lo ** 2 - 4 * side_lo
    assert float(mass.max()) <= side_hi ** 2 + 4 * side_hi
    # and the poses vary: scales spread over the range (mass spans most of it)
    assert float(mass.max() - mass.min()) > 0.5 * (side_hi ** 2 - side_lo ** 2)


def test_clutter_is_four_fragments_of_six_pixels(monkeypatch):
    """A blank object leaves only clutter: at most 4 x 6 x 6 inked pixels per image, and
    some image has more than one fragment's worth (they land at different places)."""
    x = torch.zeros(10, 28, 28, dtype=torch.uint8)
    x[1:, 4:24, 4:24] = 255  # ink exactly where fragments are cut; object 0 is blank
    img, _ = v2.render(x, _gen(1), 32, kind="control", index=torch.zeros(32, dtype=torch.long))
    inked = (img[:, 0] > 0).sum((-2, -1))
    k, side = v2.CLUTTER["count"], v2.CLUTTER["side"]
    assert int(inked.max()) <= k * side * side
    assert int(inked.max()) > side * side


def test_background_pool_is_shared_and_drawn_from_every_texture_split():
    pool = v2.background_pool()
    assert pool.shape == (v2.POOL_SIZE, 3, 50, 50)
    assert v2.background_pool() is pool  # one pool, cached: train and test draw from it
    assert float(pool.std((1, 2, 3)).min()) > 0  # textures, not flat fills


def test_training_batches_are_fresh_and_resume_exactly(monkeypatch):
    x, y = _objects(30)
    x[:, ::2] = 60
    monkeypatch.setattr(v2, "_objects", lambda split, kind, cache_dir: (x, y))
    data = v2.RenderedSplit("train", kind="fashion")
    gens = [_gen(0), _gen(1)]
    a, la = data.train_batches(8, gens)
    state = [g.get_state() for g in gens]
    b, lb = data.train_batches(8, gens)
    assert a.shape == (2, 8, 3, 50, 50) and la.shape == (2, 8)
    assert not torch.equal(a, b)  # a new rendering every step
    for g, s in zip(gens, state):
        g.set_state(s)
    b2, lb2 = data.train_batches(8, gens)
    assert torch.equal(b, b2) and torch.equal(lb, lb2)  # checkpointed generators resume it
    # standardized per image, as the Table 1 networks' input
    assert torch.allclose(a.mean((2, 3, 4)), torch.zeros(2, 8), atol=1e-5)


def test_labels_follow_the_drawn_objects(monkeypatch):
    x = torch.zeros(10, 28, 28, dtype=torch.uint8)
    for i in range(10):
        x[i, 4:4 + 2 * i + 2, 10:18] = 255  # object i has 8 (2 i + 2) px of ink
    y = torch.arange(10)
    monkeypatch.setattr(v2, "_objects", lambda split, kind, cache_dir: (x, y))
    monkeypatch.setitem(v2.CLUTTER, "count", 0)
    data = v2.RenderedSplit("train", kind="control")
    img, lab = data.train_batches(40, [_gen(5)])
    # the same generator draws the same objects: the labels are theirs
    raw, idx = v2.render(x, _gen(5), 40, kind="control")
    assert torch.equal(lab[0], y[idx])


def test_fixed_split_uses_each_object_once_and_refuses_bad_arguments(monkeypatch):
    x, y = _objects(25)
    monkeypatch.setattr(v2, "_objects", lambda split, kind, cache_dir: (x, torch.arange(25)))
    monkeypatch.setattr(v2, "_CHUNK", 7)  # several chunks
    imgs, labels, name = v2.fixed_split("test", 25, seed=0, kind="control")
    assert imgs.shape == (25, 3, 50, 50) and sorted(labels.tolist()) == list(range(25))
    again, labels2, _ = v2.fixed_split("test", 25, seed=0, kind="control")
    assert torch.equal(labels, labels2) and torch.equal(imgs, again)
    other, labels3, _ = v2.fixed_split("test", 25, seed=1, kind="control")
    assert not torch.equal(labels, labels3)
    with pytest.raises(ValueError, match=r"fixed_split: expected n an int in \[0, 25\]"):
        v2.fixed_split("test", 26, seed=0, kind="control")
    with pytest.raises(ValueError, match=r"fixed_split: expected seed an int >= 0"):
        v2.fixed_split("test", 2, seed=-1, kind="control")
    monkeypatch.undo()
    with pytest.raises(ValueError, match=r"expected split in"):
        v2._objects("dev", True, None)


def test_v2_preset_is_the_probed_design():
    cfg = preset("medium", "standin-v2", "STN-linearized-d8")
    assert (cfg.batch_size, cfg.lr_st, cfg.lr_classifier, cfg.localizer_width) == \
        (64, 3e-4, 1e-3, 128)
    assert cfg.patience is None and cfg.validate_every == cfg.iters
    assert preset("medium", "standin-v2", "none-d1", iters=700).validate_every == 700
    # v1 keeps 003's rates and localizer
    old = preset("medium", "table1", "STN-linearized-d8")
    assert (old.lr_st, old.localizer_width) == (1e-5, 1024)
    net = SUITE.build(cfg)
    assert net.localizer.width == 128
    assert SUITE.hooks(cfg).exact_conv_ties is False


def test_v2_trains_through_the_suite_and_resumes_exactly(tmp_path, monkeypatch):
    x, y = _objects(40)
    x[:, 5:20:3] = 30
    monkeypatch.setattr(v2, "_objects", lambda split, kind, cache_dir: (x, y))
    cfg = preset("smoke", "standin-v2", "STN-bilinear-d8", seeds=(0, 1), iters=4,
                 checkpoint_every=2, patience=None, validate_every=4)
    from models.suites import DataSource as DS
    tr, te = SUITE.load_data("standin-v2", cfg, DS())
    assert tr.name == v2.STANDIN_NAME and te.name == v2.STANDIN_NAME
    full = train(cfg, tmp_path / "full", tr, te, progress=False, suite=SUITE)
    assert train(cfg, tmp_path / "cut", tr, te, progress=False, stop_after=3,
                 suite=SUITE) is None
    torch.manual_seed(123)
    resumed = train(cfg, tmp_path / "cut", tr, te, progress=False, resume=True, suite=SUITE)
    assert resumed["error"] == full["error"]
    assert math.isfinite(full["error"]["mean"])
