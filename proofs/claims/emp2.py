"""EMP-2: deep placements and iterations (000 Sec. IV-B3, IV-B4, IV-C4, IV-C5; Tables III-V).

000's words (Sec. IV-B3, SVHN): STN-CX "performs worse than at depth 3" at X = 6, 8,
"This stands in sharp contrast to STN-SLX, where the classification error keeps
decreasing, reaching 3.26% for STN-SL8"; (Sec. IV-C, PlanktonSet) "networks that transform
the input are better than STN-CX" and "Increasing the depth of STN-SLX does not decrease
performance as much as it does for STN-DLX"; (Sec. IV-B4) "multiple iterations is not a
replacement for using deeper features, but can confer additional advantages"; (Sec. IV-C5)
"multiple iterations is not a substitute for deeper features when predicting
transformations, as the deeper networks remain better than STN-C0".

The paper's numbers (mean test error; SVHN over 3 runs, PlanktonSet over 4):

* SVHN Table IV: STN-C0 3.81 %, C3 3.70 %, C6 3.91 %, C8 4.00 % (one of 4 runs diverged);
  SL3 3.54 %, SL6 3.29 %, SL8 3.26 %. Two iterations: STN-C0 3.80 %.
* PlanktonSet Table V: STN-C0 22.1 %, C10 22.7 %; SL2 21.5 %, SL4 21.5 %, SL10 21.9 %.
  Two iterations: STN-C0 21.8 %.

The checks, per data set (each on a committed suite directory of ``stnlab train --suite
svhn|plankton``: the largest scale, ``<data>-paper``, ``-medium``, ``-small``, that holds
every network the check needs, finished or stopped; ``smoke`` is never evidence), all as paired-by-seed Student-t intervals
(:func:`proofs.stats.paired_seed_ci`, 95 %, >= 3 seeds) judged by
:func:`proofs.stats.decide` against 0:

1. ``deepest_cx_worse_than_slx``: error(STN-C<Xmax>) - error(STN-SL<Xmax>) > 0
   (Xmax = 8 on SVHN, 10 on PlanktonSet);
2. ``slx_degrades_less_than_cx``: [error(C<Xmax>) - error(C0)] - [error(SL<Xmax>) -
   error(SL<Xmin>)] > 0 (Xmin = the shallowest SL depth: 3 / 2);
3. ``iterations_no_substitute``: error(STN-C0-it2) - error(STN-SL<Xref>) > 0 with the
   deeper reference fixed from 000 before any run of ours: SL8 on SVHN, SL4 on
   PlanktonSet (000's best SL nets).

"verified" needs the 95 % interval above 0; "failed" is decided on the interval at
:func:`proofs.stats.family_level` ``(6)`` (99.17 %: Bonferroni over the claim's six
intervals, :func:`proofs.registry.claim_family`), since the claim fails if any check does.

Without results of >= 3 seeds at ``small`` or above, a check returns ``"not run"`` and
says which runs it needs; a network whose run stopped before finishing (diverged, or
collapsed in a suite that stops on collapse: ``suite.json``'s ``"stopped"``) makes the
check ``"inconclusive"``, naming the step and seed. Every evidence records ``provenance`` = ``{"results", "scale",
"seeds", "device"}``, and in its numbers as ``"<data> provenance"``.
"""

from __future__ import annotations

import json
from pathlib import Path

from proofs import registry as R
from proofs.registry import Evidence, check
from proofs.plan import reach
from proofs.stats import decide_paired, family_level, paired_seed_ci

__all__ = ["DATASETS", "find_suite", "difference", "MIN_SEEDS"]

# The claim itself (statement in the source's words, the exact table numbers in its note)
# is declared once, in proofs.claims.empirical; this module adds its checks.
import proofs.claims.empirical  # noqa: E402, F401

MIN_SEEDS = 3
#: a priori: 95 % intervals (the project's default level)
LEVEL = 0.95
SCALES = ("paper", "medium", "small")  # largest first; smoke is never evidence
#: data set -> (Xmax, Xmin of SL, the fixed deeper reference for the iteration check)
DATASETS = {"svhn": (8, 3, "STN-SL8"), "plankton": (10, 2, "STN-SL4")}


