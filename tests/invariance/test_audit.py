"""``invariance.audit``: the audit must reproduce what stnlab already proves (INV-1, 4, 5, 6, 8)
on the project's own extractors, calibrate frames it is not told, and be deterministic.

Thresholds: exact regime 1e-12 (float64 index operations, ``EXACT_TOL``), interpolated
regime the audit's own verdict (95 % interval of error / floor against 2, INV-5/8's rule).
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn

from invariance.audit import audit, auto_size
from invariance.audit_layers import Frame, calibrate, capture, frame_matrix, fx_module_calls
from invariance.audit_metrics import interval, parse_transforms, verdict
from invariance.extractors import IsotropicBank, OrientedBank, random_cnn
from models.data.images import load_natural_crops, load_natural_images

NAMES = ["camera", "astronaut", "coffee", "chelsea", "rocket", "coins", "moon", "brick"]


@pytest.fixture(scope="module")
def smooth64():
    """8 grey natural images, 64 px, Gaussian-smoothed (2 px, as INV-5/6/8)."""
    return load_natural_images(NAMES, 64, blur=2.0, dtype=torch.float64)


@pytest.fixture(scope="module")
def smooth32():
    return load_natural_images(NAMES[:6], 32, blur=1.0, dtype=torch.float64)


def _rows(rep, **kw):
    return [r for r in rep.rows if all(r[k] == v for k, v in kw.items())]


def _one(rep, **kw):
    rows = _rows(rep, **kw)
    assert len(rows) == 1, (kw, len(rows))
    return rows[0]


# ------------------------------------------------------------------ INV-1: exact shifts
def test_circular_cnn_stride_multiple_shifts_align_exactly_at_every_layer(smooth32):
    net = random_cnn(3, 6, pool_after=(0,), padding_mode="circular", seed=1, dtype=torch.float64)
    rep = audit(net, smooth32, transforms="shift2,shift4,shift", modes=("spatial",))
    rows = _rows(rep, mode="spatial")
    assert len(rows) == 3 * 7  # 7 layers (conv, relu, pool, conv, relu, conv, relu)
    for r in rows:
        assert r["T_g"] == "exact index operation"
        assert r["error"]["hi"] <= 1e-12, r
        assert r["verdict"] == "alignable"
    strides = {li["name"]: li["stride"] for li in rep.layers}
    assert strides["0"] == [1.0, 1.0] and strides["2"] == [2.0, 2.0]
    assert rep.meta["transforms"][2]["value"] == 2.0  # "shift": the largest stride <= 32 / 8


def test_an_odd_shift_is_not_exact_after_the_pool(smooth32):
    """A 1 px shift is not a feature index operation at stride 2: bilinear, with a floor."""
    net = random_cnn(2, 4, pool_after=(0,), padding_mode="circular", seed=0, dtype=torch.float64)
    rep = audit(net, smooth32, transforms="shift1", modes=("spatial",), search="none")
    assert _one(rep, layer="0", mode="spatial")["T_g"] == "exact index operation"
    pooled = _one(rep, layer="2", mode="spatial")
    assert pooled["T_g"] != "exact index operation" and pooled["floor"]["mean"] > 0


# ------------------------------------------------------------------ INV-4: rot90, channels
def test_oriented_bank_rot90_needs_the_orientation_shift(smooth32):
    bank = OrientedBank((1.0, 2.0), dtype=torch.float64)
    rep = audit(bank, smooth32, transforms="rot90", modes=("spatial", "permutation", "mix"))
    sp = _one(rep, mode="spatial")
    pm = _one(rep, mode="permutation")
    mix = _one(rep, mode="mix")  # a mix holds every permutation; judged against its ridge bias
    assert mix["verdict"] == "alignable" and mix["error"]["mean"] < 1e-4
    assert sp["error"]["mean"] > 1.1 and sp["verdict"] == "not alignable"
    assert pm["error"]["hi"] <= 1e-12 and pm["verdict"] == "alignable"
    assert pm["permutation"] == bank.orientation_shift(1).tolist()
    assert pm["is_cycle"] and pm["cycle_lengths"] == [4, 4]
    assert rep.summary[0]["deepest"] == {"spatially": None, "by permutation": "<model>",
                                         "by mix": "<model>"}


def test_a_broken_bank_fails_the_orientation_shift_check(smooth32):
    """direction=-1 declares 90° r but turns the filters the other way: the permutation the
    audit finds is not the declared orientation shift, so the INV-4 check fails."""
    bank = OrientedBank((1.0, 2.0), direction=-1, dtype=torch.float64)
    rep = audit(bank, smooth32, transforms="rot90", modes=("spatial", "permutation"))
    pm = _one(rep, mode="permutation")
    assert pm["permutation"] != bank.orientation_shift(1).tolist()


# ------------------------------------------------------------------ INV-6, INV-5, INV-8
def test_isotropic_bank_rotations_align_scalings_do_not(smooth64):
    iso = IsotropicBank((1.5,), dtype=torch.float64)
    rep = audit(iso, smooth64, transforms="rot30,rot45,scale0.71,scale1.41", modes=("spatial",))
    for t in ("rot30", "rot45"):
        assert _one(rep, transform=t, mode="spatial")["verdict"] == "alignable"
    for t in ("scale0.71", "scale1.41"):
        for m in ("spatial", "spatial_search"):
            assert _one(rep, transform=t, mode=m)["verdict"] == "not alignable"


def test_random_cnn_scalings_align_neither_spatially_nor_by_held_out_mix():
    net = random_cnn(3, 8, pool_after=(1,), padding_mode="zeros", seed=0, dtype=torch.float64)
    x = load_natural_crops(16, 64, blur=2.0, dtype=torch.float64)
    rep = audit(net, x, transforms="scale0.71,scale1.41", modes=("spatial", "mix"))
    for t in ("scale0.71", "scale1.41"):
        for layer in ("2", "3"):  # after the first ReLU, before the pool and after it
            assert _one(rep, transform=t, layer=layer, mode="spatial_search")["verdict"] == \
                "not alignable"
            mix = _one(rep, transform=t, layer=layer, mode="mix")
            assert mix["verdict"] == "not alignable" and mix["scored_images"] == 8
        for r in _rows(rep, transform=t, mode="spatial"):  # T_g = T_h^-1: nowhere
            assert r["verdict"] != "alignable", r
    # The first conv is linear: a mix of its channels does undo a small scaling; after the
    # 2x2 pool the feature-map round trip (the floor) is coarser and cells are undecided.
    assert _one(rep, transform="scale1.41", layer="0", mode="mix")["verdict"] == "alignable"


def test_gaussian_derivative_bank_held_out_mix_undoes_scaling(smooth64):
    """INV-8's counterexample: G and its derivatives span a first-order scale change."""
    bank = OrientedBank((1.0, 2.0), dtype=torch.float64)
    rep = audit(bank, smooth64, transforms="scale0.71,scale1.41", modes=("spatial", "mix"))
    for t in ("scale0.71", "scale1.41"):
        assert _one(rep, transform=t, mode="spatial_search")["verdict"] == "not alignable"
        assert _one(rep, transform=t, mode="mix")["verdict"] == "alignable"


