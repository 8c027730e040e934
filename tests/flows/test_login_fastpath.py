"""The login fast path (idp/flow/fastpath.py) against the framework path, request by request.

Every scenario below runs from the same starting state twice, with a fresh browser each time: once
through the full stack (the fast path in front) and once through the framework path alone
(`app.extensions["varco_login_fastpath"].app`). Both must give the same answers: status, Location,
headers, cookies and page, apart from the random flow ids and form tokens. A recorder beneath a
second fast path shows who answered each request: the fast path itself (a plain login), the view
with the step's outcome handed down (a refusal), or the framework path with the request untouched.
"""

from __future__ import annotations

import difflib
import hashlib
import html
import io
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlencode, urlsplit

import pytest
from sqlalchemy import func, select
from werkzeug.test import Client, TestResponse, encode_multipart
from werkzeug.wrappers import Request

from idp.accounts.identifiers import normalise_identifier
from idp.app import SECURITY_HEADERS
from idp.flow.fastpath import MAX_BODY, LoginFastPath, read_cookies, read_form
from idp.flow.state import FINISHED
from idp.flow.views import SUBMITTED_BENEATH
from idp.sessions import SSO_COOKIE
from idp.store.db import DatabaseUnavailable
from idp.store.ephemeral import EphemeralUnavailable
from idp.store.models import Account, AuditEvent
from idp.web import BROWSER_COOKIE, LANG_COOKIE, sign_browser_cookie, verify_browser_cookie
from tests.support.mfa import set_login_count

PASSWORD = "Correct-Horse-9"
# A password that only reads right when `+` is a space and `%2B` a plus sign.
ODD_PASSWORD = "Odd+pass word%9-Horse"
FORM = "application/x-www-form-urlencoded"
ADDR = "192.0.2.7"
RP = "https://rp.example.org/cb"

# Who answers a request when the fast path is in front.
FAST = "answered by the fast path"
HANDED = "refused beneath; the view renders the page"
PASSED = "passed on untouched to the framework path"

FLOW_ID = re.compile(r"flow=([A-Za-z0-9_-]{16,64})")
TOKEN_VALUE = re.compile(r'(name="csrf_token" value=")([^"]+)(")')
FORM_ACTION = re.compile(r'<form method="post" action="([^"]+)"')
OIDC_CODE = re.compile(r"([?&]code=)[^&]+")
ALERT = re.compile(r'role="alert"[^>]*>(.*?)</(?:p|div)>', re.S)


# --- the world a scenario runs in -------------------------------------------------------------------
class World:
    """Accounts made once per test; `reset` puts back what a run changes (login counts, throttling)."""

    def __init__(self, app, make_account) -> None:  # type: ignore[no-untyped-def]
        self.app = app
        self.svc = app.extensions["varco"]
        self.make_account = make_account
        self.accounts: dict[str, Account] = {}
        self.login_counts: dict[str, int] = {}
        self.secrets: dict[str, str] = {}

    def account(self, username: str, password: str | None = PASSWORD, login_count: int = 0, **fields: Any) -> Account:
        account = self.make_account(username, password, **fields)
        if login_count:
            set_login_count(self.app, account.id, login_count)
        self.accounts[username] = account
        self.login_counts[username] = login_count
        return account

    def reset(self) -> None:
        for username, count in self.login_counts.items():
            set_login_count(self.app, self.accounts[username].id, count)
            self.svc.accounts.unlock(username, actor="test")
        for typed in UNKNOWN_IDENTIFIERS:
            digest = hashlib.sha256(normalise_identifier(typed).encode()).hexdigest()
            self.svc.ephemeral.delete(f"loginfail:id:{digest}")

    def browser_cookie(self, browser: str) -> str:
        return sign_browser_cookie(self.svc.keys.cookie_key, browser)


# Identifiers with no account that scenarios type (their throttle counters are cleared between runs).
UNKNOWN_IDENTIFIERS = ("nobody", "è", "%ZZ")


def standard_world(app, make_account) -> World:  # type: ignore[no-untyped-def]
    world = World(app, make_account)
    world.account("mario.rossi", student_id="20012345")
    world.account("odd.user", ODD_PASSWORD)
    world.account("temp.user")
    world.secrets["temp.user"] = world.svc.accounts.issue_temporary_password("temp.user", actor="helpdesk")
    world.account("off.user")
    world.svc.accounts.set_status("off.user", "disabled", actor="test")
    world.account("slow.user")
    sessions = world.svc.sessions
    mario = world.accounts["mario.rossi"].id
    session = sessions.new(mario, ("pwd",), "https://refeds.org/profile/sfa", int(time.time()), False)
    world.svc.ephemeral.batch([sessions.storing(session)])
    world.secrets["live_sso"] = session.id
    from idp.oidc.clients import NewClient

    op = app.extensions["varco_oidc"]
    op.clients.add(NewClient(client_id="webapp", redirect_uris=(RP,), name="Webapp", first_party=True))
    op.clients.add(
        NewClient(client_id="strict", redirect_uris=(RP,), name="Strict", first_party=True, require_mfa=True)
    )
    return world


# --- one browser against one WSGI callable -----------------------------------------------------------
@dataclass
class Exchange:
    step: str
    expect: str
    method: str
    path: str
    query: str
    body: bytes | None
    response: TestResponse


