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


def _run(root):
    claims = load_all()
    ctx = CheckContext(out_dir=root / "out", results_dir=root)
    return {c.name: c.fn(ctx) for c in claims["EMP-2"].checks if c.name.startswith("svhn_")}


def test_verified_on_paper_like_errors(tmp_path):
    _suite(tmp_path, PAPERLIKE)
    ev = _run(tmp_path)
    assert {k: e.status for k, e in ev.items()} == {
        "svhn_deepest_cx_worse_than_slx": "verified",
        "svhn_slx_degrades_less_than_cx": "verified",
        "svhn_iterations_no_substitute": "verified"}
    prov = ev["svhn_deepest_cx_worse_than_slx"].numbers["provenance"]
    assert prov["scale"] == "medium" and prov["seeds"] == [0, 1, 2]
    assert "svhn-medium" in prov["results"]


def test_through_run_claims_the_verdict_carries_provenance(tmp_path):
    """As `stnlab prove` runs it: a decided empirical check without provenance is turned
    into a failure by the registry; the SVHN checks must come through verified."""
    from proofs.registry import run_claims

    _suite(tmp_path, PAPERLIKE)
    res = run_claims(CheckContext(out_dir=tmp_path / "out", results_dir=tmp_path),
                     only=["EMP-2"])
    (c,) = [c for c in res if c["id"] == "EMP-2"]
    svhn = [e for e in c["evidence"] if e["check"].startswith("svhn_")]
    assert len(svhn) == 3 and all(e["status"] == "verified" for e in svhn), svhn
    assert svhn[0]["provenance"] == {"results": str(tmp_path / "svhn-medium"),
                                     "scale": "medium", "seeds": [0, 1, 2], "device": "?"}


def test_failed_when_the_order_is_reversed(tmp_path):
    """The trivial substitute: C and SL swapped must fail every check."""
    swapped = {"STN-C0": PAPERLIKE["STN-SL3"], "STN-C8": PAPERLIKE["STN-SL8"],
               "STN-SL3": PAPERLIKE["STN-C0"], "STN-SL8": PAPERLIKE["STN-C8"],
               "STN-C0-it2": [0.030, 0.031, 0.0305]}
    _suite(tmp_path, swapped)
    assert {e.status for e in _run(tmp_path).values()} == {"failed"}


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
    assert ev["svhn_deepest_cx_worse_than_slx"].numbers["svhn error STN-C8 (per seed)"] == \
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
    assert ev.status != "verified" and ev.numbers["decision"] == "inconclusive"


@pytest.mark.parametrize("data", list(emp2.DATASETS))
def test_find_suite_prefers_the_largest_scale(tmp_path, data):
    _suite(tmp_path, PAPERLIKE, data=data, scale="small")
    _suite(tmp_path, PAPERLIKE, data=data, scale="medium")
    assert emp2.find_suite(tmp_path, data).name == f"{data}-medium"
