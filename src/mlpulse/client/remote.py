"""The HTTP transport: the :class:`~mlpulse.service.Service`'s operations over a
server's ``/api/v1`` routes, for the one ``Pulse`` / ``Model`` API.

``mlpulse.connect("http://host:8765", api_key=...)`` returns a ``Pulse`` over an
:class:`HttpTransport`. ``model.log`` / ``log_feedback`` / ``observe`` append to an
in-memory queue and return at once; a batcher thread turns rows into Arrow batches (by size and time) and a sender
thread delivers them in order, gzip-compressed, each with an idempotency key, retrying
with exponential backoff and jitter and spooling to disk while the server is unreachable
(see :mod:`mlpulse.client.sender`). ``log_batch`` waits for the server's report unless the
server is down, in which case the rows are spooled and reported as ``pending``.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote as urlquote

import pandas as pd
import pyarrow as pa

from .._frames import frame_from_arrow
from .._time import from_micros, parse_duration, to_micros
from ..engine.ingest import IngestReport
from ..errors import ConfigError, SchemaError, UnknownModelError
from ..schema import (
    ModelSpec,
    check_model_name,
    check_path_name,
    check_version_name,
    infer_features,
    to_arrow,
)
from ..service import LOG_ID, LOG_LABEL, LOG_PREDICTION, LOG_TS
from .batcher import Batcher
from .http import AuthenticationError, HttpSession, ServerUnavailableError, clean_api_key
from .sender import POLICIES, Sender
from .spool import DiskSpool, Envelope

log = logging.getLogger("mlpulse.remote")

ARROW = "application/vnd.apache.arrow.stream"
MiB = 1024 * 1024


def default_spool_dir(url: str) -> Path:
    """``$MLPULSE_SPOOL_DIR`` or ``~/.cache/mlpulse/spool/<hash of the URL>``."""
    root = os.environ.get("MLPULSE_SPOOL_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "mlpulse", "spool"
    )
    return Path(root) / hashlib.sha256(url.encode()).hexdigest()[:16]


def _iso(value: Any) -> str | None:
    """Times as the server takes them: relative strings pass through, the rest become ISO."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return from_micros(to_micros(value)).isoformat()


