"""Numeric drift tests and distances between a reference and one or more windows.

Every function takes :class:`~mlpulse.drift.samples.NumericSample` objects. When all samples
are exact (raw rows, or sketches that never compacted) the p-value comes from SciPy's own
function on the values, so it is SciPy's. Otherwise the statistic is computed from the
weighted sketch items with the true row counts, and for the rank tests an interval that
covers the sketch's rank error is returned too: when that interval straddles the decision
threshold the caller recomputes from raw rows (see :mod:`mlpulse.drift.compute`).

Examples
--------
>>> import numpy as np, scipy.stats
>>> rng = np.random.default_rng(0)
>>> a, b = rng.normal(size=300), rng.normal(0.3, size=200)
>>> r = ks(NumericSample.from_values(a), NumericSample.from_values(b))
>>> bool(np.isclose(r.p_value, scipy.stats.ks_2samp(a, b).pvalue))
True
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import scipy.stats as st
from scipy.special import gammaln, kv

from .samples import NumericSample

N_BINS = 10
"""Equal-probability bins of the reference for PSI, Jensen-Shannon, KL and Hellinger."""
EPS = 1e-4
"""Proportion given to an empty bin before renormalising (keeps PSI and KL finite)."""


@dataclass
class Outcome:
    """A statistic, its p-value (NaN for distances) and, in sketch mode, bounds on it."""

    statistic: float
    p_value: float = math.nan
    low: float | None = None  # bounds of the p-value (tests) or statistic (distances)
    high: float | None = None
    approximate: bool = False


def _all_exact(*samples: NumericSample) -> bool:
    return all(s.exact for s in samples)


def _pooled(a: NumericSample, b: NumericSample) -> np.ndarray:
    return np.union1d(a.values, b.values)


# -- rank tests -------------------------------------------------------------------------


def _ks_p(d: np.ndarray, n: int, m: int) -> np.ndarray:
    # SciPy's asymptotic two-sided p-value for two samples (ks_2samp, method='asymp')
    en = n * m / (n + m)
    return np.asarray(st.kstwo.sf(np.clip(d, 0.0, 1.0), np.round(en)), dtype=np.float64)


def ks(ref: NumericSample, cur: NumericSample) -> Outcome:
    """Two-sample Kolmogorov-Smirnov (``scipy.stats.ks_2samp``)."""
    if _all_exact(ref, cur):
        with warnings.catch_warnings():
            # SciPy's documented switch to the asymptotic p-value for large samples
            warnings.filterwarnings("ignore", "ks_2samp: Exact calculation", RuntimeWarning)
            r = st.ks_2samp(ref.expand(), cur.expand())
        return Outcome(float(r.statistic), float(r.pvalue))
    z = _pooled(ref, cur)
    d = float(np.max(np.abs(ref.cdf(z) - cur.cdf(z))))
    band = ref.rank_error + cur.rank_error
    # larger D -> smaller p: the bounds of D map to bounds of p (one SciPy call for the three)
    p, low, high = _ks_p(np.array([d, d + band, d - band]), ref.n, cur.n)
    return Outcome(d, float(p), float(low), float(high), True)


def _cdf_cvm_inf(x: float) -> float:
    """CDF of the Cramer-von Mises statistic for infinite samples (Csorgo and Faraway 1996,
    eq. 1.2-1.3), summing the series until a term falls under 1e-7, as SciPy's
    ``cramervonmises`` does (there a private helper, so reimplemented here against public
    ``scipy.special`` functions; tests compare the p-values with SciPy's)."""
    total, k = 0.0, 0
    while True:
        u = math.exp(gammaln(k + 0.5) - gammaln(k + 1)) / (math.pi**1.5 * math.sqrt(x))
        y = 4 * k + 1
        q = y**2 / (16 * x)
        term = float(u * math.sqrt(y) * math.exp(-q) * kv(0.25, q))
        total += term
        if abs(term) < 1e-7:
            return total
        k += 1


def _cvm_p(t: float, nx: int, ny: int) -> float:
    """Asymptotic p-value of the two-sample statistic ``t`` (Anderson 1962, eqs. 11, 14, 15:
    ``t`` normalised by its exact mean and variance, then the one-sample limit law), the
    formula ``scipy.stats.cramervonmises_2samp(method="asymptotic")`` uses."""
    N, k = nx + ny, nx * ny
    et = (1 + 1 / N) / 6
    vt = (N + 1) * (4 * k * N - 3 * (nx**2 + ny**2) - 2 * k) / (45 * N**2 * 4 * k)
    tn = 1 / 6 + (t - et) / math.sqrt(45 * vt)
    if tn < 0.003:  # the CDF is below 1.3e-18 there
        return 1.0
    return max(0.0, 1.0 - _cdf_cvm_inf(tn))


def cvm(ref: NumericSample, cur: NumericSample) -> Outcome:
    """Two-sample Cramer-von Mises (``scipy.stats.cramervonmises_2samp``)."""
    if _all_exact(ref, cur):
        r = st.cramervonmises_2samp(ref.expand(), cur.expand())
        return Outcome(float(r.statistic), float(r.pvalue))
    n, m = ref.n, cur.n
    z = _pooled(ref, cur)
    delta = np.abs(ref.cdf(z) - cur.cdf(z))
    # mass of the pooled empirical distribution at each point
    h = (n * (ref.cdf(z) - ref.cdf(z, "left")) + m * (cur.cdf(z) - cur.cdf(z, "left"))) / (n + m)
    scale = n * m / (n + m)
    t = float(scale * np.sum(h * delta**2))
    band = ref.rank_error + cur.rank_error
    t_lo = float(scale * np.sum(h * np.maximum(delta - band, 0) ** 2))
    t_hi = float(scale * np.sum(h * (delta + band) ** 2))
    return Outcome(t, _cvm_p(t, n, m), _cvm_p(t_hi, n, m), _cvm_p(t_lo, n, m), True)


def anderson(ref: NumericSample, cur: NumericSample) -> Outcome:
    """k-sample Anderson-Darling (``scipy.stats.anderson_ksamp``; SciPy caps its p-value
    to [0.001, 0.25]). Needs exact samples: a compacted sketch has no bound to offer."""
    if not _all_exact(ref, cur):
        return Outcome(math.nan, math.nan, 0.0, 1.0, True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = _anderson_ksamp([ref.expand(), cur.expand()])
    return Outcome(float(r.statistic), float(r.pvalue))


def _anderson_ksamp(samples: list[np.ndarray]):
    try:
        return st.anderson_ksamp(samples, variant="midrank")
    except TypeError:  # pragma: no cover - SciPy < 1.17
        return st.anderson_ksamp(samples)


def mannwhitney(ref: NumericSample, cur: NumericSample) -> Outcome:
    """Mann-Whitney U, two-sided (``scipy.stats.mannwhitneyu``); U is the reference's."""
    if _all_exact(ref, cur):
        r = st.mannwhitneyu(ref.expand(), cur.expand(), alternative="two-sided")
        return Outcome(float(r.statistic), float(r.pvalue))
    n, m = ref.n, cur.n
    # P(ref < cur) + P(ref == cur)/2 from the weighted items, scaled to the true counts
    below = cur.cdf(ref.values, "left")
    ties = cur.cdf(ref.values) - below
    auc = float(np.sum(ref.weights * (below + ties / 2)) / ref.weights.sum())
    band = ref.rank_error + cur.rank_error

    def p_of(a: float) -> float:
        u = n * m * (1 - a)  # U of the reference = #(ref > cur) + ties/2
        mu, sigma = n * m / 2, math.sqrt(n * m * (n + m + 1) / 12)
        z = (abs(u - mu) - 0.5) / sigma
        return float(min(1.0, 2 * st.norm.sf(max(z, 0.0))))

    u = n * m * (1 - auc)
    dist = abs(auc - 0.5)
    p_low = p_of(0.5 + dist + band)
    p_high = p_of(0.5 + max(dist - band, 0.0))
    return Outcome(u, p_of(auc), p_low, p_high, True)


def ttest(ref: NumericSample, cur: NumericSample) -> Outcome:
    """Welch's t-test, from exact moments in both modes (``scipy.stats.ttest_ind``,
    ``equal_var=False``)."""
    if ref.n < 2 or cur.n < 2:
        return Outcome(math.nan, math.nan)
    r = st.ttest_ind_from_stats(
        cur.mean, cur.sample_std, cur.n, ref.mean, ref.sample_std, ref.n, equal_var=False
    )
    return Outcome(float(r.statistic), float(r.pvalue))


def anova(groups: list[NumericSample]) -> Outcome:
    """One-way ANOVA across groups (``scipy.stats.f_oneway``), from exact moments."""
    groups = [g for g in groups if g.n > 0]
    k = len(groups)
    n_total = sum(g.n for g in groups)
    if k < 2 or n_total <= k:
        return Outcome(math.nan, math.nan)
    grand = sum(g.n * g.mean for g in groups) / n_total
    between = sum(g.n * (g.mean - grand) ** 2 for g in groups) / (k - 1)
    within = sum(g.n * g.var for g in groups) / (n_total - k)
    if within == 0:
        return Outcome(math.inf if between > 0 else math.nan, 0.0 if between > 0 else math.nan)
    f = between / within
    return Outcome(float(f), float(st.f.sf(f, k - 1, n_total - k)))


def kruskal(groups: list[NumericSample]) -> Outcome:
    """Kruskal-Wallis H across groups (``scipy.stats.kruskal``); exact samples only."""
    groups = [g for g in groups if g.n > 0]
    if len(groups) < 2:
        return Outcome(math.nan, math.nan)
    if not _all_exact(*groups):
        return Outcome(math.nan, math.nan, 0.0, 1.0, True)
    r = st.kruskal(*(g.expand() for g in groups))
    return Outcome(float(r.statistic), float(r.pvalue))


# -- distances --------------------------------------------------------------------------


def _w1_sorted(u: np.ndarray, uw: np.ndarray, v: np.ndarray, vw: np.ndarray) -> float:
    """1-Wasserstein distance between two weighted samples whose values are sorted."""
    allv = np.union1d(u, v)
    if len(allv) < 2:
        return 0.0
    deltas = np.diff(allv)
    cu = np.concatenate([[0.0], np.cumsum(uw)])
    cv = np.concatenate([[0.0], np.cumsum(vw)])
    fu = cu[np.searchsorted(u, allv[:-1], "right")] / cu[-1]
    fv = cv[np.searchsorted(v, allv[:-1], "right")] / cv[-1]
    return float(np.sum(np.abs(fu - fv) * deltas))


def _w1_unit(u: np.ndarray, v: np.ndarray) -> float:
    """1-Wasserstein distance of two sorted unweighted samples as the integral of the
    difference of their quantile functions, in O(n + m): the breakpoints ``i/n`` and ``j/m``
    are merged as the integers ``i*m`` and ``j*n`` (two sorted runs)."""
    n, m = len(u), len(v)
    grid = np.concatenate(
        [np.arange(1, n + 1, dtype=np.int64) * m, np.arange(1, m + 1, dtype=np.int64) * n]
    )
    grid.sort(kind="stable")
    widths = np.diff(grid, prepend=0) / (n * m)
    iu = (grid + m - 1) // m - 1
    iv = (grid + n - 1) // n - 1
    return float(np.sum(widths * np.abs(u[iu] - v[iv])))


def wasserstein(ref: NumericSample, cur: NumericSample) -> Outcome:
    """Wasserstein-1 distance divided by the reference's standard deviation
    (``scipy.stats.wasserstein_distance(ref, cur) / numpy.std(ref)``)."""
    if ref.n == 0 or cur.n == 0:
        return Outcome(math.nan)
    if np.all(ref.weights == 1) and np.all(cur.weights == 1):
        w = _w1_unit(ref.values, cur.values)
    else:
        w = _w1_sorted(ref.values, ref.weights, cur.values, cur.weights)
    spread = ref.std if ref.std > 0 else 1.0
    return Outcome(w / spread, approximate=not _all_exact(ref, cur))


def bins(ref: NumericSample, n_bins: int = N_BINS) -> np.ndarray:
    """Inner edges of equal-probability bins of the reference (right-closed bins)."""
    edges = ref.quantiles(np.arange(1, n_bins) / n_bins)
    return np.unique(edges)


def binned(sample: NumericSample, edges: np.ndarray) -> np.ndarray:
    """Proportion of the sample in each bin ``(-inf, e1], (e1, e2], ..., (e_k, inf)``."""
    cum = np.concatenate([[0.0], sample.cdf(edges), [1.0]])
    return np.diff(cum)


def smooth(p: np.ndarray) -> np.ndarray:
    """Give empty bins ``EPS`` and renormalise."""
    p = np.where(p <= 0, EPS, p)
    return p / p.sum()


def psi_of(p: np.ndarray, q: np.ndarray) -> float:
    """Population Stability Index of ``q`` (current) against ``p`` (reference)."""
    p, q = smooth(p), smooth(q)
    return float(np.sum((q - p) * np.log(q / p)))


def js_of(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon distance, natural log (``scipy.spatial.distance.jensenshannon``)."""
    from scipy.spatial.distance import jensenshannon as _js

    return float(_js(p, q))


def kl_of(p: np.ndarray, q: np.ndarray) -> float:
    """KL(current || reference) (``scipy.stats.entropy(q, p)``), smoothed."""
    return float(st.entropy(smooth(q), smooth(p)))


def hellinger_of(p: np.ndarray, q: np.ndarray) -> float:
    """Hellinger distance ``sqrt(1/2 * sum((sqrt p - sqrt q)^2))``."""
    p, q = p / p.sum(), q / q.sum()
    return float(np.sqrt(0.5 * np.sum((np.sqrt(p) - np.sqrt(q)) ** 2)))


def _binned_distance(fn, ref: NumericSample, cur: NumericSample) -> Outcome:
    if ref.n == 0 or cur.n == 0:
        return Outcome(math.nan)
    edges = bins(ref)
    return Outcome(fn(binned(ref, edges), binned(cur, edges)), approximate=not _all_exact(ref, cur))


def psi(ref: NumericSample, cur: NumericSample) -> Outcome:
    """PSI over the reference's deciles."""
    return _binned_distance(psi_of, ref, cur)


def jensenshannon(ref: NumericSample, cur: NumericSample) -> Outcome:
    """Jensen-Shannon distance over the reference's deciles."""
    return _binned_distance(js_of, ref, cur)


def kl(ref: NumericSample, cur: NumericSample) -> Outcome:
    """Kullback-Leibler divergence KL(current || reference) over the reference's deciles."""
    return _binned_distance(kl_of, ref, cur)


def hellinger(ref: NumericSample, cur: NumericSample) -> Outcome:
    """Hellinger distance over the reference's deciles."""
    return _binned_distance(hellinger_of, ref, cur)


TWO_SAMPLE = {
    "ks": ks,
    "cvm": cvm,
    "anderson": anderson,
    "mannwhitney": mannwhitney,
    "ttest": ttest,
    "wasserstein": wasserstein,
    "psi": psi,
    "jensenshannon": jensenshannon,
    "kl": kl,
    "hellinger": hellinger,
}
K_SAMPLE = {"anova": anova, "kruskal": kruskal}
