"""Investigation: segment ranking, slice finding and drill-down rows (scope ``read``).

POST bodies carry the structured arguments (a baseline window, ``where=``); the answers are
tables, as Arrow IPC for ``Accept: application/vnd.apache.arrow.stream`` (nested cells, a
slice's ``conditions``, as JSON text named in the schema, see ``mlpulse._frames``) or JSON
``{"model", "versions", "columns", "rows", "attrs"}``. Drill-down pages hold at most 1,000
rows; ``attrs.next`` (also ``next`` in JSON) is the cursor of the next page."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import pandas as pd
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import Field

from ..._frames import frame_to_arrow
from ...drift.report import to_json
from ...investigate.drill import PAGE_ROWS
from ..bodies import ARROW_STREAM
from ..schemas import Cell, ColumnName, FrameResult, RequestBody, Text, Time, VersionName, Window
from .common import (
    FRAME_RESPONSE,
    QUERY_ERRORS,
    NameParam,
    VersionParam,
    records,
    require,
    service,
    target,
    wants_arrow,
)

router = APIRouter()

_TABLE: dict[str, Any] = {
    "response_model": FrameResult,
    "responses": QUERY_ERRORS | FRAME_RESPONSE,
    "tags": ["investigation"],
}


class SegmentsRequest(RequestBody):
    """``model.segments``'s arguments."""

    metric: Text
    start: Time = "-24h"
    end: Time = "now"
    #: None: the reference if it has labels, else the previous window of the same length
    against: Literal["reference", "previous"] | Window | None = None
    segment: ColumnName | Annotated[list[ColumnName], Field(max_length=100)] | None = None
    versions: VersionName | None = None


class SlicesRequest(RequestBody):
    """``model.slices``'s arguments."""

    start: Time = "-24h"
    end: Time = "now"
    metric: Text = "error"
    max_conditions: int = 2
    #: a row count (>= 1) or a fraction of the rows (< 1); default max(30, 1%)
    min_support: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    limit: int = Field(default=20, ge=1, le=10_000)
    alpha: float = Field(default=0.05, gt=0, le=1, allow_inf_nan=False)
    versions: VersionName | None = None


class RowsRequest(RequestBody):
    """``model.rows``'s arguments, for one page."""

    start: Time = "-24h"
    end: Time = "now"
    where: dict[ColumnName, Cell | Annotated[list[Cell], Field(max_length=10_000)]] | None = Field(
        default=None, max_length=100
    )
    ids: (
        Annotated[list[Annotated[str, Field(max_length=1000)]], Field(max_length=10_000)] | None
    ) = None
    limit: int = Field(default=100, ge=1, le=PAGE_ROWS)
    include_quarantined: bool = False
    cursor: Annotated[str, Field(min_length=1, max_length=4096)] | None = None
    versions: VersionName | None = None


def _table(request: Request, frame: pd.DataFrame, model: str, versions: list[str]) -> Response:
    if wants_arrow(request):
        return Response(frame_to_arrow(frame), media_type=ARROW_STREAM)
    body: dict[str, Any] = {
        "model": model,
        "versions": versions,
        "columns": [str(c) for c in frame.columns],
        "rows": records(frame),
        "attrs": to_json(frame.attrs),
    }
    if "next" in frame.attrs:
        body["next"] = frame.attrs["next"]
    return JSONResponse(body)


@router.post("/models/{name}/versions/{version}/segments", **_TABLE)
def post_segments(
    request: Request, name: NameParam, version: VersionParam, body: SegmentsRequest,
    _: None = require("read"),
) -> Response:  # fmt: skip
    """``model.segments``: segment values ranked by contribution to the metric's change
    (``attrs``: metric, against, total, total_against, change)."""
    svc = service(request)
    t = target(svc, name, version, body.versions)
    against = body.against.model_dump() if isinstance(body.against, Window) else body.against
    frame = svc.segments(
        name, t.version, body.metric, start=body.start, end=body.end, against=against,
        segment=body.segment, versions=t.versions,
    )  # fmt: skip
    return _table(request, frame, t.spec.name, t.read)


@router.post("/models/{name}/versions/{version}/slices", **_TABLE)
def post_slices(
    request: Request, name: NameParam, version: VersionParam, body: SlicesRequest,
    _: None = require("read"),
) -> Response:  # fmt: skip
    """``model.slices``: feature slices with significantly more errors."""
    svc = service(request)
    t = target(svc, name, version, body.versions)
    support: Any = body.min_support
    if support is not None and support >= 1 and float(support).is_integer():
        support = int(support)
    frame = svc.slices(
        name, t.version, start=body.start, end=body.end, metric=body.metric,
        max_conditions=body.max_conditions, min_support=support, limit=body.limit,
        versions=t.versions, alpha=body.alpha,
    )  # fmt: skip
    return _table(request, frame, t.spec.name, t.read)


@router.post("/models/{name}/versions/{version}/rows", **_TABLE)
def post_rows(
    request: Request, name: NameParam, version: VersionParam, body: RowsRequest,
    _: None = require("read"),
) -> Response:  # fmt: skip
    """``model.rows``: one page of raw rows (at most 1,000); ``next`` continues."""
    svc = service(request)
    t = target(svc, name, version, body.versions)
    frame = svc.rows(
        name, t.version, start=body.start, end=body.end, where=body.where, ids=body.ids,
        limit=body.limit, include_quarantined=body.include_quarantined, cursor=body.cursor,
        versions=t.versions,
    )  # fmt: skip
    return _table(request, frame, t.spec.name, t.read)


__all__ = ["RowsRequest", "SegmentsRequest", "SlicesRequest", "router"]
