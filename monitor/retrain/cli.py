"""``driftd retrain list | show ID | ack ID --note | reject ID --note``.

The store comes from ``--url`` or ``store.url`` of ``--config driftd.yaml``. ``ID`` is
the request's number (``list`` shows it) or its ``request_id`` (the event's UUID).
Exit codes: 0 done, 1 unknown ID, a request already decided or the store failed,
2 bad arguments or configuration.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import orjson
import typer

from monitor.store.cli import ConfigOption, UrlOption, _open, _url

app = typer.Typer(no_args_is_help=True)

NoteOption = Annotated[str, typer.Option("--note", "-n", help="Why (kept with the request).")]


def _time(value: datetime | None) -> str:
    return "-" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


@app.command("list")
def list_requests(
    url: UrlOption = None,
    config: ConfigOption = None,
    model: Annotated[str | None, typer.Option(help="Only this model.")] = None,
    status: Annotated[str | None, typer.Option(help="requested | acknowledged | rejected.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="Newest this many.")] = 50,
) -> None:
    """The newest retrain requests, newest first."""
    from monitor.store import StoreError
    from monitor.store.retrain import RETRAIN_STATUSES

    if status is not None and status not in RETRAIN_STATUSES:
        typer.echo(f"error: --status {status!r}: allowed {', '.join(RETRAIN_STATUSES)}", err=True)
        raise typer.Exit(2)
    store = _open(_url(url, config))
    try:
        records = store.retrain_requests(model=model, status=status, limit=limit)
    except StoreError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    finally:
        store.close()
    if not records:
        typer.echo("no retrain requests")
        return
    typer.echo(f"{'id':>5}  {'created (UTC)':19}  {'model':20} {'version':10} {'reason':19} {'status':12} {'published':9}  note")
    for r in records:
        typer.echo(
            f"{r.id:>5}  {_time(r.created_at):19}  {r.model[:20]:20} {r.version[:10]:10} {r.reason:19} "
            f"{r.status:12} {'yes' if r.published_at else 'no':9}  {r.note}"
        )


@app.command("show")
def show(request: Annotated[str, typer.Argument(help="Number or request_id.")], url: UrlOption = None,
         config: ConfigOption = None) -> None:
    """One request with its status and the event as published (JSON)."""
    from monitor.store import StoreError

    store = _open(_url(url, config))
    try:
        record = store.retrain_request(request)
    except StoreError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    finally:
        store.close()
    if record is None:
        typer.echo(f"error: no retrain request {request}; `driftd retrain list` shows them", err=True)
        raise typer.Exit(1)
    typer.echo(f"request {record.id} ({record.request_id}): {record.status}"
               + (f" at {_time(record.acted_at)}: {record.note}" if record.acted_at else "")
               + f"; published {_time(record.published_at)}")
    typer.echo(orjson.dumps(record.payload, option=orjson.OPT_INDENT_2).decode())


def _act(request: str, status: str, note: str, url: str | None, config) -> None:
    from monitor.store import StoreError
    from monitor.store.retrain import RetrainRequestClosed, RetrainRequestNotFound

    store = _open(_url(url, config))
    try:
        record = store.act_on_retrain_request(request, status, note, datetime.now(UTC))
    except (RetrainRequestNotFound, RetrainRequestClosed) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    except StoreError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    finally:
        store.close()
    typer.echo(f"retrain request {record.id} ({record.model} {record.version}, {record.reason}): {status}")


@app.command("ack")
def ack(request: Annotated[str, typer.Argument(help="Number or request_id.")], note: NoteOption = "",
        url: UrlOption = None, config: ConfigOption = None) -> None:
    """Acknowledge a request (a retrain was started or planned)."""
    _act(request, "acknowledged", note, url, config)


@app.command("reject")
def reject(request: Annotated[str, typer.Argument(help="Number or request_id.")], note: NoteOption = "",
           url: UrlOption = None, config: ConfigOption = None) -> None:
    """Reject a request (no retrain; say why in --note)."""
    _act(request, "rejected", note, url, config)
