"""OIDC fixtures: registered clients, a logged-in browser, PKCE helpers and a live Varco on a real port."""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from werkzeug.serving import make_server

from idp.app import create_app
from idp.oidc.clients import NewClient
from tests.support.pages import Page

PASSWORD = "Correct-Horse-9"
RP = "https://rp.example.org/cb"


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


@pytest.fixture
def op(app):
    return app.extensions["varco_oidc"]


@pytest.fixture
def register(op):
    def add(client_id: str = "webapp", **fields: Any):
        values = {"redirect_uris": (RP,), "name": client_id.title(), "first_party": True}
        values.update(fields)
        return op.clients.add(NewClient(client_id=client_id, **values))

    return add


@pytest.fixture
def confidential(register):
    client, secret = register("webapp", post_logout_redirect_uris=("https://rp.example.org/bye",))
    return client, secret


@pytest.fixture
def person(make_account):
    return make_account("mario.rossi", PASSWORD, fiscal_code=None)


@pytest.fixture
def logged_in(browser, person):
    page = browser.login("mario.rossi", PASSWORD)
    assert page.status == 303, page.text
    return browser


def authorize_url(client_id: str = "webapp", challenge: str | None = None, **extra: str) -> str:
    from urllib.parse import urlencode

    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": RP,
        "scope": "openid profile email offline_access",
        "state": "st-1",
        "nonce": "n-1",
    }
    if challenge:
        params.update(code_challenge=challenge, code_challenge_method="S256")
    params.update(extra)
    params = {k: v for k, v in params.items() if v is not None}
    return "/oidc/authorize?" + urlencode(params)


def get_code(browser, challenge: str, client_id: str = "webapp", **extra: str) -> dict[str, str]:
    page = browser.get(authorize_url(client_id, challenge, **extra))
    assert page.status == 302, (page.status, page.text)
    assert page.location.startswith(RP), page.location
    return query(page.location)


def token_request(client, data: dict, auth: tuple[str, str] | None = None, **kwargs: Any):
    headers = kwargs.pop("headers", {})
    if auth:
        raw = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        headers["Authorization"] = f"Basic {raw}"
    return client.post("/oidc/token", data=data, headers=headers, **kwargs)


# --- a live Varco for the RP libraries ------------------------------------------------------
class HttpBrowser:
    """The Page-returning browser of tests.support.pages, over real HTTP."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.session = requests.Session()

    def _url(self, url: str) -> str:
        return url if url.startswith("http") else self.base + url

    def get(self, url: str) -> Page:
        response = self.session.get(self._url(url), allow_redirects=False)
        return Page(response.status_code, response.text, response.headers.get("Location"))

    def post(self, url: str, data: dict) -> Page:
        response = self.session.post(self._url(url), data=data, allow_redirects=False)
        return Page(response.status_code, response.text, response.headers.get("Location"))

    def follow_until(self, page: Page, prefix: str, limit: int = 8) -> Page:
        while page.status in (301, 302, 303) and not page.location.startswith(prefix) and limit:
            page = self.get(page.location)
            limit -= 1
        return page

    def submit(self, page: Page, **fields: str) -> Page:
        return self.post(page.action, {"csrf_token": page.token, **fields})

    def login_at(self, url: str, redirect_prefix: str, username: str = "mario.rossi") -> str:
        """Open an authorization URL, log in if asked, and return the redirect back to the RP."""
        page = self.follow_until(self.get(url), redirect_prefix)
        if page.status == 200 and 'name="password"' in page.text:
            page = self.submit(page, username=username, password=PASSWORD)
            page = self.follow_until(page, redirect_prefix)
        assert page.status in (302, 303) and page.location.startswith(redirect_prefix), (page.status, page.text)
        return page.location


@dataclass
class Live:
    url: str
    app: Any
    op: Any


@pytest.fixture
def live(settings):
    class Dispatch:
        app = None

        def __call__(self, environ, start_response):  # type: ignore[no-untyped-def]
            return self.app(environ, start_response)

    dispatch = Dispatch()
    server = make_server("127.0.0.1", 0, dispatch, threaded=True)
    url = f"http://127.0.0.1:{server.server_port}"
    dispatch.app = create_app(settings.replace(server={"issuer": url}))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield Live(url, dispatch.app, dispatch.app.extensions["varco_oidc"])
    server.shutdown()
    dispatch.app.extensions["varco"].db.dispose()


# --- a client's back-channel logout endpoint -------------------------------------------------
class Receiver:
    """A client's back-channel logout endpoint on a real port: answers 500 while `down` and for its
    first `failures` requests, then `status`."""

    def __init__(self, down: bool = False, delay: float = 0.0, failures: int = 0, status: int = 200) -> None:
        self.down = down
        self.failures = failures
        self.received: list[str] = []
        self.hits = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"])).decode()
                outer.hits += 1
                time.sleep(delay)
                if outer.down or outer.failures:
                    outer.failures = max(0, outer.failures - 1)
                    self.send_response(500)
                else:
                    outer.received.append(parse_qs(body)["logout_token"][0])
                    self.send_response(status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.uri = f"http://127.0.0.1:{self.server.server_port}/bc"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    made: list[Receiver] = []

    def make(**kwargs) -> Receiver:
        made.append(Receiver(**kwargs))
        return made[-1]

    yield make
    for item in made:
        item.close()

