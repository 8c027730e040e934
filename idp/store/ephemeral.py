"""The ephemeral store: short-lived keys with a TTL (flows, codes, replay guards, counters, sessions).

Two implementations pass the same contract tests (tests/store/test_ephemeral_contract.py):
`RedisEphemeral` for production and `SqlEphemeral`, a table in the durable database, as the
embedded default. Both fail closed: any backend error becomes `EphemeralUnavailable`.
"""

from __future__ import annotations

import random
import threading
import time
from typing import Any, Protocol

import redis
from sqlalchemy import case, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import OperationalError

from idp.store.db import Database, DatabaseUnavailable
from idp.store.models import EphemeralEntry


class EphemeralUnavailable(Exception):
    """The ephemeral store did not answer. Callers must fail closed (503), never open."""


class Ephemeral(Protocol):
    name: str

    def set(self, key: str, value: str, ttl: int) -> None:
        """Store `value` under `key` for `ttl` seconds, replacing any previous value."""

    def get(self, key: str) -> str | None:
        """The live value, or None when absent or expired."""

    def add(self, key: str, value: str, ttl: int) -> bool:
        """Set only if absent (atomic): True for the first caller, False for every later one."""

    def take(self, key: str) -> str | None:
        """Get and delete in one step: at most one caller ever receives the value."""

    def delete(self, key: str) -> None: ...

    def incr(self, key: str, ttl: int) -> int:
        """Add one to a counter; the window of `ttl` seconds starts with the first increment."""

    def ping(self, max_age: float = 0.0) -> None:
        """Raise EphemeralUnavailable when the store does not answer. With `max_age`, an answer
        within that many seconds counts as one (a page that needs no store still fails closed
        during an outage, at one round trip per `max_age` under load)."""


class RedisEphemeral:
    name = "redis"

    def __init__(self, url: str, prefix: str = "varco:") -> None:
        self.prefix = prefix
        self.pool = redis.ConnectionPool.from_url(
            url, socket_timeout=2, socket_connect_timeout=2, health_check_interval=30, decode_responses=True
        )
        self._local = threading.local()
        self._last_ok = 0.0

    @property
    def client(self) -> redis.Redis:
        """One connection per request thread, kept for the thread's life: taking a connection from
        the shared pool and giving it back costs more than the command itself (every login makes several)."""
        client = getattr(self._local, "client", None)
        if client is None:
            # redis-py connects here already: a refused connection is an outage like any other.
            client = self._call(redis.Redis, connection_pool=self.pool, single_connection_client=True)
            self._local.client = client
        return client

    def _k(self, key: str) -> str:
        return self.prefix + key

    def _call(self, fn, *args, **kwargs):  # type: ignore[no-untyped-def]
        try:
            result = fn(*args, **kwargs)
        except redis.RedisError as exc:
            self._last_ok = 0.0
            raise EphemeralUnavailable(f"redis: {exc}") from exc
        self._last_ok = time.monotonic()
        return result

    def _command(self, *args: str | int) -> Any:
        """One command and its reply, on this thread's connection.

        redis-py's client wraps every call in layers (retry policy, argument checks, response
        callbacks) that cost more CPU than the round trip itself, and a login makes five calls
        around each argon2id hash (bench/login.py). Here the client's own connection packs, sends
        and reads, with its health check and reconnection."""
        return self._call(self._round_trip, self.client.connection, args)

    @staticmethod
    def _round_trip(connection: redis.Connection, args: tuple[str | int, ...]) -> Any:
        # (A connection that timed out has closed its socket: a late reply is never read.)
        try:
            connection.send_command(*args)
            return connection.read_response()
        except redis.ConnectionError:
            # Found dropped (a Redis restart, an idle timeout): once more, on a new connection.
            connection.disconnect()
            connection.send_command(*args)
            return connection.read_response()

    def set(self, key: str, value: str, ttl: int) -> None:
        self._command("SET", self._k(key), value, "EX", max(1, ttl))

    def get(self, key: str) -> str | None:
        return self._command("GET", self._k(key))

    def add(self, key: str, value: str, ttl: int) -> bool:
        return self._command("SET", self._k(key), value, "EX", max(1, ttl), "NX") is not None

    def take(self, key: str) -> str | None:
        return self._command("GETDEL", self._k(key))

    def delete(self, key: str) -> None:
        self._command("DEL", self._k(key))

    def incr(self, key: str, ttl: int) -> int:
        def run() -> int:
            pipe = self.client.pipeline(transaction=True)
            pipe.incr(self._k(key))
            pipe.expire(self._k(key), max(1, ttl), nx=True)
            return int(pipe.execute()[0])

        return self._call(run)

    def ping(self, max_age: float = 0.0) -> None:
        if max_age and time.monotonic() - self._last_ok < max_age:
            return
        self._call(self.client.ping)

    def close(self) -> None:
        client = getattr(self._local, "client", None)
        if client is not None:
            client.close()
            self._local.client = None
        self.pool.disconnect()


