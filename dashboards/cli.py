"""``driftd dashboards ...`` (owned by the dashboards package).

Heavy imports (the Grafana SDK, grafana-client) happen inside the commands so that
``driftd --help`` stays fast.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True)

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="driftd.yaml (thresholds, app and runbook URLs)."),
]


def _settings(config: Path | None):
    from monitor.config import ConfigError, load_settings

    try:
        return load_settings(config)
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None


@app.command()
def generate(
    out: Annotated[Path, typer.Option("--out", "-o", help="Output directory.")],
    config: ConfigOption = None,
    prometheus_url: Annotated[
        str, typer.Option(help="URL Grafana uses to reach Prometheus (datasource provisioning).")
    ] = "http://127.0.0.1:9090",
    dashboards_path: Annotated[
        Path | None,
        typer.Option(help="Where Grafana sees OUT/dashboards, if not at the same path "
                          "(e.g. inside a container)."),
    ] = None,
    json_only: Annotated[
        bool, typer.Option("--json-only", help="Only the dashboard JSON files, directly in OUT.")
    ] = False,
) -> None:
    """Write dashboard JSON plus Grafana provisioning YAML (dashboard provider, datasource)."""
    from dashboards.build import generate as write
    from dashboards.build import write_json
    from dashboards.errors import DashboardError

    settings = _settings(config)
    try:
        if json_only:
            paths = write_json(settings, out)
        else:
            files = write(settings, out, prometheus_url=prometheus_url,
                          dashboards_path=dashboards_path)
            paths = [*files.dashboards, files.provider, files.datasource]
    except DashboardError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    for path in paths:
        typer.echo(str(path))


@app.command()
def push(
    config: ConfigOption = None,
    grafana_url: Annotated[
        str | None,
        typer.Option(help="Grafana base URL; defaults to alerts.grafana_url from the config."),
    ] = None,
    folder: Annotated[str, typer.Option(help="Title of the Grafana folder.")] = "driftd",
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each request.")] = 10.0,
) -> None:
    """Upload the dashboards to Grafana (token from $GRAFANA_TOKEN) and print their URLs."""
    from dashboards.build import FOLDER_UID, build_dashboards
    from dashboards.errors import DashboardError
    from dashboards.push import TOKEN_ENV, push_dashboards

    settings = _settings(config)
    token = os.environ.get(TOKEN_ENV, "")
    url = grafana_url or settings.alerts.grafana_url
    try:
        pushed = push_dashboards(build_dashboards(settings), url, token,
                                 folder_uid=FOLDER_UID, folder_title=folder, timeout=timeout)
    except DashboardError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    for dashboard in pushed:
        typer.echo(f"{dashboard.title}: {dashboard.url} (version {dashboard.version})")


@app.command()
def layout(config: ConfigOption = None) -> None:
    """Print the dashboards' rows and panels as a Markdown table."""
    from dashboards.build import build_dashboards
    from dashboards.layout import layout_markdown

    typer.echo(layout_markdown(build_dashboards(_settings(config))))


@app.command()
def check(
    prometheus_url: Annotated[str, typer.Option(help="Prometheus base URL.")],
    config: ConfigOption = None,
    since: Annotated[float, typer.Option(help="Seconds of history for range queries.")] = 3600.0,
    var: Annotated[
        list[str] | None,
        typer.Option(help="Template variable value, NAME=VALUE (repeatable), e.g. model=fraud."),
    ] = None,
    rate_interval: Annotated[str, typer.Option(help="Value of $__rate_interval.")] = "1m",
) -> None:
    """Run every panel and variable query against Prometheus; exit 1 if any returns no data."""
    import time

    from dashboards.build import build_dashboards
    from dashboards.errors import DashboardError
    from dashboards.verify import check_dashboards

    overrides = {}
    for item in var or []:
        name, sep, value = item.partition("=")
        if not sep or not name:
            typer.echo(f"error: --var expects NAME=VALUE, got {item!r}", err=True)
            raise typer.Exit(2)
        overrides[name] = value
    end = time.time()
    try:
        results = check_dashboards(build_dashboards(_settings(config)), prometheus_url,
                                   start=end - since, end=end, rate_interval=rate_interval,
                                   # About as many points as a Grafana graph panel asks for.
                                   step=max(1.0, since / 300),
                                   overrides=overrides)
    except DashboardError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    failed = [r for r in results if not r.ok]
    for result in failed:
        reason = result.error or "no data"
        typer.echo(f"{result.query.dashboard} / {result.query.panel} {result.query.ref_id}: "
                   f"{reason}\n    {result.promql}")
    typer.echo(f"{len(results) - len(failed)} of {len(results)} queries returned data")
    if failed:
        raise typer.Exit(1)
