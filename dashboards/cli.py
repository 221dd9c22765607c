"""``driftd dashboards ...`` and ``driftd app`` (owned by the dashboards package)."""

import typer

app = typer.Typer(no_args_is_help=True)


def run_app() -> None:
    """Start the Streamlit investigation app."""
    raise typer.Exit("not implemented yet")
