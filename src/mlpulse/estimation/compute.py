"""``model.estimate``: label-free performance estimates per window, as a metrics frame."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from .._time import from_micros
from ..engine.scope import Scope
from ..errors import ConfigError, UnknownMetricError
from ..schema import ModelSpec
from ..store.database import Store
from ..store.registry import Registry
from .cbpe import CBPE, METRICS


def calibrator(store: Store, registry: Registry, spec: ModelSpec, version: str) -> CBPE:
    """A CBPE fitted on the version's reference scores and labels (memoised on the store
    while the reference is unchanged)."""
    from ..drift.sources import (
        model_columns,
        reference_identity,
        reference_rows,
        reference_version,
    )
    from ..engine.validate import to_float

    ref = reference_version(store, spec, version)
    if ref is None:
        raise ConfigError(
            f"model {spec.name!r}: estimation needs reference data with the prediction "
            f"{spec.prediction!r} and label {spec.label!r} columns"
        )
    memo_key = ("calibrator", spec.model_id, ref, spec.threshold)
    identity = reference_identity(store, spec, ref)
    found = store.reference_memo.get(memo_key, identity) if identity is not None else None
    if found is not None:
        return found
    cols = [c for c in model_columns(spec) if c.role != "feature"]
    table = reference_rows(store, registry, spec, ref, cols)
    if spec.prediction not in table.column_names or spec.label not in table.column_names:
        raise ConfigError(
            f"model {spec.name!r}: the reference lacks the prediction {spec.prediction!r} or "
            f"the label {spec.label!r} column, which estimation calibrates on"
        )
    scores = to_float(table.column(spec.prediction))[0]
    labels = to_float(table.column(spec.label))[0]
    found = CBPE(threshold=spec.threshold).fit(scores, labels)
    if identity is not None:
        store.reference_memo.put(memo_key, identity, found, size=table.nbytes + 4096)
    return found


def compute_estimate(
    store: Store,
    registry: Registry,
    scope: Scope,
    names: Sequence[str] | str | None,
    *,
    mode: str = "sketch",
    band: bool = False,
) -> pd.DataFrame:
    """window_start, window_end, n, n_labeled, <metrics> (and <metric>_lower/_upper with
    ``band=True``); the band is always in ``frame.attrs["band"]``."""
    from ..drift.samples import NumericSample
    from ..drift.sources import Column, window_rows, window_states

    spec, version, versions = scope.spec, scope.version, scope.versions
    if spec.task != "binary":
        raise ConfigError(
            f"model {spec.name!r}: estimation supports binary models, not {spec.task}"
        )
    if isinstance(names, str):
        names = [names]
    names = list(names) if names is not None else list(METRICS)
    for name in names:
        if name not in METRICS:
            raise UnknownMetricError(
                f"model {spec.name!r}: cannot estimate {name!r}; estimable: {', '.join(METRICS)}"
            )
    if mode not in ("sketch", "exact"):
        raise ConfigError(f"mode must be 'sketch' or 'exact', got {mode!r}")
    est = calibrator(store, registry, spec, version)
    seg = scope.segment_key
    bounds = scope.bounds
    states = window_states(store, registry, spec, bounds, versions, seg)
    pred = Column(spec.prediction, "numeric", "prediction")
    rows = []
    lower: dict[str, list[float]] = {m: [] for m in names}
    upper: dict[str, list[float]] = {m: [] for m in names}
    for (lo, hi), st in zip(bounds, states, strict=True):
        labeled = st.get(spec.label)
        row: dict[str, Any] = {
            "window_start": from_micros(lo),
            "window_end": from_micros(hi),
            "n": int(st.get("__rows") or 0),
            "n_labeled": int(labeled.n) if labeled is not None else 0,
        }
        if mode == "exact":
            table = window_rows(store, registry, spec, [pred], lo, hi, versions, seg)
            scores = (
                table.column(spec.prediction).to_numpy(zero_copy_only=False).astype(np.float64)
                if table.num_rows
                else np.zeros(0)
            )
            result = est.estimate(scores)
        else:
            state = st.get(spec.prediction)
            if state is None or state.count == 0:
                result = est.estimate(np.zeros(0))
            else:
                sample = NumericSample.from_state(state)
                result = est.estimate(sample.values, sample.weights)
        for m in names:
            row[m] = result[m].value
            lower[m].append(result[m].lower)
            upper[m].append(result[m].upper)
            if band:
                row[f"{m}_lower"], row[f"{m}_upper"] = result[m].lower, result[m].upper
        rows.append(row)
    cols = ["window_start", "window_end", "n", "n_labeled", *names]
    if band:
        cols += [f"{m}_{side}" for m in names for side in ("lower", "upper")]
    frame = pd.DataFrame(rows, columns=cols)
    for c in ("window_start", "window_end"):
        frame[c] = pd.to_datetime(frame[c], utc=True)
    for c in cols[4:]:
        frame[c] = frame[c].astype("float64")
    frame.attrs["band"] = {m: (lower[m], upper[m]) for m in names}
    frame.attrs["level"] = est.level
    return frame


__all__ = ["CBPE", "compute_estimate", "calibrator", "math"]
