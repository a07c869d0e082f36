"""The claims catalogue: claims, their checks, and the evidence checks return.

A *claim* (id, statement, source) has one or more *checks*. A check is a function
``check(ctx: CheckContext) -> Evidence``. Its status is one of

* ``"verified"``     -- it ran and every number is within its stated tolerance (an
  interval wholly on the claimed side of the null);
* ``"failed"``       -- it ran and a number is outside its tolerance (an interval
  wholly on the other side): a decided disagreement;
* ``"inconclusive"`` -- it ran but cannot decide: its interval contains the null, or
  the run is below the seeds / scale the claim needs;
* ``"not run"``      -- its evidence does not exist yet (e.g. a trained model), or it
  was not selected. Never counted as verified.

Parts combine by :meth:`Evidence.all_of` and a claim's checks the same way: failed if
any failed; else inconclusive if any is inconclusive; else not run if any is not run;
else verified. ``stnlab prove`` exits 1 only when something failed.

Every tolerance states where it comes from (``tolerance=`` of :meth:`Evidence.compare`
and :meth:`Evidence.over_seeds`, required): ``"a priori ..."``, ``"derived: <formula>"``
or ``"calibrated on control <name>"``; it is stored as ``tolerance_source``. Checks that
draw anything random run over ``ctx.seeds`` (``--seed S --seeds N``:
``S, S + 1000, ..., S + 1000 (N - 1)``).

Register checks in a module listed in :data:`CLAIM_MODULES`::

    from proofs.registry import Evidence, check, claim

    claim("INV-1", "discrete convolution with circular padding is exactly translation "
          "covariant", source="000 Sec. II-B")

    @check("INV-1", scales=("quick", "full"))
    def inv1_random_cnns(ctx):
        err = ...
        return Evidence.compare("max_rel_error", err, "<=", 1e-6,
                                tolerance="derived: 64 ulp of float64", numbers={...})

A check declares the scales it runs at (``scales``, from :data:`PROVE_SCALES`); at any
other scale it is "not run". A claim module that fails to import is an error (never a
silently missing claim), and so is a second check under one name.
"""

from __future__ import annotations

import importlib
import math
import os
import statistics
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

__all__ = [
    "STATUSES",
    "Evidence",
    "EvidenceError",
    "combine_statuses",
    "claim_family",
    "check_tolerance_source",
    "prove_seeds",
    "seed_summary",
    "default_results_dir",
    "DEFAULT_SEEDS",
    "PROVENANCE_KEYS",
    "RESULTS_ENV",
    "Claim",
    "Check",
    "CheckContext",
    "claim",
    "check",
    "registry",
    "load_all",
    "run_claims",
    "CLAIM_MODULES",
    "PROVE_SCALES",
]

STATUSES = ("verified", "failed", "inconclusive", "not run")
#: Scales of ``stnlab prove``: ``quick`` (``--quick``, CI-sized) and ``full``.
PROVE_SCALES = ("quick", "full")
#: Default number of seeds per scale of ``stnlab prove`` (``--seeds``).
DEFAULT_SEEDS = {"quick": 2, "full": 5}
#: Step between the seeds derived from ``--seed`` (``S + SEED_STRIDE * k``).
SEED_STRIDE = 1000
#: How a tolerance's provenance must begin (``tolerance=`` of compare / over_seeds).
TOLERANCE_PREFIXES = ("a priori", "derived: ", "calibrated on control ")
#: The keys of an empirical check's ``provenance``.
PROVENANCE_KEYS = ("results", "scale", "seeds", "device")
#: Environment variable naming the directory of committed results (``stnlab prove``).
RESULTS_ENV = "STNLAB_RESULTS"

# Modules that register claims/checks on import. Add yours here.
CLAIM_MODULES = [
    "proofs.claims.geometry",
    "proofs.claims.invariance",
    "proofs.claims.invariance_scale",
    "proofs.claims.sampling_core",
    "proofs.claims.sampling",
    "proofs.claims.empirical",
    "proofs.claims.emp1",
    "proofs.claims.emp2",
    "proofs.claims.emp4",
    "proofs.claims.emp3",
]


class EvidenceError(ValueError):
    """Bad input to the evidence API (a ``ValueError``)."""


