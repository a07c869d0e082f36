"""``proofs.registry``: scales declared per check, no silent duplicates, no silent import errors."""

from __future__ import annotations

import pytest

from proofs import registry as reg


@pytest.fixture
def fresh(monkeypatch):
    monkeypatch.setattr(reg, "_REGISTRY", {})
    reg.claim("TST-1", "a test claim", source="here")
    return reg


def test_a_check_runs_only_at_its_declared_scales(fresh, tmp_path, monkeypatch):
    @fresh.check("TST-1", scales=("full",), name="full_only")
    def _full(ctx):
        return fresh.Evidence.compare("x", 1.0, "<", 2.0, tolerance="a priori")

    @fresh.check("TST-1", scales=("quick", "full"), name="both")
    def _both(ctx):
        return fresh.Evidence.compare("y", 1.0, "<", 2.0, tolerance="a priori")

    monkeypatch.setattr(fresh, "CLAIM_MODULES", [])
    quick = fresh.run_claims(fresh.CheckContext(out_dir=tmp_path, quick=True))
    full = fresh.run_claims(fresh.CheckContext(out_dir=tmp_path, quick=False))
    assert [e["status"] for e in quick[0]["evidence"]] == ["not run", "verified"]
    assert quick[0]["status"] == "not run"
    assert [e["status"] for e in full[0]["evidence"]] == ["verified", "verified"]


def test_a_second_check_under_one_name_is_an_error(fresh):
    @fresh.check("TST-1", name="same")
    def _a(ctx):
        return None

    with pytest.raises(ValueError, match="TST-1 already has a check named 'same'"):
        @fresh.check("TST-1", name="same")
        def _b(ctx):
            return None


def test_claim_family_sums_the_checks_intervals(fresh):
    assert fresh.claim_family("TST-1") == 1  # no intervals: a family of one
    fresh.check("TST-1", name="a", intervals=3)(lambda ctx: None)
    fresh.check("TST-1", name="b")(lambda ctx: None)  # a deterministic check: 0
    fresh.check("TST-1", name="c", intervals=2)(lambda ctx: None)
    assert fresh.claim_family("TST-1") == 5
    with pytest.raises(ValueError, match="intervals an int >= 0"):
        fresh.check("TST-1", name="d", intervals=-1)
    with pytest.raises(ValueError, match="'TST-9' is not registered"):
        fresh.claim_family("TST-9")


def test_the_empirical_claims_families():
    # counted by hand from each check's docstring: EMP-1 the plan's 7 primaries (3 pose
    # orders, 3 error orders, STN-C1's slope), EMP-1F its 2 count rules, EMP-1S 3 + 3,
    # EMP-1T 4; EMP-2 two data sets x (3 checks + 2 iteration statements); EMP-2D one per
    # data set; EMP-2N C6 and C8; EMP-2T one; EMP-3 16 + 2 + 1; EMP-4 I, II, III (two),
    # Fig. 6, IV
    reg.load_all()
    ids = ("EMP-1", "EMP-1F", "EMP-1S", "EMP-1T", "EMP-2", "EMP-2D", "EMP-2N", "EMP-2T",
           "EMP-3", "EMP-4")
    assert {c: reg.claim_family(c) for c in ids} == {
        "EMP-1": 7, "EMP-1F": 2, "EMP-1S": 6, "EMP-1T": 4, "EMP-2": 10, "EMP-2D": 2,
        "EMP-2N": 2, "EMP-2T": 1, "EMP-3": 19, "EMP-4": 6}


def test_claims_sort_by_number_then_suffix():
    assert sorted(["EMP-2", "EMP-1T", "EMP-1", "EMP-10", "EMP-1F", "INV-3"],
                  key=reg._sort_key) == ["INV-3", "EMP-1", "EMP-1F", "EMP-1T", "EMP-2",
                                         "EMP-10"]


def test_unknown_scale_is_an_error(fresh):
    with pytest.raises(ValueError, match=r"check: expected scales from .*got \('tiny',\)"):
        fresh.check("TST-1", scales=("tiny",))


def test_a_claim_module_that_fails_to_import_is_an_error(monkeypatch):
    monkeypatch.setattr(reg, "CLAIM_MODULES", ["proofs.claims.no_such_claims_module"])
    with pytest.raises(ModuleNotFoundError):
        reg.load_all()


# --- the evidence API (issue 10): statuses, tolerances with provenance, seeds, intervals ---

from proofs.stats import Interval, bootstrap_mean_ci

E = reg.Evidence


def _iv(lo, hi, est=None):
    return Interval(est if est is not None else (lo + hi) / 2, lo, hi, 0.95, "test", 5)


def test_statuses_are_the_four_of_the_contract():
    assert reg.STATUSES == ("verified", "failed", "inconclusive", "not run")


