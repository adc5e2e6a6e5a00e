"""``model.drift``: compare a window with a baseline, column by column, then as a dataset.

Sketch mode reads merged profiles, so its cost depends on the number of buckets, not rows.
Rank tests on compacted sketches also get an interval for their p-value from the sketches'
rank error; when that interval straddles the decision, the column is recomputed from raw
rows (``mode`` ``exact-fallback`` in ``to_pandas(details=True)``), so a decision never
rests on sketch noise. Distances are compared with thresholds far above sketch noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from .._time import from_micros, parse_duration, to_micros
from ..engine.query import WindowQuery, windows
from ..engine.scope import Scope
from ..errors import ConfigError
from ..profiles.bucket import CORE
from ..schema import ModelSpec
from ..store.database import Store
from ..store.registry import Registry, raw_table
from . import categorical as cat_tests
from . import numeric as num_tests
from .methods import (
    METHODS,
    NUMERIC,
    auto_method,
    evidence,
    noise_floor,
    resolve,
    threshold_for,
)
from .report import ColumnDrift, DriftReport, decide
from .samples import Counts, NumericSample
from .sources import (
    Column,
    model_columns,
    reference_rows,
    reference_states,
    reference_version,
    sample_of,
    state_sample,
    window_rows,
    window_states,
)

MODES = ("sketch", "exact")


@dataclass
class Side:
    """One side of a comparison: a version's reference, or a window of some versions."""

    store: Store
    registry: Registry
    spec: ModelSpec
    segment: str
    reference: str | None = None  # version whose reference data this is
    bounds: tuple[int, int] | None = None
    versions: list[str] | None = None

    def states(self) -> dict[str, Any] | None:
        """Column states from profiles, or None where profiles cannot serve (a segment of
        the reference: reference profiles are kept for all rows only)."""
        if self.reference is not None:
            if self.segment:
                return None
            return reference_states(self.store, self.registry, self.spec, self.reference)
        assert self.bounds is not None and self.versions is not None
        return window_states(
            self.store, self.registry, self.spec, [self.bounds], self.versions, self.segment
        )[0]

    def rows(self, columns: list[Column], limit: int | None = None) -> pa.Table:
        if self.reference is not None:
            return reference_rows(
                self.store,
                self.registry,
                self.spec,
                self.reference,
                columns,
                self.segment,
                limit=limit,
            )
        assert self.bounds is not None and self.versions is not None
        lo, hi = self.bounds
        return window_rows(
            self.store,
            self.registry,
            self.spec,
            columns,
            lo,
            hi,
            self.versions,
            self.segment,
            limit=limit,
        )


def baseline(
    store: Store,
    registry: Registry,
    spec: ModelSpec,
    against: Any,
    *,
    version: str,
    versions: list[str],
    bounds: tuple[int, int],
    segment: str,
) -> Side:
    """The baseline ``against`` names: 'reference', a version name, or {'start', 'end'}."""
    if against is None or against == "reference":
        ref = reference_version(store, spec, version)
        if ref is None:
            raise ConfigError(
                f"model {spec.name!r}: no reference data is stored; register the model with "
                "reference=... or pass against=<version> or against={'start': ..., 'end': ...}"
            )
        return Side(store, registry, spec, segment, reference=ref)
    if isinstance(against, dict):
        if set(against) - {"start", "end"} or "start" not in against:
            raise ConfigError("against must look like {'start': ..., 'end': ...}")
        lo, hi = windows(against["start"], against.get("end", "now"), None)[0]
        return Side(store, registry, spec, segment, bounds=(lo, hi), versions=versions)
    if isinstance(against, str):
        registry.require_version(spec, against)
        lo, hi = bounds
        n = store.fetch_one(
            f"SELECT count(*) FROM {raw_table(spec)} WHERE __version = ? "
            "AND __ts >= make_timestamp(?::BIGINT) AND __ts < make_timestamp(?::BIGINT)",
            [against, lo, hi],
        )[0]  # type: ignore[index]
        if not n:  # the other version did not run in this window: take all of its rows
            found = store.fetch_one(
                f"SELECT min(epoch_us(__ts)), max(epoch_us(__ts)) FROM {raw_table(spec)} "
                "WHERE __version = ?",
                [against],
            )
            if found and found[0] is not None:
                lo, hi = int(found[0]), int(found[1]) + 1
        return Side(store, registry, spec, segment, bounds=(lo, hi), versions=[against])
    raise ConfigError(
        f"against must be 'reference', a version name or {{'start': ..., 'end': ...}}, got {against!r}"
    )


