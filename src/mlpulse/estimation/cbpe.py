"""Confidence-based performance estimation (CBPE) for binary classifiers.

Fit an isotonic regression of the label on the score over the reference (where labels are
known); in a window without labels, each prediction with score ``s`` is then correct with
probability ``p(s)`` (if predicted positive) or ``1 - p(s)`` (if negative). Summing these
gives the expected confusion matrix, and from it accuracy, precision, recall and F1; ROC AUC
is the expected share of (positive, negative) pairs ranked correctly. The confidence band
simulates labels from the calibrated probabilities (``draws`` times) and takes the central
``level`` interval of each metric, so it covers sampling variation of the window's labels;
it assumes the calibration carries over from the reference (no concept drift).

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> s = rng.uniform(size=4000); y = (rng.uniform(size=4000) < s).astype(int)
>>> est = CBPE(threshold=0.5).fit(s, y)
>>> e = est.estimate(rng.uniform(size=4000))
>>> 0.70 < e["accuracy"].value < 0.80
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")
MAX_POINTS = 20_000
"""Distinct scores kept per window; beyond this scores are rounded to 1e-4 (the resolution of
the metrics' score histograms)."""


@dataclass
class Estimate:
    """A point estimate, its band, and the spread of the simulated metric (``sd``: what a
    realised value is compared against)."""

    value: float
    lower: float
    upper: float
    sd: float = math.nan


def _metrics(tp, fp, fn, tn):
    """Metrics from confusion counts (arrays broadcast); scikit-learn's zero-division 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        n = tp + fp + fn + tn
        acc = np.where(n > 0, (tp + tn) / n, np.nan)
        prec = np.where(tp + fp > 0, tp / (tp + fp), 0.0)
        rec = np.where(tp + fn > 0, tp / (tp + fn), 0.0)
        f1 = np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), 0.0)
    return {"accuracy": acc, "precision": prec, "recall": rec, "f1": f1}


def _auc(pos: np.ndarray, neg: np.ndarray) -> np.ndarray:
    """ROC AUC from positive/negative weights per distinct score (ascending), along the last
    axis: P(score of a positive > a negative) + ties / 2."""
    below = np.cumsum(neg, axis=-1) - neg
    num = np.sum(pos * (below + neg / 2), axis=-1)
    den = pos.sum(axis=-1) * neg.sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / den, np.nan)


class CBPE:
    """Isotonic calibration on reference scores and labels, then estimates per window."""

    def __init__(
        self, threshold: float = 0.5, *, draws: int = 400, level: float = 0.95, seed: int = 0
    ) -> None:
        self.threshold = float(threshold)
        self.draws = int(draws)
        self.level = float(level)
        self.seed = seed
        self._iso: Any = None
        self.n_reference = 0

    def fit(self, scores: Any, labels: Any) -> CBPE:
        from sklearn.isotonic import IsotonicRegression

        s = np.asarray(scores, dtype=np.float64)
        y = np.asarray(labels, dtype=np.float64)
        keep = np.isfinite(s) & np.isfinite(y)
        if keep.sum() < 2 or len(np.unique(y[keep])) < 2:
            raise ValueError("CBPE needs reference scores with both labels present")
        self.n_reference = int(keep.sum())
        self._iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(
            s[keep], y[keep]
        )
        return self

    def calibrated(self, scores: Any) -> np.ndarray:
        return np.clip(self._iso.predict(np.asarray(scores, dtype=np.float64)), 0.0, 1.0)

    def estimate(self, scores: Any, weights: Any = None) -> dict[str, Estimate]:
        """Estimates for one window of ``scores`` (optionally weighted, e.g. sketch items)."""
        s = np.asarray(scores, dtype=np.float64)
        w = np.ones(len(s)) if weights is None else np.asarray(weights, dtype=np.float64)
        keep = np.isfinite(s)
        s, w = s[keep], w[keep]
        if len(s) == 0:
            return {m: Estimate(math.nan, math.nan, math.nan) for m in METRICS}
        values, w = _distinct(s, w)
        p = self.calibrated(values)
        positive = values >= self.threshold
        tp = float(np.sum(w * p * positive))
        fp = float(np.sum(w * (1 - p) * positive))
        fn = float(np.sum(w * p * ~positive))
        tn = float(np.sum(w * (1 - p) * ~positive))
        point = _metrics(np.float64(tp), np.float64(fp), np.float64(fn), np.float64(tn))
        point["roc_auc"] = _auc(w * p, w * (1 - p))
        # labels drawn from the calibrated probabilities: integer counts per distinct score
        rng = np.random.default_rng(self.seed)
        counts = np.rint(w).astype(np.int64)
        pos = rng.binomial(counts[None, :], p[None, :], size=(self.draws, len(values))).astype(
            np.float64
        )
        neg = counts[None, :] - pos
        sims = _metrics(
            pos[:, positive].sum(1),
            neg[:, positive].sum(1),
            pos[:, ~positive].sum(1),
            neg[:, ~positive].sum(1),
        )
        sims["roc_auc"] = _auc(pos, neg)
        tail = (1 - self.level) / 2
        out = {}
        for m in METRICS:
            sim = sims[m][np.isfinite(sims[m])]
            lo, hi = np.quantile(sim, [tail, 1 - tail]) if len(sim) else (math.nan, math.nan)
            sd = float(np.std(sim, ddof=1)) if len(sim) > 1 else math.nan
            out[m] = Estimate(float(point[m]), float(lo), float(hi), sd)
        return out


def _distinct(s: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct scores and their summed weights (scores rounded to 1e-4 past MAX_POINTS)."""
    values, inverse = np.unique(s, return_inverse=True)
    if len(values) > MAX_POINTS:
        values, inverse = np.unique(np.round(s, 4), return_inverse=True)
    return values, np.bincount(inverse, weights=w, minlength=len(values)).astype(np.float64)
