"""The alerts package's exceptions: one root, a few specific kinds."""

from __future__ import annotations

__all__ = ["AlertsError", "CheckFailed", "ReloadFailed", "ToolMissing", "WebhookError"]


class AlertsError(Exception):
    """Root of every error raised by :mod:`alerts`."""


class ToolMissing(AlertsError):
    """``promtool`` or ``amtool`` is needed but not installed."""


class CheckFailed(AlertsError):
    """``promtool``/``amtool`` rejected a generated file; the message holds its output."""


class ReloadFailed(AlertsError):
    """Prometheus did not accept ``POST /-/reload`` (``rejected``) or could not be reached."""

    def __init__(self, message: str, rejected: bool = False) -> None:
        super().__init__(message)
        self.rejected = rejected


class WebhookError(AlertsError):
    """An Alertmanager webhook body that cannot be recorded; the message says why."""
