"""GTSRB read from its official layout: ROI crops at 50x50 and 003's train / validation split.

Layout (:data:`LAYOUT`): the unpacked ``GTSRB/`` folder of the official archives::

    GTSRB/Final_Training/Images/<class:05d>/<track:05d>_<index:05d>.ppm
    GTSRB/Final_Training/Images/<class:05d>/GT-<class:05d>.csv
    GTSRB/Final_Test/Images/<number:05d>.ppm
    GTSRB/Final_Test/Images/GT-final_test.csv

Every CSV is ``;``-separated with the header
``Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId``. ``GT-final_test.csv`` (with
``ClassId``) comes in ``GTSRB_Final_Test_GT.zip``, which unpacks it on its own; it is also
looked for in ``GTSRB/`` and next to ``GTSRB/`` (``GT-final_test.test.csv`` of the image
archive has no ``ClassId`` and is not enough). ``root`` may be the ``GTSRB/`` folder or the
folder that holds it.

Images (003 Sec. 6.2: "We crop and resize all images to 50x50"): each PPM is decoded with
Pillow, cropped to its ROI and resized to 50x50 with Pillow's bilinear filter (which widens
its support when it shrinks, i.e. anti-aliases; the ROIs are 15 to ~220 px). The ROI is the
half-open pixel box ``[X1, X2) x [Y1, Y2)`` (Pillow's crop box): the first official row,
``00000_00000.ppm;29;30;5;6;24;25;0``, then has 5-pixel borders left and right, as the
official readme's "at least 5 pixels" border requires (``X2`` inclusive would leave 4).

Split (003 Sec. 6.2: "randomly split the training set of GTSRB into two sets, 35309 images
for training and 3900 for validation"), by *track* so the ~30 images of one physical sign
never straddle the split: ``n_val = round(N * 3900 / 39209)`` (3900 on the official 39209),
tracks ``(class, track)`` are ordered by ``sha256("gtsrb-split:<class:05d>_<track:05d>")``
(deterministic, independent of file order, of the platform and of any RNG), and whole
tracks go to validation in that order while they fit; if the sizes cannot make ``n_val``
exactly, the first remaining track in that order gives its lowest-index images to fill it
(one track straddles; on the official set only if its one track that is not 30 images long
falls into validation). See :func:`split_by_track`.

Convention:
    Images are float32 ``(N, 3, 50, 50)`` RGB in ``[0, 1]``; labels int64 ``ClassId``.
    :func:`standardize` makes the networks' input (per image mean 0, std 1).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .layout import DatasetLayoutError, require

__all__ = ["LAYOUT", "NAME", "SPLITS", "IMAGE_SIZE", "OFFICIAL_SIZES", "Record", "records",
           "split_by_track", "load_gtsrb", "info", "standardize", "DatasetLayoutError"]

NAME = "gtsrb"
LAYOUT = ("GTSRB/Final_Training/Images/<class:05d>/*.ppm each with GT-<class:05d>.csv, and "
          "GTSRB/Final_Test/Images/*.ppm with GT-final_test.csv (CSV: "
          "Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId)")
#: ``train`` / ``val``: 003's split of the official training set; ``train_all``: all of it.
SPLITS = ("train", "val", "test", "train_all")
IMAGE_SIZE = 50
#: Official / 003 sizes (003 Sec. 6.2; the test set has 12630 images).
OFFICIAL_SIZES = {"train_all": 39209, "train": 35309, "val": 3900, "test": 12630}
HEADER = ("Filename", "Width", "Height", "Roi.X1", "Roi.Y1", "Roi.X2", "Roi.Y2", "ClassId")
_TRAIN_NAME = re.compile(r"^(\d{5})_(\d{5})\.ppm$")
_TEST_NAME = re.compile(r"^\d{5}\.ppm$")
_CLASS_DIR = re.compile(r"^\d{5}$")


def _error(what: str) -> DatasetLayoutError:
    return DatasetLayoutError(f"{NAME}: {what}; expected layout: {LAYOUT}")


@dataclass(frozen=True)
class Record:
    """One annotated image: its file, size, ROI ``(x1, y1, x2, y2)`` (half-open), label, track.

    ``track`` is ``(class, track)`` for training images, ``None`` for test images;
    ``index`` is the image's number within its track (test: its file number).
    """

    path: Path
    width: int
    height: int
    roi: tuple[int, int, int, int]
    label: int
    track: tuple[int, int] | None
    index: int


def _gtsrb_dir(root) -> Path:
    root = Path(root).expanduser()
    if (root / "GTSRB").is_dir():
        return root / "GTSRB"
    if (root / "Final_Training").is_dir() or (root / "Final_Test").is_dir():
        return root
    raise _error(f"expected a GTSRB/ folder (or Final_Training/ and Final_Test/) in {root}")


def _read_csv(path: Path, *, pattern: re.Pattern, folder_class: int | None,
              image_dir: Path) -> list[Record]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise _error(f"cannot read {path} ({type(e).__name__})") from None
    lines = [ln.rstrip("\r") for ln in text.split("\n")]
    lines = [ln for ln in lines if ln.strip()]
    if not lines or tuple(f.strip() for f in lines[0].split(";")) != HEADER:
        got = lines[0] if lines else "an empty file"
        raise _error(f"expected {path} to start with the header {';'.join(HEADER)}, got "
                     f"{got!r}")
    out = []
    for n, line in enumerate(lines[1:], start=2):
        fields = [f.strip() for f in line.split(";")]
        where = f"{path} line {n}"
        if len(fields) != len(HEADER):
            raise _error(f"{where}: expected {len(HEADER)} ';'-separated fields, got "
                         f"{len(fields)} ({line!r})")
        name = fields[0]
        try:
            w, h, x1, y1, x2, y2, label = (int(f) for f in fields[1:])
        except ValueError:
            raise _error(f"{where}: expected integers after the file name, got "
                         f"{line!r}") from None
        m = pattern.match(name)
        if m is None:
            form = ("<track:05d>_<index:05d>.ppm" if folder_class is not None
                    else "<number:05d>.ppm")
            raise _error(f"{where}: expected a file name {form}, got {name!r}")
        if not (0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h):
            raise _error(f"{where}: expected 0 <= Roi.X1 < Roi.X2 <= Width and 0 <= Roi.Y1 < "
                         f"Roi.Y2 <= Height, got ROI ({x1}, {y1}, {x2}, {y2}) in {w}x{h}")
        if folder_class is not None and label != folder_class:
            raise _error(f"{where}: expected ClassId {folder_class} (the folder's class), got "
                         f"{label}")
        if label < 0:
            raise _error(f"{where}: expected ClassId >= 0, got {label}")
        img = image_dir / name
        if not img.is_file():
            raise _error(f"{where}: expected the image {img}, which is missing")
        if folder_class is not None:
            track, index = (folder_class, int(m.group(1))), int(m.group(2))
        else:
            track, index = None, int(name[:5])
        out.append(Record(img, w, h, (x1, y1, x2, y2), label, track, index))
    return out


def _train_records(base: Path) -> list[Record]:
    images = require(base / "Final_Training" / "Images", "the training images folder",
                     dataset=NAME, layout=LAYOUT, is_dir=True)
    dirs = sorted(p for p in images.iterdir() if p.is_dir() and _CLASS_DIR.match(p.name))
    if not dirs:
        raise _error(f"expected class folders <class:05d>/ (00000 ... 00042) in {images}, "
                     f"found none")
    out: list[Record] = []
    for d in dirs:
        cls = int(d.name)
        csv = require(d / f"GT-{d.name}.csv", f"the annotations of class {cls}", dataset=NAME,
                      layout=LAYOUT)
        out += _read_csv(csv, pattern=_TRAIN_NAME, folder_class=cls, image_dir=d)
    if not out:
        raise _error(f"expected annotated images in {images}, found none")
    return out


def _test_records(base: Path) -> list[Record]:
    images = require(base / "Final_Test" / "Images", "the test images folder", dataset=NAME,
                     layout=LAYOUT, is_dir=True)
    candidates = [images / "GT-final_test.csv", base / "GT-final_test.csv",
                  base.parent / "GT-final_test.csv"]
    csv = next((c for c in candidates if c.is_file()), None)
    if csv is None:
        extra = (" (GT-final_test.test.csv has no ClassId; GT-final_test.csv is in "
                 "GTSRB_Final_Test_GT.zip)" if (images / "GT-final_test.test.csv").is_file()
                 else "")
        raise _error(f"expected the test annotations GT-final_test.csv at {candidates[0]}"
                     f"{extra}")
    # The CSV may sit apart from the images (GTSRB_Final_Test_GT.zip unpacks it alone).
    out = _read_csv(csv, pattern=_TEST_NAME, folder_class=None, image_dir=images)
    if not out:
        raise _error(f"expected annotated images in {csv}, found none")
    return out


def split_by_track(tracks: list[tuple[int, int]], n_val: int) -> list[bool]:
    """Which images go to validation: whole tracks in hash order, exactly ``n_val`` images.

    Args:
        tracks: the ``(class, track)`` of every image (any order).
        n_val: validation size, ``0 <= n_val <= len(tracks)``.

    Returns:
        ``is_val`` per image, with exactly ``n_val`` true. Tracks are taken whole in the
        order of ``sha256("gtsrb-split:<class:05d>_<track:05d>")`` while they fit; a
        shortfall is filled from the first track left in that order, lowest image position
        (in the given order) first, so at most one track straddles the split.
    """
    fn = "split_by_track"
    if isinstance(n_val, bool) or not isinstance(n_val, int) or not 0 <= n_val <= len(tracks):
        raise ValueError(f"{fn}: expected n_val an int in [0, {len(tracks)}], got {n_val!r}")
    members: dict[tuple[int, int], list[int]] = {}
    for i, t in enumerate(tracks):
        members.setdefault(tuple(t), []).append(i)

    def key(t):
        return hashlib.sha256(f"gtsrb-split:{t[0]:05d}_{t[1]:05d}".encode()).hexdigest()

    order = sorted(members, key=key)
    is_val = [False] * len(tracks)
    count, left = 0, []
    for t in order:
        if count + len(members[t]) <= n_val:
            for i in members[t]:
                is_val[i] = True
            count += len(members[t])
        else:
            left.append(t)
    if count < n_val:
        for i in members[left[0]][:n_val - count]:
            is_val[i] = True
    return is_val


def _val_size(n: int) -> int:
    return round(n * OFFICIAL_SIZES["val"] / OFFICIAL_SIZES["train_all"])


def records(root, split: str, *, val_size: int | None = None) -> list[Record]:
    """The annotated images of ``split``, read from the CSVs (no image is decoded).

    Args:
        root: the ``GTSRB/`` folder or the folder holding it.
        split: ``"train"``, ``"val"`` (003's split), ``"test"`` or ``"train_all"``.
        val_size: validation size; default ``round(N * 3900 / 39209)`` (3900 officially).

    Raises:
        ValueError: unknown ``split`` or a bad ``val_size``.
        DatasetLayoutError: anything not in the official layout (one line).
    """
    fn = "records"
    if split not in SPLITS:
        raise ValueError(f"{fn}: expected split to be one of {list(SPLITS)}, got {split!r}")
    base = _gtsrb_dir(root)
    if split == "test":
        return _test_records(base)
    recs = _train_records(base)
    if split == "train_all":
        return recs
    n_val = _val_size(len(recs)) if val_size is None else val_size
    if isinstance(n_val, bool) or not isinstance(n_val, int) or not 0 <= n_val <= len(recs):
        raise ValueError(f"{fn}: expected val_size an int in [0, {len(recs)}], got "
                         f"{val_size!r}")
    is_val = split_by_track([r.track for r in recs], n_val)
    return [r for r, v in zip(recs, is_val) if v == (split == "val")]


def _decode(rec: Record, size: int) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(rec.path) as im:
            im.load()
            if im.size != (rec.width, rec.height):
                raise _error(f"expected {rec.path} to be {rec.width}x{rec.height} as its CSV "
                             f"says, got {im.size[0]}x{im.size[1]}")
            crop = im.convert("RGB").crop(rec.roi)
            out = crop.resize((size, size), Image.Resampling.BILINEAR)
    except (OSError, UnidentifiedImageError, ValueError) as e:
        if isinstance(e, DatasetLayoutError):
            raise
        raise _error(f"cannot decode {rec.path} as a PPM image ({type(e).__name__})") from None
    return np.asarray(out, dtype=np.uint8)  # (size, size, 3)


def load_gtsrb(root, split: str, *, size: int = IMAGE_SIZE, limit: int | None = None,
               val_size: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Decode ``split``: ROI crops resized to ``size`` (003: 50).

    Args:
        root, split, val_size: as in :func:`records`.
        size: output side in pixels.
        limit: decode only the first ``limit`` records (CSV order), e.g. for a quick look.

    Returns:
        ``(images, labels)``: float32 ``(N, 3, size, size)`` in ``[0, 1]``, int64 ``(N,)``.

    Raises:
        DatasetLayoutError: wrong layout, an image that does not decode or whose size
            disagrees with its CSV row.
    """
    fn = "load_gtsrb"
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"{fn}: expected size an int >= 1, got {size!r}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)
                              or limit < 0):
        raise ValueError(f"{fn}: expected limit None or an int >= 0, got {limit!r}")
    recs = records(root, split, val_size=val_size)
    if limit is not None:
        recs = recs[:limit]
    x = np.empty((len(recs), size, size, 3), dtype=np.uint8)
    for i, r in enumerate(recs):
        x[i] = _decode(r, size)
    images = torch.from_numpy(x).permute(0, 3, 1, 2).float().div_(255.0)  # (N, 3, size, size)
    labels = torch.tensor([r.label for r in recs], dtype=torch.int64)
    return images.contiguous(), labels


