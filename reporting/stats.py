"""Statistics that fit the metric: intervals for proportions and for continuous values, paired
tests between conditions, percentiles. Pure functions, standard library only.

A proportion is k successes out of n attempts (:class:`Proportion`, a float that also carries
k and n). Proportions get a Wilson score (default) or Clopper-Pearson interval computed on the
counts pooled over trials; continuous metrics a Student t interval on the per-trial values.
Between two conditions run on the same seeds: McNemar's exact test for binary outcomes,
otherwise a paired t test on the per-trial differences. ``docs/statistics.md`` says why.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

# One percentile for the project: the HMI metrics (device side) define it.
from common.quantiles import percentile

CONFIDENCE = 0.95
PROPORTION_METHODS = ("wilson", "clopper-pearson")

# Two-sided 95% Student t critical values t_{0.975, df} for df = 1..30.
_T975 = (
    12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060, 2.2622, 2.2281,
    2.2010, 2.1788, 2.1604, 2.1448, 2.1314, 2.1199, 2.1098, 2.1009, 2.0930, 2.0860,
    2.0796, 2.0739, 2.0687, 2.0639, 2.0595, 2.0555, 2.0518, 2.0484, 2.0452, 2.0423,
)
_Z975 = 1.959964


class Proportion(float):
    """A per-trial proportion: its float value is k/n (NaN when n is 0), and it keeps k and n.

    An experiment returns one as a metric value to declare the metric a proportion; everything
    that treats metrics as floats (metrics.csv, plots) keeps working.
    """

    k: int
    n: int

    def __new__(cls, k: int, n: int) -> Proportion:
        if n < 0 or k < 0 or k > n:
            raise ValueError(f"a proportion needs 0 <= k <= n (got {k}/{n})")
        obj = super().__new__(cls, k / n if n else math.nan)
        obj.k, obj.n = int(k), int(n)
        return obj

    def __reduce__(self) -> tuple:
        return (Proportion, (self.k, self.n))


def t_critical_95(df: int) -> float:
    """t_{0.975, df}; above 30 degrees of freedom a Cornish-Fisher expansion (error < 1e-4)."""
    if df < 1:
        raise ValueError("degrees of freedom must be >= 1")
    if df <= len(_T975):
        return _T975[df - 1]
    z = _Z975
    g1 = (z**3 + z) / 4
    g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96
    g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384
    return z + g1 / df + g2 / df**2 + g3 / df**3


def _beta_cf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (Lentz; Numerical Recipes 6.4)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 400):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return h


def beta_cdf(x: float, a: float, b: float) -> float:
    """The regularized incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    ln_front = (math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(ln_front) * _beta_cf(a, b, x) / a
    return 1.0 - math.exp(ln_front) * _beta_cf(b, a, 1.0 - x) / b


def beta_ppf(q: float, a: float, b: float) -> float:
    """The q-quantile of Beta(a, b), by bisection on :func:`beta_cdf` (to 1e-12)."""
    lo, hi = 0.0, 1.0
    for _ in range(200):
        mid = (lo + hi) / 2
        if beta_cdf(mid, a, b) < q:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12:
            break
    return (lo + hi) / 2


def wilson_interval(k: int, n: int, z: float = _Z975) -> tuple[float, float]:
    """Wilson score interval for k successes in n attempts (95% by default)."""
    if n <= 0:
        return math.nan, math.nan
    p = k / n
    denom = 1 + z * z / n
    center = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # At k = 0 or k = n the bound is exactly 0 or 1 (not 0.9999999999999999).
    return (0.0 if k == 0 else max(0.0, center - half),
            1.0 if k == n else min(1.0, center + half))


def clopper_pearson_interval(k: int, n: int, confidence: float = CONFIDENCE
                             ) -> tuple[float, float]:
    """Exact (Clopper-Pearson) interval for k successes in n attempts."""
    if n <= 0:
        return math.nan, math.nan
    alpha = 1 - confidence
    lo = 0.0 if k == 0 else beta_ppf(alpha / 2, k, n - k + 1)
    hi = 1.0 if k == n else beta_ppf(1 - alpha / 2, k + 1, n - k)
    return lo, hi


def t_two_sided_p(t: float, df: int) -> float:
    """Two-sided p-value of a Student t statistic with ``df`` degrees of freedom."""
    if math.isinf(t):
        return 0.0
    return beta_cdf(df / (df + t * t), df / 2, 0.5)


def mcnemar_exact_p(b: int, c: int) -> float:
    """McNemar's exact test: two-sided binomial p of the discordant pairs b vs c (p = 1/2)."""
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(b, c) + 1)) / 2**n
    return min(1.0, 2 * tail)


