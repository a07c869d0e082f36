"""Seed sweep: run the theory claims of ``stnlab prove`` over N base seeds and count statuses.

Each base seed ``S`` is one ``stnlab prove --seed S`` (its checks run over
``S, S + 1000, ..., S + 4000``, the full scale's 5 seeds). A claim whose verdict is
evidence must come out the same for every base seed (issue 23: every GEO / INV /
SMP-1..6 claim one status in all 40).

Usage::

    OMP_NUM_THREADS=1 python benchmarks/seed_sweep.py --n 40 --out results/prove/seed-sweep.md

Writes the markdown table to ``--out`` and the per-seed statuses (plus INV-5's
population statistic) as JSON next to it (``.json``). One process, one thread.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import torch

from proofs.registry import STATUSES, CheckContext, run_claims

THEORY = ([f"GEO-{i}" for i in range(1, 4)] + [f"INV-{i}" for i in range(1, 9)]
          + [f"SMP-{i}" for i in range(1, 7)])


def _inv5_stat(claim: dict) -> dict:
    """INV-5's population statistic: geometric mean error / floor and its 95 % t-interval's
    lower end at each s, the slope interval, the per-CNN minimum ratio."""
    out = {}
    for ev in claim["evidence"]:
        n = ev["numbers"]
        for k, v in n.items():
            if k.startswith("log_error_over_floor_at_s_") and isinstance(v, dict):
                out[k.rsplit("_", 1)[-1]] = {"geo_mean": math.exp(v["estimate"]),
                                             "lo": math.exp(v["lo"]), "hi": math.exp(v["hi"])}
        if isinstance(n.get("slope_log_error_vs_abs_log_s"), dict):
            s = n["slope_log_error_vs_abs_log_s"]
            out["slope"] = {"estimate": s["estimate"], "lo": s["lo"], "hi": s["hi"]}
        if "per_cnn_min_error_over_floor" in n:
            out["min_per_cnn_ratio"] = min(n["per_cnn_min_error_over_floor"].values())
    return out


def _population_stat(claim: dict) -> dict:
    """A population-form claim's parts (:func:`proofs.claims.seeded.over_population`): per
    part the geometric mean of value / bound and its 95 % t-interval's upper end, the
    largest single unit's ratio, the number of units."""
    out = {}
    for ev in claim["evidence"]:
        for k, v in ev["numbers"].items():
            if k.endswith("_per_unit") and isinstance(v, dict) and "interval_over_bound" in v:
                out[k[: -len("_per_unit")]] = {
                    "geo_mean": v["geometric_mean_over_bound"],
                    "hi": v["interval_over_bound"][1], "lo": v["interval_over_bound"][0],
                    "max_unit": v["max"] / v["bound"], "units": v["units"]}
    return out


def render(per_seed, inv5, pop, times, *, first, n, only, wall, when, previous=None) -> str:
    """The markdown of a sweep (``previous``: an earlier sweep's JSON for claims not rerun)."""
    counts = {cid: Counter(per_seed[b][cid] for b in per_seed) for cid in only}
    uniform = all(len(c) == 1 for c in counts.values())
    lines = [
        "# Seed sweep of the theory claims",
        "",
        f"`python benchmarks/seed_sweep.py --only {','.join(only)}`: {n} base seeds "
        f"({first}..{first + n - 1}), each one `stnlab prove --seed S` at the full scale "
        "(its checks over S, S + 1000, ..., S + 4000). "
        f"{when}, {platform.node() or 'cpu'} ({platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, shared with other jobs), torch {torch.__version__}, one "
        f"thread; {wall:.0f} s in all "
        f"({min(times.values()):.0f}-{max(times.values()):.0f} s per base seed).",
        "",
        "Every claim one status in every base seed: **" + ("yes" if uniform else "NO") + "**.",
        "",
        "| claim | " + " | ".join(STATUSES) + " |",
        "|---|" + "---|" * len(STATUSES),
    ]
    for cid in only:
        lines.append(f"| {cid} | " + " | ".join(str(counts[cid].get(s, 0)) for s in STATUSES)
                     + " |")
    lines += _inv5_lines(inv5)
    if pop:
        lines += ["", "Population parts (issue 23's population form; "
                  "`proofs.claims.seeded.over_population`): value / bound over each base "
                  "seed's units, geometric mean and the 95 % Student-t interval's upper end "
                  "(claim: < 1), and the largest single unit, min-max over base seeds:", "",
                  "| claim | part | units | geometric mean | interval upper end | largest unit |",
                  "|---|---|---|---|---|---|"]
        for cid in sorted({c for v in pop.values() for c in v}):
            parts = next(v[cid] for v in pop.values() if cid in v)
            for k in parts:
                vals = [v[cid][k] for v in pop.values() if k in v.get(cid, {})]
                f = lambda key: f"{min(x[key] for x in vals):.3f}-{max(x[key] for x in vals):.3f}"  # noqa: E731
                lines.append(f"| {cid} | {k.removeprefix('log_').removesuffix('_over_bound')} "
                             f"| {vals[0]['units']} | {f('geo_mean')} | {f('hi')} | "
                             f"{f('max_unit')} |")
    not_uniform = [cid for cid in only if len(counts[cid]) > 1]
    if not_uniform:
        lines += ["", "Claims with more than one status: " + ", ".join(
            f"{cid} (" + ", ".join(f"{s}: {[b for b in per_seed if per_seed[b][cid] == s]}"
                                   for s in counts[cid]) + ")" for cid in not_uniform)]
    if previous:
        old = previous["statuses"]
        rest = [c for c in THEORY if c not in only and all(c in v for v in old.values())]
        if rest:
            lines += ["", f"Not rerun here (checks unchanged since): the previous sweep's "
                      f"{len(old)} base seeds ({previous.get('commit', '74d7276')}'s "
                      "checks):", "", "| claim | " + " | ".join(STATUSES) + " |",
                      "|---|" + "---|" * len(STATUSES)]
            for cid in rest:
                c = Counter(v[cid] for v in old.values())
                lines.append(f"| {cid} | " + " | ".join(str(c.get(s, 0)) for s in STATUSES)
                             + " |")
    return "\n".join(lines) + "\n"


