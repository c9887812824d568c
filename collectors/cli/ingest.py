"""`hitl-tower ingest` (being written)."""
