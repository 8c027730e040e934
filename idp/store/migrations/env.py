"""Alembic environment: Varco passes its engine in; no alembic.ini, no configuration in Python."""

from alembic import context

from idp.store.models import Base

engine = context.config.attributes["engine"]
with engine.begin() as connection:
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
    context.run_migrations()
