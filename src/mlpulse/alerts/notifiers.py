"""Notifiers: where alert notifications go, and how each kind is sent.

A notifier is a dict from ``rules.yaml``'s ``notifiers:`` list. Five types:

- ``webhook``: POST an Alertmanager webhook v4 JSON body to ``url``;
- ``alertmanager``: POST the alerts to an Alertmanager's ``{url}/api/v2/alerts``;
- ``slack``: POST a message (text and a coloured attachment) to an incoming-webhook ``url``;
- ``pagerduty``: PagerDuty Events API v2, ``{url}/v2/enqueue`` (trigger / resolve);
- ``email``: a plain-text mail over SMTP (``starttls`` or ``ssl`` for TLS).

Any string may name environment variables, ``"${PD_ROUTING_KEY}"``: they are kept as written
(what the store holds) and expanded only when a notification is sent. Values from the
environment, and secret fields (``routing_key``, ``password``, header values, URL query
strings), never appear in error messages or logs: errors name a URL by its scheme and host.

The payload builders (:func:`webhook_payload`, :func:`alertmanager_payload`,
:func:`slack_payload`, :func:`pagerduty_payload`, :func:`email_message`) are pure functions of
the notifier config and a notification record (see ``docs/alerts.md``); :func:`send` builds
and sends.

>>> validate_notifier({"name": "ops", "type": "webhook", "url": "http://127.0.0.1:9000/hook"})
{'name': 'ops', 'type': 'webhook', 'url': 'http://127.0.0.1:9000/hook', 'timeout': 10.0, 'send_resolved': True, 'headers': {}}
>>> validate_notifier({"name": "pager", "type": "pagerduty"})
Traceback (most recent call last):
...
mlpulse.errors.RuleError: notifier 'pager': field 'routing_key' is required
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import smtplib
import ssl
import threading
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from ..errors import MlpulseError, RuleError

TYPES = ("webhook", "alertmanager", "slack", "pagerduty", "email")
_COMMON = {"name", "type", "timeout", "send_resolved"}
_HTTP = {"url", "headers", "tls_verify", "ca_file"}
#: Fields of each type beyond the common ones, and which of them are required.
FIELDS: dict[str, set[str]] = {
    "webhook": _HTTP | {"max_alerts", "external_url"},
    "alertmanager": _HTTP,
    "slack": _HTTP | {"channel", "username", "icon_emoji"},
    "pagerduty": _HTTP | {"routing_key", "source", "client", "client_url"},
    "email": {"host", "port", "from", "to", "username", "password", "starttls", "ssl"}
    | {"tls_verify", "ca_file"},
}
REQUIRED: dict[str, tuple[str, ...]] = {
    "webhook": ("url",),
    "alertmanager": ("url",),
    "slack": ("url",),
    "pagerduty": ("routing_key",),
    "email": ("host", "to"),
}
PAGERDUTY_URL = "https://events.pagerduty.com"
DEFAULT_TIMEOUT = 10.0
#: PagerDuty's severities; an alert's ``severity`` label maps onto them (``page`` -> critical).
PD_SEVERITIES = ("critical", "error", "warning", "info")
FIRING_COLOUR, RESOLVED_COLOUR = "#d63232", "#2eb886"
ZERO_TIME = "0001-01-01T00:00:00Z"

_REF = re.compile(r"\$\{([^}]*)\}")
_VAR = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_LABEL_NAME = re.compile(r"[^A-Za-z0-9_]")


class NotifierError(MlpulseError):
    """A notification could not be sent; the message names the notifier and the reason, never
    a secret. ``retryable`` is False where sending it again cannot help (HTTP 4xx, a refused
    address, an unset environment variable); ``unreachable`` is True where the receiver did
    not answer at all (refused connection, timeout), so later sends would fail the same way."""

    def __init__(self, message: str, *, retryable: bool = True, unreachable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.unreachable = unreachable


# -- validation --------------------------------------------------------------------------


def _fail(name: object, field: str, reason: str) -> RuleError:
    who = f"notifier {name!r}" if isinstance(name, str) and name else "notifier (no name)"
    return RuleError(f"{who}: field {field!r} {reason}")


def _check_refs(name: str, field: str, value: str) -> None:
    """``${VAR}`` references are well formed (a typo is an error now, not at 3 a.m.)."""
    for ref in _REF.findall(value):
        if not _VAR.match(ref):
            raise _fail(name, field, f"has an invalid environment reference '${{{ref}}}'")
    if "${" in _REF.sub("", value):
        raise _fail(name, field, "has an unclosed '${' (write environment references as ${VAR})")


def _string(name: str, field: str, value: object, *, empty: bool = False) -> str:
    if not isinstance(value, str):
        raise _fail(name, field, f"must be a string, not {type(value).__name__}")
    if not empty and not value.strip():
        raise _fail(name, field, "must not be empty")
    if any(c in value for c in "\r\n\x00"):
        raise _fail(name, field, "must not contain line breaks")
    _check_refs(name, field, value)
    return value


def _url(name: str, field: str, value: object) -> str:
    text = _string(name, field, value)
    if "${" in text:
        return text  # checked once expanded
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _fail(name, field, "must be an http:// or https:// URL with a host")
    return text


def _bool(name: str, field: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise _fail(name, field, "must be true or false")
    return value


def _number(name: str, field: str, value: object, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _fail(name, field, "must be a number")
    if not low < value <= high:
        raise _fail(name, field, f"must be above {low:g} and at most {high:g}")
    return float(value)


def _integer(name: str, field: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(name, field, "must be an integer")
    if not low <= value <= high:
        raise _fail(name, field, f"must be between {low} and {high}")
    return value


def _address(name: str, field: str, value: object) -> str:
    text = _string(name, field, value)
    if "${" not in text and "@" not in text:
        raise _fail(name, field, f"{text!r} is not an e-mail address")
    return text


def validate_notifier(config: dict) -> dict:
    """Check a notifier config and return a copy with defaults filled in.

    Raises :class:`~mlpulse.errors.RuleError` naming the notifier and the field. Environment
    references stay as written.
    """
    if not isinstance(config, dict):
        raise RuleError(f"a notifier must be a mapping, not {type(config).__name__}")
    name = config.get("name")
    if name is None:
        raise _fail(name, "name", "is required")
    name = _string(name, "name", name)
    if "${" in name or len(name) > 200:
        raise _fail(name, "name", "must be a plain name of at most 200 characters")
    kind = config.get("type")
    if kind not in TYPES:
        raise _fail(name, "type", f"must be one of {', '.join(TYPES)} (got {kind!r})")
    allowed = _COMMON | FIELDS[kind]
    for field in config:
        if field not in allowed:
            raise _fail(
                name,
                str(field),
                f"is not a field of a {kind} notifier ({', '.join(sorted(allowed))})",
            )
    for field in REQUIRED[kind]:
        if config.get(field) is None:
            raise _fail(name, field, "is required")

    out: dict[str, Any] = {"name": name, "type": kind}
    for field, value in config.items():
        if field in ("name", "type") or value is None:
            continue
        if field in ("url", "client_url"):
            out[field] = _url(name, field, value)
        elif field in ("send_resolved", "starttls", "ssl", "tls_verify"):
            out[field] = _bool(name, field, value)
        elif field == "timeout":
            out[field] = _number(name, field, value, 0.0, 300.0)
        elif field == "port":
            out[field] = _integer(name, field, value, 1, 65535)
        elif field == "max_alerts":
            out[field] = _integer(name, field, value, 0, 1_000_000)
        elif field == "headers":
            out[field] = _headers(name, value)
        elif field == "to":
            items = [value] if isinstance(value, str) else value
            if not isinstance(items, list) or not items:
                raise _fail(name, field, "must be an address or a non-empty list of addresses")
            out[field] = [_address(name, field, v) for v in items]
        elif field == "from":
            out[field] = _address(name, field, value)
        else:
            out[field] = _string(name, field, value)

    out.setdefault("timeout", DEFAULT_TIMEOUT)
    out.setdefault("send_resolved", True)
    if kind == "email":
        if out.get("ssl") and out.get("starttls"):
            raise _fail(
                name, "ssl", "cannot be combined with 'starttls' (ssl: port 465, starttls: 587)"
            )
        if "password" in out and "username" not in out:
            raise _fail(name, "username", "is required with 'password'")
        if "password" in out and not (out.get("ssl") or out.get("starttls")):
            raise _fail(
                name, "password", "is only sent over TLS: set 'starttls: true' or 'ssl: true'"
            )
        out.setdefault("port", 465 if out.get("ssl") else 587 if out.get("starttls") else 25)
        out.setdefault("from", "mlpulse@localhost")
    else:
        out.setdefault("headers", {})
    return out


def _headers(name: str, value: object) -> dict[str, str]:
    if not isinstance(value, dict):
        raise _fail(name, "headers", "must be a mapping of header names to values")
    out = {}
    for key, val in value.items():
        if not isinstance(key, str) or not _HEADER_NAME.match(key):
            raise _fail(name, "headers", f"has an invalid header name {key!r}")
        out[key] = _string(name, f"headers.{key}", val, empty=True)
    return out


# -- secrets -----------------------------------------------------------------------------


def _expand(config: dict) -> tuple[dict, set[str]]:
    """The config with ``${VAR}`` expanded, and every string that must not be shown: values
    from the environment and the secret fields."""
    name = config["name"]
    secrets: set[str] = set()

    def expand(field: str, value: Any) -> Any:
        if isinstance(value, str):

            def one(match: re.Match[str]) -> str:
                var = match.group(1)
                if var not in os.environ:
                    raise NotifierError(
                        f"notifier {name!r}: environment variable {var!r} (field {field!r}) "
                        "is not set",
                        retryable=False,
                    )
                secrets.add(os.environ[var])
                return os.environ[var]

            return _REF.sub(one, value)
        if isinstance(value, list):
            return [expand(field, v) for v in value]
        if isinstance(value, dict):
            return {k: expand(f"{field}.{k}", v) for k, v in value.items()}
        return value

    out = {field: expand(field, value) for field, value in config.items()}
    for field in ("routing_key", "password"):
        if field in out:
            secrets.add(out[field])
    secrets.update(out.get("headers", {}).values())
    for field in ("url", "client_url"):
        if field in out:
            parts = urlsplit(out[field])
            secrets.update(p for p in (parts.query, parts.password, parts.username) if p)
            if config["type"] == "slack":
                secrets.add(parts.path)  # an incoming webhook's path is its token
            if "${" in config[field] and (
                parts.scheme not in ("http", "https") or not parts.hostname
            ):
                raise NotifierError(
                    f"notifier {name!r}: field {field!r} is not an http:// or https:// URL "
                    "once its environment variables are expanded",
                    retryable=False,
                )
    return out, {s for s in secrets if s and len(s) >= 3}


def redact_config(config: dict) -> dict:
    """A notifier config safe to show (``rules.list()``, the HTTP API): secret fields written
    literally are replaced by ``<redacted>``; ``${VAR}`` references are kept (they name
    variables, not values).

    >>> redact_config({"name": "p", "type": "pagerduty", "routing_key": "abc123",
    ...                "url": "https://pd.example/x?token=t0k", "headers": {"X-Key": "${KEY}"}})
    {'name': 'p', 'type': 'pagerduty', 'routing_key': '<redacted>', 'url': 'https://pd.example/x?<redacted>', 'headers': {'X-Key': '${KEY}'}}
    """

    def hide(value: Any) -> Any:
        return value if isinstance(value, str) and _REF.fullmatch(value) else "<redacted>"

    out = dict(config)
    for field in ("routing_key", "password"):
        if field in out:
            out[field] = hide(out[field])
    if isinstance(out.get("headers"), dict):
        out["headers"] = {k: hide(v) for k, v in out["headers"].items()}
    for field in ("url", "client_url"):
        value = out.get(field)
        if not isinstance(value, str) or "${" in value:
            continue
        parts = urlsplit(value)
        if config.get("type") == "slack" and parts.path not in ("", "/"):
            parts = parts._replace(path="/<redacted>")
        if parts.query:
            parts = parts._replace(query="<redacted>")
        if parts.password:
            parts = parts._replace(
                netloc=f"<redacted>@{parts.hostname}{f':{parts.port}' if parts.port else ''}"
            )
        out[field] = urlunsplit(parts)
    return out


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret replaced by ``<redacted>``, longest first.

    >>> scrub("key abcd1234 refused", {"abcd1234"})
    'key <redacted> refused'
    """
    for secret in sorted(secrets, key=len, reverse=True):
        if secret:
            text = text.replace(secret, "<redacted>")
    return text


