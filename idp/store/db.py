"""Engine, sessions and migrations for the durable store."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import SQLAlchemyError as _SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).with_name("migrations")


class DatabaseUnavailable(Exception):
    """The durable store did not answer; the request fails closed with a 503."""


SQLAlchemyError = _SQLAlchemyError


class Database:
    def __init__(self, url: str, pool_size: int = 5) -> None:
        self.url = url
        if url.startswith("sqlite"):
            path = url.split("///", 1)[-1]
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            self.engine: Engine = create_engine(url, connect_args={"timeout": 15})
            event.listen(self.engine, "connect", _sqlite_pragmas)
        else:
            self.engine = create_engine(
                url,
                pool_size=pool_size,
                pool_pre_ping=True,
                pool_timeout=5,
                connect_args={"connect_timeout": 3},
            )
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._last_ok = 0.0

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        """One unit of work: committed on success, rolled back whole on any error."""
        session = self.sessions()
        try:
            yield session
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

    def ping(self, max_age: float = 0.0) -> None:
        """One round trip: a pooled PostgreSQL connection is pre-pinged on checkout, a new one connects.

        With `max_age`, a successful contact within that many seconds counts as a ping (page views
        under load then cost no extra round trip, and an outage is still noticed within max_age)."""
        if max_age and time.monotonic() - self._last_ok < max_age:
            return
        try:
            with self.engine.connect() as conn:
                if self.dialect == "sqlite":
                    conn.execute(text("SELECT 1"))
        except OperationalError as exc:
            self._last_ok = 0.0
            raise DatabaseUnavailable(str(exc.orig or exc)) from exc
        self._last_ok = time.monotonic()

    def upgrade(self) -> None:
        command.upgrade(alembic_config(self.engine), "head")

    def dispose(self) -> None:
        self.engine.dispose()


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=15000")
    cursor.close()
