"""Alembic environment: runs on the connection `limen_cloud.db.upgrade` hands it."""

from alembic import context

from limen_cloud.models import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata)
with context.begin_transaction():
    context.run_migrations()
