"""Client transports: embedded (this process) today, HTTP with the server."""

from .embedded import Model, Observation, Pulse

__all__ = ["Model", "Observation", "Pulse"]
