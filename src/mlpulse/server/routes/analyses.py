"""Analyses with options in a JSON body: drift, data quality and the ML Test Score checks.

They only read (scope ``read``); POST carries their structured options. Drift and checks
answer their report's ``to_dict()`` (rebuilt exactly by ``from_dict``); quality answers the
report's table."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from ..schemas import (
    ChecksRequest,
    DriftRequest,
    DriftResult,
    FrameResult,
    MonitorResult,
    QualityRequest,
)
from .common import (
    FRAME_RESPONSE,
    QUERY_ERRORS,
    NameParam,
    VersionParam,
    frame_response,
    require,
    service,
    target,
)

router = APIRouter()


def options(body: BaseModel) -> dict[str, Any]:
    """The fields the client sent (the service's defaults apply to the others); a window
    (``against``) as ``{"start", "end"}``."""
    return body.model_dump(exclude_unset=True)


@router.post(
    "/models/{name}/versions/{version}/drift",
    response_model=DriftResult,
    responses=QUERY_ERRORS,
    tags=["analyses"],
)
def post_drift(
    request: Request,
    name: NameParam,
    version: VersionParam,
    body: DriftRequest,
    _: None = require("read"),
) -> JSONResponse:
    """``model.drift``: the drift of a window against a baseline, as
    ``DriftReport.to_dict()``."""
    svc = service(request)
    given = options(body)
    t = target(svc, name, version, given.pop("versions", None))
    report = svc.drift(name, t.version, versions=t.versions, **given)
    return JSONResponse(report.to_dict())


@router.post(
    "/models/{name}/versions/{version}/quality",
    response_model=FrameResult,
    responses=QUERY_ERRORS | FRAME_RESPONSE,
    tags=["analyses"],
)
def post_quality(
    request: Request,
    name: NameParam,
    version: VersionParam,
    body: QualityRequest,
    _: None = require("read"),
) -> Response:
    """``model.quality``: the ``QualityReport``'s table (column, rule, violations, rows,
    rate; per window with a step)."""
    svc = service(request)
    given = options(body)
    t = target(svc, name, version, given.pop("versions", None))
    report = svc.quality(name, t.version, versions=t.versions, **given)
    return frame_response(request, report.to_pandas(), t.spec.name, t.read)


@router.post(
    "/models/{name}/versions/{version}/checks",
    response_model=MonitorResult,
    responses=QUERY_ERRORS,
    tags=["analyses"],
)
def post_checks(
    request: Request,
    name: NameParam,
    version: VersionParam,
    body: ChecksRequest,
    _: None = require("read"),
) -> JSONResponse:
    """``model.checks``: the ML Test Score monitors, as ``MonitorReport.to_dict()``."""
    report = service(request).checks(name, version, **options(body))
    return JSONResponse(report.to_dict())


__all__ = ["router"]
