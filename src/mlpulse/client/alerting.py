"""The alerting side of a :class:`~mlpulse.client.pulse.Pulse`: ``pulse.rules`` and the
incident handle, written once over a transport like everything else in the client."""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd

from .transport import Transport


class Rules:
    """``pulse.rules``: load, list and delete alert rules (and notifiers)."""

    def __init__(self, transport: Transport) -> None:
        self._transport = transport

    def load(self, source: Any, replace: bool = False) -> builtins.list[str]:
        """Store rules (and notifiers) from a path, YAML text or a list of dicts; a rule of
        the same name is replaced, ``replace=True`` drops the other user rules first.
        Returns the rule names; bad rules raise ``mlpulse.errors.RuleError``."""
        return self._transport.load_rules(source, replace=replace)

    def list(self) -> pd.DataFrame:
        """One row per stored rule (the full rule as a dict in ``rule``)."""
        return self._transport.rules()

    def delete(self, *names: str) -> int:
        """Delete rules by name; returns how many existed."""
        return self._transport.delete_rules(list(names))

    def notifiers(self) -> builtins.list[dict[str, Any]]:
        """The stored notifier configurations (secrets stay ``${ENV}`` references)."""
        return self._transport.notifiers()

    def __repr__(self) -> str:
        return f"Rules({len(self.list())} rules)"


@dataclass
class Incident:
    """``pulse.incident(id)``: alerts of one model grouped in time, with their timeline."""

    id: int
    title: str
    status: str
    opened_at: datetime
    acknowledged_at: datetime | None
    resolved_at: datetime | None
    models: list[str]
    alerts: pd.DataFrame
    timeline: pd.DataFrame
    _transport: Any = None

    @property
    def root_cause(self) -> pd.DataFrame:
        """What changed when the incident began, most likely cause first: rank, kind
        (feature_drift | quality | segment | slice | version_change | latency | volume),
        subject, score (an effect size on Cohen's scale) and a one-line detail."""
        return self._transport.root_cause(self.id)

    def acknowledge(self) -> None:
        """Mark the incident acknowledged (its alerts keep notifying on changes)."""
        self._transport.acknowledge(self.id)
        self.status = "acknowledged" if self.status == "open" else self.status

    def __repr__(self) -> str:
        return f"Incident({self.id}, {self.title!r}, {self.status}, {len(self.alerts)} alerts)"


__all__ = ["Incident", "Rules"]
