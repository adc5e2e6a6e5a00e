"""HTTP errors: one JSON shape for every 4xx/5xx answer.

``{"detail": "what went wrong", "code": "machine_readable", "errors": [{"loc": [...],
"msg": "...", "type": "..."}]}``; ``errors`` lists field paths where they are known
(422). Exceptions of :mod:`mlpulse.errors` map to statuses in :data:`STATUS`; a full disk
is a 507 and an invalidated database a 503 (see :mod:`.health`). A 404 for a key without
read scope does not list the models or versions that exist.
"""

from __future__ import annotations

import logging
from typing import Any

import duckdb
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import errors as mlerrors
from .health import failure_of

log = logging.getLogger("mlpulse.server")


class ErrorItem(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ErrorBody(BaseModel):
    """The body of every error response."""

    detail: str
    code: str
    errors: list[ErrorItem] = []


class ApiError(Exception):
    """An error with its HTTP status, raised by routes and body parsers."""

    def __init__(
        self,
        status: int,
        detail: str,
        code: str | None = None,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.code = code or _CODES.get(status, "error")
        self.errors = errors or []
        self.headers = headers


_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    408: "request_timeout",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
    500: "internal_error",
    503: "unavailable",
    507: "insufficient_storage",
}

#: mlpulse exception -> (status, code); the first matching class wins.
STATUS: list[tuple[type[BaseException], int, str]] = [
    (mlerrors.UnknownModelError, 404, "unknown_model"),
    (mlerrors.ModelConflictError, 409, "model_conflict"),
    (mlerrors.IdempotencyConflictError, 409, "idempotency_conflict"),
    (mlerrors.UnknownMetricError, 422, "unknown_metric"),
    (mlerrors.SchemaError, 422, "schema_error"),
    (mlerrors.RuleError, 422, "invalid_rule"),
    (mlerrors.ConfigError, 422, "invalid_argument"),
    (mlerrors.StoreError, 503, "store_unavailable"),
    (mlerrors.MlpulseError, 400, "bad_request"),
]


#: OpenAPI ``responses`` for the error statuses a route can answer.
def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {s: {"model": ErrorBody, "description": _CODES.get(s, "error")} for s in statuses}


def error_response(
    status: int,
    detail: str,
    code: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = {"detail": detail, "code": code or _CODES.get(status, "error"), "errors": errors or []}
    return JSONResponse(body, status_code=status, headers=headers)


def _clean_loc(loc: Any) -> list[str | int]:
    return [p if isinstance(p, int) else str(p) for p in loc]


def storage_response(request: Request, exc: BaseException) -> JSONResponse | None:
    """A 507 (disk full) or 503 (database invalidated or reopening) for errors that say
    so, or None. The full error goes to the log; the answer never quotes server paths."""
    found = failure_of(exc)
    if found is None:
        return None
    status, code, detail = found
    health = getattr(request.app.state, "health", None)
    if health is not None:
        health.mark(exc)
    log.error(
        "%s on %s %s: %s",
        code,
        request.method,
        request.url.path,
        str(exc)[:2000],
        extra={"status": status, "code": code},
    )
    return error_response(
        status, detail, code, headers={"Retry-After": "1" if status == 503 else "10"}
    )


def _shown(text: str) -> str:
    return repr(text if len(text) <= 80 else text[:80] + "...")


def _may_read(request: Request) -> bool:
    """True unless API keys are on and this request's key lacks read scope."""
    keys = getattr(request.app.state, "keys", None)
    if keys is None or not keys.enabled:
        return True
    return getattr(request.state, "key_scope", None) in ("read", "admin")


def _unknown_model_detail(request: Request, exc: mlerrors.UnknownModelError) -> str:
    """The 404 message; for a key that may not read, without the names of other models
    or versions (the registry's message lists them)."""
    if _may_read(request):
        return str(exc)
    name = request.path_params.get("name")
    version = request.path_params.get("version")
    if not isinstance(name, str):
        return "unknown model or version (a key with read scope can list them)"
    try:
        exists = name in request.app.state.service.models()
    except Exception:
        exists = False
    if exists and isinstance(version, str):
        return f"model {_shown(name)} has no version {_shown(version)}"
    return f"unknown model {_shown(name)}"


def install(app: FastAPI) -> None:
    """Register the handlers that turn every exception into an error body."""

    @app.exception_handler(ApiError)
    async def _api(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.detail, exc.code, exc.errors, exc.headers)

    @app.exception_handler(mlerrors.MlpulseError)
    async def _mlpulse(request: Request, exc: mlerrors.MlpulseError) -> JSONResponse:
        if (storage := storage_response(request, exc)) is not None:
            return storage
        for cls, status, code in STATUS:
            if isinstance(exc, cls):
                if isinstance(exc, mlerrors.UnknownModelError):
                    return error_response(status, _unknown_model_detail(request, exc), code)
                return error_response(status, str(exc), code)
        return error_response(400, str(exc))  # pragma: no cover

    @app.exception_handler(duckdb.Error)
    @app.exception_handler(OSError)
    async def _storage(request: Request, exc: Exception) -> JSONResponse:
        if (storage := storage_response(request, exc)) is not None:
            return storage
        return _internal(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        items = [
            {
                "loc": _clean_loc(e.get("loc", ())),
                "msg": str(e.get("msg", "")),
                "type": str(e.get("type", "")),
            }
            for e in exc.errors()
        ]
        if any(i["type"] == "json_invalid" for i in items):
            return error_response(400, "the body is not valid JSON", "invalid_json", items)
        first = items[0] if items else {"loc": [], "msg": "invalid request"}
        where = ".".join(str(p) for p in first["loc"])
        return error_response(422, f"{where}: {first['msg']}", "invalid_input", items)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_response(
            exc.status_code, str(exc.detail), headers=getattr(exc, "headers", None)
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        if (storage := storage_response(request, exc)) is not None:
            return storage
        return _internal(request, exc)


def _internal(request: Request, exc: BaseException) -> JSONResponse:
    log.error(
        "unexpected error on %s %s",
        request.method,
        request.url.path,
        exc_info=(type(exc), exc, exc.__traceback__),
    )
    return error_response(500, f"internal error: {type(exc).__name__}", "internal_error")


__all__ = [
    "ApiError",
    "ErrorBody",
    "ErrorItem",
    "error_response",
    "error_responses",
    "install",
    "storage_response",
]
