"""Root cause of an incident: what changed when it began, ranked on one scale.

``pulse.incident(id).root_cause`` compares the incident's window with the window before it
began (the reference where nothing came before) and lists the changes that could explain it:

========================  ================================================================
kind                      candidate, effect size
========================  ================================================================
``feature_drift``         a feature's distribution: Wasserstein distance in standard
                          deviations of the baseline (numeric), the largest Cohen's h over
                          its categories (categorical), Cohen's h of its missing share
``quality``               a data-quality rule on a column violated more often: Cohen's h of
                          the violation rates
``segment``               a segment value whose metric moved more than the rest of the
                          traffic (model.segments): the excess change, Cohen's h for
                          proportions, the log ratio for positive metrics
``slice``                 a slice of labeled rows with more errors than the rest
                          (model.slices, classification): Cohen's h of the error rates,
                          less the gap it already had before; tested by the larger of its
                          q-value and Fisher's test of its getting worse since
``version_change``        a version that started taking traffic near the start: Cohen's h of
                          its error rate against the version before (Cohen's d of the
                          absolute error for regression), or its latency shift
``latency``               the latency distribution: Wasserstein distance in baseline standard
                          deviations
``volume``                the prediction rate: the absolute log of its ratio
========================  ================================================================

**Calibration.** Every score is an effect size on Cohen's scale (0.2 small, 0.5 medium, 0.8
large): distributions are shifted in their own standard deviations, proportions compared by
Cohen's h = |2 asin sqrt(p1) - 2 asin sqrt(p2)| (the same scale), and rates by |log ratio|
(halving or doubling the traffic is 0.69). A candidate is listed only when its test (KS,
chi-squared, Fisher, binomial, Welch, or the p-value of model.segments / model.slices) is
significant after the Benjamini-Hochberg correction over every candidate of the incident at
``ALPHA``, and its effect is at least ``MIN_EFFECT``; scores are capped at ``MAX_EFFECT``. A
slice whose conditions name a drifted feature or a listed segment is that candidate's symptom
and is folded into it (its detail says so).

Nothing in mlpulse records dependency changes (library or upstream service versions), so
version changes are the deployments it sees. ``service`` is a
:class:`mlpulse.service.Service` (not imported: the service imports this package).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from .._time import DAY, HOUR, MINUTE, from_micros
from ..drift.sources import Column, model_columns, reference_rows, reference_version, window_rows
from ..errors import MlpulseError, RuleError
from ..metrics.catalog import UNLABELED
from ..schema import CATEGORICAL, ModelSpec
from ..store import alerts as alert_store
from ..store import profiles as profile_store
from .rules import rule_from_dict
from .values import kind as value_kind

COLUMNS = ["rank", "kind", "subject", "score", "detail"]
KINDS = ("feature_drift", "quality", "segment", "slice", "version_change", "latency", "volume")

#: Benjamini-Hochberg level over every candidate of an incident.
ALPHA = 0.01
#: Smallest effect listed (a tenth of a standard deviation).
MIN_EFFECT = 0.1
#: Scores are capped here (a constant baseline makes any change "infinitely" many sds).
MAX_EFFECT = 10.0
#: At most this many rows are read per window (a reservoir sample above).
SAMPLE_ROWS = 20_000
#: Fewer rows than this on a side: no distribution comparison.
MIN_ROWS = 20
#: Metrics compared as proportions (Cohen's h); other positive metrics by their log ratio.
PROPORTIONS = frozenset(
    ("accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc", "positive_rate", "label_coverage",
     "precision_macro", "recall_macro", "f1_macro", "f1_micro", "f1_weighted")
)  # fmt: skip


@dataclass
class Candidate:
    kind: str
    subject: str
    effect: float
    p_value: float
    detail: str
    columns: tuple[str, ...] = ()  # what a slice's conditions name (for folding)


@dataclass
class Windows:
    """The incident's window ``[onset, end)``, the clean one before it ``[before, before_end)``
    (it ends where the first breached window began) and the metric the incident is about."""

    onset: int
    end: int
    before: int
    before_end: int
    metric: str | None


def root_cause(service: Any, incident_id: int) -> pd.DataFrame:
    """The incident's ranked candidates: rank, kind, subject, score, detail (see the module
    docstring). Raises ``RuleError`` for an unknown incident."""
    return _rank(candidates(service, incident_id))


def candidates(service: Any, incident_id: int) -> list[Candidate]:
    """Every candidate of the incident, significant or not, before ranking."""
    incident = alert_store.get_incident(service.store, incident_id)
    if incident is None:
        raise RuleError(f"unknown incident {incident_id!r}")
    alerts = alert_store.incident_alerts(service.store, incident_id)
    out: list[Candidate] = []
    for model in incident.models:
        mine = alerts[alerts["model"] == model]
        if mine.empty:
            continue
        try:
            spec = service.spec(model)
        except MlpulseError:
            continue  # the model was deleted since
        windows = _windows(service, incident, mine)
        found = ModelCauses(service, spec, mine, windows).all()
        if len(incident.models) > 1:
            for c in found:
                c.detail = f"model {model!r}: {c.detail}"
        out += found
    return out


def _windows(service: Any, incident: Any, alerts: pd.DataFrame) -> Windows:
    """When the trouble began, when it ended (the incident resolved, else the last
    evaluation) and the clean window before it.

    The first alert's breached window ``[started - window, started)`` holds the start; for a
    metric rule it is placed at the most likely change point of the metric over sixths of the
    window (the split maximising the weighted difference of means, as binary segmentation
    does), else at the window's start. The window before ends where the breached one began,
    so it holds no row of the incident however the change point falls."""
    rules = {d["name"]: d for d in alert_store.load_rule_dicts(service.store)}
    cursors = alert_store.cursors(service.store)
    first: tuple[int, int, Any] | None = None
    ends, metrics = [incident.opened_us], []
    for _, alert in alerts.iterrows():
        rule = rules.get(alert["rule"])
        window = int(rule_from_dict(rule).window * 1_000_000) if rule is not None else HOUR
        started = _us(alert["started_at"])
        if first is None or started - window < first[0] - first[1]:
            first = (started, window, alert)
        resolved = alert["resolved_at"]
        ends.append(_us(resolved) if not pd.isna(resolved) else cursors.get((alert["rule"], alert["model"]), started))
        metrics.append(alert["labels"].get("metric") if isinstance(alert["labels"], dict) else None)
    assert first is not None
    started, window, alert = first
    clean = started - window
    end = incident.resolved_us if incident.resolved_us is not None else max(ends)
    onset = _change_point(service, alert, started, window, end)
    end = max(end, onset + 10 * MINUTE)
    length = max(end - onset, HOUR)
    metric = next((m for m in metrics if m), None)
    return Windows(onset=onset, end=end, before=clean - length, before_end=clean, metric=metric)


def _change_point(service: Any, alert: Any, started: int, window: int, end: int) -> int:
    """The most likely start of the change within ``[started - window, started]``."""
    labels = alert["labels"] if isinstance(alert["labels"], dict) else {}
    metric = labels.get("metric")
    lo = started - window
    if not metric or value_kind(metric) != "metrics" or window < 6 * MINUTE:
        return lo
    step = window // 6
    hi = max(end, started + step)
    try:
        version = alert["version"] if isinstance(alert["version"], str) else service.versions(alert["model"])[-1]
        frame = service.metrics(alert["model"], version, [metric], start=from_micros(lo - window),
                                end=from_micros(hi), step=f"{step}us", segment=labels.get("segment"),
                                align=False)  # fmt: skip
    except (MlpulseError, TypeError):
        return lo
    values = frame[metric].to_numpy(float)
    weights = frame["n_labeled" if metric not in UNLABELED else "n"].to_numpy(float)
    ok = ~np.isnan(values) & (weights > 0)
    starts = np.array([_us(t) for t in frame["window_start"]])
    best, where = -1.0, lo
    for cut in range(lo, started + 1, step):
        a, b = ok & (starts < cut), ok & (starts >= cut)
        na, nb = weights[a].sum(), weights[b].sum()
        if na == 0 or nb == 0:
            continue
        gap = abs(np.average(values[a], weights=weights[a]) - np.average(values[b], weights=weights[b]))
        stat = gap * math.sqrt(na * nb / (na + nb))
        if stat > best:
            best, where = stat, cut
    return where


def _us(value: Any) -> int:
    return int(pd.Timestamp(value).value // 1000)


class ModelCauses:
    """The candidates of one model of an incident."""

    def __init__(self, service: Any, spec: ModelSpec, alerts: pd.DataFrame, windows: Windows) -> None:
        self.service = service
        self.spec = spec
        self.w = windows
        versions = [v for v in alerts["version"] if isinstance(v, str)]
        known = service.versions(spec.name)
        self.version = versions[0] if versions and versions[0] in known else (known[-1] if known else "v1")
        self.columns = model_columns(spec)
        self.now = self._rows(windows.onset, windows.end)
        self.base = self._rows(windows.before, windows.before_end)
        self.base_is_reference = False
        if self.base.num_rows < MIN_ROWS:
            self._reference_base()

    # -- data -----------------------------------------------------------------------------

    def _rows(self, lo: int, hi: int) -> pa.Table:
        s = self.service
        return window_rows(
            s.store, s.registry, self.spec, self.columns, lo, hi, s.versions(self.spec.name), "",
            limit=SAMPLE_ROWS, extra=("__latency_ms", "__version", "__ts"),
        )  # fmt: skip

    def _reference_base(self) -> None:
        s = self.service
        version = reference_version(s.store, self.spec, self.version)
        if version is None:
            return
        features = [c for c in self.columns if c.role == "feature"]
        self.base = reference_rows(s.store, s.registry, self.spec, version, features, limit=SAMPLE_ROWS)
        self.base_is_reference = True

    def _span(self, lo: int, hi: int) -> str:
        hours = (hi - lo) / HOUR
        return f"{hours:.3g}h" if hours >= 1 else f"{(hi - lo) / MINUTE:.3g}m"

    @property
    def against(self) -> str:
        if self.base_is_reference:
            return "vs the reference"
        return f"vs the {self._span(self.w.before, self.w.before_end)} before"

    def all(self) -> list[Candidate]:
        out: list[Candidate] = []
        for part in (self.feature_drift, self.quality, self.version_change, self.latency,
                     self.volume, self.segments, self.slices):  # fmt: skip
            out += part()
        return _fold(out)

    # -- features -------------------------------------------------------------------------

    def feature_drift(self) -> list[Candidate]:
        out: list[Candidate] = []
        if self.now.num_rows < MIN_ROWS or self.base.num_rows < MIN_ROWS:
            return out
        for column in self.columns:
            if column.role != "feature" or column.name not in self.now.column_names:
                continue
            if column.name not in self.base.column_names:
                continue
            found = _column_change(column, self.now.column(column.name), self.base.column(column.name))
            if found is not None:
                effect, p, what = found
                out.append(Candidate("feature_drift", column.name, effect, p,
                                     f"{_shown(column.name)}: {what} {self.against}"))  # fmt: skip
        return out

    def quality(self) -> list[Candidate]:
        s, w = self.service, self.w
        try:
            now = s.quality(self.spec.name, self.version, start=from_micros(w.onset),
                            end=from_micros(w.end), versions="*").to_pandas()  # fmt: skip
            before = None
            if not self.base_is_reference:
                before = s.quality(self.spec.name, self.version, start=from_micros(w.before),
                                   end=from_micros(w.before_end), versions="*").to_pandas()  # fmt: skip
        except MlpulseError:
            return []
        if now.empty:
            return []
        now = now[now["violations"] > 0]
        if before is not None and not before.empty:
            now = now.merge(before[["column", "rule", "violations", "rows"]], on=["column", "rule"],
                            how="left", suffixes=("", "_before"))  # fmt: skip
        else:
            now = now.assign(violations_before=0, rows_before=0)
        best: dict[str, Candidate] = {}
        for row in now.itertuples(index=False):
            n1, k1 = int(row.rows), int(row.violations)
            n0 = 0 if pd.isna(row.rows_before) else int(row.rows_before)
            k0 = 0 if pd.isna(row.violations_before) else int(row.violations_before)
            if n1 <= 0 or k1 > n1:
                continue  # max_distinct counts values, not rows: not a rate
            r1, r0 = k1 / n1, (k0 / n0 if n0 else 0.0)
            if r1 <= r0:
                continue
            effect = _h(r1, r0)
            p = _fisher(k1, n1, k0, n0) if n0 else _binom_zero(k1, n1)
            since = f"{r0:.1%} before" if n0 else "none in the reference"
            detail = f"{_shown(row.column)}: rule {row.rule} violated by {r1:.1%} of {n1} rows ({since})"
            c = Candidate("quality", str(row.column), effect, p, detail)
            if c.subject not in best or c.effect > best[c.subject].effect:
                best[c.subject] = c
        return list(best.values())

    # -- versions, latency, volume ----------------------------------------------------------

    def version_change(self) -> list[Candidate]:
        s, w = self.service, self.w
        spans = profile_store.version_spans(s.store.cursor(), self.spec.model_id)
        if len(spans) < 2 or "__version" not in self.now.column_names:
            return []
        now_v = np.asarray(self.now.column("__version").to_pylist(), dtype=object)
        base_v = (
            np.asarray(self.base.column("__version").to_pylist(), dtype=object)
            if not self.base_is_reference and "__version" in self.base.column_names
            else np.array([], dtype=object)
        )
        # when each version's first row came: the profiles say roughly (a day bucket starts
        # at midnight), the rows of the two windows exactly
        stamps = [self._stamps(self.now, now_v), self._stamps(self.base, base_v)]
        if w.onset > w.before_end:  # between the clean window and the change point
            gap = window_rows(s.store, s.registry, self.spec, [], w.before_end, w.onset, s.versions(self.spec.name),
                              "", limit=SAMPLE_ROWS, extra=("__version", "__ts"))  # fmt: skip
            stamps.append(self._stamps(gap, np.asarray(gap.column("__version").to_pylist(), dtype=object)))
        stamps = pd.concat(stamps)
        firsts = stamps.groupby("version")["ts"].min() if len(stamps) else pd.Series(dtype="int64")
        margin = (w.before_end - w.before) // 20
        out = []
        for version, (coarse, _) in spans.items():
            first = int(firsts.get(version, coarse))
            if coarse < w.before - DAY or not w.before + margin <= first < w.end:
                continue
            new = now_v == version
            if new.sum() < MIN_ROWS:
                continue
            others = [v for v, (f, _) in spans.items() if v != version and f < first]
            if not others:
                continue
            # the versions it replaced, over both windows (the evidence of a fresh deployment
            # is thin: every row of the older versions helps)
            old_now = np.isin(now_v, others)
            old_base = np.isin(base_v, others)
            if old_now.sum() + old_base.sum() < MIN_ROWS:
                continue
            names = pd.Series(np.concatenate([now_v[old_now], base_v[old_base]])).value_counts()
            previous = str(names.index[0])
            where = "its rows now and before" if old_base.any() else "its rows at the same time"
            at = from_micros(first).strftime("%Y-%m-%d %H:%M")
            errors_now, latency_now = self._errors(self.now), _floats(self.now, "__latency_ms")
            errors_base, latency_base = (
                (self._errors(self.base)[old_base], _floats(self.base, "__latency_ms")[old_base])
                if len(base_v) else (np.array([]), np.array([]))
            )  # fmt: skip
            found = self._version_effect(
                errors_now[new], latency_now[new],
                np.concatenate([errors_now[old_now], errors_base]),
                np.concatenate([latency_now[old_now], latency_base]),
            )  # fmt: skip
            if found is None:
                continue
            effect, p, what = found
            detail = (f"version {_shown(version)} started taking traffic at {at} UTC: {what} than "
                      f"{_shown(previous)} ({where})")  # fmt: skip
            out.append(Candidate("version_change", version, effect, p, detail))
        return out

    @staticmethod
    def _stamps(table: pa.Table, versions: np.ndarray) -> pd.DataFrame:
        if "__ts" not in table.column_names or not len(versions):
            return pd.DataFrame({"version": [], "ts": []})
        ts = table.column("__ts").cast(pa.timestamp("us")).cast(pa.int64()).to_numpy(zero_copy_only=False)
        return pd.DataFrame({"version": versions, "ts": ts})

    def _version_effect(self, err_new: np.ndarray, lat_new: np.ndarray, err_old: np.ndarray, lat_old: np.ndarray):
        """How much worse the new version's rows are: errors (Cohen's h of the error rates,
        Cohen's d of the absolute error for regression) or latency, whichever is larger."""
        results = []
        err_new, err_old = err_new[~np.isnan(err_new)], err_old[~np.isnan(err_old)]
        if len(err_new) >= MIN_ROWS and len(err_old) >= MIN_ROWS:
            if self.spec.task == "regression":
                d, p = _mean_shift(err_new, err_old)
                if d > 0:
                    results.append((d, p, f"mean absolute error {err_new.mean():.4g} vs {err_old.mean():.4g}, worse"))
            else:
                k1, k0 = int(err_new.sum()), int(err_old.sum())
                r1, r0 = k1 / len(err_new), k0 / len(err_old)
                if r1 > r0:
                    results.append((_h(r1, r0), _fisher(k1, len(err_new), k0, len(err_old)),
                                    f"error rate {r1:.1%} vs {r0:.1%}, worse"))  # fmt: skip
        shift = _numeric_shift(lat_new[~np.isnan(lat_new)], lat_old[~np.isnan(lat_old)])
        if shift is not None and shift[2] > 0:
            effect, p, _ = shift
            results.append((effect, p, f"latency p95 {np.nanpercentile(lat_new, 95):.4g} ms vs "
                                       f"{np.nanpercentile(lat_old, 95):.4g} ms, slower"))  # fmt: skip
        if not results:
            return None
        return max(results, key=lambda r: r[0])

    def _errors(self, table: pa.Table) -> np.ndarray:
        """Per row: 1.0 wrong, 0.0 right (absolute error for regression), NaN unlabeled."""
        spec = self.spec
        if spec.label not in table.column_names or spec.prediction not in table.column_names:
            return np.full(table.num_rows, np.nan)
        if spec.task == "multiclass":
            pred = pd.Series(table.column(spec.prediction).to_pylist(), dtype=object)
            label = pd.Series(table.column(spec.label).to_pylist(), dtype=object)
            wrong = (pred.astype(str) != label.astype(str)).to_numpy(float)
            return np.where(label.isna().to_numpy(), np.nan, wrong)
        pred, label = _floats(table, spec.prediction), _floats(table, spec.label)
        if spec.task == "regression":
            return np.abs(pred - label)
        wrong = ((pred >= spec.threshold) != (label == 1)).astype(float)
        return np.where(np.isnan(label) | np.isnan(pred), np.nan, wrong)

    def latency(self) -> list[Candidate]:
        if self.base_is_reference or "__latency_ms" not in self.base.column_names:
            return []
        now, base = _floats(self.now, "__latency_ms"), _floats(self.base, "__latency_ms")
        now, base = now[~np.isnan(now)], base[~np.isnan(base)]
        found = _numeric_shift(now, base)
        if found is None:
            return []
        effect, p, _ = found
        detail = (f"p50 {np.median(now):.4g} ms, p95 {np.percentile(now, 95):.4g} ms vs "
                  f"{np.median(base):.4g} / {np.percentile(base, 95):.4g} ms {self.against}")  # fmt: skip
        return [Candidate("latency", "latency_ms", effect, p, detail)]

    def volume(self) -> list[Candidate]:
        from scipy.stats import binomtest

        s, w = self.service, self.w
        # a model whose traffic began within the window before: its rate counts from then
        spans = profile_store.version_spans(s.store.cursor(), self.spec.model_id)
        begin = w.before
        if spans and min(lo for lo, _ in spans.values()) >= w.before - DAY and "__ts" in self.base.column_names:
            stamps = self._stamps(self.base, np.zeros(self.base.num_rows))
            if len(stamps):
                begin = max(begin, int(stamps["ts"].min()))
        try:
            counts = [
                float(s.metrics(self.spec.name, self.version, ["count"], start=from_micros(lo),
                                end=from_micros(hi), versions="*")["count"].iloc[0])  # fmt: skip
                for lo, hi in ((w.onset, w.end), (begin, w.before_end))
            ]
        except MlpulseError:
            return []
        n1, n0 = (0 if math.isnan(c) else int(c) for c in counts)
        t1, t0 = w.end - w.onset, w.before_end - begin
        if n0 < MIN_ROWS or t0 < 10 * MINUTE:
            return []  # no traffic before: nothing to compare with
        ratio = ((n1 + 0.5) / t1) / ((n0 + 0.5) / t0)
        p = binomtest(n1, n1 + n0, t1 / (t1 + t0)).pvalue
        per_hour = [n1 / (t1 / HOUR), n0 / (t0 / HOUR)]
        detail = (f"{per_hour[0]:.4g} predictions/hour vs {per_hour[1]:.4g} in the "
                  f"{self._span(begin, w.before_end)} before ({ratio - 1:+.0%})")  # fmt: skip
        return [Candidate("volume", "predictions", abs(math.log(ratio)), float(p), detail)]

    # -- segments and slices ----------------------------------------------------------------

    def perf_metrics(self) -> list[str]:
        """The metrics segments are ranked by, first that works: the alert's, if it is a
        metric, then the task's headline metric (where some row is labeled)."""
        metric = self.w.metric
        out = [metric] if metric and value_kind(metric) == "metrics" else []
        if not np.isnan(self._errors(self.now)).all():
            out.append("mae" if self.spec.task == "regression" else "accuracy")
        return list(dict.fromkeys(out))

    def segments(self) -> list[Candidate]:
        ranker = getattr(self.service, "segments", None)
        if ranker is None or not self.spec.segments or self.base_is_reference:
            return []
        w = self.w
        window = {"start": from_micros(w.onset), "end": from_micros(w.end)}
        against = {"start": from_micros(w.before), "end": from_micros(w.before_end)}
        for metric in self.perf_metrics():
            try:
                total = self.service.metrics(self.spec.name, self.version, [metric], versions="*", **window)
                total_before = self.service.metrics(self.spec.name, self.version, [metric], versions="*",
                                                    **against)  # fmt: skip
                frames = [
                    ranker(self.spec.name, self.version, metric, against=against, segment=column,
                           versions="*", **window)  # fmt: skip
                    for column in self.spec.segments
                ]
            except MlpulseError:
                continue  # not a metric segments split (ROC AUC, a latency quantile): the next
            m1, m0 = float(total[metric].iloc[0]), float(total_before[metric].iloc[0])
            if math.isnan(m1) or math.isnan(m0):
                return []
            out = []
            for frame in frames:
                n1, n0 = int(frame["rows"].sum()), int(frame["rows_against"].sum())
                for row in frame.itertuples(index=False):
                    c = self._segment(metric, row, m1, m0, n1, n0)
                    if c is not None:
                        out.append(c)
            return out
        return []

    def _segment(self, metric: str, row: Any, m1: float, m0: float, n1: int, n0: int) -> Candidate | None:
        """A segment value whose metric moved more than the rest of the traffic's did, in the
        incident's direction: effect |change of the segment - change of the rest| on the
        metric's scale, tested by a z-test on that difference (variance 1/n on the arcsine
        scale for proportions, 1/count on the log scale for counts; other metrics keep the
        segment's own test)."""
        from scipy.stats import norm

        s1, s0, share, share0 = (float(x) for x in (row.metric, row.metric_against, row.share, row.share_against))
        k1, k0 = int(row.rows), int(row.rows_against)
        if any(math.isnan(x) for x in (s1, s0, share, share0)) or not (0 < share < 1 and 0 < share0 < 1):
            return None
        if metric == "count":
            r1, r0 = m1 - s1, m0 - s0
        else:
            r1, r0 = _rest(m1, s1, share), _rest(m0, s0, share0)
        move = _transform(metric)
        if move is None:
            return None
        try:
            seg, rest, tot = move(s1) - move(s0), move(r1) - move(r0), move(m1) - move(m0)
        except ValueError:
            return None
        excess = seg - rest
        if any(math.isnan(x) for x in (seg, rest, tot)) or excess * tot <= 0:
            return None  # it moved no more than the rest, or against the incident
        if metric in PROPORTIONS and min(k1, k0, n1 - k1, n0 - k0) > 0:
            z = abs(excess) / math.sqrt(1 / k1 + 1 / k0 + 1 / (n1 - k1) + 1 / (n0 - k0))
            p = float(norm.sf(z))
        elif metric == "count" and min(s1, s0, r1, r0) > 0:
            p = float(norm.sf(abs(excess) / math.sqrt(1 / s1 + 1 / s0 + 1 / r1 + 1 / r0)))
        else:
            p = float(row.p_value)
        column, value = str(row.segment), str(row.value)
        detail = (f"{_shown(column)}={_shown(value)} ({share:.0%} of rows): {metric} {s1:.4g} vs "
                  f"{s0:.4g} before, the rest {r1:.4g} vs {r0:.4g}")  # fmt: skip
        return Candidate("segment", f"{column}={value}", abs(excess), p, detail)

    def slices(self) -> list[Candidate]:
        finder = getattr(self.service, "slices", None)
        if finder is None or self.spec.task == "regression":
            return []
        w = self.w
        try:
            frame = finder(self.spec.name, self.version, start=from_micros(w.onset), end=from_micros(w.end),
                           versions="*")  # fmt: skip
        except MlpulseError:
            return []
        if frame is None or frame.empty:
            return []
        before_errors = self._errors(self.base) if not self.base_is_reference else None
        out = []
        for row in frame.itertuples(index=False):
            rate, lift = float(row.error_rate), float(row.lift)
            if not (lift > 1 and rate > 0):
                continue
            overall = rate / lift
            support = float(row.support)
            rest = (overall - support * rate) / (1 - support) if support < 1 else overall
            effect = _h(rate, max(rest, 0.0))
            gap_before = ""
            columns = tuple(_condition_keys(row.conditions))
            if before_errors is not None:
                mask = _condition_mask(self.base, row.conditions)
                labeled = ~np.isnan(before_errors)
                if mask is not None and (mask & labeled).sum() < 5:
                    continue  # it (nearly) had no rows before: its features drifted, said there
                if mask is not None and (~mask & labeled).sum() >= MIN_ROWS:
                    inside = before_errors[mask & labeled]
                    b_in, b_out = inside.mean(), before_errors[~mask & labeled].mean()
                    if b_in > b_out:
                        effect = max(0.0, effect - _h(b_in, b_out))
                    gap_before = f"; {b_in:.1%} vs {b_out:.1%} before"
                    # the slice got worse since (not: it always errs more); it was picked among
                    # many for erring now, so its search-corrected q-value must hold as well
                    k1 = round(rate * int(row.rows))
                    p = max(_fisher(k1, int(row.rows), int(inside.sum()), len(inside)), float(row.q_value))
                else:
                    p = float(row.q_value)
            else:
                p = float(row.q_value)
            detail = (f"{row.slice}: {int(row.rows)} rows ({support:.1%}), error rate {rate:.1%} vs "
                      f"{rest:.1%} elsewhere{gap_before}")  # fmt: skip
            out.append(Candidate("slice", str(row.slice), effect, p, detail, columns))
        return out