def _where(config: dict) -> str:
    """Where a notifier sends, safe to show: scheme and host of its URL (paths and queries
    carry tokens: Slack's path, webhook keys), or the SMTP host as configured."""
    if config["type"] == "email":
        return f"smtp {config['host']}:{config['port']}"
    url = config.get("url") or PAGERDUTY_URL
    if "${" in url.split("//", 1)[-1].split("/", 1)[0]:
        return "the URL from the environment"
    parts = urlsplit(url)
    host = parts.hostname or ""
    return f"{parts.scheme}://{host}{f':{parts.port}' if parts.port else ''}"


class _SecretFilter(logging.Filter):
    """Scrubs the secrets of sends in progress from the HTTP client's own log records (httpx
    logs each request's URL at INFO, query string and all)."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._secrets: Counter[str] = Counter()

    def filter(self, record: logging.LogRecord) -> bool:
        with self._lock:
            secrets = list(self._secrets)
        if secrets:
            text = record.getMessage()
            clean = scrub(text, secrets)
            if clean != text:
                record.msg, record.args = clean, None
        return True

    @contextmanager
    def hiding(self, secrets: set[str]) -> Iterator[None]:
        with self._lock:
            self._secrets.update(secrets)
        try:
            yield
        finally:
            with self._lock:
                self._secrets.subtract(secrets)
                self._secrets += Counter()  # drop zero counts


_FILTER = _SecretFilter()
for _name in ("httpx", "httpcore"):
    logging.getLogger(_name).addFilter(_FILTER)


# -- payloads ----------------------------------------------------------------------------


def _alerts(payload: dict) -> list[dict]:
    return list(payload.get("alerts") or [])


def _fingerprint(alert: dict) -> str:
    if alert.get("fingerprint"):
        return str(alert["fingerprint"])
    labels = json.dumps(sorted((alert.get("labels") or {}).items()))
    return hashlib.sha256(labels.encode()).hexdigest()[:16]


def _common(dicts: list[dict]) -> dict:
    if not dicts:
        return {}
    first, *rest = dicts
    return {k: v for k, v in sorted(first.items()) if all(d.get(k) == v for d in rest)}


def title(payload: dict) -> str:
    """One line naming the notification: ``[FIRING] churn-accuracy-low (churn)``.

    >>> title({"status": "resolved", "alerts": [{"labels": {"alertname": "a", "model": "m"}}]})
    '[RESOLVED] a (m)'
    """
    alerts = _alerts(payload)
    labels = (alerts[0].get("labels") or {}) if alerts else {}
    name = labels.get("alertname") or payload.get("incident_title") or "alert"
    text = f"[{str(payload.get('status', 'firing')).upper()}] {name}"
    if labels.get("model"):
        text += f" ({labels['model']})"
    if len(alerts) > 1:
        text += f" and {len(alerts) - 1} more"
    return " ".join(text.split())  # no line breaks: it is also a mail subject


def _value(alert: dict, key: str) -> str:
    annotations = alert.get("annotations") or {}
    if annotations.get(key) not in (None, ""):
        return str(annotations[key])
    value = alert.get(key)
    return "" if value is None else f"{value:.6g}" if isinstance(value, float) else str(value)


def webhook_payload(config: dict, payload: dict) -> dict:
    """The Alertmanager webhook v4 body (what Alertmanager's ``webhook_config`` POSTs)."""
    alerts = _alerts(payload)
    limit = int(config.get("max_alerts") or 0)
    shown = alerts[:limit] if limit else alerts
    common = _common([a.get("labels") or {} for a in alerts])
    external = config.get("external_url")
    if not external:
        generator = next((a.get("generatorURL") for a in alerts if a.get("generatorURL")), "")
        parts = urlsplit(generator or "")
        external = f"{parts.scheme}://{parts.netloc}" if parts.netloc else ""
    return {
        "version": "4",
        "groupKey": str(payload.get("group_key") or ""),
        "truncatedAlerts": len(alerts) - len(shown),
        "status": payload.get("status", "firing"),
        "receiver": config["name"],
        "groupLabels": {k: common[k] for k in ("alertname", "model") if k in common},
        "commonLabels": common,
        "commonAnnotations": _common([a.get("annotations") or {} for a in alerts]),
        "externalURL": external,
        "alerts": [
            {
                "status": a.get("status", payload.get("status", "firing")),
                "labels": dict(a.get("labels") or {}),
                "annotations": dict(a.get("annotations") or {}),
                "startsAt": a.get("startsAt") or ZERO_TIME,
                "endsAt": a.get("endsAt") or ZERO_TIME,
                "generatorURL": a.get("generatorURL") or "",
                "fingerprint": _fingerprint(a),
            }
            for a in shown
        ],
    }


def _label_name(name: str) -> str:
    """A Prometheus label name (``[a-zA-Z_][a-zA-Z0-9_]*``): Alertmanager refuses others."""
    clean = _LABEL_NAME.sub("_", str(name))
    return f"_{clean}" if not clean or clean[0].isdigit() else clean


def alertmanager_payload(config: dict, payload: dict) -> list[dict]:
    """The body of ``POST /api/v2/alerts``: a list of postable alerts. A firing alert has no
    ``endsAt`` (Alertmanager resolves it after its ``resolve_timeout`` unless it is sent
    again); a resolved one ends at its resolve time."""
    out = []
    for a in _alerts(payload):
        alert: dict[str, Any] = {
            "labels": {
                _label_name(k): str(v) for k, v in (a.get("labels") or {}).items() if v != ""
            },
            "annotations": {
                _label_name(k): str(v) for k, v in (a.get("annotations") or {}).items()
            },
        }
        if a.get("startsAt") and a["startsAt"] != ZERO_TIME:
            alert["startsAt"] = a["startsAt"]
        if a.get("status", payload.get("status")) == "resolved":
            ends = a.get("endsAt")
            alert["endsAt"] = ends if ends and ends != ZERO_TIME else _now_text()
        if a.get("generatorURL"):
            alert["generatorURL"] = a["generatorURL"]
        out.append(alert)
    return out


def _now_text() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_payload(config: dict, payload: dict) -> dict:
    """An incoming-webhook message: ``text`` (the title) and one attachment per alert, red
    while firing and green once resolved."""
    firing = payload.get("status", "firing") != "resolved"
    heading = _slack_escape(title(payload))
    attachments = []
    for a in _alerts(payload):
        labels = a.get("labels") or {}
        annotations = a.get("annotations") or {}
        text = "\n".join(
            _slack_escape(str(annotations[k]))
            for k in ("summary", "description")
            if annotations.get(k)
        )
        fields = [
            {"title": t, "value": _slack_escape(v), "short": True}
            for t, v in (
                ("Model", str(labels.get("model", ""))),
                ("Metric", str(labels.get("metric", ""))),
                ("Value", _value(a, "value")),
                ("Threshold", _value(a, "threshold")),
                ("Severity", str(labels.get("severity", ""))),
            )
            if v
        ]
        attachment: dict[str, Any] = {
            "color": FIRING_COLOUR if firing else RESOLVED_COLOUR,
            "fallback": heading,
            "title": _slack_escape(str(labels.get("alertname") or heading)),
            "text": text,
            "fields": fields,
            "footer": _slack_escape(str(payload.get("incident_title") or "mlpulse")),
        }
        if a.get("generatorURL"):
            attachment["title_link"] = a["generatorURL"]
        stamp = _epoch(a.get("endsAt") if not firing else a.get("startsAt"))
        if stamp is not None:
            attachment["ts"] = stamp
        attachments.append(attachment)
    body: dict[str, Any] = {"text": heading, "attachments": attachments}
    for field in ("channel", "username", "icon_emoji"):
        if config.get(field):
            body[field] = config[field]
    return body


def _epoch(text: object) -> int | None:
    if not isinstance(text, str) or not text or text == ZERO_TIME:
        return None
    try:
        return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())
    except ValueError:
        return None


