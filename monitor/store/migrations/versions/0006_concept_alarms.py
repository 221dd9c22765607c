"""Sequential alarms are stored: table concept_alarms.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03

ADWIN, Page–Hinkley and DDM alarms on a model's error stream used to exist only as
a counter; each is now a row (model, version, segment, detector, event time,
position in the error stream, statistic), so the app and the alert history can
show when the error stream changed.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "concept_alarms",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("segment", sa.String(600), nullable=False),
        sa.Column("detector", sa.String(32), nullable=False),
        sa.Column("event_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stream_index", sa.BigInteger(), nullable=False),
        sa.Column("statistic", sa.Float(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint(
            "model", "version", "segment", "detector", "stream_index", "event_time", name="uq_concept_alarm"
        ),
    )
    op.create_index("ix_alarm_model_time", "concept_alarms", ["model", "event_time"])
    op.create_index("ix_alarm_time", "concept_alarms", ["event_time"])


def downgrade() -> None:
    op.drop_index("ix_alarm_time", table_name="concept_alarms")
    op.drop_index("ix_alarm_model_time", table_name="concept_alarms")
    op.drop_table("concept_alarms")
