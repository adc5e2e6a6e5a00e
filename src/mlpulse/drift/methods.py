"""The drift methods by name, their default thresholds, and the ``method="auto"`` rule.

===============  ==============================================  ===========  ==============
column           sample size (smaller of reference and window)   method       drifted when
===============  ==============================================  ===========  ==============
numeric          <= 1000                                         ks           p < 0.05
numeric          > 1000                                          wasserstein  >= 0.05 (std)
categorical, 2   <= 1000, some expected count < 5                fisher       p < 0.05
categorical, 2   <= 1000                                         ztest        p < 0.05
categorical, >2  <= 1000                                         chi2         p < 0.05
categorical      > 1000                                          jensenshannon >= 0.05
===============  ==============================================  ===========  ==============

Distance thresholds are raised to the distance's sampling-noise floor
(:func:`noise_floor`) unless you set them, so a distance never flags pure sampling noise.
Small samples get hypothesis tests; large samples get distances, because at a million rows
every test rejects shifts far too small to matter, and sketch noise alone can exceed them.

Examples
--------
>>> auto_method("numeric", 500, 800)
'ks'
>>> auto_method("numeric", 50_000, 2_000_000)
'wasserstein'
>>> auto_method("categorical", 200, 300, categories=2, min_expected=12.0)
'ztest'
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import ConfigError

NUMERIC, CATEGORICAL = "numeric", "categorical"
SMALL_SAMPLE = 1000
"""Largest sample size (the smaller side) that gets a hypothesis test under ``auto``."""


@dataclass(frozen=True)
class Method:
    name: str
    kinds: tuple[str, ...]
    is_test: bool  # True: drifted when p < threshold; False: when statistic >= threshold
    threshold: float
    k_sample: bool = False
    title: str = ""


_ALL = [
    Method("ks", (NUMERIC,), True, 0.05, title="Kolmogorov-Smirnov"),
    Method("cvm", (NUMERIC,), True, 0.05, title="Cramer-von Mises"),
    Method("anderson", (NUMERIC,), True, 0.05, title="Anderson-Darling (k-sample)"),
    Method("mannwhitney", (NUMERIC,), True, 0.05, title="Mann-Whitney U"),
    Method("ttest", (NUMERIC,), True, 0.05, title="Welch's t-test"),
    Method("kruskal", (NUMERIC,), True, 0.05, k_sample=True, title="Kruskal-Wallis H"),
    Method("anova", (NUMERIC,), True, 0.05, k_sample=True, title="one-way ANOVA"),
    Method("wasserstein", (NUMERIC,), False, 0.05, title="Wasserstein / reference std"),
    Method("psi", (NUMERIC, CATEGORICAL), False, 0.1, title="Population Stability Index"),
    Method("jensenshannon", (NUMERIC, CATEGORICAL), False, 0.05, title="Jensen-Shannon distance"),
    Method("kl", (NUMERIC, CATEGORICAL), False, 0.1, title="Kullback-Leibler divergence"),
    Method("hellinger", (NUMERIC, CATEGORICAL), False, 0.05, title="Hellinger distance"),
    Method("chi2", (CATEGORICAL,), True, 0.05, title="chi-square (2 x K)"),
    Method("gtest", (CATEGORICAL,), True, 0.05, title="G-test (2 x K)"),
    Method("ztest", (CATEGORICAL,), True, 0.05, title="two-proportion z-test"),
    Method("fisher", (CATEGORICAL,), True, 0.05, title="Fisher's exact (2 x 2)"),
    Method("tvd", (CATEGORICAL,), False, 0.1, title="total variation distance"),
]
METHODS: dict[str, Method] = {m.name: m for m in _ALL}


def auto_method(
    kind: str, n_ref: int, n_cur: int, *, categories: int = 0, min_expected: float = 5.0
) -> str:
    """The method ``auto`` picks for a column (see the module table)."""
    small = min(n_ref, n_cur) <= SMALL_SAMPLE
    if kind == NUMERIC:
        return "ks" if small else "wasserstein"
    if not small:
        return "jensenshannon"
    if categories <= 2:
        return "fisher" if min_expected < 5 else "ztest"
    return "chi2"


def resolve(method: str, column: str, kind: str) -> Method:
    """The :class:`Method` for a name, checked against the column's kind."""
    found = METHODS.get(method)
    if found is None:
        raise ConfigError(
            f"column {column!r}: unknown drift method {method!r}; use 'auto' or one of "
            f"{', '.join(METHODS)}"
        )
    if kind not in found.kinds:
        raise ConfigError(
            f"column {column!r} is {kind}; method {method!r} works on "
            f"{' and '.join(found.kinds)} columns"
        )
    return found


