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
from typing import Any

from . import display as _display  # noqa: F401  (registers frame.mlpulse and notebook HTML)
from . import errors
from .client.pulse import Model, Observation, Pulse
from .engine.ingest import IngestReport
from .errors import AuthenticationError, ConfigError, RemoteError, ServerUnavailableError
from .metrics.custom import metric

__version__ = "0.1.0"

DEFAULT_DB = "./mlpulse.duckdb"


#: Earlier names of the connection and handle over HTTP: one ``Pulse`` and ``Model`` now
#: serve both transports (kept so that existing code and ``isinstance`` checks still run).
RemotePulse = Pulse
RemoteModel = Model


def connect(target: str | None = None, *, api_key: str | None = None, **options: Any) -> Pulse:
    """Open an mlpulse store; the same :class:`Pulse` API in process and over HTTP.

    ``None`` opens ``$MLPULSE_DB`` or ``./mlpulse.duckdb``; ``":memory:"`` a throwaway store;
    any other string a DuckDB file at that path (option ``max_features``: feature columns per
    model, default ``$MLPULSE_MAX_FEATURES`` or 1,000; ``raw_retention`` (default ``"30d"``),
    ``raw_archive`` (``"parquet"`` or ``"delete"``) and ``profile_retention`` (default
    ``{"minute": "7d", "hour": "400d"}``) say what ``pulse.maintain()`` keeps, see
    docs/storage.md). ``http://`` and ``https://`` targets
    name a running mlpulse server (``api_key`` defaults to ``$MLPULSE_API_KEY``; ``options``
    go to :class:`~mlpulse.client.remote.HttpTransport`: batching, compression, spool, bounds).
    """
    if target is None:
        target = os.environ.get("MLPULSE_DB") or DEFAULT_DB
    if not isinstance(target, str):
        target = os.fspath(target)
    if target.startswith(("http://", "https://")):
        from .client.remote import HttpTransport

        return Pulse(HttpTransport(target, api_key or os.environ.get("MLPULSE_API_KEY"), **options))
    unknown = sorted(
        set(options) - {"max_features", "raw_retention", "raw_archive", "profile_retention"}
    )
    if unknown:
        raise ConfigError(f"options {unknown} apply only to http(s) targets")
    del api_key
    from .client.local import LocalTransport

    return Pulse(LocalTransport(target, **options))


__all__ = [
    "AuthenticationError",
    "ConfigError",
    "IngestReport",
    "Model",
    "Observation",
    "Pulse",
    "RemoteError",
    "RemoteModel",
    "RemotePulse",
    "ServerUnavailableError",
    "__version__",
    "connect",
    "errors",
    "metric",
]
