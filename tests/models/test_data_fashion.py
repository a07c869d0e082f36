"""Fashion-MNIST (models/data/fashion.py): the pinned hashes of the decompressed IDX files
are checked before anything is parsed or cached; the cache verifies, loads and refuses
damage; without apt and without --from-idx, one line. The files here are small IDX files
the tests write (the real 30 MB package is fetched by `stnlab data fetch fashion-mnist`)."""

from __future__ import annotations

import gzip
import hashlib

import numpy as np
import pytest

from models.data import fashion
from models.data.mnist import DataError


def _write(d, n_train=10012, n_test=7, gz=True):
    from tests.models.test_data_idx import write_mnist_dir

    a = write_mnist_dir(d, n_train=n_train, n_test=n_test, gz=gz)
    pins = {}
    for stem in fashion.IDX_SHA256:
        p = d / (stem + (".gz" if gz else ""))
        raw = gzip.decompress(p.read_bytes()) if gz else p.read_bytes()
        pins[stem] = hashlib.sha256(raw).hexdigest()
    return a, pins


def test_pinned_files_are_cached_split_and_loaded(tmp_path, monkeypatch):
    a, pins = _write(tmp_path / "idx")
    monkeypatch.setattr(fashion, "IDX_SHA256", pins)
    fashion.fetch_fashion(tmp_path / "c", idx_dir=tmp_path / "idx")
    x, y = fashion.load_fashion("train", tmp_path / "c")
    xv, _ = fashion.load_fashion("val", tmp_path / "c")
    assert len(x) == 12 and len(xv) == 10000  # the last 10 000 training images are val
    np.testing.assert_array_equal(np.concatenate([x, xv]), a["train_images"])
    np.testing.assert_array_equal(fashion.load_fashion("test", tmp_path / "c")[1].numpy(),
                                  a["test_labels"])
    meta = fashion.fashion_info(tmp_path / "c")
    assert meta["source"]["idx_sha256"] == pins and meta["classes"][9] == "Ankle boot"


def test_a_file_that_is_not_the_pinned_one_is_refused_and_nothing_cached(tmp_path):
    _write(tmp_path / "idx", n_train=10002)  # real pins: these bytes cannot match
    with pytest.raises(DataError, match="sha256 mismatch for train-images-idx3-ubyte.gz"):
        fashion.fetch_fashion(tmp_path / "c", idx_dir=tmp_path / "idx")
    assert not fashion.is_cached(tmp_path / "c")


def test_a_damaged_cache_is_refused_naming_the_repair(tmp_path, monkeypatch):
    _, pins = _write(tmp_path / "idx", gz=False)
    monkeypatch.setattr(fashion, "IDX_SHA256", pins)
    npz = fashion.fetch_fashion(tmp_path / "c", idx_dir=tmp_path / "idx")
    data = bytearray(npz.read_bytes())
    data[100] ^= 0xFF
    npz.write_bytes(bytes(data))
    with pytest.raises(DataError, match="is damaged .*fetch fashion-mnist --force"):
        fashion.load_fashion("test", tmp_path / "c")
    with pytest.raises(FileNotFoundError, match="stnlab data fetch fashion-mnist"):
        fashion.load_fashion("test", tmp_path / "empty")


def test_without_apt_and_without_files_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr(fashion, "_installed_dir", lambda: None)
    monkeypatch.setattr(fashion.shutil, "which", lambda tool: None)
    with pytest.raises(DataError, match="--from-idx DIR") as e:
        fashion.fetch_fashion(tmp_path / "c")
    assert "\n" not in str(e.value) and not fashion.is_cached(tmp_path / "c")


def test_cli_refuses_unpinned_files_in_one_line(tmp_path):
    from tests.stnlab_proc import run_stnlab

    _write(tmp_path / "idx", n_train=10002)
    proc = run_stnlab(tmp_path, "data", "fetch", "fashion-mnist", "--from-idx", "idx")
    assert proc.returncode != 0
    err = [ln for ln in proc.stderr.splitlines() if "error" in ln]
    assert len(err) == 1 and "sha256 mismatch" in err[0] and "Traceback" not in proc.stderr
