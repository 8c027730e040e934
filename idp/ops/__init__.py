"""Health, metrics, audit log, rate limits."""
