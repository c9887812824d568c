"""Prometheus exporter of the KPI engine."""
