"""``driftd app`` (owned by the investigation app, ``dashboards/app``)."""

import typer


def run_app() -> None:
    """Start the Streamlit investigation app."""
    raise typer.Exit("not implemented yet")
