"""How many violations of an inferred rule chance alone explains.

An inferred rule is judged against the reference it was inferred from: a window breaks it
only when the count of offending rows is significant at level :data:`ALPHA`, under the
hypothesis that the window and the reference are two samples of one distribution (given
the pooled rows, the reference is a random subset of them: a permutation test, free of
assumptions on the distribution). User rules are hard rules and use none of this.

- :func:`beyond_extremes_pvalue`: at least ``k`` of the window's ``n`` values lie beyond
  the largest (or the smallest or largest) of the reference's ``m`` values. It is the
  exact p-value for the count beyond ``[min, max]``, and a conservative one for the count
  beyond a widened range. With ``tails=1`` it is Fisher's exact test for an event the
  reference never had (a missing or non-finite value).
- :func:`more_often_pvalue`: Fisher's exact test that the window has an event more often
  than the reference (the null rate).
- :func:`unseen_categories_pvalue`: at least ``k`` of the window's rows fall in categories
  the reference lacks, when each pooled row lands in the window with probability
  ``n / (n + m)``.

Examples
--------
>>> round(beyond_extremes_pvalue(1, 100, 100, tails=1), 6)  # a new maximum: n / (n + m)
0.5
>>> beyond_extremes_pvalue(30, 100, 100) < ALPHA  # 30 of 100 beyond the reference's range
True
>>> round(unseen_categories_pvalue([3], [3]), 4)  # one new category, 3 rows, n = m
0.125
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.special import gammaln
from scipy.stats import hypergeom

ALPHA = 1e-4
"""Level of each inferred rule's test: clean data breaks a rule in a window with at most
this probability (less where the rule has a margin on top)."""


def _log_binom(n: Any, k: Any) -> Any:
    return gammaln(np.add(n, 1)) - gammaln(np.add(k, 1)) - gammaln(np.subtract(n, k) + 1)


def beyond_extremes_pvalue(k: int, n: int, m: int, tails: int = 2) -> float:
    """P(at least ``k`` of ``n`` window values lie beyond the reference's extremes), when
    the ``n + m`` values are exchangeable (``tails=2``: below the minimum or above the
    maximum; ``tails=1``: above the maximum, or an event the reference never had).

    With ``N = n + m``: one tail, ``C(N - k, m) / C(N, m)``; two tails,
    ``((k + 1) C(N - k - 1, m - 1) + C(N - k - 1, m)) / C(N, m)``.

    >>> from itertools import combinations
    >>> n, m, k = 5, 3, 2  # brute force over the C(8, 3) equally likely reference ranks
    >>> def outside(ref):
    ...     return sum(1 for r in range(8) if r not in ref and (r < min(ref) or r > max(ref)))
    >>> hits = [outside(ref) >= k for ref in combinations(range(8), m)]
    >>> abs(sum(hits) / len(hits) - beyond_extremes_pvalue(k, n, m)) < 1e-12
    True
    """
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    total = n + m
    if tails == 1:
        if m < 1:
            return 1.0
        return float(math.exp(_log_binom(total - k, m) - _log_binom(total, m)))
    if m < 2:
        return 1.0  # one reference value is its own minimum and maximum: no evidence
    log_all = _log_binom(total, m)
    first = math.log(k + 1) + _log_binom(total - k - 1, m - 1) - log_all
    second = _log_binom(total - k - 1, m) - log_all if total - k - 1 >= m else -math.inf
    return float(min(1.0, math.exp(first) + math.exp(second)))


def more_often_pvalue(k: int, n: int, k_ref: int, m: int) -> float:
    """Fisher's exact one-sided p-value: ``k`` events in ``n`` window rows against
    ``k_ref`` in ``m`` reference rows, the window's rate being the larger.

    >>> from scipy.stats import fisher_exact
    >>> p = fisher_exact([[9, 41], [3, 97]], alternative="greater").pvalue
    >>> bool(abs(more_often_pvalue(9, 50, 3, 100) - p) < 1e-12)
    True
    """
    if k <= 0 or n <= 0:
        return 1.0
    return float(hypergeom.sf(k - 1, n + m, k + k_ref, n))


EXACT_UP_TO = 100_000
"""Offending rows up to which :func:`unseen_categories_pvalue` sums the distribution
exactly; past it a Chernoff bound (it is then tiny anyway unless the categories are huge)."""


def unseen_categories_pvalue(
    new_counts: Any, pooled_counts: Any, n: int | None = None, m: int | None = None
) -> float:
    """P(at least ``sum(new_counts)`` window rows fall in categories absent from the
    reference) when the pooled rows are split at random between window and reference.

    ``pooled_counts``: rows per category in window and reference together, for every
    category seen in either; ``new_counts``: the window's rows in the categories the
    reference lacks (only their sum matters). Each pooled row lands in the window with
    probability ``n / (n + m)`` (``1/2`` when not given), so a category of ``t`` pooled rows
    is absent from the reference with probability ``q = (n / (n + m)) ** t``, independently
    of the others; the distribution of the rows in such categories is summed exactly.

    >>> round(unseen_categories_pvalue([3], [3, 1]), 12)  # needs the 3-row one: 1/2 ** 3
    0.125
    >>> round(unseen_categories_pvalue([1], [3, 1]), 12)  # either: 1 - (1 - 1/8) (1 - 1/2)
    0.5625
    """
    k = int(round(float(np.asarray(new_counts, dtype=np.float64).sum())))
    if k <= 0:
        return 1.0
    share = 0.5 if n is None or m is None or n + m == 0 else n / (n + m)
    if share >= 1.0:
        return 1.0
    t = np.asarray(pooled_counts, dtype=np.float64)
    t = t[t > 0]
    log_q = t * math.log(share)
    keep = log_q > -60.0  # categories that could not plausibly miss the reference
    t, log_q = t[keep], log_q[keep]
    if t.sum() < k:
        return 0.0
    if k > EXACT_UP_TO:
        # Chernoff: log E[exp(lam K)] = sum log(1 - q + q exp(lam t)), minus lam k
        lam = np.geomspace(1e-6, 60.0, 400)[:, None] / max(1.0, float(t.min()))
        log_mgf = np.logaddexp(np.log1p(-np.exp(log_q)), log_q + lam * t).sum(axis=1)
        return float(min(1.0, math.exp(np.min(log_mgf - lam[:, 0] * k))))
    dist = np.zeros(k)  # P(K = 0 .. k - 1) over the categories so far
    dist[0] = 1.0
    tail = 0.0  # P(K >= k)
    for size, q in zip(t.astype(np.int64), np.exp(log_q), strict=True):
        moved = dist * q
        dist *= 1.0 - q
        if size >= k:
            tail += moved.sum()
        else:
            tail += moved[k - size :].sum()
            dist[size:] += moved[: k - size]
    return float(min(1.0, tail))


__all__ = ["ALPHA", "beyond_extremes_pvalue", "more_often_pvalue", "unseen_categories_pvalue"]
