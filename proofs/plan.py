"""Pre-registered plans for the empirical claims: the plan, its power arithmetic, the gates.

An empirical suite that may decide a claim carries ``plan.json`` (and the ``PLAN.md`` a
person reads) in its results directory, committed in a commit of its own *before* any of
its runs was trained. The plan names the hypotheses (the paper's words and table
numbers), the *primary* intervals -- the only ones the claim's Bonferroni family counts --
and the diagnostic ones, the seeds, the steps, the learnability gate, and for each
primary interval the smallest effect that could verify it and the smallest that could
fail it with the planned seeds (:func:`min_verify`, :func:`min_fail`).

The protocol (:func:`protocol_blockers`), applied by every EMP check before it compares
anything; each blocker makes the check ``inconclusive`` with its reason:

* **no plan** -- the suite holds no ``plan.json``: the runs were not pre-registered;
* **plan after the runs** -- every run's ``env.json`` names the commit its code was
  imported from (``git_commit``); the plan must be in that commit's tree with the very
  contents it has now (:func:`plan_precedes`). A plan added, or changed, after a run
  started is refused; so is a run whose commit git does not know, and a checkout
  without git history ("cannot be verified" is not "verified");
* **gate failed** -- the plan's learnability gate (the baseline's error in the pilot,
  read from the pilot's committed record) is not met: the stand-in or the scale must
  change first;
* **a network at chance** -- any seed of a network a primary interval reads has an error
  above the plan's ``learned_max`` (a stated margin below chance): the comparison is not
  made, and the network and seed are named.

Power arithmetic (Student-t over ``n`` seeds, as :func:`proofs.stats.seed_mean_ci`): a
primary interval on a per-seed paired difference with spread ``sd`` verifies only if its
mean exceeds ``t_{0.975, n-1} sd / sqrt(n)`` and fails only if it lies beyond
``t_{1 - 0.025/m, n-1} sd / sqrt(n)`` on the wrong side (family of ``m`` primaries;
:func:`proofs.stats.family_level`). :func:`seeds_for` is the smallest ``n`` whose 95 %
half-width is below the paper's effect. A count rule (bimodal outcomes: how many seeds
counter-rotate) is an exact binomial test against ``p0``; :func:`count_thresholds` gives
the counts that verify and fail it, or ``None`` where ``n`` seeds cannot reach one.
"""

from __future__ import annotations

import hashlib
import json
import math
import subprocess
from dataclasses import dataclass
from pathlib import Path

from proofs.stats import _binom_cdf, _binom_sf, family_level

__all__ = ["PLAN_JSON", "PLAN_MD", "SCHEMA", "PlanError", "Plan", "load_plan", "halfwidth",
           "seeds_for", "min_verify", "min_fail", "reach", "count_thresholds", "plan_precedes",
           "protocol_blockers"]

PLAN_JSON = "plan.json"
PLAN_MD = "PLAN.md"
SCHEMA = 1
_REQUIRED = ("schema", "claim", "suite", "seeds", "primary", "diagnostic", "gate",
             "learned_max", "undecidable")


class PlanError(ValueError):
    """A malformed ``plan.json``."""


def _t(q: float, df: int) -> float:
    from scipy.stats import t as student_t  # noqa: PLC0415 - as proofs.stats

    return float(student_t.ppf(q, df))


def halfwidth(sd: float, n: int, level: float = 0.95) -> float:
    """Half-width of the Student-t interval of a mean over ``n`` seeds with spread ``sd``."""
    if n < 2:
        return math.inf
    return _t(0.5 + level / 2, n - 1) * float(sd) / math.sqrt(n)


def min_verify(sd: float, n: int) -> float:
    """The smallest mean difference (in the claimed direction) a 95 % interval verifies."""
    return halfwidth(sd, n, 0.95)


def min_fail(sd: float, n: int, m: int) -> float:
    """The smallest mean difference on the wrong side that fails a family of ``m``."""
    return halfwidth(sd, n, family_level(m))


