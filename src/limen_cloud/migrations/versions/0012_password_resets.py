"""The operator's password resets reuse the one-time invites: an invite naming an owner resets that account.

Revision ID: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("invites") as batch:
        batch.add_column(sa.Column("owner_id", sa.Integer))
        batch.add_column(sa.Column("clear_totp", sa.Boolean, nullable=False, server_default=sa.false()))
        batch.create_foreign_key("fk_invites_owner_id_owners", "owners", ["owner_id"], ["id"], ondelete="CASCADE")
        batch.create_index("ix_invites_owner_id", ["owner_id"])


def downgrade() -> None:
    op.execute(sa.text("DELETE FROM invites WHERE owner_id IS NOT NULL"))  # a reset is no sign-up invite
    with op.batch_alter_table("invites") as batch:
        batch.drop_index("ix_invites_owner_id")
        batch.drop_constraint("fk_invites_owner_id_owners", type_="foreignkey")
        batch.drop_column("clear_totp")
        batch.drop_column("owner_id")
