"""`hitl-tower schema` (being written)."""
