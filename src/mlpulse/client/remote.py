"""The remote client: the embedded ``Pulse`` / ``Model`` API over HTTP.

``mlpulse.connect("http://host:8765", api_key=...)`` returns a :class:`RemotePulse`.
``model.log`` / ``log_feedback`` / ``observe`` append to an in-memory queue and return at
once; a batcher thread turns rows into Arrow batches (by size and time) and a sender
thread delivers them in order, gzip-compressed, each with an idempotency key, retrying
with exponential backoff and jitter and spooling to disk while the server is unreachable
(see :mod:`mlpulse.client.sender`). ``log_batch`` waits for the server's report unless the
server is down, in which case the rows are spooled and reported as ``pending``.
"""

from __future__ import annotations

import atexit
import gzip
import hashlib
import json
import logging
import os
import threading
import time
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote as urlquote

import pandas as pd
import pyarrow as pa

from .._time import from_micros, parse_duration, to_micros
from ..engine.ingest import IngestReport
from ..errors import ConfigError, SchemaError, UnknownModelError
from ..schema import ModelSpec, infer_features, to_arrow
from .batcher import Batcher
from .embedded import Observation, _current_trace_id
from .http import AuthenticationError, HttpTransport, ServerUnavailableError, clean_api_key
from .sender import POLICIES, Sender
from .spool import DiskSpool, Envelope

log = logging.getLogger("mlpulse.remote")

ARROW = "application/vnd.apache.arrow.stream"
_ID, _TS, _PRED, _LABEL = "__log_id", "__log_ts", "__log_prediction", "__log_label"
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


class RemotePulse:
    """A connection to an mlpulse server (see :func:`mlpulse.connect`).

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
    ) -> None:
        if on_full not in POLICIES:
            raise ConfigError(f"on_full must be one of {', '.join(POLICIES)}, got {on_full!r}")
        if compression not in ("gzip", None):
            raise ConfigError(f"compression must be 'gzip' or None, got {compression!r}")
        if isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or max_attempts < 1:
            raise ConfigError(f"max_attempts must be a whole number >= 1, got {max_attempts!r}")
        api_key = clean_api_key(api_key)
        self.url = url.rstrip("/")
        self.path = self.url
        self.retry_for = retry_for
        self.batch_rows = batch_rows
        self.compression = compression
        self.on_full = on_full
        self.block_timeout = block_timeout
        self.exit_timeout = exit_timeout
        self._http = HttpTransport(
            self.url, api_key, timeout=timeout, verify=verify, max_attempts=max_attempts
        )
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
            HttpTransport(
                self.url, api_key, timeout=timeout, verify=verify, max_backoff=max_backoff
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
        self._models: dict[tuple[str, str], RemoteModel] = {}
        self._closed = False
        self._lock = threading.Lock()
        ref = weakref.ref(self)

        def _close_at_exit() -> None:
            p = ref()
            if p is not None:
                p.close()

        atexit.register(_close_at_exit)

    # -- registry -----------------------------------------------------------------------

    def model(
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
    ) -> RemoteModel:
        """Register a model version on the server (first call) or return the registered one;
        same arguments and errors as the embedded ``Pulse.model``.

        If the server is unreachable and ``task`` is given, the registration is queued
        ahead of the model's rows and a handle is returned at once."""
        self._check_open()
        if isinstance(features, str):
            raise ConfigError(f"model {name!r}: features must be a list of column names")
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
        try:
            info = self._register_or_get(body, registering)
        except ServerUnavailableError:
            if task is None:
                raise
            log.warning("mlpulse: server unavailable; registration of %r queued", name)
            info = {"name": name, "version": str(version or "v1"), "prediction": prediction}
            self._queue_json("register", name, body | {"version": info["version"]})
        version = str(info["version"])
        if ref_table is not None:
            self._upload_reference(name, version, ref_table, features)
        key = (name, version)
        with self._lock:
            if key not in self._models:
                self._models[key] = RemoteModel(self, name, version)
            return self._models[key]

    def _register_or_get(self, body: dict[str, Any], registering: bool) -> dict[str, Any]:
        name = body["name"]
        if not registering:
            try:
                info = self._get_json(f"/api/v1/models/{urlquote(name, safe='')}")
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
                wanted = body.get("version") or (versions[-1] if versions else None)
                if wanted is not None and wanted in versions:
                    return info | {"version": wanted}
        response = self._http.request("POST", "/api/v1/models", json=body, retry_for=self.retry_for)
        return response.json()

    def _upload_reference(
        self, name: str, version: str, table: pa.Table, features: Sequence[str] | None
    ) -> None:
        params = {"features": list(features)} if features else {}
        envelope = self._envelope("reference", name, version, params, table)
        self._submit_and_wait(envelope, wait=not self._sender.down)

    def models(self) -> list[str]:
        """Names of the registered models."""
        return [m["name"] for m in self._get_json("/api/v1/models")["models"]]

    # -- delivery -----------------------------------------------------------------------

    def _get_json(self, path: str, **params: Any) -> Any:
        return self._http.request("GET", path, params=params, retry_for=self.retry_for).json()

    def _get_frame(self, path: str, params: dict[str, Any]) -> pd.DataFrame:
        params = {k: v for k, v in params.items() if v is not None}
        response = self._http.request(
            "GET", path, params=params, headers={"Accept": ARROW}, retry_for=self.retry_for
        )
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
            params = {"id": _ID, "timestamp": _TS, "prediction": _PRED}
        else:
            params = {"id": _ID, "timestamp": _TS, "label": _LABEL}
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
            raise ConfigError(f"this mlpulse connection to {self._http.display_url!r} is closed")

    def __enter__(self) -> RemotePulse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RemotePulse({self._http.display_url!r})"


