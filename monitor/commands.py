"""``driftd run``, ``driftd demo``, ``driftd broker``, ``driftd methods`` and ``driftd compare``."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Annotated, Any

import typer

from monitor.config import ConfigError, load_settings

__all__ = ["broker", "compare", "demo", "methods", "run", "setup_logging"]

LogLevel = Annotated[str, typer.Option(help="debug, info, warning or error.")]
LogFormat = Annotated[str, typer.Option(help="text, or json: one JSON object per line for log shippers.")]


def setup_logging(level: str, fmt: str = "text") -> None:
    """Logging for a command; a bad level or format is a usage error naming the option."""
    from monitor.logs import configure_logging

    try:
        configure_logging(level, fmt)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def run(
    config: Annotated[Path, typer.Option("--config", "-c", help="driftd.yaml")],
    log_level: LogLevel = "info",
    log_format: LogFormat = "text",
    reset_state: Annotated[bool, typer.Option(
        "--reset-state",
        help="Start with empty window and label state when the saved checkpoint cannot be read "
             "(it is reported and the daemon stays not ready otherwise).")] = False,
    insecure: Annotated[bool, typer.Option(
        "--insecure", help="Serve a non-loopback http.host without a token (no authentication).")] = False,
) -> None:
    """Run the daemon: consume, compute, export /metrics, store results."""
    setup_logging(log_level, log_format)
    from monitor.store.errors import StoreError

    try:
        settings = load_settings(config)
        from monitor.startup import check_models

        check_models(settings)
        from monitor.daemon import Daemon

        daemon = Daemon(settings, insecure=insecure)
        daemon.consumer.reset_state = reset_state
    except (ConfigError, StoreError) as exc:
        # One line naming the key; no traceback (it would show the store URL).
        typer.echo(f"driftd run: {exc}", err=True)
        raise typer.Exit(2) from None
    except OSError as exc:  # the HTTP port: in use, or an address this machine does not have
        typer.echo(f"driftd run: cannot listen on {settings.http.host}:{settings.http.port}: "
                   f"{exc.strerror or exc}", err=True)
        raise typer.Exit(2) from None
    raise typer.Exit(daemon.run_forever())


def demo(
    duration: Annotated[float, typer.Option(help="Seconds to run before stopping everything.")] = 120.0,
    workdir: Annotated[Path, typer.Option(help="Where the demo writes its store, baselines, rules and dashboards.")] = Path("driftd-demo"),
    store_url: Annotated[str | None, typer.Option(help="Store URL (default: SQLite in the work directory).")] = None,
    port: Annotated[int, typer.Option(help="HTTP port for /metrics (0 = any free port).")] = 9108,
    rate: Annotated[float, typer.Option(help="Simulated predictions per second of event time, per model.")] = 20.0,
    speed: Annotated[float, typer.Option(help="Event-time seconds simulated per wall second.")] = 60.0,
    explain: Annotated[bool, typer.Option(help="Train a model and explain sampled predictions with SHAP.")] = True,
    artifacts: Annotated[bool, typer.Option(help="Generate alert rules and Grafana dashboards for the demo configuration.")] = True,
    seed: Annotated[int, typer.Option(help="Seed of the simulated data (the schedule stays the same); printed at start.")] = 0,
    log_level: LogLevel = "warning",
    log_format: LogFormat = "text",
) -> None:
    """Everything on one machine: broker, simulated service with drift, daemon, store."""
    setup_logging(log_level, log_format)
    from monitor.demo import run_demo

    raise typer.Exit(run_demo(duration=duration, workdir=workdir, store_url=store_url, port=port, rate=rate, speed=speed, explain=explain, artifacts=artifacts, seed=seed))


def broker(
    port: Annotated[int, typer.Option(help="Port to listen on (0 = any free port).")] = 9092,
    host: Annotated[str, typer.Option(help="Address to listen on and advertise.")] = "127.0.0.1",
    log_file: Annotated[Path | None, typer.Option(help="Write the broker's own output here.")] = None,
) -> None:
    """Start the embedded Kafka-compatible broker (in memory) to try `driftd run`; Ctrl-C stops it."""
    from monitor.broker import BrokerError, EmbeddedBroker

    stop = threading.Event()

    def on_signal(_signum: int, _frame: Any) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    embedded = EmbeddedBroker(port=port or None, host=host, log_path=log_file)
    try:
        embedded.start()
    except BrokerError as exc:
        typer.echo(f"driftd broker: {exc}", err=True)
        raise typer.Exit(2) from None
    try:
        typer.echo(f"broker listening on {embedded.bootstrap_servers} (embedded Tansu, data in memory)")
        typer.echo(f"  set kafka.bootstrap_servers: {embedded.bootstrap_servers} in driftd.yaml; Ctrl-C stops it")
        while not stop.wait(0.5):
            if not embedded.running:
                typer.echo("driftd broker: the broker process exited", err=True)
                raise typer.Exit(1)
    finally:
        embedded.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    typer.echo("broker stopped")


def methods(
    wide: Annotated[bool, typer.Option("--wide", help="Every column in full (descriptions, sources).")] = False,
) -> None:
    """List every registered drift method: kinds, default threshold, direction and source."""
    from monitor.cli_tables import methods_table, print_table

    print_table(methods_table(wide), wide)


# The offline comparison lives in its own module; imported last, as before.
from monitor.compare import compare
