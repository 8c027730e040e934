"""A throw-away Varco instance for the benchmarks: keys, a private PostgreSQL schema and Redis prefix
(or the embedded stores), the schema migrated, and services to seed it with."""

from __future__ import annotations

import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
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


def _local_process(pid: int, name: str) -> bool:
    try:
        return Path(f"/proc/{pid}/comm").read_text(encoding="utf-8").strip().startswith(name)
    except OSError:
        return False


def _threads(pid: int) -> list[int]:
    try:
        return [int(task.name) for task in Path(f"/proc/{pid}/task").iterdir()]
    except OSError:
        return []


def _parent(pid: int) -> int | None:
    try:
        # The parent pid is the second field after the parenthesised command name.
        return int(Path(f"/proc/{pid}/stat").read_text(encoding="utf-8").rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def _children(parent: int) -> list[int]:
    pids = (int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit())
    return [pid for pid in pids if _parent(pid) == parent]


def store_processes() -> dict[str, list[int]]:
    """The threads of the PostgreSQL server (the postmaster and its children: new backends inherit
    its CPUs) and of the Redis server, by store, for those that run on this machine."""
    import redis
    from sqlalchemy import create_engine, text

    found: dict[str, list[int]] = {}
    engine = create_engine(PG_URL)
    with engine.connect() as conn:
        backend = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
    engine.dispose()
    postmaster = _parent(backend)
    if postmaster and _local_process(postmaster, "postgres"):
        found["PostgreSQL"] = [thread for pid in [postmaster, *_children(postmaster)] for thread in _threads(pid)]
    client = redis.Redis.from_url(REDIS_URL)
    redis_pid = int(client.info("server")["process_id"])
    client.close()
    if _local_process(redis_pid, "redis-server"):
        found["Redis"] = _threads(redis_pid)
    return found


@contextmanager
def stores_on(cpus: set[int]) -> Iterator[str]:
    """Run the local PostgreSQL and Redis servers on `cpus` for the block, then give them back the
    CPUs they had. In production the stores are other machines; on the worker's core their CPU time
    would be charged to the login. Yields a line that says what was moved."""
    moved: dict[int, set[int]] = {}
    names = []
    try:
        for name, threads in store_processes().items():
            for thread in threads:
                try:
                    before = os.sched_getaffinity(thread)
                    os.sched_setaffinity(thread, cpus)
                except OSError:
                    continue
                moved[thread] = before
                if name not in names:
                    names.append(name)
        where = ",".join(map(str, sorted(cpus)))
        yield f"{' and '.join(names)} on CPU {where}" if names else "stores not moved (remote, or not allowed)"
    finally:
        for thread, before in moved.items():
            with suppress(OSError):
                os.sched_setaffinity(thread, before)


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