def _pd_severity(labels: dict) -> str:
    severity = str(labels.get("severity", "")).lower()
    if severity == "page":
        return "critical"
    return severity if severity in PD_SEVERITIES else "warning"


def pagerduty_payload(config: dict, payload: dict) -> list[dict]:
    """One Events API v2 event per alert: ``trigger`` while firing, ``resolve`` once resolved,
    with the alert's fingerprint as ``dedup_key`` so the resolve closes what the trigger
    opened. ``routing_key`` is taken from ``config`` as given (expanded by :func:`send`)."""
    events = []
    for a in _alerts(payload):
        labels = a.get("labels") or {}
        annotations = a.get("annotations") or {}
        resolved = a.get("status", payload.get("status")) == "resolved"
        event: dict[str, Any] = {
            "routing_key": config["routing_key"],
            "event_action": "resolve" if resolved else "trigger",
            "dedup_key": _fingerprint(a),
        }
        if not resolved:
            summary = annotations.get("summary") or title({**payload, "alerts": [a]})
            details = {
                "labels": dict(labels),
                "annotations": dict(annotations),
                "value": _value(a, "value"),
                "threshold": _value(a, "threshold"),
                "incident": payload.get("incident"),
                "incident_title": payload.get("incident_title"),
            }
            event["payload"] = {
                "summary": str(summary)[:1024],
                "source": config.get("source") or str(labels.get("model") or "mlpulse"),
                "severity": _pd_severity(labels),
                "timestamp": a.get("startsAt") or _now_text(),
                "component": str(labels.get("model", "")),
                "class": str(labels.get("metric", "")),
                "custom_details": details,
            }
            event["client"] = config.get("client") or "mlpulse"
            link = config.get("client_url") or a.get("generatorURL")
            if link:
                event["client_url"] = link
            if a.get("generatorURL"):
                event["links"] = [{"href": a["generatorURL"], "text": "mlpulse"}]
        events.append(event)
    return events


