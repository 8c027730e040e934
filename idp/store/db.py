"""Engine, sessions and migrations for the durable store."""

from __future__ import annotations

import collections
import contextlib
import itertools
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
from alembic import command
from alembic.config import Config
from psycopg import pq
from psycopg.adapt import PyFormat, Transformer
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DisconnectionError, OperationalError
from sqlalchemy.exc import SQLAlchemyError as _SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql import Executable

MIGRATIONS = Path(__file__).with_name("migrations")


class DatabaseUnavailable(Exception):
    """The durable store did not answer; the request fails closed with a 503."""


SQLAlchemyError = _SQLAlchemyError


# A pooled connection used this recently is taken as alive; an older one is pinged at checkout.
# (SQLAlchemy's pool_pre_ping pings on every checkout: a round trip per unit of work.)
PING_AFTER_IDLE_SECONDS = 5.0
CONNECT_TIMEOUT_SECONDS = 3
# How long an SQLite connection waits for another's write lock before the request fails closed.
SQLITE_BUSY_TIMEOUT_SECONDS = 15.0


class Database:
    def __init__(self, url: str, pool_size: int = 5) -> None:
        self.url = url
        if url.startswith("sqlite"):
            self.engine: Engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS})
            path = self.engine.url.database
            if path and path != ":memory:" and not path.startswith("file:"):
                Path(path).parent.mkdir(parents=True, exist_ok=True)
                # Created readable by Varco's user only (password hashes, encrypted secrets); SQLite
                # gives its -wal and -shm files the same permissions. Only when it does not exist
                # (O_EXCL): closing any descriptor of an SQLite file drops every POSIX lock this
                # process's connections hold on it.
                with contextlib.suppress(FileExistsError):
                    os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
            event.listen(self.engine, "connect", _sqlite_pragmas)
        else:
            self.engine = create_engine(
                url,
                pool_size=pool_size,
                pool_timeout=5,
                connect_args={"connect_timeout": CONNECT_TIMEOUT_SECONDS},
            )
            event.listen(self.engine, "connect", _mark_used)
            event.listen(self.engine, "checkin", _mark_used)
            event.listen(self.engine, "checkout", self._ping_if_idle)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        # Reads that need no transaction (each statement commits by itself): no BEGIN, no COMMIT.
        self.readers = sessionmaker(
            self.engine.execution_options(isolation_level="AUTOCOMMIT"), expire_on_commit=False
        )
        self._autocommit_engine = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        self._last_ok = 0.0
        # PostgreSQL direct statements (DirectStatement): a connection per thread, outside the pool.
        self._direct = threading.local()
        # Every thread's PostgreSQL direct connection, for dispose(). Weakly held: the connection of
        # a thread that ends (the development server starts one per request) is closed with it
        # (`_direct_connection`).
        self._direct_all: weakref.WeakSet[DirectConnection] = weakref.WeakSet()
        self._direct_lock = threading.Lock()
        # SQLite direct connections not in use (deques: append and pop are atomic), durable and not;
        # dispose() closes them and bumps the generation, so that those in use are closed on return.
        self._sqlite_idle: dict[bool, collections.deque[tuple[int, sqlite3.Connection]]] = {
            True: collections.deque(),
            False: collections.deque(),
        }
        self._generation = 0
        # A forked child's connections inherited from its parent: never used, never closed (`_forked`).
        self._inherited: list[Any] = []
        _DATABASES.add(self)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def session(self) -> contextlib.AbstractContextManager[Session]:
        """One unit of work: committed on success, rolled back whole on any error."""
        return self._unit(self.sessions, commit=True)

    def reader(self) -> contextlib.AbstractContextManager[Session]:
        """Reads only, outside any transaction; the connection goes back to the pool on exit."""
        return self._unit(self.readers, commit=False)

    def autocommit(self) -> contextlib.AbstractContextManager[Connection]:
        """A Core connection on which each statement commits by itself (for a statement that is a
        whole unit of work on its own); no ORM session, no BEGIN, no COMMIT."""
        return self._core(self._autocommit_engine.connect)

    def transaction(self) -> contextlib.AbstractContextManager[Connection]:
        """A Core connection in one transaction, committed on success and rolled back whole on any
        error: a unit of work of a few prebuilt statements, without an ORM session around it."""
        return self._core(self.engine.begin)

    @contextlib.contextmanager
    def _core(self, open_connection: Callable[[], Any]) -> Iterator[Connection]:
        """The connection `open_connection` gives, a failure to reach the database reported as
        DatabaseUnavailable (the caller fails closed with 503)."""
        try:
            with open_connection() as conn:
                yield conn
            self._last_ok = time.monotonic()
        except OperationalError as exc:
            self._last_ok = 0.0
            raise DatabaseUnavailable(str(exc.orig or exc)) from exc

    @property
    def has_direct(self) -> bool:
        """Whether `direct` statements run here: on PostgreSQL, and on an SQLite file (an in-memory
        database is one per connection, so only the pool's connection sees it)."""
        if self.dialect == "postgresql":
            return True
        return self.dialect == "sqlite" and self.engine.url.database not in (None, "", ":memory:")

    def direct(self, statement: Executable) -> DirectStatement | SqliteStatement:
        """`statement` compiled once, to be run straight on the driver (see DirectStatement and
        SqliteStatement)."""
        if not self.has_direct:
            raise ValueError("direct statements run on PostgreSQL and on an SQLite file only")
        if self.dialect == "sqlite":
            return SqliteStatement(self, statement)
        return DirectStatement(self, statement)

    @contextlib.contextmanager
    def sqlite_unit(
        self, writes: bool = True, transaction: bool = True, durable: bool = True
    ) -> Iterator[sqlite3.Connection]:
        """An sqlite3 connection of Varco's own, in one transaction for `SqliteStatement`s: committed
        on success, rolled back whole on any error. `writes` takes the write lock at the start
        (BEGIN IMMEDIATE): a transaction that reads and then writes cannot then fail for a write
        committed by another connection in between. Without `transaction`, each statement commits
        by itself. A database that stays locked beyond the busy timeout, or cannot be opened, is
        DatabaseUnavailable (the request fails closed).

        `durable=False` is for the ephemeral store's rows (flows, form tokens, SSO sessions): their
        commits are not flushed to disk one by one (synchronous=NORMAL, on connections of their
        own), so a power cut may take back the last few, as Redis's own default persistence
        may; the database stays consistent, and the next durable commit flushes them too."""
        held = None
        try:
            held = self._sqlite_take(durable)
            conn = held[1]
            if not transaction:
                yield conn
            else:
                conn.execute("BEGIN IMMEDIATE" if writes else "BEGIN")
                try:
                    yield conn
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
        except sqlite3.OperationalError as exc:
            self._last_ok = 0.0
            raise DatabaseUnavailable(f"sqlite: {exc}") from exc
        finally:
            if held is not None:
                self._sqlite_give_back(durable, held)
        self._last_ok = time.monotonic()

    def _sqlite_take(self, durable: bool) -> tuple[int, sqlite3.Connection]:
        """An idle connection (durable, or the ephemeral store's: see `sqlite_unit`), or a new one,
        with the pool's pragmas; transactions are Varco's own (isolation_level=None: no implicit
        BEGIN). Kept outside SQLAlchemy's pool, whose checkout, events and reset on return cost
        more than a statement. Idle connections are shared by all threads, not held per thread:
        the development server starts a thread per request, and SQLite keeps the file of a
        connection closed while others are open until the last one closes."""
        try:
            return self._sqlite_idle[durable].pop()
        except IndexError:
            pass
        args, kwargs = self.engine.dialect.create_connect_args(self.engine.url)
        # check_same_thread=False: an idle connection may be taken next by another thread.
        options = {"timeout": SQLITE_BUSY_TIMEOUT_SECONDS, "isolation_level": None, "check_same_thread": False}
        conn = sqlite3.connect(*args, **{**kwargs, **options})
        _sqlite_pragmas(conn, None)
        if not durable:
            conn.execute("PRAGMA synchronous=NORMAL")
        return self._generation, conn

    def _sqlite_give_back(self, durable: bool, held: tuple[int, sqlite3.Connection]) -> None:
        generation, conn = held
        if generation == self._generation and not conn.in_transaction:
            self._sqlite_idle[durable].append(held)
        else:  # disposed of meanwhile, or left in a transaction that could not be rolled back
            conn.close()

    @contextlib.contextmanager
    def _driver(self) -> Iterator[DirectConnection]:
        """This thread's psycopg connection for direct statements, in autocommit mode.

        It is opened on first use and kept for the thread's life, outside SQLAlchemy's pool (whose
        checkout, events and reset on return cost more than a statement), so each request thread
        holds one PostgreSQL connection beyond the pool. Like a pooled one, a connection idle for
        PING_AFTER_IDLE_SECONDS is pinged before use and replaced when its server process is gone;
        one that fails in use is dropped, and the request fails closed."""
        dbapi = self.engine.dialect.dbapi
        try:
            yield self._direct_connection(dbapi)
        except dbapi.Error as exc:
            self._drop_direct()
            if not isinstance(exc, dbapi.OperationalError):
                raise
            self._last_ok = 0.0
            raise DatabaseUnavailable(str(exc)) from exc
        self._direct.used = self._last_ok = time.monotonic()

    def _direct_connection(self, dbapi: Any) -> DirectConnection:
        direct = getattr(self._direct, "connection", None)
        if direct is not None and direct.driver.closed:  # closed by dispose() from another thread
            self._direct.connection = direct = None
        if direct is not None and time.monotonic() - self._direct.used >= PING_AFTER_IDLE_SECONDS:
            try:
                direct.driver.execute("SELECT 1")
            except dbapi.Error:
                self._drop_direct()
                direct = None
        if direct is None:
            args, kwargs = self.engine.dialect.create_connect_args(self.engine.url)
            driver = dbapi.connect(*args, **{**kwargs, "connect_timeout": CONNECT_TIMEOUT_SECONDS, "autocommit": True})
            direct = DirectConnection(driver)
            self._direct.connection, self._direct.used = direct, time.monotonic()
            with self._direct_lock:
                self._direct_all.add(direct)
        return direct

    def _drop_direct(self) -> None:
        direct = getattr(self._direct, "connection", None)
        if direct is not None:
            driver = direct.driver
            self._direct.connection = None
            with self._direct_lock:
                self._direct_all.discard(direct)  # (dispose() may have taken it already)
            driver.close()

    @contextlib.contextmanager
    def _unit(self, factory: sessionmaker, commit: bool) -> Iterator[Session]:
        session = factory()
        try:
            yield session
            if commit:
                session.commit()
            self._last_ok = time.monotonic()
        except OperationalError as exc:
            session.rollback()
            self._last_ok = 0.0
            raise DatabaseUnavailable(str(exc.orig or exc)) from exc
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def _ping_if_idle(self, dbapi_connection, record, _proxy) -> None:  # type: ignore[no-untyped-def]
        if time.monotonic() - record.info.get("used", 0.0) < PING_AFTER_IDLE_SECONDS:
            return
        try:
            alive = self.engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:  # any failure means this connection is gone
            raise DisconnectionError(str(exc)) from exc
        if not alive:
            raise DisconnectionError("ping failed")

    def ping(self, max_age: float = 0.0) -> None:
        """One round trip to the database (a dead pooled connection is replaced on the way).

        With `max_age`, a successful contact within that many seconds counts as a ping (page views
        under load then cost no extra round trip, and an outage is still noticed within max_age)."""
        if max_age and time.monotonic() - self._last_ok < max_age:
            return
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except OperationalError as exc:
            self._last_ok = 0.0
            raise DatabaseUnavailable(str(exc.orig or exc)) from exc
        self._last_ok = time.monotonic()

    def upgrade(self) -> None:
        command.upgrade(alembic_config(self.engine), "head")

    def dispose(self) -> None:
        with self._direct_lock:
            direct, self._direct_all = list(self._direct_all), weakref.WeakSet()
            self._generation += 1
        drivers = [connection.driver for connection in direct]
        for idle in self._sqlite_idle.values():
            while idle:
                drivers.append(idle.pop()[1])
        for driver in drivers:
            driver.close()
        self.engine.dispose()

    def _forked(self) -> None:
        """In a child process just forked from this one (gunicorn --preload, multiprocessing): the
        parent's connections are the parent's. The child must not use them (two processes on one
        socket, or on one SQLite handle, corrupt each other's exchanges) and must not close them
        either: closing a PostgreSQL connection ends its server session, the parent's too. They
        are kept aside unused, and the child opens its own (SQLAlchemy's advice for its pool,
        dispose(close=False), does the same)."""
        self._direct_lock = threading.Lock()  # (it may have been held by another thread of the parent)
        for connection in self._direct_all:
            connection.closer.detach()
        self._inherited.extend(self._direct_all)
        for idle in self._sqlite_idle.values():
            self._inherited.extend(conn for _generation, conn in idle)
        self._direct_all = weakref.WeakSet()
        self._direct = threading.local()
        self._sqlite_idle = {True: collections.deque(), False: collections.deque()}
        self._generation += 1
        self.engine.dispose(close=False)