def _plain(x):
    """Make numbers JSON-friendly (tensors/numpy -> float/list)."""
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().tolist()
    if hasattr(x, "tolist"):
        return x.tolist()
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    return x


def check_tolerance_source(tolerance, fn: str = "Evidence") -> str:
    """Return ``tolerance`` if it states its provenance, else raise :class:`EvidenceError`.

    Accepted: ``"a priori..."``, ``"derived: <formula>"``, ``"calibrated on control
    <name>"`` (the formula / control name not empty).
    """
    ok = isinstance(tolerance, str) and any(
        tolerance.startswith(p) and (p == "a priori" or tolerance[len(p):].strip())
        for p in TOLERANCE_PREFIXES)
    if not ok:
        raise EvidenceError(
            f"{fn}: expected tolerance to start with 'a priori', 'derived: <formula>' or "
            f"'calibrated on control <name>', got {tolerance!r}")
    return tolerance


def make_provenance(results, scale, seeds, device) -> dict:
    """An empirical check's ``provenance`` in the one form the registry keeps: ``results``
    (str), ``scale`` and ``device`` (str; several values joined by ``+``, in order, once
    each; None as ``"unknown"``) and ``seeds`` (sorted ints)."""
    def one(v):
        if isinstance(v, (list, tuple, set)):
            return "+".join(dict.fromkeys(str(x) for x in v)) or "unknown"
        return "unknown" if v is None else str(v)

    return {"results": str(results), "scale": one(scale), "seeds": sorted(int(s) for s in seeds),
            "device": one(device)}


def _check_provenance(provenance, fn: str):
    if provenance is None:
        return None
    if not isinstance(provenance, dict) or set(provenance) != set(PROVENANCE_KEYS):
        got = sorted(provenance) if isinstance(provenance, dict) else type(provenance).__name__
        raise EvidenceError(f"{fn}: expected provenance with keys {list(PROVENANCE_KEYS)}, "
                            f"got {got}")
    return dict(provenance)


def _same(a, b) -> bool:
    try:
        return bool(_plain(a) == _plain(b))
    except Exception:  # noqa: BLE001 - incomparable values are different numbers
        return False


def _merge_numbers(dicts, fn: str) -> dict:
    """Merge number dicts; a name given twice with different values is an error (a name
    means one number within a claim; the same number repeated is kept once)."""
    out: dict[str, Any] = {}
    for d in dicts:
        for k, v in (d or {}).items():
            if k in out and not _same(out[k], v):
                raise EvidenceError(f"{fn}: expected unique number names, got {k!r} twice "
                                    f"with different values")
            out[k] = v
    return out


def combine_statuses(statuses) -> str:
    """failed if any failed; else inconclusive if any; else not run if any; else verified.

    No statuses at all is ``"not run"``.
    """
    statuses = list(statuses)
    for s in statuses:
        if s not in STATUSES:
            raise EvidenceError(f"combine_statuses: expected statuses in {STATUSES}, got {s!r}")
    if not statuses:
        return "not run"
    for s in ("failed", "inconclusive", "not run"):
        if s in statuses:
            return s
    return "verified"


_OPS = {"<=": lambda a, b: a <= b, "<": lambda a, b: a < b,
        ">=": lambda a, b: a >= b, ">": lambda a, b: a > b}


def _check_op(op, fn):
    if op not in _OPS:
        raise EvidenceError(f"{fn}: expected op in {list(_OPS)}, got {op!r}")