def test_compare_requires_a_tolerance_with_provenance():
    with pytest.raises(TypeError, match="tolerance"):
        E.compare("x", 1.0, "<", 2.0)  # missing: rejected
    for bad in ("", "1e-6", "derived: ", "calibrated on control ", "a-priori", None):
        with pytest.raises(ValueError, match=r"Evidence\.compare: expected tolerance to start "
                           r"with 'a priori'.*got"):
            E.compare("x", 1.0, "<", 2.0, tolerance=bad)
    for good in ("a priori", "a priori: float64 round-off", "derived: 4 * eps * |x|",
                 "calibrated on control bilinear"):
        ev = E.compare("x", 1.0, "<", 2.0, tolerance=good)
        assert ev.status == "verified" and ev.to_json()["tolerance_source"] == good
    assert E.compare("x", float("nan"), "<", 2.0, tolerance="a priori").status == "failed"


def test_over_seeds_holds_in_every_seed_or_fails():
    ok = E.over_seeds("err", {0: 1e-9, 1000: 3e-9, 2000: 2e-9}, "<=", 1e-8,
                      tolerance="derived: 100 ulp")
    assert ok.status == "verified"
    n = ok.numbers["err"]
    assert n["per_seed"] == {"0": 1e-9, "1000": 3e-9, "2000": 2e-9}  # str keys, as in report.json
    assert (n["min"], n["median"], n["max"]) == (1e-9, 2e-9, 3e-9)
    bad = E.over_seeds("err", {0: 1e-9, 1000: 3e-8, 2000: 2e-9}, "<=", 1e-8,
                       tolerance="derived: 100 ulp")
    assert bad.status == "failed" and bad.numbers["err"]["failing_seeds"] in ([1000], ["1000"])
    with pytest.raises(ValueError, match="over_seeds: expected per_seed"):
        E.over_seeds("err", {}, "<=", 1.0, tolerance="a priori")
    with pytest.raises(ValueError, match="over_seeds: expected tolerance"):
        E.over_seeds("err", {0: 1.0}, "<=", 2.0, tolerance="tuned")


@pytest.mark.parametrize("lo, hi, direction, status", [
    (0.1, 0.3, ">", "verified"), (-0.3, -0.1, ">", "failed"), (-0.1, 0.2, ">", "inconclusive"),
    (-0.3, -0.1, "<", "verified"), (0.1, 0.3, "<", "failed"), (0.0, 0.2, ">", "inconclusive"),
])
def test_from_interval_decides_by_the_interval(lo, hi, direction, status):
    ev = E.from_interval("d", _iv(lo, hi), null=0.0, direction=direction)
    assert ev.status == status
    assert ev.numbers["d"]["lo"] == lo and ev.numbers["d"]["hi"] == hi
    assert ev.numbers["d"]["label"] == f"{(lo + hi) / 2:.4g} [{lo:.4g}, {hi:.4g}]"
    assert ev.tolerance_source.startswith("a priori")


def test_an_interval_containing_the_null_is_inconclusive_on_real_data():
    # a noisy difference centred on 0 vs one clearly above: the bootstrap interval decides
    tie = [0.3, -0.2, 0.1, -0.25, 0.05, -0.1]
    up = [1.3, 0.8, 1.1, 0.75, 1.05, 0.9]
    assert E.from_interval("d", bootstrap_mean_ci(tie, seed=0)).status == "inconclusive"
    assert E.from_interval("d", bootstrap_mean_ci(up, seed=0)).status == "verified"
    assert E.from_interval("d", bootstrap_mean_ci([-x for x in up], seed=0)).status == "failed"


V, F, I, N = (E.compare("a", 0.0, "<", 1.0, tolerance="a priori"),
              E.compare("b", 2.0, "<", 1.0, tolerance="a priori"),
              E.inconclusive("too few seeds", {"c": 1.0}), E.not_run("no records"))


@pytest.mark.parametrize("parts, status", [
    ([V], "verified"), ([V, V.__class__("verified", {"z": 1})], "verified"),
    ([V, F], "failed"), ([F, I], "failed"), ([I, F], "failed"), ([N, F], "failed"),
    ([V, I], "inconclusive"), ([N, I], "inconclusive"), ([I, N], "inconclusive"),
    ([V, N], "not run"), ([N], "not run"),
])
def test_all_of_precedence(parts, status):
    assert E.all_of(parts).status == status
    assert reg.combine_statuses(p.status for p in parts) == status


def test_all_of_lists_the_failing_part_and_rejects_duplicate_names():
    ev = E.all_of([V, F])
    assert ev.failures == [{"tolerance": "b < 1", "numbers": {"b": 2.0}, "summary": ""}]
    with pytest.raises(ValueError, match="all_of: expected unique number names, got 'a' twice "
                       "with different values"):
        E.all_of([V, E.compare("a", 0.5, "<", 1.0, tolerance="a priori")])
    same = E.all_of([V, E.compare("a", 0.0, "<", 2.0, tolerance="a priori")])  # one number
    assert same.numbers == {"a": 0.0} and same.status == "verified"
    with pytest.raises(ValueError, match="all_of: expected a non-empty list"):
        E.all_of([])


