"""GTSRB stand-in: real MNIST digits, small, coloured, on held-out natural textures."""

from __future__ import annotations

import math

import pytest
import torch

from models.data import gtsrb_standin as standin_mod
from models.data.gtsrb_standin import (ANGLE_RANGE_DEG, CONTROL_NAME, MAX_SHIFT, NUM_CLASSES,
                                       SCALE_RANGE, STANDIN_NAME, gtsrb_standin, mnist_canvas)


@pytest.fixture(scope="module")
def mnist_dir(request):
    from models.data.mnist import default_cache_dir, is_cached

    if is_cached():
        return default_cache_dir()
    return request.getfixturevalue("real_mnist_dir")


@pytest.fixture(scope="module")
def pair(mnist_dir):
    return (gtsrb_standin("train", 400, seed=3, cache_dir=mnist_dir),
            mnist_canvas("train", 400, seed=3, cache_dir=mnist_dir))


def test_shapes_names_and_classes(pair):
    s, c = pair
    assert s.images.shape == c.images.shape == (400, 3, 50, 50)
    assert s.images.dtype == torch.float32 and s.labels.dtype == torch.int64
    assert 0 <= float(s.images.min()) and float(s.images.max()) <= 1
    assert s.dataset == STANDIN_NAME and "standin" in s.dataset
    assert c.dataset == CONTROL_NAME
    assert set(s.labels.tolist()) == set(range(NUM_CLASSES))
    # the control is the same digits in the same poses, white on black
    assert torch.equal(s.labels, c.labels) and torch.equal(s.boxes, c.boxes)
    assert float(c.images.max()) > 0.99 and float(c.images.min()) == 0.0
    assert torch.equal(c.images[:, 0], c.images[:, 1])
    # the textured background is not a constant fill
    assert float(s.images.std(dim=(2, 3)).mean()) > 0.05


def test_real_mnist_digits(mnist_dir):
    """The digits are MNIST's, with their labels, and the ink is the digit's, rescaled."""
    from models.data.mnist import load_mnist

    x, y = load_mnist("test", mnist_dir)
    c = mnist_canvas("test", 50, seed=0, cache_dir=mnist_dir)
    # ink mass ratio canvas / MNIST equals scale^2 for each digit (area scaling; derived:
    # bilinear resampling preserves mass to within the rendering error, 10% a priori)
    idx = c.index
    assert len(set(idx.tolist())) == 50
    assert torch.equal(c.labels, y[idx])
    mass_src = x[idx].float().div(255).sum((1, 2))
    mass_out = c.images[:, 0].sum((1, 2))
    ratio = mass_out / (mass_src * c.scale ** 2)
    assert float((ratio - 1).abs().max()) < 0.1


def test_objects_are_small(pair):
    _, c = pair
    ink = c.images[:, 0] > 0  # (N, 50, 50)
    idx = torch.arange(50)
    rows, cols = ink.any(2), ink.any(1)

    def extent(m):
        return (torch.where(m, idx, -1).amax(1) - torch.where(m, idx, 99).amin(1) + 1)

    # derived: MNIST ink fits 20 px, bilinear spreads it by <= 1 source px a side, scaled by
    # <= 0.6 and rotated by <= 30 deg: L = 0.6 * 22 * (cos 30 + sin 30); pixel centres in an
    # interval of length L number <= floor(L) + 1.
    a = math.radians(ANGLE_RANGE_DEG)
    bound = math.floor(SCALE_RANGE[1] * 22 * (math.cos(a) + math.sin(a))) + 1
    assert int(extent(rows).max()) <= bound and int(extent(cols).max()) <= bound
    # and the ink lies inside the reported box (pixel centres; box of the 28 px image)
    yy, xx = torch.meshgrid(idx.float(), idx.float(), indexing="ij")
    b = c.boxes[:, :, None, None]
    inside = (xx >= b[:, 0]) & (xx <= b[:, 2]) & (yy >= b[:, 1]) & (yy <= b[:, 3])
    assert not bool((ink & ~inside).any())
    assert bool((c.boxes >= -0.5 - 1e-4).all() and (c.boxes <= 49.5 + 1e-4).all())
    assert float(c.translation.abs().max()) <= MAX_SHIFT


def test_deterministic_and_split_streams(mnist_dir, pair):
    s, _ = pair
    again = gtsrb_standin("train", 400, seed=3, cache_dir=mnist_dir)
    assert torch.equal(again.images, s.images)
    other = gtsrb_standin("train", 400, seed=4, cache_dir=mnist_dir)
    assert not torch.equal(other.images, s.images)
    val = gtsrb_standin("val", 10, seed=3, cache_dir=mnist_dir)
    assert not torch.equal(val.images, s.images[:10])


def test_textures_held_out(mnist_dir, monkeypatch):
    asked = []
    real = standin_mod.load_textures

    def spy(split, **kw):
        asked.append(split)
        return real(split, **kw)

    monkeypatch.setattr(standin_mod, "load_textures", spy)
    for split in ("train", "val", "test"):
        gtsrb_standin(split, 4, cache_dir=mnist_dir)
    assert asked == ["train", "train", "test"]
    mnist_canvas("test", 4, cache_dir=mnist_dir)
    assert asked == ["train", "train", "test"]  # the control has no texture


def test_one_channel(mnist_dir):
    s = gtsrb_standin("test", 3, channels=1, cache_dir=mnist_dir)
    assert s.images.shape == (3, 1, 50, 50)


def test_bad_arguments(mnist_dir):
    with pytest.raises(ValueError, match="gtsrb_standin: expected split"):
        gtsrb_standin("validation", 2, cache_dir=mnist_dir)
    with pytest.raises(ValueError, match=r"gtsrb_standin: expected n an int in \[0, 10000\]"):
        gtsrb_standin("test", 10001, cache_dir=mnist_dir)
    with pytest.raises(ValueError, match="mnist_canvas: expected seed"):
        mnist_canvas("test", 2, seed=-1, cache_dir=mnist_dir)
    with pytest.raises(ValueError, match="gtsrb_standin: expected channels"):
        gtsrb_standin("test", 2, channels=2, cache_dir=mnist_dir)
