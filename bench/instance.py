"""A throw-away Varco instance for the benchmarks: keys, a private PostgreSQL schema and Redis prefix
(or the embedded stores), the schema migrated, and services to seed it with."""

from __future__ import annotations

import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

PG_URL = os.environ.get("VARCO_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("VARCO_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def create_instance(
    home: Path, embedded: bool, extra_env: dict[str, str] | None = None
) -> tuple[dict[str, str], str | None, Any]:
    """Returns (environment for the server, PostgreSQL schema or None, services to seed it with)."""
    from sqlalchemy import create_engine, text

    from idp.app import build_services
    from idp.keys import init_keys
    from idp.settings import load_settings
    from idp.store.db import Database

    init_keys(home / "keys")
    # Password logins only: the 2FA rules are switched off for the benchmarks' accounts.
    env = {
        "VARCO_HOME": str(home),
        "VARCO_REDIS_PREFIX": f"bench:{secrets.token_hex(4)}:",
        "VARCO_MFA_REQUIRED_POPULATIONS": "",
        **(extra_env or {}),
    }
    schema = None
    if not embedded:
        schema = f"varco_bench_{secrets.token_hex(4)}"
        with create_engine(PG_URL).begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        env["VARCO_DATABASE_URL"] = f"{PG_URL}?options=-csearch_path%3D{schema}"
        env["VARCO_REDIS_URL"] = REDIS_URL
    settings = load_settings(home, environ=env)
    Database(settings.database_url).upgrade()
    return env, schema, build_services(settings)


def drop_schema(schema: str) -> None:
    from sqlalchemy import create_engine, text

    with create_engine(PG_URL).begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


def run_load(seconds: float, clients: int, make_worker: Callable[[int], Callable[[], None]]) -> tuple[int, float]:
    """Run `clients` threads, each calling its worker in a loop for `seconds`: (calls done, seconds taken)."""
    done = [0] * clients
    errors: list[BaseException] = []
    workers = [make_worker(i) for i in range(clients)]
    stop = time.perf_counter() + seconds

    def loop(index: int) -> None:
        try:
            while time.perf_counter() < stop:
                workers[index]()
                done[index] += 1
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    started = time.perf_counter()
    threads = [threading.Thread(target=loop, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return sum(done), time.perf_counter() - started
