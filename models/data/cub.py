"""CUB-200-2011 (Wah et al. 2011) in its official layout, as 004 Sec. IV-A uses it.

Reads the directory a user gives (the data set is not reachable from here). Either the
``CUB_200_2011/`` folder itself or its parent may be given. Files (all whitespace
separated, one record a line, ids 1-based):

* ``images.txt``: ``<image_id> <class_folder>/<file>.jpg``;
* ``image_class_labels.txt``: ``<image_id> <class_id>``;
* ``bounding_boxes.txt``: ``<image_id> <x> <y> <width> <height>`` (pixels, floats);
* ``train_test_split.txt``: ``<image_id> <is_training_image>`` (1 train, 0 test);
* ``classes.txt``: ``<class_id> <class_name>``;
* ``images/<class_folder>/<file>.jpg``.

The official release has 11,788 images (5,994 train, 5,794 test) of 200 classes.

Loading (:class:`CUBDataset`, :func:`load_cub`), as 004 Sec. IV-A: each image is resized to
``320 x 320`` (``F.interpolate``, bilinear with antialiasing; a resize, not a warp),
flipped horizontally with probability 1/2 when ``flip`` is on (training), and normalized
with the ImageNet mean ``(0.485, 0.456, 0.406)`` and std ``(0.229, 0.224, 0.225)``.

Convention:
    Labels are 0-based (``class_id - 1``). Boxes are ``(x0, y0, x1, y1)`` in pixel-edge
    coordinates of the *resized* image: ``(x, y, x + width, y + height)`` scaled by
    ``size / W`` and ``size / H``; a flip maps ``(x0, x1)`` to ``(size - x1, size - x0)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .layout import DatasetLayoutError, require

__all__ = ["LAYOUT", "NAME", "INPUT_SIZE", "IMAGENET_MEAN", "IMAGENET_STD", "CUBIndex",
           "read_index", "info", "CUBDataset", "load_cub", "imagenet_normalize", "hflip"]

NAME = "cub"
LAYOUT = ("CUB_200_2011/ with images.txt, image_class_labels.txt, bounding_boxes.txt, "
          "train_test_split.txt, classes.txt and images/<class>/<file>.jpg")
INPUT_SIZE = 320
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
FILES = ("images.txt", "image_class_labels.txt", "bounding_boxes.txt", "train_test_split.txt",
         "classes.txt")


def _err(msg: str) -> DatasetLayoutError:
    return DatasetLayoutError(f"{NAME}: {msg}; expected layout: {LAYOUT}")


def _base(root) -> Path:
    root = Path(root)
    if not root.is_dir():
        raise _err(f"expected a directory at {root}, found none")
    if (root / "CUB_200_2011").is_dir():
        root = root / "CUB_200_2011"
    for f in FILES:
        require(root / f, f, dataset=NAME, layout=LAYOUT)
    require(root / "images", "images/", dataset=NAME, layout=LAYOUT, is_dir=True)
    return root


def _records(path: Path, n_fields: int, kinds) -> dict[int, tuple]:
    """``{id: fields}`` of a whitespace-separated file; one malformed line raises one line.

    ``n_fields`` counts the id; the last field of ``classes.txt`` / ``images.txt`` is a
    path or name without spaces in the official release.
    """
    out: dict[int, tuple] = {}
    for ln, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != n_fields:
            raise _err(f"{path}: line {ln}: expected {n_fields} fields, got {len(parts)} "
                       f"({line.strip()!r})")
        try:
            key = int(parts[0])
            vals = tuple(k(v) for k, v in zip(kinds, parts[1:]))
        except ValueError:
            raise _err(f"{path}: line {ln}: expected fields of types "
                       f"(int, {', '.join(k.__name__ for k in kinds)}), got "
                       f"{line.strip()!r}") from None
        if key in out:
            raise _err(f"{path}: line {ln}: duplicate id {key}")
        out[key] = vals
    return out


@dataclass(frozen=True)
class CUBIndex:
    """The parsed metadata of one CUB directory (all arrays indexed by image, sorted by id).

    Attributes:
        root: the ``CUB_200_2011`` directory.
        ids: ``(N,)`` image ids.
        paths: relative image paths (under ``images/``).
        labels: ``(N,)`` 0-based class labels.
        boxes: ``(N, 4)`` ``(x0, y0, x1, y1)`` in original image pixels.
        is_train: ``(N,)`` bool.
        classes: class names in class-id order.
    """

    root: Path
    ids: np.ndarray
    paths: tuple[str, ...]
    labels: np.ndarray
    boxes: np.ndarray
    is_train: np.ndarray
    classes: tuple[str, ...]

    def split(self, split: str) -> np.ndarray:
        """Positions (into the arrays) of ``"train"``, ``"test"`` or ``"all"`` images."""
        if split == "train":
            return np.nonzero(self.is_train)[0]
        if split == "test":
            return np.nonzero(~self.is_train)[0]
        if split == "all":
            return np.arange(len(self.ids))
        raise ValueError(f"CUBIndex.split: expected split 'train', 'test' or 'all', got {split!r}")


def read_index(root, *, check_images: bool = True) -> CUBIndex:
    """Parse the five metadata files of CUB-200-2011 and check that they agree.

    Checks: every file parses; the four per-image files have the same id set; class ids
    are in ``classes.txt`` and ``classes.txt`` numbers its classes ``1..C``; boxes have
    positive width and height; the split flag is 0 or 1; each image sits in the folder of
    its class (``images/<class_name>/...``); with ``check_images``, each image file exists
    (a ``stat`` per image, no decoding).

    Raises:
        DatasetLayoutError: one line naming the file, the line or id, and the layout.
    """
    base = _base(root)
    images = _records(base / "images.txt", 2, (str,))
    labels = _records(base / "image_class_labels.txt", 2, (int,))
    boxes = _records(base / "bounding_boxes.txt", 5, (float, float, float, float))
    split = _records(base / "train_test_split.txt", 2, (int,))
    classes = _records(base / "classes.txt", 2, (str,))
    if sorted(classes) != list(range(1, len(classes) + 1)):
        raise _err(f"{base / 'classes.txt'}: expected class ids 1..{len(classes)}, got "
                   f"{sorted(classes)[:5]}...")
    ids = sorted(images)
    if not ids:
        raise _err(f"{base / 'images.txt'}: expected at least one image, found none")
    for name, rec in (("image_class_labels.txt", labels), ("bounding_boxes.txt", boxes),
                      ("train_test_split.txt", split)):
        if set(rec) != set(images):
            extra = sorted(set(rec) - set(images))[:3]
            missing = sorted(set(images) - set(rec))[:3]
            raise _err(f"{base / name}: expected the image ids of images.txt, got "
                       f"{len(rec)} ids (missing {missing}, extra {extra})")
    cls_names = tuple(classes[i][0] for i in range(1, len(classes) + 1))
    lab = np.empty(len(ids), dtype=np.int64)
    box = np.empty((len(ids), 4), dtype=np.float64)
    train = np.empty(len(ids), dtype=bool)
    paths = []
    for n, i in enumerate(ids):
        c = labels[i][0]
        if c not in classes:
            raise _err(f"{base / 'image_class_labels.txt'}: image {i}: expected a class id "
                       f"in 1..{len(classes)}, got {c}")
        x, y, w, h = boxes[i]
        if not (w > 0 and h > 0):
            raise _err(f"{base / 'bounding_boxes.txt'}: image {i}: expected width and height "
                       f"> 0, got {w} x {h}")
        if split[i][0] not in (0, 1):
            raise _err(f"{base / 'train_test_split.txt'}: image {i}: expected 0 or 1, got "
                       f"{split[i][0]}")
        rel = images[i][0]
        if rel.split("/")[0] != classes[c][0]:
            raise _err(f"{base / 'images.txt'}: image {i}: expected a path under "
                       f"{classes[c][0]}/ (its class), got {rel}")
        if check_images:
            require(base / "images" / rel, f"image {i}", dataset=NAME, layout=LAYOUT)
        lab[n], box[n], train[n] = c - 1, (x, y, x + w, y + h), bool(split[i][0])
        paths.append(rel)
    return CUBIndex(base, np.array(ids), tuple(paths), lab, box, train, cls_names)


def info(root) -> dict:
    """``{"dataset", "splits": {"train", "test"}, "classes", "root", "layout"}`` (no decoding)."""
    idx = read_index(root)
    return {"dataset": NAME, "splits": {"train": int(idx.is_train.sum()),
                                        "test": int((~idx.is_train).sum())},
            "classes": len(idx.classes), "root": str(idx.root), "layout": LAYOUT}


def imagenet_normalize(x: torch.Tensor) -> torch.Tensor:
    """``(x - mean) / std`` with the ImageNet statistics; ``x`` ``(..., 3, H, W)`` in ``[0, 1]``."""
    mean = torch.tensor(IMAGENET_MEAN, dtype=x.dtype, device=x.device)[:, None, None]
    std = torch.tensor(IMAGENET_STD, dtype=x.dtype, device=x.device)[:, None, None]
    return (x - mean) / std


def hflip(image: torch.Tensor, box: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Flip ``(..., C, H, W)`` images left-right and their ``(..., 4)`` boxes with them."""
    w = image.shape[-1]
    x0, y0, x1, y1 = box.unbind(-1)
    return image.flip(-1), torch.stack([w - x1, y0, w - x0, y1], -1)


