"""The root exception of the Grafana half of ``dashboards`` and its specific failures."""

from __future__ import annotations

__all__ = ["DashboardError", "GrafanaAuthError", "GrafanaPushError", "GrafanaUnreachableError"]


class DashboardError(Exception):
    """Anything that stops dashboards from being generated or pushed."""


class GrafanaPushError(DashboardError):
    """Grafana refused a request; the message carries its status and reason."""


class GrafanaAuthError(GrafanaPushError):
    """Grafana answered 401 or 403: the token is missing, wrong or lacks permissions."""


class GrafanaUnreachableError(GrafanaPushError):
    """No HTTP answer from Grafana (refused connection, DNS failure, timeout)."""
