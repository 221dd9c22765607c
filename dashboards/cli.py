"""``driftd dashboards ...`` (owned by the dashboards package)."""

import typer

app = typer.Typer(no_args_is_help=True)

