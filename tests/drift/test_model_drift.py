"""``model.drift`` end to end: exact mode equals SciPy on the logged rows, sketch mode makes
the same decisions, and the dataset-level and multivariate answers behave."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.stats as st

import mlpulse
from mlpulse.errors import ConfigError

sm_datasets = pytest.importorskip("statsmodels.datasets")
BASE = pd.Timestamp("2026-01-05T00:00:00Z")
START, END = "2026-01-05", "2026-01-07"


def stamp(frame: pd.DataFrame, hours: float = 30.0, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    out = frame.reset_index(drop=True).copy()
    out["id"] = [f"r{seed}_{i}" for i in range(len(out))]
    out["timestamp"] = BASE + pd.to_timedelta(rng.uniform(0, hours * 3600, len(out)), unit="s")
    return out


@pytest.fixture(scope="module")
def fair_model():
    """statsmodels' Fair data: reference = less happy marriages, window = happier ones."""
    data = sm_datasets.fair.load_pandas().data
    data = data.assign(
        occupation=data.occupation.astype(int).astype(str),
        score=(data.affairs > 0).astype(float) * 0.6 + 0.2,
        label=(data.affairs > 0).astype(int),
    )[["age", "yrs_married", "educ", "occupation", "score", "label"]]
    ref = data[data.index % 2 == 0]
    cur = data[data.index % 2 == 1]
    pulse = mlpulse.connect(":memory:")
    model = pulse.model(
        "fair", version="v1", task="binary", reference=ref, prediction="score", label="label"
    )
    logged = stamp(cur)
    model.log_batch(logged.drop(columns=["label"]), id="id", timestamp="timestamp")
    model.log_feedback_batch(logged[["id", "label"]], id="id", label="label")
    yield model, ref, cur
    pulse.close()


class TestExactMode:
    """In exact mode every p-value equals SciPy's on the same rows."""

    @pytest.mark.parametrize("method", ["ks", "cvm", "mannwhitney", "ttest", "anderson"])
    def test_numeric_p_values(self, fair_model, method) -> None:
        model, ref, cur = fair_model
        frame = model.drift(START, END, method=method, mode="exact").to_pandas().set_index("column")
        a, b = ref["age"].to_numpy(float), cur["age"].to_numpy(float)
        expected = {
            "ks": lambda: st.ks_2samp(a, b).pvalue,
            "cvm": lambda: st.cramervonmises_2samp(a, b).pvalue,
            "mannwhitney": lambda: st.mannwhitneyu(a, b).pvalue,
            "ttest": lambda: st.ttest_ind(b, a, equal_var=False).pvalue,
            "anderson": lambda: st.anderson_ksamp([a, b], variant="midrank").pvalue,
        }[method]()
        assert frame.loc["age", "method"] == method
        assert frame.loc["age", "p_value"] == pytest.approx(expected, rel=1e-9)
        # the prediction is a column too
        s_a, s_b = ref["score"].to_numpy(float), cur["score"].to_numpy(float)
        if method == "ks":
            assert frame.loc["score", "p_value"] == pytest.approx(st.ks_2samp(s_a, s_b).pvalue)

    def test_categorical_and_label(self, fair_model) -> None:
        """chi2 on a feature and on the label equals SciPy's 2 x K contingency test."""
        model, ref, cur = fair_model
        frame = model.drift(START, END, method="chi2", mode="exact").to_pandas().set_index("column")
        for column in ("occupation", "label"):
            t = pd.crosstab(
                np.r_[np.zeros(len(ref)), np.ones(len(cur))],
                np.r_[ref[column].astype(str), cur[column].astype(str)],
            ).to_numpy()
            expected = st.chi2_contingency(t, correction=False).pvalue
            assert frame.loc[column, "p_value"] == pytest.approx(expected, rel=1e-9)

    def test_shape_and_contract(self, fair_model) -> None:
        model, *_ = fair_model
        report = model.drift(START, END)
        frame = report.to_pandas()
        assert list(frame.columns) == [
            "column",
            "kind",
            "method",
            "statistic",
            "p_value",
            "threshold",
            "drifted",
        ]
        assert set(frame.column) == {"age", "yrs_married", "educ", "occupation", "score", "label"}
        assert isinstance(report.dataset_drift, bool)


@pytest.fixture(scope="module")
def planted():
    """60,000 rows; x0 shifted 0.1 std, x1 spread +20%, c0 mix moved 20%."""
    rng = np.random.default_rng(11)
    n = 60_000

    def frame(shift: bool) -> pd.DataFrame:
        f = pd.DataFrame({f"x{i}": rng.normal(size=n) for i in range(5)})
        f["c0"] = rng.choice(list("abcde"), size=n)
        f["c1"] = rng.choice(list("abcde"), size=n)
        f["score"] = rng.uniform(size=n)
        if shift:
            f["x0"] += 0.1  # mean shift of 0.1 std
            f["x1"] *= 1.2  # spread +20%
            move = rng.uniform(size=n) < 0.2
            f.loc[move, "c0"] = "a"  # 20% of the mix moved to one category
        return f

    pulse = mlpulse.connect(":memory:")
    model = pulse.model(
        "planted",
        version="v1",
        task="binary",
        reference=frame(False),
        prediction="score",
        label="label",
    )
    model.log_batch(stamp(frame(True), seed=1), id="id", timestamp="timestamp")
    yield model
    pulse.close()