# -- effect sizes and tests -------------------------------------------------------------------


def _h(p1: float, p0: float) -> float:
    """Cohen's h of two proportions."""
    p1, p0 = min(max(p1, 0.0), 1.0), min(max(p0, 0.0), 1.0)
    return abs(2 * math.asin(math.sqrt(p1)) - 2 * math.asin(math.sqrt(p0)))


def _transform(metric: str):
    """The scale a metric's changes are compared on (Cohen's h for proportions, the log for
    positive quantities); None for metrics of no fixed sign."""
    if metric in PROPORTIONS:
        return lambda m: 2 * math.asin(math.sqrt(min(max(m, 0.0), 1.0)))
    if metric in ("r2", "mean_error", "prediction_mean"):
        return None
    return lambda m: math.log(m + 1e-9) if m >= 0 else math.nan


def _rest(total: float, segment: float, share: float) -> float:
    return (total - share * segment) / (1 - share) if 0 <= share < 1 else math.nan


def _fisher(k1: int, n1: int, k0: int, n0: int) -> float:
    from scipy.stats import fisher_exact

    return float(fisher_exact([[k1, n1 - k1], [k0, n0 - k0]], alternative="greater").pvalue)


def _binom_zero(k: int, n: int) -> float:
    """P-value of k violations in n rows when the reference had none (rate under 1/n0 taken
    as 0.1%)."""
    from scipy.stats import binomtest

    return float(binomtest(k, n, 0.001, alternative="greater").pvalue)