def test_mix_is_skipped_with_a_reason_when_samples_are_few():
    net = random_cnn(2, 16, pool_after=(0, 1), seed=0, dtype=torch.float64)
    x = torch.rand(4, 1, 16, 16, dtype=torch.float64)
    rep = audit(net, x, transforms="scale1.41", modes=("spatial", "mix"), search="none")
    deep = _one(rep, layer="4", mode="mix")  # 4x4 map, 2 fit images
    assert deep["verdict"] == "n/a" and "5 x 16 channels" in deep["reason"]


# ------------------------------------------------------------------ frames
class Stem(nn.Module):
    """7x7 / stride 2 / padding 3 (a ResNet stem) with rot90-symmetric random filters, so that
    rot90 is exact wherever the frame is centred."""

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.conv = nn.Conv2d(1, 6, 7, stride=2, padding=3).double()
        with torch.no_grad():
            w = torch.randn(self.conv.weight.shape, generator=g, dtype=torch.float64)
            self.conv.weight.copy_(sum(torch.rot90(w, k, dims=(-2, -1)) for k in range(4)))

    def forward(self, x):
        return self.conv(x)


def test_stem_stride2_pad3_frame_is_measured_and_makes_rot90_exact():
    stem = Stem()
    fr = calibrate(stem, 1, 64)["conv"]
    assert fr.method == "measured" and fr.stride == (2.0, 2.0) and fr.offset == (0.0, 0.0)
    # At 64 px the 32 px map is not centred (feature pixel i sits on input pixel 2i). The
    # frame invariance.warps assumes (one normalized frame: u = 2i + 1/2) takes rot90 for an
    # index operation on the map and fails; the calibrated frame aligns up to the floor.
    x = load_natural_images(NAMES[:6], 64, blur=2.0, dtype=torch.float64)
    calibrated = _one(audit(stem, x, transforms="rot90", modes=("spatial",), search="none"),
                      mode="spatial")
    shared = {"conv": Frame((2.0, 2.0), (0.5, 0.5), "assumed", 64)}
    wrong = _one(audit(stem, x, transforms="rot90", modes=("spatial",), search="none",
                       frames=shared), mode="spatial")
    assert calibrated["verdict"] == "alignable" and wrong["verdict"] == "not alignable"
    assert calibrated["error"]["mean"] < 0.3 * wrong["error"]["mean"]
    side = auto_size(stem, 1, {"conv": fr}, 64)
    assert side == 65  # an odd side centres a stride-2 pad-3 map on the image
    x = load_natural_images(NAMES[:6], side, blur=2.0, dtype=torch.float64)
    exact = _one(audit(stem, x, transforms="rot90", modes=("spatial",), search="none"),
                 mode="spatial")
    assert exact["T_g"] == "exact index operation" and exact["error"]["hi"] <= 1e-12


