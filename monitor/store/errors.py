"""Exceptions of the store: one root, :class:`StoreError`."""

from __future__ import annotations

__all__ = ["BaselineExists", "StoreError", "StoreUnavailable"]


class StoreError(Exception):
    """Root of every error the store raises."""


class StoreUnavailable(StoreError):
    """The database cannot be reached (connection refused, lost, timed out, locked).

    Transient by nature: the operation may succeed when retried later.
    """


class BaselineExists(StoreError):
    """A different baseline is already stored for this model version (never overwritten)."""

    def __init__(self, model: str, version: str, stored_sha256: str, new_sha256: str) -> None:
        super().__init__(
            f"a different baseline for model {model!r} version {version!r} is already stored "
            f"(stored sha256 {stored_sha256[:12]}…, new {new_sha256[:12]}…); baselines are never "
            "overwritten: register the new profile under a new model version"
        )
        self.model = model
        self.version = version
        self.stored_sha256 = stored_sha256
        self.new_sha256 = new_sha256
