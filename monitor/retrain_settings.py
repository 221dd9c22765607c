"""The ``retrain`` section of the configuration (kept apart to keep monitor/config.py short)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["RetrainSettings"]


class RetrainSettings(BaseModel):
    """Retrain requests: one versioned event per model and cooldown when drift persists or
    performance drops (docs/retraining.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = False
    # consecutive: the model-level decision in this many consecutive tested windows of a key;
    # decision: one window's model-level decision (corrected p-values and drift share) suffices.
    drift_trigger: Literal["consecutive", "decision", "off"] = "consecutive"
    consecutive_windows: int = Field(3, ge=1, le=1000)
    # A labelled window beyond alerts.performance_tolerance (the DriftdPerformanceDrop rule).
    performance_trigger: bool = True
    min_labels: int = Field(30, ge=1)
    # At most one request per model within this many seconds (wall clock), across restarts and daemons.
    cooldown_seconds: int = Field(86_400, ge=1)
    topic: str = Field("driftd.retrain-requests", min_length=1, max_length=249, pattern=r"^[A-Za-z0-9._\-]+$")
    webhook_url: str | None = Field(None, pattern=r"^https?://")
    webhook_timeout_seconds: float = Field(5.0, gt=0, le=60)
    publish_timeout_seconds: float = Field(10.0, gt=0, le=300)
    # A request not yet on the topic is published again by any daemon after this long.
    republish_after_seconds: float = Field(60.0, gt=0, le=86_400)