def email_message(config: dict, payload: dict) -> EmailMessage:
    """A plain-text mail: subject ``[FIRING] churn-accuracy-low (churn)``, one paragraph per
    alert with its value, threshold, times, incident, link and labels."""
    msg = EmailMessage()
    msg["Subject"] = title(payload)
    msg["From"] = config.get("from", "mlpulse@localhost")
    msg["To"] = ", ".join(config["to"])
    msg["Date"] = formatdate(localtime=False, usegmt=True)
    msg["Message-ID"] = make_msgid(domain="mlpulse")
    lines = [title(payload), ""]
    if payload.get("incident") is not None:
        lines += [f"Incident #{payload['incident']}: {payload.get('incident_title', '')}", ""]
    for a in _alerts(payload):
        labels = a.get("labels") or {}
        annotations = a.get("annotations") or {}
        lines.append(
            f"{str(a.get('status', payload.get('status', 'firing'))).upper()}: "
            f"{labels.get('alertname', 'alert')}"
        )
        lines += [f"  {annotations[k]}" for k in ("summary", "description") if annotations.get(k)]
        rows = [
            ("Model", labels.get("model")),
            ("Version", labels.get("version")),
            ("Metric", labels.get("metric")),
            ("Value", _value(a, "value")),
            ("Threshold", _value(a, "threshold")),
            ("Severity", labels.get("severity")),
            ("Started", a.get("startsAt")),
            ("Resolved", a.get("endsAt") if a.get("endsAt") not in (None, ZERO_TIME) else None),
            ("Link", a.get("generatorURL")),
        ]
        lines += [f"  {k + ':':<11}{v}" for k, v in rows if v not in (None, "")]
        lines.append("  Labels:    " + ", ".join(f"{k}={v}" for k, v in sorted(labels.items())))
        lines.append("")
    lines.append("-- \nSent by mlpulse")
    msg.set_content("\n".join(lines))
    return msg