@dataclass
class Run:
    """A fresh browser (its own cookies) sending a scenario's requests to one WSGI callable."""

    wsgi: Callable
    world: World
    base_url: str = "http://localhost"
    headers: dict[str, str] = field(default_factory=dict)
    exchanges: list[Exchange] = field(default_factory=list)
    before: Callable[[], None] | None = None
    after: Callable[[Exchange], None] | None = None

    def __post_init__(self) -> None:
        self.client = Client(self.wsgi)

    def send(
        self,
        step: str,
        expect: str,
        method: str,
        url: str,
        body: bytes | None = None,
        content_type: str | None = None,
        headers: dict[str, str] | None = None,
        environ: dict[str, Any] | None = None,
    ) -> TestResponse:
        if self.before is not None:
            self.before()
        url = self.local(url)
        kwargs: dict[str, Any] = {}
        if body is not None:
            kwargs["data"] = body
        if content_type is not None:
            kwargs["content_type"] = content_type
        response = self.client.open(
            url,
            method=method,
            base_url=self.base_url,
            headers={**self.headers, **(headers or {})},
            environ_overrides={"REMOTE_ADDR": ADDR, **(environ or {})},
            **kwargs,
        )
        response.get_data()  # read it now: the next request may change the store
        path, _, query = url.partition("?")
        exchange = Exchange(step, expect, method, path, query, body, response)
        self.exchanges.append(exchange)
        if self.after is not None:
            self.after(exchange)
        return response

    def local(self, url: str) -> str:
        """A path a page or a redirect gave, made relative to the root the run is mounted under."""
        root = urlsplit(self.base_url).path.rstrip("/")
        for prefix in (root, unquote(root)) if root else ():
            if url.startswith(prefix + "/"):
                return url[len(prefix):]
        if root and "/login" in url:
            # A root mangled on the way (a difference already recorded): go on to the same place anyway.
            return url[url.index("/login"):]
        return url

    def get(self, url: str = "/login", expect: str = PASSED, step: str = "GET", **kwargs: Any) -> TestResponse:
        return self.send(step, expect, "GET", url, **kwargs)

    def post(self, url: str, body: bytes | str, expect: str, step: str = "POST", **kwargs: Any) -> TestResponse:
        kwargs.setdefault("content_type", FORM)
        return self.send(step, expect, "POST", url, body.encode() if isinstance(body, str) else body, **kwargs)

    def open_login(self, **kwargs: Any) -> tuple[str, str, str]:
        """A plain GET /login: (the form's action, its token, the flow id)."""
        return form_of(self.get("/login", FAST, step="GET /login", **kwargs))

    def cookie(self, name: str) -> str | None:
        found = self.client.get_cookie(name)
        return found.value if found is not None else None


def form_of(response: TestResponse) -> tuple[str, str, str]:
    text = response.get_data(as_text=True)
    action = html.unescape(FORM_ACTION.search(text).group(1))
    token = TOKEN_VALUE.search(text).group(2)
    return action, token, FLOW_ID.search(action).group(1)


def form(token: str, username: str = "mario.rossi", password: str = PASSWORD, *extra: tuple[str, str]) -> str:
    return urlencode([("csrf_token", token), ("username", username), ("password", password), *extra])


# --- the scenarios ----------------------------------------------------------------------------------
@dataclass
class Case:
    label: str
    steps: Callable[[Run], None]
    base_url: str = "http://localhost"
    headers: dict[str, str] = field(default_factory=dict)


def get_login(expect: str, url: str = "/login", headers: dict | None = None, cookies: dict | None = None,
              method: str = "GET", then_post: bool = False) -> Callable[[Run], None]:
    def steps(run: Run) -> None:
        for name, value in (cookies or {}).items():
            run.client.set_cookie(name, value(run.world) if callable(value) else value)
        response = run.send(f"{method} {url}", expect, method, url, headers=headers)
        if then_post:
            # Whatever page it gave, a correct password posted to its form.
            action, token, _ = form_of(response)
            run.post(action, form(token), FAST, headers=headers)
    return steps


def post_login(body: Callable[[str, Run], bytes | str], expect: str, query: str = "flow={flow}",
               content_type: str | None = FORM, headers: dict | None = None, environ: dict | None = None,
               cookies: dict[str, str] | None = None) -> Callable[[Run], None]:
    """GET /login, then POST the form `body(token, run)` to /login?{query}."""

    def steps(run: Run) -> None:
        for name, value in (cookies or {}).items():
            run.client.set_cookie(name, value)
        action, token, flow = run.open_login(headers=headers)
        url = "/login" + (f"?{query.format(flow=flow)}" if query is not None else "")
        run.post(url, body(token, run), expect, content_type=content_type, headers=headers, environ=environ)

    return steps


def plain(username: str = "mario.rossi", password: str = PASSWORD, *extra: tuple[str, str]):  # type: ignore[no-untyped-def]
    return lambda token, run: form(token, username, run.world.secrets.get(password, password), *extra)


def raw(template: str):  # type: ignore[no-untyped-def]
    return lambda token, run: template.format(token=token, pw=PASSWORD)


def replayed_after_success(run: Run) -> None:
    action, token, _ = run.open_login()
    body = form(token)
    run.post(action, body, FAST, step="POST")
    run.post(action, body, PASSED, step="POST again")


def replayed_after_refusal(run: Run) -> None:
    action, token, _ = run.open_login()
    body = form(token, password="wrong-password-1")
    run.post(action, body, HANDED, step="POST wrong")
    run.post(action, body, PASSED, step="POST again")


def refused_then_right(run: Run) -> None:
    action, token, _ = run.open_login()
    page = run.post(action, form(token, password="wrong-password-1"), HANDED, step="POST wrong")
    action, token, _ = form_of(page)
    run.post(action, form(token), FAST, step="POST right")


def throttled(run: Run) -> None:
    limit = run.world.svc.settings.login.failed_attempts_per_account
    action, token, _ = run.open_login()
    for attempt in range(limit):
        page = run.post(action, form(token, "slow.user", "wrong-password-1"), HANDED, step=f"POST wrong #{attempt}")
        action, token, _ = form_of(page)
    run.post(action, form(token, "slow.user"), HANDED, step="POST right, throttled")


def temporary_password(run: Run) -> None:
    action, token, _ = run.open_login()
    done = run.post(action, form(token, "temp.user", run.world.secrets["temp.user"]), FAST)
    page = run.get(done.headers["Location"], PASSED, step="GET change password")
    # The password form posted again to the flow, now at its change-password step.
    run.post(action, form(token, "temp.user", run.world.secrets["temp.user"]), PASSED, step="POST password again")
    action, token, _ = form_of(page)
    new = "A-brand-new-phrase-77"
    run.post(action, urlencode({"csrf_token": token, "new_password": new, "confirm_password": "other"}), PASSED,
             step="POST change, mismatched")


def sso_cookie_then_post(run: Run) -> None:
    action, token, _ = run.open_login()
    run.client.set_cookie(SSO_COOKIE, run.world.secrets["live_sso"])
    run.post(action, form(token), PASSED)


def wrong_browser(run: Run) -> None:
    action, token, _ = run.open_login()
    run.client.set_cookie(BROWSER_COOKIE, run.world.browser_cookie("another-browser-entirely"))
    run.post(action, form(token), PASSED)


def forged_browser(run: Run) -> None:
    action, token, _ = run.open_login()
    value = run.cookie(BROWSER_COOKIE)
    run.client.set_cookie(BROWSER_COOKIE, value[:-1] + ("0" if value[-1] != "0" else "1"))
    run.post(action, form(token), PASSED)


def no_browser(run: Run) -> None:
    action, token, _ = run.open_login()
    run.client.delete_cookie(BROWSER_COOKIE)
    run.post(action, form(token), PASSED)


