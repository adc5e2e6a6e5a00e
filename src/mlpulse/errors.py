"""Exceptions raised by mlpulse.

Every error a user can trigger derives from :class:`MlpulseError`, so one ``except`` clause
catches them all. Messages name the model, column, row and reason where they apply.

::

    MlpulseError
    ├── ConfigError              bad argument or configuration (also a ValueError)
    │   ├── UnknownMetricError   a metric name that is neither built in nor registered
    │   └── RuleError            an invalid alert rule, notifier or silence (names the field)
    ├── SchemaError              data that does not fit the model's schema (also a ValueError)
    ├── ModelError               model registry problems
    │   ├── UnknownModelError    no model of that name / version (also a KeyError)
    │   └── ModelConflictError   re-registration that contradicts what is stored
    ├── IdempotencyConflictError  a batch id reused for a different batch
    ├── StoreError               the embedded store cannot be used
    │   └── StoreLockedError     another process owns the database file
    └── RemoteError              a server refused a request (``status``: its HTTP status)
        ├── AuthenticationError  the API key is missing, invalid, revoked or lacks the scope
        └── ServerUnavailableError  the server could not be reached before the deadline

Over HTTP, a server's answer that names one of the errors above (``unknown_model``,
``schema_error``, ...) is raised as that error, so code catches the same exceptions with
either transport.
"""

from __future__ import annotations


class MlpulseError(Exception):
    """Base class of every mlpulse error."""


class ConfigError(MlpulseError, ValueError):
    """An argument or setting is invalid; the message says which and why."""


class UnknownMetricError(ConfigError):
    """A metric name is neither built in for the model's task nor registered."""


class RuleError(ConfigError):
    """An alert rule, notifier or silence is invalid; the message names it and the field."""


class SchemaError(MlpulseError, ValueError):
    """Data does not fit the model's schema (missing column, wrong kind of table)."""


class ModelError(MlpulseError):
    """Problems with the model registry."""


class UnknownModelError(ModelError, KeyError):
    """No model (or version) of that name is registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ModelConflictError(ModelError):
    """A registration contradicts what is already stored (another task, say)."""


class IdempotencyConflictError(MlpulseError):
    """A batch id (HTTP ``Idempotency-Key``) that stored one batch was sent with another
    (a different body, kind or version): the new batch is refused, nothing is stored."""


class StoreError(MlpulseError):
    """The embedded store could not be opened or used."""


class StoreLockedError(StoreError):
    """Another process holds the write lock on the database file."""




class RemoteError(MlpulseError):
    """The server refused a request; the message is the server's."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class AuthenticationError(RemoteError, PermissionError):
    """The API key is missing, invalid, revoked, or lacks the scope (401 / 403)."""


class ServerUnavailableError(RemoteError, ConnectionError):
    """The server could not be reached, or kept failing, before the deadline."""


__all__ = [
    "AuthenticationError",
    "ConfigError",
    "IdempotencyConflictError",
    "MlpulseError",
    "ModelConflictError",
    "ModelError",
    "RemoteError",
    "RuleError",
    "SchemaError",
    "ServerUnavailableError",
    "StoreError",
    "StoreLockedError",
    "UnknownMetricError",
    "UnknownModelError",
]
