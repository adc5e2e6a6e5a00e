"""User-defined metrics, computed exactly over a window's labeled raw rows.

>>> import numpy as np
>>> @metric("max_abs_error")
... def max_abs_error(y_true, y_pred):
...     return float(np.max(np.abs(y_true - y_pred)))
>>> "max_abs_error" in registered()
True
>>> unregister("max_abs_error")
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..errors import ConfigError

MetricFunction = Callable[[np.ndarray, np.ndarray], float]

_REGISTRY: dict[str, MetricFunction] = {}


def metric(name: str) -> Callable[[MetricFunction], MetricFunction]:
    """Register ``fn(y_true, y_pred) -> float`` under ``name`` (binary ``y_pred`` is the score).

    The function receives numpy arrays of the window's labeled rows and is not called for a
    window without labeled rows (its value is NaN there).
    """
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"metric name must be a non-empty string, got {name!r}")

    from .catalog import ALL_BUILTIN

    if name in ALL_BUILTIN:
        raise ConfigError(
            f"metric {name!r} is built in; register a custom metric under another name"
        )

    def register(fn: MetricFunction) -> MetricFunction:
        if not callable(fn):
            raise ConfigError(f"metric {name!r}: expected a function, got {type(fn).__name__}")
        _REGISTRY[name] = fn
        return fn

    return register


def registered() -> dict[str, MetricFunction]:
    """A copy of the registry: name -> function."""
    return dict(_REGISTRY)


def unregister(name: str) -> None:
    _REGISTRY.pop(name, None)