def standardize(images: torch.Tensor) -> torch.Tensor:
    """Per-image standardization: ``(x - mean) / std`` over each image's ``C x H x W`` values.

    For the Table 1 networks' input (GTSRB, its stand-in and the MNIST control alike): the
    mean becomes 0, which is also what the STs' zero padding samples outside the image. A
    constant image (std 0) becomes zeros.

    Args:
        images: ``(N, C, H, W)`` floating point.

    Returns:
        ``(N, C, H, W)`` with mean 0 and (population) std 1 per image.
    """
    fn = "standardize"
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or \
            not images.is_floating_point():
        got = (f"{images.dtype} {tuple(images.shape)}" if isinstance(images, torch.Tensor)
               else type(images).__name__)
        raise ValueError(f"{fn}: expected images float (N, C, H, W), got {got}")
    mean = images.mean((1, 2, 3), keepdim=True)  # (N, 1, 1, 1)
    std = images.std((1, 2, 3), keepdim=True, unbiased=False)  # (N, 1, 1, 1)
    return torch.where(std > 0, (images - mean) / std.clamp_min(torch.finfo(images.dtype).tiny),
                       torch.zeros_like(images))


def info(root) -> dict:
    """Counts read from the CSVs (no image decoded; every image file's presence checked).

    Returns:
        ``{"dataset": "gtsrb", "root", "splits": {"train", "val", "test"}, "train_all",
        "classes", "tracks", "image_size", "layout"}``.

    Raises:
        DatasetLayoutError: ``root`` is not in the official layout (one line).
    """
    base = _gtsrb_dir(root)
    train_all = _train_records(base)
    test = _test_records(base)
    n_val = _val_size(len(train_all))
    return {
        "dataset": NAME,
        "root": str(base),
        "splits": {"train": len(train_all) - n_val, "val": n_val, "test": len(test)},
        "train_all": len(train_all),
        "classes": len({r.label for r in train_all}),
        "tracks": len({r.track for r in train_all}),
        "image_size": IMAGE_SIZE,
        "layout": LAYOUT,
    }
