"""``mlpulse prometheus-rules``: the rule file passes ``promtool check rules`` for any model
name, and its alerts fire (and only for the model) under ``promtool test rules``."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from mlpulse.cli import main
from mlpulse.errors import ConfigError
from mlpulse.export.prometheus_rules import rule_file, rule_file_yaml

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool not installed (Debian: apt-get install prometheus); it is the reference "
    "checker of rule files",
)

#: Names that break naive quoting: PromQL and YAML quotes, backslashes, a newline, Grafana
#: and Go template syntax, PromQL operators, non-ASCII.
HOSTILE = [
    "churn",
    'we"ird\\ $version ${datasource} [[window]] {x}\nline 2 模型',
    '"} or vector(1) or {a="',
    "{{ $labels.model }} '; --",
    "\\",
]


def promql_string(value: str) -> str:
    """A PromQL/Go double-quoted string, written here independently of mlpulse."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run(
        [PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


@needs_promtool
class TestPromtoolCheck:
    """``promtool check rules`` accepts the file for ordinary and hostile model names."""

    @pytest.mark.parametrize("model", HOSTILE)
    def test_check_rules(self, tmp_path: Path, model: str) -> None:
        path = tmp_path / "rules.yml"
        path.write_text(
            rule_file_yaml(model, below={"accuracy": 0.9, "f1": 0.8}, above={"rmse": 3.5}),
            encoding="utf-8",
        )
        done = promtool("check", "rules", str(path), cwd=tmp_path)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "SUCCESS: 14 rules found" in done.stdout

    def test_group_names_round_trip(self) -> None:
        """The YAML keeps the model name exactly (the group names carry it)."""
        model = HOSTILE[1]
        loaded = yaml.safe_load(rule_file_yaml(model))
        assert [g["name"] for g in loaded["groups"]] == [
            f"mlpulse {model}: recording",
            f"mlpulse {model}: alerts",
        ]


def _unit_test_file(model: str) -> dict:
    """Series for ``model`` and a decoy model over two hours, and the alerts expected."""
    m = promql_string(model)
    decoy = '"decoy"'

    def series(metric: str, labels: str, values: str) -> dict:
        return {"series": f"{metric}{{{labels}}}", "values": values}

    inputs = []
    for who, accuracy in ((m, "0.95x10 0.8x110"), (decoy, "0.5x120")):
        inputs += [
            # accuracy falls below 0.9 at 11m: pending, firing 15m later (26m)
            series(
                "mlpulse_metric",
                f'model={who}, version="1", name="accuracy", window="1h"',
                accuracy,
            ),
            series(
                "mlpulse_metric", f'model={who}, version="1", name="rmse", window="1h"', "2x120"
            ),
            series(
                "mlpulse_estimate",
                f'model={who}, version="1", name="accuracy", window="1h"',
                "0.95x120",
            ),
            series(
                "mlpulse_drift_detected", f'model={who}, version="1", column="age"', "0x30 1x90"
            ),
            series(
                "mlpulse_quality_violations",
                f'model={who}, version="1", column="age", rule="not_null"',
                "0x120",
            ),
            series(
                "mlpulse_latency_seconds", f'model={who}, version="1", quantile="0.99"', "0.2x120"
            ),
        ]
    # the model's predictions stop after an hour; the decoy's go on
    inputs.append(series("mlpulse_predictions_total", f'model={m}, version="1"', "0+10x60 600x60"))
    inputs.append(series("mlpulse_predictions_total", f'model={decoy}, version="1"', "0+10x120"))

    base = {"model": model, "version": "1"}

    def alert(name: str, at: str, labels: dict | None, summary: str | None = None) -> dict:
        expected = []
        if labels is not None:
            annotations = {} if summary is None else {"summary": summary}
            expected = [{"exp_labels": labels, "exp_annotations": annotations}]
        return {"eval_time": at, "alertname": name, "exp_alerts": expected}

    accuracy = {**base, "name": "accuracy", "window": "1h", "severity": "critical"}
    drift = {**base, "column": "age", "severity": "warning"}
    tests = [
        {
            "interval": "1m",
            "input_series": inputs,
            "alert_rule_test": [
                alert("MlpulseAccuracyLow", "20m", None),  # pending, not yet for 15m
                alert(
                    "MlpulseAccuracyLow",
                    "30m",
                    accuracy,
                    f"{model} 1: accuracy 0.8 below 0.9 over the last 1h",
                ),
                alert("MlpulseEstimatedAccuracyLow", "30m", None),  # the estimate is fine
                alert("MlpulseRmseHigh", "30m", None),  # 2 is not above 3.5
                alert("MlpulseDriftDetected", "40m", None),
                alert("MlpulseDriftDetected", "50m", drift, f"{model} 1: column age drifted"),
                alert("MlpulseQualityViolations", "50m", None),
                alert("MlpulseLatencyHigh", "50m", None),
                alert("MlpulseMetricsAbsent", "50m", None),
                alert("MlpulseNoPredictions", "70m", None),  # rate over 15m still > 0
                alert(
                    "MlpulseNoPredictions",
                    "100m",
                    {"model": model, "severity": "critical"},
                    f"{model}: no predictions for 15 minutes",
                ),
            ],
        },
        {
            # only the decoy is exported: the model is absent
            "interval": "1m",
            "input_series": [
                series("mlpulse_predictions_total", f'model={decoy}, version="1"', "0+10x60")
            ],
            "alert_rule_test": [
                alert("MlpulseMetricsAbsent", "10m", None),
                alert(
                    "MlpulseMetricsAbsent",
                    "20m",
                    {"model": model, "severity": "warning"},
                    f"{model}: not in mlpulse's /metrics",
                ),
            ],
        },
    ]
    return {"rule_files": ["rules.yml"], "evaluation_interval": "1m", "tests": tests}


def _drop_descriptions(text: str) -> str:
    """The rule file without ``description`` annotations (the unit test checks summaries)."""
    loaded = yaml.safe_load(text)
    for group in loaded["groups"]:
        for rule in group["rules"]:
            rule.get("annotations", {}).pop("description", None)
    return yaml.safe_dump(loaded, allow_unicode=True)


@needs_promtool
class TestAlertsFire:
    """Under ``promtool test rules`` each alert fires for the model's series after its hold
    time, with the model's exact name in its labels and summary, and never for another model."""

    @pytest.mark.parametrize("model", [HOSTILE[0], HOSTILE[1], HOSTILE[2]])
    def test_alerts(self, tmp_path: Path, model: str) -> None:
        text = rule_file_yaml(model, below={"accuracy": 0.9}, above={"rmse": 3.5})
        (tmp_path / "rules.yml").write_text(_drop_descriptions(text), encoding="utf-8")
        (tmp_path / "test.yml").write_text(
            yaml.safe_dump(_unit_test_file(model), allow_unicode=True), encoding="utf-8"
        )
        done = promtool("test", "rules", "test.yml", cwd=tmp_path)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "SUCCESS" in done.stdout

    def test_latency_and_quality_thresholds(self, tmp_path: Path) -> None:
        """The thresholds given as options are the ones compared (p99 1.5 s, 3 violations)."""
        text = rule_file_yaml("m", latency_p99_above=1.5, quality_violations_above=3, for_="5m")
        (tmp_path / "rules.yml").write_text(_drop_descriptions(text), encoding="utf-8")
        labels = {"model": "m", "version": "1"}
        test = {
            "rule_files": ["rules.yml"],
            "evaluation_interval": "1m",
            "tests": [
                {
                    "interval": "1m",
                    "input_series": [
                        {
                            "series": 'mlpulse_latency_seconds{model="m", version="1", quantile="0.99"}',
                            "values": "1.4x10 1.6x20",
                        },
                        {
                            "series": 'mlpulse_quality_violations{model="m", version="1", column="x", rule="range"}',
                            "values": "3x10 4x20",
                        },
                    ],
                    "alert_rule_test": [
                        {"eval_time": "12m", "alertname": "MlpulseLatencyHigh", "exp_alerts": []},
                        {
                            "eval_time": "20m",
                            "alertname": "MlpulseLatencyHigh",
                            "exp_alerts": [
                                {
                                    "exp_labels": {
                                        **labels,
                                        "quantile": "0.99",
                                        "severity": "warning",
                                    },
                                    "exp_annotations": {
                                        "summary": "m 1: p99 latency 1.6s above 1.5s"
                                    },
                                }
                            ],
                        },
                        {
                            "eval_time": "12m",
                            "alertname": "MlpulseQualityViolations",
                            "exp_alerts": [],
                        },
                        {
                            "eval_time": "20m",
                            "alertname": "MlpulseQualityViolations",
                            "exp_alerts": [
                                {
                                    "exp_labels": {
                                        **labels,
                                        "column": "x",
                                        "rule": "range",
                                        "severity": "warning",
                                    },
                                    "exp_annotations": {
                                        "summary": "m 1: 4 rows of column x break rule range"
                                    },
                                }
                            ],
                        },
                    ],
                }
            ],
        }
        (tmp_path / "test.yml").write_text(yaml.safe_dump(test), encoding="utf-8")
        done = promtool("test", "rules", "test.yml", cwd=tmp_path)
        assert done.returncode == 0, done.stdout + done.stderr


class TestOptions:
    """Bad options are refused with a ConfigError that names the option and the value."""

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"below": {"acuracy": 0.9}}, "'acuracy' is not a built-in metric"),
            ({"below": {"accuracy": float("nan")}}, "below accuracy must be a finite number"),
            ({"above": {"rmse": "3"}}, "above rmse must be a finite number"),
            ({"for_": "15 minutes"}, "for must be a Prometheus duration"),
            ({"for_": ""}, "for must be a Prometheus duration"),
            ({"window": ""}, "window must be a non-empty"),
            ({"latency_p99_above": -1}, "latency_p99_above must be at least 0"),
            ({"quality_violations_above": float("inf")}, "must be a finite number"),
        ],
    )
    def test_refused(self, kwargs: dict, message: str) -> None:
        with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
            rule_file("churn", **kwargs)

    @pytest.mark.parametrize("model", ["", None, "bad \udcff bytes"])
    def test_bad_model_name(self, model: object) -> None:
        with pytest.raises(ConfigError, match="model name"):
            rule_file(model)  # type: ignore[arg-type]

    def test_default_is_accuracy_below_point_nine(self) -> None:
        alerts = [r["alert"] for r in rule_file("m")["groups"][1]["rules"]]
        assert alerts[:2] == ["MlpulseAccuracyLow", "MlpulseEstimatedAccuracyLow"]

    def test_only_above_drops_the_default(self) -> None:
        """``above`` alone (a regression model) adds no accuracy alert."""
        alerts = [r["alert"] for r in rule_file("m", above={"rmse": 3})["groups"][1]["rules"]]
        assert "MlpulseAccuracyLow" not in alerts
        assert "MlpulseRmseHigh" in alerts
        assert "MlpulseEstimatedRmseHigh" not in alerts  # mlpulse does not estimate rmse

    def test_model_name_only_in_promql_and_group_names(self) -> None:
        """Labels and annotations never hold the name (they are Go templates)."""
        model = "NAME{{ .Foo }}NAME"
        for group in rule_file(model)["groups"]:
            for rule in group["rules"]:
                texts = [*rule.get("labels", {}).values(), *rule.get("annotations", {}).values()]
                assert not any("NAME" in text for text in texts), rule


