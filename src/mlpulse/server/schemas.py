"""Request and response bodies of the HTTP API, as pydantic models (they make the
OpenAPI document; large payloads are parsed without them, see ``bodies``)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

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
    #: false: no default alert rules for this model (``pulse.model(recommended_rules=False)``)
    recommended_rules: bool = True

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
    """A table: ``columns`` in order and one object per row (NaN as null, times ISO 8601);
    ``attrs``: the frame's metadata, when it has any (the estimate's ``band``)."""

    model: str
    versions: list[str]
    columns: list[str]
    rows: list[dict[str, Cell]]
    attrs: dict[str, Any] | None = None


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


# -- analyses, constraints and training records ---------------------------------------

Time = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Duration = Annotated[str, StringConstraints(min_length=1, max_length=32)]
ColumnName = Annotated[str, StringConstraints(min_length=1, max_length=256)]
VersionName = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Text = Annotated[str, StringConstraints(min_length=1, max_length=300)]
Finite = Annotated[float, Field(allow_inf_nan=False)]
#: a float in a report: a number, null for NaN, "Infinity" or "-Infinity"
ReportFloat = float | Literal["Infinity", "-Infinity"] | None


class RequestBody(BaseModel):
    """A JSON request body: unknown fields are an error (a typo is not silently ignored)."""

    model_config = ConfigDict(extra="forbid")


class Window(RequestBody):
    """An explicit baseline window: ``{"start": ..., "end": ...}``."""

    start: Time
    end: Time


Segment = Text | dict[ColumnName, Text] | None


class DriftRequest(RequestBody):
    """``model.drift``'s arguments; every field optional, with the same defaults."""

    start: Time = "-24h"
    end: Time = "now"
    #: "reference", a version name, or a window
    against: VersionName | Window = "reference"
    #: "auto", a method name, or column -> method name
    method: Text | dict[ColumnName, Text] = Field(default="auto", max_length=2000)
    mode: Literal["sketch", "exact"] = "sketch"
    segment: Segment = None
    thresholds: dict[Text, Finite] | None = Field(default=None, max_length=2000)
    correction: Literal["bh", "bonferroni"] | None = "bh"
    drift_share: Finite = 0.0
    columns: list[ColumnName] | None = Field(default=None, max_length=2000)
    step: Duration | None = None
    fallback: bool = True
    #: True for every feature, or the feature columns to use
    multivariate: bool | Annotated[list[ColumnName], Field(max_length=2000)] = False
    sample_size: int = Field(default=5000, ge=1, le=100_000)
    versions: VersionName | None = None
    #: align a relative start to the step (windows on whole multiples of the step)
    align: bool = True


class ColumnDriftResult(BaseModel):
    column: str
    kind: str
    method: str
    statistic: ReportFloat
    p_value: ReportFloat
    threshold: ReportFloat
    drifted: bool
    is_test: bool
    p_adjusted: ReportFloat
    n_reference: int
    n_current: int
    mode: str
    note: str
    #: evidence of drift, Φ⁻¹(1 - p): standard normal on clean data
    score: ReportFloat = None


class DriftResult(BaseModel):
    """``DriftReport.to_dict()``: ``DriftReport.from_dict`` rebuilds the report."""

    columns: list[ColumnDriftResult]
    correction: str | None
    drift_share: ReportFloat
    window: list[str | None]
    against: str | dict[str, Any]
    mode: str
    multivariate: dict[str, Any]
    dataset_drift: bool
    drifted_columns: list[str]
    #: the step with a timeline, else null
    step: str | None = None
    #: one such result per window (with a step), each against the same baseline
    timeline: list[dict[str, Any]] = []


class QualityRequest(RequestBody):
    """``model.quality``'s arguments; ``constraints`` as ``Constraint.to_dict()`` gives."""

    start: Time = "-24h"
    end: Time = "now"
    step: Duration | None = None
    segment: Segment = None
    constraints: list[dict[str, Any]] | None = Field(default=None, max_length=10_000)
    infer: bool = True
    mode: Literal["sketch", "exact"] = "sketch"
    versions: VersionName | None = None
    #: align a relative start to the step (windows on whole multiples of the step)
    align: bool = True


class ChecksRequest(RequestBody):
    """``model.checks``'s arguments (the ML Test Score monitors)."""

    start: Time = "-24h"
    end: Time = "now"
    against: VersionName | Window = "reference"
    monitors: list[Text] | None = Field(default=None, max_length=64)
    skew_tolerance: Finite = 0.0
    regression: Finite = 0.2
    quality_drop: Finite = 0.05
    min_segment_rows: Annotated[int, Field(ge=0)] = 200
    alpha: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)] = 1e-4
    now: Time | None = None


class CheckResult(BaseModel):
    monitor: str
    status: str
    value: ReportFloat
    detail: str


class MonitorResult(BaseModel):
    """``MonitorReport.to_dict()``: ``MonitorReport.from_dict`` rebuilds the report."""

    checks: list[CheckResult]
    ok: bool
    failed: list[str]


class ConstraintsRequest(RequestBody):
    """Constraints to store (each as ``Constraint.to_dict()`` gives: ``column``, ``rule``
    and the rule's parameters); ``replace`` drops the stored ones first."""

    constraints: list[dict[str, Any]] = Field(max_length=10_000)
    replace: bool = False


class ConstraintList(BaseModel):
    constraints: list[dict[str, Any]]


class StoredResult(BaseModel):
    stored: int


class ProfilesResult(BaseModel):
    """What a profile import stored: rows profiled, parts and buckets written, stored parts
    a replacement dropped, and whether the Idempotency-Key was seen before (nothing written)."""

    rows: int
    parts: int
    buckets: int
    replaced: int
    duplicate: bool


class TrainingInfoRequest(RequestBody):
    """When the version was trained, and how old it may get (``max_age``: '30d', or
    seconds)."""

    trained_at: Time | None = None
    max_age: Duration | Annotated[float, Field(allow_inf_nan=False, ge=0)] | None = None


class ResourceUsageRequest(RequestBody):
    """A memory sample (MB) of the serving process; ``timestamp`` defaults to now."""

    memory_mb: Annotated[float, Field(allow_inf_nan=False, ge=0)]
    timestamp: Time | None = None


class Health(BaseModel):
    status: str
    version: str
    schema_version: int | None = None


__all__ = [
    "CheckResult",
    "ChecksRequest",
    "ColumnDriftResult",
    "ConstraintList",
    "ConstraintsRequest",
    "DriftRequest",
    "DriftResult",
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
    "MonitorResult",
    "QualityRequest",
    "QuarantineRow",
    "RegisterRequest",
    "ResourceUsageRequest",
    "StoredResult",
    "TrainingInfoRequest",
    "Window",
]
