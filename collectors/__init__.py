"""HITL Control Tower: collectors (store, ingestion, KPI engine, exporter, alerts, CLI)."""
