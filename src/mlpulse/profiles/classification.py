"""Classification states: binary (confusion counts, score histograms, loss sums) and
multiclass (sparse confusion pairs over a growing, sorted class list, capped)."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from mlpulse.errors import ConfigError
from mlpulse.profiles._common import as_float64, as_group, packed_equal
from mlpulse.profiles.categorical import encode_strings

N_SCORE_BINS = 10_000
"""Equal-width score bins on [0, 1] for the per-class histograms (ROC / PR AUC)."""
assert N_SCORE_BINS <= 2**16  # bin indices are serialised as uint16

_EPS = float(np.finfo(np.float64).eps)


class ScoreHistogram:
    """Counts per score bin, held sparse (as built) or dense (once accumulated into).

    Buckets built from a few hundred rows stay sparse; a state that others are merged
    into turns dense, so each further merge is one vector addition.
    """

    __slots__ = ("_dense", "_idx", "_cnt")

    def __init__(self, idx: np.ndarray | None = None, cnt: np.ndarray | None = None) -> None:
        self._dense: np.ndarray | None = None
        self._idx = np.zeros(0, np.int64) if idx is None else idx.astype(np.int64)
        self._cnt = np.zeros(0, np.int64) if cnt is None else cnt.astype(np.int64)

    def sparse(self) -> tuple[np.ndarray, np.ndarray]:
        """(bin indices ascending, counts) of the nonzero bins."""
        if self._dense is None:
            return self._idx, self._cnt
        idx = np.flatnonzero(self._dense)
        return idx, self._dense[idx]

    def dense(self) -> np.ndarray:
        """A dense int64 array of length N_SCORE_BINS (a copy)."""
        if self._dense is not None:
            return self._dense.copy()
        out = np.zeros(N_SCORE_BINS, np.int64)
        out[self._idx] = self._cnt
        return out

    def add(self, other: ScoreHistogram) -> None:
        if self._dense is None:
            self._dense = self.dense()
        if other._dense is not None:
            self._dense += other._dense
        else:
            self._dense[other._idx] += other._cnt  # indices are unique

    def copy(self) -> ScoreHistogram:
        idx, cnt = self.sparse()
        return ScoreHistogram(idx.copy(), cnt.copy())


class BinaryState:
    """Mergeable summary of labeled binary predictions.

    A row is predicted positive when ``score >= threshold``; label 1 is positive. Scores are
    clipped to [0, 1] for the histograms, log loss and Brier score.

    Examples
    --------
    >>> import numpy as np
    >>> s = BinaryState(threshold=0.5)
    >>> s.update(np.array([1, 0, 1, 0]), np.array([0.9, 0.6, 0.4, 0.1]))
    >>> s.n, s.tp, s.fp, s.tn, s.fn
    (4, 1, 1, 1, 1)
    >>> int(s.pos_hist.sum()), int(s.neg_hist[1000])
    (2, 1)
    >>> BinaryState.from_dict(s.to_dict()) == s
    True
    """

    __slots__ = (
        "threshold",
        "n",
        "tp",
        "fp",
        "tn",
        "fn",
        "log_loss_sum",
        "brier_sum",
        "_pos",
        "_neg",
        "exact",
    )

    def __init__(self, threshold: float = 0.5) -> None:
        self.threshold = float(threshold)
        self.n = self.tp = self.fp = self.tn = self.fn = 0
        self.log_loss_sum = 0.0
        self.brier_sum = 0.0
        # Exact scores with per-class counts while few distinct scores were seen: AUC then
        # equals scikit-learn's whatever the spacing of the scores; None once past the cap.
        # While they are kept, the histograms are derived from them only when needed.
        self.exact: tuple[np.ndarray, np.ndarray, np.ndarray] | None = _EMPTY_EXACT
        self._pos: ScoreHistogram | None = None
        self._neg: ScoreHistogram | None = None

    def _histograms(self) -> tuple[ScoreHistogram, ScoreHistogram]:
        if self._pos is None or self._neg is None:
            assert self.exact is not None  # a state keeps exact scores or histograms
            values, pos, neg = self.exact
            bins = score_bins(values)
            self._pos, self._neg = _histogram(bins, pos), _histogram(bins, neg)
        return self._pos, self._neg

    @property
    def pos(self) -> ScoreHistogram:
        """Score histogram of rows with label 1."""
        return self._histograms()[0]

    @pos.setter
    def pos(self, value: ScoreHistogram) -> None:
        self._pos = value

    @property
    def neg(self) -> ScoreHistogram:
        """Score histogram of rows with label 0."""
        return self._histograms()[1]

    @neg.setter
    def neg(self, value: ScoreHistogram) -> None:
        self._neg = value

    @property
    def pos_hist(self) -> np.ndarray:
        """Dense score histogram of rows with label 1."""
        return self.pos.dense()

    @property
    def neg_hist(self) -> np.ndarray:
        """Dense score histogram of rows with label 0."""
        return self.neg.dense()

    def score_table(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(scores or bins ascending, positives, negatives) over the values holding any row:
        exact scores while the state keeps them, else the histogram bins."""
        if self.exact is not None:
            return self.exact
        if self.pos._dense is not None and self.neg._dense is not None:
            pos_dense, neg_dense = self.pos._dense, self.neg._dense
            bins = np.flatnonzero(pos_dense + neg_dense)
            return bins, pos_dense[bins], neg_dense[bins]
        pi, pc = self.pos.sparse()
        ni, nc = self.neg.sparse()
        bins = np.union1d(pi, ni)
        pos = np.zeros(len(bins), np.int64)
        neg = np.zeros(len(bins), np.int64)
        pos[np.searchsorted(bins, pi)] = pc
        neg[np.searchsorted(bins, ni)] = nc
        return bins, pos, neg

    def class_counts(self) -> tuple[np.ndarray, np.ndarray]:
        """(positives, negatives) per exact score or histogram bin, ascending, possibly
        including bins that hold no rows: cheaper than :meth:`score_table` for dense
        histograms, for callers to whom empty bins make no difference (ROC AUC)."""
        if self.exact is None and self.pos._dense is not None and self.neg._dense is not None:
            return self.pos._dense, self.neg._dense
        _values, pos, neg = self.score_table()
        return pos, neg

    def update(self, y_true: Any, y_score: Any) -> None:
        y = np.asarray(y_true)
        [part] = build_binary(y, y_score, np.zeros(len(y), np.int64), 1, self.threshold)
        self.merge(part)

    def merge(self, other: BinaryState) -> None:
        if not isinstance(other, BinaryState):
            raise ConfigError(f"cannot merge BinaryState with {type(other).__name__}")
        if other.threshold != self.threshold:
            raise ConfigError(
                f"cannot merge binary states with thresholds {self.threshold} and {other.threshold}"
            )
        self.n += other.n
        self.tp += other.tp
        self.fp += other.fp
        self.tn += other.tn
        self.fn += other.fn
        self.log_loss_sum += other.log_loss_sum
        self.brier_sum += other.brier_sum
        if other.n:
            exact = _union_exact([self.exact, other.exact])
            if exact is None:
                self.pos.add(other.pos)
                self.neg.add(other.neg)
            else:  # histograms are re-derived from the exact scores when needed
                self._pos = self._neg = None
            self.exact = exact

    @classmethod
    def merge_many(cls, states: list[BinaryState]) -> BinaryState:
        """Merge many states into a new one: counters summed, histograms added in one pass."""
        out = cls(states[0].threshold)
        for state in states:
            if state.threshold != out.threshold:
                raise ConfigError(
                    f"cannot merge binary states with thresholds {out.threshold} and {state.threshold}"
                )
            out.n += state.n
            out.tp += state.tp
            out.fp += state.fp
            out.tn += state.tn
            out.fn += state.fn
            out.log_loss_sum += state.log_loss_sum
            out.brier_sum += state.brier_sum
        filled = [state for state in states if state.n]
        out.exact = _union_exact([state.exact for state in filled])
        if out.exact is not None:
            return out
        # per class: dense histograms added as vectors, every sparse piece in one bincount
        # (exact scores binned)
        pieces: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {"pos": [], "neg": []}
        dense: dict[str, list[np.ndarray]] = {"pos": [], "neg": []}
        for state in filled:
            if state.exact is not None and state._pos is None:
                bins = score_bins(state.exact[0])
                pieces["pos"].append((bins, state.exact[1]))
                pieces["neg"].append((bins, state.exact[2]))
                continue
            for name, hist in (("pos", state.pos), ("neg", state.neg)):
                if hist._dense is not None:
                    dense[name].append(hist._dense)
                else:
                    pieces[name].append(hist.sparse())
        for name, parts in pieces.items():
            total = np.zeros(N_SCORE_BINS, np.int64)
            if parts:
                idx = np.concatenate([p[0] for p in parts])
                cnt = np.concatenate([p[1] for p in parts])
                total += np.bincount(idx, weights=cnt, minlength=N_SCORE_BINS).astype(np.int64)
            for array in dense[name]:
                total += array
            hist = ScoreHistogram()
            hist._dense = total
            setattr(out, name, hist)
        return out

    def copy(self) -> BinaryState:
        return BinaryState.from_dict(self.to_dict())

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "threshold": self.threshold,
            "n": self.n,
            "tp": self.tp,
            "fp": self.fp,
            "tn": self.tn,
            "fn": self.fn,
            "log_loss_sum": self.log_loss_sum,
            "brier_sum": self.brier_sum,
        }
        if self.exact is not None:
            # exact scores as float64 bytes, counts as packed ints; the histograms follow
            values, pos, neg = self.exact
            out["exact"] = [values.astype("<f8").tobytes(), pack_counts(pos), pack_counts(neg)]
            return out
        pi, pc = self.pos.sparse()
        ni, nc = self.neg.sparse()
        # Sparse: bin indices as uint16 bytes, counts as packed ints.
        out["exact"] = None
        out.update(
            pos_idx=pi.astype("<u2").tobytes(),
            pos_cnt=pack_counts(pc),
            neg_idx=ni.astype("<u2").tobytes(),
            neg_cnt=pack_counts(nc),
        )
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BinaryState:
        s = cls(float(d["threshold"]))
        s.n, s.tp, s.fp, s.tn, s.fn = (int(d[k]) for k in ("n", "tp", "fp", "tn", "fn"))
        s.log_loss_sum, s.brier_sum = float(d["log_loss_sum"]), float(d["brier_sum"])

        exact = d["exact"]
        if exact is not None:
            values = np.frombuffer(exact[0], "<f8").copy()
            pos, neg = unpack_counts(exact[1]), unpack_counts(exact[2])
            s.exact = (values, pos, neg)
            return s

        def hist(prefix: str) -> ScoreHistogram:
            return ScoreHistogram(
                np.frombuffer(d[prefix + "_idx"], "<u2"),
                unpack_counts(d[prefix + "_cnt"]),
            )

        s.pos, s.neg = hist("pos"), hist("neg")
        s.exact = None
        return s

    def __eq__(self, other: object) -> bool:
        return packed_equal(self, other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"BinaryState(n={self.n}, tp={self.tp}, fp={self.fp}, tn={self.tn}, "
            f"fn={self.fn}, threshold={self.threshold})"
        )