@contextmanager
def clock_moved(seconds: int) -> Iterator[None]:
    """Time passes (for everything that reads time.time): flows and form tokens grow old."""
    real = time.time
    time.time = lambda: real() + seconds
    try:
        yield
    finally:
        time.time = real


@contextmanager
def broken(target: Any, name: str, fault: Exception) -> Iterator[None]:
    """`target.name` fails with `fault` for a while (a store going down)."""

    def fail(*args: Any, **kwargs: Any) -> Any:
        raise fault

    setattr(target, name, fail)
    try:
        yield
    finally:
        delattr(target, name)


def store_down(expect: str, target: Callable[[Any], Any], name: str, fault: Exception,
               get: bool = False) -> Callable[[Run], None]:
    def steps(run: Run) -> None:
        if get:
            with broken(target(run.world.svc), name, fault):
                run.get("/login", expect, step="GET /login, store down")
            return
        action, token, _ = run.open_login()
        with broken(target(run.world.svc), name, fault):
            run.post(action, form(token), expect, step="POST, store down")
    return steps


def after_the_flow_lifetime(refused_first: bool) -> Callable[[Run], None]:
    def steps(run: Run) -> None:
        action, token, _ = run.open_login()
        if refused_first:
            page = run.post(action, form(token, password="wrong-password-1"), HANDED, step="POST wrong")
            action, token, _ = form_of(page)
        with clock_moved(run.world.svc.flows.ttl + 60):
            run.post(action, form(token), PASSED, step="POST late")
    return steps


def token_of_another_flow(run: Run) -> None:
    _, first, _ = run.open_login()
    action, _, _ = run.open_login()
    run.post(action, form(first), PASSED)


def chunked(run: Run) -> None:
    action, token, _ = run.open_login()
    # A server that de-chunks sets wsgi.input_terminated; the framework then reads to the end.
    run.post(action, form(token), PASSED, headers={"Transfer-Encoding": "chunked"},
             environ={"wsgi.input_terminated": True})


def length_beyond_body(run: Run) -> None:
    action, token, _ = run.open_login()
    body = form(token)
    run.post(action, body, PASSED, environ={"CONTENT_LENGTH": str(len(body) + 10)})


def multipart(run: Run) -> None:
    action, token, _ = run.open_login()
    boundary, body = encode_multipart(
        {"csrf_token": token, "username": "mario.rossi", "password": PASSWORD}, boundary="varco-test-boundary"
    )
    run.post(action, body, PASSED, content_type=f"multipart/form-data; boundary={boundary}")


def method_on_flow(method: str) -> Callable[[Run], None]:
    def steps(run: Run) -> None:
        action, token, _ = run.open_login()
        run.send(method, PASSED, method, action, form(token).encode(), content_type=FORM)
    return steps


def oidc(client_id: str, expect_post: str, **extra: str) -> Callable[[Run], None]:
    def steps(run: Run) -> None:
        params = {
            "response_type": "code", "client_id": client_id, "redirect_uri": RP, "scope": "openid profile",
            "state": "st-1", "nonce": "n-1", "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            "code_challenge_method": "S256", **extra,
        }
        start = run.get("/oidc/authorize?" + urlencode(params), PASSED, step="GET /oidc/authorize")
        page = run.get(start.headers["Location"], PASSED, step="GET /login?flow")
        action, token, _ = form_of(page)
        done = run.post(action, form(token), expect_post)
        if done.status_code == 303 and done.headers["Location"].startswith("/oidc/"):
            run.get(done.headers["Location"], PASSED, step="GET resume")
    return steps


def LIVE_SSO(world: World) -> str:
    return world.secrets["live_sso"]


def KNOWN_BROWSER(world: World) -> str:
    return world.browser_cookie("a-browser-seen-before-000")


TEN_KB = "u" * 10240

