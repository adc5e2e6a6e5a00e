"""mlpulse: observability for machine-learning systems in production.

>>> import mlpulse
>>> pulse = mlpulse.connect(":memory:")
>>> model = pulse.model("churn", version="v1", task="binary", prediction="score", label="churned")
>>> report = model.log_batch({"id": ["a", "b"], "score": [0.9, 0.2], "age": [31, 40]})
>>> (report.received, report.stored, report.quarantined)
(2, 2, 0)
>>> pulse.close()
"""

from __future__ import annotations

import os

from . import errors
from .client.embedded import Model, Observation, Pulse
from .engine.ingest import IngestReport
from .errors import ConfigError
from .metrics.custom import metric

__version__ = "0.1.0"

DEFAULT_DB = "./mlpulse.duckdb"


def connect(target: str | None = None, *, api_key: str | None = None) -> Pulse:
    """Open an mlpulse store.

    ``None`` opens ``$MLPULSE_DB`` or ``./mlpulse.duckdb``; ``":memory:"`` a throwaway store;
    any other string a DuckDB file at that path. ``http://`` and ``https://`` targets name a
    running mlpulse server.
    """
    if target is None:
        target = os.environ.get("MLPULSE_DB") or DEFAULT_DB
    if not isinstance(target, str):
        target = os.fspath(target)
    if target.startswith(("http://", "https://")):
        raise ConfigError(
            f"cannot connect to {target!r}: this build of mlpulse has no HTTP client yet; "
            "open a database file instead (mlpulse.connect('path/to/pulse.duckdb'))"
        )
    del api_key
    return Pulse(target)


__all__ = [
    "ConfigError",
    "IngestReport",
    "Model",
    "Observation",
    "Pulse",
    "__version__",
    "connect",
    "errors",
    "metric",
]
