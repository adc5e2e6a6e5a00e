"""Categorical drift tests and distances between reference and current category counts.

Contingency tests compare the two samples as a 2 x K table (reference row, current row), as
a two-sample test must: testing the window against the reference's proportions with a
one-sample chi-square would treat the reference as error-free and double-count.

Examples
--------
>>> import scipy.stats
>>> ref = Counts.from_mapping({"a": 60, "b": 40})
>>> cur = Counts.from_mapping({"a": 35, "b": 65})
>>> r = chi2(ref, cur)
>>> expected = scipy.stats.chi2_contingency([[60, 40], [35, 65]], correction=False)
>>> bool(abs(r.p_value - expected.pvalue) < 1e-15)
True
>>> round(tvd(ref, cur).statistic, 2)
0.25
"""

from __future__ import annotations

import math

import numpy as np
import scipy.stats as st

from .numeric import Outcome, hellinger_of, js_of, kl_of, psi_of
from .samples import Counts


def table(ref: Counts, cur: Counts) -> tuple[list[str], np.ndarray]:
    """Categories (by reference frequency, then new ones) and the 2 x K count table."""
    cats = ref.categories() + [c for c in cur.categories() if c not in ref.counts]
    return cats, np.vstack([ref.vector(cats), cur.vector(cats)])


def _contingency(ref: Counts, cur: Counts, lambda_: str | None) -> Outcome:
    _, t = table(ref, cur)
    if t.shape[1] < 2 or t[0].sum() == 0 or t[1].sum() == 0:
        return Outcome(0.0, 1.0, approximate=ref.approximate or cur.approximate)
    r = st.chi2_contingency(t, correction=False, lambda_=lambda_)
    return Outcome(
        float(r.statistic), float(r.pvalue), approximate=ref.approximate or cur.approximate
    )


def chi2(ref: Counts, cur: Counts) -> Outcome:
    """Pearson chi-square test of homogeneity on the 2 x K table
    (``scipy.stats.chi2_contingency(table, correction=False)``)."""
    return _contingency(ref, cur, None)


def gtest(ref: Counts, cur: Counts) -> Outcome:
    """G-test (log-likelihood ratio) on the 2 x K table
    (``chi2_contingency(table, correction=False, lambda_="log-likelihood")``)."""
    return _contingency(ref, cur, "log-likelihood")


def _per_category(ref: Counts, cur: Counts) -> tuple[list[str], np.ndarray, float, float]:
    cats, t = table(ref, cur)
    n, m = float(t[0].sum()), float(t[1].sum())
    # a two-category column needs one test; otherwise one per category, Bonferroni-adjusted
    if len(cats) == 2:
        cats, t = cats[:1], t[:, :1]
    return cats, t, n, m


def ztest(ref: Counts, cur: Counts) -> Outcome:
    """Two-proportion z-test (pooled variance; ``statsmodels proportions_ztest``) per
    category; the statistic is the largest |z|, the p-value the smallest, times the number
    of categories tested (Bonferroni). A two-category column needs a single test."""
    cats, t, n, m = _per_category(ref, cur)
    if n == 0 or m == 0 or not cats:
        return Outcome(0.0, 1.0)
    p1, p2 = t[1] / m, t[0] / n
    pooled = (t[0] + t[1]) / (n + m)
    se = np.sqrt(pooled * (1 - pooled) * (1 / n + 1 / m))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(se > 0, (p1 - p2) / se, 0.0)
    p = 2 * st.norm.sf(np.abs(z))
    i = int(np.argmin(p))
    return Outcome(
        float(z[i]),
        float(min(1.0, p[i] * len(cats))),
        approximate=ref.approximate or cur.approximate,
    )


def fisher(ref: Counts, cur: Counts) -> Outcome:
    """Fisher's exact test on the 2 x 2 table (``scipy.stats.fisher_exact``); a column
    with more categories gets one category-vs-rest table per category (Bonferroni)."""
    cats, t, n, m = _per_category(ref, cur)
    if n == 0 or m == 0 or not cats:
        return Outcome(1.0, 1.0)
    best = (math.inf, 1.0)
    for j in range(len(cats)):
        a, b = t[0, j], t[1, j]
        r = st.fisher_exact([[int(a), int(n - a)], [int(b), int(m - b)]])
        if r.pvalue < best[0]:
            best = (float(r.pvalue), float(r.statistic))
    return Outcome(
        best[1],
        float(min(1.0, best[0] * len(cats))),
        approximate=ref.approximate or cur.approximate,
    )


def _proportions(ref: Counts, cur: Counts) -> tuple[np.ndarray, np.ndarray]:
    cats, _ = table(ref, cur)
    return ref.proportions(cats), cur.proportions(cats)


def _distance(fn, ref: Counts, cur: Counts) -> Outcome:
    if ref.n == 0 or cur.n == 0:
        return Outcome(math.nan)
    p, q = _proportions(ref, cur)
    return Outcome(fn(p, q), approximate=ref.approximate or cur.approximate)


def tvd(ref: Counts, cur: Counts) -> Outcome:
    """Total variation distance ``1/2 * sum |p - q|``."""
    return _distance(lambda p, q: float(0.5 * np.abs(p - q).sum()), ref, cur)


def psi(ref: Counts, cur: Counts) -> Outcome:
    """Population Stability Index over categories (empty ones smoothed)."""
    return _distance(psi_of, ref, cur)


def jensenshannon(ref: Counts, cur: Counts) -> Outcome:
    """Jensen-Shannon distance, natural log (``scipy.spatial.distance.jensenshannon``)."""
    return _distance(js_of, ref, cur)


def kl(ref: Counts, cur: Counts) -> Outcome:
    """KL(current || reference) over categories (smoothed)."""
    return _distance(kl_of, ref, cur)


def hellinger(ref: Counts, cur: Counts) -> Outcome:
    """Hellinger distance over categories."""
    return _distance(hellinger_of, ref, cur)


TWO_SAMPLE = {
    "chi2": chi2,
    "gtest": gtest,
    "ztest": ztest,
    "fisher": fisher,
    "tvd": tvd,
    "psi": psi,
    "jensenshannon": jensenshannon,
    "kl": kl,
    "hellinger": hellinger,
}
