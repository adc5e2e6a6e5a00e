"""What the routes share: the key check, path and query parameters, the service, the query
boilerplate (model, handle version, versions read) and table (frame) responses."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Any

import pandas as pd
import pyarrow as pa
from fastapi import Depends, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ...drift.report import to_json
from ...errors import UnknownModelError
from ...schema import ModelSpec
from ...service import Service
from ..bodies import ARROW_STREAM
from ..errors import ApiError, error_responses

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


def service(request: Request) -> Service:
    """The app's :class:`~mlpulse.service.Service`."""
    found = getattr(request.app.state, "service", None)
    if found is None:
        raise ApiError(503, "the server is starting or stopping", "not_ready")
    return found


# -- parameters -----------------------------------------------------------------------

NameParam = Annotated[str, Path(min_length=1, max_length=200, description="model name")]
VersionParam = Annotated[
    str,
    Path(
        min_length=1,
        max_length=200,
        description="model version (the handle's: its reference is the baseline); on "
        "queries '*' or 'all' reads every version with the latest as the handle",
    ),
]
Metrics = Annotated[
    list[str] | None,
    Query(description="metric names (repeat, or comma-separated); default: all built-in"),
]
Start = Annotated[str, Query(min_length=1, max_length=64, description="ISO time or '-24h'")]
End = Annotated[str, Query(min_length=1, max_length=64, description="ISO time or 'now'")]
Step = Annotated[str | None, Query(min_length=1, max_length=32, description="e.g. '1h'")]
Segment = Annotated[str | None, Query(min_length=1, max_length=300, description="'plan=pro'")]
Align = Annotated[
    bool,
    Query(
        description="align a relative start to the step (windows on whole multiples of the "
        "step since the epoch, UTC); false: the first window starts at start"
    ),
]
Versions = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=200,
        description="the versions read: absent = the path's version, '*' or 'all' = every "
        "version, else one version name",
    ),
]
Mode = Annotated[
    str, Query(pattern="^(sketch|exact)$", description="'sketch' (profiles) or 'exact' (raw rows)")
]

QUERY_ERRORS = error_responses(400, 401, 403, 404, 422, 503, 507)
WRITE_ERRORS = error_responses(400, 401, 403, 404, 409, 422, 503, 507)

_BINARY = {"type": "string", "format": "binary"}
FRAME_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {ARROW_STREAM: {"schema": _BINARY}}, "description": "the table"}
}


def metric_names(metrics: list[str] | None) -> list[str] | None:
    """``?metrics=a,b&metrics=c`` -> ``["a", "b", "c"]`` (``None``: the default set)."""
    return [m for item in metrics for m in item.split(",") if m] if metrics else None


# -- queries --------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """What a query route reads: the model, the handle's ``version``, the ``versions``
    argument for the service and the version names it resolves to (``read``)."""

    spec: ModelSpec
    version: str
    versions: str | None
    read: list[str]


def target(svc: Service, name: str, version: str, versions: str | None = None) -> Target:
    """Resolve a query's model and versions (404 for an unknown model or version). A path
    version of ``*`` or ``all`` reads every version, with the latest as the handle."""
    spec = svc.spec(name)
    if version in ("*", "all"):
        known = svc.versions(name)
        if not known:
            raise UnknownModelError(f"model {spec.name!r} has no versions")
        version, versions = known[-1], versions or "*"
    else:
        svc.registry.require_version(spec, version)
    return Target(spec, version, versions, svc.query_versions(spec, version, versions))


def wants_arrow(request: Request) -> bool:
    return ARROW_STREAM in request.headers.get("accept", "")


def frame_response(
    request: Request, frame: pd.DataFrame, model: str, versions: list[str]
) -> Response:
    """A DataFrame as Arrow IPC (``Accept: application/vnd.apache.arrow.stream``; its
    ``attrs`` travel in the pandas metadata), else as JSON ``{"model", "versions",
    "columns", "rows"}`` (and ``attrs`` when the frame has any)."""
    if wants_arrow(request):
        table = pa.Table.from_pandas(frame, preserve_index=False)
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        return Response(sink.getvalue().to_pybytes(), media_type=ARROW_STREAM)
    body: dict[str, Any] = {
        "model": model,
        "versions": versions,
        "columns": [str(c) for c in frame.columns],
        "rows": records(frame),
    }
    if frame.attrs:
        body["attrs"] = to_json(frame.attrs)
    return JSONResponse(body)


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


__all__ = [
    "FRAME_RESPONSE",
    "QUERY_ERRORS",
    "WRITE_ERRORS",
    "Target",
    "frame_response",
    "metric_names",
    "records",
    "require",
    "service",
    "target",
    "wants_arrow",
]
