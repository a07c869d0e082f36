"""The report of ``stnlab prove``: ``report.md`` (a person's table), ``report.json`` (the
same, machine-readable), and progress lines on stderr.

``report.json``::

    {"meta": {...command, seed, seeds, results, quick, versions, git, elapsed_s...},
     "summary": {"verified": n, "failed": n, "inconclusive": n, "not run": n},
     "claims": [{"id", "statement", "source", "kind", "note", "status",
                 "evidence": [{"check", "status", "numbers", "tolerance",
                               "tolerance_source", "summary", "provenance", "failures",
                               "figure", "data", "elapsed_s"}, ...]}, ...]}

A per-seed number is ``{"per_seed": {seed: value}, "min", "median", "max"}`` and is
shown as ``min / median / max``; an interval ``{"estimate", "lo", "hi", ..., "label"}``
is shown as ``estimate [lo, hi]``.

``report.md`` names the three papers behind the codes 000 / 003 / 004, then has one
table row per claim -- claim, statement, status, key numbers (for a failed claim: the
failing sub-checks' numbers and criteria; for an inconclusive or not-run one: why),
figure -- and then one section per claim with every check's tolerance and its source,
summary, provenance, numbers and figure. A check may list further figures in
``data["figures"]``. Every number whose name mentions a determinant carries the matrix
convention (:data:`DET_CONVENTION`).
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import TextIO

from models import runio

from .registry import STATUSES

__all__ = ["Progress", "summarize", "write_report", "render_markdown", "key_numbers",
           "status_reason", "PAPERS", "DET_CONVENTION"]

_ICON = {"verified": "verified", "failed": "**FAILED**", "inconclusive": "*inconclusive*",
         "not run": "not run"}

#: The papers behind the source codes (authors, title, venue).
PAPERS = {
    "000": "L. Finnveden, Y. Jansson, T. Lindeberg, *Understanding when spatial transformer "
           "networks do not support invariance, and what to do about it*, ICPR 2020 "
           "(arXiv:2004.11678)",
    "003": "W. Jiang, W. Sun, A. Tagliasacchi, E. Trulls, K. M. Yi, *Linearized "
           "Multi-Sampling for Differentiable Image Transformation*, ICCV 2019",
    "004": "A. Meethal, M. Pedersoli, S. Belharbi, E. Granger, *Convolutional STN for Weakly "
           "Supervised Object Localization*, ICPR 2020",
}

#: Said next to every determinant in the report.
DET_CONVENTION = ("matrices are input_from_output: output (x, y) -> input (x, y); for an ST "
                  "det > 1 samples a larger input area, i.e. shrinks the image; 000 reports "
                  "det of the image transform, 1 / det")


def _is_det(name: str) -> bool:
    import re

    return re.search(r"(^|[^a-z])det($|[^a-z])", name.lower()) is not None


#: The short tag beside a determinant's name (the header states :data:`DET_CONVENTION`).
DET_TAG = "[det of input_from_output θ]"


def _name(name: str) -> str:
    """A number's name, with the matrix convention where it is a determinant."""
    return f"{name} {DET_TAG}" if _is_det(name) else name


class Progress:
    """Progress lines on stderr: ``[i/n] CLAIM check  elapsed 12s  ETA 40s``.

    Use as the ``progress`` callback of :func:`proofs.registry.run_claims`; call
    :meth:`done` at the end. The line is :class:`models.runio.Progress`'s; this adds
    how long each check took.
    """

    def __init__(self, total: int, stream: TextIO | None = None):
        self.total = max(int(total), 0)
        self.stream = stream or sys.stderr
        self._line = runio.Progress("", self.total, stream=self.stream, every_s=0.0)
        self.start = time.perf_counter()
        self.count = 0
        self._last: tuple[str, float] | None = None

    def _finish_last(self, now: float) -> None:
        if self._last is not None:
            label, t0 = self._last
            print(f"      {label}: {now - t0:.1f}s", file=self.stream, flush=True)

    def __call__(self, label: str) -> None:
        """Report that the check ``label`` starts (and how long the previous one took)."""
        now = time.perf_counter()
        self._finish_last(now)
        self._line.update(self.count, what=label, force=True)
        self.count += 1
        self._last = (label, now)

    def done(self) -> float:
        """Print the last check's time and the total; return the total seconds."""
        now = time.perf_counter()
        self._finish_last(now)
        self._last = None
        total = now - self.start
        print(f"done: {self.count} checks in {total:.1f}s", file=self.stream, flush=True)
        return total


