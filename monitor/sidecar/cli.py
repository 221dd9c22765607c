"""``driftd sidecar``: the HTTP logging sidecar (owned by the sidecar package)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["sidecar"]

log = logging.getLogger("driftd.sidecar")


def sidecar(
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 9109,
    host: Annotated[str, typer.Option(help="Address to bind; keep loopback unless the pod network needs more.")] = "127.0.0.1",
    config: Annotated[Path | None, typer.Option(help="driftd.yaml; its `kafka` section is used.")] = None,
    bootstrap_servers: Annotated[str | None, typer.Option(help="Overrides kafka.bootstrap_servers.")] = None,
    buffer_events: Annotated[int, typer.Option(help="Bound of the buffer (events not yet acknowledged).", min=1)] = 100_000,
    buffer_bytes: Annotated[int, typer.Option(help="Bound of the buffer in bytes of encoded events.", min=1024)] = 256 * 1024 * 1024,
    compression: Annotated[str, typer.Option(help="lz4, gzip, zstd, snappy or none.")] = "lz4",
    max_body_bytes: Annotated[int, typer.Option(help="Largest request body.", min=1024)] = 16 * 1024 * 1024,
    close_timeout: Annotated[float, typer.Option(help="Seconds to deliver buffered events on shutdown.")] = 10.0,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
    insecure: Annotated[bool, typer.Option(
        "--insecure", help="Serve a non-loopback --host without a token (no authentication).")] = False,
) -> None:
    """Run the HTTP logging sidecar: POST /v1/predictions and /v1/labels, buffered into Kafka.

    Writes need ``Authorization: Bearer <token>`` when ``sidecar.auth`` sets a token
    (``DRIFTD_SIDECAR__AUTH__TOKEN`` or ``sidecar.auth.token_file``); a non-loopback
    ``--host`` needs one unless ``--insecure``.
    """
    from monitor.auth import BearerAuth, InsecureBind, require_token, resolve_token
    from monitor.config import ConfigError, load_settings
    from monitor.sidecar.client import PredictionLogger
    from monitor.sidecar.server import SidecarApp, SidecarServer

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if log_level.lower() != "debug":
        logging.getLogger("kafka").setLevel(logging.WARNING)  # connection chatter at INFO
    overrides = {"bootstrap_servers": bootstrap_servers} if bootstrap_servers else {}
    try:
        auth_settings = load_settings(config).sidecar.auth
        token = resolve_token(auth_settings, "sidecar.auth")
        require_token(host, token, insecure=insecure, key="sidecar")
    except (ConfigError, InsecureBind, ValueError) as exc:
        typer.echo(f"driftd sidecar: {exc}".replace("sidecar.host", "--host"), err=True)
        raise typer.Exit(2) from None
    if token is None and insecure:
        log.warning("sidecar on %s without a token (--insecure): anyone who can reach it can write events", host)
    try:
        logger = PredictionLogger.from_config(
            config,
            buffer_events=buffer_events,
            buffer_bytes=buffer_bytes,
            compression=None if compression == "none" else compression,
            close_timeout=close_timeout,
            **overrides,
        )
    except ConfigError as exc:
        typer.echo(f"driftd sidecar: {exc}", err=True)
        raise typer.Exit(2) from None

    def stop() -> None:
        delivered = logger.close()
        stats = logger.stats()
        log.log(logging.INFO if delivered else logging.ERROR,
                "sidecar stopped: %d accepted, %d sent, %d undelivered",
                stats.accepted, stats.sent, stats.buffered)

    server = SidecarServer(SidecarApp(logger, max_body_bytes=max_body_bytes, auth=BearerAuth(token, metrics=auth_settings.metrics)), host=host, port=port, on_stop=stop)
    log.info("sidecar listening on http://%s:%d, Kafka %s", host, port, logger.kafka.bootstrap_servers)
    server.run()
