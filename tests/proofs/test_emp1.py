"""EMP-1 / EMP-1F / EMP-1S / EMP-1T (proofs/claims/emp1.py) under the pre-registration
protocol (proofs/plan.py), on hand-made suites: each status each check can reach, and
each reason the protocol refuses a verdict (no plan, a plan committed after or changed
since the runs, a failed gate, a network at chance, a plan that disagrees with the check)."""

from __future__ import annotations

import json
import subprocess

import pytest

from proofs import plan as P
from proofs.claims import emp1
from proofs.registry import CheckContext, claim_family, run_claims

NETS = ("STN-C0", "STN-C1", "STN-DL1", "STN-SL1")
SEEDS = (10, 11, 12, 13, 14)
# 000-like (R) numbers: STN-C1 spreads and errs more, barely rotates; C0 / SL1 counter-rotate
POSE = {"STN-C0": 23.0, "STN-C1": 47.0, "STN-DL1": 27.0, "STN-SL1": 19.0}
ERR = {"CNN": 0.017, "STN-C0": 0.0108, "STN-C1": 0.0132, "STN-DL1": 0.0105, "STN-SL1": 0.0098}
SLOPE = {"STN-C0": 0.9, "STN-C1": 0.03, "STN-DL1": 0.85, "STN-SL1": 0.95}
# independent per-network, per-seed wobble (paired differences have non-zero spread)
WOBBLE = {"STN-C0": (0.0, 0.4, -0.3, 0.2, -0.1), "STN-C1": (0.2, -0.3, 0.1, 0.0, -0.2),
          "STN-DL1": (-0.2, 0.1, 0.3, -0.4, 0.0), "STN-SL1": (0.1, 0.0, -0.2, 0.3, -0.1),
          "CNN": (0.0, 0.1, -0.1, 0.2, -0.2)}


def _plan(**over):
    primary = [dict(id=k, claim="EMP-1", **v) for k, v in emp1.PRIMARY.items()]
    primary += [dict(id=k, claim="EMP-1F", kind="count", **v) for k, v in emp1.COUNTS.items()]
    d = dict(schema=P.SCHEMA, claim="EMP-1", claims={"EMP-1": 7, "EMP-1F": 2}, suite="mnist",
             seeds=list(SEEDS), primary=primary, diagnostic=[], undecidable=[],
             gate=dict(pilot="results/mnist-small", variant="R", net="CNN", max_error=0.10),
             learned_max=0.45)
    d.update(over)
    return d


def _write(root, *, plan=True, seeds=SEEDS, pilot_err=0.05, commit="unknown", variants="R",
           suite="mnist-emp1-r", **changes):
    """A planned suite following 000 in every seed, with ``changes`` (``kind__net`` ->
    a value for every seed or a per-seed list), and the gate's pilot record."""
    tables = {"pose": dict(POSE), "err": dict(ERR), "slope": dict(SLOPE)}
    for key, value in changes.items():
        kind, n = key.split("__")
        tables[kind][n.replace("_", "-")] = value

    def per_seed(x, n, scale):
        if isinstance(x, list):
            return x
        return [x * (1 + scale * w) for w in WOBBLE[n][:len(seeds)]]

    d = root / suite
    for v in variants:
        for n in NETS:
            run = d / v / n
            run.mkdir(parents=True, exist_ok=True)
            e = per_seed(tables["err"][n], n, 0.02)
            p = per_seed(tables["pose"][n], n, 0.02)
            s = per_seed(tables["slope"][n], n, 0.02)
            rec = {"variant": v, "net": n, "scale": "medium", "seeds": list(seeds),
                   "error": {"per_seed": e}, "pose_std": {"per_seed": p, "unit": "degrees"},
                   "fig6_slope": {"per_seed": s}}
            (run / "metrics.json").write_text(json.dumps(rec))
            (run / "env.json").write_text(json.dumps({"device": "cpu", "git_commit": commit}))
    if plan:
        (d / "plan.json").write_text(json.dumps(plan if isinstance(plan, dict) else _plan()))
    pilot = root / "mnist-small" / "R" / "CNN"
    pilot.mkdir(parents=True, exist_ok=True)
    (pilot / "metrics.json").write_text(json.dumps(
        {"variant": "R", "net": "CNN", "scale": "small", "seeds": [0],
         "error": {"per_seed": [pilot_err]}}))
    return d


