"""Multivariate drift on samples of raw rows: a domain classifier and PCA reconstruction error.

* **Domain classifier**: label reference rows 0 and window rows 1, fit scikit-learn's
  gradient boosting (``HistGradientBoostingClassifier``) with cross-validation and measure
  the out-of-fold ROC AUC. Indistinguishable data gives about 0.5; drift is declared when
  the AUC reaches ``auc_threshold`` (default 0.55) *and* its one-sided p-value under the
  null (Mann-Whitney on the out-of-fold scores) is below ``alpha``.
* **PCA reconstruction error**: standardise on half the reference, keep the components that
  explain 90% of its variance, and compare the window's reconstruction errors with those of
  the other half of the reference (one-sided Mann-Whitney); drift needs both p < alpha and a
  mean error at least ``pca_ratio`` (default 1.1) times the reference's.

Examples
--------
>>> import numpy as np, pyarrow as pa
>>> from mlpulse.drift.sources import Column
>>> rng = np.random.default_rng(0)
>>> cols = [Column("x", "numeric", "feature"), Column("y", "numeric", "feature")]
>>> a = pa.table({"x": rng.normal(size=800), "y": rng.normal(size=800)})
>>> b = pa.table({"x": rng.normal(size=800), "y": rng.normal(size=800)})
>>> multivariate_drift(a, b, cols)["domain_classifier"]["drifted"]
False
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import scipy.stats as st

from ..schema import NUMERIC
from .sources import Column

MAX_CATEGORIES = 20


def design_matrix(
    ref: pa.Table, cur: pa.Table, columns: list[Column]
) -> tuple[np.ndarray, np.ndarray]:
    """Numeric matrix for both tables: numeric columns as they are (NaN kept), categorical
    columns one-hot over the reference's most frequent values (the rest as one column)."""
    from ..engine.validate import to_float, to_string

    parts_ref: list[np.ndarray] = []
    parts_cur: list[np.ndarray] = []
    for column in columns:
        if column.name not in ref.column_names or column.name not in cur.column_names:
            continue
        if column.kind == NUMERIC:
            for table, parts in ((ref, parts_ref), (cur, parts_cur)):
                values, null, bad = to_float(table.column(column.name))
                values = np.where(null | bad | ~np.isfinite(values), np.nan, values)
                parts.append(values[:, None])
            continue
        a = np.asarray(to_string(ref.column(column.name))[0].to_pylist(), dtype=object)
        b = np.asarray(to_string(cur.column(column.name))[0].to_pylist(), dtype=object)
        names, counts = np.unique(a[a != None].astype(str), return_counts=True)  # noqa: E711
        top = names[np.argsort(-counts, kind="stable")][:MAX_CATEGORIES]
        for values, parts in ((a, parts_ref), (b, parts_cur)):
            text = np.where(values == None, "", values).astype(str)  # noqa: E711
            onehot = (text[:, None] == top[None, :]).astype(np.float64)
            other = 1.0 - onehot.sum(axis=1, keepdims=True)
            parts.append(np.hstack([onehot, other]))
    if not parts_ref:
        return np.zeros((ref.num_rows, 0)), np.zeros((cur.num_rows, 0))
    return np.hstack(parts_ref), np.hstack(parts_cur)


def domain_classifier(
    x_ref: np.ndarray,
    x_cur: np.ndarray,
    *,
    auc_threshold: float = 0.55,
    alpha: float = 0.01,
    seed: int = 0,
) -> dict[str, Any]:
    """Out-of-fold ROC AUC of a gradient-boosting classifier telling window from reference."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    x = np.vstack([x_ref, x_cur])
    y = np.r_[np.zeros(len(x_ref)), np.ones(len(x_cur))]
    if len(x_ref) < 20 or len(x_cur) < 20 or x.shape[1] == 0:
        return {
            "statistic": float("nan"),
            "p_value": float("nan"),
            "threshold": auc_threshold,
            "drifted": False,
            "n_reference": len(x_ref),
            "n_current": len(x_cur),
        }
    clf = HistGradientBoostingClassifier(
        max_iter=60, learning_rate=0.15, max_leaf_nodes=15, random_state=seed
    )
    cv = StratifiedKFold(n_splits=3, shuffle=True, random_state=seed)
    # one OpenMP thread: on small samples thread start-up and spinning cost more than they
    # save, badly so on a busy machine
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        scores = cross_val_predict(clf, x, y, cv=cv, method="predict_proba")[:, 1]
    auc = float(roc_auc_score(y, scores))
    p = float(st.mannwhitneyu(scores[y == 1], scores[y == 0], alternative="greater").pvalue)
    return {
        "statistic": auc,
        "p_value": p,
        "threshold": auc_threshold,
        "drifted": bool(auc >= auc_threshold and p < alpha),
        "n_reference": len(x_ref),
        "n_current": len(x_cur),
    }


def pca_reconstruction(
    x_ref: np.ndarray,
    x_cur: np.ndarray,
    *,
    variance: float = 0.9,
    alpha: float = 0.01,
    ratio: float = 1.1,
    seed: int = 0,
) -> dict[str, Any]:
    """Reconstruction error of the window under a PCA fit on half the reference."""
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(seed)
    keep = ~np.isnan(x_ref).any(axis=1)
    ref = x_ref[keep]
    cur = x_cur[~np.isnan(x_cur).any(axis=1)]
    if len(ref) < 40 or len(cur) < 20 or ref.shape[1] < 2:
        return {
            "statistic": float("nan"),
            "p_value": float("nan"),
            "threshold": ratio,
            "drifted": False,
            "n_reference": len(ref),
            "n_current": len(cur),
        }
    order = rng.permutation(len(ref))
    fit, hold = ref[order[: len(ref) // 2]], ref[order[len(ref) // 2 :]]
    scaler = StandardScaler().fit(fit)
    pca = PCA(n_components=variance, svd_solver="full", random_state=seed).fit(
        scaler.transform(fit)
    )

    def errors(x: np.ndarray) -> np.ndarray:
        z = scaler.transform(x)
        back = pca.inverse_transform(pca.transform(z))
        return np.sqrt(((z - back) ** 2).sum(axis=1))

    e_ref, e_cur = errors(hold), errors(cur)
    base = float(e_ref.mean()) or 1e-12
    increase = float(e_cur.mean() / base)
    p = float(st.mannwhitneyu(e_cur, e_ref, alternative="greater").pvalue)
    return {
        "statistic": increase,
        "p_value": p,
        "threshold": ratio,
        "drifted": bool(p < alpha and increase >= ratio),
        "components": int(pca.n_components_),
        "n_reference": len(hold),
        "n_current": len(cur),
    }


def multivariate_drift(
    ref: pa.Table, cur: pa.Table, columns: list[Column]
) -> dict[str, dict[str, Any]]:
    """Both detectors on the sampled rows."""
    x_ref, x_cur = design_matrix(ref, cur, columns)
    return {
        "domain_classifier": domain_classifier(x_ref, x_cur),
        "pca": pca_reconstruction(x_ref, x_cur),
    }
