"""Tests of models/data/wsol_standin_v2.py: objects that fill 15-40 % of the image, exact
boxes, renderings fixed by (split, seed, epoch, index), disjoint splits."""

from __future__ import annotations

import pytest
import torch

from models.data import fashion
from models.data import wsol_standin_v2 as V
from models.data.textures import TEXTURE_SPLITS


@pytest.fixture(scope="module")
def train_src():
    return V.load_sources("train", 400, seed=0)


@pytest.fixture(scope="module")
def rendered(train_src):
    return V.render(train_src, range(400), "train", seed=0, epoch=0, normalize=False)


def test_name_says_stand_in_for_cub_and_which_objects(train_src):
    assert "a stand-in for CUB-200-2011" in train_src.dataset
    want = V.NAME_FASHION if fashion.is_cached() else V.NAME_MNIST_FALLBACK
    assert train_src.dataset == want
    assert all("stand-in for CUB" in n for n in V.STANDIN_V2_NAMES)


def test_mnist_fallback_is_named(monkeypatch):
    monkeypatch.setattr(fashion, "is_cached", lambda cache_dir=None: False)
    src = V.load_sources("test", 8, seed=0)
    assert src.dataset == V.NAME_MNIST_FALLBACK and "Fashion-MNIST is not cached" in src.dataset


def test_boxes_cover_15_to_40_percent(rendered):
    b = rendered["boxes"]
    area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) / V.IMAGE_SIZE ** 2
    lo, hi = V.BOX_AREA_RANGE
    assert float(area.min()) >= lo and float(area.max()) <= hi
    # the range is used, not a sliver of it (TARGET_AREA spans 0.165-0.365)
    assert float(area.min()) < 0.19 and float(area.max()) > 0.33


def test_boxes_are_the_exact_support(rendered):
    # Every covered pixel is inside its box and the box is tight (each edge touches the
    # support): exact by construction, no tolerance.
    a = rendered["alpha"] > 0
    for n in range(len(a)):
        x0, y0, x1, y1 = (int(v) for v in rendered["boxes"][n])
        inside = torch.zeros_like(a[n])
        inside[y0:y1, x0:x1] = True
        assert not bool((a[n] & ~inside).any())
        assert a[n, y0].any() and a[n, y1 - 1].any() and a[n, :, x0].any() and a[n, :, x1 - 1].any()


def test_objects_keep_their_texture(rendered):
    # Inside the fully covered pixels the object is the source's grey levels times a colour
    # (0.35 + 0.65 v), not a flat patch: a compositing that dropped the texture would give
    # a per-image spread of ~0 there. 0.02 (of 1) is far below a garment's spread, a priori.
    img, a = rendered["images"], rendered["alpha"] >= 1
    spread = torch.stack([img[n][:, a[n]].std(1).max() for n in range(len(img))])
    assert float((spread > 0.02).double().mean()) > 0.9


def test_rendering_is_a_function_of_split_seed_epoch_index(train_src, rendered):
    some = V.render(train_src, [7, 3, 250], "train", seed=0, epoch=0, normalize=False)
    assert torch.equal(some["images"], rendered["images"][[7, 3, 250]])  # batch-independent
    again = V.render(train_src, [7], "train", seed=0, epoch=1, normalize=False)
    assert not torch.equal(again["images"][0], rendered["images"][7])  # fresh per epoch
    other = V.render(train_src, [7], "train", seed=1, epoch=0, normalize=False)
    assert not torch.equal(other["images"][0], rendered["images"][7])
    assert torch.equal(again["labels"], rendered["labels"][[7]])  # same garment, same label


def test_splits_use_disjoint_objects_and_textures():
    assert [V.SPLITS[s][0] for s in ("train", "heldout", "test")] == ["train", "val", "test"]
    assert V.SPLITS["train"][1] == "train" and V.SPLITS["heldout"][1] == "test"
    assert not set(TEXTURE_SPLITS["train"]) & set(TEXTURE_SPLITS[V.SPLITS["test"][1]])


def test_make_split_and_labels_in_range():
    d = V.make_split("heldout", 12, seed=2, chunk=5)
    assert d["images"].shape == (12, 3, 64, 64) and d["boxes"].shape == (12, 4)
    assert int(d["labels"].min()) >= 0 and int(d["labels"].max()) < 10
    assert d["dataset"] in V.STANDIN_V2_NAMES


def test_epoch_locset_renders_the_epoch_of_the_step(train_src):
    ds = V.EpochLocSet(train_src, seed=0)
    assert ds.takes_step and ds.epoch_of(0, 16) == 0 and ds.epoch_of(25, 16) == 1
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    x0, y0 = ds.train_batches(4, [g1], step=0)
    idx = torch.randint(len(ds), (4,), generator=torch.Generator().manual_seed(5))
    want = V.render(train_src, idx, "train", seed=0, epoch=0)
    assert torch.equal(x0[0], want["images"]) and torch.equal(y0[0], want["labels"])
    x1, _ = ds.train_batches(4, [g2], step=100)  # epoch 1: same draws, fresh rendering
    assert x1.shape == (1, 4, 3, 64, 64) and not torch.equal(x0, x1)


def test_bad_input_one_line_naming_the_argument(train_src):
    ds = V.EpochLocSet(train_src, seed=0)
    with pytest.raises(ValueError, match="train_batches: expected step"):
        ds.train_batches(4, [torch.Generator()])
    with pytest.raises(ValueError, match="render: expected split"):
        V.render(train_src, [0], "val", seed=0, epoch=0)
    with pytest.raises(ValueError, match="render: expected epoch"):
        V.render(train_src, [0], "train", seed=0, epoch=-1)
    with pytest.raises(ValueError, match=r"render: expected indices in \[0, 400\)"):
        V.render(train_src, [400], "train", seed=0, epoch=0)
    with pytest.raises(ValueError, match="load_sources: expected n"):
        V.load_sources("train", 0)
