"""EMP-4 checks (proofs/claims/emp4.py) on hand-made CUB-suite results."""

from __future__ import annotations

import pytest

from models.record import RunRecord
from proofs.claims import emp4
from proofs.registry import CheckContext, registry


def _ms(xs):
    return {"per_seed": list(xs), "mean": sum(xs) / len(xs), "std": 0.0}


def _run(root, net, gk, *, rf=None, area=(0.05, 0.05, 0.05), seeds=(0, 1, 2), scale="medium"):
    loc = {"top1_cls": _ms([0.9] * len(gk)), "top1_loc": _ms(gk), "gt_known_loc": _ms(gk),
           "gt_known_top5_loc": _ms(gk)}
    m = {"variant": "standin", "net": net, "scale": scale, "seeds": list(seeds), "loc": loc,
         "mean_box_area": _ms(area), "dataset": "cub-standin (...)", "backbone": "small CNN"}
    if rf is not None:
        m["untransformed"] = {k: _ms(rf) for k in loc}
    d = root / "cub-medium" / "standin" / net
    d.mkdir(parents=True)
    RunRecord(d, m).save()


GOOD = {"CSTN": dict(gk=[0.6, 0.62, 0.58], rf=[0.3, 0.32, 0.31], area=[0.05, 0.06, 0.05]),
        "no-CSTN": dict(gk=[0.3, 0.31, 0.29]),
        "CSTN-lam0": dict(gk=[0.1, 0.12, 0.11], area=[0.01, 0.012, 0.011]),
        "CSTN-fine": dict(gk=[0.4, 0.41, 0.39]), "CSTN-coarse": dict(gk=[0.5, 0.52, 0.49]),
        "CAM": dict(gk=[0.4, 0.45, 0.42])}
CHECKS = {"table_i_transform_vs_receptive_field_box": emp4.table_i,
          "table_ii_cstn_vs_no_cstn": emp4.table_ii,
          "table_iii_lambda0_collapses_boxes": emp4.table_iii,
          "fig6_two_levels_beat_one": emp4.fig6, "table_iv_cstn_vs_cam": emp4.table_iv}


def _ctx(tmp_path, runs):
    for net, kw in runs.items():
        _run(tmp_path, net, **kw)
    return CheckContext(out_dir=tmp_path / "out", results_dir=tmp_path, require_plan=False)


def test_registered_under_emp4():
    names = {c.name for c in registry()["EMP-4"].checks}
    assert set(CHECKS) <= names


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_not_run_without_results_names_the_command(tmp_path, name):
    ev = CHECKS[name](CheckContext(out_dir=tmp_path, results_dir=tmp_path))
    assert ev.status == "not run"
    assert "stnlab train --suite cub --scale medium" in ev.summary


def test_the_claim_says_why_it_did_not_run_once(tmp_path):
    # the catalogue's reason joins the checks' distinct first sentences: it said the same
    # thing five times (once per check) before the networks moved to a second sentence
    from proofs.report import status_reason

    ctx = CheckContext(out_dir=tmp_path, results_dir=tmp_path)
    evs = [{"status": "not run", "summary": CHECKS[n](ctx).summary} for n in sorted(CHECKS)]
    why = status_reason({"status": "not run", "evidence": evs})
    assert why.count("no CUB-suite directory") == 1 and "stnlab train --suite cub" in why


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_verified_on_results_that_show_it(tmp_path, name):
    ev = CHECKS[name](_ctx(tmp_path, GOOD))
    assert ev.status == "verified", ev.summary
    prov = ev.numbers["provenance"]
    assert prov["scale"] == "medium" and prov["seeds"] == [0, 1, 2]
    assert prov["results"].endswith("cub-medium") and "device" in prov


def test_through_run_claims_the_verdicts_carry_provenance(tmp_path):
    """As `stnlab prove` runs them: a decided empirical check without provenance becomes
    a failure in the registry, so every EMP-4 check must come through verified."""
    from proofs.registry import run_claims

    ctx = _ctx(tmp_path, GOOD)
    (c,) = [c for c in run_claims(ctx, only=["EMP-4"]) if c["id"] == "EMP-4"]
    assert c["status"] == "verified", [e["summary"] for e in c["evidence"]]
    for e in c["evidence"]:
        assert e["provenance"]["scale"] == "medium" and e["provenance"]["seeds"] == [0, 1, 2]
        assert e["provenance"]["results"].endswith("cub-medium")


# Each broken input flips exactly the check that judges it.
BROKEN = {
    "table_i_transform_vs_receptive_field_box": {"CSTN": dict(gk=[0.3, 0.32, 0.31],
                                                              rf=[0.6, 0.62, 0.58])},
    "table_ii_cstn_vs_no_cstn": {"no-CSTN": dict(gk=[0.8, 0.81, 0.79])},
    "table_iii_lambda0_collapses_boxes": {"CSTN-lam0": dict(gk=[0.7, 0.72, 0.71],
                                                            area=[0.2, 0.21, 0.2])},
    "fig6_two_levels_beat_one": {"CSTN-coarse": dict(gk=[0.8, 0.82, 0.79])},
    "table_iv_cstn_vs_cam": {"CAM": dict(gk=[0.8, 0.85, 0.82])},
}


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_failed_on_results_that_contradict_it(tmp_path, name):
    ev = CHECKS[name](_ctx(tmp_path, GOOD | BROKEN[name]))
    assert ev.status == "failed", ev.summary


def test_failed_is_decided_on_the_claim_family_interval(tmp_path):
    # no-CSTN ahead by 0.11 +- 0.026: the 95 % interval alone is below 0 (one interval
    # would fail), but EMP-4 is six intervals, so "failed" needs the 99.17 % one below 0
    from proofs.registry import claim_family

    assert claim_family("EMP-4") == 6  # I, II, III (area and Loc), Fig. 6, IV
    ev = emp4.table_ii(_ctx(tmp_path, GOOD | {"no-CSTN": dict(gk=[0.7, 0.71, 0.72])}))
    num = ev.numbers["GT-known Loc (CSTN - no-CSTN)"]
    assert num["hi"] < 0 < num["fail_interval"]["hi"]
    assert num["fail_interval"]["level"] == pytest.approx(1 - 0.05 / 6)
    assert ev.status == "inconclusive", ev.summary


def test_too_few_seeds_or_a_small_scale_is_not_evidence(tmp_path):
    runs = dict(GOOD)
    runs["CSTN"] = dict(GOOD["CSTN"], seeds=(0, 1, 2), scale="small")
    ev = emp4.table_i(_ctx(tmp_path, runs))
    assert ev.status == "not run"
    ev = emp4.table_ii(CheckContext(out_dir=tmp_path, results_dir=tmp_path))
    assert ev.status == "not run"
