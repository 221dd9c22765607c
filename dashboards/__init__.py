"""Grafana dashboards generated in code (provisioning, push, query checks) and, in
``dashboards.app``, the Streamlit investigation app."""
