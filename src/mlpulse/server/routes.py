"""The ``/api/v1`` routes: models, ingest, queries, quarantine and API keys.

Handlers that touch the store run in the thread pool (DuckDB releases the GIL); an ingest
request is answered after its transaction commits. Scopes: ``ingest`` writes (register,
reference, predictions, feedback), ``read`` queries, ``admin`` both and manages keys.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Annotated, Any

import pandas as pd
import pyarrow as pa
from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from .._time import to_micros
from ..engine.ingest import IngestReport
from ..engine.query import compute_metrics, compute_summary
from ..schema import ModelSpec
from .bodies import (
    ARROW_FILE,
    ARROW_STREAM,
    INGEST_TYPES,
    NDJSON,
    REFERENCE_TYPES,
    media_type,
    parse_table,
    read_body,
)
from .errors import ApiError, error_responses
from .schemas import (
    FrameResult,
    IngestResult,
    KeyCreated,
    KeyList,
    KeyRequest,
    ModelInfo,
    ModelList,
    QuarantineResult,
    RegisterRequest,
)

bearer = HTTPBearer(
    auto_error=False, description="An API key from `mlpulse keys create`: `Bearer mlp_...`"
)


def require(scope: str) -> Any:
    """A dependency that admits requests whose key allows ``scope`` (any request while no
    key exists)."""

    def check(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> None:
        keys = request.app.state.keys
        if not keys.enabled:
            return
        challenge = {"WWW-Authenticate": "Bearer"}
        if credentials is None:
            raise ApiError(
                401,
                "this server requires an API key: send 'Authorization: Bearer KEY'",
                headers=challenge,
            )
        key = keys.check(credentials.credentials)
        if key is None:
            raise ApiError(401, "invalid API key", headers=challenge)
        if key.revoked_at is not None:
            raise ApiError(401, f"API key {key.key_id} was revoked", headers=challenge)
        if not key.allows(scope):
            raise ApiError(
                403,
                f"API key {key.key_id} has scope {key.scope!r}; this needs {scope!r} or 'admin'",
            )
        request.state.key_id = key.key_id
        request.state.key_scope = key.scope

    return Depends(check)


router = APIRouter(prefix="/api/v1")

NameParam = Annotated[str, Path(min_length=1, max_length=200, description="model name")]
VersionParam = Annotated[
    str, Path(min_length=1, max_length=200, description="model version; '*' merges all (queries)")
]
ColumnParam = Query(default=None, min_length=1, max_length=256)

_BINARY = {"type": "string", "format": "binary"}
_CELL = {"type": ["string", "number", "integer", "boolean", "null"]}
_ROWS = {
    "type": "object",
    "required": ["rows"],
    "properties": {
        "rows": {
            "type": "array",
            "items": {"type": "object", "additionalProperties": _CELL},
        }
    },
}
INGEST_BODY = {
    "requestBody": {
        "required": True,
        "description": "rows as JSON, NDJSON or Arrow IPC (the fast path); "
        "Content-Encoding: gzip is accepted",
        "content": {
            "application/json": {"schema": _ROWS},
            NDJSON: {"schema": {"type": "string"}},
            ARROW_STREAM: {"schema": _BINARY},
            ARROW_FILE: {"schema": _BINARY},
        },
    }
}
REFERENCE_BODY = {
    "requestBody": {
        "required": True,
        "description": "reference (training or validation) data as Arrow IPC or Parquet",
        "content": {t: {"schema": _BINARY} for t in REFERENCE_TYPES},
    }
}
FRAME_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {ARROW_STREAM: {"schema": _BINARY}}, "description": "the table"}
}


def _pulse(request: Request) -> Any:
    return request.app.state.pulse


def _spec(request: Request, name: str) -> ModelSpec:
    return _pulse(request).engine.registry.get(name)


def _info(request: Request, spec: ModelSpec, version: str | None = None) -> dict[str, Any]:
    return ModelInfo.of(spec, _pulse(request).engine.registry.versions(spec), version)


# -- models ---------------------------------------------------------------------------


@router.get(
    "/models", response_model=ModelList, responses=error_responses(401, 403), tags=["models"]
)
def list_models(request: Request, _: None = require("read")) -> JSONResponse:
    """Every registered model with its schema and versions."""
    registry = _pulse(request).engine.registry
    return JSONResponse({"models": [_info(request, registry.get(n)) for n in registry.names()]})


@router.post(
    "/models",
    response_model=ModelInfo,
    responses=error_responses(400, 401, 403, 404, 409, 422),
    tags=["models"],
)
def register_model(
    request: Request, body: RegisterRequest, _: None = require("ingest")
) -> JSONResponse:
    """Register a model version, or return it if it exists; a contradiction is a 409.

    ``features`` may map columns to kinds (``numeric`` | ``categorical``), as a client that
    inferred them from its reference data sends."""
    pulse = _pulse(request)
    kinds = body.features if isinstance(body.features, dict) else None
    model = pulse.model(
        body.name,
        body.version,
        task=body.task,
        prediction=body.prediction,
        label=body.label,
        features=body.features if isinstance(body.features, list) else None,
        threshold=body.threshold,
        classes=body.classes,
        segments=body.segments,
    )
    spec = model.spec
    if kinds:
        spec = pulse.engine.registry.add_features(spec, dict(kinds))
    return JSONResponse(_info(request, spec, model.version))


@router.get(
    "/models/{name}",
    response_model=ModelInfo,
    responses=error_responses(401, 403, 404, 422),
    tags=["models"],
)
def get_model(request: Request, name: NameParam, _: None = require("read")) -> JSONResponse:
    """One model's schema and versions."""
    return JSONResponse(_info(request, _spec(request, name)))


