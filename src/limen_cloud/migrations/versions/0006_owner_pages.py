"""Owner TOTP (web pages and API log-in) and the community security webhook with its delivery state per alarm.

Revision ID: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("owners") as batch:
        batch.add_column(sa.Column("totp_secret", sa.String(64)))
        batch.add_column(sa.Column("totp_step", sa.Integer))
        batch.add_column(sa.Column("webhook_url", sa.String(500)))
        batch.add_column(sa.Column("webhook_secret", sa.String(64)))
    with op.batch_alter_table("alarms") as batch:
        batch.add_column(sa.Column("webhook_at", sa.DateTime))
        batch.add_column(sa.Column("webhook_attempts", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("webhook_next_at", sa.DateTime))
        batch.add_column(sa.Column("webhook_error", sa.String(200)))


def downgrade() -> None:
    with op.batch_alter_table("alarms") as batch:
        for name in ("webhook_error", "webhook_next_at", "webhook_attempts", "webhook_at"):
            batch.drop_column(name)
    with op.batch_alter_table("owners") as batch:
        for name in ("webhook_secret", "webhook_url", "totp_step", "totp_secret"):
            batch.drop_column(name)