def find_suite(results_dir, data: str) -> Path | None:
    """The committed ``<data>-<scale>`` suite directory of the largest scale, or None."""
    if results_dir is None:
        return None
    for s in SCALES:
        d = Path(results_dir) / f"{data}-{s}"
        if (d / "suite.json").is_file():
            return d
    return None


def _errors(suite: Path, data: str, index: dict) -> tuple[dict, dict]:
    """``({net: [error per seed]}, provenance)`` from ``index`` (its ``suite.json``)."""
    runs = index.get("runs", {}).get(data, {})
    errs = {n: r["error"]["per_seed"] for n, r in runs.items() if r and "error" in r}
    # the seed ids common to the runs (a run without a "seeds" list: 0 .. n-1)
    ids = [set(r.get("seeds") or range(len(r["error"]["per_seed"])))
           for r in runs.values() if r and "error" in r]
    seeds = sorted(set.intersection(*ids)) if ids else []
    device = sorted({json.loads((suite / data / n / "env.json").read_text()).get("device", "?")
                     if (suite / data / n / "env.json").is_file() else "?" for n in runs})
    prov = R.make_provenance(suite, index.get("scale"), seeds, device)
    return errs, prov


def _sums(errs: dict, plus: list[str], minus: list[str]) -> tuple[list, list]:
    """Per seed, ``sum(errs[plus])`` and ``sum(errs[minus])``."""
    n = len(errs[plus[0]])
    return ([sum(errs[k][i] for k in plus) for i in range(n)],
            [sum(errs[k][i] for k in minus) for i in range(n)])


def difference(errs: dict, plus: list[str], minus: list[str]):
    """Paired interval of ``sum(errs[plus]) - sum(errs[minus])`` per seed."""
    return paired_seed_ci(*_sums(errs, plus, minus), level=LEVEL)


def _holding(results_dir, data: str, need) -> Path | None:
    """The largest-scale committed suite that holds every network of ``need`` (finished or
    stopped); else the largest one there is (which then says what it lacks)."""
    if results_dir is None:
        return None
    for s in SCALES:
        d = Path(results_dir) / f"{data}-{s}"
        if not (d / "suite.json").is_file():
            continue
        index = json.loads((d / "suite.json").read_text())
        have = set(index.get("runs", {}).get(data, {})) | set(
            index.get("stopped", {}).get(data, {}))
        if set(need) <= have:
            return d
    return find_suite(results_dir, data)


