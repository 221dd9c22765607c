"""Run ``promtool`` and ``amtool`` (from the Debian ``prometheus`` and
``prometheus-alertmanager`` packages) on generated files."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from alerts.errors import CheckFailed, ToolMissing

__all__ = ["amtool_check_config", "find_tool", "promtool_check_rules", "promtool_test_rules"]

_INSTALL = {
    "promtool": "apt-get install prometheus (Debian) or use the promtool of a Prometheus release",
    "amtool": "apt-get install prometheus-alertmanager (Debian) or use an Alertmanager release",
}
# A hung tool must not hang a deploy; checking a few hundred rules takes well under this.
TIMEOUT_S = 120


def find_tool(name: str, path: str | None = None) -> str | None:
    """The executable ``path`` or ``name`` on PATH; None when it is not installed."""
    if path:
        return path if Path(path).exists() else shutil.which(path)
    return shutil.which(name)


def _run(name: str, args: Sequence[str], tool: str | None) -> str:
    executable = find_tool(name, tool)
    if executable is None:
        raise ToolMissing(f"{name} not found on PATH; install it: {_INSTALL[name]}")
    try:
        result = subprocess.run(
            [executable, *args],
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise CheckFailed(f"{name} {' '.join(args)} did not finish within {TIMEOUT_S} s") from exc
    output = (result.stdout + result.stderr).strip()
    if result.returncode != 0:
        raise CheckFailed(f"{name} {' '.join(args)} failed:\n{output}")
    return output


def promtool_check_rules(files: Sequence[Path], tool: str | None = None) -> str:
    """``promtool check rules FILES``; raises :class:`CheckFailed` with promtool's output."""
    return _run("promtool", ["check", "rules", *map(str, files)], tool)


def promtool_test_rules(test_files: Sequence[Path], tool: str | None = None) -> str:
    """``promtool test rules FILES`` (rule files are resolved relative to each test file)."""
    return _run("promtool", ["test", "rules", *map(str, test_files)], tool)


def amtool_check_config(file: Path, tool: str | None = None) -> str:
    """``amtool check-config FILE``; raises :class:`CheckFailed` with amtool's output."""
    return _run("amtool", ["check-config", str(file)], tool)