def _methods_for(method: Any, columns: list[Column]) -> dict[str, str]:
    if isinstance(method, str):
        # one name applies to the columns of a kind it works on; the others get "auto"
        if method != "auto":
            resolve(method, "*", METHODS[method].kinds[0]) if method in METHODS else resolve(
                method, "*", NUMERIC
            )
        return {
            c.name: method if method == "auto" or c.kind in METHODS[method].kinds else "auto"
            for c in columns
        }
    if isinstance(method, dict):
        unknown = set(method) - {c.name for c in columns}
        if unknown:
            raise ConfigError(f"method names unknown columns: {sorted(unknown)}")
        return {c.name: method.get(c.name, "auto") for c in columns}
    raise ConfigError(f"method must be a name or a dict column -> name, got {method!r}")


def _choose(name: str, column: Column, ref: Any, cur: Any) -> str:  # ref, cur: samples
    if name != "auto":
        return name
    if column.kind == NUMERIC:
        return auto_method(NUMERIC, ref.n, cur.n)
    _, t = cat_tests.table(ref, cur)
    total = t.sum()
    min_expected = (
        float((t.sum(axis=1)[:, None] * t.sum(axis=0)[None, :] / total).min()) if total else 0.0
    )
    return auto_method(
        "categorical", ref.n, cur.n, categories=t.shape[1], min_expected=min_expected
    )


def _run(method: str, column: Column, ref: Any, cur: Any, groups: list[Any] | None):
    if column.kind == NUMERIC:
        if method in num_tests.K_SAMPLE:
            return num_tests.K_SAMPLE[method]([ref, *(groups or [cur])])
        return num_tests.TWO_SAMPLE[method](ref, cur)
    return cat_tests.TWO_SAMPLE[method](ref, cur)


def _empty(sample: Any) -> bool:
    return sample is None or sample.n == 0


