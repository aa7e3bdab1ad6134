"""Payload capture: the proxy in front of a ModelServer that records a sample of its traffic to the bucket."""