# -- sending -----------------------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    """JSON the receivers accept: NaN and infinities (invalid JSON) become strings."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def _tls(config: dict) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=config.get("ca_file"))
    if config.get("tls_verify") is False:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _endpoint(config: dict) -> str:
    """The URL to POST to: Alertmanager's and PagerDuty's API paths are appended to the
    configured base (unless it already ends with them); a query string is kept."""
    parts = urlsplit(str(config.get("url") or PAGERDUTY_URL))
    suffix = {"alertmanager": "/api/v2/alerts", "pagerduty": "/v2/enqueue"}.get(config["type"], "")
    path = parts.path.rstrip("/")
    if suffix and not path.endswith(suffix):
        parts = parts._replace(path=path + suffix)
    return urlunsplit(parts)


def _post(config: dict, body: Any, client: httpx.Client | None, secrets: set[str]) -> None:
    who = f"notifier {config['name']!r} ({config['type']}, {_where(config)})"
    timeout = httpx.Timeout(config["timeout"])
    headers = {"Content-Type": "application/json", **config.get("headers", {})}
    content = json.dumps(_jsonable(body), separators=(",", ":")).encode()
    own = client is None
    http = client or httpx.Client(verify=_tls(config), timeout=timeout)
    try:
        response = http.post(_endpoint(config), content=content, headers=headers, timeout=timeout)
    except httpx.TimeoutException:
        raise NotifierError(
            f"{who}: timed out after {config['timeout']:g}s", unreachable=True
        ) from None
    except httpx.HTTPError as exc:
        reason = scrub(str(exc), secrets) or type(exc).__name__
        raise NotifierError(f"{who}: {reason}", unreachable=True) from None
    finally:
        if own:
            http.close()
    if not response.is_success:
        text = " ".join(response.text[:300].split())
        status = response.status_code
        raise NotifierError(
            f"{who}: HTTP {status}" + (f": {scrub(text, secrets)}" if text else ""),
            retryable=status >= 500 or status in (408, 429),
        )


