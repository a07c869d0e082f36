"""Issue 28's EMP-2 / 2D / 2N / 2T checks: the new comparisons on hand-made suites, and the
pre-registration protocol as they apply it (a planned v2 suite decides by its plan.json;
anything else is inconclusive, naming why)."""

from __future__ import annotations

import json

import pytest

from proofs.claims import emp2
from proofs.registry import CheckContext, claim_family, load_all, run_claims

#: per-seed errors shaped like 000 Tables III / IV and Sec. IV-B4 (3 seeds; seeds 10-12)
SVHN = {"CNN": [0.0388, 0.0390, 0.0386], "STN-C0": [0.038, 0.0385, 0.0375],
        "STN-C6": [0.0420, 0.0425, 0.0415], "STN-C8": [0.044, 0.045, 0.0435],
        "STN-SL3": [0.0355, 0.035, 0.036], "STN-SL3-it2": [0.0335, 0.033, 0.034],
        "STN-SL6": [0.0330, 0.0328, 0.0331], "STN-SL6-it2": [0.0320, 0.0318, 0.0321],
        "STN-SL8": [0.0325, 0.033, 0.032], "STN-C0-it2": [0.038, 0.0375, 0.0385],
        "STN-DL3": [0.0348, 0.0350, 0.0346], "STN-DL8": [0.0376, 0.0380, 0.0372],
        "STN-C0123": [0.0361, 0.0365, 0.0358], "STN-SL0123": [0.0349, 0.0351, 0.0347]}
SEEDS = [10, 11, 12]
NEW = {"EMP-2": ("svhn_second_iteration_helps_sl3", "svhn_second_iteration_helps_sl6"),
       "EMP-2D": ("svhn_deep_dl_worse_than_shallow",),
       "EMP-2N": ("svhn_c6_worse_than_no_st", "svhn_c8_worse_than_no_st"),
       "EMP-2T": ("svhn_sl0123_better_than_c0123",)}


def _suite(d, errs, variant, scale="medium", seeds=SEEDS):
    d.mkdir(parents=True, exist_ok=True)
    runs = {n: {"error": {"per_seed": e, "mean": sum(e) / len(e)}, "seeds": seeds}
            for n, e in errs.items()}
    (d / "suite.json").write_text(json.dumps({"scale": scale, "suite": "svhn",
                                              "runs": {variant: runs}}))
    return d


def _plan(d, *, primaries, undecidable=(), gate_max=0.9, seeds=SEEDS):
    """A plan.json whose primaries are the checks' own definitions (emp2.spec)."""
    defs = {f"{data}_{name}": emp2.spec(c, data, plus, minus)
            for data in emp2.DATASETS for c, name, plus, minus, _ in emp2._definitions(data)}
    plan = {"schema": 1, "claim": "EMP-2", "suite": "svhn", "seeds": seeds,
            "claims": {c: claim_family(c) for c in ("EMP-2", "EMP-2D", "EMP-2N", "EMP-2T")},
            "primary": [{"id": p, **defs[p]} for p in primaries], "diagnostic": [],
            "gate": {"pilot": "results/svhn-standin-v2-pilot", "variant": "svhn-v2",
                     "net": "CNN", "max_error": gate_max},
            "learned_max": 0.9, "undecidable": [{"id": u, "why": "needs 240 seeds"}
                                                for u in undecidable]}
    (d / "plan.json").write_text(json.dumps(plan))


def _planned_root(tmp_path, errs=SVHN, pilot_cnn=0.44, plan=None):
    """A planned v2 suite, its pilot, and (``plan``: _plan's keywords) its plan.json."""
    root = tmp_path / "results"
    d = _suite(root / "svhn-standin-v2-medium", errs, "svhn-v2")
    _suite(root / "svhn-standin-v2-pilot", {"CNN": [pilot_cnn, pilot_cnn - 0.01]}, "svhn-v2",
           scale="small", seeds=[0, 1])
    if plan is not None:
        _plan(d, **plan)
    return root


def _checks(root, claim_ids=tuple(NEW), **ctx):
    claims = load_all()
    c = CheckContext(out_dir=root.parent / "out", results_dir=root, check_commits=False, **ctx)
    return {ch.name: ch.fn(c) for cid in claim_ids for ch in claims[cid].checks
            if ch.name.startswith("svhn_")}


def test_the_new_claims_and_their_families():
    claims = load_all()
    for cid, names in NEW.items():
        assert set(names) <= {ch.name for ch in claims[cid].checks}
    assert [claim_family(c) for c in ("EMP-2", "EMP-2D", "EMP-2N", "EMP-2T")] == [10, 2, 2, 1]
    assert "difficult to train" in claims["EMP-2D"].statement
    assert "worse than not using any ST at all" in claims["EMP-2N"].statement
    assert "3.49 %" in claims["EMP-2T"].note and "0.28 pp" in claims["EMP-2D"].note


