"""The sampler-experiment drivers and ``stnlab experiment`` (smoke scale)."""

from __future__ import annotations

import json

import pytest

from proofs.cli import main
from proofs.experiments import samplers


def test_cli_runs_an_ablation_at_smoke_scale(tmp_path, capsys):
    rc = main(["experiment", "ablation-k", "--scale", "smoke", "--out", str(tmp_path),
               "--seed", "3"])
    assert rc == 0
    res = json.loads((tmp_path / "ablation-k.json").read_text())
    assert res["seed"] == 3 and res["scale"] == "smoke" and res["versions"]["torch"]
    assert [e["label"] for e in res["entries"]] == ["K = 4", "K = 8", "K = 16", "K = 32",
                                                    "bilinear"]
    assert all(0 <= e["auc"] <= 1 for e in res["entries"])
    assert (tmp_path / "ablation-k.png").stat().st_size > 0
    assert "ablation-k" in (tmp_path / "README.md").read_text()
    assert "[5/5]" in capsys.readouterr().err  # progress on stderr


def test_gradient_field_driver_summary_matches_fields(tmp_path):
    res = samplers.run_experiment("gradient-field", scale="smoke", out=tmp_path, quiet=True)
    for m in res["methods"]:
        for d in res["downsamples"]:
            f = res["fields"]["astronaut"][m][str(d)]
            assert res["summary"][m][str(d)]["basin_fraction_mean"] == f["basin_fraction"]
    assert (tmp_path / "gradient-field-basin.png").stat().st_size > 0


def test_cli_rejects_bad_arguments(capsys):
    assert main(["experiment"]) == 2
    assert "expected an experiment" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["experiment", "alignment", "--scale", "huge"])
    with pytest.raises(ValueError, match="experiment"):
        samplers.run_experiment("nope", scale="smoke")


def test_mnist_loader_says_how_to_fetch(monkeypatch, tmp_path):
    monkeypatch.setenv("STNLAB_DATA_DIR", str(tmp_path))  # an empty cache
    with pytest.raises(FileNotFoundError, match="stnlab data fetch mnist"):
        samplers.load_mnist_digits(4)
