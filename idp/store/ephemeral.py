"""The ephemeral store: short-lived keys with a TTL (flows, codes, replay guards, counters, sessions).

Two implementations pass the same contract tests (tests/store/test_ephemeral_contract.py):
`RedisEphemeral` for production and `SqlEphemeral`, a table in the durable database, as the
embedded default. Both fail closed: any backend error becomes `EphemeralUnavailable`.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import redis
from sqlalchemy import bindparam, case, delete, select
from sqlalchemy.dialects import postgresql, sqlite

from idp.store.db import Database, DatabaseUnavailable
from idp.store.models import EphemeralEntry


class EphemeralUnavailable(Exception):
    """The ephemeral store did not answer. Callers must fail closed (503), never open."""


# One operation of `Ephemeral.batch`.
Op = tuple[str, str] | tuple[str, str, str, int]


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

    def batch(self, ops: Sequence[Op]) -> list[Any]:
        """Run the operations in order, in one round trip and as one transaction: no other client
        sees some of them done and not the others. Each is ("get", key), ("take", key),
        ("delete", key), ("set", key, value, ttl) or ("add", key, value, ttl); the results come
        back in order, as the methods of those names return them."""

    def ping(self, max_age: float = 0.0) -> None:
        """Raise EphemeralUnavailable when the store does not answer. With `max_age`, an answer
        within that many seconds counts as one (a page that needs no store still fails closed
        during an outage, at one round trip per `max_age` under load)."""


# Redis commands and replies of the store's operations (`Ephemeral.batch`).
_COMMAND = {"get": "GET", "take": "GETDEL", "delete": "DEL"}
_REPLY = {
    "get": lambda reply: reply,
    "take": lambda reply: reply,
    "set": lambda reply: None,
    "delete": lambda reply: None,
    "add": lambda reply: reply is not None,
}


def _send_and_read(connection: redis.Connection, commands: list[tuple[str | int, ...]]) -> list[Any]:
    connection.send_packed_command(connection.pack_commands(commands))
    try:
        return [connection.read_response() for _ in commands]
    except redis.ResponseError:
        # Replies still unread would answer the next command.
        connection.disconnect()
        raise


class _Operations:
    """The store's operations, each a batch of one (`_apply` is each store's own)."""

    def _apply(self, ops: Sequence[Op]) -> list[Any]:
        raise NotImplementedError

    def set(self, key: str, value: str, ttl: int) -> None:
        self._apply([("set", key, value, ttl)])

    def get(self, key: str) -> str | None:
        return self._apply([("get", key)])[0]

    def add(self, key: str, value: str, ttl: int) -> bool:
        return self._apply([("add", key, value, ttl)])[0]

    def take(self, key: str) -> str | None:
        return self._apply([("take", key)])[0]

    def delete(self, key: str) -> None:
        self._apply([("delete", key)])

    def batch(self, ops: Sequence[Op]) -> list[Any]:
        return self._apply(ops) if ops else []


class RedisEphemeral(_Operations):
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

    def _apply(self, ops: Sequence[Op]) -> list[Any]:
        """The operations' results, in one round trip on this thread's connection.

        redis-py's client wraps every call in layers (retry policy, argument checks, response
        callbacks) that cost more CPU than the round trip itself, and a login makes several calls
        around each argon2id hash (bench/login.py). Here the client's own connection packs, sends
        and reads, with its health check and reconnection. More than one operation runs as one
        MULTI/EXEC transaction, which no other client sees half done."""
        commands = [self._args(op) for op in ops]
        if len(commands) == 1:
            replies = self._call(self._exchange, self.client.connection, commands)
        else:
            replies = self._call(self._exchange, self.client.connection, [("MULTI",), *commands, ("EXEC",)])[-1]
            failed = [reply for reply in replies or () if isinstance(reply, Exception)]
            if replies is None or failed:
                self._last_ok = 0.0
                raise EphemeralUnavailable(f"redis: transaction failed: {failed[0] if failed else 'aborted'}")
        return [_REPLY[op[0]](reply) for op, reply in zip(ops, replies, strict=True)]

    def _args(self, op: Op) -> tuple[str | int, ...]:
        kind, key, *rest = op
        if kind in ("set", "add"):
            value, ttl = rest
            return ("SET", self._k(key), value, "EX", max(1, ttl), *(("NX",) if kind == "add" else ()))
        if kind not in _COMMAND:
            raise ValueError(f"unknown ephemeral store operation {kind!r}")
        return (_COMMAND[kind], self._k(key))

    @staticmethod
    def _exchange(connection: redis.Connection, commands: list[tuple[str | int, ...]]) -> list[Any]:
        # (A connection that timed out has closed its socket: a late reply is never read.)
        try:
            return _send_and_read(connection, commands)
        except redis.ConnectionError:
            # Found dropped (a Redis restart, an idle timeout): once more, on a new connection.
            connection.disconnect()
            return _send_and_read(connection, commands)

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


class SqlEphemeral(_Operations):
    """The ephemeral contract on one SQL table, using each dialect's upsert and RETURNING.

    Each operation's statement is built once, with bound parameters: building a statement (and its
    cache key) costs more CPU than running it, and a login makes several operations. On an SQLite
    file (the embedded default) they run straight on sqlite3 (`SqliteStatement`)."""

    name = "sql"
    PURGE_PROBABILITY = 0.01
    _ROWS = frozenset({"add", "get", "take", "incr"})  # the statements that return a row (RETURNING)

    def __init__(self, database: Database, prefix: str = "") -> None:
        self.db = database
        self.prefix = prefix
        self._sql = _SqlStatements(postgresql.insert if database.dialect == "postgresql" else sqlite.insert)
        self._direct: dict[str, Any] | None = None
        if database.dialect == "sqlite" and database.has_direct:
            names = ("set", "add", "get", "take", "delete", "purge", "incr")
            self._direct = {name: database.direct(getattr(self._sql, name)) for name in names}

    def _k(self, key: str) -> str:
        return self.prefix + key

    def _run(self, statements: list[tuple[str, dict[str, Any]]], writes: bool) -> list[Any]:
        """Each (statement name, parameters) in one transaction: the first row of each that returns
        rows (a mapping, or None), None for the others."""
        asked = len(statements)
        if random.random() < self.PURGE_PROBABILITY:
            statements = [*statements, ("purge", {"b_now": time.time()})]
            writes = True
        rows: list[Any] = []
        try:
            if self._direct is not None:
                # One statement is atomic by itself: no BEGIN and COMMIT around it.
                with self.db.sqlite_unit(writes, transaction=len(statements) > 1, durable=False) as conn:
                    for name, params in statements:
                        direct = self._direct[name]
                        rows.append(direct.first(params, conn) if name in self._ROWS else direct.run(params, conn))
                return rows[:asked]
            with self.db.transaction() as conn:
                for name, params in statements:
                    result = conn.execute(getattr(self._sql, name), params)
                    rows.append(result.mappings().first() if name in self._ROWS else None)
            return rows[:asked]
        except DatabaseUnavailable as exc:
            raise EphemeralUnavailable(f"sql: {exc}") from exc

    @staticmethod
    def _value(row: Mapping[str, Any] | None) -> str | None:
        # Counters keep their count in `counter` and no `value`; read them as Redis does, as text.
        if row is None:
            return None
        return row["value"] if row["value"] is not None else str(row["counter"])

    def _statement(self, op: Op) -> tuple[str, dict[str, Any]]:
        """The name of one operation's statement, and its parameters."""
        kind, key, *rest = op
        params: dict[str, Any] = {"b_key": self._k(key), "b_now": time.time()}
        if kind in ("set", "add"):
            value, ttl = rest
            params.update(b_value=value, b_expires=params["b_now"] + max(1, ttl))
            # add: only an expired row may be overwritten; a live one means somebody else was first.
            return kind, params
        if kind in ("get", "take"):
            return kind, params
        if kind == "delete":
            return kind, {"b_key": params["b_key"]}
        raise ValueError(f"unknown ephemeral store operation {kind!r}")

    def _apply(self, ops: Sequence[Op]) -> list[Any]:
        statements = [self._statement(op) for op in ops]
        rows = self._run(statements, writes=any(name != "get" for name, _ in statements))
        return [
            (row is not None) if name == "add" else self._value(row) if name in ("get", "take") else None
            for (name, _), row in zip(statements, rows, strict=True)
        ]

    def incr(self, key: str, ttl: int) -> int:
        now = time.time()
        params = {"b_key": self._k(key), "b_now": now, "b_expires": now + max(1, ttl)}
        return int(self._run([("incr", params)], writes=True)[0]["counter"])

    def ping(self, max_age: float = 0.0) -> None:
        # The table lives in the durable store, whose own liveness is remembered there.
        try:
            self.db.ping(max_age)
        except DatabaseUnavailable as exc:
            raise EphemeralUnavailable(f"sql: {exc}") from exc

    def close(self) -> None:
        pass


