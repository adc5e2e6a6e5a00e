"""Evaluation with Prometheus semantics on a planted degradation: pending after the breach,
firing after ``for``, resolved when the data recovers; replay, restarts, silences,
inhibition, flapping, incidents and the outbox."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

import mlpulse
from mlpulse.alerts.evaluator import evaluate
from mlpulse.alerts.rules import parse_rules
from mlpulse.errors import RuleError

T0 = pd.Timestamp("2026-03-02T00:00:00Z")
BAD_FROM, BAD_UNTIL = T0 + pd.Timedelta("5h"), T0 + pd.Timedelta("8h")


def _traffic(pulse, *, flap: bool = False, quality_break: bool = False) -> None:
    """12 hours, one prediction every 15 s; labels flipped in [5h, 8h) (or in alternate
    10-minute blocks with ``flap``); ``quality_break`` sends NaN ages in the bad hours."""
    rng = np.random.default_rng(7)
    n = 12 * 240
    ts = T0 + pd.to_timedelta(np.arange(n) * 15, unit="s")
    score = rng.random(n)
    y = (rng.random(n) < score).astype(int)
    bad = (ts >= BAD_FROM) & (ts < BAD_UNTIL)
    if flap:
        bad = ((ts - T0).total_seconds() // 600 % 2 == 1) & (ts >= BAD_FROM)
    y = np.where(bad, 1 - y, y)
    age = rng.normal(40, 5, n)
    if quality_break:
        age = np.where(bad, np.nan, age)
    frame = pd.DataFrame({"id": [f"r{i}" for i in range(n)], "ts": ts, "score": score, "age": age})
    reference = pd.DataFrame({"score": score[:1000], "age": rng.normal(40, 5, 1000), "y": y[:1000]})
    model = pulse.model("churn", task="binary", prediction="score", label="y", reference=reference,
                        recommended_rules=False)  # fmt: skip
    model.log_batch(frame, id="id", timestamp="ts")
    model.log_feedback_batch(pd.DataFrame({"id": frame["id"], "y": y}), id="id", label="y")


RULES = """
rules:
  - name: churn-accuracy-low
    model: churn
    metric: accuracy
    window: 1h
    op: "<"
    threshold: 0.6
    for: 10m
    min_rows: 100
    labels: {severity: page}
    annotations: {summary: "{{model}} accuracy {{value}} < {{threshold}}"}
notifiers:
  - {name: ops, type: webhook, url: "http://127.0.0.1:9/hook"}