@router.put(
    "/models/{name}/versions/{version}/reference",
    response_model=ModelInfo,
    responses=error_responses(400, 401, 403, 404, 409, 413, 415, 422),
    openapi_extra=REFERENCE_BODY,
    tags=["models"],
)
async def put_reference(
    request: Request,
    name: NameParam,
    version: VersionParam,
    features: Annotated[list[str] | None, Query(max_length=1_000)] = None,
    _: None = require("ingest"),
) -> JSONResponse:
    """Upload (replace) a version's reference data; new columns become features."""
    limits = request.app.state.limits
    body = await read_body(request, limits)
    kind = media_type(request.headers.get("content-type"))

    def work() -> dict[str, Any]:
        spec = _spec(request, name)
        table = parse_table(body, kind, limits, accept=REFERENCE_TYPES)
        model = _pulse(request).model(
            name, version, reference=table, features=features or None, segments=None
        )
        request.state.rows = table.num_rows
        return _info(request, model.spec, version) | {"name": spec.name}

    return JSONResponse(await run_in_threadpool(work))


# -- ingest ---------------------------------------------------------------------------

_INGEST_ERRORS = error_responses(400, 401, 403, 404, 408, 409, 413, 415, 422, 503, 507)
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        description="a batch id: a retried batch with the same key is not stored twice",
    ),
]


def _report(report: IngestReport, key: str | None) -> JSONResponse:
    return JSONResponse(IngestResult.of(report, key))


def batch_hash(kind: str, version: str | None, request: Request, body: bytes) -> str:
    """What an ``Idempotency-Key`` is checked against: sha256 of the batch's kind, version,
    query parameters (the columns it names) and decompressed body. A retry of the same
    request has the same hash; another batch under the same key does not (409)."""
    digest = hashlib.sha256()
    params = sorted(request.query_params.multi_items())
    for part in (kind, version or "", json.dumps(params)):
        data = part.encode("utf-8", "surrogatepass")
        digest.update(len(data).to_bytes(8, "big") + data)
    digest.update(body)
    return digest.hexdigest()


@router.post(
    "/models/{name}/versions/{version}/predictions",
    response_model=IngestResult,
    responses=_INGEST_ERRORS,
    openapi_extra=INGEST_BODY,
    tags=["ingest"],
)
async def ingest_predictions(
    request: Request,
    name: NameParam,
    version: VersionParam,
    idempotency_key: IdempotencyKey = None,
    id: Annotated[str, Query(min_length=1, max_length=256, description="id column")] = "id",
    timestamp: Annotated[
        str | None, Query(min_length=1, max_length=256, description="event-time column")
    ] = None,
    prediction: Annotated[
        str | None,
        Query(min_length=1, max_length=256, description="prediction column if not the model's"),
    ] = None,
    _: None = require("ingest"),
) -> JSONResponse:
    """Store a batch of predictions; answered once committed, with stored and quarantined
    counts. Columns: the id, the prediction, features, optional ``latency_ms``,
    ``trace_id`` and event time (``timestamp`` unless named otherwise)."""
    limits = request.app.state.limits
    body = await read_body(request, limits)
    kind = media_type(request.headers.get("content-type"))

    def work() -> IngestReport:
        engine = _pulse(request).engine
        spec = engine.registry.get(name)
        engine.registry.require_version(spec, version)
        table = parse_table(body, kind, limits, accept=INGEST_TYPES)
        request.state.rows = table.num_rows
        if table.num_rows == 0:
            return IngestReport(0, 0, 0)
        if prediction and prediction != spec.prediction:
            table = _rename(table, prediction, spec.prediction)
        ts = timestamp or ("timestamp" if "timestamp" in table.column_names else None)
        return engine.ingest_predictions(
            spec,
            version,
            table,
            id_col=id,
            ts_col=ts,
            batch_id=idempotency_key,
            batch_hash=batch_hash("prediction", version, request, body),
        )

    return _report(await run_in_threadpool(work), idempotency_key)


