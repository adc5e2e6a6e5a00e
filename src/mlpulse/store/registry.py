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

import functools
import json
import sys
from dataclasses import replace
from datetime import UTC, datetime
from importlib import metadata

import pyarrow as pa

from ..errors import ConfigError, ModelConflictError, SchemaError, UnknownModelError
from ..schema import (
    CATEGORICAL,
    OTHER_SEGMENT,
    RESERVED,
    SEGMENT_CAP,
    ModelSpec,
    check_column_name,
    check_distinct,
    check_feature_count,
    check_model_name,
    check_version_name,
    max_features,
    shown,
)
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


@functools.cache
def environment() -> dict[str, object]:
    """The Python version and installed package versions, recorded per model version.

    Read once per process: parsing every installed package's metadata takes ~50 ms, and
    the packages a process has imported do not change under it."""
    packages = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            packages[name.lower()] = dist.version
    return {"python": sys.version.split()[0], "packages": dict(sorted(packages.items()))}


class Registry:
    """Model and version records, backed by a :class:`Store`.

    Parsed specs are cached on the store (``store.specs``, keyed by name): every write that
    changes a model stages its new spec in the write's transaction, so readers see it once
    it commits and never after a rollback.

    ``max_features`` caps the feature columns of one model (default
    ``$MLPULSE_MAX_FEATURES`` or 1,000).
    """

    def __init__(self, store: Store, max_features: int | None = None) -> None:
        self.store = store
        self.max_features = max_features
        self._segments: dict[tuple[int, str], set[str]] = {}

    def feature_limit(self) -> int:
        """The most feature columns one model may have."""
        return self.max_features if self.max_features is not None else max_features()

    # -- models -------------------------------------------------------------------------

    def get(self, name: str) -> ModelSpec:
        if not isinstance(name, str):
            raise ConfigError(f"model name must be a string, not {type(name).__name__}")
        cache = self.store.specs
        cached = cache.get_many([name])
        if name in cached:
            return cached[name]
        if not _encodable(name):
            raise UnknownModelError(f"unknown model {shown(name)}: not valid Unicode")
        with cache.filling() as remember:
            result = self.store.cursor().execute("SELECT * FROM models WHERE name = ?", [name])
            found = result.fetchall()
            row = found[0] if found else None
            columns = [d[0] for d in result.description]
            if row is None:
                known = self.names()
                raise UnknownModelError(
                    f"unknown model {shown(name)}; registered models: {', '.join(known) or 'none'}"
                )
            spec = ModelSpec.from_row(dict(zip(columns, row, strict=True)))
            remember({name: spec})
        return spec

    def names(self) -> list[str]:
        return [r[0] for r in self.store.fetch_all("SELECT name FROM models ORDER BY name")]

    def register(self, spec: ModelSpec) -> ModelSpec:
        """Create the model (and its tables) or return the stored one, raising on conflict."""
        if not isinstance(spec.name, str) or not _encodable(spec.name):
            check_model_name(spec.name)  # raises: no stored model can have this name
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
                    stored = self._add_features(conn, stored, new, error=ConfigError)
                if stored.classes is None and spec.classes is not None:
                    conn.execute(
                        "UPDATE models SET classes = ? WHERE model_id = ?",
                        [json.dumps(list(spec.classes)), stored.model_id],
                    )
                    stored = replace(stored, classes=tuple(spec.classes))
                    self.store.specs.put_many({stored.name: stored})
                return stored
            spec.check_names()
            check_feature_count(spec.name, len(spec.features), self.feature_limit())
            model_id = conn.execute("SELECT coalesce(max(model_id), 0) + 1 FROM models").fetchall()[
                0
            ][0]
            spec = replace(spec, model_id=int(model_id))
            values = spec.to_row()
            conn.execute(
                "INSERT INTO models VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [*values.values(), _now()],
            )
            self._create_tables(conn, spec)
            self.store.specs.put_many({spec.name: spec})
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

    def check_columns(self, spec: ModelSpec, columns: list[str], exclude: set[str]) -> None:
        """Check a batch's columns before any work on its rows: the ones that would become
        new features must be valid names, must not differ only in case from each other or
        from the model's columns, and must fit under the feature cap (SchemaError)."""
        known = spec.features
        new = [
            c
            for c in columns
            if c not in known and c not in exclude and c not in RESERVED and not c.startswith("__")
        ]
        if not new:
            return
        check_feature_count(spec.name, len(known) + len(new), self.feature_limit())
        for name in new:
            check_column_name(spec.name, name, "column")
        check_distinct(
            spec.name, new, [spec.prediction, spec.label, *spec.segments, *known], what="column"
        )

    def add_features(self, spec: ModelSpec, new: dict[str, str]) -> ModelSpec:
        with self.store.write() as conn:
            return self._add_features(conn, spec, new, error=ConfigError)

    def _add_features(
        self,
        conn,
        spec: ModelSpec,
        new: dict[str, str],
        error: type[Exception] = SchemaError,
    ) -> ModelSpec:
        """Add new feature columns to the schema and the raw table.

        Raises ``error`` (SchemaError for columns of a batch, ConfigError for names given
        at registration) for a name that cannot be a column, one that differs only in case
        from another, or past the feature cap.
        """
        current = self.get(spec.name)
        new = {k: v for k, v in new.items() if k not in current.features}
        if not new:
            return current
        for name in new:
            check_column_name(spec.name, name, "feature", error)
            if name.startswith("__"):
                raise error(
                    f"model {spec.name!r}: feature {shown(name)}: names starting with '__' "
                    "are reserved"
                )
        check_distinct(
            spec.name,
            list(new),
            [current.prediction, current.label, *current.segments, *current.features],
            what="feature",
            error=error,
        )
        check_feature_count(spec.name, len(current.features) + len(new), self.feature_limit())
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
        self.store.specs.put_many({updated.name: updated})
        return updated

    # -- versions -----------------------------------------------------------------------

    def versions(self, spec: ModelSpec) -> list[str]:
        rows = self.store.fetch_all(
            "SELECT version FROM versions WHERE model_id = ? ORDER BY created_at, version",
            [spec.model_id],
        )
        return [r[0] for r in rows]

    def all_versions(self) -> dict[str, list[str]]:
        """Every model's versions, oldest first, in one query (model name -> versions)."""
        rows = self.store.fetch_all(
            "SELECT m.name, list(v.version ORDER BY v.created_at, v.version) FROM models m "
            "LEFT JOIN versions v USING (model_id) GROUP BY m.name ORDER BY m.name"
        )
        return {name: [v for v in versions if v is not None] for name, versions in rows}

    def ensure_version(self, spec: ModelSpec, version: str) -> None:
        """Record a version (first use); its name must be usable in a URL and not a
        wildcard (``all``, ``*``)."""
        if version not in self.versions(spec):
            check_version_name(spec.name, version)
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
                f"model {spec.name!r} has no version {shown(version)}; "
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


def _encodable(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def segment_kinds(spec: ModelSpec) -> list[str]:
    """Segment columns must be categorical features."""
    return [c for c in spec.segments if spec.features.get(c, CATEGORICAL) == CATEGORICAL]


def empty_table(schema: pa.Schema) -> pa.Table:
    return schema.empty_table()
