"""``stnlab train`` and ``stnlab report`` from the command line."""

from __future__ import annotations

import json

import pytest

from models.mnist_nets import TABLE_VI_PARAMS
from proofs.cli import main


def test_list_params_json_matches_table_vi(capsys):
    assert main(["train", "--suite", "mnist", "--list-params", "--json"]) == 0
    counts = json.loads(capsys.readouterr().out)
    assert set(counts) == {"R", "T", "S"}
    for v, row in counts.items():
        assert list(row) == ["CNN", "STN-C0", "STN-C1", "STN-DL1", "STN-SL1"]
        for n, c in row.items():
            assert abs(c - TABLE_VI_PARAMS[v][n]) <= 20


def test_list_params_table(capsys):
    assert main(["train", "--list-params"]) == 0
    out = capsys.readouterr().out
    assert "| T | STN-C1 | 67108 | 67088 | +20 |" in out


@pytest.mark.parametrize("argv, match", [
    (["--variant", "Q"], "--variant"),
    (["--net", "STN-C7"], "--net"),
    (["--scale", "huge"], "--scale"),
    (["--suite", "svhn"], "--suite"),
    (["--lr", "-1"], "lr"),
    (["--seeds", "0"], "--seeds"),
])
def test_bad_arguments_exit_2_with_one_line(capsys, tmp_path, argv, match):
    code = main(["train", "--scale", "smoke", "--out", str(tmp_path)] + argv)
    err = capsys.readouterr().err
    assert code == 2
    assert match in err and err.count("\n") == 1


def test_train_without_out_is_an_error(capsys):
    assert main(["train", "--scale", "smoke"]) == 2
    assert "--out" in capsys.readouterr().err


def test_report_on_missing_dir_is_an_error(capsys, tmp_path):
    assert main(["report", str(tmp_path / "nope")]) == 2
    assert "not a directory" in capsys.readouterr().err


def test_json_path_convention_file_or_stdout(tmp_path, capsys):
    dest = tmp_path / "sub" / "params.json"
    assert main(["train", "--list-params", "--json", str(dest)]) == 0
    assert capsys.readouterr().out == ""
    assert json.loads(dest.read_text())["R"]["CNN"] == 54122
    assert main(["train", "--list-params", "--json", "-"]) == 0
    assert json.loads(capsys.readouterr().out)["R"]["CNN"] == 54122
