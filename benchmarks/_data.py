"""Deterministic (seeded) synthetic data shared by the benchmarks.

A prediction row has 20 features -- 15 numeric (float64) ``num_00``..``num_14`` and 5
categorical strings ``cat_0``..``cat_4`` with 5, 12, 20, 35 and 50 distinct values -- plus
``id`` (string, unique: ``"r<offset+i>"``), ``timestamp`` (UTC, microseconds), ``score``
(probability of the positive class) and ``latency_ms``. The label of row ``i`` is drawn from
Bernoulli(score) with its own seed, so labels can be produced independently of the features
(for late feedback) and still match the predictions they belong to.

Everything is a pure function of (seed, offset, n, time range): the same arguments give the
same table on every machine.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone  # noqa: F401 (re-exported)

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

N_NUMERIC = 15
CAT_CARDINALITIES = (5, 12, 20, 35, 50)
NUMERIC = [f"num_{i:02d}" for i in range(N_NUMERIC)]
CATEGORICAL = [f"cat_{i}" for i in range(len(CAT_CARDINALITIES))]
FEATURES = NUMERIC + CATEGORICAL
MODEL_KW = dict(task="binary", prediction="score", label="label")

_VOCAB = [
    pa.array([f"c{j}_v{k:02d}" for k in range(card)], pa.string())
    for j, card in enumerate(CAT_CARDINALITIES)
]
_VOCAB_PY = [v.to_pylist() for v in _VOCAB]


def utc_now_floor_minute() -> datetime:
    now = datetime.now(UTC)
    return now.replace(second=0, microsecond=0)


def day_range(end: datetime | None = None, days: float = 1.0) -> tuple[datetime, datetime]:
    """``[end - days, end)``; ``end`` defaults to the current minute minus one minute."""
    end = end or (utc_now_floor_minute() - timedelta(minutes=1))
    return end - timedelta(days=days), end


def _rng(seed: int, offset: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, offset, stream])


def ids(offset: int, n: int) -> pa.Array:
    numbers = pa.array(np.arange(offset, offset + n, dtype=np.int64)).cast(pa.string())
    return pc.binary_join_element_wise("r", numbers, "")


def scores(seed: int, offset: int, n: int) -> np.ndarray:
    rng = _rng(seed, offset, 1)
    return rng.beta(2.0, 2.0, n)


def labels(seed: int, offset: int, n: int) -> np.ndarray:
    """Label of rows ``offset..offset+n``: Bernoulli(score) -- a useful but imperfect model."""
    s = scores(seed, offset, n)
    u = _rng(seed, offset, 2).random(n)
    return (u < s).astype(np.int64)


def predictions(
    n: int,
    *,
    seed: int = 42,
    offset: int = 0,
    start: datetime,
    end: datetime,
) -> pa.Table:
    """``n`` predictions with ids ``r<offset>..``, timestamps uniform in ``[start, end)``."""
    rng = _rng(seed, offset, 0)
    cols: dict[str, pa.Array] = {"id": ids(offset, n)}
    lo = int(start.timestamp() * 1_000_000)
    hi = int(end.timestamp() * 1_000_000)
    ts = rng.integers(lo, hi, n, dtype=np.int64)
    cols["timestamp"] = pa.array(ts, pa.timestamp("us", tz="UTC"))
    for i, name in enumerate(NUMERIC):
        col = rng.normal(loc=i, scale=1.0 + i / 10, size=n)
        cols[name] = pa.array(col, pa.float64())
    for j, name in enumerate(CATEGORICAL):
        card = CAT_CARDINALITIES[j]
        # skewed (Zipf-like) category frequencies
        weights = 1.0 / np.arange(1, card + 1)
        idx = rng.choice(card, size=n, p=weights / weights.sum()).astype(np.int32)
        cols[name] = _VOCAB[j].take(pa.array(idx))
    cols["score"] = pa.array(scores(seed, offset, n), pa.float64())
    cols["latency_ms"] = pa.array(rng.lognormal(mean=1.5, sigma=0.5, size=n), pa.float64())
    return pa.table(cols)


def feedback(n: int, *, seed: int = 42, offset: int = 0, shuffle: bool = True) -> pa.Table:
    """Labels for ids ``r<offset>..r<offset+n-1>`` (``id``, ``label``), in shuffled order."""
    table = pa.table({"id": ids(offset, n), "label": pa.array(labels(seed, offset, n))})
    if shuffle:
        perm = _rng(seed, offset, 3).permutation(n)
        table = table.take(pa.array(perm))
    return table


def feature_rows(n: int, *, seed: int = 42) -> list[dict[str, object]]:
    """``n`` feature dicts (20 features, Python scalars) for single ``model.log`` calls."""
    rng = _rng(seed, 0, 4)
    num = rng.normal(size=(n, N_NUMERIC)).tolist()
    cats = [rng.integers(0, card, n).tolist() for card in CAT_CARDINALITIES]
    rows = []
    for r in range(n):
        row = dict(zip(NUMERIC, num[r], strict=True))
        for j, name in enumerate(CATEGORICAL):
            row[name] = _VOCAB_PY[j][cats[j][r]]
        rows.append(row)
    return rows
