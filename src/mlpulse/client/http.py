"""The HTTP transport of the remote client: one request, retries with backoff, and the
mapping of error responses back to mlpulse exceptions.

::

    MlpulseError
    └── RemoteError               the server answered with an error we cannot map
        ├── AuthenticationError   401 / 403: missing, invalid, revoked or too narrow a key
        └── ServerUnavailableError  the server cannot be reached (or keeps answering 5xx)
"""

from __future__ import annotations

import random
import time
from typing import Any

import httpx

from .. import errors

#: Statuses worth retrying: the same request may succeed later.
RETRYABLE = {408, 425, 429, 500, 502, 503, 504}


class RemoteError(errors.MlpulseError):
    """The server refused a request; the message is the server's."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class AuthenticationError(RemoteError, PermissionError):
    """The API key is missing, invalid, revoked, or lacks the scope (401 / 403)."""


class ServerUnavailableError(RemoteError, ConnectionError):
    """The server could not be reached, or kept failing, before the deadline."""


_BY_CODE: dict[str, type[Exception]] = {
    "unknown_model": errors.UnknownModelError,
    "model_conflict": errors.ModelConflictError,
    "unknown_metric": errors.UnknownMetricError,
    "schema_error": errors.SchemaError,
    "invalid_argument": errors.ConfigError,
}


def error_for(response: httpx.Response) -> Exception:
    """The exception an error response stands for (same types as the embedded client)."""
    try:
        body = response.json()
        detail, code = str(body.get("detail")), str(body.get("code"))
    except Exception:
        detail, code = response.text[:500] or response.reason_phrase, ""
    if response.status_code in (401, 403):
        return AuthenticationError(detail, response.status_code)
    cls = _BY_CODE.get(code)
    if cls is not None:
        return cls(detail)
    if response.status_code == 422:
        return errors.SchemaError(detail)
    return RemoteError(f"HTTP {response.status_code}: {detail}", response.status_code)


def backoff(attempt: int, base: float = 0.05, cap: float = 2.0) -> float:
    """Exponential backoff with full jitter: uniform in [0, min(cap, base * 2**attempt)]."""
    return random.uniform(0, min(cap, base * (2 ** min(attempt, 30))))


def retry_after(response: httpx.Response | None) -> float | None:
    if response is None:
        return None
    value = response.headers.get("retry-after")
    try:
        return min(float(value), 30.0) if value is not None else None
    except ValueError:
        return None


class HttpTransport:
    """An ``httpx.Client`` bound to one server, with the API key and retries."""

    def __init__(
        self,
        url: str,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        verify: Any = True,
        max_backoff: float = 2.0,
    ) -> None:
        self.url = url.rstrip("/")
        self.max_backoff = max_backoff
        headers = {"User-Agent": "mlpulse-python"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self.client = httpx.Client(
            base_url=self.url,
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=min(5.0, timeout)),
            verify=verify,
        )

    def send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One attempt; network errors raise ``httpx.TransportError``."""
        return self.client.request(method, path, **kwargs)

    def request(
        self, method: str, path: str, *, retry_for: float = 10.0, **kwargs: Any
    ) -> httpx.Response:
        """Send with retries on network errors and retryable statuses for up to
        ``retry_for`` seconds; return a 2xx response or raise the mapped error."""
        deadline = time.monotonic() + retry_for
        attempt = 0
        while True:
            response = None
            try:
                response = self.send(method, path, **kwargs)
                if response.status_code < 300:
                    return response
                if response.status_code not in RETRYABLE:
                    raise error_for(response)
                problem: str = f"HTTP {response.status_code}"
            except httpx.TransportError as exc:
                problem = f"{type(exc).__name__}: {exc}"
            wait = retry_after(response) or backoff(attempt, cap=self.max_backoff)
            if time.monotonic() + wait > deadline:
                raise ServerUnavailableError(
                    f"mlpulse server {self.url} unavailable ({problem}) for {retry_for:.0f}s",
                    response.status_code if response is not None else None,
                )
            time.sleep(wait)
            attempt += 1

    def close(self) -> None:
        self.client.close()


__all__ = [
    "RETRYABLE",
    "AuthenticationError",
    "HttpTransport",
    "RemoteError",
    "ServerUnavailableError",
    "backoff",
    "error_for",
]