@dataclass
class Evidence:
    """What one check found.

    Attributes:
        status: one of :data:`STATUSES`.
        numbers: the key measured numbers, names unique within a claim (JSON-friendly
            after :meth:`to_json`). A per-seed number is ``{"per_seed": {seed: v}, "min",
            "median", "max"}`` (:meth:`over_seeds`); an interval is
            ``{"estimate", "lo", "hi", "level", "method", "n", "label"}``
            (:meth:`from_interval`).
        tolerance: the criterion in words, e.g. ``"max_rel_error <= 1e-6"``.
        tolerance_source: where the tolerance comes from (``"a priori ..."``,
            ``"derived: ..."``, ``"calibrated on control ..."``).
        summary: one sentence a person reads in the report table.
        figure: path of a PNG drawn from this evidence, if any (relative to the
            output directory).
        data: saved results a figure function can draw from (kept in JSON).
        provenance: for empirical checks, ``{"results", "scale", "seeds", "device"}``
            of the records the verdict rests on (None otherwise).
        failures: the failing sub-checks of :meth:`all_of` (``{"tolerance", "numbers"}``
            each), shown in a failed claim's report row.
    """

    status: str
    numbers: dict[str, Any] = field(default_factory=dict)
    tolerance: str = ""
    summary: str = ""
    figure: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    tolerance_source: str = ""
    provenance: dict | None = None
    failures: list = field(default_factory=list)

    def __post_init__(self):
        if self.status not in STATUSES:
            raise EvidenceError(f"Evidence: expected status in {STATUSES}, got {self.status!r}")
        self.provenance = _check_provenance(self.provenance, "Evidence")

    @classmethod
    def compare(cls, name: str, value: float, op: str, bound: float, *, tolerance: str,
                numbers: dict | None = None, summary: str = "", **kw) -> "Evidence":
        """Evidence whose status is ``value <op> bound`` (op one of ``<=, <, >=, >``).

        Args:
            name: the number's name (unique within the claim).
            value: the measured number; NaN / inf fail.
            op, bound: the criterion.
            tolerance: where ``bound`` comes from: ``"a priori ..."``, ``"derived:
                <formula>"`` or ``"calibrated on control <name>"`` (required).
            numbers: further numbers to report.
            summary: one sentence for the report.
            **kw: ``figure``, ``data``, ``provenance``.

        Raises:
            EvidenceError: unknown ``op``, a tolerance without provenance, or ``name``
                repeated in ``numbers``.
        """
        fn = "Evidence.compare"
        _check_op(op, fn)
        check_tolerance_source(tolerance, fn)
        value = float(value)
        ok = math.isfinite(value) and _OPS[op](value, bound)
        nums = _merge_numbers([{name: value}, numbers], fn)
        return cls("verified" if ok else "failed", nums, f"{name} {op} {bound:g}", summary,
                   tolerance_source=tolerance, **kw)

    @classmethod
    def over_seeds(cls, name: str, per_seed: dict, op: str, bound: float, *, tolerance: str,
                   numbers: dict | None = None, summary: str = "", **kw) -> "Evidence":
        """An identity / bound that must hold in EVERY seed.

        Verified iff ``per_seed[s] <op> bound`` (finite) for every seed ``s``, else failed.
        ``numbers[name]`` is ``{"per_seed": {seed: value}, "min", "median", "max",
        "failing_seeds"}``.

        Args:
            per_seed: ``{seed: value}``, at least one seed.
            tolerance: provenance of ``bound``, as in :meth:`compare` (required).

        Raises:
            EvidenceError: empty ``per_seed``, unknown ``op``, a tolerance without
                provenance.
        """
        fn = "Evidence.over_seeds"
        _check_op(op, fn)
        check_tolerance_source(tolerance, fn)
        if not isinstance(per_seed, dict) or not per_seed:
            raise EvidenceError(f"{fn}: expected per_seed as a non-empty {{seed: value}} dict, "
                                f"got {per_seed!r}")
        vals = {str(int(s)): float(v) for s, v in per_seed.items()}  # str keys, as in JSON
        failing = [s for s, v in vals.items() if not (math.isfinite(v) and _OPS[op](v, bound))]
        rec = {**seed_summary(vals), "failing_seeds": failing}
        nums = _merge_numbers([{name: rec}, numbers], fn)
        return cls("failed" if failing else "verified", nums,
                   f"{name} {op} {bound:g} in every seed ({len(vals)})", summary,
                   tolerance_source=tolerance, **kw)

    @classmethod
    def from_interval(cls, name: str, interval, *, null: float = 0.0, direction: str = ">",
                      numbers: dict | None = None, summary: str = "", fail_interval=None,
                      **kw) -> "Evidence":
        """Evidence decided by a two-sided interval (:func:`proofs.stats.decide`).

        Verified when the interval lies wholly on the ``direction`` side of ``null``,
        failed when (``fail_interval``, default the same interval) lies wholly on the other
        side, inconclusive otherwise. ``numbers[name]`` is ``interval.as_dict()`` plus
        ``"label"``: ``"estimate [lo, hi]"``, and ``"fail_interval"`` when one is given.

        Args:
            interval: a :class:`proofs.stats.Interval`.
            null: the value meaning "no effect" (a tie).
            direction: ``">"`` or ``"<"``: the claimed side.
            fail_interval: the wider interval "failed" is decided on, for one interval of
                a family (:func:`proofs.stats.family_level`).
        """
        from .stats import decide

        status = decide(interval, null=null, direction=direction, fail_interval=fail_interval)
        d = interval.as_dict()
        rec = {**d, "label": f"{d['estimate']:.4g} [{d['lo']:.4g}, {d['hi']:.4g}]"}
        level = f"{100 * d['level']:.0f} %"
        src = f"a priori: the {level} interval ({d['method']}) must exclude the null {null:g}"
        if fail_interval is not None:
            f = fail_interval.as_dict()
            rec["fail_interval"] = f
            src += (f" to verify; failed only if the {100 * f['level']:.2f} % interval "
                    f"(Bonferroni over its family) lies on the other side")
        nums = _merge_numbers([{name: rec}, numbers], "Evidence.from_interval")
        return cls(status, nums, f"{level} interval of {name} {direction} {null:g}", summary,
                   tolerance_source=src, **kw)

    @classmethod
    def inconclusive(cls, summary: str, numbers: dict | None = None, **kw) -> "Evidence":
        """It ran but cannot decide (too few seeds, too small a scale, ...)."""
        return cls("inconclusive", dict(numbers or {}), "", summary, **kw)

    @classmethod
    def not_run(cls, summary: str, numbers: dict | None = None, **kw) -> "Evidence":
        """Its evidence does not exist (yet); never counted as verified."""
        return cls("not run", dict(numbers or {}), "", summary, **kw)

    @classmethod
    def all_of(cls, parts: list["Evidence"], summary: str = "", **kw) -> "Evidence":
        """Combine sub-results (precedence of :func:`combine_statuses`).

        Numbers are merged (a name in two parts is an error), tolerances and their
        sources joined, the first part's provenance kept unless ``provenance=`` is
        given, and the failing parts listed in ``failures``.

        Raises:
            EvidenceError: no parts, or a number name in two parts.
        """
        fn = "Evidence.all_of"
        parts = list(parts)
        if not parts or not all(isinstance(p, Evidence) for p in parts):
            raise EvidenceError(f"{fn}: expected a non-empty list of Evidence, got {parts!r}")
        status = combine_statuses(p.status for p in parts)
        numbers = _merge_numbers([p.numbers for p in parts], fn)
        tol = "; ".join(p.tolerance for p in parts if p.tolerance)
        src = "; ".join(dict.fromkeys(p.tolerance_source for p in parts if p.tolerance_source))
        failures = []
        for p in parts:
            if p.status == "failed":
                failures.extend(p.failures or [{"tolerance": p.tolerance, "numbers": p.numbers,
                                                "summary": p.summary}])
        if "provenance" not in kw:
            kw["provenance"] = next((p.provenance for p in parts if p.provenance), None)
        if not summary:
            summary = " ".join(dict.fromkeys(p.summary for p in parts if p.summary))
        return cls(status, numbers, tol, summary, tolerance_source=src, failures=failures,
                   **kw)

    def to_json(self) -> dict:
        return {"status": self.status, "numbers": _plain(self.numbers),
                "tolerance": self.tolerance, "tolerance_source": self.tolerance_source,
                "summary": self.summary, "provenance": _plain(self.provenance),
                "failures": _plain(self.failures), "figure": self.figure,
                "data": _plain(self.data)}