class SqlEphemeral:
    """The ephemeral contract on one SQL table, using each dialect's upsert and RETURNING."""

    name = "sql"
    PURGE_PROBABILITY = 0.01

    def __init__(self, database: Database, prefix: str = "") -> None:
        self.db = database
        self.prefix = prefix
        self._insert = postgresql.insert if database.dialect == "postgresql" else sqlite.insert

    def _k(self, key: str) -> str:
        return self.prefix + key

    def _run(self, work):  # type: ignore[no-untyped-def]
        try:
            with self.db.engine.begin() as conn:
                result = work(conn)
                if random.random() < self.PURGE_PROBABILITY:
                    conn.execute(delete(EphemeralEntry).where(EphemeralEntry.expires_at <= time.time()))
                return result
        except OperationalError as exc:
            raise EphemeralUnavailable(f"sql: {exc.orig or exc}") from exc

    def set(self, key: str, value: str, ttl: int) -> None:
        expires = time.time() + max(1, ttl)
        stmt = self._insert(EphemeralEntry).values(key=self._k(key), value=value, counter=0, expires_at=expires)
        stmt = stmt.on_conflict_do_update(
            index_elements=[EphemeralEntry.key], set_={"value": value, "counter": 0, "expires_at": expires}
        )
        self._run(lambda conn: conn.execute(stmt))

    @staticmethod
    def _value(row) -> str | None:  # type: ignore[no-untyped-def]
        # Counters keep their count in `counter` and no `value`; read them as Redis does, as text.
        if row is None:
            return None
        return row.value if row.value is not None else str(row.counter)

    def get(self, key: str) -> str | None:
        stmt = select(EphemeralEntry.value, EphemeralEntry.counter).where(
            EphemeralEntry.key == self._k(key), EphemeralEntry.expires_at > time.time()
        )
        return self._run(lambda conn: self._value(conn.execute(stmt).first()))

    def add(self, key: str, value: str, ttl: int) -> bool:
        now = time.time()
        expires = now + max(1, ttl)
        stmt = self._insert(EphemeralEntry).values(key=self._k(key), value=value, counter=0, expires_at=expires)
        # Only an expired row may be overwritten; a live one means somebody else was first.
        stmt = stmt.on_conflict_do_update(
            index_elements=[EphemeralEntry.key],
            set_={"value": value, "counter": 0, "expires_at": expires},
            where=EphemeralEntry.expires_at <= now,
        ).returning(EphemeralEntry.key)
        return self._run(lambda conn: conn.execute(stmt).first() is not None)

    def take(self, key: str) -> str | None:
        stmt = (
            delete(EphemeralEntry)
            .where(EphemeralEntry.key == self._k(key), EphemeralEntry.expires_at > time.time())
            .returning(EphemeralEntry.value, EphemeralEntry.counter)
        )
        return self._run(lambda conn: self._value(conn.execute(stmt).first()))

    def delete(self, key: str) -> None:
        stmt = delete(EphemeralEntry).where(EphemeralEntry.key == self._k(key))
        self._run(lambda conn: conn.execute(stmt))

    def incr(self, key: str, ttl: int) -> int:
        now = time.time()
        expires = now + max(1, ttl)
        table = EphemeralEntry.__table__
        stmt = self._insert(EphemeralEntry).values(key=self._k(key), value=None, counter=1, expires_at=expires)
        expired = table.c.expires_at <= now
        stmt = stmt.on_conflict_do_update(
            index_elements=[EphemeralEntry.key],
            set_={
                "counter": case((expired, 1), else_=table.c.counter + 1),
                "expires_at": case((expired, expires), else_=table.c.expires_at),
            },
        ).returning(EphemeralEntry.counter)
        return self._run(lambda conn: int(conn.execute(stmt).scalar_one()))

    def ping(self, max_age: float = 0.0) -> None:
        # The table lives in the durable store, whose own liveness is remembered there.
        try:
            self.db.ping(max_age)
        except DatabaseUnavailable as exc:
            raise EphemeralUnavailable(f"sql: {exc}") from exc

    def close(self) -> None:
        pass


def open_ephemeral(redis_url: str, prefix: str, database: Database) -> Ephemeral:
    if redis_url:
        return RedisEphemeral(redis_url, prefix)
    return SqlEphemeral(database, prefix)
