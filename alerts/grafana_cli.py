"""``driftd rules grafana`` and ``driftd rules grafana-push``: the alerts as Grafana-managed rules.

::

    driftd rules grafana --config driftd.yaml --out grafana/ \\
        --pager-url https://pager.example/hook --ticket-url https://tickets.example/hook
    GRAFANA_TOKEN=... driftd rules grafana-push --config driftd.yaml \\
        --grafana-url https://grafana.example --pager-url ... --ticket-url ...
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from alerts.cli import ConfigOption, JobOption, RateOption, _fail, _settings

__all__ = ["grafana_generate", "grafana_push"]

PagerOption = Annotated[str, typer.Option("--pager-url", help="Webhook that pages (critical).")]
TicketOption = Annotated[
    str, typer.Option("--ticket-url", help="Webhook that opens tickets (warning).")
]
IntervalOption = Annotated[
    str, typer.Option("--interval", help="Evaluation interval of the rule groups (multiple of 10s).")
]


def _rule_set(config: Path | None, job: str | None, rate_window: str | None, interval: str):
    from alerts.catalogue import RuleOptions
    from alerts.errors import AlertsError
    from alerts.grafana import build_grafana_rules

    settings = _settings(config)
    try:
        options = RuleOptions.from_settings(settings, job=job, rate_window=rate_window)
        return settings, options, build_grafana_rules(settings, options, interval=interval)
    except AlertsError as error:
        _fail(str(error), code=2)


def grafana_generate(
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory; files go to "
                                      "OUT/provisioning/alerting/.")],
    pager_url: PagerOption,
    ticket_url: TicketOption,
    config: ConfigOption = None,
    job: JobOption = None,
    rate_window: RateOption = None,
    interval: IntervalOption = "1m",
) -> None:
    """Write Grafana alerting provisioning files: rules, contact points, notification policy."""
    from alerts.errors import AlertsError
    from alerts.grafana import grafana_files

    settings, options, _ = _rule_set(config, job, rate_window, interval)
    try:
        files = grafana_files(settings, options, pager_url=pager_url, ticket_url=ticket_url,
                              interval=interval)
    except AlertsError as error:
        _fail(str(error), code=2)
    target = out / "provisioning" / "alerting"
    target.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (target / name).write_text(text, encoding="utf-8")
        typer.echo(f"wrote {target / name}")


def grafana_push(
    pager_url: PagerOption,
    ticket_url: TicketOption,
    config: ConfigOption = None,
    grafana_url: Annotated[
        Optional[str],
        typer.Option(help="Grafana base URL; defaults to alerts.grafana_url from the config."),
    ] = None,
    job: JobOption = None,
    rate_window: RateOption = None,
    interval: IntervalOption = "1m",
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each request.")] = 10.0,
) -> None:
    """Create or update the rules, contact points and policy in Grafana (token: $GRAFANA_TOKEN)."""
    from alerts.errors import AlertsError
    from alerts.grafana import contact_points
    from alerts.grafana_push import push_grafana_alerting
    from dashboards.errors import DashboardError
    from dashboards.push import TOKEN_ENV

    settings, _, rules = _rule_set(config, job, rate_window, interval)
    url = grafana_url or settings.alerts.grafana_url
    try:
        done = push_grafana_alerting(rules, contact_points(pager_url, ticket_url), url,
                                     os.environ.get(TOKEN_ENV, ""), timeout=timeout)
    except (AlertsError, DashboardError) as error:
        _fail(str(error))
    typer.echo(f"contact points: {', '.join(done.contact_points)}")
    typer.echo(f"rules: {len(done.created)} created, {len(done.updated)} updated, "
               f"{len(done.deleted)} deleted; groups: {', '.join(done.groups)}")
    typer.echo(f"notification policy: driftd alerts routed in {url}")
