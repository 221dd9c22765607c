"""Initial tables: baselines, window and feature results, explanations, incidents, checkpoints.

Revision ID: 0001
Revises:
Create Date: 2026-11-23

Migrations are frozen history: they spell out plain SQLAlchemy types instead of
importing the models, so later edits to ``schema.py`` never rewrite the past.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _time(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "baselines",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        _time("created_at"),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("profile", sa.JSON(), nullable=False),
        sa.UniqueConstraint("model", "version", name="uq_baseline_model_version"),
    )
    op.create_table(
        "checkpoints",
        sa.Column("name", sa.String(256), primary_key=True),
        sa.Column("offsets", sa.JSON(), nullable=False),
        sa.Column("state", sa.LargeBinary(), nullable=False),
        _time("updated_at"),
    )
    op.create_table(
        "explanations",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("prediction_id", sa.String(128), nullable=False),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("segment", sa.String(600), nullable=False),
        _time("event_time"),
        _time("window_start"),
        sa.Column("features", sa.JSON(), nullable=False),
        sa.Column("prediction", sa.Float(), nullable=False),
        sa.Column("base_value", sa.Float(), nullable=False),
        sa.Column("shap_values", sa.JSON(), nullable=False),
        sa.Column("explainer", sa.String(32), nullable=False),
        sa.Column("background_hash", sa.String(64), nullable=False),
        sa.Column("duration_ms", sa.Float(), nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        _time("created_at"),
    )
    op.create_index("ix_expl_model_window", "explanations", ["model", "window_start"])
    op.create_index("ix_expl_prediction", "explanations", ["prediction_id"])
    op.create_table(
        "incidents",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("alertname", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("segment", sa.String(600), nullable=False),
        sa.Column("feature", sa.String(256), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("annotations", sa.JSON(), nullable=False),
        _time("starts_at"),
        _time("ends_at", nullable=True),
        _time("updated_at"),
        sa.UniqueConstraint("fingerprint", "starts_at", name="uq_incident_fingerprint_start"),
    )
    op.create_index("ix_incident_model", "incidents", ["model", "starts_at"])
    op.create_index("ix_incident_status", "incidents", ["status"])
    op.create_table(
        "window_results",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("segment", sa.String(600), nullable=False),
        _time("window_start"),
        _time("window_end"),
        _time("closed_at"),
        _time("updated_at"),
        sa.Column("n_events", sa.Integer(), nullable=False),
        sa.Column("n_labels", sa.Integer(), nullable=False),
        sa.Column("drift_share", sa.Float(), nullable=False),
        sa.Column("drift_score", sa.Float(), nullable=False),
        sa.Column("model_drifted", sa.Boolean(), nullable=False),
        sa.Column("performance", sa.JSON(), nullable=False),
        sa.Column("baseline_performance", sa.JSON(), nullable=False),
        sa.Column("estimated_performance", sa.JSON(), nullable=False),
        sa.Column("calibration", sa.JSON(), nullable=False),
        sa.Column("baseline_calibration", sa.JSON(), nullable=False),
        sa.Column("attribution", sa.JSON(), nullable=False),
        sa.UniqueConstraint("model", "version", "segment", "window_start", name="uq_window"),
    )
    op.create_index("ix_window_model_time", "window_results", ["model", "window_start"])
    op.create_index("ix_window_time", "window_results", ["window_start"])
    op.create_table(
        "feature_results",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "window_id",
            sa.Integer(),
            sa.ForeignKey("window_results.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("model", sa.String(128), nullable=False),
        _time("window_start"),
        sa.Column("feature", sa.String(256), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("method", sa.String(32), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("p_value", sa.Float(), nullable=True),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("drifted", sa.Boolean(), nullable=False),
        sa.Column("missing_ratio", sa.Float(), nullable=True),
        sa.Column("unseen_ratio", sa.Float(), nullable=True),
        sa.Column("counts", sa.JSON(), nullable=True),
    )
    op.create_index(
        "ix_feature_model_feature", "feature_results", ["model", "feature", "window_start"]
    )
    op.create_index("ix_feature_window", "feature_results", ["window_id"])
    op.create_table(
        "incident_notes",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "incident_id",
            sa.Integer(),
            sa.ForeignKey("incidents.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("author", sa.String(128), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        _time("created_at"),
    )
    op.create_index("ix_incident_notes_incident_id", "incident_notes", ["incident_id"])


def downgrade() -> None:
    for table in (
        "incident_notes",
        "feature_results",
        "window_results",
        "incidents",
        "explanations",
        "checkpoints",
        "baselines",
    ):
        op.drop_table(table)