CASES = [
    # GET /login
    Case("fresh GET /login", get_login(FAST)),
    Case("GET /login, known browser cookie", get_login(FAST, cookies={BROWSER_COOKIE: KNOWN_BROWSER})),
    Case("GET /login, forged browser cookie", get_login(FAST, cookies={BROWSER_COOKIE: "abc.0123456789abcdef"})),
    Case("GET /login, Accept-Language: en", get_login(FAST, headers={"Accept-Language": "en"})),
    Case("GET /login, Accept-Language: it", get_login(FAST, headers={"Accept-Language": "it"})),
    Case("GET /login, Accept-Language: fr, en;q=0.5", get_login(FAST, headers={"Accept-Language": "fr, en;q=0.5"})),
    Case("GET /login, Accept-Language: de", get_login(FAST, headers={"Accept-Language": "de"})),
    Case("GET /login, varco_lang=en", get_login(FAST, cookies={LANG_COOKIE: "en"})),
    Case("GET /login, varco_lang=en, Accept-Language: it",
         get_login(FAST, cookies={LANG_COOKIE: "en"}, headers={"Accept-Language": "it"})),
    Case("GET /login, varco_lang=xx", get_login(FAST, cookies={LANG_COOKIE: "xx"}, headers={"Accept-Language": "en"})),
    Case("GET /login?lang=en", get_login(PASSED, "/login?lang=en")),
    Case("GET /login?next=/account", get_login(PASSED, "/login?next=/account")),
    Case("GET /login?login_hint=x", get_login(PASSED, "/login?login_hint=x")),
    Case("GET /login?", get_login(FAST, "/login?")),
    Case("GET /login, live SSO cookie", get_login(PASSED, cookies={SSO_COOKIE: LIVE_SSO})),
    Case("GET /login, dead SSO cookie", get_login(PASSED, cookies={SSO_COOKIE: "not-a-live-session"})),
    Case("GET /login over https", get_login(FAST), base_url="https://localhost"),
    Case("GET /login under /idp", get_login(FAST), base_url="http://localhost/idp"),
    Case("GET /login/", get_login(PASSED, "/login/")),
    Case("HEAD /login", get_login(PASSED, method="HEAD")),
    Case("PUT /login", get_login(PASSED, method="PUT")),
    Case("DELETE /login", get_login(PASSED, method="DELETE")),
    # a correct password
    Case("POST correct password", post_login(plain(), FAST)),
    Case("POST correct password, remember=on", post_login(plain("mario.rossi", PASSWORD, ("remember", "on")), FAST)),
    Case("POST correct password, remember=", post_login(plain("mario.rossi", PASSWORD, ("remember", "")), FAST)),
    Case("POST correct password, remember=yes", post_login(plain("mario.rossi", PASSWORD, ("remember", "yes")), FAST)),
    Case("POST correct password, fields reordered",
         post_login(raw("password={pw}&remember=on&username=mario.rossi&csrf_token={token}"), FAST)),
    Case("POST correct password, identifier spaced and cased", post_login(plain("  MARIO.Rossi "), FAST)),
    Case("POST correct password, student id", post_login(plain("20012345"), FAST)),
    Case("POST correct password with + and %2B", post_login(plain("odd.user", ODD_PASSWORD), FAST)),
    Case("POST password read wrongly (%2B as space)",
         post_login(raw("csrf_token={token}&username=odd.user&password=Odd+pass+word%259-Horse"), HANDED)),
    Case("POST correct password over https", post_login(plain(), FAST), base_url="https://localhost"),
    Case("POST correct password under /idp", post_login(plain(), FAST),
         base_url="http://localhost/idp"),
    Case("POST correct password, Accept-Language: en, varco_lang=it",
         post_login(plain(), FAST, headers={"Accept-Language": "en"}, cookies={LANG_COOKIE: "it"})),
    Case("GET /login?login_hint=x then POST", get_login(PASSED, "/login?login_hint=x", then_post=True)),
    Case("GET /login?next=/account/security then POST",
         get_login(PASSED, "/login?next=/account/security", then_post=True)),
    Case("GET /login?lang=en then POST", get_login(PASSED, "/login?lang=en", then_post=True)),
    Case("POST temporary password, then change-password page", temporary_password),
    Case("OIDC-started flow", oidc("webapp", FAST)),
    Case("OIDC-started flow asking for MFA (acr_values)", oidc("webapp", PASSED, acr_values="mfa")),
    Case("OIDC-started flow of a client requiring MFA", oidc("strict", PASSED)),
    Case("OIDC-started flow with login_hint", oidc("webapp", FAST, login_hint="mario.rossi")),
    # refusals
    Case("POST wrong password", post_login(plain("mario.rossi", "wrong-password-1"), HANDED)),
    Case("POST unknown user", post_login(plain("nobody", "wrong-password-1"), HANDED)),
    Case("POST unknown user, UTF-8 escape", post_login(raw("csrf_token={token}&username=%C3%A8&password=x"), HANDED)),
    Case("POST wrong password, varco_lang=en",
         post_login(plain("mario.rossi", "wrong-password-1"), HANDED, cookies={LANG_COOKIE: "en"})),
    Case("POST disabled account", post_login(plain("off.user"), HANDED)),
    Case("POST throttled account", throttled),
    Case("POST wrong then right", refused_then_right),
    # input no account lookup is made for: passed on before anything is used up
    Case("POST empty username and password", post_login(raw("csrf_token={token}&username=&password="), PASSED)),
    Case("POST empty password", post_login(raw("csrf_token={token}&username=mario.rossi&password="), PASSED)),
    Case("POST control character in username", post_login(raw("csrf_token={token}&username=a%00b&password=x"), PASSED)),
    Case("POST username of 300 characters", post_login(plain("u" * 300), PASSED)),
    Case("POST 10 KB username", post_login(plain(TEN_KB), PASSED)),
    Case("POST invalid escape kept as typed", post_login(raw("csrf_token={token}&username=%ZZ&password=x%2"), HANDED)),
    # stores down
    Case("GET /login, database down",
         store_down(PASSED, lambda svc: svc.db, "ping", DatabaseUnavailable("test"), get=True)),
    Case("GET /login, ephemeral store down",
         store_down(PASSED, lambda svc: svc.ephemeral, "ping", EphemeralUnavailable("test"), get=True)),
    Case("POST, database down when the account is looked up",
         store_down(PASSED, lambda svc: svc.accounts, "find_for_login", DatabaseUnavailable("test"))),
    Case("POST, database down during the password check",
         store_down(HANDED, lambda svc: svc.accounts, "authenticate", DatabaseUnavailable("test"))),
    Case("POST, ephemeral store down when the token is used",
         store_down(PASSED, lambda svc: svc.ephemeral, "batch", EphemeralUnavailable("test"))),
    # replays, tokens, cookies, flows
    Case("POST the same form twice after a login", replayed_after_success),
    Case("POST the same form twice after a refusal", replayed_after_refusal),
    Case("POST forged csrf_token", post_login(lambda token, run: form(token[:-1] + ("a" if token[-1] != "a" else "b")),
                                             PASSED)),
    Case("POST mangled csrf_token (no MAC)", post_login(lambda token, run: form(token.partition(".")[0]), PASSED)),
    Case("POST csrf_token of another flow", token_of_another_flow),
    Case("POST without csrf_token", post_login(raw("username=mario.rossi&password={pw}"), PASSED)),
    Case("POST empty csrf_token", post_login(raw("csrf_token=&username=mario.rossi&password={pw}"), PASSED)),
    Case("POST without browser cookie", no_browser),
    Case("POST with another browser's cookie", wrong_browser),
    Case("POST with a forged browser cookie", forged_browser),
    Case("POST with a live SSO cookie", sso_cookie_then_post),
    Case("POST to an unknown flow", post_login(plain(), PASSED, query="flow=AAAAAAAAAAAAAAAAAAAAAAAA")),
    Case("POST after the flow's lifetime", after_the_flow_lifetime(refused_first=False)),
    Case("POST after the flow's lifetime, flow stored by a refusal", after_the_flow_lifetime(refused_first=True)),
    Case("POST to an unknown flow of a fresh flow's length", post_login(plain(), PASSED, query="flow=" + "A" * 46)),
    Case("POST to /login without a flow", post_login(plain(), PASSED, query=None)),
    Case("POST to /login?flow=X&x=1", post_login(plain(), PASSED, query="flow={flow}&x=1")),
    Case("POST to /login?x=1&flow=X", post_login(plain(), PASSED, query="x=1&flow={flow}")),
    Case("POST to /login?flow=X&flow=X", post_login(plain(), PASSED, query="flow={flow}&flow={flow}")),
    # the form's shape
    Case("POST username twice", post_login(raw("csrf_token={token}&username=mario.rossi&username=x&password={pw}"),
                                           PASSED)),
    Case("POST password twice", post_login(raw("csrf_token={token}&username=mario.rossi&password={pw}&password=x"),
                                           PASSED)),
    Case("POST csrf_token twice", post_login(raw("csrf_token={token}&csrf_token=x&username=mario.rossi&password={pw}"),
                                             PASSED)),
    Case("POST unknown extra field", post_login(plain("mario.rossi", PASSWORD, ("extra", "1")), PASSED)),
    Case("POST field without =", post_login(raw("csrf_token={token}&username=mario.rossi&password={pw}&remember"),
                                            PASSED)),
    Case("POST trailing &", post_login(raw("csrf_token={token}&username=mario.rossi&password={pw}&"), PASSED)),
    Case("POST percent-encoded field name", post_login(raw("csrf_token={token}&user%6Eame=mario.rossi&password={pw}"),
                                                       PASSED)),
    Case("POST username=%ff", post_login(raw("csrf_token={token}&username=%ff&password={pw}"), PASSED)),
    Case("POST raw UTF-8 in the body", post_login(raw("csrf_token={token}&username=è&password={pw}"), PASSED)),
    Case("POST empty body", post_login(raw(""), PASSED)),
    Case("POST body at the length limit", post_login(
        lambda token, run: form(token) + "&remember=" + "x" * (MAX_BODY - len(form(token)) - len("&remember=")),
        FAST)),
    Case("POST body one byte over the limit", post_login(
        lambda token, run: form(token) + "&remember=" + "x" * (MAX_BODY + 1 - len(form(token)) - len("&remember=")),
        PASSED)),
    Case("POST Content-Type with charset", post_login(plain(), PASSED, content_type=FORM + "; charset=utf-8")),
    Case("POST Content-Type in capitals", post_login(plain(), PASSED, content_type=FORM.upper())),
    Case("POST Content-Type JSON", post_login(plain(), PASSED, content_type="application/json")),
    Case("POST without Content-Type", post_login(plain(), PASSED, content_type=None)),
    Case("POST multipart form", multipart),
    Case("POST with Content-Length beyond the body", length_beyond_body),
    Case("POST chunked", chunked),
    Case("PUT /login?flow=X", method_on_flow("PUT")),
    Case("PATCH /login?flow=X", method_on_flow("PATCH")),
    Case("HEAD /login?flow=X", method_on_flow("HEAD")),
]


