"""What the dashboards take from the configuration: thresholds and link targets."""

from __future__ import annotations

from dataclasses import dataclass

from dashboards.panels import Links
from dashboards.thresholds import Thresholds, thresholds_for
from monitor.config import Settings

__all__ = ["DashboardContext", "context_from_settings"]


@dataclass(frozen=True, slots=True)
class DashboardContext:
    """Everything a dashboard builder needs besides the metric catalogue."""

    thresholds: Thresholds
    links: Links


def context_from_settings(settings: Settings) -> DashboardContext:
    """Thresholds and link targets for ``settings``."""
    return DashboardContext(
        thresholds=thresholds_for(settings),
        links=Links(app_url=settings.app.url, runbook_base_url=settings.alerts.runbook_base_url),
    )
