"""Intervals for verdicts: bootstrap, paired, hierarchical (seeds x trials), Student-t over
seeds, exact binomial.

NumPy, :mod:`math` and, for the Student-t quantile only, SciPy; ``proofs`` may import it,
the library packages must not.

Which interval for what:

* many independent values (trials, images, ``n >= 30``): the percentile bootstrap
  (:func:`bootstrap_mean_ci`, :func:`paired_difference_ci`), no distributional assumption;
* seeds x trials: :func:`hierarchical_bootstrap_ci`;
* a handful of seeds (trained networks: 3 at ``medium``, 10 at ``paper``):
  :func:`seed_mean_ci` / :func:`paired_seed_ci`, the Student-t interval. With ``n = 3``
  the percentile bootstrap is close to the range of the three values and covers the true
  mean far less often than 95 % (``tests/proofs/test_stats.py``: 0.77 at n = 3, 0.83 at n = 5 on normal
  data); the t interval is exact when the seed-to-seed variation is normal, and wide
  (``t_{0.975, 2} = 4.30``) as three seeds deserve.
Every resampling function takes a ``seed`` and draws all its resamples at once from
``numpy.random.default_rng(seed)`` (vectorised: one ``(B, n)`` index array), so an
interval is a deterministic function of the data and the seed.

Verdicts come from :func:`decide`: ``"verified"`` when the whole interval lies on the
claimed side of the null, ``"failed"`` when it lies wholly on the other side, and
``"inconclusive"`` when it contains the null. A check judged on a family of ``m``
intervals (verified iff all are on the claimed side, failed if any is on the other)
decides "failed" on wider intervals at :func:`family_level` ``(m)`` (Bonferroni), so that
a family of ties does not fail by chance more often than one interval would.

Example:
    >>> ci = bootstrap_mean_ci([1.0, 2.0, 3.0, 4.0], seed=0)
    >>> ci.lo <= ci.estimate == 2.5 <= ci.hi
    True
    >>> decide(ci, null=0.0, direction=">")
    'verified'
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "Interval",
    "bootstrap_mean_ci",
    "paired_difference_ci",
    "hierarchical_bootstrap_ci",
    "seed_mean_ci",
    "paired_seed_ci",
    "clopper_pearson",
    "units_mean_ci",
    "decide",
    "decide_paired",
    "family_level",
    "VERDICTS",
]

VERDICTS = ("verified", "failed", "inconclusive")


class StatsError(ValueError):
    """Bad input to an interval function (a ``ValueError``)."""


@dataclass(frozen=True)
class Interval:
    """A point estimate with a two-sided interval.

    Attributes:
        estimate: the statistic on the data as given.
        lo, hi: interval bounds (``lo <= hi``).
        level: nominal coverage, e.g. 0.95.
        method: how it was made (``"percentile bootstrap"``, ``"clopper-pearson"``, ...).
        n: number of independent units it rests on (observations, pairs, seeds, trials).
    """

    estimate: float
    lo: float
    hi: float
    level: float
    method: str
    n: int

    def contains(self, value: float) -> bool:
        """Whether ``lo <= value <= hi``."""
        return self.lo <= value <= self.hi

    def as_dict(self) -> dict:
        """Plain JSON-ready fields (for ``report.json``)."""
        return dict(estimate=self.estimate, lo=self.lo, hi=self.hi, level=self.level,
                    method=self.method, n=self.n)

    def __str__(self) -> str:
        return f"{self.estimate:.4g} [{self.lo:.4g}, {self.hi:.4g}]"


def _check_level(level, fn):
    if not (isinstance(level, (int, float)) and 0.0 < level < 1.0):
        raise StatsError(f"{fn}: expected level in (0, 1), got {level!r}")


def _check_resamples(resamples, fn):
    if isinstance(resamples, bool) or not isinstance(resamples, int) or resamples < 100:
        raise StatsError(f"{fn}: expected resamples to be an int >= 100, got {resamples!r}")


def _as_sample(x, name, fn, min_n=2) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 1:
        raise StatsError(f"{fn}: expected {name} of shape (n,), got {a.shape}")
    if a.shape[0] < min_n:
        raise StatsError(f"{fn}: expected {name} with at least {min_n} values, got {a.shape[0]}")
    if not np.isfinite(a).all():
        raise StatsError(f"{fn}: expected finite values in {name}, got "
                         f"{int((~np.isfinite(a)).sum())} non-finite")
    return a


def _percentiles(stats: np.ndarray, level: float) -> tuple[float, float]:
    alpha = 1.0 - level
    lo, hi = np.quantile(stats, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


def bootstrap_mean_ci(x, *, level: float = 0.95, resamples: int = 4000,
                      seed: int = 0) -> Interval:
    """Percentile bootstrap interval of the mean of ``x`` (``(n,)``, ``n >= 2``).

    Resamples ``n`` values with replacement ``resamples`` times and takes the
    ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles of the resampled means.
    """
    fn = "bootstrap_mean_ci"
    _check_level(level, fn)
    _check_resamples(resamples, fn)
    a = _as_sample(x, "x", fn)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, a.shape[0], size=(resamples, a.shape[0]))  # (B, n)
    lo, hi = _percentiles(a[idx].mean(1), level)
    return Interval(float(a.mean()), lo, hi, level, "percentile bootstrap", a.shape[0])


def paired_difference_ci(a, b, *, level: float = 0.95, resamples: int = 4000,
                         seed: int = 0) -> Interval:
    """Percentile bootstrap interval of ``mean(a - b)`` over pairs ``(a_i, b_i)``.

    The pairs are resampled together (one index per pair), so what is shared by ``a_i``
    and ``b_i`` (the same image, the same seed) cancels.
    """
    fn = "paired_difference_ci"
    _check_level(level, fn)
    _check_resamples(resamples, fn)
    return _paired(fn, a, b, lambda d: bootstrap_mean_ci(d, level=level, resamples=resamples,
                                                          seed=seed))


def _paired(fn: str, a, b, one_sample) -> Interval:
    """``one_sample`` (an interval of a mean) of the differences ``a_i - b_i``, labelled
    ``paired``; ``a`` and ``b`` checked as samples of the same length."""
    x = _as_sample(a, "a", fn)
    y = _as_sample(b, "b", fn)
    if x.shape != y.shape:
        raise StatsError(f"{fn}: expected a and b of the same length, got {x.shape[0]} "
                         f"and {y.shape[0]}")
    ci = one_sample(x - y)
    return Interval(ci.estimate, ci.lo, ci.hi, ci.level, f"paired {ci.method}", ci.n)


def hierarchical_bootstrap_ci(values, *, level: float = 0.95, resamples: int = 4000,
                              seed: int = 0) -> Interval:
    """Two-level percentile bootstrap of the grand mean over seeds x trials.

    Level 1 resamples the seeds (rows) with replacement; level 2 resamples, within each
    drawn seed, its trials with replacement. The statistic is the mean over the drawn
    seeds of their resampled trial means, so the seed-to-seed variation (network
    weights, sampler noise stream, ...) is part of the uncertainty, not only the
    trial-to-trial variation inside one seed.

    Args:
        values: ``(S, T)`` array, ``S >= 2`` seeds x ``T >= 1`` trials (a list of
            equal-length rows).

    Returns:
        :class:`Interval` with ``n = S`` (the number of independent units).
    """
    fn = "hierarchical_bootstrap_ci"
    _check_level(level, fn)
    _check_resamples(resamples, fn)
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 2:
        raise StatsError(f"{fn}: expected values of shape (seeds, trials), got {v.shape}")
    s, t = v.shape
    if s < 2 or t < 1:
        raise StatsError(f"{fn}: expected at least 2 seeds and 1 trial, got {s} x {t}")
    if not np.isfinite(v).all():
        raise StatsError(f"{fn}: expected finite values in values, got "
                         f"{int((~np.isfinite(v)).sum())} non-finite")
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, s, size=(resamples, s))  # (B, S) seeds drawn
    cols = rng.integers(0, t, size=(resamples, s, t))  # (B, S, T) trials within each
    stats = v[rows[..., None], cols].mean((1, 2))  # (B,)
    lo, hi = _percentiles(stats, level)
    return Interval(float(v.mean()), lo, hi, level, "hierarchical percentile bootstrap "
                    "(seeds, then trials)", s)


def seed_mean_ci(x, *, level: float = 0.95) -> Interval:
    """Student-t interval of the mean of ``x`` (``(n,)``, ``n >= 2``): one value per seed.

    ``mean +- t_{(1 + level) / 2, n - 1} * sd / sqrt(n)`` with the unbiased ``sd``: exact
    coverage when the values are independent normal draws, which is the model of
    seed-to-seed variation a handful of trained networks allows (a bootstrap cannot
    estimate a distribution's tails from 3 values). Zero spread gives a zero-width
    interval.
    """
    from scipy.stats import t as student_t  # noqa: PLC0415 - the one SciPy use here

    fn = "seed_mean_ci"
    _check_level(level, fn)
    a = _as_sample(x, "x", fn)
    n = a.shape[0]
    half = float(student_t.ppf(0.5 + level / 2, n - 1)) * float(a.std(ddof=1)) / math.sqrt(n)
    m = float(a.mean())
    return Interval(m, m - half, m + half, level, f"student-t over {n} seeds", n)


def paired_seed_ci(a, b, *, level: float = 0.95) -> Interval:
    """:func:`seed_mean_ci` of the per-seed differences ``a_i - b_i`` (paired by seed:
    the same seed id shares the data order, so what it shares cancels)."""
    fn = "paired_seed_ci"
    _check_level(level, fn)
    return _paired(fn, a, b, lambda d: seed_mean_ci(d, level=level))


def units_mean_ci(values, *, level: float = 0.95, seed: int = 0) -> Interval:
    """Interval of the grand mean of ``(S, T)`` values (seeds x trials) by the module's rule:
    the seed is the independent unit, so with ``S >= 2`` the Student-t interval of the ``S``
    per-seed means (:func:`seed_mean_ci`; the project's rule below n = 30, never a percentile
    bootstrap over a handful of seeds); with one seed, the trials are the units: the
    percentile bootstrap when ``T >= 30`` (:func:`bootstrap_mean_ci`), else Student-t over
    the trials. A 1-D input is one seed's trials."""
    fn = "units_mean_ci"
    _check_level(level, fn)
    v = np.atleast_2d(np.asarray(values, dtype=np.float64))
    if v.ndim != 2 or v.size == 0:
        raise StatsError(f"{fn}: expected values of shape (seeds, trials), got {v.shape}")
    if not np.isfinite(v).all():
        raise StatsError(f"{fn}: expected finite values, got {int((~np.isfinite(v)).sum())} "
                         "non-finite")
    if v.shape[0] >= 2:
        return seed_mean_ci(v.mean(axis=1), level=level)
    if v.shape[1] >= 30:
        return bootstrap_mean_ci(v[0], level=level, seed=seed)
    ci = seed_mean_ci(v[0], level=level)
    return Interval(ci.estimate, ci.lo, ci.hi, level, f"student-t over {v.shape[1]} trials "
                    "(one seed)", v.shape[1])


def clopper_pearson(successes: int, trials: int, *, level: float = 0.95) -> Interval:
    """Exact (Clopper-Pearson) interval of a binomial proportion.

    ``lo`` is the ``(1 - level) / 2`` quantile of ``Beta(k, n - k + 1)`` (0 when
    ``k = 0``) and ``hi`` the ``(1 + level) / 2`` quantile of ``Beta(k + 1, n - k)``
    (1 when ``k = n``), found by bisection on the regularized incomplete beta function
    (through the binomial tail, exact sums; no scipy).
    """
    fn = "clopper_pearson"
    _check_level(level, fn)
    for name, v in (("successes", successes), ("trials", trials)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise StatsError(f"{fn}: expected {name} to be an int, got {v!r}")
    if trials < 1 or not 0 <= successes <= trials:
        raise StatsError(f"{fn}: expected 0 <= successes <= trials and trials >= 1, got "
                         f"successes={successes}, trials={trials}")
    k, n = int(successes), int(trials)
    alpha = 1.0 - level
    # P(X >= k | p) is increasing in p: lo solves P(X >= k | lo) = alpha / 2;
    # P(X <= k | p) is decreasing in p: hi solves P(X <= k | hi) = alpha / 2.
    lo = 0.0 if k == 0 else _bisect(lambda p: _binom_sf(k, n, p) - alpha / 2)
    hi = 1.0 if k == n else _bisect(lambda p: alpha / 2 - _binom_cdf(k, n, p))
    return Interval(k / n, lo, hi, level, "clopper-pearson", n)


def _log_pmf(n: int, p: float) -> np.ndarray:
    """``log P(X = j)`` for ``j = 0..n``, ``X ~ Bin(n, p)``, ``0 < p < 1``."""
    j = np.arange(n + 1)
    logc = np.array([math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1)
                     for i in range(n + 1)])
    return logc + j * math.log(p) + (n - j) * math.log1p(-p)


def _binom_cdf(k: int, n: int, p: float) -> float:
    if p <= 0.0:
        return 1.0
    if p >= 1.0:
        return 1.0 if k >= n else 0.0
    return float(np.exp(_log_pmf(n, p)[: k + 1]).sum())


def _binom_sf(k: int, n: int, p: float) -> float:
    """``P(X >= k)``."""
    if p <= 0.0:
        return 1.0 if k <= 0 else 0.0
    if p >= 1.0:
        return 1.0
    return float(np.exp(_log_pmf(n, p)[k:]).sum())


def _bisect(f, lo: float = 0.0, hi: float = 1.0, iters: int = 200) -> float:
    """Root of an increasing ``f`` on ``[lo, hi]`` (``f(lo) <= 0 <= f(hi)``)."""
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        if f(mid) < 0:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-15:
            break
    return 0.5 * (lo + hi)


def family_level(m: int, level: float = 0.95) -> float:
    """Per-interval level for deciding "failed" within a family of ``m`` intervals:
    ``1 - (1 - level) / m`` (Bonferroni).

    A check *verified* only when every interval of its family lies on the claimed side is
    an intersection-union test: each interval at ``level`` keeps its error at
    ``1 - level``, no correction needed. A check that *fails* when any one interval lies
    on the other side is a union: with ``m`` independent 95 % intervals of true ties it
    would fail with probability ``1 - 0.975**m`` (16 intervals: 33 %). Deciding "failed"
    on intervals at ``family_level(m)`` bounds that by ``(1 - level) / 2`` whatever their
    dependence (tested by simulation in ``tests/proofs/test_stats.py``).
    """
    fn = "family_level"
    if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or m < 1:
        raise StatsError(f"{fn}: expected m to be an int >= 1, got {m!r}")
    _check_level(level, fn)
    return 1.0 - (1.0 - level) / int(m)


def decide(interval: Interval, null: float = 0.0, direction: str = ">", *,
           fail_interval: Interval | None = None) -> str:
    """The verdict on "the quantity is ``direction`` ``null``" from a two-sided interval.

    Args:
        interval: an :class:`Interval` (or anything with ``lo`` and ``hi``).
        null: the value that would mean "no effect".
        direction: ``">"`` (claim: above ``null``) or ``"<"`` (claim: below).
        fail_interval: the interval "failed" is decided on, when it differs from the one
            "verified" is (a family of intervals: :func:`family_level`); default
            ``interval``.

    Returns:
        ``"verified"`` if the whole ``interval`` is strictly on the claimed side,
        ``"failed"`` if the whole ``fail_interval`` is strictly on the other side,
        ``"inconclusive"`` otherwise.
    """
    fn = "decide"
    if direction not in (">", "<"):
        raise StatsError(f"{fn}: expected direction '>' or '<', got {direction!r}")
    claimed = direction == ">"
    for iv in (interval, fail_interval):
        if iv is None:
            continue
        lo, hi = float(iv.lo), float(iv.hi)
        if not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi:
            raise StatsError(f"{fn}: expected an interval with finite lo <= hi, got "
                             f"[{lo}, {hi}]")
    lo, hi = float(interval.lo), float(interval.hi)
    if (lo > null) if claimed else (hi < null):
        return "verified"
    f = interval if fail_interval is None else fail_interval
    if (float(f.hi) < null) if claimed else (float(f.lo) > null):
        return "failed"
    return "inconclusive"


def decide_paired(a, b, *, m: int = 1, null: float = 0.0, direction: str = ">",
                  level: float = 0.95) -> tuple[str, Interval, Interval]:
    """``(verdict, interval, fail interval)`` of "mean(a - b) is ``direction`` ``null``",
    one interval of a family of ``m``: :func:`paired_seed_ci` at ``level`` verifies, the
    one at :func:`family_level` ``(m, level)`` fails (:func:`decide`). With ``m = 1`` the
    two intervals are the same."""
    ci = paired_seed_ci(a, b, level=level)
    wide = paired_seed_ci(a, b, level=family_level(m, level)) if m > 1 else ci
    return decide(ci, null, direction, fail_interval=wide), ci, wide