@router.post(
    "/models/{name}/feedback",
    response_model=IngestResult,
    responses=_INGEST_ERRORS,
    openapi_extra=INGEST_BODY,
    tags=["ingest"],
)
async def ingest_feedback(
    request: Request,
    name: NameParam,
    idempotency_key: IdempotencyKey = None,
    id: Annotated[str, Query(min_length=1, max_length=256, description="id column")] = "id",
    label: Annotated[
        str | None,
        Query(min_length=1, max_length=256, description="label column if not the model's"),
    ] = None,
    timestamp: Annotated[
        str | None, Query(min_length=1, max_length=256, description="label-time column")
    ] = None,
    _: None = require("ingest"),
) -> JSONResponse:
    """Store a batch of labels (ground truth) for logged or future predictions."""
    limits = request.app.state.limits
    body = await read_body(request, limits)
    kind = media_type(request.headers.get("content-type"))

    def work() -> IngestReport:
        engine = _pulse(request).engine
        spec = engine.registry.get(name)
        table = parse_table(body, kind, limits, accept=INGEST_TYPES)
        request.state.rows = table.num_rows
        if table.num_rows == 0:
            return IngestReport(0, 0, 0)
        return engine.ingest_feedback(
            spec,
            table,
            id_col=id,
            label_col=label or spec.label,
            ts_col=timestamp,
            batch_id=idempotency_key,
            batch_hash=batch_hash("feedback", None, request, body),
        )

    return _report(await run_in_threadpool(work), idempotency_key)


def _rename(table: pa.Table, old: str, new: str) -> pa.Table:
    if old not in table.column_names:
        return table  # the engine names the missing column
    if new in table.column_names:
        raise ApiError(
            422,
            f"the batch has both {old!r} (named as the prediction) and the model's prediction "
            f"column {new!r}",
            errors=[{"loc": ["query", "prediction"], "msg": "ambiguous", "type": "ambiguous"}],
        )
    return table.rename_columns([new if c == old else c for c in table.column_names])


# -- queries --------------------------------------------------------------------------


def _versions(request: Request, spec: ModelSpec, version: str) -> list[str]:
    registry = _pulse(request).engine.registry
    if version in ("*", "all"):
        return registry.versions(spec)
    registry.require_version(spec, version)
    return [version]


def _wants_arrow(request: Request) -> bool:
    return ARROW_STREAM in request.headers.get("accept", "")


