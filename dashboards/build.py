"""Build the three dashboards and write them, with Grafana provisioning files, to disk.

``generate(settings, out_dir)`` writes::

    out_dir/dashboards/driftd-overview.json      dashboard models (Grafana 11 schema)
    out_dir/dashboards/driftd-model.json
    out_dir/dashboards/driftd-pipeline.json
    out_dir/provisioning/dashboards/driftd.yaml  file provider pointing at out_dir/dashboards
    out_dir/provisioning/datasources/driftd.yaml Prometheus datasource, uid driftd-prometheus

Point Grafana's ``paths.provisioning`` at ``out_dir/provisioning`` (or copy the two
YAML files into an existing provisioning tree).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.cog.encoder import JSONEncoder

from alerts.catalogue import RuleOptions
from dashboards.context import DashboardContext, context_from_settings
from dashboards.errors import DashboardError
from dashboards.model import model_dashboard
from dashboards.overview import overview_dashboard
from dashboards.panels import DATASOURCE_UID
from dashboards.pipeline import pipeline_dashboard
from dashboards.uids import FOLDER_TITLE, FOLDER_UID
from monitor.config import Settings

__all__ = [
    "BUILDERS",
    "FOLDER_TITLE",
    "FOLDER_UID",
    "build_dashboards",
    "dashboard_json",
    "dashboard_provisioning",
    "datasource_provisioning",
    "generate",
    "write_json",
]

DEFAULT_PROMETHEUS_URL = "http://127.0.0.1:9090"

# Order is the order of the README table and of ``push`` output.
BUILDERS: tuple[Callable[[DashboardContext], dash.Dashboard], ...] = (
    overview_dashboard,
    model_dashboard,
    pipeline_dashboard,
)


def _number_panels(model: dict[str, Any]) -> dict[str, Any]:
    """Give every panel (rows included, in reading order) a unique id from 1."""
    next_id = 1
    for panel in model.get("panels", []):
        panel["id"] = next_id
        next_id += 1
        for nested in panel.get("panels", []):
            nested["id"] = next_id
            next_id += 1
    return model


def build_dashboards(settings: Settings, options: RuleOptions | None = None) -> list[dict[str, Any]]:
    """The dashboard models (plain JSON-ready dicts) for ``settings``, in :data:`BUILDERS` order.

    ``options`` are the alert rules' options when they differ from
    ``RuleOptions.from_settings(settings)``, so that panel thresholds follow them.
    """
    ctx = context_from_settings(settings, options)
    models = []
    for builder in BUILDERS:
        built = builder(ctx).build()
        model = json.loads(json.dumps(built, cls=JSONEncoder))
        models.append(_number_panels(model))
    return models


def dashboard_json(model: dict[str, Any]) -> str:
    """Stable text of a dashboard model: sorted keys, two-space indent, trailing newline."""
    return json.dumps(model, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def dashboard_provisioning(dashboards_dir: Path) -> dict[str, Any]:
    """A Grafana file provider that loads ``dashboards_dir/*.json`` into the driftd folder."""
    return {
        "apiVersion": 1,
        "providers": [{
            "name": "driftd",
            "orgId": 1,
            "folder": FOLDER_TITLE,
            "folderUid": FOLDER_UID,
            "type": "file",
            "disableDeletion": False,
            "allowUiUpdates": False,
            "updateIntervalSeconds": 60,
            "options": {"path": str(dashboards_dir), "foldersFromFilesStructure": False},
        }],
    }


def datasource_provisioning(prometheus_url: str) -> dict[str, Any]:
    """The Prometheus datasource the dashboards default to, with its fixed uid."""
    return {
        "apiVersion": 1,
        "datasources": [{
            "name": "driftd Prometheus",
            "type": "prometheus",
            "uid": DATASOURCE_UID,
            "access": "proxy",
            "url": prometheus_url,
            "isDefault": False,
            "editable": False,
            "jsonData": {"httpMethod": "POST", "timeInterval": "15s"},
        }],
    }


def write_json(settings: Settings, out_dir: Path) -> list[Path]:
    """Write ``<uid>.json`` for each dashboard into ``out_dir``; the paths written."""
    written = []
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        for model in build_dashboards(settings):
            path = out_dir / f"{model['uid']}.json"
            path.write_text(dashboard_json(model), encoding="utf-8")
            written.append(path)
    except OSError as exc:
        raise DashboardError(f"cannot write dashboards to {out_dir}: {exc.strerror or exc}") from exc
    return written


@dataclass(frozen=True, slots=True)
class GeneratedFiles:
    dashboards: list[Path]
    provider: Path
    datasource: Path


def generate(settings: Settings, out_dir: Path, *, prometheus_url: str = DEFAULT_PROMETHEUS_URL,
             dashboards_path: Path | None = None) -> GeneratedFiles:
    """Write the dashboards and provisioning files under ``out_dir``.

    Parameters
    ----------
    dashboards_path
        Where Grafana will find the JSON files, when it differs from
        ``out_dir/dashboards`` (e.g. a path inside the Grafana container).

    Raises
    ------
    DashboardError
        When ``out_dir`` cannot be written.
    """
    json_dir = out_dir / "dashboards"
    provider = out_dir / "provisioning" / "dashboards" / "driftd.yaml"
    datasource = out_dir / "provisioning" / "datasources" / "driftd.yaml"
    written = write_json(settings, json_dir)
    try:
        for path in (provider.parent, datasource.parent):
            path.mkdir(parents=True, exist_ok=True)
        target = dashboards_path or json_dir.resolve()
        provider.write_text(yaml.safe_dump(dashboard_provisioning(target), sort_keys=False))
        datasource.write_text(yaml.safe_dump(datasource_provisioning(prometheus_url), sort_keys=False))
    except OSError as exc:
        raise DashboardError(f"cannot write dashboards to {out_dir}: {exc.strerror or exc}") from exc
    return GeneratedFiles(dashboards=written, provider=provider, datasource=datasource)
