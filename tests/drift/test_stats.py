"""Every drift test and distance agrees with SciPy (or statsmodels) on real datasets."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats as st
from scipy.spatial.distance import jensenshannon as sp_js
from sklearn.datasets import load_diabetes, load_wine

from mlpulse.drift import categorical as cat
from mlpulse.drift import numeric as num
from mlpulse.drift.report import adjust
from mlpulse.drift.samples import Counts, NumericSample
from mlpulse.profiles import NumericState

sm_datasets = pytest.importorskip("statsmodels.datasets")


@pytest.fixture(scope="module")
def fair():
    """statsmodels' Fair (1978) affairs survey: 6,366 rows."""
    return sm_datasets.fair.load_pandas().data


def split(frame, column, by):
    """Two real samples of ``column``: rows with ``by`` below / at or above its median."""
    cut = frame[by].median()
    return frame.loc[frame[by] < cut, column].to_numpy(float), frame.loc[
        frame[by] >= cut, column
    ].to_numpy(float)


class TestNumericExact:
    """On exact samples, statistics and p-values are SciPy's."""

    @pytest.mark.parametrize("column,by", [("age", "yrs_married"), ("educ", "religious")])
    def test_two_sample_tests(self, fair, column, by) -> None:
        """KS, CvM, Anderson-Darling, Mann-Whitney and Welch equal SciPy's results."""
        a, b = split(fair, column, by)
        ra, rb = NumericSample.from_values(a), NumericSample.from_values(b)
        expect = {
            "ks": st.ks_2samp(a, b),
            "cvm": st.cramervonmises_2samp(a, b),
            "mannwhitney": st.mannwhitneyu(a, b, alternative="two-sided"),
        }
        for name, ref in expect.items():
            got = num.TWO_SAMPLE[name](ra, rb)
            assert got.statistic == pytest.approx(ref.statistic, rel=1e-12)
            assert got.p_value == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-300)
        welch = st.ttest_ind(b, a, equal_var=False)
        got = num.ttest(ra, rb)
        assert got.statistic == pytest.approx(welch.statistic, rel=1e-9)
        assert got.p_value == pytest.approx(welch.pvalue, rel=1e-6, abs=1e-300)
        with pytest.warns(UserWarning) if False else _quiet():
            ad = st.anderson_ksamp([a, b], variant="midrank")
        got = num.anderson(ra, rb)
        assert got.statistic == pytest.approx(ad.statistic) and got.p_value == pytest.approx(
            ad.pvalue
        )

    def test_k_sample(self, fair) -> None:
        """ANOVA (from moments) and Kruskal-Wallis over several groups equal SciPy's."""
        groups = [g.to_numpy(float) for _, g in fair.groupby("rate_marriage")["age"]]
        samples = [NumericSample.from_values(g) for g in groups]
        f = st.f_oneway(*groups)
        got = num.anova(samples)
        assert got.statistic == pytest.approx(f.statistic, rel=1e-9)
        assert got.p_value == pytest.approx(f.pvalue, rel=1e-6)
        h = st.kruskal(*groups)
        got = num.kruskal(samples)
        assert got.statistic == pytest.approx(h.statistic) and got.p_value == pytest.approx(
            h.pvalue
        )

    def test_distances(self) -> None:
        """Wasserstein / std equals SciPy's; binned distances equal SciPy/numpy formulas
        on the same bins."""
        x = load_diabetes().data
        a, b = x[:220, 2], x[220:, 2] + 0.01
        ra, rb = NumericSample.from_values(a), NumericSample.from_values(b)
        assert num.wasserstein(ra, rb).statistic == pytest.approx(
            st.wasserstein_distance(a, b) / np.std(a), rel=1e-9
        )
        edges = np.unique(np.quantile(a, np.arange(1, 10) / 10, method="inverted_cdf"))
        p = np.bincount(np.searchsorted(edges, a, "left"), minlength=len(edges) + 1) / len(a)
        q = np.bincount(np.searchsorted(edges, b, "left"), minlength=len(edges) + 1) / len(b)
        ps, qs = num.smooth(p), num.smooth(q)
        assert num.jensenshannon(ra, rb).statistic == pytest.approx(sp_js(p, q), rel=1e-9)
        assert num.kl(ra, rb).statistic == pytest.approx(st.entropy(qs, ps), rel=1e-9)
        assert num.psi(ra, rb).statistic == pytest.approx(
            st.entropy(qs, ps) + st.entropy(ps, qs), rel=1e-9
        )
        hel = np.sqrt(0.5 * np.sum((np.sqrt(p) - np.sqrt(q)) ** 2))
        assert num.hellinger(ra, rb).statistic == pytest.approx(hel, rel=1e-9)