def summarize(claims: list[dict]) -> dict[str, int]:
    """Count claims by status."""
    out = {s: 0 for s in STATUSES}
    for c in claims:
        out[c["status"]] = out.get(c["status"], 0) + 1
    return out


def _fmt(v) -> str:
    if isinstance(v, dict):
        if "label" in v and isinstance(v["label"], str):
            return v["label"]
        if {"estimate", "lo", "hi"} <= set(v):
            return f"{_fmt(v['estimate'])} [{_fmt(v['lo'])}, {_fmt(v['hi'])}]"
        if {"min", "median", "max"} <= set(v):
            n = len(v.get("per_seed") or {})
            return (f"{_fmt(v['min'])} / {_fmt(v['median'])} / {_fmt(v['max'])} "
                    f"(min / median / max, {n} seed{'s' if n != 1 else ''})")
        return ""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            return str(v)
        if v == 0:
            return "0"
        a = abs(v)
        return f"{v:.2e}" if a < 1e-3 or a >= 1e4 else f"{v:.3g}"
    if (
        isinstance(v, (list, tuple))
        and len(v) <= 8
        and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v)
    ):
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    return ""


def _numbers_text(numbers: dict, limit: int) -> list[str]:
    parts = []
    for k, v in (numbers or {}).items():
        s = _fmt(v)
        if s and len(parts) < limit:
            parts.append(f"{_name(k)} = {s}")
    return parts


def key_numbers(claim: dict, limit: int = 4) -> str:
    """The claim's key numbers, ``name = value``.

    For a failed claim: the numbers and criteria of the failing (sub-)checks; otherwise
    the first ``limit`` numbers of its checks.
    """
    if claim.get("status") == "failed":
        parts = []
        for ev in claim["evidence"]:
            if ev["status"] != "failed":
                continue
            fails = ev.get("failures") or [ev]
            for f in fails:
                nums = _numbers_text(f.get("numbers") or {}, limit)
                crit = f.get("tolerance") or ""
                text = "; ".join(nums) if nums else (f.get("summary") or "")
                parts.append(f"{ev['check']}: {text}" + (f" (needs {crit})" if crit else ""))
        return " — ".join(parts)
    parts = []
    for ev in claim["evidence"]:
        parts += _numbers_text(ev.get("numbers") or {}, limit - len(parts))
    return "; ".join(parts)


def status_reason(claim: dict) -> str:
    """Why a claim is inconclusive or not run, else ``""``: the first sentence of each
    (distinct) summary of its checks with the claim's status ("not selected" left out)."""
    if claim["status"] not in ("inconclusive", "not run"):
        return ""
    if not claim["evidence"]:
        return "no check registered yet"
    whys = [(ev.get("summary") or "").split(". ")[0].rstrip(".") for ev in claim["evidence"]
            if ev["status"] == claim["status"]]
    whys = [w for w in dict.fromkeys(whys) if w and w != "not selected"]
    return "; ".join(whys)


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _figures(ev: dict) -> list[str]:
    """The check's figure and any extra ones it listed in ``data["figures"]``."""
    extra = (ev.get("data") or {}).get("figures") or []
    figs = ([ev["figure"]] if ev.get("figure") else []) + [f for f in extra if isinstance(f, str)]
    return list(dict.fromkeys(figs))


