"""A lock replaced under the same id: the owner's mark, and the old chain archived (still verifiable).

Revision ID: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("locks") as batch:
        batch.add_column(sa.Column("replaced_at", sa.DateTime))
    op.create_table(
        "archived_chains",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("lock_id", sa.String(64), sa.ForeignKey("locks.lock_id", ondelete="CASCADE"), nullable=False,
                  index=True),
        sa.Column("replaced_at", sa.DateTime, nullable=False),
        sa.Column("marked_by", sa.Integer, sa.ForeignKey("owners.id", ondelete="SET NULL")),
        sa.Column("head_count", sa.Integer, nullable=False),
        sa.Column("head_hash", sa.String(64)),
        sa.Column("reported_count", sa.Integer, nullable=False),
        sa.Column("audit_keys", sa.Text),
    )
    op.create_table(
        "archived_records",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("chain_id", sa.Integer, sa.ForeignKey("archived_chains.id", ondelete="CASCADE"), nullable=False,
                  index=True),
        sa.Column("lock_id", sa.String(64), sa.ForeignKey("locks.lock_id", ondelete="CASCADE"), nullable=False,
                  index=True),
        sa.Column("idx", sa.Integer, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("at", sa.String(40), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.UniqueConstraint("chain_id", "idx"),
    )


def downgrade() -> None:
    op.drop_table("archived_records")
    op.drop_table("archived_chains")
    with op.batch_alter_table("locks") as batch:
        batch.drop_column("replaced_at")
