"""Slice finding: conjunctions of feature conditions where the model errs more often.

Over a window's labeled raw rows, each row is an error or not:

* binary: the decision at the model's threshold differs from the label;
* multiclass: the predicted class differs from the label;
* regression: the absolute error is above the window's median absolute error (so the base
  rate is about one half and a slice's "error rate" is its share of the worse half).

Each feature gives *atoms*: ``column = value`` for a categorical feature (its 50 most
frequent values) or a numeric one with at most 8 distinct values; quartile bins for the
other numeric features (``x < q1``, ``q1 <= x < q2``, ..., ``x >= q3``); and ``column is
missing``. Slices are conjunctions of atoms of distinct features, up to ``max_conditions``
(1-3; with 3, triples are taken over the 12 features whose best atom is most significant).
Counting is vectorised: one ``np.bincount`` over the combined atom codes per feature tuple.

Every slice with at least ``min_support`` rows (default ``max(30, 1% of rows)``) is tested
against the rest of the window with the one-sided Fisher exact test (the hypergeometric tail
``P(X >= errors)``), and the p-values of all slices tested are adjusted together by
Benjamini-Hochberg (``q_value``). A slice is reported when ``q_value <= alpha`` (default
0.05), its error rate is above the window's (``lift > 1``), and, for a conjunction, above
the rate of each slice it extends (a condition that does not concentrate errors adds
nothing). Slices are ranked by p-value, so a small slice needs overwhelming evidence to
come first; on data whose errors do not depend on the features the answer is empty.
"""

from __future__ import annotations

import itertools
import math
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import stats

from ..errors import ConfigError
from ..schema import NUMERIC, ModelSpec
from ..store.rows import window_columns

if TYPE_CHECKING:
    from ..engine.scope import Scope
    from ..store.database import Store
    from ..store.registry import Registry

COLUMNS = ["slice", "conditions", "rows", "support", "error_rate", "lift", "p_value", "q_value"]
#: Most values of one categorical feature that become atoms (the most frequent).
TOP_VALUES = 50
#: Numeric features with at most this many distinct values get equality atoms.
FEW_VALUES = 8
#: Features combined into triples (those with the most significant single atom).
TRIPLE_FEATURES = 12


def benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (statsmodels' ``fdr_bh``)."""
    p = np.asarray(p, float)
    m = len(p)
    if m == 0:
        return p
    order = np.argsort(p, kind="stable")
    ranked = p[order] * m / np.arange(1, m + 1)
    adjusted = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.minimum(adjusted, 1.0)
    return out


def errors_of(spec: ModelSpec, pred: list, label: list) -> np.ndarray:
    """Whether each labeled row is an error (see the module docstring)."""
    if spec.task == "multiclass":
        return np.asarray(pd.Series(pred, dtype=object) != pd.Series(label, dtype=object), bool)
    p = np.asarray(pd.to_numeric(pd.Series(pred, dtype=object), errors="coerce"), float)
    y = np.asarray(pd.to_numeric(pd.Series(label, dtype=object), errors="coerce"), float)
    if spec.task == "binary":
        with np.errstate(invalid="ignore"):
            return (p >= spec.threshold) != (y == 1)
    err = np.abs(p - y)
    if len(err) == 0:
        return np.zeros(0, bool)
    return err > np.nanmedian(err)


def _number(value: float) -> str:
    return f"{value:.6g}"


def _atoms(column: str, kind: str, values: list) -> tuple[np.ndarray, list[tuple[dict, str]]]:
    """Each row's atom code (-1: none) and the atoms as (condition, text)."""
    series = pd.Series(values, dtype=object)
    missing = series.isna().to_numpy()
    atoms: list[tuple[dict, str]] = []
    if kind == NUMERIC:
        x = np.asarray(pd.to_numeric(series, errors="coerce"), float)
        missing = ~np.isfinite(x)
        finite = x[~missing]
        distinct = np.unique(finite)
        if len(distinct) > FEW_VALUES:
            edges = np.unique(np.quantile(finite, [0.25, 0.5, 0.75]))
            codes = np.searchsorted(edges, np.where(missing, 0.0, x), side="right")
            for i in range(len(edges) + 1):
                if i == 0:
                    cond = {"column": column, "op": "<", "value": float(edges[0])}
                    text = f"{column} < {_number(edges[0])}"
                elif i == len(edges):
                    cond = {"column": column, "op": ">=", "value": float(edges[-1])}
                    text = f"{column} >= {_number(edges[-1])}"
                else:
                    low, high = float(edges[i - 1]), float(edges[i])
                    cond = {"column": column, "op": "between", "value": [low, high]}
                    text = f"{_number(low)} <= {column} < {_number(high)}"
                atoms.append((cond, text))
        else:
            codes = np.searchsorted(
                distinct, np.where(missing, distinct[0] if len(distinct) else 0, x)
            )
            for v in distinct.tolist():
                atoms.append(
                    ({"column": column, "op": "==", "value": v}, f"{column} = {_number(v)}")
                )
    else:
        text_values = series.where(series.isna(), series.astype(str))
        codes_all, uniques = pd.factorize(text_values, use_na_sentinel=True)
        counts = np.bincount(codes_all[codes_all >= 0], minlength=len(uniques))
        top = np.argsort(-counts, kind="stable")[:TOP_VALUES]
        remap = np.full(len(uniques) + 1, -1)
        remap[top] = np.arange(len(top))
        codes = remap[np.where(codes_all < 0, len(uniques), codes_all)]
        for i in top.tolist():
            value = str(uniques[i])
            atoms.append(({"column": column, "op": "==", "value": value}, f"{column} = {value}"))
    codes = np.asarray(codes, np.int64)
    if missing.any():
        codes = np.where(missing, len(atoms), codes)
        atoms.append(
            ({"column": column, "op": "is missing", "value": None}, f"{column} is missing")
        )
    return codes, atoms


class _Features:
    def __init__(self, spec: ModelSpec, table: Any, columns: list[str]) -> None:
        self.codes: list[np.ndarray] = []
        self.atoms: list[list[tuple[dict, str]]] = []
        for column in columns:
            codes, atoms = _atoms(column, spec.features.get(column, "categorical"),
                                  table.column(column).to_pylist())  # fmt: skip
            self.codes.append(codes)
            self.atoms.append(atoms)


def _count(
    feats: _Features, combo: tuple[int, ...], errors: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For the atom tuples of features ``combo``: their indices (one row per occupied
    tuple), row counts and error counts."""
    sizes = [len(feats.atoms[f]) for f in combo]
    valid = np.ones(len(errors), bool)
    key = np.zeros(len(errors), np.int64)
    for f, size in zip(combo, sizes, strict=True):
        codes = feats.codes[f]
        valid &= codes >= 0
        key = key * size + np.maximum(codes, 0)
    key = key[valid]
    total = math.prod(sizes)
    n = np.bincount(key, minlength=total)
    e = np.bincount(key, weights=errors[valid].astype(float), minlength=total)
    occupied = np.flatnonzero(n)
    idx = (
        np.stack(np.unravel_index(occupied, sizes), axis=1)
        if len(occupied)
        else np.zeros((0, len(combo)), int)
    )
    return idx, n[occupied], e[occupied]


def support_rows(min_support: Any, n: int) -> int:
    if min_support is None:
        return max(30, math.ceil(0.01 * n))
    if (
        isinstance(min_support, bool)
        or not isinstance(min_support, int | float)
        or not (min_support > 0 and math.isfinite(min_support))
    ):
        raise ConfigError(
            f"min_support must be a row count >= 1 or a fraction in (0, 1), got {min_support!r}"
        )
    if min_support < 1:
        return max(1, math.ceil(min_support * n))
    return int(math.ceil(min_support))


def compute_slices(
    store: Store,
    registry: Registry,
    scope: Scope,
    metric: str = "error",
    max_conditions: int = 2,
    min_support: Any = None,
    limit: int = 20,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """The slices of the scope's labeled rows with significantly more errors (module
    docstring), ranked by p-value: slice, conditions, rows, support, error_rate, lift,
    p_value, q_value."""
    spec = scope.spec
    if metric != "error":
        raise ConfigError(f"model {spec.name!r}: slices rank metric='error' only, got {metric!r}")
    if isinstance(max_conditions, bool) or max_conditions not in (1, 2, 3):
        raise ConfigError(
            f"model {spec.name!r}: max_conditions must be 1, 2 or 3, got {max_conditions!r}"
        )
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ConfigError(f"model {spec.name!r}: limit must be a positive integer, got {limit!r}")
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0 < alpha <= 1:
        raise ConfigError(f"model {spec.name!r}: alpha must be in (0, 1], got {alpha!r}")
    empty = pd.DataFrame({c: pd.Series(dtype=t) for c, t in zip(
        COLUMNS, [object, object, np.int64, float, float, float, float, float], strict=True)})  # fmt: skip
    columns = list(spec.features)
    lo, hi = scope.span
    table = window_columns(
        store, spec, lo, hi, scope.versions, ["__prediction", "__label", *columns], labeled=True
    )
    n = table.num_rows
    if n == 0 or not columns:
        return empty
    errors = errors_of(
        spec, table.column("__prediction").to_pylist(), table.column("__label").to_pylist()
    )
    total_errors = int(errors.sum())
    base = total_errors / n
    threshold = support_rows(min_support, n)
    feats = _Features(spec, table, columns)

    found: list[dict[str, Any]] = []  # one block of slices per feature tuple
    rate_of: dict[tuple, float] = {}  # ((feature, atom), ...) -> error rate, for parents

    def tested(combo: tuple[int, ...]) -> None:
        idx, rows, errs = _count(feats, combo, errors)
        keep = (rows >= threshold) & (rows < n)
        idx, rows, errs = idx[keep], rows[keep], errs[keep]
        if not len(rows):
            return
        rate = errs / rows
        p = stats.hypergeom.sf(errs - 1, n, total_errors, rows)
        for i, r in zip(map(tuple, idx.tolist()), rate.tolist(), strict=True):
            rate_of[tuple(zip(combo, i, strict=True))] = r
        found.append(
            {"combo": combo, "idx": idx, "rows": rows, "errors": errs, "rate": rate, "p": p}
        )

    k = len(columns)
    for f in range(k):
        tested((f,))
    if max_conditions >= 2:
        for pair in itertools.combinations(range(k), 2):
            tested(pair)
    if max_conditions >= 3:
        best = {
            block["combo"][0]: float(block["p"].min())
            for block in found
            if len(block["combo"]) == 1
        }
        chosen = sorted(sorted(best, key=lambda f: best[f])[:TRIPLE_FEATURES])
        for triple in itertools.combinations(chosen, 3):
            tested(triple)
    if not found:
        return empty
    p_all = np.concatenate([b["p"] for b in found])
    q_all = benjamini_hochberg(np.minimum(p_all, 1.0))
    out = []
    offset = 0
    for block in found:
        m = len(block["p"])
        q = q_all[offset : offset + m]
        offset += m
        combo = block["combo"]
        good = (q <= alpha) & (block["rate"] > base)
        for j in np.flatnonzero(good).tolist():
            key = tuple(zip(combo, block["idx"][j].tolist(), strict=True))
            rate = float(block["rate"][j])
            if len(key) > 1 and any(
                rate <= rate_of.get(parent, -1.0)
                for parent in itertools.combinations(key, len(key) - 1)
            ):
                continue
            atoms = [feats.atoms[f][a] for f, a in key]
            out.append(
                {
                    "slice": " and ".join(text for _cond, text in atoms),
                    "conditions": [dict(cond) for cond, _text in atoms],
                    "rows": int(block["rows"][j]),
                    "support": float(block["rows"][j]) / n,
                    "error_rate": rate,
                    "lift": rate / base,
                    "p_value": float(block["p"][j]),
                    "q_value": float(q[j]),
                    "_size": len(key),
                }
            )
    if not out:
        return empty
    frame = pd.DataFrame(out).sort_values(
        ["p_value", "lift", "_size", "slice"], ascending=[True, False, True, True], kind="stable"
    )
    return frame.drop(columns="_size").head(limit).reset_index(drop=True)[COLUMNS]


__all__ = ["COLUMNS", "benjamini_hochberg", "compute_slices", "errors_of", "support_rows"]
