"""Alarms read from a lock's ALARM record keep its index and the lock's own time, and when the lock acknowledged it.

Revision ID: 0015
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("alarms") as batch:
        batch.add_column(sa.Column("lock_index", sa.Integer))
        batch.add_column(sa.Column("lock_at", sa.String(40)))
        batch.add_column(sa.Column("lock_acknowledged_at", sa.String(40)))
        batch.create_index("ix_alarms_lock_index", ["lock_id", "lock_index"])


def downgrade() -> None:
    with op.batch_alter_table("alarms") as batch:
        batch.drop_index("ix_alarms_lock_index")
        batch.drop_column("lock_acknowledged_at")
        batch.drop_column("lock_at")
        batch.drop_column("lock_index")