def seed_summary(per_seed: dict) -> dict:
    """``{"per_seed": {seed: value}, "min", "median", "max"}`` of a non-empty ``per_seed``."""
    vals = {str(int(s)): float(v) for s, v in per_seed.items()}
    if not vals:
        raise EvidenceError("seed_summary: expected at least one seed, got none")
    arr = sorted(vals.values())
    return {"per_seed": vals, "min": arr[0], "median": statistics.median(arr), "max": arr[-1]}


def prove_seeds(seed: int, n: int) -> tuple[int, ...]:
    """The seeds of ``stnlab prove --seed seed --seeds n``: ``seed + 1000 k``, k < n.

    Raises:
        EvidenceError: ``seed < 0`` or ``n < 1``.
    """
    for nm, v, lo in (("seed", seed, 0), ("n", n, 1)):
        if isinstance(v, bool) or not isinstance(v, int) or v < lo:
            raise EvidenceError(f"prove_seeds: expected {nm} to be an int >= {lo}, got {v!r}")
    return tuple(seed + SEED_STRIDE * k for k in range(n))


def default_results_dir() -> Path:
    """Where ``stnlab prove`` reads committed records, independent of the working directory.

    ``$STNLAB_RESULTS`` if set; else ``results/`` next to the installed ``proofs``
    package (the repository root for a source checkout / editable install); else
    ``./results`` if that exists (a wheel install run inside a clone); else the
    package-adjacent path (which then reports the records as missing).

    Raises:
        EvidenceError: ``$STNLAB_RESULTS`` is set but is not a directory.
    """
    env = os.environ.get(RESULTS_ENV)
    if env:
        p = Path(env).expanduser()
        if not p.is_dir():
            raise EvidenceError(f"default_results_dir: expected ${RESULTS_ENV} to be a "
                                f"directory, got {env!r}")
        return p.resolve()
    here = Path(__file__).resolve().parents[1] / "results"
    if here.is_dir():
        return here
    cwd = Path.cwd() / "results"
    return cwd.resolve() if cwd.is_dir() else here


