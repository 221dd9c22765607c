"""Drifted-feature count per window (backfilled) and indexes for time-range reads and retention.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23

Sized for 30 days of 5-minute windows x 10 models x 50 features (about 86k windows
and 4.3M feature rows):

* ``window_results.n_drifted_features``: the app's timeline sorts and colours
  windows by how many input features drifted; without the column that is a
  count over millions of feature rows. Existing windows are backfilled from
  their feature rows.
* ``ix_feature_model_time (model, window_start)``: all features of a model over a
  time range; ``ix_feature_model_feature`` only serves one named feature.
* ``ix_expl_time (window_start)`` and ``ix_incident_status_end (status, ends_at)``:
  retention deletes by time across all models, which the model-first indexes of
  0001 cannot serve without a full scan.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# Pseudo-features that are not inputs (monitor.results.PREDICTION / LABEL at the time).
_NOT_INPUTS = ("__prediction__", "__label__")


def upgrade() -> None:
    with op.batch_alter_table("window_results") as batch:
        batch.add_column(
            sa.Column("n_drifted_features", sa.Integer(), nullable=False, server_default="0")
        )
    windows = sa.table("window_results", sa.column("id"), sa.column("n_drifted_features"))
    features = sa.table(
        "feature_results",
        sa.column("window_id"),
        sa.column("feature"),
        sa.column("drifted", sa.Boolean()),
    )
    drifted = (
        sa.select(sa.func.count())
        .where(
            features.c.window_id == windows.c.id,
            features.c.drifted == sa.true(),
            features.c.feature.not_in(_NOT_INPUTS),
        )
        .scalar_subquery()
    )
    op.execute(windows.update().values(n_drifted_features=drifted))
    op.create_index("ix_feature_model_time", "feature_results", ["model", "window_start"])
    op.create_index("ix_expl_time", "explanations", ["window_start"])
    op.create_index("ix_incident_status_end", "incidents", ["status", "ends_at"])


def downgrade() -> None:
    op.drop_index("ix_incident_status_end", table_name="incidents")
    op.drop_index("ix_expl_time", table_name="explanations")
    op.drop_index("ix_feature_model_time", table_name="feature_results")
    with op.batch_alter_table("window_results") as batch:
        batch.drop_column("n_drifted_features")
