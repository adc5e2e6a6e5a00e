"""The embedded DuckDB store."""
