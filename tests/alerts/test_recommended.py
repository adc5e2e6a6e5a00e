"""The recommended rules: what registration with a reference creates, and that each one
fires on the trouble it names and stays quiet through what is normal (label lag)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlpulse.alerts.baseline import check_baseline
from mlpulse.alerts.evaluator import Settings
from mlpulse.alerts.recommended import recommended_for, recommended_rules
from mlpulse.alerts.rules import TEMPLATE_NAMES, parse_rules, render
from mlpulse.schema import MAX_MODEL_NAME, ModelSpec

BASE = pd.Timestamp("2026-01-05T00:00:00Z")
HOUR = pd.Timedelta(hours=1)


def spec(task: str = "binary", name: str = "churn") -> ModelSpec:
    return ModelSpec(name=name, task=task, prediction="score", features={"age": "numeric"})


def reference(ref: Any, n: int = 500) -> pd.DataFrame:
    """Features (``plan``, ``age``), ``score`` and the label ``churned``."""
    return ref.binary_rows(n, seed=11).drop(columns=["id", "ts", "latency_ms"])


def names(rules: list[Any]) -> list[str]:
    return [r.name.split(":", 1)[1] for r in rules]


class TestRuleSet:
    """Which rules a model gets, and that they are ordinary, valid, editable rules."""

    def test_binary(self) -> None:
        rules = recommended_rules(spec(), ["age", "score", "label"])
        assert names(rules) == [
            "accuracy-vs-reference",
            "roc_auc-vs-reference",
            "estimated-roc_auc-vs-reference",
            "drift-share",
            "data-quality",
            "latency-p99",
            "no-traffic",
            "labels-stopped",
        ]
        by_name = {r.name: r for r in rules}
        accuracy = by_name["churn:accuracy-vs-reference"]
        assert (accuracy.metric, accuracy.op, accuracy.baseline, accuracy.band) == (
            "accuracy", "<", "reference", 4.0,
        )  # fmt: skip
        assert by_name["churn:estimated-roc_auc-vs-reference"].metric == "estimate:roc_auc"
        assert by_name["churn:drift-share"].threshold == 0.3

    def test_multiclass_and_regression(self) -> None:
        multi = recommended_rules(spec("multiclass"), ["age", "score", "label"])
        assert [r.metric for r in multi[:2]] == ["accuracy", "f1_macro"]
        assert not any(r.metric.startswith("estimate:") for r in multi)  # CBPE is binary
        regression = recommended_rules(spec("regression"), ["age", "score", "label"])
        assert [(r.metric, r.op) for r in regression[:2]] == [("mae", ">"), ("rmse", ">")]

    def test_without_labels_in_the_reference(self) -> None:
        """No label, no performance rules: only what the reference's features allow."""
        rules = recommended_rules(spec(), ["age", "score"])
        assert names(rules) == ["drift-share", "data-quality", "latency-p99", "no-traffic"]

    def test_without_a_reference(self) -> None:
        assert recommended_rules(spec(), None) == []
        assert recommended_rules(spec(), []) == []

    @pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
    def test_valid_tagged_and_round_trip(self, task: str) -> None:
        rules = recommended_rules(spec(task), ["age", "score", "label"])
        assert parse_rules([r.to_dict() for r in rules]).rules == rules
        context: dict[str, Any] = dict.fromkeys(TEMPLATE_NAMES, 1.0) | {"labels": {}}
        for r in rules:
            check_baseline(r)
            assert r.source == "recommended" and r.model == "churn"
            assert r.labels["recommended"] == "true"
            assert r.labels["severity"] in ("warning", "page")
            for text in r.annotations.values():
                assert "{{" not in render(text, context), (r.name, text)
            assert r.annotations["summary"]

    def test_names_fit_the_limit_and_stay_distinct(self) -> None:
        long_a, long_b = "a" * 200, "a" * 199 + "b"
        a = recommended_rules(spec(name=long_a), ["score", "label"])
        b = recommended_rules(spec(name=long_b), ["score", "label"])
        assert all(len(r.name) <= MAX_MODEL_NAME for r in a + b)
        assert not {r.name for r in a} & {r.name for r in b}

    def test_stored_listed_and_editable(self, pulse, ref) -> None:
        pulse.model(
            "churn", task="binary", reference=reference(ref), prediction="score", label="churned"
        )
        rules = recommended_for(pulse.service, "churn", "v1")
        assert len(rules) == 8
        pulse.rules.load(rules)
        listed = pulse.rules.list().set_index("name")
        assert set(listed.index) >= {r.name for r in rules}
        assert set(listed.loc[[r.name for r in rules], "source"]) == {"recommended"}
        edited = rules[0].to_dict() | {"band": 4.0, "source": "user"}
        pulse.rules.load([edited])
        stored = pulse.rules.list().set_index("name").loc[rules[0].name, "rule"]
        assert stored["band"] == 4.0

    def test_created_at_registration_with_a_reference(self, pulse, ref) -> None:
        """Once, with the first reference; a user's edit survives a new reference; one flag
        turns them off."""
        pulse.model("plain", task="binary", prediction="score")
        assert pulse.rules.list().empty
        pulse.model(
            "churn", task="binary", reference=reference(ref), prediction="score", label="churned"
        )
        listed = pulse.rules.list()
        assert sorted(listed.name) == sorted(
            r.name for r in recommended_for(pulse.service, "churn", "v1")
        )
        assert set(listed.source) == {"recommended"}
        pulse.rules.load([listed.rule[0] | {"band": 4.0}])
        pulse.model("churn", "v2", reference=reference(ref, 300))
        after = pulse.rules.list().set_index("name")
        assert len(after) == len(listed) and after.loc[listed.name[0], "rule"]["band"] == 4.0
        pulse.model(
            "quiet",
            task="binary",
            reference=reference(ref),
            prediction="score",
            label="churned",
            recommended_rules=False,
        )
        assert not pulse.rules.list().model.eq("quiet").any()

    def test_recommended_for_a_model_without_reference(self, pulse) -> None:
        pulse.model("churn", task="binary", prediction="score")
        assert recommended_for(pulse.service, "churn", "v1") == []