class DirectStatement:
    """One statement of the login's hot path, run on the PostgreSQL driver without SQLAlchemy's
    per-execution machinery.

    Around every argon2id hash a login runs two statements (the account lookup, and the count with
    its audit row). After each 19 MiB hash the processor caches hold little of the code a
    statement runs through, so every layer costs many times its warm price: through SQLAlchemy's
    execution context and result processing, and then through psycopg's cursor, each statement
    cost several times its own round trip in CPU (bench/login.py). Here SQLAlchemy still writes
    the SQL, once, for the engine's dialect (with `$n` placeholders and its own casts); each run
    then goes to libpq on the thread's own connection (`Database._driver`), in autocommit mode
    (each statement commits by itself), as a server-side prepared statement. psycopg still
    turns the values into parameters and the result into Python values (its `Transformer`, the
    adaptation its cursors use), so types come back as its cursors give them."""

    _names = itertools.count()

    def __init__(self, db: Database, statement: Executable) -> None:
        compiled = statement.compile(dialect=db.engine.dialect.__class__(paramstyle="numeric_dollar"))
        _no_python_defaults(compiled)
        self.db = db
        self.sql = str(compiled).encode()
        self.name = f"varco_direct_{next(self._names)}".encode()
        self.order = tuple(compiled.positiontup or ())
        self.formats = [PyFormat.TEXT] * len(self.order)
        # Values the statement carries itself (literals SQLAlchemy made into parameters).
        self.defaults = dict(compiled.params)
        selected = getattr(statement, "selected_columns", None)
        self.names = tuple(selected.keys()) if selected is not None else ()

    def _execute(self, params: dict[str, Any]) -> Any:
        values = {**self.defaults, **params}
        with self.db._driver() as direct:
            return direct.execute(self, [values[name] for name in self.order])

    def first(self, params: dict[str, Any]) -> dict[str, Any] | None:
        """The first row as a dict of column name to value, or None."""
        row = self._execute(params)
        return None if row is None else dict(zip(self.names, row, strict=True))

    def run(self, params: dict[str, Any]) -> None:
        self._execute(params)