class TestCli:
    """``mlpulse prometheus-rules`` writes the file or prints it."""

    @needs_promtool
    def test_writes_a_checked_file(self, tmp_path: Path) -> None:
        path = tmp_path / "mlpulse.rules.yml"
        model = HOSTILE[1]
        status = main(
            [
                "prometheus-rules",
                model,
                "--metric-below",
                "accuracy=0.85",
                "--metric-below",
                "roc_auc=0.7",
                "--metric-above",
                "log_loss=0.6",
                "--window",
                "24h",
                "--for",
                "30m",
                "--latency-p99-above",
                "0.25",
                "-o",
                str(path),
            ]
        )
        assert status == 0
        done = promtool("check", "rules", str(path), cwd=tmp_path)
        assert done.returncode == 0, done.stdout + done.stderr
        rules = yaml.safe_load(path.read_text(encoding="utf-8"))["groups"][1]["rules"]
        by_name = {r["alert"]: r for r in rules}
        assert by_name["MlpulseAccuracyLow"]["expr"].endswith('window="24h"} < 0.85')
        assert by_name["MlpulseRocAucLow"]["for"] == "30m"
        assert by_name["MlpulseLogLossHigh"]["expr"].endswith("> 0.6")
        assert by_name["MlpulseLatencyHigh"]["expr"].endswith("> 0.25")

    def test_prints_to_stdout(self, capsys: pytest.CaptureFixture[str]) -> None:
        assert main(["prometheus-rules", "churn"]) == 0
        out = capsys.readouterr().out
        assert yaml.safe_load(out) == json.loads(json.dumps(rule_file("churn")))

    def test_bad_threshold_is_a_usage_error(self, capsys: pytest.CaptureFixture[str]) -> None:
        with pytest.raises(SystemExit) as exit_:
            main(["prometheus-rules", "churn", "--metric-below", "accuracy"])
        assert exit_.value.code == 2
        assert "expected NAME=VALUE" in capsys.readouterr().err

    def test_unknown_metric_exits_2(self, capsys: pytest.CaptureFixture[str]) -> None:
        assert main(["prometheus-rules", "churn", "--metric-below", "acc=0.9"]) == 2
        assert "'acc' is not a built-in metric" in capsys.readouterr().err

    def test_unwritable_output_exits_2(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        target = tmp_path / "missing" / "rules.yml"
        assert main(["prometheus-rules", "churn", "-o", str(target)]) == 2
        assert "cannot write" in capsys.readouterr().err
