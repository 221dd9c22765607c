"""Retrain requests are stored: table retrain_requests.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04

One row per retrain request driftd emitted (model, version, segment, reason, the
event's JSON payload, status requested|acknowledged|rejected with a note). The row
is written before the event is published, so the cooldown holds across restarts
and daemons and an unpublished request is published again after a crash.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "retrain_requests",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("request_id", sa.String(36), nullable=False),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("segment", sa.String(600), nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("acted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("request_id", name="uq_retrain_request_id"),
    )
    op.create_index("ix_retrain_model_time", "retrain_requests", ["model", "created_at"])
    op.create_index("ix_retrain_unpublished", "retrain_requests", ["published_at"])


def downgrade() -> None:
    op.drop_index("ix_retrain_unpublished", table_name="retrain_requests")
    op.drop_index("ix_retrain_model_time", table_name="retrain_requests")
    op.drop_table("retrain_requests")
