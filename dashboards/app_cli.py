"""``driftd app``: serve the Streamlit investigation app (``dashboards/app``)."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["run_app", "streamlit_command"]


def streamlit_command(port: int, host: str, headless: bool = True) -> list[str]:
    """The ``streamlit run`` command line for the app (the store URL is not on it)."""
    from dashboards.app import APP_SCRIPT

    return [
        sys.executable, "-m", "streamlit", "run", str(APP_SCRIPT),
        "--server.port", str(port),
        "--server.address", host,
        "--server.headless", "true" if headless else "false",
        "--browser.gatherUsageStats", "false",
        "--server.fileWatcherType", "none",
        # An investigation tool, not a development server: no "Deploy" or rerun menu.
        "--client.toolbarMode", "viewer",
    ]


def run_app(
    config: Annotated[
        Path,
        typer.Option("--config", "-c", help="driftd configuration (store.url, app.port)."),
    ] = Path("driftd.yaml"),
    port: Annotated[
        int | None, typer.Option(help="Port to serve on (default: app.port).")
    ] = None,
    host: Annotated[str, typer.Option(help="Address to bind (0.0.0.0 to expose it).")] = (
        "127.0.0.1"
    ),
    store_url: Annotated[
        str | None,
        typer.Option("--store-url", help="Store URL overriding store.url (sqlite:///driftd.db)."),
    ] = None,
) -> None:
    """Start the Streamlit investigation app on the store named in the configuration."""
    from monitor.config import ConfigError, load_settings

    if any(importlib.util.find_spec(name) is None for name in ("streamlit", "plotly")):
        typer.echo("driftd app needs streamlit and plotly: pip install 'driftd[app]'", err=True)
        raise typer.Exit(2)
    # Without a driftd.yaml in the working directory the defaults and DRIFTD_* apply;
    # a file named explicitly must exist.
    use_file = config.exists() or config != Path("driftd.yaml")
    try:
        settings = load_settings(config if use_file else None)
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    from dashboards.app import CONFIG_ENV, STORE_URL_ENV

    env = dict(os.environ)
    # Through the environment, not argv: a password in the URL must not show in `ps`.
    env[STORE_URL_ENV] = store_url or settings.store.url.get_secret_value()
    if use_file:
        env[CONFIG_ENV] = str(config.resolve())
    command = streamlit_command(port if port is not None else settings.app.port, host)
    typer.echo(f"driftd app on http://{host}:{command[command.index('--server.port') + 1]}")
    process = subprocess.Popen(command, env=env)
    # An orchestrator stops `driftd app` with SIGTERM: pass it on so that Streamlit
    # does not outlive its parent. Ctrl-C reaches both through the process group.
    signal.signal(signal.SIGTERM, lambda signum, _frame: process.send_signal(signum))
    while True:
        try:
            code = process.wait()
            break
        except KeyboardInterrupt:
            continue
    raise typer.Exit(0 if code in (0, -signal.SIGTERM, -signal.SIGINT) else code)