# -- each rule on its own trouble -----------------------------------------------------------


def hourly(pulse: Any) -> Any:
    pulse.service.alert_settings = Settings(interval=3600.0)
    return pulse


def only(pulse: Any, rows: pd.DataFrame, rule: str, **register: Any) -> Any:
    """Register ``churn`` with ``rows`` as reference and store only the recommended
    ``churn:<rule>``."""
    model = pulse.model(
        "churn",
        task="binary",
        reference=rows,
        prediction="score",
        label="churned",
        recommended_rules=False,
        **register,
    )
    found = [r for r in recommended_for(pulse.service, "churn", "v1") if r.name == f"churn:{rule}"]
    assert found, rule
    pulse.rules.load(found)
    return model


def traffic(ref: Any, hours: int, per_hour: int = 40, seed: int = 1, **kw: Any) -> pd.DataFrame:
    """Rows over ``[BASE, BASE + hours)`` (with their label ``churned``)."""
    rows = ref.binary_rows(hours * per_hour, seed=seed, span=hours * HOUR, prefix=f"s{seed}_", **kw)
    return rows.rename(columns={"ts": "timestamp"})


def log(model: Any, rows: pd.DataFrame) -> None:
    model.log_batch(rows.drop(columns="churned"), id="id", timestamp="timestamp")


def states(pulse: Any) -> list[tuple[str, str]]:
    return [(a.rule, a.state) for a in pulse.alerts().itertuples()]


