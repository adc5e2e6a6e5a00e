"""Alerting: rules, evaluation, incidents, silences and notifiers."""