def test_unplanned_paper_like_verifies_and_reversed_fails(tmp_path):
    """The comparisons alone (require_plan=False, the tests of their logic): each new check
    verifies on 000-shaped errors and fails with its two sides swapped."""
    root = tmp_path / "r"
    _suite(root / "svhn-medium", SVHN, "svhn")
    ev = _checks(root, require_plan=False)
    assert {k: e.status for k, e in ev.items() if k in sum(NEW.values(), ())} == {
        k: "verified" for k in sum(NEW.values(), ())}
    swap = {"STN-SL3-it2": "STN-SL3", "STN-SL3": "STN-SL3-it2", "STN-DL8": "STN-DL3",
            "STN-DL3": "STN-DL8", "STN-C0123": "STN-SL0123", "STN-SL0123": "STN-C0123"}
    # make the swapped gaps large enough to clear the family's fail interval (t = 20)
    rev = {n: SVHN[swap.get(n, n)] for n in SVHN}
    rev["STN-DL8"] = [0.0300, 0.0302, 0.0299]
    rev["STN-SL3-it2"] = [0.0455, 0.0450, 0.0460]
    rev["STN-SL0123"] = [0.0461, 0.0465, 0.0458]
    root2 = tmp_path / "r2"
    _suite(root2 / "svhn-medium", rev, "svhn")
    ev = _checks(root2, require_plan=False)
    for k in ("svhn_second_iteration_helps_sl3", "svhn_deep_dl_worse_than_shallow",
              "svhn_sl0123_better_than_c0123"):
        assert ev[k].status == "failed", (k, ev[k].summary)


def test_a_committed_plan_decides_its_primaries(tmp_path):
    root = _planned_root(tmp_path, plan=dict(primaries=["svhn_deep_dl_worse_than_shallow",
                                                        "svhn_deepest_cx_worse_than_slx"]))
    ev = _checks(root, ("EMP-2", "EMP-2D"))
    dl = ev["svhn_deep_dl_worse_than_shallow"]
    assert dl.status == "verified" and dl.data["protocol"] == "passed", dl.summary
    assert dl.provenance["seeds"] == SEEDS and "svhn-standin-v2-medium" in dl.provenance[
        "results"]
    assert ev["svhn_deepest_cx_worse_than_slx"].status == "verified"
    # an interval the plan did not pre-register is never decided by it
    sl3 = ev["svhn_second_iteration_helps_sl3"]
    assert sl3.status == "inconclusive" and "not a primary" in sl3.summary
    assert sl3.data["protocol"] == "blocked"
    # through run_claims (require_plan on): the plan's verdict stands
    res = run_claims(CheckContext(out_dir=tmp_path / "o", results_dir=root,
                                  check_commits=False), only=["EMP-2D"])
    (c,) = [c for c in res if c["id"] == "EMP-2D"]
    assert c["evidence"][0]["status"] == "verified"


@pytest.mark.parametrize("change,why", [
    (dict(undecidable=["svhn_deep_dl_worse_than_shallow"], primaries=[]), "undecidable"),
    (dict(gate_max=0.30), "not learnable at this scale"),
    (dict(seeds=[0, 1, 2]), "are not the plan's"),
    (None, "no pre-registered plan"),
])
def test_the_protocol_blocks_with_its_reason(tmp_path, change, why):
    plan = None if change is None else {"primaries": ["svhn_deep_dl_worse_than_shallow"],
                                        **change}
    root = _planned_root(tmp_path, plan=plan)
    ev = _checks(root, ("EMP-2D",))["svhn_deep_dl_worse_than_shallow"]
    assert ev.status == "inconclusive" and why in ev.summary, ev.summary
    assert ev.numbers["svhn: deep_dl_worse_than_shallow"]["estimate"] > 0  # numbers kept


def test_a_plan_whose_definition_differs_is_refused(tmp_path):
    root = _planned_root(tmp_path, plan=dict(primaries=["svhn_deep_dl_worse_than_shallow"]))
    p = root / "svhn-standin-v2-medium" / "plan.json"
    plan = json.loads(p.read_text())
    plan["primary"][0]["minus"] = ["STN-DL6"]
    p.write_text(json.dumps(plan))
    ev = _checks(root, ("EMP-2D",))["svhn_deep_dl_worse_than_shallow"]
    assert ev.status == "inconclusive" and "differs from the check's (['minus'])" in ev.summary


def test_a_network_at_chance_blocks(tmp_path):
    errs = dict(SVHN, **{"STN-DL8": [0.95, 0.96, 0.97]})
    root = _planned_root(tmp_path, errs=errs,
                         plan=dict(primaries=["svhn_deep_dl_worse_than_shallow"]))
    plan = root / "svhn-standin-v2-medium" / "plan.json"
    d = json.loads(plan.read_text())
    d["learned_max"] = 0.9
    plan.write_text(json.dumps(d))
    ev = _checks(root, ("EMP-2D",))["svhn_deep_dl_worse_than_shallow"]
    assert ev.status == "inconclusive" and "network at chance" in ev.summary