@dataclass(frozen=True)
class Summary:
    """Mean and 95% Student-t CI half-width of continuous values (for plots' error bars)."""

    n: int
    mean: float
    ci95: float
    std: float
    median: float
    min: float
    max: float

    @property
    def low(self) -> float:
        return self.mean - self.ci95

    @property
    def high(self) -> float:
        return self.mean + self.ci95

    def to_dict(self) -> dict:
        return asdict(self)


def _finite(values: Sequence[float | None]) -> list[float]:
    return [v for v in values if v is not None and not math.isnan(float(v))]


def summarize(values: Sequence[float]) -> Summary:
    """NaN values (a metric a trial could not measure) are left out and do not count in n."""
    xs = [float(v) for v in _finite(values)]
    n = len(xs)
    if n == 0:
        nan = math.nan
        return Summary(0, nan, nan, nan, nan, nan, nan)
    mean = sum(xs) / n
    if n == 1:
        return Summary(1, mean, math.nan, math.nan, mean, mean, mean)
    var = sum((x - mean) ** 2 for x in xs) / (n - 1)
    std = math.sqrt(var)
    ci = t_critical_95(n - 1) * std / math.sqrt(n)
    return Summary(n, mean, ci, std, percentile(xs, 50), min(xs), max(xs))


@dataclass(frozen=True)
class MetricSummary:
    """One metric of one condition across its scored trials.

    kind: ``proportion`` (k successes of n attempts pooled over the trials) or ``continuous``
        (n = trials). mean: k/n for a proportion, the mean of the trial values otherwise.
    ci_low, ci_high: the 95% interval; None when there is none (n = 1, or every value equal for
        a continuous metric: ``note`` says which). method: ``wilson``, ``clopper-pearson``, ``t``.
    trials: how many trials contributed. std, median, min, max: of the per-trial values.
    """

    kind: str
    n: int
    k: int | None
    trials: int
    mean: float | None
    ci_low: float | None
    ci_high: float | None
    method: str
    confidence: float = CONFIDENCE
    note: str = ""
    std: float | None = None
    median: float | None = None
    min: float | None = None
    max: float | None = None

    def to_dict(self) -> dict:
        return {k: (None if isinstance(v, float) and math.isnan(v) else v)
                for k, v in asdict(self).items()}


def summarize_metric(values: Sequence[float], proportion_method: str = "wilson"
                     ) -> MetricSummary:
    """Summarize one metric's per-trial values; NaN values are left out.

    When every value is a :class:`Proportion` the counts are pooled (sum k of sum n) and the
    interval is ``proportion_method``'s; otherwise a Student t interval on the values.
    """
    if proportion_method not in PROPORTION_METHODS:
        raise ValueError(f"unknown proportion method {proportion_method!r}")
    xs = _finite(values)
    spread = summarize(xs)
    extra = {"std": spread.std, "median": spread.median, "min": spread.min, "max": spread.max}
    if xs and all(isinstance(v, Proportion) for v in xs):
        k = sum(v.k for v in xs)  # type: ignore[union-attr]
        n = sum(v.n for v in xs)  # type: ignore[union-attr]
        lo, hi = (wilson_interval(k, n) if proportion_method == "wilson"
                  else clopper_pearson_interval(k, n))
        return MetricSummary("proportion", n, k, len(xs), k / n, lo, hi, proportion_method,
                             **extra)
    n = len(xs)
    if n == 0:
        return MetricSummary("continuous", 0, None, 0, None, None, None, "t", note="no value")
    if n == 1:
        return MetricSummary("continuous", 1, None, 1, spread.mean, None, None, "t",
                             note="n=1: no interval", **extra)
    if spread.std == 0:
        return MetricSummary("continuous", n, None, n, spread.mean, None, None, "t",
                             note=f"all {n} values equal: no interval", **extra)
    return MetricSummary("continuous", n, None, n, spread.mean, spread.mean - spread.ci95,
                         spread.mean + spread.ci95, "t", **extra)


