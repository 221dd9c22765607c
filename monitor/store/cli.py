"""``driftd store upgrade | status | retention`` (owned by the store package).

The database comes from ``--url`` or from ``store.url`` of ``--config driftd.yaml``
(where ``DRIFTD_STORE__URL`` overrides the file). Exit codes: 0 done, 1 the store
failed or cannot be reached, 2 bad arguments or configuration.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Optional

import typer

app = typer.Typer(no_args_is_help=True)

UrlOption = Annotated[
    Optional[str], typer.Option("--url", help="Database URL, e.g. sqlite:///driftd.db.")
]
ConfigOption = Annotated[
    Optional[Path], typer.Option("--config", "-c", help="driftd.yaml (uses store.url).")
]


def _settings(config: Path | None):
    from monitor.config import ConfigError, load_settings

    try:
        return load_settings(config)
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


def _url(url: str | None, config: Path | None) -> str:
    if url and config:
        typer.echo("error: give --url or --config, not both", err=True)
        raise typer.Exit(2)
    if url:
        return url
    if config is None:
        typer.echo("error: give --url URL or --config driftd.yaml", err=True)
        raise typer.Exit(2)
    return _settings(config).store.url.get_secret_value()


def _open(url: str):
    from monitor.store import StoreError, open_store

    try:
        return open_store(url, create=False)
    except StoreError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


def _redacted(store) -> str:
    return store.engine.url.render_as_string(hide_password=True)


@app.command("upgrade")
def upgrade(url: UrlOption = None, config: ConfigOption = None) -> None:
    """Create or upgrade the store's tables to the newest schema revision."""
    from monitor.store import StoreError

    store = _open(_url(url, config))
    try:
        before = store.current_revision()
        after = store.migrate()
    except StoreError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    finally:
        store.close()
    if before == after:
        typer.echo(f"store {_redacted(store)}: already at revision {after} (newest)")
    else:
        typer.echo(f"store {_redacted(store)}: upgraded from {before or 'empty'} to {after}")


# The name some tools and messages use for the same thing.
app.command("migrate", hidden=True)(upgrade)


@app.command("status")
def status(url: UrlOption = None, config: ConfigOption = None) -> None:
    """Show the store's schema revision and whether it is the newest."""
    from monitor.store import StoreError

    store = _open(_url(url, config))
    try:
        current, head = store.current_revision(), store.head_revision()
    except StoreError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    finally:
        store.close()
    state = (
        "up to date" if current == head else f"behind: run `driftd store upgrade` (newest {head})"
    )
    typer.echo(f"store {_redacted(store)}: revision {current or 'none (empty)'}, {state}")


@app.command("retention")
def retention(
    config: ConfigOption = None,
    url: UrlOption = None,
    days: Annotated[
        Optional[int],
        typer.Option(min=1, help="Keep this many days (default store.retention_days)."),
    ] = None,
) -> None:
    """Delete window results, explanations and resolved incidents older than the retention."""
    from monitor.store import StoreError
    from monitor.store.tasks import apply_task_retention

    if days is None:
        if config is None:
            typer.echo(
                "error: give --days N, or --config driftd.yaml for store.retention_days", err=True
            )
            raise typer.Exit(2)
        days = _settings(config).store.retention_days
    store = _open(_url(url, config))
    now = datetime.now(UTC)
    try:
        deleted = store.apply_retention(now, days)
        deleted.update(apply_task_retention(store, now, days))
    except StoreError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    finally:
        store.close()
    total = sum(deleted.values())
    details = ", ".join(f"{table} {n}" for table, n in deleted.items())
    typer.echo(
        f"store {_redacted(store)}: kept {days} days (before {now:%Y-%m-%d %H:%M} UTC); "
        f"deleted {total} rows: {details}"
    )