def _floats(table: pa.Table, name: str) -> np.ndarray:
    if name not in table.column_names:
        return np.full(table.num_rows, np.nan)
    from ..engine.validate import to_float

    values, _, _ = to_float(table.column(name))
    return values


def _mean_shift(new: np.ndarray, old: np.ndarray) -> tuple[float, float]:
    """Cohen's d of ``new`` over ``old`` (signed) and Welch's one-sided p-value."""
    from scipy.stats import ttest_ind

    sd = math.sqrt((new.var(ddof=1) + old.var(ddof=1)) / 2)
    diff = float(new.mean() - old.mean())
    d = min(diff / sd, MAX_EFFECT) if sd > 0 else (MAX_EFFECT if diff > 0 else 0.0)
    return d, float(ttest_ind(new, old, equal_var=False, alternative="greater").pvalue)


def _numeric_shift(now: np.ndarray, base: np.ndarray) -> tuple[float, float, float] | None:
    """(Wasserstein distance in baseline sds, KS p-value, sign of the median's move)."""
    from scipy.stats import ks_2samp, wasserstein_distance

    if len(now) < MIN_ROWS or len(base) < MIN_ROWS:
        return None
    scale = float(np.std(base, ddof=1))
    distance = float(wasserstein_distance(now, base))
    effect = min(distance / scale, MAX_EFFECT) if scale > 0 else (MAX_EFFECT if distance > 0 else 0.0)
    p = float(ks_2samp(now, base, method="asymp").pvalue)
    return effect, p, float(np.sign(np.median(now) - np.median(base)) or np.sign(now.mean() - base.mean()))


