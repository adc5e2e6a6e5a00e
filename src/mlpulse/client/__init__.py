"""The user API (``Pulse``, ``Model``), written once over a transport: in process
(:mod:`mlpulse.client.local`) or over HTTP (:mod:`mlpulse.client.remote`)."""

from .pulse import Model, Observation, Pulse
from .transport import Transport

__all__ = ["Model", "Observation", "Pulse", "Transport"]
