"""Owners, sessions, locks, forwarded records, alarms, relayed commands.

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "owners",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("email", sa.String(254), nullable=False, unique=True),
        sa.Column("password_hash", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "sessions",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("owner_id", sa.Integer, sa.ForeignKey("owners.id", ondelete="CASCADE"), nullable=False),
        sa.Column("expires_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "locks",
        sa.Column("lock_id", sa.String(64), primary_key=True),
        sa.Column("owner_id", sa.Integer, sa.ForeignKey("owners.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("head_count", sa.Integer, nullable=False),
        sa.Column("head_hash", sa.String(64)),
        sa.Column("reported_count", sa.Integer, nullable=False),
        sa.Column("last_seen", sa.DateTime),
    )
    op.create_table(
        "records",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("lock_id", sa.String(64), sa.ForeignKey("locks.lock_id", ondelete="CASCADE"), nullable=False,
                  index=True),
        sa.Column("idx", sa.Integer, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("at", sa.String(40), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.UniqueConstraint("lock_id", "idx"),
    )
    op.create_table(
        "alarms",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("lock_id", sa.String(64), sa.ForeignKey("locks.lock_id", ondelete="CASCADE"), nullable=False,
                  index=True),
        sa.Column("rule", sa.String(40), nullable=False),
        sa.Column("detail", sa.String(400), nullable=False),
        sa.Column("raised_at", sa.DateTime, nullable=False),
        sa.Column("acknowledged_at", sa.DateTime),
    )
    op.create_table(
        "commands",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("lock_id", sa.String(64), sa.ForeignKey("locks.lock_id", ondelete="CASCADE"), nullable=False,
                  index=True),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("sent_at", sa.DateTime, nullable=False),
        sa.Column("result", sa.Text),
    )


def downgrade() -> None:
    for table in ("commands", "alarms", "records", "locks", "sessions", "owners"):
        op.drop_table(table)
