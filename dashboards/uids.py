"""Stable identities of the generated dashboards (uids never change between releases)."""

from __future__ import annotations

__all__ = ["DATASOURCE_UID", "FOLDER_TITLE", "FOLDER_UID", "MODEL_UID", "OVERVIEW_UID",
           "PIPELINE_UID", "TAGS", "dashboard_url"]

OVERVIEW_UID = "driftd-overview"
MODEL_UID = "driftd-model"
PIPELINE_UID = "driftd-pipeline"
TAGS = ("driftd", "ml-monitoring")
# The Prometheus datasource the dashboards and the Grafana alert rules query, and the
# Grafana folder holding both.
DATASOURCE_UID = "driftd-prometheus"
FOLDER_UID = "driftd"
FOLDER_TITLE = "driftd"


def dashboard_url(uid: str, *params: str) -> str:
    """A Grafana-relative link to dashboard ``uid`` keeping the time range and datasource.

    >>> dashboard_url("driftd-model", "var-model=m")
    '/d/driftd-model?var-model=m&${datasource:queryparam}&${__url_time_range}'
    """
    query = "&".join([*params, "${datasource:queryparam}", "${__url_time_range}"])
    return f"/d/{uid}?{query}"
