"""Confidence-based performance estimation for multiclass classifiers.

A multiclass model's profiles store the predicted class, not class probabilities, so two
calibrations are possible:

* with probabilities: when the model's features hold one numeric column ``proba_<class>``
  per class (what ``predict_proba`` gives, logged beside the prediction), each class gets a
  one-vs-rest isotonic calibration of ``label == class`` on its probability over the
  reference, as NannyML's multiclass CBPE does; a row's calibrated probabilities are
  normalised to sum to one;
* without: a row predicted ``j`` is of class ``k`` with the reference's ``P(label = k |
  predicted = j)`` (a predicted class the reference never predicted gets the reference's
  label distribution). This assumes that ``P(label | predicted class)`` carries over, a
  stronger assumption than ``P(label | probabilities)``: a shift of confidence within a
  predicted class goes unseen.

Either way, the window's expected confusion matrix is ``C[k, j] = sum over rows predicted j
of P(class k)``, and accuracy, macro precision, recall and F1, micro and weighted F1 follow
from it as scikit-learn computes them from a confusion matrix. The band draws every row's
class from its probabilities (``draws`` times) and takes the central ``level`` interval.

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> y = rng.choice(np.array(["a", "b", "c"]), 3000)
>>> pred = np.where(rng.uniform(size=3000) < 0.8, y, rng.choice(np.array(["a", "b", "c"]), 3000))
>>> est = MulticlassCBPE().fit(pred, y)
>>> round(est.estimate(pred)["accuracy"].value, 3) == round(float(np.mean(pred == y)), 3)
True
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .cbpe import Estimate

METRICS = ("accuracy", "precision_macro", "recall_macro", "f1_macro", "f1_micro", "f1_weighted")
#: Prefix of the probability columns that turn on per-class calibration.
PROBA_PREFIX = "proba_"
#: Cells (draws x rows x classes) simulated at once.
_CHUNK = 4_000_000


def confusion_metrics(c: np.ndarray) -> dict[str, np.ndarray]:
    """Metrics of confusion matrices ``(..., true k, predicted j)`` (fractional counts
    allowed), averaged as scikit-learn does over the classes that occur."""
    tp = np.diagonal(c, axis1=-2, axis2=-1)
    predicted = c.sum(axis=-2)
    actual = c.sum(axis=-1)
    n = actual.sum(axis=-1)
    present = (actual + predicted) > 0
    k_present = present.sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        prec = np.where(predicted > 0, tp / predicted, 0.0)
        rec = np.where(actual > 0, tp / actual, 0.0)
        f1 = np.where(predicted + actual > 0, 2 * tp / (predicted + actual), 0.0)
        acc = np.where(n > 0, tp.sum(axis=-1) / n, np.nan)
        out = {
            "accuracy": acc,
            "precision_macro": np.where(
                k_present > 0, (prec * present).sum(-1) / k_present, np.nan
            ),
            "recall_macro": np.where(k_present > 0, (rec * present).sum(-1) / k_present, np.nan),
            "f1_macro": np.where(k_present > 0, (f1 * present).sum(-1) / k_present, np.nan),
            "f1_micro": acc,
            "f1_weighted": np.where(n > 0, (f1 * actual).sum(-1) / n, np.nan),
        }
    return out


class MulticlassCBPE:
    """Calibrate on the reference's predictions (and probabilities), estimate per window."""

    def __init__(self, *, draws: int = 200, level: float = 0.95, seed: int = 0) -> None:
        self.draws = int(draws)
        self.level = float(level)
        self.seed = seed
        self.classes: list[str] = []
        self.with_probabilities = False
        self.n_reference = 0
        self._given: np.ndarray | None = None  # P(label k | predicted j), (j, k)
        self._isotonic: list[Any] = []

    def fit(
        self,
        predicted: Any,
        labels: Any,
        probabilities: np.ndarray | None = None,
        classes: Any = None,
    ) -> MulticlassCBPE:
        """``predicted`` and ``labels``: class names; ``probabilities``: rows x classes, in
        the order of ``classes`` (sorted class names by default)."""
        pred = np.asarray(predicted, dtype=object).astype(str)
        y = np.asarray(labels, dtype=object).astype(str)
        if classes is None:
            classes = sorted(set(pred.tolist()) | set(y.tolist()))
        self.classes = [str(c) for c in classes]
        if len(y) == 0 or len(set(y.tolist())) < 2:
            raise ValueError("multiclass CBPE needs reference labels of at least two classes")
        k = len(self.classes)
        index = {c: i for i, c in enumerate(self.classes)}
        yi = np.array([index.get(c, -1) for c in y.tolist()])
        pi = np.array([index.get(c, -1) for c in pred.tolist()])
        keep = (yi >= 0) & (pi >= 0)
        yi, pi = yi[keep], pi[keep]
        self.n_reference = int(keep.sum())
        if probabilities is not None:
            from sklearn.isotonic import IsotonicRegression

            proba = np.asarray(probabilities, dtype=np.float64)[keep]
            self.with_probabilities = True
            self._isotonic = [
                IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(
                    np.nan_to_num(proba[:, j]), (yi == j).astype(np.float64)
                )
                for j in range(k)
            ]
            return self
        counts = np.zeros((k, k))
        np.add.at(counts, (pi, yi), 1.0)
        prior = np.bincount(yi, minlength=k) / len(yi)
        rows = counts.sum(axis=1, keepdims=True)
        self._given = np.where(rows > 0, counts / np.maximum(rows, 1), prior[None, :])
        return self

    def class_index(self, predicted: Any) -> np.ndarray:
        """Index of each predicted class in ``classes`` (-1: a class the reference lacks)."""
        pred = np.asarray(predicted, dtype=object).astype(str)
        order = np.argsort(np.asarray(self.classes, dtype=object))
        names = np.asarray(self.classes, dtype=object)[order]
        at = np.clip(np.searchsorted(names, pred), 0, max(len(names) - 1, 0))
        found = names[at] == pred if len(names) else np.zeros(len(pred), bool)
        return np.where(found, order[at], -1)

    def row_probabilities(
        self, predicted: np.ndarray, probabilities: np.ndarray | None
    ) -> np.ndarray:
        """Calibrated class probabilities per row (rows x classes), rows summing to one."""
        k = len(self.classes)
        if self.with_probabilities:
            if probabilities is None:
                raise ValueError("this estimator was fitted with class probabilities")
            proba = np.nan_to_num(np.asarray(probabilities, dtype=np.float64))
            cal = np.column_stack(
                [iso.predict(proba[:, j]) for j, iso in enumerate(self._isotonic)]
            )
        else:
            assert self._given is not None
            cal = self._given[np.clip(predicted, 0, k - 1)]
        total = cal.sum(axis=1, keepdims=True)
        return np.where(total > 0, cal / np.where(total > 0, total, 1), 1.0 / k)

    def estimate(
        self, predicted: Any, probabilities: np.ndarray | None = None
    ) -> dict[str, Estimate]:
        """Estimates for one window's predicted classes (and probabilities)."""
        pred = self.class_index(predicted)
        known = pred >= 0  # a class the reference never had: no calibration for it
        pred = pred[known]
        if probabilities is not None:
            probabilities = np.asarray(probabilities, dtype=np.float64)[known]
        if len(pred) == 0:
            return {m: Estimate(math.nan, math.nan, math.nan) for m in METRICS}
        k = len(self.classes)
        p = self.row_probabilities(pred, probabilities)
        onehot = np.zeros((len(pred), k))
        onehot[np.arange(len(pred)), pred] = 1.0
        point = confusion_metrics(p.T @ onehot)
        sims = confusion_metrics(self._simulate(pred, p))
        tail = (1 - self.level) / 2
        out = {}
        for m in METRICS:
            sim = sims[m][np.isfinite(sims[m])]
            lo, hi = np.quantile(sim, [tail, 1 - tail]) if len(sim) else (math.nan, math.nan)
            sd = float(np.std(sim, ddof=1)) if len(sim) > 1 else math.nan
            out[m] = Estimate(float(point[m]), float(lo), float(hi), sd)
        return out

    def _simulate(self, pred: np.ndarray, p: np.ndarray) -> np.ndarray:
        """Confusion matrices (draws, k, k) with every row's class drawn from ``p``."""
        rng = np.random.default_rng(self.seed)
        n, k = p.shape
        if not self.with_probabilities:
            # rows predicted j share one distribution: one multinomial per predicted class
            out = np.zeros((self.draws, k, k))
            counts = np.bincount(pred, minlength=k)
            for j in np.flatnonzero(counts).tolist():  # over classes, not rows
                out[:, :, j] = rng.multinomial(counts[j], p[pred == j][0], size=self.draws)
            return out
        cum = np.cumsum(p, axis=1)
        cum[:, -1] = 1.0
        out = np.zeros(self.draws * k * k)
        per = max(1, _CHUNK // max(n * k, 1))
        for first in range(0, self.draws, per):
            d = min(per, self.draws - first)
            u = rng.uniform(size=(d, n, 1))
            drawn = (u > cum[None, :, :]).sum(axis=2)  # (d, n) class index
            cell = (np.arange(first, first + d)[:, None] * k + drawn) * k + pred[None, :]
            out += np.bincount(cell.ravel(), minlength=self.draws * k * k)
        return out.reshape(self.draws, k, k)


__all__ = ["METRICS", "PROBA_PREFIX", "MulticlassCBPE", "confusion_metrics"]