# --- comparing two answers ---------------------------------------------------------------------------
def cookie_view(world: World, header: str) -> tuple:
    """A Set-Cookie header as it matters: name, attributes, and what its value stands for."""
    pair, *attributes = [part.strip() for part in header.split(";")]
    name, _, value = pair.partition("=")
    attrs = []
    for attribute in attributes:
        key, _, setting = attribute.partition("=")
        key = key.lower()
        if key == "expires":
            attrs.append("expires")  # presence; the date moves with the clock
        elif key in ("max-age", "path", "samesite", "domain"):
            attrs.append(f"{key}={setting.lower()}")
        else:
            attrs.append(key)
    if name == SSO_COOKIE and value:
        session = world.svc.sessions.get(value)
        meaning: Any = None if session is None else (session.account_id, session.amr, session.acr, session.remember)
    elif name == BROWSER_COOKIE:
        meaning = verify_browser_cookie(world.svc.keys.cookie_key, value) is not None
    else:
        meaning = value
    return name, tuple(sorted(attrs)), meaning


class Normaliser:
    """Replaces each flow id by its order of appearance in the run, and form tokens by a mark."""

    def __init__(self) -> None:
        self.flows: dict[str, str] = {}

    def __call__(self, text: str) -> str:
        for flow in FLOW_ID.findall(text):
            self.flows.setdefault(flow, f"<flow{len(self.flows) + 1}>")
        for flow, mark in self.flows.items():
            text = text.replace(flow, mark)
        text = OIDC_CODE.sub(r"\1<code>", text)
        return TOKEN_VALUE.sub(r"\1<token>\3", text)


def answer(world: World, response: TestResponse, normalise: Normaliser) -> dict[str, Any]:
    headers = response.headers
    return {
        "status": response.status,
        "location": normalise(headers.get("Location", "")),
        "header names": sorted(name.lower() for name, _ in headers.items()),
        "header values": {
            name.lower(): headers.getlist(name)
            for name in {name for name, _ in headers.items()}
            if name.lower() not in ("set-cookie", "location")
        },
        "cookies": sorted(cookie_view(world, value) for value in headers.getlist("Set-Cookie")),
        "body": normalise(response.get_data(as_text=True)),
    }


def differences(label: str, ours: Run, theirs: Run, world: World) -> list[str]:
    if [e.step for e in ours.exchanges] != [e.step for e in theirs.exchanges]:
        return [f"{label}: the runs took different steps: {[e.step for e in ours.exchanges]} "
                f"vs {[e.step for e in theirs.exchanges]}"]
    found = []
    mine, other = Normaliser(), Normaliser()
    for a, b in zip(ours.exchanges, theirs.exchanges, strict=True):
        fast, framework = answer(world, a.response, mine), answer(world, b.response, other)
        for key in fast:
            if fast[key] == framework[key]:
                continue
            if key == "body":
                diff = difflib.unified_diff(framework[key].splitlines(), fast[key].splitlines(), "framework path",
                                            "full stack", lineterm="", n=1)
                detail = "\n".join(list(diff)[:40])
            elif isinstance(fast[key], dict):
                names = sorted(
                    n for n in fast[key].keys() | framework[key].keys() if fast[key].get(n) != framework[key].get(n)
                )
                detail = "; ".join(f"{n}: full stack {fast[key].get(n)!r}, framework path {framework[key].get(n)!r}"
                                   for n in names)
            else:
                detail = f"full stack {fast[key]!r}\n    framework path {framework[key]!r}"
            found.append(f"{label} / {a.step}: {key} differs\n    {detail}")
    return found


def run_case(case: Case, wsgi: Callable, world: World, **hooks: Any) -> Run:
    world.reset()
    run = Run(wsgi, world, base_url=case.base_url, headers=case.headers, **hooks)
    case.steps(run)
    return run


def compare_paths(app, world: World, cases: list[Case], full: Callable | None = None,  # type: ignore[no-untyped-def]
                  framework: Callable | None = None) -> set[int]:
    if full is None:
        full, framework = app.wsgi_app, app.extensions["varco_login_fastpath"].app
        assert full is app.extensions["varco_login_fastpath"] and isinstance(full, LoginFastPath)
    found: list[str] = []
    statuses = set()
    for case in cases:
        runs = []
        for name, wsgi in (("the full stack", full), ("the framework path", framework)):
            try:
                runs.append(run_case(case, wsgi, world))
            except Exception as exc:  # noqa: BLE001 (a crash on one path is a difference too)
                found.append(f"{case.label}: {name} raised {exc!r}")
        if len(runs) != 2:
            continue
        ours, theirs = runs
        statuses.update(e.response.status_code for e in theirs.exchanges)
        found.extend(differences(case.label, ours, theirs, world))
    assert not found, "\n\n".join(found)
    return statuses