def _send_email(config: dict, payload: dict, secrets: set[str]) -> None:
    who = f"notifier {config['name']!r} (email, {_where(config)})"
    message = email_message(config, payload)
    host, port, timeout = config["host"], config["port"], config["timeout"]
    try:
        smtp: smtplib.SMTP
        if config.get("ssl"):
            smtp = smtplib.SMTP_SSL(host, port, timeout=timeout, context=_tls(config))
        else:
            smtp = smtplib.SMTP(host, port, timeout=timeout)
        with smtp:
            smtp.ehlo()
            if config.get("starttls"):
                smtp.starttls(context=_tls(config))
                smtp.ehlo()
            if config.get("username"):
                smtp.login(config["username"], config.get("password", ""))
            refused = smtp.send_message(message)
    except smtplib.SMTPResponseException as exc:
        text = (
            exc.smtp_error.decode(errors="replace")
            if isinstance(exc.smtp_error, bytes)
            else str(exc.smtp_error)
        )
        raise NotifierError(
            f"{who}: SMTP {exc.smtp_code} {scrub(' '.join(text.split()), secrets)}",
            retryable=not 500 <= exc.smtp_code < 600,
        ) from None
    except smtplib.SMTPRecipientsRefused as exc:
        raise NotifierError(
            f"{who}: every recipient refused ({scrub(', '.join(sorted(exc.recipients)), secrets)})",
            retryable=False,
        ) from None
    except TimeoutError:
        raise NotifierError(f"{who}: timed out after {timeout:g}s", unreachable=True) from None
    except (OSError, smtplib.SMTPException) as exc:
        reason = scrub(str(exc), secrets) or type(exc).__name__
        raise NotifierError(f"{who}: {reason}", unreachable=True) from None
    if refused:
        raise NotifierError(
            f"{who}: sent, but these recipients were refused: "
            + scrub(", ".join(sorted(refused)), secrets),
            retryable=False,
        )


