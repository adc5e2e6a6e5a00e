"""Temporary shim while the server moves onto the Service (removed at the end of issue 9)."""

from __future__ import annotations

from .local import LocalTransport
from .pulse import Model, Observation
from .pulse import Pulse as _Pulse


def Pulse(path: str = ":memory:", *, max_features: int | None = None) -> _Pulse:  # noqa: N802
    return _Pulse(LocalTransport(path, max_features=max_features))


__all__ = ["Model", "Observation", "Pulse"]
