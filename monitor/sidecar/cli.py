"""``driftd sidecar`` (owned by the sidecar package)."""

import typer


def sidecar() -> None:
    """Run the HTTP logging sidecar."""
    raise typer.Exit("not implemented yet")
