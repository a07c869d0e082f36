"""``stnlab data info NAME --from DIR``: dispatch through ``models.data.layout.READERS``."""

from __future__ import annotations

import json

import pytest

from models.data import layout
from proofs.cli import main

_READER = '''
from pathlib import Path
from models.data.layout import require
LAYOUT = "fake/train/*.png"
def info(root):
    require(Path(root) / "train", "the train/ directory", dataset="fake", layout=LAYOUT,
            is_dir=True)
    return {"dataset": "fake", "splits": {"train": len(list((Path(root) / "train").iterdir()))},
            "classes": 3}
'''


@pytest.fixture
def fake_reader(tmp_path, monkeypatch):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "fake_reader_mod.py").write_text(_READER)
    monkeypatch.syspath_prepend(str(pkg))
    monkeypatch.setitem(layout.READERS, "fake", "fake_reader_mod")
    root = tmp_path / "data"
    (root / "train").mkdir(parents=True)
    for i in range(4):
        (root / "train" / f"{i}.png").write_bytes(b"")
    return root


def test_info_reads_through_the_reader(fake_reader, capsys):
    assert main(["data", "info", "fake", "--from", str(fake_reader), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"dataset": "fake", "splits": {"train": 4},
                                                   "classes": 3}


def test_wrong_layout_is_one_line_and_exit_2(fake_reader, tmp_path, capsys):
    assert main(["data", "info", "fake", "--from", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "expected the train/ directory" in err[0] and "fake/train" in err[0]


def test_a_missing_reader_is_one_line_and_exit_2(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(layout.READERS, "ghost", "models.data.ghost_reader_not_built")
    assert main(["data", "info", "ghost", "--from", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no reader for ghost in this build" in err[0]
    assert main(["data", "info", "nosuchset", "--from", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "expected NAME in" in err[0]


def test_info_without_name_still_shows_the_cache(capsys):
    assert main(["data", "info", "--json"]) == 0
    assert "cache_dir" in json.loads(capsys.readouterr().out)
