"""Request and response bodies of the HTTP API, as pydantic models (they make the
OpenAPI document; large payloads are parsed without them, see ``bodies``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from ..engine.ingest import IngestReport
from ..schema import ModelSpec

Name = Field(min_length=1, max_length=200)


class RegisterRequest(BaseModel):
    """Register a model version, or return it when it is registered already."""

    name: str = Field(min_length=1, max_length=200)
    version: str | None = Field(default=None, min_length=1, max_length=200)
    task: Literal["binary", "multiclass", "regression"] | None = None
    prediction: str | None = Field(default=None, min_length=1, max_length=256)
    label: str | None = Field(default=None, min_length=1, max_length=256)
    #: a list of column names, or column -> "numeric" | "categorical"
    features: list[str] | dict[str, Literal["numeric", "categorical"]] | None = None
    threshold: float | None = None
    classes: list[str] | None = None
    segments: list[str] | None = None

    @field_validator("name", "version", "prediction", "label", "classes", "segments", "features")
    @classmethod
    def _names(cls, value: Any) -> Any:
        items = value if isinstance(value, list | dict) else [value]
        for item in items:
            if item is not None:
                check_name(item)
        return value


def check_name(name: str) -> str:
    """A column, model or version name: 1-256 characters of valid Unicode, no control
    characters (they would reach SQL identifiers and file names)."""
    if not name or len(name) > 256:
        raise ValueError("names must have 1 to 256 characters")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("names must be valid Unicode (no lone surrogates)") from None
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise ValueError("names must not contain control characters")
    return name


class ModelInfo(BaseModel):
    name: str
    task: str
    prediction: str
    label: str
    threshold: float
    classes: list[str] | None
    segments: list[str]
    features: dict[str, str]
    versions: list[str]
    version: str | None = None  # the version a registration call named (or chose)

    @classmethod
    def of(cls, spec: ModelSpec, versions: list[str], version: str | None = None) -> dict[str, Any]:
        return {
            "name": spec.name,
            "task": spec.task,
            "prediction": spec.prediction,
            "label": spec.label,
            "threshold": spec.threshold,
            "classes": list(spec.classes) if spec.classes is not None else None,
            "segments": list(spec.segments),
            "features": dict(spec.features),
            "versions": versions,
            "version": version,
        }


class ModelList(BaseModel):
    models: list[ModelInfo]


class IngestResult(BaseModel):
    """Answered after the batch is committed: ``received == stored + quarantined``."""

    received: int
    stored: int
    quarantined: int
    matched: int = 0
    held: int = 0
    idempotency_key: str | None = None

    @classmethod
    def of(cls, report: IngestReport, key: str | None) -> dict[str, Any]:
        return {
            "received": report.received,
            "stored": report.stored,
            "quarantined": report.quarantined,
            "matched": report.matched,
            "held": report.held,
            "idempotency_key": key,
        }


Cell = str | float | int | bool | None


class FrameResult(BaseModel):
    """A table: ``columns`` in order and one object per row (NaN as null, times ISO 8601)."""

    model: str
    versions: list[str]
    columns: list[str]
    rows: list[dict[str, Cell]]


class QuarantineRow(BaseModel):
    received_at: str
    kind: str
    version: str | None
    batch_row: int
    id: str | None
    reason: str
    payload: str


class QuarantineResult(BaseModel):
    model: str
    rows: list[QuarantineRow]


class KeyRequest(BaseModel):
    scope: Literal["ingest", "read", "admin"]
    name: str | None = Field(default=None, max_length=200)


class KeyInfo(BaseModel):
    key_id: str
    scope: str
    name: str | None
    created_at: str
    revoked_at: str | None


class KeyCreated(KeyInfo):
    key: str


class KeyList(BaseModel):
    keys: list[KeyInfo]


class Health(BaseModel):
    status: str
    version: str
    schema_version: int | None = None


__all__ = [
    "FrameResult",
    "Health",
    "IngestResult",
    "KeyCreated",
    "KeyInfo",
    "KeyList",
    "KeyRequest",
    "ModelInfo",
    "ModelList",
    "QuarantineResult",
    "QuarantineRow",
    "RegisterRequest",
]