def noise_floor(method: str, n_ref: int, n_cur: int, cells: int = 10) -> float:
    """The value a distance reaches from sampling noise alone (about its 99.9th percentile
    for two samples of one distribution); default thresholds are raised to it, so that a
    distance on small samples does not flag noise. ``cells``: bins or categories.

    With ``n = n_ref * n_cur / (n_ref + n_cur)`` and ``c`` the 99.9th percentile of a
    chi-square with ``cells - 1`` degrees of freedom: Wasserstein ``4 / sqrt(n)`` (in units
    of the reference's std; 3.5 is the normal case), Jensen-Shannon and Hellinger
    ``sqrt(c / 8n)``, PSI ``c / n``, KL ``c / 2n``, TVD ``sqrt(c / n) / 2``.

    >>> round(noise_floor("wasserstein", 1000, 1000), 3)
    0.179
    >>> noise_floor("wasserstein", 10**6, 10**6) < 0.01
    True
    """
    import math

    from scipy.stats import chi2

    n = n_ref * n_cur / (n_ref + n_cur) if n_ref and n_cur else 0.0
    if n <= 0:
        return math.inf
    c = float(chi2.ppf(0.999, max(cells - 1, 1)))
    floors = {
        "wasserstein": 4.0 / math.sqrt(n),
        "jensenshannon": math.sqrt(c / (8 * n)),
        "hellinger": math.sqrt(c / (8 * n)),
        "psi": c / n,
        "kl": c / (2 * n),
        "tvd": 0.5 * math.sqrt(c / n),
    }
    return floors.get(method, 0.0)


#: Largest evidence score (:func:`evidence`): one window can add at most this to a CUSUM.
Z_MAX = 10.0

#: Distances whose noise floor is a chi-square quantile of ``n * stat`` (else ``n * stat**2``).
_LINEAR = ("psi", "kl")


def evidence(
    method: Method, p_value: float, statistic: float, threshold: float, cells: int = 10
) -> float:
    """A window's evidence of drift on one scale for every method: ``z = Φ⁻¹(1 - p)``,
    standard normal when the window is another sample of the baseline's distribution.

    Tests use their p-value. A distance has none, so its statistic is read against its
    threshold ``t`` with the chi-square approximation :func:`noise_floor` rests on, as if
    ``t`` were the 99.9th noise percentile: ``p = P(χ²_d > c · (stat / t)^a)`` with ``c`` the
    99.9th percentile of ``χ²_d``, ``a = 1`` for PSI and KL, else 2, ``d = cells - 1``
    (``d = 1`` for Wasserstein: a Gaussian tail). At ``stat == t``, ``z = 3.09``. Scores are
    cut to ``[-Z_MAX, Z_MAX]``; NaN where the column was not compared.

    >>> round(evidence(METHODS["ks"], 0.05, 0.2, 0.05), 3)
    1.645
    >>> round(evidence(METHODS["jensenshannon"], math.nan, 0.1, 0.1, cells=5), 3)
    3.09
    """
    from scipy.special import chdtrc, chdtri, ndtri

    if method.is_test:
        p = p_value
    else:
        if math.isnan(statistic) or not threshold > 0 or math.isinf(threshold):
            return math.nan
        d = 1 if method.name == "wasserstein" else max(cells - 1, 1)
        ratio = max(statistic, 0.0) / threshold
        c = float(chdtri(d, 0.001))  # chi2.isf(0.001, d)
        p = float(chdtrc(d, c * (ratio if method.name in _LINEAR else ratio * ratio)))
    if p is None or math.isnan(p):
        return math.nan
    return float(min(Z_MAX, max(-Z_MAX, -ndtri(min(max(p, 0.0), 1.0)))))  # norm.isf(p)


def threshold_for(
    method: Method, column: str, thresholds: dict | None, floor: float = 0.0
) -> float:
    """A column's threshold: ``thresholds[column]``, else ``thresholds[method]``, else the
    method's default raised to the distance's noise ``floor``."""
    thresholds = thresholds or {}
    if column in thresholds:
        return float(thresholds[column])
    if method.name in thresholds:
        return float(thresholds[method.name])
    return max(method.threshold, floor) if not method.is_test else method.threshold
