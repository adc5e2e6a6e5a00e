"""API keys: created by ``mlpulse keys create``, stored hashed, checked in constant time.

A key looks like ``mlp_<key id>_<secret>``. The key id (8 hex digits) is public: ``keys
list`` shows it and ``keys revoke`` takes it. Only the SHA-256 of the whole key is stored;
since the secret holds 256 random bits, a fast hash is enough (nothing to brute-force).

>>> from mlpulse.store.database import Store
>>> keys = KeyStore(Store(":memory:"))
>>> key = keys.create("read", name="dashboards")
>>> keys.check(key).scope
'read'
>>> keys.check(key + "x") is None
True
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from dataclasses import dataclass
from datetime import UTC, datetime

from ..errors import ConfigError
from ..store.database import Store

#: Scopes, and what each may do. ``admin`` may do everything, including managing keys.
SCOPES = ("ingest", "read", "admin")
PREFIX = "mlp_"


@dataclass(frozen=True)
class ApiKey:
    """A stored key, without its secret."""

    key_id: str
    scope: str
    name: str | None
    created_at: datetime
    revoked_at: datetime | None

    def allows(self, scope: str) -> bool:
        """``admin`` keys may do anything; others only what their scope names."""
        return self.revoked_at is None and (self.scope == "admin" or self.scope == scope)

    def to_dict(self) -> dict[str, object]:
        return {
            "key_id": self.key_id,
            "scope": self.scope,
            "name": self.name,
            "created_at": self.created_at.replace(tzinfo=UTC).isoformat(),
            "revoked_at": self.revoked_at.replace(tzinfo=UTC).isoformat()
            if self.revoked_at
            else None,
        }


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class KeyStore:
    """API keys in a :class:`~mlpulse.store.database.Store`, cached in memory.

    The server owns the database file, so every change goes through this object (the
    ``keys`` CLI works on a stopped server's file); the cache never goes stale.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[str, ApiKey]] = {}
        self.reload()

    def reload(self) -> None:
        rows = self.store.fetch_all(
            "SELECT key_id, hash, scope, name, created_at, revoked_at FROM api_keys"
        )
        with self._lock:
            self._cache = {r[0]: (r[1], ApiKey(r[0], r[2], r[3], r[4], r[5])) for r in rows}

    @property
    def enabled(self) -> bool:
        """True once any key exists (revoked ones included: revoking the last key must not
        open the server)."""
        return bool(self._cache)

    def create(self, scope: str, name: str | None = None) -> str:
        """Store a new key and return it; this is the only time the secret is seen."""
        if scope not in SCOPES:
            raise ConfigError(f"unknown scope {scope!r}; scopes: {', '.join(SCOPES)}")
        key_id = secrets.token_hex(4)
        while key_id in self._cache:
            key_id = secrets.token_hex(4)
        key = f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
        with self.store.write() as conn:
            conn.execute(
                "INSERT INTO api_keys VALUES (?, ?, ?, ?, ?, NULL)",
                [key_id, _digest(key), scope, name, _now()],
            )
        self.reload()
        return key

    def list(self) -> list[ApiKey]:
        return sorted((k for _h, k in self._cache.values()), key=lambda k: k.created_at)

    def revoke(self, key_id: str) -> ApiKey:
        """Revoke a key by its id (``keys list`` shows ids); revoking twice is harmless."""
        if key_id.startswith(PREFIX):  # a whole key was given: take its id
            key_id = key_id[len(PREFIX) :].split("_", 1)[0]
        if key_id not in self._cache:
            raise ConfigError(f"no API key with id {key_id!r}; `mlpulse keys list` shows them")
        with self.store.write() as conn:
            conn.execute(
                "UPDATE api_keys SET revoked_at = coalesce(revoked_at, ?) WHERE key_id = ?",
                [_now(), key_id],
            )
        self.reload()
        return self._cache[key_id][1]

    def check(self, key: str) -> ApiKey | None:
        """The stored key matching ``key``, or None. Revoked keys are returned (so the
        caller can say so); :meth:`ApiKey.allows` refuses them."""
        if not key.startswith(PREFIX):
            return None
        key_id = key[len(PREFIX) :].split("_", 1)[0]
        found = self._cache.get(key_id)
        # hash and compare even when the id is unknown, so timing says nothing about ids
        stored_hash = found[0] if found else "0" * 64
        if hmac.compare_digest(stored_hash, _digest(key)) and found is not None:
            return found[1]
        return None


__all__ = ["PREFIX", "SCOPES", "ApiKey", "KeyStore"]