def compute_drift(
    store: Store,
    registry: Registry,
    scope: Scope,
    *,
    against: Any = "reference",
    method: Any = "auto",
    mode: str = "sketch",
    thresholds: dict[str, float] | None = None,
    correction: str | None = "bh",
    drift_share: float = 0.0,
    columns: list[str] | None = None,
    fallback: bool = True,
    multivariate: bool | list[str] = False,
    sample_size: int = 5000,
) -> DriftReport:
    """See ``Model.drift``."""
    if mode not in MODES:
        raise ConfigError(f"mode must be 'sketch' or 'exact', got {mode!r}")
    spec, version, versions, step = scope.spec, scope.version, scope.versions, scope.step
    seg = scope.segment_key
    lo, hi = scope.span
    cols = model_columns(spec)
    if columns is not None:
        names = {c.name for c in cols}
        missing = [c for c in columns if c not in names]
        if missing:
            raise ConfigError(f"model {spec.name!r}: unknown columns {missing}")
        cols = [c for c in cols if c.name in set(columns)]
    chosen = _methods_for(method, cols)
    base = baseline(
        store,
        registry,
        spec,
        against,
        version=version,
        versions=versions,
        bounds=(lo, hi),
        segment=seg,
    )
    current = Side(store, registry, spec, seg, bounds=(lo, hi), versions=versions)
    sub_bounds = scope.bounds if step is not None else []
    subs = [Side(store, registry, spec, seg, bounds=w, versions=versions) for w in sub_bounds]
    # sub-windows without rows add no group, so only the others read raw rows: a long span
    # cut into thousands of windows costs what its windows holding data cost
    sub_rows = [
        w[f"n_{CORE}"]
        for w in WindowQuery(store, registry, spec).merged(
            sub_bounds, [CORE], versions=versions, segment=seg, decode=()
        )
    ]

    def exact_samples(side: Side, wanted: list[Column]) -> dict[str, Any]:
        table = side.rows(wanted)
        return {
            c.name: sample_of(table.column(c.name), c)
            for c in wanted
            if c.name in table.column_names
        }

    def sketch_samples(side: Side) -> dict[str, Any] | None:
        states = side.states()
        if states is None:
            return None
        return {c.name: state_sample(states.get(c.name), c) for c in cols}

    lacking_label: list[Column] = []
    if mode == "exact":
        ref_s = exact_samples(base, cols)
        cur_s = exact_samples(current, cols)
        sub_s = [exact_samples(s, cols) if n else {} for s, n in zip(subs, sub_rows, strict=True)]
    else:
        ref_s = sketch_samples(base) or exact_samples(base, cols)
        cur_s = sketch_samples(current) or {}
        # every sub-window from one query (one cover, one lookup of their buckets)
        sub_states = window_states(store, registry, spec, sub_bounds, versions, seg) if subs else []
        sub_s = [{c.name: state_sample(st.get(c.name), c) for c in cols} for st in sub_states]
        # columns profiles do not carry (a regression label) come from raw rows
        # (only a regression label: other missing states mean the column has no data)
        lacking = [
            c
            for c in cols
            if cur_s.get(c.name) is None and c.role == "label" and spec.task == "regression"
        ]
        if lacking:
            cur_s.update(exact_samples(current, lacking))
        lacking_label = lacking

    n_tests = max(1, len(cols))

    def judge(
        ref_side: dict[str, Any], cur_side: dict[str, Any], grouped: list[dict[str, Any]] | None
    ) -> tuple[dict[str, ColumnDrift], list[Column]]:
        """Every column of one comparison, and the columns whose sketch-based decision is
        unsafe (``grouped``: the sub-windows' samples, for k-sample methods)."""
        results: dict[str, ColumnDrift] = {}
        pending: list[Column] = []
        for column in cols:
            ref: Any = ref_side.get(column.name)
            cur: Any = cur_side.get(column.name)
            if _empty(ref) or _empty(cur):
                continue
            m = resolve(_choose(chosen[column.name], column, ref, cur), column.name, column.kind)
            groups = [s.get(column.name) for s in grouped] if m.k_sample and grouped else None
            if groups is not None:
                groups = [g for g in groups if not _empty(g)]
            outcome = _run(m.name, column, ref, cur, groups)
            floor, cells = 0.0, 0
            if not m.is_test:
                cells = (
                    len(cat_tests.table(ref, cur)[0])
                    if column.kind != NUMERIC
                    else num_tests.N_BINS
                )
                floor = noise_floor(m.name, ref.n, cur.n, cells)
            threshold = threshold_for(m, column.name, thresholds, floor)
            p_value = outcome.p_value if m.is_test else math.nan
            result = ColumnDrift(
                column=column.name,
                kind=column.kind,
                method=m.name,
                statistic=outcome.statistic,
                p_value=p_value,
                threshold=threshold,
                drifted=False,
                is_test=m.is_test,
                n_reference=ref.n,
                n_current=cur.n if groups is None else sum(g.n for g in groups if g is not None),
                mode=mode,
                score=evidence(m, p_value, outcome.statistic, threshold, cells),
            )
            if outcome.approximate:
                result.note = "from sketches"
                # the decision is safe only if the whole p-value interval is on one side of
                # every threshold a correction could apply (threshold / n_tests .. threshold)
                if (
                    m.is_test
                    and outcome.low is not None
                    and outcome.high is not None
                    and outcome.low < threshold
                    and outcome.high >= threshold / n_tests
                ):
                    pending.append(column)
            results[column.name] = result
        return results, pending

    ref_exact: dict[str, Any] = {}

    def baseline_exact(wanted: list[Column]) -> dict[str, Any]:
        """The baseline's raw samples, read once per column whatever the windows."""
        missing = [c for c in wanted if c.name not in ref_exact]
        if missing:
            got = exact_samples(base, missing)
            ref_exact.update({c.name: got.get(c.name) for c in missing})
        return {c.name: ref_exact[c.name] for c in wanted}

    def settle(
        results: dict[str, ColumnDrift],
        pending: list[Column],
        side: Side,
        grouped: list[Side] | None,
    ) -> list[ColumnDrift]:
        """Recompute the unsafe columns from raw rows (or note them), then decide."""
        if pending and mode == "sketch":
            if fallback:
                ref_x = baseline_exact(pending)
                cur_x = exact_samples(side, pending)
                k_sample = [
                    c for c in pending if resolve(results[c.name].method, c.name, c.kind).k_sample
                ]
                sub_x = [
                    exact_samples(s, k_sample) if n else {}
                    for s, n in zip(grouped or [], sub_rows, strict=False)
                ] if k_sample else []
                for column in pending:
                    result = results[column.name]
                    ref, cur = ref_x.get(column.name), cur_x.get(column.name)
                    if _empty(ref) or _empty(cur):
                        continue
                    m = resolve(result.method, column.name, column.kind)
                    groups = (
                        [g for g in (s.get(column.name) for s in sub_x) if not _empty(g)]
                        if grouped and m.k_sample
                        else None
                    )
                    outcome = _run(result.method, column, ref, cur, groups)
                    result.statistic, result.p_value = outcome.statistic, outcome.p_value
                    result.score = evidence(m, outcome.p_value, outcome.statistic, 0.0)
                    result.mode, result.note = (
                        "exact-fallback",
                        ("sketch rank error straddled the decision; recomputed from raw rows"),
                    )
            else:
                for column in pending:
                    results[column.name].note = "approximate: sketch error straddles the decision"
        ordered = [results[c.name] for c in cols if c.name in results]
        decide(ordered, correction)
        return ordered

    results, pending = judge(ref_s, cur_s, sub_s if subs else None)
    ordered = settle(results, pending, current, subs)
    report = DriftReport(
        ordered,
        correction=correction,
        drift_share=drift_share,
        window=(from_micros(lo), from_micros(hi)),
        against=against,
        mode=mode,
    )
    if step is not None:
        report.step = str(step) if isinstance(step, str) else f"{parse_duration(step)}us"
        for (w_lo, w_hi), side, samples, n in zip(sub_bounds, subs, sub_s, sub_rows, strict=True):
            compared: list[ColumnDrift] = []  # a window without rows compares nothing
            if n:
                if mode == "sketch" and lacking_label:
                    samples = {**samples, **exact_samples(side, lacking_label)}
                compared = settle(*judge(ref_s, samples, None), side, None)
            report.timeline.append(
                DriftReport(
                    compared,
                    correction=correction,
                    drift_share=drift_share,
                    window=(from_micros(w_lo), from_micros(w_hi)),
                    against=against,
                    mode=mode,
                )
            )
    if multivariate:
        from .multivariate import multivariate_drift

        features = (
            [c for c in cols if c.role == "feature"]
            if multivariate is True
            else [c for c in model_columns(spec) if c.name in set(multivariate)]
        )
        report.multivariate = multivariate_drift(
            base.rows(features, limit=sample_size),
            current.rows(features, limit=sample_size),
            features,
        )
    return report


__all__ = ["compute_drift", "Counts", "NumericSample", "to_micros"]
