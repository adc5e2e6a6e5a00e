"""Ingest: predictions, labels (feedback), training features and resource usage.

Each request is one transaction, answered after it commits."""

from __future__ import annotations

import hashlib
import json
from typing import Annotated

import pyarrow as pa
from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from ...engine.ingest import IngestReport
from ...service import LOG_ID
from ..bodies import (
    ARROW_FILE,
    ARROW_STREAM,
    INGEST_TYPES,
    NDJSON,
    decode_body,
    media_type,
    parse_table,
    read_encoded,
)
from ..errors import ApiError, error_responses
from ..schemas import IngestResult, ProfilesResult, ResourceUsageRequest, StoredResult
from .common import WRITE_ERRORS, NameParam, VersionParam, require, service

router = APIRouter()

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
IdColumn = Annotated[str, Query(min_length=1, max_length=256, description="id column")]


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
    id: IdColumn = "id",
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
    sent, encoding = await read_encoded(request, limits)
    kind = media_type(request.headers.get("content-type"))

    def work() -> IngestReport:
        body = decode_body(sent, encoding, limits)  # in this thread, off the event loop
        svc = service(request)
        spec = svc.spec(name)
        svc.registry.require_version(spec, version)
        table = parse_table(body, kind, limits, accept=INGEST_TYPES)
        request.state.rows = table.num_rows
        if table.num_rows == 0:
            return IngestReport(0, 0, 0)
        digest = batch_hash("prediction", version, request, body)
        if id == LOG_ID:  # rows of Model.log(): the Service keeps every one
            return svc.log_queued(
                "prediction", name, version, table, batch_id=idempotency_key, batch_hash=digest
            )
        if prediction and prediction != spec.prediction:
            table = _rename(table, prediction, spec.prediction)
        return svc.log_batch(
            name,
            version,
            table,
            id=id,
            timestamp=timestamp,
            batch_id=idempotency_key,
            batch_hash=digest,
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
    id: IdColumn = "id",
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
    sent, encoding = await read_encoded(request, limits)
    kind = media_type(request.headers.get("content-type"))

    def work() -> IngestReport:
        body = decode_body(sent, encoding, limits)  # in this thread, off the event loop
        svc = service(request)
        svc.spec(name)  # an unknown model is a 404 before the body is parsed
        table = parse_table(body, kind, limits, accept=INGEST_TYPES)
        request.state.rows = table.num_rows
        if table.num_rows == 0:
            return IngestReport(0, 0, 0)
        if id == LOG_ID:  # rows of Model.log_feedback(): the Service keeps every one
            return svc.log_queued(
                "feedback", name, "", table, batch_id=idempotency_key,
                batch_hash=batch_hash("feedback", None, request, body),
            )
        return svc.log_feedback_batch(
            name,
            table,
            id=id,
            label=label,
            timestamp=timestamp,
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


@router.post(
    "/models/{name}/training-features",
    response_model=StoredResult,
    responses=_INGEST_ERRORS,
    openapi_extra=INGEST_BODY,
    tags=["ingest"],
)
async def ingest_training_features(
    request: Request,
    name: NameParam,
    id: IdColumn = "id",
    _: None = require("ingest"),
) -> JSONResponse:
    """``model.log_training_features(table, id)``: training rows keyed by id (replacing
    earlier rows of the same ids), compared with serving rows by the skew check. Bodies as
    for predictions."""
    limits = request.app.state.limits
    sent, encoding = await read_encoded(request, limits)
    kind = media_type(request.headers.get("content-type"))

    def work() -> int:
        body = decode_body(sent, encoding, limits)  # in this thread, off the event loop
        svc = service(request)
        svc.spec(name)
        table = parse_table(body, kind, limits, accept=INGEST_TYPES)
        request.state.rows = table.num_rows
        if table.num_rows == 0:
            return 0
        return svc.log_training_features(name, table, id)

    return JSONResponse({"stored": await run_in_threadpool(work)})


@router.post(
    "/models/{name}/versions/{version}/resource-usage",
    status_code=204,
    response_class=Response,
    responses=WRITE_ERRORS,
    tags=["ingest"],
)
def post_resource_usage(
    request: Request,
    name: NameParam,
    version: VersionParam,
    body: ResourceUsageRequest,
    _: None = require("ingest"),
) -> Response:
    """``model.log_resource_usage(memory_mb, timestamp)``: a memory sample of the serving
    process (the ``computational`` check)."""
    service(request).log_resource_usage(name, version, body.memory_mb, body.timestamp)
    return Response(status_code=204)


@router.put(
    "/models/{name}/versions/{version}/profiles",
    response_model=ProfilesResult,
    responses=_INGEST_ERRORS,
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "an Arrow IPC stream with columns segment, resolution, bucket, "
            "part, blob (what mlpulse.spark sends); Content-Encoding: gzip is accepted",
            "content": {ARROW_STREAM: {"schema": _BINARY}},
        }
    },
    tags=["ingest"],
)
async def put_profiles(
    request: Request,
    name: NameParam,
    version: VersionParam,
    idempotency_key: IdempotencyKey = None,
    replace: Annotated[
        bool, Query(description="replace the buckets covered (else merge into them)")
    ] = True,
    _: None = require("ingest"),
) -> JSONResponse:
    """``model.put_profiles(profiles, replace, batch_id)``: bucket profiles computed
    elsewhere (Spark partitions). ``replace=true`` replaces every bucket the body covers, so
    a re-run is idempotent; ``replace=false`` merges into the stored buckets, once per
    Idempotency-Key."""
    limits = request.app.state.limits
    sent, encoding = await read_encoded(request, limits)
    kind = media_type(request.headers.get("content-type"))

    def work() -> dict:
        body = decode_body(sent, encoding, limits)  # in this thread, off the event loop
        svc = service(request)
        spec = svc.spec(name)
        svc.registry.require_version(spec, version)
        if kind != ARROW_STREAM:
            raise ApiError(
                415, f"unsupported Content-Type {kind or 'none'!r}; send {ARROW_STREAM}"
            )
        try:
            table = pa.ipc.open_stream(pa.py_buffer(body)).read_all()
        except (pa.ArrowException, OSError, ValueError) as exc:
            raise ApiError(
                400, f"the body is not a valid Arrow IPC stream: {exc}", "invalid_arrow"
            ) from None
        if table.num_rows > limits.max_rows:
            raise ApiError(
                413, f"{table.num_rows} profile rows in one request; the limit is "
                f"{limits.max_rows} (max_rows): split the import"
            )  # fmt: skip
        digest = batch_hash("profiles", version, request, body)
        return svc.put_profiles(
            name, version, table, replace=replace, batch_id=idempotency_key, batch_hash=digest
        )

    return JSONResponse(ProfilesResult(**await run_in_threadpool(work)).model_dump())


__all__ = ["batch_hash", "router"]
