"""HTTP errors: one JSON shape for every 4xx/5xx answer.

``{"detail": "what went wrong", "code": "machine_readable", "errors": [{"loc": [...],
"msg": "...", "type": "..."}]}``; ``errors`` lists field paths where they are known
(422). Exceptions of :mod:`mlpulse.errors` map to statuses in :data:`STATUS`.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import errors as mlerrors

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
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
    500: "internal_error",
    503: "unavailable",
}

#: mlpulse exception -> (status, code); the first matching class wins.
STATUS: list[tuple[type[BaseException], int, str]] = [
    (mlerrors.UnknownModelError, 404, "unknown_model"),
    (mlerrors.ModelConflictError, 409, "model_conflict"),
    (mlerrors.UnknownMetricError, 422, "unknown_metric"),
    (mlerrors.SchemaError, 422, "schema_error"),
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


def install(app: FastAPI) -> None:
    """Register the handlers that turn every exception into an error body."""

    @app.exception_handler(ApiError)
    async def _api(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.detail, exc.code, exc.errors, exc.headers)

    @app.exception_handler(mlerrors.MlpulseError)
    async def _mlpulse(request: Request, exc: mlerrors.MlpulseError) -> JSONResponse:
        for cls, status, code in STATUS:
            if isinstance(exc, cls):
                return error_response(status, str(exc), code)
        return error_response(400, str(exc))  # pragma: no cover

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
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return error_response(500, f"internal error: {type(exc).__name__}", "internal_error")


__all__ = ["ApiError", "ErrorBody", "ErrorItem", "error_response", "error_responses", "install"]
