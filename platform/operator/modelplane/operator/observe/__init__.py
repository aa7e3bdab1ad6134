"""The operator's reads, per kind, for the pure reconcilers."""
