"""The seam between the user API and where the data lives.

:class:`~mlpulse.client.pulse.Pulse` and :class:`~mlpulse.client.pulse.Model` are written
once, over a :class:`Transport`: every query and write goes to the transport's method of
the same name, with the same arguments as :class:`mlpulse.service.Service` takes.
Two transports exist:

* :class:`~mlpulse.client.local.LocalTransport` — the ``Service`` itself, in this process,
  plus a background batcher for ``log()``;
* :class:`~mlpulse.client.remote.HttpTransport` — the server's HTTP API, with batching,
  compression, retries and a disk spool for ``log()``.

So a method behaves the same on both by construction; the parity test runs every ``Model``
method against both.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import pandas as pd

from ..engine.ingest import IngestReport
from ..schema import ModelSpec


class Transport(Protocol):
    """What ``Pulse`` and ``Model`` need: the service's operations (same names and arguments
    as :class:`~mlpulse.service.Service`), a queue for ``log()`` rows, a lifecycle."""

    @property
    def path(self) -> str: ...

    # -- registry
    def register(
        self,
        name: str,
        version: str | None = None,
        *,
        task: str | None = None,
        reference: Any = None,
        prediction: str | None = None,
        label: str | None = None,
        features: Sequence[str] | None = None,
        threshold: float | None = None,
        classes: Sequence[Any] | None = None,
        segments: Sequence[str] | None = None,
        recommended_rules: bool = True,
    ) -> tuple[ModelSpec | None, str]: ...
    def spec(self, name: str) -> ModelSpec: ...
    def models(self) -> list[str]: ...
    def versions(self, name: str) -> list[str]: ...

    # -- writes
    def queue(self, key: tuple[str, str, str], row: dict[str, Any]) -> None: ...
    def log_batch(
        self, name: str, version: str, table: Any, *, id: str = "id", timestamp: str | None = None
    ) -> IngestReport: ...
    def log_feedback_batch(
        self,
        name: str,
        table: Any,
        *,
        id: str = "id",
        label: str | None = None,
        timestamp: str | None = None,
    ) -> IngestReport: ...
    def set_constraints(self, name: str, constraints: Any, replace: bool = False) -> None: ...
    def log_training_features(self, name: str, table: Any, id: str = "id") -> int: ...
    def set_training_info(
        self, name: str, version: str, trained_at: Any = None, max_age: Any = None
    ) -> None: ...
    def log_resource_usage(
        self, name: str, version: str, memory_mb: float, timestamp: Any = None
    ) -> None: ...
    def put_profiles(
        self,
        name: str,
        version: str,
        profiles: Any,
        *,
        replace: bool = True,
        batch_id: str | None = None,
    ) -> dict[str, Any]: ...

    # -- queries
    def metrics(
        self,
        name: str,
        version: str,
        metrics: Sequence[str] | str | None = None,
        *,
        start: Any = "-24h",
        end: Any = "now",
        step: Any = None,
        segment: Any = None,
        versions: str | None = None,
        align: bool = True,
        ci: float | None = None,
    ) -> pd.DataFrame: ...
    def summary(
        self,
        name: str,
        version: str,
        *,
        start: Any = "-24h",
        end: Any = "now",
        step: Any = None,
        segment: Any = None,
        versions: str | None = None,
        align: bool = True,
    ) -> pd.DataFrame: ...
    def quarantined(
        self, name: str, version: str | None = None, *, start: Any = None, end: Any = None
    ) -> pd.DataFrame: ...
    def drift(
        self,
        name: str,
        version: str,
        *,
        start: Any = "-24h",
        end: Any = "now",
        against: Any = "reference",
        method: Any = "auto",
        mode: str = "sketch",
        segment: Any = None,
        thresholds: dict[str, float] | None = None,
        correction: str | None = "bh",
        drift_share: float = 0.0,
        columns: Sequence[str] | None = None,
        step: Any = None,
        fallback: bool = True,
        multivariate: bool | Sequence[str] = False,
        sample_size: int = 5000,
        versions: str | None = None,
        align: bool = True,
    ) -> Any: ...
    def quality(
        self,
        name: str,
        version: str,
        *,
        start: Any = "-24h",
        end: Any = "now",
        step: Any = None,
        segment: Any = None,
        constraints: Any = None,
        infer: bool = True,
        mode: str = "sketch",
        versions: str | None = None,
        align: bool = True,
    ) -> Any: ...
    def estimate(
        self,
        name: str,
        version: str,
        metrics: Sequence[str] | str | None = None,
        *,
        start: Any = "-24h",
        end: Any = "now",
        step: Any = None,
        segment: Any = None,
        band: bool = False,
        mode: str = "sketch",
        versions: str | None = None,
        align: bool = True,
    ) -> pd.DataFrame: ...
    def checks(
        self, name: str, version: str, *, start: Any = "-24h", end: Any = "now", **options: Any
    ) -> Any: ...
    def constraints(self, name: str) -> list: ...
    def skew(self, name: str, version: str, tolerance: float = 1e-9) -> pd.DataFrame: ...
    def segments(
        self,
        name: str,
        version: str,
        metric: str,
        start: Any = "-24h",
        end: Any = "now",
        against: Any = None,
        segment: Any = None,
        versions: str | None = None,
    ) -> pd.DataFrame: ...
    def slices(
        self,
        name: str,
        version: str,
        start: Any = "-24h",
        end: Any = "now",
        metric: str = "error",
        max_conditions: int = 2,
        min_support: Any = None,
        limit: int = 20,
        versions: str | None = None,
        alpha: float = 0.05,
    ) -> pd.DataFrame: ...
    def rows(
        self,
        name: str,
        version: str,
        start: Any = "-24h",
        end: Any = "now",
        where: dict[str, Any] | None = None,
        ids: Sequence[str] | str | None = None,
        limit: int = 100,
        include_quarantined: bool = False,
        cursor: str | None = None,
        versions: str | None = None,
    ) -> pd.DataFrame: ...

    # -- lifecycle
    # alerting
    def load_rules(self, source: Any, replace: bool = False) -> list[str]: ...
    def rules(self) -> pd.DataFrame: ...
    def delete_rules(self, names: Sequence[str] | str) -> int: ...
    def notifiers(self) -> list[dict[str, Any]]: ...
    def evaluate(self, at: Any = None) -> pd.DataFrame: ...
    def alerts(self, state: str | None = None, model: str | None = None) -> pd.DataFrame: ...
    def incidents(self, status: str | None = None) -> pd.DataFrame: ...
    def incident(self, incident_id: int) -> dict[str, Any]: ...
    def root_cause(self, incident_id: int) -> pd.DataFrame: ...
    def acknowledge(self, incident_id: int) -> None: ...
    def silence(
        self,
        matchers: dict[str, str],
        duration: Any = "2h",
        comment: str = "",
        created_by: str | None = None,
        start: Any = None,
    ) -> str: ...
    def silences(self) -> pd.DataFrame: ...
    def expire_silence(self, silence_id: str) -> None: ...
    def notifications(self) -> pd.DataFrame: ...
    # retention
    def maintain(self, now: Any = None) -> dict[str, Any]: ...

    def flush(self, timeout: float | None = None) -> bool: ...
    def close(self, timeout: float | None = None) -> None: ...
    @property
    def dropped(self) -> int: ...
    @property
    def pending(self) -> int: ...
    @property
    def rejected(self) -> int: ...


__all__ = ["Transport"]
