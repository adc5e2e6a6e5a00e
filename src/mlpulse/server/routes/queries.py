"""Queries answered as tables: metrics, summary, estimate, skew and quarantined rows.

``Accept: application/vnd.apache.arrow.stream`` answers the DataFrame as Arrow IPC (what the
Python client reads, so it gets exactly the embedded client's frame); otherwise JSON."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from ..schemas import FrameResult, QuarantineResult
from .common import (
    FRAME_RESPONSE,
    QUERY_ERRORS,
    Align,
    End,
    Metrics,
    Mode,
    NameParam,
    Segment,
    Start,
    Step,
    VersionParam,
    Versions,
    frame_response,
    metric_names,
    records,
    require,
    service,
    target,
    wants_arrow,
)

router = APIRouter()

_FRAME: dict[str, Any] = {"response_model": FrameResult, "responses": QUERY_ERRORS | FRAME_RESPONSE}


@router.get("/models/{name}/versions/{version}/metrics", tags=["queries"], **_FRAME)
def get_metrics(
    request: Request,
    name: NameParam,
    version: VersionParam,
    metrics: Metrics = None,
    start: Start = "-24h",
    end: End = "now",
    step: Step = None,
    segment: Segment = None,
    versions: Versions = None,
    align: Align = True,
    ci: Annotated[
        float | None,
        Query(gt=0, lt=1, description="confidence level: adds <metric>_lower and <metric>_upper"),
    ] = None,
    _: None = require("read"),
) -> Response:
    """``model.metrics``: one row per window with window_start, window_end, n, n_labeled and
    each metric (with ``ci``, each metric's interval right after it)."""
    svc = service(request)
    t = target(svc, name, version, versions)
    frame = svc.metrics(
        name,
        t.version,
        metric_names(metrics),
        start=start,
        end=end,
        step=step,
        segment=segment,
        versions=t.versions,
        align=align,
        ci=ci,
    )
    return frame_response(request, frame, t.spec.name, t.read)


@router.get("/models/{name}/versions/{version}/summary", tags=["queries"], **_FRAME)
def get_summary(
    request: Request,
    name: NameParam,
    version: VersionParam,
    start: Start = "-24h",
    end: End = "now",
    step: Step = None,
    segment: Segment = None,
    versions: Versions = None,
    align: Align = True,
    _: None = require("read"),
) -> Response:
    """``model.summary``: per window and feature column, counts, missing and statistics."""
    svc = service(request)
    t = target(svc, name, version, versions)
    frame = svc.summary(
        name,
        t.version,
        start=start,
        end=end,
        step=step,
        segment=segment,
        versions=t.versions,
        align=align,
    )
    return frame_response(request, frame, t.spec.name, t.read)


@router.get("/models/{name}/versions/{version}/estimate", tags=["queries"], **_FRAME)
def get_estimate(
    request: Request,
    name: NameParam,
    version: VersionParam,
    metrics: Metrics = None,
    start: Start = "-24h",
    end: End = "now",
    step: Step = None,
    segment: Segment = None,
    band: Annotated[bool, Query(description="add <metric>_lower and <metric>_upper")] = False,
    mode: Mode = "sketch",
    versions: Versions = None,
    align: Align = True,
    _: None = require("read"),
) -> Response:
    """``model.estimate``: label-free estimates (binary models), the metrics frame's shape;
    the band is in the frame's ``attrs`` (Arrow: the pandas metadata; JSON: ``attrs``)."""
    svc = service(request)
    t = target(svc, name, version, versions)
    frame = svc.estimate(
        name,
        t.version,
        metric_names(metrics),
        start=start,
        end=end,
        step=step,
        segment=segment,
        band=band,
        mode=mode,
        versions=t.versions,
        align=align,
    )
    return frame_response(request, frame, t.spec.name, t.read)


@router.get("/models/{name}/versions/{version}/skew", tags=["queries"], **_FRAME)
def get_skew(
    request: Request,
    name: NameParam,
    version: VersionParam,
    tolerance: Annotated[
        float, Query(description="relative tolerance for numbers to match")
    ] = 1e-9,
    _: None = require("read"),
) -> Response:
    """``model.skew``: training/serving skew per feature (column, ids, mismatches, rate)
    over ids logged both with ``training-features`` and in serving."""
    svc = service(request)
    spec = svc.spec(name)
    svc.registry.require_version(spec, version)
    frame = svc.skew(name, version, tolerance)
    return frame_response(request, frame, spec.name, [version])


@router.get(
    "/models/{name}/quarantine",
    response_model=QuarantineResult,
    responses=QUERY_ERRORS | FRAME_RESPONSE,
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
    svc = service(request)
    spec = svc.spec(name)
    frame = svc.quarantined(name, version, start=start, end=end)
    if wants_arrow(request):
        return frame_response(request, frame, spec.name, [version] if version else [])
    return JSONResponse({"model": spec.name, "rows": records(frame)})


__all__ = ["router"]
