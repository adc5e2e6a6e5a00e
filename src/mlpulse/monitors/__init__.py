"""The seven ML Test Score monitors; ``Model.checks`` runs them. See ``docs/monitors.md``."""

from mlpulse.monitors.checks import MONITORS, Check, MonitorReport, environment_diff

__all__ = ["MONITORS", "Check", "MonitorReport", "environment_diff"]
