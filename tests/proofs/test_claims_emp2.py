"""EMP-2 checks (``proofs/claims/emp2.py``) on synthetic committed suite directories."""

from __future__ import annotations

import json

import pytest

from proofs.claims import emp2
from proofs.registry import CheckContext, load_all

#: SVHN-like per-seed errors shaped like 000 Table IV (C degrades, SL improves with depth)
PAPERLIKE = {"STN-C0": [0.038, 0.0385, 0.0375], "STN-C8": [0.040, 0.041, 0.0395],
             "STN-SL3": [0.0355, 0.035, 0.036], "STN-SL8": [0.0325, 0.033, 0.032],
             "STN-C0-it2": [0.038, 0.0375, 0.0385]}


def _suite(root, errs, *, data="svhn", scale="medium"):
    d = root / f"{data}-{scale}"
    d.mkdir(parents=True)
    runs = {n: {"error": {"per_seed": e, "mean": sum(e) / len(e)}} for n, e in errs.items()}
    (d / "suite.json").write_text(json.dumps({"scale": scale, "suite": data,
                                              "runs": {data: runs}}))
    return d


#: the three checks EMP-2 had before issue 28 (the tests below are about them; the new
#: checks have tests of their own in test_claims_emp2_planned.py)
ORIGINAL = ("deepest_cx_worse_than_slx", "slx_degrades_less_than_cx",
            "iterations_no_substitute")


def _original(name: str) -> bool:
    return name.split("_", 1)[1] in ORIGINAL


def _run(root):
    claims = load_all()
    ctx = CheckContext(out_dir=root / "out", results_dir=root, require_plan=False)
    return {c.name: c.fn(ctx) for c in claims["EMP-2"].checks
            if c.name.startswith("svhn_") and _original(c.name)}


def test_verified_on_paper_like_errors(tmp_path):
    _suite(tmp_path, PAPERLIKE)
    ev = _run(tmp_path)
    assert {k: e.status for k, e in ev.items()} == {
        "svhn_deepest_cx_worse_than_slx": "verified",
        "svhn_slx_degrades_less_than_cx": "verified",
        "svhn_iterations_no_substitute": "verified"}
    prov = ev["svhn_deepest_cx_worse_than_slx"].numbers["svhn: deepest_cx_worse_than_slx provenance"]
    assert prov["scale"] == "medium" and prov["seeds"] == [0, 1, 2]
    assert "svhn-medium" in prov["results"]


def test_through_run_claims_the_verdict_carries_provenance(tmp_path):
    """As `stnlab prove` runs it: a decided empirical check without provenance is turned
    into a failure by the registry; the SVHN checks must come through verified."""
    from proofs.registry import run_claims

    _suite(tmp_path, PAPERLIKE)
    res = run_claims(CheckContext(out_dir=tmp_path / "out", results_dir=tmp_path, require_plan=False),
                     only=["EMP-2"])
    (c,) = [c for c in res if c["id"] == "EMP-2"]
    svhn = [e for e in c["evidence"] if e["check"].startswith("svhn_") and _original(e["check"])]
    assert len(svhn) == 3 and all(e["status"] == "verified" for e in svhn), svhn
    assert svhn[0]["provenance"] == {"results": str(tmp_path / "svhn-medium"),
                                     "scale": "medium", "seeds": [0, 1, 2], "device": "?"}


@pytest.mark.parametrize("scale,seeds,want", [("small", 1, "inconclusive"),
                                               ("medium", 3, None)])
def test_svhn_and_plankton_together_through_run_claims(tmp_path, scale, seeds, want):
    """Both data sets committed at once (as `stnlab prove` meets them): their checks report
    under distinct number names; before, both wrote "provenance" (and "decision") with
    different values and run_claims failed the plankton checks."""
    from proofs.registry import run_claims

    _suite(tmp_path, {n: e[:seeds] for n, e in PAPERLIKE.items()}, scale=scale)
    pl = {"STN-C0": [0.221, 0.222, 0.220], "STN-C10": [0.25, 0.26, 0.255],
          "STN-SL2": [0.215, 0.216, 0.214], "STN-SL10": [0.27, 0.28, 0.275],
          "STN-SL4": [0.215, 0.214, 0.216], "STN-C0-it2": [0.218, 0.219, 0.217]}
    _suite(tmp_path, {n: e[:seeds] for n, e in pl.items()}, data="plankton", scale=scale)
    res = run_claims(CheckContext(out_dir=tmp_path / "out", results_dir=tmp_path, require_plan=False),
                     only=["EMP-2"])
    (c,) = [c for c in res if c["id"] == "EMP-2"]
    st = {e["check"]: e["status"] for e in c["evidence"] if _original(e["check"])}
    assert len(st) == 6
    assert not any("already reported" in e["summary"] for e in c["evidence"]), c["evidence"]
    if want:
        assert set(st.values()) == {want}, st
    else:  # decided, and not all the same way: the plankton SLX degrades more than CX here
        assert st["svhn_deepest_cx_worse_than_slx"] == "verified"
        assert st["plankton_slx_degrades_less_than_cx"] == "failed"


