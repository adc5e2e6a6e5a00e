"""The SQL of alerting: rules, notifiers, alerts and their events, incidents, silences and the
notification outbox (tables of migration 6). Times are microseconds since the epoch.

Writes that belong together (an evaluation's state changes, incident updates and the
notifications they cause) take the caller's connection inside one ``store.write()``, so a
crash leaves either all of them or none.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any

import duckdb
import pandas as pd

from .._time import from_micros, now_micros
from .database import Store

# -- rules and notifiers ----------------------------------------------------------------


def save_rules(store: Store, rules: Sequence[Any], *, replace: bool = False) -> None:
    """Store rules (objects with ``name``, ``source`` and ``to_dict()``); a rule of the same
    name is replaced; ``replace`` drops every other *user* rule first (recommended rules are
    kept unless named)."""
    now = now_micros()
    with store.write() as conn:
        if replace:
            conn.execute("DELETE FROM alert_rules WHERE source = 'user'")
        for rule in rules:
            conn.execute("DELETE FROM alert_rules WHERE name = ?", [rule.name])
            conn.execute(
                "INSERT INTO alert_rules VALUES (?, ?, ?, ?)",
                [rule.name, json.dumps(rule.to_dict()), rule.source, now],
            )


def load_rule_dicts(store: Store) -> list[dict[str, Any]]:
    """The stored rules as dicts, by name."""
    rows = store.fetch_all("SELECT body FROM alert_rules ORDER BY name")
    return [json.loads(body) for (body,) in rows]


def delete_rules(store: Store, names: Iterable[str]) -> int:
    """Delete rules by name; how many existed."""
    names = list(names)
    with store.write() as conn:
        found = conn.execute(
            "SELECT count(*) FROM alert_rules WHERE list_contains(?, name)", [names]
        ).fetchone()
        conn.execute("DELETE FROM alert_rules WHERE list_contains(?, name)", [names])
    return int(found[0]) if found else 0


def save_notifiers(store: Store, notifiers: Sequence[dict[str, Any]], *, replace: bool = False) -> None:
    now = now_micros()
    with store.write() as conn:
        if replace:
            conn.execute("DELETE FROM alert_notifiers")
        for config in notifiers:
            conn.execute("DELETE FROM alert_notifiers WHERE name = ?", [config["name"]])
            conn.execute(
                "INSERT INTO alert_notifiers VALUES (?, ?, ?)",
                [config["name"], json.dumps(config), now],
            )


def load_notifiers(store: Store) -> list[dict[str, Any]]:
    rows = store.fetch_all("SELECT config FROM alert_notifiers ORDER BY name")
    return [json.loads(config) for (config,) in rows]


def delete_notifier(store: Store, name: str) -> bool:
    with store.write() as conn:
        found = conn.execute("SELECT count(*) FROM alert_notifiers WHERE name = ?", [name]).fetchone()
        conn.execute("DELETE FROM alert_notifiers WHERE name = ?", [name])
    return bool(found and found[0])


# -- alerts -----------------------------------------------------------------------------


@dataclass
class AlertRow:
    """One row of ``alerts``: a rule on a model from pending to resolved."""

    alert_id: int
    rule: str
    model: str
    version: str | None
    state: str
    active_since_us: int
    fired_us: int | None
    resolved_us: int | None
    last_active_us: int | None
    value: float | None
    threshold: float | None
    rows_seen: int | None
    labels: dict[str, str]
    annotations: dict[str, str]
    fingerprint: str
    incident: int | None
    notified: str | None
    notified_us: int | None
    silenced_by: str | None
    inhibited_by: str | None


_ALERT_COLUMNS = [f.name for f in fields(AlertRow)]
_JSON_COLUMNS = ("labels", "annotations")


def _alert(row: Sequence[Any]) -> AlertRow:
    values = dict(zip(_ALERT_COLUMNS, row, strict=True))
    for key in _JSON_COLUMNS:
        values[key] = json.loads(values[key])
    return AlertRow(**values)


def open_alerts(store: Store) -> list[AlertRow]:
    """Pending and firing alerts."""
    rows = store.fetch_all(
        f"SELECT {', '.join(_ALERT_COLUMNS)} FROM alerts WHERE state IN ('pending', 'firing')"
    )
    return [_alert(r) for r in rows]


def cursors(store: Store) -> dict[tuple[str, str], int]:
    """(rule, model) -> when it was last evaluated."""
    rows = store.fetch_all("SELECT rule, model, last_eval_us FROM alert_cursors")
    return {(r, m): int(t) for r, m, t in rows}


def next_id(conn: duckdb.DuckDBPyConnection, table: str, column: str) -> int:
    """The next integer id of ``table`` (called under the write lock)."""
    assert table in ("alerts", "incidents", "notification_outbox") and column in ("alert_id", "id")
    row = conn.execute(f"SELECT coalesce(max({column}), 0) + 1 FROM {table}").fetchone()
    return int(row[0]) if row else 1


def upsert_alert(conn: duckdb.DuckDBPyConnection, alert: AlertRow) -> None:
    conn.execute("DELETE FROM alerts WHERE alert_id = ?", [alert.alert_id])
    values = [
        json.dumps(getattr(alert, c)) if c in _JSON_COLUMNS else getattr(alert, c)
        for c in _ALERT_COLUMNS
    ]
    conn.execute(
        f"INSERT INTO alerts VALUES ({', '.join('?' * len(_ALERT_COLUMNS))})", values
    )


def upsert_alerts(conn: duckdb.DuckDBPyConnection, alerts: Sequence[AlertRow]) -> None:
    """Write many alerts in two statements (a round touches every open alert)."""
    if not alerts:
        return
    frame = pd.DataFrame(
        {
            c: [json.dumps(getattr(a, c)) if c in _JSON_COLUMNS else getattr(a, c) for a in alerts]
            for c in _ALERT_COLUMNS
        }
    )
    for c in ("value", "threshold"):
        frame[c] = frame[c].astype("float64")
    for c in ("alert_id", "active_since_us", "fired_us", "resolved_us", "last_active_us",
              "rows_seen", "incident", "notified_us"):  # fmt: skip
        frame[c] = frame[c].astype("Int64")
    conn.register("__alert_rows", frame)
    try:
        conn.execute("DELETE FROM alerts WHERE alert_id IN (SELECT alert_id FROM __alert_rows)")
        conn.execute(f"INSERT INTO alerts SELECT {', '.join(_ALERT_COLUMNS)} FROM __alert_rows")
    finally:
        conn.unregister("__alert_rows")


def open_alerts_in(conn: duckdb.DuckDBPyConnection, incident: int, exclude: Sequence[int]) -> int:
    """How many stored alerts of an incident are pending or firing (``exclude``: ids to skip)."""
    row = conn.execute(
        "SELECT count(*) FROM alerts WHERE incident = ? AND state IN ('pending', 'firing') "
        "AND NOT list_contains(?, alert_id)",
        [incident, list(exclude)],
    ).fetchone()
    return int(row[0]) if row else 0


def delete_alert(conn: duckdb.DuckDBPyConnection, alert_id: int) -> None:
    conn.execute("DELETE FROM alerts WHERE alert_id = ?", [alert_id])


def set_cursors(conn: duckdb.DuckDBPyConnection, keys: Iterable[tuple[str, str]], at_us: int) -> None:
    keys = list(keys)
    if not keys:
        return
    frame = pd.DataFrame(keys, columns=["rule", "model"])
    frame["last_eval_us"] = at_us
    conn.register("__cursor_rows", frame)
    try:
        conn.execute(
            "DELETE FROM alert_cursors USING __cursor_rows c "
            "WHERE alert_cursors.rule = c.rule AND alert_cursors.model = c.model"
        )
        conn.execute("INSERT INTO alert_cursors SELECT rule, model, last_eval_us FROM __cursor_rows")
    finally:
        conn.unregister("__cursor_rows")


def add_alert_event(
    conn: duckdb.DuckDBPyConnection, alert_id: int, at_us: int, event: str, value: float | None,
    threshold: float | None,
) -> None:
    conn.execute(
        "INSERT INTO alert_events VALUES (?, ?, ?, ?, ?)", [alert_id, at_us, event, value, threshold]
    )


def alerts_frame(
    store: Store, *, state: str | None = None, model: str | None = None, rule: str | None = None
) -> pd.DataFrame:
    """Every stored alert, newest first (see ``Service.alerts``)."""
    where, params = [], []
    for column, value in (("state", state), ("model", model), ("rule", rule)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    sql = f"SELECT {', '.join(_ALERT_COLUMNS)} FROM alerts"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY active_since_us DESC, alert_id DESC"
    return _alerts_to_frame([_alert(r) for r in store.fetch_all(sql, params)])


ALERT_FRAME_COLUMNS = [
    "rule", "model", "state", "value", "threshold", "labels", "started_at", "resolved_at",
    "incident", "alert_id", "version", "fired_at", "rows", "annotations", "silenced_by",
    "inhibited_by", "fingerprint",
]  # fmt: skip


def _alerts_to_frame(alerts: Sequence[AlertRow]) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "rule": [a.rule for a in alerts],
            "model": [a.model for a in alerts],
            "state": [a.state for a in alerts],
            "value": pd.array([a.value for a in alerts], dtype="float64"),
            "threshold": pd.array([a.threshold for a in alerts], dtype="float64"),
            "labels": [a.labels for a in alerts],
            "started_at": _times([a.active_since_us for a in alerts]),
            "resolved_at": _times([a.resolved_us for a in alerts]),
            "incident": pd.array([a.incident for a in alerts], dtype="Int64"),
            "alert_id": pd.array([a.alert_id for a in alerts], dtype="int64"),
            "version": [a.version for a in alerts],
            "fired_at": _times([a.fired_us for a in alerts]),
            "rows": pd.array([a.rows_seen for a in alerts], dtype="Int64"),
            "annotations": [a.annotations for a in alerts],
            "silenced_by": [a.silenced_by for a in alerts],
            "inhibited_by": [a.inhibited_by for a in alerts],
            "fingerprint": [a.fingerprint for a in alerts],
        },
        columns=ALERT_FRAME_COLUMNS,
    )
    return frame


def _times(values: Sequence[int | None]) -> pd.Series:
    return pd.Series(
        pd.to_datetime([v if v is not None else None for v in values], unit="us", utc=True),
        dtype="datetime64[us, UTC]",
    )


def alert_events(store: Store, alert_id: int) -> list[tuple[int, str, float | None, float | None]]:
    return store.fetch_all(
        "SELECT at_us, event, value, threshold FROM alert_events WHERE alert_id = ? ORDER BY at_us",
        [alert_id],
    )


# -- incidents --------------------------------------------------------------------------


@dataclass
class IncidentRow:
    id: int
    title: str
    status: str
    opened_us: int
    acknowledged_us: int | None
    resolved_us: int | None
    last_activity_us: int
    models: list[str]


_INCIDENT_COLUMNS = [f.name for f in fields(IncidentRow)]


def _incident(row: Sequence[Any]) -> IncidentRow:
    values = dict(zip(_INCIDENT_COLUMNS, row, strict=True))
    values["models"] = json.loads(values["models"])
    return IncidentRow(**values)


def open_incidents(store: Store) -> list[IncidentRow]:
    rows = store.fetch_all(
        f"SELECT {', '.join(_INCIDENT_COLUMNS)} FROM incidents WHERE status != 'resolved'"
    )
    return [_incident(r) for r in rows]


def get_incident(store: Store, incident_id: int) -> IncidentRow | None:
    row = store.fetch_one(
        f"SELECT {', '.join(_INCIDENT_COLUMNS)} FROM incidents WHERE id = ?", [incident_id]
    )
    return _incident(row) if row else None


def upsert_incident(conn: duckdb.DuckDBPyConnection, incident: IncidentRow) -> None:
    conn.execute("DELETE FROM incidents WHERE id = ?", [incident.id])
    values = [
        json.dumps(incident.models) if c == "models" else getattr(incident, c)
        for c in _INCIDENT_COLUMNS
    ]
    conn.execute(f"INSERT INTO incidents VALUES ({', '.join('?' * len(values))})", values)


def add_incident_event(
    conn: duckdb.DuckDBPyConnection, incident: int, at_us: int, kind: str, detail: str,
    alert_id: int | None = None,
) -> None:
    conn.execute(
        "INSERT INTO incident_events VALUES (?, ?, ?, ?, ?)", [incident, at_us, kind, alert_id, detail]
    )


def acknowledge_incident(store: Store, incident_id: int, at_us: int) -> bool:
    with store.write() as conn:
        row = conn.execute("SELECT status FROM incidents WHERE id = ?", [incident_id]).fetchone()
        if row is None:
            return False
        if row[0] == "open":
            conn.execute(
                "UPDATE incidents SET status = 'acknowledged', acknowledged_us = ? WHERE id = ?",
                [at_us, incident_id],
            )
            add_incident_event(conn, incident_id, at_us, "acknowledged", "acknowledged")
    return True


def incidents_frame(store: Store, *, status: str | None = None) -> pd.DataFrame:
    sql = f"SELECT {', '.join(_INCIDENT_COLUMNS)} FROM incidents"
    params: list[Any] = []
    if status is not None:
        sql += " WHERE status = ?"
        params.append(status)
    incidents = [_incident(r) for r in store.fetch_all(sql + " ORDER BY opened_us DESC, id DESC", params)]
    members = store.fetch_all(
        "SELECT incident, list(rule ORDER BY active_since_us, alert_id) FROM alerts "
        "WHERE incident IS NOT NULL GROUP BY incident"
    )
    rules = {int(i): list(r) for i, r in members}
    return pd.DataFrame(
        {
            "id": pd.array([i.id for i in incidents], dtype="int64"),
            "title": [i.title for i in incidents],
            "status": [i.status for i in incidents],
            "opened_at": _times([i.opened_us for i in incidents]),
            "resolved_at": _times([i.resolved_us for i in incidents]),
            "models": [i.models for i in incidents],
            "alerts": [rules.get(i.id, []) for i in incidents],
            "acknowledged_at": _times([i.acknowledged_us for i in incidents]),
        }
    )


def incident_timeline(store: Store, incident_id: int) -> pd.DataFrame:
    rows = store.fetch_all(
        "SELECT at_us, kind, alert_id, detail FROM incident_events WHERE incident = ? "
        "ORDER BY at_us, rowid",
        [incident_id],
    )
    return pd.DataFrame(
        {
            "at": _times([r[0] for r in rows]),
            "kind": [r[1] for r in rows],
            "alert_id": pd.array([r[2] for r in rows], dtype="Int64"),
            "detail": [r[3] for r in rows],
        }
    )


def incident_alerts(store: Store, incident_id: int) -> pd.DataFrame:
    rows = store.fetch_all(
        f"SELECT {', '.join(_ALERT_COLUMNS)} FROM alerts WHERE incident = ? "
        "ORDER BY active_since_us, alert_id",
        [incident_id],
    )
    return _alerts_to_frame([_alert(r) for r in rows])


# -- silences ---------------------------------------------------------------------------


@dataclass
class SilenceRow:
    id: str
    matchers: dict[str, str]
    starts_us: int
    ends_us: int
    comment: str
    created_by: str | None
    created_us: int


_SILENCE_COLUMNS = [f.name for f in fields(SilenceRow)]


def add_silence(store: Store, silence: SilenceRow) -> None:
    with store.write() as conn:
        values = [
            json.dumps(silence.matchers) if c == "matchers" else getattr(silence, c)
            for c in _SILENCE_COLUMNS
        ]
        conn.execute(f"INSERT INTO silences VALUES ({', '.join('?' * len(values))})", values)


def expire_silence(store: Store, silence_id: str, at_us: int) -> bool:
    with store.write() as conn:
        found = conn.execute("SELECT count(*) FROM silences WHERE id = ?", [silence_id]).fetchone()
        conn.execute(
            "UPDATE silences SET ends_us = least(ends_us, ?) WHERE id = ?", [at_us, silence_id]
        )
    return bool(found and found[0])


def silences(store: Store, *, active_at: int | None = None) -> list[SilenceRow]:
    sql = f"SELECT {', '.join(_SILENCE_COLUMNS)} FROM silences"
    params: list[Any] = []
    if active_at is not None:
        sql += " WHERE starts_us <= ? AND ends_us > ?"
        params = [active_at, active_at]
    rows = store.fetch_all(sql + " ORDER BY created_us, id", params)
    out = []
    for row in rows:
        values = dict(zip(_SILENCE_COLUMNS, row, strict=True))
        values["matchers"] = json.loads(values["matchers"])
        out.append(SilenceRow(**values))
    return out


def silences_frame(store: Store, at_us: int) -> pd.DataFrame:
    rows = silences(store)
    return pd.DataFrame(
        {
            "id": [s.id for s in rows],
            "matchers": [s.matchers for s in rows],
            "starts_at": _times([s.starts_us for s in rows]),
            "ends_at": _times([s.ends_us for s in rows]),
            "comment": [s.comment for s in rows],
            "created_by": [s.created_by for s in rows],
            "active": [s.starts_us <= at_us < s.ends_us for s in rows],
        }
    )


# -- notification outbox ----------------------------------------------------------------


@dataclass
class OutboxItem:
    id: int
    notifier: str
    payload: dict[str, Any]
    attempts: int
    created_at: datetime


def enqueue(
    conn: duckdb.DuckDBPyConnection, notifier: str, dedup_key: str, payload: dict[str, Any],
    at: datetime | int,
) -> bool:
    """Add a notification unless one with ``dedup_key`` exists; whether it was added."""
    at_us = at if isinstance(at, int) else _us(at)
    found = conn.execute(
        "SELECT count(*) FROM notification_outbox WHERE dedup_key = ?", [dedup_key]
    ).fetchone()
    if found and found[0]:
        return False
    conn.execute(
        "INSERT INTO notification_outbox VALUES (?, ?, ?, ?, ?, 0, ?, NULL, NULL, NULL)",
        [next_id(conn, "notification_outbox", "id"), notifier, dedup_key, json.dumps(payload), at_us, at_us],
    )
    return True


def prune_refreshes(conn: duckdb.DuckDBPyConnection, sent_before_us: int) -> None:
    """Delete sent Alertmanager refreshes (keys ``...|refresh|...``) sent before that time."""
    conn.execute(
        "DELETE FROM notification_outbox WHERE sent_us < ? AND dedup_key LIKE '%|refresh|%'",
        [sent_before_us],
    )


def due(store: Store, now: datetime, limit: int = 100) -> list[OutboxItem]:
    """Unsent notifications whose next attempt is due, oldest first."""
    rows = store.fetch_all(
        "SELECT id, notifier, payload, attempts, created_us FROM notification_outbox "
        "WHERE sent_us IS NULL AND gave_up_us IS NULL AND next_attempt_us <= ? "
        "ORDER BY created_us, id LIMIT ?",
        [_us(now), int(limit)],
    )
    return [
        OutboxItem(int(i), n, json.loads(p), int(a), from_micros(int(c))) for i, n, p, a, c in rows
    ]


def mark_sent(store: Store, item_id: int, at: datetime) -> None:
    with store.write() as conn:
        conn.execute(
            "UPDATE notification_outbox SET sent_us = ?, attempts = attempts + 1, "
            "next_attempt_us = NULL WHERE id = ?",
            [_us(at), item_id],
        )


def mark_failed(
    store: Store, item_id: int, at: datetime, error: str, next_attempt_at: datetime | None
) -> None:
    """Record a failed attempt: retry at ``next_attempt_at``, or give up when None."""
    with store.write() as conn:
        conn.execute(
            "UPDATE notification_outbox SET attempts = attempts + 1, last_error = ?, "
            "next_attempt_us = ?, gave_up_us = ? WHERE id = ?",
            [
                error[:2000],
                _us(next_attempt_at) if next_attempt_at is not None else None,
                _us(at) if next_attempt_at is None else None,
                item_id,
            ],
        )


def outbox(store: Store) -> pd.DataFrame:
    """Every notification: id, notifier, status (pending|sent|failed), attempts, created_at,
    sent_at, last_error, and the alert it is about."""
    rows = store.fetch_all(
        "SELECT id, notifier, CASE WHEN sent_us IS NOT NULL THEN 'sent' "
        "WHEN gave_up_us IS NOT NULL THEN 'failed' ELSE 'pending' END, attempts, created_us, "
        "sent_us, last_error, payload FROM notification_outbox ORDER BY id"
    )
    payloads = [json.loads(r[7]) for r in rows]
    return pd.DataFrame(
        {
            "id": pd.array([r[0] for r in rows], dtype="int64"),
            "notifier": [r[1] for r in rows],
            "status": [r[2] for r in rows],
            "attempts": pd.array([r[3] for r in rows], dtype="int64"),
            "created_at": _times([r[4] for r in rows]),
            "sent_at": _times([r[5] for r in rows]),
            "last_error": [r[6] for r in rows],
            "kind": [p.get("status") for p in payloads],
            "rule": [p["alerts"][0]["labels"].get("alertname") if p.get("alerts") else None for p in payloads],
            "incident": [p.get("incident") for p in payloads],
        }
    )


def _us(value: datetime) -> int:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return (value - datetime(1970, 1, 1, tzinfo=UTC)) // pd.Timedelta(microseconds=1)


__all__ = [
    "AlertRow",
    "IncidentRow",
    "OutboxItem",
    "SilenceRow",
    "due",
    "enqueue",
    "mark_failed",
    "mark_sent",
    "outbox",
]