class TestSketchAgreesWithExact:
    """Sketch mode makes the decisions exact mode makes, on drifted and undrifted columns."""

    def test_auto(self, planted) -> None:
        for mode in ("sketch", "exact"):
            report = planted.drift(START, END, mode=mode)
            assert sorted(report.drifted_columns) == ["c0", "x0", "x1"], mode
            assert report.dataset_drift

    @pytest.mark.parametrize("method", ["ks", "mannwhitney", "cvm", "psi", "hellinger"])
    def test_named_methods(self, planted, method) -> None:
        got = {}
        for mode in ("sketch", "exact"):
            frame = planted.drift(
                START, END, method=method, mode=mode, columns=["x0", "x1", "x2", "x3"]
            ).to_pandas()
            got[mode] = dict(zip(frame.column, frame.drifted, strict=True))
        assert got["sketch"] == got["exact"]

    def test_thresholds_override(self, planted) -> None:
        """Per-method and per-column thresholds replace the defaults."""
        frame = planted.drift(START, END, thresholds={"wasserstein": 0.5, "x1": 0.01}).to_pandas()
        frame = frame.set_index("column")
        assert frame.loc["x0", "threshold"] == 0.5 and not frame.loc["x0", "drifted"]
        assert frame.loc["x1", "threshold"] == 0.01 and frame.loc["x1", "drifted"]

    def test_bad_method(self, planted) -> None:
        with pytest.raises(ConfigError, match="unknown drift method"):
            planted.drift(START, END, method="nope")
        with pytest.raises(ConfigError, match="categorical"):
            planted.drift(START, END, method={"c0": "ks"})


class TestDatasetAndMultivariate:
    """Multiple-testing control, share of drifted columns, and multivariate detectors."""

    def test_correction_and_share(self, fair_model) -> None:
        model, *_ = fair_model
        raw = model.drift(START, END, method="ks", mode="exact", correction=None)
        bonf = model.drift(START, END, method="ks", mode="exact", correction="bonferroni")
        details = bonf.to_pandas(details=True)
        tests = details[details.p_value.notna()]
        assert np.allclose(tests.p_adjusted, np.minimum(1, tests.p_value * len(tests)))
        assert len(bonf.drifted_columns) <= len(raw.drifted_columns)
        share = model.drift(START, END, method="ks", mode="exact", drift_share=1.0)
        assert share.dataset_drift == (share.share_drifted >= 1.0)

    def test_correlation_drift(self) -> None:
        """Marginals unchanged, correlation flipped: univariate tests miss it, the domain
        classifier and the PCA reconstruction error find it."""
        rng = np.random.default_rng(5)
        n = 1500
        z = rng.normal(size=(n, 2))
        ref = pd.DataFrame({"a": z[:, 0], "b": 0.9 * z[:, 0] + np.sqrt(1 - 0.81) * z[:, 1]})
        z = rng.normal(size=(n, 2))
        cur = pd.DataFrame({"a": z[:, 0], "b": -0.9 * z[:, 0] + np.sqrt(1 - 0.81) * z[:, 1]})
        ref["score"] = cur["score"] = 0.5
        pulse = mlpulse.connect(":memory:")
        model = pulse.model("corr", task="binary", reference=ref, prediction="score")
        model.log_batch(stamp(cur), id="id", timestamp="timestamp")
        report = model.drift(START, END, mode="exact", multivariate=True)
        assert not {"a", "b"} & set(report.drifted_columns)
        assert report.multivariate["domain_classifier"]["drifted"]
        assert report.multivariate["pca"]["drifted"]
        same = model.drift(START, END, against={"start": START, "end": END}, multivariate=True)
        assert not same.multivariate["domain_classifier"]["drifted"]
        assert not same.multivariate["pca"]["drifted"]
        pulse.close()

    def test_k_sample_windows(self, fair_model) -> None:
        """With step, ANOVA and Kruskal-Wallis compare the reference with every sub-window."""
        model, ref, cur = fair_model
        report = model.drift(
            START,
            END,
            method={"age": "anova", "educ": "kruskal"},
            columns=["age", "educ"],
            step="6h",
            mode="exact",
        )
        # the whole span's test (report.overall) takes every 6-hour window as a group
        frame = report.overall.to_pandas().set_index("column")
        assert frame.loc["age", "method"] == "anova" and frame.loc["educ", "method"] == "kruskal"
        logged = stamp(cur)
        hours = (logged.timestamp - pd.Timestamp(START, tz="UTC")) // pd.Timedelta("6h")
        groups = [ref.age.to_numpy(float)] + [g.age.to_numpy(float) for _, g in logged.groupby(hours)]
        assert frame.loc["age", "p_value"] == pytest.approx(st.f_oneway(*groups).pvalue, rel=1e-9)
        # each window of the timeline against the reference alone (the rows end after 30 h:
        # the last windows are empty, listed in .windows with n = 0, without rows in the frame)
        assert len(report.windows) == 8 and list(report.windows.n > 0) == [True] * 5 + [False] * 3
        assert set(report.to_pandas().window_start) == set(report.windows.window_start[:5])