def test_failed_when_the_order_is_reversed(tmp_path):
    """The trivial substitute: C and SL swapped must fail every check."""
    # (SL8 made clearly worse: with EMP-2's ten intervals a failure needs the 99.75 %
    # interval, t = 20 at 3 seeds, on the wrong side)
    swapped = {"STN-C0": PAPERLIKE["STN-SL3"], "STN-C8": PAPERLIKE["STN-SL8"],
               "STN-SL3": PAPERLIKE["STN-C0"], "STN-SL8": [0.046, 0.047, 0.0455],
               "STN-C0-it2": [0.030, 0.031, 0.0305]}
    _suite(tmp_path, swapped)
    assert {e.status for e in _run(tmp_path).values()} == {"failed"}


def test_failed_is_decided_on_the_claim_family_interval(tmp_path):
    # SL8 worse than C8 by 0.11 +- 0.02 pp: its 95 % interval lies below 0 (one interval
    # alone would fail) but EMP-2 is ten intervals, so it fails only beyond the 99.5 % one
    from proofs.registry import claim_family

    assert claim_family("EMP-2") == 10
    errs = dict(PAPERLIKE, **{"STN-SL8": [0.0411, 0.0419, 0.0408]})
    _suite(tmp_path, errs)
    ev = _run(tmp_path)["svhn_deepest_cx_worse_than_slx"]
    num = ev.numbers["svhn: deepest_cx_worse_than_slx"]
    assert num["hi"] < 0 < num["fail_interval"]["hi"]
    assert ev.status == "inconclusive", ev.summary


def test_not_run_without_results_inconclusive_with_too_few_seeds(tmp_path):
    """No runs: not run (and the command to make them). Runs with 2 seeds, or at small:
    inconclusive with their numbers (the EMP evidence rule), never a verdict."""
    ev = _run(tmp_path)
    assert all(e.status == "not run" and "--suite svhn --scale medium" in e.summary
               for e in ev.values())
    _suite(tmp_path, {k: v[:2] for k, v in PAPERLIKE.items()})
    ev = _run(tmp_path)
    assert all(e.status == "inconclusive" and ">= 3 seeds" in e.summary
               and e.provenance["scale"] == "medium" for e in ev.values())
    assert ev["svhn_deepest_cx_worse_than_slx"].numbers["svhn: deepest_cx_worse_than_slx error STN-C8 (per seed)"] == \
        PAPERLIKE["STN-C8"][:2]
    _suite(tmp_path / "s", PAPERLIKE, scale="small")
    ev = _run(tmp_path / "s")
    assert all(e.status == "inconclusive" and "(small)" in e.summary for e in ev.values())


def test_smoke_is_never_evidence(tmp_path):
    _suite(tmp_path, PAPERLIKE, scale="smoke")
    assert all(e.status == "not run" for e in _run(tmp_path).values())


def test_overlapping_errors_are_not_verified(tmp_path):
    """Equal within noise: the interval contains 0 -> not verified (inconclusive)."""
    flat = {k: [0.035, 0.036, 0.034] for k in PAPERLIKE}
    flat["STN-C8"] = [0.036, 0.034, 0.035]
    _suite(tmp_path, flat)
    ev = _run(tmp_path)["svhn_deepest_cx_worse_than_slx"]
    assert ev.status != "verified" and ev.numbers["svhn: deepest_cx_worse_than_slx decision"] == "inconclusive"


