"""GTSRB reader on files written in exactly the official layout; malformed cases."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch

from models.data.gtsrb import (LAYOUT, OFFICIAL_SIZES, DatasetLayoutError, info, load_gtsrb,
                               records, split_by_track, standardize)
from tests.models.gtsrb_files import BORDER, HEADER, roi_colour, write_gtsrb

# One uint8 level: Pillow's fixed-point resampling of a constant patch may round by one
# level (a priori), while a ROI off by one pixel mixes in BORDER (>= 60 levels away).
ONE_LEVEL = 1.0 / 255 + 1e-6


@pytest.fixture(scope="module")
def gtsrb(tmp_path_factory):
    root = tmp_path_factory.mktemp("gtsrb")
    write_gtsrb(root)
    return root


def test_info_counts(gtsrb):
    i = info(gtsrb)
    # 4 x 10 x 3 = 120 training images; val = round(120 * 3900 / 39209) = 12.
    assert i["dataset"] == "gtsrb" and i["classes"] == 4 and i["tracks"] == 40
    assert i["splits"] == {"train": 108, "val": 12, "test": 7} and i["train_all"] == 120
    assert info(gtsrb / "GTSRB")["splits"] == i["splits"]  # the GTSRB/ folder itself


def test_split_is_by_track_and_deterministic(gtsrb):
    tr, va, al = (records(gtsrb, s) for s in ("train", "val", "train_all"))
    assert len(tr) + len(va) == len(al)
    assert {r.path for r in tr}.isdisjoint({r.path for r in va})
    assert {r.track for r in tr}.isdisjoint({r.track for r in va})  # 12 = 4 whole tracks
    assert [r.path for r in records(gtsrb, "val")] == [r.path for r in va]
    assert len(records(gtsrb, "val", val_size=30)) == 30


def test_split_by_track_official_sizes():
    # 39209 = 1306 tracks of 30 + one of 29 (sizes as on the official set).
    tracks = [(c, t) for c, t in ((k // 31, k % 31) for k in range(1307)) for _ in range(30)]
    tracks = tracks[:-1]
    assert len(tracks) == OFFICIAL_SIZES["train_all"]
    is_val = split_by_track(tracks, 3900)
    assert sum(is_val) == OFFICIAL_SIZES["val"]
    assert len(tracks) - sum(is_val) == OFFICIAL_SIZES["train"]
    by_track: dict = {}
    for t, v in zip(tracks, is_val):
        by_track.setdefault(t, set()).add(v)
    assert sum(len(s) == 2 for s in by_track.values()) <= 1  # at most one straddles
    # independent of the order of the files
    perm = list(range(len(tracks)))
    random.Random(0).shuffle(perm)
    again = split_by_track([tracks[i] for i in perm], 3900)
    assert {tracks[i] for i, v in zip(perm, again) if v} == {t for t, v in zip(tracks, is_val)
                                                               if v}


def test_split_by_track_fills_with_one_track():
    tracks = [(0, t) for t in range(5) for _ in range(4)]
    is_val = split_by_track(tracks, 6)  # 6 = one whole track of 4 + 2 of another
    assert sum(is_val) == 6
    straddling = {t for t in set(tracks)
                  if len({v for tt, v in zip(tracks, is_val) if tt == t}) == 2}
    assert len(straddling) == 1
    with pytest.raises(ValueError, match="split_by_track: expected n_val"):
        split_by_track(tracks, 21)


def test_load_roi_crops(gtsrb):
    x, y = load_gtsrb(gtsrb, "train_all")
    assert x.shape == (120, 3, 50, 50) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert y.tolist() == [c for c in range(4) for _ in range(30)]
    colours = torch.tensor([roi_colour(c, k) for k, c in enumerate(y.tolist())]) / 255.0
    err = (x - colours[:, :, None, None]).abs().amax()
    assert float(err) <= ONE_LEVEL
    border = torch.tensor(BORDER) / 255.0
    assert float((x - border[None, :, None, None]).abs().amax(dim=(1, 2, 3)).min()) > 0.2


def test_load_test_split(gtsrb, tmp_path):
    x, y = load_gtsrb(gtsrb, "test")
    assert x.shape == (7, 3, 50, 50) and y.tolist() == [(3 * j) % 4 for j in range(7)]
    colours = torch.tensor([roi_colour(c, 1000 + j) for j, c in enumerate(y.tolist())]) / 255.0
    assert float((x - colours[:, :, None, None]).abs().amax()) <= ONE_LEVEL
    # GT-final_test.csv where GTSRB_Final_Test_GT.zip unpacks it, next to GTSRB/
    write_gtsrb(tmp_path, classes=2, tracks=2, test_csv_at="outside")
    assert load_gtsrb(tmp_path, "test")[1].tolist() == [(3 * j) % 2 for j in range(7)]
    assert load_gtsrb(tmp_path, "train", limit=2)[0].shape == (2, 3, 50, 50)


def _layout_error(root, split="train_all", match="", load=False):
    with pytest.raises(DatasetLayoutError, match=match) as e:
        (load_gtsrb if load else records)(root, split)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("gtsrb: ") and msg.endswith(LAYOUT)
    return msg


def _class_csv(base: Path, c: int = 1) -> Path:
    return base / "Final_Training" / "Images" / f"{c:05d}" / f"GT-{c:05d}.csv"


def _edit_row(csv: Path, row: int, new: str) -> None:
    lines = csv.read_text().splitlines()
    lines[row] = new
    csv.write_text("\n".join(lines) + "\n")


def test_wrong_directory(tmp_path):
    msgs = [_layout_error(tmp_path, match="expected a GTSRB/ folder")]
    (tmp_path / "GTSRB" / "Final_Training").mkdir(parents=True)
    msgs.append(_layout_error(tmp_path, match="expected the training images folder"))
    (tmp_path / "GTSRB" / "Final_Training" / "Images").mkdir()
    msgs.append(_layout_error(tmp_path, match="expected class folders"))
    assert len(set(msgs)) == 3 and all(m.endswith(LAYOUT) for m in msgs)


@pytest.mark.parametrize("case,match", [
    ("no_csv", "expected the annotations of class 1"),
    ("header", "expected .* to start with the header"),
    ("fields", "line 3: expected 8 ';'-separated fields, got 7"),
    ("integer", "line 3: expected integers"),
    ("roi", r"line 3: expected 0 <= Roi.X1 < Roi.X2 <= Width"),
    ("class", "line 3: expected ClassId 1"),
    ("missing_image", "line 3: expected the image .*00000_00001.ppm, which is missing"),
    ("name", "line 3: expected a file name <track:05d>_<index:05d>.ppm"),
])
def test_malformed_training_csv(tmp_path, case, match):
    base = write_gtsrb(tmp_path, classes=2, tracks=2)
    csv = _class_csv(base)
    row = csv.read_text().splitlines()[2]  # 00000_00001.ppm;...;1
    f = row.split(";")
    if case == "no_csv":
        csv.unlink()
    elif case == "header":
        _edit_row(csv, 0, HEADER.replace(";", ","))
    elif case == "fields":
        _edit_row(csv, 2, ";".join(f[:-1]))
    elif case == "integer":
        _edit_row(csv, 2, ";".join(f[:3] + ["x"] + f[4:]))
    elif case == "roi":
        _edit_row(csv, 2, ";".join(f[:5] + [str(int(f[1]) + 1)] + f[6:]))
    elif case == "class":
        _edit_row(csv, 2, ";".join(f[:-1] + ["0"]))
    elif case == "missing_image":
        (csv.parent / f[0]).unlink()
    elif case == "name":
        (csv.parent / f[0]).rename(csv.parent / "sign.ppm")
        _edit_row(csv, 2, ";".join(["sign.ppm"] + f[1:]))
    msg = _layout_error(tmp_path, match=match)
    assert "00001" in msg  # names the class whose annotations are broken


def test_malformed_test_annotations(tmp_path):
    base = write_gtsrb(tmp_path, classes=2, tracks=2, test_csv_at="none")
    msg = _layout_error(tmp_path, "test", match="expected the test annotations GT-final_test.csv")
    assert "GTSRB_Final_Test_GT.zip" not in msg
    (base / "Final_Test" / "Images" / "GT-final_test.test.csv").write_text(HEADER[:-8] + "\n")
    _layout_error(tmp_path, "test", match="has no ClassId; GT-final_test.csv is in "
                                          "GTSRB_Final_Test_GT.zip")
    with pytest.raises(DatasetLayoutError, match="expected the test annotations"):
        info(tmp_path)


def test_image_disagreeing_with_its_csv(tmp_path):
    base = write_gtsrb(tmp_path, classes=2, tracks=2)
    img = base / "Final_Training" / "Images" / "00000" / "00000_00000.ppm"
    from PIL import Image
    Image.new("RGB", (7, 9)).save(img, format="PPM")
    msg = _layout_error(tmp_path, load=True, match=r"00000_00000.ppm to be 20x22 as its CSV "
                                                   r"says, got 7x9")
    assert "7x9" in msg
    img.write_bytes(b"P6 not an image")
    msg = _layout_error(tmp_path, load=True, match="cannot decode .*00000_00000.ppm as a PPM "
                                                   "image")
    assert "00000_00000.ppm" in msg


def test_bad_arguments(gtsrb):
    with pytest.raises(ValueError, match="records: expected split"):
        records(gtsrb, "validation")
    with pytest.raises(ValueError, match="records: expected val_size"):
        records(gtsrb, "val", val_size=121)
    with pytest.raises(ValueError, match="load_gtsrb: expected size"):
        load_gtsrb(gtsrb, "test", size=0)
    with pytest.raises(ValueError, match="load_gtsrb: expected limit"):
        load_gtsrb(gtsrb, "test", limit=-1)


def test_standardize():
    g = torch.Generator().manual_seed(0)
    x = 3 + 2 * torch.rand(4, 3, 5, 5, generator=g, dtype=torch.float64)
    x[1] = 0.7  # a constant image
    z = standardize(x)
    for i in (0, 2, 3):
        assert abs(float(z[i].mean())) < 1e-12  # a priori: float64 rounding
        assert abs(float(z[i].std(unbiased=False)) - 1) < 1e-12
    assert torch.equal(z[1], torch.zeros_like(z[1]))
    torch.testing.assert_close(z[0], (x[0] - x[0].mean()) / x[0].std(unbiased=False))
    with pytest.raises(ValueError, match="standardize: expected images float"):
        standardize(torch.zeros(3, 5, 5))
