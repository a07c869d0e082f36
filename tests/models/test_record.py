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


def _add_runs(args):
    import time

    from models.record import SuiteRecord

    suite_dir, variant, n, start = args
    while time.time() < start:  # both processes begin together: the writes interleave
        time.sleep(0.001)
    for i in range(n):
        SuiteRecord.update_index(suite_dir, "small", {variant: {f"net{i}": {"error": i}}},
                                 suite="mnist")


def test_update_index_keeps_every_process_entries(tmp_path):
    """Two processes adding runs to one suite.json at once (as (R) and (T) trained in the
    background into one directory) keep all of them; the old load-once-save-each-run lost
    the other process's entries."""
    import multiprocessing as mp

    from models.record import SuiteRecord

    import time

    ctx = mp.get_context("spawn")
    with ctx.Pool(2) as pool:
        start = time.time() + 2.0  # after both workers have started
        pool.map(_add_runs, [(tmp_path, "R", 150, start), (tmp_path, "T", 150, start)],
                 chunksize=1)
    index = SuiteRecord.load_index(tmp_path, "small")
    assert index["suite"] == "mnist" and index["scale"] == "small"
    assert {v: len(r) for v, r in index["runs"].items()} == {"R": 150, "T": 150}
    assert index["runs"]["T"]["net7"] == {"error": 7}
