"""Owners' alarm channels (apprise URLs) and the delivery state of each alarm.

Revision ID: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("owners") as batch:
        batch.add_column(sa.Column("alert_urls", sa.Text))
    with op.batch_alter_table("alarms") as batch:
        batch.add_column(sa.Column("notified_at", sa.DateTime))
        batch.add_column(sa.Column("delivery_error", sa.String(200)))


def downgrade() -> None:
    with op.batch_alter_table("alarms") as batch:
        batch.drop_column("delivery_error")
        batch.drop_column("notified_at")
    with op.batch_alter_table("owners") as batch:
        batch.drop_column("alert_urls")
