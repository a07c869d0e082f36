"""Tests of models/cstn.py: joint softmax, local transformed conv, boxes, regularizers, smoke."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from models import cstn
from models.cstn import (CSTNOutput, LocalTransformConv, class_log_probs, joint_log_softmax,
                         local_sampling_grid, map_inference, receptive_field_boxes,
                         scale_loss, theta_loss, topk_locations, transformed_boxes)
from models.errors import ConfigError as UsageError
from sampling.geometry import normalized_to_pixel
from tests.tolerances import tol

F64 = torch.float64


def _identity(b, h, w, dtype=F64):
    return torch.tensor(cstn.IDENTITY_THETA, dtype=dtype).reshape(2, 3).expand(b, h, w, 2, 3)


# ----------------------------------------------------------------------------- joint softmax

@st.composite
def level_scores(draw):
    seed = draw(st.integers(0, 2**31 - 1))
    b = draw(st.integers(1, 3))
    c = draw(st.integers(1, 5))
    sizes = draw(st.lists(st.tuples(st.integers(1, 4), st.integers(1, 4)), min_size=1,
                          max_size=3))
    spread = draw(st.sampled_from([0.1, 3.0, 30.0]))
    g = torch.Generator().manual_seed(seed)
    return [spread * torch.randn(b, c, h, w, generator=g, dtype=F64) for h, w in sizes]


@given(level_scores())
def test_joint_softmax_sums_to_one_and_marginalizes(scores):
    lj = joint_log_softmax(scores)
    b, c = scores[0].shape[:2]
    n = sum(s.shape[2] * s.shape[3] for s in scores)
    assert lj.shape == (b, c, n)
    p = lj.exp()
    # Sums to one over classes x locations x levels (one softmax, not one per level).
    torch.testing.assert_close(p.sum(dim=(1, 2)), torch.ones(b, dtype=F64), **tol(F64))
    # Differential: numpy softmax over all values of all levels of each image.
    flat = np.concatenate([s.numpy().reshape(b, c, -1) for s in scores], axis=2)  # (B, C, L)
    e = np.exp(flat - flat.reshape(b, -1).max(1)[:, None, None])
    ref = e / e.reshape(b, -1).sum(1)[:, None, None]
    np.testing.assert_allclose(p.numpy(), ref, rtol=1e-9, atol=1e-12)  # a priori, float64
    # p(c) = sum_{l,s} p(c, l, s); p(s) from the levels' blocks sums to one too.
    pc = class_log_probs(lj).exp()
    np.testing.assert_allclose(pc.numpy(), ref.sum(2), rtol=1e-9, atol=1e-12)
    sizes = [s.shape[2] * s.shape[3] for s in scores]
    ps = [ref[:, :, sum(sizes[:i]):sum(sizes[:i + 1])].sum((1, 2)) for i in range(len(sizes))]
    np.testing.assert_allclose(np.sum(ps, 0), np.ones(b), rtol=1e-9)


def test_joint_softmax_rejects_mismatched_levels():
    with pytest.raises(ValueError, match=r"joint_log_softmax: expected scores\[1\].*C=3"):
        joint_log_softmax([torch.zeros(2, 3, 4, 4), torch.zeros(2, 4, 2, 2)])
    with pytest.raises(ValueError, match="joint_log_softmax: expected scores to be a non-empty"):
        joint_log_softmax([])


# --------------------------------------------------------------- local transformed convolution

@pytest.mark.parametrize("k", [1, 3, 5])
@pytest.mark.parametrize("dtype", [torch.float32, F64], ids=["f32", "f64"])
def test_local_conv_identity_equals_conv2d(k, dtype):
    g = torch.Generator().manual_seed(k)
    torch.manual_seed(k)
    conv = LocalTransformConv(4, 3, k).to(dtype)
    f = torch.randn(2, 4, 6, 7, generator=g, dtype=dtype)
    got = conv(f, _identity(2, 6, 7, dtype))
    want = F.conv2d(f, conv.weight, conv.bias, padding=k // 2)
    torch.testing.assert_close(got, want, **tol(dtype))
    torch.testing.assert_close(conv(f, None), want, **tol(dtype))


def _conv_and_input(seed=0, h=7, w=8):
    torch.manual_seed(seed)
    conv = LocalTransformConv(3, 2, 3).double()
    f = torch.randn(1, 3, h, w, generator=torch.Generator().manual_seed(seed), dtype=F64)
    return conv, f


@pytest.mark.parametrize("dx, dy", [(1, 0), (0, -1), (2, 1)])
def test_local_conv_translation_moves_taps_by_whole_pixels(dx, dy):
    # t = (2 dx / k, 2 dy / k) moves every tap by (dx, dy) feature pixels (r = k / 2), so
    # out(i, j) = conv2d(f)(i + dy, j + dx) wherever that location exists.
    conv, f = _conv_and_input()
    th = _identity(1, 7, 8).clone()
    th[..., 0, 2], th[..., 1, 2] = 2 * dx / 3, 2 * dy / 3
    got = conv(f, th)[0]
    ref = F.conv2d(f, conv.weight, conv.bias, padding=1)[0]
    h, w = 7, 8
    i0, i1 = max(0, -dy), min(h, h - dy)
    j0, j1 = max(0, -dx), min(w, w - dx)
    torch.testing.assert_close(got[:, i0:i1, j0:j1], ref[:, i0 + dy:i1 + dy, j0 + dx:j1 + dx],
                               **tol(F64))


def test_local_conv_scaling_is_dilation():
    # A = 2 I spreads the 3x3 taps to offsets -2, 0, 2: a dilated convolution.
    conv, f = _conv_and_input(1)
    th = _identity(1, 7, 8).clone()
    th[..., 0, 0] = th[..., 1, 1] = 2.0
    want = F.conv2d(f, conv.weight, conv.bias, padding=2, dilation=2)
    torch.testing.assert_close(conv(f, th), want, **tol(F64))


def test_local_conv_transforms_are_per_location():
    conv, f = _conv_and_input(2)
    th = _identity(1, 7, 8).clone()
    th[0, 3, 4, 0, 2] = 2 / 3  # only location (3, 4) shifts right by one pixel
    got = conv(f, th)[0]
    ref = F.conv2d(f, conv.weight, conv.bias, padding=1)[0]
    torch.testing.assert_close(got[:, 3, 5 - 1], ref[:, 3, 5], **tol(F64))
    mask = torch.ones(7, 8, dtype=torch.bool)
    mask[3, 4] = False
    torch.testing.assert_close(got[:, mask], ref[:, mask], **tol(F64))


def test_local_sampling_grid_points_hand_computed():
    # Location (i, j) = (1, 2) of a 4x5 map, k = 3: tap q reads
    # p = (2, 1) + 1.5 (A q + t). Tap (a, b) = (0, 2) has q = (2/3, -2/3).
    th = _identity(1, 4, 5).clone()
    th[0, 1, 2] = torch.tensor([[2.0, 0.0, 0.5], [1.0, 1.0, -1.0]], dtype=F64)
    grid = local_sampling_grid(th, 3)  # (1, 20, 9, 2)
    pix = normalized_to_pixel(grid, (4, 5), align_corners=False)
    # A q + t = (2 * 2/3 + 0.5, 2/3 - 2/3 - 1) = (11/6, -1); p = (2 + 2.75, 1 - 1.5)
    torch.testing.assert_close(pix[0, 1 * 5 + 2, 0 * 3 + 2], torch.tensor([4.75, -0.5],
                                                                            dtype=F64), **tol(F64))
    # An identity location: taps at integer offsets -1, 0, 1 around (j, i) = (0, 3).
    want = torch.tensor([[x, y] for y in (2., 3., 4.) for x in (-1., 0., 1.)], dtype=F64)
    torch.testing.assert_close(pix[0, 3 * 5 + 0], want, **tol(F64))


def test_local_conv_rejects_bad_input():
    conv = LocalTransformConv(3, 2, 3)
    with pytest.raises(ValueError, match=r"LocalTransformConv: expected theta of shape"):
        conv(torch.zeros(1, 3, 4, 4), torch.zeros(1, 4, 5, 2, 3))
    with pytest.raises(ValueError, match="expected k to be an odd int"):
        LocalTransformConv(3, 2, 2)


def test_localizer_starts_at_identity_and_receives_gradient():
    torch.manual_seed(0)
    head = cstn.CSTNHead(4, 3, k=3, hidden=5)
    f = torch.randn(2, 4, 5, 5)
    scores, theta = head(f)
    torch.testing.assert_close(theta, _identity(2, 5, 5, torch.float32), rtol=0, atol=0)
    torch.testing.assert_close(scores, F.conv2d(f, head.conv.weight, head.conv.bias, padding=1),
                               **tol(torch.float32))
    scores.square().sum().backward()
    assert head.localizer[-1].weight.grad.abs().sum() > 0


# ---------------------------------------------------------------------------------- boxes

def _out(h_w=((4, 4), (2, 2)), strides=(8, 16), c=3, k=3, image=(32, 32), thetas=None):
    scores = [torch.zeros(1, c, h, w, dtype=F64) for h, w in h_w]
    theta = thetas or [_identity(1, h, w).clone() for h, w in h_w]
    return CSTNOutput(scores, theta, list(strides), image, k)


def test_map_inference_and_boxes_on_hand_made_maps():
    out = _out(h_w=((8, 8), (4, 4)), image=(64, 64))
    out.scores[1][0, 2, 2, 1] = 5.0  # class 2, coarse level, row 2, col 1
    out.scores[0][0, 0, 6, 7] = 4.0  # runner-up: class 0, fine level
    m = map_inference(out.scores)
    assert [int(m[k]) for k in ("cls", "level", "row", "col")] == [2, 1, 2, 1]
    # Untransformed: centre ((1 + .5) 16, (2 + .5) 16) = (24, 40), half-side 3 * 16 / 2 = 24.
    rf = receptive_field_boxes(out, m["level"], m["row"], m["col"], clip=False)
    torch.testing.assert_close(rf, torch.tensor([[0.0, 16.0, 48.0, 64.0]], dtype=F64))
    # theta = [[2, 0, 0.5], [0, 0.5, 0]]: centre x + 24 * 0.5 = 36, half-sides 48 and 12.
    out.theta[1][0, 2, 1] = torch.tensor([[2.0, 0.0, 0.5], [0.0, 0.5, 0.0]], dtype=F64)
    tb = transformed_boxes(out, m["level"], m["row"], m["col"], clip=False)
    torch.testing.assert_close(tb, torch.tensor([[-12.0, 28.0, 84.0, 52.0]], dtype=F64))
    tb = transformed_boxes(out, m["level"], m["row"], m["col"])  # clipped to 64 x 64
    torch.testing.assert_close(tb, torch.tensor([[0.0, 28.0, 64.0, 52.0]], dtype=F64))
    # A 45 degree rotation: the hull of a rotated square of half-side 24 has half-side 24 sqrt 2.
    a = math.pi / 4
    out.theta[1][0, 2, 1] = torch.tensor([[math.cos(a), -math.sin(a), 0.0],
                                          [math.sin(a), math.cos(a), 0.0]], dtype=F64)
    tb = transformed_boxes(out, m["level"], m["row"], m["col"], clip=False)
    r = 24 * math.sqrt(2)
    torch.testing.assert_close(tb, torch.tensor([[24 - r, 40 - r, 24 + r, 40 + r]], dtype=F64),
                               **tol(F64))
    # GT-known: told class 0, the MAP is the fine-level peak at row 6, col 7.
    m0 = map_inference(out.scores, torch.tensor([0]))
    assert [int(m0[k]) for k in ("cls", "level", "row", "col")] == [0, 0, 6, 7]
    rf0 = receptive_field_boxes(out, m0["level"], m0["row"], m0["col"])
    torch.testing.assert_close(rf0, torch.tensor([[48.0, 40.0, 64.0, 64.0]], dtype=F64))


def test_topk_locations_order_and_boxes():
    out = _out()
    out.scores[0][0, 1, 0, 0] = 3.0
    out.scores[1][0, 1, 1, 1] = 2.0
    out.scores[0][0, 1, 3, 2] = 1.0
    out.scores[0][0, 0, 3, 3] = 9.0  # another class: ignored when told class 1
    top = topk_locations(out.scores, 3, torch.tensor([1]))
    got = list(zip(top["level"][0].tolist(), top["row"][0].tolist(), top["col"][0].tolist()))
    assert got == [(0, 0, 0), (1, 1, 1), (0, 3, 2)]
    assert (top["log_prob"][0].diff() <= 0).all()
    pb = cstn.predict_boxes(out, torch.tensor([1]), k=3)
    assert pb["box"].shape == (1, 3, 4)
    torch.testing.assert_close(pb["box"], pb["rf_box"])  # identity theta
    with pytest.raises(ValueError, match="topk_locations: expected k <= L = 20"):
        topk_locations(out.scores, 21, torch.tensor([1]))
    with pytest.raises(ValueError,
                       match=r"map_inference: expected classes to be integers in \[0, 3\)"):
        map_inference(out.scores, torch.tensor([3]))


# ------------------------------------------------------------------------------ regularizers

def test_theta_loss_hand_made():
    th = _identity(2, 3, 3).clone()
    th[0, 1, 2, 0, 2] = 0.5  # contributes 0.25
    th[0, 0, 0, 1, 1] = 1.2  # contributes 0.04
    th2 = _identity(2, 1, 2).clone()
    th2[1, 0, 1, 0, 1] = -0.3  # contributes 0.09 to image 1
    # sum over levels and locations per image, mean over the batch: (0.29 + 0.09) / 2
    torch.testing.assert_close(theta_loss([th, th2]), torch.tensor(0.19, dtype=F64), **tol(F64))
    assert float(theta_loss([_identity(1, 2, 2)])) == 0.0


def test_scale_loss_hand_made():
    # Scores = log p: with sum p = 1 the joint softmax returns p itself.
    p_fine = torch.tensor([[[[0.30], [0.10]], [[0.05], [0.15]]]], dtype=F64)  # (1, 2, 2, 1)
    p_coarse = torch.tensor([[[[0.10]], [[0.30]]]], dtype=F64)  # (1, 2, 1, 1)
    scores = [p_fine.log(), p_coarse.log()]
    assert float(joint_log_softmax(scores).exp().sum()) == pytest.approx(1.0)
    # c* = 0: max fine 0.30, max coarse 0.10 -> 0.20. c* = 1: 0.15 vs 0.30 -> 0.
    torch.testing.assert_close(scale_loss(scores, torch.tensor([0])), torch.tensor(0.2, dtype=F64),
                               **tol(F64))
    assert float(scale_loss(scores, torch.tensor([1]))) == 0.0
    with pytest.raises(ValueError, match="scale_loss: expected at least two levels"):
        scale_loss(scores[:1], torch.tensor([0]))


def test_cstn_loss_is_eq4():
    g = torch.Generator().manual_seed(3)
    scores = [torch.randn(2, 3, 4, 4, generator=g, dtype=F64),
              torch.randn(2, 3, 2, 2, generator=g, dtype=F64)]
    thetas = [_identity(2, 4, 4) + 0.1 * torch.randn(2, 4, 4, 2, 3, generator=g, dtype=F64),
              _identity(2, 2, 2) + 0.1 * torch.randn(2, 2, 2, 2, 3, generator=g, dtype=F64)]
    out = CSTNOutput(scores, thetas, [8, 16], (32, 32), 3)
    y = torch.tensor([0, 2])
    loss, parts = cstn.cstn_loss(out, y, lam=0.01, alpha=2.0)
    cls = F.nll_loss(class_log_probs(joint_log_softmax(scores)), y)
    c_star = map_inference(scores)["cls"]
    want = cls + 0.01 * theta_loss(thetas) + 2.0 * scale_loss(scores, c_star)
    torch.testing.assert_close(loss, want, **tol(F64))
    assert parts["cls"] == pytest.approx(float(cls))


# --------------------------------------------------------------------- build, weights, config

def test_build_names_and_errors(tmp_path):
    for net in cstn.NETS:
        assert isinstance(cstn.build(net, num_classes=4, width=4), torch.nn.Module)
    with pytest.raises(ValueError, match="build: expected net to be one of"):
        cstn.build("STN")
    with pytest.raises(UsageError, match=r"build: unknown config keys \['lamda'\]"):
        cstn.build("CSTN", lamda=1.0)
    with pytest.raises(UsageError, match="CSTNConfig: expected lam to be a finite number >= 0"):
        cstn.build("CSTN", lam=-1.0)
    counts = cstn.param_counts(num_classes=4, width=4)
    assert set(counts) == set(cstn.NETS) and counts["CSTN"] > counts["no-CSTN"]


def test_backbone_weights_are_loaded_from_a_local_file(tmp_path):
    torch.manual_seed(0)
    src = cstn.build("CSTN", num_classes=4, width=4)
    path = tmp_path / "backbone.pt"
    torch.save(src.backbone.state_dict(), path)
    torch.manual_seed(1)
    dst = cstn.build("CSTN", num_classes=4, width=4, backbone_weights=path)
    for a, b in zip(src.backbone.state_dict().values(), dst.backbone.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    with pytest.raises(FileNotFoundError, match="load_backbone_weights: expected a state-dict"):
        cstn.build("CSTN", width=4, backbone_weights=tmp_path / "none.pt")
    torch.save({"nope": torch.zeros(1)}, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="load_backbone_weights: expected a state dict of"):
        cstn.build("CSTN", width=4, backbone_weights=tmp_path / "bad.pt")


def test_forward_shapes_and_bad_input():
    m = cstn.build("CSTN", num_classes=5, width=4)
    out = m(torch.zeros(2, 3, 64, 48))
    assert [tuple(s.shape) for s in out.scores] == [(2, 5, 8, 6), (2, 5, 4, 3)]
    assert [tuple(t.shape) for t in out.theta] == [(2, 8, 6, 2, 3), (2, 4, 3, 2, 3)]
    assert out.strides == [8, 16]
    one = cstn.build("CSTN-coarse", num_classes=5, width=4)(torch.zeros(1, 3, 32, 32))
    assert len(one.scores) == 1 and one.strides == [16]
    with pytest.raises(ValueError, match="CSTN.forward: expected x's H and W to be multiples"):
        m(torch.zeros(1, 3, 40, 32))


def test_theoretical_receptive_field():
    # Hand recursion: 3x3 conv then 2x2/2 pool then 3x3 conv: r = 1 + 2 + 1 + 2 * 2 = 8.
    assert cstn.theoretical_receptive_field([(3, 1), (2, 2), (3, 1)]) == (8, 2)
    r3, j3 = cstn.theoretical_receptive_field(cstn.SmallBackbone.LAYERS_C3)
    assert j3 == 8 and r3 > 3 * 8  # far larger than the k S footprint used as the box


# ----------------------------------------------------------------------------------- smoke

@pytest.mark.parametrize("net", ["CSTN", "no-CSTN", "CAM"])
def test_smoke_training_on_standin_has_no_nan(net, real_mnist_dir):
    from models.data.wsol_standin import make_standin
    data = make_standin(24, "train", seed=0, size=112, cache_dir=real_mnist_dir)
    torch.manual_seed(0)
    model = cstn.build(net, num_classes=10, width=4)
    losses = cstn.train_smoke(model, data.images, data.labels, steps=3, batch_size=6,
                              lam=1e-4, alpha=1.0)
    assert len(losses) == 3 and all(math.isfinite(v) for v in losses)
    model.eval()
    with torch.no_grad():
        out = model(data.images[:4])
    if net == "CAM":
        from models import cam
        assert torch.isfinite(out.logits).all()
        r = cam.evaluate(model, data.images[:8], data.labels[:8], data.boxes[:8],
                         taus=(0.2, 0.5))
        assert 0 <= r["metrics"]["gt_known_loc"] <= 1 and 0 < r["mean_box_area"] <= 1
        assert r["max_box_acc"]["per_threshold"][0.5]["best_setting"] in (0.2, 0.5)
    else:
        pb = cstn.predict_boxes(out, data.labels[:4], k=5)
        assert torch.isfinite(pb["box"]).all() and all(torch.isfinite(t).all() for t in out.theta)
        r = cstn.evaluate(model, data.images[:8], data.labels[:8], data.boxes[:8])
        assert set(r["transformed"]) == {"n", "top1_cls", "top1_loc", "gt_known_loc",
                                         "gt_known_top5_loc"}
        assert r["max_box_acc"]["mean"] >= 0 and 0 < r["mean_box_area"] <= 1
        if net == "no-CSTN":  # identity theta: the transformed box is the receptive-field box
            assert r["transformed"] == r["untransformed"]
