"""``models.suites``: the Suite protocol, the registry, ``--list-suites``, ``--data``."""

from __future__ import annotations

import json

import pytest

from models.suites import DataSource, Suite, discover, get_suite, suites
from proofs.cli import main


def test_mnist_is_a_suite_and_listed_one_line_each(capsys):
    s = get_suite("mnist")
    assert isinstance(s, Suite) and s.nets[0] == "CNN" and s.variants == ("R", "T", "S")
    assert main(["train", "--list-suites"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == len(suites()) and any(ln.startswith("mnist ") for ln in out)
    assert main(["train", "--list-suites", "--json"]) == 0
    names = [r["name"] for r in json.loads(capsys.readouterr().out)["suites"]]
    assert names == sorted(suites())


def test_unknown_suite_names_those_there_are():
    with pytest.raises(ValueError, match=r"expected --suite in \[.*'mnist'.*got 'nope'"):
        get_suite("nope")


def _package(tmp_path, monkeypatch, name, files):
    pkg = tmp_path / name
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    for f, text in files.items():
        (pkg / f).write_text(text)
    monkeypatch.syspath_prepend(str(tmp_path))
    return [str(pkg)], name


_OK = ("from models.suites.mnist import MnistSuite\n"
       "class S(MnistSuite):\n    name = {name!r}\nSUITE = S()\n")


def test_a_new_suite_is_one_module(tmp_path, monkeypatch):
    path, pkg = _package(tmp_path, monkeypatch, "suites_ok", {"extra.py": _OK.format(name="x")})
    assert list(discover(path, pkg)) == ["x"]


def test_a_broken_suite_module_is_an_error_not_a_missing_suite(tmp_path, monkeypatch):
    path, pkg = _package(tmp_path, monkeypatch, "suites_broken",
                         {"bad.py": "import no_such_module_here\n"})
    with pytest.raises(ImportError):
        discover(path, pkg)


def test_two_suites_under_one_name_is_an_error(tmp_path, monkeypatch):
    path, pkg = _package(tmp_path, monkeypatch, "suites_dup",
                         {"a.py": _OK.format(name="x"), "b.py": _OK.format(name="x")})
    with pytest.raises(ValueError, match="suite 'x' is defined twice"):
        discover(path, pkg)


def test_data_source_is_explicit(tmp_path):
    assert DataSource.parse(None).kind == "default"
    assert DataSource.parse("standin").kind == "standin"
    assert DataSource.parse(str(tmp_path)) == DataSource("official", tmp_path)
    with pytest.raises(NotADirectoryError, match="--data: expected a directory"):
        DataSource.parse(str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="DataSource: expected kind"):
        DataSource("guess")


@pytest.mark.parametrize("data, match", [("standin", "has no stand-in"),
                                         ("/no/such/dir", "--data: expected a directory")])
def test_train_data_errors_are_one_line_exit_2(tmp_path, capsys, data, match):
    code = main(["train", "--suite", "mnist", "--variant", "R", "--net", "CNN", "--scale",
                 "smoke", "--out", str(tmp_path), "--data", data, "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and match in err[0]


def test_mnist_reads_the_idx_files_of_data_dir(tmp_path, capsys):
    import numpy as np

    from models.data.idx import write_idx

    g = np.random.default_rng(0)
    for stem, n in (("train-images-idx3-ubyte", 64), ("t10k-images-idx3-ubyte", 16)):
        write_idx(tmp_path / stem, g.integers(0, 255, (n, 28, 28), dtype=np.uint8))
    for stem, n in (("train-labels-idx1-ubyte", 64), ("t10k-labels-idx1-ubyte", 16)):
        write_idx(tmp_path / stem, g.integers(0, 10, (n,), dtype=np.uint8))
    s = get_suite("mnist")
    cfg = s.preset("smoke", "R", "CNN")
    train, test = s.load_data("R", cfg, DataSource.parse(str(tmp_path)))
    assert train.images.shape[0] == 64 and test.images.shape[0] == 16