def _column_change(column: Column, now: Any, base: Any) -> tuple[float, float, str] | None:
    """How one feature changed: (effect, p-value, what) of its values and of its missing
    share, whichever is larger."""
    from scipy.stats import chi2_contingency

    from ..engine.validate import to_float, to_string

    results = []
    if column.kind == CATEGORICAL:
        a, b = to_string(now)[0], to_string(base)[0]
        na, nb = np.asarray(a.is_null()), np.asarray(b.is_null())
        counts_now = pd.Series(a.drop_null().to_pylist(), dtype=object).value_counts()
        counts_base = pd.Series(b.drop_null().to_pylist(), dtype=object).value_counts()
        if counts_now.sum() >= MIN_ROWS and counts_base.sum() >= MIN_ROWS:
            table = pd.concat([counts_now, counts_base], axis=1).fillna(0)
            p1, p0 = table.iloc[:, 0] / table.iloc[:, 0].sum(), table.iloc[:, 1] / table.iloc[:, 1].sum()
            hs = [_h(x, y) for x, y in zip(p1, p0, strict=True)]
            k = int(np.argmax(hs))
            p = float(chi2_contingency(table.to_numpy()).pvalue) if len(table) > 1 else 1.0
            results.append((hs[k], p, f"share of {_shown(str(table.index[k]))} {p1.iloc[k]:.1%} vs {p0.iloc[k]:.1%}"))
    else:
        x, xnull, xbad = to_float(now)
        y, ynull, ybad = to_float(base)
        na, nb = xnull | xbad | np.isnan(x), ynull | ybad | np.isnan(y)
        shift = _numeric_shift(x[~na], y[~nb])
        if shift is not None:
            effect, p, _ = shift
            results.append((effect, p, f"mean {np.mean(x[~na]):.4g} vs {np.mean(y[~nb]):.4g}, "
                                       f"{effect:.2f} sd apart (Wasserstein)"))  # fmt: skip
    r1, r0 = float(na.mean()) if len(na) else 0.0, float(nb.mean()) if len(nb) else 0.0
    if r1 > r0 and len(na) >= MIN_ROWS and len(nb) >= MIN_ROWS:
        p = _fisher(int(na.sum()), len(na), int(nb.sum()), len(nb))
        results.append((_h(r1, r0), p, f"missing in {r1:.1%} of rows vs {r0:.1%}"))
    if not results:
        return None
    return max(results, key=lambda r: r[0])