class SqliteStatement:
    """One statement of the login's hot path on the embedded store, run straight on Python's
    sqlite3 module, as DirectStatement runs on PostgreSQL's driver (and for the same reason: after
    each argon2id hash, SQLAlchemy's execution context and result processing cost the embedded
    store several times the statement itself; bench/login.py --embedded).

    SQLAlchemy still writes the SQL once, for the engine's dialect, and gives each parameter's and
    each column's conversion, as its own execution would apply them (SQLite keeps datetimes and
    JSON as text), through the types' public bind and result processors. Each run is one call on
    the connection of `Database.sqlite_unit`, in its transaction."""

    def __init__(self, db: Database, statement: Executable) -> None:
        dialect = db.engine.dialect
        compiled = statement.compile(dialect=dialect)
        _no_python_defaults(compiled)
        self.db = db
        self.sql = str(compiled)
        self.order = tuple(compiled.positiontup or ())
        self.defaults = dict(compiled.params)
        self.binders = tuple(
            compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect) for name in self.order
        )
        columns = list(getattr(statement, "exported_columns", None) or ())
        self.names = tuple(column.key for column in columns)
        self.loaders = tuple(column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns)

    def _values(self, params: dict[str, Any]) -> list[Any]:
        values = {**self.defaults, **params}
        return [
            value if bind is None else bind(value)
            for value, bind in zip((values[name] for name in self.order), self.binders, strict=True)
        ]

    def _on(self, conn: sqlite3.Connection | None) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        """`conn` (in the transaction of `Database.sqlite_unit`), or else a connection for this statement alone."""
        return contextlib.nullcontext(conn) if conn is not None else self.db.sqlite_unit(transaction=False)

    def first(self, params: dict[str, Any], conn: sqlite3.Connection | None = None) -> dict[str, Any] | None:
        """The first row as a dict of column name to value, or None (the other rows are not read)."""
        with self._on(conn) as connection:
            cursor = connection.execute(self.sql, self._values(params))
            try:
                row = cursor.fetchone()
            finally:
                cursor.close()
        if row is None:
            return None
        return {
            name: value if load is None else load(value)
            for name, value, load in zip(self.names, row, self.loaders, strict=True)
        }

    def run(self, params: dict[str, Any], conn: sqlite3.Connection | None = None) -> None:
        with self._on(conn) as connection:
            connection.execute(self.sql, self._values(params)).close()


