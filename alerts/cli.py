"""``driftd rules ...`` (owned by the alerts package)."""

import typer

app = typer.Typer(no_args_is_help=True)
