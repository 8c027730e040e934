"""Pooled PostgreSQL connections: a connection idle for a while is pinged at checkout and replaced
when its server process is gone; one used moments ago is trusted (no round trip per unit of work)."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text

import idp.store.db as db_module
from idp.store.db import Database, DatabaseUnavailable


def backend_pid(db: Database) -> int:
    with db.reader() as session:
        return session.execute(text("SELECT pg_backend_pid()")).scalar_one()


def terminate(pg_url: str, pid: int) -> None:
    admin = create_engine(pg_url)
    with admin.begin() as conn:
        assert conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar_one()
    admin.dispose()


@pytest.fixture
def db(pg_url):
    database = Database(pg_url, pool_size=1)
    yield database
    database.dispose()


def test_an_idle_connection_whose_server_went_away_is_replaced(db, pg_url, monkeypatch):
    first = backend_pid(db)
    terminate(pg_url, first)
    monkeypatch.setattr(db_module, "PING_AFTER_IDLE_SECONDS", 0.0)
    second = backend_pid(db)  # the ping at checkout finds the dead connection and opens a new one
    assert second != first


def test_a_recently_used_connection_is_not_pinged(db, pg_url):
    first = backend_pid(db)
    terminate(pg_url, first)
    # Used a moment ago, so trusted as is: the request fails closed (503) and the pool drops the
    # dead connection; the next request gets a fresh one.
    with pytest.raises(DatabaseUnavailable):
        backend_pid(db)
    assert backend_pid(db) != first


def test_ping_always_reaches_the_database(db, pg_url):
    db.ping()
    terminate(pg_url, backend_pid(db))
    with pytest.raises(DatabaseUnavailable):
        db.ping()
    db.ping()
