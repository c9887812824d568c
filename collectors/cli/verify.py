"""`hitl-tower verify` (being written)."""
