"""Exports to other systems: Prometheus, Grafana."""
