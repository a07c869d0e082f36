"""Power arithmetic for issue 28's EMP-2 pilots: which primaries a 2-core CPU can decide.

For every EMP-2 / 2D / 2N / 2T interval on a data set (``proofs.claims.emp2._definitions``)
this prints 000's effect (computed from the suites' copies of 000's tables, never typed in
here), a *proxy* paired spread and, from :mod:`proofs.plan`'s Student-t arithmetic,

* ``n needed``: the seeds whose 95 % half-width is below 000's effect at the proxy spread
  (:func:`proofs.plan.seeds_for`);
* ``sd max``: the largest paired spread at which the seeds the budget affords could still
  verify 000's effect, ``effect x sqrt(n) / t_{0.975, n-1}`` -- the number the pilot's
  measured spread is compared with.

The proxy spread is the per-seed sd of the same contrast in the committed, superseded
``results/<data>-medium`` (3 seeds, v1 stand-ins at 58-90 % error); where a network of the
contrast diverged there, the median of the data set's other contrasts. It is a stand-in for
the pilot's spread, which replaces it in the plan.

The budget: ``--minutes`` (90) on ``--cores`` (2) one-thread workers, ``steps`` per seed
(the preset's), and the per-seed-step cost of the plan's networks: measured in
``results/<pilot>/step_times.json`` (``benchmarks/suite_budget.py``; s/step / seeds), or
``--seed-step-s`` for a cost measured elsewhere. Evaluation is not included.

    python benchmarks/plans/emp2_v2_power.py --data svhn [--seed-step-s 0.44]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from proofs.claims import emp2  # noqa: E402
from proofs.plan import halfwidth, seeds_for  # noqa: E402

PILOTS = {"svhn": ("results/svhn-standin-v2-pilot", "svhn"),
          "plankton": ("results/plankton-v2-pilot", "plankton")}


def _pct(s: str) -> float:
    """'3.81%', '4.00%*', '3.38% (3.33% at N=3)' -> 0.0381 (the leading number)."""
    m = re.match(r"\s*([0-9.]+)\s*%", s)
    if m is None:
        raise ValueError(f"emp2_v2_power: expected a paper error like '3.81%', got {s!r}")
    return float(m.group(1)) / 100


def paper_errors(data: str) -> dict[str, float]:
    """000's mean errors by network name, from the suites' copies of its tables."""
    if data == "svhn":
        from models.suites import svhn as S

        out = {n: _pct(v) for n, v in S.PAPER_TABLE_IV.items()}
        out.update({n: _pct(v[1]) for n, v in S.PAPER_TABLE_III.items() if v[1] != "-"})
    else:
        from models.suites import plankton as S

        out = {n: _pct(v) for n, v in S.PAPER_TABLE_V.items()}
    out.update({f"{n}-it2": _pct(v) for n, v in S.PAPER_ITERATIONS.items()
                if re.match(r"\s*[0-9.]+\s*%", v)})
    return out


def proxy_sd(data: str, defs) -> dict[str, float | None]:
    """Per-seed sd of each contrast in the committed v1 ``<data>-medium`` (None: missing)."""
    runs = json.loads((ROOT / "results" / f"{data}-medium" / "suite.json").read_text())[
        "runs"][data]
    errs = {n: r["error"]["per_seed"] for n, r in runs.items() if r and "error" in r}
    out = {}
    for _, name, plus, minus, _ in defs:
        if all(k in errs for k in plus + minus):
            n = min(len(errs[k]) for k in plus + minus)
            d = [sum(errs[k][i] for k in plus) - sum(errs[k][i] for k in minus)
                 for i in range(n)]
            out[name] = statistics.stdev(d) if n > 1 else None
        else:
            out[name] = None
    return out


def seed_step_cost(data: str, nets) -> tuple[float, str]:
    path = ROOT / PILOTS[data][0] / "step_times.json"
    rec = json.loads(path.read_text())
    rows = {r["net"]: r["step_s"] / r["seeds"] for r in rec["rows"]}
    missing = [n for n in nets if n not in rows]
    if missing:
        raise SystemExit(f"emp2_v2_power: {path} has no step time for {missing}")
    load = rec.get("load_average_at_end", ["?"])[0]
    return sum(rows[n] for n in nets), f"{path.relative_to(ROOT)} (load average {load:.2f})"


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", choices=sorted(emp2.DATASETS), required=True)
    ap.add_argument("--minutes", type=float, default=90.0)
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--seed-step-s", type=float, default=None,
                    help="per-seed-step cost of the core networks together (default: the "
                         "pilot's step_times.json)")
    a = ap.parse_args(argv)
    if a.minutes <= 0 or a.cores < 1 or (a.seed_step_s is not None and a.seed_step_s <= 0):
        ap.error("--minutes, --cores and --seed-step-s must be positive")
    from models.suites import get_suite

    suite = get_suite(a.data)
    variant = emp2.PLANNED[a.data][1]
    steps = suite.preset("medium", variant, "CNN").total_steps
    core = {"svhn": ("CNN", "STN-C0", "STN-C8", "STN-SL3", "STN-SL8", "STN-C0-it2"),
            "plankton": ("CNN", "STN-C0", "STN-C10", "STN-SL2", "STN-SL4", "STN-SL10",
                         "STN-C0-it2")}[a.data]
    if a.seed_step_s is None:
        cost, where = seed_step_cost(a.data, core)
    else:
        cost, where = a.seed_step_s, "--seed-step-s"
    afford = int(a.minutes * 60 * a.cores // (steps * cost))
    defs = emp2._definitions(a.data)
    paper = paper_errors(a.data)
    sds = proxy_sd(a.data, defs)
    pooled = statistics.median([v for v in sds.values() if v is not None])
    rows = []
    for claim, name, plus, minus, _ in defs:
        effect = sum(paper[k] for k in plus) - sum(paper[k] for k in minus)
        sd = sds[name] if sds[name] is not None else pooled
        need = seeds_for(sd, effect)
        sd_max = effect / halfwidth(1.0, afford) if afford >= 2 else 0.0  # t sd / sqrt(n)
        rows.append({"id": f"{a.data}_{name}", "claim": claim, "plus": plus, "minus": minus,
                     "paper_effect": effect, "proxy_sd": sd, "proxy_from": "contrast" if
                     sds[name] is not None else "median of the others",
                     "seeds_needed": need, "sd_max_at_afford": sd_max,
                     "decidable_at_proxy": need is not None and need <= afford})
    out = {"data": a.data, "variant": variant, "steps": steps, "core_nets": list(core),
           "seed_step_s": cost, "cost_from": where, "minutes": a.minutes, "cores": a.cores,
           "affordable_seeds": afford, "rows": rows}
    print(f"Budget: {a.minutes:g} min x {a.cores} cores / ({steps} steps x {cost:.3f} s per "
          f"seed-step of {', '.join(core)}; {where}) = **{afford} seeds** (evaluation not "
          f"included).\n")
    print("| primary | claim | 000 effect (pp) | proxy sd (pp) | seeds needed at proxy sd | "
          f"sd max at {afford} seeds (pp) | decidable at the proxy |")
    print("|---|---|---:|---:|---:|---:|---|")
    for r in rows:
        need = r["seeds_needed"] if r["seeds_needed"] is not None else "> 10 000"
        print(f"| {r['id']} | {r['claim']} | {100 * r['paper_effect']:+.2f} | "
              f"{100 * r['proxy_sd']:.2f}{'' if r['proxy_from'] == 'contrast' else ' *'} | "
              f"{need} | {100 * r['sd_max_at_afford']:.2f} | "
              f"{'yes' if r['decidable_at_proxy'] else 'no'} |")
    print("\n(* the contrast's networks diverged in the v1 runs: the median of the other "
          "contrasts' sd.)")
    return out


if __name__ == "__main__":
    main()
