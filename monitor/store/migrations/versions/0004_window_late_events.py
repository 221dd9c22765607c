"""Late events per window: ``window_results.n_late``.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03

Events that arrive behind the watermark are excluded from their window and
counted. The count is stored with the next window of the same (model, version,
segment) that closes, so that the investigation app can show late-heavy streams
from the store alone. Existing windows get 0 (their late events were counted only
in ``driftd_late_events_total``).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("window_results") as batch:
        batch.add_column(sa.Column("n_late", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("window_results") as batch:
        batch.drop_column("n_late")
