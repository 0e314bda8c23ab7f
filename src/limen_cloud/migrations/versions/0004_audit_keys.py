"""The audit public keys each lock announced (pinned at first sight), to check its signed checkpoints.

Revision ID: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("locks") as batch:
        batch.add_column(sa.Column("audit_keys", sa.Text))


def downgrade() -> None:
    with op.batch_alter_table("locks") as batch:
        batch.drop_column("audit_keys")
