"""Run a check's body once per seed of ``ctx.seeds`` and judge every quantity in every seed.

A check body ``body(seed) -> SeedRun`` computes the judged quantities (:class:`Part`: name,
value, op, bound, tolerance with its provenance) and any reported numbers for one seed.
:func:`over_seeds` turns each judged quantity into :meth:`Evidence.over_seeds` (an
identity or bound must hold in every seed: verified iff all seeds pass) and combines them
with :meth:`Evidence.all_of`. Reported numbers of every seed are kept under ``per_seed``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from proofs.registry import Evidence

__all__ = ["Part", "SeedRun", "judge", "over_seeds"]


@dataclass(frozen=True)
class Part:
    """One judged quantity of one seed: ``value <op> bound`` with ``tolerance`` provenance."""

    name: str
    value: float
    op: str
    bound: float
    tolerance: str


@dataclass
class SeedRun:
    """What one seed of a check found: its judged parts and reported numbers."""

    parts: list[Part]
    numbers: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)


def judge(parts: list[Part], numbers: dict | None = None, *, data: dict | None = None,
          summary: str = "") -> Evidence:
    """One seed's verdict: ``Evidence.all_of`` of one ``Evidence.compare`` per part.

    The parts stay attached (``ev.parts``, not serialized), so :func:`over_seeds` can judge
    each of them over seeds when a check runs the same measurement per seed.
    """
    ev = Evidence.all_of([Evidence.compare(p.name, p.value, p.op, p.bound,
                                           tolerance=p.tolerance) for p in parts])
    ev.numbers.update(numbers or {})
    ev.data = dict(data or {})
    ev.summary = summary
    ev.parts = list(parts)
    return ev


def over_seeds(ctx, body: Callable[[int], SeedRun], *, summary: str | Callable = "",
               ) -> Evidence:
    """Run ``body`` for every seed in ``ctx.seeds``; each part must hold in every seed.

    Args:
        ctx: the :class:`proofs.registry.CheckContext` (its ``seeds``).
        body: ``seed -> SeedRun`` (or an Evidence made by :func:`judge`); the same part
            names in every seed.
        summary: a sentence, or ``f(runs: dict[seed, SeedRun], ev) -> str``.

    Returns:
        ``Evidence.all_of`` of one ``Evidence.over_seeds`` per part name; ``data`` holds the
        first seed's ``data``; ``numbers["per_seed"]`` every seed's reported numbers.

    Raises:
        ValueError: a body whose part names differ between seeds.
    """
    seeds = tuple(ctx.seeds)
    runs = {s: _as_run(body(s)) for s in seeds}
    first = runs[seeds[0]]
    names = [p.name for p in first.parts]
    for s, r in runs.items():
        if [p.name for p in r.parts] != names:
            raise ValueError(f"over_seeds: expected the parts {names} in every seed, got "
                             f"{[p.name for p in r.parts]} in seed {s}")
    evs = []
    for i, p in enumerate(first.parts):
        per_seed = {s: float(runs[s].parts[i].value) for s in seeds}
        evs.append(Evidence.over_seeds(p.name, per_seed, p.op, p.bound, tolerance=p.tolerance))
    ev = Evidence.all_of(evs)
    ev.numbers["seeds"] = list(seeds)
    ev.numbers["per_seed"] = {str(s): r.numbers for s, r in runs.items()}
    ev.data = dict(first.data)
    ev.summary = summary(runs, ev) if callable(summary) else summary
    return ev


def _as_run(r) -> SeedRun:
    if isinstance(r, SeedRun):
        return r
    if isinstance(r, Evidence) and hasattr(r, "parts"):
        return SeedRun(r.parts, {k: v for k, v in r.numbers.items()
                                 if k not in {p.name for p in r.parts}}, r.data)
    raise TypeError(f"over_seeds: expected the body to return a SeedRun or an Evidence made "
                    f"by judge(), got {type(r).__name__}")