class TestNoTraffic:
    """Volume dropping to zero pages; a model that keeps serving does not."""

    def test_fires_when_traffic_stops(self, pulse, ref) -> None:
        hourly(pulse)
        model = only(pulse, reference(ref), "no-traffic")
        log(model, traffic(ref, 4))
        fired_at = []
        for h in range(2, 8):
            pulse.evaluate(at=BASE + h * HOUR)
            fired_at += [h for _, s in states(pulse) if s == "firing"][:1]
        # the last hour with traffic is [3h, 4h); [4h, 5h) is empty (pending), then for 1h
        assert fired_at[0] == 6

    def test_silent_before_the_first_prediction(self, pulse, ref) -> None:
        """A model registered today and deployed tomorrow is not 'down' in between."""
        hourly(pulse)
        model = only(pulse, reference(ref), "no-traffic")
        for h in range(1, 5):
            pulse.evaluate(at=BASE + h * HOUR)
        log(model, traffic(ref, 2).assign(timestamp=lambda t: t.timestamp + 5 * HOUR))
        pulse.evaluate(at=BASE + 6 * HOUR)
        assert states(pulse) == []


class TestLabelsStopped:
    """Late labels are normal; labels that stop arriving are not."""

    def test_lag_is_quiet_and_a_stop_fires(self, pulse, ref) -> None:
        """Traffic for 56 hours, labels 30 min to 4 h late, evaluated live every hour (each
        label logged when it arrives); labels stop for the predictions after hour 20."""
        hourly(pulse)
        model = only(pulse, reference(ref), "labels-stopped")
        rows = traffic(ref, 56, per_hour=10)
        log(model, rows)
        lag = pd.to_timedelta(np.random.default_rng(2).uniform(30, 240, len(rows)), unit="m")
        feedback = pd.DataFrame(
            {"id": rows.id, "churned": rows.churned, "timestamp": rows.timestamp + lag}
        )
        feedback = feedback[rows.timestamp < BASE + 20 * HOUR]
        first = None
        for h in range(1, 57):
            at = BASE + h * HOUR
            arrived = feedback[(feedback.timestamp < at) & (feedback.timestamp >= at - HOUR)]
            if len(arrived):
                model.log_feedback_batch(arrived, id="id", label="churned", timestamp="timestamp")
            out = pulse.evaluate(at=at)
            if first is None and (out.state == "firing").any():
                first = h
        # the last labeled prediction is at ~20h: a 24h window holds none from ~44h, and
        # the coverage stays zero for 6 hours ('for') before it fires
        assert first is not None and 44 + 6 <= first <= 44 + 6 + 1, first


class TestLatency:
    """p99 latency above a second fires; a model that logs no latency is never judged."""

    def test_slow_fires(self, pulse, ref) -> None:
        hourly(pulse)
        model = only(pulse, reference(ref), "latency-p99")
        rows = traffic(ref, 3, per_hour=200)
        log(model, rows.assign(latency_ms=rows.latency_ms * 1000))
        for h in (1, 2, 3):
            pulse.evaluate(at=BASE + h * HOUR)
        assert states(pulse) == [("churn:latency-p99", "firing")]

    def test_no_latency_logged(self, pulse, ref) -> None:
        hourly(pulse)
        model = only(pulse, reference(ref), "latency-p99")
        log(model, traffic(ref, 3, per_hour=200).drop(columns="latency_ms"))
        out = [pulse.evaluate(at=BASE + h * HOUR) for h in (1, 2, 3)]
        assert states(pulse) == []
        assert out[-1].value.isna().all()


class TestDriftShare:
    """Most columns moving at once is a dataset drift; one column alone is not."""

    def test_everything_shifted_fires(self, pulse, ref) -> None:
        hourly(pulse)
        model = only(pulse, reference(ref, 2000), "drift-share")
        rows = traffic(ref, 3, per_hour=300)
        shifted = rows.assign(age=rows.age + 15, score=np.clip(rows.score + 0.3, 0, 1), plan="free")
        log(model, shifted)
        for h in (1, 2, 3):
            pulse.evaluate(at=BASE + h * HOUR)
        assert states(pulse) == [("churn:drift-share", "firing")]
