"""IDX reader: round trips (raw and gzipped), the MNIST directory layout, and every bad file."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.data.idx import IdxError, read_idx, read_mnist_idx_dir, write_idx

DTYPES = [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64]


@given(seed=st.integers(0, 2**31 - 1),
       shape=st.lists(st.integers(1, 5), min_size=1, max_size=4),
       dtype=st.sampled_from(DTYPES), gz=st.booleans())
def test_round_trip(tmp_path_factory, seed, shape, dtype, gz):
    rng = np.random.default_rng(seed)
    a = (rng.normal(size=shape) * 100).astype(dtype)
    p = tmp_path_factory.mktemp("idx") / "a-idx"
    write_idx(p, a, gz=gz)
    b = read_idx(p)
    assert b.dtype == a.dtype and b.shape == a.shape
    np.testing.assert_array_equal(a, b)


def test_header_is_big_endian_standard_magic(tmp_path):
    # The bytes of a 2x3 uint8 image file, written by hand from the format description.
    p = tmp_path / "x"
    p.write_bytes(bytes([0, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3]) + bytes(range(6)))
    expected = np.arange(6, dtype=np.uint8).reshape(1, 2, 3)
    np.testing.assert_array_equal(read_idx(p, ndim=3), expected)
    q = tmp_path / "y"
    write_idx(q, np.arange(6, dtype=np.uint8).reshape(1, 2, 3))
    assert q.read_bytes() == p.read_bytes()
    # int32 data is big-endian on disk
    r = tmp_path / "z"
    write_idx(r, np.array([1, 256], dtype=np.int32))
    assert r.read_bytes()[8:] == b"\x00\x00\x00\x01\x00\x00\x01\x00"


def test_gzip_is_detected_from_content_not_name(tmp_path):
    a = np.arange(10, dtype=np.uint8)
    p = tmp_path / "labels-no-gz-suffix"
    write_idx(p, a, gz=True)
    assert p.read_bytes()[:2] == b"\x1f\x8b"
    np.testing.assert_array_equal(read_idx(p), a)


@pytest.mark.parametrize("head, match", [
    (bytes([1, 0, 8, 1]), "bad magic"),        # first byte not 0
    (bytes([0, 0, 7, 1]), "bad magic"),        # unknown type code
    (bytes([0, 0, 8, 0]), "bad magic"),        # zero dimensions
    (b"PK\x03\x04", "bad magic"),              # some other file
])
def test_bad_magic(tmp_path, head, match):
    p = tmp_path / "bad"
    p.write_bytes(head + bytes(16))
    with pytest.raises(IdxError, match=match):
        read_idx(p)


def test_bad_magic_message_names_expected_for_images(tmp_path):
    p = tmp_path / "bad"
    p.write_bytes(b"\x12\x34\x56\x78" + bytes(8))
    with pytest.raises(IdxError, match=r"0x12345678.*0x00000803"):
        read_idx(p, ndim=3)


def test_wrong_number_of_dimensions(tmp_path):
    p = tmp_path / "labels"
    write_idx(p, np.zeros(4, np.uint8))
    with pytest.raises(IdxError, match="expected 3 dimension"):
        read_idx(p, ndim=3)


@pytest.mark.parametrize("gz", [False, True])
def test_truncated_data(tmp_path, gz):
    p = tmp_path / "imgs"
    write_idx(p, np.zeros((3, 28, 28), np.uint8))
    data = p.read_bytes()[:-5]
    p.write_bytes(gzip.compress(data) if gz else data)
    with pytest.raises(IdxError, match="truncated"):
        read_idx(p)


def test_truncated_header_and_tiny_file(tmp_path):
    p = tmp_path / "h"
    p.write_bytes(bytes([0, 0, 8, 3, 0, 0, 0, 1]))  # says 3 dims, has 1
    with pytest.raises(IdxError, match="truncated"):
        read_idx(p)
    p.write_bytes(b"\x00\x00")
    with pytest.raises(IdxError, match="truncated"):
        read_idx(p)


def test_trailing_bytes_and_zero_size(tmp_path):
    p = tmp_path / "t"
    write_idx(p, np.zeros(3, np.uint8))
    p.write_bytes(p.read_bytes() + b"\x00")
    with pytest.raises(IdxError, match="trailing"):
        read_idx(p)
    p.write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 0]))
    with pytest.raises(IdxError, match="dimension >= 1"):
        read_idx(p)


def test_corrupt_gzip(tmp_path):
    p = tmp_path / "g"
    p.write_bytes(gzip.compress(bytes([0, 0, 8, 1, 0, 0, 0, 3, 1, 2, 3]))[:-6])
    with pytest.raises(IdxError, match="gzip"):
        read_idx(p)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        read_idx(tmp_path / "nope")


def test_write_rejects_unstorable(tmp_path):
    with pytest.raises(ValueError, match="dtype"):
        write_idx(tmp_path / "x", np.zeros(3, np.uint64))
    with pytest.raises(ValueError, match="dimensions"):
        write_idx(tmp_path / "x", np.uint8(3))


def write_mnist_dir(d, *, n_train=12, n_test=6, gz=False, seed=0, dot_names=False):
    """Write the four standard MNIST IDX files (tiny) into ``d``; return the arrays."""
    rng = np.random.default_rng(seed)
    arrays = {
        "train_images": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train_labels": rng.integers(0, 10, n_train).astype(np.uint8),
        "test_images": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "test_labels": rng.integers(0, 10, n_test).astype(np.uint8),
    }
    names = {"train_images": "train-images-idx3-ubyte", "train_labels": "train-labels-idx1-ubyte",
             "test_images": "t10k-images-idx3-ubyte", "test_labels": "t10k-labels-idx1-ubyte"}
    d.mkdir(parents=True, exist_ok=True)
    for k, name in names.items():
        if dot_names:
            name = name.replace("-idx", ".idx")
        write_idx(d / (name + (".gz" if gz else "")), arrays[k], gz=gz)
    return arrays


@pytest.mark.parametrize("gz, dot_names", [(False, False), (True, False), (True, True)])
def test_read_mnist_dir(tmp_path, gz, dot_names):
    a = write_mnist_dir(tmp_path, gz=gz, dot_names=dot_names)
    got = read_mnist_idx_dir(tmp_path)
    for k in a:
        np.testing.assert_array_equal(got[k], a[k])
    assert got["train_labels"].dtype == np.int64 and got["train_images"].dtype == np.uint8


def test_mnist_dir_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such directory"):
        read_mnist_idx_dir(tmp_path / "missing")
    f = tmp_path / "file"
    f.write_bytes(b"")
    with pytest.raises(NotADirectoryError, match="not a directory"):
        read_mnist_idx_dir(f)
    d = tmp_path / "d"
    write_mnist_dir(d)
    (d / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(FileNotFoundError, match="t10k-labels-idx1-ubyte"):
        read_mnist_idx_dir(d)


@pytest.mark.parametrize("role, bad, match", [
    ("train-images-idx3-ubyte", np.zeros((12, 27, 28), np.uint8), "28, 28"),
    ("train-images-idx3-ubyte", np.zeros((12, 28, 28), np.float32), "uint8"),
    ("train-labels-idx1-ubyte", np.full(12, 10, np.uint8), "0..9"),
    ("train-labels-idx1-ubyte", np.zeros(11, np.uint8), "12 images but 11 labels"),
    ("t10k-images-idx3-ubyte", np.zeros(6, np.uint8), "expected 3 dimension"),
])
def test_mnist_dir_bad_contents(tmp_path, role, bad, match):
    write_mnist_dir(tmp_path)
    write_idx(tmp_path / role, bad)
    with pytest.raises(IdxError, match=match):
        read_mnist_idx_dir(tmp_path)
