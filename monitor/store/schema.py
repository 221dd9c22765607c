"""Tables of the driftd store (SQLAlchemy 2 declarative models).

SQLite by default, PostgreSQL in production; the schema is created and upgraded
by the Alembic migrations in ``monitor/store/migrations`` (never by ``create_all``
in production). Times are stored as UTC ``DateTime(timezone=True)``. JSON columns
hold small maps (per-feature values, metric dicts); arrays that can grow are
bounded by the configuration caps.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from monitor.store.types import UTCDateTime

__all__ = [
    "Base",
    "AttributionSumRow",
    "BaselineRow",
    "CheckpointRow",
    "ConceptAlarmRow",
    "RetrainRequestRow",
    "ExplanationRow",
    "ExplanationTaskRow",
    "FeatureResultRow",
    "IncidentNoteRow",
    "IncidentRow",
    "WindowResultRow",
]


class Base(DeclarativeBase):
    # Times are aware UTC datetimes on every database (see UTCDateTime).
    type_annotation_map = {datetime: UTCDateTime(), dict: JSON}


class BaselineRow(Base):
    """A versioned reference profile; never rebuilt silently (unique per model version)."""

    __tablename__ = "baselines"
    __table_args__ = (UniqueConstraint("model", "version", name="uq_baseline_model_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model: Mapped[str] = mapped_column(String(128))
    version: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    sha256: Mapped[str] = mapped_column(String(64))
    profile: Mapped[dict] = mapped_column(JSON)


class WindowResultRow(Base):
    """One closed window of one (model, version, segment)."""

    __tablename__ = "window_results"
    __table_args__ = (
        UniqueConstraint("model", "version", "segment", "window_start", name="uq_window"),
        Index("ix_window_model_time", "model", "window_start"),
        Index("ix_window_time", "window_start"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model: Mapped[str] = mapped_column(String(128))
    version: Mapped[str] = mapped_column(String(64))
    segment: Mapped[str] = mapped_column(String(600), default="")
    window_start: Mapped[datetime]
    window_end: Mapped[datetime]
    closed_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    n_events: Mapped[int] = mapped_column(Integer)
    n_labels: Mapped[int] = mapped_column(Integer, default=0)
    drift_share: Mapped[float] = mapped_column(Float)
    drift_score: Mapped[float] = mapped_column(Float)
    model_drifted: Mapped[bool] = mapped_column(Boolean)
    # {metric: [value, lower, upper, error]} (error: binning error bound, null when exact)
    performance: Mapped[dict] = mapped_column(JSON, default=dict)
    baseline_performance: Mapped[dict] = mapped_column(JSON, default=dict)
    estimated_performance: Mapped[dict] = mapped_column(JSON, default=dict)
    # {statistic: value}; "reliability_curve": {"window": [[p, freq, n]...], "baseline": [...]}
    calibration: Mapped[dict] = mapped_column(JSON, default=dict)
    baseline_calibration: Mapped[dict] = mapped_column(JSON, default=dict)
    # AttributionSummary as a dict, or {} before explanations exist
    attribution: Mapped[dict] = mapped_column(JSON, default=dict)
    # Input features flagged in this window (prediction and label excluded). Revision 0002:
    # lets the app sort and colour thousands of windows without reading feature rows.
    n_drifted_features: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Revision 0004: events behind the watermark counted while this window was the key's
    # newest open one (they belong to windows already closed); the app's late-heavy streams.
    n_late: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    features: Mapped[list[FeatureResultRow]] = relationship(
        back_populates="window", cascade="all, delete-orphan", passive_deletes=True
    )


class FeatureResultRow(Base):
    """The drift verdict of one feature (or ``__prediction__`` / ``__label__``) in one window."""

    __tablename__ = "feature_results"
    __table_args__ = (
        Index("ix_feature_window", "window_id"),
        Index("ix_feature_model_feature", "model", "feature", "window_start"),
        # Revision 0002: "every feature of a model over a time range" (the app's heatmap).
        Index("ix_feature_model_time", "model", "window_start"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    window_id: Mapped[int] = mapped_column(ForeignKey("window_results.id", ondelete="CASCADE"))
    # Denormalised so the app's feature x time queries need no join.
    model: Mapped[str] = mapped_column(String(128))
    window_start: Mapped[datetime]
    feature: Mapped[str] = mapped_column(String(256))
    kind: Mapped[str] = mapped_column(String(16))
    method: Mapped[str] = mapped_column(String(32))
    score: Mapped[float | None] = mapped_column(Float, nullable=True)
    p_value: Mapped[float | None] = mapped_column(Float, nullable=True)
    threshold: Mapped[float] = mapped_column(Float)
    drifted: Mapped[bool] = mapped_column(Boolean)
    missing_ratio: Mapped[float | None] = mapped_column(Float, nullable=True)
    unseen_ratio: Mapped[float | None] = mapped_column(Float, nullable=True)
    # Window counts per baseline bin (same bins as the baseline profile's counts).
    counts: Mapped[list | None] = mapped_column(JSON, nullable=True)

    window: Mapped[WindowResultRow] = relationship(back_populates="features")


class ExplanationRow(Base):
    """SHAP values of one sampled prediction."""

    __tablename__ = "explanations"
    __table_args__ = (
        Index("ix_expl_prediction", "prediction_id"),
        Index("ix_expl_model_window", "model", "window_start"),
        # Revision 0002: retention deletes by time across all models.
        Index("ix_expl_time", "window_start"),
        # Revision 0003: a write retried after a lost connection stores the row once.
        Index("uq_expl_prediction_created", "prediction_id", "created_at", unique=True),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    prediction_id: Mapped[str] = mapped_column(String(128))
    model: Mapped[str] = mapped_column(String(128))
    version: Mapped[str] = mapped_column(String(64))
    segment: Mapped[str] = mapped_column(String(600), default="")
    event_time: Mapped[datetime]
    window_start: Mapped[datetime]
    features: Mapped[dict] = mapped_column(JSON)
    prediction: Mapped[float] = mapped_column(Float)
    base_value: Mapped[float] = mapped_column(Float)
    shap_values: Mapped[dict] = mapped_column(JSON)
    explainer: Mapped[str] = mapped_column(String(32))
    background_hash: Mapped[str] = mapped_column(String(64), default="")
    duration_ms: Mapped[float] = mapped_column(Float)
    reason: Mapped[str] = mapped_column(String(32), default="base_rate")
    created_at: Mapped[datetime]


class ExplanationTaskRow(Base):
    """An explanation task written by a ``driftd explain-worker`` (revision 0005).

    Inserted in the transaction that writes the task's explanations and adds its
    |SHAP| sums, so a task redelivered by Kafka finds its row and writes nothing again.
    """

    __tablename__ = "explanation_tasks"
    __table_args__ = (Index("ix_expl_task_created", "created_at"),)

    task_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    model: Mapped[str] = mapped_column(String(128))
    rows: Mapped[int] = mapped_column(Integer)
    # host:pid of the worker that wrote it
    worker: Mapped[str] = mapped_column(String(128))
    # when the daemon published the task (the created_at of its explanations)
    created_at: Mapped[datetime]
    stored_at: Mapped[datetime]


class AttributionSumRow(Base):
    """Sum of |SHAP| of one feature over a window's explanations (revision 0005).

    explain-workers add to it once per task (see ``ExplanationTaskRow``); the daemon
    reads the mean (sum / n) for attribution drift.
    """

    __tablename__ = "attribution_sums"
    __table_args__ = (
        UniqueConstraint("model", "version", "segment", "window_start", "feature", name="uq_attr_sum_window_feature"),
        Index("ix_attr_sum_time", "window_start"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model: Mapped[str] = mapped_column(String(128))
    version: Mapped[str] = mapped_column(String(64))
    segment: Mapped[str] = mapped_column(String(600), default="")
    window_start: Mapped[datetime]
    feature: Mapped[str] = mapped_column(String(256))
    abs_shap_sum: Mapped[float] = mapped_column(Float)
    n: Mapped[int] = mapped_column(Integer)


class IncidentRow(Base):
    """An alert from Alertmanager, recorded idempotently by fingerprint."""

    __tablename__ = "incidents"
    __table_args__ = (
        UniqueConstraint("fingerprint", "starts_at", name="uq_incident_fingerprint_start"),
        Index("ix_incident_status", "status"),
        Index("ix_incident_model", "model", "starts_at"),
        # Revision 0002: retention deletes resolved incidents by end time.
        Index("ix_incident_status_end", "status", "ends_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    alertname: Mapped[str] = mapped_column(String(128))
    # firing | resolved | acknowledged
    status: Mapped[str] = mapped_column(String(16))
    severity: Mapped[str] = mapped_column(String(16), default="")
    model: Mapped[str] = mapped_column(String(128), default="")
    version: Mapped[str] = mapped_column(String(64), default="")
    segment: Mapped[str] = mapped_column(String(600), default="")
    feature: Mapped[str] = mapped_column(String(256), default="")
    labels: Mapped[dict] = mapped_column(JSON, default=dict)
    annotations: Mapped[dict] = mapped_column(JSON, default=dict)
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    updated_at: Mapped[datetime]

    notes: Mapped[list[IncidentNoteRow]] = relationship(
        back_populates="incident", cascade="all, delete-orphan", passive_deletes=True,
        order_by="IncidentNoteRow.created_at",
    )


class IncidentNoteRow(Base):
    """An acknowledgement, resolution or note on an incident, with author and time."""

    __tablename__ = "incident_notes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(
        ForeignKey("incidents.id", ondelete="CASCADE"), index=True
    )
    author: Mapped[str] = mapped_column(String(128))
    # note | acknowledge | resolve
    action: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime]

    incident: Mapped[IncidentRow] = relationship(back_populates="notes")


class CheckpointRow(Base):
    """Open-window state, detector states and consumer offsets, saved in one transaction."""

    __tablename__ = "checkpoints"

    name: Mapped[str] = mapped_column(String(256), primary_key=True)
    # {"topic:partition": next_offset}
    offsets: Mapped[dict] = mapped_column(JSON)
    state: Mapped[bytes] = mapped_column(LargeBinary)
    updated_at: Mapped[datetime]


class ConceptAlarmRow(Base):
    """A sequential detector's alarm on the error stream of one (model, version, segment).

    Revision 0006. ``stream_index`` is the 1-based position of the alarming error in
    the key's error stream; a replay stores an alarm once (unique with its event time).
    """

    __tablename__ = "concept_alarms"
    __table_args__ = (
        UniqueConstraint(
            "model", "version", "segment", "detector", "stream_index", "event_time", name="uq_concept_alarm"
        ),
        Index("ix_alarm_model_time", "model", "event_time"),
        Index("ix_alarm_time", "event_time"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model: Mapped[str] = mapped_column(String(128))
    version: Mapped[str] = mapped_column(String(64))
    segment: Mapped[str] = mapped_column(String(600), default="")
    detector: Mapped[str] = mapped_column(String(32))
    event_time: Mapped[datetime]
    stream_index: Mapped[int] = mapped_column(BigInteger)
    statistic: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[datetime]


class RetrainRequestRow(Base):
    """A retrain request (revision 0007): at most one per model within the cooldown.

    The row is inserted before the request is published (``published_at`` is set once
    the broker acknowledged it), so a daemon that dies in between leaves a row any
    daemon publishes again; ``claimed_at`` keeps two daemons from publishing it at once.
    ``status``: requested | acknowledged | rejected (``driftd retrain ack|reject``).
    """

    __tablename__ = "retrain_requests"
    __table_args__ = (
        UniqueConstraint("request_id", name="uq_retrain_request_id"),
        Index("ix_retrain_model_time", "model", "created_at"),
        Index("ix_retrain_unpublished", "published_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[str] = mapped_column(String(36))
    model: Mapped[str] = mapped_column(String(128))
    version: Mapped[str] = mapped_column(String(64))
    segment: Mapped[str] = mapped_column(String(600), default="")
    reason: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime]
    payload: Mapped[dict] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="requested")
    note: Mapped[str] = mapped_column(Text, default="")
    acted_at: Mapped[datetime | None] = mapped_column(nullable=True)
    claimed_at: Mapped[datetime | None] = mapped_column(nullable=True)
    published_at: Mapped[datetime | None] = mapped_column(nullable=True)
