"""API keys (scope ``admin``): create, list, revoke."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse

from ..errors import ApiError, error_responses
from ..schemas import KeyCreated, KeyList, KeyRequest
from .common import require

router = APIRouter()

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


__all__ = ["router"]