def reach(interval, m: int) -> dict:
    """What a paired Student-t check could reach with its seeds and family (issue 23):
    the smallest mean difference beyond the null that verifies it and the smallest on the
    wrong side that fails it, at the spread the interval saw, and the t statistics they mean.

    Args:
        interval: the 95 % (or ``interval.level``) Student-t interval of the check
            (:func:`proofs.stats.paired_seed_ci`: ``n`` seeds, half-width ``t sd / sqrt(n)``).
        m: the claim's Bonferroni family ("failed" is decided at
            :func:`proofs.stats.family_level` ``(m)``).

    Returns:
        ``{"seeds", "family", "sd_of_difference", "min_effect_to_verify",
        "min_effect_to_fail", "t_to_verify", "t_to_fail", "fail_over_verify"}`` -- effects
        in the difference's own units, measured from the null; ``fail_over_verify`` is how
        many times larger a wrong-side effect must be to fail than a right-side one to
        verify (a large ratio: in practice a one-sided check, verified or inconclusive).
    """
    n = int(interval.n)
    level = float(interval.level)
    t_v = _t(0.5 + level / 2, n - 1) if n >= 2 else math.inf
    t_f = _t(0.5 + family_level(m, level) / 2, n - 1) if n >= 2 else math.inf
    sd = (float(interval.hi) - float(interval.lo)) / 2 * math.sqrt(n) / t_v if n >= 2 \
        else math.nan
    return {"seeds": n, "family": int(m), "sd_of_difference": sd,
            "min_effect_to_verify": halfwidth(sd, n, level),
            "min_effect_to_fail": halfwidth(sd, n, family_level(m, level)),
            "t_to_verify": t_v, "t_to_fail": t_f, "fail_over_verify": t_f / t_v}


def seeds_for(sd: float, effect: float, *, level: float = 0.95, max_n: int = 10_000):
    """The smallest ``n >= 2`` whose ``level`` half-width is below ``|effect|``, or None."""
    for n in range(2, max_n + 1):
        if halfwidth(sd, n, level) < abs(effect):
            return n
    return None


def count_thresholds(n: int, *, p0: float = 0.5, m: int = 1, alpha: float = 0.05):
    """``(k_verify, k_fail)`` of an exact one-sided binomial count rule over ``n`` seeds.

    Verified when at least ``k_verify`` seeds show the effect (``P(X >= k | p0) <
    alpha``); failed when at most ``k_fail`` do (``P(X <= k | p0) < alpha / (2 m)``, the
    family's level, as intervals fail). Either is ``None`` when no count reaches it.
    """
    kv = next((k for k in range(n + 1) if _binom_sf(k, n, p0) < alpha), None)
    kf = next((k for k in range(n, -1, -1) if _binom_cdf(k, n, p0) < alpha / (2 * m)), None)
    return kv, kf


@dataclass(frozen=True)
class Plan:
    """A loaded ``plan.json`` (``data``) and where it lies (``path``)."""

    path: Path
    data: dict

    @property
    def primary(self) -> list[dict]:
        return list(self.data["primary"])

    @property
    def family(self) -> int:
        """The Bonferroni family: the number of primary intervals and count rules."""
        return len(self.data["primary"])

    @property
    def seeds(self) -> list[int]:
        return [int(s) for s in self.data["seeds"]]

    def primary_named(self, pid: str) -> dict:
        for p in self.data["primary"]:
            if p["id"] == pid:
                return p
        raise PlanError(f"{self.path}: expected a primary interval {pid!r}, got "
                        f"{[p['id'] for p in self.data['primary']]}")

    def is_primary(self, pid: str) -> bool:
        return any(p["id"] == pid for p in self.data["primary"])


def load_plan(suite_dir) -> Plan | None:
    """The plan of ``suite_dir`` or None where it has none.

    Raises:
        PlanError: a ``plan.json`` that is not JSON, or lacks a required field.
    """
    path = Path(suite_dir) / PLAN_JSON
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise PlanError(f"{path}: expected a JSON plan, got {e}") from None
    missing = [k for k in _REQUIRED if k not in data] if isinstance(data, dict) else _REQUIRED
    if missing:
        raise PlanError(f"{path}: expected the fields {list(_REQUIRED)}, missing {missing}")
    if data["schema"] != SCHEMA:
        raise PlanError(f"{path}: expected schema {SCHEMA}, got {data['schema']!r}")
    ids = [p.get("id") for p in data["primary"]]
    if len(set(ids)) != len(ids) or None in ids:
        raise PlanError(f"{path}: expected distinct primary ids, got {ids}")
    return Plan(path, data)