class TestNumericSketch:
    """Sketch samples give SciPy's answers while exact and bracket them once compacted."""

    def test_uncompacted_sketch_is_exact(self) -> None:
        """A KLL sketch that never compacted yields exactly the raw values' p-values."""
        wine = load_wine().data
        a, b = wine[:90, 0], wine[90:, 0]
        sa, sb = NumericState(), NumericState()
        sa.update(a)
        sb.update(b)
        ka, kb = NumericSample.from_state(sa), NumericSample.from_state(sb)
        assert ka.exact and kb.exact
        assert num.ks(ka, kb).p_value == pytest.approx(st.ks_2samp(a, b).pvalue, rel=1e-12)

    def test_compacted_bounds_cover_exact(self, fair) -> None:
        """For compacted sketches the p-value interval contains the exact p-value."""
        rng = np.random.default_rng(3)
        a = rng.normal(size=40_000)
        for shift in (0.0, 0.02, 0.1):
            b = rng.normal(shift, size=30_000)
            sa, sb = NumericState(), NumericState()
            sa.update(a)
            sb.update(b)
            ka, kb = NumericSample.from_state(sa), NumericSample.from_state(sb)
            assert not ka.exact
            for name in ("ks", "mannwhitney", "cvm"):
                exact = num.TWO_SAMPLE[name](
                    NumericSample.from_values(a), NumericSample.from_values(b)
                )
                got = num.TWO_SAMPLE[name](ka, kb)
                # SciPy's asymptotic CvM tail is numerically noisy below ~1e-6
                assert got.low <= max(exact.p_value, 1e-6), name
                assert exact.p_value <= got.high * (1 + 1e-9) + 1e-12, name


class TestCategorical:
    """Two-sample categorical tests on the 2 x K table equal SciPy's and statsmodels'."""

    def test_contingency_and_proportions(self, fair) -> None:
        """chi2, G-test, z-test, Fisher and the distances on occupation by marriage rating."""
        from statsmodels.stats.proportion import proportions_ztest

        lo = fair[fair.rate_marriage <= 3]["occupation"].astype(int).astype(str)
        hi = fair[fair.rate_marriage > 3]["occupation"].astype(int).astype(str)
        ref, cur = Counts.from_values(lo.to_numpy()), Counts.from_values(hi.to_numpy())
        cats, t = cat.table(ref, cur)
        chi = st.chi2_contingency(t, correction=False)
        assert cat.chi2(ref, cur).p_value == pytest.approx(chi.pvalue, rel=1e-9, abs=1e-300)
        g = st.chi2_contingency(t, correction=False, lambda_="log-likelihood")
        assert cat.gtest(ref, cur).statistic == pytest.approx(g.statistic, rel=1e-9)
        # z-test: each category, smallest p-value times K
        ps = [
            proportions_ztest([t[1, j], t[0, j]], [t[1].sum(), t[0].sum()])[1]
            for j in range(len(cats))
        ]
        assert cat.ztest(ref, cur).p_value == pytest.approx(min(1, min(ps) * len(cats)), rel=1e-9)
        p, q = t[0] / t[0].sum(), t[1] / t[1].sum()
        assert cat.jensenshannon(ref, cur).statistic == pytest.approx(sp_js(p, q), rel=1e-9)
        assert cat.tvd(ref, cur).statistic == pytest.approx(0.5 * np.abs(p - q).sum())

    def test_two_by_two(self, fair) -> None:
        """Binary columns: one z-test and Fisher's exact test (statsmodels / SciPy)."""
        from statsmodels.stats.proportion import proportions_ztest

        a = (fair[fair.age < 30].children > 0).map({True: "yes", False: "no"}).to_numpy()
        b = (fair[fair.age >= 30].children > 0).map({True: "yes", False: "no"}).to_numpy()
        ref, cur = Counts.from_values(a[:200]), Counts.from_values(b[:150])
        cats, t = cat.table(ref, cur)
        fisher = st.fisher_exact([[t[0, 0], t[0, 1]], [t[1, 0], t[1, 1]]])
        assert cat.fisher(ref, cur).p_value == pytest.approx(fisher.pvalue, rel=1e-9)
        z = proportions_ztest([t[1, 0], t[0, 0]], [t[1].sum(), t[0].sum()])
        got = cat.ztest(ref, cur)
        assert got.statistic == pytest.approx(z[0]) and got.p_value == pytest.approx(z[1])


class TestCorrections:
    """Bonferroni and Benjamini-Hochberg equal statsmodels' multipletests."""

    def test_against_statsmodels(self) -> None:
        from statsmodels.stats.multitest import multipletests

        p = np.random.default_rng(1).uniform(0, 0.2, size=17)
        assert np.allclose(adjust(p, "bonferroni"), multipletests(p, method="bonferroni")[1])
        assert np.allclose(adjust(p, "bh"), multipletests(p, method="fdr_bh")[1])


class _quiet:
    def __enter__(self):
        import warnings

        self._w = warnings.catch_warnings()
        self._w.__enter__()
        warnings.simplefilter("ignore")

    def __exit__(self, *a):
        self._w.__exit__(*a)


class TestCramerVonMisesAsymptotic:
    """The sketch-mode CvM p-value is SciPy's asymptotic formula, from public APIs only."""

    @pytest.mark.parametrize("seed", range(6))
    def test_equals_scipy_asymptotic(self, fair, seed) -> None:
        rng = np.random.default_rng(seed)
        a = fair.age.to_numpy(float)[rng.choice(len(fair), 400, replace=False)]
        b = fair.age.to_numpy(float)[rng.choice(len(fair), 300, replace=False)] + seed * 0.4
        ref = st.cramervonmises_2samp(a, b, method="asymptotic")
        assert num._cvm_p(float(ref.statistic), len(a), len(b)) == pytest.approx(
            ref.pvalue, rel=1e-9, abs=1e-12
        )

    def test_no_private_scipy_imports(self) -> None:
        import inspect

        source = inspect.getsource(num)
        assert "scipy._lib" not in source and "scipy.stats._" not in source