class _SqlStatements:
    """`SqlEphemeral`'s statements for one dialect's upsert (`insert`). Parameters: b_key, b_now
    (the time of the operation), b_value, b_expires (when a written row expires)."""

    def __init__(self, insert: Callable) -> None:  # type: ignore[type-arg]
        table = EphemeralEntry.__table__
        key, now, expires = bindparam("b_key"), bindparam("b_now"), bindparam("b_expires")
        live = (table.c.key == key, table.c.expires_at > now)
        written = insert(table).values(key=key, value=bindparam("b_value"), counter=0, expires_at=expires)
        replaced = {"value": written.excluded.value, "counter": 0, "expires_at": written.excluded.expires_at}
        self.set = written.on_conflict_do_update(index_elements=[table.c.key], set_=replaced)
        self.add = written.on_conflict_do_update(
            index_elements=[table.c.key], set_=replaced, where=table.c.expires_at <= now
        ).returning(table.c.key)
        self.get = select(table.c.value, table.c.counter).where(*live)
        self.take = delete(table).where(*live).returning(table.c.value, table.c.counter)
        self.delete = delete(table).where(table.c.key == key)
        self.purge = delete(table).where(table.c.expires_at <= now)
        counted = insert(table).values(key=key, value=None, counter=1, expires_at=expires)
        expired = table.c.expires_at <= now
        self.incr = counted.on_conflict_do_update(
            index_elements=[table.c.key],
            set_={
                "counter": case((expired, 1), else_=table.c.counter + 1),
                "expires_at": case((expired, counted.excluded.expires_at), else_=table.c.expires_at),
            },
        ).returning(table.c.counter)


def open_ephemeral(redis_url: str, prefix: str, database: Database) -> Ephemeral:
    if redis_url:
        return RedisEphemeral(redis_url, prefix)
    return SqlEphemeral(database, prefix)