@dataclass(frozen=True)
class PairedTest:
    """Condition ``b`` against condition ``a`` on the trials (seeds) both scored.

    method: ``mcnemar-exact`` (every value a 0/1 outcome of one attempt) or ``paired-t`` (on
    the per-trial differences b - a). mean_diff: mean of b - a. ci_low, ci_high: 95% interval
    of the mean difference (paired t only). a_only, b_only: discordant pairs (McNemar): trials
    where only a, or only b, succeeded. note: why a statistic is missing.
    """

    metric: str
    a: str
    b: str
    n_pairs: int
    method: str
    mean_diff: float | None
    ci_low: float | None = None
    ci_high: float | None = None
    p_value: float | None = None
    a_only: int | None = None
    b_only: int | None = None
    note: str = ""

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items()
                if v is not None or k in ("mean_diff", "p_value")}


def _binary(v: float) -> bool:
    return isinstance(v, Proportion) and v.n == 1


def paired_test(metric: str, a: str, b: str, pairs: Sequence[tuple[float, float]]
                ) -> PairedTest:
    """McNemar exact for binary pairs, else paired t on b - a; NaN pairs are left out."""
    ps = [(x, y) for x, y in pairs if not (math.isnan(x) or math.isnan(y))]
    n = len(ps)
    if n == 0:
        return PairedTest(metric, a, b, 0, "none", None, note="no trial scored in both")
    if all(_binary(x) and _binary(y) for x, y in ps):
        a_only = sum(1 for x, y in ps if x.k == 1 and y.k == 0)  # type: ignore[attr-defined]
        b_only = sum(1 for x, y in ps if x.k == 0 and y.k == 1)  # type: ignore[attr-defined]
        return PairedTest(metric, a, b, n, "mcnemar-exact", (b_only - a_only) / n,
                          p_value=mcnemar_exact_p(a_only, b_only), a_only=a_only,
                          b_only=b_only)
    diffs = [float(y) - float(x) for x, y in ps]
    mean = sum(diffs) / n
    if n == 1:
        return PairedTest(metric, a, b, 1, "paired-t", mean, note="n=1: no test")
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (n - 1))
    if sd == 0:
        return PairedTest(metric, a, b, n, "paired-t", mean,
                          note=f"all {n} differences equal: no test")
    se = sd / math.sqrt(n)
    half = t_critical_95(n - 1) * se
    return PairedTest(metric, a, b, n, "paired-t", mean, mean - half, mean + half,
                      t_two_sided_p(mean / se, n - 1))


def proportion_decimals(mean: float, lo: float, hi: float, most: int = 4) -> int:
    """Decimals (2 to ``most``) at which a bound that differs from the estimate also prints
    differently: 999/999 reads ``1.000 [0.996, 1.000]``, not ``1.00 [1.00, 1.00]``."""
    d = 2
    while d < most and any(b != mean and f"{b:.{d}f}" == f"{mean:.{d}f}" for b in (lo, hi)):
        d += 1
    return d


def format_estimate(entry: Mapping[str, Any], digits: int = 3) -> str:
    """One ``summary.json`` metric entry as text: ``1.00 [0.44, 1.00] 3/3`` for a proportion,
    ``12.3 [10.1, 14.5]`` or ``12.3 (n=1: no interval)`` for a continuous metric; never
    ``± 0``."""
    mean, lo, hi = entry.get("mean"), entry.get("ci_low"), entry.get("ci_high")
    if not isinstance(mean, int | float) or math.isnan(mean):
        return "-"
    if entry.get("kind") == "proportion":
        d = proportion_decimals(mean, lo, hi)
        return f"{mean:.{d}f} [{lo:.{d}f}, {hi:.{d}f}] {entry.get('k')}/{entry.get('n')}"
    text = f"{mean:.{digits}g}"
    if not isinstance(lo, int | float) or not isinstance(hi, int | float):
        note = entry.get("note")
        return f"{text} ({note})" if note else text
    return f"{text} [{lo:.{digits}g}, {hi:.{digits}g}]"