class RemoteModel:
    """Logging and query handle for one model version on a server; the embedded
    :class:`~mlpulse.client.embedded.Model` API."""

    def __init__(self, pulse: RemotePulse, name: str, version: str) -> None:
        self._pulse = pulse
        self.name = name
        self.version = version
        self._key_prediction = ("prediction", name, version)
        self._key_feedback = ("feedback", name, version)
        quoted = urlquote(name, safe="")
        self._path = f"/api/v1/models/{quoted}"
        self._version_path = f"{self._path}/versions/{urlquote(version, safe='')}"

    @property
    def spec(self) -> ModelSpec:
        """The model's current specification, as the server has it."""
        info = self._pulse._get_json(self._path)
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

    # -- logging ------------------------------------------------------------------------

    def log(
        self,
        id: Any,
        features: dict[str, Any] | None = None,
        prediction: Any = None,
        timestamp: Any = None,
        latency_ms: float | None = None,
        trace_id: str | None = None,
    ) -> None:
        """Queue one prediction; returns at once. Bad rows end up in the quarantine."""
        try:
            row = dict(features) if features else {}
            row[_ID] = id
            row[_TS] = time.time() if timestamp is None else timestamp
            row[_PRED] = prediction
            if latency_ms is not None:
                row["latency_ms"] = latency_ms
            if trace_id is not None:
                row["trace_id"] = trace_id
            self._put(self._key_prediction, row)
        except Exception:  # the caller's service must never crash because of logging
            log.exception("mlpulse: model %r: could not queue a prediction", self.name)

    def log_feedback(self, id: Any, label: Any, timestamp: Any = None) -> None:
        """Queue the ground truth for a logged (or future) prediction; returns at once."""
        try:
            row = {_ID: id, _LABEL: label, _TS: time.time() if timestamp is None else timestamp}
            self._put(self._key_feedback, row)
        except Exception:
            log.exception("mlpulse: model %r: could not queue feedback", self.name)

    def _put(self, key: tuple[Any, ...], row: dict[str, Any]) -> None:
        batcher = self._pulse._batcher
        if self._pulse.on_full == "block" and batcher.pending >= batcher.max_pending:
            deadline = time.monotonic() + self._pulse.block_timeout
            while batcher.pending >= batcher.max_pending and time.monotonic() < deadline:
                time.sleep(0.001)
        batcher.put(key, row)

    @contextmanager
    def observe(
        self, id: Any, features: dict[str, Any] | None = None, timestamp: Any = None
    ) -> Iterator[Observation]:
        """Time a block that sets ``obs.prediction``; logs it with its latency and trace id."""
        obs = Observation(
            id=id, features=dict(features or {}), timestamp=timestamp, trace_id=_current_trace_id()
        )
        started = time.perf_counter()
        yield obs
        obs.latency_ms = (time.perf_counter() - started) * 1000.0
        self.log(
            obs.id,
            obs.features,
            obs.prediction,
            timestamp=obs.timestamp,
            latency_ms=obs.latency_ms,
            trace_id=obs.trace_id,
        )

    def _send_batch(self, kind: str, params: dict[str, Any], arrow: pa.Table) -> IngestReport:
        total = IngestReport(0, 0, 0)
        pulse = self._pulse
        for start in range(0, arrow.num_rows, pulse.batch_rows):
            chunk = arrow.slice(start, pulse.batch_rows)
            envelope = pulse._envelope(kind, self.name, self.version, params, chunk)
            answer = pulse._submit_and_wait(envelope, wait=not pulse._sender.down)
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

    def log_batch(self, table: Any, id: str = "id", timestamp: str | None = None) -> IngestReport:
        """Store many predictions; returns ``received``, ``stored``, ``quarantined`` and
        ``pending`` (rows spooled because the server is unreachable, sent later)."""
        arrow = to_arrow(table, what=f"model {self.name!r}: log_batch table")
        if arrow.num_rows and id not in arrow.column_names:
            raise SchemaError(
                f"model {self.name!r}: the batch has no id column {id!r}; "
                f"its columns are: {', '.join(arrow.column_names) or 'none'}"
            )
        if timestamp is None and "timestamp" in arrow.column_names:
            timestamp = "timestamp"
        params = {"id": id} | ({"timestamp": timestamp} if timestamp else {})
        return self._send_batch("prediction", params, arrow)

    def log_feedback_batch(
        self, table: Any, id: str = "id", label: str | None = None, timestamp: str | None = None
    ) -> IngestReport:
        """Store many labels; each replaces any earlier label for its id."""
        arrow = to_arrow(table, what=f"model {self.name!r}: log_feedback_batch table")
        if arrow.num_rows and id not in arrow.column_names:
            raise SchemaError(
                f"model {self.name!r}: the batch has no id column {id!r}; "
                f"its columns are: {', '.join(arrow.column_names) or 'none'}"
            )
        params = {"id": id}
        if label is not None:
            params["label"] = label
        if timestamp is not None:
            params["timestamp"] = timestamp
        return self._send_batch("feedback", params, arrow)

    # -- queries ------------------------------------------------------------------------

    def _query_path(self, version: str | None) -> str:
        if version is None:
            return self._version_path
        return f"{self._path}/versions/{urlquote(str(version), safe='*')}"

    def metrics(
        self,
        metrics: Sequence[str] | str | None = None,
        start: Any = "-24h",
        end: Any = "now",
        step: Any = None,
        segment: Any = None,
        version: str | None = None,
    ) -> pd.DataFrame:
        """One row per window: window_start, window_end, n, n_labeled and each metric."""
        names = [metrics] if isinstance(metrics, str) else metrics
        return self._pulse._get_frame(
            f"{self._query_path(version)}/metrics",
            {
                "metrics": list(names) if names is not None else None,
                "start": _iso(start),
                "end": _iso(end),
                "step": _step(step),
                "segment": _segment(segment),
            },
        )

    def summary(
        self,
        start: Any = "-24h",
        end: Any = "now",
        step: Any = None,
        segment: Any = None,
        version: str | None = None,
    ) -> pd.DataFrame:
        """Per window and feature: count, missing, mean, std, min, p50, max, distinct, top."""
        return self._pulse._get_frame(
            f"{self._query_path(version)}/summary",
            {
                "start": _iso(start),
                "end": _iso(end),
                "step": _step(step),
                "segment": _segment(segment),
            },
        )

    def quarantined(self, start: Any = None, end: Any = None) -> pd.DataFrame:
        """Quarantined rows (received in [start, end)) with their ``reason``."""
        return self._pulse._get_frame(
            f"{self._path}/quarantine",
            {"version": self.version, "start": _iso(start), "end": _iso(end)},
        )

    def versions(self) -> list[str]:
        return list(self._pulse._get_json(self._path)["versions"])

    def __repr__(self) -> str:
        return f"RemoteModel({self.name!r}, version={self.version!r})"


__all__ = ["RemoteModel", "RemotePulse", "default_spool_dir"]
