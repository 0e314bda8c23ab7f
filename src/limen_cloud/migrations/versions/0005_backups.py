"""End-to-end-encrypted backups (ciphertext only) and erasure receipts.

Revision ID: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "backups",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("lock_id", sa.String(64), sa.ForeignKey("locks.lock_id", ondelete="CASCADE"), nullable=False,
                  index=True),
        sa.Column("counter", sa.Integer, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("received_at", sa.DateTime, nullable=False),
        sa.Column("blob", sa.LargeBinary, nullable=False),
        sa.UniqueConstraint("lock_id", "counter"),
    )
    op.create_table(
        "erasures",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("lock_id", sa.String(64), nullable=False, index=True),
        sa.Column("owner_id", sa.Integer, sa.ForeignKey("owners.id", ondelete="CASCADE"), index=True),
        sa.Column("user_ref", sa.String(64), nullable=False),
        sa.Column("scope", sa.String(20), nullable=False),
        sa.Column("at", sa.DateTime, nullable=False),
        sa.Column("receipt", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("erasures")
    op.drop_table("backups")
