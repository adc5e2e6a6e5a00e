"""From data to a delivered page: a classifier trained on real data (scikit-learn's breast
cancer set) serves its held-out half for ten hours; its labels go wrong for three. Rules are
evaluated live every ten minutes and the delivery worker sends what they queue to a real
Alertmanager and a local webhook receiver: one firing and one resolved notification, the
alert visible in Alertmanager's API while it fires."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import mlpulse
from mlpulse.alerts.delivery import DeliveryWorker
from mlpulse.store import alerts as alert_store

T0 = pd.Timestamp("2026-04-06T00:00:00Z")
BAD = (pd.Timedelta("4h"), pd.Timedelta("7h"))


def _serve(pulse) -> None:
    data = load_breast_cancer(as_frame=True)
    features = list(data.feature_names[:6])
    x_train, x_test, y_train, y_test = train_test_split(
        data.frame[features], data.target, test_size=0.5, random_state=0, stratify=data.target
    )
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(x_train, y_train)
    reference = x_train.assign(score=clf.predict_proba(x_train)[:, 1], label=y_train.to_numpy())
    model = pulse.model("cancer", task="binary", prediction="score", label="label",
                        reference=reference, recommended_rules=False)  # fmt: skip
    rng = np.random.default_rng(3)
    n = 10 * 180  # one request every 20 s
    rows = rng.integers(0, len(x_test), n)
    ts = T0 + pd.to_timedelta(np.arange(n) * 20, unit="s")
    traffic = x_test.iloc[rows].reset_index(drop=True)
    traffic["score"] = clf.predict_proba(traffic[features])[:, 1]
    traffic["id"] = [f"q{i}" for i in range(n)]
    traffic["ts"] = ts
    labels = y_test.to_numpy()[rows]
    bad = (ts >= T0 + BAD[0]) & (ts < T0 + BAD[1])
    labels = np.where(bad, 1 - labels, labels)  # a labelling bug upstream
    model.log_batch(traffic, id="id", timestamp="ts")
    model.log_feedback_batch(pd.DataFrame({"id": traffic["id"], "label": labels}), id="id", label="label")


def test_planted_degradation_pages_once_and_resolves(alertmanager, receiver) -> None:
    am, _ = alertmanager
    hook = receiver()
    with mlpulse.connect(":memory:") as pulse:
        _serve(pulse)
        pulse.rules.load(f"""
rules:
  - name: cancer-accuracy-low
    model: cancer
    metric: accuracy
    window: 1h
    op: "<"
    baseline: reference
    for: 20m
    min_rows: 100
    labels: {{severity: page, team: ml}}
    annotations: {{summary: "{{{{model}}}} accuracy {{{{value}}}} below {{{{threshold}}}}"}}
notifiers:
  - {{name: hook, type: webhook, url: "{hook.url}/hook"}}
  - {{name: am, type: alertmanager, url: "{am.url}"}}
""")
        service = pulse.service
        service.alert_settings = replace(service.alert_settings, interval=600.0)
        worker = DeliveryWorker(service.store, lambda: alert_store.load_notifiers(service.store))
        seen_in_alertmanager = False
        for at in pd.date_range(T0 + pd.Timedelta("1h"), T0 + pd.Timedelta("10h"), freq="10min"):
            pulse.evaluate(at=at)
            worker.run_once()
            firing = pulse.alerts(state="firing")
            if len(firing) and not seen_in_alertmanager:
                shown = [a for a in am.alerts() if a["labels"].get("alertname") == "cancer-accuracy-low"]
                assert shown and shown[0]["labels"]["team"] == "ml" and shown[0]["labels"]["model"] == "cancer"
                assert shown[0]["annotations"]["summary"].startswith("cancer accuracy ")
                seen_in_alertmanager = True
        assert seen_in_alertmanager
        alerts = pulse.alerts()
        assert len(alerts) == 1  # one alert over the whole episode
        alert = alerts.iloc[0]
        assert T0 + BAD[0] < alert["fired_at"] < T0 + BAD[0] + pd.Timedelta("1h")
        assert T0 + BAD[1] < alert["resolved_at"] <= T0 + BAD[1] + pd.Timedelta("1h")
        bodies = [r.json for r in hook.requests]
        assert [b["status"] for b in bodies] == ["firing", "resolved"]  # once each, no spam
        assert bodies[0]["version"] == "4" and bodies[0]["alerts"][0]["labels"]["alertname"] == "cancer-accuracy-low"
        sent = pulse.notifications()
        assert (sent["status"] == "sent").all()
        # clean hours before the bug never fired: the alert started after the bug began
        assert alert["started_at"] >= T0 + BAD[0]
