"""Fashion-MNIST (Xiao, Rasul, Vollgraf 2017): fetch from Debian's package, hash-check, cache.

Source (DESIGN.md, "Data we can really have"): Debian's ``dataset-fashion-mnist``
(``0.0~git20200523.55506a9-1``, Expat licence) ships Zalando's four IDX files, gzipped,
under ``/usr/share/datasets/fashion-mnist/``. Debian's ``.gz`` files differ from
Zalando's published md5s only because Debian strips the gzip name field, so what is
pinned is the sha256 of each **decompressed** IDX file (:data:`IDX_SHA256`): every byte
of the data is checked, whichever compressor wrapped it.

:func:`fetch_fashion`:

1. finds the files -- ``idx_dir`` if given (the four IDX files, raw or ``.gz``, e.g.
   from Zalando's site), else the installed package's directory, else ``apt-get
   download dataset-fashion-mnist`` + ``dpkg -x`` into a temporary directory (apt checks
   the ``.deb`` against Debian's signed index; no root needed to download);
2. decompresses each file and checks its sha256 **before** it is parsed; a mismatch
   raises :class:`DataError` and nothing is cached;
3. parses them (:mod:`models.data.idx`), splits the 60k training images in order into
   train (first 50 000) and val (last 10 000) as MNIST's cache does, and writes
   ``fashion-mnist.npz`` + ``fashion-mnist.json`` atomically (the json last: it marks the
   cache complete) beside ``mnist.npz`` in the same cache directory.

A cache is trusted only after :func:`verify_fashion` (the npz's sha256 against the one
recorded at conversion). Where apt is not available and no ``idx_dir`` is given, the
error is one line naming both ways to get the files.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
import subprocess
import tempfile
import zlib
from pathlib import Path

import torch

from .idx import MNIST_IDX_FILES, read_mnist_idx_dir
from .mnist import (DataError, Progress, _check_writable, _resolve, _say, _sha256_file,
                    check_fetch_dirs, read_split, write_cache)

__all__ = ["NAME", "CLASSES", "IDX_SHA256", "DEB_PACKAGE", "fetch_fashion", "verify_fashion",
           "fashion_info", "load_fashion", "is_cached", "FETCH_HINT"]

NAME = "fashion-mnist"
NPZ_NAME = "fashion-mnist.npz"
META_NAME = "fashion-mnist.json"
FORMAT_VERSION = 1
DEB_PACKAGE = "dataset-fashion-mnist"
DEB_DIR = "usr/share/datasets/fashion-mnist"
#: sha256 of the decompressed IDX files (Debian 0.0~git20200523.55506a9-1 = Zalando's).
IDX_SHA256 = {
    "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}
CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
           "Sneaker", "Bag", "Ankle boot")
SPLITS = ("train", "val", "test", "train60k")
FETCH_HINT = "run `stnlab data fetch fashion-mnist`"
REPAIR_HINT = "run `stnlab data fetch fashion-mnist --force` to rebuild it"


def is_cached(cache_dir=None) -> bool:
    d = _resolve(cache_dir)
    return (d / NPZ_NAME).is_file() and (d / META_NAME).is_file()


def _installed_dir() -> Path | None:
    d = Path("/") / DEB_DIR
    return d if all((d / f"{stem}.gz").is_file() or (d / stem).is_file()
                    for stem in IDX_SHA256) else None


def _from_apt(tmp: Path, progress: Progress) -> tuple[Path, dict]:
    """Download the Debian package into ``tmp`` and unpack it; ``(idx dir, source)``."""
    fn = "fetch_fashion"
    for tool in ("apt-get", "dpkg-deb"):
        if shutil.which(tool) is None:
            raise DataError(f"{fn}: {tool} is not available here, so Debian's {DEB_PACKAGE} "
                            f"cannot be fetched; give the four Fashion-MNIST IDX files with "
                            f"`stnlab data fetch fashion-mnist --from-idx DIR`")
    _say(progress, f"apt-get download {DEB_PACKAGE} ...")
    try:
        out = subprocess.run(["apt-get", "download", DEB_PACKAGE], cwd=tmp, capture_output=True,
                             text=True, timeout=600)
    except subprocess.TimeoutExpired:
        raise DataError(f"{fn}: apt-get download {DEB_PACKAGE} did not finish in 600 s; give "
                        f"the IDX files with --from-idx DIR") from None
    debs = sorted(tmp.glob(f"{DEB_PACKAGE}_*.deb"))
    if out.returncode != 0 or not debs:
        last = (out.stderr.strip().splitlines() or ["no output"])[-1]
        raise DataError(f"{fn}: apt-get download {DEB_PACKAGE} failed ({last}); run "
                        f"`apt-get update` first, or give the IDX files with --from-idx DIR")
    deb = debs[-1]
    x = tmp / "x"
    subprocess.run(["dpkg-deb", "-x", str(deb), str(x)], check=True, capture_output=True)
    return x / DEB_DIR, {"kind": "debian-package", "package": deb.name,
                         "deb_sha256": _sha256_file(deb)}


def _checked_raw(src: Path, dst: Path, progress: Progress) -> dict:
    """Decompress each IDX file of ``src`` into ``dst``, checking its pinned sha256 first."""
    fn = "fetch_fashion"
    hashes = {}
    for stem, want in IDX_SHA256.items():
        gz, raw = src / f"{stem}.gz", src / stem
        path = gz if gz.is_file() else raw
        if not path.is_file():
            raise FileNotFoundError(f"{fn}: {src}: expected {stem} or {stem}.gz")
        try:
            data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else \
                path.read_bytes()
        except (OSError, EOFError, zlib.error) as e:
            raise DataError(f"{fn}: {path} is not a readable gzip file ({e})") from None
        got = hashlib.sha256(data).hexdigest()
        if got != want:
            raise DataError(f"{fn}: sha256 mismatch for {path.name} (decompressed): expected "
                            f"{want[:16]}..., got {got[:16]}...; nothing was cached")
        (dst / stem).write_bytes(data)
        hashes[stem] = got
    _say(progress, "sha256 of the four decompressed IDX files ok")
    return hashes


def fetch_fashion(cache_dir=None, *, force: bool = False, idx_dir=None,
                  progress: Progress = None) -> Path:
    """Make sure Fashion-MNIST is cached (see the module docstring); the npz's path.

    Raises:
        DataError: a hash mismatch (nothing cached), apt unavailable or failing without
            ``idx_dir``, an unwritable cache (checked first), or a damaged cache.
        FileNotFoundError, NotADirectoryError: a bad ``idx_dir``.
    """
    fn = "fetch_fashion"
    d = _resolve(cache_dir)
    check_fetch_dirs(d, idx_dir, fn)
    if is_cached(d) and not force:
        verify_fashion(d, fn=fn)
        _say(progress, f"fashion-mnist is already cached in {d} (nothing read)")
        return d / NPZ_NAME
    _check_writable(d, fn)
    with tempfile.TemporaryDirectory(prefix="stnlab-fashion-") as tmp:
        tmp = Path(tmp)
        if idx_dir is not None:
            src, source = Path(idx_dir).expanduser(), {"kind": "idx",
                                                        "directory": str(Path(idx_dir).resolve())}
        elif (inst := _installed_dir()) is not None:
            src, source = inst, {"kind": "debian-installed", "directory": str(inst)}
        else:
            src, source = _from_apt(tmp, progress)
        raw = tmp / "raw"
        raw.mkdir()
        source["idx_sha256"] = _checked_raw(src, raw, progress)
        parsed = read_mnist_idx_dir(raw)
    k = len(parsed["train_images"]) - 10000
    arrays = {"train_images": parsed["train_images"][:k],
              "train_labels": parsed["train_labels"][:k],
              "val_images": parsed["train_images"][k:], "val_labels": parsed["train_labels"][k:],
              "test_images": parsed["test_images"], "test_labels": parsed["test_labels"]}
    return write_cache(d, NPZ_NAME, META_NAME, arrays, {
        "dataset": NAME, "format": FORMAT_VERSION, "source": source}, progress,
        classes=list(CLASSES),
        split="train = first 50000, val = last 10000 of the 60k training file")


def verify_fashion(cache_dir=None, *, fn: str = "verify_fashion") -> dict:
    """The cache record (``fashion-mnist.json`` + ``"path"``) after checking the npz's
    sha256 against it.

    Raises:
        FileNotFoundError: not cached (the message says how to fetch it).
        DataError: the record or the npz is damaged (the message names the repair).
    """
    d = _resolve(cache_dir)
    npz = d / NPZ_NAME
    if not is_cached(d):
        raise FileNotFoundError(f"{fn}: Fashion-MNIST is not cached in {d}; {FETCH_HINT}")
    try:
        meta = json.loads((d / META_NAME).read_text())
        want = meta["npz_sha256"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise DataError(f"{fn}: {d / META_NAME} is unreadable ({e}); {REPAIR_HINT}") from None
    try:
        got = _sha256_file(npz)
    except OSError as e:
        raise DataError(f"{fn}: {npz} is unreadable ({e}); {REPAIR_HINT}") from None
    if got != want:
        raise DataError(f"{fn}: {npz} is damaged (sha256 {got[:16]}..., recorded "
                        f"{str(want)[:16]}...); {REPAIR_HINT}")
    meta["path"] = str(npz)
    return meta


def fashion_info(cache_dir=None) -> dict | None:
    """The verified cache record, or None when nothing is cached."""
    d = _resolve(cache_dir)
    return verify_fashion(d, fn="fashion_info") if is_cached(d) else None


def load_fashion(split: str, cache_dir=None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(images (N, 28, 28) uint8, labels (N,) int64)`` of one split (``train``, ``val``,
    ``test`` or ``train60k``) of the verified cache.

    Raises:
        ValueError: unknown ``split``; FileNotFoundError / DataError as
        :func:`verify_fashion`.
    """
    fn = "load_fashion"
    if split not in SPLITS:
        raise ValueError(f"{fn}: expected split in {list(SPLITS)}, got {split!r}")
    d = _resolve(cache_dir)
    verify_fashion(d, fn=fn)
    return read_split(d / NPZ_NAME, split, fn=fn, repair=REPAIR_HINT)

assert set(IDX_SHA256) == {stem for stem, _ in MNIST_IDX_FILES.values()}
