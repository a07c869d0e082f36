"""Tests of models/data/wsol_standin.py: exact boxes of real digits at varied scale and aspect."""

from __future__ import annotations

import pytest
import torch

from models.data import wsol_standin as ws


@pytest.fixture(scope="module")
def data(real_mnist_dir):
    return ws.make_standin(48, "test", seed=3, size=128, normalize=False,
                           cache_dir=real_mnist_dir)


def test_shapes_labels_name(data):
    assert data.images.shape == (48, 3, 128, 128) and data.images.dtype == torch.float32
    assert data.labels.shape == (48,) and 0 <= int(data.labels.min()) <= int(data.labels.max()) < 10
    assert data.dataset.startswith("cub-standin") and "MNIST" in data.dataset
    assert 0.0 <= float(data.images.min()) and float(data.images.max()) <= 1.0


def test_boxes_match_the_geometry(data):
    # The rendered digit is nonzero at canvas pixel p iff the digit point it samples,
    # (p + 1/2 - c) / s + 14 (edge coordinates), lies strictly within one source pixel of
    # an ink pixel centre (bilinear). So along x the support is the open interval
    # (L, R) = c + s (u0 - 1/2 - 14, u1 + 3/2 - 14) for ink columns u0..u1, and the tight box
    # has x0 in (L - 1/2, L + 1/2] and x1 in [R - 1/2, R + 1/2) (derived: pixel centres
    # sit at half-integers); slack 1e-4 px for float32 rounding of the grid (a priori).
    eps = 1e-4
    for n in range(len(data.labels)):
        ink = data.digits[n] > 0
        cols = torch.nonzero(ink.any(0)).flatten()
        rows = torch.nonzero(ink.any(1)).flatten()
        for axis, idx in ((0, cols), (1, rows)):
            s, c = float(data.scale[n, axis]), float(data.centre[n, axis])
            lo = c + s * (int(idx.min()) - 0.5 - 14)
            hi = c + s * (int(idx.max()) + 1.5 - 14)
            b0, b1 = float(data.boxes[n, axis]), float(data.boxes[n, axis + 2])
            assert lo - 0.5 - eps < b0 <= lo + 0.5 + eps, (n, axis, lo, b0)
            assert hi - 0.5 - eps <= b1 < hi + 0.5 + eps, (n, axis, hi, b1)


def test_aspect_and_scale_vary(data):
    # The digit's aspect is changed by a = sx / sy, log-uniform over ASPECT_RANGE (a factor
    # 4): over 48 images its spread is below a factor 2 only if the range of 48 uniforms on
    # log a is under half the interval, probability 48 (1/2)^47 - 47 (1/2)^48 < 1e-12
    # (derived; the seed is fixed anyway).
    w = data.boxes[:, 2] - data.boxes[:, 0]
    h = data.boxes[:, 3] - data.boxes[:, 1]
    sx, sy = data.scale.unbind(1)
    a = sx / sy
    lo, hi = ws.ASPECT_RANGE
    assert float(a.min()) >= lo and float(a.max()) <= hi and float(a.max() / a.min()) > 2
    # The boxes follow it: box aspect over the source support's aspect (ink box + 1 px of
    # bilinear spread on each side) spans more than a factor 2 as well.
    sup = []
    for d in data.digits:
        cols = torch.nonzero((d > 0).any(0)).flatten()
        rows = torch.nonzero((d > 0).any(1)).flatten()
        sup.append((int(cols.max() - cols.min()) + 3) / (int(rows.max() - rows.min()) + 3))
    rel = (w / h) / torch.tensor(sup)
    assert float(rel.max() / rel.min()) > 2
    assert float(h.max() / h.min()) > 2  # and sizes vary


def test_deterministic_and_splits_differ(real_mnist_dir):
    a = ws.make_standin(4, "train", seed=1, size=112, cache_dir=real_mnist_dir)
    b = ws.make_standin(4, "train", seed=1, size=112, cache_dir=real_mnist_dir)
    c = ws.make_standin(4, "test", seed=1, size=112, cache_dir=real_mnist_dir)
    assert torch.equal(a.images, b.images) and torch.equal(a.boxes, b.boxes)
    assert not torch.equal(a.images, c.images)
    with pytest.raises(ValueError, match="make_standin: expected split 'train' or 'test'"):
        ws.make_standin(4, "val", seed=0)
    with pytest.raises(ValueError, match="make_standin: expected size 112 or 128"):
        ws.make_standin(4, "train", seed=0, size=100)


def test_support_boxes_hand_made():
    m = torch.zeros(2, 5, 6, dtype=torch.bool)
    m[0, 1:3, 2:5] = True
    assert ws.support_boxes(m).tolist() == [[2.0, 1.0, 5.0, 3.0], [0.0, 0.0, 0.0, 0.0]]
