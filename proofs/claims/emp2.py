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

Issue 28 added the checks of the iteration statements EMP-2 already made (``svhn`` SL3 /
SL6 and ``plankton`` C0 / DL2 helped by a second iteration: 10 intervals in all) and three
claims of their own, each in 000's words: **EMP-2D** "deeper localization networks are
difficult to train" (DLX at the deepest X worse than at the shallowest), **EMP-2N** "at
depths 6 and 8, STN-CX becomes worse than not using any ST at all" and **EMP-2T** Table
III's STN-SL0123 below STN-C0123.

**The pre-registration protocol** (:mod:`proofs.plan`), as EMP-1's
:func:`proofs.claims.emp1.judge_planned` applies it: each check first reads the
pre-registered suite of its data set (:data:`PLANNED`: ``svhn-standin-v2-{paper,medium}``
with variant ``svhn-v2``, ``plankton-v2-{paper,medium}`` with ``plankton-v2``) holding its
networks. There its interval must be a primary of the suite's ``plan.json`` with the same
definition (:func:`spec`), the plan's family for the claim must be the claim's
(:func:`proofs.registry.claim_family`: a deliberate over-count where the plan calls some of
a claim's intervals undecidable, which only makes "failed" harder), the runs' seeds must be
the plan's, and :func:`proofs.plan.protocol_blockers` must find nothing (plan committed
before the runs, the pilot's gate met, no network at chance); any reason makes the check
``inconclusive`` with every number still shown. An interval the plan lists as
undecidable is inconclusive by the plan, naming its power arithmetic. Without a planned
suite the check reads the unplanned committed suites as before (below), which ``stnlab
prove`` blocks as "no pre-registered plan" (:func:`proofs.registry.run_claims`).

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
from proofs.plan import PlanError, load_plan, protocol_blockers
from proofs.registry import Evidence, check
from proofs.plan import reach
from proofs.stats import decide_paired, family_level, paired_seed_ci

__all__ = ["DATASETS", "PLANNED", "CHECKS", "find_suite", "difference", "spec", "MIN_SEEDS"]

# The claim itself (statement in the source's words, the exact table numbers in its note)
# is declared once, in proofs.claims.empirical; this module adds its checks.
import proofs.claims.empirical  # noqa: E402, F401

MIN_SEEDS = 3
#: a priori: 95 % intervals (the project's default level)
LEVEL = 0.95
SCALES = ("paper", "medium", "small")  # largest first; smoke is never evidence
#: data set -> (Xmax, Xmin of SL, the fixed deeper reference for the iteration check)
DATASETS = {"svhn": (8, 3, "STN-SL8"), "plankton": (10, 2, "STN-SL4")}
#: data set -> (pre-registered suite directories, largest scale first; their variant).
PLANNED = {"svhn": (("svhn-standin-v2-paper", "svhn-standin-v2-medium"), "svhn-v2"),
           "plankton": (("plankton-v2-paper", "plankton-v2-medium"), "plankton-v2")}


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


def spec(claim_id: str, data: str, plus: list[str], minus: list[str]) -> dict:
    """A primary's definition as the plan must hold it: ``sum(plus) - sum(minus) > 0`` in
    test error, paired by seed, on ``data``."""
    return {"claim": claim_id, "data": data, "metric": "error", "plus": list(plus),
            "minus": list(minus), "direction": ">", "null": 0.0}


def _index(d: Path) -> dict:
    return json.loads((d / "suite.json").read_text())


def _has(index: dict, variant: str, need) -> bool:
    have = set(index.get("runs", {}).get(variant, {})) | set(
        index.get("stopped", {}).get(variant, {}))
    return set(need) <= have


def _planned(results_dir, data: str, need) -> Path | None:
    """The first pre-registered suite of ``data`` (:data:`PLANNED`) holding ``need``."""
    if results_dir is None:
        return None
    names, variant = PLANNED[data]
    for n in names:
        d = Path(results_dir) / n
        if (d / "suite.json").is_file() and _has(_index(d), variant, need):
            return d
    return None


def _by_seed(run: dict) -> dict[int, float]:
    errs = run["error"]["per_seed"]
    return {int(s): float(e) for s, e in zip(run.get("seeds") or range(len(errs)), errs)}


def _pilot_error(ctx, plan) -> float | None:
    """The gate network's worst seed error in the plan's committed pilot (None: missing)."""
    gate = plan.data["gate"]
    d = Path(ctx.results_dir) / Path(gate["pilot"]).name
    if not (d / "suite.json").is_file():
        return None
    run = _index(d).get("runs", {}).get(gate["variant"], {}).get(gate["net"])
    return max(_by_seed(run).values()) if run and "error" in run else None


def _plan_reasons(ctx, plan, pid: str, want: dict, claim_id: str, seeds) -> list[str]:
    """Why ``plan`` cannot decide the primary ``pid`` (empty: it can, so far)."""
    undecidable = {u.get("id"): u for u in plan.data.get("undecidable", [])
                   if isinstance(u, dict)}
    if pid in undecidable:
        why = undecidable[pid].get("why", "see its PLAN.md")
        return [f"the plan calls {pid} undecidable at its scale ({why})"]
    try:
        got = plan.primary_named(pid)
    except PlanError:
        return [f"{pid} is not a primary of {plan.path} (not pre-registered)"]
    why = []
    diff = [k for k, v in want.items() if got.get(k) != v]
    if diff:
        why.append(f"the plan's {pid} differs from the check's ({diff})")
    family = R.claim_family(claim_id)
    if plan.data.get("claims", {}).get(claim_id) != family:
        why.append(f"the plan's family for {claim_id} ({plan.data.get('claims', {}).get(claim_id)}"
                   f") is not the check's ({family})")
    if sorted(seeds) != sorted(plan.seeds):
        why.append(f"the runs' seeds {sorted(seeds)} are not the plan's {sorted(plan.seeds)}")
    return why


def _judge(ctx, claim_id: str, data: str, name: str, plus: list[str],
           minus: list[str]) -> Evidence:
    """A planned suite decides by its plan (the protocol); else the unplanned suites."""
    need = sorted(set(plus + minus))
    suite = _planned(ctx.results_dir, data, need)
    if suite is None:
        return _judge_unplanned(ctx, claim_id, data, name, plus, minus)
    variant = PLANNED[data][1]
    index = _index(suite)
    ev = _judge_unplanned(ctx, claim_id, data, name, plus, minus, suite=suite,
                          variant=variant)
    if ev.status == "not run":
        return ev
    runs = index.get("runs", {}).get(variant, {})
    why = []
    try:
        plan = load_plan(suite)
    except PlanError as e:
        plan, why = None, [str(e)]
    if all(k in runs for k in need):
        errs = {k: _by_seed(runs[k]) for k in need}
        seeds = sorted(set.intersection(*(set(e) for e in errs.values())))
        if plan is not None:
            why += _plan_reasons(ctx, plan, f"{data}_{name}", spec(claim_id, data, plus, minus),
                                 claim_id, seeds)
        if plan is not None or not why:
            why += protocol_blockers(plan, {k: (suite / variant / k / "env.json", errs[k])
                                            for k in need}, suite_dir=suite,
                                     pilot_error=_pilot_error(ctx, plan) if plan else None,
                                     check_commits=ctx.check_commits)
    elif ev.status == "inconclusive":
        why.append("a network the primary reads stopped before finishing")
    ev.data = {"protocol": "blocked" if why else "passed",
               "plan": str(suite / "plan.json") if plan else None,
               "primary": f"{data}_{name}"}
    if why:
        return Evidence("inconclusive", ev.numbers, ev.tolerance,
                        "inconclusive: " + "; ".join(why) + ". " + ev.summary,
                        provenance=ev.provenance, tolerance_source=ev.tolerance_source,
                        data=ev.data)
    return ev


def _judge_unplanned(ctx, claim_id: str, data: str, name: str, plus: list[str],
                     minus: list[str], *, suite: Path | None = None,
                     variant: str | None = None) -> Evidence:
    """The comparison itself, on ``suite`` (default: the largest unplanned suite holding
    the networks; ``variant`` defaults to ``data``)."""
    need = sorted(set(plus + minus))
    # a check reads the largest suite holding all its networks: a `medium` run still
    # missing some networks moves only the checks that need them to the smaller suite
    variant = variant or data
    suite = suite or _holding(ctx.results_dir, data, need)
    if suite is None:
        return Evidence.not_run(
            f"no such runs yet: needs `stnlab train --suite {data} --scale medium` "
            f"(>= {MIN_SEEDS} seeds) results for {', '.join(need)} committed as results/{data}-medium (or -small / -paper)")
    index = json.loads((suite / "suite.json").read_text())
    errs, prov = _errors(suite, variant, index)
    missing = [k for k in need if k not in errs]
    few = [k for k in need if k in errs and len(errs[k]) < MIN_SEEDS]
    stopped = {k: s for k, s in index.get("stopped", {}).get(variant, {}).items()
               if k in missing}
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
    m = R.claim_family(claim_id)
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


def _where(data: str) -> str:
    return (f"95 % paired Student-t interval over >= {MIN_SEEDS} seeds of the {data} suite, "
            f"decided only by a pre-registered plan (proofs/plan.py; {PLANNED[data][0][-1]}); "
            f"unplanned, fewer seeds or small: inconclusive; no runs: not run")


def _definitions(data: str) -> list[tuple[str, str, list, list, str]]:
    """``(claim, name, plus, minus, what)`` of every EMP-2 family check on ``data``."""
    xmax, xmin, ref = DATASETS[data]
    defs = [
        ("EMP-2", "deepest_cx_worse_than_slx", [f"STN-C{xmax}"], [f"STN-SL{xmax}"],
         f"at the deepest X = {xmax}, error(STN-C{xmax}) - error(STN-SL{xmax}) > 0"),
        ("EMP-2", "slx_degrades_less_than_cx", [f"STN-C{xmax}", f"STN-SL{xmin}"],
         ["STN-C0", f"STN-SL{xmax}"],
         f"CX degrades more with depth than SLX: [error(STN-C{xmax}) - error(STN-C0)] - "
         f"[error(STN-SL{xmax}) - error(STN-SL{xmin})] > 0"),
        ("EMP-2", "iterations_no_substitute", ["STN-C0-it2"], [ref],
         f"a second iteration does not make the shallow localizer as good as deeper "
         f"features: error(STN-C0-it2) - error({ref}) > 0 ({ref} fixed from 000 before any "
         f"run)"),
    ]
    # 000's iteration statements (Sec. IV-B4 / IV-C5) and its DLX one (Tables IV / V)
    helped = {"svhn": ("STN-SL3", "STN-SL6"), "plankton": ("STN-C0", "STN-DL2")}[data]
    for n in helped:
        short = n.removeprefix("STN-").lower()
        defs.append(("EMP-2", f"second_iteration_helps_{short}", [n], [f"{n}-it2"],
                     f"a second iteration helps {n}: error({n}) - error({n}-it2) > 0"))
    dl_lo, dl_hi = {"svhn": (3, 8), "plankton": (2, 10)}[data]
    defs.append(("EMP-2D", "deep_dl_worse_than_shallow", [f"STN-DL{dl_hi}"],
                 [f"STN-DL{dl_lo}"], f"the deeper localization network trains worse: "
                 f"error(STN-DL{dl_hi}) - error(STN-DL{dl_lo}) > 0"))
    if data == "svhn":
        for x in (6, 8):
            defs.append(("EMP-2N", f"c{x}_worse_than_no_st", [f"STN-C{x}"], ["CNN"],
                         f"STN-C{x} is worse than no ST: error(STN-C{x}) - error(CNN) > 0"))
        defs.append(("EMP-2T", "sl0123_better_than_c0123", ["STN-C0123"], ["STN-SL0123"],
                     "Table III: error(STN-C0123) - error(STN-SL0123) > 0"))
    return defs


def _make(claim_id, data, name, plus, minus, what):
    def fn(ctx):
        return _judge(ctx, claim_id, data, name, plus, minus)

    fn.__doc__ = f"{data}: {what}; {_where(data)}."
    fn.__name__ = f"{data}_{name}"
    return check(claim_id, scales=("quick", "full"), name=f"{data}_{name}", intervals=1)(fn)


CHECKS = {d: tuple(_make(c, d, *rest) for c, *rest in _definitions(d)) for d in DATASETS}
