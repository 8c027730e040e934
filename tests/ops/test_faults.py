"""Fail closed: with Redis or the database gone, pages answer 503 and nothing is half-written."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from urllib.parse import urlsplit

import pytest
import redis
from sqlalchemy import select

from idp.app import create_app
from idp.settings import load_settings
from idp.store.models import Account, AuditEvent
from tests.conftest import PG_URL
from tests.support.pages import Browser
from tests.support.tcpproxy import TcpProxy


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    """A private redis-server process, so a test can really stop it."""

    def __init__(self, tmp_path) -> None:  # type: ignore[no-untyped-def]
        self.port = free_port()
        self.dir = tmp_path
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.dir),
            ],
            stdout=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port)
        for _ in range(100):
            try:
                client.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("private redis-server did not start")

    def stop(self) -> None:
        if self.process:
            self.process.terminate()
            self.process.wait(10)
            self.process = None


@pytest.fixture
def private_redis(tmp_path):
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def pg_proxy(pg_url):
    parts = urlsplit(PG_URL)
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432)
    yield proxy, pg_url.replace(f"{parts.hostname}:{parts.port}", f"127.0.0.1:{proxy.port}")
    proxy.close()


def app_for(home, keys_dir, database_url: str, redis_url: str):  # type: ignore[no-untyped-def]
    from tests.conftest import empty_tables

    empty_tables(database_url)
    settings = load_settings(
        home,
        environ={
            "VARCO_DATABASE_URL": database_url,
            "VARCO_REDIS_URL": redis_url,
            "VARCO_KEYS_DIR": str(keys_dir),
        },
    )
    return create_app(settings)


def add_account(app, temporary: bool = False) -> str:
    from idp.accounts.service import NewAccount

    svc = app.extensions["varco"]
    svc.accounts.create(NewAccount("mario.rossi", "Mario", "Rossi", "mario.rossi@uni.example.it"), "Correct-Horse-9")
    return svc.accounts.issue_temporary_password("mario.rossi", actor="test") if temporary else "Correct-Horse-9"


def account_row(app) -> Account:
    with app.extensions["varco"].db.session() as session:
        return session.execute(select(Account)).scalar_one()


def test_redis_stopped_makes_login_answer_503_and_readyz_name_it(home, keys_dir, pg_url, private_redis):
    app = app_for(home, keys_dir, pg_url, f"redis://127.0.0.1:{private_redis.port}/0")
    add_account(app)
    browser = Browser(app.test_client())
    page = browser.open_login()
    assert page.status == 200
    private_redis.stop()
    response = browser.submit(page, username="mario.rossi", password="Correct-Horse-9")
    assert response.status == 503
    assert "temporaneamente non disponibile" in response.text
    assert browser.get("/login").status == 503
    ready = app.test_client().get("/readyz")
    assert ready.status_code == 503
    assert ready.get_json()["down"] == ["ephemeral"]
    assert ready.get_json()["checks"]["database"] == "ok"
    assert app.test_client().get("/healthz").status_code == 200
    row = account_row(app)
    assert row.login_count == 0
    # Redis comes back empty (it keeps nothing on disk). The form in the page was never stored
    # (a fresh flow and its form token carry their own MAC and expiry), so it still works, once.
    private_redis.start()
    again = browser.submit(page, username="mario.rossi", password="Correct-Horse-9")
    assert again.status == 303
    assert account_row(app).login_count == 1
    replayed = browser.submit(page, username="mario.rossi", password="Correct-Horse-9")
    assert replayed.status == 400
    assert "già stato inviato" in replayed.alerts
    assert account_row(app).login_count == 1
    app.extensions["varco"].db.dispose()


def test_database_unreachable_makes_login_answer_503_and_readyz_name_it(home, keys_dir, pg_proxy, redis_client):
    proxy, url = pg_proxy
    from tests.conftest import REDIS_URL

    app = app_for(home, keys_dir, url, REDIS_URL)
    add_account(app)
    browser = Browser(app.test_client())
    page = browser.open_login()
    proxy.cut()
    response = browser.submit(page, username="mario.rossi", password="Correct-Horse-9")
    assert response.status == 503
    assert "temporaneamente non disponibile" in response.text
    assert browser.get("/login").status == 503
    ready = app.test_client().get("/readyz")
    assert ready.status_code == 503
    assert ready.get_json()["down"] == ["database"]
    proxy.restore()
    assert app.test_client().get("/readyz").status_code == 200
    row = account_row(app)
    assert row.login_count == 0
    assert browser.login("mario.rossi", "Correct-Horse-9").status == 303
    app.extensions["varco"].db.dispose()


def test_password_change_with_redis_down_changes_nothing(home, keys_dir, pg_url, private_redis):
    app = app_for(home, keys_dir, pg_url, f"redis://127.0.0.1:{private_redis.port}/0")
    temporary = add_account(app, temporary=True)
    before = account_row(app)
    browser = Browser(app.test_client())
    change = browser.follow(browser.login("mario.rossi", temporary))
    private_redis.stop()
    response = browser.submit(change, new_password="A-brand-new-phrase", confirm_password="A-brand-new-phrase")
    assert response.status == 503
    after = account_row(app)
    assert after.password_hash == before.password_hash
    assert after.password_must_change is True
    app.extensions["varco"].db.dispose()


def test_a_temporary_password_with_redis_down_changes_nothing(home, keys_dir, pg_url, private_redis):
    # The helpdesk would print nothing, and the person would be left with a password nobody has seen.
    from idp.store.ephemeral import EphemeralUnavailable

    app = app_for(home, keys_dir, pg_url, f"redis://127.0.0.1:{private_redis.port}/0")
    add_account(app)
    before = account_row(app)
    private_redis.stop()
    with pytest.raises(EphemeralUnavailable):
        app.extensions["varco"].accounts.issue_temporary_password("mario.rossi", actor="helpdesk")
    after = account_row(app)
    assert (after.password_hash, after.password_must_change) == (before.password_hash, before.password_must_change)
    app.extensions["varco"].db.dispose()


def test_password_change_with_database_down_changes_nothing(home, keys_dir, pg_proxy):
    proxy, url = pg_proxy
    from tests.conftest import REDIS_URL

    app = app_for(home, keys_dir, url, REDIS_URL)
    temporary = add_account(app, temporary=True)
    before = account_row(app)
    browser = Browser(app.test_client())
    change = browser.follow(browser.login("mario.rossi", temporary))
    proxy.cut()
    response = browser.submit(change, new_password="A-brand-new-phrase", confirm_password="A-brand-new-phrase")
    assert response.status == 503
    proxy.restore()
    after = account_row(app)
    assert after.password_hash == before.password_hash
    assert after.password_must_change is True
    with app.extensions["varco"].db.session() as session:
        actions = session.execute(select(AuditEvent.action)).scalars().all()
    assert "password.changed" not in actions
    app.extensions["varco"].db.dispose()


def test_account_creation_with_database_down_leaves_no_rows(home, keys_dir, pg_proxy):
    from idp.accounts.service import NewAccount
    from idp.store.db import DatabaseUnavailable
    from tests.conftest import REDIS_URL

    proxy, url = pg_proxy
    app = app_for(home, keys_dir, url, REDIS_URL)
    svc = app.extensions["varco"]
    proxy.cut()
    with pytest.raises(DatabaseUnavailable):
        svc.accounts.create(NewAccount("anna.b", "Anna", "B", "anna.b@uni.example.it"), "Correct-Horse-9")
    proxy.restore()
    assert svc.accounts.count() == 0
    app.extensions["varco"].db.dispose()


def test_token_endpoint_answers_503_in_json_while_the_database_is_unreachable(home, keys_dir, pg_proxy, redis_client):
    import base64

    from idp.oidc.clients import NewClient
    from tests.conftest import REDIS_URL

    proxy, url = pg_proxy
    app = app_for(home, keys_dir, url, REDIS_URL)
    op = app.extensions["varco_oidc"]
    _, secret = op.clients.add(NewClient("svc", grant_types=("client_credentials",), scopes=("profile",)))
    op.clients._cache.clear()  # the registration must be read from the database while it is cut
    basic = "Basic " + base64.b64encode(f"svc:{secret}".encode()).decode()

    def token_request():  # type: ignore[no-untyped-def]
        return app.test_client().post(
            "/oidc/token", data={"grant_type": "client_credentials"}, headers={"Authorization": basic}
        )

    proxy.cut()
    response = token_request()
    assert response.status_code == 503
    assert response.get_json()["error"] == "temporarily_unavailable"
    assert response.headers["Cache-Control"] == "no-store"
    proxy.restore()
    assert token_request().status_code == 200
    app.extensions["varco"].db.dispose()