def _frame_response(
    request: Request, frame: pd.DataFrame, spec: ModelSpec, versions: list[str]
) -> Response:
    if _wants_arrow(request):
        table = pa.Table.from_pandas(frame, preserve_index=False)
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        return Response(sink.getvalue().to_pybytes(), media_type=ARROW_STREAM)
    return JSONResponse(
        {
            "model": spec.name,
            "versions": versions,
            "columns": [str(c) for c in frame.columns],
            "rows": records(frame),
        }
    )


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as JSON-safe dicts: timestamps in ISO 8601, NaN and NaT as None."""
    out = frame.copy()
    for column in out.columns:
        series = out[column]
        if pd.api.types.is_datetime64_any_dtype(series):
            out[column] = [None if pd.isna(t) else t.isoformat() for t in series]
    rows = out.astype(object).to_dict(orient="records")
    for row in rows:
        for key, value in row.items():
            if value is None:
                continue
            if isinstance(value, float) and not math.isfinite(value):
                row[key] = None
            elif hasattr(value, "item"):  # numpy scalar
                item = value.item()
                row[key] = None if isinstance(item, float) and not math.isfinite(item) else item
            elif value is pd.NA or value is pd.NaT:
                row[key] = None
    return rows


_QUERY_ERRORS = error_responses(400, 401, 403, 404, 422)
Metrics = Annotated[
    list[str] | None,
    Query(description="metric names (repeat, or comma-separated); default: all built-in"),
]
Start = Annotated[str, Query(min_length=1, max_length=64, description="ISO time or '-24h'")]
End = Annotated[str, Query(min_length=1, max_length=64, description="ISO time or 'now'")]
Step = Annotated[str | None, Query(min_length=1, max_length=32, description="e.g. '1h'")]
Segment = Annotated[str | None, Query(min_length=1, max_length=300, description="'plan=pro'")]


@router.get(
    "/models/{name}/versions/{version}/metrics",
    response_model=FrameResult,
    responses=_QUERY_ERRORS | FRAME_RESPONSE,
    tags=["queries"],
)
def get_metrics(
    request: Request,
    name: NameParam,
    version: VersionParam,
    metrics: Metrics = None,
    start: Start = "-24h",
    end: End = "now",
    step: Step = None,
    segment: Segment = None,
    _: None = require("read"),
) -> Response:
    """``model.metrics``: one row per window with window_start, window_end, n, n_labeled and
    each metric. ``Accept: application/vnd.apache.arrow.stream`` returns the frame as Arrow."""
    pulse = _pulse(request)
    spec = _spec(request, name)
    versions = _versions(request, spec, version)
    names = [m for item in metrics for m in item.split(",") if m] if metrics else None
    frame = compute_metrics(
        pulse.store,
        pulse.engine.registry,
        spec,
        names,
        start=start,
        end=end,
        step=step,
        segment=segment,
        versions=versions,
    )
    return _frame_response(request, frame, spec, versions)


@router.get(
    "/models/{name}/versions/{version}/summary",
    response_model=FrameResult,
    responses=_QUERY_ERRORS | FRAME_RESPONSE,
    tags=["queries"],
)
def get_summary(
    request: Request,
    name: NameParam,
    version: VersionParam,
    start: Start = "-24h",
    end: End = "now",
    step: Step = None,
    segment: Segment = None,
    _: None = require("read"),
) -> Response:
    """``model.summary``: per window and feature column, counts, missing and statistics."""
    pulse = _pulse(request)
    spec = _spec(request, name)
    versions = _versions(request, spec, version)
    frame = compute_summary(
        pulse.store,
        pulse.engine.registry,
        spec,
        start=start,
        end=end,
        step=step,
        segment=segment,
        versions=versions,
    )
    return _frame_response(request, frame, spec, versions)


@router.get(
    "/models/{name}/quarantine",
    response_model=QuarantineResult,
    responses=_QUERY_ERRORS | FRAME_RESPONSE,
    tags=["queries"],
)
def get_quarantine(
    request: Request,
    name: NameParam,
    version: Annotated[
        str | None,
        Query(min_length=1, max_length=200, description="this version's rows and feedback rows"),
    ] = None,
    start: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    end: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    _: None = require("read"),
) -> Response:
    """Quarantined rows (received in [start, end)) with their reason and the row as JSON."""
    pulse = _pulse(request)
    spec = _spec(request, name)
    lo = to_micros(start) if start is not None else None
    hi = to_micros(end) if end is not None else None
    frame = pulse.engine.quarantined(spec, lo, hi)
    if version is not None:
        frame = frame[frame["version"].isna() | (frame["version"] == version)].reset_index(
            drop=True
        )
    if _wants_arrow(request):
        return _frame_response(request, frame, spec, [version] if version else [])
    return JSONResponse({"model": spec.name, "rows": records(frame)})


# -- keys -----------------------------------------------------------------------------

_KEY_ERRORS = error_responses(400, 401, 403, 422)


@router.post("/keys", response_model=KeyCreated, responses=_KEY_ERRORS, tags=["keys"])
def create_key(request: Request, body: KeyRequest, _: None = require("admin")) -> JSONResponse:
    """Create an API key; the response is the only place its secret appears."""
    keys = request.app.state.keys
    key = keys.create(body.scope, body.name)
    info = keys.check(key)
    return JSONResponse(info.to_dict() | {"key": key})


@router.get("/keys", response_model=KeyList, responses=_KEY_ERRORS, tags=["keys"])
def list_keys(request: Request, _: None = require("admin")) -> JSONResponse:
    """Every key, revoked ones included, without secrets."""
    return JSONResponse({"keys": [k.to_dict() for k in request.app.state.keys.list()]})


@router.delete(
    "/keys/{key_id}",
    response_model=KeyList,
    responses=error_responses(401, 403, 404, 422),
    tags=["keys"],
)
def revoke_key(
    request: Request,
    key_id: Annotated[str, Path(min_length=1, max_length=200)],
    _: None = require("admin"),
) -> JSONResponse:
    """Revoke a key by id; it stops working at once."""
    keys = request.app.state.keys
    if key_id not in {k.key_id for k in keys.list()}:
        raise ApiError(404, f"no API key with id {key_id!r}")
    keys.revoke(key_id)
    return JSONResponse({"keys": [k.to_dict() for k in keys.list()]})


__all__ = ["records", "require", "router"]
