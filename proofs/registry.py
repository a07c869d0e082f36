"""The claims catalogue: claims, their checks, and the evidence checks return.

A *claim* (id, statement, source) has one or more *checks*. A check is a function
``check(ctx: CheckContext) -> Evidence``. Its status is one of

* ``"verified"`` -- it ran and every number is within its stated tolerance;
* ``"failed"``   -- it ran and a number is outside its tolerance;
* ``"not run"``  -- its evidence does not exist yet (e.g. a trained model), or it
  was not selected. Never counted as verified.

A claim is verified only if every one of its checks ran and verified; failed if
any check failed; otherwise not run.

Register checks in a module listed in :data:`CLAIM_MODULES`::

    from proofs.registry import Evidence, check, claim

    claim("INV-1", "discrete convolution with circular padding is exactly translation "
          "covariant", source="000 Sec. II-B")

    @check("INV-1", scales=("quick", "full"))
    def inv1_random_cnns(ctx):
        err = ...
        return Evidence.compare("max_rel_error", err, "<=", 1e-6, numbers={...})

A check declares the scales it runs at (``scales``, from :data:`PROVE_SCALES`); at any
other scale it is "not run". A claim module that fails to import is an error (never a
silently missing claim), and so is a second check under one name.
"""

from __future__ import annotations

import importlib
import math
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

STATUSES = ("verified", "failed", "not run")
#: Scales of ``stnlab prove``: ``quick`` (``--quick``, CI-sized) and ``full``.
PROVE_SCALES = ("quick", "full")

# Modules that register claims/checks on import. Add yours here.
CLAIM_MODULES = [
    "proofs.claims.geometry",
    "proofs.claims.invariance",
    "proofs.claims.invariance_scale",
    "proofs.claims.sampling_core",
    "proofs.claims.sampling",
    "proofs.claims.empirical",
    "proofs.claims.emp3",
]


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


@dataclass
class Evidence:
    """What one check found.

    Attributes:
        status: ``"verified"``, ``"failed"`` or ``"not run"``.
        numbers: the key measured numbers (JSON-friendly after :meth:`to_json`).
        tolerance: the criterion in words, e.g. ``"max_rel_error <= 1e-6"``.
        summary: one sentence a person reads in the report table.
        figure: path of a PNG drawn from this evidence, if any (relative to the
            output directory).
        data: saved results a figure function can draw from (kept in JSON).
    """

    status: str
    numbers: dict[str, Any] = field(default_factory=dict)
    tolerance: str = ""
    summary: str = ""
    figure: str | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if self.status not in STATUSES:
            raise ValueError(f"Evidence: expected status in {STATUSES}, got {self.status!r}")

    @classmethod
    def compare(cls, name: str, value: float, op: str, bound: float, *,
                numbers: dict | None = None, summary: str = "", **kw) -> "Evidence":
        """Evidence whose status is ``value <op> bound`` (op one of ``<=, <, >=, >``)."""
        ops = {"<=": lambda a, b: a <= b, "<": lambda a, b: a < b,
               ">=": lambda a, b: a >= b, ">": lambda a, b: a > b}
        if op not in ops:
            raise ValueError(f"Evidence.compare: expected op in {list(ops)}, got {op!r}")
        value = float(value)
        ok = math.isfinite(value) and ops[op](value, bound)
        nums = {name: value, **(numbers or {})}
        return cls("verified" if ok else "failed", nums, f"{name} {op} {bound:g}", summary, **kw)

    @classmethod
    def all_of(cls, parts: list["Evidence"], *, summary: str = "", **kw) -> "Evidence":
        """Combine sub-results: verified iff all verified; failed if any failed."""
        statuses = [p.status for p in parts]
        status = ("failed" if "failed" in statuses else
                  "not run" if "not run" in statuses else "verified")
        numbers: dict[str, Any] = {}
        for p in parts:
            numbers.update(p.numbers)
        tol = "; ".join(p.tolerance for p in parts if p.tolerance)
        return cls(status, numbers, tol, summary, **kw)

    @classmethod
    def not_run(cls, why: str) -> "Evidence":
        return cls("not run", {}, "", why)

    def to_json(self) -> dict:
        return {"status": self.status, "numbers": _plain(self.numbers),
                "tolerance": self.tolerance, "summary": self.summary,
                "figure": self.figure, "data": _plain(self.data)}


@dataclass
class CheckContext:
    """What a check may use: where to write figures, how big to run, a seed."""

    out_dir: Path
    quick: bool = False
    seed: int = 0
    device: str = "cpu"
    results_dir: Path | None = None  # committed results (e.g. results/mnist-small)

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


_REGISTRY: dict[str, Claim] = {}


def claim(id: str, statement: str, *, source: str, kind: str = "numerical") -> Claim:
    """Register a claim (idempotent for the same id and statement)."""
    if id in _REGISTRY:
        c = _REGISTRY[id]
        if c.statement != statement:
            raise ValueError(f"claim: id {id!r} registered twice with different statements")
        return c
    c = Claim(id, statement, source, kind)
    _REGISTRY[id] = c
    return c


def check(claim_id: str, *, scales=PROVE_SCALES, name: str | None = None):
    """Decorator: register ``fn(ctx) -> Evidence`` as a check of ``claim_id``.

    Args:
        claim_id: a registered claim.
        scales: the prove scales the check runs at (``("quick", "full")``: both, sized
            by ``ctx.quick``; ``("full",)``: not in ``--quick``).
        name: the check's name (default: the function's); unique within the claim.

    Raises:
        ValueError: unknown claim, unknown scale, or a second check under one name.
    """
    scales = tuple(scales)
    bad = [s for s in scales if s not in PROVE_SCALES]
    if not scales or bad:
        raise ValueError(f"check: expected scales from {PROVE_SCALES}, got {scales!r}")

    def deco(fn):
        if claim_id not in _REGISTRY:
            raise ValueError(f"check: claim {claim_id!r} is not registered")
        c = _REGISTRY[claim_id]
        nm = name or fn.__name__
        if any(ch.name == nm for ch in c.checks):
            raise ValueError(f"check: {claim_id} already has a check named {nm!r}")
        c.checks.append(Check(nm, fn, scales))
        return fn

    return deco


def load_all() -> dict[str, Claim]:
    """Import every module in :data:`CLAIM_MODULES`; one that fails to import is an error."""
    for mod in CLAIM_MODULES:
        importlib.import_module(mod)
    return _REGISTRY


def registry() -> dict[str, Claim]:
    return _REGISTRY


def _sort_key(cid: str):
    prefix, _, num = cid.partition("-")
    order = {"GEO": 0, "INV": 1, "SMP": 2, "EMP": 3}
    return (order.get(prefix, 9), int(num) if num.isdigit() else 0, cid)


def run_claims(ctx: CheckContext, only: list[str] | None = None,
               progress: Callable[[str], None] | None = None) -> list[dict]:
    """Run the selected claims' checks; return one JSON-friendly dict per claim.

    A check that raises (or returns something other than :class:`Evidence`) is
    reported as ``failed`` with the exception in its summary (a crashing check never
    counts as verified). Each evidence dict also carries ``elapsed_s`` (None when
    the check did not run).
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
            results.append({"check": ch.name, **ev.to_json(), "elapsed_s": elapsed})
        statuses = [r["status"] for r in results]
        if not results:
            status = "not run"
        elif "failed" in statuses:
            status = "failed"
        elif all(s == "verified" for s in statuses):
            status = "verified"
        else:
            status = "not run"
        out.append({"id": cid, "statement": c.statement, "source": c.source, "kind": c.kind,
                    "status": status, "evidence": results})
    return out
