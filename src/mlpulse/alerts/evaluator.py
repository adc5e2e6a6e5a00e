"""One evaluation round: every rule on every model it names, at one time.

For each (rule, model) pair the round computes the rule's value over the window ending at
``at``, the threshold (fixed or from a baseline), and moves the alert through
:mod:`~mlpulse.alerts.state`. A pair never judged before, or not judged for a while, is
replayed over the evaluation times it missed (spaced by the evaluation interval, as far back
as ``for`` + ``keep_firing_for`` reach), so ``evaluate(at=T)`` gives the answer a live
evaluator running every interval would have given at T, and a restart between pending and
firing fires on time. The state changes, incident updates and the notifications they cause
are written in one transaction: a crash keeps all of them or none, and a notification is
queued exactly once (the outbox's ``dedup_key``). A replay evaluates at most
``Settings.max_replay`` times per pair, spaced wider when ``for`` is long: the state at
``at`` is exact, the time an alert went pending or fired is then known to that spacing.

``service`` is a :class:`mlpulse.service.Service` (not imported: the service imports this
package).
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import pandas as pd

from .._time import MICROS_PER_SECOND, from_micros, now_micros, to_micros
from ..errors import MlpulseError
from ..store import alerts as alert_store
from .rules import Rule, render, rule_from_dict
from .state import FIRING, INACTIVE, PENDING, RESOLVED, Phase, advance
from .values import DEFAULT_MIN_ROWS, Value, group_values, kind

#: Value kinds that a firing data-quality alert of the same model inhibits: a broken input
#: explains drift and a drop in performance, and one page about the cause is enough.
INHIBITED_KINDS = ("drift", "estimate", "metrics")
#: Plain metrics a data-quality problem does not explain.
NOT_INHIBITED = frozenset({"count", "latency_p50", "latency_p95", "latency_p99"})

#: How often a firing alert is sent again to Alertmanager notifiers.
ALERTMANAGER_REFRESH_US = 60 * MICROS_PER_SECOND
#: Sent refreshes are deleted from the outbox after this long (they say nothing new).
REFRESH_KEEP_US = 3600 * MICROS_PER_SECOND

_LOCKS: dict[int, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


@dataclass(frozen=True)
class Settings:
    """How evaluation runs (the server's ``--eval-interval`` is ``interval``)."""

    interval: float = 30.0  # seconds between live evaluations (and replayed ones)
    repeat_interval: float = 4 * 3600.0  # a firing alert is notified again after this
    max_replay: int = 24  # at most this many replayed evaluations per pair (then spaced wider)
    external_url: str = ""  # the server's address, for links in notifications


@dataclass
class _Pair:
    rule: Rule
    model: str
    version: str | None
    note: str | None = None
    phase: Phase = field(default_factory=Phase)
    row: alert_store.AlertRow | None = None  # the open alert, if any
    times: list[int] = field(default_factory=list)
    value: Value | None = None
    threshold: float = math.nan
    events: list[tuple[int, str, float, float, int]] = field(default_factory=list)
    persist: bool = True


def evaluate(
    service: Any,
    at: Any = None,
    *,
    rules: Sequence[Rule] | None = None,
    persist: bool = True,
    settings: Settings | None = None,
) -> pd.DataFrame:
    """Evaluate ``rules`` (default: the stored, enabled ones) at ``at`` (default now) and
    return one row per (rule, model): rule, model, version, metric, state, value, threshold,
    op, rows, note, started_at, fired_at, alert_id, incident, silenced_by, inhibited_by.
    With ``persist=False`` nothing is stored (a dry run: ``mlpulse alerts test``)."""
    settings = settings or Settings()
    at_us = to_micros(at) if at is not None else now_micros()
    store = service.store
    with _lock(store):
        if rules is None:
            rules = [r for r in (rule_from_dict(d) for d in alert_store.load_rule_dicts(store)) if r.enabled]
        pairs = _pairs(service, rules)
        cursors = alert_store.cursors(store) if persist else {}
        open_rows = {(a.rule, a.model): a for a in alert_store.open_alerts(store)} if persist else {}
        interval = int(settings.interval * MICROS_PER_SECOND)
        for pair in pairs:
            key = (pair.rule.name, pair.model)
            last = cursors.get(key)
            pair.persist = persist and (last is None or at_us > last)
            if pair.persist and key in open_rows:
                pair.row = open_rows[key]
                pair.phase = _phase(pair.row)
            pair.times = _times(pair, at_us, last if pair.persist else None, interval, settings.max_replay)
        _judge(service, pairs)
        if persist:
            _store(service, pairs, at_us, settings)
        return _frame(pairs)


def _lock(store: Any) -> threading.Lock:
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(id(store), threading.Lock())


def _pairs(service: Any, rules: Sequence[Rule]) -> list[_Pair]:
    versions = service.registry.all_versions()
    models = list(versions)
    latest = {name: (v[-1] if v else None) for name, v in versions.items()}
    pairs = []
    for rule in rules:
        targets = models if rule.model == "*" else [rule.model]
        for model in targets:
            if model not in latest:
                pairs.append(_Pair(rule, model, rule.version, note=f"unknown model {model!r}"))
                continue
            version = rule.version or latest[model]
            note = None
            if version is None:
                note = f"model {model!r} has no version yet"
            elif rule.version is not None and rule.version not in versions[model]:
                note = f"model {model!r} has no version {rule.version!r}"
            pairs.append(_Pair(rule, model, version, note=note))
    return pairs


def _times(pair: _Pair, at_us: int, last: int | None, interval: int, max_replay: int) -> list[int]:
    """The evaluation times of this round: ``at``, preceded by the live evaluations that a
    pair never judged (or not judged for more than two intervals) missed."""
    reach = int((pair.rule.for_ + pair.rule.keep_firing_for) * MICROS_PER_SECOND)
    if reach <= 0 or interval <= 0 or (last is not None and at_us - last <= 2 * interval):
        return [at_us]
    start = at_us - reach - interval
    if last is not None:
        start = max(start, last + interval)
    count = (at_us - start) // interval
    step = interval
    if count > max_replay:
        step = -(-(at_us - start) // max_replay)
        count = max_replay
    return [at_us - k * step for k in range(int(count), 0, -1)] + [at_us]


def _judge(service: Any, pairs: list[_Pair]) -> None:
    """Compute values and thresholds at every time, and advance each pair's phase."""
    wanted: dict[tuple, set[str]] = {}
    for pair in pairs:
        if pair.note is None:
            for t in pair.times:
                wanted.setdefault(_group(pair, t), set()).add(pair.rule.metric)
                if pair.rule.active_within:
                    wanted.setdefault(_activity(pair, t), set()).add("count")
    values: dict[tuple, dict[str, Value]] = {}
    for group, metrics in wanted.items():
        model, version, segment, window, t = group
        values[group] = group_values(service, model, version, segment, window, t, metrics)
    for pair in pairs:
        if pair.note is not None:
            pair.value = Value(math.nan, 0, pair.note)
            continue
        rule = pair.rule
        for_us = int(rule.for_ * MICROS_PER_SECOND)
        keep_us = int(rule.keep_firing_for * MICROS_PER_SECOND)
        for t in pair.times:
            value = values[_group(pair, t)][rule.metric]
            threshold, note = _threshold(service, pair, value, t)
            if rule.active_within and not values[_activity(pair, t)]["count"].value > 0:
                note = f"no prediction within active_within ({_duration(rule.active_within)}): not judged"
            if note and value.note is None:
                value = replace(value, note=note)
            breached = value.note is None and rule.breached(value.value, threshold)
            pair.phase, event = advance(pair.phase, breached, at=t, for_=for_us, keep_firing_for=keep_us)
            if event is not None:
                pair.events.append((t, event, value.value, threshold, value.rows))
            pair.value, pair.threshold = value, threshold


def _group(pair: _Pair, t: int) -> tuple:
    window = int(pair.rule.window * MICROS_PER_SECOND)
    return (pair.model, pair.version, pair.rule.segment, window, t)


def _activity(pair: _Pair, t: int) -> tuple:
    window = int((pair.rule.active_within or 0) * MICROS_PER_SECOND)
    return (pair.model, pair.version, pair.rule.segment, window, t)


def _threshold(service: Any, pair: _Pair, value: Value, t: int) -> tuple[float, str | None]:
    rule = pair.rule
    min_rows = rule.min_rows
    if min_rows is None:
        min_rows = 0 if rule.metric == "count" else DEFAULT_MIN_ROWS
    if value.note is None and value.rows < min_rows:
        return _fixed(rule), f"{value.rows} rows < min_rows {min_rows}: not judged"
    if rule.baseline is None:
        return _fixed(rule), None
    from .baseline import baseline_threshold

    try:
        spec = service.registry.get(pair.model)
        assert pair.version is not None
        threshold, _ = baseline_threshold(service, rule, spec, pair.version, t, value.rows)
    except MlpulseError as exc:
        return math.nan, f"no baseline: {exc}"
    if math.isnan(threshold):
        return math.nan, f"no {rule.baseline} baseline for {rule.metric!r}"
    return float(threshold), None


def _fixed(rule: Rule) -> float:
    return float(rule.threshold) if rule.threshold is not None else math.nan


def _phase(row: alert_store.AlertRow) -> Phase:
    return Phase(
        row.state, active_since=row.active_since_us, fired_at=row.fired_us,
        resolved_at=row.resolved_us, last_active=row.last_active_us,
    )  # fmt: skip


# -- persisting a round -----------------------------------------------------------------


def _store(service: Any, pairs: list[_Pair], at_us: int, settings: Settings) -> None:
    store = service.store
    silences = alert_store.silences(store, active_at=at_us)
    notifiers = alert_store.load_notifiers(store)
    incidents = {i.id: i for i in alert_store.open_incidents(store)}
    repeat_us = int(settings.repeat_interval * MICROS_PER_SECOND)
    with store.write() as conn:
        touched: dict[int, tuple[_Pair, alert_store.AlertRow]] = {}
        for pair in pairs:
            if not pair.persist:
                continue
            for t, event, value, threshold, rows in pair.events:
                row = pair.row
                if event == PENDING or (event == FIRING and (row is None or row.state == RESOLVED)):
                    if row is not None and row.state in (PENDING, FIRING):
                        alert_store.upsert_alert(conn, row)
                    row = _new_alert(conn, pair, t, value, threshold, rows)
                    if event == FIRING:
                        alert_store.add_alert_event(conn, row.alert_id, t, PENDING, value, threshold)
                elif event == "cleared":
                    if row is not None:
                        alert_store.delete_alert(conn, row.alert_id)
                    pair.row = None
                    continue
                assert row is not None
                if event == FIRING:
                    row.state, row.fired_us = FIRING, t
                elif event == RESOLVED:
                    row.state, row.resolved_us = RESOLVED, t
                alert_store.add_alert_event(conn, row.alert_id, t, event, value, threshold)
                if event == RESOLVED:  # may be an earlier episode of this round
                    touched[row.alert_id] = (pair, row)
                pair.row = row
            if pair.row is not None and (pair.row.state != RESOLVED or pair.row.resolved_us == at_us):
                row = pair.row
                last = pair.value or Value(math.nan, 0)
                row.value = None if math.isnan(last.value) else last.value
                row.threshold = None if math.isnan(pair.threshold) else pair.threshold
                row.rows_seen = last.rows
                row.last_active_us = pair.phase.last_active
                row.annotations = _annotations(pair, row)
                touched[row.alert_id] = (pair, row)
        _silence_and_inhibit(list(touched.values()), silences, at_us)
        for pair, row in touched.values():
            _incident(conn, incidents, pair, row, at_us, touched)
            _notify(conn, notifiers, incidents, pair, row, at_us, repeat_us, settings)
        alert_store.upsert_alerts(conn, [row for _, row in touched.values()])
        for incident in incidents.values():
            alert_store.upsert_incident(conn, incident)
        alert_store.set_cursors(conn, [(p.rule.name, p.model) for p in pairs if p.persist], at_us)
        alert_store.prune_refreshes(conn, at_us - REFRESH_KEEP_US)


def _new_alert(conn: Any, pair: _Pair, t: int, value: float, threshold: float, rows: int) -> alert_store.AlertRow:
    rule = pair.rule
    labels = {
        "alertname": rule.name,
        "model": pair.model,
        "version": pair.version or "",
        "metric": rule.metric,
    }
    if rule.segment:
        labels["segment"] = rule.segment
    context = _context(pair, value, threshold, rows)
    labels.update({k: render(v, context) for k, v in rule.labels.items()})
    fingerprint = hashlib.sha256(json.dumps(labels, sort_keys=True).encode()).hexdigest()[:16]
    row = alert_store.AlertRow(
        alert_id=alert_store.next_id(conn, "alerts", "alert_id"),
        rule=rule.name, model=pair.model, version=pair.version, state=PENDING,
        active_since_us=t, fired_us=None, resolved_us=None, last_active_us=t,
        value=None if math.isnan(value) else value,
        threshold=None if math.isnan(threshold) else threshold, rows_seen=rows,
        labels=labels, annotations={}, fingerprint=fingerprint, incident=None,
        notified=None, notified_us=None, silenced_by=None, inhibited_by=None,
    )  # fmt: skip
    row.annotations = _annotations(pair, row)
    alert_store.upsert_alert(conn, row)
    return row


def _context(pair: _Pair, value: float | None, threshold: float | None, rows: int | None) -> dict[str, Any]:
    rule = pair.rule
    return {
        "rule": rule.name, "model": pair.model, "version": pair.version or "",
        "metric": rule.metric, "op": rule.op, "window": _duration(rule.window),
        "value": math.nan if value is None else float(value),
        "threshold": math.nan if threshold is None else float(threshold),
        "baseline": rule.baseline or "", "rows": rows if rows is not None else 0,
        "labels": rule.labels,
    }  # fmt: skip


def _annotations(pair: _Pair, row: alert_store.AlertRow) -> dict[str, str]:
    context = _context(pair, row.value, row.threshold, row.rows_seen)
    out = {k: render(v, context) for k, v in pair.rule.annotations.items()}
    out.setdefault(
        "summary",
        render("{{model}} {{metric}} {{value}} {{op}} {{threshold}} over {{window}}", context),
    )
    out["value"] = render("{{value}}", context)
    out["threshold"] = render("{{threshold}}", context)
    return out


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def _silence_and_inhibit(
    touched: list[tuple[_Pair, alert_store.AlertRow]], silences: list[alert_store.SilenceRow], at_us: int
) -> None:
    quality_firing: dict[str, str] = {}
    for pair, row in touched:
        if row.state == FIRING and kind(pair.rule.metric) == "quality":
            quality_firing.setdefault(row.model, row.rule)
    for pair, row in touched:
        row.silenced_by = next((s.id for s in silences if matches(s.matchers, row)), None)
        metric = pair.rule.metric
        inhibitable = kind(metric) in INHIBITED_KINDS and metric not in NOT_INHIBITED
        source = quality_firing.get(row.model)
        row.inhibited_by = source if inhibitable and source is not None and row.state == FIRING else None


def matches(matchers: dict[str, str], row: alert_store.AlertRow) -> bool:
    """Whether a silence's matchers (label -> value; ``rule`` and ``model`` too) all match."""
    labels = {**row.labels, "rule": row.rule, "model": row.model}
    return all(labels.get(k) == v for k, v in matchers.items())


def _incident(
    conn: Any, incidents: dict[int, alert_store.IncidentRow], pair: _Pair,
    row: alert_store.AlertRow, at_us: int, touched: dict[int, tuple[_Pair, alert_store.AlertRow]],
) -> None:
    if row.state == FIRING and row.incident is None:
        # a model's alerts join its open incident: one page per episode of trouble
        incident = next(
            (i for i in sorted(incidents.values(), key=lambda i: i.id) if row.model in i.models),
            None,
        )
        fired = row.fired_us or at_us
        if incident is None:
            incident = alert_store.IncidentRow(
                id=max([alert_store.next_id(conn, "incidents", "id"), *[i + 1 for i in incidents]]),
                title=f"{row.model}: {row.rule}", status="open", opened_us=fired,
                acknowledged_us=None, resolved_us=None, last_activity_us=at_us, models=[row.model],
            )  # fmt: skip
            incidents[incident.id] = incident
            alert_store.add_incident_event(conn, incident.id, fired, "opened", incident.title)
        row.incident = incident.id
        incident.last_activity_us = at_us
        alert_store.add_incident_event(
            conn, incident.id, fired, "firing", row.annotations.get("summary", row.rule), row.alert_id
        )
        if row.inhibited_by:
            alert_store.add_incident_event(
                conn, incident.id, at_us, "inhibited",
                f"{row.rule} inhibited by {row.inhibited_by} (a data-quality alert explains it)",
                row.alert_id,
            )  # fmt: skip
        if row.silenced_by:
            alert_store.add_incident_event(
                conn, incident.id, at_us, "silenced", f"{row.rule} silenced by {row.silenced_by}", row.alert_id
            )
    elif row.state == RESOLVED and row.incident is not None and row.incident in incidents:
        incident = incidents[row.incident]
        incident.last_activity_us = at_us
        alert_store.add_incident_event(
            conn, incident.id, row.resolved_us or at_us, "resolved", f"{row.rule} resolved", row.alert_id
        )
        # alerts of this round are written after it: count them from memory
        still = alert_store.open_alerts_in(conn, incident.id, exclude=list(touched))
        still += sum(
            1 for _, other in touched.values()
            if other.incident == incident.id and other.state in (PENDING, FIRING)
        )  # fmt: skip
        if still == 0:
            incident.status, incident.resolved_us = "resolved", at_us
            alert_store.add_incident_event(conn, incident.id, at_us, "closed", "every alert resolved")
            del incidents[incident.id]
            alert_store.upsert_incident(conn, incident)


def _notify(
    conn: Any, notifiers: list[dict[str, Any]], incidents: dict[int, alert_store.IncidentRow],
    pair: _Pair, row: alert_store.AlertRow, at_us: int, repeat_us: int, settings: Settings,
) -> None:
    status = None
    quiet = bool(row.silenced_by or row.inhibited_by)
    if row.state == FIRING and not quiet:
        _refresh_alertmanagers(conn, notifiers, incidents, row, at_us, settings)
    if row.state == FIRING and not quiet:
        if row.notified != FIRING or (row.notified_us is not None and at_us - row.notified_us >= repeat_us):
            status = FIRING
    elif row.state == RESOLVED and row.notified == FIRING and not row.silenced_by:
        status = RESOLVED
    if status is None:
        return
    row.notified, row.notified_us = status, at_us
    if not notifiers:
        return
    payload = notification(row, status, incidents.get(row.incident or -1), settings.external_url)
    for config in notifiers:
        if status == RESOLVED and config.get("send_resolved", True) is False:
            continue
        alert_store.enqueue(
            conn, config["name"], f"{config['name']}|{row.alert_id}|{status}|{at_us}", payload, at_us
        )
    if row.incident is not None:
        names = ", ".join(c["name"] for c in notifiers)
        alert_store.add_incident_event(conn, row.incident, at_us, "notified", f"{status}: {row.rule} to {names}", row.alert_id)


def _refresh_alertmanagers(
    conn: Any, notifiers: list[dict[str, Any]], incidents: dict[int, alert_store.IncidentRow],
    row: alert_store.AlertRow, at_us: int, settings: Settings,
) -> None:
    """Alertmanager resolves an alert it has not heard of for its ``resolve_timeout`` (5 min
    by default): like Prometheus, send a firing alert again, here at most once a minute."""
    targets = [c for c in notifiers if c.get("type") == "alertmanager"]
    if not targets or row.notified != FIRING:
        return
    bucket = at_us // ALERTMANAGER_REFRESH_US
    payload = notification(row, FIRING, incidents.get(row.incident or -1), settings.external_url)
    for config in targets:
        alert_store.enqueue(conn, config["name"], f"{config['name']}|{row.alert_id}|refresh|{bucket}", payload, at_us)


def notification(
    row: alert_store.AlertRow, status: str, incident: alert_store.IncidentRow | None, external_url: str
) -> dict[str, Any]:
    """The notification record of alerts-spec (what every notifier formats)."""
    ends = from_micros(row.resolved_us).strftime("%Y-%m-%dT%H:%M:%SZ") if status == RESOLVED and row.resolved_us else "0001-01-01T00:00:00Z"
    start_us = row.fired_us or row.active_since_us
    url = external_url.rstrip("/")
    return {
        "status": status,
        "incident": row.incident,
        "incident_title": incident.title if incident is not None else f"{row.model}: {row.rule}",
        "group_key": f"mlpulse/{row.model}/incident-{row.incident}",
        "alerts": [
            {
                "status": status,
                "labels": dict(row.labels),
                "annotations": dict(row.annotations),
                "startsAt": from_micros(start_us).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "endsAt": ends,
                "generatorURL": f"{url}/models/{row.model}" if url else "",
                "fingerprint": row.fingerprint,
                "value": row.value,
                "threshold": row.threshold,
            }
        ],
    }


def _frame(pairs: list[_Pair]) -> pd.DataFrame:
    records = []
    for pair in pairs:
        value = pair.value or Value(math.nan, 0)
        row = pair.row
        state = pair.phase.state
        if not pair.persist or row is None:
            row = None
        records.append(
            {
                "rule": pair.rule.name,
                "model": pair.model,
                "version": pair.version,
                "metric": pair.rule.metric,
                "state": state,
                "value": value.value,
                "op": pair.rule.op,
                "threshold": pair.threshold,
                "rows": value.rows,
                "note": value.note,
                "started_at": from_micros(pair.phase.active_since) if state not in (INACTIVE,) and pair.phase.active_since is not None else None,
                "fired_at": from_micros(pair.phase.fired_at) if pair.phase.fired_at is not None and state != INACTIVE else None,
                "alert_id": row.alert_id if row is not None else None,
                "incident": row.incident if row is not None else None,
                "silenced_by": row.silenced_by if row is not None else None,
                "inhibited_by": row.inhibited_by if row is not None else None,
            }
        )
    frame = pd.DataFrame.from_records(records, columns=EVALUATION_COLUMNS)
    for c in ("value", "threshold"):
        frame[c] = frame[c].astype("float64")
    for c in ("started_at", "fired_at"):
        frame[c] = pd.to_datetime(frame[c], utc=True)
    for c in ("rows", "alert_id", "incident"):
        frame[c] = frame[c].astype("Int64")
    return frame


EVALUATION_COLUMNS = [
    "rule", "model", "version", "metric", "state", "value", "op", "threshold", "rows", "note",
    "started_at", "fired_at", "alert_id", "incident", "silenced_by", "inhibited_by",
]  # fmt: skip


__all__ = ["EVALUATION_COLUMNS", "Settings", "evaluate", "matches", "notification"]