# -- slice conditions --------------------------------------------------------------------------


def _condition_keys(conditions: Any) -> list[str]:
    """What a slice's conditions name: each column, and ``column=value`` for an equality."""
    out = []
    for c in _conditions(conditions):
        out.append(str(c.get("column")))
        if c.get("op") in ("==", "="):
            out.append(f"{c.get('column')}={c.get('value')}")
    return out


def _conditions(conditions: Any) -> list[dict[str, Any]]:
    if conditions is None:
        return []
    if isinstance(conditions, dict):
        return [conditions]
    try:
        return [c for c in conditions if isinstance(c, dict)]
    except TypeError:
        return []


def _condition_mask(table: pa.Table, conditions: Any) -> np.ndarray | None:
    """Rows of ``table`` in the slice, or None where a condition cannot be evaluated."""
    mask = np.ones(table.num_rows, bool)
    conds = _conditions(conditions)
    if not conds:
        return None
    for cond in conds:
        column, op = str(cond.get("column")), cond.get("op")
        value: Any = cond.get("value")
        if column not in table.column_names:
            return None
        if op == "is missing":
            array = table.column(column)
            missing = np.asarray(array.is_null())
            if pa.types.is_floating(array.type):
                missing |= np.isnan(_floats(table, column))
            mask &= missing
            continue
        if op in ("==", "=", "!=") and not isinstance(value, int | float):
            values = pd.Series(table.column(column).to_pylist(), dtype=object).astype(str).to_numpy()
            hit = values == str(value)
            mask &= hit if op != "!=" else ~hit
            continue
        x = _floats(table, column)
        with np.errstate(invalid="ignore"):
            if op in ("<", "<="):
                mask &= x < float(value) if op == "<" else x <= float(value)
            elif op in (">", ">="):
                mask &= x > float(value) if op == ">" else x >= float(value)
            elif op in ("==", "="):
                mask &= x == float(value)
            elif op == "!=":
                mask &= x != float(value)
            elif op == "between" and isinstance(value, Sequence) and len(value) == 2:
                mask &= (x >= float(value[0])) & (x < float(value[1]))
            else:
                return None
    return mask


