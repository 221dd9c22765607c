"""Explanation tasks and |SHAP| sums per window, written by explain-workers.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24

``driftd explain-worker`` processes (``explain.mode: kafka``) consume tasks from
Kafka at least once. Each task is written in one transaction: its row in
``explanation_tasks`` (primary key: the task id, so a redelivered task finds it and
writes nothing), its explanations, and its |SHAP| sums added to
``attribution_sums`` (one row per model, version, segment, window and feature),
which the daemon reads for attribution drift.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "explanation_tasks",
        sa.Column("task_id", sa.String(64), primary_key=True),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("worker", sa.String(128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stored_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_expl_task_created", "explanation_tasks", ["created_at"])
    op.create_table(
        "attribution_sums",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("segment", sa.String(600), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("feature", sa.String(256), nullable=False),
        sa.Column("abs_shap_sum", sa.Float(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.UniqueConstraint("model", "version", "segment", "window_start", "feature",
                            name="uq_attr_sum_window_feature"),
    )
    op.create_index("ix_attr_sum_time", "attribution_sums", ["window_start"])


def downgrade() -> None:
    op.drop_index("ix_attr_sum_time", table_name="attribution_sums")
    op.drop_table("attribution_sums")
    op.drop_index("ix_expl_task_created", table_name="explanation_tasks")
    op.drop_table("explanation_tasks")
