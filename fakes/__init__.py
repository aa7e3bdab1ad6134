"""Fake services the tests and the benchmarks both run (fake-gcs-server, an OpenAI-compatible model server):
neither imports the other, so they share these."""