@dataclass
class CheckContext:
    """What a check may use: where to write figures, how big to run, the seeds.

    Attributes:
        seeds: the seeds a check that draws anything random runs over
            (:func:`prove_seeds`; default: ``DEFAULT_SEEDS`` for the scale from ``seed``).
            ``seed == seeds[0]``.
        results_dir: committed results (e.g. the ``results/`` that holds
            ``mnist-small/``); None: there are none.
    """

    out_dir: Path
    quick: bool = False
    seed: int = 0
    device: str = "cpu"
    results_dir: Path | None = None  # committed results (e.g. results/mnist-small)
    seeds: tuple[int, ...] = ()
    #: The pre-registration protocol (proofs/plan.py): an empirical check decides only on
    #: records whose plan was committed before them. False only in the unit tests of a
    #: check's comparison logic on hand-made records (never from the CLI).
    require_plan: bool = True
    #: Whether the protocol checks the plan's commit against each run's (False only in
    #: tests whose records lie outside git).
    check_commits: bool = True

    def __post_init__(self):
        if not self.seeds:
            self.seeds = prove_seeds(self.seed, DEFAULT_SEEDS["quick" if self.quick else "full"])
        self.seeds = tuple(int(s) for s in self.seeds)
        if self.seeds[0] != self.seed:
            raise EvidenceError(f"CheckContext: expected seeds[0] == seed ({self.seed}), got "
                                f"seeds {self.seeds}")

    def figure_path(self, name: str) -> Path:
        d = self.out_dir / "figures"
        d.mkdir(parents=True, exist_ok=True)
        return d / name

    def draw(self, name: str, draw: Callable[[dict, Path], Any], data: dict) -> str | None:
        """Draw a figure from saved ``data`` as ``figures/<name>``; return that relative path.

        A drawing problem must not change a verdict: it is reported on stderr and the
        check gets no figure (``None``).
        """
        try:
            draw(data, self.figure_path(name))
            return f"figures/{name}"
        except Exception as e:  # noqa: BLE001 - reported, verdict unchanged
            print(f"warning: figure {name} not drawn: {type(e).__name__}: {e}", file=sys.stderr)
            return None


@dataclass
class Check:
    name: str
    fn: Callable[[CheckContext], Evidence]
    scales: tuple[str, ...]  # the prove scales it runs at (PROVE_SCALES)
    intervals: int = 0  # interval decisions it makes (its share of the claim's family)

    @property
    def quick(self) -> bool:
        """Whether it is part of the CI-sized ``--quick`` run."""
        return "quick" in self.scales


@dataclass
class Claim:
    id: str
    statement: str
    source: str
    kind: str = "numerical"  # symbolic | numerical | empirical
    checks: list[Check] = field(default_factory=list)
    note: str = ""  # the source's exact numbers, scope remarks (report, CLAIMS.md)


_REGISTRY: dict[str, Claim] = {}


