"""``driftd run``, ``driftd demo`` and ``driftd compare``."""

import typer


def run() -> None:
    """Run the daemon."""
    raise typer.Exit("not implemented yet")


def demo() -> None:
    """Run the demo."""
    raise typer.Exit("not implemented yet")


def compare() -> None:
    """Compare two files."""
    raise typer.Exit("not implemented yet")