def _run(root, tmp_path, ids=("EMP-1", "EMP-1F"), check_commits=False):
    ctx = CheckContext(out_dir=tmp_path / "out", results_dir=root, check_commits=check_commits)
    res = {c["id"]: c for c in run_claims(ctx, only=list(ids))}
    return {cid: (res[cid]["status"], {e["check"]: e for e in res[cid]["evidence"]})
            for cid in ids}


def test_families_match_the_plan():
    assert claim_family("EMP-1") == len(emp1.PRIMARY) == 7
    assert claim_family("EMP-1F") == len(emp1.COUNTS) == 2


def test_a_planned_suite_following_000_verifies_emp1_and_emp1f(tmp_path):
    _write(tmp_path)
    out = _run(tmp_path, tmp_path)
    assert out["EMP-1"][0] == "verified", out["EMP-1"]
    assert out["EMP-1F"][0] == "verified", out["EMP-1F"]
    ev = out["EMP-1"][1]
    assert set(ev) == {"rotation_pose_order", "error_order", "fig6_c1_slope"}
    d = ev["rotation_pose_order"]["numbers"]["R: pose std STN-C1 - STN-C0 (degrees)"]
    assert d["lo"] > 0 and set(d["per_seed"]) == {str(s) for s in SEEDS}
    counts = out["EMP-1F"][1]["counter_rotation_counts"]["numbers"]
    assert counts["R: seeds with Fig. 6 slope > 0.5, STN-SL1"]["count"] == 5
    assert "R: Fig. 6 slope STN-DL1 (diagnostic)" in counts


@pytest.mark.parametrize("change, check", [
    ({"pose__STN_C1": 15.0}, "rotation_pose_order"),   # C1 far below every other
    ({"err__STN_C1": 0.005}, "error_order"),
    ({"slope__STN_C1": 0.9}, "fig6_c1_slope"),
])
def test_a_decided_violation_fails_emp1(tmp_path, change, check):
    _write(tmp_path, **change)
    status, ev = _run(tmp_path, tmp_path)["EMP-1"]
    assert status == "failed"
    assert ev[check]["status"] == "failed" and ev[check]["failures"]


def test_a_tie_is_inconclusive(tmp_path):
    _write(tmp_path, err__STN_C1=[0.0108, 0.0104, 0.0112, 0.0109, 0.0106])  # = C0's, +-
    status, ev = _run(tmp_path, tmp_path)["EMP-1"]
    assert status == "inconclusive" and ev["error_order"]["status"] == "inconclusive"


def test_count_rules_verify_only_at_five_of_five_and_cannot_fail_at_five_seeds(tmp_path):
    assert P.count_thresholds(5, m=2) == (5, None)
    assert P.count_thresholds(10, m=2) == (9, 1)  # 10 seeds: P(X <= 1) = 11/1024 < 0.05/4
    _write(tmp_path / "a", slope__STN_SL1=[0.9, 0.9, 0.9, 0.9, 0.2])
    assert _run(tmp_path / "a", tmp_path, ids=("EMP-1F",))["EMP-1F"][0] == "inconclusive"
    _write(tmp_path / "b", slope__STN_SL1=[0.1] * 5, slope__STN_C0=[0.1] * 5)
    status, ev = _run(tmp_path / "b", tmp_path, ids=("EMP-1F",))["EMP-1F"]
    assert status == "inconclusive"  # 0 of 5: p = 1/32 is not below 0.05 / 4
    nums = ev["counter_rotation_counts"]["numbers"]["R: seeds with Fig. 6 slope > 0.5, STN-SL1"]
    assert nums["count"] == 0 and nums["k_fail"] is None and nums["hi"] < 0.53


def test_no_plan_is_inconclusive_with_the_reason_and_numbers(tmp_path):
    _write(tmp_path, plan=False)
    status, ev = _run(tmp_path, tmp_path)["EMP-1"]
    assert status == "inconclusive"
    e = ev["rotation_pose_order"]
    assert "no pre-registered plan" in e["summary"] and e["numbers"]