def _judge(ctx, data: str, name: str, plus: list[str], minus: list[str]) -> Evidence:
    need = sorted(set(plus + minus))
    # a check reads the largest suite holding all its networks: a `medium` run still
    # missing some networks moves only the checks that need them to the smaller suite
    suite = _holding(ctx.results_dir, data, need)
    if suite is None:
        return Evidence.not_run(
            f"no such runs yet: needs `stnlab train --suite {data} --scale medium` "
            f"(>= {MIN_SEEDS} seeds) results for {', '.join(need)} committed as results/{data}-medium (or -small / -paper)")
    index = json.loads((suite / "suite.json").read_text())
    errs, prov = _errors(suite, data, index)
    missing = [k for k in need if k not in errs]
    few = [k for k in need if k in errs and len(errs[k]) < MIN_SEEDS]
    stopped = {k: s for k, s in index.get("stopped", {}).get(data, {}).items() if k in missing}
    if missing and len(stopped) == len(missing):
        # trained, but stopped before the end: an outcome, not a missing run
        why = "; ".join(f"{k} {s['reason']} at step {s['step']}"
                        + (f" (seed {s['seed']})" if s.get("seed") is not None else "")
                        for k, s in stopped.items())
        return Evidence.inconclusive(
            f"inconclusive: in {suite.name} ({prov['scale']}) {why}: its run stopped before "
            f"finishing, so there is no error to compare (not rerun with another seed or "
            f"setting)", {f"{data}: {name} stopped": stopped, f"{data}: {name} provenance": prov},
            provenance=prov)
    if missing:
        return Evidence.not_run(f"{suite} lacks {missing}; needs {', '.join(need)} with "
                                f">= {MIN_SEEDS} seeds at scale medium or paper")
    if few or prov["scale"] not in ("medium", "paper"):
        # the runs exist but cannot decide (issue 10 item 7): inconclusive, numbers shown
        nums = {f"{data}: {name} error {k} (per seed)": list(errs[k]) for k in need}
        return Evidence.inconclusive(
            f"inconclusive: {suite.name} ({prov['scale']}) has {min(len(errs[k]) for k in need)}"
            f" seed(s) for {', '.join(need)}; an ordering needs >= {MIN_SEEDS} seeds at "
            f"scale medium or paper", {**nums, f"{data}: {name} provenance": prov}, provenance=prov)
    m = R.claim_family("EMP-2")
    verdict, ci, wide = decide_paired(*_sums(errs, plus, minus), m=m, level=LEVEL)
    expr = f"{' + '.join(plus)} - ({' + '.join(minus)})"
    # number names are per data set and check: a claim's checks share one namespace
    # (run_claims refuses a name reported with two values)
    numbers = {f"{data}: {name}": {**ci.as_dict(), "fail_interval": wide.as_dict(),
                                   "reach": reach(ci, m)},  # proofs.plan.reach
               f"{data}: {name} decision": verdict,
               f"{data}: {name} provenance": prov,
               **{f"{data}: {name} mean error {k}": sum(errs[k]) / len(errs[k]) for k in need}}
    status = verdict if verdict in R.STATUSES else "not run"
    summary = (f"{data} ({prov['scale']}, seeds {prov['seeds']}): error {expr} = "
               f"{100 * ci.estimate:+.2f} pp, {int(100 * LEVEL)}% CI [{100 * ci.lo:+.2f}, "
               f"{100 * ci.hi:+.2f}] -> {verdict}")
    return Evidence(status, numbers, f"{int(100 * LEVEL)}% paired Student-t CI over seeds of {expr} > 0 "
                    f"verifies; failed only if the {100 * family_level(m, LEVEL):.2f}% CI "
                    f"(Bonferroni over the claim's {m} intervals) is below 0",
                    summary, provenance=prov)


def _checks_for(data: str):
    xmax, xmin, ref = DATASETS[data]
    where = (f"95 % paired Student-t interval over >= {MIN_SEEDS} seeds of the {data} suite "
             f"(medium or paper; fewer seeds or small: inconclusive, no runs: not run)")

    def deepest(ctx):
        return _judge(ctx, data, "deepest_cx_worse_than_slx", [f"STN-C{xmax}"],
                      [f"STN-SL{xmax}"])

    deepest.__doc__ = (f"{data}: at the deepest X = {xmax}, error(STN-C{xmax}) - "
                       f"error(STN-SL{xmax}) > 0; {where}.")

    def degrade(ctx):
        return _judge(ctx, data, "slx_degrades_less_than_cx",
                      [f"STN-C{xmax}", f"STN-SL{xmin}"], ["STN-C0", f"STN-SL{xmax}"])

    degrade.__doc__ = (f"{data}: CX degrades more with depth than SLX: [error(STN-C{xmax}) - "
                       f"error(STN-C0)] - [error(STN-SL{xmax}) - error(STN-SL{xmin})] > 0; "
                       f"{where}.")

    def iterations(ctx):
        return _judge(ctx, data, "iterations_no_substitute", ["STN-C0-it2"], [ref])

    iterations.__doc__ = (f"{data}: a second iteration does not make the shallow localizer as "
                          f"good as deeper features: error(STN-C0-it2) - error({ref}) > 0 "
                          f"({ref} fixed from 000 before any run); {where}.")

    return tuple(check("EMP-2", scales=("quick", "full"), name=f"{data}_{n}", intervals=1)(f)
                 for n, f in (
        ("deepest_cx_worse_than_slx", deepest), ("slx_degrades_less_than_cx", degrade),
        ("iterations_no_substitute", iterations)))


CHECKS = {d: _checks_for(d) for d in DATASETS}