def _git(cwd: Path, *args) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                             timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def plan_precedes(plan: Plan, env_files) -> tuple[bool, str]:
    """Whether ``plan`` was committed, as it is now, before every run of ``env_files``.

    Each run's ``env.json`` ``git_commit`` must hold the plan at the same path with the
    same blob hash as the working copy. A run trained outside this history (a lent GPU
    gets a copy of the tree without ``.git``) is accepted instead when its ``env.json``
    recorded, at its start, the sha256 of exactly this plan (``plan_sha256``,
    :func:`models.runio.environment`); a recorded hash that differs is refused as a
    changed plan. Returns ``(ok, reason)``; ``ok`` is False also where git or the
    history is missing and no hash was recorded (the precedence cannot be shown).
    """
    path = plan.path.resolve()
    top = _git(path.parent, "rev-parse", "--show-toplevel")
    if top is None:
        return False, f"the plan's commit cannot be checked: {path.parent} is not in a git " \
                      "checkout with history"
    rel = path.relative_to(Path(top).resolve()).as_posix()
    blob = _git(path.parent, "hash-object", str(path))
    if _git(Path(top), "log", "-1", "--format=%H", "--", rel) in (None, ""):
        return False, f"{rel} is not committed"
    file_sha = hashlib.sha256(path.read_bytes()).hexdigest()
    for env in env_files:
        env = Path(env)
        try:
            rec = json.loads(env.read_text())
        except (OSError, ValueError):
            rec = {}
        commit, recorded = rec.get("git_commit"), rec.get("plan_sha256")
        name = env.parent.name
        if recorded is not None and recorded != file_sha:
            return False, (f"plan changed after the runs: {name} recorded plan sha256 "
                           f"{recorded[:12]}... at its start, the plan is now {file_sha[:12]}...")
        known = bool(commit) and commit != "unknown" and \
            _git(path.parent, "cat-file", "-e", f"{commit}^{{commit}}") is not None
        if not known:
            if recorded == file_sha:  # trained outside this history (e.g. a lent GPU)
                continue
            why = "names no git commit" if not commit or commit == "unknown" else \
                f"names commit {commit[:10]}, which is not in this repository's history"
            return False, (f"{env} {why} and recorded no plan sha256, so the plan cannot be "
                           f"shown to precede it")
        at = _git(path.parent, "rev-parse", f"{commit}:{rel}")
        if at is None:
            return False, (f"plan committed after the runs: {rel} is not in {commit[:10]}, the "
                           f"commit {name} was trained from")
        if at != blob:
            return False, (f"plan changed after the runs: {rel} differs from its contents at "
                           f"{commit[:10]}, the commit {name} was trained from")
    return True, "plan committed before every run"


def protocol_blockers(plan: Plan | None, runs: dict, *, suite_dir, pilot_error=None,
                      check_commits: bool = True) -> list[str]:
    """The reasons (empty: none) the protocol refuses a comparison of ``runs``.

    Args:
        plan: the suite's :class:`Plan`, or None (no plan: refused).
        runs: ``{label: (env_json_path, {seed: error})}`` of every network a primary
            interval reads.
        suite_dir: shown in the reasons.
        pilot_error: the gate's measured baseline error from the pilot record (None:
            the pilot record is missing, which fails the gate).
        check_commits: False only in tests that build records outside git.
    """
    if plan is None:
        return [f"no pre-registered plan: {Path(suite_dir).name} has no {PLAN_JSON}, so its "
                "runs cannot decide (the protocol of proofs/plan.py)"]
    why = []
    if check_commits:
        ok, reason = plan_precedes(plan, [env for env, _ in runs.values()])
        if not ok:
            why.append(reason)
    gate = plan.data["gate"]
    if pilot_error is None:
        why.append(f"learnability gate not met: the pilot record {gate.get('pilot')} is "
                   "missing")
    elif not pilot_error <= gate["max_error"]:
        why.append(f"not learnable at this scale: the gate's {gate['net']} error "
                   f"{100 * pilot_error:.2f} % in the pilot exceeds {100 * gate['max_error']:.1f} %")
    limit = plan.data["learned_max"]
    at_chance = [f"{label} seed {s} ({100 * e:.1f} %)" for label, (_, errs) in runs.items()
                 for s, e in errs.items() if not e <= limit]
    if at_chance:
        why.append(f"network at chance (error above {100 * limit:.0f} %, the plan's margin "
                   f"below chance): {', '.join(at_chance)}")
    return why
