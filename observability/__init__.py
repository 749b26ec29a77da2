"""Telemetry configuration; dashboards.py writes the Grafana dashboards."""
