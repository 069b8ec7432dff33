"""Alembic's environment for the registry: migrate the connection the registry hands over.

There is no ``alembic.ini`` and no command for users: :func:`heatmaploss.registry.schema.upgrade`
builds the configuration and passes its connection, already inside a write transaction (the
migrations join it, so a migration that fails leaves the database as it was).
"""

from alembic import context

from heatmaploss.registry.tables import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata,
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