# --- who answered --------------------------------------------------------------------------------------
@dataclass
class Seen:
    method: str
    path: str
    query: str
    body: bytes
    submitted: bool


class Recorder:
    """The framework path, noting every request that reaches it as it arrives."""

    def __init__(self, framework: Callable) -> None:
        self.framework = framework
        self.seen: list[Seen] = []

    def __call__(self, environ: dict, start_response: Callable) -> Any:
        body = environ["wsgi.input"].read()
        environ["wsgi.input"] = io.BytesIO(body)
        self.seen.append(Seen(environ["REQUEST_METHOD"], environ["PATH_INFO"], environ.get("QUERY_STRING", ""), body,
                              SUBMITTED_BENEATH in environ))
        return self.framework(environ, start_response)


def check_who_answered(app, world: World, cases: list[Case]) -> dict[str, int]:  # type: ignore[no-untyped-def]
    recorder = Recorder(app.extensions["varco_login_fastpath"].app)
    fast = LoginFastPath(recorder, app, SECURITY_HEADERS)
    found: list[str] = []
    tally = {FAST: 0, HANDED: 0, PASSED: 0}

    def check(label: str, exchange: Exchange) -> None:
        tally[exchange.expect] += 1
        where = f"{label} / {exchange.step} ({exchange.response.status})"
        if exchange.expect == FAST:
            if recorder.seen:
                found.append(f"{where}: expected {FAST}, but it reached the framework path: {recorder.seen}")
            return
        if len(recorder.seen) != 1:
            found.append(f"{where}: expected one request at the framework path, saw {recorder.seen}")
            return
        seen = recorder.seen[0]
        sent = (exchange.method, exchange.path, exchange.query, exchange.body or b"")
        if (seen.method, seen.path, seen.query, seen.body) != sent:
            found.append(f"{where}: the framework path read {seen} instead of {sent}")
        if seen.submitted != (exchange.expect == HANDED):
            found.append(f"{where}: expected {exchange.expect}, but {SUBMITTED_BENEATH} was "
                         f"{'set' if seen.submitted else 'not set'}")

    for case in cases:
        run_case(case, fast, world, before=recorder.seen.clear, after=lambda e, label=case.label: check(label, e))
    assert not found, "\n".join(found)
    return tally


# --- the tests ----------------------------------------------------------------------------------------
def test_both_paths_answer_every_request_alike(app, make_account):
    statuses = compare_paths(app, standard_world(app, make_account), CASES)
    # The scenarios reach the answers they are about.
    assert {200, 303, 400, 401, 403, 405, 429, 503} <= statuses


def test_the_fast_path_answers_only_plain_logins_and_passes_the_rest_on_intact(app, make_account):
    tally = check_who_answered(app, standard_world(app, make_account), CASES)
    assert tally[FAST] > 20 and tally[HANDED] > 10 and tally[PASSED] > 40


@pytest.mark.parametrize("root", ["/idp", "/a%20b", "/%C3%A8", "/a%3Fb"])
def test_both_paths_agree_under_any_mount_path(app, make_account, root):
    """The WSGI server may mount Varco under a path (SCRIPT_NAME); links and redirects carry it."""
    world = World(app, make_account)
    world.account("mario.rossi")
    world.account("temp.user")
    world.secrets["temp.user"] = world.svc.accounts.issue_temporary_password("temp.user", actor="helpdesk")
    base = f"http://localhost{root}"
    cases = [
        Case(f"GET /login under {root}", get_login(FAST), base_url=base),
        Case(f"POST correct password under {root}", post_login(plain(), FAST), base_url=base),
        Case(f"POST wrong password under {root}", post_login(plain("mario.rossi", "x-wrong-1"), HANDED), base_url=base),
        Case(f"POST temporary password under {root}", temporary_password, base_url=base),
    ]
    compare_paths(app, world, cases)


def test_scenarios_end_where_they_should(app, make_account):
    """The differential holds only if the scenarios are what their labels say: spot checks."""
    world = standard_world(app, make_account)
    full = app.wsgi_app

    def last(label: str) -> TestResponse:
        case = next(case for case in CASES if case.label == label)
        return run_case(case, full, world).exchanges[-1].response

    def alerts(response: TestResponse) -> str:
        return html.unescape(re.sub(r"<[^>]+>", " ", " ".join(ALERT.findall(response.get_data(as_text=True)))))

    done = last("POST correct password")
    assert done.status_code == 303 and done.headers["Location"] == "/account"
    assert any(v.startswith(f"{SSO_COOKIE}=") for v in done.headers.getlist("Set-Cookie"))
    remembered = last("POST correct password, remember=on")
    assert any(v.startswith(f"{SSO_COOKIE}=") and "Max-Age=" in v for v in remembered.headers.getlist("Set-Cookie"))
    assert last("POST correct password with + and %2B").status_code == 303
    assert last("POST password read wrongly (%2B as space)").status_code == 401
    temporary = next(case for case in CASES if case.label.startswith("POST temporary password"))
    exchanges = run_case(temporary, full, world).exchanges
    assert exchanges[1].response.status_code == 303 and FLOW_ID.search(exchanges[1].response.headers["Location"])
    assert 'name="new_password"' in exchanges[2].response.get_data(as_text=True)
    wrong, unknown = last("POST wrong password"), last("POST unknown user")
    assert wrong.status_code == unknown.status_code == 401
    assert alerts(wrong) == alerts(unknown) and "errati" in alerts(wrong)
    assert last("POST disabled account").status_code == 403
    assert last("POST throttled account").status_code == 429
    for label in ("POST the same form twice after a login", "POST the same form twice after a refusal"):
        replayed = last(label)
        assert replayed.status_code == 400 and "già stato inviato" in alerts(replayed), label
    assert last("GET /login, live SSO cookie").status_code == 303
    for lang in ("en", "it"):
        page = last(f"GET /login, Accept-Language: {lang}").get_data(as_text=True)
        assert page.startswith(f'<!doctype html>\n<html lang="{lang}">')
    assert last("POST to /login?flow=X&x=1").status_code == 303
    assert last("POST username=%ff").status_code == 400
    # The framework path read these bodies and logged the person in: what it was given was whole.
    for label in ("POST chunked", "POST multipart form", "POST Content-Type with charset", "POST unknown extra field",
                  "POST with a live SSO cookie", "POST body one byte over the limit", "POST username twice"):
        assert last(label).status_code == 303, label
    assert last("POST 10 KB username").status_code == 400
    for label in ("GET /login, database down", "GET /login, ephemeral store down",
                  "POST, database down during the password check", "POST, ephemeral store down when the token is used"):
        assert last(label).status_code == 503, label
    assert last("OIDC-started flow").headers["Location"].startswith(RP)