def _binary_labels(y_true: Any) -> np.ndarray:
    y = np.asarray(y_true)
    if y.dtype == bool:
        return y.astype(np.int64)
    if y.dtype.kind not in "iuf" or not np.isin(y, (0, 1)).all():
        raise ConfigError("binary labels must be 0/1 or boolean")
    return y.astype(np.int64)


def build_binary(
    y_true: Any, y_score: Any, group: Any, n_groups: int, threshold: float = 0.5
) -> list[BinaryState]:
    """One :class:`BinaryState` per group from labels, scores and per-row group ids.

    Examples
    --------
    >>> import numpy as np
    >>> states = build_binary(np.array([1, 0, 1]), np.array([0.8, 0.3, 0.2]),
    ...                       np.array([0, 0, 1]), 2)
    >>> [(s.tp, s.tn, s.fn) for s in states]
    [(1, 1, 0), (0, 0, 1)]
    """
    y = _binary_labels(y_true)
    score = as_float64(y_score, "y_score")
    if len(score) != len(y):
        raise ConfigError(f"y_true has {len(y)} rows but y_score has {len(score)}")
    if not np.isfinite(score).all():
        raise ConfigError("y_score contains NaN or infinite values")
    g = as_group(group, len(y), n_groups)
    threshold = float(threshold)
    clipped = np.clip(score, 0.0, 1.0)

    cell = y * 2 + (score >= threshold)  # 0 tn, 1 fp, 2 fn, 3 tp
    cells = np.bincount(g * 4 + cell, minlength=4 * n_groups).reshape(n_groups, 4).tolist()
    n = np.bincount(g, minlength=n_groups).tolist()
    # sklearn's log_loss: probabilities [1 - p, p], each clipped to [eps, 1 - eps].
    p_true = np.where(y == 1, clipped, 1.0 - clipped)
    loss = -np.log(np.clip(p_true, _EPS, 1.0 - _EPS))
    log_loss = np.bincount(g, weights=loss, minlength=n_groups).tolist()
    brier = np.bincount(g, weights=(y - clipped) ** 2, minlength=n_groups).tolist()

    states = [BinaryState(threshold) for _ in range(n_groups)]
    for i in np.flatnonzero(n).tolist():
        s = states[i]
        s.n = n[i]
        s.tn, s.fp, s.fn, s.tp = cells[i]
        s.log_loss_sum, s.brier_sum = log_loss[i], brier[i]
    _attach_scores(states, y, score, g, n_groups)
    return states


