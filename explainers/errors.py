"""Exceptions of the explainers package: one root, :class:`ExplainError`."""

from __future__ import annotations

__all__ = ["AdditivityError", "ExplainError", "ModelLoadError", "ShapUnavailable"]


class ExplainError(Exception):
    """Root of every error the explainers package raises."""


class ModelLoadError(ExplainError):
    """A model file cannot be used: missing, unsafe, corrupt or not the pinned file.

    The daemon logs it and keeps running without explanations for that model.
    """

    def __init__(self, model: str, path: object, reason: str) -> None:
        super().__init__(f"model {model!r}: cannot load {path}: {reason}")
        self.model = model
        self.path = path
        self.reason = reason

    def __reduce__(self) -> tuple:
        # Raised in worker processes too: rebuild from the fields, not the message.
        return (type(self), (self.model, self.path, self.reason))


class ShapUnavailable(ExplainError):
    """The optional ``shap`` package (or a model library) is not installed."""


class AdditivityError(ExplainError):
    """Base value plus the sum of SHAP values does not reproduce the model output."""