def claim(id: str, statement: str, *, source: str, kind: str = "numerical",
          note: str = "") -> Claim:
    """Register a claim (idempotent for the same id and statement).

    Args:
        note: what a reader needs beside the statement (the source's exact table numbers,
            the scale the claim needs); shown in the report and the catalogue.
    """
    if id in _REGISTRY:
        c = _REGISTRY[id]
        if c.statement != statement:
            raise ValueError(f"claim: id {id!r} registered twice with different statements")
        return c
    c = Claim(id, statement, source, kind, note=note)
    _REGISTRY[id] = c
    return c


def check(claim_id: str, *, scales=PROVE_SCALES, name: str | None = None,
          intervals: int = 0):
    """Decorator: register ``fn(ctx) -> Evidence`` as a check of ``claim_id``.

    Args:
        claim_id: a registered claim.
        scales: the prove scales the check runs at (``("quick", "full")``: both, sized
            by ``ctx.quick``; ``("full",)``: not in ``--quick``).
        name: the check's name (default: the function's); unique within the claim.
        intervals: how many confidence intervals the check decides on (0: none); the
            claim's family is their sum over its checks (:func:`claim_family`).

    Raises:
        ValueError: unknown claim, unknown scale, or a second check under one name.
    """
    scales = tuple(scales)
    bad = [s for s in scales if s not in PROVE_SCALES]
    if not scales or bad:
        raise ValueError(f"check: expected scales from {PROVE_SCALES}, got {scales!r}")
    if not (isinstance(intervals, int) and intervals >= 0):
        raise ValueError(f"check: expected intervals an int >= 0, got {intervals!r}")

    def deco(fn):
        if claim_id not in _REGISTRY:
            raise ValueError(f"check: claim {claim_id!r} is not registered")
        c = _REGISTRY[claim_id]
        nm = name or fn.__name__
        if any(ch.name == nm for ch in c.checks):
            raise ValueError(f"check: {claim_id} already has a check named {nm!r}")
        c.checks.append(Check(nm, fn, scales, intervals))
        return fn

    return deco


def claim_family(claim_id: str) -> int:
    """The number of confidence intervals ``claim_id`` is judged on: the sum of its
    checks' ``intervals`` (at least 1).

    A claim fails if any of its checks fails, and a check if any of its intervals lies on
    the other side; so each interval decides "failed" at
    :func:`proofs.stats.family_level` ``(claim_family(id))`` (Bonferroni over the whole
    claim), which bounds the chance that a claim whose every difference is a tie comes out
    "failed" by 2.5 %. "verified" needs every interval at 95 % on the claimed side
    (intersection-union), which needs no correction.

    Raises:
        ValueError: an unknown claim.
    """
    if claim_id not in _REGISTRY:
        raise ValueError(f"claim_family: claim {claim_id!r} is not registered")
    return max(1, sum(ch.intervals for ch in _REGISTRY[claim_id].checks))


def load_all() -> dict[str, Claim]:
    """Import every module in :data:`CLAIM_MODULES`; one that fails to import is an error."""
    for mod in CLAIM_MODULES:
        importlib.import_module(mod)
    return _REGISTRY


def registry() -> dict[str, Claim]:
    return _REGISTRY


def _sort_key(cid: str):
    """GEO, INV, SMP, EMP; by number within each (``EMP-1F`` after ``EMP-1``)."""
    prefix, _, num = cid.partition("-")
    order = {"GEO": 0, "INV": 1, "SMP": 2, "EMP": 3}
    digits = num[:len(num) - len(num.lstrip("0123456789"))]
    return (order.get(prefix, 9), int(digits) if digits else 0, cid)


