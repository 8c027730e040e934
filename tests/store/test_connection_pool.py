"""Pooled PostgreSQL connections: a connection idle for a while is pinged at checkout and replaced
when its server process is gone; one used moments ago is trusted (no round trip per unit of work)."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, func, select, text

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


# --- statements run straight on the driver (the login's hot path) ----------------------------------
def sum_statement():
    from sqlalchemy import Integer, String, bindparam, literal, select

    return select(
        bindparam("word", type_=String()).label("word"),
        (bindparam("number", type_=Integer()) + literal(2)).label("number"),
    )


def test_a_direct_statement_reads_named_columns_with_the_literals_it_carries(db):
    statement = db.direct(sum_statement())
    assert statement.first({"word": "ciao", "number": 40}) == {"word": "ciao", "number": 42}
    assert statement.first({"word": "è'; DROP TABLE accounts; --", "number": -2}) == {
        "word": "è'; DROP TABLE accounts; --",
        "number": 0,
    }


def test_direct_statements_leave_the_pool_transactional(db):
    from idp.store.models import AuditEvent, utcnow

    db.direct(sum_statement()).first({"word": "x", "number": 1})
    actor = "direct-statement-check"
    # A unit of work that fails after a direct statement ran must still take back the row it wrote.
    with pytest.raises(RuntimeError), db.session() as session:
        session.add(AuditEvent(at=utcnow(), action="test", actor=actor, account_id=None, detail={}))
        session.flush()
        raise RuntimeError("abandon the unit of work")
    with db.reader() as session:
        assert session.query(AuditEvent).filter_by(actor=actor).count() == 0


PID = select(func.pg_backend_pid().label("pid"))


def test_direct_statements_keep_one_connection_per_thread_and_dispose_closes_them(db, pg_url):
    import threading

    statement = db.direct(PID)
    mine = {statement.first({})["pid"] for _ in range(3)}
    theirs: list[int] = []
    worker = threading.Thread(target=lambda: theirs.append(statement.first({})["pid"]))
    worker.start()
    worker.join()
    assert len(mine) == 1 and theirs and theirs[0] not in mine
    assert backend_pid(db) not in mine | set(theirs)  # the pool's connection is another one
    db.dispose()
    admin = create_engine(pg_url)
    with admin.connect() as conn:
        alive = conn.execute(text("SELECT pid FROM pg_stat_activity")).scalars().all()
    admin.dispose()
    assert not (mine | set(theirs)) & set(alive)


def test_a_failed_direct_statement_raises_its_own_error_and_the_next_runs_on_a_new_connection(db):
    import psycopg

    statement = db.direct(sum_statement())
    with pytest.raises(psycopg.errors.InvalidTextRepresentation):
        statement.first({"word": "x", "number": "not a number"})
    assert statement.first({"word": "x", "number": 1}) == {"word": "x", "number": 3}


def test_a_direct_statement_after_dispose_opens_a_new_connection(db):
    statement = db.direct(PID)
    first = statement.first({})["pid"]
    db.dispose()
    assert statement.first({})["pid"] != first


def test_a_direct_statement_on_a_dead_connection_fails_closed_and_the_next_gets_a_new_one(db, pg_url):
    statement = db.direct(PID)
    first = statement.first({})["pid"]
    terminate(pg_url, first)
    # Used a moment ago, so trusted as is: the request fails closed; the next opens a new connection.
    with pytest.raises(DatabaseUnavailable):
        statement.first({})
    assert statement.first({})["pid"] != first


def test_an_idle_direct_connection_whose_server_went_away_is_replaced(db, pg_url, monkeypatch):
    statement = db.direct(PID)
    first = statement.first({})["pid"]
    terminate(pg_url, first)
    monkeypatch.setattr(db_module, "PING_AFTER_IDLE_SECONDS", 0.0)
    assert statement.first({})["pid"] != first


def test_a_direct_statement_on_an_unreachable_database_is_an_outage():
    database = Database("postgresql+psycopg://postgres@127.0.0.1:1/test", pool_size=1)
    try:
        with pytest.raises(DatabaseUnavailable):
            database.direct(sum_statement()).first({"word": "x", "number": 1})
    finally:
        database.dispose()


def test_direct_statements_are_not_for_an_in_memory_sqlite_database():
    # Each connection to ":memory:" is a database of its own: a thread's own connection would not see the pool's.
    database = Database("sqlite://")
    with pytest.raises(ValueError, match="an SQLite file only"):
        database.direct(sum_statement())
    database.dispose()


def test_a_statement_whose_python_side_default_sqlalchemy_would_compute_is_refused(db):
    from sqlalchemy import update

    from idp.store.models import Account

    # Account.updated_at has an onupdate default, computed only when SQLAlchemy executes.
    with pytest.raises(ValueError, match="must set updated_at itself"):
        db.direct(update(Account.__table__).values(login_count=0))


def test_a_direct_statement_gives_values_their_types_and_a_parameter_used_twice_one_value(db):
    import datetime as dt

    from sqlalchemy import Boolean, DateTime, Integer, String, bindparam, literal

    at = bindparam("at", type_=DateTime(timezone=True))
    statement = db.direct(
        select(
            at.label("at"),
            (at + dt.timedelta(hours=1)).label("later"),
            bindparam("flag", type_=Boolean()).label("flag"),
            bindparam("missing", type_=String()).label("missing"),
            (bindparam("n", type_=Integer()) * literal(3)).label("tripled"),
        )
    )
    moment = dt.datetime(2026, 11, 25, 23, 30, 15, 123456, tzinfo=dt.UTC)
    row = statement.first({"at": moment, "flag": True, "missing": None, "n": 14})
    assert row == {"at": moment, "later": moment + dt.timedelta(hours=1), "flag": True, "missing": None, "tripled": 42}
    assert row["at"].utcoffset() == dt.timedelta(0)
    assert statement.first({"at": moment, "flag": False, "missing": "x", "n": 0})["flag"] is False
    # A value that needs a wider type than the first run's gets it.
    assert statement.first({"at": moment, "flag": None, "missing": None, "n": 100_000})["tripled"] == 300_000


def test_the_direct_connections_of_threads_that_ended_are_closed(db):
    # The development server (varco serve) starts a thread per request.
    import gc
    import os
    import threading
    import warnings

    statement = db.direct(PID)
    statement.first({})
    gc.collect()
    before = len(os.listdir("/proc/self/fd"))
    pids: list[int] = []
    with warnings.catch_warnings():
        # Closed by Varco when the thread ends, not left to psycopg to close when it is collected.
        warnings.simplefilter("error", ResourceWarning)
        for _ in range(20):
            worker = threading.Thread(target=lambda: pids.append(statement.first({})["pid"]))
            worker.start()
            worker.join()
            assert len(os.listdir("/proc/self/fd")) <= before + 1  # at once, with no collection
        gc.collect()
    assert len(set(pids)) == 20 and len(os.listdir("/proc/self/fd")) <= before + 1


def test_a_process_forked_after_direct_and_pooled_statements_opens_connections_of_its_own(db):
    # gunicorn --preload forks workers from a process that may have used the database already. A
    # child must neither use the parent's connections (two processes on one socket) nor close them
    # (that ends the parent's server session): not even when it disposes of its own.
    import os

    statement = db.direct(PID)
    parent_direct, parent_pooled = statement.first({})["pid"], backend_pid(db)
    child = os.fork()
    if child == 0:  # pragma: no cover - the child reports through its exit status
        code = 1
        try:
            fresh = statement.first({})["pid"] not in (parent_direct, parent_pooled)
            fresh = fresh and backend_pid(db) not in (parent_direct, parent_pooled)
            db.dispose()
            code = 0 if fresh else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert statement.first({})["pid"] == parent_direct
    assert backend_pid(db) == parent_pooled
