"""Alarms read from a lock's records while its chain is in conflict: flagged unverified, keyed by record hash.

Revision ID: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("alarms") as batch:
        batch.add_column(sa.Column("unverified", sa.Boolean, nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("record_hash", sa.String(64)))
        batch.create_index("ix_alarms_lock_record_hash", ["lock_id", "record_hash"])


def downgrade() -> None:
    with op.batch_alter_table("alarms") as batch:
        batch.drop_index("ix_alarms_lock_record_hash")
        batch.drop_column("record_hash")
        batch.drop_column("unverified")
