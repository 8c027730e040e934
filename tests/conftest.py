"""Fixtures that build real things: a PostgreSQL schema and a Redis key space per run, SQLite files,
keys, and a fresh app per test. Store-dependent tests run twice: on PostgreSQL + Redis and on the
embedded defaults (SQLite + the SQL-backed ephemeral store)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import pytest
import redis
from sqlalchemy import create_engine, text

from idp.app import build_services, create_app
from idp.keys import init_keys
from idp.settings import load_settings
from idp.store.db import Database
from idp.store.models import Base
from tests.support.pages import Browser

PG_URL = os.environ.get("VARCO_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("VARCO_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
BACKENDS = ("pg+redis", "sqlite+sql")


def with_search_path(url: str, schema: str) -> str:
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}options=-csearch_path%3D{schema}"


@pytest.fixture(scope="session")
def keys_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("keys")
    init_keys(directory, "Varco test")
    return directory


@pytest.fixture(scope="session")
def pg_url() -> str:
    """A private schema in the test database for this run, migrated with Alembic, dropped at the end."""
    schema = f"varco_t_{secrets.token_hex(4)}"
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = with_search_path(PG_URL, schema)
    db = Database(url)
    db.upgrade()
    db.dispose()
    yield url
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'varco.db'}"
    db = Database(url)
    db.upgrade()
    db.dispose()
    return url


@pytest.fixture(scope="session")
def redis_client() -> redis.Redis:
    client = redis.Redis.from_url(REDIS_URL)
    client.ping()
    return client


def empty_tables(url: str) -> None:
    db = Database(url)
    with db.engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())
    db.dispose()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def home(tmp_path: Path) -> Path:
    (tmp_path / "var").mkdir()
    return tmp_path


@pytest.fixture
def settings(backend: str, home: Path, keys_dir: Path, request: pytest.FixtureRequest, redis_client):
    prefix = f"varco:test:{secrets.token_hex(6)}:"
    if backend == "pg+redis":
        db_url = request.getfixturevalue("pg_url")
        env = {"VARCO_DATABASE_URL": db_url, "VARCO_REDIS_URL": REDIS_URL, "VARCO_REDIS_PREFIX": prefix}
    else:
        db_url = request.getfixturevalue("sqlite_url")
        env = {"VARCO_DATABASE_URL": db_url, "VARCO_REDIS_PREFIX": prefix}
    env["VARCO_KEYS_DIR"] = str(keys_dir)
    env["VARCO_FEDERATION_MOCK_BROKERS"] = "spid,cie,eidas"
    if request.node.get_closest_marker("mfa_policy") is None:
        # Most tests are about other things: their accounts log in with a password alone. Tests
        # marked `mfa_policy` get the shipped 2FA rules (2FA from the second login).
        env["VARCO_MFA_REQUIRED_POPULATIONS"] = ""
    smtp = request.node.get_closest_marker("smtp")
    if smtp is not None:
        env["VARCO_SMTP_URL"] = request.getfixturevalue("smtp_sink").url
    empty_tables(db_url)
    yield load_settings(home, environ=env)
    if backend == "pg+redis":
        keys = list(redis_client.scan_iter(match=prefix + "*", count=1000))
        if keys:
            redis_client.delete(*keys)


@pytest.fixture
def services(settings):
    svc = build_services(settings)
    yield svc
    svc.db.dispose()


@pytest.fixture
def app(settings):
    application = create_app(settings)
    application.config["TESTING"] = True
    yield application
    application.extensions["varco"].db.dispose()


@pytest.fixture
def browser(app) -> Browser:
    return Browser(app.test_client())


@pytest.fixture
def make_account(app):
    """Create an account through the same service the CLI uses."""
    from idp.accounts.service import NewAccount

    def make(username: str = "mario.rossi", password: str | None = "Correct-Horse-9", **fields):
        values = {
            "given_name": "Mario",
            "family_name": "Rossi",
            "email": f"{username}@studenti.uni.example.it",
            "population": "student",
        }
        values.update(fields)
        return app.extensions["varco"].accounts.create(NewAccount(username=username, **values), password)

    return make


@pytest.fixture
def smtp_sink():
    from tests.support.smtp import start_sink

    sink, controller = start_sink()
    yield sink
    controller.stop()


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def chromium():
    """Debian's Chromium driven by Playwright, shared by every browser test of the run."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
