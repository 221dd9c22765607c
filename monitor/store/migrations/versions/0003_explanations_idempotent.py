"""Explanations are stored once: unique (prediction_id, created_at).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23

The store writer retries a batch when the connection drops; if the first attempt
had in fact committed, the retry used to insert the same explanations again. The
writer now fixes ``created_at`` when a row is queued, and inserts skip rows whose
(prediction_id, created_at) is already stored. Duplicates already present are
removed (the oldest row of each pair is kept) before the index is built.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    explanations = sa.table(
        "explanations", sa.column("id"), sa.column("prediction_id"), sa.column("created_at")
    )
    keep = (
        sa.select(sa.func.min(explanations.c.id))
        .group_by(explanations.c.prediction_id, explanations.c.created_at)
        .scalar_subquery()
    )
    op.execute(explanations.delete().where(explanations.c.id.not_in(keep)))
    op.create_index(
        "uq_expl_prediction_created", "explanations", ["prediction_id", "created_at"], unique=True
    )


def downgrade() -> None:
    op.drop_index("uq_expl_prediction_created", table_name="explanations")
