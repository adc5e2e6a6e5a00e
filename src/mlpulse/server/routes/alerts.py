"""Alerting over HTTP: rules and notifiers, evaluation, alerts, incidents, silences and the
notification outbox (the ``Pulse`` alerting methods, one route each).

Scopes: reading alerts, incidents, silences and notifications needs ``read``; everything
that changes alerting needs ``admin``, and so does reading the notifier configurations:
notifiers make the server send requests (with ``${ENV}`` secrets expanded) to the URLs they
name, a Slack webhook URL is itself a secret, and a silence can mute a page.

Tables answer Arrow IPC for ``Accept: application/vnd.apache.arrow.stream`` (what the
Python client reads: the embedded client's frame exactly, dict and list cells such as
``labels`` included, see :mod:`mlpulse._frames`), else JSON ``{"columns", "rows"}``.
"""

from __future__ import annotations

from typing import Annotated, Any

import pandas as pd
import yaml
from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from ..._frames import frame_to_arrow
from ...errors import RuleError
from ..bodies import ARROW_STREAM, JSON, Limits, loads, media_type, read_body
from ..errors import ApiError, error_responses
from ..schemas import Duration, RequestBody, Time
from .common import QUERY_ERRORS, records, require, service, wants_arrow

router = APIRouter()

#: Media types of a rules body besides JSON.
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml", "text/plain")
#: Largest rules body (also bounded by the server's max_body_bytes).
MAX_RULES_BYTES = 4 * 1024 * 1024
#: Incident ids are 64-bit integers.
INCIDENT_ID = Annotated[int, Path(ge=-(2**63), le=2**63 - 1, description="incident id")]
WRITE = error_responses(400, 401, 403, 404, 413, 415, 422, 503, 507)

_BINARY = {"type": "string", "format": "binary"}
TABLE_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {ARROW_STREAM: {"schema": _BINARY}}, "description": "the table"}
}


class TableResult(BaseModel):
    """A table: ``columns`` in order and one object per row (NaN as null, times ISO 8601;
    ``labels``, ``annotations``, ``matchers`` and ``rule`` cells are objects)."""

    columns: list[str]
    rows: list[dict[str, Any]]


class RulesLoaded(BaseModel):
    """The names of the rules the request stored."""

    rules: list[str]


class RulesDeleted(BaseModel):
    deleted: int


class NotifierList(BaseModel):
    """Notifier configurations as stored (secrets as ``${ENV}`` references)."""

    notifiers: list[dict[str, Any]]


class EvaluateRequest(RequestBody):
    """``pulse.evaluate(at)``: ``at`` is an ISO time or a relative one (``-1h``); default
    now."""

    at: Time | None = None


class SilenceRequest(RequestBody):
    """``pulse.silence(matchers, duration, comment, created_by, start)``."""

    matchers: dict[str, Any] = Field(max_length=100)
    duration: Duration | Annotated[float, Field(gt=0, allow_inf_nan=False)] = "2h"
    comment: str = Field(default="", max_length=2000)
    created_by: str | None = Field(default=None, max_length=200)
    start: Time | None = None


class SilenceCreated(BaseModel):
    id: str


class IncidentResult(BaseModel):
    """One incident with its alerts and timeline (tables as lists of row objects)."""

    id: int
    title: str
    status: str
    opened_at: str | None
    acknowledged_at: str | None
    resolved_at: str | None
    models: list[str]
    alerts: list[dict[str, Any]]
    timeline: list[dict[str, Any]]


def table(request: Request, frame: pd.DataFrame) -> Response:
    """A frame as Arrow IPC (for the Python client) or JSON."""
    if wants_arrow(request):
        return Response(frame_to_arrow(frame), media_type=ARROW_STREAM)
    return JSONResponse({"columns": [str(c) for c in frame.columns], "rows": records(frame)})


_TABLE: dict[str, Any] = {"response_model": TableResult, "responses": QUERY_ERRORS | TABLE_RESPONSE}


# -- rules and notifiers ----------------------------------------------------------------


@router.get("/rules", tags=["alerts"], **_TABLE)
def get_rules(request: Request, _: None = require("read")) -> Response:
    """``pulse.rules.list()``: one row per stored rule, the full rule in ``rule``."""
    return table(request, service(request).rules())


RULES_BODY = {
    "requestBody": {
        "required": True,
        "description": "rules (and notifiers) as YAML or JSON: a mapping with `rules` (and "
        "`notifiers`), or a list of rules",
        "content": {
            JSON: {"schema": {"oneOf": [{"type": "object"}, {"type": "array"}]}},
            **{t: {"schema": {"type": "string"}} for t in YAML_TYPES},
        },
    }
}


