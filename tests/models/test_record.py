"""``models.record``: the run / suite layout is written and read in one place."""

from __future__ import annotations

import json

import pytest

from models.record import RunRecord, SuiteRecord


def _run(root, v, n, scale="small", config=True):
    rec = RunRecord(SuiteRecord.run_dir(root, v, n),
                    {"variant": v, "net": n, "scale": scale, "error": {"mean": 0.1}})
    rec.save()
    if config:
        (rec.path / "config.json").write_text(json.dumps({"lr": 0.02}))
    return rec


def test_suite_record_orders_filters_and_round_trips(tmp_path):
    for v, n, sc in [("S", "CNN", "small"), ("R", "STN-C1", "small"), ("R", "CNN", "smoke")]:
        _run(tmp_path, v, n, sc)
    s = SuiteRecord.load(tmp_path, variants=("R", "T", "S"), nets=("CNN", "STN-C1"))
    assert list(s.runs) == ["R", "S"] and list(s.runs["R"]) == ["CNN", "STN-C1"]
    assert s.variants == ("R", "T", "S") and len(s) == 3
    assert s.get("R", "STN-C1").metrics["error"]["mean"] == 0.1
    assert s.get("R", "STN-C1").config == {"lr": 0.02}
    assert s.as_dicts()["S"]["CNN"]["config"] == {"lr": 0.02}
    no_smoke = SuiteRecord.load(tmp_path, exclude_scales=("smoke",))
    assert no_smoke.get("R", "CNN") is None and len(no_smoke) == 2
    assert SuiteRecord.is_suite(tmp_path) and not SuiteRecord.is_suite(tmp_path / "R")


def test_run_record_without_metrics_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="RunRecord.load: expected .*metrics.json"):
        RunRecord.load(tmp_path)
    assert RunRecord.load(_run(tmp_path, "R", "CNN").path).gallery() is None


def test_suite_index_round_trips(tmp_path):
    idx = SuiteRecord.load_index(tmp_path, "small")
    assert idx == {"scale": "small", "runs": {}}
    idx["runs"]["R"] = {"CNN": {"error": 1}}
    SuiteRecord.save_index(tmp_path, idx)
    assert SuiteRecord.load_index(tmp_path, "paper") == idx  # the file's scale wins