@pytest.mark.mfa_policy
def test_a_login_that_needs_a_second_factor_goes_on_alike(app, make_account):
    world = World(app, make_account)
    world.account("first.login")
    world.account("second.login", login_count=1)
    enrolled = world.account("has.totp", login_count=5)
    world.svc.mfa.enrol_totp_secret(enrolled.id, "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", actor="test")

    def then_next_step(username: str) -> Callable[[Run], None]:
        def steps(run: Run) -> None:
            action, token, _ = run.open_login()
            done = run.post(action, form(token, username), FAST)
            run.get(done.headers["Location"], PASSED, step="GET next step")
        return steps

    cases = [
        Case("a student's first login", then_next_step("first.login")),
        Case("a student's second login", then_next_step("second.login")),
        Case("a login with an enrolled app", then_next_step("has.totp")),
        Case("a wrong password", post_login(plain("second.login", "wrong-password-1"), HANDED)),
    ]
    compare_paths(app, world, cases)
    check_who_answered(app, world, cases)
    second = run_case(cases[1], app.wsgi_app, world).exchanges
    assert second[1].response.status_code == 303
    assert second[1].response.headers["Location"] == f"/login?flow={form_of(second[0].response)[2]}"
    assert 'value="later"' not in second[2].response.get_data(as_text=True)
    assert 'name="otp"' in run_case(cases[2], app.wsgi_app, world).exchanges[2].response.get_data(as_text=True)


def test_behind_a_trusted_proxy_both_paths_see_the_same_client(settings, app, make_account):
    from werkzeug.middleware.proxy_fix import ProxyFix

    from idp.app import create_app

    proxied = create_app(settings.replace(server={"trusted_proxies": 1}))
    try:
        world = World(proxied, make_account)
        account = world.account("mario.rossi")
        beneath = proxied.extensions["varco_login_fastpath"]
        full = proxied.wsgi_app
        assert isinstance(full, ProxyFix) and full.app is beneath
        framework = ProxyFix(beneath.app, x_for=1, x_proto=1, x_host=1, x_port=1)
        forwarded = {
            "X-Forwarded-For": "198.51.100.9", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "idp.example.it"
        }
        cases = [
            Case("GET /login through the proxy", get_login(FAST), headers=forwarded),
            Case("POST correct password through the proxy", post_login(plain(), FAST), headers=forwarded),
            Case("POST wrong password through the proxy", post_login(plain("mario.rossi", "x-wrong-1"), HANDED),
                 headers=forwarded),
        ]
        compare_paths(proxied, world, cases, full, framework)
        world.reset()
        before = len(audit_rows(proxied, "login.password", account.id))
        run = run_case(cases[1], full, world)
        cookies = run.exchanges[-1].response.headers.getlist("Set-Cookie")
        assert all("Secure" in cookie for cookie in cookies) and len(cookies) == 1
        rows = audit_rows(proxied, "login.password", account.id)
        assert len(rows) == before + 1 and rows[-1].remote_addr == "198.51.100.9"
    finally:
        proxied.extensions["varco"].db.dispose()


# --- nothing written twice, nothing half-written -------------------------------------------------------
def audit_rows(app, action: str, account_id: str) -> list[AuditEvent]:  # type: ignore[no-untyped-def]
    with app.extensions["varco"].db.session() as session:
        stmt = select(AuditEvent).where(AuditEvent.action == action, AuditEvent.account_id == account_id)
        return list(session.execute(stmt).scalars())


def login_count(app, account_id: str) -> int:  # type: ignore[no-untyped-def]
    with app.extensions["varco"].db.session() as session:
        return session.execute(select(Account.login_count).where(Account.id == account_id)).scalar_one()


