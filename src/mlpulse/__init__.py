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

from . import errors
from .client.embedded import Model, Observation, Pulse
from .client.http import AuthenticationError, RemoteError, ServerUnavailableError
from .client.remote import RemoteModel, RemotePulse
from .engine.ingest import IngestReport
from .errors import ConfigError
from .metrics.custom import metric

__version__ = "0.1.0"

DEFAULT_DB = "./mlpulse.duckdb"


def connect(
    target: str | None = None, *, api_key: str | None = None, **options: Any
) -> Pulse | RemotePulse:
    """Open an mlpulse store.

    ``None`` opens ``$MLPULSE_DB`` or ``./mlpulse.duckdb``; ``":memory:"`` a throwaway store;
    any other string a DuckDB file at that path. ``http://`` and ``https://`` targets name a
    running mlpulse server (``api_key`` defaults to ``$MLPULSE_API_KEY``; ``options`` go to
    :class:`~mlpulse.client.remote.RemotePulse`: batching, compression, spool, bounds).
    """
    if target is None:
        target = os.environ.get("MLPULSE_DB") or DEFAULT_DB
    if not isinstance(target, str):
        target = os.fspath(target)
    if target.startswith(("http://", "https://")):
        from .client.remote import RemotePulse

        return RemotePulse(target, api_key or os.environ.get("MLPULSE_API_KEY"), **options)
    if options:
        raise ConfigError(f"options {sorted(options)} apply only to http(s) targets")
    del api_key
    return Pulse(target)


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
