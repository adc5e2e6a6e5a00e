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
from urllib.parse import urlsplit

import httpx

from .. import errors

#: Statuses that mean "the server cannot take requests now" (down, overloaded, restarting,
#: out of disk): retried for as long as it takes (the spool holds what waits).
UNAVAILABLE = frozenset({408, 425, 429, 502, 503, 504, 507})
#: Statuses worth retrying: the same request may succeed later. Other 5xx (500 above all)
#: answer *this* request with an error: retried only ``max_attempts`` times.
RETRYABLE = UNAVAILABLE | {500}


def clean_api_key(api_key: object) -> str | None:
    r"""An API key as sent: surrounding whitespace (a secret file's trailing newline) is
    stripped; a key with a space or control character inside is refused. The key itself
    never appears in the error.

    >>> clean_api_key("mlp_0a1b2c3d_secret\n")
    'mlp_0a1b2c3d_secret'
    >>> clean_api_key("mlp_0a1b\x00_secret")
    Traceback (most recent call last):
    ...
    mlpulse.errors.ConfigError: api_key has a control character (\x00) at position 8; ...
    """
    if api_key is None or api_key == "":
        return None
    if not isinstance(api_key, str):
        raise errors.ConfigError(f"api_key must be a string, got {type(api_key).__name__}")
    key = api_key.strip()
    if not key:
        raise errors.ConfigError("api_key is blank (only whitespace); pass the key itself")
    for i, char in enumerate(key):
        if not "!" <= char <= "~":
            if char == " ":
                what = "a space"
            elif ord(char) < 32 or 127 <= ord(char) < 160:
                what = f"a control character ({char.encode('unicode_escape').decode()})"
            else:
                what = "a non-ASCII character"
            raise errors.ConfigError(
                f"api_key has {what} at position {i}; API keys are printable ASCII without "
                "spaces (check the file or variable it was read from)"
            )
    return key


RemoteError = errors.RemoteError
AuthenticationError = errors.AuthenticationError
ServerUnavailableError = errors.ServerUnavailableError


_BY_CODE: dict[str, type[Exception]] = {
    "unknown_model": errors.UnknownModelError,
    "model_conflict": errors.ModelConflictError,
    "unknown_metric": errors.UnknownMetricError,
    "schema_error": errors.SchemaError,
    "invalid_argument": errors.ConfigError,
    "invalid_rule": errors.RuleError,
    "unknown_incident": errors.RuleError,
    "unknown_silence": errors.RuleError,
    "idempotency_conflict": errors.IdempotencyConflictError,
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


class HttpSession:
    """An ``httpx.Client`` bound to one server, with the API key and retries."""

    def __init__(
        self,
        url: str,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        verify: Any = True,
        max_backoff: float = 2.0,
        max_attempts: int = 5,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.max_backoff = max_backoff
        self.max_attempts = max_attempts
        key = clean_api_key(api_key)
        password = httpx.URL(self.url).password  # decoded; urlsplit's is as written
        self._secrets = [s for s in (key, password, urlsplit(self.url).password) if s]
        headers = {"User-Agent": "mlpulse-python"}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        # a user:password in the URL becomes basic auth (unless a key is given), and leaves
        # the URL: httpx logs request URLs
        parsed = httpx.URL(self.url)
        auth = None
        if parsed.userinfo:
            if not key:
                auth = httpx.BasicAuth(parsed.username, parsed.password)
            parsed = parsed.copy_with(userinfo=b"")
        self.client = httpx.Client(
            base_url=parsed,
            auth=auth,
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=min(5.0, timeout)),
            verify=verify,
            transport=transport,  # tests inject an httpx.MockTransport here
        )

    @property
    def display_url(self) -> str:
        """The server URL as logs and errors show it (without a password)."""
        return self.redact(self.url)

    def redact(self, text: str) -> str:
        """``text`` with the API key (and a URL password) replaced by ``***``."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One attempt; network errors raise ``httpx.TransportError``."""
        return self.client.request(method, path, **kwargs)

    def request(
        self, method: str, path: str, *, retry_for: float = 10.0, **kwargs: Any
    ) -> httpx.Response:
        """Send with retries for up to ``retry_for`` seconds while the server is unreachable
        or unavailable (:data:`UNAVAILABLE`), and up to ``max_attempts`` times while it
        answers with another 5xx; return a 2xx response or raise the mapped error."""
        deadline = time.monotonic() + retry_for
        attempt = failures = 0
        while True:
            response = None
            try:
                response = self.send(method, path, **kwargs)
                if response.status_code < 300:
                    return response
                if response.status_code not in UNAVAILABLE:
                    failures += response.status_code >= 500
                    if response.status_code < 500 or failures >= self.max_attempts:
                        raise error_for(response)
                problem: str = f"HTTP {response.status_code}"
            except httpx.TransportError as exc:
                problem = self.redact(f"{type(exc).__name__}: {exc}")
            wait = retry_after(response) or backoff(attempt, cap=self.max_backoff)
            if time.monotonic() + wait > deadline:
                if response is not None and response.status_code not in UNAVAILABLE:
                    raise error_for(response)
                raise ServerUnavailableError(
                    f"mlpulse server {self.display_url} unavailable ({problem}) "
                    f"for {retry_for:.0f}s",
                    response.status_code if response is not None else None,
                )
            time.sleep(wait)
            attempt += 1

    def close(self) -> None:
        self.client.close()


__all__ = [
    "RETRYABLE",
    "UNAVAILABLE",
    "AuthenticationError",
    "HttpSession",
    "RemoteError",
    "ServerUnavailableError",
    "backoff",
    "clean_api_key",
    "error_for",
]
