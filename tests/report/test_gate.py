"""``mlpulse check`` suites: conditions parse with clear errors, values are the alert rules'
values (and scikit-learn's), verdicts compare as true/false, and JUnit XML has the
structure CI servers read."""

from __future__ import annotations

import math
from xml.etree import ElementTree as ET

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, f1_score

from mlpulse.errors import ConfigError
from mlpulse.gate import junit_xml, parse_suite, run_service
from mlpulse.report import compared


def tables(seed: int = 0, n: int = 2000) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)

    def make(shift: float) -> pd.DataFrame:
        score = rng.random(n)
        return pd.DataFrame({"age": rng.normal(40 + shift, 5, n), "tenure": rng.normal(10, 2, n),
                             "score": score, "label": (rng.random(n) < score).astype(int)})  # fmt: skip

    return make(0.0), make(5.0)


class TestParse:
    """Every mistake names the condition and says what is expected."""

    @pytest.mark.parametrize(
        "text,match",
        [
            ("conditions: [accuracy >> 0.8]", r"condition 1 'accuracy >> 0.8': expected"),
            ("conditions: [accuracy >= high]", r"condition 1 'accuracy >= high'.*not a number"),
            ("conditions: [accuracy < true]", r"true/false threshold needs == or !="),
            ("conditions: [accuracy == false]", r"only dataset_drift and drift:<column>"),
            ("conditions: [dataset_drift < 1]", r"dataset_drift is true or false"),
            ("conditions: []", r"'conditions' must be a non-empty list"),
            ("conditions: [{metric: f1, op: '=>', threshold: 1}]", r"op '=>' is not one of"),
            ("conditions: [{metric: f1}]", r"missing op, threshold"),
            ("conditons: [f1 > 0]", r"unknown keys \['conditons'\]"),
            ("conditions: [f1 > 0]\nwindow: 1h", r"window must look like"),
            ("conditions: [f1 > 0\n", r"invalid YAML at line"),
        ],
    )
    def test_bad_suites(self, text: str, match: str) -> None:
        with pytest.raises(ConfigError, match=match):
            parse_suite(text)

    def test_forms(self) -> None:
        suite = parse_suite([">= 1" if False else "f1 >= 0.5", {"metric": "drift:a b", "op": "==",
                             "threshold": False, "name": "a b stable"}])  # fmt: skip
        assert [(c.name, c.metric, c.threshold) for c in suite.conditions] == [
            ("f1 >= 0.5", "f1", 0.5), ("a b stable", "drift:a b", False)]  # fmt: skip


class TestRun:
    """Values, pass/fail and notes on two files (no server)."""

    def test_values_match_sklearn_and_verdicts(self) -> None:
        ref, cur = tables()
        suite = parse_suite("""
conditions:
  - accuracy >= 0.6
  - f1 > 0.99
  - drift:age == true
  - drift:tenure == false
  - dataset_drift == true
  - drift_share < 0.3
  - quality_violations == 0
  - estimate:accuracy > 0.6
""")
        with compared(ref, cur) as (service, (name, version, start, end)):
            out = run_service(suite, service, name, version, start, end)
        frame = out.frame.set_index("condition")
        y, pred = cur["label"], (cur["score"] >= 0.5).astype(int)
        assert frame.loc["accuracy >= 0.6", "value"] == pytest.approx(accuracy_score(y, pred))
        assert frame.loc["f1 > 0.99", "value"] == pytest.approx(f1_score(y, pred))
        assert frame.loc["drift:age == true", "value"] is True
        assert frame["passed"].to_dict() == {
            "accuracy >= 0.6": True, "f1 > 0.99": False, "drift:age == true": True,
            "drift:tenure == false": True, "dataset_drift == true": True,
            "drift_share < 0.3": True, "quality_violations == 0": True,
            "estimate:accuracy > 0.6": True,
        }  # fmt: skip
        # drift_share is the alert rules' value: 1 of the 4 columns tested (age)
        assert frame.loc["drift_share < 0.3", "value"] == pytest.approx(1 / 4)
        assert not out.ok  # f1

    def test_unknown_names_are_bad_suites(self) -> None:
        ref, cur = tables(n=200)
        with compared(ref, cur) as (service, (name, version, start, end)):
            for cond, match in (("accurcy > 0.5", "has no metric 'accurcy'"),
                                ("drift:agee == false", "has no column 'agee'"),
                                ("estimate:mae < 1", "cannot estimate 'mae'")):  # fmt: skip
                with pytest.raises(ConfigError, match=match):
                    run_service(parse_suite([cond]), service, name, version, start, end)

    def test_too_few_rows_fails_with_a_note(self) -> None:
        ref, cur = tables(n=300)
        suite = parse_suite({"min_rows": 1000, "conditions": ["accuracy > 0"]})
        with compared(ref, cur) as (service, (name, version, start, end)):
            out = run_service(suite, service, name, version, start, end)
        row = out.frame.iloc[0]
        assert not row["passed"] and row["note"] == "too few rows: 300 < min_rows 1000"

    def test_no_labels_fails_with_a_note(self) -> None:
        ref, cur = tables(n=300)
        with compared(ref, cur.drop(columns="label")) as (service, (name, version, start, end)):
            out = run_service(parse_suite(["accuracy > 0"]), service, name, version, start, end)
        assert not out.frame["passed"].iloc[0] and "too few rows: 0" in out.frame["note"].iloc[0]
        assert math.isnan(out.frame["value"].iloc[0])


class TestJUnit:
    """The XML is JUnit's shape: testsuites > testsuite > testcase (+ failure)."""

    def test_structure(self) -> None:
        ref, cur = tables(n=500)
        suite = parse_suite({"name": "gate <&>", "conditions": ["accuracy >= 0.6", "f1 > 0.99"]})
        with compared(ref, cur) as (service, (name, version, start, end)):
            out = run_service(suite, service, name, version, start, end)
        root = ET.fromstring(junit_xml(out).encode())
        assert root.tag == "testsuites" and root.get("tests") == "2" and root.get("failures") == "1"
        [ts] = root.findall("testsuite")
        assert ts.get("name") == "gate <&>" and ts.get("failures") == "1" and ts.get("errors") == "0"
        assert float(ts.get("time")) >= 0 and ts.get("timestamp")
        props = {p.get("name"): p.get("value") for p in ts.find("properties")}
        assert props["model"] == "model" and props["version"] == "current"
        cases = ts.findall("testcase")
        assert [c.get("name") for c in cases] == ["accuracy >= 0.6", "f1 > 0.99"]
        assert all(c.get("classname") == "mlpulse.model.current" for c in cases)
        assert cases[0].find("failure") is None
        failure = cases[1].find("failure")
        assert failure is not None and "does not satisfy f1 > 0.99" in failure.get("message")
