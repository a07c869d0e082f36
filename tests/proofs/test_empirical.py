"""EMP-1 (proofs/claims/empirical.py) on hand-made suites: verified, failed, inconclusive,
not run; the EMP evidence rules (provenance, >= 3 seeds, a deciding scale)."""

from __future__ import annotations

import json

import pytest

from proofs.claims import empirical
from proofs.registry import CheckContext, load_all, run_claims

STN = ("STN-C0", "STN-C1", "STN-DL1", "STN-SL1")
SEEDS = (0, 1, 2)


def _write(root, scale="medium", seeds=SEEDS, suite="mnist-medium", jitter=0.02, variants="RTS",
           **changes):
    """A suite whose numbers follow 000's predictions in every seed, with ``changes``.

    ``changes``: ``kind__variant__net`` (``_`` for ``-`` in the net) -> a value for every
    seed, or a list with one value per seed.
    """
    pose = {"R": {"STN-C0": 20.0, "STN-C1": 45.0, "STN-DL1": 25.0, "STN-SL1": 18.0},
            "S": {"STN-C0": 0.3, "STN-C1": 0.5, "STN-DL1": 0.29, "STN-SL1": 0.33},
            "T": {n: 1.1 for n in STN}}
    err = {v: {"CNN": 0.02, "STN-C0": 0.011, "STN-C1": 0.013, "STN-DL1": 0.010,
               "STN-SL1": 0.0098} for v in "RTS"}
    slope = {"STN-C0": 0.9, "STN-C1": 0.05, "STN-DL1": 0.8, "STN-SL1": 0.95}
    tables = {"pose": pose, "err": err, "slope": {"R": slope}}
    for key, value in changes.items():
        kind, v, n = key.split("__")
        tables[kind][v][n.replace("_", "-")] = value

    def per_seed(x):  # a small seed-to-seed wobble that keeps every ordering
        return list(x) if isinstance(x, list) else [x * (1 + jitter * k) for k in range(
            len(seeds))]

    for v in variants:
        for n in ("CNN",) + STN:
            d = root / suite / v / n
            d.mkdir(parents=True, exist_ok=True)
            e = per_seed(err[v][n])
            rec = {"variant": v, "net": n, "scale": scale, "seeds": list(seeds),
                   "error": {"mean": sum(e) / len(e), "per_seed": e}}
            if n != "CNN":
                p = per_seed(pose[v][n])
                rec["pose_std"] = {"mean": sum(p) / len(p), "per_seed": p, "unit": "u"}
                if v == "R":
                    s = per_seed(slope[n])
                    rec["fig6_slope"] = {"mean": sum(s) / len(s), "per_seed": s}
            (d / "metrics.json").write_text(json.dumps(rec))
            (d / "env.json").write_text(json.dumps({"device": "cuda"}))


def _emp1(root, tmp_path):
    ctx = CheckContext(out_dir=tmp_path / "out", results_dir=root)
    (res,) = [c for c in run_claims(ctx, only=["EMP-1"]) if c["id"] == "EMP-1"]
    return res["status"], {e["check"]: e for e in res["evidence"]}


def test_predicted_ordering_on_three_medium_seeds_verifies(tmp_path):
    _write(tmp_path)
    status, ev = _emp1(tmp_path, tmp_path)
    assert status == "verified", ev
    assert set(ev) == {"rotation_pose_order", "scale_pose_order", "fig6_slopes", "error_order"}
    for e in ev.values():
        assert e["provenance"] == {"results": str(tmp_path / "mnist-medium"), "scale": "medium",
                                   "seeds": [0, 1, 2], "device": "cuda"}
    d = ev["rotation_pose_order"]["numbers"]["R: pose std STN-C1 - STN-C0 (u)"]
    assert d["lo"] > 0 and d["per_seed"] == pytest.approx({"0": 25.0, "1": 25.5, "2": 26.0})
    assert d["label"].count("[") == 1  # "estimate [lo, hi]"