def test_a_failed_gate_or_a_network_at_chance_blocks_the_comparison(tmp_path):
    _write(tmp_path / "gate", pilot_err=0.5)
    status, ev = _run(tmp_path / "gate", tmp_path)["EMP-1"]
    assert status == "inconclusive"
    assert "not learnable at this scale" in ev["error_order"]["summary"]
    _write(tmp_path / "chance", err__STN_DL1=[0.0105, 0.9, 0.0105, 0.0105, 0.0105],
           pose__STN_C1=15.0)  # would fail, but DL1 seed 11 sits at chance
    status, ev = _run(tmp_path / "chance", tmp_path)["EMP-1"]
    assert status == "inconclusive"
    assert "network at chance" in ev["rotation_pose_order"]["summary"]
    assert "STN-DL1 seed 11 (90.0 %)" in ev["rotation_pose_order"]["summary"]


def test_a_plan_that_disagrees_with_the_check_or_its_seeds_blocks(tmp_path):
    bad = _plan()
    bad["primary"][0]["direction"] = "<"
    _write(tmp_path / "dir", plan=bad)
    status, ev = _run(tmp_path / "dir", tmp_path)["EMP-1"]
    assert status == "inconclusive"
    assert "the plan's R-pose-C1-C0 differs" in ev["rotation_pose_order"]["summary"]
    _write(tmp_path / "seeds", plan=_plan(seeds=[0, 1, 2, 3, 4]))
    status, ev = _run(tmp_path / "seeds", tmp_path)["EMP-1"]
    assert status == "inconclusive" and "are not the plan's" in ev["error_order"]["summary"]


def _git(cwd, *args):
    out = subprocess.run(["git", "-c", "user.email=t@t", "-c", "user.name=t", *args], cwd=cwd,
                         capture_output=True, text=True, check=True)
    return out.stdout.strip()


def _repo(tmp_path):
    root = tmp_path / "repo"
    root.mkdir()
    _git(root, "init", "-q")
    (root / "README").write_text("x")
    _git(root, "add", "README")
    _git(root, "commit", "-qm", "first")
    return root, _git(root, "rev-parse", "HEAD")


def test_a_plan_committed_before_the_runs_is_accepted(tmp_path):
    root, _ = _repo(tmp_path)
    d = root / "mnist-emp1-r"
    d.mkdir()
    (d / "plan.json").write_text(json.dumps(_plan()))
    _git(root, "add", "mnist-emp1-r/plan.json")
    _git(root, "commit", "-qm", "plan")
    _write(root, commit=_git(root, "rev-parse", "HEAD"), plan=False)
    status, ev = _run(root, tmp_path, ids=("EMP-1",), check_commits=True)["EMP-1"]
    assert status == "verified", ev


def test_a_plan_committed_after_the_runs_or_changed_since_is_refused(tmp_path):
    root, first = _repo(tmp_path)
    _write(root, commit=first)  # runs trained at `first`, which holds no plan
    _git(root, "add", "mnist-emp1-r/plan.json")
    _git(root, "commit", "-qm", "plan, after the runs")
    status, ev = _run(root, tmp_path, ids=("EMP-1",), check_commits=True)["EMP-1"]
    assert status == "inconclusive"
    assert "plan committed after the runs" in ev["rotation_pose_order"]["summary"]
    # runs at the plan's commit, then the plan edited: refused as changed
    _write(root, commit=_git(root, "rev-parse", "HEAD"), plan=_plan(learned_max=0.9))
    status, ev = _run(root, tmp_path, ids=("EMP-1",), check_commits=True)["EMP-1"]
    assert status == "inconclusive"
    assert "plan changed after the runs" in ev["rotation_pose_order"]["summary"]


def test_a_run_commit_unknown_to_git_or_no_git_is_refused(tmp_path):
    root, _ = _repo(tmp_path)
    _write(root, commit="0" * 40)
    _git(root, "add", "mnist-emp1-r/plan.json")
    _git(root, "commit", "-qm", "plan")
    status, ev = _run(root, tmp_path, ids=("EMP-1",), check_commits=True)["EMP-1"]
    assert status == "inconclusive" and "not in this repository's history" in \
        ev["error_order"]["summary"]
    # ... unless the run recorded the plan's sha256 at its start (trained off-git, a GPU)
    import hashlib

    sha = hashlib.sha256((root / "mnist-emp1-r" / "plan.json").read_bytes()).hexdigest()
    for env in (root / "mnist-emp1-r" / "R").glob("*/env.json"):
        env.write_text(json.dumps({"device": "cuda", "git_commit": "unknown",
                                   "plan_sha256": sha}))
    status, ev = _run(root, tmp_path, ids=("EMP-1",), check_commits=True)["EMP-1"]
    assert status == "verified", ev
    env.write_text(json.dumps({"device": "cuda", "git_commit": "unknown",
                               "plan_sha256": "0" * 64}))  # another plan's hash
    status, ev = _run(root, tmp_path, ids=("EMP-1",), check_commits=True)["EMP-1"]
    assert status == "inconclusive" and "plan changed after the runs" in \
        ev["error_order"]["summary"]
    _write(tmp_path / "nogit", commit="abc")
    status, ev = _run(tmp_path / "nogit", tmp_path, ids=("EMP-1",), check_commits=True)["EMP-1"]
    assert status == "inconclusive"


