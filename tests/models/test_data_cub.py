"""Tests of models/data/cub.py on small files written in the official CUB-200-2011 layout."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from models.data import cub
from models.data.layout import DatasetLayoutError

CLASSES = ["001.Black_footed_Albatross", "002.Laysan_Albatross", "003.Sooty_Albatross"]
# (image id, class id, is_train, (x, y, w, h), (W, H), colour)
IMAGES = [
    (1, 1, 1, (10.0, 20.0, 30.0, 40.0), (64, 80), (255, 0, 0)),
    (2, 1, 0, (0.0, 0.0, 64.0, 48.0), (64, 48), (0, 255, 0)),
    (3, 2, 1, (5.5, 6.5, 20.0, 10.0), (40, 40), (0, 0, 255)),
    (4, 3, 1, (1.0, 2.0, 3.0, 4.0), (32, 32), (128, 128, 128)),
    (5, 3, 0, (8.0, 8.0, 16.0, 16.0), (32, 64), (255, 255, 255)),
]


def write_cub(parent, images=IMAGES, classes=CLASSES):
    """Write a tiny CUB_200_2011/ under ``parent`` exactly as the official release lays it out."""
    root = parent / "CUB_200_2011"
    (root / "images").mkdir(parents=True)
    lines = {f: [] for f in cub.FILES}
    for i, name in enumerate(classes, 1):
        lines["classes.txt"].append(f"{i} {name}")
    for iid, cid, tr, (x, y, w, h), (W, H), colour in images:
        folder = classes[cid - 1]
        rel = f"{folder}/{folder.split('.')[1]}_{iid:04d}_{iid}.jpg"
        (root / "images" / folder).mkdir(exist_ok=True)
        Image.new("RGB", (W, H), colour).save(root / "images" / rel, quality=100)
        lines["images.txt"].append(f"{iid} {rel}")
        lines["image_class_labels.txt"].append(f"{iid} {cid}")
        lines["bounding_boxes.txt"].append(f"{iid} {x} {y} {w} {h}")
        lines["train_test_split.txt"].append(f"{iid} {tr}")
    for f, ls in lines.items():
        (root / f).write_text("\n".join(ls) + "\n")
    return root


def test_info_counts_classes_split(tmp_path):
    root = write_cub(tmp_path)
    i = cub.info(tmp_path)  # the parent of CUB_200_2011/ works
    assert i["dataset"] == "cub" and i["splits"] == {"train": 3, "test": 2} and i["classes"] == 3
    assert cub.info(root)["splits"] == {"train": 3, "test": 2}  # and the folder itself
    idx = cub.read_index(root)
    assert idx.classes == tuple(CLASSES)
    assert idx.labels.tolist() == [0, 0, 1, 2, 2]
    np.testing.assert_array_equal(idx.boxes[2], [5.5, 6.5, 25.5, 16.5])
    assert idx.split("train").tolist() == [0, 2, 3] and idx.split("test").tolist() == [1, 4]


def test_load_resizes_boxes_and_normalizes(tmp_path):
    write_cub(tmp_path)
    x, y, b = cub.load_cub(tmp_path, "train", size=32)
    assert x.shape == (3, 3, 32, 32) and y.tolist() == [0, 1, 2]
    # Image 1 is 64 x 80: box (10, 20, 40, 60) scales by (32 / 64, 32 / 80).
    torch.testing.assert_close(b[0], torch.tensor([5.0, 8.0, 20.0, 24.0]))
    # A red image normalizes to ((1 - .485) / .229, (0 - .456) / .224, (0 - .406) / .225);
    # JPEG rounding of a flat colour: within 2 / 255 before dividing by std (a priori).
    want = torch.tensor([(1 - 0.485) / 0.229, -0.456 / 0.224, -0.406 / 0.225])
    torch.testing.assert_close(x[0].mean(dim=(1, 2)), want, rtol=0, atol=2 / 255 / 0.224)
    raw, _, _ = cub.load_cub(tmp_path, "test", size=16, normalize=False)
    assert raw.shape == (2, 3, 16, 16) and 0 <= float(raw.min()) and float(raw.max()) <= 1


def test_flip_moves_boxes_with_the_image():
    img = torch.zeros(1, 3, 4, 10)
    img[..., 1:3, 2:5] = 1.0  # object at x in [2, 5), y in [1, 3)
    fi, fb = cub.hflip(img, torch.tensor([[2.0, 1.0, 5.0, 3.0]]))
    assert fb.tolist() == [[5.0, 1.0, 8.0, 3.0]]
    ys, xs = torch.nonzero(fi[0, 0], as_tuple=True)
    assert (int(xs.min()), int(xs.max()) + 1) == (5, 8)


def test_training_flips_are_seeded_and_about_half(tmp_path):
    write_cub(tmp_path)
    g = torch.Generator().manual_seed(0)
    ds = cub.CUBDataset(tmp_path, "train", size=32, flip=True, generator=g)
    boxes = [tuple(ds[0][2].tolist()) for _ in range(40)]
    flipped = sum(bx == (12.0, 8.0, 27.0, 24.0) for bx in boxes)
    plain = sum(bx == (5.0, 8.0, 20.0, 24.0) for bx in boxes)
    assert flipped + plain == 40 and 8 <= flipped <= 32  # Binomial(40, 1/2): P(outside) < 1e-4


def _write_and_break(tmp_path, fname, edit):
    root = write_cub(tmp_path)
    p = root / fname
    p.write_text(edit(p.read_text()))
    return tmp_path


MALFORMED = [
    ("images.txt", lambda s: s.replace("\n3 ", "\n3 a b ", 1),
     r"images.txt: line 3: expected 2 fields, got 4"),
    ("bounding_boxes.txt", lambda s: s.replace("10.0", "ten", 1),
     r"bounding_boxes.txt: line 1: expected fields of types \(int, float, float, float, float\)"),
    ("image_class_labels.txt", lambda s: s.replace("5 3", "5 9"),
     r"image 5: expected a class id in 1..3, got 9"),
    ("image_class_labels.txt", lambda s: s.replace("5 3\n", ""),
     r"image_class_labels.txt: expected the image ids of images.txt, got 4 ids \(missing \[5\]"),
    ("train_test_split.txt", lambda s: s.replace("4 1", "4 2"), r"image 4: expected 0 or 1, got 2"),
    ("bounding_boxes.txt", lambda s: s.replace("1.0 2.0 3.0 4.0", "1.0 2.0 0.0 4.0"),
     r"image 4: expected width and height > 0"),
    ("classes.txt", lambda s: s.replace("3 003", "4 003"), r"classes.txt: expected class ids 1..3"),
    ("images.txt", lambda s: s.replace("1 001.Black_footed_Albatross/", "1 002.Laysan_Albatross/"),
     r"image 1: expected a path under 001.Black_footed_Albatross/"),
    ("train_test_split.txt", lambda s: s + "3 0\n", r"line 6: duplicate id 3"),
]


@pytest.mark.parametrize("fname, edit, match", MALFORMED)
def test_malformed_files_give_one_line_naming_the_layout(tmp_path, fname, edit, match):
    root = _write_and_break(tmp_path, fname, edit)
    with pytest.raises(DatasetLayoutError, match=match) as e:
        cub.info(root)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("cub: ") and msg.endswith(cub.LAYOUT)


def test_missing_pieces(tmp_path):
    with pytest.raises(DatasetLayoutError, match=r"cub: expected a directory at .*; expected lay"):
        cub.info(tmp_path / "nowhere")
    with pytest.raises(DatasetLayoutError, match=r"expected images.txt at .*CUB_200_2011"):
        (tmp_path / "empty").mkdir()
        cub.info(tmp_path / "empty")
    root = write_cub(tmp_path / "a")
    (root / "bounding_boxes.txt").unlink()
    with pytest.raises(DatasetLayoutError, match="expected bounding_boxes.txt at"):
        cub.info(root)
    root = write_cub(tmp_path / "b")
    next((root / "images" / CLASSES[2]).glob("*.jpg")).unlink()
    with pytest.raises(DatasetLayoutError, match=r"expected image \d at .*\.jpg; expected layout"):
        cub.info(root)
    root = write_cub(tmp_path / "c")
    bad = next((root / "images" / CLASSES[1]).glob("*.jpg"))
    bad.write_bytes(b"not a jpeg")
    with pytest.raises(DatasetLayoutError, match="expected a readable JPEG image"):
        cub.load_cub(root, "train", size=16)
    with pytest.raises(ValueError, match="CUBDataset: expected split 'train' or 'test', got 'val'"):
        cub.CUBDataset(root, "val")


def test_registered_as_a_reader():
    from models.data.layout import READERS
    assert READERS["cub"] == "models.data.cub"
    assert cub.INPUT_SIZE == 320 and cub.IMAGENET_MEAN == (0.485, 0.456, 0.406)