@pytest.mark.parametrize("change, check", [
    ({"pose__R__STN_C1": 10.0}, "rotation_pose_order"),
    ({"pose__S__STN_C1": 0.2}, "scale_pose_order"),
    ({"slope__R__STN_C1": 0.7}, "fig6_slopes"),
    ({"slope__R__STN_SL1": 0.2}, "fig6_slopes"),
    ({"err__S__STN_DL1": 0.02}, "error_order"),
])
def test_each_decided_violation_fails_with_numbers(tmp_path, change, check):
    _write(tmp_path, **change)
    status, ev = _emp1(tmp_path, tmp_path)
    assert status == "failed"
    assert ev[check]["status"] == "failed" and ev[check]["numbers"] and ev[check]["failures"]
    assert all(e["status"] == "verified" for k, e in ev.items() if k != check)


def test_one_seed_or_small_scale_or_a_tie_is_inconclusive(tmp_path):
    _write(tmp_path / "a", scale="small", seeds=(0,), suite="mnist-small")
    status, ev = _emp1(tmp_path / "a", tmp_path)
    assert status == "inconclusive"
    assert "1 seed (an ordering needs >= 3)" in ev["error_order"]["summary"]
    assert ev["error_order"]["numbers"]["R: error STN-C1 - STN-C0"]["per_seed"] == \
        pytest.approx({"0": 0.002})
    _write(tmp_path / "b", scale="small", suite="mnist-small")  # 3 seeds, small
    status, ev = _emp1(tmp_path / "b", tmp_path)
    assert status == "inconclusive" and "scale small (needs medium or paper)" in \
        ev["error_order"]["summary"]
    # 3 medium seeds, but STN-C1's rotation std is below STN-C0's in one of them: a tie
    _write(tmp_path / "c", pose__R__STN_C1=[45.0, 44.0, 15.0])
    status, ev = _emp1(tmp_path / "c", tmp_path)
    assert status == "inconclusive" and ev["rotation_pose_order"]["status"] == "inconclusive"
    assert ev["scale_pose_order"]["status"] == "verified"


def test_the_largest_committed_scale_is_read(tmp_path):
    _write(tmp_path, scale="small", seeds=(0,), suite="mnist-small")
    _write(tmp_path)  # mnist-medium
    ctx = CheckContext(out_dir=tmp_path / "o", results_dir=tmp_path)
    assert empirical.suite_dir(ctx) == tmp_path / "mnist-medium"
    assert _emp1(tmp_path, tmp_path)[0] == "verified"


def test_each_variant_is_read_from_the_largest_suite_that_holds_it(tmp_path):
    """mnist-medium holds (R) and (T) only (S still training): (R) is decided on medium,
    (S) falls back to the one-seed small suite and is inconclusive, and error_order, which
    needs both, names both in its provenance."""
    _write(tmp_path, scale="small", seeds=(0,), suite="mnist-small")
    _write(tmp_path, variants="RT")
    status, ev = _emp1(tmp_path, tmp_path)
    medium, small = str(tmp_path / "mnist-medium"), str(tmp_path / "mnist-small")
    assert status == "inconclusive"
    assert ev["rotation_pose_order"]["status"] == ev["fig6_slopes"]["status"] == "verified"
    assert ev["rotation_pose_order"]["provenance"]["results"] == medium
    assert ev["scale_pose_order"]["status"] == "inconclusive"
    assert ev["scale_pose_order"]["provenance"] == {"results": small, "scale": "small",
                                                   "seeds": [0], "device": "cuda"}
    assert ev["error_order"]["status"] == "inconclusive"
    assert ev["error_order"]["provenance"] == {"results": f"{medium}+{small}",
                                               "scale": "medium+small", "seeds": [0],
                                               "device": "cuda"}
    nums = ev["error_order"]["numbers"]
    assert nums["R: error STN-C1 - STN-C0"]["lo"] > 0  # (R) decided on its 3 medium seeds
    assert nums["S: error STN-C1 - STN-C0"]["per_seed"] == pytest.approx({"0": 0.002})
    # without the small suite, (S) is missing: not run, naming what is missing
    _write(tmp_path / "only", variants="RT")
    status, ev = _emp1(tmp_path / "only", tmp_path)
    assert status == "not run" and "S/STN-C1" in ev["scale_pose_order"]["summary"]


