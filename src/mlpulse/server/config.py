"""Server settings from defaults, a TOML file, ``MLPULSE_*`` variables and flags.

Later sources win: defaults < config file (``--config`` or ``$MLPULSE_CONFIG``, table
``[server]``) < environment < command-line flags.

>>> ServerConfig.load(overrides={"port": 9000}, environ={"MLPULSE_HOST": "0.0.0.0"}).host
'0.0.0.0'
"""

from __future__ import annotations

import ipaddress
import math
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError

if TYPE_CHECKING:
    from ..store.retention import RetentionPolicy

MiB = 1024 * 1024


@dataclass(frozen=True)
class ServerConfig:
    """Every server setting; ``docs/server.md`` documents each one."""

    db: str = "./mlpulse.duckdb"
    host: str = "127.0.0.1"
    port: int = 8765
    log_level: str = "info"
    log_format: str = "json"  # json | text
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    #: listen on a non-loopback address although no API key exists
    allow_unauthenticated: bool = False
    max_body_bytes: int = 256 * MiB  # after decompression
    max_rows: int = 1_000_000  # rows per ingest request
    max_features: int = 1_000  # columns per row
    max_string_length: int = 65_536  # characters in one string value
    root_path: str = ""  # path prefix when served behind a reverse proxy
    forwarded_allow_ips: str = "127.0.0.1"  # proxies whose X-Forwarded-* headers are trusted
    graceful_timeout: float = 30.0  # seconds in-flight requests get on shutdown
    #: seconds a connection may take to send its request line and headers (closed after)
    header_timeout: float = 10.0
    #: seconds the server waits for the next part of a request body (408 after)
    body_timeout: float = 30.0
    #: seconds an idle keep-alive connection stays open between requests
    timeout_keep_alive: float = 5.0
    #: most open connections (and requests in flight); more get 503 and are closed at once
    limit_concurrency: int = 1000
    #: alert rules (a YAML or JSON file) stored at start; bad rules stop the start
    rules: str | None = None
    #: with ``rules``: drop the other user rules and notifiers first (the file is the truth)
    replace_rules: bool = False
    #: time between two evaluations of the stored rules (``30s``, ``1m``)
    eval_interval: str = "30s"
    #: the server's address as users reach it, for links in notifications (default: the
    #: listening address)
    external_url: str | None = None
    #: ``GET /metrics`` without an API key although keys exist
    metrics_public: bool = False
    #: trailing windows of the ``/metrics`` series (durations, ``1h,24h`` on the command line)
    metrics_windows: tuple[str, ...] = ("1h", "24h")
    #: seconds the ``/metrics`` figures are served before a scrape has them recomputed (in
    #: the background; at least 4x the last computation's time); 0: at every scrape
    metrics_refresh: float = 10.0
    #: raw rows older than this leave the database file (``never``: kept), see raw_archive
    raw_retention: str = "30d"
    #: where raw rows past raw_retention go: ``parquet`` (files beside the database) or ``delete``
    raw_archive: str = "parquet"
    #: minute (and 10-minute) profiles older than this are deleted (hour buckets remain)
    minute_retention: str = "7d"
    #: hour profiles older than this are deleted (day buckets are kept forever)
    hour_retention: str = "400d"
    #: time between two maintenance runs (retention and compaction; the first one interval
    #: after the start)
    maintenance_interval: str = "1h"
    #: worker processes that profile ingest batches of 2,000 rows or more, so queries do not
    #: wait for ingest (0: profile in the server process)
    profile_workers: int = 1

    # -- loading ------------------------------------------------------------------------

    @classmethod
    def load(
        cls,
        path: str | None = None,
        *,
        overrides: Mapping[str, Any] | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> ServerConfig:
        """Merge the sources; ``overrides`` (flags) with value None are ignored."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        path = path or environ.get("MLPULSE_CONFIG")
        if path:
            values.update(_from_file(path))
        for f in fields(cls):
            raw = environ.get(f"MLPULSE_{f.name.upper()}")
            if raw is not None and raw != "":
                values[f.name] = raw
        values.update({k: v for k, v in (overrides or {}).items() if v is not None})
        return cls.from_mapping(values)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> ServerConfig:
        known = {f.name: f for f in fields(cls)}
        typed: dict[str, Any] = {}
        for name, value in values.items():
            key = name.replace("-", "_")
            if key not in known:
                raise ConfigError(
                    f"unknown server setting {name!r}; settings: {', '.join(sorted(known))}"
                )
            typed[key] = _coerce(key, known[key].type, value)
        config = replace(cls(), **typed)
        config.validate()
        return config

    def validate(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port must lie in 0..65535, got {self.port}")
        if self.log_format not in ("json", "text"):
            raise ConfigError(f"log_format must be 'json' or 'text', got {self.log_format!r}")
        if self.log_level.lower() not in ("debug", "info", "warning", "error", "critical"):
            raise ConfigError(f"unknown log_level {self.log_level!r}")
        if bool(self.ssl_certfile) != bool(self.ssl_keyfile):
            raise ConfigError("TLS needs both ssl_certfile and ssl_keyfile")
        for name in (
            "max_body_bytes",
            "max_rows",
            "max_features",
            "max_string_length",
            "header_timeout",
            "body_timeout",
            "timeout_keep_alive",
            "limit_concurrency",
        ):
            value = getattr(self, name)
            if not (value > 0 and math.isfinite(value)):  # also refuses NaN and infinity
                raise ConfigError(f"{name} must be a positive number, got {value!r}")
        if not 0 <= self.profile_workers <= 64:
            raise ConfigError(
                f"profile_workers must be a whole number from 0 to 64, got {self.profile_workers!r}"
            )
        self.eval_seconds  # noqa: B018 - raises ConfigError for a bad interval
        if not (self.metrics_refresh >= 0 and math.isfinite(self.metrics_refresh)):
            raise ConfigError(
                f"metrics_refresh must be a number of seconds >= 0, got {self.metrics_refresh!r}"
            )
        self.retention  # noqa: B018 - raises ConfigError for a bad retention setting
        self.maintenance_seconds  # noqa: B018
        from ..export.prometheus import parse_windows

        parse_windows(self.metrics_windows)  # raises ConfigError naming a bad window

    @property
    def loopback(self) -> bool:
        """True when the server listens only on this machine."""
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:  # a host name: assume it is reachable from elsewhere
            return False

    @property
    def scheme(self) -> str:
        return "https" if self.ssl_certfile else "http"

    @property
    def eval_seconds(self) -> float:
        """``eval_interval`` in seconds (a plain number is seconds)."""
        from .._time import MICROS_PER_SECOND, parse_duration

        try:
            value: str | float = float(self.eval_interval)
        except ValueError:
            value = self.eval_interval
        try:
            seconds = parse_duration(value) / MICROS_PER_SECOND
        except ConfigError as exc:
            raise ConfigError(f"eval_interval: {exc}") from None
        if not seconds >= 0.1:
            raise ConfigError(f"eval_interval must be at least 0.1s, got {self.eval_interval!r}")
        return seconds

    @property
    def retention(self) -> RetentionPolicy:
        """The retention policy of the ``*_retention`` and ``raw_archive`` settings."""
        from ..store.retention import RetentionPolicy

        return RetentionPolicy.parse(
            self.raw_retention,
            self.raw_archive,
            {"minute": self.minute_retention, "hour": self.hour_retention},
        )

    @property
    def maintenance_seconds(self) -> float:
        """``maintenance_interval`` in seconds (at least one second)."""
        from .._time import MICROS_PER_SECOND, parse_duration

        try:
            seconds = parse_duration(self.maintenance_interval) / MICROS_PER_SECOND
        except ConfigError as exc:
            raise ConfigError(f"maintenance_interval: {exc}") from None
        if not seconds >= 1:
            raise ConfigError(
                f"maintenance_interval must be at least 1s, got {self.maintenance_interval!r}"
            )
        return seconds

    @property
    def url(self) -> str:
        """``external_url``, or the address the server listens on."""
        if self.external_url:
            return self.external_url.rstrip("/")
        host = self.host if ":" not in self.host else f"[{self.host}]"
        return f"{self.scheme}://{host}:{self.port}{self.root_path}".rstrip("/")


def _from_file(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"config file {path!r} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path!r} is not valid TOML: {exc}") from None
    section = data.get("server", data)
    if not isinstance(section, dict):
        raise ConfigError(f"config file {path!r}: [server] must be a table")
    return dict(section)


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _coerce(name: str, kind: Any, value: Any) -> Any:
    kind = str(kind)
    try:
        if kind.startswith("bool"):
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in _TRUE | _FALSE:
                return text in _TRUE
            raise ValueError(value)
        if kind.startswith("int"):
            if isinstance(value, bool):
                raise ValueError(value)
            return int(value)
        if kind.startswith("float"):
            return float(value)
        if kind.startswith("tuple"):  # a list, or comma-separated text ("1h,24h")
            items = value.split(",") if isinstance(value, str) else list(value)
            return tuple(str(v).strip() for v in items if str(v).strip())
        return None if value is None else str(value)
    except (TypeError, ValueError):
        raise ConfigError(f"server setting {name}: invalid value {value!r} ({kind})") from None


__all__ = ["ServerConfig"]