# -- ranking ----------------------------------------------------------------------------------


def _fold(candidates: list[Candidate]) -> list[Candidate]:
    """A slice with a condition on a drifted feature, or on a listed segment's value, is that
    candidate's symptom: it is dropped and the explaining candidate's detail mentions it."""
    passed = significant(candidates)
    explains: dict[str, Candidate] = {}
    for c in passed:
        if c.kind in ("feature_drift", "segment"):
            explains.setdefault(c.subject, c)
    out = []
    for c in candidates:
        if c.kind == "slice" and c in passed:
            by = next((explains[key] for key in c.columns if key in explains), None)
            if by is not None:
                if "slice" not in by.detail:
                    by.detail += f"; the slice {c.subject} agrees"
                continue
        out.append(c)
    return out


def significant(candidates: list[Candidate]) -> list[Candidate]:
    """Candidates whose p-value passes Benjamini-Hochberg at ALPHA and whose effect is at
    least MIN_EFFECT."""
    if not candidates:
        return []
    p = np.array([c.p_value if not math.isnan(c.p_value) else 1.0 for c in candidates])
    order = np.argsort(p)
    ranked = p[order] * len(p) / np.arange(1, len(p) + 1)
    q = np.minimum.accumulate(ranked[::-1])[::-1]
    passed = np.zeros(len(p), bool)
    passed[order] = q <= ALPHA
    return [c for c, ok in zip(candidates, passed, strict=True) if ok and c.effect >= MIN_EFFECT]


def _rank(candidates: list[Candidate]) -> pd.DataFrame:
    kept = sorted(significant(candidates), key=lambda c: (-c.effect, KINDS.index(c.kind), c.subject))
    return pd.DataFrame(
        {
            "rank": pd.array(range(1, len(kept) + 1), dtype="int64"),
            "kind": pd.array([c.kind for c in kept], dtype=object),
            "subject": pd.array([c.subject for c in kept], dtype=object),
            "score": pd.array([round(min(c.effect, MAX_EFFECT), 4) for c in kept], dtype="float64"),
            "detail": pd.array([c.detail for c in kept], dtype=object),
        },
        columns=COLUMNS,
    )


def _shown(name: str) -> str:
    """A name as it appears in a detail line (quoted, control characters escaped)."""
    return repr(str(name))


__all__ = ["ALPHA", "COLUMNS", "KINDS", "MAX_EFFECT", "MIN_EFFECT", "Candidate", "candidates", "root_cause", "significant"]
