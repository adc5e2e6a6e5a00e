"""Ingest, feedback join and window queries over bucket profiles."""