def test_prove_seeds_and_the_context():
    assert reg.prove_seeds(7, 3) == (7, 1007, 2007)
    assert reg.CheckContext(out_dir=".", seed=3).seeds == reg.prove_seeds(3, 5)
    assert reg.CheckContext(out_dir=".", seed=3, quick=True).seeds == (3, 1003)
    with pytest.raises(ValueError, match=r"CheckContext: expected seeds\[0\] == seed"):
        reg.CheckContext(out_dir=".", seed=1, seeds=(2, 3))
    with pytest.raises(ValueError, match="prove_seeds: expected n to be an int >= 1, got 0"):
        reg.prove_seeds(0, 0)


def test_a_claim_combines_its_checks_like_all_of(fresh, tmp_path, monkeypatch):
    monkeypatch.setattr(fresh, "CLAIM_MODULES", [])
    fresh.claim("TST-2", "another", source="here")
    fresh.check("TST-1", name="v")(lambda ctx: E.compare("a", 0.0, "<", 1.0, tolerance="a priori"))
    fresh.check("TST-1", name="i")(lambda ctx: E.inconclusive("interval contains 0"))
    fresh.check("TST-2", name="v")(lambda ctx: E.compare("a", 0.0, "<", 1.0, tolerance="a priori"))
    fresh.check("TST-2", name="n")(lambda ctx: E.not_run("no records"))
    res = {c["id"]: c["status"] for c in fresh.run_claims(fresh.CheckContext(out_dir=tmp_path))}
    assert res == {"TST-1": "inconclusive", "TST-2": "not run"}


def test_number_names_are_unique_within_a_claim(fresh, tmp_path, monkeypatch):
    monkeypatch.setattr(fresh, "CLAIM_MODULES", [])
    fresh.check("TST-1", name="one")(lambda ctx: E.compare("x", 0.0, "<", 1.0,
                                                           tolerance="a priori"))
    fresh.check("TST-1", name="two")(lambda ctx: E.compare("x", 0.5, "<", 1.0,
                                                           tolerance="a priori"))
    (c,) = fresh.run_claims(fresh.CheckContext(out_dir=tmp_path))
    assert c["status"] == "failed"
    assert "number name(s) ['x'] already reported with other values by check(s) ['one']" in \
        c["evidence"][1]["summary"]


def test_an_empirical_check_without_provenance_fails(fresh, tmp_path, monkeypatch):
    monkeypatch.setattr(fresh, "CLAIM_MODULES", [])
    fresh.claim("EMP-9", "trained", source="here", kind="empirical")
    prov = {"results": "r", "scale": "medium", "seeds": [0, 1, 2], "device": "cpu"}
    fresh.check("EMP-9", name="bare")(lambda ctx: E.from_interval("d", _iv(0.1, 0.2)))
    fresh.check("EMP-9", name="traced")(
        lambda ctx: E.from_interval("e", _iv(0.1, 0.2), provenance=prov))
    (c,) = [c for c in fresh.run_claims(fresh.CheckContext(out_dir=tmp_path,
                                                           require_plan=False))
            if c["id"] == "EMP-9"]
    bare, traced = c["evidence"]
    assert bare["status"] == "failed" and "gave no provenance" in bare["summary"]
    assert traced["status"] == "verified" and traced["provenance"] == prov
    # the protocol (stnlab prove's default): traced but not pre-registered -> inconclusive
    (c,) = [c for c in fresh.run_claims(fresh.CheckContext(out_dir=tmp_path))
            if c["id"] == "EMP-9"]
    bare, traced = c["evidence"]
    assert bare["status"] == "failed"
    assert traced["status"] == "inconclusive" and "no pre-registered plan for r" in \
        traced["summary"] and "it would be 'verified'" in traced["summary"]
    with pytest.raises(ValueError, match=r"Evidence: expected provenance with keys"):
        E.inconclusive("x", provenance={"results": "r"})


def test_default_results_dir_is_next_to_the_package_or_the_env(tmp_path, monkeypatch):
    from pathlib import Path

    import proofs

    monkeypatch.delenv(reg.RESULTS_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    assert reg.default_results_dir() == Path(proofs.__file__).resolve().parents[1] / "results"
    monkeypatch.setenv(reg.RESULTS_ENV, str(tmp_path))
    assert reg.default_results_dir() == tmp_path.resolve()
    monkeypatch.setenv(reg.RESULTS_ENV, str(tmp_path / "nope"))
    with pytest.raises(ValueError, match=r"default_results_dir: expected \$STNLAB_RESULTS"):
        reg.default_results_dir()


def test_make_provenance_is_the_one_form():
    from proofs.registry import make_provenance

    assert make_provenance("r", ["medium", "small", "medium"], {2, 0, 1}, None) == {
        "results": "r", "scale": "medium+small", "seeds": [0, 1, 2], "device": "unknown"}
    from pathlib import Path

    assert make_provenance(Path("a/b"), "paper", [3], ["cpu", "cuda"])["device"] == "cpu+cuda"