def sessions_created(app, monkeypatch) -> list:  # type: ignore[no-untyped-def]
    sessions = app.extensions["varco"].sessions
    made: list = []
    original = sessions.new

    def new(*args: Any, **kwargs: Any):  # type: ignore[no-untyped-def]
        made.append(original(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(sessions, "new", new)
    return made


def test_a_fast_path_login_is_written_once_and_a_replay_writes_nothing(app, make_account, monkeypatch):
    world = World(app, make_account)
    account = world.account("mario.rossi")
    made = sessions_created(app, monkeypatch)
    recorder = Recorder(app.extensions["varco_login_fastpath"].app)
    run = Run(LoginFastPath(recorder, app, SECURITY_HEADERS), world)
    action, token, flow = run.open_login()
    body = form(token)
    done = run.post(action, body, FAST)
    assert done.status_code == 303 and done.headers["Location"] == "/account"
    assert recorder.seen == []  # the fast path answered it
    rows = audit_rows(app, "login.password", account.id)
    assert len(rows) == 1 and rows[0].remote_addr == ADDR
    assert login_count(app, account.id) == 1
    assert [s.id for s in made] == [run.cookie(SSO_COOKIE)]
    assert world.svc.sessions.get(made[0].id).account_id == account.id
    assert world.svc.ephemeral.get(f"flow:{flow}") == FINISHED

    again = run.post(action, body, PASSED)
    assert again.status_code == 400 and len(recorder.seen) == 1
    assert not any(v.startswith(f"{SSO_COOKIE}=") for v in again.headers.getlist("Set-Cookie"))
    assert len(made) == 1
    assert len(audit_rows(app, "login.password", account.id)) == 1
    assert login_count(app, account.id) == 1
    # A fresh browser replaying the captured form gets nothing either.
    stranger = Run(LoginFastPath(recorder, app, SECURITY_HEADERS), world)
    stranger.client.set_cookie(BROWSER_COOKIE, run.cookie(BROWSER_COOKIE))
    assert stranger.post(action, body, PASSED).status_code == 400
    assert len(made) == 1 and len(audit_rows(app, "login.password", account.id)) == 1


def test_a_fast_path_login_reaches_the_ephemeral_store_twice(app, make_account, monkeypatch):
    """The flow, the form token and the account's failed-login count are read in one round trip
    (the account is looked up first), and the session is stored with the flow's end in another."""
    world = World(app, make_account)
    account = world.account("mario.rossi")
    ephemeral = world.svc.ephemeral
    trips: list[list[tuple]] = []
    apply = ephemeral._apply

    def counted(ops):  # type: ignore[no-untyped-def]
        trips.append([op[:2] for op in ops])
        return apply(ops)

    monkeypatch.setattr(ephemeral, "_apply", counted)
    run = Run(LoginFastPath(Recorder(app.extensions["varco_login_fastpath"].app), app, SECURITY_HEADERS), world)
    action, token, flow = run.open_login()
    trips.clear()
    assert run.post(action, form(token), FAST).status_code == 303
    assert len(trips) == 2
    assert trips[0][0] == ("get", f"flow:{flow}") and trips[0][2] == ("get", f"loginfail:acct:{account.id}")
    assert trips[1][0][0] == "set" and trips[1][0][1].startswith("sso:")


def test_a_refusal_runs_the_step_once(app, make_account, monkeypatch):
    world = World(app, make_account)
    account = world.account("mario.rossi")
    made = sessions_created(app, monkeypatch)
    recorder = Recorder(app.extensions["varco_login_fastpath"].app)
    run = Run(LoginFastPath(recorder, app, SECURITY_HEADERS), world, before=recorder.seen.clear)
    action, token, _ = run.open_login()
    page = run.post(action, form(token, password="wrong-password-1"), HANDED)
    assert page.status_code == 401
    assert [seen.submitted for seen in recorder.seen] == [True]  # the step ran beneath, the view drew the page
    failed = audit_rows(app, "login.failed", account.id)
    assert len(failed) == 1 and failed[0].remote_addr == ADDR
    assert world.svc.ephemeral.get(f"loginfail:acct:{account.id}") == "1"
    assert made == [] and login_count(app, account.id) == 0
    # The flow keeps what was typed, once; the page's new token works.
    action, token, _ = form_of(page)
    assert 'value="mario.rossi"' in page.get_data(as_text=True)
    assert run.post(action, form(token), FAST).status_code == 303 and recorder.seen == []
    assert len(made) == 1 and login_count(app, account.id) == 1
    assert len(audit_rows(app, "login.failed", account.id)) == 1
    with world.svc.db.session() as session:
        assert session.execute(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "login.password")).scalar_one() == 1


# --- the strict form reader ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"csrf_token=t.m&username=u&password=p", {"csrf_token": "t.m", "username": "u", "password": "p"}),
        (b"password=p&username=u&csrf_token=t&remember=on",
         {"csrf_token": "t", "username": "u", "password": "p", "remember": "on"}),
        (b"csrf_token=t&username=a+b&password=x%2By%25", {"csrf_token": "t", "username": "a b", "password": "x+y%"}),
        (b"csrf_token=t&username=%C3%A8&password=", {"csrf_token": "t", "username": "è", "password": ""}),
        (b"csrf_token=t&username=%ZZ&password=%2", {"csrf_token": "t", "username": "%ZZ", "password": "%2"}),
        (b"csrf_token=t&username=a%3Db%26c&password=p", {"csrf_token": "t", "username": "a=b&c", "password": "p"}),
        (b"csrf_token=t&username=u&password=p&remember=", {"csrf_token": "t", "username": "u", "password": "p",
                                                            "remember": ""}),
        (b"csrf_token=t&username=u&password=a=b", {"csrf_token": "t", "username": "u", "password": "a=b"}),
        (b"csrf_token=t&username=u&username=v&password=p", None),
        (b"csrf_token=t&csrf_token=t&username=u&password=p", None),
        (b"csrf_token=t&username=u&password=p&remember=on&remember=on", None),
        (b"csrf_token=t&username=u&password=p&extra=1", None),
        (b"csrf_token=t&user%6Eame=u&password=p", None),
        (b"csrf_token=t&Username=u&password=p", None),
        (b"csrf_token=t&username=u&password=p&remember", None),
        (b"csrf_token=t&username&password=p", None),
        (b"csrf_token=t&username=u&password=p&", None),
        (b"&csrf_token=t&username=u&password=p", None),
        (b"csrf_token=t&&username=u&password=p", None),
        (b"csrf_token=t;username=u;password=p", None),
        ("csrf_token=t&username=è&password=p".encode(), None),
        (b"csrf_token=t&username=\xffu&password=p", None),
        (b"csrf_token=t&username=%ff&password=p", None),
        (b"csrf_token=t&username=%C3&password=p", None),
        (b"csrf_token=t&username=u&password=%ED%A0%80", None),
        (b"csrf_token=t&username=u&password=%C0%AF", None),
        (b"csrf_token=t&username=u", None),
        (b"username=u&password=p", None),
        (b"csrf_token=t&password=p", None),
        (b"", None),
        (b"=", None),
    ],
)
def test_read_form_is_strict(body, expected):
    assert read_form(body) == expected


@pytest.mark.parametrize(
    "body",
    [
        b"csrf_token=t.m&username=u&password=p",
        b"csrf_token=t&username=+a++b+&password=x%2By%25&remember=on",
        b"csrf_token=t&username=%C3%A8%E2%82%AC&password=%F0%9F%94%91",
        b"csrf_token=t&username=%ZZ&password=%2",
        b"csrf_token=t&username=a%3Db%26c%3B&password=a=b",
        b"csrf_token=%2e%2E&username=%00&password=%0D%0A",
    ],
)
def test_what_read_form_accepts_reads_as_the_framework_reads_it(body):
    expected = read_form(body)
    assert expected is not None
    request = Request.from_values(method="POST", data=body, content_type=FORM)
    form = request.form
    assert {name: form.getlist(name) for name in form} == {name: [value] for name, value in expected.items()}


@pytest.mark.parametrize(
    ("mode", "scheme", "secure"),
    [
        ("always", "http", True),
        ("always", "https", True),
        ("never", "https", False),
        ("never", "http", False),
        ("auto", "https", True),
        ("auto", "http", False),
    ],
)
def test_the_secure_flag_follows_the_setting_and_the_scheme(mode, scheme, secure):
    from idp.web import secure_cookies

    assert secure_cookies(mode, scheme) is secure


@pytest.mark.parametrize(
    "header",
    [
        "",
        "varco_lang=en",
        "varco_lang=en; varco_lang=it",
        "varco_lang=it; varco_lang=en; b=1",
        "a=1; b=2; a=3",
        "=x",
        # The header's bytes as the WSGI server gives them (latin-1 characters): not UTF-8, and UTF-8.
        "x=\xff; varco_lang=en",
        "varco_lang=\xc3\xa9",
    ],
)
def test_read_cookies_gives_each_cookie_as_the_framework_does(header):
    # The first value of a cookie sent twice, as request.cookies.get (the view's) gives it.
    environ = {"HTTP_COOKIE": header} if header else {}
    framework = Request(environ).cookies
    assert read_cookies(environ) == {name: framework.get(name) for name in framework}
