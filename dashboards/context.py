"""What the dashboards take from the configuration: thresholds and link targets."""

from __future__ import annotations

from dataclasses import dataclass

from alerts.catalogue import RuleOptions
from dashboards.panels import Links
from dashboards.thresholds import Thresholds, thresholds_for
from monitor.config import Settings

__all__ = ["DashboardContext", "context_from_settings"]


@dataclass(frozen=True, slots=True)
class DashboardContext:
    """Everything a dashboard builder needs besides the metric catalogue."""

    thresholds: Thresholds
    links: Links


def context_from_settings(settings: Settings, options: RuleOptions | None = None) -> DashboardContext:
    """Thresholds and link targets for ``settings`` (and the alert rules' ``options``)."""
    return DashboardContext(
        thresholds=thresholds_for(settings, options),
        links=Links(app_url=settings.app.url, runbook_base_url=settings.alerts.runbook_base_url),
    )
