"""proofs.plan.reach: the smallest effect an EMP-2/3/4 interval could verify and fail with
its seeds and family (issue 23), exact against the verdict it annotates, and carried in
every EMP-2/3/4 interval's evidence -- on good results and on broken ones."""

from __future__ import annotations

import pytest

from proofs.plan import reach
from proofs.registry import claim_family
from proofs.stats import decide_paired, paired_seed_ci
from tests.proofs import test_claims_emp2 as t2
from tests.proofs import test_emp3 as t3
from tests.proofs import test_emp4 as t4


@pytest.mark.parametrize("m, t_fail", [(6, 10.89), (15, 17.3), (19, 19.5)])
def test_three_seeds_reproduce_the_issues_t_values(m, t_fail):
    r = reach(paired_seed_ci([1.0, 2.0, 4.0], [0.0, 0.0, 0.0]), m)
    assert r["t_to_verify"] == pytest.approx(4.303, abs=1e-3)
    assert r["t_to_fail"] == pytest.approx(t_fail, abs=0.05)
    assert r["fail_over_verify"] > 2.5  # at 3 seeds, failing needs > 2.5x the effect


@pytest.mark.parametrize("m", [1, 6, 19])
@pytest.mark.parametrize("n", [3, 5])
def test_reach_is_the_verdicts_own_boundary(m, n):
    """A wrong-side mean just beyond min_effect_to_fail fails, just inside is inconclusive;
    likewise for min_effect_to_verify on the claimed side."""
    noise = [0.3 * ((-1) ** k) * (1 + k) for k in range(n)]
    noise = [x - sum(noise) / n for x in noise]  # mean 0, fixed spread
    r = reach(paired_seed_ci(noise, [0.0] * n), m)
    for mean, want in ((-1.001 * r["min_effect_to_fail"], "failed"),
                       (-0.999 * r["min_effect_to_fail"], "inconclusive"),
                       (1.001 * r["min_effect_to_verify"], "verified"),
                       (0.999 * r["min_effect_to_verify"], "inconclusive")):
        got, _, _ = decide_paired([mean + x for x in noise], [0.0] * n, m=m)
        assert got == want, (mean, r)


def _reaches(numbers):
    return [v["reach"] for v in numbers.values() if isinstance(v, dict) and "reach" in v]


def test_emp2_intervals_carry_their_reach_good_and_broken(tmp_path):
    t2._suite(tmp_path / "good", t2.PAPERLIKE)
    for ev in t2._run(tmp_path / "good").values():
        (r,) = _reaches(ev.numbers)
        assert r["family"] == claim_family("EMP-2") and r["seeds"] == 3
    swapped = {"STN-C0": t2.PAPERLIKE["STN-SL3"], "STN-C8": t2.PAPERLIKE["STN-SL8"],
               "STN-SL3": t2.PAPERLIKE["STN-C0"], "STN-SL8": t2.PAPERLIKE["STN-C8"],
               "STN-C0-it2": [0.030, 0.031, 0.0305]}
    t2._suite(tmp_path / "bad", swapped)
    for ev in t2._run(tmp_path / "bad").values():
        assert ev.status == "failed"
        ((name, iv),) = [(k, v) for k, v in ev.numbers.items()
                         if isinstance(v, dict) and "reach" in v]
        assert -iv["estimate"] > iv["reach"]["min_effect_to_fail"], name


def test_emp3_intervals_carry_their_reach_good_and_broken(tmp_path):
    t3._write(tmp_path / "good")
    good = t3._checks(tmp_path / "good", tmp_path / "good")
    assert sum(len(_reaches(e["numbers"])) for e in good.values()) == 16 + 2 + 1
    for e in good.values():
        assert all(r["family"] == claim_family("EMP-3") for r in _reaches(e["numbers"]))
    t = {k: dict(v) for k, v in t3.TABLE.items()}
    for k in t3.KINDS:
        t[k]["linearized"] = tuple(x + 0.5 for x in t3.TABLE[k]["bilinear"])
    t3._write(tmp_path / "bad", table=t)
    bad = t3._checks(tmp_path / "bad", tmp_path / "bad")
    assert bad["linearized_lowest"]["status"] == "failed"
    assert _reaches(bad["linearized_lowest"]["numbers"])


@pytest.mark.parametrize("name", sorted(t4.CHECKS))
def test_emp4_intervals_carry_their_reach_good_and_broken(tmp_path, name):
    ev = t4.CHECKS[name](t4._ctx(tmp_path / "good", t4.GOOD))
    assert ev.status == "verified"
    assert all(r["family"] == claim_family("EMP-4") for r in _reaches(ev.numbers))
    assert _reaches(ev.numbers)
    bad = t4.CHECKS[name](t4._ctx(tmp_path / "bad", t4.GOOD | t4.BROKEN[name]))
    assert bad.status == "failed" and _reaches(bad.numbers)