def run_claims(ctx: CheckContext, only: list[str] | None = None,
               progress: Callable[[str], None] | None = None) -> list[dict]:
    """Run the selected claims' checks; return one JSON-friendly dict per claim.

    A check that raises (or returns something other than :class:`Evidence`) is
    reported as ``failed`` with the exception in its summary (a crashing check never
    counts as verified). So is a check whose number names repeat another check's of the
    same claim (names are unique within a claim), and a check of an empirical claim that
    decided something (verified / failed / inconclusive) without ``provenance``. Each
    evidence dict also carries ``elapsed_s`` (None when the check did not run). A
    claim's status combines its checks' like :meth:`Evidence.all_of`.
    """
    claims = load_all()
    if only:
        unknown = [c for c in only if c not in claims]
        if unknown:
            raise ValueError(f"--only: unknown claim id(s) {unknown}; known: "
                             f"{sorted(claims, key=_sort_key)}")
    out = []
    for cid in sorted(claims, key=_sort_key):
        c = claims[cid]
        selected = only is None or cid in only
        results = []
        seen: dict[str, tuple] = {}  # number name -> (the check that reported it, value)
        for ch in c.checks:
            elapsed = None
            scale = "quick" if ctx.quick else "full"
            if not selected or scale not in ch.scales:
                ev = Evidence.not_run("not selected" if not selected else "not in --quick"
                                      if ctx.quick else f"runs at {', '.join(ch.scales)} only")
            else:
                if progress:
                    progress(f"{cid} {ch.name}")
                t0 = time.perf_counter()
                try:
                    ev = ch.fn(ctx)
                    if not isinstance(ev, Evidence):
                        raise TypeError(f"check returned {type(ev).__name__}, not Evidence")
                except Exception as e:  # noqa: BLE001 - reported, never hidden
                    ev = Evidence("failed", {}, "", f"check raised {type(e).__name__}: {e}",
                                  data={"traceback": traceback.format_exc()})
                elapsed = round(time.perf_counter() - t0, 3)
                ev = _enforce_rules(c, ch, ev, seen, ctx.require_plan)
            for k, v in ev.numbers.items():
                seen.setdefault(k, (ch.name, v))
            results.append({"check": ch.name, **ev.to_json(), "elapsed_s": elapsed})
        # A quick-only check (the quick-sized twin of a full check) is superseded in a full
        # run: listed as "not run" there, it does not hold the claim at "not run". A
        # full-only check in a --quick run is missing evidence: the claim stays "not run".
        counted = [r for r, ch in zip(results, c.checks)
                   if not selected or ctx.quick or "full" in ch.scales]
        status = combine_statuses(r["status"] for r in counted)
        out.append({"id": cid, "statement": c.statement, "source": c.source, "kind": c.kind,
                    "note": c.note, "status": status, "evidence": results})
    return out


def _enforce_rules(c: Claim, ch: Check, ev: Evidence, seen: dict[str, tuple],
                   require_plan: bool = True) -> Evidence:
    """A broken rule turns the check's evidence into ``failed`` (never silently kept);
    an empirical check that decided (verified / failed) without passing the
    pre-registration protocol (``ev.data["protocol"] == "passed"``, set by
    :func:`proofs.claims.emp1.judge_planned`) becomes ``inconclusive``, naming why."""
    dup = [k for k in ev.numbers if k in seen and not _same(seen[k][1], ev.numbers[k])]
    if dup:
        return Evidence("failed", {}, ev.tolerance,
                        f"number name(s) {dup} already reported with other values by "
                        f"check(s) {sorted({seen[k][0] for k in dup})} of {c.id}: names must "
                        f"be unique within a claim", tolerance_source=ev.tolerance_source,
                        data={"numbers": _plain(ev.numbers)})
    if c.kind == "empirical" and ev.status != "not run" and ev.provenance is None:
        return Evidence("failed", ev.numbers, ev.tolerance,
                        f"empirical check {ch.name} gave no provenance ({', '.join(PROVENANCE_KEYS)}); "
                        f"its {ev.status!r} cannot be traced to records",
                        tolerance_source=ev.tolerance_source)
    if (require_plan and c.kind == "empirical" and ev.status != "not run"
            and (ev.data or {}).get("protocol") not in ("passed", "blocked")):
        where = ev.provenance.get("results", "?") if ev.provenance else "?"
        would = f"; on its own it would be {ev.status!r}" if ev.status != "inconclusive" else ""
        return Evidence("inconclusive", ev.numbers, ev.tolerance,
                        f"inconclusive: no pre-registered plan for {where} (the protocol of "
                        f"proofs/plan.py: a plan committed before the runs, a learnability "
                        f"gate, networks above chance){would}. " + ev.summary,
                        provenance=ev.provenance, tolerance_source=ev.tolerance_source,
                        data=ev.data)
    return ev