def _step(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return f"{parse_duration(value)}us"


def _segment(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, dict) and len(value) == 1:
        column, item = next(iter(value.items()))
        return f"{column}={item}"
    if isinstance(value, tuple | list) and len(value) == 2:
        return f"{value[0]}={value[1]}"
    return str(value)


class HttpTransport:
    """A connection to an mlpulse server (``mlpulse.connect("http://...")``).

    Options: ``batch_rows`` and ``interval`` (seconds) cut background batches;
    ``compression`` ``"gzip"`` (default) or ``None``; ``max_memory_bytes`` bounds batches
    waiting in memory and ``max_pending_rows`` rows not yet batched; ``on_full`` is what
    happens past those bounds: ``"spool"`` (default, to disk), ``"block"`` (wait up to
    ``block_timeout`` seconds, then drop and count) or ``"drop"`` (drop and count);
    ``spool_dir`` (default ``$MLPULSE_SPOOL_DIR`` or a per-URL folder under
    ``~/.cache/mlpulse/spool``; the client keeps to its own ``mlpulse-spool-*`` folders
    in it) and ``max_spool_bytes`` bound the disk queue; ``max_attempts`` is how many
    times a batch the server fails with an error (a 500) is sent before it is set aside in
    ``mlpulse-rejected/``; ``exit_timeout`` is how long exit waits for delivery before
    leaving the rest spooled. ``api_key`` is stripped of surrounding whitespace (a secret
    file's newline); a key with spaces or control characters inside is refused.
    """

    def __init__(
        self,
        url: str,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        retry_for: float = 10.0,
        batch_rows: int = 50_000,
        interval: float = 0.2,
        compression: str | None = "gzip",
        max_memory_bytes: int = 64 * MiB,
        max_pending_rows: int = 500_000,
        on_full: str = "spool",
        block_timeout: float = 0.5,
        spool_dir: str | os.PathLike[str] | None = None,
        max_spool_bytes: int = 1024 * MiB,
        max_backoff: float = 2.0,
        max_attempts: int = 5,
        exit_timeout: float = 10.0,
        verify: Any = True,
        transport: Any = None,
    ) -> None:
        if on_full not in POLICIES:
            raise ConfigError(f"on_full must be one of {', '.join(POLICIES)}, got {on_full!r}")
        if compression not in ("gzip", None):
            raise ConfigError(f"compression must be 'gzip' or None, got {compression!r}")
        if isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or max_attempts < 1:
            raise ConfigError(f"max_attempts must be a whole number >= 1, got {max_attempts!r}")
        api_key = clean_api_key(api_key)
        self.url = url.rstrip("/")
        self.retry_for = retry_for
        self.batch_rows = batch_rows
        self.compression = compression
        self.on_full = on_full
        self.block_timeout = block_timeout
        self.exit_timeout = exit_timeout
        # an injected httpx transport (tests: Starlette's TestClient) serves both sessions
        inject = {"transport": transport} if transport is not None else {}
        self._http = HttpSession(
            self.url, api_key, timeout=timeout, verify=verify, max_attempts=max_attempts, **inject
        )
        self.path = self._http.display_url
        spool = None
        if on_full != "drop":
            folder = spool_dir or default_spool_dir(self.url)
            try:
                spool = DiskSpool(folder, max_spool_bytes, server=self.url)
            except OSError as exc:
                raise ConfigError(
                    f"cannot use {os.fspath(folder)!r} as the spool folder "
                    f"({exc.strerror or exc}); pass spool_dir= a writable folder"
                ) from None
        self._spool = spool
        self._sender = Sender(
            HttpSession(
                self.url, api_key, timeout=timeout, verify=verify, max_backoff=max_backoff, **inject
            ),
            spool,
            max_memory_bytes=max_memory_bytes,
            policy=on_full,
            block_timeout=block_timeout,
            max_backoff=max_backoff,
            max_attempts=max_attempts,
        )
        self._batcher = Batcher(
            self._deliver,
            self._failed,
            interval=interval,
            max_rows=batch_rows,
            max_pending=max_pending_rows,
        )
        self._closed = False

    # -- registry -----------------------------------------------------------------------

    def register(
        self,
        name: str,
        version: str | None = None,
        *,
        task: str | None = None,
        reference: Any = None,
        prediction: str | None = None,
        label: str | None = None,
        features: Sequence[str] | None = None,
        threshold: float | None = None,
        classes: Sequence[Any] | None = None,
        segments: Sequence[str] | None = None,
        recommended_rules: bool = True,
    ) -> tuple[ModelSpec | None, str]:
        """Register a model version on the server (first call) or return the registered one;
        same arguments, results and errors as :meth:`Service.register`.

        If the server is unreachable and ``task`` is given, the registration is queued
        ahead of the model's rows and a handle is returned at once."""
        self._check_open()
        # the names go into URL paths: the embedded rules, checked before any request
        check_model_name(name)
        if version is not None:
            check_version_name(name, version)
        ref_table = (
            to_arrow(reference, what=f"model {name!r}: reference")
            if reference is not None
            else None
        )
        body: dict[str, Any] = {"name": name}
        if version is not None:
            body["version"] = str(version)
        for field, value in (
            ("task", task),
            ("prediction", prediction),
            ("label", label),
            ("threshold", threshold),
        ):
            if value is not None:
                body[field] = value
        if classes is not None:
            body["classes"] = [str(c) for c in classes]
        if segments is not None:
            body["segments"] = list(segments)
        if ref_table is not None:
            # the kinds the reference implies, resolved by the server's Service.register
            kinds = infer_features(ref_table, {prediction or "prediction", label or "label"})
            if features is not None:
                missing = [c for c in features if c not in ref_table.column_names]
                if missing:
                    raise SchemaError(
                        f"model {name!r}: features {missing} are not columns of the reference"
                    )
                kinds = {k: v for k, v in kinds.items() if k in features}
            body["features"] = kinds
        elif features is not None:
            body["features"] = list(features)

        registering = len(body) > (2 if version is not None else 1)
        if not recommended_rules:
            body["recommended_rules"] = False
        try:
            info = self._register_or_get(body, registering)
        except ServerUnavailableError:
            if task is None:
                raise
            log.warning("mlpulse: server unavailable; registration of %r queued", name)
            info = {"name": name, "version": str(version or "v1"), "prediction": prediction}
            self._queue_json("register", name, body | {"version": info["version"]})
            spec: ModelSpec | None = ModelSpec(
                name=name,
                task=task,
                prediction=prediction or "prediction",
                label=label or "label",
                threshold=0.5 if threshold is None else float(threshold),
                segments=tuple(segments or ()),
            )
        else:
            spec = _spec_of(info) if "task" in info else None
        version = str(info["version"])
        if ref_table is not None:
            self._upload_reference(name, version, ref_table, features, recommended_rules)
        return spec, version

    def spec(self, name: str) -> ModelSpec:
        """The model's current specification, as the server has it."""
        return _spec_of(self._get_json(_model_path(name)))

    def models(self) -> list[str]:
        """Names of the registered models."""
        return [m["name"] for m in self._get_json("/api/v1/models")["models"]]

    def versions(self, name: str) -> list[str]:
        return list(self._get_json(_model_path(name))["versions"])

    # -- writes ------------------------------------------------------------------------

    def queue(self, key: tuple[str, str, str], row: dict[str, Any]) -> None:
        """Queue one ``log`` / ``log_feedback`` row under ``(kind, name, version)``
        (``on_full="block"`` waits for room)."""
        batcher = self._batcher
        if self.on_full == "block" and batcher.pending >= batcher.max_pending:
            deadline = time.monotonic() + self.block_timeout
            while batcher.pending >= batcher.max_pending and time.monotonic() < deadline:
                time.sleep(0.001)
        batcher.put(key, row)

    def _send_batch(
        self, kind: str, name: str, version: str | None, params: dict[str, Any], arrow: pa.Table
    ) -> IngestReport:
        total = IngestReport(0, 0, 0)
        for start in range(0, arrow.num_rows, self.batch_rows):
            chunk = arrow.slice(start, self.batch_rows)
            envelope = self._envelope(kind, name, version, params, chunk)
            answer = self._submit_and_wait(envelope, wait=not self._sender.down)
            if answer is None:
                total += IngestReport(chunk.num_rows, 0, 0, pending=chunk.num_rows)
            else:
                total += IngestReport(
                    answer["received"],
                    answer["stored"],
                    answer["quarantined"],
                    matched=answer.get("matched", 0),
                    held=answer.get("held", 0),
                )
        return total

    def log_batch(
        self, name: str, version: str, table: Any, *, id: str = "id", timestamp: str | None = None
    ) -> IngestReport:
        """Store many predictions; ``pending`` counts rows spooled because the server is
        unreachable (sent later)."""
        arrow = _batch(name, table, id, "log_batch table")
        if timestamp is None and "timestamp" in arrow.column_names:
            timestamp = "timestamp"
        params = {"id": id} | ({"timestamp": timestamp} if timestamp else {})
        return self._send_batch("prediction", name, version, params, arrow)

    def log_feedback_batch(
        self,
        name: str,
        table: Any,
        *,
        id: str = "id",
        label: str | None = None,
        timestamp: str | None = None,
    ) -> IngestReport:
        """Store many labels; each replaces any earlier label for its id."""
        arrow = _batch(name, table, id, "log_feedback_batch table")
        params = {"id": id}
        if label is not None:
            params["label"] = label
        if timestamp is not None:
            params["timestamp"] = timestamp
        return self._send_batch("feedback", name, None, params, arrow)

    def set_constraints(self, name: str, constraints: Any, replace: bool = False) -> None:
        from ..quality.constraints import parse_constraints

        # YAML paths and text are read here: the server sees the parsed constraints
        body = {
            "constraints": [c.to_dict() for c in parse_constraints(constraints)],
            "replace": bool(replace),
        }
        self._request("PUT", f"{_model_path(name)}/constraints", json=body)

    def constraints(self, name: str) -> list:
        from ..quality.constraints import parse_constraints

        return parse_constraints(self._get_json(f"{_model_path(name)}/constraints")["constraints"])

    def log_training_features(self, name: str, table: Any, id: str = "id") -> int:
        arrow = _batch(name, table, id, "training features")
        answer = self._request(
            "POST",
            f"{_model_path(name)}/training-features",
            params={"id": id},
            content=_arrow_bytes(arrow),
            headers={"Content-Type": ARROW},
        ).json()
        return int(answer["stored"])

    def set_training_info(
        self, name: str, version: str, trained_at: Any = None, max_age: Any = None
    ) -> None:
        body = {"trained_at": _iso(trained_at), "max_age": _step(max_age)}
        self._request("PUT", f"{_version_path(name, version)}/training-info", json=body)

    def log_resource_usage(
        self, name: str, version: str, memory_mb: float, timestamp: Any = None
    ) -> None:
        body = {"memory_mb": float(memory_mb), "timestamp": _iso(timestamp)}
        self._request("POST", f"{_version_path(name, version)}/resource-usage", json=body)

    def put_profiles(
        self,
        name: str,
        version: str,
        profiles: Any,
        *,
        replace: bool = True,
        batch_id: str | None = None,
    ) -> dict[str, Any]:
        """Bucket profiles as an Arrow stream; a ``batch_id`` travels as the
        Idempotency-Key (retries and replays store it once)."""
        from ..engine.imports import as_table

        table = as_table(name, profiles)
        headers = {"Content-Type": ARROW}
        if batch_id is not None:
            headers["Idempotency-Key"] = str(batch_id)
        answer = self._request(
            "PUT",
            f"{_version_path(name, version)}/profiles",
            params={"replace": "true" if replace else "false"},
            content=_arrow_bytes(table),
            headers=headers,
        ).json()
        return {k: answer[k] for k in ("rows", "parts", "buckets", "replaced", "duplicate")}

    # -- queries ------------------------------------------------------------------------

    def metrics(
        self,
        name: str,
        version: str,
        metrics: Sequence[str] | str | None = None,
        *,
        start: Any = "-24h",
        end: Any = "now",
        step: Any = None,
        segment: Any = None,
        versions: str | None = None,
        align: bool = True,
        ci: float | None = None,
    ) -> pd.DataFrame:
        names = [metrics] if isinstance(metrics, str) else metrics
        return self._get_frame(
            f"{_version_path(name, version)}/metrics",
            _window(start, end, step, segment, versions, align)
            | {"metrics": list(names) if names is not None else None, "ci": ci},
        )

    def summary(
        self,
        name: str,
        version: str,
        *,
        start: Any = "-24h",
        end: Any = "now",
        step: Any = None,
        segment: Any = None,
        versions: str | None = None,
        align: bool = True,
    ) -> pd.DataFrame:
        return self._get_frame(
            f"{_version_path(name, version)}/summary",
            _window(start, end, step, segment, versions, align),
        )

    def quarantined(
        self, name: str, version: str | None = None, *, start: Any = None, end: Any = None
    ) -> pd.DataFrame:
        return self._get_frame(
            f"{_model_path(name)}/quarantine",
            {"version": version, "start": _iso(start), "end": _iso(end)},
        )

    def drift(
        self,
        name: str,
        version: str,
        *,
        start: Any = "-24h",
        end: Any = "now",
        against: Any = "reference",
        segment: Any = None,
        step: Any = None,
        versions: str | None = None,
        align: bool = True,
        **options: Any,
    ):
        from ..drift.report import DriftReport

        sent = {k: _iso(v) for k, v in against.items()} if isinstance(against, dict) else against
        body = _window(start, end, step, segment, versions, align) | {"against": sent} | options
        answer = self._request("POST", f"{_version_path(name, version)}/drift", json=body)
        report = DriftReport.from_dict(answer.json())
        report.against = against  # as the caller gave it, as in process
        return report

    def quality(
        self,
        name: str,
        version: str,
        *,
        start: Any = "-24h",
        end: Any = "now",
        step: Any = None,
        segment: Any = None,
        constraints: Any = None,
        infer: bool = True,
        mode: str = "sketch",
        versions: str | None = None,
        align: bool = True,
    ):
        from ..quality.check import QualityReport
        from ..quality.constraints import parse_constraints

        given = parse_constraints(constraints) if constraints is not None else None
        body = _window(start, end, step, segment, versions, align) | {
            "constraints": [c.to_dict() for c in given] if given is not None else None,
            "infer": infer,
            "mode": mode,
        }
        return QualityReport(self._post_frame(f"{_version_path(name, version)}/quality", body))

    def estimate(
        self,
        name: str,
        version: str,
        metrics: Sequence[str] | str | None = None,
        *,
        start: Any = "-24h",
        end: Any = "now",
        step: Any = None,
        segment: Any = None,
        band: bool = False,
        mode: str = "sketch",
        versions: str | None = None,
        align: bool = True,
    ) -> pd.DataFrame:
        names = [metrics] if isinstance(metrics, str) else metrics
        return self._get_frame(
            f"{_version_path(name, version)}/estimate",
            _window(start, end, step, segment, versions, align)
            | {
                "metrics": list(names) if names is not None else None,
                "band": "true" if band else "false",
                "mode": mode,
            },
        )

    def checks(
        self, name: str, version: str, *, start: Any = "-24h", end: Any = "now", **options: Any
    ):
        from ..monitors.checks import MonitorReport

        if isinstance(options.get("against"), dict):
            options["against"] = {k: _iso(v) for k, v in options["against"].items()}
        if "now" in options:
            options["now"] = _iso(options["now"])
        if options.get("monitors") is not None:
            options["monitors"] = list(options["monitors"])
        body = {"start": _iso(start), "end": _iso(end)} | options
        answer = self._request("POST", f"{_version_path(name, version)}/checks", json=body)
        return MonitorReport.from_dict(answer.json())

    def skew(self, name: str, version: str, tolerance: float = 1e-9) -> pd.DataFrame:
        return self._get_frame(f"{_version_path(name, version)}/skew", {"tolerance": tolerance})

    # -- investigation ------------------------------------------------------------------

    def _post_table(self, path: str, body: dict[str, Any]) -> pd.DataFrame:
        """A POST route's frame, exactly as the service built it (see ``_frames``)."""
        response = self._request("POST", path, json=body, headers={"Accept": ARROW})
        return frame_from_arrow(response.content)

    def segments(
        self,
        name: str,
        version: str,
        metric: str,
        start: Any = "-24h",
        end: Any = "now",
        against: Any = None,
        segment: Any = None,
        versions: str | None = None,
    ) -> pd.DataFrame:
        sent = {k: _iso(v) for k, v in against.items()} if isinstance(against, dict) else against
        body = {"metric": metric, "start": _iso(start), "end": _iso(end), "against": sent,
                "segment": segment, "versions": versions}  # fmt: skip
        return self._post_table(f"{_version_path(name, version)}/segments", body)

    def slices(
        self,
        name: str,
        version: str,
        start: Any = "-24h",
        end: Any = "now",
        metric: str = "error",
        max_conditions: int = 2,
        min_support: Any = None,
        limit: int = 20,
        versions: str | None = None,
        alpha: float = 0.05,
    ) -> pd.DataFrame:
        body = {"start": _iso(start), "end": _iso(end), "metric": metric,
                "max_conditions": max_conditions, "min_support": min_support, "limit": limit,
                "versions": versions, "alpha": alpha}  # fmt: skip
        return self._post_table(f"{_version_path(name, version)}/slices", body)

    def rows(
        self,
        name: str,
        version: str,
        start: Any = "-24h",
        end: Any = "now",
        where: dict[str, Any] | None = None,
        ids: Sequence[str] | str | None = None,
        limit: int = 100,
        include_quarantined: bool = False,
        cursor: str | None = None,
        versions: str | None = None,
    ) -> pd.DataFrame:
        """Pages of at most ``PAGE_ROWS`` rows, followed until ``limit`` rows or the end."""
        from ..investigate.drill import MAX_ROWS, follow_pages

        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_ROWS:
            raise ConfigError(f"model {name!r}: limit must be an integer in 1..{MAX_ROWS:,}, got {limit!r}")
        path = f"{_version_path(name, version)}/rows"
        body = {"start": _iso(start), "end": _iso(end), "where": where,
                "ids": [ids] if isinstance(ids, str) else ids,
                "include_quarantined": include_quarantined, "versions": versions}  # fmt: skip

        def fetch(size: int, page_cursor: str | None) -> pd.DataFrame:
            return self._post_table(path, body | {"limit": size, "cursor": page_cursor})

        return follow_pages(fetch, limit, cursor)

    # -- alerting -----------------------------------------------------------------------

    def load_rules(self, source: Any, replace: bool = False) -> list[str]:
        """Rules (and notifiers) are parsed and checked here (a path is read here, never on
        the server), then stored by the server, which checks them against its models."""
        from ..alerts.rules import parse_rules

        parsed = parse_rules(source)
        body = {"rules": [r.to_dict() for r in parsed.rules], "notifiers": parsed.notifiers}
        params = {"replace": "true" if replace else "false"}
        return list(self._request("POST", "/api/v1/rules", json=body, params=params).json()["rules"])

    def rules(self) -> pd.DataFrame:
        return self._get_table("/api/v1/rules", {})

    def delete_rules(self, names: Sequence[str] | str) -> int:
        deleted = 0
        for name in [names] if isinstance(names, str) else list(names):
            try:  # a name no rule can have (it appears in the URL path) names no rule
                check_path_name(name, "rule name")
            except ConfigError:
                continue
            path = f"/api/v1/rules/{urlquote(name, safe='')}"
            deleted += int(self._request("DELETE", path).json()["deleted"])
        return deleted

    def notifiers(self) -> list[dict[str, Any]]:
        return list(self._get_json("/api/v1/notifiers")["notifiers"])

    def evaluate(self, at: Any = None) -> pd.DataFrame:
        response = self._request(
            "POST", "/api/v1/evaluate", json={"at": _iso(at)}, headers={"Accept": ARROW}
        )
        return frame_from_arrow(response.content)

    def alerts(self, state: str | None = None, model: str | None = None) -> pd.DataFrame:
        return self._get_table("/api/v1/alerts", {"state": state, "model": model})

    def maintain(self, now: Any = None) -> dict[str, Any]:
        return dict(self._request("POST", "/api/v1/maintain", json={"now": _iso(now)}).json())

    def incidents(self, status: str | None = None) -> pd.DataFrame:
        return self._get_table("/api/v1/incidents", {"status": status})

    def incident(self, incident_id: int) -> dict[str, Any]:
        path = _incident_path(incident_id)
        found = self._get_json(path)
        out = {k: found[k] for k in ("id", "title", "status")}
        for key in ("opened_at", "acknowledged_at", "resolved_at"):
            out[key] = from_micros(to_micros(found[key])) if found[key] is not None else None
        out["models"] = list(found["models"])
        out["alerts"] = self._get_table(f"{path}/alerts", {})
        out["timeline"] = self._get_table(f"{path}/timeline", {})
        return out

    def root_cause(self, incident_id: int) -> pd.DataFrame:
        return self._get_table(f"{_incident_path(incident_id)}/root_cause", {})

    def acknowledge(self, incident_id: int) -> None:
        self._request("POST", f"{_incident_path(incident_id)}/acknowledge")

    def silence(
        self,
        matchers: dict[str, str],
        duration: Any = "2h",
        comment: str = "",
        created_by: str | None = None,
        start: Any = None,
    ) -> str:
        from ..errors import RuleError

        if not isinstance(matchers, dict) or not matchers:
            raise RuleError("silence: field 'matchers': a non-empty mapping of label -> value is required")
        if not isinstance(comment, str) or (created_by is not None and not isinstance(created_by, str)):
            raise RuleError("silence: fields 'comment' and 'created_by' must be strings")
        if not isinstance(duration, str):
            try:
                duration = _step(duration)
            except ConfigError as exc:
                raise RuleError(f"silence: field 'duration': {exc}") from None
        body = {
            "matchers": matchers, "duration": duration, "comment": comment,
            "created_by": created_by, "start": _iso(start),
        }  # fmt: skip
        return str(self._request("POST", "/api/v1/silences", json=body).json()["id"])

    def silences(self) -> pd.DataFrame:
        return self._get_table("/api/v1/silences", {})

    def expire_silence(self, silence_id: str) -> None:
        from ..errors import RuleError

        try:  # ids are short hex strings: anything else (a '/', say) is no silence
            check_path_name(silence_id, "silence id")
        except ConfigError:
            raise RuleError(f"unknown silence {silence_id!r}") from None
        self._request("DELETE", f"/api/v1/silences/{urlquote(silence_id, safe='')}")

    def notifications(self) -> pd.DataFrame:
        return self._get_table("/api/v1/notifications", {})

    def _get_table(self, path: str, params: dict[str, Any]) -> pd.DataFrame:
        """A table route's frame, exactly as the service built it (see ``_frames``)."""
        params = {k: v for k, v in params.items() if v is not None}
        response = self._request("GET", path, params=params, headers={"Accept": ARROW})
        return frame_from_arrow(response.content)

    def _register_or_get(self, body: dict[str, Any], registering: bool) -> dict[str, Any]:
        name = body["name"]
        if not registering:
            try:
                info = self._get_json(_model_path(name))
            except AuthenticationError as exc:
                if exc.status != 403:
                    raise
                info = None  # an ingest key cannot read: registering returns the model too
            except UnknownModelError:
                raise UnknownModelError(
                    f"unknown model {name!r}: pass task='binary'|'multiclass'|'regression' to "
                    "register it"
                ) from None
            if info is not None:
                versions = info["versions"]
                wanted = body["version"] if "version" in body else (versions[-1] if versions else None)
                if wanted is not None and wanted in versions:
                    return info | {"version": wanted}
        return self._request("POST", "/api/v1/models", json=body).json()

    def _upload_reference(
        self,
        name: str,
        version: str,
        table: pa.Table,
        features: Sequence[str] | None,
        recommended_rules: bool = True,
    ) -> None:
        params: dict[str, Any] = {"features": list(features)} if features else {}
        if not recommended_rules:  # the first reference is what creates them
            params["recommended_rules"] = "false"
        envelope = self._envelope("reference", name, version, params, table)
        self._submit_and_wait(envelope, wait=not self._sender.down)

    # -- delivery -----------------------------------------------------------------------

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            return self._http.request(method, path, retry_for=self.retry_for, **kwargs)
        except UnicodeEncodeError as exc:  # a lone surrogate in a name or value: no URL or
            # JSON can carry it, and no stored name holds one
            raise ConfigError(
                f"{exc.object[max(0, exc.start - 20) : exc.end + 20]!r} is not valid Unicode "
                f"({exc.reason}): it cannot be sent to the server"
            ) from None

    def _get_json(self, path: str, **params: Any) -> Any:
        return self._request("GET", path, params=params).json()

    def _get_frame(self, path: str, params: dict[str, Any]) -> pd.DataFrame:
        params = {k: v for k, v in params.items() if v is not None}
        response = self._request("GET", path, params=params, headers={"Accept": ARROW})
        return pa.ipc.open_stream(response.content).read_all().to_pandas()

    def _post_frame(self, path: str, body: dict[str, Any]) -> pd.DataFrame:
        response = self._request("POST", path, json=body, headers={"Accept": ARROW})
        return pa.ipc.open_stream(response.content).read_all().to_pandas()

    def _envelope(
        self, kind: str, name: str, version: str | None, params: dict[str, Any], table: pa.Table
    ) -> Envelope:
        """An ingest request; its method and path follow from ``kind`` (see ``Envelope``)."""
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        body = sink.getvalue().to_pybytes()
        encoding = None
        if self.compression == "gzip":
            body, encoding = gzip.compress(body, compresslevel=1, mtime=0), "gzip"
        return Envelope(
            0, kind, name, version, params, ARROW, body, table.num_rows, encoding=encoding
        )

    def _queue_json(self, kind: str, name: str, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self._sender.submit(
            Envelope(0, kind, name, body.get("version"), {}, "application/json", data, 0)
        )

    def _submit_and_wait(self, envelope: Envelope, wait: bool, timeout: float | None = None) -> Any:
        """Queue an envelope; if ``wait``, return the server's answer (None if it is still
        pending when the server went down or ``timeout`` passed) or raise its error."""
        done = threading.Event() if wait else None
        envelope.done = done
        if not self._sender.submit(envelope) or done is None:
            return None
        deadline = time.monotonic() + (timeout if timeout is not None else self.retry_for + 30)
        while not done.wait(0.05):
            if self._sender.down or time.monotonic() > deadline:
                return None
        if envelope.error is not None:
            if isinstance(envelope.error, BufferError):
                return None
            raise envelope.error
        return envelope.result

    def _deliver(self, key: tuple[Any, ...], table: pa.Table) -> None:
        """Batcher sink: one Arrow batch of ``log`` / ``log_feedback`` rows."""
        kind, name, version = key
        if kind == "prediction":
            params = {"id": LOG_ID, "timestamp": LOG_TS, "prediction": LOG_PREDICTION}
        else:
            params = {"id": LOG_ID, "timestamp": LOG_TS, "label": LOG_LABEL}
        self._sender.submit(self._envelope(kind, name, version, params, table))

    def _failed(self, key: tuple[Any, ...], rows: Any, exc: BaseException) -> None:
        n = rows.num_rows if isinstance(rows, pa.Table) else len(rows)
        self._sender.dropped_rows += n
        log.error("mlpulse: model %r: %d %s rows could not be batched: %s", key[1], n, key[0], exc)

    # -- lifecycle ----------------------------------------------------------------------

    def flush(self, timeout: float | None = None) -> bool:
        """Block until everything logged so far is acknowledged by the server (False if
        ``timeout`` ran out first; the rest stays queued or spooled)."""
        started = time.monotonic()
        if not self._batcher.flush(timeout):
            return False
        remaining = None if timeout is None else max(0.0, timeout - (time.monotonic() - started))
        return self._sender.wait(self._sender.last_seq(), remaining)

    @property
    def dropped(self) -> int:
        """Rows dropped because a bound was reached (policy ``drop`` or ``block``)."""
        return self._batcher.dropped + self._sender.dropped_rows

    @property
    def pending(self) -> int:
        """Rows logged but not yet acknowledged by the server (queued or spooled)."""
        return self._batcher.pending + self._sender.pending_rows()

    @property
    def rejected(self) -> int:
        """Batches the server refused for good (kept under ``rejected/`` in the spool)."""
        return self._sender.rejected

    def close(self, timeout: float | None = None) -> None:
        """Deliver what is pending (up to ``timeout``, default ``exit_timeout``), leave the
        rest in the disk spool for the next run, and close; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        timeout = self.exit_timeout if timeout is None else timeout
        delivered = self.flush(timeout)
        self._batcher.close(timeout=1.0)
        self._sender.close()
        if not delivered:
            lost = self._sender.spill()
            left = self._spool.rows if self._spool is not None else 0
            if left:
                log.warning(
                    "mlpulse: %d rows not yet delivered to %s are kept in %s for the next run",
                    left,
                    self._http.display_url,
                    self._spool.dir if self._spool else "-",
                )
            if lost:
                log.error("mlpulse: %d rows could not be kept (no spool or spool full)", lost)
        if self._spool is not None:
            self._spool.close()
        self._http.close()
        self._sender.transport.close()

    def _check_open(self) -> None:
        if self._closed:
            raise ConfigError(f"this mlpulse connection to {self.path!r} is closed")

    def __repr__(self) -> str:
        return f"HttpTransport({self.path!r})"


def _model_path(name: str) -> str:
    return f"/api/v1/models/{urlquote(check_model_name(name), safe='')}"


def _incident_path(incident_id: Any) -> str:
    """The incident's URL path; an id that is no 64-bit integer names no incident."""
    from ..errors import RuleError
    from ..service import _incident_id

    number = _incident_id(incident_id)
    if not -(2**63) <= number < 2**63:
        raise RuleError(f"unknown incident {incident_id!r}")
    return f"/api/v1/incidents/{number}"


def _version_path(name: str, version: str) -> str:
    return f"{_model_path(name)}/versions/{urlquote(version, safe='')}"


def _window(
    start: Any, end: Any, step: Any, segment: Any, versions: str | None, align: bool = True
) -> dict[str, Any]:
    """A query's window parameters as the server takes them (None: not sent; ``align``
    only when off, its default being on)."""
    return {
        "start": _iso(start),
        "end": _iso(end),
        "step": _step(step),
        "segment": _segment(segment),
        "versions": versions,
    } | ({} if align else {"align": False})


def _batch(name: str, table: Any, id: str, what: str) -> pa.Table:
    arrow = to_arrow(table, what=f"model {name!r}: {what}")
    if arrow.num_rows and id not in arrow.column_names:
        raise SchemaError(
            f"model {name!r}: the batch has no id column {id!r}; "
            f"its columns are: {', '.join(arrow.column_names) or 'none'}"
        )
    return arrow


def _arrow_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def _spec_of(info: dict[str, Any]) -> ModelSpec:
    """The ModelSpec a server's model description holds."""
    return ModelSpec(
        name=info["name"],
        task=info["task"],
        prediction=info["prediction"],
        label=info["label"],
        threshold=info["threshold"],
        classes=tuple(info["classes"]) if info["classes"] is not None else None,
        segments=tuple(info["segments"]),
        features=dict(info["features"]),
    )


__all__ = ["HttpTransport", "default_spool_dir"]
