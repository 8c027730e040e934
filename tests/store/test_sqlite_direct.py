"""Direct statements on the embedded store (SqliteStatement): the values SQLAlchemy's own execution
gives, in the transaction they are given, on one connection per thread, failing closed when the
database cannot be reached."""

from __future__ import annotations

import datetime as dt
import shutil
import threading

import pytest
from sqlalchemy import JSON, Boolean, DateTime, Float, Integer, String, bindparam, insert, literal, select, text

from idp.store.db import Database, DatabaseUnavailable, SqliteStatement
from idp.store.models import AuditEvent


@pytest.fixture
def db(tmp_path):
    database = Database(f"sqlite:///{tmp_path / 'varco.db'}")
    database.upgrade()
    yield database
    database.dispose()


TYPED = select(
    bindparam("at", type_=DateTime()).label("at"),
    bindparam("flag", type_=Boolean()).label("flag"),
    bindparam("doc", type_=JSON()).label("doc"),
    bindparam("word", type_=String()).label("word"),
    bindparam("ratio", type_=Float()).label("ratio"),
    (bindparam("n", type_=Integer()) * literal(3)).label("tripled"),
)


@pytest.mark.parametrize(
    "values",
    [
        {"at": dt.datetime(2026, 11, 26, 9, 30, 15, 123456, tzinfo=dt.UTC), "flag": True, "doc": {"a": [1, "è"]},
         "word": "è'; DROP TABLE accounts; --", "ratio": 0.25, "n": 14},
        {"at": dt.datetime(1999, 1, 2, 3, 4, 5), "flag": False, "doc": {}, "word": "", "ratio": -1e300, "n": 0},
        {"at": None, "flag": None, "doc": None, "word": None, "ratio": None, "n": None},
    ],
)
def test_a_direct_statement_gives_the_values_sqlalchemy_gives(db, values):
    with db.autocommit() as conn:
        expected = conn.execute(TYPED, values).mappings().first()
    assert db.direct(TYPED).first(values) == dict(expected)


def test_an_account_row_reads_as_sqlalchemy_reads_it(db, tmp_path):
    from idp.accounts.passwords import Passwords
    from idp.accounts.service import _FIND_ROW_BY_IDENTIFIER, AccountService, NewAccount
    from idp.settings import load_settings
    from idp.store.ephemeral import SqlEphemeral

    settings = load_settings(tmp_path, environ={"VARCO_DATABASE_URL": db.url})
    accounts = AccountService(settings, db, SqlEphemeral(db), Passwords(settings.passwords))
    accounts.create(NewAccount("anna.bianchi", "Anna", "Bianchi", "anna.bianchi@uni.example.it"))
    with db.autocommit() as conn:
        expected = conn.execute(_FIND_ROW_BY_IDENTIFIER, {"identifier": "anna.bianchi"}).mappings().first()
    row = db.direct(_FIND_ROW_BY_IDENTIFIER).first({"identifier": "anna.bianchi"})
    assert row == dict(expected) and isinstance(row["created_at"], dt.datetime)


AUDIT = insert(AuditEvent.__table__).values(
    at=bindparam("at", type_=DateTime()), action=bindparam("action", type_=String()), actor="direct-test",
    detail=bindparam("detail", type_=JSON()),
)


def audit_actions(db: Database) -> list[str]:
    with db.reader() as session:
        return list(session.scalars(select(AuditEvent.action).where(AuditEvent.actor == "direct-test")))


def test_a_unit_commits_its_statements_together_or_takes_them_all_back(db):
    statement = db.direct(AUDIT)
    at = dt.datetime.now(dt.UTC)
    with db.sqlite_unit() as conn:
        statement.run({"at": at, "action": "first", "detail": {"n": 1}}, conn)
        statement.run({"at": at, "action": "second", "detail": {}}, conn)
    with pytest.raises(RuntimeError), db.sqlite_unit() as conn:
        statement.run({"at": at, "action": "abandoned", "detail": {}}, conn)
        raise RuntimeError("abandon the unit")
    assert sorted(audit_actions(db)) == ["first", "second"]
    with db.reader() as session:
        assert session.scalars(select(AuditEvent.detail).where(AuditEvent.action == "first")).one() == {"n": 1}


def test_a_failed_statement_takes_its_unit_back_and_raises_its_own_error(db):
    import sqlite3

    statement = db.direct(AUDIT)
    at = dt.datetime.now(dt.UTC)
    with pytest.raises(sqlite3.IntegrityError), db.sqlite_unit() as conn:
        statement.run({"at": at, "action": "before-failure", "detail": {}}, conn)
        statement.run({"at": at, "action": None, "detail": {}}, conn)  # action is NOT NULL
    assert audit_actions(db) == []
    # As SQLAlchemy's path does, an OperationalError of SQLite's (here a missing table) fails closed.
    with pytest.raises(DatabaseUnavailable, match="no such table"):
        SqliteStatement(db, select(text("1")).select_from(text("no_such_table"))).first({})
    # The thread's connection is in step again: no transaction left open.
    statement.run({"at": at, "action": "after", "detail": {}})
    assert audit_actions(db) == ["after"]


