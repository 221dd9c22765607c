"""``driftd run``, ``driftd demo`` and ``driftd compare``."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Optional

import typer

from monitor.config import ConfigError, load_settings

__all__ = ["compare", "demo", "run", "setup_logging"]


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("kafka").setLevel(logging.CRITICAL)
    logging.getLogger("alembic").setLevel(logging.WARNING)


def run(
    config: Annotated[Path, typer.Option("--config", "-c", help="driftd.yaml")],
    log_level: Annotated[str, typer.Option(help="debug, info, warning, error")] = "info",
) -> None:
    """Run the daemon: consume, compute, export /metrics, store results."""
    setup_logging(log_level)
    try:
        settings = load_settings(config)
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    from monitor.daemon import Daemon

    raise typer.Exit(Daemon(settings).run_forever())


def demo(
    duration: Annotated[float, typer.Option(help="Seconds to run before stopping everything.")] = 120.0,
    workdir: Annotated[Path, typer.Option(help="Where the demo writes its store, baselines, rules and dashboards.")] = Path("driftd-demo"),
    store_url: Annotated[Optional[str], typer.Option(help="Store URL (default: SQLite in the work directory).")] = None,
    port: Annotated[int, typer.Option(help="HTTP port for /metrics (0 = any free port).")] = 9108,
    rate: Annotated[float, typer.Option(help="Simulated predictions per second of event time, per model.")] = 20.0,
    speed: Annotated[float, typer.Option(help="Event-time seconds simulated per wall second.")] = 60.0,
    explain: Annotated[bool, typer.Option(help="Train a model and explain sampled predictions with SHAP.")] = True,
    artifacts: Annotated[bool, typer.Option(help="Generate alert rules and Grafana dashboards for the demo configuration.")] = True,
    log_level: Annotated[str, typer.Option()] = "warning",
) -> None:
    """Everything on one machine: broker, simulated service with drift, daemon, store."""
    setup_logging(log_level)
    from monitor.demo import run_demo

    raise typer.Exit(run_demo(duration=duration, workdir=workdir, store_url=store_url, port=port, rate=rate, speed=speed, explain=explain, artifacts=artifacts))


from monitor.compare import compare  # noqa: E402 - the offline comparison lives in its own module