"""


@pytest.fixture
def pulse():
    p = mlpulse.connect(":memory:")
    yield p
    p.close()


def _every(pulse, start: str, end: str, step: str = "5min") -> list[pd.DataFrame]:
    return [
        pulse.evaluate(at=t)
        for t in pd.date_range(T0 + pd.Timedelta(start), T0 + pd.Timedelta(end), freq=step)
    ]


def test_planted_degradation_fires_once_after_for_and_resolves(pulse):
    _traffic(pulse)
    pulse.rules.load(RULES)
    rounds = _every(pulse, "1h", "11h")
    states = [r["state"].iloc[0] for r in rounds]
    # inactive -> pending -> firing -> resolved, then inactive (a resolved alert is history)
    changes = [s for i, s in enumerate(states) if i == 0 or s != states[i - 1]]
    assert changes == ["inactive", "pending", "firing", "resolved", "inactive"]
    alerts = pulse.alerts()
    assert len(alerts) == 1  # one alert, not one per round
    alert = alerts.iloc[0]
    # the 1-h accuracy falls under 0.6 some time after 5h; firing comes `for` (10m) later
    assert BAD_FROM < alert["started_at"] < BAD_FROM + pd.Timedelta("1h")
    assert alert["fired_at"] - alert["started_at"] >= pd.Timedelta("10min")
    assert BAD_UNTIL < alert["resolved_at"] <= BAD_UNTIL + pd.Timedelta("1h")
    assert (
        alert["labels"]["severity"] == "page"
        and alert["labels"]["alertname"] == "churn-accuracy-low"
    )
    assert alert["annotations"]["summary"].startswith("churn accuracy 0.")
    # exactly one firing and one resolved notification were queued for the notifier
    outbox = pulse.notifications()
    assert list(outbox["kind"]) == ["firing", "resolved"]
    assert set(outbox["notifier"]) == {"ops"}
    incidents = pulse.incidents()
    assert len(incidents) == 1 and incidents["status"].iloc[0] == "resolved"
    incident = pulse.incident(int(incidents["id"].iloc[0]))
    kinds = list(incident.timeline["kind"])
    assert (
        kinds[0] == "opened"
        and "firing" in kinds
        and "resolved" in kinds
        and kinds[-1] in ("closed", "notified")
    )


def test_evaluate_at_replays_what_a_live_evaluator_would_have_said(pulse):
    _traffic(pulse)
    pulse.rules.load(RULES)
    live = _every(pulse, "4h", "7h", step="30s")
    fired_live = pulse.alerts()["fired_at"].iloc[0]
    with mlpulse.connect(":memory:") as fresh:
        _traffic(fresh)
        fresh.rules.load(RULES)
        at = fired_live
        once = fresh.evaluate(at=at)
        assert once["state"].iloc[0] == "firing"
        assert fresh.alerts()["started_at"].iloc[0] == pulse.alerts()["started_at"].iloc[0]
        before = fresh.evaluate(
            at=at - pd.Timedelta("30s")
        )  # earlier than the stored state: a dry replay
        assert before["state"].iloc[0] == "pending"
    assert live[-1]["state"].iloc[0] == "firing"


def test_restart_between_pending_and_firing(tmp_path):
    path = str(tmp_path / "pulse.duckdb")
    with mlpulse.connect(path) as p:
        _traffic(p)
        p.rules.load(RULES)
        states = [s["state"].iloc[0] for s in _every(p, "5h", "5h30min", step="30s")]
        first_pending = states.index("pending")
        at_pending = T0 + pd.Timedelta("5h") + pd.Timedelta(seconds=30 * first_pending)
        started = p.alerts()["started_at"].iloc[0]
    # the process dies; a new one evaluates 3 minutes later and goes on
    with mlpulse.connect(path) as p:
        rounds = _every(p, "5h30min", "6h", step="30s")
        states = [r["state"].iloc[0] for r in rounds]
        alerts = p.alerts()
        assert len(alerts) == 1 and alerts["started_at"].iloc[0] == started
        assert "firing" in states
        assert alerts["fired_at"].iloc[0] - started >= pd.Timedelta("10min")
        assert at_pending <= started + pd.Timedelta("30s")


def test_silence_sends_nothing(pulse):
    _traffic(pulse)
    pulse.rules.load(RULES)
    silence = pulse.silence(
        {"model": "churn", "severity": "page"}, duration="30d", comment="planned", start=T0
    )
    _every(pulse, "4h", "11h", step="10min")
    alerts = pulse.alerts()
    assert len(alerts) == 1 and alerts["silenced_by"].iloc[0] == silence
    assert len(pulse.notifications()) == 0
    timeline = pulse.incident(int(alerts["incident"].iloc[0])).timeline
    assert "silenced" in set(timeline["kind"])
    pulse.expire_silence(silence)
    assert not pulse.silences()["active"].iloc[0]


def _evaluate_every_10_minutes(pulse) -> None:
    """Live evaluations 10 minutes apart (the flapping blocks' length), so each one sees a
    whole good or bad block."""
    service = pulse.service
    service.alert_settings = replace(service.alert_settings, interval=600.0)


def test_flapping_metric_does_not_spam(pulse):
    _traffic(pulse, flap=True)
    _evaluate_every_10_minutes(pulse)
    pulse.rules.load(
        RULES.replace("window: 1h", "window: 10m").replace("min_rows: 100", "min_rows: 20")
    )
    rounds = _every(pulse, "5h", "11h", step="10min")
    states = [r["state"].iloc[0] for r in rounds]
    assert states.count("pending") >= 15  # the condition flaps every evaluation
    # so with for: 10m the alert never fires (a rule without `for` would fire and resolve
    # with every block)
    assert (pulse.alerts()["state"] != "firing").all()
    assert pulse.alerts()["fired_at"].isna().all()
    assert len(pulse.notifications()) == 0


def test_keep_firing_for_bridges_gaps(pulse):
    _traffic(pulse, flap=True)
    _evaluate_every_10_minutes(pulse)
    rules = RULES.replace("window: 1h", "window: 10m").replace("min_rows: 100", "min_rows: 20")
    rules = rules.replace("for: 10m", "for: 0\n    keep_firing_for: 15m")
    pulse.rules.load(rules)
    _every(pulse, "5h", "9h", step="10min")
    alerts = pulse.alerts()
    assert len(alerts) == 1  # one alert across the flapping blocks
    assert (pulse.notifications()["kind"] == "firing").sum() == 1


def test_quality_alert_inhibits_accuracy_alert(pulse):
    _traffic(pulse, quality_break=True)
    pulse.rules.load(_with_quality_rule())
    _every(pulse, "4h", "7h", step="5min")
    alerts = pulse.alerts().set_index("rule")
    assert alerts.loc["churn-age-missing", "state"] == "firing"
    assert alerts.loc["churn-accuracy-low", "inhibited_by"] == "churn-age-missing"
    sent = pulse.notifications()
    assert list(sent["rule"]) == ["churn-age-missing"]  # the cause is paged, not its effect
    incident = pulse.incident(int(alerts.loc["churn-age-missing", "incident"]))
    assert "inhibited" in set(incident.timeline["kind"])
    assert set(incident.alerts["rule"]) == {"churn-age-missing", "churn-accuracy-low"}


def _with_quality_rule() -> str:
    head, notifiers = RULES.split("notifiers:")
    return (
        head
        + """  - name: churn-age-missing
    model: churn
    metric: "quality:age"
    window: 1h
    op: ">"
    threshold: 0
notifiers:"""
        + notifiers
    )


def test_repeat_is_not_duplicate_and_rounds_are_idempotent(pulse):
    _traffic(pulse)
    pulse.rules.load(RULES)
    at = T0 + pd.Timedelta("7h")
    pulse.evaluate(at=at)
    pulse.evaluate(at=at)  # the same time again changes nothing
    assert len(pulse.notifications()) == 1
    assert len(pulse.alerts()) == 1


def test_dry_run_stores_nothing(pulse):
    _traffic(pulse)
    service = pulse.service
    out = evaluate(service, T0 + pd.Timedelta("7h"), rules=parse_rules(RULES).rules, persist=False)
    assert out["state"].iloc[0] == "firing"
    assert (
        len(pulse.alerts()) == 0
        and len(pulse.notifications()) == 0
        and len(pulse.rules.list()) == 0
    )


def test_min_rows_and_unknown_model_are_not_judged(pulse):
    _traffic(pulse)
    pulse.rules.load("""
rules:
  - {name: few, model: churn, metric: accuracy, op: "<", threshold: 2, min_rows: 100000}
  - {name: ghost, model: nobody, metric: accuracy, op: "<", threshold: 2}
""")
    out = pulse.evaluate(at=T0 + pd.Timedelta("7h")).set_index("rule")
    assert out.loc["few", "state"] == "inactive" and "min_rows" in out.loc["few", "note"]
    assert out.loc["ghost", "state"] == "inactive" and "unknown model" in out.loc["ghost", "note"]


@pytest.mark.parametrize(
    ("rule", "field"),
    [
        ({"name": "a", "model": "churn", "metric": "accuracy", "op": "<"}, "threshold"),
        ({"name": "a", "model": "churn", "metric": "accuracy", "op": "~", "threshold": 1}, "op"),
        (
            {
                "name": "a",
                "model": "churn",
                "metric": "accuracy",
                "op": "<",
                "threshold": 1,
                "for": "soon",
            },
            "for",
        ),
        (
            {
                "name": "a",
                "model": "churn",
                "metric": "accuracy",
                "op": "<",
                "threshold": 1,
                "treshold": 1,
            },
            "treshold",
        ),
        (
            {
                "name": "a",
                "model": "churn",
                "metric": "roc_auc",
                "op": "<",
                "threshold": 1,
                "min_rows": -1,
            },
            "min_rows",
        ),
        ({"name": "a", "model": "churn", "metric": "nope", "op": "<", "threshold": 1}, "metric"),
        ({"name": "a", "model": "churn", "metric": "drift:", "op": "<", "threshold": 1}, "metric"),
        (
            {"name": "a/b", "model": "churn", "metric": "accuracy", "op": "<", "threshold": 1},
            "name",
        ),
        (
            {
                "name": "a",
                "model": "churn",
                "metric": "accuracy",
                "op": "<",
                "threshold": 1,
                "annotations": {"summary": "{{oops}}"},
            },
            "annotations.summary",
        ),
    ],
)
def test_bad_rules_name_the_rule_and_field(pulse, rule, field):
    _traffic(pulse)
    with pytest.raises(RuleError, match=rf"field '{field}'"):
        pulse.rules.load([rule])
    assert len(pulse.rules.list()) == 0


def test_rules_round_trip_and_delete(pulse):
    pulse.rules.load(RULES)
    listed = pulse.rules.list()
    assert list(listed["name"]) == ["churn-accuracy-low"]
    assert listed["rule"].iloc[0]["for"] == 600.0
    assert [n["name"] for n in pulse.rules.notifiers()] == ["ops"]
    assert pulse.rules.delete("churn-accuracy-low") == 1
    assert len(pulse.rules.list()) == 0
