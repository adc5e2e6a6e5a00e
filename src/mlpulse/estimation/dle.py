"""Direct loss estimation (DLE) for regression models.

On the reference (features, prediction and label), a gradient-boosted model
(scikit-learn's ``HistGradientBoostingRegressor``) learns each row's loss from its features
and the model's prediction: one for the absolute error, one for the squared error. In a
window without labels, the mean predicted loss estimates MAE and MSE (RMSE is the root of
the MSE estimate), as NannyML's DLE does. Its band is the sampling spread of a window's
realised mean loss around the predicted one: the loss models' out-of-fold residual
variance on the reference (5-fold), over the window's rows. Like CBPE, DLE assumes that
what it learnt carries over: the error given (features, prediction) must not change.

Examples
--------
>>> import numpy as np, pandas as pd
>>> rng = np.random.default_rng(0)
>>> x = pd.DataFrame({"a": rng.normal(size=3000)})
>>> y = x.a + rng.normal(0, 0.2 + 0.5 * (x.a > 0), 3000)    # errors larger for a > 0
>>> dle = DLE().fit(x, x.a.to_numpy(), y.to_numpy())
>>> e = dle.estimate(x.iloc[:1000], x.a.to_numpy()[:1000])
>>> abs(e["mae"].value - float(np.mean(np.abs(y[:1000] - x.a[:1000])))) < 0.05
True
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from .cbpe import Estimate

METRICS = ("mae", "mse", "rmse")
_FOLDS = 5


class DLE:
    """Loss models fitted on the reference; estimates of MAE, MSE and RMSE per window."""

    def __init__(self, *, level: float = 0.95, seed: int = 0) -> None:
        self.level = float(level)
        self.seed = seed
        self.columns: list[str] = []
        self.categories: dict[str, list[str]] = {}
        self.n_reference = 0
        self._models: dict[str, Any] = {}
        self._resid_var: dict[str, float] = {}

    def design(self, features: pd.DataFrame, prediction: Any) -> np.ndarray:
        """Rows as the loss models read them: numeric features, categorical codes (unknown
        values: NaN), then the prediction."""
        cols = []
        for name in self.columns:
            values = features[name] if name in features else pd.Series(np.nan, index=features.index)
            if name in self.categories:
                codes = pd.Categorical(
                    values.astype("string"), categories=self.categories[name]
                ).codes
                cols.append(np.where(codes < 0, np.nan, codes).astype(np.float64))
            else:
                cols.append(pd.to_numeric(values, errors="coerce").to_numpy(np.float64))
        cols.append(np.asarray(prediction, dtype=np.float64))
        return np.column_stack(cols) if cols else np.zeros((len(features), 0))

    def fit(
        self, features: pd.DataFrame, prediction: Any, labels: Any, categorical: Any = ()
    ) -> DLE:
        from sklearn.model_selection import KFold

        pred = np.asarray(prediction, dtype=np.float64)
        y = np.asarray(labels, dtype=np.float64)
        keep = np.isfinite(pred) & np.isfinite(y)
        if keep.sum() < 4 * _FOLDS:
            raise ValueError(f"DLE needs at least {4 * _FOLDS} reference rows with a label")
        features = features.loc[keep].reset_index(drop=True)
        pred, y = pred[keep], y[keep]
        self.columns = list(features.columns)
        self.categories = {
            c: sorted(features[c].dropna().astype(str).unique().tolist())
            for c in categorical
            if c in features
        }
        x = self.design(features, pred)
        mask = [
            i < len(self.columns) and self.columns[i] in self.categories for i in range(x.shape[1])
        ]
        self.n_reference = len(y)
        folds = KFold(_FOLDS, shuffle=True, random_state=self.seed)
        with _one_thread():
            self._fit_losses(x, y, pred, mask, folds)
        return self

    def _fit_losses(
        self, x: np.ndarray, y: np.ndarray, pred: np.ndarray, mask: list, folds: Any
    ) -> None:
        from sklearn.ensemble import HistGradientBoostingRegressor
        from sklearn.model_selection import cross_val_predict

        for name, loss in (("mae", np.abs(y - pred)), ("mse", (y - pred) ** 2)):
            model = HistGradientBoostingRegressor(
                max_iter=100,
                learning_rate=0.05,
                min_samples_leaf=max(5, min(20, len(y) // 20)),
                categorical_features=np.asarray(mask, dtype=bool) if any(mask) else None,
                random_state=self.seed,
            )
            out_of_fold = cross_val_predict(model, x, loss, cv=folds)
            self._resid_var[name] = float(np.var(loss - out_of_fold))
            self._models[name] = model.fit(x, loss)

    def predicted_losses(self, features: pd.DataFrame, prediction: Any) -> dict[str, np.ndarray]:
        x = self.design(features, prediction)
        with _one_thread():
            return {name: np.maximum(model.predict(x), 0.0) for name, model in self._models.items()}

    def estimate(self, features: pd.DataFrame, prediction: Any) -> dict[str, Estimate]:
        """Estimates for one window's rows (features and predictions)."""
        pred = np.asarray(prediction, dtype=np.float64)
        keep = np.isfinite(pred)
        if not keep.any():
            return {m: Estimate(math.nan, math.nan, math.nan) for m in METRICS}
        losses = self.predicted_losses(features.loc[keep], pred[keep])
        n = int(keep.sum())
        from scipy.stats import norm

        z = float(norm.ppf(0.5 + self.level / 2))
        out = {}
        for name in ("mae", "mse"):
            value = float(np.mean(losses[name]))
            sd = math.sqrt(self._resid_var[name] / n)
            out[name] = Estimate(value, max(value - z * sd, 0.0), value + z * sd, sd)
        mse = out["mse"]
        root = math.sqrt(mse.value)
        out["rmse"] = Estimate(
            root,
            math.sqrt(mse.lower),
            math.sqrt(mse.upper),
            mse.sd / (2 * root) if root > 0 else math.nan,  # delta method
        )
        return out


def _one_thread() -> Any:
    """Gradient boosting on one OpenMP thread: the server's query threads already share the
    cores, and OpenMP's spinning workers on a busy machine made one fit 50x slower."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="openmp")


__all__ = ["DLE", "METRICS"]