def test_each_pair_is_read_from_the_largest_suite_holding_both_networks(tmp_path):
    """mnist-medium lacks only S/STN-SL1 (e.g. stopped by the collapse watch): the (S)
    orderings against STN-C0 and STN-DL1 are decided on medium's 3 seeds, the one against
    STN-SL1 falls back to the one-seed small suite (inconclusive), and the check's
    provenance names both suites."""
    import shutil

    _write(tmp_path, scale="small", seeds=(0,), suite="mnist-small")
    _write(tmp_path)
    shutil.rmtree(tmp_path / "mnist-medium" / "S" / "STN-SL1")
    status, ev = _emp1(tmp_path, tmp_path)
    medium, small = str(tmp_path / "mnist-medium"), str(tmp_path / "mnist-small")
    sp = ev["scale_pose_order"]
    assert sp["status"] == "inconclusive"
    assert sp["provenance"]["results"] == f"{medium}+{small}"
    nums = sp["numbers"]
    assert nums["S: pose std STN-C1 - STN-C0 (u)"]["lo"] > 0      # decided on medium
    assert nums["S: pose std STN-C1 - STN-DL1 (u)"]["lo"] > 0
    assert set(nums["S: pose std STN-C1 - STN-SL1 (u)"]["per_seed"]) == {"0"}  # small
    assert f"STN-SL1 [{small}]" in sp["summary"] and f"STN-C0 [{medium}]" in sp["summary"]
    assert ev["rotation_pose_order"]["status"] == "verified"
    assert ev["error_order"]["numbers"]["S: error STN-C1 - STN-C0"]["lo"] > 0


def test_absent_or_smoke_results_are_not_run_and_say_so(tmp_path):
    status, ev = _emp1(tmp_path / "nothing", tmp_path)
    assert status == "not run"
    assert ev["error_order"]["summary"].startswith("records missing:")
    assert "stnlab train" in ev["error_order"]["summary"]
    _write(tmp_path, scale="smoke")
    assert _emp1(tmp_path, tmp_path)[0] == "not run"


def test_emp_statements_are_faithful_to_the_papers():
    claims = load_all()
    assert "helps the parameter-shared" in claims["EMP-2"].statement
    assert "improves STN-C0 and STN-DL2" in claims["EMP-2"].statement
    assert "21.8 %" in claims["EMP-2"].note
    assert "still degrades at 8x" in claims["EMP-3"].statement
    assert "6.08 -> 10.89" in claims["EMP-3"].note and "4.85 -> 4.86" in claims["EMP-3"].note
    assert "slightly behind on ILSVRC (Table V)" in claims["EMP-4"].statement
    assert "42.38" in claims["EMP-4"].note and claims["EMP-4"].source == "004 Tables I-V"
    for cid in ("EMP-1", "EMP-2", "EMP-3", "EMP-4"):
        assert claims[cid].kind == "empirical"


def test_an_ordering_in_a_family_fails_only_beyond_the_family_interval():
    prov = {"results": "r", "scale": "medium", "seeds": [0, 1, 2], "device": "cpu"}
    high, low = {0: 1.0, 1: 1.0, 2: 1.0}, {0: 1.4, 1: 1.3, 2: 1.2}  # high - low: -0.3 +- 0.1
    alone = empirical.ordering("x", high, low, prov=prov)
    in_three = empirical.ordering("x", high, low, prov=prov, family=3)
    assert alone.status == "failed"
    assert in_three.status == "inconclusive"  # t_{1-0.05/6, 2} * 0.1/sqrt(3) > 0.3
    assert in_three.numbers["x"]["fail_interval"]["level"] == pytest.approx(1 - 0.05 / 3)
    far = empirical.ordering("x", high, {k: v + 3 for k, v in low.items()}, prov=prov,
                             family=3)
    assert far.status == "failed"
