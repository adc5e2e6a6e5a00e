"""Model specifications, column kinds, and conversion of user tables to Arrow.

A model has a task, a prediction column, a label column, feature columns of two kinds
(``numeric`` or ``categorical``) and optional segment columns. The feature schema comes
from the reference data or the first batch and grows as new columns appear.
"""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from collections.abc import Iterable
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

#: Longest column name (the HTTP API's limit, :func:`mlpulse.server.schemas.check_name`).
MAX_COLUMN_NAME = 256
#: Longest model or version name (the HTTP API's path parameters).
MAX_MODEL_NAME = 200
#: Version names that mean "every version" in queries, so no version may have them.
RESERVED_VERSIONS = ("all", "*")
#: Feature columns one model may have (``$MLPULSE_MAX_FEATURES`` overrides): every column
#: widens the raw table and every profile, so an unbounded schema exhausts memory.
DEFAULT_MAX_FEATURES = 1_000

# DuckDB folds identifiers to lower case for comparison, ASCII letters only ("Age" and
# "age" name one column; "Ä" and "ä" two)
_FOLD = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def max_features() -> int:
    """The per-model feature cap: ``$MLPULSE_MAX_FEATURES`` or 1,000."""
    text = os.environ.get("MLPULSE_MAX_FEATURES")
    if not text:
        return DEFAULT_MAX_FEATURES
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise ConfigError(f"MLPULSE_MAX_FEATURES must be a positive integer, got {text!r}")
    return value


def fold(name: str) -> str:
    """The form under which DuckDB compares identifiers (ASCII case folded)."""
    return name.translate(_FOLD)


def shown(name: object, limit: int = 80) -> str:
    """``repr`` of a name for messages, shortened past ``limit`` characters."""
    text = repr(name)
    if len(text) <= limit:
        return text
    size = f" ({len(name)} characters)" if isinstance(name, str) else ""
    return text[:limit] + "..." + size


def _problem(name: object, limit: int, *, path: bool) -> str | None:
    """Why ``name`` cannot name a model, version or column (None if it can)."""
    if not isinstance(name, str):
        return f"must be a string, not {type(name).__name__}"
    if not name or (path and not name.strip()):
        return "must not be empty"
    if len(name) > limit:
        return f"has {len(name)} characters; the limit is {limit}"
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid Unicode (it holds a lone surrogate)"
    bad = next((c for c in name if ord(c) < 32 or 127 <= ord(c) < 160), None)
    if bad is not None:
        return f"contains the control character U+{ord(bad):04X}"
    if path:
        if "/" in name:
            return "contains '/' (names appear in URL paths)"
        if name in (".", ".."):
            return "cannot be '.' or '..' (names appear in URL paths)"
    return None


def check_path_name(name: object, what: str) -> str:
    """A name that appears in URL paths (rule, notifier, model): the rules of model names;
    raises :class:`ConfigError` naming ``what``."""
    problem = _problem(name, MAX_MODEL_NAME, path=True)
    if problem:
        raise ConfigError(f"{what} {shown(name)} {problem}")
    return name  # type: ignore[return-value]


def check_model_name(name: object) -> str:
    """A model name: 1-200 characters of valid Unicode without control characters or
    ``/``, not ``.`` or ``..`` (it is a URL path segment of the HTTP API).

    >>> check_model_name("churn")
    'churn'
    >>> check_model_name("a/b")
    Traceback (most recent call last):
    ...
    mlpulse.errors.ConfigError: model name 'a/b' contains '/' (names appear in URL paths)
    """
    problem = _problem(name, MAX_MODEL_NAME, path=True)
    if problem:
        raise ConfigError(f"model name {shown(name)} {problem}")
    return name  # type: ignore[return-value]


def check_version_name(model: str, version: object) -> str:
    """A version name: the rules of model names, and not ``all`` or ``*`` (which select
    every version in queries)."""
    problem = _problem(version, MAX_MODEL_NAME, path=True)
    if problem is None and version in RESERVED_VERSIONS:
        problem = "is reserved: 'all' and '*' select every version in queries"
    if problem:
        raise ConfigError(f"model {model!r}: version {shown(version)} {problem}")
    return version  # type: ignore[return-value]


