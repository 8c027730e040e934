"""Alembic: one line of history, and the models match what the migrations build."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

import idp.oidc.models
import idp.saml.models  # noqa: F401
from idp.store.db import Database, alembic_config
from idp.store.models import Base


def test_migrations_have_a_single_head(sqlite_url):
    db = Database(sqlite_url)
    heads = ScriptDirectory.from_config(alembic_config(db.engine)).get_heads()
    db.dispose()
    assert len(heads) == 1, heads


def test_migrated_schema_matches_the_models(pg_url):
    db = Database(pg_url)
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    db.dispose()
    assert diff == []