def render_markdown(claims: list[dict], meta: dict) -> str:
    """The Markdown report (table + per-claim details)."""
    summ = summarize(claims)
    lines = ["# stnlab prove: the claims catalogue", ""]
    lines.append("Sources: " + "; ".join(f"**{k}** = {v}" for k, v in PAPERS.items()) + ".")
    lines.append("")
    lines.append(f"Determinants {DET_TAG}: {DET_CONVENTION}.")
    lines.append("")
    lines.append(
        f"`{meta.get('command', 'stnlab prove')}` — seeds "
        f"{', '.join(str(x) for x in meta.get('seeds') or [meta.get('seed')])}, "
        f"{'quick' if meta.get('quick') else 'full'} run, {meta.get('elapsed_s', 0):.1f} s, "
        f"torch {meta.get('torch')}, git {meta.get('git') or 'unknown'}, "
        f"{meta.get('date', '')}."
    )
    lines.append("")
    lines.append(
        f"**{summ['verified']} verified, {summ['failed']} failed, {summ['inconclusive']} "
        f"inconclusive, {summ['not run']} not run.** \"Verified\" means every check of the "
        "claim ran and passed its stated tolerance (a comparison: its 95 % interval lies on "
        "the claimed side); \"failed\" is a decided disagreement; \"inconclusive\": it ran "
        "but the interval contains the null, or the run has too few seeds or too small a "
        "scale; \"not run\" (no evidence yet) is never counted as verified. Per-seed "
        "numbers are shown as min / median / max, intervals as estimate [lo, hi]."
    )
    lines.append("")
    lines.append("| claim | statement | status | key numbers | figure |")
    lines.append("|---|---|---|---|---|")
    for c in claims:
        figs = [f for ev in c["evidence"] for f in _figures(ev)]
        fig = " ".join(f"[{Path(f).name}]({f})" for f in figs)
        nums = key_numbers(c)
        why = status_reason(c)
        cell = "; ".join(x for x in (why, nums) if x)
        lines.append(
            f"| {c['id']} | {_cell(c['statement'])} | {_ICON.get(c['status'], c['status'])} "
            f"| {_cell(cell)} | {fig} |"
        )
    lines.append("")
    for c in claims:
        lines.append(f"## {c['id']} — {c['status']}")
        lines.append("")
        lines.append(f"{c['statement']} *(source: {c['source']}; {c['kind']})*")
        lines.append("")
        if c.get("note"):
            lines.append(f"Note: {c['note']}")
            lines.append("")
        if not c["evidence"]:
            lines.append("- no check registered yet")
        for ev in c["evidence"]:
            t = ev.get("elapsed_s")
            lines.append(
                f"- **{ev['check']}**: {ev['status']}"
                + (f" ({t:.1f} s)" if isinstance(t, (int, float)) else "")
            )
            if ev.get("tolerance"):
                src = ev.get("tolerance_source")
                lines.append(f"  - tolerance: `{ev['tolerance']}`" + (f" ({src})" if src else ""))
            if ev.get("summary"):
                lines.append(f"  - {ev['summary']}")
            if ev.get("provenance"):
                p = ev["provenance"]
                lines.append(f"  - provenance: results `{p.get('results')}`, scale "
                             f"{p.get('scale')}, seeds {p.get('seeds')}, device "
                             f"{p.get('device')}")
            nums = {k: v for k, v in (ev.get("numbers") or {}).items()}
            shown = _numbers_text(nums, len(nums))
            if shown:
                lines.append("  - " + "; ".join(shown))
            if nums:
                lines.append(f"  - numbers: `{json.dumps(nums, default=str)[:1500]}`")
            for f in _figures(ev):
                lines.append("")
                lines.append(f"  ![{c['id']} {ev['check']}]({f})")
        lines.append("")
    return "\n".join(lines) + "\n"


def write_report(claims: list[dict], out_dir, meta: dict) -> tuple[Path, Path]:
    """Write ``report.json`` and ``report.md`` into ``out_dir``; return their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    doc = {"meta": meta, "summary": summarize(claims), "claims": claims}
    jpath, mpath = out / "report.json", out / "report.md"
    tmp = jpath.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=1, default=str))
    tmp.replace(jpath)
    mpath.write_text(render_markdown(claims, meta))
    return mpath, jpath