def test_s_and_t_are_shown_from_unplanned_runs_and_never_decided(tmp_path):
    d = _write(tmp_path, plan=False, suite="mnist-medium", variants="RST", seeds=(0, 1, 2))
    for v in "ST":
        run = d / v / "CNN"
        run.mkdir(parents=True, exist_ok=True)
        (run / "metrics.json").write_text(json.dumps(
            {"variant": v, "net": "CNN", "scale": "medium", "seeds": [0, 1, 2],
             "error": {"per_seed": [0.02, 0.021, 0.0205]}}))
        (run / "env.json").write_text("{}")
    out = _run(tmp_path, tmp_path, ids=("EMP-1S", "EMP-1T"))
    for cid in ("EMP-1S", "EMP-1T"):
        status, ev = out[cid]
        (e,) = ev.values()
        assert status == "inconclusive" and "no pre-registered plan" in e["summary"]
        assert e["numbers"]
    nums = out["EMP-1T"][1]["sts_improve_on_cnn"]["numbers"]
    assert nums["T: error CNN - STN-C1"]["lo"] > 0  # would verify; the protocol holds it


def test_power_arithmetic_matches_student_t():
    # t_{0.975, 4} = 2.7764; sd 1, n 5: half-width 1.2416
    assert P.halfwidth(1.0, 5) == pytest.approx(2.7764451 / 5 ** 0.5, rel=1e-6)
    assert P.min_fail(1.0, 5, 7) > P.min_verify(1.0, 5)
    assert P.seeds_for(13.5, 28.5) == 4 and P.seeds_for(0.215, 0.34) == 5
    assert P.seeds_for(1.0, 0.0) is None or P.seeds_for(1.0, 0.0) > 1000


def test_the_committed_plan_matches_the_checks():
    """results/mnist-emp1-r/plan.json holds the checks' primaries, unchanged."""
    from pathlib import Path

    plan = P.load_plan(Path(__file__).resolve().parents[2] / "results" / "mnist-emp1-r")
    assert plan is not None
    for pid, spec in {**emp1.PRIMARY, **emp1.COUNTS}.items():
        got = plan.primary_named(pid)
        assert {k: got[k] for k in spec} == spec
    assert plan.data["claims"] == {"EMP-1": 7, "EMP-1F": 2}


def test_the_fashion_study_is_judged_by_its_own_plan_and_is_not_run_without_it(tmp_path):
    plan = _plan(claims={"EMP-1X": 7, "EMP-1XF": 2})
    for p in plan["primary"]:
        p["claim"] = {"EMP-1": "EMP-1X", "EMP-1F": "EMP-1XF"}[p["claim"]]
    _write(tmp_path, suite="fashion-emp1-r", plan=plan)
    out = _run(tmp_path, tmp_path, ids=("EMP-1X", "EMP-1XF"))
    assert out["EMP-1X"][0] == "verified" and out["EMP-1XF"][0] == "verified"
    # an MNIST plan (claims EMP-1 / EMP-1F) in the fashion suite does not judge EMP-1X
    _write(tmp_path / "wrong", suite="fashion-emp1-r")
    status, ev = _run(tmp_path / "wrong", tmp_path, ids=("EMP-1X",))["EMP-1X"]
    assert status == "inconclusive" and "differs from the check's" in \
        ev["error_order"]["summary"]
    # no fashion suite: not run (never read from the MNIST suites)
    _write(tmp_path / "mnist-only")
    status, ev = _run(tmp_path / "mnist-only", tmp_path, ids=("EMP-1X",))["EMP-1X"]
    assert status == "not run" and "fashion-emp1-r" in ev["error_order"]["summary"]