def _decode(path: Path) -> torch.Tensor:
    from PIL import Image
    try:
        with Image.open(path) as im:
            a = np.asarray(im.convert("RGB"), dtype=np.uint8)
    except OSError as e:
        raise DatasetLayoutError(f"{NAME}: {path}: expected a readable JPEG image ({e}); "
                                 f"expected layout: {LAYOUT}") from None
    return torch.from_numpy(a.copy()).permute(2, 0, 1).float() / 255.0  # (3, H, W)


class CUBDataset:
    """One split of CUB as ``(image (3, size, size), label, box (4,))`` items.

    Args:
        root: the ``CUB_200_2011`` directory or its parent.
        split: ``"train"`` or ``"test"``.
        size: side of the resized square input (004: 320).
        flip: flip each item horizontally with probability 1/2 (004's training
            augmentation), drawing from ``generator``.
        normalize: apply :func:`imagenet_normalize`.
        generator: for the flips (seeded by the caller for reproducibility).
    """

    def __init__(self, root, split: str, *, size: int = INPUT_SIZE, flip: bool = False,
                 normalize: bool = True, generator: torch.Generator | None = None):
        if split not in ("train", "test"):
            raise ValueError(f"CUBDataset: expected split 'train' or 'test', got {split!r}")
        if not isinstance(size, int) or size < 1:
            raise ValueError(f"CUBDataset: expected size to be an int >= 1, got {size!r}")
        self.index = read_index(root)
        self.positions = self.index.split(split)
        self.size, self.flip, self.normalize = size, bool(flip), bool(normalize)
        self.generator = generator if generator is not None else torch.Generator()

    def __len__(self) -> int:
        return len(self.positions)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, torch.Tensor]:
        p = int(self.positions[i])
        img = _decode(self.index.root / "images" / self.index.paths[p])  # (3, H, W)
        h, w = img.shape[-2:]
        s = self.size
        img = F.interpolate(img[None], size=(s, s), mode="bilinear", align_corners=False,
                            antialias=True)[0].clamp(0, 1)  # antialiasing overshoots by ulps
        box = torch.tensor(self.index.boxes[p], dtype=torch.float32) * torch.tensor(
            [s / w, s / h, s / w, s / h])
        box = torch.minimum(box.clamp(min=0), torch.tensor(float(s)))
        if self.flip and bool(torch.rand((), generator=self.generator) < 0.5):
            img, box = hflip(img, box)
        if self.normalize:
            img = imagenet_normalize(img)
        return img, int(self.index.labels[p]), box


def load_cub(root, split: str, *, indices=None, size: int = INPUT_SIZE, flip: bool = False,
             normalize: bool = True, generator: torch.Generator | None = None
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Stack items of :class:`CUBDataset` (all, or the given ``indices`` of the split).

    Returns:
        ``(images (N, 3, size, size), labels (N,) int64, boxes (N, 4))``.
    """
    ds = CUBDataset(root, split, size=size, flip=flip, normalize=normalize,
                    generator=generator)
    sel = range(len(ds)) if indices is None else indices
    items = [ds[int(i)] for i in sel]
    if not items:
        return (torch.empty(0, 3, size, size), torch.empty(0, dtype=torch.int64),
                torch.empty(0, 4))
    imgs, labs, boxes = zip(*items)
    return torch.stack(imgs), torch.tensor(labs, dtype=torch.int64), torch.stack(boxes)
