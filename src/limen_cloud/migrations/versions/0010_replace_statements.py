"""The owner-signed statement that authorised a replacement mark, kept with the archived chain.

Revision ID: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("archived_chains") as batch:
        batch.add_column(sa.Column("statement", sa.Text))
        batch.add_column(sa.Column("signed_by", sa.String(64)))
        batch.add_column(sa.Column("statement_counter", sa.BigInteger))


def downgrade() -> None:
    with op.batch_alter_table("archived_chains") as batch:
        batch.drop_column("statement_counter")
        batch.drop_column("signed_by")
        batch.drop_column("statement")
