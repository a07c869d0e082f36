"""EMP-1 (proofs/claims/empirical.py) on hand-made suites: verified, failed, not run."""

from __future__ import annotations

import json

import pytest

from proofs.registry import CheckContext, run_claims

STN = ("STN-C0", "STN-C1", "STN-DL1", "STN-SL1")


def _write(root, scale="small", **changes):
    """A suite whose numbers follow 000's predictions, with ``changes`` applied."""
    pose = {"R": {"STN-C0": 20.0, "STN-C1": 45.0, "STN-DL1": 25.0, "STN-SL1": 18.0},
            "S": {"STN-C0": 0.3, "STN-C1": 0.5, "STN-DL1": 0.29, "STN-SL1": 0.33},
            "T": {n: 1.1 for n in STN}}
    err = {v: {"CNN": 0.02, "STN-C0": 0.011, "STN-C1": 0.013, "STN-DL1": 0.010,
               "STN-SL1": 0.0098} for v in "RTS"}
    slope = {"STN-C0": 0.9, "STN-C1": 0.05, "STN-DL1": 0.8, "STN-SL1": 0.95}
    for key, value in changes.items():
        kind, v, n = key.split("__")
        n = n.replace("_", "-")
        {"pose": pose, "err": err, "slope": {"R": slope}}[kind][v][n] = value
    for v in "RTS":
        for n in ("CNN",) + STN:
            d = root / "mnist-small" / v / n
            d.mkdir(parents=True, exist_ok=True)
            rec = {"variant": v, "net": n, "scale": scale,
                   "error": {"mean": err[v][n], "per_seed": [err[v][n]], "std": 0.0}}
            if n != "CNN":
                rec["pose_std"] = {"mean": pose[v][n], "unit": "u"}
                if v == "R":
                    rec["fig6_slope"] = {"mean": slope[n]}
            (d / "metrics.json").write_text(json.dumps(rec))


def _emp1(root, tmp_path):
    ctx = CheckContext(out_dir=tmp_path / "out", results_dir=root)
    (res,) = [c for c in run_claims(ctx, only=["EMP-1"]) if c["id"] == "EMP-1"]
    return res["status"], {e["check"]: e for e in res["evidence"]}


def test_predicted_ordering_verifies(tmp_path):
    _write(tmp_path)
    status, ev = _emp1(tmp_path, tmp_path)
    assert status == "verified", ev
    assert set(ev) == {"rotation_pose_order", "scale_pose_order", "fig6_slopes", "error_order"}


@pytest.mark.parametrize("change, check", [
    ({"pose__R__STN_C1": 10.0}, "rotation_pose_order"),
    ({"pose__S__STN_C1": 0.2}, "scale_pose_order"),
    ({"slope__R__STN_C1": 0.7}, "fig6_slopes"),
    ({"slope__R__STN_SL1": 0.2}, "fig6_slopes"),
    ({"err__S__STN_DL1": 0.02}, "error_order"),
])
def test_each_violation_fails_with_numbers(tmp_path, change, check):
    _write(tmp_path, **change)
    status, ev = _emp1(tmp_path, tmp_path)
    assert status == "failed"
    assert ev[check]["status"] == "failed" and ev[check]["numbers"]
    assert all(e["status"] == "verified" for k, e in ev.items() if k != check)


def test_absent_or_smoke_results_are_not_run(tmp_path):
    status, ev = _emp1(tmp_path / "nothing", tmp_path)
    assert status == "not run" and "stnlab train" in ev["error_order"]["summary"]
    _write(tmp_path, scale="smoke")
    assert _emp1(tmp_path, tmp_path)[0] == "not run"


def test_emp2_to_4_are_registered_as_not_run(tmp_path):
    ctx = CheckContext(out_dir=tmp_path, results_dir=tmp_path)
    res = {c["id"]: c for c in run_claims(ctx, only=["EMP-2", "EMP-3", "EMP-4"])}
    for cid in ("EMP-2", "EMP-3", "EMP-4"):
        assert res[cid]["status"] == "not run"
        assert "no such runs" in res[cid]["evidence"][0]["summary"]