@pytest.mark.parametrize("data", list(emp2.DATASETS))
def test_find_suite_prefers_the_largest_scale(tmp_path, data):
    _suite(tmp_path, PAPERLIKE, data=data, scale="small")
    _suite(tmp_path, PAPERLIKE, data=data, scale="medium")
    assert emp2.find_suite(tmp_path, data).name == f"{data}-medium"


def test_a_stopped_network_makes_its_checks_inconclusive_not_missing(tmp_path):
    # PlanktonSet `medium`: STN-C10 diverged at step 11 (seed 1); it was trained, so the
    # checks that need it are inconclusive and say why, not "not run"
    errs = dict(PAPERLIKE)
    del errs["STN-C8"]
    d = _suite(tmp_path, errs)
    index = json.loads((d / "suite.json").read_text())
    index["stopped"] = {"svhn": {"STN-C8": {"reason": "diverged", "step": 11, "seed": 1,
                                            "message": "..."}}}
    (d / "suite.json").write_text(json.dumps(index))
    ev = _run(tmp_path)
    for name in ("svhn_deepest_cx_worse_than_slx", "svhn_slx_degrades_less_than_cx"):
        assert ev[name].status == "inconclusive"
        assert "STN-C8 diverged at step 11 (seed 1)" in ev[name].summary
    assert ev["svhn_iterations_no_substitute"].status == "verified"
    del index["stopped"]  # without the record the network is simply missing
    (d / "suite.json").write_text(json.dumps(index))
    assert _run(tmp_path)["svhn_deepest_cx_worse_than_slx"].status == "not run"


def test_each_check_reads_the_largest_suite_holding_its_networks(tmp_path):
    # an unfinished `medium` suite (STN-C0-it2 not trained yet) moves only the check that
    # needs it to `small`; the others read `medium`, and each summary names its suite
    _suite(tmp_path, {n: e[:1] for n, e in PAPERLIKE.items()}, scale="small")
    _suite(tmp_path, {n: e for n, e in PAPERLIKE.items() if n != "STN-C0-it2"})
    ev = _run(tmp_path)
    assert ev["svhn_deepest_cx_worse_than_slx"].status == "verified"
    assert ev["svhn_slx_degrades_less_than_cx"].status == "verified"
    assert "svhn-medium" in ev["svhn_deepest_cx_worse_than_slx"].numbers["svhn: deepest_cx_worse_than_slx provenance"][
        "results"]
    it = ev["svhn_iterations_no_substitute"]
    assert it.status == "inconclusive" and "svhn-small" in it.summary  # one seed at small
    assert emp2.find_suite(tmp_path, "svhn").name == "svhn-medium"


def test_checks_reading_different_suites_pass_through_run_claims(tmp_path):
    # the per-check suite choice gave two checks one number name ("svhn provenance") with
    # two values, which run_claims refuses (EMP-2 came out "failed" in `stnlab prove`)
    from proofs.registry import run_claims

    _suite(tmp_path, {n: e[:1] for n, e in PAPERLIKE.items()}, scale="small")
    _suite(tmp_path, {n: e for n, e in PAPERLIKE.items() if n != "STN-C0-it2"})
    res = run_claims(CheckContext(out_dir=tmp_path / "out", results_dir=tmp_path, require_plan=False),
                     only=["EMP-2"])
    (c,) = [c for c in res if c["id"] == "EMP-2"]
    svhn = [e for e in c["evidence"] if "svhn" in e["summary"] and _original(e["check"])]
    assert sorted(e["status"] for e in svhn) == ["inconclusive", "verified", "verified"], svhn


def test_without_a_plan_a_would_be_verdict_is_inconclusive_and_says_why(tmp_path):
    """The protocol (proofs/plan.py) as `stnlab prove` applies it: the same paper-like
    suite that verifies above, without a committed plan, is inconclusive, naming why."""
    from proofs.registry import run_claims

    _suite(tmp_path, PAPERLIKE)
    res = run_claims(CheckContext(out_dir=tmp_path / "out", results_dir=tmp_path),
                     only=["EMP-2"])
    (c,) = [c for c in res if c["id"] == "EMP-2"]
    svhn = [e for e in c["evidence"] if e["check"].startswith("svhn_") and _original(e["check"])]
    assert all(e["status"] == "inconclusive" for e in svhn), svhn
    assert all("no pre-registered plan" in e["summary"] and "it would be 'verified'" in
               e["summary"] for e in svhn)