def test_connections_are_reused_by_every_thread_and_dispose_closes_them_in_use_or_idle(db):
    import sqlite3

    statement = db.direct(select(literal(1).label("one")))
    seen: list[object] = []

    def use() -> None:
        with db.sqlite_unit(transaction=False) as conn:
            seen.append(conn)
            assert statement.first({}, conn) == {"one": 1}

    use()
    worker = threading.Thread(target=use)
    worker.start()
    worker.join()
    assert len(seen) == 2 and seen[0] is seen[1]  # one connection, given back and taken again
    with db.sqlite_unit(writes=False) as in_use:
        with db.sqlite_unit(writes=False) as second:  # (a second unit meanwhile gets a connection of its own)
            assert second is not in_use
        db.dispose()
    for conn in (in_use, second):
        with pytest.raises(sqlite3.ProgrammingError, match="closed"):
            conn.execute("SELECT 1")
    assert statement.first({}) == {"one": 1}  # a new connection after dispose


def test_a_database_locked_beyond_the_busy_timeout_is_an_outage_and_nothing_is_written(db, monkeypatch):
    import sqlite3

    import idp.store.db as db_module

    holder = sqlite3.connect(db.engine.url.database, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    monkeypatch.setattr(db_module, "SQLITE_BUSY_TIMEOUT_SECONDS", 0.2)  # for the connections opened now
    statement = db.direct(AUDIT)
    try:
        with pytest.raises(DatabaseUnavailable, match="locked"), db.sqlite_unit() as conn:
            statement.run({"at": dt.datetime.now(dt.UTC), "action": "locked-out", "detail": {}}, conn)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert audit_actions(db) == []


def test_a_database_that_cannot_be_opened_is_an_outage(tmp_path):
    database = Database(f"sqlite:///{tmp_path / 'gone' / 'varco.db'}")
    shutil.rmtree(tmp_path / "gone")  # the folder Database made (and the file it created) are gone
    try:
        with pytest.raises(DatabaseUnavailable, match="sqlite"):
            database.direct(select(literal(1).label("one"))).first({})
    finally:
        database.dispose()


def test_only_the_ephemeral_stores_connection_skips_flushing_each_commit(db):
    # PRAGMA synchronous: 1 NORMAL (WAL: consistent, the last commits may go at a power cut), 2 FULL.
    with db.sqlite_unit(durable=False) as conn:
        assert conn.execute("PRAGMA synchronous").fetchone() == (1,)
    with db.sqlite_unit() as conn:
        assert conn.execute("PRAGMA synchronous").fetchone() == (2,)
    with db.engine.connect() as conn:  # the pool's connections, for everything else
        assert conn.exec_driver_sql("PRAGMA synchronous").fetchone() == (2,)


def test_the_sql_ephemeral_store_writes_on_its_own_connection(db):
    from idp.store.ephemeral import SqlEphemeral

    store = SqlEphemeral(db, "t:")
    store.batch([("set", "flow", "v", 60), ("add", "claim", "1", 60)])
    assert store.get("flow") == "v" and store.add("claim", "2", 60) is False
    idle = db._sqlite_idle[False]
    assert len(idle) == 1 and idle[0][1].execute("PRAGMA synchronous").fetchone() == (1,)


def open_files() -> int:
    import os

    return len(os.listdir("/proc/self/fd"))


def test_the_connections_of_threads_that_ended_are_closed(db):
    # The development server (varco demo, varco serve) starts a thread per request.
    import gc

    statement = db.direct(select(literal(1).label("one")))
    statement.first({})
    gc.collect()
    before = open_files()
    for _ in range(30):
        worker = threading.Thread(target=lambda: statement.first({}) and db.direct(AUDIT).run(
            {"at": dt.datetime.now(dt.UTC), "action": "thread", "detail": {}}
        ))
        worker.start()
        worker.join()
    gc.collect()
    assert open_files() <= before + 1 and len(audit_actions(db)) == 30


def test_a_process_forked_after_a_statement_uses_connections_of_its_own(db):
    # gunicorn --preload forks workers from a process that may have used the database already;
    # an SQLite connection must not be used on both sides of a fork.
    import os

    statement = db.direct(AUDIT)
    statement.run({"at": dt.datetime.now(dt.UTC), "action": "parent", "detail": {}})
    parents = [held[1] for held in db._sqlite_idle[True]]
    child = os.fork()
    if child == 0:  # pragma: no cover - the child reports through its exit status
        code = 1
        try:
            with db.sqlite_unit() as conn:
                fresh = all(conn is not old for old in parents)
                statement.run({"at": dt.datetime.now(dt.UTC), "action": "child", "detail": {}}, conn)
            code = 0 if fresh else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    statement.run({"at": dt.datetime.now(dt.UTC), "action": "parent again", "detail": {}})
    assert sorted(audit_actions(db)) == ["child", "parent", "parent again"]


def test_opening_a_database_again_keeps_the_locks_this_process_holds_on_it(tmp_path):
    # Closing any descriptor of an SQLite file drops every POSIX lock the process holds on it: a
    # second Database for the same file must not open and close the file to set its permissions.
    import sqlite3
    import subprocess
    import sys

    path = tmp_path / "varco.db"
    first = Database(f"sqlite:///{path}")
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("CREATE TABLE t (x)")
    writer.execute("BEGIN IMMEDIATE")  # this process holds the write lock
    second = Database(f"sqlite:///{path}")
    other = (
        "import sqlite3, sys\nc = sqlite3.connect(sys.argv[1], timeout=0, isolation_level=None)\n"
        "try:\n c.execute('BEGIN IMMEDIATE'); print('got the lock')\nexcept sqlite3.OperationalError as e: print(e)"
    )
    said = subprocess.run([sys.executable, "-c", other, str(path)], capture_output=True, text=True, check=True)
    writer.execute("ROLLBACK")
    writer.close()
    first.dispose()
    second.dispose()
    assert said.stdout.strip() == "database is locked"
