"""When a label-free estimate should not be trusted: ``estimate_warning`` and
``estimate_reason`` per window.

Every estimator here (CBPE, multiclass CBPE, DLE) rests on one assumption: what it learnt on
the reference (``P(label | score)``, ``P(label | predicted class, probabilities)``, the
error given features and prediction) still holds in the window. Two checks say when that is
at risk:

* **drift** (no labels needed): the window's prediction or any feature drifted against
  the reference. A covariate shift alone keeps ``P(label | score)`` only if the score
  captures everything about the label that changed; a shift of a feature the model uses
  weakly, or of one it ignores (an omitted interaction), can change it unseen, so every
  feature counts. The test is ``model.drift``'s at strict thresholds: hypothesis tests at
  ``p < DRIFT_ALPHA`` (0.001, Benjamini-Hochberg over the columns), distances at their
  defaults (raised to their 99.9% noise floor), so fresh data from the reference's own
  distribution stays silent over many windows.
* **disagreement** (where the window has at least ``MIN_LABELED`` labels): the estimator is
  run on exactly the labeled rows and the realised metric compared with it; the warning is
  raised when ``|realised - estimate| > Z_LIMIT * sd`` for some metric, ``sd`` being the
  spread of the realised metric the estimator expects (its simulation, or DLE's residual
  variance) inflated by ``sqrt(1 + n_labeled / n_reference)`` for the error of a
  calibration learnt from ``n_reference`` rows.

The reason names what was found: ``"drift: x2 (ks p=3e-09); disagreement: roc_auc realised
0.712, estimated 0.861 (z=-5.2, 400 labels)"``; empty when there is no warning.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

#: p-value below which a hypothesis test's drift counts (after Benjamini-Hochberg).
DRIFT_ALPHA = 0.001
#: Standard deviations between realised and estimated values that count as disagreement.
Z_LIMIT = 4.0
#: Labels a window needs before realised values are compared with the estimate.
MIN_LABELED = 30
_Z95 = 1.959963984540054
_TESTS = ("ks", "cvm", "anderson", "mannwhitney", "ttest", "chi2", "gtest", "ztest", "fisher")


def drift_reasons(
    store: Any,
    registry: Any,
    scope: Any,
    bounds: Sequence[tuple[int, int]],
    counts: Sequence[int],
    mode: str = "sketch",
) -> list[str]:
    """Per window: ``""`` or ``"drift: <column> (<method> <value>), ..."``; ``mode`` as in
    ``model.drift`` (sketch-mode statistics vary within the sketches' error from run to
    run, never the verdict: the drift code recomputes borderline columns from raw rows)."""
    from ..drift.compute import compute_drift

    spec = scope.spec
    if not any(counts):
        return [""] * len(bounds)
    # one drift call for every window: with a step, its timeline holds one report per window
    # (each against the same reference, as a call for that window alone would be), reading
    # the reference and the profiles once instead of once per window
    report = compute_drift(
        store,
        registry,
        scope,
        columns=[*spec.features, spec.prediction],
        mode=mode,
        thresholds=dict.fromkeys(_TESTS, DRIFT_ALPHA),
    )
    windows = report.timeline if scope.step is not None else [report]
    out = []
    for window, n in zip(windows, counts, strict=True):
        if not n:
            out.append("")
            continue
        drifted = sorted(
            (c for c in window.columns if c.drifted),
            key=lambda c: (c.column != spec.prediction, c.p_value if c.is_test else -c.statistic),
        )
        parts = [
            f"{c.column} ({c.method} p={c.p_value:.2g})"
            if c.is_test
            else f"{c.column} ({c.method} {c.statistic:.3g})"
            for c in drifted
        ]
        out.append(f"drift: {', '.join(parts)}" if parts else "")
    return out


def disagreement(
    realised: dict[str, tuple[float, float, float]],
    estimates: dict[str, Any],
    n_labeled: int,
    n_reference: int,
) -> str:
    """``""`` or ``"disagreement: <metric> realised <r>, estimated <e> (z=<z>, <n> labels)"``
    for the metrics whose realised value lies more than ``Z_LIMIT`` sd from the estimate.

    ``realised``: per metric, (value, lower, upper) of its 95% confidence interval
    (:mod:`mlpulse.metrics.confidence`; NaN bounds where it has none). The sd is the larger
    of the estimator's own and the one the realised interval implies on the estimate's
    side: a calibration that puts probabilities of exactly 0 or 1 on extreme scores (an
    isotonic fit on a small reference does) simulates almost no spread, the realised
    interval still sees the labels' noise."""
    if n_labeled < MIN_LABELED:
        return ""
    inflation = math.sqrt(1 + n_labeled / max(n_reference, 1))
    found = []
    for name, (value, lower, upper) in realised.items():
        est = estimates.get(name)
        if est is None or not math.isfinite(value) or not math.isfinite(est.value):
            continue
        side = (upper - value) if est.value > value else (value - lower)
        spreads = [s for s in (est.sd, side / _Z95) if math.isfinite(s) and s > 0]
        if not spreads:
            continue
        sd = max(spreads) * inflation
        z = (value - est.value) / sd
        if abs(z) > Z_LIMIT:
            found.append(
                f"{name} realised {value:.3f}, estimated {est.value:.3f} (z={z:+.1f}, "
                f"{n_labeled} labels)"
            )
    return f"disagreement: {'; '.join(found)}" if found else ""


def combine(*reasons: str) -> str:
    return "; ".join(r for r in reasons if r)


__all__ = [
    "DRIFT_ALPHA",
    "MIN_LABELED",
    "Z_LIMIT",
    "combine",
    "disagreement",
    "drift_reasons",
]
