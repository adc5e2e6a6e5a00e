"""Model specifications, column kinds, and conversion of user tables to Arrow.

A model has a task, a prediction column, a label column, feature columns of two kinds
(``numeric`` or ``categorical``) and optional segment columns. The feature schema comes
from the reference data or the first batch and grows as new columns appear.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from typing import Any

import pyarrow as pa

from ._arrow import rows_to_table
from .errors import ConfigError, SchemaError

TASKS = ("binary", "multiclass", "regression")
NUMERIC = "numeric"
CATEGORICAL = "categorical"

#: Columns that are never features.
RESERVED = ("latency_ms", "trace_id")

#: Distinct values a segment column may have before the rest are pooled.
SEGMENT_CAP = 50
OTHER_SEGMENT = "__other__"


@dataclass(frozen=True)
class ModelSpec:
    """What the store knows about a model (shared by all its versions)."""

    name: str
    task: str
    prediction: str = "prediction"
    label: str = "label"
    threshold: float = 0.5
    classes: tuple[str, ...] | None = None
    segments: tuple[str, ...] = ()
    features: dict[str, str] = field(default_factory=dict)  # column -> kind
    model_id: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ConfigError(f"model name must be a non-empty string, got {self.name!r}")
        if self.task not in TASKS:
            raise ConfigError(
                f"model {self.name!r}: task must be one of {', '.join(TASKS)}, got {self.task!r}"
            )
        if not (isinstance(self.threshold, int | float) and math.isfinite(self.threshold)):
            raise ConfigError(f"model {self.name!r}: threshold must be a finite number")
        if self.task == "binary" and not 0.0 <= float(self.threshold) <= 1.0:
            raise ConfigError(f"model {self.name!r}: threshold must lie in [0, 1]")
        if self.classes is not None and self.task != "multiclass":
            raise ConfigError(
                f"model {self.name!r}: classes apply to multiclass models, not {self.task!r}"
            )
        if self.prediction == self.label:
            raise ConfigError(
                f"model {self.name!r}: prediction and label columns must differ "
                f"(both are {self.prediction!r})"
            )
        for column in (*self.features, *self.segments):
            if column.startswith("__"):
                raise ConfigError(
                    f"model {self.name!r}: column {column!r}: names starting with '__' are reserved"
                )

    def with_features(self, extra: dict[str, str]) -> ModelSpec:
        merged = dict(self.features)
        merged.update({k: v for k, v in extra.items() if k not in merged})
        return replace(self, features=merged)

    def conflicts(self, other: ModelSpec) -> list[str]:
        """Fields on which a re-registration contradicts this spec."""
        out = []
        for name in ("task", "prediction", "label", "threshold"):
            if getattr(self, name) != getattr(other, name):
                out.append(
                    f"{name}: registered {getattr(self, name)!r}, given {getattr(other, name)!r}"
                )
        if other.classes is not None and self.classes is not None and other.classes != self.classes:
            out.append(f"classes: registered {list(self.classes)}, given {list(other.classes)}")
        if other.segments and tuple(other.segments) != tuple(self.segments):
            out.append(f"segments: registered {list(self.segments)}, given {list(other.segments)}")
        return out

    def to_row(self) -> dict[str, Any]:
        return {
            "model_id": self.model_id,
            "name": self.name,
            "task": self.task,
            "prediction": self.prediction,
            "label": self.label,
            "threshold": float(self.threshold),
            "classes": json.dumps(list(self.classes)) if self.classes is not None else None,
            "segments": json.dumps(list(self.segments)),
            "features": json.dumps(self.features),
        }

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> ModelSpec:
        return cls(
            name=row["name"],
            task=row["task"],
            prediction=row["prediction"],
            label=row["label"],
            threshold=float(row["threshold"]),
            classes=tuple(json.loads(row["classes"])) if row["classes"] else None,
            segments=tuple(json.loads(row["segments"])),
            features=json.loads(row["features"]),
            model_id=int(row["model_id"]),
        )


def to_arrow(table: Any, *, what: str = "table") -> pa.Table:
    """Convert a pandas or polars DataFrame, a pyarrow Table/RecordBatch, a dict of columns
    or a list of row dicts to a ``pyarrow.Table``."""
    if isinstance(table, pa.Table):
        return table
    if isinstance(table, pa.RecordBatch):
        return pa.Table.from_batches([table])
    module = type(table).__module__.split(".")[0]
    if module == "pandas":
        try:
            return pa.Table.from_pandas(table, preserve_index=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            return _mixed_pandas(table)
    if module == "polars":
        return table.to_arrow()
    if isinstance(table, dict):
        try:
            return pa.table(table)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            return _mixed_pandas(__import__("pandas").DataFrame(table))
    if isinstance(table, list):
        if not all(isinstance(row, dict) for row in table):
            raise SchemaError(f"{what}: a list must hold one dict per row")
        return rows_to_table(table)  # the union of the keys, not the first row's
    raise SchemaError(
        f"{what} must be a pandas or polars DataFrame, a pyarrow Table, a dict of columns or "
        f"a list of row dicts, not {type(table).__name__}"
    )


def _mixed_pandas(frame: Any) -> pa.Table:
    """Column-wise conversion: a column of mixed types (numbers and text, say) becomes
    text, so validation can null and count the values that do not fit the schema."""
    columns = {}
    for name in frame.columns:
        series = frame[name]
        try:
            columns[str(name)] = pa.array(series, from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            text = series.astype(str).where(series.notna(), None)
            columns[str(name)] = pa.array(text, type=pa.string(), from_pandas=True)
    return pa.table(columns)


def column_kind(dtype: pa.DataType) -> str:
    """``numeric`` for integers, floats and decimals; ``categorical`` for everything else."""
    if pa.types.is_integer(dtype) or pa.types.is_floating(dtype) or pa.types.is_decimal(dtype):
        return NUMERIC
    if pa.types.is_null(dtype):
        return NUMERIC
    if pa.types.is_dictionary(dtype):
        return (
            column_kind(dtype.value_type)
            if not pa.types.is_string(dtype.value_type)
            else CATEGORICAL
        )
    return CATEGORICAL


def infer_features(table: pa.Table, exclude: set[str]) -> dict[str, str]:
    """Feature columns of a table (all but ``exclude`` and reserved names) with their kinds."""
    return {
        name: column_kind(table.schema.field(name).type)
        for name in table.column_names
        if name not in exclude and name not in RESERVED and not name.startswith("__")
    }
