"""Service-level metrics computed from profile states."""
