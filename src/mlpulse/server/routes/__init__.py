"""The ``/api/v1`` routes, one module per area: ``models`` (registration, reference data,
constraints, training info), ``ingest`` (predictions, labels, training features, resource
usage), ``queries`` (tables: metrics, summary, estimate, skew, quarantine), ``analyses``
(drift, quality, checks), ``alerts`` (rules, evaluation, alerts, incidents, silences,
notifications), ``keys`` and ``maintenance`` (retention now); ``common`` holds what they share.

Every route parses the request, calls the app's
:class:`~mlpulse.service.Service` and serialises the answer. Handlers that touch the
store run in the thread pool (DuckDB releases the GIL). Scopes: ``ingest`` writes,
``read`` queries, ``admin`` both and manages keys.
"""

from __future__ import annotations

from fastapi import APIRouter

from . import alerts, analyses, ingest, investigate, keys, maintenance, models, queries
from .common import records, require

router = APIRouter(prefix="/api/v1")
for _module in (models, ingest, queries, analyses, investigate, alerts, keys, maintenance):
    router.include_router(_module.router)

__all__ = ["records", "require", "router"]