def test_frame_matrix_maps_pixel_centres():
    fr = Frame((2.0, 2.0), (0.0, 0.0))
    m = frame_matrix(fr, (64, 64), (32, 32))
    # feature pixel 0 (normalized -1 + 1/32) sits on input pixel 0 (normalized -1 + 1/64)
    x = torch.tensor([-1 + 1 / 32, -1 + 1 / 32, 1.0], dtype=torch.float64)
    assert torch.allclose(m[0] @ x, torch.full((2,), -1 + 1 / 64, dtype=torch.float64))


class Split(nn.Module):
    def forward(self, x):
        return x[:, :2], x[:, 2:]


class Tricky(nn.Module):
    """Residual add (functional), in-place ReLU, a module used twice, tuple outputs."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.relu = nn.ReLU(inplace=True)
        self.shared = nn.Conv2d(4, 4, 3, padding=1)
        self.split = Split()

    def forward(self, x):
        y = self.relu(self.conv(x))
        z = self.shared(y) + y
        z = self.shared(z)
        return self.split(z)


def test_hooks_see_inplace_relu_reuse_and_tuples_and_agree_with_fx():
    torch.manual_seed(0)
    net = Tricky().double().eval()
    x = torch.randn(2, 1, 20, 20, dtype=torch.float64)
    caps, err = capture(net, x)
    names = [c.name for c in caps]
    assert err is None
    assert names == ["conv", "relu", "shared#1", "shared#2", "split.0", "split.1"]
    conv = caps[0].tensor
    assert float(conv.min()) < 0  # cloned before the in-place ReLU overwrote it
    assert not torch.equal(caps[2].tensor, caps[3].tensor)
    calls, why = fx_module_calls(net)
    assert why == ""
    # fx inlines Split (not a torch.nn leaf) and sees the functional add, hooks do not
    assert calls == ["conv", "relu", "shared", "shared"]
    assert [n.split("#")[0] for n in names[:4]] == calls
    frames = calibrate(net, 1, 20)
    assert set(frames) == set(names)
    for f in frames.values():
        assert f.method == "measured" and f.stride == (1.0, 1.0) and f.offset == (0.0, 0.0)


# ------------------------------------------------------------------ report, determinism
def test_same_seed_gives_byte_identical_json(smooth32):
    bank = IsotropicBank((1.0,), dtype=torch.float64)
    kw = dict(transforms="rot90,rot30,scale1.41", modes=("spatial", "permutation", "mix", "lie"))
    a = audit(bank, smooth32, seed=3, **kw).to_json()
    b = audit(bank, smooth32, seed=3, **kw).to_json()
    assert a == b
    md = audit(bank, smooth32, seed=3, **kw).to_markdown()
    assert "## Where an ST could live" in md and "| layer |" in md
    import json

    d = json.loads(a)
    assert d["schema"] == "stnlab.audit/1" and len(d["meta"]["model_sha256"]) == 64
    row = d["rows"][0]
    assert {"error", "floor", "ratio", "verdict"} <= set(row)
    assert {"stride", "offset", "pixels"} <= set(d["layers"][0])


def test_pooled_vector_outputs_get_invariance_rows():
    net = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    net = net.double()
    x = torch.rand(4, 1, 16, 16, dtype=torch.float64)
    rep = audit(net, x, transforms="rot90", modes=("spatial",), search="none")
    r = _one(rep, layer="2", mode="invariance")
    assert r["exact"] and r["verdict"] == "n/a" or r["verdict"] in ("alignable", "not alignable")


def test_bad_inputs_raise_one_line_value_errors():
    with pytest.raises(ValueError, match="no module with a 4-D"):
        audit(nn.Sequential(nn.Flatten(), nn.Linear(16, 2)), torch.rand(4, 1, 4, 4))
    with pytest.raises(ValueError, match="images of shape"):
        audit(random_cnn(1, 2), torch.rand(4, 1, 8, 9))
    with pytest.raises(ValueError, match="transforms like"):
        parse_transforms("rotate90")
    with pytest.raises(ValueError, match="layer names"):
        audit(random_cnn(1, 2), torch.rand(4, 1, 8, 8), layers=["nope"])


def test_interval_and_verdict_rules():
    small = interval([1.0, 1.2, 0.8, 1.1])
    assert small["method"] == "student-t 95%" and small["lo"] < 1.025 < small["hi"]
    big = interval([1.0] * 40, seed=0)
    assert big["method"].startswith("bootstrap") and big["lo"] == big["hi"] == 1.0
    e = {"mean": 1.0, "lo": 0.9, "hi": 1.1}
    assert verdict(e, {"mean": 1.5, "lo": 1.2, "hi": 1.8}, False, torch.float64) == "alignable"
    assert verdict(e, {"mean": 3.0, "lo": 2.5, "hi": 3.5}, False, torch.float64) == \
        "not alignable"
    assert verdict(e, {"mean": 2.0, "lo": 1.5, "hi": 2.5}, False, torch.float64) == "undecided"
    assert verdict({"mean": 1e-13, "lo": 0, "hi": 2e-13}, None, True, torch.float64) == \
        "alignable"


def test_natural_crops_are_deterministic_rgb():
    a = load_natural_crops(20, 24, channels=3, seed=1)
    b = load_natural_crops(20, 24, channels=3, seed=1)
    assert a.shape == (20, 3, 24, 24) and torch.equal(a, b)
    assert 0 <= float(a.min()) and float(a.max()) <= 1
    assert not math.isclose(float((a[0] - a[15]).abs().max()), 0.0)
