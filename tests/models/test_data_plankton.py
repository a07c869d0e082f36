"""PlanktonSet 1.0 reader on files written here, 000 App. A.4's augmentation, the stand-in."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from models.data import plankton
from models.data.layout import DatasetLayoutError
from sampling.warp import warp_affine

CLASSES = [f"class_{i:03d}" for i in range(plankton.N_CLASSES)]


def write_jpg(path, w=12, h=8, value=40):
    a = np.full((h, w), 255, dtype=np.uint8)  # white background, as in PlanktonSet
    a[h // 4: 3 * h // 4, w // 4: 3 * w // 4] = value  # a dark "plankton"
    Image.fromarray(a).save(path, quality=95)


#: test images: (class index, file name); sorted by name they interleave classes
TEST_FILES = [(0, "100.jpg"), (5, "101.jpg"), (0, "102.jpg"), (7, "103.jpg"), (5, "104.jpg"),
              (7, "105.jpg"), (0, "106.jpg"), (5, "107.jpg"), (7, "108.jpg"), (0, "109.jpg")]


@pytest.fixture
def plankton_root(tmp_path):
    for i, c in enumerate(CLASSES):
        (tmp_path / "train" / c).mkdir(parents=True)
        write_jpg(tmp_path / "train" / c / f"{1000 + i}.jpg")
    write_jpg(tmp_path / "train" / CLASSES[3] / "5000.jpg")  # one class with two images
    for c, name in TEST_FILES:
        (tmp_path / "test" / CLASSES[c]).mkdir(parents=True, exist_ok=True)
        write_jpg(tmp_path / "test" / CLASSES[c] / name)
    return tmp_path


def test_split_counts_and_the_30_percent_validation(plankton_root):
    files = plankton.split_files(plankton_root)
    assert len(files["train"]) == 122
    # first floor(0.3 * 10) = 3 test images by file name are validation
    assert [p.name for p, _ in files["val"]] == ["100.jpg", "101.jpg", "102.jpg"]
    assert [c for _, c in files["val"]] == [0, 5, 0]
    assert [p.name for p, _ in files["test"]] == [f"{n}.jpg" for n in range(103, 110)]
    assert [c for _, c in files["test"]] == [7, 5, 7, 0, 5, 7, 0]
    out = plankton.info(plankton_root)
    assert out["splits"] == {"train": 122, "val": 3, "test": 7}
    assert out["classes"] == 121 and out["test_classes"] == 3 and out["dataset"] == "plankton"


def test_load_inverts_and_places_on_canvas(plankton_root):
    x, y = plankton.load_plankton(plankton_root, "val")
    assert x.shape == (3, 1, 192, 192) and x.dtype == torch.uint8 and y.tolist() == [0, 5, 0]
    # a 12x8 image -> 192x128, centred: rows 32..159 hold the image, the rest is 0
    rows = (x[0, 0] > 0).any(1).nonzero().flatten()
    assert (int(rows.min()), int(rows.max())) == (32, 159)
    # inverted: the white background is ~0 inside the image, the dark object bright.
    # JPEG + bilinear resize: a priori margin of 30 grey levels.
    assert int(x[0, 0, 40, 10]) < 30 and int(x[0, 0, 96, 96]) > 215 - 30


def test_to_canvas_tall_image():
    a = np.full((30, 10), 200, dtype=np.uint8)
    c = plankton.to_canvas(a)
    cols = (c[0] > 0).any(0).nonzero().flatten()
    assert c.shape == (1, 192, 192) and (int(cols.min()), int(cols.max())) == (64, 127)


@pytest.mark.parametrize("n_classes", [120, 122])
def test_wrong_class_count(plankton_root, n_classes):
    if n_classes == 120:
        for p in (plankton_root / "train" / CLASSES[-1]).iterdir():
            p.unlink()
        (plankton_root / "train" / CLASSES[-1]).rmdir()
    else:
        (plankton_root / "train" / "extra_class").mkdir()
    with pytest.raises(DatasetLayoutError,
                       match=rf"found {n_classes} class directories, expected 121.*layout"):
        plankton.info(plankton_root)


def test_unknown_test_class(plankton_root):
    (plankton_root / "test" / "not_a_class").mkdir()
    with pytest.raises(DatasetLayoutError, match=r"'not_a_class' is not a training class"):
        plankton.split_files(plankton_root)


def test_missing_test_dir(tmp_path):
    for c in CLASSES:
        (tmp_path / "train" / c).mkdir(parents=True)
        write_jpg(tmp_path / "train" / c / "1.jpg")
    with pytest.raises(DatasetLayoutError, match=r"test/ directory.*expected layout: Plankton"):
        plankton.info(tmp_path)


def test_flat_test_dir_rejected(tmp_path):
    """Kaggle's unlabeled flat test/*.jpg is not PlanktonSet 1.0's layout."""
    for c in CLASSES:
        (tmp_path / "train" / c).mkdir(parents=True)
        write_jpg(tmp_path / "train" / c / "1.jpg")
    (tmp_path / "test").mkdir()
    write_jpg(tmp_path / "test" / "1.jpg")
    with pytest.raises(DatasetLayoutError, match=r"no \*\.jpg images under the class"):
        plankton.info(tmp_path)


def test_unreadable_jpeg(plankton_root):
    (plankton_root / "test" / CLASSES[0] / "100.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(DatasetLayoutError, match=r"100.jpg is not a readable image"):
        plankton.load_plankton(plankton_root, "val")


def test_bad_split_name(plankton_root):
    with pytest.raises(ValueError, match=r"load_plankton: expected split"):
        plankton.load_plankton(plankton_root, "validation")


# --- augmentation -------------------------------------------------------------------------

SIGMA = 6.0  # blob width in canvas pixels


def blob_canvas(cx_px, cy_px, size=192, sigma=SIGMA):
    """(1, 1, S, S) Gaussian blob centred at pixel (cx, cy) (pixel centres at i + 0.5)."""
    c = torch.arange(size, dtype=torch.float64) + 0.5
    yy, xx = torch.meshgrid(c, c, indexing="ij")
    return torch.exp(-((xx - cx_px) ** 2 + (yy - cy_px) ** 2) / (2 * sigma ** 2))[None, None]


def centroid_norm(img):
    """Intensity centroid of (S, S) in normalized coordinates (align_corners=False)."""
    s = img.shape[-1]
    c = (2 * (torch.arange(s, dtype=img.dtype) + 0.5) / s) - 1
    w = img / img.sum()
    return float((w.sum(0) * c).sum()), float((w.sum(1) * c).sum())


def params(n=1, angle=0.0, t=(0.0, 0.0), shear=0.0, log_scale=0.0, flip=False):
    f64 = torch.float64
    return {"angle": torch.full((n,), angle, dtype=f64),
            "translation_px": torch.tensor([t] * n, dtype=f64),
            "shear": torch.full((n,), shear, dtype=f64),
            "log_scale": torch.full((n,), log_scale, dtype=f64),
            "flip": torch.full((n,), flip)}


@pytest.mark.parametrize("case,expected", [
    # a blob at canvas offset (+30 px, 0) from the centre = normalized (30/96, 0) moves to:
    (dict(angle=math.pi / 2), (0.0, 30 / 96)),  # R(90 deg) (x, y) -> (-y, x)
    (dict(t=(20.0, -10.0)), (50 / 96, -10 / 96)),  # +20 px right, 10 px up
    (dict(log_scale=math.log(1.3)), (1.3 * 30 / 96, 0.0)),
    (dict(flip=True), (-30 / 96, 0.0)),
])
def test_matrix_moves_a_point_as_its_parameters_say(case, expected):
    """Warp a blob with a hand-picked parameter and find it where T q says (not via the code).

    Tolerance 0.01 normalized (~0.5 output px), a priori: the centroid of a bilinearly
    resampled symmetric blob is exact up to interpolation bias far below a pixel.
    """
    canvas = blob_canvas(96 + 30, 96)
    m = plankton.augmentation_matrix(params(**case))
    out = warp_affine(canvas, m, (95, 95), align_corners=False, padding_mode="zeros")
    cx, cy = centroid_norm(out[0, 0])
    assert abs(cx - expected[0]) < 0.01 and abs(cy - expected[1]) < 0.01


def test_shear_moves_a_point_as_its_parameters_say():
    canvas = blob_canvas(96, 96 + 30)  # normalized (0, 30/96)
    s = math.radians(20)
    m = plankton.augmentation_matrix(params(shear=s))
    out = warp_affine(canvas, m, (95, 95), align_corners=False, padding_mode="zeros")
    cx, cy = centroid_norm(out[0, 0])
    assert abs(cx - math.tan(s) * 30 / 96) < 0.01 and abs(cy - 30 / 96) < 0.01


def test_augment_samples_exactly_where_its_matrix_says():
    """Every output pixel equals the canvas function at ``M p``.

    The canvas is a smooth Gaussian (sigma 6 px) sampled on the pixel grid, so bilinear
    resampling differs from the analytic value by at most h^2/8 (|f_xx| + |f_yy|) <=
    1 / (4 sigma^2) = 0.0069 (derived: |f''| <= 1 / sigma^2, h = 1 px); off-canvas samples
    are 0 while the Gaussian there is < exp(-50^2 / 72) (negligible: the blob sits >= 60 px
    from the edges and translations are <= 20 px).
    """
    g = torch.Generator().manual_seed(0)
    canvas = blob_canvas(96 + 15, 96 - 10).expand(8, 1, 192, 192).contiguous()
    out, m = plankton.augment(canvas, generator=g, return_matrix=True)
    assert out.shape == (8, 1, 95, 95) and m.shape == (8, 2, 3)
    c = 2 * (torch.arange(95, dtype=torch.float64) + 0.5) / 95 - 1  # output pixel centres
    yy, xx = torch.meshgrid(c, c, indexing="ij")
    p = torch.stack([xx, yy, torch.ones_like(xx)], -1)  # (95, 95, 3)
    q = torch.einsum("nij,hwj->nhwi", m.double(), p)  # (8, 95, 95, 2) input locations
    qx, qy = (q[..., 0] + 1) * 96, (q[..., 1] + 1) * 96  # canvas pixels (edges at 0, 192)
    want = torch.exp(-((qx - 111) ** 2 + (qy - 86) ** 2) / (2 * SIGMA ** 2))
    err = (out[:, 0].double() - want).abs().max()
    assert float(err) <= 1 / (4 * SIGMA ** 2) + 1e-6


def test_augment_seeded_and_batched():
    x = torch.rand(1, 1, 64, 64, generator=torch.Generator().manual_seed(1)).expand(6, 1, 64, 64)
    a = plankton.augment(x, generator=torch.Generator().manual_seed(5))
    b = plankton.augment(x, generator=torch.Generator().manual_seed(5))
    c = plankton.augment(x, generator=torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert not torch.equal(a[0], a[1])  # same image, own parameters per batch entry


def test_augmentation_ranges():
    """10,000 draws stay inside 000's ranges; flip rate and mean log scale are centred.

    Bounds (derived): 5 standard errors, flips sqrt(0.25 / n) = 0.005, log scale
    (2 log 1.3) / sqrt(12 n) = 0.0015.
    """
    n = 10_000
    p = plankton.sample_augmentation(n, generator=torch.Generator().manual_seed(0))
    assert float(p["angle"].abs().max()) <= math.pi
    assert float(p["angle"].abs().max()) > 0.99 * math.pi
    assert float(p["translation_px"].abs().max()) <= 20
    assert float(p["shear"].abs().max()) <= math.radians(20)
    assert float(p["log_scale"].abs().max()) <= math.log(1.3)
    assert abs(float(p["flip"].double().mean()) - 0.5) < 5 * 0.005
    assert abs(float(p["log_scale"].mean())) < 5 * 2 * math.log(1.3) / math.sqrt(12 * n)


def test_augment_bad_input():
    with pytest.raises(ValueError, match=r"augment: expected float canvases"):
        plankton.augment(torch.zeros(2, 1, 10, 12), generator=torch.Generator())
    with pytest.raises(ValueError, match=r"sample_augmentation: expected ranges"):
        plankton.sample_augmentation(2, generator=torch.Generator(),
                                     aug=plankton.Augmentation(scale=(1.3, 1.0)))


# --- stand-in -----------------------------------------------------------------------------

@pytest.mark.network
def test_standin_shapes_labels_determinism(real_mnist_dir):
    kw = dict(cache_dir=real_mnist_dir)
    x, y = plankton.standin("train", 16, seed=2, **kw)
    assert x.shape == (16, 1, 95, 95) and x.dtype == torch.float32
    assert y.dtype == torch.int64 and int(y.min()) >= 0 and int(y.max()) <= 9
    x2, y2 = plankton.standin("train", 16, seed=2, **kw)
    assert torch.equal(x, x2) and torch.equal(y, y2)
    xt, _ = plankton.standin("test", 16, seed=2, **kw)
    assert not torch.equal(x, xt)
    # plain background: corners of the upright (unaugmented) digits are 0
    xu, yu = plankton.standin("train", 16, seed=2, augmented=False, **kw)
    assert torch.equal(yu, y) and float(xu[:, :, :5, :5].abs().max()) == 0.0
    assert not torch.allclose(xu, x)
