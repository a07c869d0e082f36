"""SVHN format 1 reader on small files written here in the official layout, and the stand-in."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from models.data import svhn
from models.data.layout import DatasetLayoutError

h5py = pytest.importorskip("h5py")  # in the `test` extra; skipped only where it is missing

RED, BLUE = (230, 90, 20), (20, 40, 220)  # every channel varies


def write_digit_struct(path, entries, *, direct_multi: bool = False, drop_field: str | None = None):
    """Write ``digitStruct.mat`` as MATLAB v7.3 does: HDF5, values behind object references.

    ``entries``: ``[(name, [(label, left, top, width, height), ...]), ...]``. One-digit
    entries store each field's value directly as a (1, 1) array; several digits store a
    (k, 1) array of references to (1, 1) arrays in ``#refs#`` (or, with ``direct_multi``,
    the malformed direct (k, 1) values).
    """
    with h5py.File(path, "w") as f:
        refs = f.create_group("#refs#")
        name_refs, bbox_refs = [], []
        for i, (name, digits) in enumerate(entries):
            chars = np.array([ord(c) for c in name], dtype=np.uint16)[:, None]  # (len, 1)
            name_refs.append(refs.create_dataset(f"name{i}", data=chars).ref)
            g = refs.create_group(f"bbox{i}")
            for fi, field in enumerate(("label", "left", "top", "width", "height")):
                if field == drop_field:
                    continue
                vals = [float(d[fi]) for d in digits]
                if len(vals) == 1 or direct_multi:
                    g.create_dataset(field, data=np.array(vals, dtype=np.float64)[:, None])
                else:
                    rs = [refs.create_dataset(f"v{i}_{field}_{j}", data=np.array([[v]])).ref
                          for j, v in enumerate(vals)]
                    g.create_dataset(field, data=np.array(rs, dtype=h5py.ref_dtype)[:, None])
            bbox_refs.append(g.ref)
        d = f.create_group("digitStruct")
        d.create_dataset("name", data=np.array(name_refs, dtype=h5py.ref_dtype)[:, None])
        d.create_dataset("bbox", data=np.array(bbox_refs, dtype=h5py.ref_dtype)[:, None])


def write_png(path, w, h, digits):
    """Blue image, red inside the union of the digit boxes."""
    from PIL import Image

    a = np.zeros((h, w, 3), dtype=np.uint8)
    a[...] = BLUE
    x0 = min(d[1] for d in digits)
    y0 = min(d[2] for d in digits)
    x1 = max(d[1] + d[3] for d in digits)
    y1 = max(d[2] + d[4] for d in digits)
    a[y0:y1, x0:x1] = RED
    Image.fromarray(a).save(path)


#: (name, image (w, h), digits (label, left, top, width, height)).
TRAIN = [
    ("1.png", (100, 60), [(1, 30, 15, 10, 20), (10, 40, 15, 10, 20)]),  # "10"
    ("2.png", (80, 80), [(7, 20, 10, 30, 50)]),  # single digit: values stored directly
    ("3.png", (120, 50), [(5, 10, 5, 12, 30), (6, 22, 6, 12, 30), (10, 34, 5, 12, 30)]),
]
TEST = [("1.png", (90, 40), [(3, 40, 8, 14, 24)]),
        ("2.png", (90, 40), [(2, 20, 8, 14, 24), (9, 34, 8, 14, 24)])]


def write_split(root, split, rows):
    d = root / split
    d.mkdir(parents=True)
    for name, (w, h), digits in rows:
        write_png(d / name, w, h, digits)
    write_digit_struct(d / "digitStruct.mat", [(n, dg) for n, _, dg in rows])
    return d


@pytest.fixture
def svhn_root(tmp_path):
    write_split(tmp_path, "train", TRAIN)
    write_split(tmp_path, "test", TEST)
    return tmp_path


def test_read_digit_struct_single_and_multi_digit_references(svhn_root):
    rec = svhn.read_digit_struct(svhn_root / "train" / "digitStruct.mat")
    assert [r["name"] for r in rec] == ["1.png", "2.png", "3.png"]
    assert [r["labels"] for r in rec] == [[1, 10], [7], [5, 6, 10]]
    np.testing.assert_array_equal(rec[0]["boxes"], [[30, 15, 10, 20], [40, 15, 10, 20]])
    np.testing.assert_array_equal(rec[1]["boxes"], [[20, 10, 30, 50]])
    # the multi-digit fields really are object references in the file (the format under test)
    with h5py.File(svhn_root / "train" / "digitStruct.mat", "r") as f:
        g0 = f[f["digitStruct/bbox"][0, 0]]
        g1 = f[f["digitStruct/bbox"][1, 0]]
        assert g0["label"].dtype == h5py.ref_dtype and g0["label"].shape == (2, 1)
        assert g1["label"].dtype == np.float64 and g1["label"].shape == (1, 1)


def test_load_counts_labels_boxes(svhn_root):
    x, y, meta = svhn.load_svhn(svhn_root, "train")
    assert x.shape == (3, 3, 64, 64) and x.dtype == torch.uint8
    # label 10 is the digit 0; "none" (10) after the last digit
    assert y.tolist() == [[1, 0, 10, 10, 10], [7, 10, 10, 10, 10], [5, 6, 0, 10, 10]]
    # union box grown 30 % about its centre: "10" spans x 30..50, y 15..35
    np.testing.assert_allclose(meta["boxes"][0], [27.0, 12.0, 53.0, 38.0])
    np.testing.assert_allclose(meta["boxes"][1], [15.5, 2.5, 54.5, 67.5])
    assert meta["dropped_over_5"] == 0
    xt, yt, _ = svhn.load_svhn(svhn_root, "test")
    assert xt.shape[0] == 2 and yt.tolist() == [[3, 10, 10, 10, 10], [2, 9, 10, 10, 10]]


def test_crop_covers_the_grown_box(svhn_root):
    """Red union box inside blue: the 64 px crop is red in its central 64 / 1.3 px, blue at the rim.

    The red run along the centre row has length 64 / 1.3 = 49.2 px; tolerance 2 px
    (a priori: one output pixel of bilinear blending at each red/blue edge).
    """
    x, _, _ = svhn.load_svhn(svhn_root, "train")
    img = x[0]  # "10": grown box 26x26 inside a 100x60 image, no clipping
    red = (img[0] > 127) & (img[2] < 127)  # (64, 64)
    run = int(red[32].sum())
    assert abs(run - 64 / 1.3) <= 2
    assert red[32, 32] and not red[32, 0] and not red[32, 63] and not red[0, 32]


def test_more_than_five_digits_dropped(tmp_path):
    six = [(d, 5 + 8 * i, 5, 8, 20) for i, d in enumerate((1, 2, 3, 4, 5, 6))]
    write_split(tmp_path, "train", [("1.png", (80, 40), six), ("2.png", (80, 40), six[:5])])
    x, y, meta = svhn.load_svhn(tmp_path, "train")
    assert meta["dropped_over_5"] == 1 and y.tolist() == [[1, 2, 3, 4, 5]]


def test_info_counts_without_decoding(svhn_root):
    out = svhn.info(svhn_root)
    assert out["dataset"] == "svhn" and out["splits"] == {"train": 3, "test": 2}
    assert (out["classes"], out["heads"], out["head_classes"], out["none_class"]) == (10, 5, 11,
                                                                                     10)
    write_split(svhn_root, "extra", TEST)
    deep = svhn.info(svhn_root, read_labels=True)
    assert deep["splits"]["extra"] == 2 and deep["entries"] == {"train": 3, "test": 2, "extra": 2}
    assert deep["digits_per_image"]["train"] == {1: 1, 2: 1, 3: 1}


def test_prepare_normalizes_with_training_statistics(svhn_root):
    out = svhn.prepare_svhn(svhn_root)
    assert out["stats_from"] == ["train"]  # no extra/ here
    xtr = svhn.normalize(out["train"][0], out["mean"], out["std"])
    assert xtr.dtype == torch.float32
    # derived: normalizing by the very mean / std of these images gives 0 / 1 up to float32
    # rounding over ~1e4 pixels per channel (1e-4 absolute is ample)
    flat = xtr.double().transpose(0, 1).reshape(3, -1)
    torch.testing.assert_close(flat.mean(1), torch.zeros(3, dtype=torch.float64), atol=1e-4,
                               rtol=0)
    torch.testing.assert_close(flat.std(1, unbiased=False), torch.ones(3, dtype=torch.float64),
                               atol=1e-4, rtol=0)
    # the test split is scaled with the training statistics, not its own
    raw_te = out["test"][0].double() / 255
    want = (raw_te - out["mean"].double()[None, :, None, None]) / out["std"].double()[
        None, :, None, None]
    torch.testing.assert_close(svhn.normalize(out["test"][0], out["mean"], out["std"]).double(),
                               want, atol=1e-5, rtol=1e-4)
    own, _ = svhn.channel_stats(out["test"][0])
    assert not torch.allclose(own, out["mean"], atol=0.01)


def test_channel_stats_chunked_equals_direct():
    x = torch.randint(0, 256, (10, 3, 5, 7), dtype=torch.uint8,
                      generator=torch.Generator().manual_seed(0))
    m, s = svhn.channel_stats(x, chunk=3)
    flat = x.double().div(255).transpose(0, 1).reshape(3, -1)
    torch.testing.assert_close(m.double(), flat.mean(1), atol=1e-6, rtol=0)  # float32 output
    torch.testing.assert_close(s.double(), flat.std(1, unbiased=False), atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match=r"channel_stats: expected images of shape"):
        svhn.channel_stats(torch.zeros(0, 3, 4, 4))
    with pytest.raises(ValueError, match=r"normalize: expected std > 0"):
        svhn.normalize(x, m, torch.tensor([1.0, 0.0, 1.0]))


# --- malformed directories and files: one DatasetLayoutError line naming the layout ---------

def test_missing_split_directory(tmp_path):
    write_split(tmp_path, "train", TRAIN)
    with pytest.raises(DatasetLayoutError, match=r"test/ directory.*expected layout: SVHN"):
        svhn.info(tmp_path)


def test_not_hdf5(tmp_path):
    d = tmp_path / "train"
    d.mkdir()
    (d / "digitStruct.mat").write_bytes(b"MATLAB 5.0 MAT-file, not HDF5")
    with pytest.raises(DatasetLayoutError, match=r"not a MATLAB v7.3 / HDF5.*expected layout"):
        svhn.load_svhn(tmp_path, "train")


def test_missing_field(tmp_path):
    d = tmp_path / "train"
    d.mkdir()
    write_digit_struct(d / "digitStruct.mat", [(n, dg) for n, _, dg in TRAIN], drop_field="top")
    with pytest.raises(DatasetLayoutError, match=r"has no field 'top'.*expected layout"):
        svhn.read_digit_struct(d / "digitStruct.mat")


def test_multi_digit_values_stored_directly_rejected(tmp_path):
    d = tmp_path / "train"
    d.mkdir()
    write_digit_struct(d / "digitStruct.mat", [(n, dg) for n, _, dg in TRAIN], direct_multi=True)
    with pytest.raises(DatasetLayoutError, match="must be stored as object references"):
        svhn.read_digit_struct(d / "digitStruct.mat")


def test_bad_label(tmp_path):
    d = tmp_path / "train"
    d.mkdir()
    write_digit_struct(d / "digitStruct.mat", [("1.png", [(11, 1, 1, 5, 5)])])
    with pytest.raises(DatasetLayoutError, match=r"expected integers 1..10"):
        svhn.read_digit_struct(d / "digitStruct.mat")


def test_missing_png(svhn_root):
    (svhn_root / "train" / "2.png").unlink()
    with pytest.raises(DatasetLayoutError, match=r"names 2.png but there is no such file"):
        svhn.load_svhn(svhn_root, "train")


def test_no_digitstruct_group(tmp_path):
    d = tmp_path / "train"
    d.mkdir()
    with h5py.File(d / "digitStruct.mat", "w") as f:
        f.create_dataset("other", data=np.zeros(3))
    with pytest.raises(DatasetLayoutError, match="no group 'digitStruct'"):
        svhn.read_digit_struct(d / "digitStruct.mat")


def test_without_h5py_one_clear_line(svhn_root, monkeypatch):
    monkeypatch.setitem(sys.modules, "h5py", None)  # import h5py now raises ImportError
    with pytest.raises(ImportError, match=r"needs h5py; pip install 'stnlab\[svhn\]'"):
        svhn.load_svhn(svhn_root, "train")


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"load_svhn: expected split"):
        svhn.load_svhn(".", "valid")
    with pytest.raises(ValueError, match=r"five_head_labels: expected 1..5 labels"):
        svhn.five_head_labels([1, 2, 3, 4, 5, 6])
    with pytest.raises(ValueError, match=r"sequence_box: expected"):
        svhn.sequence_box([[0, 0, 0, 5]])


# --- stand-in -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def standin_batch(real_mnist_dir):
    return svhn.standin("train", 48, seed=3, cache_dir=real_mnist_dir)


@pytest.mark.network
def test_standin_shapes_and_labels(standin_batch):
    x, y = standin_batch
    assert x.shape == (48, 3, 64, 64) and x.dtype == torch.float32
    assert y.shape == (48, 5) and y.dtype == torch.int64
    assert float(x.min()) >= 0 and float(x.max()) <= 1
    k = (y != svhn.NONE_CLASS).sum(1)
    assert int(k.min()) >= 1 and int(k.max()) <= 5
    # digits first, then "none" only: position j is none iff j >= k
    pos = torch.arange(5)[None, :]
    assert torch.equal(y == svhn.NONE_CLASS, pos >= k[:, None])
    assert len(set(k.tolist())) == 5  # every length occurs in 48 draws (P(miss) < 5 * 0.8^48)


@pytest.mark.network
def test_standin_deterministic_and_split_dependent(standin_batch, real_mnist_dir):
    x, y = standin_batch
    x2, y2 = svhn.standin("train", 48, seed=3, cache_dir=real_mnist_dir)
    assert torch.equal(x, x2) and torch.equal(y, y2)
    x3, _ = svhn.standin("train", 48, seed=4, cache_dir=real_mnist_dir)
    xt, _ = svhn.standin("test", 48, seed=3, cache_dir=real_mnist_dir)
    assert not torch.equal(x, x3) and not torch.equal(x, xt)


@pytest.mark.network
def test_standin_digits_visible(standin_batch):
    """Tinted digits stand out: each image has pixels far (> 0.2) from its median colour.

    0.2 (derived): the digit tint sits >= 0.2 from the shifted background mean by construction.
    """
    x, _ = standin_batch
    med = x.flatten(2).median(dim=2).values  # (n, 3)
    far = ((x - med[:, :, None, None]).abs().amax(1) > 0.2).flatten(1).sum(1)
    assert int(far.min()) > 20


def test_standin_bad_split():
    with pytest.raises(ValueError, match=r"svhn.standin: expected split"):
        svhn.standin("val", 4, seed=0)
