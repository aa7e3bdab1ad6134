"""Drift and outlier detection over a ModelServer's captured traffic (the monitor Job's program)."""
