"""Run a check's body once per seed of ``ctx.seeds`` and judge every quantity in every seed.

A check body ``body(seed) -> SeedRun`` computes the judged quantities (:class:`Part`: name,
value, op, bound, tolerance with its provenance) and any reported numbers for one seed.
:func:`over_seeds` turns each judged quantity into :meth:`Evidence.over_seeds` (an
identity or bound must hold in every seed: verified iff all seeds pass) and combines them
with :meth:`Evidence.all_of`. Reported numbers of every seed are kept under ``per_seed``.

:func:`over_population` is the population form (issue 23, as INV-5): the body runs once per
*unit* (``units_per_seed`` random extractors per prove seed, :func:`unit_seeds`), the parts
named in ``population`` are judged by a Student-t interval over units of the mean
``log(value / bound)`` (:func:`population_part`), and the others (exact identities) must
still hold in every unit.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from proofs.registry import Evidence

__all__ = ["Part", "SeedRun", "judge", "over_seeds", "over_population", "population_part",
           "unit_seeds", "UNIT_STRIDE", "POP_CLIP", "POP_RULE"]


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


#: Step between the units of one prove seed (``seed + UNIT_STRIDE * j``): prove seeds are
#: ``S + 1000 k`` with k < 5, so the units of base seeds S < 10000 never coincide.
UNIT_STRIDE = 10_000
#: A population part's ratio ``value / bound`` is clipped to ``[1 / POP_CLIP, POP_CLIP]``
#: before its log is averaged (a priori, a numerics choice made before any population run:
#: a value a hundredth of its bound, or 100 x it, is as decided as one can be; without the
#: clip a deviation of 1e-9 would weigh as much as a miss and widen the interval).
POP_CLIP = 100.0
POP_RULE = ("population rule (issue 23, as INV-5's): one random extractor per unit; for each "
            "population part the 95 % Student-t interval over units of the mean log(value / "
            "bound) (ratio clipped to [1/100, 100]) must lie on the bound's side of 0 "
            "(geometric mean within the bound); failed when one lies wholly on the other side "
            "at the Bonferroni level of the family (the population parts); the exact parts "
            "must hold in every unit")


def unit_seeds(seeds, units_per_seed: int) -> tuple[int, ...]:
    """The units of a population check: ``s + UNIT_STRIDE * j`` for each prove seed ``s``
    and ``j < units_per_seed`` (j = 0 is the prove seed itself)."""
    if isinstance(units_per_seed, bool) or not isinstance(units_per_seed, int) \
            or units_per_seed < 1:
        raise ValueError(f"unit_seeds: expected units_per_seed to be an int >= 1, got "
                         f"{units_per_seed!r}")
    return tuple(s + UNIT_STRIDE * j for s in seeds for j in range(units_per_seed))


def population_part(name: str, per_unit: dict, op: str, bound: float, *, tolerance: str,
                    m: int = 1) -> Evidence:
    """One population part: the mean over units of ``log(clip(value / bound))``
    (:data:`POP_CLIP`) by its 95 % Student-t interval (:func:`proofs.stats.seed_mean_ci`,
    the project's rule below n = 30), against 0 on the side ``op`` claims; "failed" is
    decided at :func:`proofs.stats.family_level` ``(m)``. A non-finite value fails (a broken
    measurement is not a tie).

    Args:
        per_unit: ``{unit seed: value}``, at least 2 units, positive ``bound``.
        op: ``"<="`` / ``"<"`` (claim: geometric mean below ``bound``) or ``">="`` / ``">"``.
        tolerance: the provenance of ``bound`` (as :meth:`Evidence.compare`).
        m: the Bonferroni family (the check's population parts).
    """
    from proofs.stats import StatsError, family_level, seed_mean_ci

    if not bound > 0:
        raise ValueError(f"population_part: expected a positive bound for {name}, got {bound}")
    vals = {str(int(k)): float(v) for k, v in per_unit.items()}
    raw = {"per_unit": vals, "bound": bound, "units": len(vals), "bound_source": tolerance,
           "max": max(vals.values()), "min": min(vals.values())}
    bad = [k for k, v in vals.items() if not math.isfinite(v)]
    if bad:
        return Evidence("failed", {name + "_per_unit": raw},
                        f"{name}: finite in every unit", f"{name}: non-finite in units {bad}",
                        tolerance_source=tolerance)
    logs = [math.log(min(max(v / bound, 1 / POP_CLIP), POP_CLIP)) for v in vals.values()]
    direction = "<" if op in ("<=", "<") else ">"
    try:
        ci = seed_mean_ci(logs)
        wide = seed_mean_ci(logs, level=family_level(m)) if m > 1 else ci
    except StatsError as e:
        return Evidence.inconclusive(f"{name}: {e}", {name + "_per_unit": raw})
    raw["geometric_mean_over_bound"] = math.exp(ci.estimate)
    raw["interval_over_bound"] = [math.exp(ci.lo), math.exp(ci.hi)]
    ev = Evidence.from_interval(f"log_{name}_over_bound", ci, null=0.0, direction=direction,
                                fail_interval=wide, numbers={name + "_per_unit": raw})
    ev.tolerance_source = f"{tolerance}; {ev.tolerance_source}"
    return ev


def over_population(ctx, body: Callable[[int], SeedRun], *, units_per_seed: int,
                    population: set[str] | frozenset[str], summary: str | Callable = "",
                    ) -> Evidence:
    """Run ``body`` once per unit (:func:`unit_seeds` of ``ctx.seeds``) and judge the parts
    named in ``population`` over the population of units (:func:`population_part`, one
    Bonferroni family), every other part in every unit (:meth:`Evidence.over_seeds`).

    Returns:
        ``Evidence.all_of`` of the parts in body order; ``numbers["rule"]`` (:data:`POP_RULE`),
        ``numbers["units"]``, ``numbers["per_seed"]`` (each unit's reported numbers);
        ``data``: the first unit's.

    Raises:
        ValueError: part names that differ between units, or a ``population`` name that is
            not a part.
    """
    units = unit_seeds(ctx.seeds, units_per_seed)
    runs = {u: _as_run(body(u)) for u in units}
    first = runs[units[0]]
    names = [p.name for p in first.parts]
    for u, r in runs.items():
        if [p.name for p in r.parts] != names:
            raise ValueError(f"over_population: expected the parts {names} in every unit, got "
                             f"{[p.name for p in r.parts]} in unit {u}")
    missing = set(population) - set(names)
    if missing:
        raise ValueError(f"over_population: expected population parts among {names}, got "
                         f"{sorted(missing)}")
    m = sum(n in population for n in names)
    evs = []
    for i, p in enumerate(first.parts):
        per_unit = {u: float(runs[u].parts[i].value) for u in units}
        if p.name in population:
            evs.append(population_part(p.name, per_unit, p.op, p.bound, tolerance=p.tolerance,
                                       m=m))
        else:
            evs.append(Evidence.over_seeds(p.name, per_unit, p.op, p.bound,
                                           tolerance=p.tolerance))
    ev = Evidence.all_of(evs)
    ev.numbers["rule"] = POP_RULE
    ev.numbers["seeds"] = list(ctx.seeds)
    ev.numbers["units"] = list(units)
    ev.numbers["per_seed"] = {str(u): r.numbers for u, r in runs.items()}
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
