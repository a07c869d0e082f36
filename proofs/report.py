"""The report of ``stnlab prove``: ``report.md`` (a person's table), ``report.json`` (the
same, machine-readable), and progress lines on stderr.

``report.json``::

    {"meta": {...command, seed, quick, versions, git, elapsed_s...},
     "summary": {"verified": n, "failed": n, "not run": n},
     "claims": [{"id", "statement", "source", "kind", "status",
                 "evidence": [{"check", "status", "numbers", "tolerance", "summary",
                               "figure", "data", "elapsed_s"}, ...]}, ...]}

``report.md`` has one table row per claim -- claim, statement, status, key numbers,
figure -- and then one section per claim with every check's tolerance, summary,
numbers and figure. A check may list further figures in ``data["figures"]``.
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

__all__ = ["Progress", "summarize", "write_report", "render_markdown", "key_numbers"]

_ICON = {"verified": "verified", "failed": "**FAILED**", "not run": "not run"}


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


def key_numbers(claim: dict, limit: int = 4) -> str:
    """The first ``limit`` scalar numbers of a claim's checks, ``name = value``."""
    parts = []
    for ev in claim["evidence"]:
        for k, v in (ev.get("numbers") or {}).items():
            s = _fmt(v)
            if s and len(parts) < limit:
                parts.append(f"{k} = {s}")
    return "; ".join(parts)


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
    lines.append(
        f"`{meta.get('command', 'stnlab prove')}` — seed {meta.get('seed')}, "
        f"{'quick' if meta.get('quick') else 'full'} run, {meta.get('elapsed_s', 0):.1f} s, "
        f"torch {meta.get('torch')}, git {meta.get('git') or 'unknown'}, "
        f"{meta.get('date', '')}."
    )
    lines.append("")
    lines.append(
        f"**{summ['verified']} verified, {summ['failed']} failed, {summ['not run']} not "
        'run.** "Verified" means every check of the claim ran and passed its stated '
        'tolerance; "not run" is never counted as verified.'
    )
    lines.append("")
    lines.append("| claim | statement | status | key numbers | figure |")
    lines.append("|---|---|---|---|---|")
    for c in claims:
        figs = [f for ev in c["evidence"] for f in _figures(ev)]
        fig = " ".join(f"[{Path(f).name}]({f})" for f in figs)
        lines.append(
            f"| {c['id']} | {_cell(c['statement'])} | {_ICON.get(c['status'], c['status'])} "
            f"| {_cell(key_numbers(c))} | {fig} |"
        )
    lines.append("")
    for c in claims:
        lines.append(f"## {c['id']} — {c['status']}")
        lines.append("")
        lines.append(f"{c['statement']} *(source: {c['source']}; {c['kind']})*")
        lines.append("")
        for ev in c["evidence"]:
            t = ev.get("elapsed_s")
            lines.append(
                f"- **{ev['check']}**: {ev['status']}"
                + (f" ({t:.1f} s)" if isinstance(t, (int, float)) else "")
            )
            if ev.get("tolerance"):
                lines.append(f"  - tolerance: `{ev['tolerance']}`")
            if ev.get("summary"):
                lines.append(f"  - {ev['summary']}")
            nums = {k: v for k, v in (ev.get("numbers") or {}).items()}
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