def send(config: dict, payload: dict, *, client: httpx.Client | None = None) -> None:
    """Send one notification record with one notifier.

    ``${VAR}`` references are expanded now. A resolved notification is skipped where the
    notifier has ``send_resolved: false``. Raises :class:`NotifierError` (no secrets in its
    message) when the receiver cannot be reached, answers non-2xx, or the SMTP server refuses.
    """
    config = validate_notifier(config)
    if payload.get("status") == "resolved" and not config["send_resolved"]:
        return
    expanded, secrets = _expand(config)
    kind = config["type"]
    with _FILTER.hiding(secrets):
        try:
            if kind == "email":
                _send_email(expanded, payload, secrets)
            elif kind == "webhook":
                _post(expanded, webhook_payload(expanded, payload), client, secrets)
            elif kind == "alertmanager":
                _post(expanded, alertmanager_payload(expanded, payload), client, secrets)
            elif kind == "slack":
                _post(expanded, slack_payload(expanded, payload), client, secrets)
            else:
                for event in pagerduty_payload(expanded, payload):
                    _post(expanded, event, client, secrets)
        except NotifierError as exc:  # scrubbed once more: a host may come from ${VAR} too
            exc.args = (scrub(str(exc), secrets),)
            raise
        except Exception as exc:  # a bad record or certificate file: named, never with secrets
            reason = scrub(str(exc), secrets)
            raise NotifierError(
                f"notifier {config['name']!r} ({kind}): {type(exc).__name__}: {reason}"
            ) from None


__all__ = [
    "FIELDS",
    "REQUIRED",
    "TYPES",
    "NotifierError",
    "alertmanager_payload",
    "email_message",
    "pagerduty_payload",
    "redact_config",
    "scrub",
    "send",
    "slack_payload",
    "title",
    "validate_notifier",
    "webhook_payload",
]
