"""Exceptions of the sidecar package; :class:`SidecarError` is their root.

Only programming errors reach the caller as exceptions (a malformed event, logging
after ``close()``). Kafka being slow or gone never raises: it shows in
:meth:`~monitor.sidecar.PredictionLogger.stats` and in ``ready``.
"""

from __future__ import annotations

__all__ = ["InvalidEvent", "KafkaUnreachable", "LoggerClosed", "SidecarError"]


class SidecarError(Exception):
    """Root of every exception raised by :mod:`monitor.sidecar`."""


class InvalidEvent(SidecarError, ValueError):
    """An event that breaks the contract in ``schemas/``.

    Attributes
    ----------
    kind
        ``"prediction"`` or ``"label"``.
    reason
        One of :data:`monitor.events.INVALID_REASONS` (``schema``, ``bad_timestamp``,
        ``too_large``, ...), the same vocabulary the daemon uses for dead letters.
    detail
        What exactly is wrong, naming the field.
    """

    def __init__(self, kind: str, reason: str, detail: str) -> None:
        super().__init__(f"invalid {kind} event ({reason}): {detail}")
        self.kind = kind
        self.reason = reason
        self.detail = detail


class LoggerClosed(SidecarError, RuntimeError):
    """An event was logged after :meth:`~monitor.sidecar.PredictionLogger.close`."""


class KafkaUnreachable(SidecarError, ConnectionError):
    """Kafka could not be reached; recorded in ``stats().last_error``, never raised to callers."""
