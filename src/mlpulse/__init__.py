"""mlpulse: observability for ML systems in production."""