def _inv5_lines(inv5) -> list[str]:
    if not inv5:
        return []
    lines = []
    if True:
        keys = [k for k in next(iter(inv5.values())) if k not in ("slope", "min_per_cnn_ratio")]
        lines += ["", "INV-5's population statistic over the base seeds (each over its 5 "
                  "random CNNs): error / interpolation floor, geometric mean and the lower end "
                  "of its 95 % Student-t interval (claim: > 2), min-max over base seeds:", ""]
        lines.append("| s | geometric mean | interval lower end |")
        lines.append("|---|---|---|")
        for k in keys:
            gm = [v[k]["geo_mean"] for v in inv5.values()]
            lo = [v[k]["lo"] for v in inv5.values()]
            lines.append(f"| {k} | {min(gm):.2f}-{max(gm):.2f} | {min(lo):.2f}-{max(lo):.2f} |")
        sl = [v["slope"]["lo"] for v in inv5.values() if "slope" in v]
        mn = [v["min_per_cnn_ratio"] for v in inv5.values() if "min_per_cnn_ratio" in v]
        if sl:
            lines.append(f"| slope of log error vs \\|log s\\| (lower end, > 0) | | "
                         f"{min(sl):.3f}-{max(sl):.3f} |")
        if mn:
            lines += ["", f"Smallest error / floor of any single random CNN at any s != 1: "
                      f"{min(mn):.2f} (over {5 * len(mn)} CNNs)."]
    return lines


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=40, help="base seeds 0 .. N-1 (default 40)")
    p.add_argument("--first", type=int, default=0, help="first base seed (default 0)")
    p.add_argument("--only", default=",".join(THEORY), help="claims (comma-separated)")
    p.add_argument("--out", type=Path, default=Path("seed-sweep.md"))
    p.add_argument("--merge", type=Path, nargs="+", metavar="JSON",
                   help="no run: merge the .json of sweeps (chunks run one after another, "
                        "over base seeds or claims) into --out")
    p.add_argument("--note", default="", help="a sentence added under the heading (e.g. "
                   "which commits' checks the merged chunks ran)")
    p.add_argument("--previous", type=Path, metavar="JSON",
                   help="an earlier sweep's .json: its statuses of the theory claims not in "
                        "--only are listed (checks unchanged since)")
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    only = [c.strip().upper() for c in a.only.split(",") if c.strip()]
    per_seed: dict[int, dict[str, str]] = {}
    inv5: dict[int, dict] = {}
    pop: dict[int, dict] = {}
    times = {}
    t_all = time.time()
    if a.merge:
        wall = 0.0
        for path in a.merge:
            d = json.loads(path.read_text())
            # chunks may split base seeds by claim too: merge each seed's entries
            for b, v in d["statuses"].items():
                per_seed.setdefault(int(b), {}).update(v)
            inv5.update({int(b): v for b, v in d.get("inv5", {}).items() if v})
            for b, v in d.get("population", {}).items():
                pop.setdefault(int(b), {}).update(v)
            for b, v in d["seconds"].items():
                times[int(b)] = times.get(int(b), 0.0) + v
            wall += d.get("wall_s", sum(d["seconds"].values()))
            when = d.get("when", "")
        only = [c for c in THEORY if all(c in v for v in per_seed.values())]
        first, n = min(per_seed), len(per_seed)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            for base in range(a.first, a.first + a.n):
                t0 = time.time()
                ctx = CheckContext(out_dir=Path(tmp) / str(base), quick=False, seed=base)
                claims = run_claims(ctx, only)
                per_seed[base] = {c["id"]: c["status"] for c in claims if c["id"] in only}
                for c in claims:
                    if c["id"] == "INV-5" and "INV-5" in only:
                        inv5[base] = _inv5_stat(c)
                    st = _population_stat(c)
                    if st:
                        pop.setdefault(base, {})[c["id"]] = st
                times[base] = time.time() - t0
                print(f"base seed {base}: {times[base]:.0f} s "
                      + " ".join(f"{k}={v}" for k, v in per_seed[base].items()), flush=True)
        wall, first, n = time.time() - t_all, a.first, a.n
        when = f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC"
    previous = json.loads(a.previous.read_text()) if a.previous else None
    text = render(per_seed, inv5, pop, times, first=first, n=n, only=only, wall=wall,
                  when=when, previous=previous)
    if a.note:
        head, rest = text.split("\n\n", 1)
        text = f"{head}\n\n{a.note}\n\n{rest}"
    uniform = all(len({per_seed[b][cid] for b in per_seed}) == 1 for cid in only)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(text)
    a.out.with_suffix(".json").write_text(json.dumps(
        {"only": only, "when": when, "wall_s": wall, "host": platform.node(),
         "statuses": {str(b): v for b, v in sorted(per_seed.items())},
         "inv5": {str(b): v for b, v in sorted(inv5.items())},
         "population": {str(b): v for b, v in sorted(pop.items())},
         "seconds": {str(b): v for b, v in sorted(times.items())},
         **({"previous": {"statuses": previous["statuses"],
                          "commit": previous.get("commit", "74d7276")}} if previous else {})},
         indent=1) + "\n")
    print(text)
    return 0 if uniform else 1


if __name__ == "__main__":
    sys.exit(main())
