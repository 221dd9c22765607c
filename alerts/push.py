"""Put rule files into a Prometheus rules directory and reload Prometheus.

The order is what keeps a bad rule from ever reaching Prometheus:

1. write each new file next to its destination under a hidden temporary name
   (same directory, so the final rename is atomic and Prometheus's ``*.yml`` glob
   never sees a half-written file);
2. ``promtool check rules`` the temporary files when promtool is available; on
   failure remove them and raise, so the old rules stay in place;
3. ``os.replace`` each temporary file onto its destination (atomic per file);
4. ``POST /-/reload`` (Prometheus must run with ``--web.enable-lifecycle``). When
   Prometheus answers with an error the previous files are put back, so disk and
   memory agree again; when it cannot be reached the new files stay (they are
   valid, and Prometheus loads them when it starts).
"""

from __future__ import annotations

import contextlib
import os
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from alerts.errors import AlertsError, ReloadFailed, ToolMissing
from alerts.tools import find_tool, promtool_check_rules

__all__ = ["PushResult", "loaded_groups", "push_rule_files", "reload_prometheus"]

RELOAD_TIMEOUT_S = 30.0


@dataclass
class PushResult:
    """What :func:`push_rule_files` did."""

    written: list[Path] = field(default_factory=list)
    checked: bool = False
    reloaded: bool = False
    groups: list[str] = field(default_factory=list)


def _write_synced(path: Path, text: str) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def _fsync_dir(directory: Path) -> None:
    # Makes the renames durable; not every platform can open a directory.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def push_rule_files(
    files: Mapping[str, str],
    rules_dir: Path,
    prometheus_url: str | None = None,
    *,
    promtool: str | None = None,
    require_check: bool = False,
) -> PushResult:
    """Write ``files`` (name -> text) into ``rules_dir`` atomically, check, then reload.

    Parameters
    ----------
    files
        Rule files to install, by file name (no directories).
    rules_dir
        The directory Prometheus loads rules from; it must exist.
    prometheus_url
        Base URL of Prometheus to reload; no reload when None.
    promtool
        Path of promtool; found on PATH when None.
    require_check
        Fail with :class:`ToolMissing` instead of skipping the check when promtool
        is not installed.

    Raises
    ------
    CheckFailed
        promtool rejected the new rules; nothing in ``rules_dir`` changed.
    ReloadFailed
        Prometheus rejected the reload (old files restored) or could not be reached.
    """
    rules_dir = Path(rules_dir)
    if not rules_dir.is_dir():
        raise AlertsError(
            f"rules directory {rules_dir} does not exist (create it, or fix --rules-dir)"
        )
    for name in files:
        if Path(name).name != name or name.startswith("."):
            raise AlertsError(f"rule file name {name!r} must be a plain file name")
    result = PushResult()
    staged = {name: rules_dir / f".{name}.{os.getpid()}.tmp" for name in files}
    previous: dict[Path, bytes | None] = {}
    try:
        for name, text in files.items():
            _write_synced(staged[name], text)
        if find_tool("promtool", promtool) is not None:
            promtool_check_rules(list(staged.values()), promtool)
            result.checked = True
        elif require_check:
            raise ToolMissing("promtool not found on PATH and a check is required")
        for name, temp in staged.items():
            target = rules_dir / name
            previous[target] = target.read_bytes() if target.exists() else None
            os.replace(temp, target)
            result.written.append(target)
        _fsync_dir(rules_dir)
    finally:
        for temp in staged.values():
            temp.unlink(missing_ok=True)
    if prometheus_url is None:
        return result
    try:
        reload_prometheus(prometheus_url)
    except ReloadFailed as exc:
        if exc.rejected:
            _restore(previous, rules_dir)
        raise
    result.reloaded = True
    result.groups = loaded_groups(prometheus_url)
    return result


def _restore(previous: Mapping[Path, bytes | None], rules_dir: Path) -> None:
    for target, content in previous.items():
        if content is None:
            target.unlink(missing_ok=True)
            continue
        temp = target.with_name(f".{target.name}.{os.getpid()}.restore")
        temp.write_bytes(content)
        os.replace(temp, target)
    _fsync_dir(rules_dir)


def reload_prometheus(prometheus_url: str, timeout: float = RELOAD_TIMEOUT_S) -> None:
    """``POST /-/reload``; raises :class:`ReloadFailed` (``.rejected`` when Prometheus said no)."""
    url = f"{prometheus_url.rstrip('/')}/-/reload"
    request = urllib.request.Request(url, method="POST", data=b"")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
    except urllib.error.HTTPError as exc:
        body = exc.read().decode(errors="replace").strip()
        hint = " (start Prometheus with --web.enable-lifecycle)" if exc.code in (403, 405) else ""
        raise ReloadFailed(
            f"Prometheus rejected the reload at {url}: HTTP {exc.code}: {body}{hint}", rejected=True
        ) from exc
    except (urllib.error.URLError, OSError) as exc:
        raise ReloadFailed(f"cannot reach Prometheus at {url}: {exc}") from exc


def loaded_groups(prometheus_url: str, timeout: float = 10.0) -> list[str]:
    """Names of the rule groups Prometheus has loaded (``GET /api/v1/rules``)."""
    url = f"{prometheus_url.rstrip('/')}/api/v1/rules"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            body = orjson.loads(response.read())
    except (urllib.error.URLError, OSError, orjson.JSONDecodeError) as exc:
        raise ReloadFailed(f"cannot list the rules Prometheus loaded at {url}: {exc}") from exc
    return [group["name"] for group in body.get("data", {}).get("groups", [])]
