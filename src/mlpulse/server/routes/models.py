"""Models: list, register, read, reference data, constraints and training info."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from ...schema import ModelSpec
from ...service import Service
from ..bodies import REFERENCE_TYPES, media_type, parse_table, read_body
from ..errors import error_responses
from ..schemas import (
    ConstraintList,
    ConstraintsRequest,
    ModelInfo,
    ModelList,
    RegisterRequest,
    TrainingInfoRequest,
)
from .common import WRITE_ERRORS, NameParam, VersionParam, require, service

router = APIRouter()

_BINARY = {"type": "string", "format": "binary"}
REFERENCE_BODY = {
    "requestBody": {
        "required": True,
        "description": "reference (training or validation) data as Arrow IPC or Parquet",
        "content": {t: {"schema": _BINARY} for t in REFERENCE_TYPES},
    }
}


def info(svc: Service, spec: ModelSpec, version: str | None = None) -> dict[str, Any]:
    return ModelInfo.of(spec, svc.versions(spec.name), version)


@router.get(
    "/models", response_model=ModelList, responses=error_responses(401, 403), tags=["models"]
)
def list_models(request: Request, _: None = require("read")) -> JSONResponse:
    """Every registered model with its schema and versions."""
    svc = service(request)
    return JSONResponse({"models": [info(svc, svc.spec(n)) for n in svc.models()]})


@router.post(
    "/models",
    response_model=ModelInfo,
    responses=error_responses(400, 401, 403, 404, 409, 422),
    tags=["models"],
)
def register_model(
    request: Request, body: RegisterRequest, _: None = require("ingest")
) -> JSONResponse:
    """Register a model version, or return it if it exists; a contradiction is a 409.

    ``features`` may map columns to kinds (``numeric`` | ``categorical``), as a client that
    inferred them from its reference data sends."""
    svc = service(request)
    features: Any = body.features  # a list, or a dict column -> kind: as received
    spec, version = svc.register(
        body.name,
        body.version,
        task=body.task,
        prediction=body.prediction,
        label=body.label,
        features=features,
        threshold=body.threshold,
        classes=body.classes,
        segments=body.segments,
        recommended_rules=body.recommended_rules,
    )
    return JSONResponse(info(svc, spec, version))


@router.get(
    "/models/{name}",
    response_model=ModelInfo,
    responses=error_responses(401, 403, 404, 422),
    tags=["models"],
)
def get_model(request: Request, name: NameParam, _: None = require("read")) -> JSONResponse:
    """One model's schema and versions."""
    svc = service(request)
    return JSONResponse(info(svc, svc.spec(name)))


@router.put(
    "/models/{name}/versions/{version}/reference",
    response_model=ModelInfo,
    responses=error_responses(400, 401, 403, 404, 409, 413, 415, 422),
    openapi_extra=REFERENCE_BODY,
    tags=["models"],
)
async def put_reference(
    request: Request,
    name: NameParam,
    version: VersionParam,
    features: Annotated[list[str] | None, Query(max_length=1_000)] = None,
    recommended_rules: Annotated[
        bool, Query(description="false: the model's first reference creates no default alert rules")
    ] = True,
    _: None = require("ingest"),
) -> JSONResponse:
    """Upload (replace) a version's reference data; new columns become features. The
    model's first reference creates its recommended alert rules (unless
    ``recommended_rules=false``)."""
    limits = request.app.state.limits
    body = await read_body(request, limits)
    kind = media_type(request.headers.get("content-type"))

    def work() -> dict[str, Any]:
        svc = service(request)
        svc.spec(name)  # an unknown model is a 404 before the body is parsed
        table = parse_table(body, kind, limits, accept=REFERENCE_TYPES)
        request.state.rows = table.num_rows
        spec = svc.put_reference(
            name, version, table, features or None, recommended_rules=recommended_rules
        )
        return info(svc, spec, version)

    return JSONResponse(await run_in_threadpool(work))


# -- constraints and training info ----------------------------------------------------


def _constraints(svc: Service, name: str) -> dict[str, Any]:
    return {"constraints": [c.to_dict() for c in svc.constraints(name)]}


@router.get(
    "/models/{name}/constraints",
    response_model=ConstraintList,
    responses=error_responses(401, 403, 404, 422),
    tags=["models"],
)
def get_constraints(request: Request, name: NameParam, _: None = require("read")) -> JSONResponse:
    """``model.constraints()``: the user constraints stored for the model, each as
    ``Constraint.to_dict()`` gives (``column``, ``rule`` and the rule's parameters)."""
    return JSONResponse(_constraints(service(request), name))


@router.put(
    "/models/{name}/constraints",
    response_model=ConstraintList,
    responses=WRITE_ERRORS,
    tags=["models"],
)
def put_constraints(
    request: Request, name: NameParam, body: ConstraintsRequest, _: None = require("ingest")
) -> JSONResponse:
    """``model.set_constraints(constraints, replace)``; answers every stored constraint."""
    svc = service(request)
    svc.set_constraints(name, body.constraints, replace=body.replace)
    return JSONResponse(_constraints(svc, name))


@router.put(
    "/models/{name}/versions/{version}/training-info",
    status_code=204,
    response_class=Response,
    responses=WRITE_ERRORS,
    tags=["models"],
)
def put_training_info(
    request: Request,
    name: NameParam,
    version: VersionParam,
    body: TrainingInfoRequest,
    _: None = require("ingest"),
) -> Response:
    """``model.set_training_info(trained_at, max_age)``: when the version was trained and
    how old it may get (the ``staleness`` check)."""
    service(request).set_training_info(name, version, body.trained_at, body.max_age)
    return Response(status_code=204)


__all__ = ["router"]
