"""Write a small GTSRB in exactly the official layout (for the reader's and the CLI's tests).

Each image is a ``Width x Height`` RGB PPM whose ROI ``[X1, X2) x [Y1, Y2)`` is filled with
one colour (:func:`roi_colour`) and whose border is :data:`BORDER`, so a ROI read off by
one pixel shows the border colour in the crop.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

HEADER = "Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId"
BORDER = (255, 0, 255)


def roi_colour(label: int, k: int) -> tuple[int, int, int]:
    """The ROI colour of the ``k``-th image of class ``label`` (never :data:`BORDER`)."""
    return (20 + 50 * (label % 5), 30 + 7 * (k % 20), 90 + 40 * (label // 5 % 4))


def _ppm(path: Path, w: int, h: int, roi, colour) -> None:
    from PIL import Image

    a = np.empty((h, w, 3), dtype=np.uint8)
    a[:] = BORDER
    x1, y1, x2, y2 = roi
    a[y1:y2, x1:x2] = colour
    Image.fromarray(a).save(path, format="PPM")


def _geometry(k: int) -> tuple[int, int, tuple[int, int, int, int]]:
    w, h = 20 + k % 7, 22 + k % 5
    x1, y1 = 3 + k % 3, 4 + k % 2
    return w, h, (x1, y1, w - 5, h - 5)


def write_gtsrb(root: Path, *, classes: int = 4, tracks: int = 10, per_track: int = 3,
                n_test: int = 7, test_csv_at: str = "images") -> Path:
    """Write ``root/GTSRB`` with ``classes x tracks x per_track`` training images.

    ``test_csv_at``: ``"images"`` (``Final_Test/Images/``), ``"outside"`` (next to
    ``GTSRB/``, as ``GTSRB_Final_Test_GT.zip`` unpacks it) or ``"none"``.

    Returns:
        the ``GTSRB`` folder.
    """
    base = Path(root) / "GTSRB"
    k = 0
    for c in range(classes):
        d = base / "Final_Training" / "Images" / f"{c:05d}"
        d.mkdir(parents=True)
        rows = [HEADER]
        for t in range(tracks):
            for i in range(per_track):
                w, h, roi = _geometry(k)
                name = f"{t:05d}_{i:05d}.ppm"
                _ppm(d / name, w, h, roi, roi_colour(c, k))
                rows.append(f"{name};{w};{h};{roi[0]};{roi[1]};{roi[2]};{roi[3]};{c}")
                k += 1
        (d / f"GT-{c:05d}.csv").write_text("\n".join(rows) + "\n")
    timg = base / "Final_Test" / "Images"
    timg.mkdir(parents=True)
    rows = [HEADER]
    for j in range(n_test):
        w, h, roi = _geometry(j + 3)
        c = (3 * j) % classes
        name = f"{j:05d}.ppm"
        _ppm(timg / name, w, h, roi, roi_colour(c, 1000 + j))
        rows.append(f"{name};{w};{h};{roi[0]};{roi[1]};{roi[2]};{roi[3]};{c}")
    where = {"images": timg, "outside": Path(root), "none": None}[test_csv_at]
    if where is not None:
        (where / "GT-final_test.csv").write_text("\n".join(rows) + "\n")
    return base
