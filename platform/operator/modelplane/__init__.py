"""modelplane: the API types, the operator and the user CLI of the ML platform (no Pulumi in here)."""
