"""`hitl-tower report` (being written)."""
