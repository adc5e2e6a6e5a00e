"""Retention and compaction on demand (scope ``admin``): ``pulse.maintain()``.

The server also runs them on a schedule (:mod:`mlpulse.server.maintenance`); this route runs
them now and answers what was done.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from ..schemas import RequestBody, Time
from .common import QUERY_ERRORS, require, service

router = APIRouter()


class MaintainRequest(RequestBody):
    """``pulse.maintain(now)``: ``now`` is the instant retention counts back from (an ISO
    time or a relative one such as ``-1h``); default the current time."""

    now: Time | None = None


class MaintainResult(BaseModel):
    """What one maintenance run did, and the policy it applied."""

    archived_rows: int
    deleted_rows: int
    archived_feedback_rows: int
    deleted_feedback_rows: int
    lake_files: int
    profile_parts_deleted: int
    compacted: bool
    bytes_before: int
    bytes_after: int
    seconds: float
    raw_retention: str
    raw_archive: str
    minute_retention: str
    hour_retention: str


@router.post(
    "/maintain", response_model=MaintainResult, responses=QUERY_ERRORS, tags=["maintenance"]
)
def post_maintain(
    request: Request, body: MaintainRequest | None = None, _: None = require("admin")
) -> JSONResponse:
    """``pulse.maintain(now)``: run retention and compaction now (raw rows and feedback
    audit rows past the raw retention to the Parquet lake or deleted, old minute and hour
    profiles deleted, the file compacted) and answer what was done."""
    now: Any = body.now if body is not None else None
    return JSONResponse(service(request).maintain(now))
