"""``driftd deploy generate``: Kubernetes manifests and a docker-compose stack for a configuration."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

app = typer.Typer(no_args_is_help=True)


@app.command()
def generate(
    config: Annotated[Path, typer.Option("--config", "-c", help="driftd.yaml to deploy.",
                                         exists=True, dir_okay=False)],
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory (deploy/).")] = Path("deploy"),
    image: Annotated[Optional[str], typer.Option(help="Container image of driftd.")] = None,
    pager_url: Annotated[Optional[str], typer.Option(help="Webhook that pages (critical).")] = None,
    ticket_url: Annotated[Optional[str], typer.Option(help="Webhook for tickets (warning).")] = None,
) -> None:
    """Write deploy/Dockerfile, deploy/kubernetes/*.yaml and deploy/compose/*."""
    from alerts.errors import AlertsError
    from dashboards.deploy import (
        DEFAULT_IMAGE,
        PLACEHOLDER_PAGER,
        PLACEHOLDER_TICKET,
        deploy_files,
        write_deploy,
    )
    from monitor.config import ConfigError, load_settings

    try:
        settings = load_settings(config)
        files = deploy_files(settings, config.read_text(encoding="utf-8"),
                             image=image or DEFAULT_IMAGE, pager_url=pager_url or PLACEHOLDER_PAGER,
                             ticket_url=ticket_url or PLACEHOLDER_TICKET)
    except (ConfigError, AlertsError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    for path in write_deploy(files, out):
        typer.echo(str(path))
    if not pager_url or not ticket_url:
        typer.echo("note: pager/ticket webhooks are placeholders (*.example.invalid); pass "
                   "--pager-url and --ticket-url before anyone relies on the alerts", err=True)
