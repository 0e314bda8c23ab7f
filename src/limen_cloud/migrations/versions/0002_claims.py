"""Locks are recorded from their first message, unowned until claimed with the code the lock showed.

Revision ID: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("locks") as batch:
        batch.alter_column("owner_id", existing_type=sa.Integer, nullable=True)
        batch.add_column(sa.Column("claim_hash", sa.String(64)))


def downgrade() -> None:
    with op.batch_alter_table("locks") as batch:
        batch.drop_column("claim_hash")
        batch.alter_column("owner_id", existing_type=sa.Integer, nullable=False)
