"""Read (and write) the IDX files MNIST is distributed in.

An IDX file is a big-endian header followed by the raw array::

    bytes 0-1   0x00 0x00
    byte  2     type code (0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
                0x0D float32, 0x0E float64)
    byte  3     number of dimensions d
    4 * d       the sizes, each a big-endian uint32
    ...         prod(sizes) items, big-endian, C order

The four standard MNIST files are ``train-images-idx3-ubyte``,
``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte`` and
``t10k-labels-idx1-ubyte``, each possibly gzipped (``.gz``; detected from the
content, not the name). :func:`read_mnist_idx_dir` reads them from a directory
and checks that they fit together.

Every malformed file raises :class:`IdxError` (a ``ValueError``) whose one-line
message names the file and what is wrong with it.
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np

__all__ = ["IdxError", "read_idx", "write_idx", "read_mnist_idx_dir", "MNIST_IDX_FILES"]

#: type code -> numpy dtype (big-endian, as stored)
IDX_TYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODE_OF = {dt.newbyteorder("=").str: code for code, dt in IDX_TYPES.items()}

#: role -> (file stem, expected number of dimensions)
MNIST_IDX_FILES: dict[str, tuple[str, int]] = {
    "train_images": ("train-images-idx3-ubyte", 3),
    "train_labels": ("train-labels-idx1-ubyte", 1),
    "test_images": ("t10k-images-idx3-ubyte", 3),
    "test_labels": ("t10k-labels-idx1-ubyte", 1),
}

_GZIP_MAGIC = b"\x1f\x8b"


class IdxError(ValueError):
    """An IDX file is malformed (bad magic, bad dimensions, truncated, ...)."""


def _read_bytes(path: Path, fn: str) -> bytes:
    if not path.is_file():
        raise FileNotFoundError(f"{fn}: no such file: {path}")
    data = path.read_bytes()
    if data[:2] == _GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as e:
            raise IdxError(f"{fn}: {path}: corrupt or truncated gzip stream ({e})") from None
    return data


def read_idx(path: str | os.PathLike, *, ndim: int | None = None) -> np.ndarray:
    """Read one IDX file (raw or gzipped) into a native-endian numpy array.

    Args:
        path: the file.
        ndim: if given, the number of dimensions the file must have.

    Returns:
        The array, of the file's shape and type (e.g. ``(60000, 28, 28)`` uint8).

    Raises:
        FileNotFoundError: ``path`` is not a file.
        IdxError: bad magic number, unknown type code, wrong number of
            dimensions, a zero size, or a data length that disagrees with the
            header (truncated file or trailing bytes).

    Example:
        >>> import tempfile, numpy as np
        >>> p = Path(tempfile.mkdtemp()) / "x-idx1-ubyte"
        >>> write_idx(p, np.arange(3, dtype=np.uint8))
        >>> read_idx(p)
        array([0, 1, 2], dtype=uint8)
    """
    fn = "read_idx"
    path = Path(path)
    data = _read_bytes(path, fn)
    if len(data) < 4:
        raise IdxError(f"{fn}: {path}: truncated: {len(data)} bytes, shorter than the 4-byte magic")
    magic = int.from_bytes(data[:4], "big")
    code, d = data[2], data[3]
    if data[0] != 0 or data[1] != 0 or code not in IDX_TYPES or d == 0:
        want = "0x0000TTDD with type TT in {08, 09, 0B, 0C, 0D, 0E} and DD >= 1"
        if ndim == 1:
            want = "0x00000801 (labels)"
        elif ndim == 3:
            want = "0x00000803 (images)"
        raise IdxError(f"{fn}: {path}: bad magic number 0x{magic:08X}, expected {want}; "
                       f"not an IDX file")
    if ndim is not None and d != ndim:
        raise IdxError(f"{fn}: {path}: expected {ndim} dimension(s) (magic 0x{0x800 + ndim:08X}), "
                       f"got {d} (magic 0x{magic:08X})")
    header = 4 + 4 * d
    if len(data) < header:
        raise IdxError(f"{fn}: {path}: truncated: header needs {header} bytes, "
                       f"file has {len(data)}")
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(d))
    if any(s == 0 for s in shape):
        raise IdxError(f"{fn}: {path}: expected every dimension >= 1, got shape {shape}")
    dtype = IDX_TYPES[code]
    need = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    have = len(data) - header
    if have < need:
        raise IdxError(f"{fn}: {path}: truncated: header says shape {shape} ({need} bytes of "
                       f"data), file has {have}")
    if have > need:
        raise IdxError(f"{fn}: {path}: {have - need} trailing bytes after the {need} bytes of "
                       f"data that shape {shape} needs")
    arr = np.frombuffer(data, dtype=dtype, count=need // dtype.itemsize, offset=header)
    return arr.reshape(shape).astype(dtype.newbyteorder("="))


def write_idx(path: str | os.PathLike, array: np.ndarray, *, gz: bool = False) -> None:
    """Write ``array`` as an IDX file (gzipped if ``gz``). Used by tests and converters.

    Raises:
        ValueError: ``array`` has no dimensions or a dtype IDX cannot store.
    """
    fn = "write_idx"
    array = np.asarray(array)
    key = array.dtype.newbyteorder("=").str
    if array.ndim == 0 or array.ndim > 255:
        raise ValueError(f"{fn}: expected array with 1..255 dimensions, got {array.ndim}")
    if key not in _CODE_OF:
        raise ValueError(f"{fn}: expected array of dtype uint8, int8, int16, int32, float32 or "
                         f"float64, got {array.dtype}")
    code = _CODE_OF[key]
    head = bytes([0, 0, code, array.ndim]) + b"".join(int(s).to_bytes(4, "big")
                                                     for s in array.shape)
    body = np.ascontiguousarray(array, dtype=IDX_TYPES[code]).tobytes()
    data = head + body
    Path(path).write_bytes(gzip.compress(data, mtime=0) if gz else data)


def _find(directory: Path, stem: str, fn: str) -> Path:
    # Accept the canonical name, the common "train-images.idx3-ubyte" spelling, and .gz.
    alt = stem.replace("-idx", ".idx")
    for name in (stem, stem + ".gz", alt, alt + ".gz"):
        p = directory / name
        if p.is_file():
            return p
    raise FileNotFoundError(f"{fn}: no {stem} (or {stem}.gz) in {directory}")


def read_mnist_idx_dir(directory: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read the four standard MNIST IDX files from ``directory``.

    Args:
        directory: holds ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
            ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte`` (each optionally
            ``.gz``).

    Returns:
        ``{"train_images": (N, 28, 28) uint8, "train_labels": (N,) int64,
        "test_images": (M, 28, 28) uint8, "test_labels": (M,) int64}``.

    Raises:
        FileNotFoundError: ``directory`` or one of the files is missing.
        NotADirectoryError: ``directory`` is not a directory.
        IdxError: a file is malformed, images are not 28x28 uint8, labels are not
            uint8 in 0..9, or image and label counts disagree.
    """
    fn = "read_mnist_idx_dir"
    directory = Path(directory).expanduser()
    if not directory.exists():
        raise FileNotFoundError(f"{fn}: no such directory: {directory}")
    if not directory.is_dir():
        raise NotADirectoryError(f"{fn}: not a directory: {directory}")
    out: dict[str, np.ndarray] = {}
    for role, (stem, ndim) in MNIST_IDX_FILES.items():
        path = _find(directory, stem, fn)
        arr = read_idx(path, ndim=ndim)
        if arr.dtype != np.uint8:
            raise IdxError(f"{fn}: {path}: expected uint8 data (type 0x08), got {arr.dtype}")
        if ndim == 3 and arr.shape[1:] != (28, 28):
            raise IdxError(f"{fn}: {path}: expected images of shape (N, 28, 28), got {arr.shape}")
        if ndim == 1:
            if int(arr.max()) > 9:
                raise IdxError(f"{fn}: {path}: expected labels in 0..9, got max {int(arr.max())}")
            arr = arr.astype(np.int64)
        out[role] = arr
    for split in ("train", "test"):
        n_img, n_lab = len(out[f"{split}_images"]), len(out[f"{split}_labels"])
        if n_img != n_lab:
            raise IdxError(f"{fn}: {directory}: {split} has {n_img} images but {n_lab} labels")
    return out