def _order_by_group_and_score(g: np.ndarray, score: np.ndarray, n_groups: int) -> np.ndarray:
    """Row order sorted by group, then score."""
    if len(g) >= 100 * n_groups and np.all(g[1:] >= g[:-1]):
        # rows already grouped (edges of a window, minutes of a batch): sorting each
        # group's scores is several times faster than a lexsort of all rows
        bounds = np.searchsorted(g, np.arange(n_groups + 1)).tolist()
        return np.concatenate(
            [lo + np.argsort(score[lo:hi]) for lo, hi in zip(bounds, bounds[1:], strict=False)]
        )
    return np.lexsort((score, g))


def _attach_scores(
    states: list[BinaryState], y: np.ndarray, score: np.ndarray, g: np.ndarray, n_groups: int
) -> None:
    """Give each group its exact score counts if it has few distinct scores, else its score
    histograms; one sort serves both (bins ascend with the scores inside a group)."""
    if len(y) == 0:
        return
    order = _order_by_group_and_score(g, score, n_groups)
    gs, ss, ys = g[order], score[order], y[order]
    start = np.ones(len(gs), dtype=bool)
    start[1:] = (gs[1:] != gs[:-1]) | (ss[1:] != ss[:-1])
    run = np.cumsum(start) - 1
    run_group = gs[start]
    run_value = ss[start]
    run_pos = np.bincount(run, weights=ys, minlength=len(run_value)).astype(np.int64)
    run_neg = np.bincount(run, minlength=len(run_value)) - run_pos
    distinct = np.bincount(run_group, minlength=n_groups)
    bounds = np.searchsorted(run_group, np.arange(n_groups + 1)).tolist()
    wide = distinct > EXACT_SCORE_CAP
    if wide.any():
        # (group, bin) of each run is non-decreasing: histogram cells are runs of runs
        cell = run_group * N_SCORE_BINS + score_bins(run_value)
        first = np.ones(len(cell), dtype=bool)
        first[1:] = cell[1:] != cell[:-1]
        cells = cell[first]
        at = np.flatnonzero(first)
        pos, neg = np.add.reduceat(run_pos, at), np.add.reduceat(run_neg, at)
        cell_bounds = np.searchsorted(cells // N_SCORE_BINS, np.arange(n_groups + 1)).tolist()
    for i, state in enumerate(states):
        lo, hi = bounds[i], bounds[i + 1]
        if hi == lo:
            continue
        if wide[i]:
            c_lo, c_hi = cell_bounds[i], cell_bounds[i + 1]
            bins = cells[c_lo:c_hi] % N_SCORE_BINS  # distinct, ascending
            state.exact = None
            for name, counts in (("pos", pos[c_lo:c_hi]), ("neg", neg[c_lo:c_hi])):
                keep = counts > 0
                setattr(state, name, ScoreHistogram(bins[keep], counts[keep]))
        else:
            state.exact = (run_value[lo:hi], run_pos[lo:hi], run_neg[lo:hi])


def pack_counts(counts: np.ndarray) -> list[Any]:
    """Non-negative counts as ``[width, bytes]``: the narrowest unsigned little-endian ints
    that hold them (decoding bytes is much faster than a list of ints)."""
    top = int(counts.max()) if len(counts) else 0
    width = 1 if top < 2**8 else 2 if top < 2**16 else 4 if top < 2**32 else 8
    return [width, counts.astype(f"<u{width}").tobytes()]


def unpack_counts(packed: list[Any]) -> np.ndarray:
    width, raw = packed
    return np.frombuffer(raw, f"<u{int(width)}").astype(np.int64)


def score_bins(scores: np.ndarray) -> np.ndarray:
    """Histogram bin of each score (clipped to [0, 1])."""
    clipped = np.clip(scores, 0.0, 1.0)
    return np.minimum((clipped * N_SCORE_BINS).astype(np.int64), N_SCORE_BINS - 1)


def _histogram(bins: np.ndarray, counts: np.ndarray) -> ScoreHistogram:
    """A sparse histogram from (possibly repeated) bins and their counts."""
    keep = counts > 0
    idx, inverse = np.unique(bins[keep], return_inverse=True)
    return ScoreHistogram(idx, np.bincount(inverse, weights=counts[keep]).astype(np.int64))


EXACT_SCORE_CAP = 2048
"""Distinct scores a state keeps exactly before relying on the histogram alone."""

_EMPTY_EXACT = (np.zeros(0), np.zeros(0, np.int64), np.zeros(0, np.int64))


def _union_exact(
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray] | None],
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Exact score counts of merged states, or None if any lost them or the union is too big."""
    present = [p for p in parts if p is not None]
    if len(present) < len(parts):
        return None
    if not present:
        return _EMPTY_EXACT
    if sum(len(p[0]) for p in present) > EXACT_SCORE_CAP * 4:  # cannot fit: skip the work
        return None
    values, inverse = np.unique(np.concatenate([p[0] for p in present]), return_inverse=True)
    if len(values) > EXACT_SCORE_CAP:
        return None
    pos = np.bincount(
        inverse, weights=np.concatenate([p[1] for p in present]), minlength=len(values)
    )
    neg = np.bincount(
        inverse, weights=np.concatenate([p[2] for p in present]), minlength=len(values)
    )
    return values, pos.astype(np.int64), neg.astype(np.int64)


OTHER_CLASS = "__other__"
"""The class that classes past the cap are pooled into (as segments pool their values)."""

DEFAULT_MAX_CLASSES = 1_000


def max_classes() -> int:
    """Classes a multiclass state tracks one by one: ``$MLPULSE_MAX_CLASSES``, default 1,000.

    Past it, the classes that sort last are pooled into :data:`OTHER_CLASS`. Raising it
    applies to data profiled afterwards; what is stored stays pooled.
    """
    text = os.environ.get("MLPULSE_MAX_CLASSES", "").strip()
    if not text:
        return DEFAULT_MAX_CLASSES
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 2:
        raise ConfigError(f"MLPULSE_MAX_CLASSES must be an integer of at least 2, not {text!r}")
    return value


_NO_PAIRS = np.zeros(0, np.int64)


class MulticlassState:
    """Mergeable sparse confusion counts (true class, predicted class, rows) and the number
    of correct predictions.

    ``classes`` is sorted and grows to the union of the classes seen on update or merge. The
    confusion is held as pairs (COO), sorted by (true, predicted), without zero counts: its
    size is the number of distinct (true, predicted) pairs seen, never classes squared.
    Past :func:`max_classes` classes, those that sort last are pooled into ``__other__``;
    the pooling depends only on the union of classes, so merges stay associative and
    commutative, and ``correct`` (hence accuracy) stays exact.

    Examples
    --------
    >>> import numpy as np
    >>> s = MulticlassState()
    >>> s.update(np.array(["cat", "dog", "dog"], dtype=object),
    ...          np.array(["cat", "cat", "dog"], dtype=object))
    >>> s.classes, s.confusion.tolist(), s.n, s.correct
    (['cat', 'dog'], [[1, 0], [1, 1]], 3, 2)
    >>> t = MulticlassState(["ant"])
    >>> t.merge(s)
    >>> t.classes, t.confusion.tolist()
    (['ant', 'cat', 'dog'], [[0, 0, 0], [0, 1, 0], [0, 1, 1]])
    >>> [a.tolist() for a in t.pairs()]  # true, predicted, rows
    [[1, 2, 2], [1, 1, 2], [1, 1, 1]]
    >>> from mlpulse.profiles.codec import decode, encode
    >>> decode(encode(t)) == t
    True
    """

    __slots__ = ("classes", "n", "correct", "_true", "_pred", "_count")

    def __init__(self, classes: Any = ()) -> None:
        self.classes: list[str] = sorted({str(c) for c in classes})
        self.n = 0
        self.correct = 0
        self._true = self._pred = self._count = _NO_PAIRS
        self._pool(max_classes())

    def pairs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(true class index, predicted class index, rows) of the nonzero cells, sorted."""
        return self._true, self._pred, self._count

    @property
    def confusion(self) -> np.ndarray:
        """The dense k x k confusion matrix (rows = true class), built on demand: for
        inspection and small k; metrics use :meth:`per_class`."""
        k = len(self.classes)
        out = np.zeros((k, k), np.int64)
        out[self._true, self._pred] = self._count
        return out

    def per_class(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(true positives, predicted count, true count) per class, in ``classes`` order."""
        k = len(self.classes)
        hit = self._true == self._pred

        def total(index: np.ndarray, counts: np.ndarray) -> np.ndarray:
            return np.bincount(index, weights=counts, minlength=k).astype(np.int64)

        return (
            total(self._true[hit], self._count[hit]),
            total(self._pred, self._count),
            total(self._true, self._count),
        )

    def true_counts(self) -> np.ndarray:
        """Rows per true class, in ``classes`` order."""
        k = len(self.classes)
        return np.bincount(self._true, weights=self._count, minlength=k).astype(np.int64)

    def _set_pairs(self, true: np.ndarray, pred: np.ndarray, count: np.ndarray, k: int) -> None:
        """Store (possibly repeated, unsorted) cells summed into canonical sorted pairs."""
        if len(count) == 0:
            self._true = self._pred = self._count = _NO_PAIRS
            return
        # cell ids fit int64: k is at most the distinct strings of the inputs
        cells, inverse = np.unique(true * k + pred, return_inverse=True)
        counts = np.bincount(inverse, weights=count, minlength=len(cells)).astype(np.int64)
        keep = counts > 0
        cells, self._count = cells[keep], counts[keep]
        self._true, self._pred = cells // k, cells % k

    def _pool(self, cap: int) -> None:
        """Pool the classes that sort past the first ``cap`` into ``__other__``."""
        if len(self.classes) <= cap:
            return
        names = np.asarray(self.classes, dtype=object)
        real = names != OTHER_CLASS
        kept = real & (np.cumsum(real) <= cap)
        if kept.sum() == real.sum():
            return
        classes = np.asarray(sorted([*names[kept].tolist(), OTHER_CLASS]), dtype=object)
        index = np.full(len(names), np.searchsorted(classes, OTHER_CLASS), np.int64)
        index[kept] = np.searchsorted(classes, names[kept])
        self.classes = classes.tolist()
        self._set_pairs(index[self._true], index[self._pred], self._count, len(classes))

    def update(self, y_true: Any, y_pred: Any) -> None:
        [part] = build_multiclass(y_true, y_pred, np.zeros(len(y_true), np.int64), 1)
        self.merge(part)

    def merge(self, other: MulticlassState) -> None:
        if not isinstance(other, MulticlassState):
            raise ConfigError(f"cannot merge MulticlassState with {type(other).__name__}")
        merged = MulticlassState.merge_many([self, other])
        self.classes, self.n, self.correct = merged.classes, merged.n, merged.correct
        self._true, self._pred, self._count = merged._true, merged._pred, merged._count

    @classmethod
    def merge_many(cls, states: list[MulticlassState]) -> MulticlassState:
        """Merge many states into a new one: one class union, one sum of the pairs."""
        for state in states:
            if not isinstance(state, MulticlassState):
                raise ConfigError(f"cannot merge MulticlassState with {type(state).__name__}")
        out = cls()
        out.n = sum(state.n for state in states)
        out.correct = sum(state.correct for state in states)
        first = states[0].classes if states else []
        if all(state.classes == first for state in states):  # the usual case: same classes
            out.classes = list(first)
            true = [state._true for state in states]
            pred = [state._pred for state in states]
        else:
            names = np.concatenate([np.asarray(state.classes, dtype=object) for state in states])
            union, inverse = np.unique(names, return_inverse=True)
            out.classes = union.tolist()
            offsets = np.cumsum([0] + [len(state.classes) for state in states])
            true = [inverse[o + state._true] for o, state in zip(offsets, states, strict=False)]
            pred = [inverse[o + state._pred] for o, state in zip(offsets, states, strict=False)]
        out._set_pairs(
            np.concatenate([_NO_PAIRS, *true]),
            np.concatenate([_NO_PAIRS, *pred]),
            np.concatenate([_NO_PAIRS, *(state._count for state in states)]),
            max(len(out.classes), 1),
        )
        out._pool(max_classes())
        return out

    def copy(self) -> MulticlassState:
        out = MulticlassState()
        out.classes, out.n, out.correct = list(self.classes), self.n, self.correct
        out._true, out._pred, out._count = self._true.copy(), self._pred.copy(), self._count.copy()
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "classes": list(self.classes),
            "n": self.n,
            "correct": self.correct,
            "true": pack_counts(self._true),
            "pred": pack_counts(self._pred),
            "count": pack_counts(self._count),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MulticlassState:
        s = cls()
        s.classes = [str(c) for c in d["classes"]]
        s.n = int(d["n"])
        k = len(s.classes)
        if "confusion" in d:  # format 1: a dense k x k matrix of little-endian int64
            dense = np.frombuffer(d["confusion"], "<i8").astype(np.int64).reshape(k, k)
            s._true, s._pred = (a.astype(np.int64) for a in np.nonzero(dense))
            s._count = dense[s._true, s._pred]
            s.correct = int(np.trace(dense))
            return s
        s.correct = int(d["correct"])
        s._true, s._pred = unpack_counts(d["true"]), unpack_counts(d["pred"])
        s._count = unpack_counts(d["count"])
        if not (len(s._true) == len(s._pred) == len(s._count)) or (
            len(s._count) and max(int(s._true.max()), int(s._pred.max())) >= k
        ):
            raise ConfigError("corrupt MulticlassState: confusion pairs do not fit its classes")
        return s

    def __eq__(self, other: object) -> bool:
        return packed_equal(self, other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        shown = self.classes if len(self.classes) <= 10 else [*self.classes[:10], "..."]
        return (
            f"MulticlassState(n={self.n}, correct={self.correct}, "
            f"{len(self.classes)} classes={shown})"
        )


def build_multiclass(
    y_true: Any, y_pred: Any, group: Any, n_groups: int, classes: Any = None
) -> list[MulticlassState]:
    """One :class:`MulticlassState` per group; each holds the classes seen in its rows,
    plus ``classes`` when given.

    Examples
    --------
    >>> import numpy as np
    >>> a, b = build_multiclass(np.array(["x", "y", "y"], dtype=object),
    ...                         np.array(["x", "x", "y"], dtype=object), np.array([0, 0, 1]), 2)
    >>> (a.classes, a.n, a.correct), (b.classes, b.n, b.correct)
    ((['x', 'y'], 2, 1), (['y'], 1, 1))
    """
    t = np.asarray(y_true, dtype=object)
    p = np.asarray(y_pred, dtype=object)
    if t.shape != p.shape or t.ndim != 1:
        raise ConfigError(f"y_true {t.shape} and y_pred {p.shape} must be 1-d of equal length")
    n_rows = len(t)
    g = as_group(group, n_rows, n_groups)
    codes, names = encode_strings(np.concatenate([t, p]))
    if n_rows and (codes < 0).any():
        raise ConfigError("multiclass labels and predictions must not be null")
    # Re-code so that code order is sorted class order.
    order = np.argsort(np.asarray(names, dtype=object), kind="stable")
    rank = np.empty(len(names), np.int64)
    rank[order] = np.arange(len(names))
    sorted_names = np.asarray(names, dtype=object)[order]
    codes = rank[codes] if len(names) else codes
    ct, cp = codes[:n_rows], codes[n_rows:]
    # distinct (group, true, predicted) cells and their rows, by one sort (no k x k keys)
    at = np.lexsort((cp, ct, g))
    gs, ts, ps = g[at], ct[at], cp[at]
    first = np.ones(n_rows, dtype=bool)
    first[1:] = (gs[1:] != gs[:-1]) | (ts[1:] != ts[:-1]) | (ps[1:] != ps[:-1])
    starts = np.flatnonzero(first)
    counts = np.diff(np.append(starts, n_rows))
    kg, kt, kp = gs[starts], ts[starts], ps[starts]
    bounds = np.searchsorted(kg, np.arange(n_groups + 1)).tolist()
    correct = np.bincount(g[ct == cp], minlength=n_groups).tolist()

    cap = max_classes()
    declared = {str(c) for c in classes} if classes is not None else set()
    states = []
    for i in range(n_groups):
        lo, hi = bounds[i], bounds[i + 1]
        present = np.union1d(kt[lo:hi], kp[lo:hi])  # codes, ascending = class order
        state = MulticlassState()
        state.classes = sorted_names[present].tolist()
        if declared:  # every state holds the declared classes
            state.classes = sorted(declared.union(state.classes))
        # local index of each cell's codes (the order of codes is the order of classes)
        where = np.asarray(state.classes, dtype=object)
        state._true = np.searchsorted(where, sorted_names[kt[lo:hi]]).astype(np.int64)
        state._pred = np.searchsorted(where, sorted_names[kp[lo:hi]]).astype(np.int64)
        state._count = counts[lo:hi].astype(np.int64)
        state.n = int(state._count.sum())
        state.correct = correct[i]
        state._pool(cap)
        states.append(state)
    return states