@router.post(
    "/rules",
    response_model=RulesLoaded,
    responses=WRITE,
    openapi_extra=RULES_BODY,
    tags=["alerts"],
)
async def post_rules(
    request: Request,
    replace: Annotated[
        bool, Query(description="drop the other user rules and notifiers first")
    ] = False,
    _: None = require("admin"),
) -> JSONResponse:
    """``pulse.rules.load``: store rules and notifiers; a rule of the same name is
    replaced. A bad rule is a 422 (``invalid_rule``) naming the rule and the field, and
    nothing is stored."""
    limits = request.app.state.limits
    bounded = Limits(
        max_body_bytes=min(limits.max_body_bytes, MAX_RULES_BYTES),
        max_rows=limits.max_rows,
        max_features=limits.max_features,
        max_string_length=limits.max_string_length,
    )
    body = await read_body(request, bounded)
    document = parse_rules_body(body, media_type(request.headers.get("content-type")))
    names = await run_in_threadpool(service(request).load_rules, document, replace)
    return JSONResponse({"rules": names})


def parse_rules_body(body: bytes, kind: str) -> Any:
    """The rules document of a request body: a mapping or a list, never text (a text
    document would be read as a path by ``parse_rules``: never on the server)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ApiError(400, f"the body is not valid UTF-8 (byte {exc.start})", "invalid_utf8") from None
    if kind == JSON:
        try:
            document = loads(text)
        except ValueError as exc:  # json.JSONDecodeError, NaN or Infinity
            raise ApiError(400, f"the body is not valid JSON: {exc}", "invalid_json") from None
    elif kind in YAML_TYPES or kind == "":
        try:
            document = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
            raise RuleError(f"rules: invalid YAML in the body{at}: {getattr(exc, 'problem', exc)}") from None
        except RecursionError:
            raise RuleError("rules: the YAML is nested too deeply") from None
    else:
        raise ApiError(
            415,
            f"unsupported Content-Type {kind!r} for rules; use {JSON} or application/yaml",
        )
    if not isinstance(document, dict | list):
        raise RuleError(
            "rules: expected a mapping with 'rules' (and 'notifiers') or a list of rules, "
            f"got {type(document).__name__}"
        )
    check_unicode(document, "rules")
    return document


def check_unicode(value: Any, what: str, depth: int = 0) -> None:
    """Every text in ``value`` is valid Unicode (JSON escapes can carry lone surrogates,
    which no table, log line or answer can hold): a RuleError naming the text."""
    if depth > 50:
        raise RuleError(f"{what}: nested too deeply")
    items: Any
    if isinstance(value, str):
        items = ()
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise RuleError(
                f"{what}: {value[max(0, exc.start - 20) : exc.end + 20]!r} is not valid "
                f"Unicode ({exc.reason})"
            ) from None
    elif isinstance(value, dict):
        items = [*value.keys(), *value.values()]
    elif isinstance(value, list):
        items = value
    else:
        items = ()
    for item in items:
        check_unicode(item, what, depth + 1)


@router.delete(
    "/rules/{name}",
    response_model=RulesDeleted,
    responses=error_responses(401, 403, 422, 503),
    tags=["alerts"],
)
def delete_rule(
    request: Request,
    name: Annotated[str, Path(min_length=1, max_length=200, description="rule name")],
    _: None = require("admin"),
) -> JSONResponse:
    """``pulse.rules.delete(name)``: ``deleted`` is 1, or 0 if no rule had that name."""
    return JSONResponse({"deleted": service(request).delete_rules([name])})


@router.get(
    "/notifiers",
    response_model=NotifierList,
    responses=error_responses(401, 403, 503),
    tags=["alerts"],
)
def get_notifiers(request: Request, _: None = require("admin")) -> JSONResponse:
    """``pulse.rules.notifiers()``: the stored configurations (``admin``: a notifier's URL
    can be a secret)."""
    return JSONResponse({"notifiers": service(request).notifiers()})


# -- evaluation and alerts --------------------------------------------------------------


@router.post(
    "/evaluate",
    response_model=TableResult,
    responses=QUERY_ERRORS | TABLE_RESPONSE,
    tags=["alerts"],
)
def post_evaluate(
    request: Request, body: EvaluateRequest | None = None, _: None = require("admin")
) -> Response:
    """``pulse.evaluate(at)``: evaluate every rule once at ``at`` (default now) and store
    the result; one row per rule and model with state, value and threshold."""
    at = body.at if body is not None else None
    return table(request, service(request).evaluate(at))


Filter = Annotated[str | None, Query(min_length=1, max_length=10_000)]


@router.get("/alerts", tags=["alerts"], **_TABLE)
def get_alerts(
    request: Request, state: Filter = None, model: Filter = None, _: None = require("read")
) -> Response:
    """``pulse.alerts(state, model)``: alerts newest first (``state``: pending, firing or
    resolved)."""
    return table(request, service(request).alerts(state=state, model=model))


# -- incidents --------------------------------------------------------------------------


@router.get("/incidents", tags=["alerts"], **_TABLE)
def get_incidents(request: Request, status: Filter = None, _: None = require("read")) -> Response:
    """``pulse.incidents(status)``: incidents newest first (``status``: open,
    acknowledged or resolved)."""
    return table(request, service(request).incidents(status=status))


def _incident(request: Request, incident_id: int) -> dict[str, Any]:
    try:
        return service(request).incident(incident_id)
    except RuleError as exc:
        raise ApiError(404, str(exc), "unknown_incident") from None


def _time(value: Any) -> str | None:
    return None if value is None or pd.isna(value) else pd.Timestamp(value).isoformat()


@router.get(
    "/incidents/{incident_id}",
    response_model=IncidentResult,
    responses=error_responses(401, 403, 404, 422, 503),
    tags=["alerts"],
)
def get_incident(
    request: Request, incident_id: INCIDENT_ID, _: None = require("read")
) -> JSONResponse:
    """``pulse.incident(id)``: the incident, its alerts and its timeline."""
    found = _incident(request, incident_id)
    body = {k: found[k] for k in ("id", "title", "status", "models")}
    for key in ("opened_at", "acknowledged_at", "resolved_at"):
        body[key] = _time(found[key])
    body["alerts"] = records(found["alerts"])
    body["timeline"] = records(found["timeline"])
    return JSONResponse(body)


@router.get(
    "/incidents/{incident_id}/alerts",
    response_model=TableResult,
    responses=error_responses(401, 403, 404, 422, 503) | TABLE_RESPONSE,
    tags=["alerts"],
)
def get_incident_alerts(
    request: Request, incident_id: INCIDENT_ID, _: None = require("read")
) -> Response:
    """``pulse.incident(id).alerts`` as a table."""
    return table(request, _incident(request, incident_id)["alerts"])


@router.get(
    "/incidents/{incident_id}/timeline",
    response_model=TableResult,
    responses=error_responses(401, 403, 404, 422, 503) | TABLE_RESPONSE,
    tags=["alerts"],
)
def get_incident_timeline(
    request: Request, incident_id: INCIDENT_ID, _: None = require("read")
) -> Response:
    """``pulse.incident(id).timeline`` as a table: at, kind, alert_id, detail."""
    return table(request, _incident(request, incident_id)["timeline"])


@router.get(
    "/incidents/{incident_id}/root_cause",
    response_model=TableResult,
    responses=error_responses(401, 403, 404, 422, 503) | TABLE_RESPONSE,
    tags=["alerts"],
)
def get_incident_root_cause(
    request: Request, incident_id: INCIDENT_ID, _: None = require("read")
) -> Response:
    """``pulse.incident(id).root_cause`` as a table: rank, kind, subject, score, detail."""
    try:
        found = service(request).root_cause(incident_id)
    except RuleError as exc:
        raise ApiError(404, str(exc), "unknown_incident") from None
    return table(request, found)


@router.post(
    "/incidents/{incident_id}/acknowledge",
    status_code=204,
    response_class=Response,
    responses=error_responses(401, 403, 404, 422, 503),
    tags=["alerts"],
)
def acknowledge_incident(
    request: Request, incident_id: INCIDENT_ID, _: None = require("admin")
) -> Response:
    """``pulse.incident(id).acknowledge()``: an open incident becomes acknowledged."""
    try:
        service(request).acknowledge(incident_id)
    except RuleError as exc:
        raise ApiError(404, str(exc), "unknown_incident") from None
    return Response(status_code=204)


# -- silences and notifications ---------------------------------------------------------


@router.get("/silences", tags=["alerts"], **_TABLE)
def get_silences(request: Request, _: None = require("read")) -> Response:
    """``pulse.silences()``: every silence with its matchers, times and ``active``."""
    return table(request, service(request).silences())


@router.post(
    "/silences",
    response_model=SilenceCreated,
    responses=WRITE,
    tags=["alerts"],
)
def post_silence(request: Request, body: SilenceRequest, _: None = require("admin")) -> JSONResponse:
    """``pulse.silence(...)``: matching alerts keep their state but notify nobody, from
    ``start`` (default now) for ``duration``; answers the silence's id."""
    check_unicode([body.matchers, body.comment, body.created_by], "silence")
    silence_id = service(request).silence(
        body.matchers, body.duration, body.comment, body.created_by, body.start
    )
    return JSONResponse({"id": silence_id})


@router.delete(
    "/silences/{silence_id}",
    status_code=204,
    response_class=Response,
    responses=error_responses(401, 403, 404, 422, 503),
    tags=["alerts"],
)
def delete_silence(
    request: Request,
    silence_id: Annotated[str, Path(min_length=1, max_length=200, description="silence id")],
    _: None = require("admin"),
) -> Response:
    """``pulse.expire_silence(id)``: the silence ends now."""
    try:
        service(request).expire_silence(silence_id)
    except RuleError as exc:
        raise ApiError(404, str(exc), "unknown_silence") from None
    return Response(status_code=204)


@router.get("/notifications", tags=["alerts"], **_TABLE)
def get_notifications(request: Request, _: None = require("read")) -> Response:
    """``pulse.notifications()``: the outbox: what was sent, is pending or failed, and
    why."""
    return table(request, service(request).notifications())


__all__ = ["router"]
