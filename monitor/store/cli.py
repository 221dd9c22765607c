"""``driftd store ...`` (owned by the store package)."""

import typer

app = typer.Typer(no_args_is_help=True)
