"""The model registry: models, versions, their per-model tables, and segment values.

Per model ``m`` (by integer id) the store keeps:

* ``raw_m`` — one row per stored prediction: ``__id``, ``__version``, ``__ts`` (event time),
  ``__minute`` (its minute bucket, microseconds), ``__prediction``, ``__latency_ms``,
  ``__trace_id``, the current label ``__label`` with its time ``__label_ts``, then the
  feature columns under their own names;
* ``feedback_m`` — every accepted feedback row, in arrival order (an audit log);
* ``pending_m`` — feedback whose prediction has not arrived yet;
* ``reference_m`` — reference data per version.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from importlib import metadata

import pyarrow as pa

from ..errors import ModelConflictError, UnknownModelError
from ..schema import CATEGORICAL, OTHER_SEGMENT, SEGMENT_CAP, ModelSpec
from .database import Store, quote

_SQL_TYPE = {"numeric": "DOUBLE", "categorical": "VARCHAR"}


def label_sql_type(spec: ModelSpec) -> str:
    return "VARCHAR" if spec.task == "multiclass" else "DOUBLE"


def prediction_sql_type(spec: ModelSpec) -> str:
    return "VARCHAR" if spec.task == "multiclass" else "DOUBLE"


def raw_table(spec: ModelSpec) -> str:
    return f"raw_{spec.model_id}"


def feedback_table(spec: ModelSpec) -> str:
    return f"feedback_{spec.model_id}"


def pending_table(spec: ModelSpec) -> str:
    return f"pending_{spec.model_id}"


def reference_table(spec: ModelSpec) -> str:
    return f"reference_{spec.model_id}"


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def environment() -> dict[str, object]:
    """The Python version and installed package versions, recorded per model version."""
    packages = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            packages[name.lower()] = dist.version
    return {"python": sys.version.split()[0], "packages": dict(sorted(packages.items()))}


class Registry:
    """Model and version records, backed by a :class:`Store`."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._segments: dict[tuple[int, str], set[str]] = {}

    # -- models -------------------------------------------------------------------------

    def get(self, name: str) -> ModelSpec:
        result = self.store.cursor().execute("SELECT * FROM models WHERE name = ?", [name])
        found = result.fetchall()
        row = found[0] if found else None
        columns = [d[0] for d in result.description]
        if row is None:
            known = [r[0] for r in self.store.fetch_all("SELECT name FROM models ORDER BY name")]
            raise UnknownModelError(
                f"unknown model {name!r}; registered models: {', '.join(known) or 'none'}"
            )
        return ModelSpec.from_row(dict(zip(columns, row, strict=True)))

    def names(self) -> list[str]:
        return [r[0] for r in self.store.fetch_all("SELECT name FROM models ORDER BY name")]

    def register(self, spec: ModelSpec) -> ModelSpec:
        """Create the model (and its tables) or return the stored one, raising on conflict."""
        with self.store.write() as conn:
            found = conn.execute(
                "SELECT model_id FROM models WHERE name = ?", [spec.name]
            ).fetchall()
            row = found[0] if found else None
            if row is not None:
                stored = self.get(spec.name)
                problems = stored.conflicts(spec)
                if problems:
                    raise ModelConflictError(
                        f"model {spec.name!r} is already registered differently: "
                        + "; ".join(problems)
                    )
                new = {k: v for k, v in spec.features.items() if k not in stored.features}
                if new:
                    stored = self._add_features(conn, stored, new)
                if stored.classes is None and spec.classes is not None:
                    conn.execute(
                        "UPDATE models SET classes = ? WHERE model_id = ?",
                        [json.dumps(list(spec.classes)), stored.model_id],
                    )
                    stored = self.get(spec.name)
                return stored
            model_id = conn.execute("SELECT coalesce(max(model_id), 0) + 1 FROM models").fetchall()[
                0
            ][0]
            from dataclasses import replace

            spec = replace(spec, model_id=int(model_id))
            values = spec.to_row()
            conn.execute(
                "INSERT INTO models VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [*values.values(), _now()],
            )
            self._create_tables(conn, spec)
            return spec

    def _create_tables(self, conn, spec: ModelSpec) -> None:
        pred = prediction_sql_type(spec)
        label = label_sql_type(spec)
        features = "".join(
            f", {quote(name)} {_SQL_TYPE[kind]}" for name, kind in spec.features.items()
        )
        conn.execute(
            f"CREATE TABLE {raw_table(spec)} (__id VARCHAR NOT NULL, __version VARCHAR NOT NULL, "
            f"__ts TIMESTAMP NOT NULL, __minute BIGINT NOT NULL, __prediction {pred}, "
            f"__latency_ms DOUBLE, __trace_id VARCHAR, __label {label}, __label_ts TIMESTAMP"
            f"{features})"
        )
        conn.execute(
            f"CREATE TABLE {feedback_table(spec)} (__id VARCHAR NOT NULL, __label {label}, "
            "__ts TIMESTAMP NOT NULL, __received_at TIMESTAMP NOT NULL)"
        )
        conn.execute(
            f"CREATE TABLE {pending_table(spec)} (__id VARCHAR NOT NULL, __label {label}, "
            "__ts TIMESTAMP NOT NULL, __seq BIGINT NOT NULL)"
        )

    def add_features(self, spec: ModelSpec, new: dict[str, str]) -> ModelSpec:
        with self.store.write() as conn:
            return self._add_features(conn, spec, new)

    def _add_features(self, conn, spec: ModelSpec, new: dict[str, str]) -> ModelSpec:
        """Add new feature columns to the schema and the raw table."""
        current = self.get(spec.name)
        new = {k: v for k, v in new.items() if k not in current.features}
        if not new:
            return current
        for name, kind in new.items():
            conn.execute(
                f"ALTER TABLE {raw_table(current)} ADD COLUMN {quote(name)} {_SQL_TYPE[kind]}"
            )
            ref = reference_table(current)
            if conn.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [ref]
            ).fetchall()[0][0]:
                conn.execute(f"ALTER TABLE {ref} ADD COLUMN {quote(name)} {_SQL_TYPE[kind]}")
        updated = current.with_features(new)
        conn.execute(
            "UPDATE models SET features = ? WHERE model_id = ?",
            [json.dumps(updated.features), updated.model_id],
        )
        return updated

    # -- versions -----------------------------------------------------------------------

    def versions(self, spec: ModelSpec) -> list[str]:
        rows = self.store.fetch_all(
            "SELECT version FROM versions WHERE model_id = ? ORDER BY created_at, version",
            [spec.model_id],
        )
        return [r[0] for r in rows]

    def ensure_version(self, spec: ModelSpec, version: str) -> None:
        if not isinstance(version, str) or not version:
            raise UnknownModelError(f"model {spec.name!r}: version must be a non-empty string")
        with self.store.write() as conn:
            exists = conn.execute(
                "SELECT 1 FROM versions WHERE model_id = ? AND version = ?",
                [spec.model_id, version],
            ).fetchall()
            if not exists:
                conn.execute(
                    "INSERT INTO versions VALUES (?, ?, ?, ?)",
                    [spec.model_id, version, _now(), json.dumps(environment())],
                )

    def require_version(self, spec: ModelSpec, version: str) -> None:
        if version not in self.versions(spec):
            raise UnknownModelError(
                f"model {spec.name!r} has no version {version!r}; "
                f"versions: {', '.join(self.versions(spec)) or 'none'}"
            )

    # -- segments -----------------------------------------------------------------------

    def segment_values(self, spec: ModelSpec, column: str) -> set[str]:
        key = (spec.model_id, column)
        if key not in self._segments:
            rows = self.store.fetch_all(
                "SELECT value FROM segment_values WHERE model_id = ? AND col = ?",
                [spec.model_id, column],
            )
            self._segments[key] = {r[0] for r in rows}
        return self._segments[key]

    def admit_segment_values(self, conn, spec: ModelSpec, column: str, seen: list[str]) -> set[str]:
        """Admit new values of a segment column up to the cap; return the admitted set."""
        known = self.segment_values(spec, column)
        room = SEGMENT_CAP - len(known)
        fresh = [v for v in seen if v not in known and v != OTHER_SEGMENT][: max(room, 0)]
        if fresh:
            conn.executemany(
                "INSERT INTO segment_values VALUES (?, ?, ?)",
                [[spec.model_id, column, v] for v in fresh],
            )
            known.update(fresh)
        return known


def segment_kinds(spec: ModelSpec) -> list[str]:
    """Segment columns must be categorical features."""
    return [c for c in spec.segments if spec.features.get(c, CATEGORICAL) == CATEGORICAL]


def empty_table(schema: pa.Schema) -> pa.Table:
    return schema.empty_table()