class DirectConnection:
    """A thread's psycopg connection for direct statements, with the statements prepared on it."""

    def __init__(self, driver: Any) -> None:
        self.driver = driver
        # Closed when the thread that holds it ends and lets go of it (closing twice is harmless);
        # a forked child detaches this (`Database._forked`).
        self.closer = weakref.finalize(self, driver.close)
        self.adapt = Transformer.from_context(driver)
        # Prepared statement names by statement and parameter types, as psycopg's own cache keys
        # them (the type of a value, e.g. which integer type, can change from run to run).
        self.prepared: dict[tuple[bytes, tuple[int, ...]], bytes] = {}

    def execute(self, statement: DirectStatement, values: list[Any]) -> tuple | None:
        """Run `statement` with its parameter values in order; its first row, if it has rows."""
        pgconn = self.driver.pgconn
        params = self.adapt.dump_sequence(values, statement.formats)
        types = tuple(self.adapt.types)
        name = self.prepared.get((statement.name, types))
        if name is None:
            name = b"%s_%d" % (statement.name, len(self.prepared))
            self._check(pgconn.prepare(name, statement.sql, types))
            self.prepared[statement.name, types] = name
        result = self._check(pgconn.exec_prepared(name, params))
        if result.ntuples == 0:
            return None
        self.adapt.set_pgresult(result)
        return self.adapt.load_row(0, tuple)

    def _check(self, result: Any) -> Any:
        """`result`, or the error it reports raised as psycopg raises it: a connection that broke
        is an OperationalError (the store is unavailable), a refused statement its own error."""
        if result.status in (pq.ExecStatus.COMMAND_OK, pq.ExecStatus.TUPLES_OK):
            return result
        message = (result.error_message or b"").decode(errors="replace").strip() or "statement failed"
        if self.driver.pgconn.status != pq.ConnStatus.OK:
            raise psycopg.OperationalError(message)
        try:
            error = psycopg.errors.lookup(result.error_field(pq.DiagnosticField.SQLSTATE).decode())
        except (AttributeError, KeyError):  # no SQLSTATE, or one psycopg does not know
            error = psycopg.DatabaseError
        raise error(message)


# Every Database of this process, for the fork hook.
_DATABASES: weakref.WeakSet[Database] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for database in list(_DATABASES):
        database._forked()


os.register_at_fork(after_in_child=_after_fork_in_child)


def _no_python_defaults(compiled: Any) -> None:
    """A direct statement runs without SQLAlchemy's execution, which is what computes a column's
    Python-side default or onupdate value (`updated_at`, say): such a column must be given."""
    computed = [*compiled.insert_prefetch, *compiled.update_prefetch]
    if computed:
        names = ", ".join(sorted(column.key for column in computed))
        raise ValueError(f"a direct statement must set {names} itself (SQLAlchemy computes them only when it executes)")


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def _mark_used(_dbapi_connection, record, *_args) -> None:  # type: ignore[no-untyped-def]
    record.info["used"] = time.monotonic()


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_SECONDS * 1000)}")
    cursor.close()