def check_column_name(
    model: str, name: object, what: str = "column", error: type[Exception] = SchemaError
) -> str:
    """A column name: 1-256 characters of valid Unicode without control characters."""
    problem = _problem(name, MAX_COLUMN_NAME, path=False)
    if problem:
        raise error(f"model {model!r}: {what} name {shown(name)} {problem}")
    return name  # type: ignore[return-value]


def check_distinct(
    model: str,
    names: Iterable[str],
    existing: Iterable[str] = (),
    *,
    what: str = "column",
    error: type[Exception] = SchemaError,
) -> None:
    """Raise if two of ``names``, or one of them and one of ``existing``, differ only in
    case: DuckDB, which stores them, takes them for one column."""
    stored = {fold(n): n for n in existing}
    given: dict[str, str] = {}
    for name in names:
        key = fold(name)
        other = given.get(key)
        if other is not None and other != name:
            where = "both given"
        else:
            other, where = stored.get(key), "the other already a column of the model"
        if other is not None and other != name:
            raise error(
                f"model {model!r}: {what} {shown(name)} and {shown(other)} ({where}) differ "
                "only in case; column names are case-insensitive, so rename one of them"
            )
        given[key] = name


def check_feature_count(model: str, count: int, limit: int) -> None:
    """Raise if a model would have more than ``limit`` feature columns."""
    if count > limit:
        raise SchemaError(
            f"model {model!r}: {count:,} feature columns exceed the limit of {limit:,} per "
            "model (set MLPULSE_MAX_FEATURES or Pulse(max_features=...) to change it)"
        )


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
            if not isinstance(column, str):
                raise ConfigError(
                    f"model {self.name!r}: column names must be strings, got {column!r}"
                )
            if column.startswith("__"):
                raise ConfigError(
                    f"model {self.name!r}: column {column!r}: names starting with '__' are reserved"
                )

    def check_names(self) -> None:
        """Check the names a new registration would store (raises ConfigError): the model
        name (see :func:`check_model_name`), and the prediction, label, feature and segment
        columns (see :func:`check_column_name`), no two of which may differ only in case.

        Not part of ``__post_init__``: a spec read back from an older store keeps working.
        """
        check_model_name(self.name)
        roles = [("prediction column", self.prediction), ("label column", self.label)]
        roles += [("feature", c) for c in self.features]
        roles += [("segment column", c) for c in self.segments]
        for what, column in roles:
            check_column_name(self.name, column, what, ConfigError)
        for column in self.segments:
            if "=" in column:  # a segment is named "column=value" in queries and URLs
                raise ConfigError(
                    f"model {self.name!r}: segment column {shown(column)}: segment columns "
                    "may not contain '=' (segments are written 'column=value')"
                )
        for what, column in roles[:2]:
            if column.startswith("__"):
                raise ConfigError(
                    f"model {self.name!r}: {what} {shown(column)}: names starting with '__' "
                    "are reserved"
                )
        # features and segments are the other columns: never latency_ms or trace_id (their
        # own roles), nor the prediction or the label
        for what, column in roles[2:]:
            if column in RESERVED or column in (self.prediction, self.label):
                role = (
                    "a reserved column"
                    if column in RESERVED
                    else "the model's " + ("prediction" if column == self.prediction else "label")
                )
                raise ConfigError(
                    f"model {self.name!r}: {what} {shown(column)} is {role}, not a feature"
                )
        check_distinct(self.name, [c for _, c in roles], error=ConfigError)

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
    or a list of row dicts to a ``pyarrow.Table``; a table that cannot be converted, or
    has two columns of one name, raises :class:`SchemaError`."""
    try:
        arrow = _convert(table, what)
    except SchemaError:
        raise
    except (ValueError, TypeError, pa.ArrowException) as exc:
        # pandas and pyarrow refuse duplicate names, names that are not valid Unicode ...
        raise SchemaError(f"{what}: cannot be read as a table: {exc}") from None
    names = arrow.column_names
    if len(set(names)) != len(names):
        repeated = sorted(n for n, k in Counter(names).items() if k > 1)
        raise SchemaError(
            f"{what}: column names must be unique; repeated: {', '.join(map(shown, repeated))}"
        )
    return arrow


def _convert(table: Any, what: str) -> pa.Table:
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
        name: column_kind(dtype)
        for name, dtype in zip(table.column_names, table.schema.types, strict=True)
        if name not in exclude and name not in RESERVED and not name.startswith("__")
    }
